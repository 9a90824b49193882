//! Generates and checks `tests/vectors/envelope-v1.json`, the fixture every
//! implementation (Rust, Node, C, browsers) runs.
//!
//! Everything in it is deterministic: master keys and nonces are SHA-256
//! outputs of fixed labels, so regenerating gives the same bytes and the
//! committed file doubles as a regression test of the format.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::context::chat_context;
use crate::envelope::{self, HEADER_LEN};
use crate::keyring::Keyring;
use crate::room::Room;
use crate::sealer::Sealer;
use crate::secret::SecretKey;

const FILE: &str = "tests/vectors/envelope-v1.json";

/// `len` deterministic bytes for `label` (SHA-256 in counter mode).
pub(super) fn det(label: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter = 0u32;
    while out.len() < len {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(label.as_bytes());
        ctx.update(&counter.to_be_bytes());
        out.extend_from_slice(ctx.finish().as_ref());
        counter += 1;
    }
    out.truncate(len);
    out
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn master(label: &str) -> SecretKey {
    SecretKey::from_slice(&det(&format!("chatseal/vectors/master/{label}"), 32)).unwrap()
}

struct Valid {
    name: &'static str,
    key_id: u32,
    epoch: u32,
    room: String,
    context: Vec<u8>,
    plaintext: Vec<u8>,
}

fn valid_cases() -> Vec<Valid> {
    let case = |name, key_id, room: &str, context: Vec<u8>, plaintext: Vec<u8>| Valid {
        name,
        key_id,
        epoch: 0,
        room: room.to_string(),
        context,
        plaintext,
    };
    let chat = |room: &str, sender: &str| {
        chat_context(room, "0192f0c1-7a3e-7cc0-9b1e-3f5a2d4c8e10", sender)
    };
    let at = |epoch, c: Valid| Valid { epoch, ..c };
    vec![
        case("empty plaintext", 1, "lobby", chat("lobby", "ann"), vec![]),
        case(
            "hello in the lobby",
            1,
            "lobby",
            chat("lobby", "ann"),
            b"hello".to_vec(),
        ),
        case("one byte", 1, "lobby", chat("lobby", "bob"), b"!".to_vec()),
        case(
            "one AES block",
            1,
            "lobby",
            chat("lobby", "bob"),
            b"0123456789abcdef".to_vec(),
        ),
        case(
            "one block and a byte",
            1,
            "lobby",
            chat("lobby", "bob"),
            b"0123456789abcdef!".to_vec(),
        ),
        case(
            "service room, no context",
            1,
            "",
            vec![],
            b"hello from /encrypt".to_vec(),
        ),
        case(
            "service room with context",
            1,
            "",
            b"order-42".to_vec(),
            b"hello".to_vec(),
        ),
        case(
            "non-ASCII room",
            1,
            "\u{fc}ber-raum",
            chat("\u{fc}ber-raum", "ann"),
            b"hallo".to_vec(),
        ),
        case(
            "emoji room",
            1,
            "\u{1f389} party",
            chat("\u{1f389} party", "ann"),
            b"yay".to_vec(),
        ),
        case(
            "CJK room",
            1,
            "日本語のチャット",
            chat("日本語のチャット", "ann"),
            "こんにちは".as_bytes().to_vec(),
        ),
        case(
            "64-character ASCII room",
            1,
            &"r".repeat(64),
            vec![],
            b"edge".to_vec(),
        ),
        case(
            "64-character non-ASCII room",
            1,
            &"\u{e9}".repeat(64),
            vec![],
            b"edge".to_vec(),
        ),
        case(
            "non-ASCII sender",
            1,
            "lobby",
            chat("lobby", "zo\u{eb}"),
            b"hi".to_vec(),
        ),
        case(
            "context of 238 bytes",
            1,
            "lobby",
            det("ctx/238", 238),
            b"aad of 256".to_vec(),
        ),
        case(
            "context of 239 bytes",
            1,
            "lobby",
            det("ctx/239", 239),
            b"aad of 257".to_vec(),
        ),
        case(
            "long context",
            1,
            "lobby",
            det("ctx/long", 4000),
            b"long aad".to_vec(),
        ),
        case(
            "every byte value as context",
            1,
            "lobby",
            (0..=255).collect(),
            b"binary aad".to_vec(),
        ),
        case(
            "UTF-8 plaintext",
            1,
            "lobby",
            chat("lobby", "ann"),
            "Grüße, мир, 世界 \u{1f510}".as_bytes().to_vec(),
        ),
        case(
            "every byte value as plaintext",
            1,
            "lobby",
            chat("lobby", "ann"),
            (0..=255).collect(),
        ),
        case(
            "64 KiB plaintext",
            1,
            "lobby",
            chat("lobby", "ann"),
            det("pt/64k", 64 * 1024),
        ),
        case(
            "key id 0",
            0,
            "lobby",
            chat("lobby", "ann"),
            b"id zero".to_vec(),
        ),
        case(
            "key id 2",
            2,
            "lobby",
            chat("lobby", "ann"),
            b"rotated".to_vec(),
        ),
        case(
            "key id 0x12345678",
            0x1234_5678,
            "lobby",
            chat("lobby", "ann"),
            b"big-endian".to_vec(),
        ),
        case(
            "key id u32::MAX",
            u32::MAX,
            "lobby",
            chat("lobby", "ann"),
            b"max".to_vec(),
        ),
        at(
            1,
            case(
                "epoch 1",
                1,
                "lobby",
                chat("lobby", "ann"),
                b"after a removal".to_vec(),
            ),
        ),
        at(
            2,
            case(
                "epoch 2, key id 3",
                3,
                "design",
                chat("design", "bob"),
                b"second reset".to_vec(),
            ),
        ),
        at(
            0x0102_0304,
            case(
                "epoch 0x01020304, non-ASCII room",
                1,
                "\u{fc}ber-raum",
                chat("\u{fc}ber-raum", "ann"),
                b"big-endian epoch".to_vec(),
            ),
        ),
        at(
            u32::MAX,
            case(
                "epoch u32::MAX, service room",
                1,
                "",
                b"order-42".to_vec(),
                b"last epoch".to_vec(),
            ),
        ),
    ]
}

fn sealer_for(master: &SecretKey, key_id: u32) -> Sealer {
    Sealer::new(Keyring::from_parts([(key_id, master.clone())], key_id, key_id).unwrap())
}

fn keyring_json(keys: &[(u32, &SecretKey)], primary: u32, min_decrypt: u32) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|(id, k)| json!({"id": id, "key": b64(k.expose())}))
        .collect();
    json!({"primary": primary, "min_decrypt": min_decrypt, "keys": keys})
}

