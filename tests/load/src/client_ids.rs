//! The `clientId` each chat message carries (`--client-ids`).
//!
//! The server indexes `(room, sender, clientId)` to answer resends, so the
//! shape of the ids decides where each insert lands in that index: random
//! ids (UUID v4, what the SDK sent until issue 18) put every message in a
//! random page, time-ordered ones (UUID v7, what it sends now) append.
//! docs/benchmarks.md ("clientIds") has the figures of the three modes.

/// Which ids the senders put on their messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientIds {
    /// None: the server does no resend look-up (the suite's default, as in
    /// every earlier run, and what the plain relay is compared on).
    None,
    /// UUID v4 shaped: 122 random bits.
    Random,
    /// UUID v7 shaped: Unix milliseconds, then random bits.
    Ordered,
}

impl ClientIds {
    /// The id of message `seq` of client `client`, or none.
    pub fn make(self, client: usize, seq: u64) -> Option<String> {
        // Distinct per (client, seq); the bits need not be secret, only
        // spread like random ones, and a syscall per message would load
        // the machine the server shares.
        let bits = mix(((client as u64) << 40) ^ seq ^ seed());
        let mut random = [0u8; 16];
        random[..8].copy_from_slice(&bits.to_be_bytes());
        random[8..].copy_from_slice(&mix(bits).to_be_bytes());
        let id = match self {
            ClientIds::None => return None,
            ClientIds::Random => uuid::Builder::from_random_bytes(random),
            ClientIds::Ordered => {
                let ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let tail: &[u8; 10] = random[..10].try_into().expect("10 bytes");
                uuid::Builder::from_unix_timestamp_millis(ms, tail)
            }
        };
        Some(id.into_uuid().to_string())
    }
}

/// One value per process, so two runs against one store do not collide.
fn seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        mix(t ^ u64::from(std::process::id()))
    })
}

/// SplitMix64's finalizer: spreads a counter over all 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_uuid_shape_and_order() {
        assert_eq!(ClientIds::None.make(1, 1), None);
        let v4 = ClientIds::Random.make(1, 1).unwrap();
        let v7 = ClientIds::Ordered.make(1, 1).unwrap();
        for (id, version) in [(&v4, '4'), (&v7, '7')] {
            assert_eq!(id.len(), 36);
            assert_eq!(id.chars().nth(14), Some(version), "{id}");
            assert!(
                matches!(id.chars().nth(19), Some('8'..='9' | 'a'..='b')),
                "{id}"
            );
        }
        // Distinct per message and per client.
        let ids: std::collections::HashSet<_> = (0..2)
            .flat_map(|c| (0..1000).map(move |s| ClientIds::Random.make(c, s).unwrap()))
            .collect();
        assert_eq!(ids.len(), 2000);
        // Ordered ids start with the time: one made later sorts after.
        let first = ClientIds::Ordered.make(3, 9).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(ClientIds::Ordered.make(3, 1).unwrap() > first);
    }
}
