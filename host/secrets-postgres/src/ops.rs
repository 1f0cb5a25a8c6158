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
/// Creates the tenant's row if needed and locks it until the transaction ends: writers
/// adding keys to one tenant take turns, so counting and inserting is one step.
const LOCK_TENANT: &str = "INSERT INTO provider_secrets_tenants (tenant) \
    VALUES ($1) ON CONFLICT (tenant) DO UPDATE SET tenant = EXCLUDED.tenant";
const COUNT: &str = "SELECT count(*), count(*) FILTER (WHERE key = $2) \
    FROM provider_secrets_values WHERE tenant = $1";
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

/// Replaces `key` with `sealed`: one `UPDATE` when it exists, else a transaction that locks
/// the tenant's row, counts its keys against `max_keys` and inserts.
pub(crate) async fn set(
    c: &mut Object,
    tenant: &str,
    key: &str,
    sealed: &[u8],
    max_keys: i64,
) -> Result<(), Failure> {
    let replace = c.prepare_cached(REPLACE).await?;
    if c.execute(&replace, &[&tenant, &key, &sealed]).await? == 1 {
        return Ok(());
    }
    let tx = c.transaction().await?;
    let lock_tenant = tx.prepare_cached(LOCK_TENANT).await?;
    tx.execute(&lock_tenant, &[&tenant]).await?;
    let count = tx.prepare_cached(COUNT).await?;
    let row = tx.query_one(&count, &[&tenant, &key]).await?;
    let (keys, exists): (i64, i64) = (row.get(0), row.get(1));
    if exists > 0 {
        // Written by another caller since our UPDATE: replace it.
        let replace = tx.prepare_cached(REPLACE).await?;
        tx.execute(&replace, &[&tenant, &key, &sealed]).await?;
    } else if keys >= max_keys {
        tx.rollback().await?;
        return Err(Failure::Store(SecretStoreError::TooLarge(format!(
            "tenant {tenant:?} already holds {keys} keys; the limit is {max_keys}"
        ))));
    } else {
        let insert = tx.prepare_cached(INSERT).await?;
        tx.execute(&insert, &[&tenant, &key, &sealed]).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn delete(c: &Object, tenant: &str, key: &str) -> Result<(), Failure> {
    let statement = c.prepare_cached(DELETE).await?;
    c.execute(&statement, &[&tenant, &key]).await?;
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
