//! `GET /v1/models` and `GET /v1/models/{id}` bodies: OpenAI's list and model objects,
//! serialized straight from the plugin's lists (no JSON tree per entry: a plugin may list
//! many models, and the reply is written once).

use std::borrow::Cow;

use provider_runtime::bindings::types::{Model, ModelList};
use serde::Serialize;

use super::anthropic::Aliases;
use crate::openai::{model_id, slash_free};

/// One model as OpenAI's model object; `route` (and `alias_for`, for a `--model-alias`
/// entry) are extension fields SDKs ignore.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct ModelObject<'a> {
    /// The id it is listed under: its own, its slash-free form, or an alias.
    pub id: Cow<'a, str>,
    object: &'static str,
    created: u64,
    owned_by: &'a str,
    /// The route it was listed for; none for an alias of a model no route lists.
    route: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alias_for: Option<String>,
}

impl<'a> ModelObject<'a> {
    fn of(m: &'a Model, id: Cow<'a, str>) -> Self {
        Self {
            id,
            object: "model",
            created: m.created.unwrap_or(0),
            owned_by: m.owned_by.as_deref().unwrap_or("unknown"),
            route: Some(&m.route),
            alias_for: None,
        }
    }
}

/// OpenAI's list of models.
#[derive(Serialize, Debug)]
pub struct ModelListBody<'a> {
    object: &'static str,
    /// The entries, in the order `GET /v1/models` lists them.
    pub data: Vec<ModelObject<'a>>,
}

/// The lists of one or more routes in one OpenAI list. A model whose id has a route prefix
/// (`xai-grok-sub/grok-4.3`) is listed a second time under its slash-free form
/// (`xai-grok-sub--grok-4.3`), for clients that read a slash as a provider prefix of their
/// own (Python `openai-agents`); then each alias (`--model-alias`) with the entry of the
/// model it names.
pub fn models<'a>(lists: &'a [ModelList], aliases: &Aliases) -> ModelListBody<'a> {
    let mut data: Vec<ModelObject<'a>> = lists
        .iter()
        .flat_map(|l| &l.models)
        .flat_map(|m| {
            std::iter::once(ModelObject::of(m, Cow::Borrowed(&m.id)))
                .chain(slash_free(&m.id).map(|alias| ModelObject::of(m, Cow::Owned(alias))))
        })
        .collect();
    for (alias, target) in aliases {
        let model = model_id(target);
        let mut entry = find_in(&data, &model).cloned().unwrap_or(ModelObject {
            id: Cow::Borrowed(""),
            object: "model",
            created: 0,
            owned_by: "unknown",
            route: None,
            alias_for: None,
        });
        entry.id = Cow::Owned(alias.clone());
        entry.alias_for = Some(model);
        data.push(entry);
    }
    ModelListBody {
        object: "list",
        data,
    }
}

/// The entry of `list` that `id` names: listed under that id (its own, its slash-free
/// form or an alias), or, for an id without a route prefix, the first route's (the
/// default's) model of that name, as a chat request would resolve it.
pub fn find<'l, 'a>(list: &'l ModelListBody<'a>, id: &str) -> Option<&'l ModelObject<'a>> {
    find_in(&list.data, id)
}

fn find_in<'l, 'a>(data: &'l [ModelObject<'a>], id: &str) -> Option<&'l ModelObject<'a>> {
    data.iter().find(|m| m.id == id).or_else(|| {
        let first = data.first()?.route;
        data.iter()
            .find(|m| m.route == first && m.id.split_once('/').is_some_and(|(_, rest)| rest == id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_runtime::bindings::types::Lane;
    use serde_json::{Value, json};

    fn model(id: &str, route: &str) -> Model {
        Model {
            id: id.into(),
            lane: Lane::ChatCompletions,
            route: route.into(),
            owned_by: None,
            created: None,
        }
    }

    fn list(models: Vec<Model>) -> ModelList {
        ModelList {
            route: models.first().map(|m| m.route.clone()).unwrap_or_default(),
            models,
            media_models: Vec::new(),
            default_model_id: String::new(),
            bills: String::new(),
            cached: false,
            fetched_at: 0,
        }
    }

    #[test]
    fn slash_free_ids_are_listed_beside_prefixed_ones() {
        let lists = [list(vec![model("p/a", "r"), model("b", "r")])];
        let body = serde_json::to_value(models(&lists, &Aliases::new())).unwrap();
        let ids: Vec<Value> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].clone())
            .collect();
        assert_eq!(ids, [json!("p/a"), json!("p--a"), json!("b")]);
        assert_eq!(body["object"], "list");
        assert_eq!(
            body["data"][0],
            json!({"id": "p/a", "object": "model", "created": 0, "owned_by": "unknown", "route": "r"})
        );
    }

    #[test]
    fn a_model_is_found_by_any_id_a_request_may_use() {
        let lists = [
            list(vec![model("p/a", "r")]),
            list(vec![model("q/a", "s"), model("q/b", "s")]),
        ];
        let body = models(&lists, &Aliases::new());
        assert_eq!(find(&body, "p/a").unwrap().id, "p/a");
        assert_eq!(find(&body, "p--a").unwrap().id, "p--a");
        assert_eq!(find(&body, "a").unwrap().id, "p/a");
        // Only the default route answers for a bare id.
        assert!(find(&body, "b").is_none());
        assert!(find(&body, "nope").is_none());
    }

    #[test]
    fn aliases_are_listed_with_the_entry_of_their_model() {
        let lists = [list(vec![model("p/a", "r")])];
        let aliases = Aliases::from([
            ("claude-x".into(), "p--a".into()),
            ("claude-y".into(), "nowhere".into()),
        ]);
        let body = models(&lists, &aliases);
        let x = find(&body, "claude-x").unwrap();
        assert_eq!((x.route, x.alias_for.as_deref()), (Some("r"), Some("p/a")));
        let y = serde_json::to_value(find(&body, "claude-y").unwrap()).unwrap();
        assert_eq!(
            y,
            json!({"id": "claude-y", "object": "model", "created": 0, "owned_by": "unknown",
                   "route": null, "alias_for": "nowhere"})
        );
    }
}
