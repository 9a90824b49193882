//! The real binary, as the README's quick start runs it: first start makes
//! a 0600 dev keyring in the data directory, serves, and a restart reuses it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: String,
    log: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data_dir: &Path) -> Server {
    start_with(data_dir, &[])
}

fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_chatseal-server"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("CHATSEAL_KEYRING")
        .env_remove("CHATSEAL_KEYRING_FILE")
        .env_remove("DATABASE_URL")
        .env_remove("CHATSEAL_JWT_SECRET")
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chatseal-server");
    // Owned by `Server` from here on, so a failed start still kills it.
    let mut server = Server {
        child,
        addr: String::new(),
        log: Vec::new(),
    };
    let mut lines = BufReader::new(server.child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        server.log.push(line.clone());
        if let Some(rest) = line.split("addr=").nth(1) {
            server.addr = rest.split_whitespace().next().unwrap().to_string();
            std::thread::spawn(move || lines.for_each(drop));
            return server;
        }
    }
    panic!("server did not report its address: {:#?}", server.log);
}

fn post(addr: &str, path: &str, body: &str) -> String {
    request(addr, "POST", path, body, None)
}

fn request(addr: &str, method: &str, path: &str, body: &str, token: Option<&str>) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: x\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn first_start_creates_a_private_keyring_and_serves() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("chatseal-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    let server = start(&dir);
    assert!(
        server
            .log
            .iter()
            .any(|l| l.contains("created a new development keyring")),
        "{:#?}",
        server.log
    );
    let keyring = dir.join("keyring.json");
    assert_eq!(
        std::fs::metadata(&keyring).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Loopback is no credential: /encrypt and /decrypt need the service
    // token, generated into the data dir (0600), and the log says where.
    let token_file = dir.join("service-token");
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        server
            .log
            .iter()
            .any(|l| l.contains("require the service token")
                && l.contains(&*token_file.to_string_lossy())),
        "{:#?}",
        server.log
    );
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(token.trim().len() >= 32);
    assert!(!server.log.iter().any(|l| l.contains(token.trim())));
    for path in ["/encrypt", "/decrypt"] {
        let reply = post(&server.addr, path, r#"{"message":"x","encrypted":"AQE="}"#);
        assert!(reply.starts_with("HTTP/1.1 401"), "{path}: {reply}");
    }

    let reply = request(
        &server.addr,
        "POST",
        "/encrypt",
        r#"{"message":"persisted"}"#,
        Some(token.trim()),
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let body = reply.split("\r\n\r\n").nth(1).unwrap();
    let encrypted: serde_json::Value = serde_json::from_str(body).unwrap();
    drop(server);

    // A restart loads the same keyring, so earlier envelopes still open.
    let server = start(&dir);
    assert!(!server.log.iter().any(|l| l.contains("created a new")));
    let reply = request(
        &server.addr,
        "POST",
        "/decrypt",
        &encrypted.to_string(),
        Some(token.trim()),
    );
    assert!(reply.contains(r#""message":"persisted""#), "{reply}");
    drop(server);

    // A keyring others can read is refused with a clear message.
    std::fs::set_permissions(&keyring, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chatseal-server"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env_remove("CHATSEAL_KEYRING")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn body(reply: &str) -> serde_json::Value {
    serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap_or("")).unwrap_or_default()
}

/// Accounts, rooms and history through the real binary on one backend.
fn accounts_round_trip(server: &Server) {
    let health = request(&server.addr, "GET", "/healthz", "", None);
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert_eq!(body(&health)["store"], "ok");
    let creds = r#"{"username":"ann","password":"correct horse"}"#;
    let reply = post(&server.addr, "/api/register", creds);
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    let login = body(&post(&server.addr, "/api/login", creds));
    let token = login["token"].as_str().expect("a token");
    let reply = request(
        &server.addr,
        "POST",
        "/api/rooms",
        r#"{"name":"den","private":true}"#,
        Some(token),
    );
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    let reply = request(
        &server.addr,
        "GET",
        "/api/rooms/den/messages",
        "",
        Some(token),
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(body(&reply), serde_json::json!([]));
}

#[test]
fn serves_accounts_on_sqlite_by_default() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("chatseal-bin-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = start(&dir);
    accounts_round_trip(&server);
    assert!(dir.join("chatseal.db").is_file());
    let secret = std::fs::metadata(dir.join("jwt-secret")).unwrap();
    assert_eq!(secret.permissions().mode() & 0o777, 0o600);
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_data_dir_and_database_are_the_servers_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("chatseal-bin-modes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // The keyring from the environment: nothing else creates the directory.
    let keyring = chatseal_core::Keyring::generate().to_json();
    let env = [("CHATSEAL_KEYRING", keyring.as_str())];
    let server = start_with(&dir, &env);
    accounts_round_trip(&server);
    assert_eq!(mode(&dir), 0o700);
    for file in ["chatseal.db", "chatseal.db-wal", "jwt-secret"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    drop(server);

    // What an older version (or a umask of 022) left is narrowed at start.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = dir.join("chatseal.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = start_with(&dir, &env);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&db), 0o600);
    assert!(
        server.log.iter().any(|l| l.contains("narrowed the mode")),
        "{:#?}",
        server.log
    );
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_accounts_on_postgres() {
    let db = common::TestDb::postgres().await;
    let dir = std::env::temp_dir().join(format!("chatseal-bin-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = db.url.clone();
    let dir2 = dir.clone();
    tokio::task::spawn_blocking(move || {
        let server = start_with(&dir2, &[("DATABASE_URL", &url)]);
        assert!(
            server.log.iter().any(|l| l.contains("Postgres")),
            "{:#?}",
            server.log
        );
        accounts_round_trip(&server);
        assert!(
            !dir2.join("chatseal.db").exists(),
            "no SQLite file beside PostgreSQL"
        );
    })
    .await
    .unwrap();
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM chat_users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 1);
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
