//! Errors in Anthropic's shape (`{"type": "error", "error": {"type", "message"}}`).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::super::ApiError;

/// An error as Anthropic answers it: its `type` by status (400 `invalid_request_error`,
/// 401 `authentication_error`, 402 `billing_error`, 403 `permission_error`, 404
/// `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`, 504
/// `timeout_error`, 529 `overloaded_error`, else `api_error`), the CLI's error code kept in
/// the message. Upstream unavailable (503 on the OpenAI routes) is 529
/// `overloaded_error`, which Claude Code retries as overload.
#[derive(Debug)]
pub struct AnthropicError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Anthropic's error type.
    pub kind: &'static str,
    /// The message.
    pub message: String,
    retry_after: Option<u32>,
}

impl AnthropicError {
    /// The same error as [`ApiError`] (its status and code) in Anthropic's types.
    pub fn from_api(e: &ApiError) -> Self {
        Self::from_parts(e.status, &e.code, &e.message, e.retry_after)
    }

    /// An error of `status` and the CLI's error `code`.
    pub fn from_parts(
        status: StatusCode,
        code: &str,
        message: &str,
        retry_after: Option<u32>,
    ) -> Self {
        let overloaded = StatusCode::from_u16(529).expect("a valid status");
        let (status, kind) = match status.as_u16() {
            400 | 422 => (status, "invalid_request_error"),
            401 => (status, "authentication_error"),
            402 => (status, "billing_error"),
            403 => (status, "permission_error"),
            404 => (status, "not_found_error"),
            413 => (status, "request_too_large"),
            429 => (status, "rate_limit_error"),
            503 | 529 => (overloaded, "overloaded_error"),
            504 => (status, "timeout_error"),
            _ => (status, "api_error"),
        };
        let message = if code.is_empty() || message.contains(code) {
            message.to_owned()
        } else {
            format!("{message} ({code})")
        };
        Self {
            status,
            kind,
            message,
            retry_after,
        }
    }

    /// 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::from_api(&ApiError::invalid(message))
    }

    /// `{"type": "error", "error": {"type", "message"}}`.
    pub fn body(&self) -> Value {
        json!({"type": "error", "error": {"type": self.kind, "message": self.message}})
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body())).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert("retry-after", HeaderValue::from(s));
        }
        r
    }
}
