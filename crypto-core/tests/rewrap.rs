//! `Sealer::rewrap`: re-sealing under the primary key, checked against the
//! shared vectors (`tests/vectors/envelope-v1.json`) that every face runs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chatseal_core::{
    ErrorKind, Header, Keyring, RewrapRequest, Rewrapped, Room, Sealer, SecretKey, decode_text,
    encode_text,
};
use proptest::prelude::*;
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/envelope-v1.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn d(v: &Value, field: &str) -> Vec<u8> {
    STANDARD.decode(v[field].as_str().unwrap()).unwrap()
}

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap()
}

/// A vector's room at its key epoch.
fn vector_room<'a>(v: &'a Value) -> Room<'a> {
    Room::at(
        s(v, "room"),
        u32::try_from(v["epoch"].as_u64().unwrap()).unwrap(),
    )
}

/// A key id other than `id`, for "a newer primary" (`u32::MAX` has no newer
/// one, so it gets the one below).
fn other_id(id: u32) -> u32 {
    id.checked_add(1).unwrap_or_else(|| id - 1)
}

fn resealed<T>(r: Rewrapped<T>) -> (u32, T) {
    match r {
        Rewrapped::Resealed { key_id, envelope } => (key_id, envelope),
        Rewrapped::Unchanged => panic!("expected a resealed envelope, got Unchanged"),
    }
}

#[test]
fn every_valid_vector_rewraps_to_the_new_primary_and_opens_the_same() {
    let doc = vectors();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for c in cases {
        let name = s(c, "name");
        let old_id = u32::try_from(c["key_id"].as_u64().unwrap()).unwrap();
        let new_id = other_id(old_id);
        let old = SecretKey::from_slice(&d(c, "master_key")).unwrap();
        let new = SecretKey::generate();
        let both = Sealer::new(
            Keyring::from_parts([(old_id, old.clone()), (new_id, new.clone())], new_id, 0).unwrap(),
        );
        let only_new = Sealer::new(Keyring::from_parts([(new_id, new)], new_id, 0).unwrap());
        let only_old = Sealer::new(Keyring::from_parts([(old_id, old)], old_id, 0).unwrap());
        let (room, ctx, pt, text) = (
            vector_room(c),
            d(c, "context"),
            d(c, "plaintext"),
            s(c, "envelope"),
        );

        // Text form, as the store keeps it.
        let (key_id, rewrapped) = resealed(both.rewrap_text(room, &ctx, text).expect(name));
        assert_eq!(key_id, new_id, "{name}");
        assert_ne!(rewrapped, text, "{name}");
        let bytes = decode_text(&rewrapped).unwrap();
        assert_eq!(Header::parse(&bytes).unwrap().key_id, new_id, "{name}");
        assert_eq!(bytes.len(), decode_text(text).unwrap().len(), "{name}");
        // Opens with the new key alone: it really is under the new key.
        assert_eq!(
            &**only_new.open_text(room, &ctx, &rewrapped).expect(name),
            pt.as_slice(),
            "{name}"
        );
        assert_eq!(
            &**both.open_text(room, &ctx, &rewrapped).expect(name),
            pt.as_slice(),
            "{name}"
        );
        assert_eq!(
            only_old
                .open_text(room, &ctx, &rewrapped)
                .unwrap_err()
                .kind(),
            ErrorKind::UnknownKey,
            "{name}"
        );
        // Room and context stay bound.
        let mut other_ctx = ctx.clone();
        other_ctx.push(0);
        assert_eq!(
            only_new
                .open_text(room, &other_ctx, &rewrapped)
                .unwrap_err()
                .kind(),
            ErrorKind::BadTag,
            "{name}"
        );
        assert_eq!(
            only_new
                .open_text("elsewhere", &ctx, &rewrapped)
                .unwrap_err()
                .kind(),
            ErrorKind::BadTag,
            "{name}"
        );

        // Binary form.
        let (key_id, env) = resealed(
            both.rewrap(room, &ctx, &decode_text(text).unwrap())
                .expect(name),
        );
        assert_eq!(key_id, new_id, "{name}");
        assert_eq!(
            &**only_new.open(room, &ctx, &env).expect(name),
            pt.as_slice(),
            "{name}"
        );

        // Already under the primary: nothing to do, and it says so.
        assert_eq!(
            both.rewrap_text(room, &ctx, &rewrapped).unwrap(),
            Rewrapped::Unchanged,
            "{name}"
        );
        assert_eq!(
            both.rewrap(room, &ctx, &env).unwrap(),
            Rewrapped::Unchanged,
            "{name}"
        );
        assert_eq!(
            only_old.rewrap_text(room, &ctx, text).unwrap(),
            Rewrapped::Unchanged,
            "{name}"
        );
    }
}

