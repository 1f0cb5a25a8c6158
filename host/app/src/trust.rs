//! `plugin trust PATH`: what the operator grants a component beyond its own manifest,
//! pinned to the component's SHA-256.
//!
//! The plugin built into this crate is approved by the build. Any other component
//! (`--plugin PATH`) gets its own manifest's defaults (public https destinations only), its
//! own `PREFIX_*` environment names, and what the command line grants (`--allow-env`,
//! `--route`), until the operator runs `plugin trust PATH`: that records, in
//! `<state-dir>/trust/<plugin id>.json`, the component's digest and what it was granted —
//! the other environment names it reads (each approved with `--allow-env`), its default
//! route, and its default endpoints (for the record and the comparison). A component whose
//! digest differs from the record is refused, with what it asks for beyond the grant.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use provider_runtime::bindings::types::{PluginManifest, SettingKind};
use provider_runtime::config::{Origin, env_overrides, env_prefix};
use provider_runtime::{HostError, PluginSource, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Digest;

use crate::Settings;

/// What one component was granted, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustRecord {
    /// The manifest id.
    pub plugin: String,
    /// The component's SHA-256, hex.
    pub sha256: String,
    /// Environment names granted besides the plugin's own prefix.
    pub env: BTreeSet<String>,
    /// Its default `route-name` settings open their routes.
    pub default_route: bool,
    /// The origins of its default endpoints when it was trusted.
    pub origins: BTreeSet<String>,
}

impl TrustRecord {
    /// What `manifest` asks for: its environment names outside its prefix, its default
    /// routes, its default endpoints' origins.
    pub fn asked_by(manifest: &PluginManifest, sha256: String) -> Self {
        let prefix = env_prefix(&manifest.id);
        Self {
            plugin: manifest.id.clone(),
            sha256,
            env: manifest
                .settings
                .iter()
                .filter_map(|s| s.env.clone())
                .filter(|e| !prefix.as_deref().is_some_and(|p| e.starts_with(p)))
                .collect(),
            default_route: manifest
                .settings
                .iter()
                .any(|s| s.kind == SettingKind::RouteName),
            origins: manifest
                .settings
                .iter()
                .filter(|s| s.kind == SettingKind::Endpoint)
                .filter_map(|s| Origin::parse(&s.default_value).ok())
                .map(|o| o.to_string())
                .collect(),
        }
    }

    /// What `asked` wants that this grant does not give, in words (empty: nothing).
    pub fn missing(&self, asked: &TrustRecord) -> Vec<String> {
        let mut more: Vec<String> = asked
            .env
            .difference(&self.env)
            .map(|e| format!("+env {e}"))
            .collect();
        more.extend(
            asked
                .origins
                .difference(&self.origins)
                .map(|o| format!("+origin {o}")),
        );
        if asked.default_route && !self.default_route {
            more.push("+default route".to_owned());
        }
        more
    }
}

/// The SHA-256 of the component at `path`, hex.
pub fn digest_of(path: &Path) -> Result<String, HostError> {
    let bytes = std::fs::read(path)
        .map_err(|e| HostError::Config(format!("cannot read {}: {e}", path.display())))?;
    Ok(hex::encode(sha2::Sha256::digest(&bytes)))
}

fn record_path(state_dir: &Path, plugin: &str) -> PathBuf {
    // The id is `[a-z0-9._-]{1,64}` (checked with the manifest): a safe file name, once a
    // leading dot is ruled out.
    state_dir
        .join("trust")
        .join(format!("{}.json", plugin.trim_start_matches('.')))
}

