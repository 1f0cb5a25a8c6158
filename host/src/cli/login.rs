//! `provider-host login`: the interactive device flow (start, show, poll at the interval).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use provider_app::PluginVars;
use provider_runtime::bindings::types::PollOutcome;
use provider_runtime::{HostError, Session};

use super::args::LoginArgs;
use super::{fail_with, ok, render};

pub async fn run(session: &mut Session, args: &LoginArgs, vars: &PluginVars) -> ExitCode {
    let fail = |e: &HostError| fail_with(e, vars);
    let prompt = match session.start().await {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    if args.no_wait {
        return ok(render::prompt(&prompt));
    }
    // The QR code and the countdown redrawn in place are for a person at a terminal; a log
    // file or a pipe gets one plain line per check instead.
    let terminal = std::io::stderr().is_terminal();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "\nOpen this page, sign in if asked, and approve:\n\n  {}\n",
        prompt.verification_url_with_code
    );
    let _ = writeln!(err, "The page should show the code {}.", prompt.user_code);
    if terminal
        && !args.no_qr
        && let Some(qr) = qr_text(&prompt.verification_url_with_code)
    {
        let _ = writeln!(err, "\n{qr}");
    }
    drop(err);

    let mut interval = prompt.interval_seconds.max(1);
    let mut slow_downs = 0u32;
    let mut remaining = prompt.expires_in_seconds;
    loop {
        // Count down visibly to the next poll, one second at a time.
        // One second of margin: a VM whose clock runs fast would otherwise poll early and
        // be told to slow down forever.
        if terminal {
            for left in (1..=interval + 1).rev() {
                eprint!(
                    "\rWaiting for approval: next check in {left:>3}s, code expires in {:>4}s ",
                    remaining
                );
                let _ = std::io::stderr().flush();
                tokio::time::sleep(Duration::from_secs(1)).await;
                remaining = remaining.saturating_sub(1);
            }
        } else {
            eprintln!(
                "Waiting for approval: next check in {}s, code expires in {remaining}s",
                interval + 1
            );
            tokio::time::sleep(Duration::from_secs(u64::from(interval) + 1)).await;
        }
        match session.poll(Some(&prompt.pending_id)).await {
            Ok(PollOutcome::Pending(p)) => {
                if p.interval_seconds > interval {
                    slow_downs += 1;
                    if slow_downs == 3 {
                        eprintln!(
                            "\nThe server asked to slow down {slow_downs} times. If this machine's clock runs fast \
                             (common on VMs), fix its time sync; polling continues every {}s.",
                            p.interval_seconds
                        );
                    }
                }
                interval = p.interval_seconds.max(1);
                remaining = p.expires_in_seconds;
            }
            Ok(outcome @ PollOutcome::Connected(_)) => {
                if terminal {
                    eprintln!("\rApproved.{:60}", "");
                } else {
                    eprintln!("Approved.");
                }
                return ok(render::poll(&outcome));
            }
            Err(e) => {
                if terminal {
                    eprintln!();
                }
                return fail(&e);
            }
        }
    }
}

/// The URL as a QR code drawn with Unicode half blocks (two rows per line).
fn qr_text(url: &str) -> Option<String> {
    let code = qrcode::QrCode::new(url.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build(),
    )
}
