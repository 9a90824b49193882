//! Configuration: every option is a flag and an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

/// chatseal's chat server.
#[derive(clap::Parser, Clone)]
#[command(name = "chatseal-server", version, about)]
pub struct Config {
    /// Without a command: serve. `keys …` manages the keyring (same flags
    /// and environment), while servers run.
    #[command(subcommand)]
    pub command: Option<crate::keys::cli::Command>,

    /// Address to listen on. Loopback by default.
    /// A host name (`localhost:3000`) is resolved once, at start.
    #[arg(long, env = "CHATSEAL_LISTEN", default_value = "127.0.0.1:3000", value_parser = resolve_listen)]
    pub listen: SocketAddr,

    /// Directory for the embedded database and the generated dev keyring.
    #[arg(
        long,
        global = true,
        env = "CHATSEAL_DATA_DIR",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,

    /// Keyring file (mode 0600), wrapped under a key-encryption key or plain
    /// JSON. Default: <data-dir>/keyring.json, created wrapped on first start.
    #[arg(long, global = true, env = "CHATSEAL_KEYRING_FILE")]
    pub keyring_file: Option<PathBuf>,

    /// Name of the environment variable that holds the keyring (JSON or
    /// base64 of it, plain or wrapped). Takes precedence over files when set.
    #[arg(long, global = true, default_value = "CHATSEAL_KEYRING")]
    pub keyring_env: String,

    /// The key-encryption key the keyring is wrapped under at rest.
    #[command(flatten)]
    pub kek: crate::keys::kek::KekArgs,

    /// Bearer token that /encrypt and /decrypt require, on every address.
    /// Default: a random one kept in <data-dir>/service-token (mode 0600).
    #[arg(long, env = "CHATSEAL_SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: Option<String>,

    /// Bearer token that the publish API (POST /api/rooms/:room/messages)
    /// requires. Default: a random one kept in <data-dir>/publish-token (0600).
    #[arg(long, env = "CHATSEAL_PUBLISH_TOKEN", hide_env_values = true)]
    pub publish_token: Option<String>,

    /// Largest message text, in bytes.
    #[arg(long, env = "CHATSEAL_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,

    /// Largest request body or Socket.IO payload, in bytes.
    #[arg(long, env = "CHATSEAL_MAX_PAYLOAD_BYTES", default_value_t = 128 * 1024)]
    pub max_payload_bytes: usize,

    /// Database: `sqlite://path` or `postgres://…`. Default: SQLite in
    /// <data-dir>/chatseal.db.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Redis for several servers sharing one chat (`redis://host:6379`).
    /// Without it the server is single-node.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// The Redis channel servers of one cluster publish messages on.
    #[arg(long, env = "CHATSEAL_REDIS_CHANNEL", default_value = "chatseal")]
    pub redis_channel: String,

    /// Secret that signs session tokens (JWT, HS256), 32+ bytes. Default: a
    /// random one kept in <data-dir>/jwt-secret (mode 0600).
    #[arg(long, env = "CHATSEAL_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// How long a session token lives, in seconds.
    #[arg(long, env = "CHATSEAL_TOKEN_TTL_SECS", default_value_t = 12 * 3600)]
    pub token_ttl_secs: u64,

    /// Who may create accounts: `open` (anyone, POST /api/register),
    /// `invite` (with a code from `chatseal-server users invite`), `closed`
    /// (only `chatseal-server users add`).
    #[arg(long, env = "CHATSEAL_REGISTRATION", value_enum, default_value_t = Registration::Open)]
    pub registration: Registration,

    /// Let clients connect without an account, as `{ name }` guests.
    #[arg(long, env = "CHATSEAL_ALLOW_GUESTS", default_value_t = false)]
    pub allow_guests: bool,

    /// `chat message`s one connection may send per second, sustained.
    #[arg(long, env = "CHATSEAL_RATE_PER_SEC", default_value_t = 20)]
    pub rate_per_sec: u32,

    /// How many `chat message`s one connection may send in a burst.
    #[arg(long, env = "CHATSEAL_RATE_BURST", default_value_t = 40)]
    pub rate_burst: u32,

