//! Shared pieces of the benchmarks: the reference servers and runtime they run against,
//! latency statistics, resident memory, and the report table.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use provider_reference::{
    ApiConfig, ApiHandle, ApiServer, AuthConfig, AuthHandle, AuthServer, Lifetime,
};
use provider_runtime::bindings::types::PollOutcome;
use provider_runtime::limits::InstanceAllocation;
use provider_runtime::secrets::KeySource;
use provider_runtime::{HostConfig, Runtime, RuntimeOptions, Session};

/// Size of every chat reply the reference API sends (benchmark c).
pub const REPLY_BYTES: usize = 1024;

/// The reference servers, a state directory and one runtime over the built component.
pub struct World {
    pub auth: AuthHandle,
    pub api: ApiHandle,
    pub state: tempfile::TempDir,
    pub config: HostConfig,
    /// The same endpoints as the native baseline's settings.
    pub settings: grok_provider_core::settings::Settings,
    pub runtime: Arc<Runtime>,
}

impl World {
    pub async fn start() -> World {
        Self::start_with(InstanceAllocation::default(), None, false).await
    }

    /// With a given allocation strategy and, optionally, another state's compile cache
    /// (so that a child process does not compile again); `unbudgeted` lifts the runtime's
    /// memory budget (the memory section holds thousands of live sessions).
    pub async fn start_with(
        allocation: InstanceAllocation,
        cache: Option<PathBuf>,
        unbudgeted: bool,
    ) -> World {
        let lifetime = Lifetime {
            idle: Duration::from_secs(1800),
            max: Duration::from_secs(7200),
        };
        let auth = AuthServer::start(AuthConfig {
            interval: 0,
            slow_down_increment: 0,
            lifetime,
            ..AuthConfig::default()
        })
        .await
        .expect("auth server");
        // No token verification: the lightest server, so that the plugin's own cost shows
        // as much as possible in the chat ratio. Every bearer gets tier 1 (grok-4.3).
        let api = ApiServer::start(ApiConfig {
            reply_bytes: Some(REPLY_BYTES),
            lifetime,
            ..ApiConfig::default()
        })
        .await
        .expect("api server");
        let state = tempfile::Builder::new()
            .prefix("provider-host-bench")
            .tempdir()
            .expect("state dir");
        let config = HostConfig::new()
            .expect("config")
            .set("oauth-issuer", auth.issuer())
            .set("api-base", api.base_url())
            // The subscription rail is the reference server's; the sessions use the API
            // route (the reference rail lists no models for the bench's tier, and the
            // baselines of c and f are calls to the API).
            .set("subscription-base", api.subscription_base())
            .set("default-route", "api");
        let mut options = options(state.path().to_path_buf());
        options.allocation = allocation;
        if unbudgeted {
            options.limits.memory_budget_bytes = None;
        }
        if cache.is_some() {
            options.compile_cache = cache;
        }
        let runtime = Arc::new(Runtime::new(options).expect("runtime"));
        let settings = grok_provider_core::settings::Settings {
            issuer: auth.issuer().to_owned(),
            api_base: api.base_url(),
            subscription_base: api.subscription_base(),
            ..Default::default()
        };
        World {
            auth,
            api,
            state,
            config,
            settings,
            runtime,
        }
    }

    /// A session of `tenant`, logged in through the plugin's device flow (approved on the
    /// reference server) and with its model cache filled.
    pub async fn connect(&self, tenant: &str) -> Session {
        self.connect_on(&self.runtime, tenant).await
    }

    /// [`World::connect`] through another runtime over the same reference servers (e.g.
    /// one with another secret backend).
    pub async fn connect_on(&self, runtime: &Runtime, tenant: &str) -> Session {
        let mut session = runtime
            .session(tenant, &self.config)
            .await
            .expect("session");
        let prompt = session.start().await.expect("start");
        self.auth
            .approve(&prompt.user_code, 4, &format!("user-{tenant}"))
            .expect("approve");
        match session.poll(Some(&prompt.pending_id)).await.expect("poll") {
            PollOutcome::Connected(_) => {}
            PollOutcome::Pending(_) => panic!("login of {tenant} still pending after approval"),
        }
        let status = session.status().await.expect("status");
        assert!(
            status.connected && !status.models.is_empty(),
            "{tenant} not connected: {status:?}"
        );
        session
    }
}

/// Runtime options over the built component with a key file inside `state`.
pub fn options(state: PathBuf) -> RuntimeOptions {
    let mut options = RuntimeOptions::new(env!("PROVIDER_PLUGIN_COMPONENT"), &state);
    options.key = KeySource::File(state.join("keyring").join("master.key"));
    options
}

/// Latency samples.
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// Time `f` and record it.
    pub fn time<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        self.0.push(t.elapsed());
        r
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.0.clone();
        v.sort_unstable();
        v
    }

    /// The `q` quantile (nearest rank).
    pub fn quantile(&self, q: f64) -> Duration {
        let v = self.sorted();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    pub fn p50(&self) -> Duration {
        self.quantile(0.50)
    }

    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }

    pub fn mean(&self) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        self.0.iter().sum::<Duration>() / self.0.len() as u32
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `p50 / p99 / mean (n)`.
    pub fn summary(&self) -> String {
        format!(
            "p50 {} · p99 {} · mean {} (n={})",
            dur(self.p50()),
            dur(self.p99()),
            dur(self.mean()),
            self.len()
        )
    }
}

/// A duration with a unit that keeps three significant figures.
pub fn dur(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// Bytes as KiB or MiB.
pub fn bytes(b: f64) -> String {
    if b.abs() < 1024.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{:.2} MiB", b / 1024.0 / 1024.0)
    }
}

/// `a / b` of two durations.
pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}

/// Resident set size of this process, from `/proc/self/statm`.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("statm resident field");
    pages * page_size()
}

fn page_size() -> u64 {
    static SIZE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("PAGESIZE")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(4096)
    })
}

/// Number of memory mappings of this process (bounded by `vm.max_map_count`).
pub fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().count())
        .unwrap_or(0)
}

/// One line of the summary table.
pub struct Row {
    pub bench: &'static str,
    pub figure: String,
    pub baseline: String,
    pub ratio: String,
    pub target: &'static str,
    pub met: Option<bool>,
}

/// Every figure of the run, printed as a Markdown table at the end.
#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
}

impl Report {
    pub fn add(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn print(&self) {
        println!();
        println!("| Benchmark | Measured | Baseline (same run) | Ratio | Target | Met |");
        println!("|---|---|---|---|---|---|");
        for r in &self.rows {
            let met = match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            };
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                r.bench, r.figure, r.baseline, r.ratio, r.target, met
            );
        }
    }
}

/// A section heading on stdout.
pub fn heading(title: &str) {
    println!("\n== {title}");
}
