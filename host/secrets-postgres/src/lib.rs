//! A PostgreSQL secret backend for provider-host: many host replicas share one database for
//! their tenants' secrets and locks.
//!
//! [`PostgresBackend`] implements [`SecretBackend`] and its tenants [`TenantBackend`] with
//! the same contract as the file store (`provider_secrets::contract` checks both):
//!
//! - **Values** are sealed on the host with [`provider_secrets::file_format::seal`] before a
//!   statement is built, so the database holds ciphertext only; the associated data binds
//!   each row to its tenant and key, so a row copied elsewhere reads as
//!   [`SecretStoreError::Corrupt`]. The master key comes from `PROVIDER_HOST_KEY` only (one
//!   key for the fleet, never stored in the database).
//! - **Writes** are single statements or one transaction: a replace that does not grow the
//!   value is one `UPDATE`; anything else is one transaction that locks the value's row and
//!   the tenant's in `provider_secrets_tenants`, so the key limit and the byte quotas
//!   ([`Limits::max_tenant_bytes`], and [`Limits::max_total_bytes`] for the whole database,
//!   its row in `provider_secrets_usage` locked) hold across replicas; a trigger keeps the
//!   byte counts of every change. A reader sees the old value or the new one, never a mix.
//! - **Reads** are one round trip on a pooled connection (statements are prepared once per
//!   connection); a stored value over the size limit is refused by its length without being
//!   fetched.
//! - **Locks** are session-level advisory locks, see [`lock_key`] and the `lock` module docs:
//!   released when the guard is dropped, and by the server when the holder's connection or
//!   process dies. Each holding has a fencing token that every read and write of the
//!   holder's tenant handle proves (a lock taken over since is
//!   [`SecretStoreError::LockLost`]), and a lock whose holder vanished without releasing
//!   it is granted again only [`PostgresOptions::holder_grace`] after that holder's last
//!   proof: it may still be at work.
//! - **Names and limits** are the file store's ([`provider_secrets::names`], [`Limits`]); the
//!   file store's cap on lock *names* is about lock files and has no counterpart here.
//! - **`derive_key`** is [`MasterKey::derive_key`], as for the file store.
//!
//! # Availability
//!
//! A database that is down, restarting or unreachable makes calls fail with
//! [`SecretStoreError::Unavailable`] within [`PostgresOptions::call_timeout`] (the host
//! maps it to the WIT `io` error; [`SecretStoreError::guest_message`] says no more than
//! "storage unavailable"). Nothing is half-written: a failed statement or transaction
//! changes nothing. Broken connections are dropped from the pool and new ones opened on the
//! next call, so the backend recovers by itself once the database is back; a call whose
//! connection broke under it is retried once on a fresh one (every call is idempotent).
//! Opening the backend needs the database (it applies the schema migrations).
//!
//! # Threads
//!
//! The trait methods block, like the file store's. The connections run on a private
//! one-thread tokio runtime; a call hands its statement to it and waits on a channel, so it
//! works from any thread: tokio's blocking pool (`spawn_blocking`), plain threads, even an
//! async task (it then blocks that worker: don't). Dropping a lock guard never blocks.
//!
//! # URL and TLS
//!
//! `postgres://user:password@host:port/dbname?options`; see [`PostgresBackend::connect`]
//! for `sslmode` and `sslrootcert`. The password never appears in `Debug` or errors.
//!
//! # Schema
//!
//! Tables `provider_secrets_schema` (applied migrations), `provider_secrets_tenants`
//! (one row per tenant that ever stored a value, with its stored bytes: the row lock of
//! writes that add keys or bytes), `provider_secrets_usage` (the stored bytes of every
//! tenant together; both counts kept by the trigger `provider_secrets_count_bytes`) and
//! `provider_secrets_values` (`tenant`, `key`, `sealed` bytea, `updated_at`), in the
//! connection's search path. The host's own data (`serve`'s key hashes) is in rows of
//! tenant `.host.<name>` ([`PostgresBackend::host_space`]); `provider_secrets_lock_holds`
//! records held locks, their fencing tokens and last proofs, for the fence (see the `lock`
//! module). Migrations are
//! embedded ([`SCHEMA_VERSION`]) and applied at open, under an advisory lock so replicas
//! starting together apply them once; a database migrated by a newer host is refused
//! ([`SecretStoreError::Config`]).

#![deny(missing_docs)]

