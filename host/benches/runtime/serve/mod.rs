//! f) `provider-host serve` against the same requests sent directly to the reference API,
//! and against two other gateways in front of that API: LiteLLM's proxy and Portkey's
//! gateway (issues 14 and 22).
//!
//! The method (issue 22):
//! - **the machine is shared fairly**: this process (the hyper client and the reference
//!   servers) runs on one core, the gateway under test on another (`sched_setaffinity`),
//!   so a gateway's work never competes with the client's or upstream's;
//! - **concurrency 1 in interleaved blocks**: 100 requests to one target, then 100 to the
//!   next, round after round (the order rotating), so that no peer's leftover work (a
//!   garbage collection, a log flush) lands in another's sample, and all see the same
//!   machine over time;
//! - **the machine's share of c=1**: the same requests again, direct and through `serve`,
//!   with the gateway's core kept from idling by a `SCHED_IDLE` spinner (which yields to
//!   the gateway at once). On a virtual machine every wait of the gateway halts its vCPU,
//!   and each wake-up is an exit to the hypervisor and back with cold caches and branch
//!   predictors; the difference between the two figures is that cost, not the gateway's
//!   work (an informational row; the target is checked on the plain figure);
//! - **CPU per request** at concurrency 64: the gateway process's user + system time from
//!   `/proc/PID/stat` across the run, divided by its requests; with the requests/s;
//! - **the time to the first streamed text delta**, in interleaved blocks too;
//! - each dialect: Chat Completions, Responses and Messages. The direct baseline of
//!   Messages is the chat completion `serve` itself sends upstream for it (the developer
//!   API has no Messages endpoint); LiteLLM and Portkey translate or pass through as they
//!   do, and a peer that cannot serve a dialect is said, not hidden;
//! - `serve`'s resident memory after the whole run (now and peak).
//!
//! The targets of issue 22 are checked in the summary: added p50 at c=1 ≤ 200 µs, CPU per
//! request at c=64 ≤ 100 µs, first token added ≤ 250 µs.

mod client;
mod machine;
mod peers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use client::{Conn, Dialect, Target};
use machine::Pinning;
use peers::Gateway;

use crate::support::{REPLY_BYTES, Report, Row, Samples, World, bytes, dur, heading, ratio};

/// The concurrent connections of the throughput run.
const WIDE: usize = 64;
/// Requests per target before the next target's turn at concurrency 1.
const BLOCK: usize = 100;
/// Issue 22's targets.
const ADDED_P50: Duration = Duration::from_micros(200);
const CPU_PER_REQUEST: Duration = Duration::from_micros(100);
const ADDED_FIRST: Duration = Duration::from_micros(250);
/// `serve`'s resident memory after the run in the release before issue 22 (MiB).
const RSS_BEFORE_MIB: f64 = 28.7;

/// How many requests each part sends.
pub struct Counts {
    /// Non-streamed requests per target at concurrency 1.
    pub sequential: usize,
    /// Non-streamed requests per connection at concurrency 64.
    pub per_connection: usize,
    /// Streamed requests per target (first delta timed).
    pub streams: usize,
}

impl Counts {
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                sequential: 200,
                per_connection: 10,
                streams: 100,
            }
        } else {
            Self {
                sequential: 1000,
                per_connection: 50,
                streams: 300,
            }
        }
    }
}

/// Figures of one target in one dialect.
struct Figures {
    one: Samples,
    wide: Samples,
    wide_wall: Duration,
    /// Gateway CPU per request at concurrency 64 (none for the direct baseline).
    cpu: Option<Duration>,
    first: Samples,
}

impl Figures {
    fn rps_wide(&self) -> f64 {
        self.wide.len() as f64 / self.wide_wall.as_secs_f64().max(1e-9)
    }
}

