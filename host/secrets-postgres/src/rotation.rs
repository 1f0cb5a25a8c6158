//! Master-key rotation of a database: the shared procedure of
//! [`provider_secrets::rotation`] over the database's rows.

use provider_secrets::rotation::{self, RotationReport, SealedValues};
use provider_secrets::{MasterKey, SecretStoreError};
use tokio::time::Instant;

use crate::config::PostgresOptions;
use crate::db::{Db, run};
use crate::ops;

/// Re-encrypts every value of every tenant in the database at `url` from `old` to `new`:
/// checked first (a value under neither key stops it before anything is written), then
/// each value rewritten with a compare-and-swap `UPDATE`, so a rotation that was interrupted
/// is completed by running it again with the same keys (see [`provider_secrets::rotation`]).
///
/// Stop every host using the database first (one still running writes under the old key),
/// then start them with `PROVIDER_HOST_KEY` set to the new key. Keys derived from the
/// master key change with it (the compile cache is rebuilt). `after_each` is called with
/// each rewritten (tenant, key); an error from it stops the rotation and is returned.
pub fn rotate_master_key(
    url: &str,
    old: &MasterKey,
    new: &MasterKey,
    after_each: &mut dyn FnMut(&str, &str) -> Result<(), SecretStoreError>,
) -> Result<RotationReport, SecretStoreError> {
    let db = Db::open(url, PostgresOptions::default())?;
    rotation::rotate(&Rows(&db), old, new, after_each)
}

/// The database's values as the rotation sees them.
struct Rows<'a>(&'a Db);

impl Rows<'_> {
    fn deadline(&self) -> Instant {
        crate::db::deadline_after(self.0.options.call_timeout)
    }
}

impl SealedValues for Rows<'_> {
    fn entries(&self) -> Result<Vec<(String, String)>, SecretStoreError> {
        let (pool, deadline) = (self.0.values.clone(), self.deadline());
        self.0.block(async move {
            run!(pool, deadline, "listing every stored value", |c| {
                ops::entries(c)
            })
        })
    }

    fn read(&self, tenant: &str, key: &str) -> Result<Option<Vec<u8>>, SecretStoreError> {
        let (pool, deadline) = (self.0.values.clone(), self.deadline());
        let (tenant, key) = (tenant.to_owned(), key.to_owned());
        self.0.block(async move {
            let what = format!("reading key {key:?} of tenant {tenant:?}");
            run!(pool, deadline, what, |c| ops::read(c, &tenant, &key))
        })
    }

    fn replace(
        &self,
        tenant: &str,
        key: &str,
        expected: &[u8],
        sealed: &[u8],
    ) -> Result<bool, SecretStoreError> {
        let (pool, deadline) = (self.0.values.clone(), self.deadline());
        let (tenant, key) = (tenant.to_owned(), key.to_owned());
        let (expected, sealed) = (expected.to_vec(), sealed.to_vec());
        self.0.block(async move {
            let what = format!("rewriting key {key:?} of tenant {tenant:?}");
            run!(pool, deadline, what, |c| ops::swap(
                c, &tenant, &key, &expected, &sealed
            ))
        })
    }
}
