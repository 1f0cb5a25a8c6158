//! WIT records to the script-mode JSON shapes (keys are a contract with scripts, and the
//! Python package returns the same objects as dicts).

use provider_runtime::bindings::types::{
    ApiKeyInfo, ChatReply, Citation, ConnectionStatus, DevicePrompt, FinishReason, Lane,
    LogoutReport, Model, ModelList, PollOutcome, QuotaReport, ReasoningItem, Usage,
};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};

/// A lane's spelling.
pub fn lane(l: Lane) -> &'static str {
    match l {
        Lane::ChatCompletions => "chat_completions",
        Lane::Responses => "responses",
        Lane::Media => "media",
    }
}

/// One model, serialised with its keys in the order `json!` gives them (sorted).
struct ModelJson<'a>(&'a Model);

impl Serialize for ModelJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut map = s.serialize_map(Some(5))?;
        map.serialize_entry("created", &m.created)?;
        map.serialize_entry("id", &m.id)?;
        map.serialize_entry("lane", lane(m.lane))?;
        map.serialize_entry("owned_by", &m.owned_by)?;
        map.serialize_entry("route", &m.route)?;
        map.end()
    }
}

/// A list of models, each serialised as it is written.
struct ModelsJsonList<'a>(&'a [Model]);

impl Serialize for ModelsJsonList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ModelJson))
    }
}

/// `models`, serialised straight from the WIT record: the CLI writes it out with no
/// `Value` per model (a catalogue of tens of thousands is not held twice); the same keys, in
/// the same (sorted) order, as [`models`].
pub struct ModelsJson<'a>(pub &'a ModelList);

impl Serialize for ModelsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut map = s.serialize_map(Some(8))?;
        map.serialize_entry("bills", &m.bills)?;
        map.serialize_entry("cached", &m.cached)?;
        map.serialize_entry("default_model_id", &m.default_model_id)?;
        map.serialize_entry("fetched_at", &m.fetched_at)?;
        map.serialize_entry("media_models", &ModelsJsonList(&m.media_models))?;
        map.serialize_entry("models", &ModelsJsonList(&m.models))?;
        map.serialize_entry("ok", &true)?;
        map.serialize_entry("route", &m.route)?;
        map.end()
    }
}

fn status_fields(s: &ConnectionStatus) -> Value {
    json!({
        "connected": s.connected,
        "tier": s.tier,
        "tier_name": s.tier_name,
        "subscription": s.subscription,
        "expires_at": s.expires_at,
        "default_model_id": s.default_model_id,
        "models": ModelsJsonList(&s.models),
        "default_route": s.default_route,
        "api_key_stored": s.api_key_stored,
        "routes": s.routes.iter().map(|r| json!({
            "name": r.name,
            "usable": r.usable,
            "detail": r.detail,
            "bills": r.bills,
        })).collect::<Vec<_>>(),
        "usable_routes": s.routes.iter().filter(|r| r.usable).map(|r| &r.name).collect::<Vec<_>>(),
    })
}

/// `usage`: what upstream reported, in the JSON `serve`'s `GET /v1/usage` answers too.
pub fn quota(q: &QuotaReport) -> Value {
    provider_serve::usage_json(q)
}

fn with_ok(mut v: Value) -> Value {
    v.as_object_mut()
        .expect("object")
        .insert("ok".into(), Value::Bool(true));
    v
}

/// `status` and `refresh`.
pub fn status(s: &ConnectionStatus) -> Value {
    with_ok(status_fields(s))
}

/// `start` (and `login --no-wait`).
pub fn prompt(p: &DevicePrompt) -> Value {
    json!({
        "ok": true,
        "pending_id": p.pending_id,
        "verification_url_with_code": p.verification_url_with_code,
        "verification_url": p.verification_url,
        "user_code": p.user_code,
        "expires_in_seconds": p.expires_in_seconds,
        "interval_seconds": p.interval_seconds,
    })
}

/// `poll`: `status` is `pending` or `connected` (then with the status keys).
pub fn poll(o: &PollOutcome) -> Value {
    match o {
        PollOutcome::Pending(p) => json!({
            "ok": true,
            "status": "pending",
            "pending_id": p.pending_id,
            "interval_seconds": p.interval_seconds,
            "expires_in_seconds": p.expires_in_seconds,
        }),
        PollOutcome::Connected(s) => {
            let mut v = status(s);
            v["status"] = json!("connected");
            v
        }
    }
}

/// `logout`.
pub fn logout(r: &LogoutReport) -> Value {
    json!({ "ok": true, "was_connected": r.was_connected, "revoked": r.revoked })
}

/// `models` (as a `Value`, for the Python package's dicts; see [`ModelsJson`]).
pub fn models(m: &ModelList) -> Value {
    serde_json::to_value(ModelsJson(m)).expect("a model list serialises")
}

/// A turn's token usage (`null` when upstream gave none).
pub fn usage(u: &Option<Usage>) -> Value {
    match u {
        Some(u) => json!({
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "reasoning_tokens": u.reasoning_tokens,
            "cached_input_tokens": u.cached_input_tokens,
            "total_tokens": u.total_tokens,
        }),
        None => Value::Null,
    }
}

