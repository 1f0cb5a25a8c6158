//! `provider-host doctor` (and the Python package's `doctor()`): one command to run when
//! something is off. Each check runs
//! against the live configuration (the environment, `--route`, the stored login) and says
//! what it saw and, when it failed, the plain fix.
//!
//! Checks, in order: the configuration and the sandbox's allowlist; each endpoint the
//! plugin may reach (and OpenID discovery where an endpoint is an authorization server);
//! the stored login; each usable route's catalogue (forced, past the cache); the version
//! gate of routes that have one, by one minimal streamed turn (it spends a token or two,
//! which the output says up front; `--no-chat` skips it); each usable route's quota.
//!
//! Only the endpoint checks are the host's own requests (a `GET` of each allowed endpoint
//! and of its `/.well-known/openid-configuration`, nothing sent but the path); everything
//! else goes through the plugin's exports, as every other command does.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use provider_runtime::bindings::types::{
    ChatChunk, ChatRequest, ConnectionStatus, Message, PluginManifest, Role, SettingKind,
};
use provider_runtime::config::Reach;
use provider_runtime::{HostError, Session};
use serde::Serialize;
use serde_json::{Value, json};

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    Ok,
    /// Works, but something is worth knowing (an expired access token that will refresh).
    Warn,
    Fail,
    /// Not run (its prerequisite failed or it was switched off).
    Skip,
}

#[derive(Debug, Serialize)]
struct Check {
    name: String,
    status: Verdict,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

#[derive(Default)]
struct Report {
    checks: Vec<Check>,
    /// The plugin's environment variables, for the fixes the caller's surface words.
    vars: crate::PluginVars,
    /// Whose words a failed call's fix uses.
    surface: crate::Surface,
}

impl Report {
    fn add(&mut self, name: impl Into<String>, status: Verdict, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            status,
            detail: detail.into(),
            fix: None,
        });
    }

    fn fail(&mut self, name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            status: Verdict::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        });
    }

    /// A failed export call: its message, and the action the caller's surface words for
    /// its code.
    fn failed_call(&mut self, name: impl Into<String>, e: &HostError) {
        self.fail(
            name,
            format!("{}: {e}", e.code()),
            crate::action::action(e, &self.vars, self.surface),
        );
    }
}

/// Settle for this long per endpoint: a doctor that hangs helps nobody.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs every check; the JSON report (`ok` is false when any check failed). Fixes of
/// failed calls are worded for `surface`.
pub async fn run(
    session: &mut Session,
    manifest: &PluginManifest,
    with_chat: bool,
    surface: crate::Surface,
) -> Value {
    let mut report = Report {
        vars: crate::PluginVars::of(manifest),
        surface,
        ..Report::default()
    };
    sandbox(&mut report, session, manifest);
    endpoints(&mut report, session, manifest).await;
    let status = match session.status().await {
        Ok(s) => {
            login(&mut report, &s);
            Some(s)
        }
        Err(e) => {
            report.failed_call("login", &e);
            None
        }
    };
    if let Some(status) = status {
        if with_chat {
            report.add(
                "note",
                Verdict::Ok,
                "the version-gate check sends one minimal streamed turn per route that needs \
                 it: it spends a token or two (--no-chat skips it)",
            );
        }
        for route in &status.routes {
            routes(
                &mut report,
                session,
                &status,
                &route.name,
                route.usable,
                with_chat,
            )
            .await;
        }
    }
    let ok = !report.checks.iter().any(|c| c.status == Verdict::Fail);
    json!({"ok": ok, "checks": report.checks})
}

/// The configuration resolved, and the origins the sandbox allows for it.
fn sandbox(report: &mut Report, session: &Session, manifest: &PluginManifest) {
    let config = session.config();
    let origins: Vec<String> = config
        .allowed_origins
        .iter()
        .map(|o| o.origin.to_string())
        .collect();
    report.add(
        "sandbox",
        Verdict::Ok,
        format!(
            "plugin {} ({}); routes enabled: {}; origins allowed: {}",
            manifest.display_name,
            manifest.id,
            config.enabled_routes.join(", "),
            origins.join(", ")
        ),
    );
}

/// The value the plugin uses for `key`: the operator's override, else the default.
fn setting_value(session: &Session, manifest: &PluginManifest, key: &str) -> Option<String> {
    session
        .config()
        .overrides
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .or_else(|| {
            manifest
                .settings
                .iter()
                .find(|s| s.key == key)
                .map(|s| s.default_value.clone())
        })
}

