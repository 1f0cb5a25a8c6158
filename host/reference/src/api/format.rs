//! Structured output: the requested format (chat `response_format`, Responses
//! `text.format`) and the deterministic answer that follows it.

use serde_json::{Map, Value, json};

use super::validate::{self, Invalid};

/// The output format a request asks for.
pub(super) enum Format {
    Text,
    /// `{"echo": <text>}`.
    JsonObject,
    /// An object with every property of the schema.
    JsonSchema(Value),
}

impl Format {
    /// A format of type `kind`; `spec` holds `name`, `schema` and `strict` (chat nests
    /// them under `json_schema`, Responses does not). A schema must be an object.
    pub fn parse(kind: &str, spec: Option<&Value>, at: &str) -> Result<Self, Invalid> {
        match kind {
            "text" => Ok(Self::Text),
            "json_object" => Ok(Self::JsonObject),
            "json_schema" => {
                let spec = spec.ok_or_else(|| format!("Missing required parameter: '{at}'"))?;
                validate::object(spec, at)?;
                validate::name(spec, "name", at)?;
                validate::opt_str(spec, "description", at)?;
                validate::opt_bool(spec, "strict", at)?;
                let schema = validate::opt_object(spec, "schema", at)?.ok_or_else(|| {
                    format!(
                        "Missing required parameter: '{}'",
                        validate::path(at, "schema")
                    )
                })?;
                Ok(Self::JsonSchema(schema.clone()))
            }
            other => Err(format!(
                "Invalid value for the format type: {other:?}; supported are text, json_object, json_schema"
            )),
        }
    }

    /// Whether the answer is plain text (so `reply_bytes` may stretch it).
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text)
    }

    /// `text` rendered in this format: as is; `{"echo": text}`; or each property of the
    /// schema with strings = `text`, numbers and integers = 0, booleans = true, else null.
    pub fn render(&self, text: &str) -> String {
        match self {
            Self::Text => text.to_owned(),
            Self::JsonObject => json!({"echo": text}).to_string(),
            Self::JsonSchema(schema) => {
                let mut out = Map::new();
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    for (name, prop) in props {
                        out.insert(name.clone(), sample(prop, text));
                    }
                }
                Value::Object(out).to_string()
            }
        }
    }
}

/// A value of a property's type (the first non-null one of a type list).
fn sample(prop: &Value, text: &str) -> Value {
    let kind = match prop.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        _ => None,
    };
    match kind {
        Some("string") => json!(text),
        Some("number" | "integer") => json!(0),
        Some("boolean") => json!(true),
        _ => Value::Null,
    }
}
