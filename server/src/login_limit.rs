//! Throttling logins and registrations, after Synapse's `rc_login`: a
//! token bucket per client address, charged for every attempt, and one
//! per account name charged for failed attempts only (Synapse's
//! `failed_attempts`), both checked before any password is hashed. Over
//! either, the answer is 429 `RATE_LIMITED` with `Retry-After`.
//!
//! The account bucket is charged only once the password is known to be
//! wrong: charged for every attempt, anyone at the allowed rate from any
//! address would keep its owner out for good. Only guessing beyond the
//! rate locks an account, as guessing is what it guards against.
//!
//! Every account name is throttled alike, whether it exists or not (no
//! difference to tell them apart). The buckets are in memory only while
//! they matter: every minute, buckets back to full are dropped, so a flood
//! of made-up names costs memory for a minute at most, bounded by the
//! per-address rate.

use std::collections::HashMap;
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
    by_account: Failures,
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
            by_account: Failures::new(rates.account_per_sec, rates.account_burst),
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    /// Takes one attempt for `ip`, and checks that `account` (a login's
    /// name) has not failed too often, or says when to retry. The account
    /// is charged only by [`LoginLimit::failed`].
    pub fn check(&self, ip: IpAddr, account: Option<&str>) -> Result<(), RetryAfter> {
        self.sweep();
        let clock = DefaultClock::default();
        self.by_ip
            .check_key(&crate::client_key::client_key(ip))
            .map_err(|not_until| retry_after(not_until.wait_time_from(clock.now())))?;
        if let Some(name) = account {
            self.by_account.check(&account_key(name), Instant::now())?;
        }
        Ok(())
    }

    /// Charges `account` for a wrong password.
    pub fn failed(&self, account: &str) {
        self.by_account.charge(account_key(account), Instant::now());
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
        self.by_account.forget_full(Instant::now());
    }

    /// Buckets held now (addresses, names).
    pub fn len(&self) -> (usize, usize) {
        (self.by_ip.len(), self.by_account.len())
    }
}

/// Names outside the name rules share one bucket; case does not count.
fn account_key(name: &str) -> String {
    if crate::auth::validate_username(name).is_ok() {
        name.to_ascii_lowercase()
    } else {
        String::new()
    }
}

fn retry_after(wait: Duration) -> RetryAfter {
    RetryAfter(wait.as_secs_f64().ceil().max(1.0) as u64)
}

/// Failed attempts per account name, as a GCRA bucket (the algorithm
/// governor uses) kept by hand, because the check before hashing must
/// look without taking: governor's `check_key` always takes a token.
#[derive(Debug)]
struct Failures {
    /// Time per token.
    period: Duration,
    /// How long before its bucket is full again an attempt is admitted:
    /// `(burst - 1)` periods.
    tolerance: Duration,
    /// Per name, the time at which its bucket is full again.
    full_at: Mutex<HashMap<String, Instant>>,
}

impl Failures {
    fn new(per_sec: f64, burst: u32) -> Failures {
        // A rate of 0 or less (or NaN) means no throttle, as in `quota`.
        let period = if per_sec.is_finite() && per_sec > 0.0 {
            Duration::from_secs_f64((1.0 / per_sec).min(86_400.0))
        } else {
            Duration::ZERO
        };
        Failures {
            period,
            tolerance: period * burst.max(1).saturating_sub(1),
            full_at: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.full_at.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `key` has a token left, without taking it.
    fn check(&self, key: &str, now: Instant) -> Result<(), RetryAfter> {
        let Some(&full_at) = self.map().get(key) else {
            return Ok(());
        };
        // GCRA: admitted from `tolerance` before the bucket is full.
        let from = full_at.checked_sub(self.tolerance).unwrap_or(now);
        if now >= from {
            Ok(())
        } else {
            Err(retry_after(from - now))
        }
    }

    /// Takes a token from `key` (its bucket may go past empty: the
    /// failures were real).
    fn charge(&self, key: String, now: Instant) {
        if self.period.is_zero() {
            return;
        }
        let mut map = self.map();
        let full_at = map.entry(key).or_insert(now);
        *full_at = (*full_at).max(now) + self.period;
    }

    /// Drops the buckets back to full.
    fn forget_full(&self, now: Instant) {
        let mut map = self.map();
        map.retain(|_, full_at| *full_at > now);
        map.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.map().len()
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

    fn limit(account_burst: u32) -> LoginLimit {
        LoginLimit::new(LoginRates {
            ip_per_sec: 0.1,
            ip_burst: 3,
            account_per_sec: 0.1,
            account_burst,
        })
    }

    #[test]
    fn per_address_buckets() {
        let limit = limit(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        limit.check(a, Some("ann")).unwrap();
        limit.check(a, Some("bob")).unwrap();
        limit.check(a, None).unwrap();
        let RetryAfter(secs) = limit.check(a, Some("dee")).unwrap_err();
        assert!((1..=10).contains(&secs), "{secs}");
    }

    #[test]
    fn an_account_is_charged_only_for_wrong_passwords() {
        let limit = limit(2);
        let owner: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        // Someone else tries ann's name, within the rate...
        limit.check(other, Some("ann")).unwrap();
        limit.failed("ann");
        // ...and ann still logs in, as often as she likes.
        for _ in 0..2 {
            limit.check(owner, Some("ann")).unwrap();
        }
        // Guessing beyond the rate locks the name (any case), whatever
        // the address.
        let third: IpAddr = "10.0.0.3".parse().unwrap();
        limit.check(third, Some("ANN")).unwrap();
        limit.failed("ANN");
        let RetryAfter(secs) = limit.check(third, Some("Ann")).unwrap_err();
        assert!((1..=10).contains(&secs), "{secs}");
        assert!(limit.check(owner, Some("ann")).is_err());
        // Another name is not touched.
        limit.check(other, Some("bob")).unwrap();
        assert_eq!(limit.len(), (3, 1));
    }

    #[test]
    fn an_ipv6_64_shares_one_address_bucket() {
        let limit = limit(2);
        for i in 1..=3 {
            let ip: IpAddr = format!("2001:db8::{i}").parse().unwrap();
            limit.check(ip, None).unwrap();
        }
        let ip: IpAddr = "2001:db8::ffff:4".parse().unwrap();
        assert!(limit.check(ip, None).is_err());
    }
}
