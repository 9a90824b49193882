//! `GET /`: the browser client, served from a directory of built files
//! (`js/client/dist`, made by `npm run build:client` in `js/`). Nothing is
//! compiled into the binary, so the client can be rebuilt without it.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt as _;
use tower_http::services::ServeDir;

use crate::app::{AppState, not_found};

pub async fn serve(State(state): State<AppState>, req: Request) -> Response {
    let Some(dir) = state.client_dir.as_ref() else {
        return not_found().await.into_response();
    };
    if req.method() != axum::http::Method::GET && req.method() != axum::http::Method::HEAD {
        return not_found().await.into_response();
    }
    match ServeDir::new(dir).oneshot(req).await {
        Ok(resp) if resp.status().is_success() || resp.status().is_redirection() => {
            resp.into_response()
        }
        _ => not_found().await.into_response(),
    }
}

/// `js/client/dist` beside the server crate, when it has been built: what
/// `cargo run` from a checkout serves without any flag.
pub fn default_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../js/client/dist");
    dir.join("index.html").is_file().then_some(dir)
}