mod config;
mod db;
mod error;
mod lock;
mod ops;
mod rotation;
mod schema;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use provider_secrets::file_format::{self, OVERHEAD};
use provider_secrets::names::{could_prefix_a_key, validate_key, validate_tenant};
use provider_secrets::{
    KEY_ENV_VAR, KeySource, Limits, MasterKey, SecretBackend, SecretLock, SecretStoreError,
    TenantBackend,
};
use tokio::time::Instant;

use crate::db::{Db, run};

pub use crate::config::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_CONNECTIONS, DEFAULT_HOLDER_GRACE,
    DEFAULT_LOCK_CONNECTIONS, PostgresOptions,
};
pub use crate::lock::lock_key;
pub use crate::rotation::rotate_master_key;
pub use crate::schema::SCHEMA_VERSION;

/// Longest name of a [`PostgresBackend::host_space`] (the schema's check says the same).
pub const MAX_HOST_SPACE_LEN: usize = 32;

/// Secrets of every tenant in one PostgreSQL database. Cheap to clone (an `Arc` inside);
/// `Send + Sync + 'static`.
#[derive(Clone)]
pub struct PostgresBackend {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    key: MasterKey,
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL without its password; the key is left out.
        f.debug_struct("PostgresBackend")
            .field("url", &self.inner.db.shown)
            .field("options", &self.inner.db.options)
            .finish_non_exhaustive()
    }
}

impl PostgresBackend {
    /// Connects to the database at `url` with the master key of `key`, which must be
    /// [`KeySource::Env`] (`PROVIDER_HOST_KEY`): every replica needs the same key, and a key
    /// file beside each host is not a fleet's key (a [`KeySource::File`] is refused with
    /// [`SecretStoreError::MasterKey`]). Default pool sizes and timeouts
    /// ([`PostgresOptions`]) with `limits`.
    ///
    /// `url` is `postgres://` or `postgresql://`. `sslmode=require` (or `verify-full`) asks
    /// for TLS with the server's certificate verified against `sslrootcert=PATH` (a PEM file
    /// of CA certificates; absent or `system`: the system's trust store) and its host name
    /// checked, which is stricter than libpq's `require`; `sslmode=disable` is plaintext.
    /// Without `sslmode`, plaintext is allowed to a loopback address or a Unix socket only;
    /// `prefer`, `allow` and `verify-ca` are refused. Other parameters are tokio-postgres's
    /// (`connect_timeout`, `application_name`, `options`, …).
    ///
    /// Errors: [`SecretStoreError::Config`] for the URL, [`SecretStoreError::MasterKey`] for
    /// the key, [`SecretStoreError::Unavailable`] when the database cannot be reached to
    /// prepare the schema.
    pub fn connect(url: &str, key: KeySource, limits: Limits) -> Result<Self, SecretStoreError> {
        let key = match key {
            KeySource::Env => MasterKey::from_env()?,
            KeySource::File(path) => {
                return Err(SecretStoreError::MasterKey(format!(
                    "the postgres secret backend takes its master key from {KEY_ENV_VAR} \
                     only, the same key on every replica (a key file {} on each host is not \
                     one key for the fleet, and the key is never stored in the database); \
                     set {KEY_ENV_VAR}",
                    path.display()
                )));
            }
        };
        Self::connect_with(
            url,
            key,
            PostgresOptions {
                limits,
                ..PostgresOptions::default()
            },
        )
    }

    /// Connects with a master key at hand and explicit options (see
    /// [`PostgresBackend::connect`] for the URL and the errors).
    pub fn connect_with(
        url: &str,
        key: MasterKey,
        options: PostgresOptions,
    ) -> Result<Self, SecretStoreError> {
        let db = Db::open(url, options)?;
        Ok(Self {
            inner: Arc::new(Inner { db, key }),
        })
    }

    /// The storage of one tenant (its id checked; nothing is asked of the database until
    /// it is used).
    pub fn tenant(&self, tenant_id: &str) -> Result<PostgresTenant, SecretStoreError> {
        validate_tenant(tenant_id)?;
        Ok(PostgresTenant {
            inner: Arc::clone(&self.inner),
            tenant: tenant_id.into(),
            held: Arc::default(),
            fences: Arc::default(),
        })
    }

