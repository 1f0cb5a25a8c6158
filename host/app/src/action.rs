//! What to do next after an error, in the words of the program the caller uses (its
//! commands or functions and their arguments), and the script-mode error object.

use provider_runtime::bindings::types::{PluginManifest, ProviderError, SettingKind};
use provider_runtime::{ErrorCode, HostError};
use serde_json::{Value, json};

/// Whose words an action uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Surface {
    /// `provider-host`'s subcommands and flags (`login`, `key set`, `--route`).
    #[default]
    Cli,
    /// The Python package's functions and keywords (`start()`, `key_set()`, `route=`).
    Python,
}

/// The environment variables of the loaded plugin's settings, for actions that name one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginVars {
    /// The variables of the plugin's endpoints.
    pub endpoints: Vec<String>,
    /// Every setting with the variable it is read from: (key, variable).
    pub settings: Vec<(String, String)>,
}

impl PluginVars {
    /// The variables `manifest` names.
    pub fn of(manifest: &PluginManifest) -> Self {
        Self {
            endpoints: manifest
                .settings
                .iter()
                .filter(|s| s.kind == SettingKind::Endpoint)
                .filter_map(|s| s.env.clone())
                .collect(),
            settings: manifest
                .settings
                .iter()
                .filter_map(|s| Some((s.key.clone(), s.env.clone()?)))
                .collect(),
        }
    }
}

/// `client_outdated`: the plugin's message names the setting to change; say which
/// environment variable sets it here.
fn client_outdated_action(message: &str, vars: &PluginVars) -> String {
    let named = vars
        .settings
        .iter()
        .filter(|(key, _)| message.contains(key.as_str()))
        .max_by_key(|(key, _)| key.len());
    match named {
        Some((key, var)) => format!(
            "Upstream refuses the client version this plugin announces: set {var} (the \
             plugin's setting {key}) to a current release of the vendor's own client, at least \
             the minimum the message names, then retry. Logging in again will not help."
        ),
        None => "Upstream refuses the client version this plugin announces: set the plugin's \
             setting the message names (through its environment variable) to a current release, \
             then retry. Logging in again will not help."
            .to_owned(),
    }
}

/// What to do next, in `surface`'s words; the library's action (in the contract's terms)
/// where there is nothing to add.
pub fn action(e: &HostError, vars: &PluginVars, surface: Surface) -> String {
    let others = e.alternatives().join(", ");
    let py = surface == Surface::Python;
    match e.code() {
        ErrorCode::RateLimited if !others.is_empty() => format!(
            "Rate limit reached: wait (retry_after_seconds when given), or send this request \
             on another route with {} ({others}); do not retry in a loop.",
            if py { "route=" } else { "--route" }
        ),
        ErrorCode::QuotaExhausted if !others.is_empty() => format!(
            "This route's quota or spending limit is spent: wait for it to reset, or send \
             this request on another route with {} ({others}).",
            if py { "route=" } else { "--route" }
        ),
        ErrorCode::QuotaExhausted => {
            "This route's quota or spending limit is spent: wait for it to reset.".to_owned()
        }
        ErrorCode::NotConnected if py => {
            "Not signed in (or no login pending): call `start()`, then `poll()` once the user \
             approved; for a key route, store a key with `key_set()`."
                .to_owned()
        }
        ErrorCode::NotConnected => {
            "Not signed in (or no login pending): run `login` (or `start`, then `poll`); \
             for a key route, store a key with `key set`."
                .to_owned()
        }
        ErrorCode::ExpiredToken if py => {
            "The device code expired: call `start()` again.".to_owned()
        }
        ErrorCode::ExpiredToken => {
            "The device code expired: run `login` (or `start`) again.".to_owned()
        }
        ErrorCode::AccessDenied => format!(
            "Do not retry: the account was refused at authorization. Check that \
             the subscription is active and approve in the browser where you are signed in, \
             or use an API key instead (BYOK: {}, then a route that spends it).",
            if py { "`key_set()`" } else { "`key set`" }
        ),
        ErrorCode::Unauthorized if e.to_string().contains("revoked") => format!(
            "The login was revoked: another \
             client using the same OAuth client id for this account (such as the vendor's own \
             CLI) may have rotated it. {}",
            if py {
                "Call `logout()`, then `start()` again."
            } else {
                "Run `logout`, then `login` again."
            }
        ),
        ErrorCode::Unauthorized if py => {
            "The credentials were refused: for the login, call `logout()` then `start()`; \
             for an API key, store a valid one with `key_set()`."
                .to_owned()
        }
        ErrorCode::Unauthorized => {
            "The credentials were refused: for the login, run `logout` then \
             `login`; for an API key, store a valid one with `key set`."
                .to_owned()
        }
        ErrorCode::ClientOutdated => client_outdated_action(&e.to_string(), vars),
        ErrorCode::DeniedBySandbox => format!(
            "The host's allowlist refused the destination: check the endpoint variables \
             ({}), and name a route-bound endpoint's route with {}.",
            vars.endpoints.join(", "),
            if py { "route=" } else { "--route" }
        ),
        ErrorCode::ConfigError if py => {
            "Fix the arguments (or configure()) or the plugin's environment variables.".to_owned()
        }
        ErrorCode::ConfigError => "Fix the flags or the plugin's environment variables.".to_owned(),
        ErrorCode::PluginError if py => {
            "Check plugin=: it must be a component of the model-provider:plugin world.".to_owned()
        }
        ErrorCode::PluginError => {
            "Check --plugin: it must be a component of the model-provider:plugin world.".to_owned()
        }
        // The contract's wording says it all for these.
        ErrorCode::RateLimited
        | ErrorCode::TierDenied
        | ErrorCode::UpstreamUnavailable
        | ErrorCode::Network
        | ErrorCode::InvalidResponse
        | ErrorCode::InvalidInput
        | ErrorCode::Storage
        | ErrorCode::PoolExhausted
        | ErrorCode::TenantBusy
        | ErrorCode::HostError
        | ErrorCode::CallTimeout
        | ErrorCode::MemoryLimit
        | ErrorCode::ResourceLimit
        | ErrorCode::StreamClosed
        | ErrorCode::PluginTrap => e.action(),
    }
}

