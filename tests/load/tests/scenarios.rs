//! The benchmark scenarios end to end, small: `chatseal-load` against
//! `chatseal-relay` on loopback. What the suite relies on: the relay acks
//! and delivers like a server (every acknowledged message reaches every
//! member, read as plaintext), the last-member timing covers every
//! message, and idle connections spread over several processes are all
//! counted.

use std::io::Read as _;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Relay {
    child: Child,
    url: String,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn relay() -> Relay {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_chatseal-relay"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "relay did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Relay {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// Runs chatseal-load with `args` (after the global ones) and returns its
/// JSON report; it must exit 0.
fn load(relay: &Relay, args: &[&str]) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chatseal-load"))
        .args(["--url", &relay.url, "--pid", &relay.child.id().to_string()])
        .args(["--json"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "chatseal-load failed: {out}"
    );
    serde_json::from_str(out.trim()).unwrap()
}

#[test]
fn the_relay_delivers_every_acknowledged_message_as_plaintext() {
    let relay = relay();
    let r = load(
        &relay,
        &[
            "chat",
            "--clients",
            "12",
            "--rooms",
            "3",
            "--duration",
            "1",
            "--fail-on-error",
        ],
    );
    assert_eq!(r["encrypted"], false);
    let accepted = r["accepted"].as_u64().unwrap();
    assert!(accepted > 0);
    // Every message goes to the 4 members of its room.
    assert_eq!(r["delivered"].as_u64().unwrap(), accepted * 4);
    assert_eq!(r["never_delivered"], 0);
}

#[test]
fn a_large_room_times_every_message_to_its_last_member() {
    let relay = relay();
    let r = load(
        &relay,
        &[
            "--scenario",
            "large-room",
            "chat",
            "--clients",
            "40",
            "--senders",
            "2",
            "--rate",
            "20",
            "--window",
            "4",
            "--duration",
            "1",
            "--last-delivery",
            "--fail-on-error",
        ],
    );
    assert_eq!(r["scenario"], "large-room");
    let accepted = r["accepted"].as_u64().unwrap();
    // At most rate × duration (+ the first tick) per sender.
    assert!(accepted > 0 && accepted <= 2 * 21, "{r}");
    assert_eq!(r["messages_complete"].as_u64().unwrap(), accepted);
    let (p50, p99) = (
        r["last_delivery_ms_p50"].as_f64().unwrap(),
        r["last_delivery_ms_p99"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p99 >= p50);
    // The last member is never earlier than the typical one.
    assert!(p50 >= r["latency_ms_p50"].as_f64().unwrap());
}

#[test]
fn idle_connections_spread_over_processes_are_all_counted() {
    let relay = relay();
    let r = load(
        &relay,
        &[
            "idle",
            "--connections",
            "61",
            "--procs",
            "3",
            "--parallel",
            "20",
        ],
    );
    assert_eq!(r["connections"], 61);
    assert_eq!(r["processes"], 3);
    assert!(r["rss_after_mib"].as_f64().unwrap() > 0.0);
}
