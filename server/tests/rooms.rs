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

async fn make_state() -> Arc<Shared> {
    let path = std::env::temp_dir().join(format!("chatseal-rooms-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    let tokens = Tokens::new(&Zeroizing::new(vec![7u8; 32]), Duration::from_secs(60));
    let auth = ServiceAuth::new(Zeroizing::new("s3cret".to_owned()), "the test");
    Arc::new(Shared::new(
        Sealer::new(Keyring::generate()),
        store,
        tokens,
        auth,
    ))
}

/// A guest may join any number of names (5 a second per connection, for as
/// long as it stays): none of them may cost a row, or the database grows
/// without bound and every name a guest touched could never become private.
#[tokio::test]
async fn joining_unknown_rooms_writes_nothing() {
    let state = make_state().await;
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
}