#[test]
fn wrong_room_or_context_fails_like_open() {
    let doc = vectors();
    for c in doc["cases"].as_array().unwrap() {
        let name = s(c, "name");
        let old_id = u32::try_from(c["key_id"].as_u64().unwrap()).unwrap();
        let new_id = other_id(old_id);
        let old = SecretKey::from_slice(&d(c, "master_key")).unwrap();
        let sealer = Sealer::new(
            Keyring::from_parts([(old_id, old), (new_id, SecretKey::generate())], new_id, 0)
                .unwrap(),
        );
        let (room, ctx, text) = (vector_room(c), d(c, "context"), s(c, "envelope"));
        let mut other_ctx = ctx.clone();
        other_ctx.push(b'!');
        let other_room = format!("{}x", room.name);
        for (r, cx) in [
            (room, other_ctx.as_slice()),
            (Room::at(&other_room, room.epoch), ctx.as_slice()),
            (Room::at(room.name, room.epoch ^ 1), ctx.as_slice()),
            (Room::at("bad\nroom", room.epoch), ctx.as_slice()),
        ] {
            let open = sealer.open_text(r, cx, text).unwrap_err().kind();
            let rewrap = sealer.rewrap_text(r, cx, text).unwrap_err().kind();
            assert_eq!(rewrap, open, "{name} in {r:?}");
        }
        assert_eq!(
            sealer
                .rewrap_text(room, &other_ctx, text)
                .unwrap_err()
                .kind(),
            ErrorKind::BadTag,
            "{name}"
        );
    }
}

/// The keyring of an invalid case with a fresh key added as primary (the
/// keyring a `keys rewrap` runs with after a rotation).
fn with_newer_primary(keyring: &Value) -> Keyring {
    let mut keyring = keyring.clone();
    let keys = keyring["keys"].as_array_mut().unwrap();
    let newest = keys
        .iter()
        .map(|k| k["id"].as_u64().unwrap())
        .max()
        .unwrap()
        + 1;
    let key = SecretKey::generate();
    keys.push(serde_json::json!({"id": newest, "key": STANDARD.encode(key.expose())}));
    keyring["primary"] = newest.into();
    Keyring::from_json(&keyring.to_string()).unwrap()
}

