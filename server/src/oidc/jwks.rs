//! The identity provider's keys: a JWKS fetched over HTTP (bounded in size
//! and time), each key bound to the one algorithm its type allows, and how
//! long the response may be kept (its `Cache-Control`).

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::Url;
use reqwest::header::{self, HeaderMap};
use serde::Deserialize;

/// The largest JWKS or discovery document read (real ones are a few KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Keys read from one JWKS; the rest are ignored.
pub const MAX_KEYS: usize = 64;
/// The longest `kid` kept.
pub const MAX_KID_BYTES: usize = 256;
/// How long keys are kept when the response says nothing (no max-age).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// A verification key and the one algorithm it verifies.
#[derive(Clone)]
pub struct Key {
    pub alg: Algorithm,
    pub decoding: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The name of an algorithm in a JWS header (`alg`).
pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        // Keys of no other algorithm are ever made (see `parse_key`).
        _ => "?",
    }
}

/// Why a fetch gave no keys.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// One JWK as published; fields the server does not use are ignored
/// (`x5c` included: the key is `n`/`e` or `x`/`y`, never a certificate).
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    alg: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    /// A private part: a JWKS that publishes one is broken (anyone can sign).
    d: Option<serde::de::IgnoredAny>,
}

fn b64(field: &str, text: Option<&str>) -> Result<Vec<u8>, String> {
    let text = text.ok_or_else(|| format!("no {field}"))?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| format!("{field} is not base64url"))
}

/// A JWK as a verification key, bound to the one algorithm its type allows:
/// RSA → RS256 (2048 to 8192 bits), EC P-256 → ES256, OKP Ed25519 → EdDSA.
/// A JWK's own `alg`, when present, must be that one. Symmetric (`oct`)
/// keys, encryption keys and keys with a private part are refused.
fn parse_key(value: &serde_json::Value) -> Result<(String, Key), String> {
    let jwk = RawJwk::deserialize(value).map_err(|e| format!("not a JWK: {e}"))?;
    let kid = jwk.kid.clone().ok_or("no kid")?;
    if kid.is_empty() || kid.len() > MAX_KID_BYTES {
        return Err(format!("a kid is 1 to {MAX_KID_BYTES} bytes"));
    }
    let named = |what: &str| format!("{what} (kid {kid:?})");
    if jwk.d.is_some() {
        return Err(named("a private key is published"));
    }
    if jwk.usage.as_deref().is_some_and(|u| u != "sig") {
        return Err(named("not a signing key (use)"));
    }
    if jwk
        .key_ops
        .as_ref()
        .is_some_and(|ops| !ops.iter().any(|o| o == "verify"))
    {
        return Err(named("not a verifying key (key_ops)"));
    }
    let (alg, decoding) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => {
            let n = b64("n", jwk.n.as_deref()).map_err(|e| named(&e))?;
            let e = b64("e", jwk.e.as_deref()).map_err(|e| named(&e))?;
            let n = &n[n.iter().take_while(|b| **b == 0).count()..];
            let e = &e[e.iter().take_while(|b| **b == 0).count()..];
            if !(256..=1024).contains(&n.len()) {
                return Err(named("an RSA key is 2048 to 8192 bits"));
            }
            if e.is_empty() || e.len() > 8 {
                return Err(named("bad RSA exponent"));
            }
            (Algorithm::RS256, DecodingKey::from_rsa_raw_components(n, e))
        }
        ("EC", Some("P-256")) => {
            let x = b64("x", jwk.x.as_deref()).map_err(|e| named(&e))?;
            let y = b64("y", jwk.y.as_deref()).map_err(|e| named(&e))?;
            if x.len() != 32 || y.len() != 32 {
                return Err(named("a P-256 coordinate is 32 bytes"));
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            // An uncompressed point, as ring verifies ES256 with.
            (Algorithm::ES256, DecodingKey::from_ec_der(&point))
        }
        ("OKP", Some("Ed25519")) => {
            let x = b64("x", jwk.x.as_deref()).map_err(|e| named(&e))?;
            if x.len() != 32 {
                return Err(named("an Ed25519 key is 32 bytes"));
            }
            (Algorithm::EdDSA, DecodingKey::from_ed_der(&x))
        }
        (kty, crv) => {
            return Err(named(&format!(
                "kty {kty:?} crv {crv:?}: only RSA, EC P-256 and OKP Ed25519 keys are used"
            )));
        }
    };
    if let Some(stated) = &jwk.alg
        && stated != alg_name(alg)
    {
        return Err(named(&format!(
            "alg {stated:?}: this key type verifies {} only",
            alg_name(alg)
        )));
    }
    Ok((kid, Key { alg, decoding }))
}

