//! The Socket.IO adapter: socketioxide's local adapter, with one more way
//! out that socketioxide does not offer — a room's new messages, each
//! serialized once, sent to each socket with a per-socket answer.
//!
//! Why: `Socket::emit` serializes its data again for every socket (serde,
//! and a buffer grown three times on the way), and socketioxide's own
//! broadcast, which serializes once, reports a full send queue without
//! saying whose. A reader whose queue is full must be disconnected (it then
//! catches up with `join { since }`), never skipped silently, so the
//! broadcaster needs to know exactly which sockets missed a message.
//! [`ChatAdapter::deliver`] serializes a message's `[event, data]` once and
//! hands it to each socket through the local adapter's broadcast to that
//! socket alone, which answers for that socket. What is still done per
//! socket is socketioxide's framing of the packet (one buffer, one copy):
//! a broadcast frames once per call, and only a broadcast to one socket
//! says whether that socket's queue was full.
//!
//! Everything else is the local adapter's (`socketioxide::adapter::LocalAdapter`
//! is this, without [`ChatAdapter::deliver`]).

use std::convert::Infallible;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use serde::Serialize;
use socketioxide::SocketIo;
use socketioxide::adapter::Emitter;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;
use socketioxide_core::adapter::errors::SocketError;
use socketioxide_core::adapter::{
    BroadcastOptions, CoreAdapter, CoreLocalAdapter, DefinedAdapter, Room, SocketEmitter,
};
use socketioxide_core::packet::Packet;
use socketioxide_core::parser::Parse as _;

/// The server's Socket.IO instance.
pub type Io = SocketIo<ChatAdapter>;
/// A socket of the server's Socket.IO instance.
pub type ChatSocket = SocketRef<ChatAdapter>;
/// The acknowledgement callback of an event on such a socket.
pub type Ack = socketioxide::extract::AckSender<ChatAdapter>;

/// Where the adapter of the default namespace makes itself known once
/// socketioxide has created it (the adapter's state; one per server).
#[derive(Default, Debug)]
pub struct Adapters {
    default_ns: OnceLock<Weak<ChatAdapter>>,
}

impl Adapters {
    /// The default namespace's adapter, once the namespace exists.
    pub fn default_ns(&self) -> Option<Arc<ChatAdapter>> {
        self.default_ns.get().and_then(Weak::upgrade)
    }
}

/// The server's Socket.IO adapter, one per namespace: socketioxide's local
/// adapter, plus [`ChatAdapter::deliver`].
pub struct ChatAdapter {
    local: CoreLocalAdapter<Emitter>,
    adapters: Arc<Adapters>,
}

impl std::fmt::Debug for ChatAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatAdapter")
            .field("ns", &self.local.path())
            .finish()
    }
}

impl ChatAdapter {
    /// The ids of this server's sockets in `room`.
    fn sockets_in(&self, room: &str) -> Vec<Sid> {
        let mut in_room = BroadcastOptions::default();
        in_room.rooms.push(Room::Owned(room.to_owned()));
        self.local.sockets(in_room)
    }

    /// Whether any socket of this server is in `room`.
    pub fn has_sockets(&self, room: &str) -> bool {
        !self.sockets_in(room).is_empty()
    }

    /// Sends every one of `messages`, in order, as a `chat message` to each
    /// socket in `room`: a socket gets all of them back to back, so its
    /// writer sends them in one write. Returns how many were queued, one
    /// per socket and message.
    ///
    /// A socket whose queue is full gets nothing more of this call, and
    /// `on_full` is called with its id at once, before the next socket's
    /// turn: the caller takes it out of its rooms and disconnects it there,
    /// so later look-ups, this call's and other tasks', no longer find it.
    /// (A task that looked the room up before may still reach it; a client
    /// that sees a gap in `seq` catches up, and this one is being
    /// disconnected anyway.) One that is closing gets nothing more either. (A socket in
    /// the room but not in the namespace's socket map — one that left
    /// between the look-up and its turn, or one still being admitted —
    /// counts as sent. One still being admitted gets the message before
    /// its CONNECT packet; socket.io clients hold such events until they
    /// connect.)
    pub fn deliver<T: Serialize>(
        &self,
        room: &str,
        messages: &[T],
        mut on_full: impl FnMut(Sid),
    ) -> u64 {
        let mut queued = 0;
        let sids = self.sockets_in(room);
        if sids.is_empty() {
            return queued;
        }
        let parser = self.local.parser();
        let packets: Vec<Packet> = messages
            .iter()
            .filter_map(
                |message| match parser.encode_value(message, Some("chat message")) {
                    Ok(value) => Some(Packet::event(self.local.path().clone(), value)),
                    // Not for a stored message's plain fields; if it ever
                    // happened, every reader would see a gap in `seq` and
                    // catch up with `join { since }`.
                    Err(e) => {
                        tracing::error!(error = %e, "could not encode a message");
                        None
                    }
                },
            )
            .collect();
        for sid in sids {
            for packet in &packets {
                match self
                    .local
                    .broadcast(packet.clone(), BroadcastOptions::new(sid))
                {
                    Ok(()) => queued += 1,
                    Err(errors) => {
                        if errors
                            .iter()
                            .any(|e| matches!(e, SocketError::InternalChannelFull))
                        {
                            on_full(sid);
                        }
                        break;
                    }
                }
            }
        }
        queued
    }
}

impl CoreAdapter<Emitter> for ChatAdapter {
    type Error = Infallible;
    type State = Arc<Adapters>;
    type AckStream = <Emitter as SocketEmitter>::AckStream;
    type InitRes = ();

