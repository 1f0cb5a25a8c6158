//! The three ways to pay from the command line: `key set|status|delete`, `--route` and
//! `XAI_ROUTE`, `usage`, and quota errors whose action names the routes that could serve.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use provider_reference::{
    ApiHandle, AuthHandle, Billing, CredentialScope, QuotaFault, random_api_key,
};

use crate::support::{self, cli_to, json_of};

struct World {
    auth: AuthHandle,
    api: ApiHandle,
    state: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        let (auth, api) = support::servers();
        Self {
            auth,
            api,
            state: support::state_dir(),
        }
    }

    /// The CLI with the reference endpoints, the rail included.
    fn cli(&self) -> Command {
        let mut cmd = cli_to(self.state.path(), &self.auth, &self.api);
        cmd.env("XAI_SUBSCRIPTION_BASE", self.api.subscription_base());
        cmd
    }

    fn run(&self, args: &[&str]) -> serde_json::Value {
        json_of(&self.cli().args(args).output().unwrap())
    }

    /// `run` with the developer API as the default route (the manifest's default is the
    /// subscription rail).
    fn run_api_default(&self, args: &[&str]) -> serde_json::Value {
        json_of(
            &self
                .cli()
                .env("XAI_ROUTE", "api")
                .args(args)
                .output()
                .unwrap(),
        )
    }

    fn with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .cli()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn login(&self) {
        support::login(
            self.state.path(),
            &self.auth,
            &self.api,
            "default",
            3,
            "router",
        );
    }
}

#[test]
fn the_api_key_is_set_from_stdin_described_used_and_deleted_without_touching_the_login() {
    let w = World::new();
    let key = random_api_key();
    w.api.add_api_key(&key, 3u32);

    let none = w.run(&["key", "status"]);
    assert_eq!(
        (none["stored"].clone(), none["last_four"].clone()),
        (false.into(), serde_json::Value::Null),
        "{none}"
    );
    let out = w.with_stdin(&["key", "set"], "");
    assert_eq!(
        json_of(&out)["error"],
        "invalid_input",
        "an empty stdin stores nothing"
    );
    let out = w.with_stdin(&["key", "set"], &format!("{key}\n"));
    let set = json_of(&out);
    assert_eq!(set["ok"], true, "{set}");
    assert_eq!(set["last_four"], key[key.len() - 4..]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&key));

    // A key on the command line is refused without being repeated.
    let out = w.cli().args(["key", "set", &key]).output().unwrap();
    assert!(!out.status.success());
    for stream in [&out.stdout, &out.stderr] {
        assert!(
            !String::from_utf8_lossy(stream).contains(&key),
            "argv key echoed"
        );
    }

    let status = w.run(&["status"]);
    assert_eq!(status["connected"], false, "{status}");
    assert_eq!(status["api_key_stored"], true, "{status}");
    assert_eq!(status["default_route"], "subscription", "{status}");
    assert_eq!(
        status["usable_routes"],
        serde_json::json!(["api-key"]),
        "{status}"
    );

    // No login needed for the key's route; XAI_ROUTE makes it the default.
    let models = w.run(&["models", "--route", "api-key"]);
    assert_eq!(models["route"], "api-key", "{models}");
    assert!(
        models["models"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("xai/"),
        "{models}"
    );
    let reply = json_of(
        &w.cli()
            .env("XAI_ROUTE", "api-key")
            .args(["chat", "--json", "hello"])
            .output()
            .unwrap(),
    );
    assert_eq!(reply["route"], "api-key", "{reply}");
    let stats = w.api.stats();
    assert!(
        stats.api_key_requests >= 2 && stats.oauth_requests == 0,
        "{stats:?}"
    );

    // Login and logout leave the key; deleting the key leaves the login.
    w.login();
    assert_eq!(
        w.run(&["status"])["usable_routes"],
        serde_json::json!(["subscription", "api", "api-key"])
    );
    assert_eq!(w.run(&["key", "delete"])["stored"], false);
    assert_eq!(w.run(&["status"])["connected"], true);
    w.with_stdin(&["key", "set"], &key);
    assert_eq!(w.run(&["logout"])["was_connected"], true);
    assert_eq!(w.run(&["key", "status"])["stored"], true);
}

