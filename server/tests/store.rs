//! The store on both backends: the same assertions on SQLite and on
//! PostgreSQL, each in a database of its own.

mod common;

use std::collections::BTreeSet;

use chatseal_server::store::{Appended, Backend, MAX_BATCH, NewMessage, OwnedMessage, Store};
use common::TestDb;

fn msg<'a>(
    id: &'a str,
    room: &'a str,
    sender: &'a str,
    client_id: Option<&'a str>,
) -> NewMessage<'a> {
    NewMessage {
        id,
        room,
        sender,
        ts: 1_700_000_000_000,
        key_id: 7,
        epoch: 0,
        envelope: "AQEAAAAH",
        client_id,
    }
}

async fn appends_number_each_room_from_one(store: &Store) {
    for (i, room) in ["a", "b", "a", "a", "b"].iter().enumerate() {
        let id = format!("id-{i}");
        assert!(matches!(
            store.append(&msg(&id, room, "ann", None)).await.unwrap(),
            Appended::New(_)
        ));
    }
    let a: Vec<i64> = store
        .messages("a", 0, None, 100)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(a, [1, 2, 3]);
    assert_eq!(store.latest_seq("b").await.unwrap(), 2);
    assert_eq!(store.latest_seq("never").await.unwrap(), 0);
    let m = &store.messages("a", 2, None, 100).await.unwrap()[0];
    assert_eq!(
        (
            m.id.as_str(),
            m.sender.as_str(),
            m.key_id,
            m.ts,
            m.message.as_str()
        ),
        ("id-3", "ann", 7, 1_700_000_000_000, "AQEAAAAH")
    );
}

async fn paging(store: &Store) {
    for i in 0..10 {
        store
            .append(&msg(&format!("p-{i}"), "paged", "ann", None))
            .await
            .unwrap();
    }
    let seqs =
        |v: Vec<chatseal_server::store::StoredMessage>| v.iter().map(|m| m.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(store.messages("paged", 3, None, 2).await.unwrap()),
        [4, 5]
    );
    assert_eq!(
        seqs(store.messages("paged", 3, Some(5), 10).await.unwrap()),
        [4]
    );
    assert_eq!(
        seqs(store.latest_messages("paged", None, 3).await.unwrap()),
        [8, 9, 10]
    );
    assert_eq!(
        seqs(store.latest_messages("paged", Some(3), 5).await.unwrap()),
        [1, 2]
    );
}

async fn client_ids_dedup_per_sender(store: &Store) {
    let Appended::New(first) = store
        .append(&msg("d-1", "dd", "ann", Some("c1")))
        .await
        .unwrap()
    else {
        panic!("first send is new")
    };
    let again = store
        .append(&msg("d-2", "dd", "ann", Some("c1")))
        .await
        .unwrap();
    assert_eq!(again, Appended::Duplicate(first.clone()));
    // Another sender may use the same clientId.
    assert!(matches!(
        store
            .append(&msg("d-3", "dd", "bob", Some("c1")))
            .await
            .unwrap(),
        Appended::New(_)
    ));
    assert_eq!(
        store.latest_seq("dd").await.unwrap(),
        2,
        "a duplicate takes no seq"
    );
}

async fn concurrent_appends_are_gap_free(store: &Store) {
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let id = format!("c-{t}-{i}");
                store
                    .append(&msg(&id, "busy", &format!("u{t}"), Some(&id)))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seqs: BTreeSet<i64> = store
        .messages("busy", 0, None, 1000)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, (1..=200).collect());
}

