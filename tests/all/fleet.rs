//! Replicas sharing one PostgreSQL database (`--secrets-url`): the race the backend exists
//! for. Three host processes with their own state directories serve one tenant; its access
//! token has expired; each gets 8 concurrent chats. The rotating refresh token must be
//! redeemed exactly once at the authorization server (the npm `oidc-provider`, which revokes
//! the grant on a reuse), and all 24 chats succeed. One serve key, made on one replica,
//! opens all three (the database holds the keys too); one revoked on another is refused at
//! once. Then `secrets rotate-key` re-encrypts
//! the database under a new key, and the fleet works on with it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::peers::{OidcServer, api_for};
use crate::support;

#[path = "../../host/secrets-postgres/tests/postgres/support.rs"]
mod pg;

/// A second test master key (hex), for the rotation.
const NEW_KEY_HEX: &str = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

struct Replica {
    state: tempfile::TempDir,
    child: Option<Child>,
    addr: String,
    key: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn chat(addr: &str, key: &str, text: &str) -> (u16, String) {
    let body = serde_json::json!({"model": "xai-grok/grok-4.3",
        "messages": [{"role": "user", "content": text}]})
    .to_string();
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write!(
        conn,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Authorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, raw)
}

#[test]
fn three_replicas_on_one_database_redeem_an_expired_login_once() {
    let cluster = pg::Cluster::start();
    let url = cluster.url();
    // Access tokens of 4 s: expired by the time the replicas serve.
    let oidc = OidcServer::start(&["--access-ttl", "4"]);
    let api = api_for(&oidc);
    let base = api.base_url();
    let command = |state: &std::path::Path, key: &str| {
        let mut cmd = support::cli(state);
        cmd.env("XAI_OAUTH_ISSUER", &oidc.issuer)
            .env("XAI_API_BASE", &base)
            .env("PROVIDER_HOST_SECRETS_URL", &url)
            .env("PROVIDER_HOST_KEY", key);
        cmd
    };
    let mut replicas: Vec<Replica> = (0..3)
        .map(|_| Replica {
            state: support::state_dir(),
            child: None,
            addr: String::new(),
            key: String::new(),
        })
        .collect();

    // One login, through the first replica's CLI: the credentials land in the database.
    let start = support::json_of(
        &command(replicas[0].state.path(), support::TEST_KEY_HEX)
            .arg("start")
            .output()
            .unwrap(),
    );
    oidc.approve(start["user_code"].as_str().unwrap(), "fleet", 2);
    let poll = support::json_of(
        &command(replicas[0].state.path(), support::TEST_KEY_HEX)
            .arg("poll")
            .output()
            .unwrap(),
    );
    assert_eq!(poll["status"], "connected", "{poll}");
    // The token was issued before `poll` returned: it expires within 4 s of now (timed
    // from here, not from `start`, which may take a while on a loaded machine).
    let logged_in = std::time::Instant::now();
    // Another replica sees it at once.
    let status = support::json_of(
        &command(replicas[2].state.path(), support::TEST_KEY_HEX)
            .arg("status")
            .output()
            .unwrap(),
    );
    assert_eq!(status["connected"], true, "{status}");
    // Nothing of the login is in any state directory.
    for r in &replicas {
        assert!(
            !support::files_below(r.state.path())
                .iter()
                .any(|f| f.starts_with(r.state.path().join("tenants"))
                    && f.to_string_lossy().contains("credentials")),
            "credentials in a state directory"
        );
    }

    // One serve key, made through the first replica: the database holds it (its salted
    // hash, in the host's space), so every replica accepts it.
    let serve_key = |r: &Replica| {
        let created = support::json_of(
            &command(r.state.path(), support::TEST_KEY_HEX)
                .args(["serve-key", "create"])
                .output()
                .unwrap(),
        );
        let key = created["key"]
            .as_str()
            .unwrap_or_else(|| panic!("{created}"));
        (key.to_owned(), created["id"].as_str().unwrap().to_owned())
    };
    let (fleet_key, fleet_key_id) = serve_key(&replicas[0]);
    let listed = support::json_of(
        &command(replicas[2].state.path(), support::TEST_KEY_HEX)
            .args(["serve-key", "list"])
            .output()
            .unwrap(),
    );
    assert_eq!(listed["keys"][0]["id"], fleet_key_id.as_str(), "{listed}");
    let start_serving = |r: &mut Replica, master: &str| {
        r.key = fleet_key.clone();
        let mut child = command(r.state.path(), master)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        r.addr = support::serve_base(&mut child)
            .trim_start_matches("http://")
            .trim_end_matches("/v1")
            .to_owned();
        r.child = Some(child);
    };
    for r in replicas.iter_mut() {
        start_serving(r, support::TEST_KEY_HEX);
    }

    // The access token expires; 24 chats at once, 8 per replica.
    let expired = logged_in + Duration::from_millis(4500);
    std::thread::sleep(expired.saturating_duration_since(std::time::Instant::now()));
    let before = oidc.stats()["refresh_redemptions"].as_u64().unwrap();
    let results: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..24)
            .map(|i| {
                let r = &replicas[i % 3];
                let (addr, key) = (r.addr.clone(), r.key.clone());
                s.spawn(move || chat(&addr, &key, &format!("chat {i}")))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, raw) in &results {
        assert_eq!(*status, 200, "{raw}");
    }
    let stats = oidc.stats();
    assert_eq!(
        stats["refresh_redemptions"].as_u64().unwrap() - before,
        1,
        "{stats}"
    );
    assert_eq!(stats["refresh_reuse_detected"], 0, "{stats}");

    // A key made on one replica and revoked on another is refused by a third at once.
    let (second, second_id) = serve_key(&replicas[1]);
    assert_eq!(chat(&replicas[2].addr, &second, "second key").0, 200);
    let revoked = support::json_of(
        &command(replicas[0].state.path(), support::TEST_KEY_HEX)
            .args(["serve-key", "revoke", &second_id])
            .output()
            .unwrap(),
    );
    assert_eq!(revoked["revoked"], true, "{revoked}");
    assert_eq!(chat(&replicas[2].addr, &second, "revoked key").0, 401);
    // No state directory holds a serve key.
    for r in &replicas {
        assert!(
            !support::files_below(r.state.path())
                .iter()
                .any(|f| f.starts_with(r.state.path().join("serve"))),
            "serve keys in a state directory"
        );
    }

    // Master-key rotation: stop the fleet, rotate (twice: a rerun changes nothing), restart
    // under the new key.
    for r in replicas.iter_mut() {
        if let Some(mut c) = r.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    let rotate = |r: &Replica| {
        support::json_of(
            &command(r.state.path(), support::TEST_KEY_HEX)
                .env("PROVIDER_HOST_NEW_KEY", NEW_KEY_HEX)
                .args(["secrets", "rotate-key"])
                .output()
                .unwrap(),
        )
    };
    let first = rotate(&replicas[0]);
    assert_eq!(first["ok"], true, "{first}");
    assert!(first["rotated"].as_u64().unwrap() >= 1, "{first}");
    let again = rotate(&replicas[0]);
    assert_eq!(again["rotated"], 0, "{again}");
    let old = support::json_of(
        &command(replicas[1].state.path(), support::TEST_KEY_HEX)
            .arg("status")
            .output()
            .unwrap(),
    );
    assert_ne!(
        old["connected"], true,
        "the old key still reads the database: {old}"
    );
    let new = support::json_of(
        &command(replicas[1].state.path(), NEW_KEY_HEX)
            .arg("status")
            .output()
            .unwrap(),
    );
    assert_eq!(new["connected"], true, "{new}");
    // The serve keys were rotated with the rest: the fleet's key is listed under the new key.
    let listed = support::json_of(
        &command(replicas[2].state.path(), NEW_KEY_HEX)
            .args(["serve-key", "list"])
            .output()
            .unwrap(),
    );
    let ids: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [fleet_key_id.as_str()], "{listed}");
    drop(cluster);
}
