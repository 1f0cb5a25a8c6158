//! How a scenario fails: a message saying what was expected and what was seen, built with
//! small helpers so every scenario reads as a list of expectations.

use std::fmt;

use provider_runtime::HostError;

/// Why a scenario failed: expected versus seen, in words. Never carries a token
/// ([`redact`] runs over it before it leaves the suite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl Failure {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a scenario (or one of its steps) ends with.
pub type Outcome<T = ()> = Result<T, Failure>;

/// Fail the scenario with a formatted message unless `cond` holds.
macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::check::Failure(format!($($msg)+)));
        }
    };
}
pub(crate) use check;

/// Fail the scenario with a formatted message.
macro_rules! fail {
    ($($msg:tt)+) => {
        return Err($crate::check::Failure(format!($($msg)+)))
    };
}
pub(crate) use fail;

/// A one-line description of a host error: its stable code and message.
pub fn describe(e: &HostError) -> String {
    format!("{} ({})", e.code(), e)
}

/// Attach the step's name to a failing call of the contract or of a reference server.
pub trait Step<T> {
    /// `Err(e)` becomes "`what` failed: e".
    fn step(self, what: &str) -> Outcome<T>;
}

impl<T> Step<T> for Result<T, HostError> {
    fn step(self, what: &str) -> Outcome<T> {
        self.map_err(|e| Failure(format!("{what}: expected success, seen {}", describe(&e))))
    }
}

impl<T> Step<T> for Result<T, provider_reference::Error> {
    fn step(self, what: &str) -> Outcome<T> {
        self.map_err(|e| Failure(format!("{what}: the reference server refused: {e}")))
    }
}

/// The error of `result`, which must be the typed error `code`.
pub fn expect_code<T>(result: Result<T, HostError>, code: &str, what: &str) -> Outcome<HostError> {
    match result {
        Ok(_) => Err(Failure(format!(
            "{what}: expected error {code}, seen success"
        ))),
        Err(e) if e.code() == code => Ok(e),
        Err(e) => Err(Failure(format!(
            "{what}: expected error {code}, seen {}",
            describe(&e)
        ))),
    }
}

/// The error of `result`, which must be one of the plugin's typed errors (not a trap, a
/// timeout or a memory-limit stop of the host).
pub fn expect_typed<T>(result: Result<T, HostError>, what: &str) -> Outcome<HostError> {
    match result {
        Ok(_) => Err(Failure(format!(
            "{what}: expected a typed error, seen success"
        ))),
        Err(e @ HostError::Provider(_)) => Ok(e),
        Err(e) => Err(Failure(format!(
            "{what}: expected a typed provider-error, seen {}",
            describe(&e)
        ))),
    }
}

/// Mask every known secret in `message` (and pieces of them), then anything shaped like a
/// JWT or a long opaque token, so a failure message can never show a token (a plugin under
/// test may well put one in an error message). The project's one redactor.
pub fn redact(message: &str, secrets: &[String]) -> String {
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    provider_redact::redact(message, &secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_secrets_and_token_shapes_are_masked() {
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
        let msg = format!(
            "bad token {jwt} and secret-value-1 and {} ok",
            "A1".repeat(22)
        );
        let red = redact(&msg, &["secret-value-1".into()]);
        assert_eq!(
            red, "bad token [redacted] and [redacted] and [redacted] ok",
            "{red}"
        );
        assert_eq!(
            redact("expected error access_denied, seen xai-grok/grok-4.3", &[]),
            "expected error access_denied, seen xai-grok/grok-4.3"
        );
    }
}
