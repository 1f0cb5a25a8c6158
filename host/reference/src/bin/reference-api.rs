//! `reference-api`: the reference model API as a process of its own, for hosts that cannot
//! run it in-process (the jco/Node host of `tests/js` performs HTTP synchronously, so its
//! peers must live in other processes).
//!
//! ```text
//! reference-api (--jwks-url URL | --jwks-file PATH) [--issuer ISS] [--max-seconds N]
//! ```
//!
//! Bearers are checked against the JWKS (ES256 or RS256 keys; the URL must be plain
//! `http://` on loopback, e.g. an `oidc-provider` started by the test). When ready, stdout
//! gets exactly one line, `{"api_base":"http://127.0.0.1:PORT/v1",
//! "subscription_base":"http://127.0.0.1:PORT2/v1"}` (the second is the subscription rail,
//! which accepts the same tokens). Logs go to stderr.
//! The process exits when its stdin reaches EOF (keep a pipe open), or after
//! `--max-seconds` (default 600) in any case.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use provider_reference::{ApiConfig, ApiServer, Lifetime};

const USAGE: &str =
    "usage: reference-api (--jwks-url URL | --jwks-file PATH) [--issuer ISS] [--max-seconds N]";
/// Longest wait for the JWKS endpoint.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

struct Args {
    jwks_url: Option<String>,
    jwks_file: Option<String>,
    issuer: Option<String>,
    max_seconds: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        jwks_url: None,
        jwks_file: None,
        issuer: None,
        max_seconds: 600,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--jwks-url" => args.jwks_url = Some(value()?),
            "--jwks-file" => args.jwks_file = Some(value()?),
            "--issuer" => args.issuer = Some(value()?),
            "--max-seconds" => {
                let v = value()?;
                args.max_seconds = v
                    .parse()
                    .map_err(|_| format!("--max-seconds: not a number: {v}"))?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if args.jwks_url.is_some() == args.jwks_file.is_some() {
        return Err(format!(
            "give exactly one of --jwks-url, --jwks-file\n{USAGE}"
        ));
    }
    Ok(args)
}

/// GET a loopback `http://` URL with a minimal HTTP/1.1 client (no TLS, no redirects):
/// enough for a test issuer's JWKS, and unable to reach anything off this machine.
fn fetch_loopback(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("--jwks-url must be http:// on loopback: {url}"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        return Err(format!("--jwks-url must be on loopback: {url}"));
    }
    let path = if path.is_empty() { "/" } else { path };
    let mut stream =
        TcpStream::connect(authority).map_err(|e| format!("connecting to {authority}: {e}"))?;
    stream
        .set_read_timeout(Some(FETCH_TIMEOUT))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("sending to {authority}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("reading from {authority}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{url}: not an HTTP response"))?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(format!("{url}: HTTP status {status}"));
    }
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    Ok(if chunked {
        dechunk(body)
    } else {
        body.to_string()
    })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let jwks = match (&args.jwks_url, &args.jwks_file) {
        (Some(url), _) => fetch_loopback(url)?,
        (_, Some(path)) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?,
        _ => unreachable!("checked by parse_args"),
    };
    let mut config = ApiConfig::with_jwks(&jwks).map_err(|e| format!("JWKS: {e}"))?;
    if let Some(issuer) = args.issuer {
        config.verifier = config.verifier.map(|v| v.with_issuer(issuer));
    }
    let max = Duration::from_secs(args.max_seconds);
    config.lifetime = Lifetime { idle: max, max };
    let api = ApiServer::start_background(config).map_err(|e| format!("starting: {e}"))?;

    let ready = serde_json::json!({
        "api_base": api.base_url(),
        "subscription_base": api.subscription_base(),
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{ready}")
        .and_then(|()| stdout.flush())
        .map_err(|e| e.to_string())?;

    // Whichever comes first ends the process: the parent closing our stdin, or the cap.
    std::thread::spawn(move || {
        std::thread::sleep(max);
        eprintln!("reference-api: --max-seconds reached, exiting");
        std::process::exit(0);
    });
    let mut sink = [0u8; 256];
    let mut stdin = std::io::stdin().lock();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    drop(api);
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reference-api: {e}");
            ExitCode::from(2)
        }
    }
}