/// One citation.
pub fn citation(c: &Citation) -> Value {
    json!({ "url": c.url, "title": c.title, "start_index": c.start_index, "end_index": c.end_index })
}

/// One opaque reasoning item, to send back with the next turn.
pub fn reasoning_item(r: &ReasoningItem) -> Value {
    json!({ "lane": lane(r.lane), "data": r.data })
}

/// A whole chat reply (`chat --json`).
pub fn reply(r: &ChatReply) -> Value {
    json!({
        "ok": true,
        "content": r.content,
        "tool_calls": r.tool_calls.iter()
            .map(|c| json!({ "id": c.id, "name": c.name, "arguments": c.arguments }))
            .collect::<Vec<_>>(),
        "reasoning": r.reasoning,
        "reasoning_items": r.reasoning_items.iter().map(reasoning_item).collect::<Vec<_>>(),
        "citations": r.citations.iter().map(citation).collect::<Vec<_>>(),
        "model": r.model,
        "route": r.route,
        "lane": lane(r.lane),
        "usage": usage(&r.usage),
        "finish_reason": r.finish_reason.as_ref().map(FinishReason::name),
    })
}

/// `key set`, `key status`, `key delete`: whether a key is stored, and its last four
/// characters (never the key).
pub fn key_info(i: &ApiKeyInfo) -> Value {
    json!({ "ok": true, "stored": i.stored, "last_four": i.last_four })
}

/// Upstream text for a terminal: control characters (escape sequences among them) are
/// dropped, newlines and tabs kept. JSON output stays exact; this is for people.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if text.chars().any(unsafe_char) {
        text.chars()
            .filter(|c| !unsafe_char(*c))
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use provider_runtime::bindings::types::{Lane, Model, ModelList, QuotaPeriod, QuotaReport};
    use serde_json::json;

    /// The CLI writes `ModelsJson` straight out: byte for byte what a `json!` object of the
    /// same keys gave (and the Python package's dict keeps its keys).
    #[test]
    fn a_model_list_is_written_as_the_json_object_was() {
        let model = |id: &str, owned_by: Option<&str>, created: Option<u64>| Model {
            id: id.into(),
            route: "api".into(),
            lane: Lane::Responses,
            owned_by: owned_by.map(Into::into),
            created,
        };
        let m = ModelList {
            route: "api".into(),
            models: vec![model("a", Some("xai"), Some(7)), model("b\"q", None, None)],
            media_models: vec![model("img", None, Some(1))],
            default_model_id: "a".into(),
            bills: "the key".into(),
            cached: true,
            fetched_at: 9,
        };
        let old = |m: &Model| {
            json!({"id": m.id, "route": m.route, "lane": super::lane(m.lane),
                   "owned_by": m.owned_by, "created": m.created})
        };
        let before = json!({
            "ok": true, "route": m.route,
            "models": m.models.iter().map(old).collect::<Vec<_>>(),
            "media_models": m.media_models.iter().map(old).collect::<Vec<_>>(),
            "default_model_id": m.default_model_id, "bills": m.bills,
            "cached": m.cached, "fetched_at": m.fetched_at,
        });
        assert_eq!(
            serde_json::to_string(&super::ModelsJson(&m)).unwrap(),
            serde_json::to_string(&before).unwrap()
        );
        assert_eq!(super::models(&m), before);
    }

    #[test]
    fn usage_shows_the_allowance_in_dollars() {
        let q = QuotaReport {
            route: "subscription".into(),
            percent_used: Some(42.5),
            period: Some(QuotaPeriod::Weekly),
            period_start: Some(1),
            resets_at: Some(2),
            on_demand_cap_cents: Some(5000),
            on_demand_used_cents: Some(300),
            prepaid_balance_cents: Some(1250),
            credits: None,
            detail: "d".into(),
            fetched_at: 3,
        };
        let v = super::quota(&q);
        assert_eq!(v["known"], true);
        assert_eq!(v["period"], "weekly");
        assert_eq!(v["on_demand_cap_usd"], 50.0);
        assert_eq!(v["prepaid_balance_usd"], 12.5);
        assert_eq!(
            v["summary"],
            "Weekly limit: 42% used · Pay-as-you-go: $3.00 of $50.00 · Credits: $12.50"
        );
        let unknown = QuotaReport {
            percent_used: None,
            period: None,
            period_start: None,
            resets_at: None,
            on_demand_cap_cents: None,
            on_demand_used_cents: None,
            prepaid_balance_cents: None,
            ..q
        };
        let v = super::quota(&unknown);
        assert_eq!(
            (v["known"].clone(), v["summary"].clone()),
            (false.into(), serde_json::Value::Null)
        );
    }

    #[test]
    fn escape_sequences_never_reach_the_terminal() {
        assert_eq!(
            super::terminal_safe("a\u{1b}[2Jb\r\nc\td\u{7}\u{9b}1m"),
            "a[2Jb\nc\td1m"
        );
        assert!(matches!(
            super::terminal_safe("plain\n"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