    /// Most messages one `join` catch-up or history page returns.
    #[arg(long, env = "CHATSEAL_HISTORY_LIMIT", default_value_t = 500)]
    pub history_limit: u32,

    /// Longest wait for the database per store call, in milliseconds: a
    /// database that hangs turns into `UNAVAILABLE` after this, not when
    /// the hang ends.
    #[arg(long, env = "CHATSEAL_STORE_TIMEOUT_MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    pub store_timeout_ms: u64,

    /// Packets a socket may have queued for sending before it is
    /// disconnected as too slow (it then catches up with `since`).
    #[arg(long, env = "CHATSEAL_SOCKET_BUFFER", default_value_t = 4096)]
    pub socket_buffer: usize,

    /// Directory of the browser client's files (index.html, …).
    #[arg(long, env = "CHATSEAL_CLIENT_DIR")]
    pub client_dir: Option<PathBuf>,

    // Limits against floods (docs/operations.md, "Limits"). 0 = no cap
    // where a cap is a count.
    /// Open connections in total; 0 = the open-file limit less 256.
    #[arg(long, env = "CHATSEAL_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,

    /// Open connections per client address.
    #[arg(long, env = "CHATSEAL_MAX_CONNECTIONS_PER_IP", default_value_t = 512)]
    pub max_connections_per_ip: usize,

    /// Seconds a client has to send a request's head (and how long a
    /// keep-alive connection may idle between requests).
    #[arg(long, env = "CHATSEAL_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Engine.IO sessions opened but not yet connected to Socket.IO, in total.
    #[arg(long, env = "CHATSEAL_MAX_PENDING_SESSIONS", default_value_t = 1024)]
    pub max_pending_sessions: usize,

    /// Engine.IO sessions (pending or connected) per client address.
    #[arg(long, env = "CHATSEAL_MAX_SESSIONS_PER_IP", default_value_t = 512)]
    pub max_sessions_per_ip: usize,

    /// Seconds a new Engine.IO session has to connect to Socket.IO.
    #[arg(long, env = "CHATSEAL_CONNECT_TIMEOUT_SECS", default_value_t = 10)]
    pub connect_timeout_secs: u64,

    /// Password hashes (argon2id, 19 MiB each) computed at once; 0 = one per
    /// CPU core. Their memory is allocated once and reused.
    #[arg(long, env = "CHATSEAL_LOGIN_CONCURRENCY", default_value_t = 0)]
    pub login_concurrency: usize,

    /// Logins and registrations that may wait for a hashing slot; beyond
    /// it they are refused at once (503 UNAVAILABLE, Retry-After).
    #[arg(long, env = "CHATSEAL_LOGIN_QUEUE", default_value_t = 64)]
    pub login_queue: usize,

    /// Logins and registrations per second per client address, sustained.
    #[arg(long, env = "CHATSEAL_LOGIN_IP_PER_SEC", default_value_t = 0.5)]
    pub login_ip_per_sec: f64,

    /// Logins and registrations per client address in a burst.
    #[arg(long, env = "CHATSEAL_LOGIN_IP_BURST", default_value_t = 10)]
    pub login_ip_burst: u32,

    /// Logins per second per account name, sustained (any address).
    #[arg(long, env = "CHATSEAL_LOGIN_ACCOUNT_PER_SEC", default_value_t = 0.2)]
    pub login_account_per_sec: f64,

    /// Logins per account name in a burst.
    #[arg(long, env = "CHATSEAL_LOGIN_ACCOUNT_BURST", default_value_t = 5)]
    pub login_account_burst: u32,

    /// Rooms one socket may be in at once, `lobby` included.
    #[arg(long, env = "CHATSEAL_MAX_ROOMS_PER_SOCKET", default_value_t = 100)]
    pub max_rooms_per_socket: usize,

    /// `join`s one connection may send per second, sustained.
    #[arg(long, env = "CHATSEAL_JOIN_PER_SEC", default_value_t = 5)]
    pub join_per_sec: u32,

    /// `join`s one connection may send in a burst.
    #[arg(long, env = "CHATSEAL_JOIN_BURST", default_value_t = 20)]
    pub join_burst: u32,

