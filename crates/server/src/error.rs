//! The server's one error type. Every variant knows its status, a stable machine code and
//! whether retrying can help; it renders as an OpenAI-shaped JSON body everywhere, so
//! `/v1` clients and `/api` clients read errors the same way.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use regelkreis_core::Scope;
use regelkreis_store::{AuthError, StoreError};

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid key: 401.
    #[error("{0}")]
    Unauthorized(String),
    /// The key lacks the scope: 403.
    #[error("this API key lacks the scope '{0}' that this route needs")]
    Forbidden(Scope),
    /// No such resource, or not the caller's: 404.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or invalid: 400.
    #[error("{0}")]
    BadRequest(String),
    /// The JSON is well formed but does not fit: 422.
    #[error("{0}")]
    Unprocessable(String),
    /// Method not allowed on this route: 405.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Body too large: 413.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Wrong content type: 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Headers too large: 431.
    #[error("{0}")]
    HeadersTooLarge(String),
    /// The request took too long: 408.
    #[error("{0}")]
    Timeout(String),
    /// The resource exists already, or changed under a concurrent write: 409.
    #[error("{0}")]
    Conflict(String),
    /// A guardrail stopped the request: 400.
    #[error("{0}")]
    Blocked(String),
    /// The store is not reachable: 503.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure: 500. The detail is logged, not sent.
    #[error("internal error")]
    Internal(String),
    /// The LLM gateway's answer: a budget (429), an unknown model (404), a provider that
    /// refused or failed (its 4xx, 502 or 504).
    #[error("{0}")]
    Gateway(#[from] regelkreis_gateway::GatewayError),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) | ApiError::Blocked(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Gateway(e) => {
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_GATEWAY)
            }
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "invalid_api_key",
            ApiError::Forbidden(_) => "insufficient_scope",
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Blocked(_) => "content_blocked",
            ApiError::Unprocessable(_) => "invalid_body",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::HeadersTooLarge(_) => "headers_too_large",
            ApiError::Timeout(_) => "timeout",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Conflict(_) => "conflict",
            ApiError::Internal(_) => "internal_error",
            ApiError::Gateway(e) => e.code(),
        }
    }

    /// The OpenAI error `type` this maps to.
    fn kind(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "authentication_error",
            ApiError::Forbidden(_) => "permission_error",
            ApiError::NotFound(_) => "not_found_error",
            ApiError::Timeout(_) | ApiError::Unavailable(_) | ApiError::Internal(_) => {
                "server_error"
            }
            ApiError::Gateway(regelkreis_gateway::GatewayError::Budget(_)) => "insufficient_quota",
            ApiError::Gateway(regelkreis_gateway::GatewayError::ModelNotFound(_)) => {
                "not_found_error"
            }
            ApiError::Gateway(regelkreis_gateway::GatewayError::BadRequest(_)) => {
                "invalid_request_error"
            }
            ApiError::Gateway(_) => "server_error",

            _ => "invalid_request_error",
        }
    }

    /// Whether the same request may succeed later.
    pub fn retryable(&self) -> bool {
        match self {
            ApiError::Timeout(_) | ApiError::Unavailable(_) | ApiError::Conflict(_) => true,
            ApiError::Gateway(e) => e.status() >= 500,
            _ => false,
        }
    }

    /// An error for a bare status produced below the handlers (a rejection, a layer).
    pub fn from_status(status: StatusCode, message: String) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized(message),
            StatusCode::NOT_FOUND => ApiError::NotFound(message),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed(message),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(message),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(message),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ApiError::HeadersTooLarge(message),
            StatusCode::REQUEST_TIMEOUT => ApiError::Timeout(message),
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable(message),
            StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable(message),
            StatusCode::CONFLICT => ApiError::Conflict(message),
            s if s.is_client_error() => ApiError::BadRequest(message),
            _ => ApiError::Internal(message),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => ApiError::BadRequest(m),
            StoreError::Pool(_) => ApiError::Unavailable("the store is not reachable".into()),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(s) => s.into(),
            other => ApiError::Unauthorized(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let body = serde_json::json!({
            "error": {
                "message": self.to_string(),
                "type": self.kind(),
                "code": self.code(),
                "param": null,
                "retryable": self.retryable(),
            }
        });
        (self.status(), axum::Json(body)).into_response()
    }
}
