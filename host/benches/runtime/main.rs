//! Benchmarks of the runtime against baselines measured in the same run (issues 6, 14, 16).
//!
//! `scripts/bench` (or `cargo bench -p provider-host --bench runtime`) runs all of them;
//! `-- a c` runs a subset, `-- --quick` uses fewer iterations. Figures are printed, never
//! asserted: each section ends with its ratio, and a Markdown table sums up the run.
//!
//! - a) CLI `provider-host status` on a connected tenant vs `python3 -c "import json,
//!   urllib.request"`, whole processes;
//! - b) new session + `status()` vs the same logic natively over the same store;
//! - c) non-streaming chat through the plugin vs the same request sent with hyper, and the
//!   first streamed chunk;
//! - d) resident memory per idle live session at 1,000 and 10,000 sessions;
//! - e) release component size;
//! - f) `provider-host serve` vs the same requests sent directly to the reference API and
//!   vs LiteLLM's proxy and Portkey's gateway in front of it (chat, responses, messages):
//!   added latency at concurrency 1, CPU per request at concurrency 64, first streamed
//!   token, resident memory; client and gateway pinned to separate cores;
//! - g) the PostgreSQL secret backend vs the file store: `status()`, and 8 sessions of one
//!   tenant refreshing at once (wall time, refresh-token redemptions).

mod chat;
mod cli;
mod memory;
mod native;
mod postgres;
mod serve;
mod sessions;
mod size;
mod support;

use support::{Report, World};

const SECTIONS: [&str; 7] = ["a", "b", "c", "d", "e", "f", "g"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .enable_all()
        .build()
        .expect("tokio runtime");
    if args.first().is_some_and(|a| a == "memory-child") {
        rt.block_on(memory::child_main(&args[1..]));
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this binary without it,
    // and then nothing is measured (benchmarks take minutes and assert nothing).
    let quick = args.iter().any(|a| a == "--quick");
    if !args
        .iter()
        .any(|a| a == "--bench" || a == "--quick" || SECTIONS.contains(&a.as_str()))
    {
        println!(
            "benchmarks skipped: run scripts/bench (cargo bench -p provider-host --bench runtime)"
        );
        return;
    }
    let picked: Vec<String> = args
        .iter()
        .filter(|a| SECTIONS.contains(&a.as_str()))
        .cloned()
        .collect();
    let wants = move |s: &str| picked.is_empty() || picked.iter().any(|p| p == s);

    // On a worker thread, as a service's request handler would run: tasks the runtime
    // spawns (HTTP connections, body streams) then start on the same worker.
    let benchmarks = async move {
        let world = World::start().await;
        let mut report = Report::default();
        println!(
            "provider-host benchmarks: {} cores, {}; instance pool: {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model(),
            if world.runtime.is_pooling() {
                "yes"
            } else {
                "no (on-demand)"
            }
        );
        if wants("e") {
            size::run(&world, &mut report);
        }
        if wants("a") {
            cli::run(&world, if quick { 10 } else { 40 }, &mut report).await;
        }
        if wants("b") {
            sessions::run(&world, if quick { 1000 } else { 5000 }, &mut report).await;
            sessions::parallel(&world, if quick { 2000 } else { 20000 }, &mut report).await;
        }
        if wants("c") {
            let mut native = native::Native::new(sessions::secret_store(&world));
            chat::run(
                &world,
                &mut native,
                if quick { 100 } else { 1000 },
                &mut report,
            )
            .await;
        }
        if wants("d") {
            let counts: &[usize] = if quick { &[1000] } else { &[1000, 10_000] };
            let logins = if quick { 200 } else { 1000 };
            // Child processes: keep the other workers free for the servers.
            tokio::task::block_in_place(|| memory::run(&world, counts, logins, &mut report));
        }
        if wants("f") {
            serve::run(&world, serve::Counts::new(quick), &mut report).await;
        }
        if wants("g") {
            postgres::run(&world, quick, &mut report).await;
        }
        report.print();
    };
    rt.block_on(async { tokio::spawn(benchmarks).await.expect("benchmarks") });
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
