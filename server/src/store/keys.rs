//! What the store knows about the keys its messages are sealed under: a
//! check value per master key id (never the key), seal counts that survive
//! restarts, the keyring generation servers poll, the servers that are
//! running and which keys they hold, and the queries `keys rewrap` and
//! `keys retire` are made of.

use std::collections::BTreeMap;

use sqlx::Row as _;

use sqlx::pool::PoolConnection;
use sqlx::{Any, Connection as _};

use super::{Backend, Result, Store, StoredMessage, Within as _, message_of};

/// One row of `chat_keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: u32,
    /// `chatseal_core::key_check_value` of the key, lowercase hex.
    pub check_value: String,
    /// Seals under this key so far, as flushed by the servers.
    pub seals: u64,
    /// When the key was first recorded, unix milliseconds.
    pub created: i64,
    /// Retired by `keys retire` (its messages, if any, were given up).
    pub retired: bool,
}

/// A running server, as its last heartbeat described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub node: String,
    pub key_ids: Vec<u32>,
    pub primary: u32,
    pub generation: i64,
    /// Unix milliseconds of the heartbeat.
    pub seen: i64,
}

/// A message `keys rewrap` re-seals: where it is, what its context is made
/// of, and its envelope ([`Store::messages_to_rewrap`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrapRow {
    /// SQLite's rowid (0 on PostgreSQL, which finds rows by id).
    pub rowid: i64,
    pub id: String,
    pub room: String,
    pub sender: String,
    pub key_id: u32,
    /// The room key epoch it is sealed under.
    pub epoch: u32,
    /// The sealed envelope, text form.
    pub envelope: String,
}

impl RewrapRow {
    /// Where the next page starts: after this row.
    pub fn cursor(&self) -> RewrapCursor {
        RewrapCursor {
            rowid: self.rowid,
            id: self.id.clone(),
        }
    }
}

/// A position in the walk [`Store::messages_to_rewrap`] makes; the default
/// is the start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RewrapCursor {
    rowid: i64,
    id: String,
}

/// A message's new envelope, for [`EnvelopeWriter::replace`].
#[derive(Debug, Clone)]
pub struct NewEnvelope {
    /// The row's [`RewrapRow::rowid`].
    pub rowid: i64,
    pub id: String,
    pub old_key_id: u32,
    pub key_id: u32,
    pub envelope: String,
}

fn key_id(v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|e| sqlx::Error::Decode(Box::new(e)).into())
}

