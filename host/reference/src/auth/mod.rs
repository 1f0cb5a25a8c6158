//! The reference authorization server: RFC 8628 device flow, ES256 JWT access tokens with
//! a `tier` claim, rotating refresh tokens with reuse detection, RFC 7009 revocation and
//! an OpenID discovery document, laid out like `auth.x.ai`.

mod device;
mod handle;
mod jwt;
mod token;

pub use handle::AuthHandle;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::faults::{self, FaultQueue, Route};
use crate::http::{self, Lifetime, Outcome, RecordedRequest, Reply, RequestLog, Spawn, lock};

/// The public client id of xAI's device login, used by default.
pub const XAI_CLIENT_ID: &str = "b1a00492-073a-47ea-816f-4c329264a828";

const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
const JWKS_PATH: &str = "/.well-known/jwks.json";
const DEVICE_PATH: &str = "/oauth2/device/code";
const TOKEN_PATH: &str = "/oauth2/token";
const REVOKE_PATH: &str = "/oauth2/revoke";
const VERIFY_PAGE_PATH: &str = "/oauth2/device";

/// How the authorization server behaves. `Default` mirrors what xAI was seen to do.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The client id accepted and put in every access token's `aud` (default
    /// [`XAI_CLIENT_ID`]).
    pub client_id: String,
    /// More client ids accepted (default none): a second client, e.g. one registered by
    /// itself rather than borrowing xAI's CLI's id, whose logins form their own families.
    pub other_client_ids: Vec<String>,
    /// What a reused refresh token revokes (default [`RefreshFamily::ClientAndAccount`],
    /// as reported of auth.x.ai).
    pub refresh_family: RefreshFamily,
    /// Minimum seconds between polls of one device code (default 5; 0 disables pacing).
    pub interval: u32,
    /// How much each `slow_down` raises the interval the server enforces for that device
    /// code (default 5, as RFC 8628 §3.5 prescribes; 0 keeps fast tests fast).
    pub slow_down_increment: u32,
    /// Lifetime of a device code (default 30 minutes).
    pub device_code_ttl: Duration,
    /// Lifetime of an access token (default 6 hours; 0 issues already-expired tokens).
    pub access_token_ttl: Duration,
    /// Leave `expires_in` out of token responses.
    pub omit_expires_in: bool,
    /// Leave `verification_uri_complete` out of device responses.
    pub omit_verification_uri_complete: bool,
    /// Answer OAuth errors with HTTP 200 instead of 400/401.
    pub errors_with_http_200: bool,
    /// Verification page; default `{issuer}/oauth2/device`, which serves a small HTML page
    /// where a person can approve or deny.
    pub verification_base_url: Option<String>,
    /// Issue a new refresh token on every refresh and retire the old one (default true).
    /// When false, refresh responses carry no `refresh_token` and the old one stays valid.
    pub rotate_refresh_tokens: bool,
    /// Treat a poll of an already redeemed device code as reuse: answer `invalid_grant`
    /// and revoke the grant it produced (default true).
    pub revoke_on_device_code_reuse: bool,
    /// Members merged into the discovery document; a `null` value removes the member.
    pub discovery_overrides: serde_json::Map<String, Value>,
    /// Idle and maximum lifetime of the server.
    pub lifetime: Lifetime,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            client_id: XAI_CLIENT_ID.into(),
            other_client_ids: Vec::new(),
            refresh_family: RefreshFamily::default(),
            interval: 5,
            slow_down_increment: 5,
            device_code_ttl: Duration::from_secs(1800),
            access_token_ttl: Duration::from_secs(21600),
            omit_expires_in: false,
            omit_verification_uri_complete: false,
            errors_with_http_200: false,
            verification_base_url: None,
            rotate_refresh_tokens: true,
            revoke_on_device_code_reuse: true,
            discovery_overrides: serde_json::Map::new(),
            lifetime: Lifetime::default(),
        }
    }
}

