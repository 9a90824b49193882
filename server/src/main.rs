//! `chatseal-server`: parse the configuration, set up logging, serve (or
//! run a `keys` or `users` command).

use chatseal_server::keys::cli::Command;
use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = chatseal_server::Config::parse();
    chatseal_server::logging::init(&config.log, config.log_format);
    let result = match config.command.clone() {
        Some(Command::Keys(keys)) => chatseal_server::keys::cli::run(&config, keys).await,
        Some(Command::Users(users)) => chatseal_server::users::run(&config, users).await,
        None => chatseal_server::run(config).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", chatseal_server::fatal::describe(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// jemalloc, not glibc's malloc: every delivered frame is allocated by the
/// broadcaster on one thread and freed by the socket's writer task on
/// another, and glibc serializes those frees on the allocating arena's lock
/// (perf: `_int_free` waiting on its futex). Measured in one interleaved run
/// (docs/benchmarks.md): +27 % deliveries/s at 100 clients, +8 % at 10,
/// with less CPU per delivery; the price is ~2 KiB more per idle
/// connection (jemalloc's size classes), 21.5 vs 19.4 KiB at 19,000.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