#[test]
fn invalid_vectors_give_the_error_codes_of_open() {
    let doc = vectors();
    let invalid = doc["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 20);
    for c in invalid {
        let name = s(c, "name");
        let (room, ctx, text) = (vector_room(c), d(c, "context"), s(c, "envelope"));
        let as_given = Sealer::new(Keyring::from_json(&c["keyring"].to_string()).unwrap());
        let rotated = Sealer::new(with_newer_primary(&c["keyring"]));
        for sealer in [&as_given, &rotated] {
            let before = sealer.seal_counts();
            let err = sealer.rewrap_text(room, &ctx, text).expect_err(name);
            assert_eq!(err.kind().code(), s(c, "error"), "{name}");
            assert_eq!(
                err.kind(),
                sealer.open_text(room, &ctx, text).unwrap_err().kind(),
                "{name}"
            );
            if let Ok(bytes) = decode_text(text) {
                let err = sealer.rewrap(room, &ctx, &bytes).expect_err(name);
                assert_eq!(err.kind().code(), s(c, "error"), "{name} (binary)");
            }
            assert_eq!(
                sealer.seal_counts(),
                before,
                "{name}: a failed rewrap sealed"
            );
        }
    }
}

#[test]
fn batch_uses_one_primary_and_reports_each_item() {
    let sealer = Sealer::new(Keyring::generate());
    let a = sealer.seal("a", b"1", b"one").unwrap();
    let b = sealer.seal("b", b"2", b"two").unwrap();
    sealer.rotate().unwrap();
    let current = sealer.seal("c", b"3", b"three").unwrap();
    let mut tampered = a.clone();
    *tampered.last_mut().unwrap() ^= 1;
    let req = |room, context, envelope| RewrapRequest {
        room,
        epoch: 0,
        context,
        envelope,
    };
    let out = sealer.rewrap_batch(&[
        req("a", b"1", &a),
        req("b", b"2", &b),
        req("c", b"3", &current),
        req("a", b"1", &tampered),
        req("a", b"X", &a),
    ]);
    assert_eq!(out.len(), 5);
    let mut out = out.into_iter();
    for (room, ctx, pt) in [("a", b"1", b"one".as_slice()), ("b", b"2", b"two")] {
        let (key_id, env) = resealed(out.next().unwrap().unwrap());
        assert_eq!(key_id, 2);
        assert_eq!(&**sealer.open(room, ctx, &env).unwrap(), pt);
    }
    assert!(out.next().unwrap().unwrap().is_unchanged());
    assert_eq!(out.next().unwrap().unwrap_err().kind(), ErrorKind::BadTag);
    assert_eq!(out.next().unwrap().unwrap_err().kind(), ErrorKind::BadTag);
    assert!(sealer.rewrap_batch(&[]).is_empty());
}

#[test]
fn a_reseal_counts_as_a_seal_and_unchanged_does_not() {
    let sealer = Sealer::new(Keyring::generate());
    let old = sealer.seal("r", b"", b"x").unwrap();
    sealer.rotate().unwrap();
    let new = resealed(sealer.rewrap("r", b"", &old).unwrap()).1;
    assert_eq!(sealer.seal_counts(), vec![(1, 1), (2, 1)]);
    assert!(sealer.rewrap("r", b"", &new).unwrap().is_unchanged());
    assert_eq!(sealer.seal_counts(), vec![(1, 1), (2, 1)]);
    // Two rewraps of one envelope use fresh nonces.
    let again = resealed(sealer.rewrap("r", b"", &old).unwrap()).1;
    assert_ne!(again, new);
}

#[test]
fn retired_keys_cannot_be_rewrapped_and_text_errors_match() {
    let sealer = Sealer::new(Keyring::generate());
    let old = sealer.seal_text("r", b"", b"x").unwrap();
    let mut kr = sealer.rotate().unwrap();
    kr.set_min_decrypt(2).unwrap();
    sealer.replace_keyring(kr);
    assert_eq!(
        sealer.rewrap_text("r", b"", &old).unwrap_err().kind(),
        ErrorKind::RetiredKey
    );
    assert_eq!(
        sealer
            .rewrap_text("r", b"", "not base64!")
            .unwrap_err()
            .kind(),
        ErrorKind::BadEncoding
    );
    assert_eq!(
        Rewrapped::Resealed {
            key_id: 2,
            envelope: "e".to_string()
        }
        .into_envelope(),
        Some("e".to_string())
    );
    assert_eq!(Rewrapped::<String>::Unchanged.into_envelope(), None);
}

fn room() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        any::<char>().prop_filter("no controls", |c| !c.is_control()),
        0..=64,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rewrap_after_rotation_preserves_the_message(room in room(),
                                                   context in proptest::collection::vec(any::<u8>(), 0..300),
                                                   plaintext in proptest::collection::vec(any::<u8>(), 0..2000),
                                                   rotations in 1u32..4) {
        let sealer = Sealer::new(Keyring::generate());
        let env = sealer.seal_text(&room, &context, &plaintext).unwrap();
        for _ in 0..rotations {
            sealer.rotate().unwrap();
        }
        let (key_id, new) = resealed(sealer.rewrap_text(&room, &context, &env).unwrap());
        prop_assert_eq!(key_id, 1 + rotations);
        prop_assert_eq!(&**sealer.open_text(&room, &context, &new).unwrap(), plaintext.as_slice());
        prop_assert!(sealer.rewrap_text(&room, &context, &new).unwrap().is_unchanged());
    }

    #[test]
    fn rewrap_fails_exactly_when_open_fails(bytes in proptest::collection::vec(any::<u8>(), 0..120),
                                            bit in any::<prop::sample::Index>(),
                                            flip in any::<bool>()) {
        let sealer = Sealer::new(Keyring::generate());
        let mut env = sealer.seal("r", b"c", &bytes).unwrap();
        sealer.rotate().unwrap();
        if flip {
            let i = bit.index(env.len() * 8);
            env[i / 8] ^= 1 << (i % 8);
        }
        let open = sealer.open("r", b"c", &env).map(|_| ()).map_err(|e| e.kind());
        let rewrap = sealer.rewrap("r", b"c", &env).map(|_| ()).map_err(|e| e.kind());
        prop_assert_eq!(open, rewrap);
        let text = encode_text(&env);
        let rewrap_text = sealer.rewrap_text("r", b"c", &text).map(|_| ()).map_err(|e| e.kind());
        prop_assert_eq!(open, rewrap_text);
    }
}
