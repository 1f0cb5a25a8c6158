//! The statements, one async function per operation on a pooled connection. Each is
//! idempotent (see `db::run!`), and prepares its statements once per connection.

use deadpool_postgres::Object;
use provider_secrets::SecretStoreError;

use crate::error::Failure;

/// The stored length always; the bytes only when within `$3` (an oversized value is never
/// fetched whole).
const GET: &str = "SELECT octet_length(sealed), \
    CASE WHEN octet_length(sealed) <= $3 THEN sealed END \
    FROM provider_secrets_values WHERE tenant = $1 AND key = $2";
const REPLACE: &str = "UPDATE provider_secrets_values \
    SET sealed = $3, updated_at = now() WHERE tenant = $1 AND key = $2";
/// A replace that does not grow the value: no quota can refuse it, so it needs no
/// transaction.
const REPLACE_NOT_GROWING: &str = "UPDATE provider_secrets_values \
    SET sealed = $3::bytea, updated_at = now() \
    WHERE tenant = $1 AND key = $2 AND octet_length(sealed) >= octet_length($3::bytea)";
/// Locks the value's row (when it exists) and tells its stored size. Rows are locked in
/// one order everywhere (value, then tenant, then the usage row; the trigger follows it).
const LOCK_VALUE: &str = "SELECT octet_length(sealed) FROM provider_secrets_values \
    WHERE tenant = $1 AND key = $2 FOR UPDATE";
/// Creates the tenant's row if needed and locks it until the transaction ends: writers
/// of one tenant take turns, so counting (keys, bytes) and writing is one step. Answers
/// the tenant's stored bytes (kept by the trigger of schema version 4).
const LOCK_TENANT: &str = "INSERT INTO provider_secrets_tenants AS t (tenant) \
    VALUES ($1) ON CONFLICT (tenant) DO UPDATE SET tenant = t.tenant RETURNING t.bytes";
/// The tenant's keys, and the stored size of `$2` (-1: absent).
const COUNT: &str = "SELECT count(*), coalesce(max(octet_length(sealed)) FILTER (WHERE key = $2), -1)::int8 \
    FROM provider_secrets_values WHERE tenant = $1";
/// Every tenant's stored bytes, locked until the transaction ends (a growing write only).
const LOCK_USAGE: &str = "SELECT bytes FROM provider_secrets_usage FOR UPDATE";
/// The proof that a lock is still ours: its holding still carries our fencing token. Also
/// records the proof's time (the grace a takeover waits counts from it) and, in a
/// transaction, row-locks the holding until the commit, so a takeover waits for the write.
const PROVE: &str = "UPDATE provider_secrets_lock_holds SET proved_at = clock_timestamp() \
    WHERE lock_key = $1 AND fence = $2";
const INSERT: &str =
    "INSERT INTO provider_secrets_values (tenant, key, sealed) VALUES ($1, $2, $3)";
const DELETE: &str = "DELETE FROM provider_secrets_values WHERE tenant = $1 AND key = $2";
/// `$2` is a `LIKE` pattern: the prefix (key characters only, `_` escaped) and `%`.
const LIST: &str = "SELECT key FROM provider_secrets_values \
    WHERE tenant = $1 AND key LIKE $2 ORDER BY key";
const ENTRIES: &str = "SELECT tenant, key FROM provider_secrets_values ORDER BY tenant, key";
const READ: &str = "SELECT sealed FROM provider_secrets_values WHERE tenant = $1 AND key = $2";
/// A compare-and-swap: only while the stored bytes are still `$3`.
const SWAP: &str = "UPDATE provider_secrets_values SET sealed = $4, updated_at = now() \
    WHERE tenant = $1 AND key = $2 AND sealed = $3";

/// A lock held through the tenant handle, which its reads and writes must prove.
#[derive(Debug, Clone)]
pub(crate) struct Fence {
    /// The lock's key ([`crate::lock_key`]).
    pub(crate) key: i64,
    /// The fencing token its holding got.
    pub(crate) token: i64,
    /// The lock's name, for errors.
    pub(crate) name: std::sync::Arc<str>,
}

/// What a write must stay within.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteLimits {
    pub(crate) max_keys: i64,
    pub(crate) max_tenant_bytes: i64,
    pub(crate) max_total_bytes: i64,
}

/// Proves every lock of `fences` (sorted by key: one locking order) on `c`: each holding
/// still carries its token. A lock taken over since is [`SecretStoreError::LockLost`].
async fn prove(
    c: &impl deadpool_postgres::GenericClient,
    tenant: &str,
    fences: &[Fence],
) -> Result<(), Failure> {
    if fences.is_empty() {
        return Ok(());
    }
    let statement = c.prepare_cached(PROVE).await?;
    for f in fences {
        if c.execute(&statement, &[&f.key, &f.token]).await? != 1 {
            return Err(Failure::Store(SecretStoreError::LockLost(format!(
                "lock {:?} of tenant {tenant:?} was taken over by another holder after this \
                 one lost it (its database connection broke); nothing was done under it: \
                 release it and start over",
                f.name
            ))));
        }
    }
    Ok(())
}

/// A read under the locks of `fences`: proved first (before the plugin acts on what it
/// reads, e.g. redeems a refresh token), then [`get`].
pub(crate) async fn get_fenced(
    c: &Object,
    tenant: &str,
    key: &str,
    limit: i32,
    fences: &[Fence],
) -> Result<Option<Stored>, Failure> {
    prove(c, tenant, fences).await?;
    get(c, tenant, key, limit).await
}

/// A stored value as `get` reads it: its length, and its bytes when within the limit.
pub(crate) type Stored = (i32, Option<Vec<u8>>);

