//! The message writer: one task per server stores messages in batches
//! (group commit); a second acknowledges each batch after it commits, then
//! broadcasts it in `seq` order, while the next batch is being stored.
//! Acks go first (docs/protocol.md): a sender's ack is queued on its socket
//! before its own copy of the message, so it knows the message's id when
//! the copy arrives.
//!
//! Connections hand over sealed messages in the order their clients sent
//! them and get the outcome later, so a client with several messages in
//! flight does not wait one commit per message; the ack still comes only
//! after the commit. One transaction per batch instead of per message is
//! what lets a single SQLite file keep up with thousands of messages a
//! second, and the single writer (feeding a single broadcaster) is what
//! keeps every room's broadcast in `seq` order without a lock per message.
//!
//! On a SQLite file the writer runs on a thread of its own: the store then
//! writes each batch on the calling thread, without a round trip to another
//! thread per statement (`Store::appends_block`), and that must not stall a
//! tokio worker and the sockets queued behind it.

use std::sync::{Arc, Weak};
use std::time::Instant;

use tokio::sync::mpsc;

use super::rooms;
use crate::app::Shared;
use crate::metrics;
use crate::store::{Appended, MAX_BATCH, OwnedMessage, StoredMessage};

/// Messages waiting for the writer; beyond this, connections wait to hand
/// theirs over (back-pressure instead of unbounded memory).
const QUEUE: usize = 8192;

/// The store could not be reached: nothing of the batch was stored.
#[derive(Debug, Clone, Copy)]
pub struct Unavailable;

/// What to do with a message's outcome: acknowledge it. Called by the
/// broadcaster, before the batch is broadcast; it must not block.
pub type Reply = Box<dyn FnOnce(Result<&Appended, Unavailable>) + Send>;

/// The handle connections submit to.
#[derive(Debug)]
pub struct Writer {
    tx: mpsc::Sender<(OwnedMessage, Reply)>,
}

impl Writer {
    /// Starts the writer, on a thread of its own if `blocking` (the
    /// store's appends block: see the module's docs), else as a task; it
    /// stops when the state is dropped. Must be called within a tokio
    /// runtime.
    pub fn start(state: Weak<Shared>, blocking: bool) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE);
        if !blocking {
            tokio::spawn(run(state, rx));
            return Writer { tx };
        }
        // Handed to the thread, or taken back if it cannot be started.
        type Work = Option<(Weak<Shared>, mpsc::Receiver<(OwnedMessage, Reply)>)>;
        fn take(work: &std::sync::Mutex<Work>) -> Work {
            work.lock().unwrap_or_else(|p| p.into_inner()).take()
        }
        let work = Arc::new(std::sync::Mutex::new(Some((state, rx))));
        let runtime = tokio::runtime::Handle::current();
        let handed = Arc::clone(&work);
        let started = std::thread::Builder::new()
            .name("chatseal-writer".into())
            .spawn(move || {
                if let Some((state, rx)) = take(&handed) {
                    runtime.block_on(run(state, rx));
                }
            });
        if let Err(e) = started {
            // Still correct as a task: each commit then holds up one tokio
            // worker while it lasts.
            tracing::warn!(error = %e, "could not start the writer's thread: writing from a task");
            if let Some((state, rx)) = take(&work) {
                tokio::spawn(run(state, rx));
            }
        }
        Writer { tx }
    }

    /// Queues `msg`; `reply` gets its outcome once its batch commits (or
    /// is refused), before the batch is broadcast.
    pub async fn submit(&self, msg: OwnedMessage, reply: Reply) {
        if let Err(mpsc::error::SendError((_, reply))) = self.tx.send((msg, reply)).await {
            // The writer is gone (shutting down): nothing was stored.
            reply(Err(Unavailable));
        }
    }
}

/// Stored batches waiting for the broadcaster. The writer takes this slot
/// before it stores a batch, so while one batch is acknowledged and
/// broadcast the next is stored, and no further: messages that arrive
/// meanwhile wait for the batch after, instead of each being committed in
/// a small batch of its own that the broadcaster could not have sent
/// sooner anyway.
const PIPELINE: usize = 1;

/// A stored batch on its way to the broadcaster, with its rooms' turns.
struct Stored {
    outcome: Result<Vec<Appended>, Unavailable>,
    replies: Vec<Reply>,
    _turns: rooms::Turns,
}

