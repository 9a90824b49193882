//! Configuration: every option is a flag and an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

/// chatseal's chat server.
#[derive(clap::Parser, Clone)]
#[command(name = "chatseal-server", version, about)]
pub struct Config {
    /// Address to listen on. Loopback by default; the /encrypt and /decrypt
    /// endpoints need a service token on any other address.
    #[arg(long, env = "CHATSEAL_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Directory for the embedded database and the generated dev keyring.
    #[arg(long, env = "CHATSEAL_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Keyring file (JSON, mode 0600). Default: <data-dir>/keyring.json,
    /// created on first start.
    #[arg(long, env = "CHATSEAL_KEYRING_FILE")]
    pub keyring_file: Option<PathBuf>,

    /// Name of the environment variable that holds the keyring (JSON or
    /// base64 of it). Takes precedence over files when set.
    #[arg(long, default_value = "CHATSEAL_KEYRING")]
    pub keyring_env: String,

    /// Bearer token that /encrypt and /decrypt require. Without one they
    /// are open only when listening on loopback.
    #[arg(long, env = "CHATSEAL_SERVICE_TOKEN", hide_env_values = true)]
    pub service_token: Option<String>,

    /// Largest message text, in bytes.
    #[arg(long, env = "CHATSEAL_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,

    /// Largest request body or Socket.IO payload, in bytes.
    #[arg(long, env = "CHATSEAL_MAX_PAYLOAD_BYTES", default_value_t = 128 * 1024)]
    pub max_payload_bytes: usize,

    /// Database: `sqlite://path` or `postgres://…`. Default: SQLite in
    /// <data-dir>/chatseal.db.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
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

    /// Log filter (RUST_LOG syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("keyring_file", &self.keyring_file)
            .field(
                "service_token",
                &self.service_token.as_ref().map(|_| "<redacted>"),
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
            .field("allow_guests", &self.allow_guests)
            .field("rate_per_sec", &self.rate_per_sec)
            .field("rate_burst", &self.rate_burst)
            .finish_non_exhaustive()
    }
}
