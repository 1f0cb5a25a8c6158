//! `provider-host conformance`: the built component passes every scenario, the report
//! lists them all, `--only` narrows the run, and the suite needs no XAI_* configuration.

use provider_conformance::SCENARIOS;
use serde_json::Value;

use crate::support;

fn failures(report: &Value) -> Vec<String> {
    report["scenarios"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["ok"] != true)
        .map(|s| format!("{}: {}", s["name"], s["message"]))
        .collect()
}

#[test]
fn the_built_component_passes_every_scenario() {
    let state = support::state_dir();
    let out = support::cli(state.path())
        .args(["conformance", "--json"])
        .output()
        .unwrap();
    let report = support::json_of(&out);
    assert!(
        out.status.success() && report["ok"] == true,
        "failed scenarios: {:#?}\nstderr: {}",
        failures(&report),
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<&str> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
    assert_eq!(names, expected);
    for name in [
        "device_flow_tier_1",
        "device_flow_tier_4",
        "denial",
        "expiry",
        "slow_down_pacing",
        "pending_without_server_call",
        "refresh_rotation",
        "concurrent_refresh_single_flight",
        "logout_revokes",
        "models_cache_and_force",
        "chat_completions_lane",
        "responses_lane",
        "streaming_both_lanes",
        "cut_stream",
        "unauthorized_refresh_retry",
        "forbidden_variants",
        "rate_limited_retry_after",
        "upstream_5xx_backoff",
        "hostile_bodies",
        "sandbox_denial",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert_eq!(report["passed"], SCENARIOS.len());
    assert_eq!(report["failed"], 0);
    for s in report["scenarios"].as_array().unwrap() {
        assert!(s["millis"].is_u64(), "{s}");
        assert!(s["message"].is_null(), "{s}");
    }
    // Progress went to stderr, one line per scenario.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.lines().filter(|l| l.contains("PASS")).count(),
        SCENARIOS.len(),
        "{stderr}"
    );
}

#[test]
fn only_runs_one_scenario_and_ignores_the_xai_configuration() {
    let state = support::state_dir();
    // A configuration every other command refuses: the suite brings its own endpoints.
    let out = support::cli(state.path())
        .args(["conformance", "--json", "--only", "denial"])
        .env("XAI_OAUTH_ISSUER", "http://auth.example.com")
        .output()
        .unwrap();
    let report = support::json_of(&out);
    assert!(out.status.success(), "{report}");
    let scenarios = report["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 1, "{report}");
    assert_eq!(scenarios[0]["name"], "denial");
    assert_eq!(scenarios[0]["ok"], true, "{report}");
    assert_eq!(
        (report["passed"].clone(), report["failed"].clone()),
        (1.into(), 0.into())
    );

    // The table form ends with the summary line.
    let out = support::cli(state.path())
        .args(["conformance", "--only", "expiry"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines[1].starts_with("expiry") && lines[1].contains("PASS"),
        "{stdout}"
    );
    assert_eq!(lines.last(), Some(&"1 passed, 0 failed"), "{stdout}");
}

#[test]
fn unknown_scenarios_and_foreign_components_fail_clearly() {
    let state = support::state_dir();
    let out = support::cli(state.path())
        .args(["conformance", "--only", "no_such_scenario"])
        .output()
        .unwrap();
    let json = support::json_of(&out);
    assert!(!out.status.success());
    assert_eq!(json["error"], "config_error", "{json}");
    assert!(
        json["message"].as_str().unwrap().contains("sandbox_denial"),
        "{json}"
    );

    let bogus = state.path().join("not-a-component.wasm");
    std::fs::write(&bogus, b"\0asm\x01\0\0\0").unwrap();
    let out = support::cli(state.path())
        .args(["conformance", "--only", "denial", "--plugin"])
        .arg(&bogus)
        .output()
        .unwrap();
    let json = support::json_of(&out);
    assert!(!out.status.success());
    assert_eq!(json["error"], "plugin_error", "{json}");
}

#[test]
fn a_misbehaving_component_fails_with_a_non_zero_exit() {
    let hostile = env!("HOSTILE_GUEST_COMPONENT");
    if hostile.is_empty() {
        return; // PROVIDER_PLUGIN_WASM builds carry no hostile guest.
    }
    let state = support::state_dir();
    let out = support::cli(state.path())
        .args([
            "conformance",
            "--json",
            "--only",
            "denial",
            "--only",
            "expiry",
        ])
        .args(["--plugin", hostile])
        .output()
        .unwrap();
    let report = support::json_of(&out);
    assert!(!out.status.success(), "{report}");
    assert_eq!(report["ok"], false);
    assert_eq!(report["failed"], 2, "{report}");
    for s in report["scenarios"].as_array().unwrap() {
        let message = s["message"].as_str().unwrap();
        assert!(message.contains("expected"), "{message}");
    }
}
