//! `provider-host`: run a model-provider plugin component from the command line.
//!
//! Script-mode subcommands print exactly one JSON object on stdout (`{"ok": true, ...}` or
//! `{"ok": false, "error": ..., "message": ..., "action": ...}`) and exit non-zero when
//! `ok` is false. Logs go to stderr (`--log-level` or `RUST_LOG`).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