/// The script-mode error object: `ok: false`, `error` (the code), `message`, `action` (in
/// `surface`'s words), and when they apply `retry_after_seconds`, `route`, `alternatives`.
pub fn error_json(e: &HostError, vars: &PluginVars, surface: Surface) -> Value {
    let mut v = json!({
        "ok": false,
        "error": e.code().as_str(),
        "message": e.to_string(),
        "action": action(e, vars, surface),
    });
    if let Some(s) = e.retry_after_seconds() {
        v["retry_after_seconds"] = json!(s);
    }
    if let HostError::Provider(ProviderError::QuotaExhausted(q)) = e {
        v["route"] = json!(q.route);
    }
    if !e.alternatives().is_empty() {
        v["alternatives"] = json!(e.alternatives());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> PluginVars {
        PluginVars {
            endpoints: vec!["XAI_OAUTH_ISSUER".into(), "XAI_API_BASE".into()],
            settings: vec![
                (
                    "subscription-client-version".into(),
                    "XAI_SUBSCRIPTION_CLIENT_VERSION".into(),
                ),
                ("subscription-base".into(), "XAI_SUBSCRIPTION_BASE".into()),
            ],
        }
    }

    #[test]
    fn python_actions_name_functions_and_keywords_never_flags() {
        let cases = [
            ProviderError::NotConnected("x".into()),
            ProviderError::DeviceCodeExpired("x".into()),
            ProviderError::AccessDenied("x".into()),
            ProviderError::Unauthorized("revoked".into()),
            ProviderError::Unauthorized("x".into()),
            ProviderError::DeniedBySandbox("x".into()),
        ];
        for case in cases {
            let e = HostError::Provider(case);
            let py = action(&e, &vars(), Surface::Python);
            assert!(
                !py.contains("--") && !py.contains("`login`") && !py.contains("`key set`"),
                "{py}"
            );
            assert!(py.contains("()") || py.contains("route="), "{py}");
        }
        let e = HostError::Config("bad".into());
        assert!(action(&e, &vars(), Surface::Python).contains("configure()"));
    }

    #[test]
    fn the_error_object_has_the_code_message_fields_and_the_surface_action() {
        let e = HostError::Provider(ProviderError::RateLimited(
            provider_runtime::bindings::types::RateLimit {
                message: "slow down".into(),
                retry_after_seconds: Some(7),
                alternatives: vec!["api-key".into()],
            },
        ));
        let expected = json!({
            "ok": false,
            "error": "rate_limited",
            "message": "slow down",
            "action": action(&e, &vars(), Surface::Cli),
            "retry_after_seconds": 7,
            "alternatives": ["api-key"],
        });
        assert_eq!(error_json(&e, &vars(), Surface::Cli), expected);
        assert!(
            error_json(&e, &vars(), Surface::Python)["action"]
                .as_str()
                .unwrap()
                .contains("route= (api-key)")
        );
    }
}
