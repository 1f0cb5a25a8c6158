//! Provider behaviour over in-memory effects (one binary, one module per concern).

mod fakes;

mod api_errors;
mod api_key;
mod chat;
mod logout;
mod models;
mod poll;
mod recorded;
mod refresh;
mod routes;
mod start;
mod stream;
mod subscription;
mod usage;

use std::collections::BTreeMap;
use std::fmt::Debug;

use fakes::{FakeClock, FakeTransport, MemoryStore};
use grok_provider_core::discovery::{DISCOVERY_KEY, DiscoveryCache, Endpoints};
use grok_provider_core::{Credentials, HttpRequest, Provider, ProviderError, Settings};
use serde_json::{Value, json};

pub const NOW: u64 = 1_700_000_000_000;
pub const HOUR: u64 = 3_600_000;
pub const ISSUER: &str = "https://auth.x.ai";
pub const DISCOVERY_URL: &str = "https://auth.x.ai/.well-known/openid-configuration";
pub const DEVICE_URL: &str = "https://auth.x.ai/oauth2/device/code";
pub const TOKEN_URL: &str = "https://auth.x.ai/oauth2/token";
pub const REVOKE_URL: &str = "https://auth.x.ai/oauth2/revoke";
pub const MODELS_URL: &str = "https://api.x.ai/v1/models";
pub const CHAT_URL: &str = "https://api.x.ai/v1/chat/completions";
pub const RESPONSES_URL: &str = "https://api.x.ai/v1/responses";
pub const SUB_MODELS_URL: &str = "https://cli-chat-proxy.grok.com/v1/models";
pub const SUB_CHAT_URL: &str = "https://cli-chat-proxy.grok.com/v1/chat/completions";
pub const SUB_RESPONSES_URL: &str = "https://cli-chat-proxy.grok.com/v1/responses";
pub const SUB_BILLING_URL: &str = "https://cli-chat-proxy.grok.com/v1/billing?format=credits";
/// An API key as xAI's console hands them out (the tests' secret: no error may show it).
pub const API_KEY: &str = "xai-SECRET0123456789abcdefghijklmnopqrstuvwxyzKEY9";
pub const UA: &str = "grok-provider-tests/1";
/// The default model on the default route (`api`).
pub const DEFAULT_MODEL_ID: &str = "xai-grok/grok-4.3";

pub fn discovery_doc() -> Value {
    json!({
        "issuer": ISSUER,
        "device_authorization_endpoint": DEVICE_URL,
        "token_endpoint": TOKEN_URL,
        "revocation_endpoint": REVOKE_URL,
        "userinfo_endpoint": "https://auth.x.ai/oauth2/userinfo",
        "jwks_uri": "https://auth.x.ai/.well-known/jwks.json",
        "grant_types_supported": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]
    })
}

/// An unsigned JWT-shaped access token (starts with `eyJ`, which no error may contain).
pub fn jwt(tier: u32, exp_ms: u64, jti: &str) -> String {
    grok_provider_core::jwt::encode_unsigned(&json!({
        "iss": ISSUER, "sub": "user-1", "tier": tier, "exp": exp_ms / 1000, "iat": NOW / 1000, "jti": jti
    }))
}

pub fn token_body(access: &str, refresh: Option<&str>, expires_in: Option<u64>) -> Value {
    let mut v = json!({"access_token": access, "token_type": "Bearer", "scope": "openid api:access", "id_token": "eyJidtoken"});
    if let Some(r) = refresh {
        v["refresh_token"] = json!(r);
    }
    if let Some(e) = expires_in {
        v["expires_in"] = json!(e);
    }
    v
}

pub fn models_body() -> Value {
    json!({"object": "list", "data": [
        {"id": "grok-4.3", "object": "model", "created": 1_750_000_000u64, "owned_by": "xai"},
        {"id": "grok-4.20-0309-reasoning", "object": "model", "owned_by": "xai"},
        {"id": "grok-4.20-multi-agent-0309", "object": "model", "owned_by": "xai"},
        {"id": "grok-imagine-image", "object": "model", "owned_by": "xai"},
        {"id": "grok-imagine-video", "object": "model", "owned_by": "xai"}
    ]})
}

pub type P = Provider<FakeTransport, MemoryStore, FakeClock>;

impl Default for H {
    fn default() -> Self {
        H::new()
    }
}