    /// The host's own space `name` (`serve`'s key hashes): stored as tenant `.host.<name>`,
    /// an id [`PostgresBackend::tenant`] refuses (tenant ids never start with `.`), so no
    /// tenant's plugin can reach it; sealed, listed, locked and rotated like a tenant's
    /// values. `name` follows the key rules, 1 to [`MAX_HOST_SPACE_LEN`] characters.
    pub fn host_space(&self, name: &str) -> Result<PostgresTenant, SecretStoreError> {
        validate_key(name, "host space")?;
        if name.len() > MAX_HOST_SPACE_LEN {
            return Err(SecretStoreError::InvalidKey(format!(
                "host space {name:?} is longer than {MAX_HOST_SPACE_LEN} characters"
            )));
        }
        Ok(PostgresTenant {
            inner: Arc::clone(&self.inner),
            tenant: format!(".host.{name}").into(),
            held: Arc::default(),
            fences: Arc::default(),
        })
    }

    /// The database as shown in logs: `postgres://user@host:port/db (tls|plaintext)`, never
    /// the password.
    pub fn database(&self) -> &str {
        &self.inner.db.shown
    }
}

impl SecretBackend for PostgresBackend {
    fn tenant(&self, tenant_id: &str) -> Result<Arc<dyn TenantBackend>, SecretStoreError> {
        Ok(Arc::new(PostgresBackend::tenant(self, tenant_id)?))
    }

    fn derive_key(&self, purpose: &[u8]) -> [u8; 32] {
        self.inner.key.derive_key(purpose)
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn host_space(&self, name: &str) -> Result<Option<Arc<dyn TenantBackend>>, SecretStoreError> {
        Ok(Some(Arc::new(PostgresBackend::host_space(self, name)?)))
    }
}

/// One tenant's secrets and locks in the database. Cheap to clone; clones share the budget
/// of locks held at once ([`Limits::max_held_locks`]).
#[derive(Clone)]
pub struct PostgresTenant {
    inner: Arc<Inner>,
    tenant: Arc<str>,
    held: Arc<AtomicUsize>,
    /// The locks held through this handle (and its clones), which its calls prove.
    fences: lock::Fences,
}

impl fmt::Debug for PostgresTenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresTenant")
            .field("tenant_id", &self.tenant)
            .field("database", &self.inner.db.shown)
            .finish_non_exhaustive()
    }
}

impl PostgresTenant {
    fn limits(&self) -> &Limits {
        &self.inner.db.options.limits
    }

    /// When a call started now must be over.
    fn deadline(&self) -> Instant {
        db::deadline_after(self.inner.db.options.call_timeout)
    }