async fn accounts_and_rooms(store: &Store) {
    assert!(store.create_user("ann", "$argon2id$…", 1).await.unwrap());
    assert!(!store.create_user("ann", "other", 2).await.unwrap());
    assert_eq!(
        store.password_hash("ann").await.unwrap().as_deref(),
        Some("$argon2id$…")
    );
    assert_eq!(store.password_hash("nobody").await.unwrap(), None);

    assert!(store.create_room("club", "ann", true).await.unwrap());
    assert!(!store.create_room("club", "bob", false).await.unwrap());
    let info = store.room("club").await.unwrap().unwrap();
    assert!(info.private);
    assert_eq!(info.owner.as_deref(), Some("ann"));
    assert!(store.is_member("club", "ann").await.unwrap());
    assert!(!store.is_member("club", "bob").await.unwrap());
    store.add_member("club", "bob").await.unwrap();
    store.add_member("club", "bob").await.unwrap();
    assert!(store.is_member("club", "bob").await.unwrap());
    // A created room numbers its messages like any other (a private one
    // seals under epoch 1).
    store
        .append(&NewMessage {
            epoch: 1,
            ..msg("club-1", "club", "ann", None)
        })
        .await
        .unwrap();
    assert_eq!(store.latest_seq("club").await.unwrap(), 1);
    assert_eq!(
        store.room("club").await.unwrap().unwrap().owner.as_deref(),
        Some("ann")
    );
    // A room made by its first message is public and ownerless.
    store
        .append(&msg("open-1", "open", "ann", None))
        .await
        .unwrap();
    let open = store.room("open").await.unwrap().unwrap();
    assert!(!open.private);
    assert_eq!(open.owner, None);
}

fn owned(id: &str, room: &str, sender: &str, client_id: Option<&str>) -> OwnedMessage {
    OwnedMessage {
        id: id.into(),
        room: room.into(),
        sender: sender.into(),
        ts: 5,
        key_id: 3,
        epoch: 0,
        envelope: format!("env-{id}"),
        client_id: client_id.map(Into::into),
    }
}

async fn batches_number_in_order_and_dedup(store: &Store) {
    store
        .append(&msg("b-0", "batch-a", "ann", Some("seen")))
        .await
        .unwrap();
    let batch = vec![
        owned("b-1", "batch-a", "ann", None),
        owned("b-2", "batch-b", "bob", Some("k1")),
        owned("b-3", "batch-a", "ann", Some("seen")), // stored before the batch
        owned("b-4", "batch-b", "bob", Some("k1")),   // bob's k1 again, in the batch
        owned("b-5", "batch-b", "ann", Some("k1")),   // another sender's k1: new
        owned("b-6", "batch-a", "ann", None),
        // bob's k1 in another room: a new message, never answered with b-2
        owned("b-7", "batch-a", "bob", Some("k1")),
        owned("b-8", "batch-b", "ann", Some("seen")), // ann's "seen" of batch-a: new
    ];
    let out = store.append_batch(&batch).await.unwrap();
    let summary: Vec<(bool, String, i64)> = out
        .iter()
        .map(|a| match a {
            Appended::New(m) => (true, m.id.clone(), m.seq),
            Appended::Duplicate(m) => (false, m.id.clone(), m.seq),
            Appended::Forbidden | Appended::StaleEpoch { .. } => {
                panic!("a public room refused a message")
            }
        })
        .collect();
    assert_eq!(
        summary,
        [
            (true, "b-1".to_owned(), 2),
            (true, "b-2".to_owned(), 1),
            (false, "b-0".to_owned(), 1),
            (false, "b-2".to_owned(), 1),
            (true, "b-5".to_owned(), 2),
            (true, "b-6".to_owned(), 3),
            (true, "b-7".to_owned(), 4),
            (true, "b-8".to_owned(), 3),
        ]
    );
    let a: Vec<(i64, String)> = store
        .messages("batch-a", 0, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.seq, m.message))
        .collect();
    assert_eq!(
        a,
        [
            (1, "AQEAAAAH".to_owned()),
            (2, "env-b-1".to_owned()),
            (3, "env-b-6".to_owned()),
            (4, "env-b-7".to_owned())
        ]
    );
    assert_eq!(store.latest_seq("batch-b").await.unwrap(), 3);
    // A whole batch of resends stores nothing.
    let again = store.append_batch(&batch[1..2]).await.unwrap();
    assert!(matches!(&again[0], Appended::Duplicate(m) if m.id == "b-2"));
    assert_eq!(store.latest_seq("batch-b").await.unwrap(), 3);
    // The largest batch goes in one statement.
    let big: Vec<OwnedMessage> = (0..MAX_BATCH)
        .map(|i| owned(&format!("big-{i}"), "big", "ann", Some(&format!("big-{i}"))))
        .collect();
    let out = store.append_batch(&big).await.unwrap();
    assert!(out.iter().all(|a| matches!(a, Appended::New(_))));
    assert_eq!(store.latest_seq("big").await.unwrap(), MAX_BATCH as i64);
}

