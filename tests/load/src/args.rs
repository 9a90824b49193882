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

    /// The scenario this run belongs to, echoed in the report so that
    /// `summary.js` can tell the tables apart (`chat`, `large-room`, …).
    #[arg(long, default_value = "chat")]
    pub scenario: String,

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
    /// Time `join { since }` against a store filled beforehand.
    Since(SinceArgs),
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
    /// Messages per second each sender sends at most (spread evenly over
    /// the senders' start times); without it a sender sends as soon as its
    /// window allows.
    #[arg(long, value_parser = rate)]
    pub rate: Option<f64>,
    /// Also time each message from its send to its delivery to the LAST
    /// member of its room (p50/p99 over messages that reached every
    /// member). Needs senders × messages per sender (bounded by --rate ×
    /// --duration when a rate is set) ≤ 8,000,000.
    #[arg(long)]
    pub last_delivery: bool,
    /// While chatting, this many connections flood `POST /api/login` with
    /// made-up names (0: no flood).
    #[arg(long, default_value_t = 0)]
    pub login_flood: usize,
    /// The `clientId` on each message: none (the default), random (UUID v4)
    /// or ordered (UUID v7, as the SDK sends).
    #[arg(long, value_enum, default_value_t = crate::client_ids::ClientIds::None)]
    pub client_ids: crate::client_ids::ClientIds,
}

#[derive(Debug, clap::Args)]
pub struct IdleArgs {
    /// Connections to open.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Connections opened at once (per process).
    #[arg(long, default_value_t = 200)]
    pub parallel: usize,
    /// Load processes to spread the connections over (an open-files limit
    /// is per process: 20,000 here). With more than one, this process
    /// starts the others, each holding its share, and reads the server's
    /// memory once all are connected.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub procs: u16,
    /// (Internal) a share of a --procs run: connect, say so on stdout,
    /// hold the connections until stdin closes (at most --hold-seconds).
    #[arg(long, hide = true)]
    pub child: bool,
    /// Longest a child process holds its connections.
    #[arg(long, default_value = "300", value_parser = secs, hide = true)]
    pub hold_seconds: Duration,
}

#[derive(Debug, clap::Args)]
pub struct SinceArgs {
    /// The room to join (filled beforehand).
    #[arg(long, default_value = "bench-0")]
    pub room: String,
    /// Joins to time, in all.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub joins: u64,
    /// Each join asks for the last `back` messages (since = latestSeq − back).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=500))]
    pub back: u64,
    /// Connections joining at once, each one join at a time.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub connections: u64,
    /// How many messages the store holds (for the report only).
    #[arg(long, default_value_t = 0)]
    pub stored: u64,
    /// Joins stop after this long, whatever is left.
    #[arg(long, default_value = "60", value_parser = secs)]
    pub max_seconds: Duration,
}

fn rate(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0 && *v <= 1_000_000.0)
        .ok_or_else(|| {
            format!("{s:?} is not a rate (messages per second, above 0, at most 1000000)")
        })
}

fn secs(s: &str) -> Result<Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0 && *v <= 3600.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{s:?} is not a number of seconds (0 to 3600)"))
}
