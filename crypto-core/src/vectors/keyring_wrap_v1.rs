//! Generates and checks `tests/vectors/keyring-wrap-v1.json`, the wrapped
//! keyring fixture (docs/format.md §8) every implementation runs.
//!
//! KEKs, master keys, salts and nonces are SHA-256 outputs of fixed labels
//! (as in `envelope_v1`), so regenerating gives the same bytes and the
//! committed file is also a regression test of the format.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::envelope_v1::det;
use crate::aead::Aes256Gcm;
use crate::kek::{KdfParams, Kek, SALT_LEN, kek_id_hex};
use crate::keyring::Keyring;
use crate::secret::SecretKey;
use crate::wrapped::{TokenWrap, WrappedKeyring, keyring_context, seal_under, token_aad};

const FILE: &str = "tests/vectors/keyring-wrap-v1.json";
const PASSPHRASE: &str = "correct horse battery staple";

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn kek(label: &str) -> Kek {
    Kek::from_slice(&det(&format!("chatseal/vectors/kek/{label}"), 32)).unwrap()
}

fn nonce(label: &str) -> [u8; 12] {
    det(&format!("chatseal/vectors/wrap-nonce/{label}"), 12)
        .try_into()
        .unwrap()
}

fn params(label: &str, m_cost: u32, t_cost: u32) -> KdfParams {
    KdfParams {
        m_cost,
        t_cost,
        p_cost: 1,
        salt: det(&format!("chatseal/vectors/salt/{label}"), SALT_LEN)
            .try_into()
            .unwrap(),
    }
}

fn keyring(label: &str, ids: &[u32], primary: u32, min_decrypt: u32) -> Keyring {
    let keys = ids.iter().map(|&id| {
        let bytes = det(&format!("chatseal/vectors/wrap-master/{label}/{id}"), 32);
        (id, SecretKey::from_slice(&bytes).unwrap())
    });
    Keyring::from_parts(keys, primary, min_decrypt).unwrap()
}

fn file_value(file: &WrappedKeyring) -> Value {
    serde_json::from_str(&file.to_json()).unwrap()
}