/// One round trip (after the first use of the connection, which prepares the statement).
pub(crate) async fn get(
    c: &Object,
    tenant: &str,
    key: &str,
    limit: i32,
) -> Result<Option<Stored>, Failure> {
    let statement = c.prepare_cached(GET).await?;
    let row = c.query_opt(&statement, &[&tenant, &key, &limit]).await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Replaces `key` with `sealed`. Outside any lock, a replace that does not grow the value
/// is one `UPDATE`. Otherwise one transaction: proves the locks of `fences`, locks the
/// value's row and the tenant's, counts keys and bytes against `limits` (the store's total
/// too, its row locked, when the write grows the tenant), and writes. A refusal writes
/// nothing.
pub(crate) async fn set(
    c: &mut Object,
    tenant: &str,
    key: &str,
    sealed: &[u8],
    limits: WriteLimits,
    fences: &[Fence],
) -> Result<(), Failure> {
    if fences.is_empty() {
        let replace = c.prepare_cached(REPLACE_NOT_GROWING).await?;
        if c.execute(&replace, &[&tenant, &key, &sealed]).await? == 1 {
            return Ok(());
        }
    }
    // Rows are locked value first, then tenant: a key that appears between the two looks
    // (another writer added it) is started over, never locked after its tenant.
    let (tx, old, tenant_bytes) = loop {
        let tx = c.transaction().await?;
        prove(&tx, tenant, fences).await?;
        let lock_value = tx.prepare_cached(LOCK_VALUE).await?;
        let locked: Option<i32> = tx
            .query_opt(&lock_value, &[&tenant, &key])
            .await?
            .map(|r| r.get(0));
        let lock_tenant = tx.prepare_cached(LOCK_TENANT).await?;
        let tenant_bytes: i64 = tx.query_one(&lock_tenant, &[&tenant]).await?.get(0);
        if let Some(size) = locked {
            break (tx, Some(i64::from(size)), tenant_bytes);
        }
        // Absent when we looked: count the keys, under the tenant's lock we now hold.
        let count = tx.prepare_cached(COUNT).await?;
        let row = tx.query_one(&count, &[&tenant, &key]).await?;
        let (keys, size): (i64, i64) = (row.get(0), row.get(1));
        if size >= 0 {
            tx.rollback().await?;
            continue;
        }
        if keys >= limits.max_keys {
            return Err(Failure::Store(SecretStoreError::TooLarge(format!(
                "tenant {tenant:?} already holds {keys} keys; the limit is {}",
                limits.max_keys
            ))));
        }
        break (tx, None, tenant_bytes);
    };
    let new = sealed.len() as i64;
    let growth = new - old.unwrap_or(0);
    // A write that does not grow the tenant is never refused: it only makes room.
    if growth > 0 {
        let after = tenant_bytes.saturating_add(growth);
        if after > limits.max_tenant_bytes {
            return Err(Failure::Store(SecretStoreError::QuotaExceeded(format!(
                "writing key {key:?} would bring tenant {tenant:?} to {after} stored bytes, \
                 over its quota of {} bytes (max_tenant_bytes); delete values to make room",
                limits.max_tenant_bytes
            ))));
        }
        if limits.max_total_bytes < i64::MAX {
            let lock_usage = tx.prepare_cached(LOCK_USAGE).await?;
            let total: i64 = tx.query_one(&lock_usage, &[]).await?.get(0);
            if total.saturating_add(growth) > limits.max_total_bytes {
                // The total is not shown: it tells of other tenants.
                return Err(Failure::Store(SecretStoreError::QuotaExceeded(format!(
                    "the host's storage quota of {} bytes for all tenants together \
                     (max_total_bytes) is reached; nothing was written",
                    limits.max_total_bytes
                ))));
            }
        }
    }
    let write = tx
        .prepare_cached(if old.is_some() { REPLACE } else { INSERT })
        .await?;
    tx.execute(&write, &[&tenant, &key, &sealed]).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes `key`; under the locks of `fences`, in a transaction that proves them first.
pub(crate) async fn delete(
    c: &mut Object,
    tenant: &str,
    key: &str,
    fences: &[Fence],
) -> Result<(), Failure> {
    if fences.is_empty() {
        let statement = c.prepare_cached(DELETE).await?;
        c.execute(&statement, &[&tenant, &key]).await?;
        return Ok(());
    }
    let tx = c.transaction().await?;
    prove(&tx, tenant, fences).await?;
    let statement = tx.prepare_cached(DELETE).await?;
    tx.execute(&statement, &[&tenant, &key]).await?;
    tx.commit().await?;
    Ok(())
}

/// The keys of `tenant` matching the `LIKE` pattern, sorted bytewise (`COLLATE "C"`).
pub(crate) async fn list(c: &Object, tenant: &str, pattern: &str) -> Result<Vec<String>, Failure> {
    let statement = c.prepare_cached(LIST).await?;
    let rows = c.query(&statement, &[&tenant, &pattern]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Every (tenant, key) holding a value (rotation).
pub(crate) async fn entries(c: &Object) -> Result<Vec<(String, String)>, Failure> {
    let rows = c.query(ENTRIES, &[]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The sealed bytes of one value, whatever their size (rotation).
pub(crate) async fn read(c: &Object, tenant: &str, key: &str) -> Result<Option<Vec<u8>>, Failure> {
    let row = c.query_opt(READ, &[&tenant, &key]).await?;
    Ok(row.map(|r| r.get(0)))
}

/// Replaces one value's sealed bytes if they are still `expected` (rotation).
pub(crate) async fn swap(
    c: &Object,
    tenant: &str,
    key: &str,
    expected: &[u8],
    sealed: &[u8],
) -> Result<bool, Failure> {
    Ok(c.execute(SWAP, &[&tenant, &key, &expected, &sealed])
        .await?
        == 1)
}
