//! Where a call runs: the state directory, the tenant, the component, the secret backend,
//! the call timeout and what the operator grants the plugin. The CLI fills these from its
//! global flags; the Python package from keywords and the same environment variables, so a
//! login made by either is seen by the other.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use provider_runtime::secrets::{KeySource, SecretBackend};
use provider_runtime::{HostError, PluginSource, RuntimeOptions};

/// Environment variable of the state directory (the CLI's `--state-dir`).
pub const STATE_DIR_VAR: &str = "PROVIDER_HOST_STATE_DIR";
/// Environment variable of the PostgreSQL secret backend's URL (the CLI's `--secrets-url`).
pub const SECRETS_URL_VAR: &str = "PROVIDER_HOST_SECRETS_URL";
/// The tenant when none is named.
pub const DEFAULT_TENANT: &str = "default";

/// The settings of one host: the CLI's global flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where tenant state lives; `None`: the XDG state directory's `provider-host`.
    pub state_dir: Option<PathBuf>,
    /// The tenant whose credentials to use.
    pub tenant: String,
    /// A component to run instead of the embedded one.
    pub plugin: Option<PathBuf>,
    /// Longest one plugin call may run, in seconds (`None`: the runtime's default).
    pub call_timeout_secs: Option<u64>,
    /// Keep tenants' secrets in this PostgreSQL database instead of the state directory.
    pub secrets_url: Option<String>,
    /// Environment names the plugin may read besides its own prefix (`--allow-env`).
    pub allow_env: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            state_dir: None,
            tenant: DEFAULT_TENANT.to_owned(),
            plugin: None,
            call_timeout_secs: None,
            secrets_url: None,
            allow_env: Vec::new(),
        }
    }
}

impl Settings {
    /// The defaults, with the state directory and the secrets URL from
    /// [`STATE_DIR_VAR`] and [`SECRETS_URL_VAR`] when set (as the CLI reads them).
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            state_dir: var(STATE_DIR_VAR).map(PathBuf::from),
            secrets_url: var(SECRETS_URL_VAR),
            ..Self::default()
        }
    }

    /// The component to run: [`Settings::plugin`], else the embedded one.
    pub fn plugin_source(&self) -> PluginSource {
        match &self.plugin {
            Some(path) => PluginSource::File(path.clone()),
            None => crate::component::embedded(),
        }
    }

    /// The state directory: the one given, else the XDG state directory's `provider-host`.
    pub fn state_dir(&self) -> Result<PathBuf, HostError> {
        if let Some(d) = &self.state_dir {
            return Ok(d.clone());
        }
        dirs::state_dir()
            .or_else(|| dirs::home_dir().map(|h| h.join(".local").join("state")))
            .map(|d| d.join("provider-host"))
            .ok_or_else(|| HostError::Config("no state directory: pass --state-dir".into()))
    }

    /// The runtime options: state directory, component, secret backend, call timeout.
    pub fn runtime_options(&self) -> Result<RuntimeOptions, HostError> {
        let mut options = RuntimeOptions::new(self.plugin_source(), self.state_dir()?);
        if let Some(t) = self.call_timeout_secs {
            options.limits.call_timeout = std::time::Duration::from_secs(t);
        }
        options.secrets = self.secret_backend()?;
        Ok(options)
    }

    /// The secret backend of [`Settings::secrets_url`] (PostgreSQL); `None`: the state
    /// directory's encrypted files.
    pub fn secret_backend(&self) -> Result<Option<Arc<dyn SecretBackend>>, HostError> {
        let Some(url) = &self.secrets_url else {
            return Ok(None);
        };
        let backend = provider_secrets_postgres::PostgresBackend::connect(
            url,
            KeySource::Env,
            provider_runtime::secrets::Limits::default(),
        )?;
        tracing::debug!(database = backend.database(), "secrets in PostgreSQL");
        Ok(Some(Arc::new(backend)))
    }

    /// What the operator grants the plugin beyond its own manifest.
    pub fn grant(&self) -> Grant {
        Grant {
            env: self.allow_env.iter().cloned().collect(),
            // The embedded plugin's manifest is the build's: approved as it is.
            default_route: self.plugin.is_none(),
            // Another component's grant is the operator's record (`plugin trust`).
            trusted_by: self
                .plugin
                .clone()
                .and_then(|path| Some((self.state_dir().ok()?, path))),
        }
    }
}

/// What the operator grants the plugin beyond its own manifest (see [`Settings::grant`]),
/// read by [`crate::env_config`].
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// Environment names approved besides the plugin's own prefix (`--allow-env`).
    pub env: BTreeSet<String>,
    /// The plugin's default `route-name` opens its route (the embedded plugin, or a
    /// trusted component whose record grants it).
    pub default_route: bool,
    /// For another component: the state directory holding the operator's trust records,
    /// and the component.
    pub trusted_by: Option<(PathBuf, PathBuf)>,
}
