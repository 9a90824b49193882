//! Properties of the public API that must hold for every input.

use chatseal_core::{Keyring, Sealer, decode_text, encode_text};
use proptest::prelude::*;

fn room() -> impl Strategy<Value = String> {
    // 0–64 characters, any non-control Unicode.
    proptest::collection::vec(
        any::<char>().prop_filter("no controls", |c| !c.is_control()),
        0..=64,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn sealer() -> &'static Sealer {
    static SEALER: std::sync::OnceLock<Sealer> = std::sync::OnceLock::new();
    SEALER.get_or_init(|| Sealer::new(Keyring::generate()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn open_inverts_seal(room in room(),
                         context in proptest::collection::vec(any::<u8>(), 0..600),
                         plaintext in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let s = sealer();
        let env = s.seal(&room, &context, &plaintext).unwrap();
        prop_assert_eq!(env.len(), plaintext.len() + chatseal_core::OVERHEAD);
        prop_assert_eq!(&**s.open(&room, &context, &env).unwrap(), plaintext.as_slice());
        let text = encode_text(&env);
        prop_assert_eq!(decode_text(&text).unwrap(), env.clone());
        prop_assert_eq!(&**s.open_text(&room, &context, &text).unwrap(), plaintext.as_slice());
    }

    #[test]
    fn any_flipped_bit_fails_to_open(room in room(),
                                     context in proptest::collection::vec(any::<u8>(), 0..64),
                                     plaintext in proptest::collection::vec(any::<u8>(), 0..256),
                                     bit in any::<prop::sample::Index>()) {
        let s = sealer();
        let mut env = s.seal(&room, &context, &plaintext).unwrap();
        let i = bit.index(env.len() * 8);
        env[i / 8] ^= 1 << (i % 8);
        prop_assert!(s.open(&room, &context, &env).is_err(), "bit {} flipped and it opened", i);
    }

    #[test]
    fn sealing_twice_never_repeats(plaintext in proptest::collection::vec(any::<u8>(), 0..64)) {
        let s = sealer();
        prop_assert_ne!(s.seal("r", b"", &plaintext).unwrap(), s.seal("r", b"", &plaintext).unwrap());
    }

    #[test]
    fn garbage_never_opens_and_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                                            text in ".{0,80}") {
        let s = sealer();
        prop_assert!(s.open("r", b"", &bytes).is_err());
        prop_assert!(s.open_text("r", b"", &text).is_err());
    }
}

#[test]
fn errors_and_debug_never_carry_plaintext_or_keys() {
    let keyring = Keyring::generate();
    let key_b64 = keyring.primary_key().to_base64();
    let s = Sealer::new(keyring);
    let secret = b"TOP-SECRET-PLAINTEXT";
    let env = s.seal("lobby", b"ctx", secret).unwrap();
    let err = s.open("lobby", b"other", &env).unwrap_err();
    let shown = format!("{err} {err:?} {s:?} {:?}", s.keyring());
    assert!(!shown.contains("TOP-SECRET"));
    assert!(!shown.contains(key_b64.as_str()));
}
