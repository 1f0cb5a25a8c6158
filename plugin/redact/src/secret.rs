//! [`Secret`]: a string that never prints itself (tokens, device codes, API keys).

use std::fmt;

use serde::{Deserialize, Deserializer, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret string: an access or refresh token, a device code, an API key. Its `Debug`
/// and `Display` say `[redacted]`, so a struct holding one can derive `Debug` and be
/// logged safely; its bytes are zeroed when it is dropped (best effort: copies made
/// before it was wrapped, such as a parser's buffers, are not reached); the value is
/// read only through [`Secret::expose`], so every use of it is visible in the code.
///
/// It deserializes from a JSON string (reading a stored record) but deliberately does not
/// implement `Serialize`: a field is written out only where the value must be, by
/// `#[serde(serialize_with = "Secret::serialize_exposed")]` on that field (or
/// [`Secret::serialize_exposed_option`] for an `Option`).
///
/// Equality compares the values and is not constant-time: it is for tests and for telling
/// records apart, never for checking a credential someone presented (hash that and compare
/// with `subtle`, as the serve keys do).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that must send or store it. Never format it
    /// into a message (see [`crate::sanitize`]).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Writes the value in clear, for `#[serde(serialize_with = "Secret::serialize_exposed")]`
    /// on a field that must be written (the stored credentials, the stored API key).
    pub fn serialize_exposed<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(secret.expose())
    }

    /// [`Secret::serialize_exposed`] for an optional secret (`None` is written as `null`).
    pub fn serialize_exposed_option<S: Serializer>(
        secret: &Option<Secret>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match secret {
            // `&String`, as `Option<String>` writes it: the same code serves both.
            Some(secret) => s.serialize_some(&secret.0),
            None => s.serialize_none(),
        }
    }

    /// Reads an optional secret (absent with `#[serde(default)]`, or `null`: `None`), for
    /// `#[serde(deserialize_with = "Secret::deserialize_option")]`: the same as the derived
    /// `Option<Secret>`, through `Option<String>`'s code (the component's size matters).
    pub fn deserialize_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(Secret))
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut std::mem::take(&mut self.0).into_bytes());
    }
}

/// Zeroes the whole allocation of `bytes` (one volatile pass over what is, once emptied,
/// all spare capacity: smaller in the component than zeroize's `Vec` impl, which makes
/// two), leaving it empty.
fn wipe(bytes: &mut Vec<u8>) {
    bytes.clear();
    bytes.spare_capacity_mut().zeroize();
}

impl ZeroizeOnDrop for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, Deserialize, Debug)]
    struct Stored {
        #[serde(serialize_with = "Secret::serialize_exposed")]
        token: Secret,
        #[serde(
            default,
            serialize_with = "Secret::serialize_exposed_option",
            deserialize_with = "Secret::deserialize_option"
        )]
        refresh: Option<Secret>,
    }

    #[test]
    fn never_prints_itself() {
        let s = Secret::new("tok-SECRET-value");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(
            format!("{:#?}", Some(&s)),
            "Some(\n    Secret([redacted]),\n)"
        );
        let st = Stored {
            token: "tok-SECRET-value".into(),
            refresh: Some(String::from("rt-SECRET-value").into()),
        };
        let d = format!("{st:?} {st:#?}");
        assert!(!d.contains("SECRET"), "{d}");
        // Reading goes through expose.
        let exposed: &str = s.expose();
        assert_eq!(exposed, "tok-SECRET-value");
    }

    #[test]
    fn written_only_where_a_field_asks_and_read_back() {
        let st = Stored {
            token: "t1".into(),
            refresh: None,
        };
        let json = serde_json::to_string(&st).unwrap();
        assert_eq!(json, r#"{"token":"t1","refresh":null}"#);
        let back: Stored = serde_json::from_str(r#"{"token":"t1","refresh":"r1"}"#).unwrap();
        assert_eq!(
            (
                back.token.expose(),
                back.refresh.as_ref().map(Secret::expose)
            ),
            ("t1", Some("r1"))
        );
        let back: Stored = serde_json::from_str(r#"{"token":"t1"}"#).unwrap();
        assert_eq!(back.refresh, None);
        assert!(serde_json::from_str::<Stored>(r#"{"token":5}"#).is_err());
    }

    #[test]
    fn zeroed_on_drop() {
        let mut bytes = (String::with_capacity(64) + "tok-SECRET-value").into_bytes();
        // What Drop does, observed before the memory is freed.
        wipe(&mut bytes);
        assert!(bytes.is_empty() && bytes.capacity() >= 64);
        // SAFETY: the 64 bytes are inside the allocation and were all written by `wipe`.
        let all = unsafe { std::slice::from_raw_parts(bytes.as_ptr(), 64) };
        assert!(all.iter().all(|&b| b == 0), "{all:?}");
    }
}