/// The usable keys of a JWKS document by `kid`, and why others were left
/// out. A `kid` that two keys share names neither (which one a token
/// means would be a guess).
pub fn parse_set(body: &[u8]) -> Result<(HashMap<String, Key>, Vec<String>), FetchError> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_slice(body)
        .map_err(|e| FetchError(format!("not a JWKS ({{\"keys\": [...]}}): {e}")))?;
    let mut keys = HashMap::new();
    let mut skipped = Vec::new();
    let mut shared = Vec::new();
    if set.keys.len() > MAX_KEYS {
        skipped.push(format!(
            "{} keys past the first {MAX_KEYS}",
            set.keys.len() - MAX_KEYS
        ));
    }
    for value in set.keys.iter().take(MAX_KEYS) {
        match parse_key(value) {
            Ok((kid, key)) => {
                if keys.insert(kid.clone(), key).is_some() {
                    shared.push(kid);
                }
            }
            Err(why) => skipped.push(why),
        }
    }
    for kid in shared {
        if keys.remove(&kid).is_some() {
            skipped.push(format!("kid {kid:?} names two keys"));
        }
    }
    Ok((keys, skipped))
}

/// How long a response may be kept: its `Cache-Control` max-age less its
/// `Age` (`no-cache`/`no-store` are 0), [`DEFAULT_LIFETIME`] without one,
/// then bounded to `min..=max`.
pub fn lifetime(headers: &HeaderMap, min: Duration, max: Duration) -> Duration {
    let mut max_age = None;
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = directive.split_once('=').unwrap_or((directive, ""));
            let name = name.trim().to_ascii_lowercase();
            match name.as_str() {
                "no-cache" | "no-store" => max_age = Some(0),
                "max-age" => {
                    if let Ok(secs) = arg.trim().trim_matches('"').parse::<u64>() {
                        max_age = Some(max_age.map_or(secs, |m: u64| m.min(secs)));
                    }
                }
                _ => {}
            }
        }
    }
    let age = headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let kept = match max_age {
        Some(secs) => Duration::from_secs(secs.saturating_sub(age)),
        None => DEFAULT_LIFETIME,
    };
    kept.max(min).min(max)
}

/// The HTTP client: short timeouts, no redirects (a JWKS URL is where the
/// keys are; following a redirect could leave https).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("chatseal-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with rustls and the system roots")
}

/// GETs `url`'s JSON body, at most [`MAX_BODY_BYTES`], with the headers.
pub async fn get(client: &reqwest::Client, url: &Url) -> Result<(Vec<u8>, HeaderMap), FetchError> {
    let fail = |e: reqwest::Error| FetchError(format!("{url}: {}", error_chain(&e)));
    let mut resp = client
        .get(url.clone())
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(fail)?;
    let status = resp.status();
    if status != reqwest::StatusCode::OK {
        return Err(FetchError(format!("{url} answered {status}")));
    }
    let too_big = || FetchError(format!("{url}: more than {MAX_BODY_BYTES} bytes"));
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_big());
    }
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(fail)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, headers))
}

