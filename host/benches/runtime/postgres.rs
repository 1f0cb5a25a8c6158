//! g) the PostgreSQL secret backend against the default file store (issue 16), both through
//! the runtime in the same run, over the same reference servers:
//!
//! - `status()` of a connected tenant on a live session (reads and opens the credentials
//!   and the model cache), and a new session plus `status()`, the two backends interleaved
//!   call by call;
//! - a refresh under contention: 8 sessions of one tenant call `refresh()` at once (the
//!   plugin's single-flight refresh under the backend's lock); the wall time until all
//!   return, against one session refreshing alone, and the refresh-token redemptions the
//!   reference authorization server saw in each round (1 is right).
//!
//! The database is a throwaway cluster on loopback (`initdb` + `postgres` with fsync off,
//! host/secrets-postgres's test support), sharing the machine with everything else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use provider_runtime::Runtime;
use provider_runtime::secrets::MasterKey;
use provider_secrets_postgres::{PostgresBackend, PostgresOptions};

use crate::support::{Report, Row, Samples, World, dur, heading, options, ratio};

#[path = "../../secrets-postgres/tests/postgres/support.rs"]
mod pg;

/// Sessions of one tenant refreshing at once.
const CONTENDERS: usize = 8;
/// The plugin skips a forced refresh of credentials younger than this
/// (`FORCED_REFRESH_MIN_AGE_MS`): tenants wait so long after their login.
const FORCED_REFRESH_MIN_AGE: Duration = Duration::from_millis(2_100);

/// One backend: its runtime and figures.
struct Backend {
    name: &'static str,
    runtime: Arc<Runtime>,
    status: Samples,
    session_status: Samples,
    alone: Samples,
    contended: Samples,
    /// Refresh-token redemptions of each contended round.
    redemptions: Vec<u64>,
}

impl Backend {
    fn new(name: &'static str, runtime: Arc<Runtime>, n: usize, rounds: usize) -> Self {
        Self {
            name,
            runtime,
            status: Samples::with_capacity(n),
            session_status: Samples::with_capacity(n),
            alone: Samples::with_capacity(rounds),
            contended: Samples::with_capacity(rounds),
            redemptions: Vec::with_capacity(rounds),
        }
    }

    fn tenant(&self, what: &str, i: usize) -> String {
        format!("bench-g-{}-{what}-{i}", self.name)
    }
}

