//! The records the plugin stores as JSON, read back through [`serde_json::Value`] instead
//! of their derived `Deserialize`: every derived deserializer instantiates serde_json's
//! typed parser anew (and its error messages pull core's float formatting into the
//! component), while the `Value` parser is in the component anyway. The records still
//! derive `Deserialize` for the native tools (fuzzers, tests); the tests here check that
//! both readers agree.
//!
//! The rules are those of the derived `Deserialize` of the records' JSON objects: unknown
//! fields are ignored; a field of the wrong type (a string for a number, a float or a
//! negative number for an integer, a number out of a `u32`'s range) makes the record
//! unreadable; an `Option` field may be absent or `null`; a field with `#[serde(default)]`
//! may be absent. Two shapes that the plugin never writes are not read as the derive would
//! read them: a record given as a JSON array of its fields is unreadable, and of a field
//! named twice the last value counts (the derive refuses the record).

use serde_json::{Map, Value};

use crate::types::{Lane, Model};

/// A record stored as a JSON object.
pub trait Record: Sized {
    /// The record from its object's fields; `None` if one is missing or of the wrong type.
    fn read(fields: &mut Fields) -> Option<Self>;

    /// The record from its stored bytes; `None` if they are not such a record.
    fn from_json(bytes: &[u8]) -> Option<Self> {
        Self::read(&mut Fields::parse(bytes)?)
    }
}

/// The fields of a JSON object, each taken out (moved, not copied: secrets among them
/// leave no second copy behind) by the reader of one field.
pub struct Fields(Map<String, Value>);

impl Fields {
    /// The object in `bytes`; `None` if they are not one JSON object.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        Self::of(serde_json::from_slice(bytes).ok()?)
    }

    /// `v` if it is an object.
    pub fn of(v: Value) -> Option<Self> {
        match v {
            Value::Object(m) => Some(Self(m)),
            _ => None,
        }
    }

    /// The field's value, left `null` in the object (each field is read once; taking it out
    /// of the map would instantiate the B-tree's removal for the component).
    fn take(&mut self, name: &str) -> Option<Value> {
        self.0.get_mut(name).map(Value::take)
    }

    /// An optional field: absent or `null` is `Some(None)`, a value `read` refuses `None`.
    fn optional<T>(&mut self, name: &str, read: fn(Value) -> Option<T>) -> Option<Option<T>> {
        match self.take(name) {
            None | Some(Value::Null) => Some(None),
            Some(v) => read(v).map(Some),
        }
    }

    /// A required string.
    pub fn string(&mut self, name: &str) -> Option<String> {
        string(self.take(name)?)
    }

    /// An optional string.
    pub fn opt_string(&mut self, name: &str) -> Option<Option<String>> {
        self.optional(name, string)
    }

    /// A required `u64`.
    pub fn u64(&mut self, name: &str) -> Option<u64> {
        self.take(name)?.as_u64()
    }

    /// A `u64` that is 0 when absent (`#[serde(default)]`; `null` is refused).
    pub fn u64_or_zero(&mut self, name: &str) -> Option<u64> {
        match self.take(name) {
            None => Some(0),
            Some(v) => v.as_u64(),
        }
    }

    /// An optional `u64`.
    pub fn opt_u64(&mut self, name: &str) -> Option<Option<u64>> {
        self.optional(name, |v| v.as_u64())
    }

    /// An optional `u32`.
    pub fn opt_u32(&mut self, name: &str) -> Option<Option<u32>> {
        self.optional(name, |v| u32::try_from(v.as_u64()?).ok())
    }

    /// A required nested record.
    pub fn record<T: Record>(&mut self, name: &str) -> Option<T> {
        T::read(&mut Fields::of(self.take(name)?)?)
    }

    /// A required list of records (all of them readable).
    pub fn list<T: Record>(&mut self, name: &str) -> Option<Vec<T>> {
        match self.take(name)? {
            Value::Array(items) => items
                .into_iter()
                .map(|v| T::read(&mut Fields::of(v)?))
                .collect(),
            _ => None,
        }
    }

    /// A required unit variant of an enum: its name as a string, or (as serde_json also
    /// reads it) an object naming it as its one key, with `null`.
    pub fn variant(&mut self, name: &str) -> Option<String> {
        match self.take(name)? {
            Value::String(s) => Some(s),
            Value::Object(m) if m.len() == 1 => match m.into_iter().next() {
                Some((k, Value::Null)) => Some(k),
                _ => None,
            },
            _ => None,
        }
    }
}

fn string(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s),
        _ => None,
    }
}

