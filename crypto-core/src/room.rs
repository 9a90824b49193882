//! Rooms: their names and their keys (DESIGN §2).
//!
//! A room key is `HKDF-SHA256(ikm = master key, salt = empty,
//! info = "chatseal/v1/room-key" ‖ 0x00 ‖ room)`, 32 bytes. A member of a
//! room is given that room's keys and never a master key, so a leaked room
//! key exposes one room only. The room name is the last field of `info`, so
//! no two names share an `info` string.
//!
//! A room also has a key **epoch** (docs/format.md §1): epoch 0 is the
//! derivation above, so every envelope sealed before epochs existed still
//! opens; epoch `e > 0` appends `0x00 ‖ be32(e)` to `info`. A new epoch starts
//! when a room forgets members (a removal, a room made private): whoever
//! kept the keys of older epochs cannot derive the new one without a master
//! key. The epoch is authenticated by the derivation itself: an envelope
//! opened under any other epoch has another key and fails its tag.

use ring::hkdf;

use crate::error::{Error, Result};
use crate::secret::{KEY_LEN, SecretKey};

/// Most characters (Unicode scalar values) in a room name.
pub const MAX_ROOM_CHARS: usize = 64;

/// The `info` prefix of room-key derivation, before the 0x00 separator.
pub const ROOM_KEY_INFO: &[u8] = b"chatseal/v1/room-key";

/// Checks a room name that the engine may seal under: at most 64
/// characters and no control characters. The empty name is allowed here
/// because the `/encrypt` service seals under room `""`; chat rooms must
/// also pass [`validate_chat_room`].
pub fn validate_room(room: &str) -> Result<()> {
    let mut chars = 0usize;
    for c in room.chars() {
        if c.is_control() {
            return Err(Error::InvalidRoom("control characters are not allowed"));
        }
        chars += 1;
        if chars > MAX_ROOM_CHARS {
            return Err(Error::InvalidRoom("longer than 64 characters"));
        }
    }
    Ok(())
}

/// Checks the name of a chat room: as [`validate_room`], and not empty.
pub fn validate_chat_room(room: &str) -> Result<()> {
    if room.is_empty() {
        return Err(Error::InvalidRoom("empty"));
    }
    validate_room(room)
}

/// A room and its key epoch: what a room key is derived from besides the
/// master key. `"design".into()` is epoch 0, the derivation every room had
/// before epochs existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Room<'a> {
    pub name: &'a str,
    pub epoch: u32,
}

impl<'a> Room<'a> {
    /// `name` at epoch `epoch`.
    pub fn at(name: &'a str, epoch: u32) -> Self {
        Self { name, epoch }
    }
}

impl<'a> From<&'a str> for Room<'a> {
    fn from(name: &'a str) -> Self {
        Self { name, epoch: 0 }
    }
}

impl<'a> From<&'a String> for Room<'a> {
    fn from(name: &'a String) -> Self {
        Self { name, epoch: 0 }
    }
}

struct KeyLen;

impl hkdf::KeyType for KeyLen {
    fn len(&self) -> usize {
        KEY_LEN
    }
}

/// Derives the key of `room` (a name, or a name at an epoch) from a master
/// key. The room name is validated first, so every implementation rejects
/// the same names.
pub fn derive_room_key<'a>(master: &SecretKey, room: impl Into<Room<'a>>) -> Result<SecretKey> {
    let room = room.into();
    validate_room(room.name)?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(master.expose());
    // Epoch 0 keeps the original `info`; a later epoch appends
    // 0x00 ‖ be32(epoch) (a room name holds no NUL, so this is unambiguous).
    let mut epoch = [0u8; 5];
    epoch[1..].copy_from_slice(&room.epoch.to_be_bytes());
    let suffix: &[u8] = if room.epoch == 0 { &[] } else { &epoch };
    let info = [ROOM_KEY_INFO, &[0u8], room.name.as_bytes(), suffix];
    let okm = prk
        .expand(&info, KeyLen)
        .expect("32 bytes is within HKDF-SHA256's output limit");
    let mut out = [0u8; KEY_LEN];
    okm.fill(&mut out).expect("length matches KeyLen");
    let key = SecretKey::from_bytes(out);
    zeroize::Zeroize::zeroize(&mut out);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        for ok in [
            "",
            "lobby",
            "über-raum",
            "日本語のチャット",
            &"x".repeat(64),
            &"é".repeat(64),
        ] {
            assert!(validate_room(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "a\0b",
            "tab\there",
            "new\nline",
            "\u{7f}",
            "\u{85}",
            &"x".repeat(65),
        ] {
            assert!(validate_room(bad).is_err(), "{bad:?}");
        }
        assert!(validate_chat_room("").is_err());
        assert!(validate_chat_room("lobby").is_ok());
    }

    #[test]
    fn different_rooms_and_masters_give_different_keys() {
        let m1 = SecretKey::from_bytes([1; 32]);
        let m2 = SecretKey::from_bytes([2; 32]);
        let a = derive_room_key(&m1, "a").unwrap();
        assert_ne!(a.expose(), derive_room_key(&m1, "b").unwrap().expose());
        assert_ne!(a.expose(), derive_room_key(&m2, "a").unwrap().expose());
        assert_eq!(a.expose(), derive_room_key(&m1, "a").unwrap().expose());
        assert_eq!(
            a.expose(),
            derive_room_key(&m1, Room::at("a", 0)).unwrap().expose()
        );
        let e1 = derive_room_key(&m1, Room::at("a", 1)).unwrap();
        assert_ne!(a.expose(), e1.expose());
        assert_ne!(
            e1.expose(),
            derive_room_key(&m1, Room::at("a", 2)).unwrap().expose()
        );
        assert_ne!(
            e1.expose(),
            derive_room_key(&m1, Room::at("b", 1)).unwrap().expose()
        );
    }

    /// RFC 5869 HKDF-SHA256 on chatseal's inputs, computed with HMAC from
    /// ring directly (PRK = HMAC(0^32, ikm); OKM = HMAC(PRK, info ‖ 0x01)):
    /// an independent check that the derivation is plain HKDF.
    #[test]
    fn derivation_is_rfc5869_hkdf_sha256() {
        use ring::hmac;
        let master = SecretKey::from_bytes(*b"0123456789abcdef0123456789abcdef");
        let prk = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &[0u8; 32]),
            master.expose(),
        );
        let mut info = b"chatseal/v1/room-key\0lobby".to_vec();
        info.push(1);
        let okm = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()), &info);
        assert_eq!(
            derive_room_key(&master, "lobby").unwrap().expose(),
            okm.as_ref()
        );
        // Epoch 7: info gains 0x00 ‖ be32(7).
        let mut info = b"chatseal/v1/room-key\0lobby\0\0\0\0\x07".to_vec();
        info.push(1);
        let okm = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()), &info);
        assert_eq!(
            derive_room_key(&master, Room::at("lobby", 7))
                .unwrap()
                .expose(),
            okm.as_ref()
        );
    }
}