/// How a case gets its KEK: given, or from the passphrase with the file's
/// parameters.
enum Secret {
    Kek(Kek),
    Passphrase(&'static str),
}

struct Case {
    name: &'static str,
    secret: Secret,
    kdf: Option<KdfParams>,
    keyring: Keyring,
    /// The AES-256 key a PKCS#11 token would hold, if a token seals the KEK.
    token_key: Option<SecretKey>,
}

/// The KEK sealed as a token seals it (AES-256-GCM under `token_key`,
/// associated data `token_aad`).
fn token_wrap(token_key: &SecretKey, kek: &Kek, label: &str) -> TokenWrap {
    let nonce = nonce(&format!("token/{label}"));
    let mut buf = kek.expose().to_vec();
    let tag = Aes256Gcm::new(token_key)
        .seal_in_place(&nonce, &token_aad(&kek.id()), &mut buf)
        .unwrap();
    buf.extend_from_slice(&tag);
    TokenWrap {
        key_label: "chatseal-kek".into(),
        nonce,
        sealed_kek: buf,
    }
}

fn cases() -> Vec<Case> {
    let with_kek = |name, kek, keyring| Case {
        name,
        secret: Secret::Kek(kek),
        kdf: None,
        keyring,
        token_key: None,
    };
    let from_passphrase = |name, params: KdfParams, keyring| Case {
        name,
        secret: Secret::Passphrase(PASSPHRASE),
        kdf: Some(params),
        keyring,
        token_key: None,
    };
    vec![
        with_kek("one key", kek("a"), keyring("one", &[1], 1, 1)),
        with_kek(
            "rotated, one key retired",
            kek("a"),
            keyring("rotated", &[1, 2, 3], 3, 2),
        ),
        with_kek(
            "key ids 0 and u32::MAX",
            kek("b"),
            keyring("edges", &[0, u32::MAX], u32::MAX, 0),
        ),
        from_passphrase(
            "passphrase, default parameters",
            params(
                "default",
                KdfParams::DEFAULT_M_COST,
                KdfParams::DEFAULT_T_COST,
            ),
            keyring("passphrase", &[1, 2], 2, 1),
        ),
        from_passphrase(
            "passphrase, OWASP minimum parameters",
            params("minimum", KdfParams::MIN_M_COST, KdfParams::MIN_T_COST),
            keyring("passphrase-min", &[7], 7, 7),
        ),
        Case {
            name: "KEK sealed by a PKCS#11 token",
            secret: Secret::Kek(kek("token")),
            kdf: None,
            keyring: keyring("token", &[1, 2], 2, 1),
            token_key: Some(SecretKey::from_slice(&det("chatseal/vectors/token-key", 32)).unwrap()),
        },
    ]
}

fn the_kek(c: &Case) -> Kek {
    match &c.secret {
        Secret::Kek(k) => k.clone(),
        Secret::Passphrase(p) => {
            Kek::from_passphrase(p.as_bytes(), c.kdf.as_ref().unwrap()).unwrap()
        }
    }
}

fn generate() -> Value {
    let mut out = Vec::new();
    for c in cases() {
        let kek = the_kek(&c);
        let n = nonce(c.name);
        let file = WrappedKeyring {
            kek_id: kek.id(),
            kdf: c.kdf.clone(),
            token: c.token_key.as_ref().map(|t| token_wrap(t, &kek, c.name)),
            sealed: c.keyring.wrap_with_nonce(&kek, &n),
        };
        let mut v = json!({
            "name": c.name,
            "kek": b64(kek.expose()),
            "kek_id": kek_id_hex(&kek.id()),
            "wrapping_key": b64(kek.wrapping_key().expose()),
            "context": b64(&keyring_context(&kek.id())),
            "nonce": b64(&n),
            "keyring": serde_json::from_str::<Value>(&c.keyring.to_json()).unwrap(),
            "plaintext": b64(c.keyring.to_json().as_bytes()),
            "file": file_value(&file),
        });
        if let Secret::Passphrase(p) = c.secret {
            v["passphrase"] = json!(p);
        }
        if let Some(t) = &c.token_key {
            v["token_key"] = json!(b64(t.expose()));
            v["token_aad"] = json!(b64(&token_aad(&kek.id())));
        }
        out.push(v);
    }
    json!({
        "format": "chatseal wrapped keyring, version 1",
        "spec": "docs/format.md",
        "generated_by": "CHATSEAL_WRITE_VECTORS=1 cargo test -p chatseal-core keyring_wrap_v1",
        "cases": out,
        "invalid": invalid_cases(),
    })
}

fn invalid_cases() -> Vec<Value> {
    let a = kek("invalid/a");
    let b = kek("invalid/b");
    let kr = keyring("invalid", &[1, 2], 2, 1);
    let base = WrappedKeyring {
        kek_id: a.id(),
        kdf: None,
        token: None,
        sealed: kr.wrap_with_nonce(&a, &nonce("invalid")),
    };
    let token_key = SecretKey::from_slice(&det("chatseal/vectors/token-key", 32)).unwrap();
    let with_token = WrappedKeyring {
        token: Some(token_wrap(&token_key, &a, "invalid")),
        ..base.clone()
    };
    let min = params("invalid", KdfParams::MIN_M_COST, KdfParams::MIN_T_COST);
    let from_pass = Kek::from_passphrase(PASSPHRASE.as_bytes(), &min).unwrap();
    let pass_file = WrappedKeyring {
        kek_id: from_pass.id(),
        kdf: Some(min.clone()),
        token: None,
        sealed: kr.wrap_with_nonce(&from_pass, &nonce("invalid/passphrase")),
    };
    let mut out = Vec::new();
    let mut push_kek = |name: &str, kek: &Kek, file: Value, error: &str| {
        out.push(json!({"name": name, "kek": b64(kek.expose()), "file": file, "error": error}));
    };
    let sealed_edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut w = base.clone();
        f(&mut w.sealed);
        file_value(&w)
    };
    let field = |key: &str, value: Value| {
        let mut v = file_value(&base);
        v[key] = value;
        v
    };
    let last = base.sealed.len() - 1;
    push_kek("another KEK", &b, file_value(&base), "WRONG_KEK");
    push_kek(
        "kek_id altered",
        &a,
        field("kek_id", json!(kek_id_hex(&b.id()))),
        "WRONG_KEK",
    );
    push_kek(
        "header key id altered",
        &a,
        sealed_edit(&|s| s[5] ^= 1),
        "WRONG_KEK",
    );
    push_kek("tag altered", &a, sealed_edit(&|s| s[last] ^= 1), "BAD_TAG");
    push_kek(
        "ciphertext altered",
        &a,
        sealed_edit(&|s| s[18] ^= 0x80),
        "BAD_TAG",
    );
    push_kek("nonce altered", &a, sealed_edit(&|s| s[6] ^= 1), "BAD_TAG");
    // The same bytes as a chat message sealed with the KEK as master key,
    // room "" and the keyring context: the keys differ, so it never opens.
    let chat = {
        let id = u32::from_be_bytes(a.id()[..4].try_into().unwrap());
        let m = SecretKey::from_slice(a.expose()).unwrap();
        let sealer = crate::Sealer::new(Keyring::from_parts([(id, m)], id, id).unwrap());
        let mut w = base.clone();
        w.sealed = sealer
            .seal_with_nonce(
                "",
                &keyring_context(&a.id()),
                kr.to_json().as_bytes(),
                &nonce("chat"),
            )
            .unwrap();
        file_value(&w)
    };
    push_kek(
        "a chat envelope in place of the keyring",
        &a,
        chat,
        "BAD_TAG",
    );
    let not_a_keyring = {
        let mut w = base.clone();
        w.sealed = seal_under(
            &a,
            &nonce("not a keyring"),
            br#"{"primary": 1, "keys": []}"#,
        );
        file_value(&w)
    };
    push_kek(
        "sealed, but not a valid keyring",
        &a,
        not_a_keyring,
        "INVALID_KEYRING",
    );
    push_kek(
        "envelope version 2",
        &a,
        sealed_edit(&|s| s[0] = 2),
        "UNSUPPORTED_VERSION",
    );
    push_kek(
        "envelope algorithm 2",
        &a,
        sealed_edit(&|s| s[1] = 2),
        "UNSUPPORTED_ALGORITHM",
    );
    push_kek(
        "sealed truncated to 33 bytes",
        &a,
        sealed_edit(&|s| s.truncate(33)),
        "MALFORMED",
    );
    push_kek(
        "sealed is not base64",
        &a,
        field("sealed", json!("@@@@")),
        "BAD_ENCODING",
    );
    push_kek(
        "file version 2",
        &a,
        field("version", json!(2)),
        "UNSUPPORTED_VERSION",
    );
    push_kek(
        "other format",
        &a,
        field("format", json!("chatseal keyring")),
        "INVALID_KEYRING",
    );
    push_kek(
        "unknown field",
        &a,
        field("kek", json!(b64(a.expose()))),
        "INVALID_KEYRING",
    );
    push_kek(
        "kek_id not hex",
        &a,
        field("kek_id", json!("KEK-ID-KEK-ID-00")),
        "INVALID_KEYRING",
    );
    push_kek(
        "a plain keyring",
        &a,
        serde_json::from_str(&kr.to_json()).unwrap(),
        "INVALID_KEYRING",
    );
    let token_field = |key: &str, value: Value| {
        let mut v = file_value(&with_token);
        v["token"][key] = value;
        v
    };
    push_kek(
        "token mechanism not CKM_AES_GCM",
        &a,
        token_field("mechanism", json!("CKM_AES_KEY_WRAP_PAD")),
        "INVALID_KEYRING",
    );
    push_kek(
        "token sealed_kek of 32 bytes",
        &a,
        token_field("sealed_kek", json!(b64(&[0u8; 32]))),
        "INVALID_KEYRING",
    );
    push_kek(
        "token and kdf both",
        &a,
        {
            let mut v = file_value(&with_token);
            v["kdf"] = file_value(&pass_file)["kdf"].clone();
            v
        },
        "INVALID_KEYRING",
    );
    let mut push_pass = |name: &str, passphrase: &str, file: Value, error: &str| {
        out.push(json!({"name": name, "passphrase": passphrase, "file": file, "error": error}));
    };
    let kdf_field = |key: &str, value: Value| {
        let mut v = file_value(&pass_file);
        v["kdf"][key] = value;
        v
    };
    push_pass(
        "wrong passphrase",
        "correct horse battery stapler",
        file_value(&pass_file),
        "WRONG_KEK",
    );
    push_pass(
        "salt altered",
        PASSPHRASE,
        kdf_field("salt", json!(b64(&[0u8; SALT_LEN]))),
        "WRONG_KEK",
    );
    push_pass(
        "memory below OWASP's minimum",
        PASSPHRASE,
        kdf_field("m_cost", json!(KdfParams::MIN_M_COST - 1)),
        "INVALID_KEYRING",
    );
    push_pass(
        "memory above 1 GiB",
        PASSPHRASE,
        kdf_field("m_cost", json!(KdfParams::MAX_M_COST + 1)),
        "INVALID_KEYRING",
    );
    push_pass(
        "one pass",
        PASSPHRASE,
        kdf_field("t_cost", json!(1)),
        "INVALID_KEYRING",
    );
    push_pass(
        "argon2i",
        PASSPHRASE,
        kdf_field("algorithm", json!("argon2i")),
        "INVALID_KEYRING",
    );
    push_pass(
        "salt of 8 bytes",
        PASSPHRASE,
        kdf_field("salt", json!(b64(&[1u8; 8]))),
        "INVALID_KEYRING",
    );
    push_pass(
        "no kdf (a KEK file, not a passphrase)",
        PASSPHRASE,
        file_value(&base),
        "INVALID_KEYRING",
    );
    out
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap();
    s.push('\n');
    s
}

