//! What the store knows about keys, on both backends: check values (first
//! recorded wins), seal counts, the generation and lease `keys` commands
//! use, server heartbeats, and the rewrap queries.

mod common;

use chatseal_server::store::{
    Backend, NewEnvelope, NodeRecord, OwnedMessage, RewrapCursor, RewrapRow, Store,
};
use common::TestDb;

fn message(id: &str, room: &str, key_id: u32) -> OwnedMessage {
    OwnedMessage {
        id: id.into(),
        room: room.into(),
        sender: "ann".into(),
        ts: 1,
        key_id,
        epoch: 0,
        envelope: format!("env-{id}"),
        client_id: None,
    }
}

fn ids(rows: &[RewrapRow]) -> Vec<&str> {
    rows.iter().map(|m| m.id.as_str()).collect()
}

async fn suite(url: &str) {
    let store = Store::connect(url).await.unwrap();

    // Check values: the first key recorded under an id stays.
    assert!(store.key_records().await.unwrap().is_empty());
    assert_eq!(store.record_key(1, "aa", 10).await.unwrap(), "aa");
    assert_eq!(store.record_key(1, "bb", 20).await.unwrap(), "aa");
    assert_eq!(store.record_key(2, "cc", 30).await.unwrap(), "cc");

    // Seal counts add up; unknown ids are skipped.
    store.add_seals(&[(1, 5), (2, 7), (9, 1)]).await.unwrap();
    store.add_seals(&[(1, 1 << 33)]).await.unwrap();
    let records = store.key_records().await.unwrap();
    assert_eq!(
        records
            .iter()
            .map(|r| (r.id, r.check_value.as_str(), r.seals, r.created, r.retired))
            .collect::<Vec<_>>(),
        vec![(1, "aa", 5 + (1 << 33), 10, false), (2, "cc", 7, 30, false)]
    );

    // Generation and lease.
    let g = store.key_generation().await.unwrap();
    assert_eq!(store.bump_key_generation().await.unwrap(), g + 1);
    assert!(store.take_key_lease("one", 100, 200).await.unwrap());
    assert!(
        !store.take_key_lease("two", 150, 250).await.unwrap(),
        "held"
    );
    assert!(
        store.take_key_lease("one", 150, 300).await.unwrap(),
        "renewed"
    );
    assert!(
        store.take_key_lease("two", 301, 400).await.unwrap(),
        "expired"
    );
    store.release_key_lease("two").await.unwrap();
    assert!(store.take_key_lease("three", 302, 500).await.unwrap());
    store.release_key_lease("three").await.unwrap();

    // Heartbeats: old ones are forgotten.
    for (node, seen) in [("a", 1000), ("b", 5000)] {
        store
            .key_heartbeat(&NodeRecord {
                node: node.into(),
                key_ids: vec![1, 2],
                primary: 2,
                generation: g + 1,
                seen,
            })
            .await
            .unwrap();
    }
    let nodes = store.key_nodes(2000).await.unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(
        (
            nodes[0].node.as_str(),
            &nodes[0].key_ids[..],
            nodes[0].primary
        ),
        ("b", &[1, 2][..], 2)
    );
    store.remove_key_node("b").await.unwrap();
    assert!(store.key_nodes(0).await.unwrap().is_empty());

    // Rewrap queries.
    let batch: Vec<OwnedMessage> = (0..10)
        .map(|i| message(&format!("m{i}"), "r", if i < 6 { 1 } else { 2 }))
        .chain([message("x", "s", 3)])
        .collect();
    store.append_batch(&batch).await.unwrap();
    let per_key = store.messages_per_key().await.unwrap();
    assert_eq!(
        per_key.into_iter().collect::<Vec<_>>(),
        vec![(1, 6), (2, 4), (3, 1)]
    );
    assert_eq!(store.messages_below(3).await.unwrap(), 10);
    // Pages in the order of the walk (SQLite's rowid, PostgreSQL's id: the
    // same here), each after the last, of rows under a key below `below`.
    let start = RewrapCursor::default();
    let first = store.messages_to_rewrap(3, &start, 4).await.unwrap();
    assert_eq!(ids(&first), ["m0", "m1", "m2", "m3"]);
    assert_eq!(
        (
            first[0].room.as_str(),
            first[0].sender.as_str(),
            first[0].key_id,
            first[0].envelope.as_str()
        ),
        ("r", "ann", 1, "env-m0")
    );
    let rest = store
        .messages_to_rewrap(3, &first[3].cursor(), 100)
        .await
        .unwrap();
    assert_eq!(ids(&rest), ["m4", "m5", "m6", "m7", "m8", "m9"]);
    assert!(
        store
            .messages_to_rewrap(3, &rest[5].cursor(), 100)
            .await
            .unwrap()
            .is_empty(),
        "the walk ends"
    );
    let below_2 = store.messages_to_rewrap(2, &start, 100).await.unwrap();
    assert_eq!(ids(&below_2), ["m0", "m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(
        store
            .sample_message(3)
            .await
            .unwrap()
            .map(|m| m.id)
            .as_deref(),
        Some("x")
    );
    let all = store.messages_to_rewrap(4, &start, 100).await.unwrap();
    let row = |id: &str| all.iter().find(|m| m.id == id).unwrap();
    let fresh = |id: &str, old_key_id: u32, key_id: u32| NewEnvelope {
        rowid: row(id).rowid,
        id: id.into(),
        old_key_id,
        key_id,
        envelope: format!("new-{id}"),
    };

    // A row is replaced only while it is under the key it was read under.
    let mut writer = store.envelope_writer();
    let replaced = writer
        .replace(
            &[
                fresh("m0", 1, 3),
                // It is under key 2: left alone.
                fresh("m6", 1, 3),
            ],
            (3, 0),
        )
        .await
        .unwrap();
    assert_eq!(replaced.changed, 1);
    let room = store.messages("r", 0, None, 100).await.unwrap();
    let m0 = room.iter().find(|m| m.id == "m0").unwrap();
    assert_eq!((m0.seq, m0.key_id, m0.message.as_str()), (1, 3, "new-m0"));
    let m6 = room.iter().find(|m| m.id == "m6").unwrap();
    assert_eq!((m6.key_id, m6.message.as_str()), (2, "env-m6"));
    // Rewrapped, it left the walk.
    assert_eq!(
        ids(&store.messages_to_rewrap(3, &start, 2).await.unwrap()),
        ["m1", "m2"]
    );
    if store.backend() == Backend::Sqlite {
        // A rowid that no longer holds the message read (a VACUUM may
        // renumber rows) changes nothing.
        let mut moved = fresh("m2", 1, 3);
        moved.rowid = row("m1").rowid;
        assert_eq!(writer.replace(&[moved], (3, 0)).await.unwrap().changed, 0);
    }
    // Many rows: more than one statement's worth.
    let many: Vec<NewEnvelope> = (1..10)
        .map(|i| fresh(&format!("m{i}"), if i < 6 { 1 } else { 2 }, 3))
        .cycle()
        .take(600)
        .collect();
    assert_eq!(writer.replace(&many, (2, 4)).await.unwrap().changed, 9);
    assert_eq!(store.messages_below(3).await.unwrap(), 0);
    assert!(
        store
            .messages_to_rewrap(3, &start, 100)
            .await
            .unwrap()
            .is_empty()
    );

    // Whether a server stored messages since the writer's last transaction
    // (SQLite: the rewrap then leaves gaps); never on PostgreSQL.
    let sqlite = store.backend() == Backend::Sqlite;
    assert!(!writer.replace(&[], (3, 0)).await.unwrap().others_wrote);
    store.append_batch(&[message("y", "s", 3)]).await.unwrap();
    assert_eq!(
        writer.replace(&[], (3, 0)).await.unwrap().others_wrote,
        sqlite
    );
    assert!(!writer.replace(&[], (3, 0)).await.unwrap().others_wrote);
    drop(writer);

    store.retire_keys_below(2).await.unwrap();
    let retired: Vec<bool> = store
        .key_records()
        .await
        .unwrap()
        .iter()
        .map(|r| r.retired)
        .collect();
    assert_eq!(retired, vec![true, false]);
    // Reseals were counted with the envelopes they made.
    assert_eq!(store.key_records().await.unwrap()[1].seals, 7 + 4);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let db = TestDb::sqlite();
    suite(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let db = TestDb::postgres().await;
    suite(&db.url).await;
}

/// A database written by schema version 1 is brought up to the current one (3).
#[tokio::test]
async fn a_version_1_database_is_upgraded() {
    let db = TestDb::sqlite();
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    sqlx::query("CREATE TABLE chat_schema (version BIGINT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO chat_schema (version) VALUES (1)")
        .execute(&pool)
        .await
        .unwrap();
    let store = Store::connect(&db.url).await.unwrap();
    assert_eq!(store.key_generation().await.unwrap(), 0);
    store.close().await;
    let v: i64 = sqlx::query_scalar("SELECT MAX(version) FROM chat_schema")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(v, chatseal_server::store::SCHEMA_VERSION);
    pool.close().await;
}
