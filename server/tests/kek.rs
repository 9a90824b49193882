//! Keys never bare at rest (issue 14), through the real binary: the dev
//! default wraps its keyring under a KEK generated beside it and says so;
//! a KEK from a file, a variable, a passphrase or a PKCS#11 token (SoftHSM2)
//! opens its keyring and a wrong one is a clear refusal at start, never a
//! new keyring; a copy of the data dir without the KEK opens nothing.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chatseal_core::{Kek, Keyring, Sealer, StoredKeyring, WrappedKeyring, chat_context};
use chatseal_server::store::{OwnedMessage, Store};

const BIN: &str = env!("CARGO_BIN_EXE_chatseal-server");
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "chatseal-kek-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary with a clean environment: no keyring, KEK or token settings
/// leak in from the caller's.
fn cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).arg("--data-dir").arg(dir);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("CHATSEAL_") || name == "DATABASE_URL" || name == "REDIS_URL" {
            c.env_remove(name);
        }
    }
    c.env("NO_COLOR", "1").env("RUST_LOG", "info");
    c
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
    fn spawn(mut command: Command) -> Server {
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
        let deadline = Instant::now() + Duration::from_secs(60);
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

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// Serves with `extra` flags and environment until dropped.
fn serve(dir: &Path, env: &[(&str, &str)]) -> Server {
    let mut c = cmd(dir, &["--listen", "127.0.0.1:0"]);
    c.envs(env.iter().copied());
    Server::spawn(c)
}

/// The server refuses to start; its stderr.
fn refused(dir: &Path, env: &[(&str, &str)]) -> String {
    let mut c = cmd(dir, &["--listen", "127.0.0.1:0"]);
    let out = c.envs(env.iter().copied()).output().unwrap();
    assert!(!out.status.success(), "started: {}", text(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn wrapped(path: &Path) -> WrappedKeyring {
    match StoredKeyring::load_file(path).unwrap() {
        StoredKeyring::Wrapped(w) => w,
        StoredKeyring::Plain(_) => panic!("{} is a plain keyring", path.display()),
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every secret of `keyring` in the forms files and logs could show it.
fn secrets(keyring: &Keyring) -> Vec<String> {
    keyring
        .key_ids()
        .map(|id| B64.encode(keyring.key(id).unwrap().expose()))
        .collect()
}

async fn store(dir: &Path) -> Store {
    Store::connect(&format!(
        "sqlite://{}?mode=rw",
        dir.join("chatseal.db").display()
    ))
    .await
    .unwrap()
}

/// Seals and stores `n` messages in `room` as the server would.
async fn seed(store: &Store, sealer: &Sealer, room: &str, n: usize) {
    let batch: Vec<OwnedMessage> = (0..n)
        .map(|i| {
            let id = uuid::Uuid::now_v7().to_string();
            let envelope = sealer
                .seal_text(
                    room,
                    &chat_context(room, &id, "ann"),
                    format!("secret {i}").as_bytes(),
                )
                .unwrap();
            OwnedMessage {
                id,
                room: room.into(),
                sender: "ann".into(),
                ts: 1,
                key_id: sealer.primary_key_id(),
                epoch: 0,
                envelope,
                client_id: None,
            }
        })
        .collect();
    store.append_batch(&batch).await.unwrap();
}

#[test]
fn the_dev_default_wraps_its_keyring_and_says_so() {
    let dir = temp_dir("dev");
    let server = serve(&dir, &[]);
    let line = server.wait_for("created a new development keyring");
    assert!(line.contains("INFO"), "{line}");
    assert!(
        line.contains(&dir.join("kek").display().to_string()),
        "{line}"
    );
    let keyring_file = dir.join("keyring.json");
    let kek_file = dir.join("kek");
    assert_eq!(mode(&keyring_file), 0o600);
    assert_eq!(mode(&kek_file), 0o600);
    let file = wrapped(&keyring_file);
    let kek = Kek::load_file(&kek_file).unwrap();
    assert!(
        line.contains(&chatseal_core::kek::kek_id_hex(&kek.id())),
        "{line}"
    );
    let keyring = file.open(&kek).unwrap();
    // No key material in the log or in the keyring file.
    let log = server.log();
    let on_disk = std::fs::read_to_string(&keyring_file).unwrap();
    for secret in secrets(&keyring).iter().chain([&B64.encode(kek.expose())]) {
        assert!(!log.contains(secret.as_str()), "a key in the log:\n{log}");
    }
    for secret in secrets(&keyring) {
        assert!(!on_disk.contains(&secret), "a master key in {on_disk}");
    }
    drop(server);

    // A restart opens the same keyring with the same KEK, and says it is wrapped.
    let server = serve(&dir, &[]);
    let loaded = server.wait_for("keyring loaded");
    assert!(loaded.contains("wrapped"), "{loaded}");
    assert!(!server.log().contains("created a new"), "{}", server.log());
    drop(server);
    assert_eq!(wrapped(&keyring_file), file);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_wrong_kek_is_a_clear_error_at_start_never_a_new_keyring() {
    let dir = temp_dir("wrong");
    drop(serve(&dir, &[]));
    let keyring_file = dir.join("keyring.json");
    let before = std::fs::read(&keyring_file).unwrap();
    let right = Kek::load_file(dir.join("kek")).unwrap();
    std::fs::remove_file(dir.join("kek")).unwrap();
    let other = Kek::generate();
    other.create_file(dir.join("kek")).unwrap();
    let err = refused(&dir, &[]);
    assert!(err.contains("wrong key-encryption key"), "{err}");
    assert!(
        err.contains(&chatseal_core::kek::kek_id_hex(&right.id())),
        "{err}"
    );
    assert!(err.contains("--kek-file"), "{err}");
    assert!(err.contains("never makes a new keyring"), "{err}");
    assert_eq!(std::fs::read(&keyring_file).unwrap(), before);

    // The right KEK given elsewhere (a file outside the data dir) opens it.
    let outside = temp_dir("wrong-outside").join("kek");
    right.create_file(&outside).unwrap();
    let server = serve(&dir, &[("CHATSEAL_KEK_FILE", outside.to_str().unwrap())]);
    server.wait_for("keyring loaded");
    drop(server);
    // And as a variable.
    let server = serve(&dir, &[("CHATSEAL_KEK", &B64.encode(right.expose()))]);
    server.wait_for("keyring loaded");
    drop(server);
    assert_eq!(std::fs::read(&keyring_file).unwrap(), before);
    std::fs::remove_dir_all(outside.parent().unwrap()).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_configured_kek_file_or_variable_wraps_a_new_keyring_outside_the_data_dir() {
    let dir = temp_dir("kekfile");
    let keys = temp_dir("kekfile-keys");
    let kek_file = keys.join("kek");
    let kek = Kek::generate();
    kek.create_file(&kek_file).unwrap();
    let server = serve(&dir, &[("CHATSEAL_KEK_FILE", kek_file.to_str().unwrap())]);
    server.wait_for("created a new development keyring");
    drop(server);
    assert!(
        !dir.join("kek").exists(),
        "a dev KEK was made beside a configured one"
    );
    assert!(wrapped(&dir.join("keyring.json")).open(&kek).is_ok());
    // Without the KEK: refused, naming what to set.
    let err = refused(&dir, &[]);
    assert!(err.contains("no key-encryption key is configured"), "{err}");
    assert!(err.contains("CHATSEAL_KEK_FILE"), "{err}");
    // Two sources at once: refused before anything is read.
    let err = refused(
        &dir,
        &[
            ("CHATSEAL_KEK_FILE", kek_file.to_str().unwrap()),
            ("CHATSEAL_KEK", &B64.encode(kek.expose())),
        ],
    );
    assert!(err.contains("more than one key-encryption key"), "{err}");
    // A KEK variable that is not base64 of 32 bytes.
    let err = refused(&dir, &[("CHATSEAL_KEK", "c2hvcnQ=")]);
    assert!(err.contains("not 32"), "{err}");
    assert!(!err.contains("c2hvcnQ="), "{err}");
    std::fs::remove_dir_all(keys).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_plain_keyring_works_when_asked_for_with_a_warning_and_not_beside_a_kek() {
    let dir = temp_dir("plain");
    let keys = temp_dir("plain-keys");
    let file = keys.join("keyring.json");
    Keyring::generate().save_file(&file).unwrap();
    let server = serve(&dir, &[("CHATSEAL_KEYRING_FILE", file.to_str().unwrap())]);
    let warning = server.wait_for("plain JSON");
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("keys wrap"), "{warning}");
    drop(server);
    assert!(!dir.join("kek").exists());
    // A plain keyring while a KEK is configured: its keys would stay bare.
    let kek_file = keys.join("kek");
    Kek::generate().create_file(&kek_file).unwrap();
    let err = refused(
        &dir,
        &[
            ("CHATSEAL_KEYRING_FILE", file.to_str().unwrap()),
            ("CHATSEAL_KEK_FILE", kek_file.to_str().unwrap()),
        ],
    );
    assert!(err.contains("is a plain keyring"), "{err}");
    assert!(err.contains("keys wrap"), "{err}");
    std::fs::remove_dir_all(keys).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_passphrase_round_trips_and_a_wrong_one_is_refused() {
    let dir = temp_dir("pass");
    let server = serve(
        &dir,
        &[("CHATSEAL_KEK_PASSPHRASE", "correct horse battery staple")],
    );
    server.wait_for("created a new development keyring");
    assert!(!server.log().contains("correct horse"), "{}", server.log());
    drop(server);
    let file = wrapped(&dir.join("keyring.json"));
    let kdf = file
        .kdf
        .clone()
        .expect("argon2id parameters stored in the file");
    assert!(kdf.m_cost >= 19 * 1024 && kdf.t_cost >= 2, "{kdf:?}");
    assert!(!dir.join("kek").exists());
    let keyring = file
        .open_with_passphrase(b"correct horse battery staple")
        .unwrap();

    // The passphrase from a 0600 file (its first line) opens it too.
    let secret = temp_dir("pass-file").join("passphrase");
    write_secret(&secret, "correct horse battery staple\n");
    let server = serve(
        &dir,
        &[("CHATSEAL_KEK_PASSPHRASE_FILE", secret.to_str().unwrap())],
    );
    server.wait_for("keyring loaded");
    drop(server);
    // A wrong passphrase: refused, nothing replaced.
    let err = refused(
        &dir,
        &[("CHATSEAL_KEK_PASSPHRASE", "correct horse battery stapler")],
    );
    assert!(err.contains("wrong key-encryption key"), "{err}");
    assert!(err.contains("CHATSEAL_KEK_PASSPHRASE"), "{err}");
    assert!(!err.contains("stapler"), "{err}");
    // A raw KEK for a passphrase file: told which kind it needs.
    let err = refused(&dir, &[("CHATSEAL_KEK", &B64.encode([7u8; 32]))]);
    assert!(err.contains("passphrase"), "{err}");
    // A passphrase file others can read is refused.
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let err = refused(
        &dir,
        &[("CHATSEAL_KEK_PASSPHRASE_FILE", secret.to_str().unwrap())],
    );
    assert!(err.contains("chmod 600"), "{err}");
    assert_eq!(
        wrapped(&dir.join("keyring.json"))
            .open_with_passphrase(b"correct horse battery staple")
            .unwrap()
            .check_value(1),
        keyring.check_value(1)
    );
    std::fs::remove_dir_all(secret.parent().unwrap()).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

fn write_secret(path: &Path, text: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The proof: a copy of the data dir — database, wrapped keyring, token
/// secrets — without the KEK opens nothing. The server refuses to start on
/// it (and makes no new keyring), no master key is anywhere in it, and no
/// stored envelope opens under any 32 bytes found in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_data_dir_without_the_kek_opens_nothing() {
    let dir = temp_dir("stolen-origin");
    drop(serve(&dir, &[]));
    let kek = Kek::load_file(dir.join("kek")).unwrap();
    let keyring = wrapped(&dir.join("keyring.json")).open(&kek).unwrap();
    {
        let db = store(&dir).await;
        seed(&db, &Sealer::new(keyring.clone()), "lobby", 20).await;
        seed(&db, &Sealer::new(keyring.clone()), "design", 20).await;
        db.close().await;
    }
    // The real server opens them: what is stored is sealed under this keyring.
    drop(serve(&dir, &[]));

    let stolen = temp_dir("stolen");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "kek" {
            std::fs::copy(entry.path(), stolen.join(entry.file_name())).unwrap();
        }
    }
    let keyring_before = std::fs::read(stolen.join("keyring.json")).unwrap();
    let err = refused(&stolen, &[]);
    assert!(err.contains("no key-encryption key is configured"), "{err}");
    assert!(err.contains("never makes a new keyring"), "{err}");
    assert!(!stolen.join("kek").exists(), "a KEK was generated");
    assert_eq!(
        std::fs::read(stolen.join("keyring.json")).unwrap(),
        keyring_before
    );

    // Everything the copy holds, bytes and the base64 in it decoded.
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    for entry in std::fs::read_dir(&stolen).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=-_".contains(c))) {
            for engine in [B64, base64::engine::general_purpose::URL_SAFE_NO_PAD] {
                if let Ok(decoded) = engine.decode(word) {
                    blobs.push(decoded);
                }
            }
        }
        blobs.push(bytes);
    }
    // No master key (nor the KEK) is anywhere in the copy.
    let keys: Vec<[u8; 32]> = keyring
        .key_ids()
        .map(|id| *keyring.key(id).unwrap().expose())
        .chain([*kek.expose()])
        .collect();
    for blob in &blobs {
        for key in &keys {
            assert!(
                !blob.windows(32).any(|w| w == key),
                "a key is in the stolen copy"
            );
        }
    }
    // No stored envelope opens under any 32 bytes of the copy, taken as a
    // master key under every key id stored, nor does the keyring open
    // under any of them as a KEK.
    let db = store(&stolen).await;
    let rooms = ["lobby", "design"];
    let mut stored = Vec::new();
    for room in rooms {
        stored.extend(db.messages(room, 0, None, 1000).await.unwrap());
    }
    db.close().await;
    assert_eq!(stored.len(), 40);
    let key_ids: std::collections::BTreeSet<u32> = stored.iter().map(|m| m.key_id).collect();
    let wrapped_copy = wrapped(&stolen.join("keyring.json"));
    let mut tried = 0usize;
    let small: Vec<&Vec<u8>> = blobs.iter().filter(|b| b.len() <= 64 * 1024).collect();
    for blob in small {
        for window in blob.windows(32) {
            let candidate = chatseal_core::SecretKey::from_slice(window).unwrap();
            assert!(
                wrapped_copy
                    .open(&Kek::from_slice(window).unwrap())
                    .is_err()
            );
            for &id in &key_ids {
                let sealer =
                    Sealer::new(Keyring::from_parts([(id, candidate.clone())], id, id).unwrap());
                for m in stored.iter().filter(|m| m.key_id == id).take(2) {
                    let context = chat_context(&m.room, &m.id, &m.sender);
                    assert!(sealer.open_text(&m.room, &context, &m.message).is_err());
                    tried += 1;
                }
            }
        }
    }
    assert!(tried > 1000, "only {tried} candidates tried");
    // With the KEK every one of them opens: the copy is whole, just locked.
    let sealer = Sealer::new(wrapped_copy.open(&kek).unwrap());
    for m in &stored {
        let context = chat_context(&m.room, &m.id, &m.sender);
        assert!(sealer.open_text(&m.room, &context, &m.message).is_ok());
    }
    std::fs::remove_dir_all(stolen).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

/// A SoftHSM2 token initialised in its own temp dir (SOFTHSM2_CONF), so no
/// step is done by hand and nothing touches the machine's tokens.
struct SoftHsm {
    dir: PathBuf,
    conf: PathBuf,
    module: PathBuf,
}

impl SoftHsm {
    fn new(name: &str, token: &str, pin: &str) -> SoftHsm {
        let module = [
            "/usr/lib/softhsm/libsofthsm2.so",
            "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
            "/usr/lib64/softhsm/libsofthsm2.so",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect(
            "SoftHSM2 is not installed: apt-get install softhsm2 (scripts/test.sh and \
             scripts/softhsm.sh install it)",
        );
        let dir = temp_dir(&format!("softhsm-{name}"));
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        let out = Command::new("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                token,
                "--pin",
                pin,
                "--so-pin",
                "8765432",
            ])
            .env("SOFTHSM2_CONF", &conf)
            .output()
            .expect("softhsm2-util (apt-get install softhsm2)");
        assert!(out.status.success(), "{}", text(&out));
        SoftHsm { dir, conf, module }
    }

    fn env<'a>(&'a self, token: &'a str, pin_file: &'a Path) -> Vec<(&'a str, &'a str)> {
        vec![
            ("SOFTHSM2_CONF", self.conf.to_str().unwrap()),
            ("CHATSEAL_PKCS11_MODULE", self.module.to_str().unwrap()),
            ("CHATSEAL_PKCS11_TOKEN", token),
            ("CHATSEAL_PKCS11_PIN_FILE", pin_file.to_str().unwrap()),
        ]
    }
}

impl Drop for SoftHsm {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_pkcs11_token_keeps_the_kek_and_refuses_a_wrong_pin_key_or_token() {
    let hsm = SoftHsm::new("a", "chatseal", "1234");
    let pin = hsm.dir.join("pin");
    write_secret(&pin, "1234\n");
    let dir = temp_dir("pkcs11");
    let env = hsm.env("chatseal", &pin);
    let server = serve(&dir, &env);
    server.wait_for("created the KEK's AES-256 key on the token");
    let created = server.wait_for("created a new development keyring");
    assert!(created.contains("PKCS#11 key"), "{created}");
    assert!(!server.log().contains("1234\""), "{}", server.log());
    drop(server);
    assert!(!dir.join("kek").exists(), "a dev KEK beside a token");
    let file = wrapped(&dir.join("keyring.json"));
    let token = file
        .token
        .clone()
        .expect("the token-sealed KEK is in the file");
    assert_eq!(token.key_label, "chatseal-kek");
    assert!(file.kdf.is_none());
    // The file alone opens under nothing it holds.
    for candidate in token.sealed_kek.windows(32) {
        assert!(file.open(&Kek::from_slice(candidate).unwrap()).is_err());
    }

    // A restart asks the token again.
    let server = serve(&dir, &env);
    let loaded = server.wait_for("keyring loaded");
    assert!(loaded.contains("PKCS#11"), "{loaded}");
    drop(server);

    // A wrong PIN.
    let bad_pin = hsm.dir.join("bad-pin");
    write_secret(&bad_pin, "4321\n");
    let err = refused(&dir, &hsm.env("chatseal", &bad_pin));
    assert!(err.contains("login refused"), "{err}");
    assert!(!err.contains("4321"), "{err}");
    // Another key label on the same token.
    let mut other_label = env.clone();
    other_label.push(("CHATSEAL_PKCS11_KEY_LABEL", "another-key"));
    let err = refused(&dir, &other_label);
    assert!(err.contains("\"chatseal-kek\""), "{err}");
    // A token of the same label with its own key of the same label (a
    // second HSM): its key does not open the KEK.
    let other = SoftHsm::new("b", "chatseal", "1234");
    let elsewhere = temp_dir("pkcs11-other");
    drop(serve(&elsewhere, &other.env("chatseal", &pin)));
    let err = refused(&dir, &other.env("chatseal", &pin));
    assert!(err.contains("does not open the keyring's KEK"), "{err}");
    // No token at all: told what to set.
    let err = refused(&dir, &[]);
    assert!(err.contains("--pkcs11-module"), "{err}");
    // A module path that does not exist is named before anything is read.
    let err = refused(
        &dir,
        &[
            ("CHATSEAL_PKCS11_MODULE", "/nonexistent/libpkcs11.so"),
            ("CHATSEAL_PKCS11_PIN", "1234"),
        ],
    );
    assert!(err.contains("/nonexistent/libpkcs11.so"), "{err}");
    std::fs::remove_dir_all(elsewhere).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

/// Rotation keeps a wrapped keyring wrapped, under the same KEK: `keys
/// rotate` against a running server, then a hand-made key and SIGHUP.
#[test]
fn rotations_keep_a_wrapped_keyring_wrapped_under_the_same_kek() {
    let dir = temp_dir("rotate");
    let server = serve(&dir, &[]);
    let kek = Kek::load_file(dir.join("kek")).unwrap();
    let file = dir.join("keyring.json");
    let out = cmd(&dir, &["keys", "rotate", "--wait", "30s"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let after = wrapped(&file);
    assert_eq!(after.kek_id, kek.id());
    let keyring = after.open(&kek).unwrap();
    assert_eq!(keyring.primary(), 2);
    server.wait_for("keyring reloaded");

    // By hand: open, add a key, wrap again, SIGHUP.
    let mut next = keyring.clone();
    next.rotate().unwrap();
    WrappedKeyring::seal(&next, &kek, None)
        .save_file(&file)
        .unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.log().contains("primary=3") {
        assert!(Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // A file wrapped under another KEK is refused on reload; the server keeps its keys.
    let mut stray = next.clone();
    stray.rotate().unwrap();
    WrappedKeyring::seal(&stray, &Kek::generate(), None)
        .save_file(&file)
        .unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status();
    let refusal = server.wait_for("keyring reload failed");
    assert!(refusal.contains("wrong key-encryption key"), "{refusal}");
    drop(server);
    std::fs::remove_dir_all(dir).unwrap();
}

fn keys_cmd(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut all = vec!["keys"];
    all.extend_from_slice(args);
    let mut c = cmd(dir, &all);
    c.envs(env.iter().copied()).output().unwrap()
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", text(&out));
    out
}

fn fails(out: Output) -> String {
    assert!(!out.status.success(), "succeeded: {}", text(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn plain(path: &Path) -> Keyring {
    match StoredKeyring::load_file(path).unwrap() {
        StoredKeyring::Plain(k) => k,
        StoredKeyring::Wrapped(_) => panic!("{} is wrapped", path.display()),
    }
}

/// No temporary file is left beside the keyring.
fn no_temporaries(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "{name} left in {}", dir.display());
    }
}

/// `keys wrap`, `keys rekey-kek` (to a KEK file, a passphrase, a PKCS#11
/// token) and `keys unwrap`, each writing 0600 files atomically, each
/// keeping the same keys, with a running server's store holding messages
/// that keep opening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_wrap_rekey_kek_and_unwrap_keep_the_keys_and_write_0600() {
    let dir = temp_dir("cli");
    let keys = temp_dir("cli-keys");
    let file = dir.join("keyring.json");
    let original = Keyring::generate();
    original.save_file(&file).unwrap();
    // A store the servers use, holding messages under the keyring.
    drop(serve(&dir, &[]));
    {
        let db = store(&dir).await;
        seed(&db, &Sealer::new(original.clone()), "lobby", 5).await;
        db.close().await;
    }
    let same = |k: &Keyring| {
        assert_eq!(k.primary(), original.primary());
        assert_eq!(k.check_value(1), original.check_value(1));
    };

    // wrap: the data-dir keyring under a new <data-dir>/kek.
    let out = ok(keys_cmd(&dir, &["wrap"], &[]));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("wrapped under"),
        "{}",
        text(&out)
    );
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&dir.join("kek")), 0o600);
    let dev = Kek::load_file(dir.join("kek")).unwrap();
    same(&wrapped(&file).open(&dev).unwrap());
    let err = fails(keys_cmd(&dir, &["wrap"], &[]));
    assert!(err.contains("wrapped already"), "{err}");
    drop(serve(&dir, &[]));

    // rekey-kek to a KEK file outside the data dir, generated now.
    let outside = keys.join("kek");
    let out = ok(keys_cmd(
        &dir,
        &["rekey-kek", "--new-kek-file", outside.to_str().unwrap()],
        &[],
    ));
    assert!(String::from_utf8_lossy(&out.stderr).contains("generated a new key-encryption key"));
    assert_eq!(mode(&outside), 0o600);
    let moved = Kek::load_file(&outside).unwrap();
    same(&wrapped(&file).open(&moved).unwrap());
    // The dev KEK left in the data dir opens it no more: a start refuses.
    let err = refused(&dir, &[]);
    assert!(err.contains("wrong key-encryption key"), "{err}");
    let with_file = [("CHATSEAL_KEK_FILE", outside.to_str().unwrap())];
    drop(serve(&dir, &with_file));

    // rekey-kek to a passphrase.
    let pass = keys.join("passphrase");
    write_secret(&pass, "a passphrase of some length\n");
    ok(keys_cmd(
        &dir,
        &[
            "rekey-kek",
            "--new-kek-passphrase-file",
            pass.to_str().unwrap(),
        ],
        &with_file,
    ));
    let by_pass = wrapped(&file);
    assert!(by_pass.kdf.is_some());
    same(
        &by_pass
            .open_with_passphrase(b"a passphrase of some length")
            .unwrap(),
    );
    let with_pass = [("CHATSEAL_KEK_PASSPHRASE_FILE", pass.to_str().unwrap())];
    // A short new passphrase is refused, nothing written.
    let err = fails(keys_cmd(
        &dir,
        &["rekey-kek"],
        &[with_pass[0], ("CHATSEAL_NEW_KEK_PASSPHRASE", "short")],
    ));
    assert!(err.contains("12 or more"), "{err}");
    assert_eq!(wrapped(&file), by_pass);

    // rekey-kek to a PKCS#11 token (its key created on the token).
    let hsm = SoftHsm::new("cli", "chatseal", "1234");
    let pin = keys.join("pin");
    write_secret(&pin, "1234\n");
    let mut to_token = with_pass.to_vec();
    to_token.push(("SOFTHSM2_CONF", hsm.conf.to_str().unwrap()));
    ok(keys_cmd(
        &dir,
        &[
            "rekey-kek",
            "--new-pkcs11-module",
            hsm.module.to_str().unwrap(),
            "--new-pkcs11-token",
            "chatseal",
            "--new-pkcs11-pin-file",
            pin.to_str().unwrap(),
        ],
        &to_token,
    ));
    assert!(wrapped(&file).token.is_some());
    let token_env = hsm.env("chatseal", &pin);
    drop(serve(&dir, &token_env));
    // A wrong current KEK: refused, the file unchanged.
    let before = std::fs::read(&file).unwrap();
    let err = fails(keys_cmd(
        &dir,
        &[
            "rekey-kek",
            "--new-kek-file",
            keys.join("another").to_str().unwrap(),
        ],
        &with_pass,
    ));
    assert!(err.contains("PKCS#11"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), before);

    // unwrap to a new file, then in place; --out never overwrites.
    let copy = keys.join("plain.json");
    let out = ok(keys_cmd(
        &dir,
        &["unwrap", "--out", copy.to_str().unwrap()],
        &token_env,
    ));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bare"),
        "{}",
        text(&out)
    );
    assert_eq!(mode(&copy), 0o600);
    same(&plain(&copy));
    let err = fails(keys_cmd(
        &dir,
        &["unwrap", "--out", copy.to_str().unwrap()],
        &token_env,
    ));
    assert!(err.contains("never overwritten"), "{err}");
    ok(keys_cmd(&dir, &["unwrap"], &token_env));
    same(&plain(&file));
    assert_eq!(mode(&file), 0o600);
    // Plain beside the token settings is refused at start; without them it loads.
    assert!(refused(&dir, &token_env).contains("is a plain keyring"));
    let server = serve(&dir, &[]);
    server.wait_for("plain JSON");
    drop(server);
    no_temporaries(&dir);
    no_temporaries(&keys);
    // Every stored message still opens with the keyring as it is now.
    let db = store(&dir).await;
    let sealer = Sealer::new(plain(&file));
    let stored = db.messages("lobby", 0, None, 100).await.unwrap();
    assert_eq!(stored.len(), 5);
    for m in &stored {
        let context = chat_context(&m.room, &m.id, &m.sender);
        assert!(sealer.open_text(&m.room, &context, &m.message).is_ok());
    }
    db.close().await;
    std::fs::remove_dir_all(keys).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
