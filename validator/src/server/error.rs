//! The one error type of the HTTP API: every failure becomes an `application/problem+json`
//! document ([`gleaner_protocol::api::Problem`]) with a stable reason code. Client mistakes are
//! 4xx with the reason; internal errors an opaque 500 whose cause is logged once.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gleaner_protocol::ProtocolError;
use gleaner_protocol::api::Problem;

use crate::ingest::IngestError;
use crate::store::StoreError;

/// Media type of error bodies.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An API failure: status, stable code, human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            detail: detail.into(),
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(400, code, detail)
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(401, code, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, "not_found", detail)
    }

    /// An internal failure: the cause is logged, the client sees a generic message.
    pub fn internal(code: &'static str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(code, cause = %cause, "internal error");
        Self::new(
            500,
            "internal_error",
            "internal error; the cause was logged",
        )
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        Problem::new(self.status.as_u16(), self.code, self.detail.clone())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid { .. } => ApiError::bad_request(e.code(), e.to_string()),
            StoreError::NotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::Suspended { .. } => ApiError::new(403, e.code(), e.to_string()),
            other => ApiError::internal(other.code(), &other),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Store(s) => s.into(),
            other => ApiError::new(other.status(), other.code(), other.to_string()),
        }
    }
}

impl From<ProtocolError> for ApiError {
    fn from(e: ProtocolError) -> Self {
        let status = match e {
            ProtocolError::TooLarge { .. } => 413,
            ProtocolError::StaleRequest { .. } | ProtocolError::BadSignature { .. } => 401,
            _ => 400,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_client_error() {
            tracing::info!(status = self.status.as_u16(), code = self.code, detail = %self.detail, "request refused");
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        res.extensions_mut().insert(ProblemCode(self.code));
        res
    }
}

/// The reason code of a problem response, for the metrics middleware.
#[derive(Debug, Clone, Copy)]
pub struct ProblemCode(pub &'static str);
