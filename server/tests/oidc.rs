//! Tokens of an OpenID Connect identity provider, end to end: a provider
//! served here on 127.0.0.1 (its JWKS from RSA, EC P-256 and Ed25519 keys
//! generated for the test), a chat server started in-process with the
//! `--oidc-…` flags, and real signed tokens sent over the HTTP API and
//! Socket.IO (long-polling, spoken by hand). The provider rotates its keys
//! mid-test; the known attacks on JWT verification are tried, with an
//! attacker's server that must never be contacted.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use clap::Parser as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair as _};
use serde_json::{Value, json};

use common::TestDb;

const AUD: &str = "chatseal-test";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------- keys --

/// A provider's signing key: its private half signs here, its JWK is
/// published.
struct SigningKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    /// RSA only: the public key as PEM and DER, what an alg-confusion
    /// attacker uses as an HMAC secret.
    public_forms: Vec<Vec<u8>>,
}

fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the openssl command makes the test's RSA keys; install openssl");
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn pem_body(pem: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(pem.to_vec()).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// RSA 2048, made by `openssl` (ring makes no RSA keys), PKCS#1.
fn rsa_key(kid: &str) -> SigningKey {
    let pem = openssl(&["genrsa", "-traditional", "2048"], None);
    let der = pem_body(&pem);
    let pair = signature::RsaKeyPair::from_der(&der).unwrap();
    let public = signature::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
    let public_pem = openssl(&["rsa", "-pubout"], Some(&pem));
    let public_der = pem_body(&public_pem);
    SigningKey {
        kid: kid.into(),
        alg: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_der(&der),
        jwk: json!({ "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                     "n": B64.encode(&public.n), "e": B64.encode(&public.e) }),
        public_forms: vec![public_pem, public_der, public.n],
    }
}

fn ec_key(kid: &str) -> SigningKey {
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let rng = SystemRandom::new();
    let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let pair = signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    SigningKey {
        kid: kid.into(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({ "kty": "EC", "crv": "P-256", "kid": kid,
                     "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..]) }),
        public_forms: Vec::new(),
    }
}

fn ed_key(kid: &str) -> SigningKey {
    let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    SigningKey {
        kid: kid.into(),
        alg: Algorithm::EdDSA,
        encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
        jwk: json!({ "kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA",
                     "x": B64.encode(pair.public_key().as_ref()) }),
        public_forms: Vec::new(),
    }
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::HS256 => "HS256",
        _ => unreachable!(),
    }
}

/// A JWS of exactly this header and these claims (any header field, any
/// `alg` written, whatever key signs).
fn sign_raw(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let message = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

/// `key`'s token with these claims and its honest header.
fn signed(key: &SigningKey, claims: &Value) -> String {
    let header = json!({ "alg": alg_name(key.alg), "typ": "JWT", "kid": key.kid });
    sign_raw(&header, claims, &key.encoding, key.alg)
}

// ------------------------------------------------------------ provider --

/// An identity provider (or an attacker's server): JWKS at `/jwks`,
/// discovery at `/.well-known/openid-configuration`; counts every request.
#[derive(Clone)]
struct Idp {
    issuer: String,
    jwks: Arc<Mutex<Vec<Value>>>,
    cache_control: Arc<Mutex<String>>,
    discovery_issuer: Arc<Mutex<Option<String>>>,
    /// Answers 503 to everything while false.
    up: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    jwks_fetches: Arc<AtomicUsize>,
}

impl Idp {
    async fn start() -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let idp = Idp {
            issuer: format!("http://{addr}"),
            jwks: Arc::default(),
            cache_control: Arc::new(Mutex::new("max-age=3600".into())),
            discovery_issuer: Arc::default(),
            up: Arc::new(AtomicBool::new(true)),
            requests: Arc::default(),
            jwks_fetches: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/jwks", axum::routing::get(serve_jwks))
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(serve_discovery),
            )
            .fallback(serve_other)
            .with_state(idp.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        idp
    }

    fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    fn publish(&self, keys: &[&SigningKey]) {
        *self.jwks.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn publish_raw(&self, jwk: Value) {
        self.jwks.lock().unwrap().push(jwk);
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    fn claims(&self, sub: &str) -> Value {
        let now = now();
        json!({ "iss": self.issuer, "aud": AUD, "sub": sub, "iat": now, "exp": now + 3600 })
    }
}

fn counted(idp: &Idp) -> Option<Response> {
    idp.requests.fetch_add(1, Ordering::SeqCst);
    (!idp.up.load(Ordering::SeqCst)).then(|| StatusCode::SERVICE_UNAVAILABLE.into_response())
}

async fn serve_jwks(State(idp): State<Idp>) -> Response {
    if let Some(down) = counted(&idp) {
        return down;
    }
    idp.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let body = json!({ "keys": *idp.jwks.lock().unwrap() }).to_string();
    let cache = idp.cache_control.lock().unwrap().clone();
    (
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

async fn serve_discovery(State(idp): State<Idp>) -> Response {
    if let Some(down) = counted(&idp) {
        return down;
    }
    let issuer = idp
        .discovery_issuer
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| idp.issuer.clone());
    axum::Json(json!({ "issuer": issuer, "jwks_uri": idp.jwks_url() })).into_response()
}

async fn serve_other(State(idp): State<Idp>) -> Response {
    counted(&idp);
    StatusCode::NOT_FOUND.into_response()
}

// --------------------------------------------------------- chat server --

struct Chat {
    base: String,
    state: chatseal_server::app::AppState,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
    _db: TestDb,
    dir: std::path::PathBuf,
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A chat server taking `idp`'s tokens (audience [`AUD`], keys from its
/// JWKS URL unless `extra` says otherwise).
async fn serve_chat(idp: &Idp, extra: &[&str]) -> Chat {
    let mut args = vec![
        "--oidc-issuer".to_owned(),
        idp.issuer.clone(),
        "--oidc-audience".to_owned(),
        AUD.to_owned(),
    ];
    if !extra.contains(&"--no-jwks-url") {
        args.extend(["--oidc-jwks-url".to_owned(), idp.jwks_url()]);
    }
    args.extend(
        extra
            .iter()
            .filter(|a| **a != "--no-jwks-url")
            .map(|a| (*a).to_owned()),
    );
    chat_with(&args).await
}

async fn chat_with(extra: &[String]) -> Chat {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "chatseal-oidc-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let db = TestDb::sqlite();
    let mut args = vec![
        "chatseal-server".to_owned(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        dir.display().to_string(),
        "--database-url".into(),
        db.url.clone(),
        "--keyring-env".into(),
        "CHATSEAL_OIDC_TEST_NO_KEYRING".into(),
    ];
    args.extend(extra.iter().cloned());
    let config = chatseal_server::Config::try_parse_from(&args).unwrap();
    let state = chatseal_server::state(&config).await.unwrap();
    let app = chatseal_server::service(&state);
    let listener = chatseal_server::bind(config.listen).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let conn = state.guards.conn;
    tokio::spawn(async move {
        let _ = chatseal_server::serve::serve(listener, app, conn, async move {
            let _ = stopped.await;
        })
        .await;
    });
    Chat {
        base: format!("http://{addr}"),
        state,
        http: reqwest::Client::new(),
        _stop: stop,
        _db: db,
        dir,
    }
}

impl Chat {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// The status of reading a room's history with `token` (it needs one).
    async fn status(&self, token: &str) -> u16 {
        self.get("/api/rooms/general/messages", Some(token)).await.0
    }

    /// Status, code and message of a refused token.
    async fn refusal(&self, token: &str) -> (u16, String, String) {
        let (status, body) = self.get("/api/rooms/general/messages", Some(token)).await;
        (
            status,
            body["error"]["code"].as_str().unwrap_or("?").to_owned(),
            body["error"]["message"].as_str().unwrap_or("?").to_owned(),
        )
    }

    /// A password account's token.
    async fn password_account(&self, name: &str) -> String {
        let creds = json!({ "username": name, "password": "a long password" });
        let (status, body) = self.post("/api/register", None, creds.clone()).await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = self.post("/api/login", None, creds).await;
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }
}

/// Waits (polling, at most 30 s) until `f` is true.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ----------------------------------------------------------- Socket.IO --

/// A Socket.IO client over Engine.IO long-polling, enough for a handshake,
/// events with acks and events from the server.
struct Sio {
    http: reqwest::Client,
    url: String,
    queue: VecDeque<String>,
    events: Vec<Value>,
    next_id: u32,
}

impl Sio {
    /// Connects with `auth`; `Err` is the `connect_error` message.
    async fn connect(chat: &Chat, auth: Value) -> Result<Sio, String> {
        let http = reqwest::Client::new();
        let open = http
            .get(format!("{}/socket.io/?EIO=4&transport=polling", chat.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let handshake: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
        let mut sio = Sio {
            url: format!(
                "{}/socket.io/?EIO=4&transport=polling&sid={}",
                chat.base,
                handshake["sid"].as_str().unwrap()
            ),
            http,
            queue: VecDeque::new(),
            events: Vec::new(),
            next_id: 0,
        };
        sio.send(&format!("40{auth}")).await;
        loop {
            let packet = sio.packet().await;
            if packet.starts_with("40") {
                return Ok(sio);
            }
            if let Some(error) = packet.strip_prefix("44") {
                let error: Value = serde_json::from_str(error).unwrap();
                return Err(error["message"].as_str().unwrap().to_owned());
            }
        }
    }

    async fn send(&self, packet: &str) {
        let resp = self
            .http
            .post(&self.url)
            .body(packet.to_owned())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }

    async fn packet(&mut self) -> String {
        loop {
            if let Some(packet) = self.queue.pop_front() {
                if packet == "2" {
                    self.send("3").await;
                    continue;
                }
                return packet;
            }
            let body =
                tokio::time::timeout(Duration::from_secs(30), self.http.get(&self.url).send())
                    .await
                    .expect("no packet within 30 s")
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
            self.queue.extend(body.split('\u{1e}').map(str::to_owned));
        }
    }

    /// Emits `event` and returns its ack.
    async fn call(&mut self, event: &str, data: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&format!("42{id}{}", json!([event, data]))).await;
        loop {
            let packet = self.packet().await;
            if let Some(rest) = packet.strip_prefix("43")
                && let Some((digits, args)) = rest.split_once('[')
                && digits == id.to_string()
            {
                let args: Value = serde_json::from_str(&format!("[{args}")).unwrap();
                return args[0].clone();
            }
            if let Some(event) = packet.strip_prefix("42") {
                self.events.push(serde_json::from_str(event).unwrap());
            }
        }
    }

    /// The next `name` event's payload.
    async fn event(&mut self, name: &str) -> Value {
        loop {
            if let Some(i) = self.events.iter().position(|e| e[0] == name) {
                return self.events.remove(i)[1].clone();
            }
            let packet = self.packet().await;
            if let Some(event) = packet.strip_prefix("42") {
                self.events.push(serde_json::from_str(event).unwrap());
            }
        }
    }
}

// --------------------------------------------------------------- tests --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_ec_and_ed25519_tokens_open_the_http_api() {
    let idp = Idp::start().await;
    let keys = [rsa_key("rsa-1"), ec_key("ec-1"), ed_key("ed-1")];
    idp.publish(&keys.iter().collect::<Vec<_>>());
    let chat = serve_chat(&idp, &[]).await;
    assert_eq!(idp.fetches(), 1, "fetched once, at start");

    for (i, key) in keys.iter().enumerate() {
        let token = signed(key, &idp.claims(&format!("user{i}")));
        let (status, body) = chat.get("/api/rooms/general/messages", Some(&token)).await;
        assert_eq!((status, body.clone()), (200, json!([])), "{}", key.kid);
        let (status, body) = chat.get("/api/rooms", Some(&token)).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _) = chat.get("/api/rooms/general/messages", None).await;
    assert_eq!(status, 401);
    let (_, health) = chat.get("/healthz", None).await;
    assert_eq!(health["oidc"], "ok", "{health}");
    // Keys are used from the cache: no fetch per token.
    assert_eq!(idp.fetches(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_users_are_accounts_for_rooms_and_sockets() {
    let idp = Idp::start().await;
    let key = ec_key("ec-1");
    idp.publish(&[&key]);
    let chat = serve_chat(&idp, &[]).await;
    let olga = signed(&key, &idp.claims("olga"));
    let oscar = signed(&key, &idp.claims("oscar"));
    let sam = signed(&key, &idp.claims("sam"));
    let ann = chat.password_account("ann").await;

    // Olga (from the provider) owns a private room and invites the
    // password account ann.
    let (status, body) = chat
        .post(
            "/api/rooms",
            Some(&olga),
            json!({ "name": "ops", "private": true }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["owner"], "olga");
    let (status, body) = chat
        .post(
            "/api/rooms/ops/members",
            Some(&olga),
            json!({ "username": "ann" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Oscar is an account from his first token on: before, no one to invite.
    let (status, _) = chat
        .post(
            "/api/rooms/ops/members",
            Some(&olga),
            json!({ "username": "oscar" }),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(chat.get("/api/rooms", Some(&oscar)).await.0, 200);
    let (status, body) = chat
        .post(
            "/api/rooms/ops/members",
            Some(&olga),
            json!({ "username": "oscar" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Over Socket.IO: olga posts, and the sender is her name.
    let mut socket = Sio::connect(&chat, json!({ "token": olga })).await.unwrap();
    let ack = socket.call("join", json!({ "room": "ops" })).await;
    assert_eq!(ack["ok"], true, "{ack}");
    let ack = socket
        .call("chat message", json!({ "room": "ops", "message": "hello" }))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let (status, history) = chat.get("/api/rooms/ops/messages", Some(&ann)).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history[0]["sender"], "olga", "{history}");
    let mut stranger = Sio::connect(&chat, json!({ "token": sam })).await.unwrap();
    let ack = stranger.call("join", json!({ "room": "ops" })).await;
    assert_eq!(ack["error"]["code"], "FORBIDDEN", "{ack}");
    let (status, _) = chat.get("/api/rooms/ops/messages", Some(&sam)).await;
    assert_eq!(status, 403);

    let (_, listing) = chat.get("/api/rooms", Some(&oscar)).await;
    assert_eq!(listing["rooms"][0]["name"], "ops", "{listing}");
    let (_, members) = chat.get("/api/rooms/ops/members", Some(&oscar)).await;
    assert_eq!(members["members"], json!(["ann", "olga", "oscar"]));

    // `refresh` with a newer token of the provider moves the session's end.
    let mut claims = idp.claims("olga");
    let exp = now() + 7200;
    claims["exp"] = exp.into();
    let ack = socket
        .call("refresh", json!({ "token": signed(&key, &claims) }))
        .await;
    assert_eq!(ack, json!({ "ok": true, "expiresAt": exp * 1000 }));
    let ack = socket.call("refresh", json!({ "token": oscar })).await;
    assert_eq!(ack["error"]["code"], "UNAUTHORIZED", "{ack}");
    claims["exp"] = (now() - 1).into();
    let ack = socket
        .call("refresh", json!({ "token": signed(&key, &claims) }))
        .await;
    assert_eq!(ack["error"]["message"], "token expired", "{ack}");

    // A session ends at its token's exp, like a password account's.
    let mut claims = idp.claims("olga");
    claims["exp"] = (now() + 2).into();
    let mut short = Sio::connect(&chat, json!({ "token": signed(&key, &claims) }))
        .await
        .unwrap();
    let ended = short.event("session expired").await;
    assert_eq!(ended["code"], "UNAUTHORIZED", "{ended}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_from_the_idp_never_take_a_password_account() {
    let idp = Idp::start().await;
    let key = ed_key("ed-1");
    idp.publish(&[&key]);
    let chat = serve_chat(&idp, &["--allow-guests"]).await;
    chat.password_account("ann").await;

    for name in ["ann", "Ann", "ANN"] {
        let token = signed(&key, &idp.claims(name));
        let (status, code, message) = chat.refusal(&token).await;
        assert_eq!(
            (status, code.as_str()),
            (403, "FORBIDDEN"),
            "{name}: {message}"
        );
        let refused = Sio::connect(&chat, json!({ "token": token })).await.err();
        assert!(refused.unwrap().starts_with("FORBIDDEN: "), "{name}");
    }

    // dave from the provider is an account from his first token on: no
    // one may register his name (in any case), log in to it with a
    // password, or use it as a guest.
    let dave = signed(&key, &idp.claims("dave"));
    assert_eq!(chat.status(&dave).await, 200);
    for name in ["dave", "Dave"] {
        let creds = json!({ "username": name, "password": "a long password" });
        let (status, body) = chat.post("/api/register", None, creds).await;
        assert_eq!(status, 400, "{body}");
    }
    let creds = json!({ "username": "dave", "password": "oidc:".to_owned() + &idp.issuer });
    let (status, _) = chat.post("/api/login", None, creds).await;
    assert_eq!(status, 401);
    let guest = Sio::connect(&chat, json!({ "name": "dave" })).await.err();
    assert!(guest.unwrap().starts_with("FORBIDDEN: "));
    // Nor may the provider's Dave take dave in another case.
    let (status, _, _) = chat.refusal(&signed(&key, &idp.claims("Dave"))).await;
    assert_eq!(status, 403);

    // The name claim must be a name here.
    for bad in ["not a name", "ann@example.com", &"x".repeat(33), ""] {
        let (status, code, message) = chat.refusal(&signed(&key, &idp.claims(bad))).await;
        assert_eq!((status, code.as_str()), (401, "UNAUTHORIZED"), "{bad:?}");
        assert!(message.contains("sub"), "{message}");
    }
    let mut claims = idp.claims("x");
    claims.as_object_mut().unwrap().remove("sub");
    assert_eq!(chat.refusal(&signed(&key, &claims)).await.0, 401);
    claims["sub"] = json!(42);
    assert_eq!(chat.refusal(&signed(&key, &claims)).await.0, 401);
}

/// `chatseal-server users disable` works on the provider's users as on
/// password accounts: their tokens are refused, and after `enable` those
/// issued before the disable stay refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_idp_user_is_refused() {
    let idp = Idp::start().await;
    let key = ec_key("ec-1");
    idp.publish(&[&key]);
    let chat = serve_chat(&idp, &[]).await;
    let mut claims = idp.claims("eve");
    claims["iat"] = (now() - 60).into();
    let before = signed(&key, &claims);
    assert_eq!(chat.status(&before).await, 200);

    let store = &chat.state.store;
    assert!(store.set_disabled("eve", true, now() as i64).await.unwrap());
    let (status, _, message) = chat.refusal(&before).await;
    assert_eq!(status, 401);
    assert!(message.contains("disabled"), "{message}");

    assert!(
        store
            .set_disabled("eve", false, now() as i64)
            .await
            .unwrap()
    );
    let (status, _, message) = chat.refusal(&before).await;
    assert_eq!(status, 401);
    assert!(message.contains("revoked"), "{message}");
    claims["iat"] = (now() + 1).into();
    assert_eq!(chat.status(&signed(&key, &claims)).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_or_linking_lets_both_kinds_of_names_live_together() {
    let idp = Idp::start().await;
    let key = rsa_key("rsa-1");
    idp.publish(&[&key]);
    let ann = signed(&key, &idp.claims("ann"));

    let prefixed = serve_chat(&idp, &["--oidc-name-prefix", "sso."]).await;
    prefixed.password_account("ann").await;
    let (status, body) = prefixed
        .post("/api/rooms", Some(&ann), json!({ "name": "team" }))
        .await;
    assert_eq!(
        (status, body["owner"].as_str()),
        (201, Some("sso.ann")),
        "{body}"
    );
    for name in ["sso.bob", "SSO.bob"] {
        let creds = json!({ "username": name, "password": "a long password" });
        let (status, body) = prefixed.post("/api/register", None, creds).await;
        assert_eq!(status, 400, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("sso."));
    }

    let linked = serve_chat(&idp, &["--oidc-link-accounts"]).await;
    linked.password_account("ann").await;
    let (status, body) = linked
        .post("/api/rooms", Some(&ann), json!({ "name": "team" }))
        .await;
    assert_eq!(
        (status, body["owner"].as_str()),
        (201, Some("ann")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_is_fetched_on_first_sight_at_most_once_per_interval() {
    let idp = Idp::start().await;
    let (k1, k2, unpublished) = (rsa_key("k1"), ec_key("k2"), ed_key("k3"));
    idp.publish(&[&k1]);
    let chat = serve_chat(&idp, &["--oidc-refetch-interval", "1h"]).await;
    assert_eq!(chat.status(&signed(&k1, &idp.claims("ann"))).await, 200);
    assert_eq!(idp.fetches(), 1);

    // The provider rotates: k2 appears; its first token fetches the keys.
    idp.publish(&[&k1, &k2]);
    assert_eq!(chat.status(&signed(&k2, &idp.claims("ann"))).await, 200);
    assert_eq!(idp.fetches(), 2);

    // Unknown kids fetch nothing more within the interval (here 1 h).
    for i in 0..20 {
        let unknown = ed_key(&format!("junk-{i}"));
        let (status, _, message) = chat.refusal(&signed(&unknown, &idp.claims("ann"))).await;
        assert_eq!(status, 401, "{message}");
    }
    let (status, _, message) = chat
        .refusal(&signed(&unpublished, &idp.claims("ann")))
        .await;
    assert_eq!(status, 401);
    assert!(message.contains("kid"), "{message}");
    assert_eq!(idp.fetches(), 2);

    // Keys are kept for the response's max-age (1 h here): k1, withdrawn,
    // still verifies until then.
    idp.publish(&[&k2]);
    assert_eq!(chat.status(&signed(&k1, &idp.claims("ann"))).await, 200);
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_key_is_refused_once_the_cache_runs_out() {
    let idp = Idp::start().await;
    let (k1, k2) = (rsa_key("k1"), ed_key("k2"));
    idp.publish(&[&k1, &k2]);
    *idp.cache_control.lock().unwrap() = "public, max-age=1".into();
    let chat = serve_chat(&idp, &["--oidc-cache-min", "1s"]).await;
    let old = signed(&k1, &idp.claims("ann"));
    let new = signed(&k2, &idp.claims("ann"));
    assert_eq!(chat.status(&old).await, 200);

    idp.publish(&[&k2]);
    eventually("k1 refused after the JWKS max-age", || async {
        chat.status(&old).await == 401
    })
    .await;
    assert!(idp.fetches() >= 2);
    assert_eq!(chat.status(&new).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_on_verification_are_refused() {
    let idp = Idp::start().await;
    let attacker = Idp::start().await;
    let (rsa, ec, ed) = (rsa_key("rsa-1"), ec_key("ec-1"), ed_key("ed-1"));
    idp.publish(&[&rsa, &ec, &ed]);
    // A JWKS that (wrongly) publishes a symmetric key: never used.
    idp.publish_raw(json!({ "kty": "oct", "kid": "shared", "k": B64.encode(b"topsecret") }));
    let evil = rsa_key("evil-1");
    attacker.publish(&[&evil]);
    let chat = serve_chat(&idp, &["--oidc-refetch-interval", "1h"]).await;
    let good = idp.claims("ann");
    assert_eq!(chat.status(&signed(&rsa, &good)).await, 200);

    let mut refused: Vec<(&str, String)> = Vec::new();
    // Alg confusion: HS256 with the RSA public key (PEM, DER, modulus) as
    // the HMAC secret, under the RSA key's kid.
    for secret in &rsa.public_forms {
        let header = json!({ "alg": "HS256", "typ": "JWT", "kid": "rsa-1" });
        let key = EncodingKey::from_secret(secret);
        refused.push((
            "HS256 with the public key",
            sign_raw(&header, &good, &key, Algorithm::HS256),
        ));
    }
    // The symmetric JWK's secret.
    let header = json!({ "alg": "HS256", "kid": "shared" });
    let key = EncodingKey::from_secret(b"topsecret");
    refused.push((
        "HS256 with a published oct key",
        sign_raw(&header, &good, &key, Algorithm::HS256),
    ));
    // RS256 named, but the kid of the EC key.
    let header = json!({ "alg": "RS256", "kid": "ec-1" });
    refused.push((
        "alg not the key's",
        sign_raw(&header, &good, &rsa.encoding, Algorithm::RS256),
    ));
    // ES256 signature, EdDSA named.
    let header = json!({ "alg": "EdDSA", "kid": "ec-1" });
    refused.push((
        "EdDSA with an EC key",
        sign_raw(&header, &good, &ec.encoding, Algorithm::ES256),
    ));
    // alg none, with and without a kid.
    for header in [
        json!({ "alg": "none", "kid": "rsa-1" }),
        json!({ "alg": "none" }),
    ] {
        let unsigned = format!(
            "{}.{}.",
            B64.encode(header.to_string()),
            B64.encode(good.to_string())
        );
        refused.push(("alg none", unsigned));
    }
    // No kid at all.
    let header = json!({ "alg": "RS256" });
    refused.push((
        "no kid",
        sign_raw(&header, &good, &rsa.encoding, Algorithm::RS256),
    ));
    // A kid of another issuer's JWKS, signed by that key.
    refused.push(("another issuer's kid", signed(&evil, &good)));
    // The provider's kid, the attacker's key.
    let mut impostor = rsa_key("rsa-1");
    impostor.jwk = Value::Null;
    refused.push(("the provider's kid, another key", signed(&impostor, &good)));
    // Keys the token brings or points to.
    let header = json!({
        "alg": "RS256", "kid": "evil-1",
        "jku": attacker.jwks_url(),
        "x5u": format!("{}/cert.pem", attacker.issuer),
        "jwk": evil.jwk,
    });
    refused.push((
        "jku/x5u/jwk to the attacker",
        sign_raw(&header, &good, &evil.encoding, Algorithm::RS256),
    ));
    let header = json!({ "alg": "RS256", "kid": "rsa-1", "jwk": evil.jwk });
    refused.push((
        "an embedded jwk",
        sign_raw(&header, &good, &evil.encoding, Algorithm::RS256),
    ));
    // crit: an extension the server cannot honour.
    let header = json!({ "alg": "RS256", "kid": "rsa-1", "crit": ["b64"], "b64": false });
    refused.push((
        "crit",
        sign_raw(&header, &good, &rsa.encoding, Algorithm::RS256),
    ));
    // Claims.
    let with = |field: &str, value: Value| {
        let mut c = good.clone();
        c[field] = value;
        signed(&rsa, &c)
    };
    let without = |field: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(field);
        signed(&rsa, &c)
    };
    refused.push(("wrong iss", with("iss", json!(attacker.issuer))));
    refused.push((
        "iss with a slash",
        with("iss", json!(format!("{}/", idp.issuer))),
    ));
    refused.push(("the server's own iss", with("iss", json!("chatseal"))));
    refused.push(("wrong aud", with("aud", json!("another-app"))));
    refused.push(("aud list without ours", with("aud", json!(["a", "b"]))));
    refused.push(("no aud", without("aud")));
    refused.push(("no exp", without("exp")));
    refused.push(("no iss", without("iss")));
    refused.push(("expired", with("exp", json!(now() - 10))));
    refused.push(("exp now", with("exp", json!(now()))));
    refused.push(("exp not a number", with("exp", json!("tomorrow"))));
    refused.push(("nbf in an hour", with("nbf", json!(now() + 3600))));
    refused.push(("nbf not a number", with("nbf", json!("soon"))));
    // Tampered: the payload of one token, the signature of another.
    let real = signed(&rsa, &good);
    let other = signed(&rsa, &idp.claims("root"));
    let mut parts: Vec<&str> = real.split('.').collect();
    parts[1] = other.split('.').nth(1).unwrap();
    refused.push(("payload swapped", parts.join(".")));

    for (what, token) in &refused {
        let (status, code, message) = chat.refusal(token).await;
        assert_eq!(
            (status, code.as_str()),
            (401, "UNAUTHORIZED"),
            "{what}: {message}"
        );
    }
    // The handshake refuses them the same way.
    for (what, token) in refused.iter().take(6) {
        let err = Sio::connect(&chat, json!({ "token": token })).await.err();
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("UNAUTHORIZED: ")),
            "{what}: {err:?}"
        );
    }

    // What is accepted: an aud list with ours, nbf a little ahead (clock
    // skew), and the provider's own token carrying jku/x5u, which are
    // ignored.
    assert_eq!(chat.status(&with("aud", json!(["other", AUD]))).await, 200);
    assert_eq!(chat.status(&with("nbf", json!(now() + 10))).await, 200);
    let header = json!({
        "alg": "RS256", "kid": "rsa-1",
        "jku": attacker.jwks_url(), "x5u": format!("{}/cert.pem", attacker.issuer),
    });
    let pointing = sign_raw(&header, &good, &rsa.encoding, Algorithm::RS256);
    assert_eq!(chat.status(&pointing).await, 200);

    assert_eq!(
        attacker.requests(),
        0,
        "the attacker's server was contacted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_without_the_idp_serves_and_catches_up() {
    let idp = Idp::start().await;
    let key = ec_key("ec-1");
    idp.publish(&[&key]);
    idp.up.store(false, Ordering::SeqCst);
    let chat = serve_chat(&idp, &["--oidc-refetch-interval", "1s"]).await;
    let (status, health) = chat.get("/healthz", None).await;
    assert_eq!(
        (status, &health["oidc"]),
        (200, &json!("unavailable")),
        "{health}"
    );
    let token = signed(&key, &idp.claims("ann"));
    let (status, code, _) = chat.refusal(&token).await;
    assert_eq!((status, code.as_str()), (503, "UNAVAILABLE"));
    let err = Sio::connect(&chat, json!({ "token": token })).await.err();
    assert!(err.unwrap().starts_with("UNAVAILABLE: "));
    // Password accounts are not affected.
    let bob = chat.password_account("bob").await;
    assert_eq!(chat.status(&bob).await, 200);

    idp.up.store(true, Ordering::SeqCst);
    eventually("the provider's token accepted once it is up", || async {
        chat.status(&token).await == 200
    })
    .await;
    let (_, health) = chat.get("/healthz", None).await;
    assert_eq!(health["oidc"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_at_the_issuer_finds_the_keys() {
    let idp = Idp::start().await;
    let key = rsa_key("rsa-1");
    idp.publish(&[&key]);
    let chat = serve_chat(&idp, &["--no-jwks-url"]).await;
    assert_eq!(chat.status(&signed(&key, &idp.claims("ann"))).await, 200);
    assert_eq!(idp.requests(), 2, "discovery, then the JWKS");

    // A discovery document for another issuer is not followed.
    let other = Idp::start().await;
    other.publish(&[&key]);
    *other.discovery_issuer.lock().unwrap() = Some("https://evil.example".into());
    let misled = serve_chat(&other, &["--no-jwks-url", "--oidc-refetch-interval", "1h"]).await;
    let (status, code, _) = misled.refusal(&signed(&key, &other.claims("ann"))).await;
    assert_eq!((status, code.as_str()), (503, "UNAVAILABLE"));
    assert_eq!(other.fetches(), 0);
}

#[test]
fn a_start_with_oidc_flags_that_cannot_work_is_refused() {
    let dir = std::env::temp_dir().join(format!("chatseal-oidc-flags-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("CHATSEAL_OIDC_ISSUER", "https://id.example.com")],
            "CHATSEAL_OIDC_AUDIENCE",
        ),
        (
            &[
                ("CHATSEAL_OIDC_ISSUER", "https://id.example.com"),
                ("CHATSEAL_OIDC_AUDIENCE", "chat"),
                ("CHATSEAL_OIDC_JWKS_URL", "http://id.example.com/keys"),
            ],
            "https",
        ),
        (
            &[
                ("CHATSEAL_OIDC_ISSUER", "https://id.example.com"),
                ("CHATSEAL_OIDC_AUDIENCE", "chat"),
                ("CHATSEAL_OIDC_NAME_PREFIX", "sso:"),
            ],
            "CHATSEAL_OIDC_NAME_PREFIX",
        ),
    ];
    for (env, expected) in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chatseal-server"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env_remove("CHATSEAL_JWT_SECRET")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started: {stderr}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
        assert!(
            !dir.exists(),
            "the data dir was made before the flags were checked"
        );
    }
}
