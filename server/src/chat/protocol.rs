//! The payloads of DESIGN §3, and their validation.
//!
//! Every incoming payload is parsed here into a typed request or refused
//! with a [`Failure`] that becomes `{ ok: false, error: { code, message } }`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Code;
use crate::store::StoredMessage;

/// The room every socket is in from connect on.
pub const LOBBY: &str = "lobby";
/// Longest `clientId` kept for dedup.
pub const MAX_CLIENT_ID: usize = 128;

/// A refused request: the error half of an ack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: Code,
    pub message: String,
}

impl Failure {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// The ack a client receives.
    pub fn to_ack(&self) -> Value {
        serde_json::json!({
            "ok": false,
            "error": { "code": self.code.as_str(), "message": self.message },
        })
    }
}

/// `join` / `leave`: `{ room, since? }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomRequest {
    pub room: String,
    #[serde(default)]
    pub since: Option<i64>,
}

/// `chat message` from a client: `{ message, room?, clientId? }`. A bare
/// string is taken as `{ message }` in the lobby, as the tutorial's client
/// sends it.
///
/// Read straight from the packet's text, not through a `serde_json::Value`
/// first, which builds a map and a string per key only to move the fields
/// out again. It holds the plaintext, so `Debug` shows its length only.
pub struct SendRequest {
    pub message: String,
    pub room: String,
    pub client_id: Option<String>,
}

/// Shows where a message goes, never what it says.
impl std::fmt::Debug for SendRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendRequest")
            .field("message_bytes", &self.message.len())
            .field("room", &self.room)
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// The fields a `chat message` object may have; any other is refused.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum SendField {
    Message,
    Room,
    ClientId,
}

impl<'de> Deserialize<'de> for SendRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> serde::de::Visitor<'de> for Shape {
            type Value = SendRequest;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an object")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SendRequest, E> {
                self.visit_string(text.to_owned())
            }

            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<SendRequest, E> {
                Ok(SendRequest {
                    message: text,
                    room: LOBBY.to_owned(),
                    client_id: None,
                })
            }

            // A field given twice counts once, the last time, as in the
            // Node server (JSON.parse) and as read through a JSON value.
            // Anything but a string or an object (an array too, which serde
            // would otherwise take as a struct's fields in order) is refused.
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut fields: A,
            ) -> Result<SendRequest, A::Error> {
                let (mut message, mut room, mut client_id) = (None, None::<String>, None);
                while let Some(field) = fields.next_key()? {
                    match field {
                        SendField::Message => message = Some(fields.next_value()?),
                        SendField::Room => room = fields.next_value()?,
                        SendField::ClientId => client_id = fields.next_value()?,
                    }
                }
                Ok(SendRequest {
                    message: message.ok_or_else(|| serde::de::Error::missing_field("message"))?,
                    room: room.unwrap_or_else(|| LOBBY.to_owned()),
                    client_id,
                })
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

/// A room name as chat rooms allow it (DESIGN §2).
pub fn check_room(room: &str) -> Result<(), Failure> {
    chatseal_core::validate_chat_room(room)
        .map_err(|e| Failure::new(Code::BadRequest, e.to_string()))
}

/// A JSON object, or `BAD_REQUEST`: serde would also fill a struct from an
/// array (`["lobby"]` as `{ room }`), which the Node server refuses.
fn object(value: Value, shape: &str) -> Result<Value, Failure> {
    match value {
        Value::Object(_) => Ok(value),
        _ => Err(Failure::new(
            Code::BadRequest,
            format!("expected {shape}: the payload is not an object"),
        )),
    }
}

/// The one payload of an event, or `BAD_REQUEST`.
fn payload(data: Result<Value, String>) -> Result<Value, Failure> {
    data.map_err(|e| Failure::new(Code::BadRequest, format!("unreadable payload: {e}")))
}

/// `refresh`: `{ token }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    token: chatseal_core::Zeroizing<String>,
}

/// The token of a `refresh`, or `BAD_REQUEST`.
pub fn parse_refresh_request(
    data: Result<Value, String>,
) -> Result<chatseal_core::Zeroizing<String>, Failure> {
    let req: RefreshRequest = serde_json::from_value(object(payload(data)?, "{ token }")?)
        .map_err(|_| Failure::new(Code::BadRequest, "expected { token }: a string"))?;
    Ok(req.token)
}