    /// The locks this handle holds now, which a call must prove (usually none).
    fn fences(&self) -> Vec<ops::Fence> {
        self.fences
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl TenantBackend for PostgresTenant {
    fn tenant_id(&self) -> &str {
        &self.tenant
    }

    /// One round trip (two while this handle holds a lock: the proof that it still does,
    /// first). A stored value over the size limit (plus the format's overhead) is
    /// [`SecretStoreError::TooLarge`] without being fetched.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SecretStoreError> {
        validate_key(key, "key")?;
        let limit = self.limits().max_value_bytes.saturating_add(OVERHEAD);
        // bytea holds at most 1 GB, so a larger limit is no limit.
        let limit_sql = i32::try_from(limit).unwrap_or(i32::MAX);
        let (pool, deadline) = (self.inner.db.values.clone(), self.deadline());
        let (tenant, k, fences) = (Arc::clone(&self.tenant), key.to_owned(), self.fences());
        let row = self.inner.db.block(async move {
            let what = format!("reading key {k:?} of tenant {tenant:?}");
            if fences.is_empty() {
                run!(pool, deadline, what, |c| ops::get(
                    c, &tenant, &k, limit_sql
                ))
            } else {
                run!(pool, deadline, what, |c| ops::get_fenced(
                    c, &tenant, &k, limit_sql, &fences
                ))
            }
        })?;
        match row {
            None => Ok(None),
            Some((size, None)) => Err(SecretStoreError::TooLarge(format!(
                "the stored value of key {key:?} of tenant {:?} is {size} bytes, over the limit \
                 of {limit} ({} for the value, {OVERHEAD} of format); it was not read (delete \
                 the key to recover)",
                self.tenant,
                self.limits().max_value_bytes
            ))),
            Some((_, Some(sealed))) => {
                file_format::open(&self.inner.key.cipher(), &self.tenant, key, &sealed).map(Some)
            }
        }
    }

    /// A replace that does not grow the value is one `UPDATE`; anything else, and every
    /// write while this handle holds a lock, one transaction that checks the quotas and
    /// proves the locks (see the crate docs).
    fn set(&self, key: &str, value: &[u8]) -> Result<(), SecretStoreError> {
        validate_key(key, "key")?;
        let limits = *self.limits();
        if value.len() > limits.max_value_bytes {
            return Err(SecretStoreError::TooLarge(format!(
                "the value for key {key:?} is {} bytes; the limit is {}",
                value.len(),
                limits.max_value_bytes
            )));
        }
        // Sealed here, on the host: the database never sees the value.
        let sealed = file_format::seal(&self.inner.key.cipher(), &self.tenant, key, value)?;
        let write_limits = ops::WriteLimits {
            max_keys: i64::try_from(limits.max_keys).unwrap_or(i64::MAX),
            max_tenant_bytes: i64::try_from(limits.max_tenant_bytes).unwrap_or(i64::MAX),
            max_total_bytes: i64::try_from(limits.max_total_bytes).unwrap_or(i64::MAX),
        };
        let (pool, deadline) = (self.inner.db.values.clone(), self.deadline());
        let (tenant, k, fences) = (Arc::clone(&self.tenant), key.to_owned(), self.fences());
        self.inner.db.block(async move {
            let what = format!("writing key {k:?} of tenant {tenant:?}");
            run!(pool, deadline, what, |c| ops::set(
                c,
                &tenant,
                &k,
                &sealed,
                write_limits,
                &fences
            ))
        })
    }

    fn delete(&self, key: &str) -> Result<(), SecretStoreError> {
        validate_key(key, "key")?;
        let (pool, deadline) = (self.inner.db.values.clone(), self.deadline());
        let (tenant, k, fences) = (Arc::clone(&self.tenant), key.to_owned(), self.fences());
        self.inner.db.block(async move {
            let what = format!("deleting key {k:?} of tenant {tenant:?}");
            run!(pool, deadline, what, |c| ops::delete(
                c, &tenant, &k, &fences
            ))
        })
    }

    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, SecretStoreError> {
        if !could_prefix_a_key(prefix) {
            return Ok(Vec::new());
        }
        // Key characters only: `_` is the one `LIKE` wildcard among them.
        let pattern = format!("{}%", prefix.replace('_', "\\_"));
        let (pool, deadline) = (self.inner.db.values.clone(), self.deadline());
        let tenant = Arc::clone(&self.tenant);
        self.inner.db.block(async move {
            let what = format!("listing the keys of tenant {tenant:?}");
            run!(pool, deadline, what, |c| ops::list(c, &tenant, &pattern))
        })
    }

    /// A session-level advisory lock on [`lock_key`]`(tenant, name)`, polled until
    /// `timeout` (one attempt at least, which may open a connection). Over the handle's
    /// [`Limits::max_held_locks`] it is [`SecretStoreError::TooLarge`] at once.
    fn lock(&self, name: &str, timeout: Duration) -> Result<SecretLock, SecretStoreError> {
        validate_key(name, "lock name")?;
        let max_held = self.limits().max_held_locks;
        let too_many_held = || {
            SecretStoreError::TooLarge(format!(
                "lock {name:?}: tenant {:?} already holds {max_held} locks at once, the limit; \
                 release one first",
                self.tenant
            ))
        };
        if self.held.load(Ordering::Acquire) >= max_held {
            return Err(too_many_held());
        }
        let key = lock_key(&self.tenant, name);
        // A release of this lock dropped in this process may still be on its way.
        lock::wait_for_releases(key);
        let pool = self.inner.db.locks.clone();
        let call_timeout = self.inner.db.options.call_timeout;
        let grace = self.inner.db.options.holder_grace;
        let what = format!("lock {name:?} of tenant {:?}", self.tenant);
        let (client, token) = self.inner.db.block(async move {
            let deadline = db::deadline_after(timeout);
            lock::acquire(&pool, key, deadline, call_timeout, grace, &what).await
        })?;
        let mut held = lock::HeldLock::new(
            client,
            self.inner.db.values.clone(),
            key,
            self.inner.db.handle().clone(),
            Arc::clone(&self.inner) as Arc<dyn Send + Sync>,
        );
        // Counted once held, so that handles queueing for one lock do not use up the budget;
        // past the limit the lock is released again at once.
        let reserved = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max_held).then_some(n + 1)
            });
        if reserved.is_err() {
            drop(held);
            return Err(too_many_held());
        }
        held.count_against(Arc::clone(&self.held));
        held.fence(Arc::clone(&self.fences), token, name);
        Ok(SecretLock::new(name, held))
    }
}