impl Store {
    /// Every recorded key, ascending by id.
    pub async fn key_records(&self) -> Result<Vec<KeyRecord>> {
        let rows = sqlx::query(
            "SELECT id, check_value, seals, created, retired FROM chat_keys ORDER BY id",
        )
        .fetch_all(&self.pool)
        .within(self.timeout)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyRecord {
                    id: key_id(r.try_get("id")?)?,
                    check_value: r.try_get("check_value")?,
                    seals: u64::try_from(r.try_get::<i64, _>("seals")?).unwrap_or(0),
                    created: r.try_get("created")?,
                    retired: r.try_get::<i64, _>("retired")? != 0,
                })
            })
            .collect()
    }

    /// Records key `id` with `check_value` unless it is recorded already;
    /// returns the check value the store holds for it (which differs from
    /// `check_value` if another key was recorded under the id first).
    pub async fn record_key(&self, id: u32, check_value: &str, now_ms: i64) -> Result<String> {
        sqlx::query(
            "INSERT INTO chat_keys (id, check_value, seals, created, retired) \
             VALUES ($1, $2, 0, $3, 0) ON CONFLICT DO NOTHING",
        )
        .bind(i64::from(id))
        .bind(check_value)
        .bind(now_ms)
        .execute(&self.pool)
        .within(self.timeout)
        .await?;
        sqlx::query_scalar("SELECT check_value FROM chat_keys WHERE id = $1")
            .bind(i64::from(id))
            .fetch_one(&self.pool)
            .within(self.timeout)
            .await
    }

    /// Adds seals to the recorded counts, in one transaction. Ids not
    /// recorded are skipped (a key is recorded before it seals).
    pub async fn add_seals(&self, deltas: &[(u32, u64)]) -> Result<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for (id, n) in deltas {
            sqlx::query("UPDATE chat_keys SET seals = seals + $1 WHERE id = $2")
                .bind(i64::try_from(*n).unwrap_or(i64::MAX))
                .bind(i64::from(*id))
                .execute(&mut *tx)
                .within(self.timeout)
                .await?;
        }
        tx.commit().within(self.timeout).await?;
        Ok(())
    }

    /// Stored messages per key id, ascending by id.
    pub async fn messages_per_key(&self) -> Result<BTreeMap<u32, u64>> {
        let rows = sqlx::query(
            "SELECT key_id, COUNT(*) AS n FROM chat_messages GROUP BY key_id ORDER BY key_id",
        )
        .fetch_all(&self.pool)
        .within(self.timeout)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    key_id(r.try_get("key_id")?)?,
                    u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// Whether any message is stored (a dev keyring must not be made then).
    pub async fn has_messages(&self) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM chat_messages LIMIT 1")
            .fetch_optional(&self.pool)
            .within(self.timeout)
            .await?;
        Ok(found.is_some())
    }

    /// The newest stored message under key `id`, to check a key the store
    /// has no check value for (a database from before version 2).
    pub async fn sample_message(&self, id: u32) -> Result<Option<StoredMessage>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM chat_messages WHERE key_id = $1 LIMIT 1",
            super::COLUMNS
        ))
        .bind(i64::from(id))
        .fetch_optional(&self.pool)
        .within(self.timeout)
        .await?;
        row.as_ref().map(message_of).transpose()
    }

    /// The keyring generation: bumped whenever the keyring file changes.
    pub async fn key_generation(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT generation FROM chat_keyring WHERE id = 1")
            .fetch_one(&self.pool)
            .within(self.timeout)
            .await
    }

    /// Bumps the generation: every server reloads its keyring.
    pub async fn bump_key_generation(&self) -> Result<i64> {
        sqlx::query_scalar(
            "UPDATE chat_keyring SET generation = generation + 1 WHERE id = 1 RETURNING generation",
        )
        .fetch_one(&self.pool)
        .within(self.timeout)
        .await
    }

    /// Takes the rotation lease until `until_ms` if nobody holds it; true if
    /// taken. One conditional UPDATE: atomic on both backends.
    pub async fn take_key_lease(&self, holder: &str, now_ms: i64, until_ms: i64) -> Result<bool> {
        let taken = sqlx::query(
            "UPDATE chat_keyring SET lease_until = $1, lease_holder = $2 \
             WHERE id = 1 AND (lease_until < $3 OR lease_holder = $2)",
        )
        .bind(until_ms)
        .bind(holder)
        .bind(now_ms)
        .execute(&self.pool)
        .within(self.timeout)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    /// Gives the lease back.
    pub async fn release_key_lease(&self, holder: &str) -> Result<()> {
        sqlx::query(
            "UPDATE chat_keyring SET lease_until = 0, lease_holder = NULL \
             WHERE id = 1 AND lease_holder = $1",
        )
        .bind(holder)
        .execute(&self.pool)
        .within(self.timeout)
        .await?;
        Ok(())
    }

    /// A running server's heartbeat.
    pub async fn key_heartbeat(&self, node: &NodeRecord) -> Result<()> {
        let ids = node
            .key_ids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        sqlx::query(
            "INSERT INTO chat_key_nodes (node, key_ids, primary_id, generation, seen) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (node) DO UPDATE SET \
             key_ids = $2, primary_id = $3, generation = $4, seen = $5",
        )
        .bind(node.node.as_str())
        .bind(ids)
        .bind(i64::from(node.primary))
        .bind(node.generation)
        .bind(node.seen)
        .execute(&self.pool)
        .within(self.timeout)
        .await?;
        Ok(())
    }

    /// Servers heard from at or after `since_ms`; older rows (servers that
    /// stopped or died) are deleted.
    pub async fn key_nodes(&self, since_ms: i64) -> Result<Vec<NodeRecord>> {
        sqlx::query("DELETE FROM chat_key_nodes WHERE seen < $1")
            .bind(since_ms)
            .execute(&self.pool)
            .within(self.timeout)
            .await?;
        let rows = sqlx::query(
            "SELECT node, key_ids, primary_id, generation, seen FROM chat_key_nodes ORDER BY node",
        )
        .fetch_all(&self.pool)
        .within(self.timeout)
        .await?;
        rows.iter()
            .map(|r| {
                let ids: String = r.try_get("key_ids")?;
                Ok(NodeRecord {
                    node: r.try_get("node")?,
                    key_ids: ids.split(',').filter_map(|s| s.parse().ok()).collect(),
                    primary: key_id(r.try_get("primary_id")?)?,
                    generation: r.try_get("generation")?,
                    seen: r.try_get("seen")?,
                })
            })
            .collect()
    }

    /// A server that stops says so.
    pub async fn remove_key_node(&self, node: &str) -> Result<()> {
        sqlx::query("DELETE FROM chat_key_nodes WHERE node = $1")
            .bind(node)
            .execute(&self.pool)
            .within(self.timeout)
            .await?;
        Ok(())
    }

    /// Marks every recorded key below `below` retired.
    pub async fn retire_keys_below(&self, below: u32) -> Result<()> {
        sqlx::query("UPDATE chat_keys SET retired = 1 WHERE id < $1")
            .bind(i64::from(below))
            .execute(&self.pool)
            .within(self.timeout)
            .await?;
        Ok(())
    }

    /// How many stored messages are sealed under a key id below `below`.
    pub async fn messages_below(&self, below: u32) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM chat_messages WHERE key_id < $1")
            .bind(i64::from(below))
            .fetch_one(&self.pool)
            .within(self.timeout)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Up to `limit` messages under a key id below `below`, after `after`
    /// in the order `keys rewrap` walks the table: SQLite's rowid (the
    /// table's own order, a sequential read), PostgreSQL's id. Continue from
    /// [`RewrapRow::cursor`] of the last row; an empty page ends the walk.
    /// Rows rewrapped meanwhile are not returned (they left the range).
    pub async fn messages_to_rewrap(
        &self,
        below: u32,
        after: &RewrapCursor,
        limit: i64,
    ) -> Result<Vec<RewrapRow>> {
        match self.backend {
            Backend::Sqlite => self.sqlite_page(below, after, limit).await,
            Backend::Postgres => {
                let rows = sqlx::query(
                    "SELECT id, room, sender, key_id, epoch, envelope FROM chat_messages \
                     WHERE id > $1 AND key_id < $2 ORDER BY id LIMIT $3",
                )
                .bind(after.id.as_str())
                .bind(i64::from(below))
                .bind(limit)
                .fetch_all(&self.pool)
                .within(self.timeout)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(RewrapRow {
                            rowid: 0,
                            id: r.try_get("id")?,
                            room: r.try_get("room")?,
                            sender: r.try_get("sender")?,
                            key_id: key_id(r.try_get("key_id")?)?,
                            epoch: key_id(r.try_get("epoch")?)?,
                            envelope: r.try_get("envelope")?,
                        })
                    })
                    .collect()
            }
        }
    }

    /// [`Store::messages_to_rewrap`] on SQLite: the page comes as one row,
    /// a JSON array built by SQLite. sqlx hands SQLite's rows over one at a
    /// time between its worker thread and the caller, waking one for each,
    /// which cost several times the reading itself (docs/benchmarks.md).
    async fn sqlite_page(
        &self,
        below: u32,
        after: &RewrapCursor,
        limit: i64,
    ) -> Result<Vec<RewrapRow>> {
        // NOT INDEXED: the rowid range, never the key_id index (which would
        // sort every row under an old key to return `limit`).
        let page: Option<String> = sqlx::query_scalar(
            "SELECT json_group_array(json_array(rowid, id, room, sender, key_id, epoch, envelope)) \
             FROM (SELECT rowid, id, room, sender, key_id, epoch, envelope \
             FROM chat_messages NOT INDEXED WHERE rowid > ? AND key_id < ? \
             ORDER BY rowid LIMIT ?)",
        )
        .bind(after.rowid)
        .bind(i64::from(below))
        .bind(limit)
        .fetch_one(&self.pool)
        .within(self.timeout)
        .await?;
        type Item = (i64, String, String, String, u32, u32, String);
        let items: Vec<Item> = serde_json::from_str(page.as_deref().unwrap_or("[]"))
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        let mut rows: Vec<RewrapRow> = items
            .into_iter()
            .map(
                |(rowid, id, room, sender, key_id, epoch, envelope)| RewrapRow {
                    rowid,
                    id,
                    room,
                    sender,
                    key_id,
                    epoch,
                    envelope,
                },
            )
            .collect();
        // An aggregate does not promise its input's order.
        rows.sort_unstable_by_key(|r| r.rowid);
        Ok(rows)
    }

    /// A writer for [`Store::messages_to_rewrap`]'s pages.
    pub fn envelope_writer(&self) -> EnvelopeWriter {
        EnvelopeWriter {
            store: self.clone(),
            conn: None,
            data_version: None,
        }
    }
}