pub fn parse_room_request(data: Result<Value, String>) -> Result<RoomRequest, Failure> {
    let req: RoomRequest = serde_json::from_value(object(payload(data)?, "{ room, since? }")?)
        .map_err(|e| {
            Failure::new(
                Code::BadRequest,
                format!("expected {{ room, since? }}: {e}"),
            )
        })?;
    check_room(&req.room)?;
    if req.since.is_some_and(|s| s < 0) {
        return Err(Failure::new(Code::BadRequest, "since is a seq, 0 or more"));
    }
    Ok(req)
}

/// `typing`: `{ room, typing? }` (`typing` defaults to true).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypingRequest {
    pub room: String,
    #[serde(default = "yes")]
    pub typing: bool,
}

const fn yes() -> bool {
    true
}

pub fn parse_typing_request(data: Result<Value, String>) -> Result<TypingRequest, Failure> {
    let req: TypingRequest = serde_json::from_value(object(payload(data)?, "{ room, typing? }")?)
        .map_err(|e| {
        Failure::new(
            Code::BadRequest,
            format!("expected {{ room, typing? }}: {e}"),
        )
    })?;
    check_room(&req.room)?;
    Ok(req)
}

/// What the others in the room receive as `typing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingOut {
    pub room: String,
    pub name: String,
    pub typing: bool,
}

pub fn parse_send_request(
    data: Result<SendRequest, String>,
    max_message_bytes: usize,
) -> Result<SendRequest, Failure> {
    let req = data.map_err(|e| {
        Failure::new(
            Code::BadRequest,
            format!("expected a string or {{ message, room?, clientId? }}: {e}"),
        )
    })?;
    check_room(&req.room)?;
    if req.message.len() > max_message_bytes {
        return Err(Failure::new(
            Code::TooLarge,
            format!("message is larger than {max_message_bytes} bytes"),
        ));
    }
    if let Some(id) = &req.client_id
        && (id.is_empty() || id.len() > MAX_CLIENT_ID)
    {
        return Err(Failure::new(
            Code::BadRequest,
            format!("clientId is 1 to {MAX_CLIENT_ID} bytes"),
        ));
    }
    Ok(req)
}

/// One room key as clients get it (in a join ack and a `room key` event).
/// The key text is wiped when dropped and never shown by `Debug`.
#[derive(Serialize)]
pub struct KeyOut {
    pub id: u32,
    /// The room key epoch it belongs to.
    pub epoch: u32,
    pub key: zeroize::Zeroizing<String>,
}

impl KeyOut {
    pub fn of(rk: &chatseal_core::sealer::RoomKey) -> Self {
        Self {
            id: rk.key_id,
            epoch: rk.epoch,
            key: rk.key.to_base64(),
        }
    }
}

impl std::fmt::Debug for KeyOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyOut")
            .field("id", &self.id)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// The `room key` event: a key of `room` for the sockets in it.
#[derive(Debug, Serialize)]
pub struct RoomKeyEvent<'a> {
    pub room: &'a str,
    pub key: KeyOut,
}

/// The ack of a successful `join`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinAck {
    pub ok: bool,
    pub room: String,
    /// The room's current key epoch: new messages are sealed under it.
    pub epoch: u32,
    /// The room's keys of every epoch up to `epoch` under every master
    /// key that may open envelopes: a member may read all the history.
    pub keys: Vec<KeyOut>,
    pub missed: Vec<StoredMessage>,
    pub latest_seq: i64,
    /// Which history the seqs belong to (docs/protocol.md §2).
    pub history_id: String,
    /// Who is online in the room, the joiner included; `null` when the
    /// room is too large for presence.
    pub presence: Option<Vec<String>>,
}

