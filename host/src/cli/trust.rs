//! `plugin trust PATH` as a command (the records and the grant live in
//! [`provider_app::trust`]).

use std::path::Path;
use std::process::ExitCode;

use provider_runtime::HostError;

use super::args::Cli;

/// `plugin trust`: its one JSON object and exit code.
pub(crate) fn command(cli: &Cli, path: &Path) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return super::fail(&HostError::Config(format!(
                "cannot start the async runtime: {e}"
            )));
        }
    };
    match rt.block_on(provider_app::trust::trust(&cli.settings(), path)) {
        Ok(v) => super::ok(v),
        Err(e) => super::fail(&e),
    }
}
