//! The effects the provider logic needs, as traits the caller injects: HTTP, secret
//! storage, time. The component layer implements them over WASI and the host's
//! capabilities; tests implement them in memory.

use crate::error::ProviderError;

/// HTTP method (only what the protocols use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
}

/// An outgoing request, fully described. Its `Debug` output hides the `authorization`
/// header and the body (they carry bearer tokens, refresh tokens and device codes). It is
/// the wire form, bytes the transport sends as they are, so the secrets in it are already
/// exposed (from their [`provider_redact::Secret`]s) and this `Debug` is written by hand.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Header name/value pairs (names lower-case).
    pub headers: Vec<(String, String)>,
    /// Body bytes (empty for GET).
    pub body: Vec<u8>,
    /// How long upstream may take: decides the timeouts the transport asks for.
    pub patience: Patience,
}

/// How long a request may wait for upstream, by kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// Discovery, device, token, revocation and model-list requests: answered at once by a
    /// healthy server, so a stall is reported in seconds.
    Short,
    /// Chat: a reasoning model may think for minutes before its first byte; a stream then
    /// gets an idle timeout between events.
    Long,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                let secret = n.eq_ignore_ascii_case("authorization");
                (n.as_str(), if secret { "[redacted]" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body", &format_args!("[{} bytes]", self.body.len()))
            .finish()
    }
}

/// A response head plus a body that is read chunk by chunk.
pub struct HttpResponse<B> {
    /// Status code.
    pub status: u16,
    /// Header name/value pairs (names lower-case).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: B,
}

impl<B> HttpResponse<B> {
    /// First header value with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The host's sandbox refused the request.
    Denied(String),
    /// A timeout (connect, first byte, between bytes).
    Timeout(String),
    /// Anything else on the way (DNS, connect, TLS, reset, protocol).
    Failed(String),
}

impl From<TransportError> for ProviderError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Denied(m) => ProviderError::DeniedBySandbox(m),
            TransportError::Timeout(m) => ProviderError::Network(format!("timed out: {m}")),
            TransportError::Failed(m) => ProviderError::Network(m),
        }
    }
}

/// A response body read incrementally.
pub trait ResponseBody {
    /// The next chunk of bytes; `None` at the end of the body.
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, TransportError>;
}

/// Sends requests. Redirects are never followed (a 3xx is returned as is).
pub trait Transport {
    /// The body type of responses.
    type Body: ResponseBody;
    /// Send one request and wait for the response head.
    fn send(&mut self, request: HttpRequest) -> Result<HttpResponse<Self::Body>, TransportError>;
}

/// Why a storage call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The lock was not obtained in time.
    LockTimeout(String),
    /// Anything else.
    Failed(String),
}

impl From<StoreError> for ProviderError {
    fn from(e: StoreError) -> Self {
        match e {
            // Another process or instance of the tenant is busy under the lock (a token
            // refresh or a login at the authorization server): worth retrying shortly.
            StoreError::LockTimeout(m) => ProviderError::UpstreamUnavailable(format!(
                "another process of this tenant held the lock too long (a refresh or login in progress?): retry shortly ({m})"
            )),
            StoreError::Failed(m) => ProviderError::Storage(m),
        }
    }
}

/// Tenant-scoped secret storage (the WIT `secrets` interface). Keys match `[a-z0-9._-]+`.
pub trait SecretStore {
    /// Held while a critical section runs; dropping it releases the lock.
    type Guard;
    /// Read a value.
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Replace a value atomically.
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Remove a value (absent is fine).
    fn delete(&mut self, key: &str) -> Result<(), StoreError>;
    /// Keys starting with `prefix`, sorted.
    fn list_keys(&mut self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// Take the named cross-process lock, waiting up to `timeout_ms`.
    fn lock(&mut self, name: &str, timeout_ms: u32) -> Result<Self::Guard, StoreError>;
}

/// Time and randomness, injected so that polling and backoff are tested without waiting.
pub trait Clock {
    /// Wall-clock time, milliseconds since the unix epoch.
    fn now_unix_ms(&self) -> u64;
    /// Block for `ms` milliseconds.
    fn sleep_ms(&self, ms: u64);
    /// Fresh random bytes (for pending ids).
    fn random_bytes(&self, out: &mut [u8]);
}

#[cfg(test)]
mod tests {
    use crate::http::{get_json, post_form, post_json};

    /// The request stays a plain wire value (the transport sends its bytes), so its `Debug`
    /// is written by hand: the bearer header and the body (refresh tokens, device codes) are
    /// never shown.
    #[test]
    fn debug_never_shows_a_bearer_or_a_form_secret() {
        let get = get_json(
            "https://api.x.ai/v1/models".into(),
            "ua",
            Some("at-SECRET-1"),
        );
        let chat = post_json(
            "https://api.x.ai/v1/chat".into(),
            "ua",
            "at-SECRET-2",
            b"{}".to_vec(),
            "application/json",
        );
        let form = post_form(
            "https://auth.x.ai/token".into(),
            "ua",
            &[
                ("refresh_token", "rt-SECRET-3"),
                ("device_code", "dc-SECRET-4"),
            ],
        );
        let d = format!("{get:?} {chat:?} {form:?} {get:#?} {form:#?}");
        assert!(!d.contains("SECRET"), "{d}");
        assert!(
            d.contains("https://auth.x.ai/token") && d.contains("user-agent"),
            "{d}"
        );
    }
}
