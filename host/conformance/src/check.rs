//! How a scenario fails: a message saying what was expected and what was seen, built with
//! small helpers so every scenario reads as a list of expectations.

use std::fmt;

use provider_runtime::error::HostError;

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

/// Shortest run of token-like characters that is masked even when no server logged it.
const LONG_RUN: usize = 40;

/// Mask every known secret in `message`, then anything shaped like a JWT or a long
/// base64url string, so a failure message can never show a token (a plugin under test
/// may well put one in an error message).
pub fn redact(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_owned();
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| s.len() >= 8).collect();
    // Longest first, so a secret containing another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        out = out.replace(secret.as_str(), "[redacted]");
    }
    mask_long_runs(&out)
}

fn mask_long_runs(text: &str) -> String {
    let token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~');
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        // A JWT has dots; plain words and model ids are short.
        if run.len() >= LONG_RUN || (run.starts_with("eyJ") && run.matches('.').count() >= 2) {
            out.push_str("[redacted]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if token_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_secrets_and_token_shapes_are_masked() {
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
        let msg = format!(
            "bad token {jwt} and secret-value-1 and {} ok",
            "A".repeat(43)
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
