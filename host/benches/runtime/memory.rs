//! d) resident memory per idle live tenant session: RSS delta over n sessions that each
//! made a call and now hold their instance, divided by n.

use std::time::Instant;

use provider_host::limits::InstanceAllocation;
use provider_host::{HostConfig, Runtime};
use provider_reference::AuthHandle;

use crate::support::{self, Report, Row, World, bytes, dur, heading, map_count, rss_bytes};

const TARGET: f64 = 256.0 * 1024.0;

pub async fn run(world: &World, counts: &[usize], report: &mut Report) {
    heading("d) resident memory per idle live session (each made one status() call)");
    let pooled = world.runtime.as_ref();
    let mut first = None;
    for &n in counts {
        let m = measure(pooled, &world.config, n, &format!("d{n}"), None).await;
        m.print(&format!("pooling, {n} new tenants"));
        first.get_or_insert(m.per_session);
        report.add(Row {
            bench: if n >= 10_000 {
                "d) RSS per idle live session, 10,000 sessions"
            } else {
                "d) RSS per idle live session, 1,000 sessions"
            },
            figure: format!("{} (n={n})", bytes(m.per_session)),
            baseline: "see on-demand row".into(),
            ratio: format!("{:.2}× of target", m.per_session / TARGET),
            target: "≤ 256 KiB",
            met: Some(m.per_session <= TARGET),
        });
    }

    // Baseline: the same sessions with wasmtime's on-demand allocator (mmap per instance).
    let n = counts.first().copied().unwrap_or(1000);
    let mut options = support::options(world.state.path().to_path_buf());
    options.allocation = InstanceAllocation::OnDemand;
    let on_demand = Runtime::new(options).expect("on-demand runtime");
    let base = measure(&on_demand, &world.config, n, "dod", None).await;
    base.print(&format!("on-demand allocator, {n} new tenants"));
    drop(on_demand);
    if let Some(pooled) = first {
        report.add(Row {
            bench: "d′) same, on-demand allocator (baseline), 1,000 sessions",
            figure: bytes(base.per_session),
            baseline: "–".into(),
            ratio: format!("pooling: {:.2}×", pooled / base.per_session),
            target: "–",
            met: None,
        });
    }

    // Sessions that logged in (device flow) and fetched models: more of the guest's heap
    // has been touched.
    let n = 1000.min(counts.first().copied().unwrap_or(1000));
    let m = measure(pooled, &world.config, n, "dconn", Some(&world.auth)).await;
    m.print(&format!(
        "pooling, {n} tenants logged in through the plugin"
    ));
    report.add(Row {
        bench: "d″) RSS per idle live session, 1,000 logged-in tenants",
        figure: bytes(m.per_session),
        baseline: "–".into(),
        ratio: format!("{:.2}× of target", m.per_session / TARGET),
        target: "≤ 256 KiB",
        met: Some(m.per_session <= TARGET),
    });
}

struct Measured {
    n: usize,
    per_session: f64,
    maps_per_session: f64,
    setup: std::time::Duration,
    teardown: std::time::Duration,
}

impl Measured {
    fn print(&self, label: &str) {
        println!(
            "   {label}: {} per session · {:.1} mappings per session · created in {} · dropped in {}",
            bytes(self.per_session),
            self.maps_per_session,
            dur(self.setup),
            dur(self.teardown)
        );
        let _ = self.n;
    }
}

/// `login`: log each tenant in through the plugin's device flow before its status call.
async fn measure(
    runtime: &Runtime,
    config: &HostConfig,
    n: usize,
    prefix: &str,
    login: Option<&AuthHandle>,
) -> Measured {
    // One session first, so that one-off costs (pool setup, code, caches) are not counted.
    let mut warm = runtime
        .session(&format!("{prefix}-warm"), config)
        .await
        .expect("session");
    warm.status().await.expect("status");
    drop(warm);

    let rss0 = rss_bytes();
    let maps0 = map_count();
    let t = Instant::now();
    let mut sessions = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = runtime
            .session(&format!("{prefix}-{i}"), config)
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
        n,
        per_session: (rss1 as f64 - rss0 as f64) / n as f64,
        maps_per_session: (maps1 as f64 - maps0 as f64) / n as f64,
        setup,
        teardown,
    }
}
