//! The model catalogue: `/models` answers, lanes, the prefix, and the cache record.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{DEFAULT_MODEL_ID, MODEL_PREFIX};
use crate::error::ProviderError;
use crate::json::u64_field;
use crate::types::{Lane, Model, ModelList};

/// Store key of the cached catalogue.
pub const MODELS_KEY: &str = "models";
/// How long the catalogue is reused (1 h).
pub const MODELS_TTL_MS: u64 = 60 * 60 * 1000;

/// `grok-4.3` -> `xai-grok/grok-4.3`.
pub fn prefixed(upstream_id: &str) -> String {
    format!("{MODEL_PREFIX}{upstream_id}")
}

/// `xai-grok/grok-4.3` (or `grok-4.3`) -> `grok-4.3`.
pub fn unprefixed(id: &str) -> &str {
    id.strip_prefix(MODEL_PREFIX).unwrap_or(id)
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

/// Read `{data: [{id, created?, owned_by?}]}` into chat models and media models (ids
/// prefixed, upstream order kept).
pub fn parse_models(v: &Value) -> Result<(Vec<Model>, Vec<Model>), ProviderError> {
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::InvalidResponse("model list without data array".into()))?;
    let (mut chat, mut media) = (Vec::new(), Vec::new());
    for entry in data {
        // The lane is decided on the id without our prefix, exactly as `chat::route` will
        // decide it (found by fuzzing: `xai-grok/grok-imagine-image` from upstream was
        // listed as a chat model that chat then refused, and `xai-grok/` became an empty id).
        let upstream = entry
            .get("id")
            .and_then(Value::as_str)
            .map(unprefixed)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ProviderError::InvalidResponse("model entry without id".into()))?;
        let lane = lane_for(upstream);
        let model = Model {
            id: prefixed(upstream),
            lane,
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

/// The default model: [`DEFAULT_MODEL_ID`] when the catalogue has it (or is unknown),
/// else the first chat model.
pub fn choose_default(chat_models: &[Model]) -> String {
    if chat_models.is_empty() || chat_models.iter().any(|m| m.id == DEFAULT_MODEL_ID) {
        DEFAULT_MODEL_ID.to_owned()
    } else {
        chat_models[0].id.clone()
    }
}

/// The cached catalogue (store key `models`, JSON).
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

impl ModelsCache {
    /// Whether younger than the TTL and fetched for the same tier.
    pub fn is_fresh(&self, now_ms: u64, tier: Option<u32>) -> bool {
        self.tier == tier
            && self.fetched_at_ms <= now_ms
            && now_ms - self.fetched_at_ms < MODELS_TTL_MS
    }

    /// The caller-facing list.
    pub fn to_list(&self, cached: bool) -> ModelList {
        ModelList {
            default_model_id: choose_default(&self.models),
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
        let (chat, media) = parse_models(&json!({"object": "list", "data": [
            {"id": "grok-4.3", "created": 1700000000, "owned_by": "xai", "object": "model"},
            {"id": "grok-4.20-multi-agent-0309"},
            {"id": "grok-imagine-image"},
            {"id": "grok-imagine-video", "created": "5"},
        ]}))
        .unwrap();
        assert_eq!(chat.len(), 2);
        assert_eq!(
            chat[0],
            Model {
                id: "xai-grok/grok-4.3".into(),
                lane: Lane::ChatCompletions,
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
        assert!(parse_models(&json!({"data": [{"created": 1}]})).is_err());
        assert!(parse_models(&json!({"data": [{"id": "xai-grok/"}]})).is_err());
        assert!(parse_models(&json!({"data": [{"id": " "}]})).is_err());
        // Already prefixed upstream ids land in the same lane as unprefixed ones.
        let (chat, media) = parse_models(&json!({"data": [
            {"id": "xai-grok/grok-imagine-image"}, {"id": "xai-grok/grok-4.20-multi-agent"}
        ]}))
        .unwrap();
        assert_eq!(media[0].id, "xai-grok/grok-imagine-image");
        assert_eq!(
            (chat[0].id.as_str(), chat[0].lane),
            ("xai-grok/grok-4.20-multi-agent", Lane::Responses)
        );
        assert!(parse_models(&json!({"models": []})).is_err());
    }

    #[test]
    fn default_model() {
        let m = |id: &str| Model {
            id: id.into(),
            lane: Lane::ChatCompletions,
            owned_by: None,
            created: None,
        };
        assert_eq!(choose_default(&[]), DEFAULT_MODEL_ID);
        assert_eq!(
            choose_default(&[m("xai-grok/a"), m(DEFAULT_MODEL_ID)]),
            DEFAULT_MODEL_ID
        );
        assert_eq!(choose_default(&[m("xai-grok/a")]), "xai-grok/a");
        assert_eq!(unprefixed("xai-grok/grok-4.3"), "grok-4.3");
        assert_eq!(unprefixed("grok-4.3"), "grok-4.3");
    }
}
