//! `chatseal-server`: parse the configuration, set up logging, serve.

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = chatseal_server::Config::parse();
    chatseal_server::logging::init(&config.log);
    chatseal_server::run(config).await
}
