//! The model catalogues (the API's and the rail's, each offered per tier) and
//! `GET /v1/models`.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Ctx, xai_error};
use crate::http::Reply;
use crate::tier::Tiers;

/// What a model is for, which decides the endpoints that accept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// A chat model without reasoning output.
    Chat,
    /// A chat model that reports reasoning tokens (and `reasoning_content` on chat).
    Reasoning,
    /// Multi-agent: only `/v1/responses`; `/v1/chat/completions` answers 400.
    MultiAgent,
    /// Image or video generation: listed, refused by both chat endpoints.
    Media,
}

/// One model of a catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueModel {
    /// Upstream id, e.g. `grok-4.3`.
    pub id: String,
    /// The tiers (JWT `tier` claim values) that may list and use it.
    pub tiers: Tiers,
    /// What it is for.
    pub kind: ModelKind,
    /// `owned_by` in listings.
    pub owned_by: String,
    /// `created` in listings (unix seconds).
    pub created: u64,
    /// `apiBackend` in listings (the rail's camelCase extra: `responses`, `messages`, …);
    /// `None` leaves it and the other extras out, as api.x.ai lists.
    pub api_backend: Option<String>,
    /// `contextWindow` in listings, with `api_backend`.
    pub context_window: Option<u64>,
    /// `reasoningEfforts` in listings (and `supportsReasoningEffort` when not empty), with
    /// `api_backend`.
    pub reasoning_efforts: Vec<String>,
}

impl CatalogueModel {
    /// A model offered to `tiers`, listed without the rail's extras.
    pub fn new(id: &str, tiers: Tiers, kind: ModelKind) -> Self {
        Self {
            id: id.to_owned(),
            tiers,
            kind,
            owned_by: "xai".into(),
            created: 1_767_225_600,
            api_backend: None,
            context_window: None,
            reasoning_efforts: Vec::new(),
        }
    }

    /// Listed with the rail's extras: a Responses-API model of this context window and
    /// these reasoning efforts.
    pub fn with_rail_extras(mut self, context_window: u64, efforts: &[&str]) -> Self {
        self.api_backend = Some("responses".into());
        self.context_window = Some(context_window);
        self.reasoning_efforts = efforts.iter().map(|&e| e.to_owned()).collect();
        self
    }

    /// Whether a caller with this `tier` claim is offered it.
    pub fn offered_to(&self, tier: u32) -> bool {
        self.tiers.includes(tier)
    }
}

/// api.x.ai's catalogue (reference doc §5): `grok-4.3` (first, the API route's default),
/// `grok-4.6`, `grok-4.5`, the `grok-4.20-0309` variants, the multi-agent model
/// (Responses only), `grok-build-0.1`, and the media models. Offered to every tier: with
/// the OAuth bearer api.x.ai bills the API pool (free tier, then credits: §4), and no
/// source reports a per-tier list there (a guess; the rail's list is per tier, see
/// [`rail_catalogue`]).
pub fn xai_catalogue() -> Vec<CatalogueModel> {
    use ModelKind::*;
    let all = || Tiers::All;
    vec![
        CatalogueModel::new("grok-4.3", all(), Chat),
        CatalogueModel::new("grok-4.6", all(), Reasoning),
        CatalogueModel::new("grok-4.5", all(), Reasoning),
        CatalogueModel::new("grok-4.20-0309-reasoning", all(), Reasoning),
        CatalogueModel::new("grok-4.20-0309-non-reasoning", all(), Chat),
        CatalogueModel::new("grok-4.20-multi-agent-0309", all(), MultiAgent),
        CatalogueModel::new("grok-build-0.1", all(), Chat),
        CatalogueModel::new("grok-imagine-image", all(), Media),
        CatalogueModel::new("grok-imagine-video", all(), Media),
    ]
}

