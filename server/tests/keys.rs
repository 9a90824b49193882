//! Keys that never lose a message, through the real binary: the server
//! refuses a keyring that would lose one (at start and on reload), and the
//! `keys` commands rotate, rewrap (killed halfway and resumed) and retire
//! on a store with messages in it, while a server runs.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatseal_core::{Keyring, Sealer, SecretKey, chat_context};
use chatseal_server::store::{OwnedMessage, Store};

const BIN: &str = env!("CARGO_BIN_EXE_chatseal-server");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "chatseal-keys-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn keyring(keys: &[(u32, u8)], primary: u32, min_decrypt: u32) -> Keyring {
    Keyring::from_parts(
        keys.iter()
            .map(|(id, b)| (*id, SecretKey::from_bytes([*b; 32]))),
        primary,
        min_decrypt,
    )
    .unwrap()
}

/// A command line of the binary with a clean environment.
fn cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("CHATSEAL_KEYRING")
        .env_remove("CHATSEAL_KEYRING_FILE")
        .env_remove("DATABASE_URL")
        .env_remove("CHATSEAL_JWT_SECRET")
        .env_remove("CHATSEAL_ROTATE_AFTER")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info");
    c
}

fn keys(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["keys"];
    all.extend_from_slice(args);
    cmd(dir, &all).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

struct Server {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(dir: &Path) -> Server {
        Server::spawn(&mut cmd(dir, &["--listen", "127.0.0.1:0"]))
    }

    fn spawn(command: &mut Command) -> Server {
        let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let server = Server { child, log };
        server.wait_for("listening");
        server
    }

    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log:\n{}",
                self.log.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    fn hup(&self) {
        let _ = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status();
    }
}

/// The server's start fails; its stderr.
fn start_fails(dir: &Path) -> String {
    let out = cmd(dir, &["--listen", "127.0.0.1:0"]).output().unwrap();
    assert!(!out.status.success(), "started: {}", text(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn store(dir: &Path) -> Store {
    Store::connect(&format!(
        "sqlite://{}?mode=rwc",
        dir.join("chatseal.db").display()
    ))
    .await
    .unwrap()
}

/// Seals and stores `n` messages in `room` as the server would.
async fn seed(store: &Store, sealer: &Sealer, room: &str, n: usize) -> Vec<(String, String)> {
    seed_at(store, sealer, room, 0, n).await
}

/// [`seed`] at the room's key epoch `epoch`.
async fn seed_at(
    store: &Store,
    sealer: &Sealer,
    room: &str,
    epoch: u32,
    n: usize,
) -> Vec<(String, String)> {
    let mut sent = Vec::new();
    let mut batch = Vec::new();
    for i in 0..n {
        let id = uuid::Uuid::now_v7().to_string();
        let text = format!("message {i} in {room}");
        let envelope = sealer
            .seal_text(
                chatseal_core::Room::at(room, epoch),
                &chat_context(room, &id, "ann"),
                text.as_bytes(),
            )
            .unwrap();
        let key_id = chatseal_core::Header::parse(&chatseal_core::decode_text(&envelope).unwrap())
            .unwrap()
            .key_id;
        batch.push(OwnedMessage {
            id: id.clone(),
            room: room.into(),
            sender: "ann".into(),
            ts: 1,
            key_id,
            epoch,
            envelope,
            client_id: None,
        });
        sent.push((id, text));
        if batch.len() == chatseal_server::store::MAX_BATCH {
            store.append_batch(&batch).await.unwrap();
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.append_batch(&batch).await.unwrap();
    }
    sent
}

/// Every message of `room` opens with `keyring` to the text sent, and keeps
/// its id, seq and sender; returns the key ids they are under.
async fn all_open(
    store: &Store,
    keyring: &Keyring,
    room: &str,
    sent: &[(String, String)],
) -> Vec<u32> {
    let sealer = Sealer::new(keyring.clone());
    let stored = store.messages(room, 0, None, 1_000_000).await.unwrap();
    assert_eq!(stored.len(), sent.len());
    let mut ids = Vec::new();
    for (i, (m, (id, text))) in stored.iter().zip(sent).enumerate() {
        assert_eq!((&m.id, m.seq, m.sender.as_str()), (id, i as i64 + 1, "ann"));
        let plain = sealer
            .open_text(
                chatseal_core::Room::at(room, m.epoch),
                &chat_context(room, &m.id, &m.sender),
                &m.message,
            )
            .unwrap_or_else(|e| panic!("message {} does not open: {e}", m.id));
        assert_eq!(&plain[..], text.as_bytes());
        ids.push(m.key_id);
    }
    ids
}

fn status(dir: &Path) -> serde_json::Value {
    let out = keys(dir, &["status", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_refuses_a_keyring_that_would_lose_messages() {
    let dir = temp_dir("start");
    let file = dir.join("keyring.json");
    let k1 = keyring(&[(1, 1)], 1, 1);
    k1.save_file(&file).unwrap();
    let db = store(&dir).await;
    seed(&db, &Sealer::new(k1.clone()), "lobby", 3).await;
    // The first start records key 1 (the messages open under it).
    drop(Server::start(&dir));
    let records = db.key_records().await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].check_value, k1.check_value(1).unwrap());

    // Another key under id 1.
    keyring(&[(1, 9)], 1, 1).save_file(&file).unwrap();
    let err = start_fails(&dir);
    assert!(err.contains("key id 1 in"), "{err}");
    assert!(err.contains("Restore the keyring"), "{err}");

    // Key 1 missing while 3 messages need it.
    keyring(&[(2, 2)], 2, 2).save_file(&file).unwrap();
    let err = start_fails(&dir);
    assert!(err.contains("3 message(s) sealed under key id 1"), "{err}");

    // Key 1 present but retired by hand (min_decrypt) while messages need it.
    keyring(&[(1, 1), (2, 2)], 2, 2).save_file(&file).unwrap();
    let err = start_fails(&dir);
    assert!(err.contains("retires"), "{err}");

    // No keyring at all: no development keyring is made for a used store.
    std::fs::remove_file(&file).unwrap();
    let err = start_fails(&dir);
    assert!(
        err.contains("does not exist, and the store already holds 3"),
        "{err}"
    );
    assert!(!file.exists(), "a dev keyring was generated");
    // Nor through a fresh data dir pointed at the same database.
    let fresh = temp_dir("fresh");
    let out = cmd(&fresh, &["--listen", "127.0.0.1:0"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("chatseal.db").display()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!fresh.join("keyring.json").exists());

    // A database from before the key table: the key is checked by opening
    // one of its messages, then recorded.
    sqlx::query("DELETE FROM chat_keys")
        .execute(
            &sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("chatseal.db").display()))
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    keyring(&[(1, 7)], 1, 1).save_file(&file).unwrap();
    let err = start_fails(&dir);
    assert!(err.contains("does not open message"), "{err}");
    k1.save_file(&file).unwrap();
    drop(Server::start(&dir));
    assert_eq!(
        db.key_records().await.unwrap()[0].check_value,
        k1.check_value(1).unwrap()
    );
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&fresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_would_lose_messages_is_refused_and_the_old_keyring_kept() {
    let dir = temp_dir("reload");
    let file = dir.join("keyring.json");
    let k1 = keyring(&[(1, 1)], 1, 1);
    k1.save_file(&file).unwrap();
    let db = store(&dir).await;
    seed(&db, &Sealer::new(k1.clone()), "lobby", 2).await;
    let server = Server::start(&dir);
    let refused = |server: &Server, file_keyring: Keyring, needle: &str| {
        let before = server.count("keyring reload failed");
        file_keyring.save_file(&file).unwrap();
        server.hup();
        let deadline = Instant::now() + Duration::from_secs(20);
        while server.count("keyring reload failed") == before {
            assert!(Instant::now() < deadline, "no refusal for {needle}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let line = server.wait_for(needle);
        assert!(line.contains("keeping the current one"), "{line}");
    };
    refused(
        &server,
        keyring(&[(1, 8)], 1, 1),
        "different key under key id 1",
    );
    refused(
        &server,
        keyring(&[(2, 2)], 2, 2),
        "sealed under key id 1, which",
    );
    // A good rotation is taken…
    keyring(&[(1, 1), (2, 2)], 2, 1).save_file(&file).unwrap();
    server.hup();
    server.wait_for("was=1");
    // …and primary may not go back.
    refused(
        &server,
        keyring(&[(1, 1), (2, 2)], 1, 1),
        "moves primary back from 2 to 1",
    );
    drop(server);
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_rewrap_retire_while_a_server_runs() {
    let dir = temp_dir("cycle");
    let file = dir.join("keyring.json");
    // `keys generate` writes a new 0600 keyring and never overwrites one.
    let out = keys(&dir, &["generate", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !keys(&dir, &["generate", "--out", file.to_str().unwrap()])
            .status
            .success()
    );
    let k1 = Keyring::load_file(&file).unwrap();
    let db = store(&dir).await;
    let sent = seed(&db, &Sealer::new(k1.clone()), "lobby", 600).await;
    let server = Server::start(&dir);

    let s = status(&dir);
    assert_eq!(
        s["keys"][0].as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["created", "id", "messages", "primary", "retired", "seals"]
    );
    assert_eq!(
        (
            s["keys"][0]["id"].as_u64(),
            s["keys"][0]["messages"].as_u64()
        ),
        (Some(1), Some(600))
    );
    assert_eq!(s["keys"][0]["primary"], true);

    // One command: added on the running server first, then primary.
    let out = keys(&dir, &["rotate"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("key 2 is primary"),
        "{}",
        text(&out)
    );
    server.wait_for("was=1");
    let k2 = Keyring::load_file(&file).unwrap();
    assert_eq!(k2.primary(), 2);

    // Retiring key 1 is refused while messages need it.
    let out = keys(&dir, &["retire", "--below", "2"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("600 stored message(s)") && err.contains("keys rewrap"),
        "{err}"
    );

    let out = keys(&dir, &["rewrap", "--batch", "128"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rewrapped 128/600"),
        "{}",
        text(&out)
    );
    assert!(
        all_open(&db, &k2, "lobby", &sent)
            .await
            .iter()
            .all(|id| *id == 2)
    );

    let out = keys(&dir, &["retire", "--below", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    server.wait_for("min_decrypt=2");
    let retired = Keyring::load_file(&file).unwrap();
    assert_eq!(retired.min_decrypt(), 2);
    all_open(&db, &retired, "lobby", &sent).await;
    let s = status(&dir);
    assert_eq!(s["keys"][0]["retired"], true);
    assert_eq!(s["keys"][1]["messages"], 600);

    // --force gives messages up, loudly; the server then still starts.
    let lost = seed(&db, &Sealer::new(retired.clone()), "attic", 5).await;
    assert_eq!(lost.len(), 5);
    assert!(keys(&dir, &["rotate"]).status.success());
    let out = keys(&dir, &["retire", "--below", "3", "--force"]);
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("UNREADABLE") && err.contains("605"), "{err}");
    let shredded = Keyring::load_file(&file).unwrap();
    assert_eq!(shredded.key_ids().collect::<Vec<_>>(), vec![3]);
    drop(server);
    drop(Server::start(&dir));
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrap_killed_halfway_resumes_and_loses_nothing() {
    let dir = temp_dir("resume");
    let file = dir.join("keyring.json");
    let k1 = keyring(&[(1, 1)], 1, 1);
    k1.save_file(&file).unwrap();
    let db = store(&dir).await;
    let sent = seed(&db, &Sealer::new(k1.clone()), "big", 6000).await;
    assert!(keys(&dir, &["rotate"]).status.success());
    let k2 = Keyring::load_file(&file).unwrap();

    // Slow enough to be killed in the middle.
    let mut run = cmd(
        &dir,
        &["keys", "rewrap", "--batch", "100", "--rate", "1000"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let per_key = db.messages_per_key().await.unwrap();
        if per_key.get(&2).copied().unwrap_or(0) >= 1000 {
            break;
        }
        assert!(Instant::now() < deadline, "rewrap made no progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    run.kill().unwrap();
    run.wait().unwrap();
    let per_key = db.messages_per_key().await.unwrap();
    assert!(
        per_key[&1] > 0 && per_key[&2] > 0,
        "killed halfway: {per_key:?}"
    );
    // Half and half, and every message opens.
    all_open(&db, &k2, "big", &sent).await;

    let out = keys(&dir, &["rewrap", "--batch", "1000"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        all_open(&db, &k2, "big", &sent)
            .await
            .iter()
            .all(|id| *id == 2)
    );
    // Reseals count against key 2's nonce budget, across both runs.
    let records = db.key_records().await.unwrap();
    let seals = records.iter().find(|r| r.id == 2).unwrap().seals;
    assert!(seals >= 6000, "{seals}");
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `keys rewrap` moves a message to the new master key at its own room key
/// epoch: messages of a room that forgot a member open after the rewrap
/// with the new master key's key of that epoch, and never under epoch 0.
#[tokio::test]
async fn a_rewrap_keeps_each_message_at_its_room_key_epoch() {
    let dir = temp_dir("epochs");
    let file = dir.join("keyring.json");
    let k1 = keyring(&[(1, 1)], 1, 1);
    k1.save_file(&file).unwrap();
    let db = store(&dir).await;
    assert!(db.create_room("vault", "ann", true).await.unwrap());
    db.add_member("vault", "eve").await.unwrap();
    let mut sent = seed_at(&db, &Sealer::new(k1.clone()), "vault", 1, 20).await;
    db.remove_member("vault", "eve").await.unwrap();
    sent.extend(seed_at(&db, &Sealer::new(k1.clone()), "vault", 2, 30).await);
    assert!(keys(&dir, &["rotate"]).status.success());
    let out = keys(&dir, &["rewrap"]);
    assert!(out.status.success(), "{}", text(&out));
    let k2 = Keyring::load_file(&file).unwrap();
    assert!(
        all_open(&db, &k2, "vault", &sent)
            .await
            .iter()
            .all(|id| *id == 2)
    );
    let stored = db.messages("vault", 0, None, 100).await.unwrap();
    let epochs: Vec<u32> = stored.iter().map(|m| m.epoch).collect();
    assert_eq!(epochs, [vec![1; 20], vec![2; 30]].concat());
    let sealer = Sealer::new(k2);
    for m in &stored {
        let context = chat_context("vault", &m.id, &m.sender);
        assert!(sealer.open_text("vault", &context, &m.message).is_err());
    }
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The store's file, for what the `Store` API does not do.
async fn raw(dir: &Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=rw",
        dir.join("chatseal.db").display()
    ))
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrap_stops_cleanly_on_a_write_error_and_resumes() {
    let dir = temp_dir("write-error");
    let file = dir.join("keyring.json");
    let k1 = keyring(&[(1, 1)], 1, 1);
    k1.save_file(&file).unwrap();
    let db = store(&dir).await;
    let sent = seed(&db, &Sealer::new(k1.clone()), "big", 3000).await;
    assert!(keys(&dir, &["rotate"]).status.success());
    let k2 = Keyring::load_file(&file).unwrap();
    // The page holding message 1500 cannot be written.
    let raw = raw(&dir).await;
    sqlx::query(&format!(
        "CREATE TRIGGER refuse BEFORE UPDATE ON chat_messages WHEN OLD.id = '{}' \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        sent[1500].0
    ))
    .execute(&raw)
    .await
    .unwrap();

    let out = keys(&dir, &["rewrap", "--batch", "100"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused by the test"),
        "{}",
        text(&out)
    );
    // The pages before it are stored; it and the ones read ahead are not.
    let per_key = db.messages_per_key().await.unwrap();
    assert_eq!((per_key[&1], per_key[&2]), (1500, 1500), "{per_key:?}");
    all_open(&db, &k2, "big", &sent).await;

    sqlx::query("DROP TRIGGER refuse")
        .execute(&raw)
        .await
        .unwrap();
    let out = keys(&dir, &["rewrap", "--batch", "100"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        all_open(&db, &k2, "big", &sent)
            .await
            .iter()
            .all(|id| *id == 2)
    );
    raw.close().await;
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_do_not_open_are_set_aside() {
    let dir = temp_dir("set-aside");
    let file = dir.join("keyring.json");
    let k1 = keyring(&[(1, 1)], 1, 1);
    k1.save_file(&file).unwrap();
    let db = store(&dir).await;
    let sealer = Sealer::new(k1.clone());
    let mut sent = Vec::new();
    let mut damaged = Vec::new();
    for _ in 0..3 {
        sent.extend(seed(&db, &sealer, "lobby", 150).await);
        // Sealed for another sender than the row names: does not open.
        let id = uuid::Uuid::now_v7().to_string();
        let envelope = sealer
            .seal_text("lobby", &chat_context("lobby", &id, "bob"), b"moved")
            .unwrap();
        db.append_batch(&[OwnedMessage {
            id: id.clone(),
            room: "lobby".into(),
            sender: "ann".into(),
            ts: 1,
            key_id: 1,
            epoch: 0,
            envelope,
            client_id: None,
        }])
        .await
        .unwrap();
        damaged.push(id);
    }
    assert!(keys(&dir, &["rotate"]).status.success());
    let k2 = Keyring::load_file(&file).unwrap();

    // Twice: a second run finds only them, and ends too.
    for rewrapped in [450, 0] {
        let out = keys(&dir, &["rewrap", "--batch", "64"]);
        assert!(!out.status.success(), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        for id in &damaged {
            assert!(
                err.contains(&format!("message {id} does not open")),
                "{}",
                text(&out)
            );
        }
        assert!(
            err.contains(&format!("rewrapped {rewrapped} message(s); 3 do not open")),
            "{}",
            text(&out)
        );
        let per_key = db.messages_per_key().await.unwrap();
        assert_eq!((per_key[&1], per_key[&2]), (3, 450), "{per_key:?}");
    }
    let sealer = Sealer::new(k2);
    for m in db.messages("lobby", 0, None, 1000).await.unwrap() {
        let opens = sealer
            .open_text(
                "lobby",
                &chat_context("lobby", &m.id, &m.sender),
                &m.message,
            )
            .is_ok();
        assert_eq!(opens, !damaged.contains(&m.id), "{}", m.id);
    }
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_stored_behind_the_walk_under_an_old_key_is_rewrapped_too() {
    let dir = temp_dir("behind");
    let file = dir.join("keyring.json");
    let k1 = keyring(&[(1, 1)], 1, 1);
    k1.save_file(&file).unwrap();
    let db = store(&dir).await;
    let sent = seed(&db, &Sealer::new(k1.clone()), "big", 3000).await;
    assert!(keys(&dir, &["rotate"]).status.success());
    let k2 = Keyring::load_file(&file).unwrap();
    let first = db.messages("big", 0, None, 1).await.unwrap().remove(0);
    assert_eq!(first.key_id, 1);

    let mut run = cmd(&dir, &["keys", "rewrap", "--batch", "100", "--rate", "500"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while db
        .messages_per_key()
        .await
        .unwrap()
        .get(&2)
        .copied()
        .unwrap_or(0)
        < 500
    {
        assert!(Instant::now() < deadline, "rewrap made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The first message, long passed, is under key 1 again (as if a server
    // that had not taken the new primary yet had stored it there).
    let raw = raw(&dir).await;
    sqlx::query("UPDATE chat_messages SET envelope = ?, key_id = 1 WHERE id = ?")
        .bind(&first.message)
        .bind(&first.id)
        .execute(&raw)
        .await
        .unwrap();
    let status = run.wait().unwrap();
    assert!(status.success());
    assert!(
        all_open(&db, &k2, "big", &sent)
            .await
            .iter()
            .all(|id| *id == 2)
    );
    raw.close().await;
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn post_encrypt(addr: &str, dir: &Path) {
    use std::io::{Read as _, Write as _};
    let token = std::fs::read_to_string(dir.join("service-token")).unwrap();
    let body = r#"{"message":"count me"}"#;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /encrypt HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        token.trim(),
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}

fn wait_primary(file: &Path, at_least: u32) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(40);
    while Keyring::load_file(file).unwrap().primary() < at_least {
        assert!(Instant::now() < deadline, "no automatic rotation");
        std::thread::sleep(Duration::from_millis(100));
    }
    Instant::now()
}

#[test]
fn automatic_rotation_by_seal_count_and_once_per_cluster_by_age() {
    let dir = temp_dir("auto");
    let file = dir.join("keyring.json");
    keyring(&[(1, 1)], 1, 1).save_file(&file).unwrap();

    // By seal count: the seals of every server are counted in the store.
    let mut c = cmd(
        &dir,
        &["--listen", "127.0.0.1:0", "--rotate-after-seals", "3"],
    );
    let server = Server::spawn(&mut c);
    let addr = server
        .wait_for("addr=")
        .split("addr=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        post_encrypt(&addr, &dir);
    }
    wait_primary(&file, 2);
    server.wait_for("rotated the keyring automatically");
    drop(server);

    // By age, two servers: one rotation per due key, not one per server.
    let servers: Vec<Server> = (0..2)
        .map(|_| {
            Server::spawn(&mut cmd(
                &dir,
                &[
                    "--listen",
                    "127.0.0.1:0",
                    "--rotate-after",
                    "4s",
                    "--rotate-after-seals",
                    "0",
                ],
            ))
        })
        .collect();
    let rotated = wait_primary(&file, 3);
    while rotated.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        Keyring::load_file(&file).unwrap().primary(),
        3,
        "rotated twice for one due key"
    );
    let lines: usize = servers
        .iter()
        .map(|s| s.count("rotated the keyring automatically"))
        .sum();
    assert_eq!(lines, 1);
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The servers' heartbeats, waited for until `ok` holds for all of them.
async fn wait_nodes(db: &Store, ok: impl Fn(&chatseal_server::store::NodeRecord) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes = db.key_nodes(0).await.unwrap();
        if !nodes.is_empty() && nodes.iter().all(&ok) {
            return;
        }
        assert!(Instant::now() < deadline, "heartbeats: {nodes:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `keys` commands trust each server's reported generation, so a
/// server whose reload was refused must keep reporting the one it applied;
/// it retries every poll and takes the file once it is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reload_does_not_report_the_new_generation() {
    let dir = temp_dir("refused-gen");
    let file = dir.join("keyring.json");
    let k1 = keyring(&[(1, 1)], 1, 1);
    k1.save_file(&file).unwrap();
    let db = store(&dir).await;
    seed(&db, &Sealer::new(k1.clone()), "lobby", 2).await;
    let server = Server::start(&dir);
    // Key 1 dropped while 2 messages need it: refused.
    keyring(&[(2, 2)], 2, 2).save_file(&file).unwrap();
    let generation = db.bump_key_generation().await.unwrap();
    server.wait_for("keyring reload refused; keeping the current one");
    // Several polls later: still behind, and said once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let nodes = db.key_nodes(0).await.unwrap();
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    assert!(nodes[0].generation < generation, "{nodes:?}");
    assert_eq!(nodes[0].primary, 1);
    assert_eq!(server.count("keyring reload refused; keeping"), 1);
    // The file fixed: taken at a later poll, without another bump.
    keyring(&[(1, 1), (2, 2)], 2, 1).save_file(&file).unwrap();
    server.wait_for("was=1");
    wait_nodes(&db, |n| n.generation == generation && n.primary == 2).await;
    drop(server);
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Retiring keys below N while a running server still seals with a key
/// below N would let that server store messages nobody can open: refused
/// until every running server seals with N or above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retire_refuses_while_a_running_server_seals_below() {
    let dir = temp_dir("retire-live");
    let file = dir.join("keyring.json");
    keyring(&[(1, 1)], 1, 1).save_file(&file).unwrap();
    let server = Server::start(&dir);
    let db = store(&dir).await;
    wait_nodes(&db, |n| n.primary == 1).await;
    // Key 2 made primary in the file only: the server still seals with 1.
    keyring(&[(1, 1), (2, 2)], 2, 1).save_file(&file).unwrap();
    let out = keys(&dir, &["retire", "--below", "2"]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("still seal"), "{err}");
    assert_eq!(Keyring::load_file(&file).unwrap().min_decrypt(), 1);
    // Once the server seals with key 2, the retirement goes through.
    server.hup();
    server.wait_for("was=1");
    wait_nodes(&db, |n| n.primary == 2).await;
    let out = keys(&dir, &["retire", "--below", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    server.wait_for("min_decrypt=2");
    drop(server);
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
