//! The conformance suite: checks any component of the `model-provider:plugin` world
//! against embedded reference servers, with no internet and no account.
//!
//! Each [scenario](SCENARIOS) starts, on 127.0.0.1, a reference authorization server
//! (RFC 8628 device flow, JWT access tokens with a `tier` claim, rotating refresh tokens
//! with reuse detection, revocation, discovery) and a reference model API (tiered models,
//! both chat lanes, SSE, a fault queue), a fresh state directory, and sessions of the
//! component pointed at those servers through configuration. The suite speaks only the
//! WIT contract and judges the component by its answers and by what the servers saw;
//! nothing in it knows which plugin it is running.
//!
//! The component is compiled once per run (the runtimes of all scenarios share one
//! compile cache); scenarios run one after the other.
//!
//! [`run`] takes [`SuiteOptions`] (the component, which scenarios, the session limits, a
//! per-scenario deadline) and a callback that sees each [`Progress`] step, and answers a
//! [`SuiteReport`]: one [`ScenarioResult`] per scenario, whose failure message says what
//! was expected and what was seen, with every token the servers issued masked
//! ([`redact`]). `provider-host conformance` is this function as a command; plugin
//! authors run it against their own component (see `docs/plugin-authors/conformance.md`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), provider_runtime::HostError> {
//! use provider_conformance::{SuiteOptions, run};
//! let report = run(SuiteOptions::new("provider_plugin.wasm"), |_| {}).await?;
//! assert!(report.ok(), "{} failed", report.failed());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod check;
mod context;
mod scenarios;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use check::{Failure, redact};
pub use context::Setup;
pub use scenarios::{SCENARIOS, Scenario};

use context::{Ctx, Env};
use provider_runtime::limits::Limits;
use provider_runtime::{HostError, Runtime};

/// How a run is set up.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// The component under test.
    pub plugin: provider_runtime::PluginSource,
    /// Where compiled components are cached; `None`: a directory that lives for the run.
    pub compile_cache: Option<PathBuf>,
    /// Run only these scenarios (by name); empty runs all of them.
    pub only: Vec<String>,
    /// Limits of every session (default: the host's, with a 60 s call budget).
    pub limits: Limits,
    /// Longest one scenario may take before it counts as failed.
    pub scenario_timeout: Duration,
}

impl SuiteOptions {
    /// Every scenario against `plugin`, with default limits.
    pub fn new(plugin: impl Into<provider_runtime::PluginSource>) -> Self {
        Self {
            plugin: plugin.into(),
            compile_cache: None,
            only: Vec::new(),
            limits: Limits {
                call_timeout: Duration::from_secs(60),
                ..Limits::default()
            },
            scenario_timeout: Duration::from_secs(180),
        }
    }
}

/// The verdict on one scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioResult {
    /// Its name.
    pub name: &'static str,
    /// Whether every expectation held.
    pub ok: bool,
    /// Wall time, setup included.
    pub millis: u64,
    /// On failure: what was expected and what was seen (tokens masked).
    pub message: Option<String>,
}

/// The verdicts of a run.
#[derive(Debug, Clone, Default)]
pub struct SuiteReport {
    /// One per scenario run, in order.
    pub results: Vec<ScenarioResult>,
    /// Time spent loading (compiling) the component before the scenarios.
    pub load_millis: u64,
}

impl SuiteReport {
    /// Scenarios that passed.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.ok).count()
    }

    /// Scenarios that failed.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// Whether every scenario passed.
    pub fn ok(&self) -> bool {
        self.failed() == 0
    }

    /// `{ok, passed, failed, scenarios: [{name, ok, millis, message}]}`.
    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.ok(),
            "passed": self.passed(),
            "failed": self.failed(),
            "scenarios": self.results.iter().map(|r| json!({
                "name": r.name,
                "ok": r.ok,
                "millis": r.millis,
                "message": r.message,
            })).collect::<Vec<_>>(),
        })
    }
}

/// What a run reports while it goes.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// The component was loaded and compiled.
    Loaded {
        /// How long it took.
        millis: u64,
    },
    /// A scenario begins.
    Started {
        /// 0-based position in the run.
        index: usize,
        /// Scenarios in the run.
        total: usize,
        /// Its name.
        name: &'static str,
    },
    /// A scenario ended.
    Finished {
        /// 0-based position in the run.
        index: usize,
        /// Scenarios in the run.
        total: usize,
        /// Its verdict.
        result: &'a ScenarioResult,
    },
}

