//! Settings read from the host's environment: which variables a plugin may name (its own
//! prefix, or ones the operator approved, never the host's own, proxy or credential
//! variables), and the overrides read from them.

use std::collections::BTreeSet;
use std::fmt;

use super::Origin;
use crate::bindings::types::{PluginManifest, SettingKind};
use crate::error::HostError;

/// The prefix of the environment names a plugin's settings may read without the
/// operator's approval: the first word (letters and digits) of its manifest id,
/// upper-cased, then `_` (`xai-grok` → `XAI_`, `acme` → `ACME_`). A first word shorter
/// than three characters gives no prefix (such a plugin reads only approved names).
pub fn env_prefix(plugin_id: &str) -> Option<String> {
    let word: String = plugin_id
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    (word.len() >= 3).then(|| format!("{}_", word.to_ascii_uppercase()))
}

/// Variables of the host's own process that no plugin may read, whatever it is granted.
const FORBIDDEN_ENV_PREFIXES: &[(&str, &str)] = &[
    (
        "PROVIDER_HOST_",
        "the host's own configuration (its master key, its database)",
    ),
    ("AWS_", "cloud credentials"),
    ("AZURE_", "cloud credentials"),
    ("GOOGLE_", "cloud credentials"),
    ("GCLOUD_", "cloud credentials"),
    ("ARM_", "cloud credentials"),
    ("ACTIONS_", "CI credentials"),
];

/// Exact names (compared upper-cased) of the same.
const FORBIDDEN_ENV_NAMES: &[(&str, &str)] = &[
    (
        "HTTP_PROXY",
        "the host's proxy (which may carry credentials)",
    ),
    (
        "HTTPS_PROXY",
        "the host's proxy (which may carry credentials)",
    ),
    (
        "ALL_PROXY",
        "the host's proxy (which may carry credentials)",
    ),
    ("NO_PROXY", "the host's proxy settings"),
    (
        "FTP_PROXY",
        "the host's proxy (which may carry credentials)",
    ),
    ("SSL_CERT_FILE", "the host's trust store"),
    ("SSL_CERT_DIR", "the host's trust store"),
    ("GITHUB_TOKEN", "a credential"),
    ("GH_TOKEN", "a credential"),
    ("GITLAB_TOKEN", "a credential"),
    ("CI_JOB_TOKEN", "a credential"),
    ("NPM_TOKEN", "a credential"),
    ("NODE_AUTH_TOKEN", "a credential"),
    ("CARGO_REGISTRY_TOKEN", "a credential"),
    ("DOCKER_PASSWORD", "a credential"),
    ("DOCKER_AUTH_CONFIG", "a credential"),
    ("VAULT_TOKEN", "a credential"),
    ("PGPASSWORD", "a credential"),
    ("DATABASE_URL", "a credential"),
    ("SSH_AUTH_SOCK", "a credential"),
    ("KUBECONFIG", "a credential"),
    ("RUST_LOG", "the host's own configuration"),
];

/// Why no plugin may read the environment variable `name`, if none may: the host's own
/// variables (`PROVIDER_HOST_*`), proxy variables in any case, and known credential
/// variables (`AWS_*`, `GITHUB_TOKEN`, ...). The operator cannot approve these.
pub fn forbidden_env(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    FORBIDDEN_ENV_PREFIXES
        .iter()
        .find(|(p, _)| upper.starts_with(p))
        .or_else(|| FORBIDDEN_ENV_NAMES.iter().find(|(n, _)| upper == *n))
        .map(|(_, why)| *why)
}

/// One setting's value read from the environment by [`env_overrides`].
#[derive(Clone, PartialEq, Eq)]
pub struct EnvOverride {
    /// The setting's key.
    pub key: String,
    /// The variable it was read from.
    pub var: String,
    /// Its value, trimmed (an endpoint's trailing `/` removed).
    pub value: String,
    /// Whether the variable carries the plugin's own prefix; a value read from any other
    /// (approved) variable is never repeated in an error.
    pub own: bool,
}

impl fmt::Debug for EnvOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvOverride")
            .field("key", &self.key)
            .field("var", &self.var)
            .field("own", &self.own)
            .finish_non_exhaustive()
    }
}

