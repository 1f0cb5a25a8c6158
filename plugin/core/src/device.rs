//! RFC 8628 device authorization: the endpoint's answer and the stored pending flow.

use provider_redact::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ProviderError;
use crate::json::{str_field, u64_field};
use crate::origin::Origin;
use crate::record::{Fields, Record};
use crate::types::{DevicePrompt, PendingLogin};

/// Store keys of pending flows start with this.
pub const PENDING_PREFIX: &str = "pending.";
/// `expires_in` assumed when the server gives none (RFC 8628 makes it required).
pub const DEFAULT_EXPIRES_IN_SECS: u64 = 600;
/// `interval` assumed when the server gives none (RFC 8628 §3.2).
pub const DEFAULT_INTERVAL_SECS: u64 = 5;
/// What `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP_SECS: u64 = 5;
const MAX_USER_CODE_LEN: usize = 64;

/// The device authorization endpoint's answer. Its `Debug` never shows the device code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    /// Secret code the client redeems; never shown.
    pub device_code: Secret,
    /// Code the user compares.
    pub user_code: String,
    /// The bare verification page.
    pub verification_uri: String,
    /// The page with the code filled in (built when the server omits it).
    pub verification_uri_complete: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// Minimum seconds between polls.
    pub interval: u64,
}

/// Whether a user code is safe to show and to put in a URL: `[A-Za-z0-9-]`, 1 to 64.
pub fn valid_user_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_USER_CODE_LEN
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Whether the user may be sent to `url`: printable ASCII, `https`, or `http` on loopback.
pub fn browser_url_allowed(url: &str) -> bool {
    url.bytes().all(|b| b.is_ascii_graphic())
        && Origin::parse(url).is_some_and(|o| o.is_browser_safe())
}

/// `verification_uri` with `user_code=` added to its query (before any fragment).
pub fn with_user_code(uri: &str, user_code: &str) -> String {
    let (base, fragment) = match uri.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (uri, None),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut out = format!("{base}{sep}user_code={user_code}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Read and validate a device authorization answer.
pub fn parse_device_authorization(v: &Value) -> Result<DeviceAuthorization, ProviderError> {
    let bad = |m: &str| ProviderError::InvalidResponse(format!("device authorization: {m}"));
    let device_code = str_field(v, "device_code").ok_or_else(|| bad("no device_code"))?;
    let user_code = str_field(v, "user_code").ok_or_else(|| bad("no user_code"))?;
    if !valid_user_code(user_code) {
        return Err(bad("user_code has unexpected characters"));
    }
    let verification_uri = str_field(v, "verification_uri")
        .or_else(|| str_field(v, "verification_url")) // some servers spell it like Google's
        .ok_or_else(|| bad("no verification_uri"))?;
    if !browser_url_allowed(verification_uri) {
        return Err(bad(
            "verification_uri is neither https nor a loopback http URL",
        ));
    }
    let complete = match str_field(v, "verification_uri_complete") {
        Some(u) if browser_url_allowed(u) => u.to_owned(),
        Some(_) => {
            return Err(bad(
                "verification_uri_complete is neither https nor a loopback http URL",
            ));
        }
        None => with_user_code(verification_uri, user_code),
    };
    Ok(DeviceAuthorization {
        device_code: Secret::new(device_code),
        user_code: user_code.to_owned(),
        verification_uri: verification_uri.to_owned(),
        verification_uri_complete: complete,
        expires_in: u64_field(v, "expires_in")
            .unwrap_or(DEFAULT_EXPIRES_IN_SECS)
            .max(1),
        interval: u64_field(v, "interval")
            .unwrap_or(DEFAULT_INTERVAL_SECS)
            .max(1),
    })
}

/// A login waiting for the user (store key `pending.<id>`, JSON). Its `Debug` never shows
/// the device code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFlow {
    /// Secret code to redeem. Written in clear into the stored record: the poll that
    /// redeems it may run in another process (the host's secret store keeps it encrypted).
    #[serde(serialize_with = "Secret::serialize_exposed")]
    pub device_code: Secret,
    /// Code the user compares.
    pub user_code: String,
    /// The bare verification page.
    pub verification_uri: String,
    /// The page with the code filled in.
    pub verification_uri_complete: String,
    /// When `start` ran (unix ms).
    pub created_at_ms: u64,
    /// When the device code expires (unix ms).
    pub expires_at_ms: u64,
    /// Current minimum seconds between polls (raised by `slow_down`).
    pub interval_secs: u64,
    /// When the token endpoint was last asked (unix ms).
    pub last_poll_ms: Option<u64>,
}

impl Record for PendingFlow {
    fn read(f: &mut Fields) -> Option<Self> {
        Some(Self {
            device_code: Secret::from(f.string("device_code")?),
            user_code: f.string("user_code")?,
            verification_uri: f.string("verification_uri")?,
            verification_uri_complete: f.string("verification_uri_complete")?,
            created_at_ms: f.u64("created_at_ms")?,
            expires_at_ms: f.u64("expires_at_ms")?,
            interval_secs: f.u64("interval_secs")?,
            last_poll_ms: f.opt_u64("last_poll_ms")?,
        })
    }
}

impl PendingFlow {
    /// A new flow started at `now_ms`.
    pub fn new(auth: DeviceAuthorization, now_ms: u64) -> Self {
        Self {
            expires_at_ms: now_ms.saturating_add(auth.expires_in.saturating_mul(1000)),
            device_code: auth.device_code,
            user_code: auth.user_code,
            verification_uri: auth.verification_uri,
            verification_uri_complete: auth.verification_uri_complete,
            created_at_ms: now_ms,
            interval_secs: auth.interval,
            last_poll_ms: None,
        }
    }

    /// Whether the device code has expired.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at_ms
    }

    /// Whether polling now would be too early. The first poll is never early: the
    /// user's confirmation paces it.
    pub fn too_early(&self, now_ms: u64) -> bool {
        self.last_poll_ms.is_some_and(|last| {
            now_ms < last.saturating_add(self.interval_secs.saturating_mul(1000))
        })
    }

    /// The caller-facing view.
    pub fn pending_login(&self, id: &str, now_ms: u64) -> PendingLogin {
        PendingLogin {
            pending_id: id.to_owned(),
            interval_seconds: clamp_u32(self.interval_secs),
            expires_in_seconds: clamp_u32(self.expires_at_ms.saturating_sub(now_ms) / 1000),
        }
    }

    /// The prompt `start` returns.
    pub fn prompt(&self, id: &str, now_ms: u64) -> DevicePrompt {
        DevicePrompt {
            pending_id: id.to_owned(),
            verification_url_with_code: self.verification_uri_complete.clone(),
            verification_url: self.verification_uri.clone(),
            user_code: self.user_code.clone(),
            expires_in_seconds: clamp_u32(self.expires_at_ms.saturating_sub(now_ms) / 1000),
            interval_seconds: clamp_u32(self.interval_secs),
        }
    }
}

