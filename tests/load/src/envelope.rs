//! Opening delivered messages as a client does: the room key from `join`,
//! associated data = header ‖ room ‖ 0 ‖ id ‖ 0 ‖ sender (docs/format.md).
//! Written against `ring` directly, not chatseal-core, so the load tool
//! checks the servers' envelopes independently of the engine.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::opened::Opened;
use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::Deserialize;

const HEADER: usize = 18;

/// A delivered `chat message`, read in place from the frame's text: at
/// hundreds of thousands of deliveries a second on the machine the server
/// runs on, every copy the load tool makes is CPU the server does not get.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub room: Cow<'a, str>,
    #[serde(borrow)]
    pub sender: Cow<'a, str>,
    #[serde(default)]
    pub key_id: u32,
    #[serde(borrow)]
    pub message: Cow<'a, str>,
}

/// The room keys one client holds, by room, then key id (with the key's
/// bytes, which [`Opened`] compares).
#[derive(Default)]
pub struct Keys {
    keys: HashMap<String, Vec<(u32, LessSafeKey, [u8; 32])>>,
}

/// A room key as a join ack carries it. Debug shows the id only.
#[derive(Deserialize)]
pub struct KeyEntry {
    pub id: u32,
    pub key: String,
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Buffers one client reuses for every delivery it opens.
#[derive(Default)]
pub struct Scratch {
    bytes: Vec<u8>,
    aad: Vec<u8>,
}

impl Keys {
    pub fn add(&mut self, room: &str, entries: &[KeyEntry]) -> anyhow::Result<()> {
        for e in entries {
            let bytes = base64::engine::general_purpose::STANDARD.decode(&e.key)?;
            let raw: [u8; 32] = bytes[..]
                .try_into()
                .map_err(|_| anyhow::anyhow!("a room key is not 32 bytes"))?;
            let key = UnboundKey::new(&AES_256_GCM, &raw).expect("32 bytes");
            let held = self.keys.entry(room.to_owned()).or_default();
            held.retain(|(id, _, _)| *id != e.id);
            held.push((e.id, LessSafeKey::new(key), raw));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn find(&self, msg: &Message<'_>) -> Option<(&LessSafeKey, &[u8; 32])> {
        let (_, key, raw) = self
            .keys
            .get(msg.room.as_ref())?
            .iter()
            .find(|(id, _, _)| *id == msg.key_id)?;
        Some((key, raw))
    }

    /// The plaintext of `msg` (in `scratch`), or `None` if it does not
    /// open. A copy of a message opened already (same envelope, context and
    /// key: see [`Opened`]) is not opened again; a message that opens is
    /// remembered for at most `copies` more deliveries.
    pub fn open<'s>(
        &self,
        msg: &Message<'_>,
        scratch: &'s mut Scratch,
        opened: &mut Opened,
        copies: u64,
    ) -> Option<&'s [u8]> {
        let (key, raw) = self.find(msg)?;
        if opened.recall(msg, raw, &mut scratch.bytes) {
            return Some(&scratch.bytes);
        }
        let plain = open_sealed(key, msg, scratch)?;
        opened.remember(msg, raw, plain, copies);
        Some(plain)
    }
}

fn open_sealed<'s>(
    key: &LessSafeKey,
    msg: &Message<'_>,
    scratch: &'s mut Scratch,
) -> Option<&'s [u8]> {
    let Scratch { bytes, aad } = scratch;
    bytes.clear();
    base64::engine::general_purpose::STANDARD
        .decode_vec(msg.message.as_bytes(), bytes)
        .ok()?;
    if bytes.len() < HEADER + 16 || bytes[0] != 1 || bytes[1] != 1 {
        return None;
    }
    let nonce = Nonce::try_assume_unique_for_key(&bytes[6..HEADER]).ok()?;
    aad.clear();
    aad.extend_from_slice(&bytes[..HEADER]);
    aad.extend_from_slice(msg.room.as_bytes());
    aad.push(0);
    aad.extend_from_slice(msg.id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(msg.sender.as_bytes());
    let plain = key
        .open_in_place(nonce, Aad::from(&aad[..]), &mut bytes[HEADER..])
        .ok()?;
    Some(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine's envelope vectors of chat messages
    /// (tests/vectors/envelope-v1.json: those whose context is room ‖ 0 ‖
    /// id ‖ 0 ‖ sender), each as (its room key, the delivery a server
    /// would send, the plaintext).
    fn vectors() -> Vec<(Keys, String, Vec<u8>)> {
        let text = include_str!("../../vectors/envelope-v1.json");
        let doc: serde_json::Value = serde_json::from_str(text).expect("vectors");
        let b64 = |v: &serde_json::Value| {
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().expect("text"))
                .expect("base64")
        };
        let chat: Vec<_> = doc["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .filter_map(|case| {
                let context = String::from_utf8(b64(&case["context"])).ok()?;
                let parts: Vec<&str> = context.split('\0').collect();
                let [room, id, sender] = parts[..] else {
                    return None;
                };
                (room == case["room"]).then_some(())?;
                let mut keys = Keys::default();
                keys.add(
                    room,
                    &[KeyEntry {
                        id: case["key_id"].as_u64().expect("key id") as u32,
                        key: case["room_key"].as_str().expect("key").to_owned(),
                    }],
                )
                .expect("room key");
                let delivery = serde_json::json!(["chat message", {
                    "id": id, "room": room, "sender": sender,
                    "keyId": case["key_id"], "seq": 1, "ts": 0,
                    "message": case["envelope"],
                }]);
                Some((keys, delivery.to_string(), b64(&case["plaintext"])))
            })
            .collect();
        assert!(chat.len() >= 10, "chat vectors: {}", chat.len());
        chat
    }

    #[test]
    fn a_room_key_is_not_shown_by_debug() {
        let entry = KeyEntry {
            id: 7,
            key: "c2VjcmV0LXJvb20ta2V5".into(),
        };
        let shown = format!("{entry:?}");
        assert!(
            !shown.contains("c2VjcmV0") && shown.contains("id: 7"),
            "{shown}"
        );
    }

    #[test]
    fn every_envelope_vector_opens_to_its_plaintext_and_its_copy_to_the_same() {
        let (mut scratch, mut opened) = (Scratch::default(), Opened::default());
        for (keys, raw, plaintext) in vectors() {
            let (_, msg): (Cow<str>, Message) = serde_json::from_str(&raw).expect("delivery");
            let first = keys
                .open(&msg, &mut scratch, &mut opened, 1)
                .map(<[u8]>::to_vec);
            assert_eq!(first.as_deref(), Some(&plaintext[..]), "{raw}");
            assert_eq!(opened.len(), 1, "remembered for its one copy");
            let copy = keys.open(&msg, &mut scratch, &mut opened, 1);
            assert_eq!(copy, Some(&plaintext[..]), "{raw}");
            assert_eq!(opened.len(), 0, "forgotten after its last copy");
        }
    }

    #[test]
    fn a_delivery_that_differs_from_an_opened_one_in_anything_is_opened_on_its_own() {
        let (mut scratch, mut opened) = (Scratch::default(), Opened::default());
        let (keys, raw, plaintext) = vectors().swap_remove(1);
        let (_, msg): (Cow<str>, Message) = serde_json::from_str(&raw).expect("delivery");
        // The genuine message, opened and remembered for its copies.
        assert!(keys.open(&msg, &mut scratch, &mut opened, 100).is_some());

        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(msg.message.as_bytes())
            .expect("base64");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let altered = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let tampered = Message {
            message: Cow::Owned(altered),
            ..msg.clone()
        };
        let other_sender = Message {
            sender: Cow::Borrowed("mallory"),
            ..msg.clone()
        };
        let other_key_id = Message {
            key_id: msg.key_id + 1,
            ..msg.clone()
        };
        for (what, copy) in [
            ("an altered envelope", &tampered),
            ("another sender", &other_sender),
            ("an unknown key id", &other_key_id),
        ] {
            assert_eq!(
                keys.open(copy, &mut scratch, &mut opened, 100),
                None,
                "{what}"
            );
            assert_eq!(
                keys.open(copy, &mut scratch, &mut Opened::default(), 0),
                None,
                "{what}"
            );
        }

        // A client handed another key under the same room and key id (a
        // server bug) cannot open the message, memo or not.
        let mut wrong = Keys::default();
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let room = msg.room.as_ref();
        wrong
            .add(
                room,
                &[KeyEntry {
                    id: msg.key_id,
                    key,
                }],
            )
            .expect("key");
        assert_eq!(wrong.open(&msg, &mut scratch, &mut opened, 100), None);

        // The genuine copy still opens, from the memo.
        let (_, raw_key) = keys.find(&msg).expect("key");
        assert!(opened.recall(&msg, raw_key, &mut Vec::new()));
        assert_eq!(
            keys.open(&msg, &mut scratch, &mut opened, 100),
            Some(&plaintext[..])
        );
    }

    #[test]
    fn the_memo_stays_bounded_when_copies_never_come() {
        let mut opened = Opened::default();
        let (_, raw, plaintext) = vectors().swap_remove(0);
        let (_, msg): (Cow<str>, Message) = serde_json::from_str(&raw).expect("delivery");
        for n in 0..3 * crate::opened::GENERATION {
            let id = format!("message-{n}");
            let copy = Message {
                id: Cow::Owned(id),
                ..msg.clone()
            };
            opened.remember(&copy, &[1; 32], &plaintext, 99);
        }
        assert!(
            opened.len() <= 2 * crate::opened::GENERATION,
            "{}",
            opened.len()
        );
    }
}
