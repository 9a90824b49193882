//! `chatseal-load`: drives a chatseal chat server (Rust or Node, or any
//! Socket.IO server that speaks docs/protocol.md) and measures it.
//!
//! Bounded in count and in time; progress every second on stderr; the
//! result as text, or as one JSON line with `--json` for scripts.

mod args;
mod client_ids;
mod engineio;
mod envelope;
mod idle;
mod last;
mod login_flood;
mod opened;
mod proc_stats;
mod report;
mod run;
mod since;

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args::Args::parse();
    match &args.mode {
        args::Mode::Chat(chat) => {
            let result = run::chat(&args, chat).await?;
            report::print(&result, args.json);
            if result.errors > 0 && chat.fail_on_error {
                anyhow::bail!("{} errors", result.errors);
            }
        }
        args::Mode::Since(since) => {
            let result = since::run(&args, since).await?;
            since::print(&result, args.json);
            if result.errors > 0 {
                anyhow::bail!("{} joins came back incomplete or refused", result.errors);
            }
        }
        args::Mode::Idle(idle) => {
            if let Some(result) = idle::run(&args, idle).await? {
                report::print_idle(&result, args.json);
            }
        }
    }
    Ok(())
}