/// Which refresh tokens form one family: one live refresh token at a time, and presenting
/// any retired one revokes every login of the family (reference doc §1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefreshFamily {
    /// One login (grant): each login's rotation chain is its own family. What xAI's CLI's
    /// code is sure of: rotation, and reuse revoking the successor too.
    Grant,
    /// Every login of one account by one client id (`(client_id, sub)`), as reported
    /// (hermes-agent#36269, #82052; "not confirmed in xAI code; treat as likely"). Inferred
    /// from the reported symptom (two tools sharing xAI's CLI client id, each refreshing
    /// its own login of the same account, revoke each other): the family has a single live
    /// refresh token, the one issued last by a login or a refresh; redeeming any other
    /// (a retired one, or the other login's, now superseded) is reuse and revokes every
    /// login of the family, access tokens included (the API then answers 403
    /// bad-credentials).
    #[default]
    ClientAndAccount,
}

/// Transient failures of the token endpoint that xAI's CLI retries on refresh (reference
/// doc §1.6: only `invalid_grant` and `invalid_client` are final). Queue them with
/// [`AuthHandle::fail_refreshes`]. Bodies are inferred (auth.x.ai's paths are Ory Hydra's,
/// which answers `temporarily_unavailable` with 503 and `server_error` with 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshFailure {
    /// 503 from the edge, `text/plain`, no OAuth body.
    Unavailable,
    /// 429 with `Retry-After: 1` and a JSON body without an OAuth error code.
    TooManyRequests,
    /// 503 `{"error":"temporarily_unavailable"}`.
    TemporarilyUnavailable,
    /// 500 `{"error":"server_error"}`.
    ServerError,
}

impl RefreshFailure {
    /// The answer as a fault.
    pub fn fault(self) -> crate::faults::Fault {
        use crate::faults::Fault;
        match self {
            Self::Unavailable => Fault::raw(
                503,
                "text/plain",
                "upstream connect error or disconnect/reset before headers",
            ),
            Self::TooManyRequests => Fault::json(
                429,
                &json!({"message": "Too many requests, please slow down."}),
            )
            .with_header("retry-after", "1"),
            Self::TemporarilyUnavailable => Fault::oauth_error(503, "temporarily_unavailable"),
            Self::ServerError => Fault::oauth_error(500, "server_error"),
        }
    }
}

/// Counters of what the authorization server saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// Discovery document requests.
    pub discovery_requests: u64,
    /// Successful device authorization requests.
    pub device_authorizations: u64,
    /// Token requests with the device_code grant.
    pub token_requests_device_code: u64,
    /// Token requests with the refresh_token grant.
    pub token_requests_refresh: u64,
    /// Token requests with another or no grant type.
    pub token_requests_other: u64,
    /// Successful token responses (device and refresh).
    pub tokens_issued: u64,
    /// Successful refresh-token redemptions.
    pub refresh_redemptions: u64,
    /// Used refresh tokens (or redeemed device codes) presented again.
    pub reuse_detections: u64,
    /// Reuses that revoked a whole `(client_id, account)` family (under
    /// [`RefreshFamily::ClientAndAccount`]; also counted in `reuse_detections`).
    pub family_revocations: u64,
    /// `slow_down` answers (pacing and forced).
    pub slow_downs: u64,
    /// Revocation endpoint requests.
    pub revocation_requests: u64,
    /// Grants revoked, by any cause.
    pub grants_revoked: u64,
    /// Grants created (device approvals redeemed and `issue_grant`).
    pub grants_issued: u64,
    /// Faults served from the queue.
    pub faults_served: u64,
    /// Device-code polls, keyed by the user code (the device code is a secret).
    pub polls_per_user_code: BTreeMap<String, u64>,
}

/// Tokens minted by [`AuthHandle::issue_grant`]. `Debug` hides them.
#[derive(Clone)]
pub struct IssuedTokens {
    /// The JWT access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
}

impl fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IssuedTokens { <redacted> }")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DeviceStatus {
    Pending,
    Approved { tier: u32, subject: String },
    Denied,
    Expired,
    Redeemed { grant: usize },
}

