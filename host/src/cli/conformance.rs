//! `provider-host conformance`: the suite of `provider_conformance` as a command.
//! Progress goes to stderr as each scenario finishes; stdout gets the table (or one JSON
//! object with `--json`), ending with the line `N passed, M failed`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use provider_conformance::{self as conformance, Progress, SuiteOptions, SuiteReport};

use super::args::{Cli, ConformanceArgs};
use super::{fail, print_json};

pub async fn run(cli: &Cli, args: &ConformanceArgs) -> ExitCode {
    let mut options = SuiteOptions::new(cli.plugin_source());
    options.only = args.only.clone();
    // The compile cache the other commands use (keyed by the component's and the
    // engine's hashes, so sharing it is safe); credentials there are never touched.
    options.compile_cache = cli.state_dir().ok().map(|d| d.join("cache"));
    if let Some(t) = cli.call_timeout_secs {
        options.limits.call_timeout = Duration::from_secs(t);
    }
    let live = std::io::stderr().is_terminal();
    let report = match conformance::run(options, |p| show_progress(p, live)).await {
        Ok(report) => report,
        Err(e) => return fail(&e),
    };
    if args.json {
        print_json(&report.to_json());
    } else {
        print_table(&report);
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One line per finished scenario; on a terminal, also the one running now.
fn show_progress(progress: Progress<'_>, live: bool) {
    let mut err = std::io::stderr().lock();
    let _ = match progress {
        Progress::Loaded { millis } => writeln!(err, "component loaded in {millis} ms"),
        Progress::Started { index, total, name } if live => {
            write!(err, "[{:>2}/{total}] ....  {name}\r", index + 1)
        }
        Progress::Started { .. } => Ok(()),
        Progress::Finished {
            index,
            total,
            result,
        } => {
            let verdict = if result.ok { "PASS" } else { "FAIL" };
            let clear = if live { "\x1b[2K" } else { "" };
            let line = writeln!(
                err,
                "{clear}[{:>2}/{total}] {verdict}  {} ({} ms)",
                index + 1,
                result.name,
                result.millis
            );
            match &result.message {
                Some(m) => writeln!(err, "         {m}"),
                None => line,
            }
        }
    };
    let _ = err.flush();
}

fn print_table(report: &SuiteReport) {
    let width = report
        .results
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(0)
        .max("scenario".len());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{:<width$}  result  {:>8}", "scenario", "time ms");
    for r in &report.results {
        let verdict = if r.ok { "PASS" } else { "FAIL" };
        let _ = writeln!(out, "{:<width$}  {verdict:<6}  {:>8}", r.name, r.millis);
    }
    let failures: Vec<_> = report.results.iter().filter(|r| !r.ok).collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\nfailures:");
        for r in failures {
            let _ = writeln!(
                out,
                "  {}: {}",
                r.name,
                r.message.as_deref().unwrap_or("(no message)")
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{} passed, {} failed",
        report.passed(),
        report.failed()
    );
    let _ = out.flush();
}