fn generate() -> Value {
    let mut cases = Vec::new();
    for c in valid_cases() {
        let m = master(c.name);
        let nonce: [u8; 12] = det(&format!("chatseal/vectors/nonce/{}", c.name), 12)
            .try_into()
            .unwrap();
        let sealer = sealer_for(&m, c.key_id);
        let room = Room::at(&c.room, c.epoch);
        let env = sealer
            .seal_with_nonce(room, &c.context, &c.plaintext, &nonce)
            .unwrap();
        let room_key = sealer.room_key(room, c.key_id).unwrap();
        cases.push(json!({
            "name": c.name,
            "master_key": b64(m.expose()),
            "key_id": c.key_id,
            "room": c.room,
            "epoch": c.epoch,
            "context": b64(&c.context),
            "nonce": b64(&nonce),
            "plaintext": b64(&c.plaintext),
            "room_key": b64(room_key.key.expose()),
            "envelope": envelope::encode_text(&env),
        }));
    }
    json!({
        "format": "chatseal sealed envelope, version 1",
        "spec": "docs/format.md",
        "generated_by": "CHATSEAL_WRITE_VECTORS=1 cargo test -p chatseal-core envelope_v1",
        "cases": cases,
        "invalid": invalid_cases(),
    })
}

fn invalid_cases() -> Vec<Value> {
    let a = master("invalid/a");
    let b = master("invalid/b");
    let room = "lobby";
    let ctx = chat_context(room, "m-1", "ann");
    let nonce: [u8; 12] = det("chatseal/vectors/nonce/invalid", 12)
        .try_into()
        .unwrap();
    let base = sealer_for(&a, 1)
        .seal_with_nonce(room, &ctx, b"attack at dawn, bring snacks", &nonce)
        .unwrap();
    let epoch_1 = sealer_for(&a, 1)
        .seal_with_nonce(
            Room::at(room, 1),
            &ctx,
            b"attack at dawn, bring snacks",
            &nonce,
        )
        .unwrap();
    let room = Room::from(room);
    let only_a = keyring_json(&[(1, &a)], 1, 1);
    let a_and_b = keyring_json(&[(1, &a), (2, &b)], 2, 1);
    let a_retired = keyring_json(&[(1, &a), (2, &b)], 2, 2);

    let edit = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut e = base.clone();
        f(&mut e);
        envelope::encode_text(&e)
    };
    let text = envelope::encode_text(&base);
    let mut out = Vec::new();
    let mut push =
        |name: &str, keyring: &Value, room: Room<'_>, context: &[u8], env: String, error: &str| {
            out.push(json!({
                "name": name,
                "keyring": keyring,
                "room": room.name,
                "epoch": room.epoch,
                "context": b64(context),
                "envelope": env,
                "error": error,
            }));
        };
    let last = base.len() - 1;
    push(
        "tag altered",
        &only_a,
        room,
        &ctx,
        edit(&|e| e[last] ^= 0x01),
        "BAD_TAG",
    );
    push(
        "ciphertext altered",
        &only_a,
        room,
        &ctx,
        edit(&|e| e[HEADER_LEN] ^= 0x80),
        "BAD_TAG",
    );
    push(
        "nonce altered",
        &only_a,
        room,
        &ctx,
        edit(&|e| e[6] ^= 0x01),
        "BAD_TAG",
    );
    push(
        "tag removed",
        &only_a,
        room,
        &ctx,
        edit(&|e| e.truncate(e.len() - 16)),
        "BAD_TAG",
    );
    push(
        "byte appended",
        &only_a,
        room,
        &ctx,
        edit(&|e| e.push(0)),
        "BAD_TAG",
    );
    push(
        "context altered (other sender)",
        &only_a,
        room,
        &chat_context(room.name, "m-1", "eve"),
        text.clone(),
        "BAD_TAG",
    );
    push(
        "context altered (other id)",
        &only_a,
        room,
        &chat_context(room.name, "m-2", "ann"),
        text.clone(),
        "BAD_TAG",
    );
    push(
        "context missing",
        &only_a,
        room,
        b"",
        text.clone(),
        "BAD_TAG",
    );
    push(
        "other room",
        &only_a,
        "general".into(),
        &ctx,
        text.clone(),
        "BAD_TAG",
    );
    push(
        "key id changed to another key",
        &a_and_b,
        room,
        &ctx,
        edit(&|e| e[5] = 2),
        "BAD_TAG",
    );
    push(
        "key id changed to an unknown key",
        &only_a,
        room,
        &ctx,
        edit(&|e| e[5] = 9),
        "UNKNOWN_KEY",
    );
    push(
        "key id retired",
        &a_retired,
        room,
        &ctx,
        text.clone(),
        "RETIRED_KEY",
    );
    push(
        "version 2",
        &only_a,
        room,
        &ctx,
        edit(&|e| e[0] = 2),
        "UNSUPPORTED_VERSION",
    );
    push(
        "version 0",
        &only_a,
        room,
        &ctx,
        edit(&|e| e[0] = 0),
        "UNSUPPORTED_VERSION",
    );
    push(
        "algorithm 2",
        &only_a,
        room,
        &ctx,
        edit(&|e| e[1] = 2),
        "UNSUPPORTED_ALGORITHM",
    );
    push(
        "truncated to 33 bytes",
        &only_a,
        room,
        &ctx,
        edit(&|e| e.truncate(33)),
        "MALFORMED",
    );
    push(
        "header only",
        &only_a,
        room,
        &ctx,
        edit(&|e| e.truncate(HEADER_LEN)),
        "MALFORMED",
    );
    push(
        "one byte",
        &only_a,
        room,
        &ctx,
        edit(&|e| e.truncate(1)),
        "MALFORMED",
    );
    push("empty", &only_a, room, &ctx, String::new(), "MALFORMED");
    push(
        "epoch 1 envelope opened as epoch 0",
        &only_a,
        room,
        &ctx,
        envelope::encode_text(&epoch_1),
        "BAD_TAG",
    );
    push(
        "epoch 0 envelope opened as epoch 1",
        &only_a,
        Room::at(room.name, 1),
        &ctx,
        text.clone(),
        "BAD_TAG",
    );
    push(
        "epoch 1 envelope opened as epoch 2",
        &only_a,
        Room::at(room.name, 2),
        &ctx,
        envelope::encode_text(&epoch_1),
        "BAD_TAG",
    );
    push(
        "not base64",
        &only_a,
        room,
        &ctx,
        "@@@@".into(),
        "BAD_ENCODING",
    );
    push(
        "base64 without padding",
        &only_a,
        room,
        &ctx,
        text.trim_end_matches('=').into(),
        "BAD_ENCODING",
    );
    push(
        "base64 with a newline",
        &only_a,
        room,
        &ctx,
        format!("{}\n{}", &text[..8], &text[8..]),
        "BAD_ENCODING",
    );
    push(
        "URL-safe base64 alphabet",
        &only_a,
        room,
        &ctx,
        STANDARD
            .encode([0xfb, 0xff])
            .replace('+', "-")
            .replace('/', "_"),
        "BAD_ENCODING",
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

#[test]
fn envelope_v1_vectors_are_committed_and_current() {
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

/// The committed file, read as any other implementation reads it.
#[test]
fn envelope_v1_vectors_open_and_reproduce() {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(super::repo_dir().join(FILE)).unwrap())
            .unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let m = SecretKey::from_slice(&d(c, "master_key")).unwrap();
        let key_id = u32::try_from(c["key_id"].as_u64().unwrap()).unwrap();
        let room = Room::at(
            c["room"].as_str().unwrap(),
            u32::try_from(c["epoch"].as_u64().unwrap()).unwrap(),
        );
        let (ctx, pt) = (d(c, "context"), d(c, "plaintext"));
        let sealer = sealer_for(&m, key_id);
        assert_eq!(
            sealer
                .room_key(room, key_id)
                .unwrap()
                .key
                .expose()
                .as_slice(),
            d(c, "room_key"),
            "{name}"
        );
        let env = c["envelope"].as_str().unwrap();
        assert_eq!(
            &**sealer.open_text(room, &ctx, env).unwrap(),
            pt.as_slice(),
            "{name}"
        );
        let nonce: [u8; 12] = d(c, "nonce").try_into().unwrap();
        let again = sealer.seal_with_nonce(room, &ctx, &pt, &nonce).unwrap();
        assert_eq!(envelope::encode_text(&again), env, "{name}");
    }
    let invalid = doc["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 7);
    for c in invalid {
        let name = c["name"].as_str().unwrap();
        let keyring = Keyring::from_json(&c["keyring"].to_string()).unwrap();
        let sealer = Sealer::new(keyring);
        let err = sealer
            .open_text(
                Room::at(
                    c["room"].as_str().unwrap(),
                    u32::try_from(c["epoch"].as_u64().unwrap()).unwrap(),
                ),
                &d(c, "context"),
                c["envelope"].as_str().unwrap(),
            )
            .expect_err(name);
        assert_eq!(err.kind().code(), c["error"].as_str().unwrap(), "{name}");
    }
}
