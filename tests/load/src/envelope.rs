//! Opening delivered messages as a client does: the room key from `join`,
//! associated data = header ‖ room ‖ 0 ‖ id ‖ 0 ‖ sender (docs/format.md).
//! Written against `ring` directly, not chatseal-core, so the load tool
//! checks the servers' envelopes independently of the engine.

use std::borrow::Cow;
use std::collections::HashMap;

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

/// The room keys one client holds, by room, then key id.
#[derive(Default)]
pub struct Keys {
    keys: HashMap<String, Vec<(u32, LessSafeKey)>>,
}

#[derive(Debug, Deserialize)]
pub struct KeyEntry {
    pub id: u32,
    pub key: String,
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
            let key = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| anyhow::anyhow!("a room key is not 32 bytes"))?;
            let held = self.keys.entry(room.to_owned()).or_default();
            held.retain(|(id, _)| *id != e.id);
            held.push((e.id, LessSafeKey::new(key)));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The plaintext of `msg` (in `scratch`), or `None` if it does not open.
    pub fn open<'s>(&self, msg: &Message<'_>, scratch: &'s mut Scratch) -> Option<&'s [u8]> {
        let (_, key) = self
            .keys
            .get(msg.room.as_ref())?
            .iter()
            .find(|(id, _)| *id == msg.key_id)?;
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
    fn every_envelope_vector_opens_to_its_plaintext_with_one_scratch() {
        let mut scratch = Scratch::default();
        for (keys, raw, plaintext) in vectors() {
            let (_, msg): (Cow<str>, Message) = serde_json::from_str(&raw).expect("delivery");
            assert_eq!(keys.open(&msg, &mut scratch), Some(&plaintext[..]), "{raw}");
        }
    }

    #[test]
    fn an_altered_envelope_or_context_or_unknown_key_does_not_open() {
        let mut scratch = Scratch::default();
        let (keys, raw, _) = vectors().swap_remove(1);
        let (_, msg): (Cow<str>, Message) = serde_json::from_str(&raw).expect("delivery");
        assert!(keys.open(&msg, &mut scratch).is_some());

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
        assert_eq!(keys.open(&tampered, &mut scratch), None);

        let other_sender = Message {
            sender: Cow::Borrowed("mallory"),
            ..msg.clone()
        };
        assert_eq!(keys.open(&other_sender, &mut scratch), None);

        let other_key = Message {
            key_id: msg.key_id + 1,
            ..msg.clone()
        };
        assert_eq!(keys.open(&other_key, &mut scratch), None);
    }
}
