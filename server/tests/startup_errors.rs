//! The real binary, started wrongly: each failure says what and where, once,
//! and a flag that cannot work is refused before the data directory is
//! touched.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chatseal-start-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn server(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatseal-server"));
    cmd.arg("--data-dir")
        .arg(data_dir)
        .env_remove("CHATSEAL_KEYRING")
        .env_remove("CHATSEAL_KEYRING_FILE")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("CHATSEAL_JWT_SECRET")
        .env_remove("CHATSEAL_LISTEN")
        .env_remove("CHATSEAL_CLIENT_DIR");
    cmd
}

/// Runs a start that must fail; returns its stderr.
fn fails(cmd: &mut Command) -> String {
    let started = Instant::now();
    let Output { status, stderr, .. } = cmd.output().expect("run chatseal-server");
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    assert!(!status.success(), "started anyway: {stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?} to fail: {stderr}",
        started.elapsed()
    );
    stderr
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_port_in_use_names_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = temp("port");
    let err = fails(server(&dir).args(["--listen", &addr]));
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(err.contains("in use"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreachable_database_says_which_and_why() {
    let port = free_port();
    let dir = temp("db");
    let url = format!("postgres://chat:hunter2secret@127.0.0.1:{port}/chat");
    let err = fails(
        server(&dir)
            .args(["--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", &url),
    );
    assert!(
        err.contains(&format!("postgres://chat@127.0.0.1:{port}/chat")),
        "{err}"
    );
    assert!(err.contains("refused"), "{err}");
    assert!(!err.contains("timed out"), "{err}");
    assert!(!err.contains("hunter2secret"), "password printed: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_directory_that_cannot_be_made_is_named() {
    let root = temp("dir");
    std::fs::create_dir_all(&root).unwrap();
    let file = root.join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let data_dir = file.join("data");
    let err = fails(server(&data_dir).args(["--listen", "127.0.0.1:0"]));
    assert!(err.contains(&data_dir.display().to_string()), "{err}");

    let client = root.join("no-client");
    let err = fails(
        server(&root.join("ok"))
            .args(["--listen", "127.0.0.1:0", "--client-dir"])
            .arg(&client),
    );
    assert!(err.contains(&client.display().to_string()), "{err}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn causes_are_printed_once() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = temp("once");
    std::fs::create_dir_all(&dir).unwrap();
    let keyring = dir.join("keyring.json");
    std::fs::write(&keyring, r#"{"primay": 1, "keys": []}"#).unwrap();
    std::fs::set_permissions(&keyring, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = fails(
        server(&dir)
            .args(["--listen", "127.0.0.1:0", "--keyring-file"])
            .arg(&keyring),
    );
    assert_eq!(err.matches("unknown field `primay`").count(), 1, "{err}");
    assert_eq!(
        err.matches(&keyring.display().to_string()).count(),
        1,
        "{err}"
    );
    assert!(!err.contains("Caused by"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_flags_are_refused_before_anything_is_written() {
    let dir = temp("flags");
    let err = fails(
        server(&dir)
            .args(["--listen", "127.0.0.1:0"])
            .env("CHATSEAL_JWT_SECRET", "too short"),
    );
    assert!(err.contains("CHATSEAL_JWT_SECRET"), "{err}");
    assert!(
        !dir.exists(),
        "the data dir was made before the flags were checked"
    );

    let err = fails(
        server(&dir)
            .args(["--listen", "127.0.0.1:0"])
            .env("REDIS_URL", "redis://127.0.0.1:1"),
    );
    assert!(err.contains("REDIS_URL needs DATABASE_URL"), "{err}");
    assert!(
        !dir.exists(),
        "the data dir was made before the flags were checked"
    );
}

#[test]
fn listen_takes_a_host_name() {
    let dir = temp("host");
    let mut child = server(&dir)
        .args(["--listen", "localhost:0"])
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            panic!("no address reported: {log:#?}");
        };
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
        log.push(line);
    };
    let _ = child.kill();
    let _ = child.wait();
    let ip: std::net::SocketAddr = addr.parse().unwrap();
    assert!(ip.ip().is_loopback(), "{addr}");
    let _ = std::fs::remove_dir_all(&dir);
}
