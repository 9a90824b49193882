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
