//! Counting what each client address holds (connections, Engine.IO
//! sessions), with a cap: a [`Slot`] is taken before the resource is made
//! and given back when it is dropped, so a count can never leak.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts per address, and in total, against two caps.
#[derive(Debug)]
pub struct PerIp {
    what: &'static str,
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Why a slot was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    #[error("the server holds as many {0} as it allows")]
    Total(&'static str),
    #[error("this address holds as many {0} as it may")]
    PerIp(&'static str),
}

impl PerIp {
    /// `what` names the resource in errors (`"connections"`). A cap of 0
    /// means no cap.
    pub fn new(what: &'static str, max_total: usize, max_per_ip: usize) -> Arc<PerIp> {
        Arc::new(PerIp {
            what,
            max_total: if max_total == 0 {
                usize::MAX
            } else {
                max_total
            },
            max_per_ip: if max_per_ip == 0 {
                usize::MAX
            } else {
                max_per_ip
            },
            counts: Mutex::new(Counts::default()),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one slot for `ip` (counted under its
    /// [`crate::client_key::client_key`]), or says which cap is reached.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Full> {
        let ip = crate::client_key::client_key(ip);
        let mut counts = self.counts();
        if counts.total >= self.max_total {
            return Err(Full::Total(self.what));
        }
        let n = counts.by_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(Full::PerIp(self.what));
        }
        *n += 1;
        counts.total += 1;
        Ok(Slot {
            owner: Arc::clone(self),
            ip,
        })
    }

    /// Slots held now, in total.
    pub fn total(&self) -> usize {
        self.counts().total
    }

    fn give_back(&self, ip: IpAddr) {
        let mut counts = self.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                // Addresses that hold nothing cost nothing.
                counts.by_ip.remove(&ip);
            }
        }
    }
}

/// One counted resource; given back on drop.
#[derive(Debug)]
pub struct Slot {
    owner: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.owner.give_back(self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_in_total_and_gives_back_on_drop() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        let caps = PerIp::new("things", 3, 2);
        let a1 = caps.take(a).unwrap();
        let _a2 = caps.take(a).unwrap();
        assert_eq!(caps.take(a).unwrap_err(), Full::PerIp("things"));
        let _b1 = caps.take(b).unwrap();
        assert_eq!(caps.take(c).unwrap_err(), Full::Total("things"));
        drop(a1);
        assert_eq!(caps.total(), 2);
        let _c1 = caps.take(c).unwrap();
        assert_eq!(caps.counts().by_ip.len(), 3);
    }

    #[test]
    fn one_ipv6_64_is_one_address() {
        let caps = PerIp::new("things", 0, 1);
        let _a = caps.take("2001:db8:1:2::1".parse().unwrap()).unwrap();
        let other: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(caps.take(other).unwrap_err(), Full::PerIp("things"));
        let _b = caps.take("2001:db8:1:3::1".parse().unwrap()).unwrap();
        let _c = caps.take("10.0.0.1".parse().unwrap()).unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(caps.take(mapped).unwrap_err(), Full::PerIp("things"));
    }

    #[test]
    fn zero_means_no_cap() {
        let caps = PerIp::new("things", 0, 0);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let slots: Vec<_> = (0..1000).map(|_| caps.take(ip).unwrap()).collect();
        assert_eq!(caps.total(), 1000);
        drop(slots);
        assert!(caps.counts().by_ip.is_empty());
    }
}
