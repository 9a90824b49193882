//! `chatseal-server`: parse the configuration, set up logging, serve.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = chatseal_server::Config::parse();
    chatseal_server::logging::init(&config.log, config.log_format);
    match chatseal_server::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", chatseal_server::fatal::describe(&err));
            std::process::ExitCode::FAILURE
        }
    }
}
