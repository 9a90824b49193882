//! The limits that keep one client (or many) from exhausting the server:
//! built once from the configuration, shared by the handlers. Each is listed
//! with its default in docs/operations.md, "Limits".

use std::sync::Arc;
use std::time::Duration;

use crate::chat::sessions::SessionCaps;
use crate::config::Config;
use crate::hashing::Hasher;
use crate::login_limit::{LoginLimit, LoginRates};
use crate::serve::ConnLimits;

/// Per-connection event rates: sustained per second, and burst.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub per_sec: u32,
    pub burst: u32,
}

/// Every abuse limit.
#[derive(Debug)]
pub struct Guards {
    pub hasher: Arc<Hasher>,
    pub login: LoginLimit,
    pub sessions: Arc<SessionCaps>,
    pub conn: ConnLimits,
    pub connect_timeout: Duration,
    pub max_rooms_per_socket: usize,
    pub join: Rate,
    pub catch_up: Rate,
    pub max_ack_bytes: usize,
    pub cluster_sweep: Duration,
}

/// A count of 0 means no cap (docs/operations.md, "Limits").
pub fn no_cap_if_zero(n: usize) -> usize {
    if n == 0 { usize::MAX } else { n }
}

impl Guards {
    pub fn from_config(c: &Config) -> Guards {
        Guards {
            hasher: Hasher::new(c.login_concurrency, c.login_queue),
            login: LoginLimit::new(LoginRates {
                ip_per_sec: c.login_ip_per_sec,
                ip_burst: c.login_ip_burst,
                account_per_sec: c.login_account_per_sec,
                account_burst: c.login_account_burst,
            }),
            sessions: Arc::new(SessionCaps::new(
                c.max_pending_sessions,
                c.max_sessions_per_ip,
            )),
            conn: ConnLimits {
                max_connections: c.max_connections,
                max_connections_per_ip: c.max_connections_per_ip,
                header_timeout: Duration::from_secs(c.header_timeout_secs.max(1)),
            },
            connect_timeout: Duration::from_secs(c.connect_timeout_secs.max(1)),
            max_rooms_per_socket: no_cap_if_zero(c.max_rooms_per_socket),
            join: Rate {
                per_sec: c.join_per_sec,
                burst: c.join_burst,
            },
            catch_up: Rate {
                per_sec: c.catch_up_per_sec,
                burst: c.catch_up_burst,
            },
            max_ack_bytes: c.max_ack_bytes.max(1),
            cluster_sweep: Duration::from_secs(c.cluster_sweep_secs.max(1)),
        }
    }
}

impl Default for Guards {
    /// The command line's defaults.
    fn default() -> Self {
        use clap::Parser as _;
        Guards::from_config(&Config::parse_from(["chatseal-server"]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn zero_rooms_per_socket_means_no_cap() {
        let c = Config::parse_from(["chatseal-server", "--max-rooms-per-socket", "0"]);
        assert_eq!(Guards::from_config(&c).max_rooms_per_socket, usize::MAX);
        let c = Config::parse_from(["chatseal-server", "--max-rooms-per-socket", "3"]);
        assert_eq!(Guards::from_config(&c).max_rooms_per_socket, 3);
    }
}