/// The ack of a stored `chat message`.
#[derive(Debug, Serialize)]
pub struct SendAck<'a> {
    pub ok: bool,
    pub id: &'a str,
    pub seq: i64,
    pub ts: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A `chat message` payload read as socketioxide reads it: typed,
    /// straight from the packet's JSON text.
    fn parse_send(payload: &Value, max: usize) -> Result<SendRequest, Failure> {
        let read = serde_json::from_str::<SendRequest>(&payload.to_string());
        parse_send_request(read.map_err(|e| e.to_string()), max)
    }

    #[test]
    fn send_requests_are_checked() {
        let ok = parse_send(&json!({"message": "hi", "room": "r", "clientId": "c1"}), 10).unwrap();
        assert_eq!(
            (
                ok.message.as_str(),
                ok.room.as_str(),
                ok.client_id.as_deref()
            ),
            ("hi", "r", Some("c1"))
        );
        let tutorial = parse_send(&json!("hi"), 10).unwrap();
        assert_eq!(
            (tutorial.message.as_str(), tutorial.room.as_str()),
            ("hi", LOBBY)
        );
        // Escapes are read into the text, not kept as written.
        let escaped = parse_send(&json!({"message": "a\"b\u{e9}\n"}), 10).unwrap();
        assert_eq!(escaped.message, "a\"b\u{e9}\n");
        let lobby = parse_send(&json!({"message": "hi", "room": null}), 10).unwrap();
        assert_eq!((lobby.room.as_str(), lobby.client_id), (LOBBY, None));
        let cases = [
            (json!({"message": "x".repeat(11)}), Code::TooLarge),
            (json!("x".repeat(11)), Code::TooLarge),
            (json!({"message": 5}), Code::BadRequest),
            (json!({"message": null}), Code::BadRequest),
            (json!({"text": "hi"}), Code::BadRequest),
            (json!({"message": "hi", "extra": 1}), Code::BadRequest),
            (json!({}), Code::BadRequest),
            (json!({"message": "hi", "room": ""}), Code::BadRequest),
            (
                json!({"message": "hi", "room": "a\u{0}b"}),
                Code::BadRequest,
            ),
            (json!({"message": "hi", "clientId": ""}), Code::BadRequest),
            (
                json!({"message": "hi", "clientId": "c".repeat(129)}),
                Code::BadRequest,
            ),
            (json!(null), Code::BadRequest),
            (json!(5), Code::BadRequest),
            (json!(true), Code::BadRequest),
            (json!([1, 2]), Code::BadRequest),
            // serde fills a struct from an array; the protocol does not.
            (json!(["hi"]), Code::BadRequest),
            (json!(["hi", "r", "c1"]), Code::BadRequest),
        ];
        for (payload, code) in cases {
            assert_eq!(
                parse_send(&payload, 10).unwrap_err().code,
                code,
                "{payload}"
            );
        }
        // A field given twice counts the last time, as JSON.parse has it.
        let twice = |text: &str| {
            let read = serde_json::from_str::<SendRequest>(text);
            parse_send_request(read.map_err(|e| e.to_string()), 10)
        };
        let last = twice(r#"{"message":"a","room":"r","message":"b","room":null}"#).unwrap();
        assert_eq!((last.message.as_str(), last.room.as_str()), ("b", LOBBY));
        let bad_last = twice(r#"{"message":"a","message":5}"#).unwrap_err();
        assert_eq!(bad_last.code, Code::BadRequest);
        assert_eq!(
            parse_send_request(Err("eof".into()), 10).unwrap_err().code,
            Code::BadRequest
        );
    }

    #[test]
    fn a_send_request_never_shows_its_text() {
        for payload in [
            json!({"message": "the secret plan", "room": "r"}),
            json!("the secret plan"),
        ] {
            let req = parse_send(&payload, 100).unwrap();
            let shown = format!("{req:?}");
            assert!(!shown.contains("secret"), "{shown}");
            assert!(shown.contains("message_bytes: 15"), "{shown}");
        }
    }

    #[test]
    fn room_requests_are_checked() {
        assert_eq!(
            parse_room_request(Ok(json!({"room": "r", "since": 3})))
                .unwrap()
                .since,
            Some(3)
        );
        for bad in [
            json!({"room": 1}),
            json!({"room": "r", "since": -1}),
            json!({"room": "x".repeat(65)}),
            json!("r"),
            json!(["r"]),
            json!(["r", 3]),
        ] {
            assert!(parse_room_request(Ok(bad.clone())).is_err(), "{bad}");
        }
    }

    /// The wire shape of a room key (join ack and `room key` event), and
    /// no key in Debug output.
    #[test]
    fn room_keys_serialize_and_never_debug_print() {
        let sealer = chatseal_core::Sealer::new(chatseal_core::Keyring::generate());
        let rk = sealer
            .room_keys(chatseal_core::Room::at("vault", 3))
            .unwrap()
            .remove(0);
        let text = rk.key.to_base64();
        let event = RoomKeyEvent {
            room: "vault",
            key: KeyOut::of(&rk),
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({"room": "vault", "key": {"id": rk.key_id, "epoch": 3, "key": text.as_str()}})
        );
        let shown = format!("{event:?}");
        assert!(!shown.contains(text.as_str()), "{shown}");
        assert!(shown.contains("epoch: 3"), "{shown}");
    }
}