struct Device {
    user_code: String,
    client_id: String,
    scope: String,
    expires_at: Instant,
    interval: u64,
    last_poll: Option<Instant>,
    status: DeviceStatus,
}

struct Grant {
    client_id: String,
    subject: String,
    tier: u32,
    scope: String,
    revoked: bool,
}

struct RefreshRecord {
    grant: usize,
    used: bool,
}

#[derive(Default)]
struct AuthState {
    /// Keyed by device code.
    devices: HashMap<String, Device>,
    /// User code → device code.
    user_codes: HashMap<String, String>,
    latest_user_code: Option<String>,
    grants: Vec<Grant>,
    /// Keyed by SHA-256 of the refresh token, so the state holds no usable token.
    refresh: HashMap<[u8; 32], RefreshRecord>,
    /// The live refresh token (its SHA-256) of each `(client_id, sub)` family.
    families: HashMap<(String, String), [u8; 32]>,
    /// Access-token `jti` → grant.
    access: HashMap<String, usize>,
    revoked_jti: HashSet<String>,
    forced_slow_downs: u32,
    stats: AuthStats,
}

impl AuthState {
    fn revoke_grant(&mut self, grant: usize) {
        if let Some(g) = self.grants.get_mut(grant)
            && !g.revoked
        {
            g.revoked = true;
            self.stats.grants_revoked += 1;
        }
        // A revoked login no longer holds its family's live token: another login of the
        // family may refresh without being taken for a reuse.
        let refresh = &self.refresh;
        self.families
            .retain(|_, live| refresh.get(live).is_none_or(|r| r.grant != grant));
    }
}

impl AuthState {
    /// Revoke every login of `client_id` for `subject`. Returns how many were live.
    fn revoke_family(&mut self, client_id: &str, subject: &str) -> usize {
        let members: Vec<usize> = (0..self.grants.len())
            .filter(|&g| {
                let grant = &self.grants[g];
                !grant.revoked && grant.client_id == client_id && grant.subject == subject
            })
            .collect();
        for &g in &members {
            self.revoke_grant(g);
        }
        self.families
            .remove(&(client_id.to_owned(), subject.to_owned()));
        members.len()
    }
}

struct AuthShared {
    config: AuthConfig,
    issuer: String,
    signer: jwt::JwtSigner,
    state: Mutex<AuthState>,
    faults: FaultQueue,
    log: Arc<RequestLog>,
}

impl AuthShared {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    fn verification_base(&self) -> String {
        self.config
            .verification_base_url
            .clone()
            .unwrap_or_else(|| self.url(VERIFY_PAGE_PATH))
    }

    /// Whether `client_id` is one this server accepts.
    fn knows_client(&self, client_id: &str) -> bool {
        client_id == self.config.client_id
            || self.config.other_client_ids.iter().any(|c| c == client_id)
    }

    /// An OAuth error body, with HTTP 200 when so configured.
    fn oauth_error(&self, status: u16, code: &str, description: &str) -> Reply {
        let status = if self.config.errors_with_http_200 {
            200
        } else {
            status
        };
        Reply::json(
            status,
            &json!({"error": code, "error_description": description}),
        )
        .with_header("cache-control", "no-store")
    }
}

/// Starts reference authorization servers.
pub struct AuthServer;

impl AuthServer {
    /// Start on the current tokio runtime, bound to 127.0.0.1 on a free port.
    pub async fn start(config: AuthConfig) -> Result<AuthHandle> {
        Self::launch(config, Spawn::Current)
    }

    /// Start on a dedicated thread with its own runtime (for callers without one).
    pub fn start_background(config: AuthConfig) -> Result<AuthHandle> {
        Self::launch(config, Spawn::Thread)
    }