/// An error and its causes on one line (reqwest's own text says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The `jwks_uri` of a discovery document, which must be for `issuer`
/// (OpenID Connect Discovery §4.3: its `issuer` is the one configured).
pub fn jwks_uri(body: &[u8], issuer: &str) -> Result<Url, FetchError> {
    #[derive(Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let doc: Discovery = serde_json::from_slice(body)
        .map_err(|e| FetchError(format!("not a discovery document: {e}")))?;
    if doc.issuer != issuer {
        return Err(FetchError(format!(
            "the discovery document is for issuer {:?}, not {issuer:?}",
            doc.issuer
        )));
    }
    super::args::fetchable(&doc.jwks_uri).map_err(|e| FetchError(format!("jwks_uri: {e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn rsa(kid: &str) -> serde_json::Value {
        json!({ "kty": "RSA", "kid": kid, "n": B64.encode([0xc5u8; 256]), "e": "AQAB" })
    }

    fn ec(kid: &str) -> serde_json::Value {
        json!({ "kty": "EC", "crv": "P-256", "kid": kid,
                "x": B64.encode([1u8; 32]), "y": B64.encode([2u8; 32]) })
    }

    fn ed(kid: &str) -> serde_json::Value {
        json!({ "kty": "OKP", "crv": "Ed25519", "kid": kid, "x": B64.encode([3u8; 32]) })
    }

    fn with(mut v: serde_json::Value, field: &str, value: serde_json::Value) -> serde_json::Value {
        v[field] = value;
        v
    }

    #[test]
    fn each_key_type_verifies_one_algorithm() {
        assert_eq!(parse_key(&rsa("r")).unwrap().1.alg, Algorithm::RS256);
        assert_eq!(parse_key(&ec("e")).unwrap().1.alg, Algorithm::ES256);
        assert_eq!(parse_key(&ed("d")).unwrap().1.alg, Algorithm::EdDSA);
        let stated = with(rsa("r"), "alg", json!("RS256"));
        assert_eq!(parse_key(&stated).unwrap().1.alg, Algorithm::RS256);
        assert!(parse_key(&with(ed("d"), "use", json!("sig"))).is_ok());
    }

    #[test]
    fn keys_that_could_confuse_or_forge_are_refused() {
        let refused = [
            // Symmetric: an HS256 "key" anyone reading the JWKS knows.
            json!({ "kty": "oct", "kid": "s", "k": B64.encode(b"secret") }),
            with(rsa("r"), "alg", json!("HS256")),
            with(rsa("r"), "alg", json!("PS256")),
            with(rsa("r"), "alg", json!("none")),
            with(ec("e"), "alg", json!("ES384")),
            with(ec("e"), "crv", json!("P-384")),
            with(ed("d"), "crv", json!("X25519")),
            with(rsa("r"), "use", json!("enc")),
            with(rsa("r"), "key_ops", json!(["encrypt"])),
            with(ec("e"), "d", json!(B64.encode([9u8; 32]))),
            with(rsa("r"), "n", json!(B64.encode([0xc5u8; 128]))), // 1024 bits
            with(ec("e"), "x", json!(B64.encode([1u8; 31]))),
            with(ed("d"), "x", json!("not base64!")),
            with(rsa("r"), "kid", json!("")),
            with(rsa("r"), "kid", json!("k".repeat(MAX_KID_BYTES + 1))),
            json!({ "kty": "RSA", "n": B64.encode([0xc5u8; 256]), "e": "AQAB" }),
        ];
        for jwk in refused {
            assert!(parse_key(&jwk).is_err(), "{jwk}");
        }
    }

    #[test]
    fn a_set_keeps_its_usable_keys_and_drops_a_shared_kid() {
        let body = json!({ "keys": [
            rsa("a"), ec("b"), ed("c"),
            { "kty": "oct", "kid": "s", "k": "c2VjcmV0" },
            { "kty": "ML-DSA", "kid": "future" },
            rsa("twice"), ec("twice"),
        ]});
        let (keys, skipped) = parse_set(body.to_string().as_bytes()).unwrap();
        let mut kids: Vec<_> = keys.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, ["a", "b", "c"]);
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert!(parse_set(b"[]").is_err());
        assert!(parse_set(b"{\"keys\": {}}").is_err());
    }

    #[test]
    fn a_huge_set_is_cut() {
        let keys: Vec<_> = (0..MAX_KEYS + 10).map(|i| ed(&format!("k{i}"))).collect();
        let body = json!({ "keys": keys }).to_string();
        let (keys, skipped) = parse_set(body.as_bytes()).unwrap();
        assert_eq!(keys.len(), MAX_KEYS);
        assert_eq!(skipped.len(), 1);
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    #[test]
    fn cache_control_is_honoured_within_bounds() {
        let (min, max) = (Duration::from_secs(60), Duration::from_secs(86400));
        let l = |pairs: &[(&'static str, &str)]| lifetime(&headers(pairs), min, max).as_secs();
        assert_eq!(l(&[]), DEFAULT_LIFETIME.as_secs());
        assert_eq!(l(&[("cache-control", "public, max-age=3600")]), 3600);
        assert_eq!(l(&[("cache-control", "Max-Age=\"7200\"")]), 7200);
        assert_eq!(
            l(&[("cache-control", "max-age=3600"), ("age", "600")]),
            3000
        );
        assert_eq!(l(&[("cache-control", "max-age=5")]), 60);
        assert_eq!(l(&[("cache-control", "no-cache")]), 60);
        assert_eq!(l(&[("cache-control", "max-age=3600, no-store")]), 60);
        assert_eq!(l(&[("cache-control", "max-age=99999999")]), 86400);
        assert_eq!(
            l(&[("cache-control", "max-age=junk")]),
            DEFAULT_LIFETIME.as_secs()
        );
        assert_eq!(
            l(&[
                ("cache-control", "max-age=100"),
                ("cache-control", "max-age=3000")
            ]),
            100
        );
    }

    #[test]
    fn discovery_must_be_for_the_issuer() {
        let doc = |issuer: &str, jwks: &str| {
            json!({ "issuer": issuer, "jwks_uri": jwks })
                .to_string()
                .into_bytes()
        };
        let iss = "https://id.example.com";
        assert_eq!(
            jwks_uri(&doc(iss, "https://id.example.com/keys"), iss)
                .unwrap()
                .as_str(),
            "https://id.example.com/keys"
        );
        assert!(
            jwks_uri(
                &doc("https://evil.example", "https://id.example.com/keys"),
                iss
            )
            .is_err()
        );
        assert!(jwks_uri(&doc(iss, "http://id.example.com/keys"), iss).is_err());
        assert!(jwks_uri(b"{}", iss).is_err());
    }
}
