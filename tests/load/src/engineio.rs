//! Just enough of a Socket.IO v5 client over an Engine.IO v4 WebSocket:
//! handshake with `auth`, events with and without acks, pings. Written for
//! the load tool so that the client's own cost is small and known.

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the server sent.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// An event: name and first argument (raw JSON text of the packet,
    /// borrowed from the frame).
    Event(&'a str),
    /// The ack of our event `id`, with its first argument.
    Ack(u64, Value),
    /// Engine.IO ping: answer with [`pong`].
    Ping,
    Other,
}

/// The longest a connect (or a request) may wait for the server: a server
/// that accepts the TCP connection and then says nothing must not hang the
/// run (it once sat at 0 % CPU against a plain relay until killed).
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How much one read from a socket takes at most. tungstenite zero-fills
/// that much of its buffer before every read: at its default of 128 KiB
/// that memset was 6 % of the tool's samples at 10 clients (on the same
/// two cores as the server it measures), and an idle run's 19,000
/// connections each touched all 128 KiB on their first read. 16 KiB holds
/// some 35 chat frames.
const READ_BUFFER: usize = 16 * 1024;

fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
}

/// Opens the WebSocket and connects to namespace `/` with `auth`, within [`WAIT`].
pub async fn connect(url: &str, auth: &Value) -> anyhow::Result<Ws> {
    tokio::time::timeout(WAIT, handshake(url, auth))
        .await
        .map_err(|_| anyhow::anyhow!("no Socket.IO connect within {} s", WAIT.as_secs()))?
}

async fn handshake(url: &str, auth: &Value) -> anyhow::Result<Ws> {
    let base = url.trim_end_matches('/').replacen("http", "ws", 1);
    let ws_url = format!("{base}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(&ws_url, Some(ws_config()), false)
            .await
            .with_context(|| format!("connecting to {ws_url}"))?;
    // Engine.IO open packet: 0{"sid":…}
    match ws.next().await {
        Some(Ok(WsMessage::Text(t))) if t.starts_with('0') => {}
        other => bail!("no Engine.IO open packet: {other:?}"),
    }
    ws.send(WsMessage::text(format!("40{auth}"))).await?;
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) if t.starts_with("40") => return Ok(ws),
            Some(Ok(WsMessage::Text(t))) if t.starts_with("44") => {
                bail!("connect_error: {}", &t[2..])
            }
            Some(Ok(WsMessage::Text(t))) if t.as_str() == "2" => {
                ws.send(WsMessage::text("3")).await?
            }
            Some(Ok(_)) => {}
            other => bail!("connection closed during the handshake: {other:?}"),
        }
    }
}

/// An event packet, with an ack id when one is wanted.
pub fn event(name: &str, data: &Value, ack: Option<u64>) -> WsMessage {
    let id = ack.map(|a| a.to_string()).unwrap_or_default();
    WsMessage::text(format!("42{id}[{},{data}]", Value::String(name.to_owned())))
}

pub fn pong() -> WsMessage {
    WsMessage::text("3")
}

/// Classifies a text frame.
pub fn parse(text: &str) -> Incoming<'_> {
    if text == "2" {
        return Incoming::Ping;
    }
    if let Some(rest) = text.strip_prefix("43") {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if let Ok(id) = rest[..digits].parse::<u64>()
            && let Ok(Value::Array(mut args)) = serde_json::from_str::<Value>(&rest[digits..])
            && !args.is_empty()
        {
            return Incoming::Ack(id, args.swap_remove(0));
        }
        return Incoming::Other;
    }
    if let Some(rest) = text.strip_prefix("42") {
        return Incoming::Event(rest);
    }
    Incoming::Other
}

/// Sends an event with an ack id and waits for that ack (within [`WAIT`]),
/// answering pings and dropping anything else (used during set-up only).
pub async fn request(ws: &mut Ws, name: &str, data: &Value, id: u64) -> anyhow::Result<Value> {
    tokio::time::timeout(WAIT, request_unbounded(ws, name, data, id))
        .await
        .map_err(|_| anyhow::anyhow!("no {name} ack within {} s", WAIT.as_secs()))?
}

async fn request_unbounded(
    ws: &mut Ws,
    name: &str,
    data: &Value,
    id: u64,
) -> anyhow::Result<Value> {
    ws.send(event(name, data, Some(id))).await?;
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) => match parse(&t) {
                Incoming::Ack(got, v) if got == id => return Ok(v),
                Incoming::Ping => ws.send(pong()).await?,
                _ => {}
            },
            Some(Ok(_)) => {}
            other => bail!("connection closed waiting for the {name} ack: {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that accepts and then never speaks: connect gives up after
    /// WAIT instead of hanging the run.
    #[tokio::test(start_paused = true)]
    async fn a_silent_server_does_not_hang_a_connect() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(conn);
        });
        let url = format!("http://{addr}");
        let connecting = connect(&url, &Value::Null);
        let err = tokio::time::timeout(2 * WAIT, connecting)
            .await
            .expect("connect must give up by itself")
            .unwrap_err();
        assert!(
            err.to_string().contains("no Socket.IO connect within"),
            "{err}"
        );
        hold.abort();
    }

    #[test]
    fn packets_are_classified() {
        assert!(matches!(parse("2"), Incoming::Ping));
        match parse(r#"4312[{"ok":true,"seq":3}]"#) {
            Incoming::Ack(12, v) => assert_eq!(v["seq"], 3),
            other => panic!("{other:?}"),
        }
        match parse(r#"42["chat message",{"id":"x"}]"#) {
            Incoming::Event(e) => assert!(e.starts_with("[\"chat message\"")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse("43x[]"), Incoming::Other));
        let WsMessage::Text(t) = event("join", &serde_json::json!({"room":"r"}), Some(7)) else {
            panic!()
        };
        assert_eq!(t.as_str(), r#"427["join",{"room":"r"}]"#);
    }
}
