//! `chatseal-server`: parse the configuration, set up logging, serve (or
//! run a `keys` command).

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = chatseal_server::Config::parse();
    chatseal_server::logging::init(&config.log);
    match config.command.clone() {
        Some(command) => chatseal_server::keys::cli::run(&config, command).await,
        None => chatseal_server::run(config).await,
    }
}
