//! The model catalogue: `/models` answers, lanes, route prefixes, and the cache records
//! (one per route).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ProviderError;
use crate::json::u64_field;
use crate::record::{Fields, Record};
use crate::routes::Route;
use crate::types::{Lane, Model, ModelList};

/// Store key of the catalogue cached before routes existed (deleted by logout).
pub const LEGACY_MODELS_KEY: &str = "models";
/// How long the catalogue is reused (1 h).
pub const MODELS_TTL_MS: u64 = 60 * 60 * 1000;

/// Store key of `route`'s cached catalogue, e.g. `models.api`.
pub fn models_key(route: Route) -> String {
    format!("models.{}", route.name())
}

/// Which dialect serves an (unprefixed) upstream model id.
pub fn lane_for(upstream_id: &str) -> Lane {
    let id = upstream_id.to_ascii_lowercase();
    if id.starts_with("grok-imagine") {
        Lane::Media
    } else if id.contains("multi-agent") {
        Lane::Responses
    } else {
        Lane::ChatCompletions
    }
}

/// The lane a catalogue entry declares: the rail's camelCase `apiBackend` (xAI's CLI picks
/// the dialect by it: reference doc section 2.3), when it names one this plugin speaks.
/// `messages` (Anthropic's dialect) is not spoken: such a model keeps the id's rule.
fn declared_lane(entry: &Value) -> Option<Lane> {
    let backend = entry
        .get("apiBackend")
        .or_else(|| entry.get("api_backend"))?
        .as_str()?;
    match backend.to_ascii_lowercase().replace('-', "_").as_str() {
        "responses" => Some(Lane::Responses),
        "chat_completions" | "completions" | "chat" => Some(Lane::ChatCompletions),
        _ => None,
    }
}

/// Read `{data: [{id, created?, owned_by?, apiBackend?}]}`, listed for `route`, into chat
/// models and media models (ids with the route's prefix, upstream order kept). A model's
/// lane is the one its entry declares (`apiBackend`), else [`lane_for`] its id.
pub fn parse_models(v: &Value, route: Route) -> Result<(Vec<Model>, Vec<Model>), ProviderError> {
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::InvalidResponse("model list without data array".into()))?;
    let (mut chat, mut media) = (Vec::new(), Vec::new());
    for entry in data {
        // The lane is decided on the id without our prefix, exactly as `chat::plan` will
        // decide it (found by fuzzing: `xai-grok/grok-imagine-image` from upstream was
        // listed as a chat model that chat then refused, and `xai-grok/` became an empty id).
        let upstream = entry
            .get("id")
            .and_then(Value::as_str)
            .map(|id| route.unprefixed(id))
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ProviderError::InvalidResponse("model entry without id".into()))?;
        let lane = match lane_for(upstream) {
            Lane::Media => Lane::Media,
            by_id => declared_lane(entry).unwrap_or(by_id),
        };
        let model = Model {
            id: route.prefixed(upstream),
            lane,
            route: route.name().to_owned(),
            owned_by: entry
                .get("owned_by")
                .and_then(Value::as_str)
                .map(str::to_owned),
            created: u64_field(entry, "created"),
        };
        if lane == Lane::Media {
            media.push(model);
        } else {
            chat.push(model);
        }
    }
    Ok((chat, media))
}

/// The default model of `route`, from its live catalogue: the subscription rail lists its
/// default first (xAI's CLI takes the first entry: `grok-4.6` since 2026-08-19); the
/// developer API's default is [`Route::default_model_id`] when offered, else its first
/// chat model. With no catalogue known, [`Route::default_model_id`].
pub fn choose_default(route: Route, chat_models: &[Model]) -> String {
    let preferred = route.default_model_id();
    let Some(first) = chat_models.first() else {
        return preferred;
    };
    if route != Route::Subscription && chat_models.iter().any(|m| m.id == preferred) {
        preferred
    } else {
        first.id.clone()
    }
}

/// A route's cached catalogue (store key [`models_key`], JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelsCache {
    /// When fetched (unix ms).
    pub fetched_at_ms: u64,
    /// The tier of the credentials it was fetched with (another tier sees other models).
    #[serde(default)]
    pub tier: Option<u32>,
    /// Chat models.
    pub models: Vec<Model>,
    /// Image and video models.
    pub media_models: Vec<Model>,
}

impl Record for ModelsCache {
    fn read(f: &mut Fields) -> Option<Self> {
        Some(Self {
            fetched_at_ms: f.u64("fetched_at_ms")?,
            tier: f.opt_u32("tier")?,
            models: f.list("models")?,
            media_models: f.list("media_models")?,
        })
    }
}

impl ModelsCache {
    /// Whether younger than the TTL and fetched for the same tier.
    pub fn is_fresh(&self, now_ms: u64, tier: Option<u32>) -> bool {
        self.tier == tier
            && self.fetched_at_ms <= now_ms
            && now_ms - self.fetched_at_ms < MODELS_TTL_MS
    }

