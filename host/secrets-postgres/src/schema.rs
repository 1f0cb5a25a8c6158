//! The schema, embedded and versioned: `provider_secrets_schema` records the migrations
//! applied; opening the backend applies the missing ones, one replica at a time.

use provider_secrets::SecretStoreError;
use tokio_postgres::Client;

/// The schema version this code writes and reads: the number of migrations.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`. Never edit one that has
/// shipped: add the next.
const MIGRATIONS: &[&str] = &[
    // 1: values and tenants. `COLLATE "C"`: keys sort bytewise (as the file store lists them)
    // and a prefix `LIKE` may use the primary key. The checks repeat the names rules, so a row
    // no host would write cannot be stored.
    r#"
    CREATE TABLE provider_secrets_tenants (
        tenant text COLLATE "C" PRIMARY KEY
            CHECK (tenant ~ '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$')
    );
    CREATE TABLE provider_secrets_values (
        tenant text COLLATE "C" NOT NULL
            CHECK (tenant ~ '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$'),
        key text COLLATE "C" NOT NULL
            CHECK (key ~ '^[a-z0-9_-][a-z0-9._-]{0,127}$'),
        sealed bytea NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant, key)
    );
    COMMENT ON TABLE provider_secrets_values IS
        'provider-host secrets: values sealed by the host (XChaCha20-Poly1305, bound to tenant and key); the database never sees a value or the key';
    "#,
    // 2: the host's own spaces beside the tenants (`.host.<name>`, see
    // `PostgresBackend::host_space`): a leading `.` no tenant id may have.
    r#"
    ALTER TABLE provider_secrets_tenants
        DROP CONSTRAINT provider_secrets_tenants_tenant_check,
        ADD CONSTRAINT provider_secrets_tenants_tenant_check
            CHECK (tenant ~ '^([A-Za-z0-9_-][A-Za-z0-9._-]{0,63}|\.host\.[a-z0-9_-][a-z0-9._-]{0,31})$');
    ALTER TABLE provider_secrets_values
        DROP CONSTRAINT provider_secrets_values_tenant_check,
        ADD CONSTRAINT provider_secrets_values_tenant_check
            CHECK (tenant ~ '^([A-Za-z0-9_-][A-Za-z0-9._-]{0,63}|\.host\.[a-z0-9_-][a-z0-9._-]{0,31})$');
    "#,
    // 3: who holds which lock since when, on which incarnation of the server: the restart
    // fence of the `lock` module. Only lock keys and times, never a name or a value.
    r#"
    CREATE TABLE provider_secrets_lock_holds (
        lock_key bigint PRIMARY KEY,
        server_started timestamptz NOT NULL,
        held_since timestamptz NOT NULL
    );
    COMMENT ON TABLE provider_secrets_lock_holds IS
        'provider-host secret locks held now, or by a holder cut off without releasing: a lock held when the server restarted is granted again only after the restart grace';
    "#,
    // 4: byte quotas and the fencing token. Stored bytes per tenant and for the whole
    // database, kept by a trigger on every change of a value (whoever makes it), so a write
    // checks its quotas by reading two rows, in its own transaction. Each holding of a lock
    // gets a fresh fencing token; a write under a lock must still match it, and a holding
    // left behind (its holder cut off) is taken over only a grace after its last proof.
    r#"
    ALTER TABLE provider_secrets_tenants ADD COLUMN bytes bigint NOT NULL DEFAULT 0;
    INSERT INTO provider_secrets_tenants AS t (tenant, bytes)
        SELECT tenant, sum(octet_length(sealed)) FROM provider_secrets_values GROUP BY tenant
        ON CONFLICT (tenant) DO UPDATE SET bytes = EXCLUDED.bytes;
    CREATE TABLE provider_secrets_usage (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        bytes bigint NOT NULL
    );
    INSERT INTO provider_secrets_usage (bytes)
        SELECT coalesce(sum(octet_length(sealed)), 0) FROM provider_secrets_values;
    CREATE FUNCTION provider_secrets_count_bytes() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        delta bigint;
    BEGIN
        IF TG_OP = 'UPDATE' AND OLD.tenant = NEW.tenant THEN
            delta := octet_length(NEW.sealed) - octet_length(OLD.sealed);
            IF delta <> 0 THEN
                UPDATE provider_secrets_tenants SET bytes = bytes + delta WHERE tenant = NEW.tenant;
                UPDATE provider_secrets_usage SET bytes = bytes + delta;
            END IF;
            RETURN NULL;
        END IF;
        IF TG_OP <> 'INSERT' THEN
            UPDATE provider_secrets_tenants SET bytes = bytes - octet_length(OLD.sealed)
                WHERE tenant = OLD.tenant;
            UPDATE provider_secrets_usage SET bytes = bytes - octet_length(OLD.sealed);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO provider_secrets_tenants AS t (tenant, bytes)
                VALUES (NEW.tenant, octet_length(NEW.sealed))
                ON CONFLICT (tenant) DO UPDATE SET bytes = t.bytes + EXCLUDED.bytes;
            UPDATE provider_secrets_usage SET bytes = bytes + octet_length(NEW.sealed);
        END IF;
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER provider_secrets_count_bytes
        AFTER INSERT OR UPDATE OR DELETE ON provider_secrets_values
        FOR EACH ROW EXECUTE FUNCTION provider_secrets_count_bytes();
    CREATE SEQUENCE provider_secrets_fence;
    ALTER TABLE provider_secrets_lock_holds
        ADD COLUMN fence bigint NOT NULL DEFAULT 0,
        ADD COLUMN proved_at timestamptz;
    "#,
];

/// The two-key advisory lock (a space apart from the one-key locks of tenants) that
/// serialises migrations across replicas starting at once.
const MIGRATION_LOCK: (i32, i32) = (0x5048_5343, 1); // "PHSC", 1

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction (all or nothing). A database
/// already at a later version is refused: this host does not know what changed.
pub(crate) async fn migrate(client: &mut Client) -> Result<(), MigrateError> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&MIGRATION_LOCK.0, &MIGRATION_LOCK.1],
    )
    .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS provider_secrets_schema (
            version integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM provider_secrets_schema",
            &[],
        )
        .await?
        .get(0);
    if current > SCHEMA_VERSION {
        return Err(MigrateError::Newer(current));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i32 + 1;
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO provider_secrets_schema (version) VALUES ($1)",
            &[&version],
        )
        .await?;
        tracing::info!(version, "secret store schema migrated");
    }
    tx.commit().await?;
    Ok(())
}

/// Why [`migrate`] failed.
pub(crate) enum MigrateError {
    /// The database talked back with an error, or went away.
    Db(tokio_postgres::Error),
    /// The schema is at this later version.
    Newer(i32),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e)
    }
}

impl MigrateError {
    pub(crate) fn into_store_error(self) -> SecretStoreError {
        match self {
            Self::Db(e) => crate::error::unavailable("preparing the schema", &e),
            Self::Newer(v) => SecretStoreError::Config(format!(
                "the database's secret schema is at version {v}, newer than this host's \
                 {SCHEMA_VERSION}: a newer provider-host migrated it; upgrade this host"
            )),
        }
    }
}
