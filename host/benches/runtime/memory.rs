//! d) resident memory per idle live tenant session: RSS delta over n sessions that each
//! made a call and now hold their instance, divided by n.
//!
//! Each figure comes from a fresh child process (this binary, re-run with `memory-child`):
//! pages an earlier measurement touched stay resident and would hide the cost of the next.

use std::process::Command;
use std::time::{Duration, Instant};

use provider_reference::AuthHandle;
use provider_runtime::limits::InstanceAllocation;
use provider_runtime::{HostConfig, Runtime};

use crate::support::{Report, Row, World, bytes, dur, heading, map_count, rss_bytes};

const TARGET: f64 = 256.0 * 1024.0;

pub fn run(world: &World, counts: &[usize], logins: usize, report: &mut Report) {
    heading("d) resident memory per idle live session (each made one status() call)");
    println!(
        "   (each line from a fresh process; the kernel allows {} mappings per process)",
        std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .unwrap_or_default()
            .trim()
    );
    let cache = world.state.path().join("cache");
    let n_base = counts.first().copied().unwrap_or(1000);
    let base = child(&cache, "on-demand", n_base, false);
    base.print(&format!("on-demand allocator, {n_base} new tenants"));
    for &n in counts {
        let m = child(&cache, "pooling", n, false);
        m.print(&format!("pooling, {n} new tenants"));
        report.add(Row {
            bench: if n >= 10_000 {
                "d) RSS per idle live session, 10,000 sessions"
            } else {
                "d) RSS per idle live session, 1,000 sessions"
            },
            figure: format!("{} (n={n})", bytes(m.per_session)),
            baseline: format!(
                "{} (on-demand allocator, n={n_base})",
                bytes(base.per_session)
            ),
            ratio: format!("{:.2}×", m.per_session / base.per_session),
            target: "≤ 256 KiB",
            met: Some(m.per_session <= TARGET),
        });
    }
    if logins > 0 {
        // Sessions that logged in (device flow) and fetched models: more of the guest's
        // heap has been touched.
        let m = child(&cache, "pooling", logins, true);
        m.print(&format!(
            "pooling, {logins} tenants logged in through the plugin"
        ));
        report.add(Row {
            bench: "d′) same, tenants logged in through the plugin",
            figure: format!("{} (n={logins})", bytes(m.per_session)),
            baseline: "–".into(),
            ratio: format!("{:.2}× of target", m.per_session / TARGET),
            target: "≤ 256 KiB",
            met: Some(m.per_session <= TARGET),
        });
    }
}

/// Run one measurement in a fresh process.
fn child(cache: &std::path::Path, mode: &str, n: usize, login: bool) -> Measured {
    let out = Command::new(std::env::current_exe().expect("current exe"))
        .args([
            "memory-child",
            mode,
            &n.to_string(),
            if login { "login" } else { "new" },
        ])
        .env("PROVIDER_HOST_BENCH_CACHE", cache)
        .output()
        .expect("run the memory child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("MEASURED "))
        .unwrap_or_else(|| {
            panic!(
                "memory child failed: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let f: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse().expect("number"))
        .collect();
    Measured {
        per_session: f[0],
        maps_per_session: f[1],
        setup: Duration::from_secs_f64(f[2]),
        teardown: Duration::from_secs_f64(f[3]),
        pooling: f[4] > 0.0,
    }
}

/// The child side: `memory-child <pooling|on-demand> <n> <new|login>`.
pub async fn child_main(args: &[String]) {
    let allocation = match args.first().map(String::as_str) {
        Some("on-demand") => InstanceAllocation::OnDemand,
        _ => InstanceAllocation::default(),
    };
    let n: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1000);
    let login = args.get(2).is_some_and(|a| a == "login");
    let cache = std::env::var_os("PROVIDER_HOST_BENCH_CACHE").map(Into::into);
    // Thousands of live sessions at once: past the runtime's memory budget, which counts
    // each instance's whole linear memory (about 1.1 MiB from its start), while an idle
    // session keeps resident only the pages it touched, which is what this measures.
    let world = World::start_with(allocation, cache, true).await;
    let m = measure(
        &world.runtime,
        &world.config,
        n,
        login.then_some(&world.auth),
    )
    .await;
    println!(
        "MEASURED {} {} {} {} {}",
        m.per_session,
        m.maps_per_session,
        m.setup.as_secs_f64(),
        m.teardown.as_secs_f64(),
        u8::from(world.runtime.is_pooling())
    );
}

struct Measured {
    per_session: f64,
    maps_per_session: f64,
    setup: Duration,
    teardown: Duration,
    pooling: bool,
}

impl Measured {
    fn print(&self, label: &str) {
        println!(
            "   {label}: {} per session · {:.1} mappings per session · created in {} · dropped in {}{}",
            bytes(self.per_session),
            self.maps_per_session,
            dur(self.setup),
            dur(self.teardown),
            if self.pooling { "" } else { " (on-demand)" }
        );
    }
}

/// `login`: log each tenant in through the plugin's device flow before its status call.
async fn measure(
    runtime: &Runtime,
    config: &HostConfig,
    n: usize,
    login: Option<&AuthHandle>,
) -> Measured {
    // One session first, so that one-off costs (code, images, caches) are not counted.
    let mut warm = runtime.session("warm", config).await.expect("session");
    warm.status().await.expect("status");
    drop(warm);

    let rss0 = rss_bytes();
    let maps0 = map_count();
    let t = Instant::now();
    let mut sessions = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = runtime
            .session(&format!("t-{i}"), config)
            .await
            .expect("session");
        if let Some(auth) = login {
            let prompt = s.start().await.expect("start");
            auth.approve(&prompt.user_code, 4, "user-d")
                .expect("approve");
            s.poll(Some(&prompt.pending_id)).await.expect("poll");
        }
        s.status().await.expect("status");
        sessions.push(s);
    }
    let setup = t.elapsed();
    let rss1 = rss_bytes();
    let maps1 = map_count();
    let t = Instant::now();
    drop(sessions);
    let teardown = t.elapsed();
    Measured {
        per_session: (rss1 as f64 - rss0 as f64) / n as f64,
        maps_per_session: (maps1 as f64 - maps0 as f64) / n as f64,
        setup,
        teardown,
        pooling: runtime.is_pooling(),
    }
}