/// The record for `plugin`, if the operator trusted one.
pub fn load(state_dir: &Path, plugin: &str) -> Result<Option<TrustRecord>, HostError> {
    let path = record_path(state_dir, plugin);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            HostError::Config(format!("{} is not a trust record: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(HostError::Config(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn store(state_dir: &Path, record: &TrustRecord) -> Result<(), HostError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = record_path(state_dir, &record.plugin);
    let dir = path.parent().expect("a file in the trust directory");
    let io = |e: std::io::Error| HostError::Config(format!("cannot write {}: {e}", path.display()));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    // Written whole, then renamed: a crash leaves the old record or the new one.
    let tmp = dir.join(format!(".{}.tmp", record.plugin));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    let text = serde_json::to_vec_pretty(record).expect("a record serialises");
    file.write_all(&text).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// What the operator's record grants the component at `path` with `manifest`: the grant,
/// none when it was never trusted, or a refusal showing what it asks beyond the grant when
/// it is not the component trusted.
pub fn grant_for(
    state_dir: &Path,
    path: &Path,
    manifest: &PluginManifest,
) -> Result<Option<TrustRecord>, HostError> {
    let Some(record) = load(state_dir, &manifest.id)? else {
        return Ok(None);
    };
    let sha256 = digest_of(path)?;
    if record.sha256 == sha256 {
        return Ok(Some(record));
    }
    let asked = TrustRecord::asked_by(manifest, sha256.clone());
    let more = record.missing(&asked);
    let difference = if more.is_empty() {
        "it asks for nothing beyond that grant, but the grant is pinned to the digest".to_owned()
    } else {
        format!("beyond that grant it asks for: {}", more.join(", "))
    };
    Err(HostError::Config(format!(
        "{} (sha256 {}) is not the component trusted as {} (sha256 {}): {difference}; run \
         `provider-host plugin trust {}` to approve it",
        path.display(),
        &sha256[..12],
        manifest.id,
        &record.sha256[..record.sha256.len().min(12)],
        path.display()
    )))
}

/// `plugin trust PATH`: loads the component, checks what its manifest reads from the
/// environment (its prefix, or names approved with `--allow-env`; never the host's own,
/// proxy or credential variables), and records the grant in `settings`' state directory.
pub async fn trust(settings: &Settings, path: &Path) -> Result<serde_json::Value, HostError> {
    let state_dir = settings.state_dir()?;
    let mut options = settings.runtime_options()?;
    options.plugin = PluginSource::File(path.to_path_buf());
    options.allocation = provider_runtime::limits::InstanceAllocation::OnDemand;
    let runtime = Runtime::new(options)?;
    let manifest = runtime.manifest().await?;
    let approved: BTreeSet<String> = settings.allow_env.iter().cloned().collect();
    // The names alone are checked (nothing is read).
    env_overrides(&manifest, &approved, |_| None)?;
    let record = TrustRecord::asked_by(&manifest, digest_of(path)?);
    let previous = load(&state_dir, &manifest.id)?;
    store(&state_dir, &record)?;
    let mut out = json!({
        "ok": true,
        "plugin": record.plugin,
        "sha256": record.sha256,
        "granted": {
            "env": record.env,
            "default_route": record.default_route,
            "origins": record.origins,
        },
    });
    if let Some(previous) = previous {
        out["replaced_sha256"] = json!(previous.sha256);
        out["added"] = json!(previous.missing(&record));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(env: &[&str], origins: &[&str], default_route: bool) -> TrustRecord {
        TrustRecord {
            plugin: "acme".into(),
            sha256: "00".repeat(32),
            env: env.iter().map(|s| s.to_string()).collect(),
            default_route,
            origins: origins.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_difference_names_what_is_asked_beyond_the_grant() {
        let granted = record(&["SHARED_REGION"], &["https://api.acme.example:443"], false);
        let asked = record(
            &["SHARED_REGION", "SHARED_URL"],
            &["https://api.acme.example:443", "https://evil.example:443"],
            true,
        );
        assert_eq!(
            granted.missing(&asked),
            [
                "+env SHARED_URL",
                "+origin https://evil.example:443",
                "+default route"
            ]
        );
        assert!(asked.missing(&granted).is_empty());
    }

    #[test]
    fn records_round_trip_and_a_changed_component_is_refused_with_the_difference() {
        let dir = tempfile::tempdir().unwrap();
        let component = dir.path().join("c.wasm");
        std::fs::write(&component, b"version two").unwrap();
        let manifest = PluginManifest {
            id: "acme".into(),
            display_name: "Acme".into(),
            settings: vec![provider_runtime::bindings::types::Setting {
                key: "region".into(),
                env: Some("SHARED_REGION".into()),
                description: String::new(),
                default_value: "eu".into(),
                kind: SettingKind::Text,
                route: None,
            }],
            routes: vec![],
        };
        assert_eq!(grant_for(dir.path(), &component, &manifest).unwrap(), None);
        let trusted = record(&[], &[], false);
        store(dir.path(), &trusted).unwrap();
        assert_eq!(load(dir.path(), "acme").unwrap(), Some(trusted));
        let err = grant_for(dir.path(), &component, &manifest)
            .unwrap_err()
            .to_string();
        assert!(err.contains("+env SHARED_REGION"), "{err}");
        assert!(err.contains("plugin trust"), "{err}");
        let pinned = TrustRecord {
            sha256: digest_of(&component).unwrap(),
            ..record(&["SHARED_REGION"], &[], false)
        };
        store(dir.path(), &pinned).unwrap();
        assert_eq!(
            grant_for(dir.path(), &component, &manifest).unwrap(),
            Some(pinned)
        );
    }
}
