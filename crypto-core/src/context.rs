//! Associated data that binds a sealed chat message to its place.
//!
//! The context of a chat message is the UTF-8 of
//! `room ‖ 0x00 ‖ message id ‖ 0x00 ‖ sender` (DESIGN §2). With it in the
//! associated data, an envelope moved to another room, given another id or
//! attributed to another sender fails to open.

/// The context bytes of a chat message.
pub fn chat_context(room: &str, message_id: &str, sender: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(room.len() + message_id.len() + sender.len() + 2);
    out.extend_from_slice(room.as_bytes());
    out.push(0);
    out.extend_from_slice(message_id.as_bytes());
    out.push(0);
    out.extend_from_slice(sender.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn layout() {
        assert_eq!(
            super::chat_context("lobby", "01J", "ann"),
            b"lobby\x0001J\x00ann"
        );
        assert_eq!(super::chat_context("", "", ""), b"\0\0");
    }
}
