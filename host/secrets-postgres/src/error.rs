//! How database and pool failures become [`SecretStoreError`]s.

use std::error::Error as _;
use std::io;

use deadpool_postgres::{PoolError, TimeoutType};
use provider_secrets::SecretStoreError;

/// A failure inside an operation, before it is mapped.
pub(crate) enum Failure {
    /// The database (or the connection to it) failed.
    Db(tokio_postgres::Error),
    /// No connection could be had.
    Pool(PoolError),
    /// The operation's own answer (a limit, a corrupt value).
    Store(SecretStoreError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e)
    }
}

impl From<PoolError> for Failure {
    fn from(e: PoolError) -> Self {
        Self::Pool(e)
    }
}

impl From<SecretStoreError> for Failure {
    fn from(e: SecretStoreError) -> Self {
        Self::Store(e)
    }
}

impl Failure {
    /// Whether the connection broke (rather than the statement failing on a healthy one):
    /// worth one more attempt on a fresh connection, since every operation is idempotent.
    pub(crate) fn connection_broke(&self) -> bool {
        match self {
            Self::Db(e) => broke(e),
            Self::Pool(_) | Self::Store(_) => false,
        }
    }

    /// The error the caller gets; `what` says what was being done (names only).
    pub(crate) fn into_store_error(self, what: &str) -> SecretStoreError {
        match self {
            Self::Db(e) => unavailable(what, &e),
            Self::Pool(e) => pool_unavailable(what, &e),
            Self::Store(e) => e,
        }
    }
}

/// Whether `e` is the connection failing: closed, an I/O error, or the server going away
/// (SQLSTATE class 08, admin/crash shutdown, starting up).
fn broke(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() || e.source().is_some_and(|s| s.is::<io::Error>()) {
        return true;
    }
    e.code().is_some_and(|code| {
        let code = code.code();
        code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
    })
}

/// [`SecretStoreError::Unavailable`] for a database error: what was being done, then the
/// SQLSTATE and the server's message (never its detail, which may quote row contents), or
/// the client's own description of a connection failure.
pub(crate) fn unavailable(what: &str, e: &tokio_postgres::Error) -> SecretStoreError {
    let why = match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => match e.source() {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    };
    SecretStoreError::Unavailable(format!("{what}: {why}"))
}

fn pool_unavailable(what: &str, e: &PoolError) -> SecretStoreError {
    let why = match e {
        PoolError::Timeout(TimeoutType::Wait) => {
            "every pooled connection stayed busy until the call's timeout".to_owned()
        }
        PoolError::Timeout(TimeoutType::Create) => {
            "connecting to the database timed out".to_owned()
        }
        PoolError::Timeout(TimeoutType::Recycle) => {
            "checking a pooled connection timed out".to_owned()
        }
        PoolError::Backend(e) => return unavailable(&format!("{what}: connecting"), e),
        PoolError::Closed => "the connection pool is closed".to_owned(),
        other => other.to_string(),
    };
    SecretStoreError::Unavailable(format!("{what}: {why}"))
}