    /// Largest `missed` of one `join` ack, in bytes of envelopes; a longer
    /// catch-up comes in pages (join again with the last `seq`).
    #[arg(long, env = "CHATSEAL_MAX_ACK_BYTES", default_value_t = 1024 * 1024)]
    pub max_ack_bytes: usize,

    /// `join`s with `since` (catch-ups) one connection may send per
    /// second, sustained; each returns at most --max-ack-bytes.
    #[arg(long, env = "CHATSEAL_CATCH_UP_PER_SEC", default_value_t = 2)]
    pub catch_up_per_sec: u32,

    /// Catch-ups one connection may send in a burst.
    #[arg(long, env = "CHATSEAL_CATCH_UP_BURST", default_value_t = 10)]
    pub catch_up_burst: u32,

    /// Cluster mode: seconds between sweeps that read every room's latest
    /// `seq` from the database (in between, only rooms with a gap are read).
    #[arg(long, env = "CHATSEAL_CLUSTER_SWEEP_SECS", default_value_t = 30)]
    pub cluster_sweep_secs: u64,

    /// Rotate the keyring by itself when the primary key is this old
    /// (`90d`, `12h`, …; once per cluster). Off by default.
    #[arg(long, env = "CHATSEAL_ROTATE_AFTER", value_parser = humantime::parse_duration)]
    pub rotate_after: Option<std::time::Duration>,

    /// Rotate the keyring by itself once the primary key has sealed this
    /// many times, counted by every server (0: never). The default, 2^30,
    /// is a quarter of the 2^32 seals random nonces allow per key.
    #[arg(long, env = "CHATSEAL_ROTATE_AFTER_SEALS", default_value_t = 1 << 30)]
    pub rotate_after_seals: u64,

    /// Tokens of an OpenID Connect identity provider (`--oidc-…`).
    #[command(flatten)]
    pub oidc: crate::oidc::OidcArgs,

    /// Log filter (RUST_LOG syntax).
    #[arg(long, global = true, env = "RUST_LOG", default_value = "info")]
    pub log: String,

    /// Log lines as text for people or JSON objects for log pipelines.
    #[arg(long, env = "CHATSEAL_LOG_FORMAT", value_enum, default_value_t = crate::logging::LogFormat::Text)]
    pub log_format: crate::logging::LogFormat,
}

/// `ip:port`, or `host:port` resolved now (IPv4 first: a container often
/// has no IPv6 loopback to bind).
fn resolve_listen(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs as _;
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {text:?} as host:port: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

impl Config {
    /// What can be checked without touching anything, so a flag that cannot
    /// work exits before the data directory, keyring or database is made.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.kek.validate()?;
        if let Some(secret) = &self.jwt_secret {
            crate::keys::check_jwt_secret(secret)?;
        }
        if self.redis_url.is_some() {
            let postgres = self
                .database_url
                .as_deref()
                .is_some_and(|url| url.starts_with("postgres:") || url.starts_with("postgresql:"));
            anyhow::ensure!(
                postgres,
                "REDIS_URL needs DATABASE_URL=postgres://…: servers of a cluster share one database"
            );
        }
        self.oidc.settings()?;
        if let Some(dir) = &self.client_dir {
            anyhow::ensure!(
                dir.join("index.html").is_file(),
                "--client-dir {}: no index.html there (build it with `npm run build:client` in js/)",
                dir.display()
            );
        }
        Ok(())
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("keyring_file", &self.keyring_file)
            .field("kek", &self.kek)
            .field(
                "service_token",
                &self.service_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "publish_token",
                &self.publish_token.as_ref().map(|_| "<redacted>"),
            )
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("registration", &self.registration)
            .field("allow_guests", &self.allow_guests)
            .field("rate_per_sec", &self.rate_per_sec)
            .field("rate_burst", &self.rate_burst)
            .field("rotate_after", &self.rotate_after)
            .field("rotate_after_seals", &self.rotate_after_seals)
            .field("oidc", &self.oidc)
            .finish_non_exhaustive()
    }
}

/// `--registration`: who may create accounts over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Registration {
    /// Anyone may register.
    #[default]
    Open,
    /// Registration needs an invitation code (`users invite`).
    Invite,
    /// No registration over HTTP: accounts come from `users add`.
    Closed,
}
