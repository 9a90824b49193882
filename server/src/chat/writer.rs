//! The message writer: one task per server stores messages in batches
//! (group commit) and broadcasts each batch in `seq` order after it commits.
//!
//! Connections hand over sealed messages in the order their clients sent
//! them and get the outcome later, so a client with several messages in
//! flight does not wait one commit per message; the ack still comes only
//! after the commit. One transaction per batch instead of per message is
//! what lets a single SQLite file keep up with thousands of messages a
//! second, and the single writer is what keeps every room's broadcast in
//! `seq` order without a lock per message.

use std::sync::{Arc, Weak};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::rooms;
use crate::app::Shared;
use crate::metrics;
use crate::store::{Appended, MAX_BATCH, OwnedMessage};

/// Messages waiting for the writer; beyond this, connections wait to hand
/// theirs over (back-pressure instead of unbounded memory).
const QUEUE: usize = 8192;

/// The store could not be reached: nothing of the batch was stored.
#[derive(Debug, Clone, Copy)]
pub struct Unavailable;

type Reply = oneshot::Sender<Result<Appended, Unavailable>>;

/// The handle connections submit to.
#[derive(Debug)]
pub struct Writer {
    tx: mpsc::Sender<(OwnedMessage, Reply)>,
}

impl Writer {
    /// Starts the writer task; it stops when the state is dropped.
    pub fn start(state: Weak<Shared>) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(state, rx));
        Writer { tx }
    }

    /// Queues `msg`; the receiver yields its outcome once its batch commits.
    pub async fn submit(
        &self,
        msg: OwnedMessage,
    ) -> oneshot::Receiver<Result<Appended, Unavailable>> {
        let (reply, outcome) = oneshot::channel();
        // A send fails only if the writer is gone; the dropped reply then
        // reads as Unavailable.
        let _ = self.tx.send((msg, reply)).await;
        outcome
    }
}

async fn run(state: Weak<Shared>, mut rx: mpsc::Receiver<(OwnedMessage, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    while let Some((msg, reply)) = rx.recv().await {
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
        commit(&state, &batch, replies.drain(..)).await;
        batch.clear();
    }
}

async fn commit(state: &Arc<Shared>, batch: &[OwnedMessage], replies: impl Iterator<Item = Reply>) {
    // Joins of these rooms wait until the batch is stored and sent, so a
    // join's catch-up and the live stream neither overlap nor leave a gap.
    let _turns = state
        .room_locks
        .lock_all(batch.iter().map(|m| m.room.as_str()))
        .await;
    let started = Instant::now();
    let outcome = state.store.append_batch(batch).await;
    metrics::store_latency(started.elapsed());
    metrics::batch_size(batch.len());
    match outcome {
        Ok(appended) => {
            for (result, reply) in appended.into_iter().zip(replies) {
                if let Appended::New(stored) = &result {
                    rooms::broadcast(state, stored);
                    metrics::message_stored();
                }
                let _ = reply.send(Ok(result));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, messages = batch.len(), "store unavailable: batch refused");
            for reply in replies {
                let _ = reply.send(Err(Unavailable));
            }
        }
    }
}
