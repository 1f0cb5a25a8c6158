//! The CLI contract: one JSON object per script-mode call, stable codes, exit status.

use crate::support;

#[test]
fn status_on_a_fresh_state_dir_is_not_connected() {
    let state = support::state_dir();
    let out = support::cli(state.path()).arg("status").output().unwrap();
    let json = support::json_of(&out);
    assert!(out.status.success(), "{json}");
    assert_eq!(json["ok"], true);
    assert_eq!(json["connected"], false);
    assert!(json["models"].as_array().unwrap().is_empty());
}

#[test]
fn plain_http_to_a_remote_host_is_refused_before_anything_runs() {
    let state = support::state_dir();
    for sub in [
        &["status"][..],
        &["start"],
        &["poll"],
        &["logout"],
        &["models"],
        &["chat", "hi"],
    ] {
        let out = support::cli(state.path())
            .args(sub)
            .env("XAI_OAUTH_ISSUER", "http://auth.example.com")
            .output()
            .unwrap();
        let json = support::json_of(&out);
        assert!(!out.status.success());
        assert_eq!(json["ok"], false);
        assert_eq!(json["error"], "config_error", "{sub:?}: {json}");
        assert!(json["message"].as_str().unwrap().contains("loopback"));
    }
    // Nothing was created: the refusal came before the store was opened.
    assert!(support::files_below(state.path()).is_empty());
}

#[test]
fn poll_without_a_pending_login_says_so() {
    let state = support::state_dir();
    let out = support::cli(state.path()).arg("poll").output().unwrap();
    let json = support::json_of(&out);
    assert!(!out.status.success());
    assert_eq!(json["error"], "not_connected", "{json}");
    assert!(json["action"].as_str().unwrap().contains("start"));
}
