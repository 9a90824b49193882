//! Tokens from an OpenID Connect identity provider, side by side with the
//! server's own HS256 accounts (docs/operations.md, "Single sign-on").
//!
//! A token whose (unverified) `iss` is the configured issuer is verified
//! here; every other token goes to [`crate::auth::Tokens`], which takes
//! HS256 with `iss` = `chatseal` only. So neither path can be reached with
//! the other's kind of token.
//!
//! Verification: the header's `kid` picks a key of the issuer's JWKS (never
//! a key the token brings or points to: `jwk`, `jku`, `x5u` and `x5c` are
//! not read), and that key's type fixes the algorithm (RSA → RS256, EC
//! P-256 → ES256, Ed25519 → EdDSA); the header's `alg` must be that one, so
//! it never chooses how to verify (`none`, or HS256 with a public key as
//! the secret, fail). `iss`, `aud` and `exp` are required and checked, `nbf`
//! when present; `crit` is refused (no extension is understood).
//!
//! Keys are fetched at start and again when the response's max-age runs
//! out ([`jwks::lifetime`]), in the background. A token with an unknown
//! `kid` fetches them at once, at most once per refetch interval; a `kid`
//! still unknown after a fetch is remembered until the next one (a
//! negative cache), so repeating it fetches nothing. A start without the
//! keys goes on: its tokens are `UNAVAILABLE` until they load (built-in
//! accounts and guests are not affected).

pub mod args;
pub mod jwks;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::Validation;
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Map, Value};

pub use args::{KeySource, OidcArgs, Settings};
use jwks::{FetchError, Key};

use crate::auth::{self, Verified};
use crate::error::Code;
use crate::store::{AccountState, Store};

/// Longer tokens are never read as this issuer's (IdP tokens with many
/// claims are a few KiB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// How far ahead of this server's clock a token's `nbf` may be: a token
/// the provider has just issued is accepted although the clocks differ.
pub const NBF_SKEW: Duration = Duration::from_secs(60);
/// Unknown `kid`s remembered between two fetches, at most.
const MAX_NEGATIVE: usize = 1024;
/// Retries of a failed background fetch: 1 s, doubling, up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Why a token from the provider was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("token expired")]
    Expired,
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The keys could not be fetched: try again later.
    #[error("the identity provider's keys are unavailable; try again shortly")]
    Unavailable,
}

impl Rejected {
    fn invalid(why: impl Into<String>) -> Rejected {
        Rejected::Invalid(why.into())
    }

    pub fn code(&self) -> Code {
        match self {
            Rejected::Expired | Rejected::Invalid(_) => Code::Unauthorized,
            Rejected::Unavailable => Code::Unavailable,
        }
    }
}

/// A verified token: the account name (prefix included), its `exp` and
/// its `iat` if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub name: String,
    pub expires_at: u64,
    pub issued_at: Option<u64>,
}

/// One fetched JWKS.
#[derive(Debug)]
struct KeySet {
    keys: HashMap<String, Key>,
    generation: u64,
}

/// When unknown `kid`s may fetch, and which are known to be unknown.
#[derive(Debug, Default)]
struct Gate {
    last_refetch: Option<Instant>,
    /// kid → the generation of the set it was missing from.
    negative: HashMap<String, u64>,
}

impl Gate {
    /// Whether `kid`, missing from the set of `generation`, may fetch now.
    /// Takes the turn when it may.
    fn may_fetch(&mut self, kid: &str, generation: u64, now: Instant, interval: Duration) -> bool {
        if self.negative.get(kid) == Some(&generation) {
            return false;
        }
        if self
            .last_refetch
            .is_some_and(|t| now.saturating_duration_since(t) < interval)
        {
            return false;
        }
        self.last_refetch = Some(now);
        true
    }

    /// `kid` is missing from the freshly fetched set of `generation`.
    fn remember_missing(&mut self, kid: &str, generation: u64) {
        if self.negative.len() >= MAX_NEGATIVE {
            self.negative.retain(|_, g| *g == generation);
            if self.negative.len() >= MAX_NEGATIVE {
                return;
            }
        }
        self.negative.insert(kid.to_owned(), generation);
    }
}

