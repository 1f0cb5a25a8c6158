//! What every scenario starts from: fresh reference servers on 127.0.0.1, a fresh state
//! directory, and a runtime over the component under test whose sessions are pointed at
//! those servers. Plus the few moves most scenarios share (logging in, picking a model).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use provider_reference::{
    ApiConfig, ApiHandle, ApiServer, AuthConfig, AuthHandle, AuthServer, CatalogueModel, Lifetime,
};

use super::check::{Failure, Outcome, Step, check, fail};
use provider_runtime::bindings::types::{
    ChatRequest, ConnectionStatus, DevicePrompt, Lane, Message, Model, ModelList, PendingLogin,
    PollOutcome, Role,
};
use provider_runtime::limits::Limits;
use provider_runtime::secrets::KeySource;
use provider_runtime::{HostConfig, Runtime, RuntimeOptions, Session};

/// Tenant every scenario's sessions use.
pub const TENANT: &str = "conformance";
/// Longest wait for a login that the reference server already approved.
const CONNECT_DEADLINE: Duration = Duration::from_secs(20);

/// What all scenarios of one run share: the component and where its compiled form is cached.
#[derive(Debug, Clone)]
pub struct Env {
    /// The component under test.
    pub plugin: provider_runtime::PluginSource,
    /// Compiled-component cache shared by every scenario's runtime (compile once per run).
    pub compile_cache: PathBuf,
    /// Parent of the scenarios' state directories.
    pub scratch: PathBuf,
    /// Limits of every session.
    pub limits: Limits,
}

impl Env {
    /// Runtime options for a state directory below the scratch root.
    pub fn runtime_options(&self, state_dir: PathBuf) -> RuntimeOptions {
        let mut options = RuntimeOptions::new(self.plugin.clone(), &state_dir);
        // A key file inside the throwaway state: never the operator's key.
        options.key = KeySource::File(state_dir.join("keyring").join("master.key"));
        options.compile_cache = Some(self.compile_cache.clone());
        options.limits = self.limits;
        options
    }
}

/// Per-scenario knobs of the reference authorization server.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// The `interval` the device authorization answers with (and enforces).
    pub interval: u32,
    /// Lifetime of the access tokens the authorization server issues; `None`: its default
    /// (6 hours, as xAI's). A few seconds lets a scenario call with an expired token.
    pub access_token_ttl: Option<Duration>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            interval: 1,
            access_token_ttl: None,
        }
    }
}

/// One scenario's world. Dropping it stops the servers and deletes the state.
pub struct Ctx {
    /// The reference authorization server.
    pub auth: AuthHandle,
    /// The reference model API, accepting the authorization server's tokens.
    pub api: ApiHandle,
    /// A runtime over the component with this scenario's own state directory.
    pub runtime: Runtime,
    /// Endpoints of both servers; the allowlist is exactly their origins.
    pub config: HostConfig,
    /// The model catalogue the API serves.
    pub catalogue: Vec<CatalogueModel>,
    _state: tempfile::TempDir,
}

impl Ctx {
    /// Start the servers and the runtime.
    pub async fn start(env: &Env, setup: Setup) -> Outcome<Self> {
        // Servers stop by themselves if a handle were ever leaked.
        let lifetime = Lifetime {
            idle: Duration::from_secs(120),
            max: Duration::from_secs(900),
        };
        let defaults = AuthConfig::default();
        let auth = AuthServer::start(AuthConfig {
            interval: setup.interval,
            access_token_ttl: setup.access_token_ttl.unwrap_or(defaults.access_token_ttl),
            lifetime,
            ..defaults
        })
        .await
        .step("starting the reference authorization server")?;
        let api_config = ApiConfig {
            lifetime,
            ..ApiConfig::for_auth(&auth)
        };
        let catalogue = api_config.catalogue.clone();
        let api = ApiServer::start(api_config)
            .await
            .step("starting the reference model API")?;
        // The conformance profile: a plugin under test names its endpoints with these keys.
        let config = HostConfig::new()
            .step("configuring the reference endpoints")?
            .set("oauth-issuer", auth.issuer())
            .set("api-base", api.base_url())
            .set("client-id", auth.client_id())
            // The lanes, tiers, tokens and errors scenarios speak to the developer API,
            // which is not a plugin's default route when it has a subscription rail: they
            // name it as the default; the routes scenarios enable the rail and pick routes
            // per request.
            .set("default-route", "api");
        let state = tempfile::Builder::new()
            .prefix("scenario-")
            .tempdir_in(&env.scratch)
            .map_err(|e| Failure(format!("cannot create a state directory: {e}")))?;
        let runtime = Runtime::new(env.runtime_options(state.path().to_path_buf()))
            .step("loading the component")?;
        Ok(Self {
            auth,
            api,
            runtime,
            config,
            catalogue,
            _state: state,
        })
    }

