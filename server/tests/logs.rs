//! What the real binary writes to its log on a normal start: no colour
//! codes into a pipe, JSON when asked, and no PostgreSQL NOTICE chatter.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// Starts the server, returns its log lines up to and including the one
/// that reports the address, and stops it.
fn start_log(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chatseal-server"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env_remove("CHATSEAL_KEYRING")
        .env_remove("CHATSEAL_KEYRING_FILE")
        .env_remove("DATABASE_URL")
        .env_remove("CHATSEAL_JWT_SECRET")
        .env_remove("CHATSEAL_LOG_FORMAT")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chatseal-server");
    let mut log = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let Ok(line) = line else { break };
        let done = line.contains("listening");
        log.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        log.last().is_some_and(|l| l.contains("listening")),
        "{log:#?}"
    );
    log
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("chatseal-logs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn no_colour_codes_into_a_pipe() {
    let dir = temp("plain");
    let log = start_log(&dir, &[], &[]);
    assert!(
        log.iter().all(|l| !l.contains('\u{1b}')),
        "ANSI escapes in a piped log: {log:#?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_log_lines_on_request() {
    for (args, env) in [
        (&["--log-format", "json"][..], &[][..]),
        (&[][..], &[("CHATSEAL_LOG_FORMAT", "json")][..]),
    ] {
        let dir = temp("json");
        let log = start_log(&dir, args, env);
        for line in &log {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(v["level"].is_string(), "{line}");
            assert!(v["fields"]["message"].is_string(), "{line}");
        }
        let last: serde_json::Value = serde_json::from_str(log.last().unwrap()).unwrap();
        assert!(
            last["fields"]["addr"]
                .as_str()
                .is_some_and(|a| a.starts_with("127.0.0.1:")),
            "{last}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The second start on a database finds its schema made: PostgreSQL then
/// sends "relation … already exists, skipping" NOTICEs, which are not news.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_postgres_notices_on_a_restart() {
    let db = common::TestDb::postgres().await;
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || {
        let dir = temp("pg");
        for _ in 0..2 {
            let log = start_log(&dir, &[], &[("DATABASE_URL", &url)]);
            assert!(
                log.iter().all(|l| !l.contains("already exists")),
                "{log:#?}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    })
    .await
    .unwrap();
}