/// Two servers (two pools) storing the same clientId at once: one message,
/// both told the same id. On PostgreSQL this races into the unique index
/// and exercises the retry.
async fn the_same_client_id_from_two_servers_is_stored_once(url: &str) {
    let (one, two) = (
        Store::connect(url).await.unwrap(),
        Store::connect(url).await.unwrap(),
    );
    for round in 0..20 {
        let cid = format!("race-{round}");
        let a = owned(&format!("race-a-{round}"), "race", "ann", Some(&cid));
        let b = owned(&format!("race-b-{round}"), "race", "ann", Some(&cid));
        let (ra, rb) = tokio::join!(
            one.append_batch(std::slice::from_ref(&a)),
            two.append_batch(std::slice::from_ref(&b))
        );
        let id = |r: &Appended| match r {
            Appended::New(m) | Appended::Duplicate(m) => m.id.clone(),
            Appended::Forbidden | Appended::StaleEpoch { .. } => {
                panic!("a public room refused a message")
            }
        };
        let (ra, rb) = (ra.unwrap().remove(0), rb.unwrap().remove(0));
        assert_eq!(id(&ra), id(&rb), "round {round}");
        assert!(
            matches!(ra, Appended::New(_)) != matches!(rb, Appended::New(_)),
            "exactly one is new"
        );
    }
    assert_eq!(one.latest_seq("race").await.unwrap(), 20);
    one.close().await;
    two.close().await;
}

async fn reopening_keeps_everything(url: &str) {
    let store = Store::connect(url).await.unwrap();
    store
        .append(&msg("r-1", "kept", "ann", None))
        .await
        .unwrap();
    store.close().await;
    let again = Store::connect(url).await.unwrap();
    assert_eq!(again.latest_seq("kept").await.unwrap(), 1);
    again.close().await;
}

