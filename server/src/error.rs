//! The one error type of the HTTP API and its JSON form.
//!
//! Every failure becomes `{"error": {"code", "message", "reason"?}}` with an
//! HTTP status. `code` is one of the protocol codes of DESIGN §3
//! (`BAD_REQUEST`, `UNAUTHORIZED`, …), the same set the Socket.IO acks use;
//! `reason` is the engine's finer error code (`BAD_TAG`, `UNKNOWN_KEY`, …)
//! where there is one.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chatseal_core::ErrorKind;
use serde_json::json;

/// Protocol error codes (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    RateLimited,
    Unavailable,
    Internal,
}

impl Code {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "BAD_REQUEST",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::TooLarge => "TOO_LARGE",
            Self::RateLimited => "RATE_LIMITED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }

    pub const fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An API failure. Messages never contain plaintext or keys.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub reason: Option<&'static str>,
    /// Seconds for a `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason: None,
            retry_after: None,
        }
    }

    /// Adds `Retry-After: secs`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

impl From<chatseal_core::Error> for ApiError {
    fn from(e: chatseal_core::Error) -> Self {
        let code = match e.kind() {
            ErrorKind::TooLarge => Code::TooLarge,
            ErrorKind::Malformed
            | ErrorKind::BadEncoding
            | ErrorKind::UnsupportedVersion
            | ErrorKind::UnsupportedAlgorithm
            | ErrorKind::UnknownKey
            | ErrorKind::RetiredKey
            | ErrorKind::BadTag
            | ErrorKind::InvalidRoom => Code::BadRequest,
            _ => {
                tracing::error!(error = %e, "engine failure");
                return Self::new(Code::Internal, "internal error");
            }
        };
        Self {
            code,
            message: e.to_string(),
            reason: Some(e.kind().code()),
            retry_after: None,
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let code = if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Code::TooLarge
        } else {
            Code::BadRequest
        };
        Self::new(code, r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(Code::BadRequest, r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code.as_str(), "message": self.message});
        if let Some(reason) = self.reason {
            error["reason"] = reason.into();
        }
        let mut response = (self.code.status(), Json(json!({ "error": error }))).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// `axum::Json`, with rejections turned into [`ApiError`]s.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    Json<T>: axum::extract::FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        Ok(Self(Json::<T>::from_request(req, state).await?.0))
    }
}