/// Each endpoint the plugin may reach now: reachable at all, and whether it is an OpenID
/// authorization server with the device flow (discovery).
async fn endpoints(report: &mut Report, session: &Session, manifest: &PluginManifest) {
    let client = provider_runtime::default_http_client(ENDPOINT_TIMEOUT);
    let enabled = &session.config().enabled_routes;
    for setting in manifest
        .settings
        .iter()
        .filter(|s| s.kind == SettingKind::Endpoint)
    {
        if setting.route.as_ref().is_some_and(|r| !enabled.contains(r)) {
            continue;
        }
        let Some(base) = setting_value(session, manifest, &setting.key) else {
            continue;
        };
        let name = format!("endpoint {}", setting.key);
        let fix = match &setting.env {
            Some(var) => format!(
                "check connectivity to {base} (a proxy, a firewall), or set {var} to the \
                 right address"
            ),
            None => format!("check connectivity to {base}"),
        };
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            base.trim_end_matches('/')
        );
        // The sandbox's rule for the plugin holds for the doctor too: a private or loopback
        // address only for an endpoint the operator set.
        let operator_set = provider_runtime::config::Origin::parse(&base).is_ok_and(|o| {
            session
                .config()
                .allowed_origins
                .iter()
                .any(|a| a.origin == o && a.operator_set)
        });
        let reach = if operator_set {
            Reach::Any
        } else {
            Reach::Public
        };
        match get_json(&client, &discovery, reach).await {
            Ok((200, Some(doc))) => {
                let device = doc["device_authorization_endpoint"].as_str();
                let token = doc["token_endpoint"].as_str();
                match (device, token) {
                    (Some(d), Some(t)) => report.add(
                        name,
                        Verdict::Ok,
                        format!("{base}: OpenID discovery answers; device endpoint {d}, token endpoint {t}"),
                    ),
                    _ => report.fail(
                        name,
                        format!(
                            "{base}: OpenID discovery answers without a device_authorization_endpoint \
                             and token_endpoint: the device login cannot start"
                        ),
                        "the authorization server does not offer the device flow here: check \
                         the issuer setting",
                    ),
                }
            }
            // Not an authorization server (an API base): reachable is all that is asked.
            Ok((status, _)) => report.add(
                name,
                Verdict::Ok,
                format!("{base}: reachable (HTTP {status})"),
            ),
            Err(why) => report.fail(name, format!("{base}: {why}"), fix),
        }
    }
}

async fn get_json(
    client: &std::sync::Arc<dyn provider_runtime::HttpClient>,
    url: &str,
    reach: Reach,
) -> Result<(u16, Option<Value>), String> {
    let request = http::Request::get(url)
        .extension(reach)
        .header(http::header::ACCEPT, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("provider-host/", env!("CARGO_PKG_VERSION"), " doctor"),
        )
        .body(Bytes::new())
        .map_err(|e| format!("not a URL: {e}"))?;
    let response = tokio::time::timeout(ENDPOINT_TIMEOUT, client.send(request))
        .await
        .map_err(|_| format!("no answer within {ENDPOINT_TIMEOUT:?}"))?
        .map_err(|e| format!("unreachable ({e})"))?;
    let status = response.status().as_u16();
    // A discovery document is small; anything larger is not one.
    let body = tokio::time::timeout(
        ENDPOINT_TIMEOUT,
        http_body_util::Limited::new(response.into_body(), 256 * 1024).collect(),
    )
    .await;
    let json = match body {
        Ok(Ok(collected)) => serde_json::from_slice(&collected.to_bytes()).ok(),
        _ => None,
    };
    Ok((status, json))
}

/// The stored login: connected, its tier and subscription, its expiry.
fn login(report: &mut Report, s: &ConnectionStatus) {
    if !s.connected {
        let revoked = s
            .routes
            .iter()
            .filter_map(|r| r.detail.as_deref())
            .find(|d| d.contains("revoked"));
        match revoked {
            Some(why) => report.fail(
                "login",
                why.to_owned(),
                "log in again (`provider-host login`); if it keeps happening, another client \
                 using the same client id (such as the vendor's own CLI) is rotating the \
                 login",
            ),
            None => report.fail("login", "no login is stored", "run `provider-host login`"),
        }
        return;
    }
    let tier = match (&s.tier_name, s.tier) {
        (Some(name), Some(t)) => format!("tier {t} ({name})"),
        (None, Some(t)) => format!("tier {t}"),
        _ => "no tier claim".to_owned(),
    };
    let subscription = s
        .subscription
        .as_deref()
        .map(|sub| format!(", subscription {sub}"))
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match s.expires_at {
        Some(at) if at <= now => report.add(
            "login",
            Verdict::Warn,
            format!(
                "connected, {tier}{subscription}; the access token expired {} s ago and is \
                 refreshed on the next call",
                now - at
            ),
        ),
        Some(at) => report.add(
            "login",
            Verdict::Ok,
            format!(
                "connected, {tier}{subscription}; the access token expires in {} min",
                (at - now) / 60
            ),
        ),
        None => report.add(
            "login",
            Verdict::Ok,
            format!("connected, {tier}{subscription}"),
        ),
    }
}

