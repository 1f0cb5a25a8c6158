//! Field checks shared by both lanes. Real servers answer 400 to a malformed field rather
//! than ignoring it, so a client that sends a wrong shape fails here as it would upstream.
//! Unknown fields are ignored, as upstream does for most of them.

use base64::Engine;
use serde_json::{Map, Value};

use super::turn::Image;

/// Why a request is refused (the `error` of the 400).
pub(super) type Invalid = String;

/// `at.key`, or `key` at the top level.
pub(super) fn path(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

/// `value` as an object.
pub(super) fn object<'a>(value: &'a Value, at: &str) -> Result<&'a Map<String, Value>, Invalid> {
    value
        .as_object()
        .ok_or_else(|| format!("Invalid '{at}': expected an object"))
}

/// An optional string field.
pub(super) fn opt_str<'a>(v: &'a Value, key: &str, at: &str) -> Result<Option<&'a str>, Invalid> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("Invalid '{}': expected a string", path(at, key))),
    }
}

/// A required string field.
pub(super) fn req_str<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a str, Invalid> {
    opt_str(v, key, at)?.ok_or_else(|| format!("Missing required parameter: '{}'", path(at, key)))
}

/// An optional boolean field.
pub(super) fn opt_bool(v: &Value, key: &str, at: &str) -> Result<Option<bool>, Invalid> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("Invalid '{}': expected a boolean", path(at, key))),
    }
}

/// An optional object field.
pub(super) fn opt_object<'a>(
    v: &'a Value,
    key: &str,
    at: &str,
) -> Result<Option<&'a Value>, Invalid> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(o @ Value::Object(_)) => Ok(Some(o)),
        Some(_) => Err(format!("Invalid '{}': expected an object", path(at, key))),
    }
}

/// An optional array field.
pub(super) fn opt_array<'a>(
    v: &'a Value,
    key: &str,
    at: &str,
) -> Result<Option<&'a [Value]>, Invalid> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(format!("Invalid '{}': expected an array", path(at, key))),
    }
}

/// An optional number within `[min, max]`.
pub(super) fn opt_number(v: &Value, key: &str, min: f64, max: f64) -> Result<(), Invalid> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Number(n)) if n.as_f64().is_some_and(|x| (min..=max).contains(&x)) => Ok(()),
        Some(_) => Err(format!(
            "Invalid '{key}': expected a number between {min} and {max}"
        )),
    }
}

/// An optional integer: any (`min: None`, e.g. a seed) or at least `min` (token caps).
pub(super) fn opt_integer(v: &Value, key: &str, min: Option<u64>) -> Result<Option<u64>, Invalid> {
    let Some(field) = v.get(key).filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match (min, field.as_u64(), field.as_i64()) {
        (None, _, Some(_)) => Ok(field.as_u64()),
        (Some(min), Some(n), _) if n >= min => Ok(Some(n)),
        (Some(min), ..) => Err(format!(
            "Invalid '{key}': expected an integer of at least {min}"
        )),
        (None, ..) => Err(format!("Invalid '{key}': expected an integer")),
    }
}

/// An optional string among `allowed`.
pub(super) fn opt_enum<'a>(
    v: &'a Value,
    key: &str,
    at: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, Invalid> {
    match opt_str(v, key, at)? {
        Some(s) if !allowed.contains(&s) => Err(format!(
            "Invalid value for '{}': {s:?}; supported values are {allowed:?}",
            path(at, key)
        )),
        other => Ok(other),
    }
}

/// Reasoning efforts either lane accepts.
pub(super) const EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh"];

/// `stop`: a string or an array of at most 4 strings (chat completions).
pub(super) fn stop(v: &Value) -> Result<(), Invalid> {
    match v.get("stop") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(_)) => Ok(()),
        Some(Value::Array(a)) if a.len() <= 4 && a.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err("Invalid 'stop': expected a string or an array of up to 4 strings".into()),
    }
}

/// A function or schema name as OpenAI constrains it: `^[a-zA-Z0-9_-]{1,64}$`.
pub(super) fn name<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a str, Invalid> {
    let name = req_str(v, key, at)?;
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(name)
    } else {
        Err(format!(
            "Invalid '{}': {name:?} must match ^[a-zA-Z0-9_-]{{1,64}}$",
            path(at, key)
        ))
    }
}

/// Image types accepted inline.
const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/webp", "image/gif"];

/// An image reference: an `https://` URL or a `data:image/…;base64,…` URL with an
/// accepted type and decodable bytes; `detail`, when given, `auto`, `low` or `high`.
pub(super) fn image(url: &str, detail: Option<&str>, at: &str) -> Result<Image, Invalid> {
    let label = if let Some(rest) = url.strip_prefix("data:") {
        let (mime, data) = rest
            .split_once(";base64,")
            .ok_or_else(|| format!("Invalid '{at}': a data URL must be base64"))?;
        if !IMAGE_TYPES.contains(&mime) {
            return Err(format!(
                "Invalid '{at}': unsupported image type {mime:?}; supported are {IMAGE_TYPES:?}"
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|_| format!("Invalid '{at}': the data URL is not valid base64"))?;
        if bytes.is_empty() {
            return Err(format!("Invalid '{at}': the data URL holds no bytes"));
        }
        format!("data:{mime}")
    } else if url
        .strip_prefix("https://")
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
    {
        url.to_owned()
    } else {
        return Err(format!(
            "Invalid '{at}': image URLs must be https:// or data:image/(png|jpeg|webp|gif);base64"
        ));
    };
    if let Some(d) = detail
        && !matches!(d, "auto" | "low" | "high")
    {
        return Err(format!(
            "Invalid '{at}': detail must be auto, low or high, not {d:?}"
        ));
    }
    Ok(Image {
        label,
        detail: detail.map(str::to_owned),
    })
}

/// Sampling fields both lanes share: `temperature` 0–2 and `top_p` 0–1.
pub(super) fn sampling(body: &Value) -> Result<(), Invalid> {
    opt_number(body, "temperature", 0.0, 2.0)?;
    opt_number(body, "top_p", 0.0, 1.0)
}