/// The store is the authority on a room's key epoch: a private room starts
/// at 1 (its name's epoch-0 key went to whoever joined it while public); a
/// removal and a reset each start the next one in the same transaction; a
/// message sealed under another epoch is sent back with every other message
/// of its room in the batch (so they are stored in order once sealed
/// again), stored nowhere and counted nowhere, while other rooms' go in.
async fn key_epochs(store: &Store) {
    use chatseal_server::store::EpochChange;
    assert!(store.create_room("epochs", "erin", true).await.unwrap());
    assert!(
        store
            .create_room("epochs-open", "erin", false)
            .await
            .unwrap()
    );
    assert_eq!(store.room("epochs").await.unwrap().unwrap().epoch, 1);
    assert_eq!(store.room("epochs-open").await.unwrap().unwrap().epoch, 0);
    assert_eq!(store.room_epoch("epochs").await.unwrap(), 1);
    assert_eq!(store.room_epoch("no-row-here").await.unwrap(), 0);
    store.add_member("epochs", "eve").await.unwrap();
    store.add_member("epochs", "ed").await.unwrap();
    let at = |epoch, m: OwnedMessage| OwnedMessage { epoch, ..m };

    let out = store
        .append_batch(&[at(1, owned("e-1", "epochs", "erin", None))])
        .await
        .unwrap();
    assert!(matches!(&out[0], Appended::New(m) if m.epoch == 1 && m.seq == 1));

    assert_eq!(
        store.remove_member("epochs", "eve").await.unwrap(),
        EpochChange::Now(2)
    );
    assert_eq!(
        store.remove_member("epochs", "eve").await.unwrap(),
        EpochChange::NotMember,
        "a second removal changes nothing"
    );
    assert_eq!(store.room_epoch("epochs").await.unwrap(), 2);
    let batch = [
        at(1, owned("e-2", "epochs", "erin", None)), // sealed before the removal
        at(2, owned("e-3", "epochs", "ed", None)),   // after it, but behind e-2
        owned("e-4", "epochs-open", "erin", None),
        at(2, owned("e-5", "epochs", "mallory", None)), // not a member at all
    ];
    let out = store.append_batch(&batch).await.unwrap();
    assert_eq!(
        out[..2],
        [
            Appended::StaleEpoch { epoch: 2 },
            Appended::StaleEpoch { epoch: 2 }
        ]
    );
    assert!(matches!(&out[2], Appended::New(m) if m.room == "epochs-open"));
    assert_eq!(out[3], Appended::Forbidden);
    assert_eq!(
        store.latest_seq("epochs").await.unwrap(),
        1,
        "nothing counted"
    );
    // Sealed again under 2, the two go in, in their order.
    let out = store
        .append_batch(&[
            at(2, owned("e-2", "epochs", "erin", None)),
            at(2, owned("e-3", "epochs", "ed", None)),
        ])
        .await
        .unwrap();
    let stored: Vec<(i64, u32)> = out
        .iter()
        .map(|a| match a {
            Appended::New(m) => (m.seq, m.epoch),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(stored, [(2, 2), (3, 2)]);
    // Read back with their epochs; a newer epoch than the room's is refused too.
    let read: Vec<u32> = store
        .messages("epochs", 0, None, 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.epoch)
        .collect();
    assert_eq!(read, [1, 2, 2]);
    let out = store
        .append_batch(&[at(7, owned("e-6", "epochs", "ed", None))])
        .await
        .unwrap();
    assert_eq!(out, [Appended::StaleEpoch { epoch: 2 }]);

    assert_eq!(
        store.new_epoch("epochs").await.unwrap(),
        EpochChange::Now(3)
    );
    assert_eq!(
        store.new_epoch("never-made").await.unwrap(),
        EpochChange::NoRoom
    );
}

/// The store is the authority on who may post to a private room: a batch
/// (one transaction) refuses a non-member's message into a private room,
/// stores nothing of it and moves no counter, and stores the rest.
async fn private_rooms_refuse_non_members_in_the_batch(store: &Store) {
    assert!(store.create_room("vault", "vera", true).await.unwrap());
    store.add_member("vault", "val").await.unwrap();
    // A private room seals under epoch 1 from its creation.
    let at1 = |m: OwnedMessage| OwnedMessage { epoch: 1, ..m };
    let batch = vec![
        at1(owned("v-1", "vault", "vera", None)),
        at1(owned("v-2", "vault", "mallory", Some("m1"))), // not a member
        owned("v-3", "vault-open", "mallory", None),       // no row: public
        at1(owned("v-4", "vault", "val", None)),
        at1(owned("v-5", "vault", "lurker", None)), // a guest's name
        at1(owned("v-6", "vault", "mallory", Some("m1"))),
    ];
    let out = store.append_batch(&batch).await.unwrap();
    let kinds: Vec<_> = out
        .iter()
        .map(|a| match a {
            Appended::New(m) => format!("new {} {}", m.room, m.seq),
            Appended::Duplicate(m) => format!("dup {}", m.id),
            Appended::Forbidden => "forbidden".to_owned(),
            Appended::StaleEpoch { epoch } => format!("stale, now {epoch}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "new vault 1",
            "forbidden",
            "new vault-open 1",
            "new vault 2",
            "forbidden",
            "forbidden"
        ]
    );
    let ids: Vec<String> = store
        .messages("vault", 0, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, ["v-1", "v-4"]);
    assert_eq!(store.latest_seq("vault").await.unwrap(), 2);
    // A batch of refused messages only: nothing stored, nothing counted.
    let out = store
        .append_batch(&[at1(owned("v-7", "vault", "mallory", None))])
        .await
        .unwrap();
    assert_eq!(out, [Appended::Forbidden]);
    assert_eq!(store.latest_seq("vault").await.unwrap(), 2);
    assert_eq!(
        store.room_members("vault").await.unwrap().len(),
        2,
        "vera and val"
    );
}

/// A full batch spread over many rooms, public and private, interleaved:
/// every room numbers its own messages from where it was, in input order,
/// and a private room refuses exactly its non-members (the counters and the
/// access checks are one statement each for the whole batch).
async fn a_batch_over_many_rooms_numbers_each(store: &Store) {
    const ROOMS: usize = 100;
    for r in (0..ROOMS).step_by(10) {
        assert!(
            store
                .create_room(&format!("many-{r}"), "owner", true)
                .await
                .unwrap()
        );
    }
    // Room 1 has history already.
    store
        .append(&msg("many-pre", "many-1", "ann", None))
        .await
        .unwrap();
    let room_of = |i: usize| i * 7 % ROOMS;
    let batch: Vec<OwnedMessage> = (0..MAX_BATCH)
        .map(|i| {
            let r = room_of(i);
            // Private rooms: the owner posts on even i, a stranger on odd.
            let (sender, epoch) = match (r % 10, i % 2) {
                (0, 0) => ("owner", 1),
                (0, _) => ("stranger", 1),
                _ => ("ann", 0),
            };
            let m = owned(&format!("many-{i}"), &format!("many-{r}"), sender, None);
            OwnedMessage { epoch, ..m }
        })
        .collect();
    let out = store.append_batch(&batch).await.unwrap();
    let mut next: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    next.insert("many-1".to_owned(), 2);
    for (i, (m, result)) in batch.iter().zip(&out).enumerate() {
        if m.sender == "stranger" {
            assert_eq!(*result, Appended::Forbidden, "message {i}");
            continue;
        }
        let seq = next.entry(m.room.clone()).or_insert(1);
        match result {
            Appended::New(stored) => {
                assert_eq!((&stored.room, stored.seq), (&m.room, *seq), "message {i}");
            }
            other => panic!("message {i}: {other:?}"),
        }
        *seq += 1;
    }
    for r in 0..ROOMS {
        let room = format!("many-{r}");
        let want = next.get(&room).map_or(0, |n| n - 1);
        assert_eq!(store.latest_seq(&room).await.unwrap(), want, "{room}");
        let seqs: Vec<i64> = store
            .messages(&room, 0, None, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.seq)
            .collect();
        assert_eq!(seqs, (1..=want).collect::<Vec<_>>(), "{room}");
    }
}

/// What operators do to accounts (`users …`) and what token checks read.
async fn managed_accounts(store: &Store) {
    use chatseal_server::store::{AccountState, Invited};
    assert!(store.create_user("mona", "hash-1", 1).await.unwrap());
    let fresh = AccountState {
        disabled: false,
        tokens_after: 0,
    };
    assert_eq!(store.account_state("mona").await.unwrap(), Some(fresh));
    assert_eq!(store.account_state("nobody").await.unwrap(), None);
    // A reset replaces the hash and revokes earlier tokens.
    assert!(store.reset_password("mona", "hash-2", 1000).await.unwrap());
    assert!(!store.reset_password("nobody", "x", 1000).await.unwrap());
    assert_eq!(
        store.password_hash("mona").await.unwrap().as_deref(),
        Some("hash-2")
    );
    assert_eq!(
        store
            .account_state("mona")
            .await
            .unwrap()
            .unwrap()
            .tokens_after,
        1000
    );
    // Disabled: no hash for logins or invitations, and tokens refused.
    assert!(store.set_disabled("mona", true, 2000).await.unwrap());
    assert_eq!(store.password_hash("mona").await.unwrap(), None);
    assert_eq!(
        store.account_state("mona").await.unwrap(),
        Some(AccountState {
            disabled: true,
            tokens_after: 2000
        })
    );
    // Enabled again: the revocation stands.
    assert!(store.set_disabled("mona", false, 3000).await.unwrap());
    assert_eq!(
        store.account_state("mona").await.unwrap(),
        Some(AccountState {
            disabled: false,
            tokens_after: 2000
        })
    );
    assert!(!store.set_disabled("nobody", true, 1).await.unwrap());
    // Invitations: used once per account made, never past their expiry.
    store.create_invite("code-a", 1, 5000, 1).await.unwrap();
    store.create_invite("code-old", 5, 10, 1).await.unwrap();
    assert_eq!(
        store
            .create_user_invited("MONA", "h", "code-a", 100)
            .await
            .unwrap(),
        Invited::NameTaken
    );
    assert_eq!(
        store
            .create_user_invited("nick", "h", "code-a", 100)
            .await
            .unwrap(),
        Invited::Created
    );
    assert_eq!(
        store
            .create_user_invited("nora", "h", "code-a", 100)
            .await
            .unwrap(),
        Invited::BadInvite
    );
    assert_eq!(
        store
            .create_user_invited("nora", "h", "code-old", 100)
            .await
            .unwrap(),
        Invited::BadInvite
    );
    assert_eq!(
        store
            .create_user_invited("nora", "h", "nope", 100)
            .await
            .unwrap(),
        Invited::BadInvite
    );
    assert_eq!(store.password_hash("nora").await.unwrap(), None);
}

/// chat_messages' indexes that name `client_id`, as the database prints
/// their definitions.
async fn client_id_indexes(url: &str, backend: Backend) -> Vec<String> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT sql FROM sqlite_master WHERE type = 'index' \
             AND tbl_name = 'chat_messages' AND sql LIKE '%client_id%'"
        }
        Backend::Postgres => {
            "SELECT indexdef FROM pg_indexes \
             WHERE tablename = 'chat_messages' AND indexdef LIKE '%client_id%'"
        }
    };
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let found = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
    pool.close().await;
    found
}