async fn run(state: Weak<Shared>, mut rx: mpsc::Receiver<(OwnedMessage, Reply)>) {
    let (stored_tx, stored_rx) = mpsc::channel(PIPELINE);
    tokio::spawn(broadcast(state.clone(), stored_rx));
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some((msg, reply)) = rx.recv().await {
        // Until the broadcaster has taken the last batch; what arrives
        // meanwhile joins this one.
        let Ok(slot) = stored_tx.reserve().await else {
            return;
        };
        let mut replies = Vec::with_capacity(MAX_BATCH.min(rx.len() + 1));
        batch.push(msg);
        replies.push(reply);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((msg, reply)) => {
                    batch.push(msg);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        let Some(state) = state.upgrade() else { return };
        let stored = store(&state, &batch, replies).await;
        drop(state);
        batch.clear();
        slot.send(stored);
    }
}

async fn store(state: &Arc<Shared>, batch: &[OwnedMessage], replies: Vec<Reply>) -> Stored {
    // Held until the batch is broadcast: see rooms::RoomLocks.
    let turns = state
        .room_locks
        .share_all(batch.iter().map(|m| m.room.as_str()))
        .await;
    let started = Instant::now();
    let outcome = append_sealed_again(state, batch).await;
    metrics::store_latency(started.elapsed());
    metrics::batch_size(batch.len());
    let outcome = outcome.map_err(|e| {
        tracing::warn!(error = %e, messages = batch.len(), "store unavailable: batch refused");
        Unavailable
    });
    Stored {
        outcome,
        replies,
        _turns: turns,
    }
}

/// Rounds of sealing again when a room's key epoch keeps moving under a
/// batch; past them its messages are answered UNAVAILABLE (the client's
/// resend with the same clientId is sealed afresh).
const EPOCH_ROUNDS: usize = 3;

/// Appends `batch`; messages the store sends back because their room moved
/// to a newer key epoch (`Appended::StaleEpoch`: a member was removed, or
/// the room was reset, after they were sealed) are sealed again under that
/// epoch and appended again, in their order, and their outcomes put in
/// their places. The room's lock (held by the caller) keeps the room's
/// broadcast order; the plaintext exists only inside the engine while one
/// is sealed again.
async fn append_sealed_again(
    state: &Shared,
    batch: &[OwnedMessage],
) -> Result<Vec<Appended>, crate::store::StoreError> {
    let mut outcome = state.store.append_batch(batch).await?;
    for _ in 0..EPOCH_ROUNDS {
        let again: Vec<usize> = (0..batch.len())
            .filter(|&i| matches!(outcome[i], Appended::StaleEpoch { .. }))
            .collect();
        if again.is_empty() {
            break;
        }
        let mut resealed = Vec::with_capacity(again.len());
        let mut places = Vec::with_capacity(again.len());
        for &i in &again {
            let Appended::StaleEpoch { epoch } = outcome[i] else {
                unreachable!("filtered above")
            };
            state.epochs.learn(&batch[i].room, epoch);
            let sealed = if batch[i].epoch == epoch {
                // Sent back with the rest of its room, to keep their order.
                Ok(batch[i].clone())
            } else {
                seal_again(state, &batch[i], epoch)
            };
            match sealed {
                Ok(m) => {
                    resealed.push(m);
                    places.push(i);
                }
                Err(e) => {
                    // Cannot happen for an envelope this server sealed;
                    // if it does, the message is answered UNAVAILABLE.
                    tracing::warn!(error = %e, "could not seal a message again under a new epoch");
                }
            }
        }
        if resealed.is_empty() {
            break;
        }
        tracing::debug!(
            messages = resealed.len(),
            "sealed again under a new room key epoch"
        );
        let retried = state.store.append_batch(&resealed).await?;
        for (i, result) in places.into_iter().zip(retried) {
            outcome[i] = result;
        }
    }
    Ok(outcome)
}

/// `m`, opened and sealed again under `room` at `epoch` with the same id,
/// sender, time and context.
fn seal_again(
    state: &Shared,
    m: &OwnedMessage,
    epoch: u32,
) -> Result<OwnedMessage, chatseal_core::Error> {
    use chatseal_core::Room;
    let context = chatseal_core::chat_context(&m.room, &m.id, &m.sender);
    let plaintext = state
        .sealer
        .open_text(Room::at(&m.room, m.epoch), &context, &m.envelope)?;
    let sealed = state
        .sealer
        .seal(Room::at(&m.room, epoch), &context, &plaintext)?;
    drop(plaintext);
    metrics::sealed();
    let key_id = chatseal_core::Header::parse(&sealed)?.key_id;
    Ok(OwnedMessage {
        key_id,
        epoch,
        envelope: chatseal_core::encode_text(&sealed),
        ..m.clone()
    })
}

/// Acknowledges stored batches in the order they were stored, then
/// broadcasts them; a refused batch is only answered.
async fn broadcast(state: Weak<Shared>, mut rx: mpsc::Receiver<Stored>) {
    while let Some(stored) = rx.recv().await {
        let Some(state) = state.upgrade() else { return };
        match stored.outcome {
            Ok(appended) => {
                let fresh: Vec<&StoredMessage> = appended
                    .iter()
                    .filter_map(|result| match result {
                        Appended::New(message) => Some(message),
                        Appended::Duplicate(_)
                        | Appended::Forbidden
                        | Appended::StaleEpoch { .. } => None,
                    })
                    .collect();
                // Acks first: each is queued on its sender's socket ahead of
                // the sender's own copy of the message.
                for (result, reply) in appended.iter().zip(stored.replies) {
                    reply(Ok(result));
                }
                rooms::broadcast(&state, &fresh);
                metrics::messages_stored(fresh.len() as u64);
            }
            Err(Unavailable) => {
                for reply in stored.replies {
                    reply(Err(Unavailable));
                }
            }
        }
    }
}
