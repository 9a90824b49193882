//! Router tests for /encrypt, /decrypt and /healthz, driven with `oneshot`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chatseal_core::Zeroizing;
use chatseal_core::{Keyring, Sealer};
use chatseal_server::app::{Limits, Shared, router};
use chatseal_server::auth::Tokens;
use chatseal_server::service::ServiceAuth;
use chatseal_server::store::Store;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use std::time::Duration;
use tower::ServiceExt as _;

const LIMITS: Limits = Limits {
    max_message_bytes: 1024,
    max_payload_bytes: 4096,
};

/// The service token every app here is made with.
const TOKEN: &str = "s3cret";

async fn make_app() -> (axum::Router, Arc<Shared>) {
    let auth = ServiceAuth::new(Zeroizing::new(TOKEN.to_owned()), "the test");
    // Each test its own SQLite file; the service endpoints never touch it.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("chatseal-service-{}-{n}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    let tokens = Tokens::new(&Zeroizing::new(vec![7u8; 32]), Duration::from_secs(60));
    let mut shared = Shared::new(Sealer::new(Keyring::generate()), store, tokens, auth);
    shared.limits = LIMITS;
    let shared = Arc::new(shared);
    (router(Arc::clone(&shared)), shared)
}

/// A request with the service token.
async fn call(app: &axum::Router, path: &str, body: &str) -> (StatusCode, Value) {
    call_as(app, path, body, Some(TOKEN)).await
}

async fn call_as(
    app: &axum::Router,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::post(path).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn code(v: &Value) -> (&str, Option<&str>) {
    (
        v["error"]["code"].as_str().unwrap_or("?"),
        v["error"]["reason"].as_str(),
    )
}

#[tokio::test]
async fn encrypt_then_decrypt_round_trips_with_room_and_context() {
    let (app, shared) = make_app().await;
    let (s, v) = call(
        &app,
        "/encrypt",
        r#"{"message":"héllo","room":"ops","context":"42"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let encrypted = v["encrypted"].as_str().unwrap();
    // It is a real envelope for room "ops" with context "42".
    assert_eq!(
        &*shared.sealer.open_text("ops", b"42", encrypted).unwrap(),
        "héllo".as_bytes()
    );

    let body = json!({"encrypted": encrypted, "room": "ops", "context": "42"}).to_string();
    let (s, v) = call(&app, "/decrypt", &body).await;
    assert_eq!((s, v["message"].as_str()), (StatusCode::OK, Some("héllo")));

    let wrong = json!({"encrypted": encrypted, "room": "ops", "context": "43"}).to_string();
    let (s, v) = call(&app, "/decrypt", &wrong).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, ("BAD_REQUEST", Some("BAD_TAG")))
    );
    assert!(!v.to_string().contains("héllo"));
}

#[tokio::test]
async fn the_tutorial_payload_works_unchanged() {
    let (app, shared) = make_app().await;
    let (s, v) = call(&app, "/encrypt", r#"{"message":"hi"}"#).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        &*shared
            .sealer
            .open_text("", b"", v["encrypted"].as_str().unwrap())
            .unwrap(),
        b"hi"
    );
}

#[tokio::test]
async fn bad_input_gets_a_code_and_the_server_keeps_serving() {
    let (app, _) = make_app().await;
    let cases: [(&str, &str, StatusCode, &str, Option<&str>); 8] = [
        (
            "/encrypt",
            "not json",
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            None,
        ),
        (
            "/encrypt",
            r#"{"room":"x"}"#,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            None,
        ),
        (
            "/encrypt",
            r#"{"message":5}"#,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            None,
        ),
        (
            "/encrypt",
            r#"{"message":"x","room":"a\u0000b"}"#,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            Some("INVALID_ROOM"),
        ),
        (
            "/decrypt",
            r#"{"encrypted":"@@@"}"#,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            Some("BAD_ENCODING"),
        ),
        (
            "/decrypt",
            r#"{"encrypted":"AQE="}"#,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            Some("MALFORMED"),
        ),
        (
            "/decrypt",
            r#"{"encrypted":"AgEAAAABAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            Some("UNSUPPORTED_VERSION"),
        ),
        (
            "/decrypt",
            r#"{"encrypted":"AQEAAAAJAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            Some("UNKNOWN_KEY"),
        ),
    ];
    for (path, body, status, want, reason) in cases {
        let (s, v) = call(&app, path, body).await;
        assert_eq!(
            (s, code(&v)),
            (status, (want, reason)),
            "{path} {body}: {v}"
        );
    }
    let (s, _) = call(&app, "/encrypt", r#"{"message":"still here"}"#).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn limits_answer_too_large() {
    let (app, _) = make_app().await;
    let over_message = json!({"message": "x".repeat(1025)}).to_string();
    let (s, v) = call(&app, "/encrypt", &over_message).await;
    assert_eq!(
        (s, code(&v).0),
        (StatusCode::PAYLOAD_TOO_LARGE, "TOO_LARGE")
    );
    let over_body = json!({"message": "x", "pad": "y".repeat(5000)}).to_string();
    let (s, v) = call(&app, "/encrypt", &over_body).await;
    assert_eq!(
        (s, code(&v).0),
        (StatusCode::PAYLOAD_TOO_LARGE, "TOO_LARGE")
    );
}

#[tokio::test]
async fn service_token_rules() {
    // There is no "trusted" caller: without the token, or with a wrong one,
    // both endpoints refuse, whatever the address the request came from.
    let (app, _) = make_app().await;
    for path in ["/encrypt", "/decrypt"] {
        for token in [
            None,
            Some("wrong"),
            Some("s3cre"),
            Some("s3crett"),
            Some(""),
        ] {
            let (s, v) = call_as(&app, path, r#"{"message":"x","encrypted":"AQE="}"#, token).await;
            assert_eq!(
                (s, code(&v).0),
                (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
                "{path} {token:?}"
            );
        }
    }
    let (s, _) = call_as(&app, "/encrypt", r#"{"message":"x"}"#, Some(TOKEN)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!format!("{:?}", ServiceAuth::new(Zeroizing::new(TOKEN.into()), "x")).contains(TOKEN));
}

#[tokio::test]
async fn healthz_and_unknown_routes() {
    let (app, _) = make_app().await;
    let resp = app
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app
        .oneshot(Request::get("/nope").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
