//! Benchmarks of the runtime against baselines measured in the same run (issue 6).
//!
//! `scripts/bench` (or `cargo bench -p provider-host --bench runtime`) runs all of them;
//! `-- a c` runs a subset, `-- --quick` uses fewer iterations. Figures are printed, never
//! asserted: each section ends with its ratio, and a Markdown table sums up the run.
//!
//! - a) CLI `provider-host status` on a connected tenant vs `python3 -c "import json,
//!   urllib.request"`, whole processes;
//! - b) new tenant session + `status()` vs the same logic natively over the same store;
//! - c) non-streaming chat through the plugin vs the same request sent with hyper, and the
//!   first streamed chunk;
//! - d) resident memory per idle live session at 1,000 and 10,000 sessions;
//! - e) release component size.

mod chat;
mod cli;
mod memory;
mod native;
mod sessions;
mod size;
mod support;

use support::{Report, World};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; anything else that is not a section letter is ignored.
    let quick = args.iter().any(|a| a == "--quick");
    let picked: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| ["a", "b", "c", "d", "e"].contains(a))
        .collect();
    let wants = |s: &str| picked.is_empty() || picked.contains(&s);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let world = World::start().await;
        let mut report = Report::default();
        println!(
            "provider-host benchmarks — {} cores, {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model()
        );
        if args.iter().any(|a| a == "loop-b") {
            let mut s = world.connect("loop").await;
            drop(s);
            let t = std::time::Instant::now();
            let mut n = 0;
            while t.elapsed() < std::time::Duration::from_secs(8) {
                s = world.runtime.session("loop", &world.config).await.unwrap();
                s.status().await.unwrap();
                drop(s);
                n += 1;
            }
            println!("{n} iterations");
            return;
        }
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
            chat::run(&world, if quick { 100 } else { 1000 }, &mut report).await;
        }
        if wants("d") {
            let counts: &[usize] = if quick { &[1000] } else { &[1000, 10_000] };
            memory::run(&world, counts, &mut report).await;
        }
        report.print();
    });
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