/// The rail's catalogue (reference doc §2.5, §5): `grok-4.6` (default, listed first; efforts
/// low/medium/high/xhigh) and `grok-4.5` (low/medium/high), both 500 K tokens, both
/// `apiBackend: responses`. The list depends on the JWT tier: paid tiers get both; a free
/// account gets `grok-4.5` only, served as its free variant (`grok-4.5-build-free`, reports
/// sub2api#4568, hermes-agent#90148). That free accounts are not offered `grok-4.6`, and
/// that X Basic counts as paid, are inferred (the server-side access gate decides).
pub fn rail_catalogue() -> Vec<CatalogueModel> {
    use ModelKind::*;
    vec![
        CatalogueModel::new("grok-4.6", Tiers::paid(), Reasoning)
            .with_rail_extras(500_000, &["low", "medium", "high", "xhigh"]),
        CatalogueModel::new("grok-4.5", Tiers::All, Reasoning)
            .with_rail_extras(500_000, &["low", "medium", "high"]),
    ]
}

/// Ids a tier may use, in catalogue order.
pub fn model_ids_for_tier(catalogue: &[CatalogueModel], tier: u32) -> Vec<String> {
    catalogue
        .iter()
        .filter(|m| m.offered_to(tier))
        .map(|m| m.id.clone())
        .collect()
}

fn listing(model: &CatalogueModel) -> Value {
    let mut entry = json!({"id": model.id, "object": "model", "created": model.created,
                           "owned_by": model.owned_by});
    // The rail's entries carry camelCase extras (§2.3, GB `parse_remote_model_value`).
    if let Some(backend) = &model.api_backend {
        entry["apiBackend"] = json!(backend);
        if let Some(window) = model.context_window {
            entry["contextWindow"] = json!(window);
        }
        entry["reasoningEfforts"] = json!(model.reasoning_efforts);
        entry["supportsReasoningEffort"] = json!(!model.reasoning_efforts.is_empty());
    }
    entry
}

/// The listing the caller sees.
fn visible(ctx: &Ctx<'_>) -> Value {
    let data: Vec<Value> = ctx
        .catalogue
        .iter()
        .filter(|m| ctx.access.allows(m))
        .map(listing)
        .collect();
    json!({"object": "list", "data": data})
}

/// The rail's `ETag` of the caller's listing (also sent as `x-models-etag` on inference
/// answers, §2.4): a hash of the listing, so it changes when the list does.
pub(super) fn etag(ctx: &Ctx<'_>) -> String {
    let digest = Sha256::digest(visible(ctx).to_string().as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// `GET /v1/models` (with `ETag` on the rail: §2.3, GB `fetch_models_blocking`).
pub(super) fn list(ctx: &Ctx<'_>) -> Reply {
    let reply = Reply::json(200, &visible(ctx));
    if ctx.rail.is_some() {
        reply.with_header("etag", &etag(ctx))
    } else {
        reply
    }
}

/// `GET /v1/models/{id}`.
pub(super) fn get(ctx: &Ctx<'_>, id: &str) -> Reply {
    match lookup(ctx, id) {
        Ok(model) => Reply::json(200, &listing(model)),
        Err(reply) => reply,
    }
}

/// The model a request names, if it exists and the caller's tier (or key) includes it.
pub(super) fn lookup<'c>(ctx: &Ctx<'c>, id: &str) -> Result<&'c CatalogueModel, Reply> {
    let Some(model) = ctx.catalogue.iter().find(|m| m.id == id) else {
        // On the rail, API-only ids (`grok-4.3`, `grok-4.20-*`, `grok-build-0.1`: §2.5) land
        // here too. No source quotes the live rail's refusal; this 404 of the API's shape is
        // a guess (README lists it).
        return Err(xai_error(
            404,
            "Some requested entity was not found",
            &format!(
                "The model {id} does not exist or your team {} does not have access to it.",
                "reference"
            ),
        ));
    };
    if !ctx.access.allows(model) {
        ctx.note_tier_denied();
        return Err(xai_error(
            403,
            "The caller does not have permission to execute the specified operation",
            &format!("Your subscription tier does not include the model {id}."),
        ));
    }
    Ok(model)
}
