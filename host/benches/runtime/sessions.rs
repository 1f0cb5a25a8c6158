//! b) a new tenant session plus one `status()` call, against the same provider logic run
//! natively over the same secret store; and whether calls on different tenants run in
//! parallel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use provider_runtime::secrets::{KeySource, SecretStore, StoreConfig};

use crate::native::Native;
use crate::support::{Report, Row, Samples, World, dur, heading, ratio};

/// The runtime's secret store, opened again for the native baseline.
pub fn secret_store(world: &World) -> SecretStore {
    SecretStore::open(StoreConfig::new(
        world.state.path(),
        KeySource::File(world.state.path().join("keyring").join("master.key")),
    ))
    .expect("secret store")
}

/// What one kind of session costs: creating it, its first `status()`, both, and its drop;
/// and the same `status()` natively.
struct Kind {
    session: Samples,
    status: Samples,
    total: Samples,
    drop: Samples,
    native: Samples,
}

async fn measure(
    world: &World,
    native: &mut Native,
    iterations: usize,
    tenant: impl Fn(usize) -> (String, String),
    connected: bool,
) -> Kind {
    let mut k = Kind {
        session: Samples::with_capacity(iterations),
        status: Samples::with_capacity(iterations),
        total: Samples::with_capacity(iterations),
        drop: Samples::with_capacity(iterations),
        native: Samples::with_capacity(iterations),
    };
    for i in 0..iterations {
        let (plugin_tenant, native_tenant) = tenant(i);
        let t = Instant::now();
        let mut s = world
            .runtime
            .session(&plugin_tenant, &world.config)
            .await
            .expect("session");
        let created = t.elapsed();
        let status = s.status().await.expect("status");
        let total = t.elapsed();
        k.session.push(created);
        k.status.push(total - created);
        k.total.push(total);
        assert_eq!(status.connected, connected);
        k.drop.time(|| drop(s));
        let st = k
            .native
            .time(|| native.status(&world.settings, &native_tenant));
        assert_eq!(st.expect("native status").connected, connected);
    }
    k
}

impl Kind {
    fn print(&self, label: &str) {
        println!("   {label}");
        println!("     session() + status() : {}", self.total.summary());
        println!("       of which session() : {}", self.session.summary());
        println!("       of which status()  : {}", self.status.summary());
        println!("     drop                 : {}", self.drop.summary());
        println!("     native status()      : {}", self.native.summary());
    }

    fn row(&self, bench: &'static str, target: &'static str, met: Option<bool>) -> Row {
        Row {
            bench,
            figure: format!("{} / {}", dur(self.total.p50()), dur(self.total.p99())),
            baseline: format!(
                "{} / {} (same logic native, same store)",
                dur(self.native.p50()),
                dur(self.native.p99())
            ),
            ratio: format!("{:.2}×", ratio(self.total.p50(), self.native.p50())),
            target,
            met,
        }
    }
}

pub async fn run(world: &World, iterations: usize, report: &mut Report) {
    heading("b) new session + one status() call (p50 / p99)");
    let native = &mut Native::new(secret_store(world));
    let connected = "bench-b-connected";
    drop(world.connect(connected).await);
    let idle = "bench-b-idle";

    // Warm-up: fills the instance pool's slots, the page cache and the allocator.
    measure(
        world,
        native,
        300,
        |i| (format!("warm-{i}"), format!("warm-n-{i}")),
        false,
    )
    .await;
    measure(
        world,
        native,
        300,
        |_| (connected.into(), connected.into()),
        true,
    )
    .await;

    let conn = measure(
        world,
        native,
        iterations,
        |_| (connected.into(), connected.into()),
        true,
    )
    .await;
    conn.print("existing tenant, connected (reads and decrypts credentials and model cache)");
    let existing = measure(
        world,
        native,
        iterations,
        |_| (idle.into(), idle.into()),
        false,
    )
    .await;
    existing.print("existing tenant, not connected");
    let fresh = measure(
        world,
        native,
        iterations,
        |i| (format!("b-{i}"), format!("b-native-{i}")),
        false,
    )
    .await;
    fresh.print("never-seen tenant (its directories are created on the way)");

    // Warm calls on one live session: the per-call cost without instantiation.
    let mut s = world
        .runtime
        .session(connected, &world.config)
        .await
        .expect("session");
    let mut warm = Samples::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        s.status().await.expect("status");
        warm.push(t.elapsed());
    }
    drop(s);
    println!(
        "   status() again on a live session (connected): {}",
        warm.summary()
    );

    let target = Duration::from_micros(30);
    report.add(conn.row(
        "b) new session of a connected tenant + status() (p50 / p99)",
        "p50 ≤ 30 µs",
        Some(conn.total.p50() <= target),
    ));
    report.add(existing.row(
        "b′) same, tenant not connected",
        "p50 ≤ 30 µs",
        Some(existing.total.p50() <= target),
    ));
    report.add(fresh.row(
        "b″) same, never-seen tenant (creates its directories)",
        "–",
        None,
    ));
    report.add(Row {
        bench: "b‴) status() on a live session, connected (p50 / p99)",
        figure: format!("{} / {}", dur(warm.p50()), dur(warm.p99())),
        baseline: format!("{} (native, from b)", dur(conn.native.p50())),
        ratio: format!("{:.2}×", ratio(warm.p50(), conn.native.p50())),
        target: "–",
        met: None,
    });
}

