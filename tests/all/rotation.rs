//! `secrets rotate-key` on the file store: every value (the login, the API key, `serve`'s
//! key hashes) re-encrypted under the new key, the key file replaced last, a rerun a no-op.

use crate::support::{self, cli_to, json_of};

const NEW_KEY_HEX: &str = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";

#[test]
fn rotating_the_master_key_keeps_every_value_and_is_safe_to_rerun() {
    let (auth, api) = support::servers();

    // The key in PROVIDER_HOST_KEY: the operator sets the new one afterwards.
    let state = support::state_dir();
    support::login(state.path(), &auth, &api, "default", 2, "rotor");
    let created = json_of(
        &cli_to(state.path(), &auth, &api)
            .args(["serve-key", "create"])
            .output()
            .unwrap(),
    );
    assert_eq!(created["ok"], true, "{created}");
    let rotate = || {
        json_of(
            &cli_to(state.path(), &auth, &api)
                .env("PROVIDER_HOST_NEW_KEY", NEW_KEY_HEX)
                .args(["secrets", "rotate-key"])
                .output()
                .unwrap(),
        )
    };
    let first = rotate();
    assert_eq!(first["ok"], true, "{first}");
    assert!(
        first["rotated"].as_u64().unwrap() >= 2,
        "login and serve key: {first}"
    );
    assert_eq!(first["key_file_replaced"], false);
    assert!(
        first["next"]
            .as_str()
            .unwrap()
            .contains("PROVIDER_HOST_KEY"),
        "{first}"
    );
    let again = rotate();
    assert_eq!(
        (again["rotated"].clone(), again["already_new"].clone()),
        (0.into(), first["values"].clone()),
        "{again}"
    );
    let with_new = |args: &[&str]| {
        json_of(
            &cli_to(state.path(), &auth, &api)
                .env("PROVIDER_HOST_KEY", NEW_KEY_HEX)
                .args(args)
                .output()
                .unwrap(),
        )
    };
    assert_eq!(with_new(&["status"])["connected"], true);
    assert_eq!(
        with_new(&["serve-key", "list"])["keys"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let old = json_of(
        &cli_to(state.path(), &auth, &api)
            .arg("status")
            .output()
            .unwrap(),
    );
    assert_ne!(
        old["connected"], true,
        "the old key still reads the store: {old}"
    );

    // The key in a key file: the file is replaced, last.
    let state = support::state_dir();
    let keyfile = |cmd: &mut std::process::Command| {
        cmd.env_remove("PROVIDER_HOST_KEY");
    };
    let mut start = cli_to(state.path(), &auth, &api);
    keyfile(&mut start);
    let prompt = json_of(&start.arg("start").output().unwrap());
    auth.approve(prompt["user_code"].as_str().unwrap(), 2, "rotor-file")
        .unwrap();
    let mut poll = cli_to(state.path(), &auth, &api);
    keyfile(&mut poll);
    assert_eq!(
        json_of(&poll.arg("poll").output().unwrap())["status"],
        "connected"
    );
    let key_path = state.path().join("keyring").join("master.key");
    let before = std::fs::read(&key_path).unwrap();
    let mut rot = cli_to(state.path(), &auth, &api);
    keyfile(&mut rot);
    let report = json_of(
        &rot.env("PROVIDER_HOST_NEW_KEY", NEW_KEY_HEX)
            .args(["secrets", "rotate-key"])
            .output()
            .unwrap(),
    );
    assert_eq!(report["key_file_replaced"], true, "{report}");
    let after = std::fs::read(&key_path).unwrap();
    assert_ne!(before, after);
    assert_eq!(hex_of(&after), NEW_KEY_HEX);
    let mut status = cli_to(state.path(), &auth, &api);
    keyfile(&mut status);
    assert_eq!(
        json_of(&status.arg("status").output().unwrap())["connected"],
        true
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