/// What [`EnvelopeWriter::replace`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replaced {
    /// Rows changed.
    pub changed: u64,
    /// Whether another connection (a server storing messages) committed
    /// since this writer's previous transaction. SQLite has one writer at a
    /// time, so a bulk writer that sees others should leave it gaps; always
    /// false on PostgreSQL, whose writers do not wait for each other here.
    pub others_wrote: bool,
}

/// Writes `keys rewrap`'s new envelopes on a connection of its own, kept
/// between pages, so SQLite can say whether anyone else wrote in between
/// (`PRAGMA data_version`).
#[derive(Debug)]
pub struct EnvelopeWriter {
    store: Store,
    conn: Option<PoolConnection<Any>>,
    /// SQLite's data version in the previous transaction.
    data_version: Option<i64>,
}

impl EnvelopeWriter {
    /// Replaces envelopes in one transaction and adds `seals` (key id,
    /// count: the reseals that made them) to the key's count in the same
    /// transaction, so a kill never stores envelopes whose seals are not
    /// counted. A row whose key id is no longer `old_key_id` (rewrapped by
    /// another run meanwhile) is left alone. SQLite finds a row by its
    /// rowid and checks its id too (a VACUUM may renumber rowids);
    /// PostgreSQL finds it by id.
    pub async fn replace(&mut self, batch: &[NewEnvelope], seals: (u32, u64)) -> Result<Replaced> {
        let outcome = self.replace_in(batch, seals).await;
        if outcome.is_err() {
            // Perhaps broken, or still in the transaction: a fresh one next.
            if let Some(mut conn) = self.conn.take() {
                conn.close_on_drop();
            }
            self.data_version = None;
        }
        outcome
    }

