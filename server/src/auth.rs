//! Accounts' secrets: argon2id password hashes and JWT session tokens.
//!
//! Tokens are HS256 only: the algorithm is fixed when verifying, so a token
//! that names another algorithm (`none`, or RS256 with the secret as a
//! "public key") is refused, and `exp`, `iss` and `aud` are required.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm as ArgonAlgorithm, Argon2, Params, PasswordHash, Version};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Issuer and audience of every token this server makes and accepts.
pub const ISSUER: &str = "chatseal";
pub const AUDIENCE: &str = "chatseal-chat";

/// Why a token was refused; the text follows the `UNAUTHORIZED:` code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    /// Set on the tokens this server issues; not required (the protocol
    /// lists `sub`, `iss`, `aud` and `exp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    exp: u64,
}

/// What a valid token says: whose it is and until when (seconds since the
/// epoch). The account must still be checked against the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub username: String,
    pub expires_at: u64,
    /// `iat`, when the token has one (unix seconds).
    pub issued_at: Option<u64>,
}

/// Signs and verifies session tokens. The secret is wiped on drop.
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("secret", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl Tokens {
    pub fn new(secret: &Zeroizing<Vec<u8>>, lifetime: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            lifetime,
        }
    }

    /// A token for `username`, and when it expires (ms since the epoch).
    pub fn issue(&self, username: &str) -> (String, u64) {
        let now = unix_now().as_secs();
        let exp = now + self.lifetime.as_secs();
        let claims = Claims {
            sub: username.to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: Some(now),
            exp,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with a byte secret cannot fail");
        (token, exp * 1000)
    }

    /// The username a valid token speaks for, and its expiry. A `sub`
    /// outside the name rules is refused here: a signed token is only as
    /// good as the name in it (the secret may have signed it elsewhere).
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            // RFC 7519: not accepted *on* or after exp (jsonwebtoken still
            // takes the second of exp itself), the instant a session ends.
            Ok(data) if data.claims.exp <= unix_now().as_secs() => Err(TokenError::Expired),
            Ok(data) if validate_username(&data.claims.sub).is_ok() => Ok(Verified {
                username: data.claims.sub,
                expires_at: data.claims.exp,
                issued_at: data.claims.iat,
            }),
            Ok(_) => Err(TokenError::Invalid),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(TokenError::Expired),
            Err(_) => Err(TokenError::Invalid),
        }
    }
}

/// argon2id with OWASP's minimum parameters (19 MiB, 2 passes, 1 lane).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(ArgonAlgorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password (PHC string). CPU-heavy: call it off the async threads.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid parameters cannot fail")
        .to_string()
}

/// Checks a password against a stored hash; `None` checks against a dummy
/// hash so that an unknown user costs the same time as a wrong password.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("chatseal timing equaliser"));
    let hash = stored.unwrap_or(dummy);
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
        && stored.is_some()
}

/// Account and guest names: 1–32 of `A–Z a–z 0–9 _ . -`. Names are what
/// other users see as `sender`, so they are kept plain.
pub fn validate_username(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 32 {
        return Err("a name is 1 to 32 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err("a name may use letters, digits, '_', '.' and '-'");
    }
    Ok(())
}

/// Passwords: 8 to 1024 bytes.
pub fn validate_password(password: &str) -> Result<(), &'static str> {
    match password.len() {
        0..8 => Err("a password is at least 8 characters"),
        8..=1024 => Ok(()),
        _ => Err("a password is at most 1024 bytes"),
    }
}

/// Time since the epoch.
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn tokens(lifetime: u64) -> Tokens {
        Tokens::new(
            &Zeroizing::new(b"0123456789abcdef0123456789abcdef".to_vec()),
            Duration::from_secs(lifetime),
        )
    }

    #[test]
    fn a_token_round_trips() {
        let t = tokens(60);
        let (token, exp) = t.issue("ann");
        let verified = t.verify(&token).unwrap();
        assert_eq!(verified.username, "ann");
        assert_eq!(verified.expires_at * 1000, exp);
        assert!(exp > unix_now().as_millis() as u64);
    }

    #[test]
    fn forged_expired_and_alg_none_tokens_are_refused() {
        let t = tokens(60);
        let other = Tokens::new(
            &Zeroizing::new(b"another secret, 32 bytes long...".to_vec()),
            Duration::from_secs(60),
        );
        let (forged, _) = other.issue("ann");
        assert_eq!(t.verify(&forged), Err(TokenError::Invalid));

        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let exp = unix_now().as_secs() + 60;
        let body = b64.encode(format!(
            r#"{{"sub":"ann","iss":"{ISSUER}","aud":"{AUDIENCE}","iat":0,"exp":{exp}}}"#
        ));
        let none = format!("{}.{body}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(t.verify(&none), Err(TokenError::Invalid));

        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: "ann".into(),
                iss: ISSUER.into(),
                aud: AUDIENCE.into(),
                iat: Some(0),
                exp: 1,
            },
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        assert_eq!(t.verify(&expired), Err(TokenError::Expired));

        let wrong_aud = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: "ann".into(),
                iss: ISSUER.into(),
                aud: "else".into(),
                iat: Some(0),
                exp,
            },
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        assert_eq!(t.verify(&wrong_aud), Err(TokenError::Invalid));
    }

    fn signed(sub: &str, iat: Option<u64>) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: sub.into(),
                iss: ISSUER.into(),
                aud: AUDIENCE.into(),
                iat,
                exp: unix_now().as_secs() + 60,
            },
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap()
    }

    #[test]
    fn a_sub_outside_the_name_rules_is_refused() {
        let t = tokens(60);
        for bad in ["", "ann\0", "a b", "~ann", &"x".repeat(10_000)] {
            assert_eq!(
                t.verify(&signed(bad, Some(0))),
                Err(TokenError::Invalid),
                "{bad:?}"
            );
        }
        assert_eq!(t.verify(&signed("ann", Some(0))).unwrap().username, "ann");
    }

    #[test]
    fn iat_is_optional() {
        let t = tokens(60);
        let token = signed("ann", None);
        let body = token.split('.').nth(1).unwrap();
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .unwrap();
        assert!(!String::from_utf8(claims).unwrap().contains("iat"));
        assert_eq!(t.verify(&token).unwrap().username, "ann");
    }

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let hash = hash_password("correct horse");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("wrong horse", Some(&hash)));
        assert!(!verify_password("correct horse", None));
    }

    #[test]
    fn names_and_passwords_are_checked() {
        assert!(validate_username("ann_1.b-c").is_ok());
        for bad in ["", "a b", "ann\0", "é", &"x".repeat(33)] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
    }
}