fn d(v: &Value, field: &str) -> Vec<u8> {
    STANDARD.decode(v[field].as_str().unwrap()).unwrap()
}

fn same(a: &Keyring, b: &Keyring) -> bool {
    a.primary() == b.primary()
        && a.min_decrypt() == b.min_decrypt()
        && a.key_ids().eq(b.key_ids())
        && a.key_ids()
            .all(|id| a.keys()[&id].expose() == b.keys()[&id].expose())
}

#[test]
fn keyring_wrap_v1_vectors_are_committed_and_current() {
    let path = super::repo_dir().join(FILE);
    let generated = pretty(&generate());
    if std::env::var_os("CHATSEAL_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; regenerate with CHATSEAL_WRITE_VECTORS=1",
            path.display()
        )
    });
    assert!(
        committed == generated,
        "{FILE} differs from what the engine produces; the format changed? \
         Regenerate with CHATSEAL_WRITE_VECTORS=1 only if that is intended."
    );
}

/// The committed file, read as any other implementation reads it: through
/// the public API only (the file text, a KEK or a passphrase).
#[test]
fn keyring_wrap_v1_vectors_open_and_reproduce() {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(super::repo_dir().join(FILE)).unwrap())
            .unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let file = WrappedKeyring::from_json(&c["file"].to_string()).unwrap();
        let expected = Keyring::from_json(&c["keyring"].to_string()).unwrap();
        let kek = Kek::from_slice(&d(c, "kek")).unwrap();
        assert_eq!(
            kek_id_hex(&kek.id()),
            c["kek_id"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            kek.wrapping_key().expose().as_slice(),
            d(c, "wrapping_key"),
            "{name}"
        );
        assert_eq!(keyring_context(&kek.id()), d(c, "context"), "{name}");
        assert!(same(&file.open(&kek).unwrap(), &expected), "{name}");
        if let Some(p) = c["passphrase"].as_str() {
            let derived = Kek::from_passphrase(p.as_bytes(), file.kdf.as_ref().unwrap()).unwrap();
            assert_eq!(derived.expose().as_slice(), d(c, "kek"), "{name}");
            assert!(
                same(&file.open_with_passphrase(p.as_bytes()).unwrap(), &expected),
                "{name}"
            );
        }
        if let Some(t) = c.get("token_key").and_then(Value::as_str) {
            let token = file.token.as_ref().expect(name);
            let key = SecretKey::from_slice(&STANDARD.decode(t).unwrap()).unwrap();
            assert_eq!(token_aad(&kek.id()), d(c, "token_aad"), "{name}");
            let mut buf = token.sealed_kek.clone();
            let opened = Aes256Gcm::new(&key)
                .open_in_place(&token.nonce, &d(c, "token_aad"), &mut buf)
                .unwrap();
            assert_eq!(opened, kek.expose().as_slice(), "{name}");
        }
        // Sealing the plaintext again with the given nonce gives the bytes.
        let n: [u8; 12] = d(c, "nonce").try_into().unwrap();
        assert_eq!(
            seal_under(&kek, &n, &d(c, "plaintext")),
            file.sealed,
            "{name}"
        );
        assert_eq!(expected.to_json().as_bytes(), d(c, "plaintext"), "{name}");
    }
    let invalid = doc["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 20);
    for c in invalid {
        let name = c["name"].as_str().unwrap();
        let text = c["file"].to_string();
        let outcome =
            WrappedKeyring::from_json(&text).and_then(|file| match c["passphrase"].as_str() {
                Some(p) => file.open_with_passphrase(p.as_bytes()),
                None => file.open(&Kek::from_slice(&d(c, "kek")).unwrap()),
            });
        let err = outcome.expect_err(name);
        assert_eq!(err.kind().code(), c["error"].as_str().unwrap(), "{name}");
    }
}
