//! The `--oidc-*` options (flattened into [`crate::Config`]) and what can be
//! checked about them before anything is fetched.

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use reqwest::Url;

/// Accepting tokens from an OpenID Connect identity provider
/// (docs/operations.md, "Single sign-on (OIDC)").
#[derive(clap::Args, Clone, Debug, Default)]
pub struct OidcArgs {
    /// Also accept tokens from this OpenID Connect issuer: its `iss`,
    /// compared exactly. Off when unset.
    #[arg(long, env = "CHATSEAL_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// The `aud` the issuer's tokens must name (the client id, or API
    /// audience, registered for chatseal at the provider). Required with
    /// --oidc-issuer.
    #[arg(long, env = "CHATSEAL_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,

    /// The issuer's signing keys (a JWKS). Default: the `jwks_uri` of
    /// <issuer>/.well-known/openid-configuration. https, or http to a
    /// loopback address.
    #[arg(long, env = "CHATSEAL_OIDC_JWKS_URL")]
    pub oidc_jwks_url: Option<String>,

    /// The claim that names the account. `sub` is stable and unique per
    /// issuer; `preferred_username` only where the provider keeps it so.
    #[arg(long, env = "CHATSEAL_OIDC_NAME_CLAIM", default_value = "sub")]
    pub oidc_name_claim: String,

    /// Put before every name from the provider (`sso.` makes `sso.ann`);
    /// registering a name with it is then refused.
    #[arg(long, env = "CHATSEAL_OIDC_NAME_PREFIX", default_value = "")]
    pub oidc_name_prefix: String,

    /// Let the provider's user `ann` speak for the password account `ann`
    /// of this server (off: such a token is refused).
    #[arg(long, env = "CHATSEAL_OIDC_LINK_ACCOUNTS", default_value_t = false)]
    pub oidc_link_accounts: bool,

    /// A token signed with a key the server has not seen fetches the JWKS
    /// again, at most once per this interval.
    #[arg(long, env = "CHATSEAL_OIDC_REFETCH_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub oidc_refetch_interval: Duration,

    /// Keys are fetched again when the JWKS response's Cache-Control
    /// max-age runs out (5 min without one), but no sooner than this...
    #[arg(long, env = "CHATSEAL_OIDC_CACHE_MIN", default_value = "60s", value_parser = humantime::parse_duration)]
    pub oidc_cache_min: Duration,

    /// ...and no later than this.
    #[arg(long, env = "CHATSEAL_OIDC_CACHE_MAX", default_value = "24h", value_parser = humantime::parse_duration)]
    pub oidc_cache_max: Duration,
}

/// What the server fetches from: a JWKS URL, or discovery at the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Jwks(Url),
    Discovery(Url),
}

/// The checked options.
#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: String,
    pub audience: String,
    pub source: KeySource,
    pub name_claim: String,
    pub name_prefix: String,
    pub link_accounts: bool,
    pub refetch_interval: Duration,
    pub cache_min: Duration,
    pub cache_max: Duration,
}

/// The longest issuer accepted (it is compared with every token's `iss`).
const MAX_ISSUER_BYTES: usize = 1024;

impl OidcArgs {
    /// `None` when OIDC is off; an error names the option that cannot work.
    pub fn settings(&self) -> anyhow::Result<Option<Settings>> {
        let Some(issuer) = self.oidc_issuer.clone() else {
            ensure!(
                self.oidc_audience.is_none() && self.oidc_jwks_url.is_none(),
                "CHATSEAL_OIDC_AUDIENCE and CHATSEAL_OIDC_JWKS_URL need CHATSEAL_OIDC_ISSUER"
            );
            return Ok(None);
        };
        ensure!(
            !issuer.is_empty() && issuer.len() <= MAX_ISSUER_BYTES,
            "CHATSEAL_OIDC_ISSUER is 1 to {MAX_ISSUER_BYTES} bytes"
        );
        ensure!(
            issuer != crate::auth::ISSUER,
            "CHATSEAL_OIDC_ISSUER {issuer:?} is the issuer of this server's own tokens"
        );
        let audience = self
            .oidc_audience
            .clone()
            .filter(|a| !a.is_empty())
            .context(
                "CHATSEAL_OIDC_ISSUER needs CHATSEAL_OIDC_AUDIENCE (the client id chatseal has at \
                 the provider): without it, a token the provider made for any other application \
                 would be accepted",
            )?;
        let source = match &self.oidc_jwks_url {
            Some(url) => KeySource::Jwks(fetchable(url).context("CHATSEAL_OIDC_JWKS_URL")?),
            None => {
                let base = issuer.trim_end_matches('/');
                let url = format!("{base}/.well-known/openid-configuration");
                KeySource::Discovery(fetchable(&url).context(
                    "without CHATSEAL_OIDC_JWKS_URL the keys are found by discovery at the \
                     issuer, so CHATSEAL_OIDC_ISSUER must be its URL",
                )?)
            }
        };
        let claim = &self.oidc_name_claim;
        ensure!(
            !claim.is_empty() && claim.len() <= 256,
            "CHATSEAL_OIDC_NAME_CLAIM is 1 to 256 bytes"
        );
        let prefix = &self.oidc_name_prefix;
        if !prefix.is_empty() {
            ensure!(
                prefix.len() < 32 && crate::auth::validate_username(prefix).is_ok(),
                "CHATSEAL_OIDC_NAME_PREFIX {prefix:?}: up to 31 of A–Z a–z 0–9 _ . - \
                 (it is part of every name)"
            );
        }
        ensure!(
            self.oidc_refetch_interval >= Duration::from_secs(1),
            "CHATSEAL_OIDC_REFETCH_INTERVAL is at least 1s"
        );
        ensure!(
            self.oidc_cache_min >= Duration::from_secs(1)
                && self.oidc_cache_min <= self.oidc_cache_max,
            "CHATSEAL_OIDC_CACHE_MIN is at least 1s and at most CHATSEAL_OIDC_CACHE_MAX"
        );
        Ok(Some(Settings {
            issuer,
            audience,
            source,
            name_claim: claim.clone(),
            name_prefix: prefix.clone(),
            link_accounts: self.oidc_link_accounts,
            refetch_interval: self.oidc_refetch_interval,
            cache_min: self.oidc_cache_min,
            cache_max: self.oidc_cache_max,
        }))
    }
}

