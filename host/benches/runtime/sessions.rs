//! b) a new tenant session plus one `status()` call, against the same provider logic run
//! natively over the same secret store; and whether calls on different tenants run in
//! parallel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use provider_host::secrets::{KeySource, SecretStore, StoreConfig};

use crate::native;
use crate::support::{Report, Row, Samples, World, dur, heading, ratio};

pub async fn run(world: &World, iterations: usize, report: &mut Report) {
    heading("b) new tenant session + one status() call");
    let runtime = &world.runtime;
    let config = &world.config;
    let store = SecretStore::open(StoreConfig::new(
        world.state.path(),
        KeySource::File(world.state.path().join("keyring").join("master.key")),
    ))
    .expect("secret store");
    let settings = &config.provider;

    // Warm-up: fills the instance pool's slots, the page cache and the allocator.
    for i in 0..200 {
        let mut s = runtime
            .session(&format!("warm-{i}"), config)
            .await
            .expect("session");
        s.status().await.expect("status");
        native::status(&store, settings, &format!("warm-n-{i}")).expect("native status");
    }

    // A brand-new tenant each time (its directories are created on the way).
    let mut plugin = Samples::with_capacity(iterations);
    let mut native_new = Samples::with_capacity(iterations);
    let mut create = Samples::with_capacity(iterations);
    let mut drops = Samples::with_capacity(iterations);
    for i in 0..iterations {
        let t = Instant::now();
        let mut s = runtime
            .session(&format!("b-{i}"), config)
            .await
            .expect("session");
        let created = t.elapsed();
        let status = s.status().await.expect("status");
        plugin.push(t.elapsed());
        create.push(created);
        assert!(!status.connected);
        drops.time(|| drop(s));
        let st = native_new.time(|| native::status(&store, settings, &format!("n-{i}")));
        assert!(!st.expect("native status").connected);
    }
    println!("   new tenant, plugin      : {}", plugin.summary());
    println!("     of which session()    : {}", create.summary());
    println!("   drop of the session     : {}", drops.summary());
    println!("   new tenant, native core : {}", native_new.summary());

    // A new session of a connected tenant: reads and decrypts credentials and model cache.
    let tenant = "bench-b-connected";
    drop(world.connect(tenant).await);
    let mut plugin_conn = Samples::with_capacity(iterations);
    let mut native_conn = Samples::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let mut s = runtime.session(tenant, config).await.expect("session");
        let status = s.status().await.expect("status");
        plugin_conn.push(t.elapsed());
        assert!(status.connected);
        drop(s);
        let st = native_conn.time(|| native::status(&store, settings, tenant));
        assert!(st.expect("native status").connected);
    }
    println!(
        "   connected tenant, plugin      : {}",
        plugin_conn.summary()
    );
    println!(
        "   connected tenant, native core : {}",
        native_conn.summary()
    );

    // Warm calls on one live session: the per-call cost without instantiation.
    let mut s = runtime.session(tenant, config).await.expect("session");
    let mut warm = Samples::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        s.status().await.expect("status");
        warm.push(t.elapsed());
    }
    drop(s);
    println!(
        "   status() on a live session (connected): {}",
        warm.summary()
    );

    let r = ratio(plugin.p50(), native_new.p50());
    report.add(Row {
        bench: "b) new tenant session + status() (p50 / p99)",
        figure: format!("{} / {}", dur(plugin.p50()), dur(plugin.p99())),
        baseline: format!(
            "{} / {} (same logic native, same store)",
            dur(native_new.p50()),
            dur(native_new.p99())
        ),
        ratio: format!("{r:.2}×"),
        target: "p50 ≤ 30 µs",
        met: Some(plugin.p50() <= Duration::from_micros(30)),
    });
    let r = ratio(plugin_conn.p50(), native_conn.p50());
    report.add(Row {
        bench: "b′) new session of a connected tenant + status() (p50 / p99)",
        figure: format!("{} / {}", dur(plugin_conn.p50()), dur(plugin_conn.p99())),
        baseline: format!(
            "{} / {} (native)",
            dur(native_conn.p50()),
            dur(native_conn.p99())
        ),
        ratio: format!("{r:.2}×"),
        target: "–",
        met: None,
    });
    report.add(Row {
        bench: "b″) status() on a live session, connected (p50)",
        figure: dur(warm.p50()),
        baseline: "–".into(),
        ratio: "–".into(),
        target: "–",
        met: None,
    });
}

/// Status calls on live sessions of different tenants from one task, then from as many
/// tasks as there are cores: the throughput ratio shows whether they run in parallel.
pub async fn parallel(world: &World, calls: usize, report: &mut Report) {
    let tasks = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    heading(&format!(
        "b‴) concurrent status() on {tasks} tenants: 1 task vs {tasks} tasks"
    ));
    let mut sessions = Vec::new();
    for i in 0..tasks {
        sessions.push(world.connect(&format!("bench-par-{i}")).await);
    }
    // Sequential: one task walks over the sessions.
    let t = Instant::now();
    for _ in 0..calls / tasks {
        for s in sessions.iter_mut() {
            s.status().await.expect("status");
        }
    }
    let sequential = t.elapsed();
    // Parallel: one task per session.
    let barrier = Arc::new(tokio::sync::Barrier::new(tasks + 1));
    let mut handles = Vec::new();
    for mut s in sessions {
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            for _ in 0..calls / tasks {
                s.status().await.expect("status");
            }
        }));
    }
    barrier.wait().await;
    let t = Instant::now();
    for h in handles {
        h.await.expect("task");
    }
    let parallel = t.elapsed();
    let speedup = ratio(sequential, parallel);
    println!(
        "   {calls} calls: 1 task {} · {tasks} tasks {} · speed-up {speedup:.2}×",
        dur(sequential),
        dur(parallel)
    );
    report.add(Row {
        bench: "b‴) status() throughput, tenants in parallel tasks",
        figure: format!("{:.0} calls/s", calls as f64 / parallel.as_secs_f64()),
        baseline: format!(
            "{:.0} calls/s (one task)",
            calls as f64 / sequential.as_secs_f64()
        ),
        ratio: format!("{speedup:.2}× on {tasks} cores"),
        target: "parallel",
        met: None,
    });
}