/// Status calls on live sessions of different tenants from one thread, then from as many
/// threads as there are cores (each driving its session with `Handle::block_on`, so that
/// the runtime's scheduler cannot serialise calls that never wait): the throughput ratio
/// shows whether they run in parallel.
pub async fn parallel(world: &World, calls: usize, report: &mut Report) {
    let store = secret_store(world);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    heading(&format!(
        "b⁗) status() on {threads} tenants: 1 thread vs {threads} threads"
    ));
    let mut sessions = Vec::new();
    for i in 0..threads {
        sessions.push(world.connect(&format!("bench-par-{i}")).await);
    }
    let per_thread = calls / threads;
    let handle = tokio::runtime::Handle::current();
    let (sequential, parallel) = tokio::task::block_in_place(|| {
        // One thread walks over every session.
        let t = Instant::now();
        let mut sessions = handle.block_on(async {
            for _ in 0..per_thread {
                for s in sessions.iter_mut() {
                    s.status().await.expect("status");
                }
            }
            sessions
        });
        let sequential = t.elapsed();
        // One thread per session.
        let barrier = Arc::new(std::sync::Barrier::new(threads));
        let t = Instant::now();
        let workers: Vec<_> = sessions
            .drain(..)
            .map(|mut s| {
                let (handle, barrier) = (handle.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    handle.block_on(async {
                        for _ in 0..per_thread {
                            s.status().await.expect("status");
                        }
                    });
                })
            })
            .collect();
        for w in workers {
            w.join().expect("thread");
        }
        (sequential, t.elapsed())
    });
    let calls = per_thread * threads;
    let speedup = ratio(sequential, parallel);
    println!(
        "   plugin, {calls} calls: 1 thread {} · {threads} threads {} · speed-up {speedup:.2}×",
        dur(sequential),
        dur(parallel)
    );
    // The same calls natively: how well the machine itself (file system, caches) scales.
    let (native_seq, native_par) = tokio::task::block_in_place(|| {
        let tenants: Vec<String> = (0..threads).map(|i| format!("bench-par-{i}")).collect();
        let settings = &world.settings;
        let mut native = Native::new(store.clone());
        let t = Instant::now();
        for _ in 0..per_thread {
            for tenant in &tenants {
                native.status(settings, tenant).expect("native status");
            }
        }
        let sequential = t.elapsed();
        let barrier = std::sync::Barrier::new(threads);
        let t = Instant::now();
        std::thread::scope(|scope| {
            for tenant in &tenants {
                let (barrier, store) = (&barrier, store.clone());
                scope.spawn(move || {
                    let mut native = Native::new(store);
                    barrier.wait();
                    for _ in 0..per_thread {
                        native.status(settings, tenant).expect("native status");
                    }
                });
            }
        });
        (sequential, t.elapsed())
    });
    let native_speedup = ratio(native_seq, native_par);
    println!(
        "   native, {calls} calls: 1 thread {} · {threads} threads {} · speed-up {native_speedup:.2}×",
        dur(native_seq),
        dur(native_par)
    );
    report.add(Row {
        bench: "b⁗) status() throughput, tenants on parallel threads",
        figure: format!("{:.0} calls/s", calls as f64 / parallel.as_secs_f64()),
        baseline: format!(
            "{:.0} calls/s (one thread)",
            calls as f64 / sequential.as_secs_f64()
        ),
        ratio: format!("{speedup:.2}× on {threads} cores (native: {native_speedup:.2}×)"),
        target: "parallel",
        met: None,
    });
}
