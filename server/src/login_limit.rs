//! Throttling logins and registrations, after Synapse's `rc_login`: a
//! token bucket per client address and one per account name (a sustained
//! rate and a burst), checked before any password is hashed. Over either,
//! the answer is 429 `RATE_LIMITED` with `Retry-After`.
//!
//! Every account name is throttled alike, whether it exists or not (no
//! difference to tell them apart). The buckets are in memory only while
//! they matter: every minute, buckets back to full are dropped, so a flood
//! of made-up names costs memory for a minute at most, bounded by the
//! per-address rate.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The rates (flags in [`crate::config`]).
#[derive(Debug, Clone, Copy)]
pub struct LoginRates {
    pub ip_per_sec: f64,
    pub ip_burst: u32,
    pub account_per_sec: f64,
    pub account_burst: u32,
}

impl Default for LoginRates {
    fn default() -> Self {
        LoginRates {
            ip_per_sec: 0.5,
            ip_burst: 10,
            account_per_sec: 0.2,
            account_burst: 5,
        }
    }
}

/// Over a limit: retry after this many seconds (rounded up, at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

/// The login throttle.
#[derive(Debug)]
pub struct LoginLimit {
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    by_account: DefaultKeyedRateLimiter<String>,
    last_sweep: Mutex<Instant>,
}

fn quota(per_sec: f64, burst: u32) -> Quota {
    // A rate of 0 or less (or NaN) means no throttle, as a cap of 0 does
    // elsewhere: a huge rate.
    let period = if per_sec.is_finite() && per_sec > 0.0 {
        Duration::from_secs_f64((1.0 / per_sec).min(86_400.0))
    } else {
        Duration::from_nanos(1)
    };
    let period = period.max(Duration::from_nanos(1));
    Quota::with_period(period)
        .expect("a non-zero period")
        .allow_burst(NonZeroU32::new(burst.max(1)).expect("at least 1"))
}

/// How often buckets back to full are forgotten.
const SWEEP: Duration = Duration::from_secs(60);

impl LoginLimit {
    pub fn new(rates: LoginRates) -> LoginLimit {
        LoginLimit {
            by_ip: RateLimiter::keyed(quota(rates.ip_per_sec, rates.ip_burst)),
            by_account: RateLimiter::keyed(quota(rates.account_per_sec, rates.account_burst)),
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    /// Takes one attempt for `ip` (and for `account`, a login's name) or
    /// says when to retry. Names outside the name rules share one bucket.
    pub fn check(&self, ip: IpAddr, account: Option<&str>) -> Result<(), RetryAfter> {
        self.sweep();
        let clock = DefaultClock::default();
        let wait = |not_until: governor::NotUntil<_>| {
            RetryAfter(
                not_until
                    .wait_time_from(clock.now())
                    .as_secs_f64()
                    .ceil()
                    .max(1.0) as u64,
            )
        };
        self.by_ip.check_key(&ip).map_err(wait)?;
        if let Some(name) = account {
            let key = if crate::auth::validate_username(name).is_ok() {
                name.to_ascii_lowercase()
            } else {
                String::new()
            };
            self.by_account.check_key(&key).map_err(wait)?;
        }
        Ok(())
    }

    fn sweep(&self) {
        let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() < SWEEP {
            return;
        }
        *last = Instant::now();
        drop(last);
        self.by_ip.retain_recent();
        self.by_ip.shrink_to_fit();
        self.by_account.retain_recent();
        self.by_account.shrink_to_fit();
    }

    /// Buckets held now (addresses, names).
    pub fn len(&self) -> (usize, usize) {
        (self.by_ip.len(), self.by_account.len())
    }
}

impl Default for LoginLimit {
    fn default() -> Self {
        LoginLimit::new(LoginRates::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_and_per_account_buckets() {
        let limit = LoginLimit::new(LoginRates {
            ip_per_sec: 0.1,
            ip_burst: 3,
            account_per_sec: 0.1,
            account_burst: 2,
        });
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        limit.check(a, Some("ann")).unwrap();
        limit.check(a, Some("bob")).unwrap();
        limit.check(a, Some("cy")).unwrap();
        let RetryAfter(secs) = limit.check(a, Some("dee")).unwrap_err();
        assert!((1..=10).contains(&secs), "{secs}");
        // Another address, but ann's name is spent after two (any case).
        limit.check(b, Some("ANN")).unwrap();
        assert!(limit.check(b, Some("Ann")).is_err());
        // "dee" was refused by its address first: no bucket made for it.
        assert_eq!(limit.len(), (2, 3));
    }
}