/// One route: its catalogue, its version gate (a minimal streamed turn), its quota.
async fn routes(
    report: &mut Report,
    session: &mut Session,
    status: &ConnectionStatus,
    route: &str,
    usable: bool,
    with_chat: bool,
) {
    let bills = status
        .routes
        .iter()
        .find(|r| r.name == route)
        .map(|r| r.bills.clone())
        .unwrap_or_default();
    if !usable {
        let why = status
            .routes
            .iter()
            .find(|r| r.name == route)
            .and_then(|r| r.detail.clone())
            .unwrap_or_else(|| "its credential is not stored".into());
        report.add(
            format!("route {route}"),
            Verdict::Skip,
            format!("not usable: {why}"),
        );
        return;
    }
    if !session.config().enabled_routes.iter().any(|r| r == route) {
        report.add(
            format!("route {route}"),
            Verdict::Skip,
            format!("usable but not enabled here (pass --route {route}); bills: {bills}"),
        );
        return;
    }
    let models = match session.models(true, Some(route)).await {
        Ok(m) => m,
        Err(e) => {
            report.failed_call(format!("route {route}: catalogue"), &e);
            return;
        }
    };
    let default = Some(models.default_model_id.clone())
        .filter(|m| !m.is_empty())
        .or_else(|| models.models.first().map(|m| m.id.clone()));
    report.add(
        format!("route {route}: catalogue"),
        if models.models.is_empty() {
            Verdict::Warn
        } else {
            Verdict::Ok
        },
        format!(
            "{} chat model(s), default {}; bills: {bills}",
            models.models.len(),
            default.as_deref().unwrap_or("none")
        ),
    );
    match (with_chat, default) {
        (false, _) => report.add(
            format!("route {route}: first turn"),
            Verdict::Skip,
            "switched off (--no-chat)",
        ),
        (true, None) => report.add(
            format!("route {route}: first turn"),
            Verdict::Skip,
            "no model to ask",
        ),
        (true, Some(model)) => {
            let mut ask =
                ChatRequest::new(model.clone(), vec![Message::text(Role::User, "Say OK.")]);
            ask.route = Some(route.to_owned());
            ask.max_output_tokens = Some(16);
            match first_event(session, &ask).await {
                Ok(()) => report.add(
                    format!("route {route}: first turn"),
                    Verdict::Ok,
                    format!("{model} answered a streamed turn (the route's gate let it through)"),
                ),
                Err(e) => report.failed_call(format!("route {route}: first turn"), &e),
            }
        }
    }
    match session.usage(Some(route)).await {
        Ok(q) => {
            let figure = match (q.percent_used, &q.credits) {
                (Some(p), _) => format!("{p:.1} % of the period's allowance used"),
                (None, Some(c)) => format!("{} left", c.remaining),
                (None, None) => "unknown".to_owned(),
            };
            report.add(
                format!("route {route}: quota"),
                Verdict::Ok,
                format!("{figure} ({})", q.detail),
            );
        }
        Err(e) => report.failed_call(format!("route {route}: quota"), &e),
    }
}

/// Opens a stream and reads it to its end (a turn of a few tokens).
async fn first_event(session: &mut Session, ask: &ChatRequest) -> Result<(), HostError> {
    let stream = session.open_chat_stream(ask).await?;
    let mut outcome = Ok(());
    loop {
        match session.next_chunk(&stream).await {
            Ok(Some(ChatChunk::Finish(_))) | Ok(None) => break,
            Ok(Some(_)) => {}
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    let _ = session.close_chat_stream(stream).await;
    outcome
}

/// The report for people: one line per check, its fix under it.
pub fn human(report: &Value) -> String {
    let mut out = String::new();
    for c in report["checks"].as_array().into_iter().flatten() {
        let mark = match c["status"].as_str() {
            Some("ok") => "ok  ",
            Some("warn") => "warn",
            Some("fail") => "FAIL",
            _ => "skip",
        };
        out.push_str(&format!(
            "{mark}  {}: {}\n",
            c["name"].as_str().unwrap_or(""),
            c["detail"].as_str().unwrap_or("")
        ));
        if let Some(fix) = c["fix"].as_str() {
            out.push_str(&format!("      fix: {fix}\n"));
        }
    }
    out
}
