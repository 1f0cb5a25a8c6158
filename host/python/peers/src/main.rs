//! `reference-peers`: the reference authorization server (RFC 8628, rotating refresh
//! tokens, tiers) and model API of `provider-reference` in a process of their own, for the
//! Python package's tests (pytest cannot embed them).
//!
//! When ready, stdout gets one line: `{"issuer": ..., "api_base": ...,
//! "subscription_base": ...}`. Then each line on stdin is one JSON command, answered by
//! one JSON line on stdout (`{"ok": true, ...}` or `{"ok": false, "error": ...}`):
//!
//! - `{"op": "approve", "user_code": C, "tier": 1, "subject": S}`, `{"op": "deny",
//!   "user_code": C}`, `{"op": "expire", "user_code": C}`, `{"op": "latest_user_code"}`;
//! - `{"op": "stats"}`: the authorization server's counters (`refresh_redemptions`, ...);
//! - `{"op": "fault", "server": "api"|"rail"|"auth", "route": R, "fault": F}` queues one
//!   fault: `rate_limited`, `unavailable` (503), `unauthorized` (401), `bad_credentials`,
//!   `stall` (1.5 s before the answer), `access_denied`, `invalid_grant` (the token
//!   endpoint's OAuth errors), on the route `chat_completions`, `responses`, `models`,
//!   `token` or `refresh`;
//! - `{"op": "postgres"}`: a throwaway PostgreSQL cluster (started once, stopped when the
//!   process ends), answered with its `url` for `PROVIDER_HOST_SECRETS_URL`;
//! - `{"op": "tokens", "state_dir": D, "tenant": T}`: every token a scan must never find
//!   (the tenant's stored credentials, read with `PROVIDER_HOST_KEY`, and every bearer the
//!   model API and its subscription rail saw).
//!
//! Every server binds 127.0.0.1; the process exits when stdin closes, or after
//! `--max-seconds` (default 900).

// The cluster of host/secrets-postgres's tests (initdb in a temp dir, a loopback port).
#[path = "../../../secrets-postgres/tests/postgres/support.rs"]
mod pg;

use std::io::{BufRead, Write};
use std::time::Duration;

use provider_reference::{
    ApiConfig, ApiHandle, ApiServer, AuthConfig, AuthHandle, AuthServer, Fault, Lifetime, Route,
};
use provider_secrets::{KeySource, SecretStore, StoreConfig};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Command {
    Approve {
        user_code: String,
        #[serde(default = "one")]
        tier: u32,
        #[serde(default = "subject")]
        subject: String,
    },
    Deny {
        user_code: String,
    },
    Expire {
        user_code: String,
    },
    LatestUserCode,
    Stats,
    Fault {
        server: String,
        route: String,
        fault: String,
    },
    Postgres,
    Tokens {
        state_dir: String,
        #[serde(default = "tenant")]
        tenant: String,
    },
}

fn one() -> u32 {
    1
}
fn subject() -> String {
    "user-1".into()
}
fn tenant() -> String {
    "default".into()
}

struct Peers {
    auth: AuthHandle,
    api: ApiHandle,
    postgres: Option<pg::Cluster>,
}

fn route(name: &str) -> Result<Route, String> {
    Ok(match name {
        "chat_completions" => Route::ChatCompletions,
        "responses" => Route::Responses,
        "models" => Route::Models,
        "token" => Route::Token,
        "refresh" => Route::Refresh,
        other => return Err(format!("unknown route {other}")),
    })
}

fn fault(name: &str) -> Result<Fault, String> {
    Ok(match name {
        "rate_limited" => Fault::rate_limited(Some(7)),
        "unavailable" => Fault::unavailable_no_retry(),
        "unauthorized" => Fault::unauthorized(),
        "bad_credentials" => Fault::bad_credentials(),
        "access_denied" => Fault::oauth_error(400, "access_denied"),
        "invalid_grant" => Fault::oauth_error(400, "invalid_grant"),
        "stall" => Fault::StallBeforeHeaders(Duration::from_millis(1500)),
        other => return Err(format!("unknown fault {other}")),
    })
}