/// Resends are found by (room, sender, clientId), and only messages with
/// a clientId are indexed for it: a message without one (a plain
/// Socket.IO client's) costs no index page at commit.
async fn only_messages_with_a_client_id_are_indexed_for_resends(url: &str, backend: Backend) {
    let indexes = client_id_indexes(url, backend).await;
    assert_eq!(indexes.len(), 1, "{indexes:?}");
    assert!(indexes[0].contains("UNIQUE"), "{indexes:?}");
    assert!(indexes[0].contains("client_id IS NOT NULL"), "{indexes:?}");
}

async fn suite(db: &TestDb, backend: Backend) {
    let store = Store::connect(&db.url).await.unwrap();
    assert_eq!(store.backend(), backend);
    // A SQLite file is written through a connection of its own, on the
    // caller's thread (the message writer's); everything below runs on it.
    assert_eq!(store.appends_block(), backend == Backend::Sqlite);
    store.ping().await.unwrap();
    appends_number_each_room_from_one(&store).await;
    paging(&store).await;
    client_ids_dedup_per_sender(&store).await;
    concurrent_appends_are_gap_free(&store).await;
    accounts_and_rooms(&store).await;
    batches_number_in_order_and_dedup(&store).await;
    private_rooms_refuse_non_members_in_the_batch(&store).await;
    a_batch_over_many_rooms_numbers_each(&store).await;
    managed_accounts(&store).await;
    key_epochs(&store).await;
    store.close().await;
    the_same_client_id_from_two_servers_is_stored_once(&db.url).await;
    reopening_keeps_everything(&db.url).await;
    only_messages_with_a_client_id_are_indexed_for_resends(&db.url, backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let db = TestDb::sqlite();
    suite(&db, Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let db = TestDb::postgres().await;
    suite(&db, Backend::Postgres).await;
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let db = TestDb::sqlite();
    let store = Store::connect(&db.url).await.unwrap();
    store.close().await;
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    sqlx::query("INSERT INTO chat_schema (version) VALUES (99)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let err = Store::connect(&db.url).await.unwrap_err();
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

/// A database written before key epochs (schema version 3) is brought up
/// to date at start: its rooms and messages are at epoch 0, which is the
/// room key they were sealed under, and new ones carry their epoch.
#[tokio::test]
async fn a_version_3_database_gains_key_epochs() {
    let db = TestDb::sqlite();
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    for statement in [
        "CREATE TABLE chat_schema (version BIGINT NOT NULL)",
        "INSERT INTO chat_schema (version) VALUES (3)",
        "CREATE TABLE chat_rooms (name TEXT PRIMARY KEY, last_seq BIGINT NOT NULL DEFAULT 0, \
         owner TEXT, private BIGINT NOT NULL DEFAULT 0)",
        "CREATE TABLE chat_messages (room TEXT NOT NULL, seq BIGINT NOT NULL, \
         id TEXT NOT NULL UNIQUE, sender TEXT NOT NULL, ts BIGINT NOT NULL, \
         key_id BIGINT NOT NULL, envelope TEXT NOT NULL, client_id TEXT, \
         PRIMARY KEY (room, seq))",
        "INSERT INTO chat_rooms (name, last_seq, owner, private) VALUES ('old', 1, 'ann', 1)",
        "INSERT INTO chat_messages (room, seq, id, sender, ts, key_id, envelope) \
         VALUES ('old', 1, 'm-1', 'ann', 5, 1, 'AQEAAAAB')",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;

    // Two servers starting together on it: both add what is missing.
    let (one, two) = tokio::join!(Store::connect(&db.url), Store::connect(&db.url));
    let (one, two) = (one.unwrap(), two.unwrap());
    two.close().await;
    let old = one.messages("old", 0, None, 10).await.unwrap();
    assert_eq!((old.len(), old[0].epoch), (1, 0));
    assert_eq!(one.room("old").await.unwrap().unwrap().epoch, 0);
    let out = one
        .append_batch(&[OwnedMessage {
            epoch: 0,
            ..owned("m-2", "old", "ann", None)
        }])
        .await
        .unwrap();
    assert!(
        matches!(&out[0], Appended::Forbidden),
        "ann was never a member row"
    );
    assert_eq!(
        one.remove_member("old", "ann").await.unwrap(),
        chatseal_server::store::EpochChange::NotMember
    );
    assert_eq!(
        one.new_epoch("old").await.unwrap(),
        chatseal_server::store::EpochChange::Now(1)
    );
    one.close().await;
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let version: i64 = sqlx::query_scalar("SELECT MAX(version) FROM chat_schema")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(version, chatseal_server::store::SCHEMA_VERSION);
    pool.close().await;
}

/// A database of schema version 4 indexed every message for resends; at
/// start the index of messages with a clientId replaces it (two servers
/// starting together do it once), and a resend of a message stored before
/// the upgrade is still answered with it.
async fn a_version_4_database_moves_to_the_client_id_index(db: &TestDb, backend: Backend) {
    let store = Store::connect(&db.url).await.unwrap();
    let Appended::New(first) = store
        .append(&msg("u-1", "up", "ann", Some("c1")))
        .await
        .unwrap()
    else {
        panic!("first send is new")
    };
    assert!(matches!(
        store.append(&msg("u-2", "up", "ann", None)).await.unwrap(),
        Appended::New(_)
    ));
    store.close().await;
    sqlx::any::install_default_drivers();
    // Several rounds: two servers' catalog updates race only sometimes.
    let mut one = None;
    for _ in 0..5 {
        let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
        for statement in [
            "DROP INDEX chat_messages_room_client_id",
            "CREATE UNIQUE INDEX chat_messages_room_client ON chat_messages (room, sender, client_id)",
            "DELETE FROM chat_schema",
            "INSERT INTO chat_schema (version) VALUES (4)",
        ] {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        pool.close().await;
        assert!(
            !client_id_indexes(&db.url, backend).await[0].contains("NOT NULL"),
            "version 4's index"
        );
        let (first, second) = tokio::join!(Store::connect(&db.url), Store::connect(&db.url));
        let (first, second) = (first.unwrap(), second.unwrap());
        second.close().await;
        only_messages_with_a_client_id_are_indexed_for_resends(&db.url, backend).await;
        if let Some(earlier) = one.replace(first) {
            earlier.close().await;
        }
    }
    let one = one.expect("five rounds");
    assert_eq!(
        one.append(&msg("u-3", "up", "ann", Some("c1")))
            .await
            .unwrap(),
        Appended::Duplicate(first)
    );
    assert!(matches!(
        one.append(&msg("u-4", "up", "ann", None)).await.unwrap(),
        Appended::New(_)
    ));
    one.close().await;
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let version: i64 = sqlx::query_scalar("SELECT MAX(version) FROM chat_schema")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(version, 5);
    pool.close().await;
}

#[tokio::test]
async fn a_version_4_sqlite_database_moves_to_the_client_id_index() {
    a_version_4_database_moves_to_the_client_id_index(&TestDb::sqlite(), Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_4_postgres_database_moves_to_the_client_id_index() {
    let db = TestDb::postgres().await;
    a_version_4_database_moves_to_the_client_id_index(&db, Backend::Postgres).await;
}