/// The provider's keys and the rules its tokens are checked by.
pub struct Oidc {
    settings: Settings,
    http: reqwest::Client,
    keys: RwLock<Option<Arc<KeySet>>>,
    generation: AtomicU64,
    gate: Mutex<Gate>,
    /// One fetch at a time; holds the JWKS URL once discovery found it.
    fetching: tokio::sync::Mutex<Option<Url>>,
    /// What the password column holds for this issuer's accounts.
    marker: String,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.settings.issuer)
            .field("audience", &self.settings.audience)
            .field("source", &self.settings.source)
            .finish_non_exhaustive()
    }
}

/// The password column of an account an identity provider's token made:
/// `oidc:` and the issuer. It is no PHC string, so no password logs in to
/// it, and it says which issuer's users the name belongs to.
pub const MARKER_PREFIX: &str = "oidc:";

#[derive(Deserialize)]
struct IssuerOnly {
    iss: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<serde::de::IgnoredAny>,
}

fn b64_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl Oidc {
    /// The verifier for `settings`; nothing is fetched until [`Oidc::start`].
    pub fn new(settings: Settings) -> Arc<Oidc> {
        Arc::new(Oidc {
            marker: format!("{MARKER_PREFIX}{}", settings.issuer),
            settings,
            http: jwks::client(),
            keys: RwLock::new(None),
            generation: AtomicU64::new(0),
            gate: Mutex::new(Gate::default()),
            fetching: tokio::sync::Mutex::new(None),
        })
    }

    /// From the command line: `None` when OIDC is off.
    pub fn from_args(args: &OidcArgs) -> anyhow::Result<Option<Arc<Oidc>>> {
        Ok(args.settings()?.map(Oidc::new))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Fetches the keys once (the start waits for it, at most the HTTP
    /// timeout) and keeps them fresh in the background while `self` lives.
    /// A failed fetch is logged and retried; the server starts anyway.
    pub async fn start(self: &Arc<Self>) {
        tracing::info!(
            issuer = %self.settings.issuer,
            audience = %self.settings.audience,
            name_claim = %self.settings.name_claim,
            "OIDC: accepting the issuer's tokens"
        );
        let first = self.refresh().await;
        if first.is_err() {
            tracing::error!(
                issuer = %self.settings.issuer,
                "OIDC: no keys yet; the issuer's tokens are refused UNAVAILABLE until they load \
                 (retrying)"
            );
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            let mut wait = first.unwrap_or(backoff);
            loop {
                tokio::time::sleep(wait).await;
                let Some(oidc) = weak.upgrade() else { return };
                wait = match oidc.refresh().await {
                    Ok(lifetime) => {
                        backoff = Duration::from_secs(1);
                        lifetime
                    }
                    Err(()) => {
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        backoff
                    }
                };
            }
        });
    }

    /// Whether the keys have been fetched (for `/healthz`).
    pub fn has_keys(&self) -> bool {
        self.snapshot().is_some()
    }

    fn snapshot(&self) -> Option<Arc<KeySet>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Fetches and installs the keys; their lifetime, or `Err` (logged).
    async fn refresh(&self) -> Result<Duration, ()> {
        let mut url = self.fetching.lock().await;
        self.fetch_locked(&mut url).await
    }

    /// A fetch, with the fetch lock held (`url`: the JWKS URL if known).
    async fn fetch_locked(&self, url: &mut Option<Url>) -> Result<Duration, ()> {
        match self.fetch(url).await {
            Ok(lifetime) => {
                metrics::counter!("chatseal_oidc_jwks_fetches_total", "outcome" => "ok")
                    .increment(1);
                Ok(lifetime)
            }
            Err(e) => {
                metrics::counter!("chatseal_oidc_jwks_fetches_total", "outcome" => "error")
                    .increment(1);
                tracing::warn!(error = %e, "OIDC: fetching the keys failed");
                Err(())
            }
        }
    }

    async fn fetch(&self, url: &mut Option<Url>) -> Result<Duration, FetchError> {
        let jwks_url = match (&self.settings.source, url.as_ref()) {
            (KeySource::Jwks(u), _) | (KeySource::Discovery(_), Some(u)) => u.clone(),
            (KeySource::Discovery(discovery), None) => {
                let (body, _) = jwks::get(&self.http, discovery).await?;
                let found = jwks::jwks_uri(&body, &self.settings.issuer)?;
                tracing::info!(jwks_uri = %found, "OIDC: discovery found the keys");
                *url = Some(found.clone());
                found
            }
        };
        let (body, headers) = jwks::get(&self.http, &jwks_url).await?;
        let (keys, skipped) = jwks::parse_set(&body)?;
        let lifetime = jwks::lifetime(&headers, self.settings.cache_min, self.settings.cache_max);
        self.install(keys, &skipped, lifetime);
        Ok(lifetime)
    }

    fn install(&self, keys: HashMap<String, Key>, skipped: &[String], lifetime: Duration) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        let previous = self.snapshot();
        let changed = previous.as_ref().is_none_or(|p| {
            let mut old: Vec<&str> = p.keys.keys().map(String::as_str).collect();
            old.sort_unstable();
            old != kids
        });
        // Said once per change of the key set, not at every fetch.
        for why in skipped {
            if changed {
                tracing::info!(why = %why, "OIDC: a JWK left out");
            } else {
                tracing::debug!(why = %why, "OIDC: a JWK left out");
            }
        }
        if changed {
            tracing::info!(
                kids = ?kids,
                left_out = skipped.len(),
                next_fetch_secs = lifetime.as_secs(),
                "OIDC: signing keys loaded"
            );
        }
        if keys.is_empty() {
            tracing::warn!(left_out = skipped.len(), "OIDC: the JWKS has no usable key");
        }
        metrics::gauge!("chatseal_oidc_keys").set(keys.len() as f64);
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) =
            Some(Arc::new(KeySet { keys, generation }));
        self.gate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .negative
            .retain(|_, g| *g >= generation);
    }

    /// Whether `token` claims to be from this issuer (unverified; it only
    /// picks which verifier refuses or accepts it).
    pub fn owns(&self, token: &str) -> bool {
        if token.len() > MAX_TOKEN_BYTES {
            return false;
        }
        let mut parts = token.split('.');
        let (Some(_), Some(payload), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        b64_json::<IssuerOnly>(payload)
            .and_then(|c| c.iss)
            .is_some_and(|iss| iss == self.settings.issuer)
    }

    /// The key set holding `kid`, fetching again if the gate allows.
    async fn set_with(&self, kid: &str) -> Result<Arc<KeySet>, Rejected> {
        let current = self.snapshot();
        if let Some(set) = &current
            && set.keys.contains_key(kid)
        {
            return Ok(Arc::clone(set));
        }
        let seen = current.as_ref().map_or(0, |s| s.generation);
        let unknown = || match &current {
            Some(_) => Rejected::invalid("unknown signing key (kid)"),
            None => Rejected::Unavailable,
        };
        let may = self
            .gate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .may_fetch(kid, seen, Instant::now(), self.settings.refetch_interval);
        if !may {
            return Err(unknown());
        }
        let fetched = {
            let mut url = self.fetching.lock().await;
            // Someone else's fetch may have finished while this one waited.
            if self.generation.load(Ordering::SeqCst) == seen {
                tracing::debug!(kid, "OIDC: unknown kid; fetching the keys");
                self.fetch_locked(&mut url).await.is_ok()
            } else {
                true
            }
        };
        match self.snapshot() {
            Some(set) if set.keys.contains_key(kid) => Ok(set),
            Some(set) if fetched => {
                self.gate
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remember_missing(kid, set.generation);
                Err(Rejected::invalid("unknown signing key (kid)"))
            }
            _ => Err(Rejected::Unavailable),
        }
    }

    /// Verifies a token of this issuer (see the module's doc).
    pub async fn verify(&self, token: &str) -> Result<Claimed, Rejected> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejected::invalid("too long"));
        }
        let header: RawHeader = token
            .split('.')
            .next()
            .and_then(b64_json)
            .ok_or_else(|| Rejected::invalid("malformed header"))?;
        if header.crit.is_some() {
            return Err(Rejected::invalid("crit: no extension is understood"));
        }
        let kid = header
            .kid
            .filter(|k| !k.is_empty() && k.len() <= jwks::MAX_KID_BYTES)
            .ok_or_else(|| Rejected::invalid("no kid naming a key of the issuer"))?;
        let set = self.set_with(&kid).await?;
        let key = &set.keys[&kid];
        if header.alg != jwks::alg_name(key.alg) {
            return Err(Rejected::invalid(format!(
                "alg {:?} is not its key's ({})",
                header.alg,
                jwks::alg_name(key.alg)
            )));
        }
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 0;
        validation.validate_nbf = false;
        let claims =
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation) {
                Ok(data) => data.claims,
                Err(e) => return Err(rejection(&e)),
            };
        let now = auth::unix_now().as_secs();
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or_else(|| Rejected::invalid("exp is not a whole number of seconds"))?;
        // As for the server's own tokens: not accepted on or after `exp`.
        if exp <= now {
            return Err(Rejected::Expired);
        }
        match claims.get("nbf") {
            None => {}
            Some(nbf) => match nbf.as_f64() {
                Some(nbf) if nbf <= (now + NBF_SKEW.as_secs()) as f64 => {}
                Some(_) => return Err(Rejected::invalid("not valid yet (nbf)")),
                None => return Err(Rejected::invalid("nbf is not a number")),
            },
        }
        let claim = &self.settings.name_claim;
        let value = claims.get(claim).and_then(Value::as_str).ok_or_else(|| {
            Rejected::invalid(format!("no {claim} claim (a string) to name the account"))
        })?;
        let name = format!("{}{value}", self.settings.name_prefix);
        auth::validate_username(&name)
            .map_err(|why| Rejected::invalid(format!("its {claim} is not a name here ({why})")))?;
        Ok(Claimed {
            name,
            expires_at: exp,
            issued_at: claims.get("iat").and_then(Value::as_u64),
        })
    }

    /// The account a token of this issuer speaks for: verified, its name
    /// admitted (see [`Oidc::admit`]), and the account neither disabled nor
    /// its tokens revoked since the token's `iat` (`chatseal-server users
    /// disable`, as for password accounts). The `Code` and text are the
    /// refusal's.
    pub async fn account_of(&self, store: &Store, token: &str) -> Result<Verified, (Code, String)> {
        let claimed = self.verify(token).await.map_err(|r| {
            tracing::debug!(why = %r, "OIDC: token refused");
            (r.code(), r.to_string())
        })?;
        let state = self.admit(store, &claimed.name).await?;
        let refused = |m: &str| Err((Code::Unauthorized, m.to_owned()));
        if state.disabled {
            return refused("this account is disabled");
        }
        if state.tokens_after > 0 && claimed.issued_at.unwrap_or(0) <= state.tokens_after {
            return refused("this session was revoked: sign in again");
        }
        Ok(Verified {
            username: claimed.name,
            expires_at: claimed.expires_at,
            issued_at: claimed.issued_at,
        })
    }

    /// A name from this issuer becomes an account the first time it is
    /// used (a row in `chat_users` with [`MARKER_PREFIX`] and the issuer
    /// for its password), so it can be invited, and no one can register it
    /// or use it as a guest. A name taken by a password account (in any
    /// case) or another issuer's user is refused, unless linking is on and
    /// it is a password account of exactly this name. Returns the account's
    /// state (disabled, tokens revoked).
    async fn admit(&self, store: &Store, name: &str) -> Result<AccountState, (Code, String)> {
        if let Some((stored, state)) = store.account_with_state(name).await.map_err(store_down)? {
            return self.may_use(name, &stored).map(|()| state);
        }
        let now = auth::unix_now().as_millis() as i64;
        if store
            .create_user(name, &self.marker, now)
            .await
            .map_err(store_down)?
        {
            tracing::info!(user = %name, "OIDC: account made for the identity provider's user");
            return Ok(AccountState {
                disabled: false,
                tokens_after: 0,
            });
        }
        // Made meanwhile by another request, or taken in another case.
        match store.account_with_state(name).await.map_err(store_down)? {
            Some((stored, state)) => self.may_use(name, &stored).map(|()| state),
            None => Err((
                Code::Forbidden,
                format!("the name {name} is taken by another account (names are one in any case)"),
            )),
        }
    }

    fn may_use(&self, name: &str, stored: &str) -> Result<(), (Code, String)> {
        if stored == self.marker {
            Ok(())
        } else if stored.starts_with(MARKER_PREFIX) {
            Err((
                Code::Forbidden,
                format!("the name {name} belongs to a user of another identity provider"),
            ))
        } else if self.settings.link_accounts {
            Ok(())
        } else {
            Err((
                Code::Forbidden,
                format!("the name {name} belongs to a password account of this server"),
            ))
        }
    }

    /// Whether `/api/register` may make `name`: not with the name prefix
    /// of the provider's users (in any case).
    pub fn may_register(&self, name: &str) -> Result<(), String> {
        let prefix = &self.settings.name_prefix;
        if !prefix.is_empty()
            && name.len() >= prefix.len()
            && name.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        {
            return Err(format!(
                "names starting with {prefix} are for the identity provider's users"
            ));
        }
        Ok(())
    }
}

