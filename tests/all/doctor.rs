//! `provider-host doctor` against the reference servers: healthy, then with each drift a
//! real user meets switched on, each failing check naming its fix.

use serde_json::Value;

use crate::support::{self, cli_to};

fn doctor(cmd: &mut std::process::Command) -> (bool, Value) {
    doctor_with(cmd, &[])
}

fn doctor_with(cmd: &mut std::process::Command, flags: &[&str]) -> (bool, Value) {
    let out = cmd.args(["doctor", "--json"]).args(flags).output().unwrap();
    (out.status.success(), support::json_of(&out))
}

/// The check named `name`.
fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?}: {report}"))
}

#[test]
fn doctor_passes_a_healthy_setup_and_names_the_fix_of_each_drift() {
    let (auth, api) = support::servers();
    let state = support::state_dir();

    // Not signed in: the login check fails with its fix; the endpoints still answer.
    let (healthy, report) = doctor(&mut cli_to(state.path(), &auth, &api));
    assert!(!healthy, "{report}");
    assert_eq!(check(&report, "login")["status"], "fail", "{report}");
    assert!(
        check(&report, "login")["fix"]
            .as_str()
            .unwrap()
            .contains("login"),
        "{report}"
    );
    assert_eq!(
        check(&report, "endpoint oauth-issuer")["status"],
        "ok",
        "{report}"
    );
    assert!(
        check(&report, "endpoint oauth-issuer")["detail"]
            .as_str()
            .unwrap()
            .contains("device endpoint"),
        "{report}"
    );

    // Signed in: every check passes, the subscription route's first turn included.
    support::login(state.path(), &auth, &api, "default", 1, "doctor");
    let (healthy, report) = doctor(&mut cli_to(state.path(), &auth, &api));
    assert!(healthy, "{report}");
    assert_eq!(check(&report, "login")["status"], "ok", "{report}");
    assert_eq!(
        check(&report, "route subscription: catalogue")["status"],
        "ok",
        "{report}"
    );
    assert_eq!(
        check(&report, "route subscription: first turn")["status"],
        "ok",
        "{report}"
    );
    assert_eq!(
        check(&report, "route subscription: quota")["status"],
        "ok",
        "{report}"
    );
    // The human form: one line per check.
    let out = cli_to(state.path(), &auth, &api)
        .arg("doctor")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok    login: connected")),
        "{text}"
    );

    // The rail refuses the client version: the first turn fails, naming the variable.
    let (healthy, report) =
        doctor(cli_to(state.path(), &auth, &api).env("XAI_SUBSCRIPTION_CLIENT_VERSION", "0.1.0"));
    assert!(!healthy, "{report}");
    let turn = check(&report, "route subscription: first turn");
    assert_eq!(turn["status"], "fail", "{report}");
    assert!(
        turn["detail"]
            .as_str()
            .unwrap()
            .starts_with("client_outdated"),
        "{turn}"
    );
    assert!(
        turn["fix"]
            .as_str()
            .unwrap()
            .contains("XAI_SUBSCRIPTION_CLIENT_VERSION"),
        "{turn}"
    );
    // --no-chat skips it (and spends nothing).
    let (healthy, report) = doctor_with(
        cli_to(state.path(), &auth, &api).env("XAI_SUBSCRIPTION_CLIENT_VERSION", "0.1.0"),
        &["--no-chat"],
    );
    assert!(healthy, "{report}");
    assert_eq!(
        check(&report, "route subscription: first turn")["status"],
        "skip"
    );

    // An endpoint nobody answers on: its check fails, naming the variable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let (healthy, report) = doctor_with(
        cli_to(state.path(), &auth, &api).env("XAI_API_BASE", &dead),
        &["--no-chat"],
    );
    assert!(!healthy, "{report}");
    let endpoint = check(&report, "endpoint api-base");
    assert_eq!(endpoint["status"], "fail", "{report}");
    assert!(
        endpoint["fix"].as_str().unwrap().contains("XAI_API_BASE"),
        "{endpoint}"
    );
}