#[test]
fn routes_are_picked_per_call_and_quota_errors_name_the_alternatives() {
    let w = World::new();
    w.login();
    let key = random_api_key();
    w.api.add_api_key(&key, 3u32);
    w.with_stdin(&["key", "set"], &key);

    // The subscription rail, by flag: streamed upstream, its headers present.
    let reply = w.run(&["chat", "--json", "--route", "subscription", "on the rail"]);
    assert_eq!(reply["route"], "subscription", "{reply}");
    // Its default model (the catalogue's first) is in the Responses lane its catalogue says.
    let rail = w.api.rail_stats();
    assert!(rail.responses == 1 && rail.streams == 1, "{rail:?}");
    assert_eq!(rail.permission_denied, 0);

    // Free usage spent on `api`: quota_exhausted, the alternatives named, nothing retried
    // elsewhere; the key's route still serves.
    w.api.set_quota_fault(
        CredentialScope::OAuth,
        Some(QuotaFault::FreeUsageExhausted { status: 429 }),
    );
    let rail_before = w.api.rail_stats().requests;
    let err = w.run(&["chat", "--json", "--route", "api", "spent"]);
    assert_eq!(err["error"], "quota_exhausted", "{err}");
    assert_eq!(err["route"], "api", "{err}");
    let alternatives: Vec<&str> = err["alternatives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        alternatives.contains(&"subscription") && alternatives.contains(&"api-key"),
        "{err}"
    );
    let action = err["action"].as_str().unwrap();
    assert!(
        action.contains("--route") && action.contains("api-key"),
        "{action}"
    );
    assert_eq!(
        w.api.rail_stats().requests,
        rail_before,
        "switched routes silently"
    );
    assert_eq!(
        w.run(&["chat", "--json", "--route", "api-key", "still"])["route"],
        "api-key"
    );

    // A 402 spending limit likewise; a 429 rate limit keeps its wait.
    w.api
        .set_quota_fault(CredentialScope::OAuth, Some(QuotaFault::SPENDING_LIMIT_402));
    assert_eq!(
        w.run(&["chat", "--json", "--route", "api", "limit"])["error"],
        "quota_exhausted"
    );
    w.api.set_quota_fault(
        CredentialScope::OAuth,
        Some(QuotaFault::RateLimited {
            retry_after_seconds: Some(9),
        }),
    );
    let err = w.run(&["chat", "--json", "--route", "api", "slow"]);
    assert_eq!(
        (err["error"].clone(), err["retry_after_seconds"].clone()),
        ("rate_limited".into(), 9.into()),
        "{err}"
    );
    w.api.clear_quota_faults();

    // What is left: known on the rail, plainly unknown elsewhere or when the rail is mute.
    let usage = w.run(&["usage", "--route", "subscription"]);
    assert_eq!(usage["known"], true, "{usage}");
    assert!(usage["percent_used"].as_f64().is_some(), "{usage}");
    let usage = w.run(&["usage", "--route", "api"]);
    assert_eq!(
        (usage["route"].clone(), usage["known"].clone()),
        ("api".into(), false.into()),
        "{usage}"
    );
    assert!(!usage["detail"].as_str().unwrap().is_empty());
    w.api.set_rail_billing(Billing::NotFound);
    let usage = w.run(&["usage", "--route", "subscription"]);
    assert_eq!(usage["known"], false, "{usage}");
}

#[test]
fn the_subscription_origin_is_reachable_only_when_its_route_is_used() {
    let w = World::new();
    w.login();
    // `usage` of the API's route never contacts the rail; naming the route enables it.
    assert_eq!(w.run_api_default(&["usage"])["known"], false);
    assert_eq!(w.api.rail_stats().requests, 0);
    assert_eq!(w.run(&["usage", "--route", "subscription"])["known"], true);
    // `--model` with the rail's prefix names the route (and so enables it).
    let reply = w.run(&[
        "chat",
        "--json",
        "--model",
        "xai-grok-sub/grok-4.6",
        "by prefix",
    ]);
    assert_eq!(reply["route"], "subscription", "{reply}");
    // The same model in a request body, with no route named on the command line: the
    // rail was not enabled, so the sandbox refuses it.
    let body = w.state.path().join("request.json");
    std::fs::write(
        &body,
        r#"{"model":"xai-grok-sub/grok-4.6","messages":[{"role":"user","content":"no"}]}"#,
    )
    .unwrap();
    let err = w.run_api_default(&["chat", "--json", "--request", body.to_str().unwrap()]);
    assert_eq!(err["error"], "denied_by_sandbox", "{err}");
    assert!(
        err["action"]
            .as_str()
            .unwrap()
            .contains("XAI_SUBSCRIPTION_BASE"),
        "{err}"
    );
}