fn store_down(e: crate::store::StoreError) -> (Code, String) {
    tracing::warn!(error = %e, "OIDC: store unavailable");
    (Code::Unavailable, "try again shortly".to_owned())
}

fn rejection(e: &jsonwebtoken::errors::Error) -> Rejected {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => Rejected::Expired,
        ErrorKind::InvalidSignature => Rejected::invalid("bad signature"),
        ErrorKind::InvalidAlgorithm => Rejected::invalid("wrong algorithm for its key"),
        ErrorKind::InvalidIssuer => Rejected::invalid("wrong issuer"),
        ErrorKind::InvalidAudience => Rejected::invalid("wrong audience"),
        ErrorKind::MissingRequiredClaim(claim) => Rejected::invalid(format!("no {claim} claim")),
        _ => Rejected::invalid("malformed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_kid_fetches_once_per_interval_and_a_missing_one_not_again() {
        let mut gate = Gate::default();
        let t0 = Instant::now();
        let interval = Duration::from_secs(10);
        assert!(gate.may_fetch("a", 1, t0, interval));
        gate.remember_missing("a", 2);
        // Within the interval nothing fetches, known-missing or not.
        assert!(!gate.may_fetch("b", 2, t0 + Duration::from_secs(5), interval));
        // After it, a new kid may; the one missing from this set may not.
        let later = t0 + Duration::from_secs(11);
        assert!(!gate.may_fetch("a", 2, later, interval));
        assert!(gate.may_fetch("b", 2, later, interval));
        // A newer set (fetched in the background) forgets what was missing.
        let much_later = t0 + Duration::from_secs(30);
        assert!(gate.may_fetch("a", 3, much_later, interval));
    }

    #[test]
    fn the_negative_cache_is_bounded() {
        let mut gate = Gate::default();
        for i in 0..MAX_NEGATIVE * 2 {
            gate.remember_missing(&format!("k{i}"), 1);
        }
        assert_eq!(gate.negative.len(), MAX_NEGATIVE);
        // A newer generation makes room by dropping the older entries.
        gate.remember_missing("new", 2);
        assert_eq!(gate.negative.len(), 1);
    }

    fn oidc(prefix: &str) -> Arc<Oidc> {
        let args = OidcArgs {
            oidc_issuer: Some("https://id.example.com".into()),
            oidc_audience: Some("chat".into()),
            oidc_jwks_url: Some("https://id.example.com/keys".into()),
            oidc_name_claim: "sub".into(),
            oidc_name_prefix: prefix.into(),
            oidc_refetch_interval: Duration::from_secs(10),
            oidc_cache_min: Duration::from_secs(60),
            oidc_cache_max: Duration::from_secs(86400),
            ..OidcArgs::default()
        };
        Oidc::from_args(&args).unwrap().unwrap()
    }

    #[test]
    fn only_tokens_naming_the_issuer_are_its() {
        let o = oidc("");
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = |claims: &str| format!("{}.{}.sig", b64(r#"{"alg":"RS256"}"#), b64(claims));
        assert!(o.owns(&token(r#"{"iss":"https://id.example.com"}"#)));
        assert!(!o.owns(&token(r#"{"iss":"https://id.example.com/"}"#)));
        assert!(!o.owns(&token(r#"{"iss":"chatseal"}"#)));
        assert!(!o.owns(&token(r#"{"iss":["https://id.example.com"]}"#)));
        assert!(!o.owns(&token("{}")));
        assert!(!o.owns("a.b"));
        let padded = format!("{}.{}", token(r#"{"iss":"https://id.example.com"}"#), "x");
        assert!(!o.owns(&padded));
        let long = token(&format!(
            r#"{{"iss":"https://id.example.com","pad":"{}"}}"#,
            "x".repeat(MAX_TOKEN_BYTES)
        ));
        assert!(!o.owns(&long));
    }

    #[test]
    fn registration_keeps_off_the_prefix() {
        assert!(oidc("").may_register("sso.ann").is_ok());
        let o = oidc("sso.");
        assert!(o.may_register("sso.ann").is_err());
        assert!(o.may_register("SSO.ann").is_err());
        assert!(o.may_register("sso").is_ok());
        assert!(o.may_register("ann").is_ok());
    }
}
