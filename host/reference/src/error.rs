//! The crate's public error type.

/// Why starting a server or driving it from a test failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be set up.
    #[error("could not bind 127.0.0.1: {0}")]
    Bind(#[source] std::io::Error),
    /// A background runtime could not be started.
    #[error("could not start the server runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// No device authorization carries this user code.
    #[error("unknown user code {0:?}")]
    UnknownUserCode(String),
    /// The user code's device authorization can no longer change (already decided or used).
    #[error("device authorization {0:?} is already {1}")]
    UserCodeSettled(String, &'static str),
    /// A JWKS document could not be understood.
    #[error("invalid JWKS: {0}")]
    Jwks(String),
}

/// Why a bearer token was refused. Never carries the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not three base64url parts with JSON header and claims.
    #[error("malformed JWT")]
    Malformed,
    /// The header names an algorithm this verifier does not accept.
    #[error("unsupported JWT algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// No key of the JWKS fits the header's `kid` and `alg`.
    #[error("no matching key in the JWKS")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad JWT signature")]
    BadSignature,
    /// `exp` is missing or in the past.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` differs from the expected issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the expected audience.
    #[error("wrong audience")]
    WrongAudience,
    /// The authorization server revoked the token or its grant.
    #[error("token revoked")]
    Revoked,
    /// The test asked the API server to refuse this token.
    #[error("token refused by the test")]
    Denied,
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