/// A provider over fakes, with handles on the fakes.
pub struct H {
    pub t: FakeTransport,
    pub s: MemoryStore,
    pub c: FakeClock,
    pub p: P,
}

impl H {
    /// No state at all (discovery not cached).
    pub fn bare() -> H {
        let (t, s, c) = (
            FakeTransport::default(),
            MemoryStore::default(),
            FakeClock::at(NOW),
        );
        let config = settings();
        let p = Provider::new(config, t.clone(), s.clone(), c.clone());
        H { t, s, c, p }
    }

    /// Discovery already cached (so scripts start with the interesting request).
    pub fn new() -> H {
        let h = H::bare();
        h.cache_discovery();
        h
    }

    /// Move the clock to `ms`, with a discovery cache fresh at that time.
    pub fn travel(&self, ms: u64) {
        self.c.set(ms);
        self.cache_discovery();
    }

    fn cache_discovery(&self) {
        let record = DiscoveryCache {
            issuer: ISSUER.into(),
            fetched_at_ms: self.c.now(),
            endpoints: Endpoints {
                device_authorization_endpoint: Some(DEVICE_URL.into()),
                token_endpoint: TOKEN_URL.into(),
                revocation_endpoint: Some(REVOKE_URL.into()),
            },
        };
        self.s
            .put(DISCOVERY_KEY, &serde_json::to_vec(&record).unwrap());
    }

    /// Logged in an hour ago with a 6 h token of `tier`, refresh token `rt-SECRET-1`.
    pub fn connected(tier: u32) -> H {
        let h = H::new();
        h.set_creds(Credentials {
            access_token: jwt(tier, NOW + 5 * HOUR, "a1").into(),
            refresh_token: Some("rt-SECRET-1".into()),
            expires_at_ms: NOW + 5 * HOUR,
            obtained_at_ms: NOW - HOUR,
            tier: Some(tier),
            scope: Some("openid".into()),
            generation: 1,
        });
        h
    }

    pub fn creds(&self) -> Credentials {
        Credentials::from_bytes(&self.s.raw("credentials").expect("credentials stored")).unwrap()
    }

    pub fn set_creds(&self, c: Credentials) {
        self.s.put("credentials", &c.to_bytes());
    }

    /// With [`API_KEY`] stored.
    pub fn with_key(mut self) -> H {
        ok(self.p.set_api_key(API_KEY));
        self
    }

    /// No login, only [`API_KEY`].
    pub fn key_only() -> H {
        H::new().with_key()
    }

    /// The provider with the manifest's own defaults (default route `subscription`).
    pub fn defaults(self) -> H {
        self.configured(&[])
    }

    /// The provider with other settings (same fakes).
    pub fn configured(mut self, pairs: &[(&str, &str)]) -> H {
        let mut settings = Settings::from_pairs(pairs.iter().copied()).unwrap();
        settings.user_agent = UA.into();
        self.p = Provider::new(settings, self.t.clone(), self.s.clone(), self.c.clone());
        self
    }
}

/// The manifest's defaults, with the tests' user agent and the default route pinned to
/// `api` (most tests here were written against the developer API's URLs; the manifest's
/// own default, `subscription`, is tested with `H::defaults`).
pub fn settings() -> Settings {
    Settings {
        user_agent: UA.into(),
        default_route: grok_provider_core::Route::Api,
        ..Settings::default()
    }
}

/// The form fields of a request.
pub fn form(req: &HttpRequest) -> BTreeMap<String, String> {
    grok_provider_core::form::decode(&req.body)
        .into_iter()
        .collect()
}

pub fn header(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

pub fn body_json(req: &HttpRequest) -> Value {
    serde_json::from_slice(&req.body).unwrap()
}

/// Assert that nothing secret shows in a value's Debug output.
pub fn assert_clean(text: &str) {
    for needle in ["SECRET", "eyJ"] {
        assert!(!text.contains(needle), "secret material in {text:?}");
    }
}

/// The error of `r` (panics on success), checked to carry no secret.
pub fn err<T: Debug>(r: Result<T, ProviderError>) -> ProviderError {
    let e = r.expect_err("expected an error");
    assert_clean(&format!("{e} {e:?}"));
    e
}

/// The value of `r` (panics on error), checked to carry no secret.
pub fn ok<T: Debug>(r: Result<T, ProviderError>) -> T {
    let v = r.unwrap_or_else(|e| panic!("unexpected error: {e:?}"));
    assert_clean(&format!("{v:?}"));
    v
}
