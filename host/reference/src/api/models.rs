//! The tier-gated model catalogue and `GET /v1/models`.

use serde_json::{Value, json};

use super::{Ctx, xai_error};
use crate::http::Reply;

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

/// One model of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueModel {
    /// Upstream id, e.g. `grok-4.3`.
    pub id: String,
    /// Lowest subscription tier that may list and use it.
    pub min_tier: u32,
    /// What it is for.
    pub kind: ModelKind,
    /// `owned_by` in listings.
    pub owned_by: String,
    /// `created` in listings (unix seconds).
    pub created: u64,
}

impl CatalogueModel {
    fn new(id: &str, min_tier: u32, kind: ModelKind) -> Self {
        Self {
            id: id.to_owned(),
            min_tier,
            kind,
            owned_by: "xai".into(),
            created: 1_767_225_600,
        }
    }
}

/// The catalogue as observed at xAI (seed's tier table): tier 1 `grok-4.3`; 2 adds the
/// `grok-4.20-0309` variants; 3 adds `grok-4.6`; 4 adds `grok-build-0.1` and the
/// multi-agent model; every tier lists `grok-imagine-image` and `grok-imagine-video`.
pub fn xai_catalogue() -> Vec<CatalogueModel> {
    use ModelKind::*;
    vec![
        CatalogueModel::new("grok-4.3", 1, Chat),
        CatalogueModel::new("grok-4.20-0309-reasoning", 2, Reasoning),
        CatalogueModel::new("grok-4.20-0309-non-reasoning", 2, Chat),
        CatalogueModel::new("grok-4.6", 3, Reasoning),
        CatalogueModel::new("grok-build-0.1", 4, Chat),
        CatalogueModel::new("grok-4.20-multi-agent-0309", 4, MultiAgent),
        CatalogueModel::new("grok-imagine-image", 1, Media),
        CatalogueModel::new("grok-imagine-video", 1, Media),
    ]
}

/// Ids a tier may use, in catalogue order.
pub fn model_ids_for_tier(catalogue: &[CatalogueModel], tier: u32) -> Vec<String> {
    catalogue
        .iter()
        .filter(|m| m.min_tier <= tier)
        .map(|m| m.id.clone())
        .collect()
}

fn listing(model: &CatalogueModel) -> Value {
    json!({"id": model.id, "object": "model", "created": model.created, "owned_by": model.owned_by})
}

/// `GET /v1/models`.
pub(super) fn list(ctx: &Ctx<'_>) -> Reply {
    let data: Vec<Value> = ctx
        .catalogue
        .iter()
        .filter(|m| ctx.access.allows(m))
        .map(listing)
        .collect();
    Reply::json(200, &json!({"object": "list", "data": data}))
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
