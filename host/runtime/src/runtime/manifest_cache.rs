//! The plugin's manifest, remembered per component in the compile cache.
//!
//! The manifest is a function of the component alone (its export may call no import), yet
//! asking for it takes an instance of its own: for a CLI call, a second instantiation
//! besides the session's. So it is kept beside the compiled artifact, under the
//! component's SHA-256 and with the same MAC (a key derived from the master key): only
//! what this host wrote for these exact bytes is believed, and it is checked again
//! (`check_manifest`) like a fresh answer. A file that fails to verify or to decode is
//! asked again and replaced.

use serde_json::{Value, json};

use crate::bindings::types::{CredentialKind, PluginManifest, RouteInfo, Setting, SettingKind};
use crate::compile_cache::CompileCache;

/// Where one component's manifest is kept.
pub(super) struct ManifestCache {
    cache: CompileCache,
    name: String,
}

impl ManifestCache {
    pub(super) fn new(cache: CompileCache, digest: &[u8; 32]) -> Self {
        Self {
            cache,
            name: format!("{}.manifest", hex::encode(digest)),
        }
    }

    /// The manifest written for this component, if it verifies and reads.
    pub(super) fn get(&self) -> Option<PluginManifest> {
        decode(&serde_json::from_slice(&self.cache.read(&self.name)?).ok()?)
    }

    /// Remembers `manifest` (best effort: without it the next runtime asks again).
    pub(super) fn put(&self, manifest: &PluginManifest) {
        self.cache
            .write(&self.name, encode(manifest).to_string().as_bytes());
    }
}

fn encode(m: &PluginManifest) -> Value {
    json!({
        "id": m.id,
        "display_name": m.display_name,
        "settings": m.settings.iter().map(|s| json!({
            "key": s.key,
            "env": s.env,
            "description": s.description,
            "default_value": s.default_value,
            "kind": match s.kind {
                SettingKind::Endpoint => "endpoint",
                SettingKind::RouteName => "route-name",
                SettingKind::Text => "text",
            },
            "route": s.route,
        })).collect::<Vec<_>>(),
        "routes": m.routes.iter().map(|r| json!({
            "name": r.name,
            "description": r.description,
            "credential": match r.credential {
                CredentialKind::Oauth => "oauth",
                CredentialKind::ApiKey => "api-key",
            },
            "model_prefix": r.model_prefix,
        })).collect::<Vec<_>>(),
    })
}

fn decode(v: &Value) -> Option<PluginManifest> {
    let text = |v: &Value, k: &str| v.get(k)?.as_str().map(str::to_owned);
    let maybe = |v: &Value, k: &str| match v.get(k)? {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(s.clone())),
        _ => None,
    };
    let settings = v
        .get("settings")?
        .as_array()?
        .iter()
        .map(|s| {
            Some(Setting {
                key: text(s, "key")?,
                env: maybe(s, "env")?,
                description: text(s, "description")?,
                default_value: text(s, "default_value")?,
                kind: match s.get("kind")?.as_str()? {
                    "endpoint" => SettingKind::Endpoint,
                    "route-name" => SettingKind::RouteName,
                    "text" => SettingKind::Text,
                    _ => return None,
                },
                route: maybe(s, "route")?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let routes = v
        .get("routes")?
        .as_array()?
        .iter()
        .map(|r| {
            Some(RouteInfo {
                name: text(r, "name")?,
                description: text(r, "description")?,
                credential: match r.get("credential")?.as_str()? {
                    "oauth" => CredentialKind::Oauth,
                    "api-key" => CredentialKind::ApiKey,
                    _ => return None,
                },
                model_prefix: text(r, "model_prefix")?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(PluginManifest {
        id: text(v, "id")?,
        display_name: text(v, "display_name")?,
        settings,
        routes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PluginManifest {
        PluginManifest {
            id: "xai-grok".into(),
            display_name: "Grok".into(),
            settings: vec![
                Setting {
                    key: "api-base".into(),
                    env: Some("XAI_API_BASE".into()),
                    description: "the API".into(),
                    default_value: "https://api.x.ai/v1".into(),
                    kind: SettingKind::Endpoint,
                    route: Some("api".into()),
                },
                Setting {
                    key: "default-route".into(),
                    env: None,
                    description: "which route".into(),
                    default_value: "api".into(),
                    kind: SettingKind::RouteName,
                    route: None,
                },
                Setting {
                    key: "note".into(),
                    env: None,
                    description: "\"quoted\" \u{e9}".into(),
                    default_value: String::new(),
                    kind: SettingKind::Text,
                    route: None,
                },
            ],
            routes: vec![
                RouteInfo {
                    name: "api".into(),
                    description: "the developer API".into(),
                    credential: CredentialKind::Oauth,
                    model_prefix: "xai-grok/".into(),
                },
                RouteInfo {
                    name: "api-key".into(),
                    description: "a key".into(),
                    credential: CredentialKind::ApiKey,
                    model_prefix: "xai-key/".into(),
                },
            ],
        }
    }

    #[test]
    fn a_manifest_reads_back_as_written_and_only_from_this_host() {
        let tmp = tempfile::tempdir().unwrap();
        let open = |key: u8| {
            CompileCache::open(
                &tmp.path().join("cache"),
                crate::compile_cache::CacheKey([key; 32]),
            )
            .unwrap()
        };
        let cached = ManifestCache::new(open(1), &[7; 32]);
        assert!(cached.get().is_none());
        cached.put(&sample());
        assert_eq!(
            format!("{:?}", cached.get().unwrap()),
            format!("{:?}", sample())
        );
        // Another component's name, another host's key: nothing.
        assert!(ManifestCache::new(open(1), &[8; 32]).get().is_none());
        assert!(ManifestCache::new(open(2), &[7; 32]).get().is_none());
    }

    #[test]
    fn what_does_not_decode_is_not_a_manifest() {
        let good = encode(&sample());
        assert!(decode(&good).is_some());
        for (path, bad) in [
            ("/routes/0/credential", json!("password")),
            ("/settings/0/kind", json!("file")),
            ("/settings/0/env", json!(3)),
            ("/id", Value::Null),
            ("/settings", json!({})),
        ] {
            let mut v = good.clone();
            *v.pointer_mut(path).unwrap() = bad;
            assert!(decode(&v).is_none(), "{path}");
        }
    }
}
