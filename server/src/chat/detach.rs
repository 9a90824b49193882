//! Detaches a Socket.IO request from the buffer hyper read it into.
//!
//! hyper parses a request without copying: header values and the URI are
//! slices of the connection's read buffer (16 KiB here, as hyper-util first
//! reads a few bytes on its own to tell HTTP/1 from HTTP/2). engineioxide
//! keeps the request's head for the socket's whole life, and axum adds an
//! `OriginalUri` (one more slice) before any layer runs, so every idle
//! WebSocket kept that buffer alive. Copying the few hundred bytes of head
//! it keeps lets the buffer go as soon as the connection is upgraded.
//!
//! Only the headers that are read past this layer are copied ([`KEPT`]):
//! everything else a client sends (a browser's cookies, user agent and
//! languages; an `Authorization` a proxy adds) would otherwise sit in
//! every session's memory for its whole life, read by nothing.

use axum::extract::{OriginalUri, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use axum::middleware::Next;
use axum::response::Response;

/// Middleware: requests under `/socket.io/` continue with an owned head.
pub async fn detach(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with(super::PATH) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    parts.headers = owned_headers(&parts.headers);
    parts.uri = owned_uri(&parts.uri);
    if let Some(original) = parts.extensions.get_mut::<OriginalUri>() {
        original.0 = owned_uri(&original.0);
    }
    next.run(Request::from_parts(parts, body)).await
}

/// The request headers read once a Socket.IO request has passed this
/// layer: engineioxide answers a WebSocket upgrade with its key and reads a
/// polling POST's content type; nothing in this server reads any other
/// (its identity comes from the handshake's `auth`, its address from the
/// connection). Adding a reader of another header means adding it here.
pub const KEPT: [HeaderName; 2] = [header::SEC_WEBSOCKET_KEY, header::CONTENT_TYPE];

fn owned_headers(headers: &HeaderMap) -> HeaderMap {
    let mut owned = HeaderMap::with_capacity(KEPT.len());
    let kept = KEPT.iter().flat_map(|name| {
        headers
            .get_all(name)
            .into_iter()
            .map(move |value| (name, value))
    });
    for (name, value) in kept {
        // A header value that was valid stays valid; the fallback only
        // keeps the original (and its buffer) if that ever changes.
        let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        copy.set_sensitive(value.is_sensitive());
        owned.append(name.clone(), copy);
    }
    owned
}

fn owned_uri(uri: &Uri) -> Uri {
    uri.to_string().parse().unwrap_or_else(|_| uri.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn copies_share_nothing_with_the_read_buffer() {
        // A request head parsed the way hyper does it: slices of one buffer.
        let buffer = Bytes::from_static(b"/socket.io/?EIO=4&transport=websocket dGhlIHNhbXBsZQ==");
        let uri = Uri::from_maybe_shared(buffer.slice(0..37)).unwrap();
        let mut headers = HeaderMap::new();
        let key = HeaderValue::from_maybe_shared(buffer.slice(38..)).unwrap();
        headers.insert("sec-websocket-key", key);
        let range = buffer.as_ptr_range();

        let owned = owned_headers(&headers);
        let value = owned.get("sec-websocket-key").unwrap();
        assert_eq!(value, "dGhlIHNhbXBsZQ==");
        assert!(!range.contains(&value.as_bytes().as_ptr()));

        let owned = owned_uri(&uri);
        assert_eq!(owned, uri);
        assert!(!range.contains(&owned.path().as_ptr()));
        assert!(!range.contains(&owned.query().unwrap().as_ptr()));
    }

    #[test]
    fn only_the_headers_read_later_are_kept() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "chat.example"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZQ=="),
            ("content-type", "text/plain;charset=UTF-8"),
            ("cookie", "session=secret"),
            ("authorization", "Bearer secret"),
            ("user-agent", "Mozilla/5.0"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        let owned = owned_headers(&headers);
        let names: Vec<&str> = owned.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["sec-websocket-key", "content-type"]);
        assert_eq!(owned["sec-websocket-key"], "dGhlIHNhbXBsZQ==");
        assert_eq!(owned["content-type"], "text/plain;charset=UTF-8");
    }

    #[test]
    fn sensitive_values_stay_sensitive() {
        let mut headers = HeaderMap::new();
        let mut key = HeaderValue::from_static("dGhlIHNhbXBsZQ==");
        key.set_sensitive(true);
        headers.insert("sec-websocket-key", key);
        assert!(owned_headers(&headers)["sec-websocket-key"].is_sensitive());
    }
}