    fn new(adapters: &Self::State, local: CoreLocalAdapter<Emitter>) -> Self {
        ChatAdapter {
            local,
            adapters: Arc::clone(adapters),
        }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Self::InitRes {
        if self.local.path().as_str() == "/" {
            let _ = self.adapters.default_ns.set(Arc::downgrade(&self));
        }
        on_success();
    }

    async fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Option<Duration>,
    ) -> Result<Self::AckStream, Self::Error> {
        Ok(self.local.broadcast_with_ack(packet, opts, timeout).0)
    }

    fn get_local(&self) -> &CoreLocalAdapter<Emitter> {
        &self.local
    }
}

impl DefinedAdapter for ChatAdapter {}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc::Receiver;

    use super::*;

    const QUEUE: usize = 4;

    /// A Socket.IO instance on this adapter, with sockets that join `r`,
    /// each send queue `QUEUE` packets long.
    fn io() -> (Io, Arc<Adapters>) {
        let adapters = Arc::new(Adapters::default());
        let (_svc, io) = SocketIo::builder()
            .max_buffer_size(QUEUE)
            .with_adapter::<ChatAdapter>(Arc::clone(&adapters))
            .build_svc();
        io.ns("/", async |socket: ChatSocket| socket.join("r"));
        (io, adapters)
    }

    /// Every event waiting in `rx`, as its Socket.IO packet's text (the
    /// transport adds engine.io's `4`).
    fn frames(rx: &mut Receiver<engineioxide::Packet>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(packet) = rx.try_recv() {
            if let engineioxide::Packet::Message(text) = packet
                && text.starts_with('2')
            {
                out.push(text.to_string());
            }
        }
        out
    }

    fn message(n: u32) -> serde_json::Value {
        serde_json::json!({ "seq": n, "message": "x" })
    }

    /// What the dummy transport of `rx` has received once it stops moving:
    /// it takes at most `QUEUE` packets off a socket's queue at a time.
    async fn drain(rx: &mut Receiver<engineioxide::Packet>) -> Vec<String> {
        let mut got = Vec::new();
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let more = frames(rx);
            if more.is_empty() {
                return got;
            }
            got.extend(more);
        }
    }

    /// A reader that keeps up gets every message, in order, as Socket.IO
    /// frames; one that stops reading is named — it, not the other, and
    /// once a call — as soon as its queue is full, and has got exactly the
    /// messages counted for it, in order from the first. (Its queue stays
    /// full here, as a stalled reader's does; one that drained in the
    /// middle of a call would still get nothing more of it, which a
    /// single-threaded test cannot make happen.)
    #[tokio::test]
    async fn names_exactly_the_sockets_whose_queue_is_full() {
        let (io, adapters) = io();
        let (_tx_a, mut reader) = io.new_dummy_sock("/", ()).await;
        let reader_id = io.sockets()[0].id;
        let (_tx_b, mut stalled) = io.new_dummy_sock("/", ()).await;
        let stalled_id = io
            .sockets()
            .iter()
            .map(|s| s.id)
            .find(|id| *id != reader_id)
            .expect("the second socket");
        let adapter = adapters
            .default_ns()
            .expect("the default namespace's adapter");
        frames(&mut reader);
        frames(&mut stalled);

        let mut seen = Vec::new();
        let mut full_at = None;
        let mut queued_for_stalled = 0;
        for n in 0..20u32 {
            let mut full = Vec::new();
            let queued = adapter.deliver("r", &[message(2 * n), message(2 * n + 1)], |sid| {
                full.push(sid)
            });
            // Let the dummy transports take what is queued.
            tokio::time::sleep(Duration::from_millis(5)).await;
            seen.extend(frames(&mut reader));
            // The reader always takes both.
            queued_for_stalled += queued - 2;
            let what = format!("call {n}: {queued} queued, {} full", full.len());
            match (full.as_slice(), full_at) {
                ([], None) => assert_eq!(queued, 4, "{what}"),
                ([sid], None) => {
                    assert_eq!(*sid, stalled_id, "the stalled socket is named");
                    full_at = Some(n);
                }
                // Still in the room (evicting is the caller's part): named
                // again, and nothing more queued for it.
                ([sid], Some(_)) => {
                    assert_eq!(*sid, stalled_id);
                    assert_eq!(queued, 2, "{what}");
                }
                _ => panic!("{what}"),
            }
        }
        let full_at = full_at.expect("the stalled socket's queue filled");
        assert!(full_at > 0, "a queue of {QUEUE} holds a first batch");
        let expected: Vec<String> = (0..40)
            .map(|n| format!("2[\"chat message\",{}]", message(n)))
            .collect();
        assert_eq!(seen, expected, "the reader that keeps up misses nothing");

        // Everything queued for the stalled socket reaches it once it reads
        // again: the first messages, in order, up to the one it was refused.
        let got = drain(&mut stalled).await;
        assert!(queued_for_stalled > 0 && queued_for_stalled < 40);
        assert_eq!(got, expected[..queued_for_stalled as usize]);
    }

    /// A room nobody is in, or a message that is not there: nothing sent,
    /// nobody named.
    #[tokio::test]
    async fn an_empty_room_or_batch_sends_nothing() {
        let (io, adapters) = io();
        let (_tx, mut rx) = io.new_dummy_sock("/", ()).await;
        let adapter = adapters.default_ns().unwrap();
        frames(&mut rx);
        let mut full = 0;
        assert_eq!(
            adapter.deliver("elsewhere", &[message(1)], |_| full += 1),
            0
        );
        assert_eq!(
            adapter.deliver::<serde_json::Value>("r", &[], |_| full += 1),
            0
        );
        assert_eq!(full, 0);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(frames(&mut rx).is_empty());
    }
}
