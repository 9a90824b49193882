//! Opening delivered messages as a client does: the room key from `join`,
//! associated data = header ‖ room ‖ 0 ‖ id ‖ 0 ‖ sender (docs/format.md).
//! Written against `ring` directly, not chatseal-core, so the load tool
//! checks the servers' envelopes independently of the engine.

use std::collections::HashMap;

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::Deserialize;

const HEADER: usize = 18;

/// A delivered `chat message`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    pub room: String,
    pub sender: String,
    #[serde(default)]
    pub key_id: u32,
    pub message: String,
}

/// The room keys one client holds, by (room, key id).
#[derive(Default)]
pub struct Keys {
    keys: HashMap<(String, u32), LessSafeKey>,
}

#[derive(Debug, Deserialize)]
pub struct KeyEntry {
    pub id: u32,
    pub key: String,
}

impl Keys {
    pub fn add(&mut self, room: &str, entries: &[KeyEntry]) -> anyhow::Result<()> {
        for e in entries {
            let bytes = base64::engine::general_purpose::STANDARD.decode(&e.key)?;
            let key = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| anyhow::anyhow!("a room key is not 32 bytes"))?;
            self.keys
                .insert((room.to_owned(), e.id), LessSafeKey::new(key));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The plaintext of `msg`, or `None` if it does not open.
    pub fn open(&self, msg: &Message) -> Option<Vec<u8>> {
        let key = self.keys.get(&(msg.room.clone(), msg.key_id))?;
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(&msg.message)
            .ok()?;
        if bytes.len() < HEADER + 16 || bytes[0] != 1 || bytes[1] != 1 {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&bytes[6..HEADER]).ok()?;
        let mut aad = bytes[..HEADER].to_vec();
        aad.extend_from_slice(msg.room.as_bytes());
        aad.push(0);
        aad.extend_from_slice(msg.id.as_bytes());
        aad.push(0);
        aad.extend_from_slice(msg.sender.as_bytes());
        let plain = key
            .open_in_place(nonce, Aad::from(&aad), &mut bytes[HEADER..])
            .ok()?;
        Some(plain.to_vec())
    }
}
