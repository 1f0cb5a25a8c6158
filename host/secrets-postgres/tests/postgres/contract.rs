//! The backend contract (`provider_secrets::contract`) on PostgreSQL: one cluster per check.

use provider_secrets::contract::Harness;
use provider_secrets::rotation::RotationReport;
use provider_secrets::{Limits, MASTER_KEY_LEN, MasterKey, SecretBackend, SecretStoreError};
use provider_secrets_postgres::{PostgresBackend, PostgresOptions, rotate_master_key};

use crate::support::{Admin, Cluster};

/// The master key of the contract suite's database.
pub const HARNESS_KEY: [u8; MASTER_KEY_LEN] = [0x24; MASTER_KEY_LEN];

/// A cluster, its database, and a client that reads and writes the rows directly.
pub struct PgHarness {
    // Dropped in this order: the client, then the cluster (stopped by its Drop).
    pub admin: Admin,
    pub url: String,
    _cluster: Cluster,
}

pub fn pg_harness() -> PgHarness {
    let cluster = Cluster::start();
    PgHarness {
        admin: cluster.admin(),
        url: cluster.url(),
        _cluster: cluster,
    }
}

impl Harness for PgHarness {
    fn master_key(&self) -> [u8; MASTER_KEY_LEN] {
        HARNESS_KEY
    }

    fn open_with(&self, key: &[u8; MASTER_KEY_LEN], limits: Limits) -> Box<dyn SecretBackend> {
        let options = PostgresOptions {
            limits,
            ..PostgresOptions::default()
        };
        Box::new(
            PostgresBackend::connect_with(&self.url, MasterKey::from_bytes(*key), options)
                .unwrap_or_else(|e| panic!("opening the backend: {e}")),
        )
    }

    fn read_stored(&self, tenant: &str, key: &str) -> Option<Vec<u8>> {
        self.admin
            .query(
                "SELECT sealed FROM provider_secrets_values WHERE tenant = $1 AND key = $2",
                &[&tenant, &key],
            )
            .first()
            .map(|row| row.get(0))
    }

    fn write_stored(&self, tenant: &str, key: &str, bytes: &[u8]) {
        self.admin.execute_with(
            "INSERT INTO provider_secrets_values (tenant, key, sealed) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant, key) DO UPDATE SET sealed = EXCLUDED.sealed",
            &[&tenant, &key, &bytes],
        );
    }

    fn rotate(
        &self,
        old: &[u8; MASTER_KEY_LEN],
        new: &[u8; MASTER_KEY_LEN],
        after_each: &mut dyn FnMut(&str, &str) -> Result<(), SecretStoreError>,
    ) -> Result<RotationReport, SecretStoreError> {
        rotate_master_key(
            &self.url,
            &MasterKey::from_bytes(*old),
            &MasterKey::from_bytes(*new),
            after_each,
        )
    }
}

provider_secrets::backend_contract_tests!(pg_harness());