    /// A new session of the scenario's tenant with the standard configuration.
    pub async fn session(&self) -> Outcome<Session> {
        self.session_with(&self.config).await
    }

    /// A new session of the scenario's tenant with another configuration.
    pub async fn session_with(&self, config: &HostConfig) -> Outcome<Session> {
        self.runtime
            .session(TENANT, config)
            .await
            .step("opening a session")
    }

    /// Device-code polls the authorization server received for `user_code`.
    pub fn polls(&self, user_code: &str) -> u64 {
        self.auth
            .stats()
            .polls_per_user_code
            .get(user_code)
            .copied()
            .unwrap_or(0)
    }

    /// Requests the model API received for `endpoint` (e.g. `chat/completions`), faulted
    /// ones included.
    pub fn calls(&self, endpoint: &str) -> usize {
        let path = format!("/{}", endpoint.trim_start_matches('/'));
        self.api
            .requests()
            .iter()
            .filter(|r| r.path.ends_with(&path))
            .count()
    }

    /// Log `session` in at `tier`: start, the user approves at once, poll until connected.
    pub async fn connect(&self, session: &mut Session, tier: u32) -> Outcome<ConnectionStatus> {
        let prompt = session.start().await.step("start")?;
        self.auth
            .approve(&prompt.user_code, tier, &subject(tier))
            .step("approving the login")?;
        poll_until_connected(session, &prompt.pending_id).await
    }

    /// A session logged in at `tier`.
    pub async fn connected_session(&self, tier: u32) -> Outcome<Session> {
        let mut session = self.session().await?;
        let status = self.connect(&mut session, tier).await?;
        check!(
            status.connected && status.tier == Some(tier),
            "after login at tier {tier}: expected connected with tier {tier}, seen connected={} tier={:?}",
            status.connected,
            status.tier
        );
        Ok(session)
    }

    /// Every token the servers saw (bearers, refresh tokens, device codes), to mask them in
    /// failure messages.
    pub fn seen_secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in self.auth.requests() {
            for field in [
                "device_code",
                "refresh_token",
                "token",
                "code",
                "client_secret",
            ] {
                out.extend(r.form_value(field));
            }
            out.extend(r.bearer().map(str::to_owned));
        }
        for r in self.api.requests() {
            out.extend(r.bearer().map(str::to_owned));
        }
        out
    }
}

/// The subject the reference user logs in as at `tier`.
pub fn subject(tier: u32) -> String {
    format!("conformance-user-tier-{tier}")
}

/// Wait the interval a login asks for before its first poll. The contract lets a plugin
/// count the interval from `start` (answering an earlier poll itself, without a token
/// request) or from its first poll; after this wait both policies send the next poll.
pub async fn wait_interval(prompt: &DevicePrompt) {
    let wait = Duration::from_secs(u64::from(prompt.interval_seconds.clamp(1, 10)));
    tokio::time::sleep(wait).await;
}

/// Poll `pending_id` once as `step`, expecting the login still pending; a connection fails
/// the scenario.
pub async fn poll_pending(
    session: &mut Session,
    pending_id: &str,
    step: &str,
) -> Outcome<PendingLogin> {
    match session.poll(Some(pending_id)).await.step(step)? {
        PollOutcome::Pending(p) => Ok(p),
        PollOutcome::Connected(_) => fail!("{step}: expected pending, seen connected"),
    }
}

/// Poll `pending_id` until connected, waiting the interval the plugin asks for between
/// polls; any error, or no connection within the deadline, fails.
pub async fn poll_until_connected(
    session: &mut Session,
    pending_id: &str,
) -> Outcome<ConnectionStatus> {
    let started = Instant::now();
    loop {
        match session.poll(Some(pending_id)).await.step("poll")? {
            PollOutcome::Connected(status) => return Ok(status),
            PollOutcome::Pending(p) => {
                check!(
                    started.elapsed() < CONNECT_DEADLINE,
                    "poll: expected connected within {CONNECT_DEADLINE:?} of an approved login, still pending"
                );
                let wait = Duration::from_secs(u64::from(p.interval_seconds.clamp(1, 10)));
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Whether a model id names the upstream model `upstream` (with or without a prefix).
pub fn names(id: &str, upstream: &str) -> bool {
    id == upstream || id.rsplit('/').next() == Some(upstream)
}

/// The chat models of `list` served by `lane`.
pub fn models_of(list: &ModelList, lane: Lane) -> Vec<Model> {
    list.models
        .iter()
        .filter(|m| m.lane == lane)
        .cloned()
        .collect()
}

/// One user message to `model`.
pub fn ask(model: &str, text: &str) -> ChatRequest {
    ChatRequest::new(model, vec![Message::text(Role::User, text)])
}

/// What the reference API answers to a conversation whose last user message is `text`.
pub fn echo(text: &str) -> String {
    format!("Echo: {text}")
}
