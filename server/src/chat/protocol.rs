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
/// string is taken as `{ message }`, as the tutorial's client sends it.
#[derive(Debug)]
pub struct SendRequest {
    pub message: String,
    pub room: String,
    pub client_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SendObject {
    message: String,
    #[serde(default)]
    room: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
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
    data: Result<Value, String>,
    max_message_bytes: usize,
) -> Result<SendRequest, Failure> {
    let req = match payload(data)? {
        Value::String(message) => SendRequest {
            message,
            room: LOBBY.to_owned(),
            client_id: None,
        },
        other => {
            let other = object(other, "{ message, room?, clientId? }")?;
            let obj: SendObject = serde_json::from_value(other).map_err(|e| {
                Failure::new(
                    Code::BadRequest,
                    format!("expected {{ message, room?, clientId? }}: {e}"),
                )
            })?;
            SendRequest {
                message: obj.message,
                room: obj.room.unwrap_or_else(|| LOBBY.to_owned()),
                client_id: obj.client_id,
            }
        }
    };
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

    #[test]
    fn send_requests_are_checked() {
        let ok = parse_send_request(
            Ok(json!({"message": "hi", "room": "r", "clientId": "c1"})),
            10,
        )
        .unwrap();
        assert_eq!(
            (
                ok.message.as_str(),
                ok.room.as_str(),
                ok.client_id.as_deref()
            ),
            ("hi", "r", Some("c1"))
        );
        let tutorial = parse_send_request(Ok(json!("hi")), 10).unwrap();
        assert_eq!(tutorial.room, LOBBY);
        let cases = [
            (json!({"message": "x".repeat(11)}), Code::TooLarge),
            (json!({"message": 5}), Code::BadRequest),
            (json!({"text": "hi"}), Code::BadRequest),
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
            (json!([1, 2]), Code::BadRequest),
            // serde fills a struct from an array; the protocol does not.
            (json!(["hi"]), Code::BadRequest),
            (json!(["hi", "r", "c1"]), Code::BadRequest),
        ];
        for (payload, code) in cases {
            assert_eq!(
                parse_send_request(Ok(payload.clone()), 10)
                    .unwrap_err()
                    .code,
                code,
                "{payload}"
            );
        }
        assert_eq!(
            parse_send_request(Err("eof".into()), 10).unwrap_err().code,
            Code::BadRequest
        );
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