    /// The caller-facing list of `route`.
    pub fn to_list(&self, route: Route, cached: bool) -> ModelList {
        ModelList {
            route: route.name().to_owned(),
            default_model_id: choose_default(route, &self.models),
            bills: route.bills().to_owned(),
            models: self.models.clone(),
            media_models: self.media_models.clone(),
            cached,
            fetched_at: self.fetched_at_ms / 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splits_lanes() {
        let (chat, media) = parse_models(
            &json!({"object": "list", "data": [
                {"id": "grok-4.3", "created": 1700000000, "owned_by": "xai", "object": "model"},
                {"id": "grok-4.20-multi-agent-0309"},
                {"id": "grok-imagine-image"},
                {"id": "grok-imagine-video", "created": "5"},
            ]}),
            Route::Api,
        )
        .unwrap();
        assert_eq!(chat.len(), 2);
        assert_eq!(
            chat[0],
            Model {
                id: "xai-grok/grok-4.3".into(),
                lane: Lane::ChatCompletions,
                route: "api".into(),
                owned_by: Some("xai".into()),
                created: Some(1_700_000_000)
            }
        );
        assert_eq!(chat[1].lane, Lane::Responses);
        assert_eq!(
            media
                .iter()
                .map(|m| (m.id.as_str(), m.lane))
                .collect::<Vec<_>>(),
            vec![
                ("xai-grok/grok-imagine-image", Lane::Media),
                ("xai-grok/grok-imagine-video", Lane::Media)
            ]
        );
        assert_eq!(media[1].created, Some(5));
        assert!(parse_models(&json!({"data": [{"created": 1}]}), Route::Api).is_err());
        assert!(parse_models(&json!({"data": [{"id": "xai-grok/"}]}), Route::Api).is_err());
        assert!(parse_models(&json!({"data": [{"id": " "}]}), Route::Api).is_err());
        // Already prefixed upstream ids land in the same lane as unprefixed ones.
        let (chat, media) = parse_models(
            &json!({"data": [
                {"id": "xai-grok/grok-imagine-image"}, {"id": "xai-grok/grok-4.20-multi-agent"}
            ]}),
            Route::Api,
        )
        .unwrap();
        assert_eq!(media[0].id, "xai-grok/grok-imagine-image");
        assert_eq!(
            (chat[0].id.as_str(), chat[0].lane),
            ("xai-grok/grok-4.20-multi-agent", Lane::Responses)
        );
        assert!(parse_models(&json!({"models": []}), Route::Api).is_err());
        // Each route lists with its own prefix.
        let (chat, _) = parse_models(
            &json!({"data": [{"id": "grok-4.3"}, {"id": "xai-grok-sub/grok-4.3-build"}]}),
            Route::Subscription,
        )
        .unwrap();
        assert_eq!(
            chat.iter()
                .map(|m| (m.id.as_str(), m.route.as_str()))
                .collect::<Vec<_>>(),
            [
                ("xai-grok-sub/grok-4.3", "subscription"),
                ("xai-grok-sub/grok-4.3-build", "subscription")
            ]
        );
        let (chat, _) =
            parse_models(&json!({"data": [{"id": "grok-4.3"}]}), Route::ApiKey).unwrap();
        assert_eq!(chat[0].id, "xai/grok-4.3");
    }

    #[test]
    fn default_model() {
        let m = |id: &str| Model {
            id: id.into(),
            lane: Lane::ChatCompletions,
            route: "api".into(),
            owned_by: None,
            created: None,
        };
        let api = Route::Api;
        assert_eq!(choose_default(api, &[]), "xai-grok/grok-4.3");
        assert_eq!(
            choose_default(api, &[m("xai-grok/a"), m("xai-grok/grok-4.3")]),
            "xai-grok/grok-4.3"
        );
        assert_eq!(choose_default(api, &[m("xai-grok/a")]), "xai-grok/a");
        assert_eq!(choose_default(Route::ApiKey, &[]), "xai/grok-4.3");
        // The rail's default is its catalogue's first entry, grok-4.6 before it is known.
        let rail = Route::Subscription;
        assert_eq!(choose_default(rail, &[]), "xai-grok-sub/grok-4.6");
        assert_eq!(
            choose_default(
                rail,
                &[m("xai-grok-sub/grok-4.7"), m("xai-grok-sub/grok-4.6")]
            ),
            "xai-grok-sub/grok-4.7"
        );
    }

    #[test]
    fn a_declared_api_backend_decides_the_lane() {
        let v = json!({"data": [
            {"id": "grok-4.6", "apiBackend": "responses", "contextWindow": 500000},
            {"id": "grok-4.5", "apiBackend": "chat_completions"},
            {"id": "grok-x", "apiBackend": "messages"},
            {"id": "grok-4.20-multi-agent-0309"},
            {"id": "grok-imagine-image", "apiBackend": "responses"},
        ]});
        let (chat, media) = parse_models(&v, Route::Subscription).unwrap();
        let lanes: Vec<(&str, Lane)> = chat.iter().map(|m| (m.id.as_str(), m.lane)).collect();
        assert_eq!(
            lanes,
            [
                ("xai-grok-sub/grok-4.6", Lane::Responses),
                ("xai-grok-sub/grok-4.5", Lane::ChatCompletions),
                // A dialect the plugin does not speak: the id's rule.
                ("xai-grok-sub/grok-x", Lane::ChatCompletions),
                ("xai-grok-sub/grok-4.20-multi-agent-0309", Lane::Responses),
            ]
        );
        // A media model stays one whatever the entry says.
        assert_eq!(media[0].lane, Lane::Media);
        assert_eq!(models_key(Route::ApiKey), "models.api-key");
    }
}