/// The operator's overrides a host reads from its environment for `manifest`: each
/// setting with an `env` name whose variable `lookup` finds set (and not blank).
///
/// Every `env` name of the manifest is checked first, set or not: a name no plugin may
/// read ([`forbidden_env`]) is refused even if approved; any other name must carry the
/// plugin's prefix ([`env_prefix`]) or be in `approved`. A refusal is a
/// [`HostError::Config`] naming the setting and the variable. An endpoint's value must be
/// an origin the sandbox accepts and a route name a route of the plugin; the error names
/// the variable, and repeats the value only when the variable is the plugin's own.
pub fn env_overrides(
    manifest: &PluginManifest,
    approved: &BTreeSet<String>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<EnvOverride>, HostError> {
    let prefix = env_prefix(&manifest.id);
    let plugin = &manifest.id;
    let own = |var: &str| prefix.as_deref().is_some_and(|p| var.starts_with(p));
    for setting in &manifest.settings {
        let Some(var) = &setting.env else { continue };
        let key = &setting.key;
        if let Some(why) = forbidden_env(var) {
            return Err(HostError::Config(format!(
                "setting {key:?} of {plugin} reads the environment variable {var}, which no \
                 plugin may read ({why})"
            )));
        }
        if !own(var) && !approved.contains(var) {
            let allowed = match &prefix {
                Some(p) => format!("only {p}* names"),
                None => "no name".to_owned(),
            };
            return Err(HostError::Config(format!(
                "setting {key:?} of {plugin} reads the environment variable {var}: {plugin} \
                 may read {allowed} unless the operator approves another"
            )));
        }
    }
    let mut found = Vec::new();
    for setting in &manifest.settings {
        let Some(var) = &setting.env else { continue };
        let Some(value) = lookup(var).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let own = own(var);
        let value = value.trim();
        let value = match setting.kind {
            SettingKind::Endpoint => {
                if let Err(e) = Origin::parse(value) {
                    return Err(HostError::Config(if own {
                        format!("{var}: {e}")
                    } else {
                        // Not the plugin's variable: its value may be anything of the
                        // operator's, so only the reason is told.
                        format!("{var}: not an endpoint (https, or http on a loopback host)")
                    }));
                }
                value.trim_end_matches('/')
            }
            SettingKind::RouteName => {
                if !manifest.routes.iter().any(|r| r.name == value) {
                    let routes = manifest
                        .routes
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    let shown = if own {
                        format!("{value:?}")
                    } else {
                        "its value".into()
                    };
                    return Err(HostError::Config(format!(
                        "{var}: {shown} is not a route of {plugin} (routes: {routes})"
                    )));
                }
                value
            }
            SettingKind::Text => value,
        };
        found.push(EnvOverride {
            key: setting.key.clone(),
            var: var.clone(),
            value: value.to_owned(),
            own,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::bindings::types::Setting;
    use crate::host_config::tests::manifest;

    fn env_manifest(env: &[(&str, &str, SettingKind)]) -> PluginManifest {
        let mut m = manifest();
        m.id = "acme-cloud".into();
        for (key, var, kind) in env {
            m.settings.push(Setting {
                key: (*key).into(),
                env: Some((*var).into()),
                description: String::new(),
                default_value: "https://x.acme.example".into(),
                kind: *kind,
                route: None,
            });
        }
        m
    }

    #[test]
    fn environment_names_are_the_plugins_own_or_approved_and_never_the_hosts() {
        assert_eq!(env_prefix("xai-grok").as_deref(), Some("XAI_"));
        assert_eq!(env_prefix("acme").as_deref(), Some("ACME_"));
        assert_eq!(env_prefix("ab-c"), None);
        let vars = |name: &str| match name {
            "ACME_BASE" => Some("https://base.acme.example/".to_owned()),
            "SHARED_REGION" => Some("eu".to_owned()),
            "SHARED_URL" => Some("http://secret-value.example".to_owned()),
            _ => Some("leaked".to_owned()),
        };
        let none = BTreeSet::new();
        let found = env_overrides(
            &env_manifest(&[("base", "ACME_BASE", SettingKind::Endpoint)]),
            &none,
            vars,
        )
        .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].value, "https://base.acme.example");
        assert!(found[0].own);

        let region = env_manifest(&[("region", "SHARED_REGION", SettingKind::Text)]);
        let err = env_overrides(&region, &none, vars).unwrap_err().to_string();
        assert!(
            err.contains("\"region\"") && err.contains("SHARED_REGION"),
            "{err}"
        );
        assert!(err.contains("ACME_*"), "{err}");
        let approved: BTreeSet<String> = ["SHARED_REGION".to_owned(), "SHARED_URL".to_owned()]
            .into_iter()
            .collect();
        let found = env_overrides(&region, &approved, vars).unwrap();
        assert!(!found[0].own);

        for forbidden in [
            "PROVIDER_HOST_KEY",
            "PROVIDER_HOST_SECRETS_URL",
            "HTTPS_PROXY",
            "https_proxy",
            "No_Proxy",
            "ALL_PROXY",
            "AWS_SECRET_ACCESS_KEY",
            "GITHUB_TOKEN",
        ] {
            let m = env_manifest(&[("leak", forbidden, SettingKind::Text)]);
            let approved: BTreeSet<String> = [forbidden.to_owned()].into_iter().collect();
            let err = env_overrides(&m, &approved, vars).unwrap_err();
            assert_eq!(err.code(), "config_error");
            let err = err.to_string();
            assert!(err.contains("\"leak\"") && err.contains(forbidden), "{err}");
            assert!(!err.contains("leaked"), "{err}");
        }
        // An approved variable that is not the plugin's: its value is never repeated.
        let m = env_manifest(&[("url", "SHARED_URL", SettingKind::Endpoint)]);
        let err = env_overrides(&m, &approved, vars).unwrap_err().to_string();
        assert!(
            err.contains("SHARED_URL") && !err.contains("secret-value"),
            "{err}"
        );
    }
}
