//! TLS to the database: a cluster with `ssl=on` and a certificate from a throwaway CA.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use provider_secrets::{MasterKey, SecretStoreError, TenantBackend};
use provider_secrets_postgres::{PostgresBackend, PostgresOptions};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

use crate::contract::HARNESS_KEY;
use crate::support::{Cluster, DATABASE};

/// A CA (its PEM) and a server certificate for `names` signed by it (PEM, key PEM).
fn ca_and_server(names: &[&str]) -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    (ca.pem(), server.pem(), server_key.serialize_pem())
}

/// A cluster serving TLS with a certificate for `names`; answers it and the CA's PEM file.
fn tls_cluster(names: &[&str]) -> (Cluster, PathBuf) {
    let (ca, cert, key) = ca_and_server(names);
    let cluster = Cluster::start_with(
        &[
            ("ssl", "on"),
            ("ssl_cert_file", "server.crt"),
            ("ssl_key_file", "server.key"),
        ],
        |data: &Path| {
            fs::write(data.join("server.crt"), &cert).unwrap();
            fs::write(data.join("server.key"), &key).unwrap();
            // postgres refuses a key others may read.
            fs::set_permissions(data.join("server.key"), fs::Permissions::from_mode(0o600))
                .unwrap();
        },
    );
    let ca_file = cluster.dir().join("ca.pem");
    fs::write(&ca_file, ca).unwrap();
    (cluster, ca_file)
}

fn connect(url: &str) -> Result<PostgresBackend, SecretStoreError> {
    PostgresBackend::connect_with(
        url,
        MasterKey::from_bytes(HARNESS_KEY),
        PostgresOptions::default(),
    )
}

/// How many of this host's sessions (application_name provider-host) use TLS, and how many
/// do not.
fn sessions_by_tls(cluster: &Cluster) -> (i64, i64) {
    let row = &cluster.admin_on("postgres").query(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
         FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'provider-host'",
        &[],
    )[0];
    (row.get(0), row.get(1))
}

#[test]
fn sslmode_require_uses_tls_and_verifies_the_server() {
    let (cluster, ca_file) = tls_cluster(&["localhost", "127.0.0.1"]);
    let url = cluster.url_with(
        DATABASE,
        &format!("sslmode=require&sslrootcert={}", ca_file.display()),
    );
    let backend = connect(&url).unwrap();
    assert!(
        backend.database().ends_with("(tls)"),
        "{}",
        backend.database()
    );
    let t = backend.tenant("tenant-1").unwrap();
    t.set("k", b"over tls").unwrap();
    assert_eq!(t.get("k").unwrap().unwrap(), b"over tls");
    let (tls, plain) = sessions_by_tls(&cluster);
    assert!(tls >= 1 && plain == 0, "tls {tls}, plaintext {plain}");

    // By host name too (the certificate names localhost).
    let by_name = url.replace("127.0.0.1", "localhost");
    assert_eq!(
        connect(&by_name)
            .unwrap()
            .tenant("tenant-1")
            .unwrap()
            .get("k")
            .unwrap()
            .unwrap(),
        b"over tls"
    );

    // Another CA: the server is not trusted.
    let (other_ca, _, _) = ca_and_server(&["localhost"]);
    let other_file = cluster.dir().join("other-ca.pem");
    fs::write(&other_file, other_ca).unwrap();
    let untrusted = cluster.url_with(
        DATABASE,
        &format!("sslmode=require&sslrootcert={}", other_file.display()),
    );
    let err = connect(&untrusted).unwrap_err();
    assert!(matches!(err, SecretStoreError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains(cluster.password()), "{err}");

    // Without sslmode the loopback connection is plaintext (allowed on loopback only).
    drop(backend);
    let plain = connect(&cluster.url()).unwrap();
    plain.tenant("tenant-1").unwrap().get("k").unwrap();
    let (_, plain_sessions) = sessions_by_tls(&cluster);
    assert!(plain_sessions >= 1);
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let (cluster, ca_file) = tls_cluster(&["db.example"]);
    let url = cluster.url_with(
        DATABASE,
        &format!("sslmode=verify-full&sslrootcert={}", ca_file.display()),
    );
    let err = connect(&url).unwrap_err();
    assert!(matches!(err, SecretStoreError::Unavailable(_)), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}

#[test]
fn sslmode_require_to_a_server_without_tls_fails() {
    let cluster = Cluster::start();
    let err =
        connect(&cluster.url_with(DATABASE, "sslmode=require&sslrootcert=system")).unwrap_err();
    assert!(matches!(err, SecretStoreError::Unavailable(_)), "{err:?}");
}