impl Record for Model {
    fn read(f: &mut Fields) -> Option<Self> {
        Some(Model {
            id: f.string("id")?,
            lane: match f.variant("lane")?.as_str() {
                "chat_completions" => Lane::ChatCompletions,
                "responses" => Lane::Responses,
                "media" => Lane::Media,
                _ => return None,
            },
            route: f.string("route")?,
            owned_by: f.opt_string("owned_by")?,
            created: f.opt_u64("created")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;
    use serde_json::json;

    use super::*;
    use crate::api_key::ApiKey;
    use crate::device::PendingFlow;
    use crate::discovery::{DiscoveryCache, Endpoints};
    use crate::models::ModelsCache;
    use crate::provider::{RevokedMark, SubscriptionCache};
    use crate::token::Credentials;

    /// Every variant of `base` with one field removed, set to `null`, or set to a value of
    /// another type; and `base` with an unknown field.
    fn variants(base: &Value) -> Vec<Value> {
        let odd = [
            json!(null),
            json!("x"),
            json!(""),
            json!(7),
            json!(0),
            json!(-1),
            json!(1.5),
            json!(3.0),
            json!(4_294_967_296u64),
            json!(u64::MAX),
            json!(true),
            json!([]),
            json!({}),
            json!("chat_completions"),
            json!({"media": null}),
            json!({"media": 1}),
            json!({"media": null, "responses": null}),
            json!([json!(base)]),
        ];
        let mut out = vec![base.clone()];
        let obj = base.as_object().expect("an object");
        for k in obj.keys() {
            let mut m = obj.clone();
            m.remove(k);
            out.push(Value::Object(m));
            for o in &odd {
                let mut m = obj.clone();
                m.insert(k.clone(), o.clone());
                out.push(Value::Object(m));
            }
        }
        let mut m = obj.clone();
        m.insert("unknown".into(), json!({"x": [1, 2]}));
        out.push(Value::Object(m));
        for v in [json!(null), json!([]), json!("x"), json!(1)] {
            out.push(v);
        }
        out
    }

    /// The record's reader agrees with its derived `Deserialize` on every variant of `base`
    /// (and of its nested objects, one level down).
    fn agrees<T: Record + DeserializeOwned + PartialEq + std::fmt::Debug>(base: Value) {
        let mut cases = variants(&base);
        for (k, v) in base.as_object().unwrap() {
            let nested = match v {
                Value::Object(_) => v.clone(),
                Value::Array(a) if a.first().is_some_and(Value::is_object) => a[0].clone(),
                _ => continue,
            };
            for n in variants(&nested) {
                let mut m = base.as_object().unwrap().clone();
                m.insert(k.clone(), if v.is_array() { json!([n]) } else { n });
                cases.push(Value::Object(m));
            }
        }
        let mut read = 0;
        for case in cases {
            let bytes = serde_json::to_vec(&case).unwrap();
            let derived = serde_json::from_slice::<T>(&bytes).ok();
            let mine = T::from_json(&bytes);
            assert_eq!(mine, derived, "{case}");
            read += usize::from(mine.is_some());
        }
        assert!(read > 1, "the base record and some variants are readable");
        // Whitespace, nesting and trailing bytes as the parser takes them.
        let bytes = format!(" {base} \n").into_bytes();
        assert_eq!(
            T::from_json(&bytes),
            serde_json::from_slice::<T>(&bytes).ok()
        );
        assert!(T::from_json(&bytes).is_some());
        let bytes = format!("{base} x").into_bytes();
        assert_eq!(T::from_json(&bytes), None);
    }

    #[test]
    fn model_cache_reads_as_the_derive_does() {
        let m = json!({"id": "xai-grok/grok-4", "lane": "responses", "route": "api", "owned_by": "xai", "created": 5});
        agrees::<Model>(m.clone());
        agrees::<ModelsCache>(json!({
            "fetched_at_ms": 1, "tier": 4, "models": [m.clone(), m.clone()], "media_models": [],
        }));
        agrees::<ModelsCache>(json!({"fetched_at_ms": 1, "models": [m], "media_models": [m]}));
    }

    #[test]
    fn credentials_read_as_the_derive_does() {
        agrees::<Credentials>(json!({
            "access_token": "at", "refresh_token": "rt", "expires_at_ms": 10, "obtained_at_ms": 5,
            "tier": 4, "scope": "openid", "generation": 3,
        }));
        agrees::<Credentials>(
            json!({"access_token": "at", "expires_at_ms": 10, "obtained_at_ms": 5}),
        );
        agrees::<ApiKey>(json!({"key": "xai-123456789", "stored_at_ms": 5}));
        agrees::<RevokedMark>(json!({"generation": 2, "at_ms": 5, "message": "gone"}));
    }

    #[test]
    fn caches_read_as_the_derive_does() {
        agrees::<DiscoveryCache>(json!({
            "issuer": "https://auth.x.ai", "fetched_at_ms": 5,
            "endpoints": {
                "device_authorization_endpoint": "https://auth.x.ai/d",
                "token_endpoint": "https://auth.x.ai/t",
                "revocation_endpoint": null,
            },
        }));
        agrees::<Endpoints>(json!({"token_endpoint": "https://auth.x.ai/t"}));
        agrees::<SubscriptionCache>(json!({"fetched_at_ms": 5, "tier": 1, "name": "SuperGrok"}));
        agrees::<SubscriptionCache>(json!({"fetched_at_ms": 5, "name": null}));
        agrees::<PendingFlow>(json!({
            "device_code": "dc", "user_code": "AB-12", "verification_uri": "https://x.ai/d",
            "verification_uri_complete": "https://x.ai/d?c=1", "created_at_ms": 1,
            "expires_at_ms": 2, "interval_secs": 5, "last_poll_ms": 3,
        }));
    }

    #[test]
    fn the_two_shapes_read_otherwise() {
        // A record as an array of its fields: the derive reads it, the plugin never writes it.
        let arr = br#"[2, 5, "gone"]"#;
        assert!(serde_json::from_slice::<RevokedMark>(arr).is_ok());
        assert_eq!(RevokedMark::from_json(arr), None);
        // A field named twice: the last one counts.
        let dup = br#"{"generation": 1, "at_ms": 5, "message": "a", "generation": 2}"#;
        assert!(serde_json::from_slice::<RevokedMark>(dup).is_err());
        assert_eq!(RevokedMark::from_json(dup).map(|m| m.generation), Some(2));
    }
}