/// The scenarios `only` names (all when empty), in run order; an unknown name is a
/// configuration error listing the known ones.
pub fn select(only: &[String]) -> Result<Vec<Scenario>, HostError> {
    if let Some(unknown) = only
        .iter()
        .find(|n| !SCENARIOS.iter().any(|s| s.name == n.as_str()))
    {
        let known: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        return Err(HostError::Config(format!(
            "no conformance scenario is named {unknown:?}; known: {}",
            known.join(", ")
        )));
    }
    Ok(SCENARIOS
        .iter()
        .filter(|s| only.is_empty() || only.iter().any(|n| n == s.name))
        .copied()
        .collect())
}

/// Run the selected scenarios one after the other. Fails only when the run cannot start
/// (unknown scenario, unusable component, no scratch space); scenario failures are in the
/// report.
pub async fn run(
    options: SuiteOptions,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<SuiteReport, HostError> {
    let selected = select(&options.only)?;
    let scratch = tempfile::Builder::new()
        .prefix("provider-host-conformance-")
        .tempdir()
        .map_err(|e| HostError::Config(format!("cannot create a scratch directory: {e}")))?;
    let env = Env {
        plugin: options.plugin.clone(),
        compile_cache: options
            .compile_cache
            .clone()
            .unwrap_or_else(|| scratch.path().join("cache")),
        scratch: scratch.path().to_path_buf(),
        limits: options.limits,
    };

    // Load once up front: a component that does not fit the world stops the run here,
    // and every scenario's runtime then finds it compiled in the cache.
    let started = Instant::now();
    let warm = env.runtime_options(scratch.path().join("load"));
    tokio::task::spawn_blocking(move || Runtime::new(warm).map(drop))
        .await
        .map_err(|e| HostError::HostSetup(format!("loading the component failed: {e}")))??;
    let load_millis = millis(started.elapsed());
    progress(Progress::Loaded {
        millis: load_millis,
    });

    let total = selected.len();
    let mut report = SuiteReport {
        results: Vec::with_capacity(total),
        load_millis,
    };
    for (index, scenario) in selected.into_iter().enumerate() {
        progress(Progress::Started {
            index,
            total,
            name: scenario.name,
        });
        let result = run_one(&env, scenario, options.scenario_timeout).await;
        progress(Progress::Finished {
            index,
            total,
            result: &result,
        });
        report.results.push(result);
    }
    Ok(report)
}

/// One scenario in its own task (a panic in the suite fails the scenario, not the run).
async fn run_one(env: &Env, scenario: Scenario, timeout: Duration) -> ScenarioResult {
    let started = Instant::now();
    let env = env.clone();
    let task = tokio::spawn(async move {
        let mut ctx = Ctx::start(&env, scenario.setup).await?;
        let outcome =
            match tokio::time::timeout(timeout, scenarios::run(scenario.name, &mut ctx)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(Failure(format!(
                    "expected the scenario to finish within {timeout:?}, it did not"
                ))),
            };
        outcome.map_err(|f| Failure(redact(&f.0, &ctx.seen_secrets())))
    });
    let outcome = match task.await {
        Ok(outcome) => outcome,
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let text = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            Err(Failure(format!(
                "the scenario panicked: {}",
                redact(&text, &[])
            )))
        }
        Err(e) => Err(Failure(format!("the scenario was cancelled: {e}"))),
    };
    ScenarioResult {
        name: scenario.name,
        ok: outcome.is_ok(),
        millis: millis(started.elapsed()),
        message: outcome.err().map(|f| f.0),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_selectable() {
        let mut names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SCENARIOS.len());
        assert_eq!(select(&[]).unwrap().len(), SCENARIOS.len());
        let one = select(&["denial".into()]).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].name, "denial");
        let err = select(&["nope".into()]).unwrap_err();
        assert_eq!(err.code(), "config_error");
        assert!(err.to_string().contains("device_flow_tier_1"), "{err}");
    }

    #[test]
    fn report_json_has_the_documented_shape() {
        let report = SuiteReport {
            results: vec![
                ScenarioResult {
                    name: "denial",
                    ok: true,
                    millis: 5,
                    message: None,
                },
                ScenarioResult {
                    name: "expiry",
                    ok: false,
                    millis: 7,
                    message: Some("expected x, seen y".into()),
                },
            ],
            load_millis: 1,
        };
        let v = report.to_json();
        assert_eq!(v["ok"], false);
        assert_eq!(v["passed"], 1);
        assert_eq!(v["failed"], 1);
        assert_eq!(v["scenarios"][1]["message"], "expected x, seen y");
        assert_eq!(v["scenarios"][0]["message"], Value::Null);
    }
}