pub async fn run(world: &World, quick: bool, report: &mut Report) {
    heading("g) PostgreSQL secret backend vs the file store (status, refresh under contention)");
    let (iterations, rounds) = if quick { (300, 3) } else { (2000, 10) };
    let cluster = match tokio::task::block_in_place(|| std::panic::catch_unwind(pg::Cluster::start))
    {
        Ok(c) => c,
        Err(_) => {
            println!(
                "   not measured: no PostgreSQL cluster could be started (see the panic above; \
                 the server binaries initdb and postgres are needed)"
            );
            return;
        }
    };
    let url = cluster.url();
    let key: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(7).wrapping_add(3));
    let backend = tokio::task::block_in_place(|| {
        PostgresBackend::connect_with(&url, MasterKey::from_bytes(key), PostgresOptions::default())
    })
    .expect("postgres backend");
    println!(
        "   database: {} (PostgreSQL {}), pools of {} + {} connections",
        backend.database(),
        server_version(&cluster),
        PostgresOptions::default().connections,
        PostgresOptions::default().lock_connections
    );
    let pg_state = tempfile::Builder::new()
        .prefix("provider-host-bench-pg")
        .tempdir()
        .expect("state dir");
    let mut opts = options(pg_state.path().to_path_buf());
    opts.secrets = Some(Arc::new(backend));
    let pg_runtime = Arc::new(Runtime::new(opts).expect("runtime over postgres"));
    let mut backends = [
        Backend::new("file", world.runtime.clone(), iterations, rounds),
        Backend::new("db", pg_runtime, iterations, rounds),
    ];

    // status() of a connected tenant.
    let mut live = Vec::new();
    for b in &backends {
        live.push(world.connect_on(&b.runtime, &b.tenant("status", 0)).await);
    }
    const WARM_UP: usize = 200;
    for i in 0..WARM_UP + iterations {
        for (b, s) in backends.iter_mut().zip(&mut live) {
            let t = Instant::now();
            let st = s.status().await.expect("status");
            let took = t.elapsed();
            assert!(st.connected);
            let t = Instant::now();
            let mut fresh = b
                .runtime
                .session(&b.tenant("status", 0), &world.config)
                .await
                .expect("session");
            assert!(fresh.status().await.expect("status").connected);
            let both = t.elapsed();
            drop(fresh);
            if i >= WARM_UP {
                b.status.push(took);
                b.session_status.push(both);
            }
        }
    }
    drop(live);

    // Refresh: every round on a tenant of its own, logged in over 2 s before (a forced
    // refresh of younger credentials is skipped by design).
    let mut logged_in = Instant::now();
    for b in &backends {
        for i in 0..rounds {
            for what in ["alone", "contended"] {
                drop(world.connect_on(&b.runtime, &b.tenant(what, i)).await);
                logged_in = Instant::now();
            }
        }
    }
    tokio::time::sleep(
        (logged_in + FORCED_REFRESH_MIN_AGE).saturating_duration_since(Instant::now()),
    )
    .await;
    let mut unexpected = Vec::new();
    for i in 0..rounds {
        for b in backends.iter_mut() {
            for (what, n) in [("alone", 1), ("contended", CONTENDERS)] {
                let tenant = b.tenant(what, i);
                let mut sessions = Vec::with_capacity(n);
                for _ in 0..n {
                    sessions.push(
                        b.runtime
                            .session(&tenant, &world.config)
                            .await
                            .expect("session"),
                    );
                }
                let before = world.auth.stats().refresh_redemptions;
                let t = Instant::now();
                let tasks: Vec<_> = sessions
                    .into_iter()
                    .map(|mut s| {
                        tokio::spawn(async move {
                            let r = s.refresh().await;
                            (r, s)
                        })
                    })
                    .collect();
                for task in tasks {
                    let (r, s) = task.await.expect("refresh task");
                    assert!(r.expect("refresh").connected, "{tenant} not connected");
                    drop(s);
                }
                let wall = t.elapsed();
                let redeemed = world.auth.stats().refresh_redemptions - before;
                if n == 1 {
                    b.alone.push(wall);
                } else {
                    b.contended.push(wall);
                    b.redemptions.push(redeemed);
                }
                if redeemed != 1 {
                    unexpected.push(format!("{} {what} round {i}: {redeemed}", b.name));
                }
            }
        }
    }

    for b in &backends {
        println!("   {}:", b.name);
        println!("     status(), live session     : {}", b.status.summary());
        println!(
            "     new session + status()     : {}",
            b.session_status.summary()
        );
        println!("     refresh(), 1 session       : {}", b.alone.summary());
        println!(
            "     refresh(), {CONTENDERS} sessions at once: {} (wall time until all return)",
            b.contended.summary()
        );
        println!(
            "     refresh-token redemptions per contended round: {:?}",
            b.redemptions
        );
    }
    if unexpected.is_empty() {
        println!("   every round redeemed the refresh token exactly once");
    } else {
        println!(
            "   rounds that did not redeem exactly once: {}",
            unexpected.join(", ")
        );
    }
    let [file, db] = &backends;
    let r_status = ratio(db.status.p50(), file.status.p50());
    let r_session = ratio(db.session_status.p50(), file.session_status.p50());
    let r_alone = ratio(db.alone.p50(), file.alone.p50());
    let r_contended = ratio(db.contended.p50(), file.contended.p50());
    println!(
        "   ratio db/file (p50): status {r_status:.2}×, new session + status {r_session:.2}×, \
         refresh alone {r_alone:.2}×, {CONTENDERS} refreshing at once {r_contended:.2}×"
    );

    let pair = |s: &Samples| format!("{} / {}", dur(s.p50()), dur(s.p99()));
    report.add(Row {
        bench: "g) `status()`, connected tenant, PostgreSQL backend (p50 / p99)",
        figure: pair(&db.status),
        baseline: format!("{} (file store)", pair(&file.status)),
        ratio: format!("{r_status:.2}×"),
        target: "–",
        met: None,
    });
    report.add(Row {
        bench: "g) new session + `status()`, PostgreSQL backend (p50 / p99)",
        figure: pair(&db.session_status),
        baseline: format!("{} (file store)", pair(&file.session_status)),
        ratio: format!("{r_session:.2}×"),
        target: "–",
        met: None,
    });
    let total = |b: &Backend| b.redemptions.iter().sum::<u64>();
    report.add(Row {
        bench: "g) 8 sessions of one tenant `refresh()` at once, PostgreSQL (wall p50 / p99)",
        figure: format!(
            "{} ({} redemptions in {} rounds)",
            pair(&db.contended),
            total(db),
            db.redemptions.len()
        ),
        baseline: format!(
            "{} (file store, {} redemptions in {} rounds); one session alone: {} db, {} file",
            pair(&file.contended),
            total(file),
            file.redemptions.len(),
            dur(db.alone.p50()),
            dur(file.alone.p50())
        ),
        ratio: format!("{r_contended:.2}×"),
        target: "1 redemption per round",
        met: Some(unexpected.is_empty()),
    });

    // The runtime over the database goes before the database does.
    let [_, db] = backends;
    drop(db);
    tokio::task::block_in_place(|| drop(cluster));
}

fn server_version(cluster: &pg::Cluster) -> String {
    tokio::task::block_in_place(|| {
        cluster
            .admin_on("postgres")
            .query("SHOW server_version", &[])
            .first()
            .map(|r| r.get::<_, String>(0))
            .unwrap_or_default()
    })
}