/// A URL the server may fetch keys from: https, or http to a loopback
/// address (a sidecar, a test). Plain http elsewhere would let anyone on
/// the path replace the keys.
pub fn fetchable(text: &str) -> anyhow::Result<Url> {
    let url = Url::parse(text).with_context(|| format!("{text:?} is not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            bail!("{text:?}: keys are fetched over https (http only from a loopback address)")
        }
        other => bail!("{text:?}: {other}: is not https"),
    }
    ensure!(url.host().is_some(), "{text:?} has no host");
    ensure!(
        url.username().is_empty() && url.password().is_none(),
        "{text:?}: no credentials in the URL"
    );
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(issuer: &str) -> OidcArgs {
        OidcArgs {
            oidc_issuer: Some(issuer.into()),
            oidc_audience: Some("chat".into()),
            oidc_name_claim: "sub".into(),
            oidc_refetch_interval: Duration::from_secs(10),
            oidc_cache_min: Duration::from_secs(60),
            oidc_cache_max: Duration::from_secs(86400),
            ..OidcArgs::default()
        }
    }

    fn error(a: &OidcArgs) -> String {
        format!("{:#}", a.settings().unwrap_err())
    }

    #[test]
    fn off_without_an_issuer() {
        assert!(OidcArgs::default().settings().unwrap().is_none());
        let orphan = OidcArgs {
            oidc_audience: Some("chat".into()),
            ..OidcArgs::default()
        };
        assert!(error(&orphan).contains("need CHATSEAL_OIDC_ISSUER"));
    }

    #[test]
    fn discovery_at_the_issuer_by_default() {
        let s = args("https://id.example.com/realms/chat/")
            .settings()
            .unwrap()
            .unwrap();
        assert_eq!(
            s.source,
            KeySource::Discovery(
                Url::parse("https://id.example.com/realms/chat/.well-known/openid-configuration")
                    .unwrap()
            )
        );
    }

    #[test]
    fn what_cannot_work_is_refused() {
        let mut a = args("https://id.example.com");
        a.oidc_audience = None;
        assert!(error(&a).contains("needs CHATSEAL_OIDC_AUDIENCE"));

        assert!(error(&args("chatseal")).contains("this server's own tokens"));
        // Not a URL, and no JWKS URL to fetch instead.
        assert!(error(&args("my-idp")).contains("discovery"));
        assert!(error(&args("http://id.example.com")).contains("https"));

        let mut a = args("my-idp");
        a.oidc_jwks_url = Some("http://10.0.0.5/jwks".into());
        assert!(error(&a).contains("https"));
        a.oidc_jwks_url = Some("https://user:pw@id.example.com/jwks".into());
        assert!(error(&a).contains("credentials"));
        a.oidc_jwks_url = Some("http://127.0.0.1:8080/jwks".into());
        assert!(a.settings().unwrap().is_some());
        a.oidc_jwks_url = Some("http://[::1]:8080/jwks".into());
        assert!(a.settings().unwrap().is_some());

        let mut a = args("https://id.example.com");
        a.oidc_name_prefix = "sso:".into();
        assert!(error(&a).contains("PREFIX"));
        a.oidc_name_prefix = "x".repeat(32);
        assert!(error(&a).contains("PREFIX"));
        a.oidc_name_prefix = "sso.".into();
        assert!(a.settings().unwrap().is_some());

        let mut a = args("https://id.example.com");
        a.oidc_cache_min = Duration::from_secs(7200);
        a.oidc_cache_max = Duration::from_secs(3600);
        assert!(error(&a).contains("CACHE_MIN"));
    }
}
