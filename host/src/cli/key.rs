//! `provider-host key set|status|delete` (the API key the plugin's key routes spend), the
//! secret backend this command line uses, and `provider-host secrets rotate-key`.
//!
//! The key is read from stdin (without echo on a terminal) or from a file, never from the
//! command line, where other users could read it (`ps`, shell history). It goes straight to
//! the plugin, which stores it encrypted; only `stored` and `last_four` ever come back.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;
use std::sync::Arc;

use provider_app::render::key_info as info;
use provider_runtime::bindings::types::ProviderError;
use provider_runtime::secrets::rotation::rotate_file_values;
use provider_runtime::secrets::{KeySource, MasterKey, SecretBackend, rotate_master_key};
use provider_runtime::{HostError, Session};
use serde_json::{Value, json};

use super::args::{Cli, KeyCommand, SecretsCommand};

/// Longest key line read (xAI keys are under a hundred characters).
const MAX_KEY_BYTES: u64 = 4096;

pub async fn run(session: &mut Session, command: &KeyCommand) -> Result<Value, HostError> {
    match command {
        KeyCommand::Set { from_file } => {
            let key = read_key(from_file.as_deref())?;
            session.set_api_key(&key).await.map(|i| info(&i))
        }
        KeyCommand::Status => session.api_key_status().await.map(|i| info(&i)),
        KeyCommand::Delete => session.delete_api_key().await.map(|i| info(&i)),
    }
}

fn invalid(message: impl Into<String>) -> HostError {
    HostError::Provider(ProviderError::InvalidInput(message.into()))
}

/// The key, from `file` or stdin: one line, surrounding whitespace removed.
fn read_key(file: Option<&std::path::Path>) -> Result<String, HostError> {
    let line = match file {
        Some(path) => {
            let f = std::fs::File::open(path).map_err(|e| {
                HostError::Config(format!("cannot read the key from {}: {e}", path.display()))
            })?;
            first_line(std::io::BufReader::new(f))?
        }
        None if std::io::stdin().is_terminal() => {
            rpassword::prompt_password("API key (input hidden): ")
                .map_err(|e| HostError::Config(format!("cannot read the key: {e}")))?
        }
        None => first_line(std::io::stdin().lock())?,
    };
    let key = line.trim();
    if key.is_empty() {
        return Err(invalid(
            "no key given: pipe it on stdin or pass --from-file (never on the command line)",
        ));
    }
    Ok(key.to_owned())
}

fn first_line(reader: impl BufRead) -> Result<String, HostError> {
    let mut line = String::new();
    reader
        .take(MAX_KEY_BYTES)
        .read_line(&mut line)
        .map_err(|e| HostError::Config(format!("cannot read the key: {e}")))?;
    Ok(line)
}

/// The secret backend of `--secrets-url` (PostgreSQL); `None`: the state directory's
/// encrypted files.
pub fn secret_backend(cli: &Cli) -> Result<Option<Arc<dyn SecretBackend>>, HostError> {
    cli.settings().secret_backend()
}

/// `secrets rotate-key`.
pub fn secrets_command(cli: &Cli, command: &SecretsCommand) -> ExitCode {
    match command {
        SecretsCommand::RotateKey => match rotate(cli) {
            Ok(v) => super::ok(v),
            Err(e) => super::fail(&e),
        },
    }
}

/// Where the new master key is read from (never from the command line).
const NEW_KEY_VAR: &str = "PROVIDER_HOST_NEW_KEY";

/// Every value of the store (and of `serve`'s key store, which shares the master key: its
/// own files, or rows of the database's host space, rotated with the tenants' rows)
/// re-encrypted under the key in [`NEW_KEY_VAR`]. The key file, if the key lives in one, is
/// replaced last, so an interrupted run is completed by running it again.
fn rotate(cli: &Cli) -> Result<Value, HostError> {
    let state_dir = cli.state_dir()?;
    let new = MasterKey::from_env_var(NEW_KEY_VAR)?;
    let mut progress = |tenant: &str, key: &str| {
        tracing::info!(tenant, key, "re-encrypted");
        Ok(())
    };
    let serve_dir = state_dir.join("serve");
    let (report, serve, key_file) = match &cli.secrets_url {
        Some(url) => {
            let old = MasterKey::from_env()?;
            let serve = rotate_file_values(&serve_dir, &old, &new, &mut progress)?;
            let r = provider_secrets_postgres::rotate_master_key(url, &old, &new, &mut progress)?;
            (r, serve, None)
        }
        None => {
            let source = KeySource::from_env_or_file(state_dir.join("keyring").join("master.key"));
            let old = source.load_existing()?;
            let serve = rotate_file_values(&serve_dir, &old, &new, &mut progress)?;
            let r = rotate_master_key(&state_dir, &source, &new, &mut progress)?;
            let file = r.key_file_replaced.clone();
            (r, serve, file)
        }
    };
    Ok(json!({
        "ok": true,
        "values": report.values + serve.values,
        "rotated": report.rotated + serve.rotated,
        "already_new": report.already_new + serve.already_new,
        "key_file_replaced": key_file.is_some(),
        "next": if key_file.is_some() {
            "the key file now holds the new key".to_owned()
        } else {
            format!("start every host with PROVIDER_HOST_KEY set to the value of {NEW_KEY_VAR}")
        },
    }))
}
