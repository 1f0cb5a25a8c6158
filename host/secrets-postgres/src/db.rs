//! The database side: a private tokio runtime, two connection pools, and the way blocking
//! callers wait for an operation on them.

use std::fmt;
use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use provider_secrets::SecretStoreError;
use tokio::time::{Instant, timeout_at};
use tokio_postgres::NoTls;

use crate::config::{self, PostgresOptions, Target, Tls};
use crate::error::Failure;
use crate::schema;

/// Worker threads of the private runtime: it only moves bytes (sealing and opening happen on
/// the callers' threads), so one is plenty.
const WORKER_THREADS: usize = 1;

/// A database: the runtime that drives its connections and the pools.
pub(crate) struct Db {
    /// `None` only while dropping (see [`Drop`]).
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    /// Connections for values (short calls).
    pub(crate) values: Pool,
    /// Connections for locks (each held by a lock for its life).
    pub(crate) locks: Pool,
    pub(crate) options: PostgresOptions,
    pub(crate) shown: String,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("url", &self.shown)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // Dropping a runtime blocks (and panics where blocking is not allowed, e.g. when the
        // last handle goes away inside some async task): let it wind down by itself.
        if let Some(runtime) = self.runtime.take() {
            // Releases of locks still on their way finish first (they run on this runtime,
            // so not when dropped from one of its own threads).
            let on_our_runtime = tokio::runtime::Handle::try_current()
                .is_ok_and(|current| current.id() == self.handle.id());
            if !on_our_runtime {
                crate::lock::wait_for_all_releases();
            }
            runtime.shutdown_background();
        }
    }
}

fn pool(target: &Target, size: usize, options: &PostgresOptions) -> Result<Pool, SecretStoreError> {
    let manager_config = ManagerConfig {
        // A closed connection is never handed out (checked without a round trip): `get` stays
        // one round trip, and after a database restart the dead connections are replaced.
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match &target.tls {
        Tls::Off => Manager::from_config(target.pg.clone(), NoTls, manager_config),
        Tls::On(tls) => Manager::from_config(target.pg.clone(), tls.clone(), manager_config),
    };
    let connect = target
        .pg
        .get_connect_timeout()
        .copied()
        .unwrap_or(options.connect_timeout);
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(options.call_timeout))
        .create_timeout(Some(connect))
        .recycle_timeout(Some(connect))
        .build()
        .map_err(|e| SecretStoreError::Config(format!("connection pool: {e}")))
}

impl Db {
    /// Parses `url`, starts the runtime and the pools, and brings the schema up to date (the
    /// one step that needs the database now: down, it is
    /// [`SecretStoreError::Unavailable`]).
    pub(crate) fn open(url: &str, options: PostgresOptions) -> Result<Self, SecretStoreError> {
        let target = config::parse(url, &options)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("provider-secrets-pg")
            .enable_all()
            .build()
            .map_err(|e| {
                SecretStoreError::Unavailable(format!("starting the database client: {e}"))
            })?;
        let db = Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            values: pool(&target, options.connections, &options)?,
            locks: pool(&target, options.lock_connections, &options)?,
            options,
            shown: target.shown,
        };
        let values = db.values.clone();
        let call_timeout = options.call_timeout;
        db.block(async move {
            let deadline = deadline_after(call_timeout);
            let what = "preparing the schema";
            let mut client = match timeout_at(deadline, values.get()).await {
                Ok(Ok(client)) => client,
                Ok(Err(e)) => return Err(Failure::from(e).into_store_error(what)),
                Err(_) => return Err(timed_out(what)),
            };
            match timeout_at(deadline, schema::migrate(&mut client)).await {
                Ok(result) => result.map_err(schema::MigrateError::into_store_error),
                Err(_) => {
                    drop(Object::take(client));
                    Err(timed_out(what))
                }
            }
        })?;
        tracing::debug!(database = %db.shown, "postgres secret backend ready");
        Ok(db)
    }

    /// Runs `fut` on the runtime and waits for its answer. The caller's thread only blocks
    /// (never enters a runtime), so this works from plain threads, from tokio's blocking
    /// pool, and even, though it then blocks a worker, from async code.
    pub(crate) fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = Result<T, SecretStoreError>> + Send + 'static,
    ) -> Result<T, SecretStoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        // No answer: the task was dropped (the runtime is shutting down) or panicked.
        rx.recv().unwrap_or_else(|_| {
            Err(SecretStoreError::Unavailable(
                "the database client stopped before answering".into(),
            ))
        })
    }

    /// A handle of the runtime, for work that must outlive its caller (lock release).
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

/// `timeout` from now; a timeout too long to add is a century.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// The call ran out of time.
pub(crate) fn timed_out(what: &str) -> SecretStoreError {
    SecretStoreError::Unavailable(format!("{what}: no answer from the database in time"))
}

/// Runs the operation `$op` (an expression using the connection `$c`, a future of
/// `Result<T, Failure>`) on a connection of `$pool` before `$deadline`, answering
/// `Result<T, SecretStoreError>`. A connection that broke is discarded and the operation
/// tried once more on a fresh one (every operation here is idempotent: a read, a delete, or
/// a write of bytes sealed beforehand); one that ran out of time is discarded too (it may
/// be stuck). `$what` names the call in errors.
///
/// A macro rather than a function taking an async closure: the futures must be `Send` for
/// the runtime, which rustc cannot yet prove through a higher-ranked closure bound.
macro_rules! run {
    ($pool:expr, $deadline:expr, $what:expr, |$c:ident| $op:expr) => {{
        let pool: &deadpool_postgres::Pool = &$pool;
        let deadline: tokio::time::Instant = $deadline;
        let what: &str = &$what;
        let mut retried = false;
        loop {
            let mut client = match tokio::time::timeout_at(deadline, pool.get()).await {
                Ok(Ok(client)) => client,
                Ok(Err(e)) => break Err($crate::error::Failure::from(e).into_store_error(what)),
                Err(_) => break Err($crate::db::timed_out(what)),
            };
            let outcome = {
                let $c = &mut client;
                tokio::time::timeout_at(deadline, $op).await
            };
            match outcome {
                Ok(Ok(value)) => break Ok(value),
                Ok(Err(failure)) if failure.connection_broke() => {
                    drop(deadpool_postgres::Object::take(client));
                    if retried {
                        break Err(failure.into_store_error(what));
                    }
                    retried = true;
                }
                Ok(Err(failure)) => break Err(failure.into_store_error(what)),
                Err(_) => {
                    drop(deadpool_postgres::Object::take(client));
                    break Err($crate::db::timed_out(what));
                }
            }
        }
    }};
}
pub(crate) use run;
