//! Lenient readers for JSON fields: extra fields are ignored, numbers may arrive as
//! strings, required fields are checked by the callers.

use serde_json::Value;

/// A non-negative integer given as a JSON integer, an integral float or a decimal string.
pub fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `as_u64`, saturated to `u32`.
pub fn as_u32(v: &Value) -> Option<u32> {
    as_u64(v).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// A non-empty string field.
pub fn str_field<'a>(obj: &'a Value, name: &str) -> Option<&'a str> {
    obj.get(name)?.as_str().filter(|s| !s.is_empty())
}

/// An integer field (see [`as_u64`]).
pub fn u64_field(obj: &Value, name: &str) -> Option<u64> {
    obj.get(name).and_then(as_u64)
}

/// The JSON that `serde_json::to_vec` wrote. It fails only for a map with non-string keys or
/// a `Serialize` impl that fails, which the plugin's types and `Value`s never have; the
/// `unreachable!` keeps serde_json's error formatting out of the component (an `expect`
/// would print the error's `Debug`).
pub fn written(r: serde_json::Result<Vec<u8>>) -> Vec<u8> {
    r.unwrap_or_else(|_| unreachable!("JSON of the plugin's own types always serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_lenient() {
        assert_eq!(as_u64(&json!(5)), Some(5));
        assert_eq!(as_u64(&json!("7")), Some(7));
        assert_eq!(as_u64(&json!(3.0)), Some(3));
        assert_eq!(as_u64(&json!(3.5)), None);
        assert_eq!(as_u64(&json!(-1)), None);
        assert_eq!(as_u64(&json!("x")), None);
        assert_eq!(as_u64(&json!(null)), None);
        assert_eq!(as_u32(&json!(1u64 << 40)), Some(u32::MAX));
        assert_eq!(str_field(&json!({"a": ""}), "a"), None);
    }
}
