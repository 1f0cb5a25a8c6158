//! Real peers for interop tests: the npm `oidc-provider` authorization server
//! (`tests/interop/oidc-server.mjs`, a separate process) and the reference model API
//! checking bearers against that server's JWKS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use provider_reference::{ApiConfig, ApiHandle, ApiServer};
use serde_json::{Value, json};

/// A running oidc-provider. Killed at drop; it also exits by itself when our end of its
/// stdin closes or after its max lifetime.
pub struct OidcServer {
    pub issuer: String,
    control: String,
    child: Child,
    _stdin: ChildStdin,
}

impl OidcServer {
    /// Start with extra flags (e.g. `--device-ttl 2`). The polling interval is 1 s.
    pub fn start(extra: &[&str]) -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "oidc-provider is not installed: run `npm ci --prefix tests/interop` (the README's test command does)"
        );
        let mut child = Command::new("node")
            .arg(dir.join("oidc-server.mjs"))
            .args(["--interval", "1", "--max-seconds", "600"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node must be installed to run the interop tests");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("oidc-server did not start ({e}): {line:?}"));
        Self {
            issuer: ready["issuer"].as_str().unwrap().to_string(),
            control: ready["control"].as_str().unwrap().to_string(),
            child,
            _stdin: stdin,
        }
    }

    /// Approve `user_code` as `account` with `tier`, over the provider's own pages.
    pub fn approve(&self, user_code: &str, account: &str, tier: u32) {
        let r = http(
            "POST",
            &format!("{}/approve", self.control),
            Some(json!({"user_code": user_code, "account": account, "tier": tier})),
        );
        assert_eq!(r["ok"], true, "approve failed: {r}");
    }

    /// Deny `user_code` at the consent page.
    pub fn deny(&self, user_code: &str) {
        let r = http(
            "POST",
            &format!("{}/deny", self.control),
            Some(json!({"user_code": user_code})),
        );
        assert_eq!(r["ok"], true, "deny failed: {r}");
    }

    /// The server's counters.
    pub fn stats(&self) -> Value {
        http("GET", &format!("{}/stats", self.control), None)
    }

    /// The JWKS the access tokens are signed with.
    pub fn jwks(&self) -> String {
        let discovery = http(
            "GET",
            &format!("{}/.well-known/openid-configuration", self.issuer),
            None,
        );
        http("GET", discovery["jwks_uri"].as_str().unwrap(), None).to_string()
    }
}

impl Drop for OidcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reference model API accepting tokens of `oidc`.
pub fn api_for(oidc: &OidcServer) -> ApiHandle {
    let config = ApiConfig::with_jwks(&oidc.jwks()).expect("jwks");
    ApiServer::start_background(config).expect("api server")
}

/// A minimal HTTP/1.1 JSON client for loopback control endpoints.
pub fn http(method: &str, url: &str, body: Option<Value>) -> Value {
    let rest = url.strip_prefix("http://").expect("loopback http url");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    let (head, payload) = text.split_once("\r\n\r\n").expect("http response");
    let payload = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(payload)
    } else {
        payload.to_string()
    };
    serde_json::from_str(&payload).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {payload}"))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}