/// `requests` requests on each of `WIDE` connections at once; the latencies and the wall
/// time from the moment every connection was open and warm until the last reply.
async fn wide(target: &Arc<Target>, requests: usize) -> Result<(Samples, Duration), String> {
    let barrier = Arc::new(tokio::sync::Barrier::new(WIDE + 1));
    let mut tasks = Vec::with_capacity(WIDE);
    for _ in 0..WIDE {
        let target = target.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let warm = async {
                let mut conn = Conn::open(target).await?;
                conn.whole().await?;
                Ok::<_, String>(conn)
            }
            .await;
            barrier.wait().await;
            let mut conn = warm?;
            let mut took = Vec::with_capacity(requests);
            for _ in 0..requests {
                took.push(conn.whole().await?);
            }
            Ok::<_, String>(took)
        }));
    }
    barrier.wait().await;
    let t = Instant::now();
    let mut samples = Samples::with_capacity(WIDE * requests);
    let mut failure = None;
    for task in tasks {
        match task.await.expect("client task") {
            Ok(took) => took.into_iter().for_each(|d| samples.push(d)),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    let wall = t.elapsed();
    match failure {
        Some(e) => Err(e),
        None => Ok((samples, wall)),
    }
}

/// `total` requests per connection in blocks of `block`, the connections taking turns (the
/// first of each round rotating); `each` sends one and times it.
async fn interleaved<F>(
    conns: &mut [Conn],
    total: usize,
    block: usize,
    mut each: F,
) -> Result<Vec<Samples>, String>
where
    F: AsyncFnMut(&mut Conn) -> Result<Duration, String>,
{
    let mut samples: Vec<Samples> = conns
        .iter()
        .map(|_| Samples::with_capacity(total))
        .collect();
    let rounds = total.div_ceil(block);
    for round in 0..rounds {
        let n = block.min(total - round * block);
        for k in 0..conns.len() {
            let i = (round + k) % conns.len();
            for _ in 0..n {
                samples[i].push(each(&mut conns[i]).await?);
            }
        }
    }
    Ok(samples)
}

fn added(a: Duration, direct: Duration) -> Duration {
    a.saturating_sub(direct)
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Measures one dialect through every gateway; the rows for the summary.
async fn dialect(
    dialect: Dialect,
    direct: Arc<Target>,
    gateways: &[&Gateway],
    counts: &Counts,
    pin: Option<Pinning>,
    report: &mut Report,
) {
    println!("   -- {dialect:?} ({})", dialect.path());
    let mut targets = vec![direct];
    for g in gateways {
        targets.push(Arc::new(Target::new(
            g.name,
            dialect,
            g.addr,
            g.model(dialect),
            g.headers(),
        )));
    }
    // Check each answer once, then warm up (LiteLLM initialises lazily).
    let mut conns = Vec::new();
    let mut pids = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let checked = async {
            let mut c = Conn::open(t.clone()).await?;
            c.check_content().await?;
            for _ in 0..30 {
                c.whole().await?;
                c.first_token().await?;
            }
            Ok::<_, String>(c)
        }
        .await;
        match checked {
            Ok(c) => {
                conns.push(c);
                pids.push(if i == 0 {
                    None
                } else {
                    Some(gateways[i - 1].proc.pid())
                });
            }
            Err(e) if t.name == "direct" || t.name == "serve" => panic!("{e}"),
            Err(e) => println!("      {}: not measured in this dialect: {e}", t.name),
        }
    }
    let names: Vec<&'static str> = conns.iter().map(|c| c.target.name).collect();

    let one = interleaved(&mut conns, counts.sequential, BLOCK, async |c| {
        c.whole().await
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let first = interleaved(&mut conns, counts.streams, BLOCK / 2, async |c| {
        c.first_token().await
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // The same c=1 requests, direct and through serve only, with the gateway's core kept
    // from idling between the hops: the part of the added latency that is the machine's
    // (a virtual CPU's halt and wake-up), not the gateway's work.
    let awake = match pin.and_then(|p| machine::Awake::keep(p.gateway)) {
        Some(spinner) => {
            let pair = &mut conns[..2];
            let s = interleaved(pair, counts.sequential, BLOCK, async |c| c.whole().await)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            drop(spinner);
            Some(s)
        }
        None => None,
    };
    let measured: Vec<Arc<Target>> = conns.iter().map(|c| c.target.clone()).collect();
    drop(conns);

    // Concurrency 64: each in turn, alone on its core.
    let mut figures = Vec::new();
    for (((t, one), first), pid) in measured.iter().zip(one).zip(first).zip(&pids) {
        let cpu_before = pid.and_then(machine::cpu_seconds);
        let (wide_samples, wall) = wide(t, counts.per_connection)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let cpu = match (cpu_before, pid.and_then(machine::cpu_seconds)) {
            (Some(a), Some(b)) => Some(Duration::from_secs_f64(
                (b - a).max(0.0) / wide_samples.len() as f64,
            )),
            _ => None,
        };
        figures.push(Figures {
            one,
            wide: wide_samples,
            wide_wall: wall,
            cpu,
            first,
        });
    }

    let direct = &figures[0];
    println!("      non-streamed, c=1 (blocks of {BLOCK}; p50 / p99 / mean; added p50):");
    for (name, f) in names.iter().zip(&figures) {
        println!(
            "        {name:<8}: {} · added {}",
            f.one.summary(),
            dur(added(f.one.p50(), direct.one.p50()))
        );
    }
    if let Some(s) = &awake {
        println!(
            "      non-streamed, c=1, the gateway's core kept from idling (SCHED_IDLE spinner):"
        );
        for (name, one) in names.iter().zip(s) {
            println!(
                "        {name:<8}: {} · added {}",
                one.summary(),
                dur(added(one.p50(), s[0].p50()))
            );
        }
    }
    println!("      non-streamed, c={WIDE} (req/s; p50 / p99; gateway CPU per request):");
    for (name, f) in names.iter().zip(&figures) {
        println!(
            "        {name:<8}: {:.0} req/s · p50 {} · p99 {} · CPU {}",
            f.rps_wide(),
            dur(f.wide.p50()),
            dur(f.wide.p99()),
            f.cpu.map_or("–".into(), dur)
        );
    }
    println!(
        "      first streamed text delta, c=1 (blocks of {}):",
        BLOCK / 2
    );
    for (name, f) in names.iter().zip(&figures) {
        println!(
            "        {name:<8}: {} · added {}",
            f.first.summary(),
            dur(added(f.first.p50(), direct.first.p50()))
        );
    }

    let serve = &figures[1];
    let peers: Vec<(&str, &Figures)> = names[2..].iter().copied().zip(&figures[2..]).collect();
    let peer_text = |pick: &dyn Fn(&Figures) -> String| {
        peers
            .iter()
            .map(|(n, f)| format!("{n} {}", pick(f)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let label = match dialect {
        Dialect::Chat => "chat",
        Dialect::Responses => "responses",
        Dialect::Messages => "messages",
    };
    // A latency row: serve's p50 over the direct call's, beside each peer's.
    let added_row = |what: &str, of: fn(&Figures) -> &Samples, target, limit| {
        let over_direct = |f: &Figures| added(of(f).p50(), of(direct).p50());
        let serve_added = over_direct(serve);
        Row {
            bench: leak(format!("f) serve /v1/{label}: {what}")),
            figure: dur(serve_added),
            baseline: format!(
                "direct p50 {}; added: {}",
                dur(of(direct).p50()),
                peer_text(&|f| dur(over_direct(f)))
            ),
            ratio: peers
                .iter()
                .map(|(n, f)| format!("{:.2}× {n}'s", ratio(serve_added, over_direct(f))))
                .collect::<Vec<_>>()
                .join(", "),
            target,
            met: Some(serve_added <= limit),
        }
    };
    report.add(added_row(
        "added p50, c=1",
        |f| &f.one,
        "≤ 200 µs",
        ADDED_P50,
    ));
    if let Some(s) = &awake {
        report.add(Row {
            bench: leak(format!(
                "f) serve /v1/{label}: added p50, c=1, gateway core kept awake"
            )),
            figure: dur(added(s[1].p50(), s[0].p50())),
            baseline: format!("direct p50 {}", dur(s[0].p50())),
            ratio: "–".into(),
            target: "(the machine's idle wake-ups left out)",
            met: None,
        });
    }
    let serve_cpu = serve.cpu.unwrap_or_default();
    report.add(Row {
        bench: leak(format!(
            "f) serve /v1/{label}: CPU per request, c=64 (req/s)"
        )),
        figure: format!("{} ({:.0} req/s)", dur(serve_cpu), serve.rps_wide()),
        baseline: peer_text(&|f| {
            format!(
                "{} ({:.0} req/s)",
                f.cpu.map_or("–".into(), dur),
                f.rps_wide()
            )
        }),
        ratio: peers
            .iter()
            .filter_map(|(n, f)| f.cpu.map(|c| format!("{:.3}× {n}'s", ratio(serve_cpu, c))))
            .collect::<Vec<_>>()
            .join(", "),
        target: "≤ 100 µs",
        met: serve.cpu.map(|c| c <= CPU_PER_REQUEST),
    });
    report.add(added_row(
        "first token added, c=1",
        |f| &f.first,
        "≤ 250 µs",
        ADDED_FIRST,
    ));
}

pub async fn run(world: &World, counts: Counts, report: &mut Report) {
    heading(&format!(
        "f) serve vs the reference API directly vs LiteLLM's proxy vs Portkey's gateway \
         ({REPLY_BYTES} B replies; chat, responses, messages; whole and streamed)"
    ));
    let dir = tempfile::Builder::new()
        .prefix("provider-host-bench-serve")
        .tempdir()
        .expect("temp dir");
    let api_key = provider_reference::random_api_key();
    world.api.add_api_key(api_key.clone(), 4u32);

    let all_cores = machine::current_cores();
    let pin = Pinning::plan();
    match pin {
        Some(p) => match p.pin_self() {
            Ok(()) => println!(
                "   client and reference servers on core {}, the gateway under test on core {}",
                p.client, p.gateway
            ),
            Err(e) => println!("   not pinned ({e}): figures share both cores"),
        },
        None => println!("   one core: nothing pinned"),
    }

    let serve = tokio::task::block_in_place(|| peers::start_serve(world, dir.path(), pin));
    let mut gateways = vec![serve];
    for started in [
        peers::start_litellm(world, dir.path(), &api_key, pin).await,
        peers::start_portkey(world, dir.path(), &api_key, pin).await,
    ] {
        match started {
            Ok(g) => gateways.push(g),
            Err(e) => println!("   not measured: {e}"),
        }
    }
    for g in &gateways {
        println!("   {}", g.note);
    }
    let refs: Vec<&Gateway> = gateways.iter().collect();
    let bearer = vec![("authorization", format!("Bearer {api_key}"))];
    let chat_direct = || {
        Arc::new(Target::new(
            "direct",
            Dialect::Chat,
            world.api.addr(),
            "grok-4.3",
            bearer.clone(),
        ))
    };
    dialect(Dialect::Chat, chat_direct(), &refs, &counts, pin, report).await;
    let responses_direct = Arc::new(Target::new(
        "direct",
        Dialect::Responses,
        world.api.addr(),
        "grok-4.3",
        bearer.clone(),
    ));
    dialect(
        Dialect::Responses,
        responses_direct,
        &refs,
        &counts,
        pin,
        report,
    )
    .await;
    dialect(
        Dialect::Messages,
        chat_direct(),
        &refs,
        &counts,
        pin,
        report,
    )
    .await;

    let serve_pid = gateways[0].proc.pid();
    if let Some((now, peak)) = machine::rss(serve_pid) {
        let mib = now as f64 / 1024.0 / 1024.0;
        println!(
            "   serve's resident memory after the run: {} (peak {})",
            bytes(now as f64),
            bytes(peak as f64)
        );
        report.add(Row {
            bench: "f) serve resident memory after the run (peak)",
            figure: format!("{} ({})", bytes(now as f64), bytes(peak as f64)),
            baseline: format!("{RSS_BEFORE_MIB} MiB before issue 22"),
            ratio: format!("{:.2}×", mib / RSS_BEFORE_MIB),
            target: "no regression",
            met: Some(mib <= RSS_BEFORE_MIB * 1.05),
        });
    }
    for g in &gateways {
        let text = std::fs::read_to_string(&g.proc.log).unwrap_or_default();
        let noisy = text
            .lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("error") || l.contains("traceback") || l.contains("warn")
            })
            .count();
        if noisy > 0 {
            println!(
                "   {}'s log: {noisy} lines with error/warning; last lines:\n      {}",
                g.name,
                g.proc.log_tail()
            );
        }
    }
    drop(gateways);
    if let Some(p) = pin {
        p.unpin_self(&all_cores);
    }
}
