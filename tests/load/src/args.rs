//! Command line.

use std::time::Duration;

#[derive(Debug, clap::Parser)]
#[command(name = "chatseal-load", about = "Load tool for chatseal chat servers")]
pub struct Args {
    /// The server, e.g. http://127.0.0.1:3000
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    pub url: String,

    /// Server process ids to sample for CPU time and peak RSS (repeatable).
    #[arg(long = "pid")]
    pub pids: Vec<u32>,

    /// A label for the report.
    #[arg(long, default_value = "server")]
    pub label: String,

    /// Print one JSON line instead of text.
    #[arg(long)]
    pub json: bool,

    #[command(subcommand)]
    pub mode: Mode,
}

#[derive(Debug, clap::Subcommand)]
pub enum Mode {
    /// Clients in rooms; senders with a bounded window; every delivery checked.
    Chat(ChatArgs),
    /// Open idle connections and measure the server's memory per connection.
    Idle(IdleArgs),
}

#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// Connected clients.
    #[arg(long, default_value_t = 10)]
    pub clients: usize,
    /// How many of them send.
    #[arg(long)]
    pub senders: Option<usize>,
    /// Rooms; clients are spread over them in turn.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Unacknowledged messages each sender may have in flight.
    #[arg(long, default_value_t = 8)]
    pub window: usize,
    /// How long senders send.
    #[arg(long, default_value = "10", value_parser = secs)]
    pub duration: Duration,
    /// At most this many messages per sender.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Exit non-zero if any send was refused, any delivery failed to open,
    /// or any acknowledged message never reached a reader.
    #[arg(long)]
    pub fail_on_error: bool,
    /// While chatting, this many connections flood `POST /api/login` with
    /// made-up names (0: no flood).
    #[arg(long, default_value_t = 0)]
    pub login_flood: usize,
}

#[derive(Debug, clap::Args)]
pub struct IdleArgs {
    /// Connections to open.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Connections opened at once.
    #[arg(long, default_value_t = 200)]
    pub parallel: usize,
}

fn secs(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0 && *v <= 3600.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{s:?} is not a number of seconds (0 to 3600)"))
}