/// Every string of the stored credentials long enough to be a token.
fn stored_tokens(state_dir: &str, tenant: &str) -> Result<Vec<String>, String> {
    let store = SecretStore::open(StoreConfig::new(
        state_dir,
        KeySource::from_env_or_file(
            std::path::Path::new(state_dir)
                .join("keyring")
                .join("master.key"),
        ),
    ))
    .map_err(|e| e.to_string())?;
    let tenant = store.tenant(tenant).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for key in ["credentials", "api-key"] {
        if let Some(bytes) = tenant.get(key).map_err(|e| e.to_string())? {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) => collect_strings(&v, &mut out),
                Err(_) => out.push(String::from_utf8_lossy(&bytes).into_owned()),
            }
        }
    }
    out.retain(|s| s.len() >= 16);
    Ok(out)
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

impl Peers {
    fn handle(&mut self, command: Command) -> Result<Value, String> {
        let e = |e: provider_reference::Error| e.to_string();
        Ok(match command {
            Command::Approve {
                user_code,
                tier,
                subject,
            } => {
                self.auth.approve(&user_code, tier, &subject).map_err(e)?;
                json!({})
            }
            Command::Deny { user_code } => {
                self.auth.deny(&user_code).map_err(e)?;
                json!({})
            }
            Command::Expire { user_code } => {
                self.auth.expire(&user_code).map_err(e)?;
                json!({})
            }
            Command::LatestUserCode => json!({ "user_code": self.auth.latest_user_code() }),
            Command::Stats => {
                let s = self.auth.stats();
                json!({
                    "refresh_redemptions": s.refresh_redemptions,
                    "reuse_detections": s.reuse_detections,
                    "token_requests_refresh": s.token_requests_refresh,
                    "tokens_issued": s.tokens_issued,
                    "grants_revoked": s.grants_revoked,
                })
            }
            Command::Fault {
                server,
                route: r,
                fault: f,
            } => {
                let (r, f) = (route(&r)?, fault(&f)?);
                match server.as_str() {
                    "api" => self.api.push_fault(r, f),
                    "rail" => self.api.push_rail_fault(r, f),
                    "auth" => self.auth.push_fault(r, f),
                    other => return Err(format!("unknown server {other}")),
                }
                json!({})
            }
            Command::Postgres => {
                let cluster = self.postgres.get_or_insert_with(pg::Cluster::start);
                json!({ "url": cluster.url() })
            }
            Command::Tokens { state_dir, tenant } => {
                let mut tokens = stored_tokens(&state_dir, &tenant)?;
                for request in self
                    .api
                    .requests()
                    .into_iter()
                    .chain(self.api.rail_requests())
                {
                    if let Some(bearer) = request
                        .header("authorization")
                        .and_then(|h| h.strip_prefix("Bearer "))
                    {
                        tokens.push(bearer.to_owned());
                    }
                }
                tokens.sort();
                tokens.dedup();
                json!({ "tokens": tokens })
            }
        })
    }
}

fn main() {
    let mut max_seconds = 900u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next().and_then(|v| v.parse().ok())) {
            ("--max-seconds", Some(n)) => max_seconds = n,
            _ => {
                eprintln!("usage: reference-peers [--max-seconds N]");
                std::process::exit(2);
            }
        }
    }
    let max = Duration::from_secs(max_seconds);
    let lifetime = Lifetime { idle: max, max };
    let auth = AuthServer::start_background(AuthConfig {
        // The CLI's tests poll every second; so do these.
        interval: 1,
        lifetime,
        ..AuthConfig::default()
    })
    .expect("starting the authorization server");
    let mut api_config = ApiConfig::for_auth(&auth);
    api_config.lifetime = lifetime;
    let api = ApiServer::start_background(api_config).expect("starting the model API");
    let mut peers = Peers {
        auth,
        api,
        postgres: None,
    };

    let mut out = std::io::stdout().lock();
    let ready = json!({
        "issuer": peers.auth.issuer(),
        "api_base": peers.api.base_url(),
        "subscription_base": peers.api.subscription_base(),
    });
    let _ = writeln!(out, "{ready}");
    let _ = out.flush();
    std::thread::spawn(move || {
        std::thread::sleep(max);
        eprintln!("reference-peers: --max-seconds reached, exiting");
        std::process::exit(0);
    });
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Command>(&line) {
            Ok(command) => match peers.handle(command) {
                Ok(mut v) => {
                    v["ok"] = json!(true);
                    v
                }
                Err(e) => json!({"ok": false, "error": e}),
            },
            Err(e) => json!({"ok": false, "error": format!("bad command: {e}")}),
        };
        let _ = writeln!(out, "{answer}");
        let _ = out.flush();
    }
}
