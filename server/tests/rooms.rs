//! Room access: what a `join` leaves in the store.

use std::sync::Arc;
use std::time::Duration;

use chatseal_core::Zeroizing;
use chatseal_core::{Keyring, Sealer};
use chatseal_server::app::Shared;
use chatseal_server::auth::Tokens;
use chatseal_server::chat::identity::Identity;
use chatseal_server::chat::rooms::check_access;
use chatseal_server::service::ServiceAuth;
use chatseal_server::store::Store;

/// A server's state on a fresh SQLite file named after `test`, and the file.
async fn make_state(test: &str) -> (Arc<Shared>, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("chatseal-{test}-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    let tokens = Tokens::new(&Zeroizing::new(vec![7u8; 32]), Duration::from_secs(60));
    let auth = ServiceAuth::new(Zeroizing::new("s3cret".to_owned()), "the test");
    let state = Arc::new(Shared::new(
        Sealer::new(Keyring::generate()),
        store,
        tokens,
        auth,
    ));
    (state, path)
}

/// A guest may join any number of names (5 a second per connection, for as
/// long as it stays): none of them may cost a row, or the database grows
/// without bound and every name a guest touched could never become private.
#[tokio::test]
async fn joining_unknown_rooms_writes_nothing() {
    let (state, path) = make_state("rooms").await;
    let guest = Identity::Guest("lurker".to_owned());
    let account = Identity::Account("ann".to_owned());
    for i in 0..20 {
        let room = format!("room-{i}");
        let who = if i % 2 == 0 { &guest } else { &account };
        check_access(&state, who, &room).await.unwrap();
        assert!(state.store.room(&room).await.unwrap().is_none(), "{room}");
    }
    // And a joined, silent name can still be created private.
    assert!(
        state
            .store
            .create_room("room-0", "ann", true)
            .await
            .unwrap()
    );
    let _ = std::fs::remove_file(&path);
}

/// A message sealed under a room's old key epoch that reaches the writer
/// after a member's removal is never stored under it: the store sends it
/// back, the writer seals it again under the new epoch (same id, sender and
/// context) and stores that, in order; the old epoch's key opens nothing.
#[tokio::test]
async fn the_writer_seals_again_what_an_epoch_change_overtook() {
    use chatseal_core::{Room, chat_context};
    use chatseal_server::chat::writer::Writer;
    use chatseal_server::store::{Appended, EpochChange, OwnedMessage};

    let (state, path) = make_state("rooms-writer").await;
    let writer = Writer::start(Arc::downgrade(&state), state.store.appends_block());
    let room = "vault";
    assert!(state.store.create_room(room, "ann", true).await.unwrap());
    state.store.add_member(room, "eve").await.unwrap();

    // Sealed at epoch 1, as a server that has not heard of the removal would.
    let seal = |id: &str, text: &str| {
        let context = chat_context(room, id, "ann");
        let envelope = state
            .sealer
            .seal_text(Room::at(room, 1), &context, text.as_bytes())
            .unwrap();
        OwnedMessage {
            id: id.to_owned(),
            room: room.to_owned(),
            sender: "ann".to_owned(),
            ts: 1,
            key_id: state.sealer.primary_key_id(),
            epoch: 1,
            envelope,
            client_id: None,
        }
    };
    let (one, two) = (seal("m-1", "first"), seal("m-2", "second"));
    assert_eq!(
        state.store.remove_member(room, "eve").await.unwrap(),
        EpochChange::Now(2)
    );
    let mut outcomes = Vec::new();
    for m in [one, two] {
        let (tx, rx) = tokio::sync::oneshot::channel();
        writer
            .submit(
                m,
                Box::new(move |r| {
                    let _ = tx.send(r.ok().cloned());
                }),
            )
            .await;
        outcomes.push(rx);
    }
    let mut stored = Vec::new();
    for rx in outcomes {
        match rx.await.unwrap() {
            Some(Appended::New(m)) => stored.push(m),
            other => panic!("not stored: {other:?}"),
        }
    }
    assert_eq!(
        stored.iter().map(|m| (m.seq, m.epoch)).collect::<Vec<_>>(),
        [(1, 2), (2, 2)]
    );
    let read = state.store.messages(room, 0, None, 10).await.unwrap();
    for (m, text) in read.iter().zip(["first", "second"]) {
        let context = chat_context(room, &m.id, &m.sender);
        assert_eq!(m.epoch, 2);
        let opened = state
            .sealer
            .open_text(Room::at(room, 2), &context, &m.message)
            .unwrap();
        assert_eq!(&opened[..], text.as_bytes());
        let old = state
            .sealer
            .open_text(Room::at(room, 1), &context, &m.message)
            .unwrap_err();
        assert_eq!(
            old.kind().code(),
            "BAD_TAG",
            "the epoch-1 key opens nothing"
        );
    }
    assert_eq!(state.epochs.get(room), 2, "the server learnt the new epoch");
    let _ = std::fs::remove_file(&path);
}