    fn launch(config: AuthConfig, spawn: Spawn) -> Result<AuthHandle> {
        let lifetime = config.lifetime;
        let log = Arc::new(RequestLog::default());
        // The issuer needs the port, which is known only after binding: fill it in then.
        let slot: Arc<Mutex<Weak<AuthShared>>> = Arc::new(Mutex::new(Weak::new()));
        let handler_slot = slot.clone();
        let running = http::start(spawn, lifetime, log.clone(), move |req| {
            let shared = lock(&handler_slot).upgrade();
            async move {
                match shared {
                    Some(shared) => dispatch(shared, req).await,
                    None => Err(http::Hangup),
                }
            }
        })?;
        let shared = Arc::new(AuthShared {
            issuer: format!("http://{}", running.addr()),
            config,
            signer: jwt::JwtSigner::generate(),
            state: Mutex::new(AuthState::default()),
            faults: FaultQueue::default(),
            log,
        });
        *lock(&slot) = Arc::downgrade(&shared);
        Ok(AuthHandle { shared, running })
    }
}

async fn dispatch(shared: Arc<AuthShared>, req: RecordedRequest) -> Outcome {
    let route = match req.path.as_str() {
        DISCOVERY_PATH => Route::Discovery,
        JWKS_PATH => Route::Jwks,
        DEVICE_PATH => Route::DeviceAuthorization,
        TOKEN_PATH => Route::Token,
        REVOKE_PATH => Route::Revocation,
        VERIFY_PAGE_PATH => Route::VerificationPage,
        _ => {
            let reply = Reply::json(404, &json!({"error": "not_found"}));
            return Ok(reply.render(&Default::default(), false));
        }
    };
    // A refresh also takes a fault queued for refreshes only.
    let is_refresh =
        route == Route::Token && req.form_value("grant_type").as_deref() == Some("refresh_token");
    let routes: &[Route] = if is_refresh {
        &[Route::Refresh, Route::Token]
    } else {
        &[route]
    };
    let (outcome, faulted) = faults::serve_for(&shared.faults, routes, false, false, || {
        handle(&shared, route, &req)
    })
    .await;
    if faulted {
        lock(&shared.state).stats.faults_served += 1;
    }
    outcome
}

fn handle(shared: &AuthShared, route: Route, req: &RecordedRequest) -> Reply {
    let method = req.method.as_str();
    match (route, method) {
        (Route::Discovery, "GET") => {
            lock(&shared.state).stats.discovery_requests += 1;
            Reply::json(200, &discovery(shared))
        }
        (Route::Jwks, "GET") => Reply::json(200, &shared.signer.jwks()),
        (Route::DeviceAuthorization, "POST") => device::authorize(shared, req),
        (Route::Token, "POST") => token::token(shared, req),
        (Route::Revocation, "POST") => token::revoke(shared, req),
        (Route::VerificationPage, "GET") => device::page(shared, req),
        (Route::VerificationPage, "POST") => device::page_decision(shared, req),
        _ => Reply::json(
            405,
            &json!({"error": "invalid_request", "error_description": "method not allowed"}),
        ),
    }
}

fn discovery(shared: &AuthShared) -> Value {
    let mut doc = json!({
        "issuer": shared.issuer,
        "authorization_endpoint": shared.url("/oauth2/auth"),
        "device_authorization_endpoint": shared.url(DEVICE_PATH),
        "token_endpoint": shared.url(TOKEN_PATH),
        "revocation_endpoint": shared.url(REVOKE_PATH),
        "jwks_uri": shared.url(JWKS_PATH),
        "grant_types_supported": [
            "urn:ietf:params:oauth:grant-type:device_code", "refresh_token", "authorization_code"
        ],
        "response_types_supported": ["code"],
        "scopes_supported": ["openid", "profile", "email", "offline_access", "grok-cli:access", "api:access"],
        "token_endpoint_auth_methods_supported": ["none"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "subject_types_supported": ["public"],
        "code_challenge_methods_supported": ["S256"],
    });
    if let Value::Object(map) = &mut doc {
        for (key, value) in &shared.config.discovery_overrides {
            if value.is_null() {
                map.remove(key);
            } else {
                map.insert(key.clone(), value.clone());
            }
        }
    }
    doc
}

/// Normalise a user code as typed by a person: trim and upper-case.
fn normalise_user_code(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

/// The error for a user code no device authorization carries.
fn unknown(code: &str) -> Error {
    Error::UnknownUserCode(code.to_owned())
}