    async fn replace_in(&mut self, batch: &[NewEnvelope], seals: (u32, u64)) -> Result<Replaced> {
        let store = &self.store;
        let conn = match &mut self.conn {
            Some(conn) => conn,
            empty => empty.insert(store.pool.acquire().within(store.timeout).await?),
        };
        let mut tx = conn
            .begin_with(store.begin_write())
            .within(store.timeout)
            .await?;
        let others_wrote = match store.backend {
            Backend::Sqlite => {
                let now: i64 = sqlx::query_scalar("PRAGMA data_version")
                    .fetch_one(&mut *tx)
                    .within(store.timeout)
                    .await?;
                self.data_version
                    .replace(now)
                    .is_some_and(|then| then != now)
            }
            Backend::Postgres => false,
        };
        if seals.1 > 0 {
            sqlx::query("UPDATE chat_keys SET seals = seals + $1 WHERE id = $2")
                .bind(i64::try_from(seals.1).unwrap_or(i64::MAX))
                .bind(i64::from(seals.0))
                .execute(&mut *tx)
                .within(store.timeout)
                .await?;
        }
        // UPDATE … FROM (VALUES …), one statement per MAX_BATCH rows: both
        // backends name the columns column1, column2, …. On SQLite OR FAIL
        // spares it a statement journal (a copy of every page the statement
        // changes, kept to undo the statement alone): an error here ends the
        // whole transaction, rolled back, anyway.
        let (columns, head, tail) = match store.backend {
            Backend::Sqlite => (
                5,
                "UPDATE OR FAIL chat_messages SET envelope = v.column4, key_id = v.column5 FROM (VALUES ",
                ") AS v WHERE chat_messages.rowid = v.column1 AND chat_messages.id = v.column2 \
                 AND chat_messages.key_id = v.column3",
            ),
            Backend::Postgres => (
                4,
                "UPDATE chat_messages SET envelope = v.column3, key_id = v.column4 FROM (VALUES ",
                ") AS v WHERE chat_messages.id = v.column1 AND chat_messages.key_id = v.column2",
            ),
        };
        let mut changed = 0;
        for chunk in batch.chunks(super::MAX_BATCH) {
            let mut sql = String::with_capacity(head.len() + tail.len() + chunk.len() * 12);
            sql.push_str(head);
            for k in 0..chunk.len() {
                sql.push_str(if k > 0 { ",(" } else { "(" });
                store.push_params(&mut sql, columns * k, columns);
                sql.push(')');
            }
            sql.push_str(tail);
            let mut query = sqlx::query(&sql);
            for m in chunk {
                if store.backend == Backend::Sqlite {
                    query = query.bind(m.rowid);
                }
                query = query
                    .bind(m.id.as_str())
                    .bind(i64::from(m.old_key_id))
                    .bind(m.envelope.as_str())
                    .bind(i64::from(m.key_id));
            }
            changed += query
                .execute(&mut *tx)
                .within(store.timeout)
                .await?
                .rows_affected();
        }
        tx.commit().within(store.timeout).await?;
        Ok(Replaced {
            changed,
            others_wrote,
        })
    }
}