/// Store key of the pending flow `id`.
pub fn pending_key(id: &str) -> String {
    format!("{PENDING_PREFIX}{id}")
}

/// Whether `id` has the shape `start` gives out (32 lower-case hex digits), so that a
/// caller's string never becomes an arbitrary store key.
pub fn valid_pending_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn clamp_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_complete_url_when_missing() {
        let a = parse_device_authorization(&json!({
            "device_code": "D", "user_code": "ABCD-1234",
            "verification_uri": "https://accounts.x.ai/oauth2/device"
        }))
        .unwrap();
        assert_eq!(
            a.verification_uri_complete,
            "https://accounts.x.ai/oauth2/device?user_code=ABCD-1234"
        );
        assert_eq!((a.expires_in, a.interval), (600, 5));
        assert_eq!(
            with_user_code("https://a.x.ai/d?lang=en#top", "X"),
            "https://a.x.ai/d?lang=en&user_code=X#top"
        );
    }

    #[test]
    fn validates_fields() {
        let base = json!({"device_code": "D", "user_code": "AB-12", "verification_uri": "https://a.x.ai/d", "interval": 0, "expires_in": "1800"});
        let a = parse_device_authorization(&base).unwrap();
        assert_eq!((a.interval, a.expires_in), (1, 1800));
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            parse_device_authorization(&b)
        };
        assert!(with("user_code", json!("AB 12")).is_err());
        assert!(with("user_code", json!("AB&x=1")).is_err());
        assert!(with("user_code", json!("A".repeat(65))).is_err());
        assert!(with("user_code", json!("A".repeat(64))).is_ok());
        assert!(with("verification_uri", json!("http://a.x.ai/d")).is_err());
        assert!(with("verification_uri", json!("javascript:alert(1)")).is_err());
        assert!(with("verification_uri", json!("http://127.0.0.1:8/d")).is_ok());
        assert!(with("verification_uri", json!("http://localhost/d")).is_ok());
        assert!(with("verification_uri", json!("http://[::1]:8/d")).is_ok());
        assert!(with("verification_uri_complete", json!("http://evil.example/d")).is_err());
        assert!(
            with(
                "verification_uri_complete",
                json!("https://a.x.ai/d?user_code=AB-12")
            )
            .is_ok()
        );
        assert!(with("device_code", json!("")).is_err());
        assert!(with("device_code", Value::Null).is_err());
    }

    #[test]
    fn pacing() {
        let a = parse_device_authorization(&json!({"device_code": "D", "user_code": "A", "verification_uri": "https://a.x.ai/d", "expires_in": 60, "interval": 5})).unwrap();
        let mut f = PendingFlow::new(a, 1000);
        assert!(!f.too_early(1000));
        f.last_poll_ms = Some(2000);
        assert!(f.too_early(6999));
        assert!(!f.too_early(7000));
        assert!(!f.is_expired(60_999) && f.is_expired(61_000));
        assert_eq!(f.pending_login("i", 31_000).expires_in_seconds, 30);
        assert!(!format!("{f:?}").contains("\"D\""));
    }

    #[test]
    fn debug_never_shows_the_device_code() {
        let a = parse_device_authorization(&json!({"device_code": "dc-SECRET-1", "user_code": "AB-12", "verification_uri": "https://a.x.ai/d"})).unwrap();
        let f = PendingFlow::new(a.clone(), 1000);
        let d = format!("{a:?} {a:#?} {f:?} {f:#?}");
        assert!(!d.contains("SECRET"), "{d}");
        assert!(d.contains("AB-12"), "{d}");
        // The stored record keeps it (the poll redeems it from there).
        let stored = serde_json::to_vec(&f).unwrap();
        let back: PendingFlow = serde_json::from_slice(&stored).unwrap();
        assert_eq!(back.device_code.expose(), "dc-SECRET-1");
        assert!(back == f);
    }

    #[test]
    fn ids() {
        assert!(valid_pending_id(&hex(&[0xab; 16])));
        assert!(!valid_pending_id("../credentials"));
        assert!(!valid_pending_id(&"A".repeat(32)));
    }
}
