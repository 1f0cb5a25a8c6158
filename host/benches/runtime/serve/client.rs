//! The benchmark's client: one kept-alive HTTP/1.1 connection per target, the same bodies
//! for every peer of a dialect, replies checked once and then read whole (or up to their
//! first text delta).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use crate::support::REPLY_BYTES;

const PROMPT: &str = "Say something long enough to fill the reply.";

/// The API a request speaks: what its body looks like and where its text is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dialect {
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    Chat,
    /// OpenAI Responses (`/v1/responses`).
    Responses,
    /// Anthropic Messages (`/v1/messages`).
    Messages,
}

impl Dialect {
    pub fn path(self) -> &'static str {
        match self {
            Dialect::Chat => "/v1/chat/completions",
            Dialect::Responses => "/v1/responses",
            Dialect::Messages => "/v1/messages",
        }
    }

    fn body(self, model: &str, stream: bool) -> Bytes {
        let mut v = match self {
            Dialect::Chat => serde_json::json!({
                "model": model,
                "messages": [{"role": "user", "content": PROMPT}],
            }),
            Dialect::Responses => serde_json::json!({"model": model, "input": PROMPT}),
            Dialect::Messages => serde_json::json!({
                "model": model,
                "max_tokens": 4096,
                "messages": [{"role": "user", "content": PROMPT}],
            }),
        };
        if stream {
            v["stream"] = true.into();
        }
        Bytes::from(v.to_string())
    }

    /// The reply's text, from a whole reply.
    fn text(self, v: &serde_json::Value) -> String {
        match self {
            Dialect::Chat => v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            Dialect::Responses => v["output"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|item| item["content"].as_array().cloned().unwrap_or_default())
                .filter_map(|part| part["text"].as_str().map(str::to_owned))
                .collect(),
            Dialect::Messages => v["content"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|block| block["text"].as_str())
                .collect(),
        }
    }

    /// Whether one streamed event carries a non-empty text delta.
    fn is_text_delta(self, v: &serde_json::Value) -> bool {
        let text = match self {
            Dialect::Chat => &v["choices"][0]["delta"]["content"],
            Dialect::Responses if v["type"] == "response.output_text.delta" => &v["delta"],
            Dialect::Messages if v["type"] == "content_block_delta" => &v["delta"]["text"],
            _ => return false,
        };
        text.as_str().is_some_and(|s| !s.is_empty())
    }
}

/// One way to the reference API in one dialect.
pub struct Target {
    pub name: &'static str,
    pub dialect: Dialect,
    pub addr: SocketAddr,
    headers: Vec<(&'static str, String)>,
    whole: Bytes,
    stream: Bytes,
}

impl Target {
    /// `headers` beyond `host` and `content-type` (authorization, a peer's routing).
    pub fn new(
        name: &'static str,
        dialect: Dialect,
        addr: SocketAddr,
        model: &str,
        headers: Vec<(&'static str, String)>,
    ) -> Self {
        Self {
            name,
            dialect,
            addr,
            headers,
            whole: dialect.body(model, false),
            stream: dialect.body(model, true),
        }
    }
}

/// A kept-alive HTTP/1.1 connection to a target; reopened once if the server closed it
/// (uvicorn closes idle connections after 5 s).
pub struct Conn {
    pub target: Arc<Target>,
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(target: Arc<Target>) -> Result<Self, String> {
        let sender = handshake(target.addr).await?;
        Ok(Self { target, sender })
    }

    fn fail(&self, e: impl std::fmt::Display) -> String {
        format!("{} ({:?}): {e}", self.target.name, self.target.dialect)
    }

    /// `body` posted; the response once its status is 200.
    async fn post(&mut self, body: &Bytes) -> Result<hyper::body::Incoming, String> {
        let mut reopened = false;
        loop {
            let sent = match self.sender.ready().await {
                Ok(()) => {
                    let t = &self.target;
                    let mut req = hyper::Request::post(t.dialect.path())
                        .header("host", t.addr.to_string())
                        .header("content-type", "application/json");
                    for (name, value) in &t.headers {
                        req = req.header(*name, value);
                    }
                    let req = req.body(Full::new(body.clone())).expect("request");
                    self.sender
                        .send_request(req)
                        .await
                        .map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            match sent {
                Ok(resp) if resp.status() == 200 => return Ok(resp.into_body()),
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.into_body().collect().await.map(|b| b.to_bytes());
                    let text = body
                        .map(|b| String::from_utf8_lossy(&b[..b.len().min(600)]).into_owned())
                        .unwrap_or_default();
                    return Err(self.fail(format!("HTTP {status}: {text}")));
                }
                Err(e) if !reopened => {
                    reopened = true;
                    self.sender = handshake(self.target.addr)
                        .await
                        .map_err(|h| self.fail(format!("{e}; reconnecting: {h}")))?;
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// One non-streamed request, its reply read whole; how long it took.
    pub async fn whole(&mut self) -> Result<Duration, String> {
        let body = self.target.whole.clone();
        let t = Instant::now();
        let reply = self.post(&body).await?;
        let bytes = reply.collect().await.map_err(|e| self.fail(e))?.to_bytes();
        let took = t.elapsed();
        if bytes.len() < REPLY_BYTES {
            return Err(self.fail(format!(
                "reply of {} bytes: {}",
                bytes.len(),
                String::from_utf8_lossy(&bytes)
            )));
        }
        Ok(took)
    }

    /// One streamed request: time to its first non-empty text delta (the rest is read too).
    pub async fn first_token(&mut self) -> Result<Duration, String> {
        let body = self.target.stream.clone();
        let t = Instant::now();
        let mut reply = self.post(&body).await?;
        first_delta(self.target.dialect, &mut reply)
            .await
            .map_err(|e| self.fail(e))?;
        let took = t.elapsed();
        while let Some(frame) = reply.frame().await {
            frame.map_err(|e| self.fail(e))?;
        }
        Ok(took)
    }

    /// A check that the whole text really came back (once, before measuring).
    pub async fn check_content(&mut self) -> Result<(), String> {
        let body = self.target.whole.clone();
        let bytes = self
            .post(&body)
            .await?
            .collect()
            .await
            .map_err(|e| self.fail(e))?
            .to_bytes();
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| self.fail(format!("not JSON ({e})")))?;
        let text = self.target.dialect.text(&v);
        if text.len() == REPLY_BYTES {
            Ok(())
        } else {
            Err(self.fail(format!(
                "text of {} bytes, not {REPLY_BYTES}: {v}",
                text.len()
            )))
        }
    }
}

pub async fn handshake(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("handshake {addr}: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Read server-sent events until one carries a non-empty text delta.
async fn first_delta(dialect: Dialect, body: &mut hyper::body::Incoming) -> Result<(), String> {
    let mut buf = Vec::new();
    loop {
        let frame = body
            .frame()
            .await
            .ok_or("the stream ended before any text")?
            .map_err(|e| e.to_string())?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            for line in String::from_utf8_lossy(&event).lines() {
                let Some(json) = line.strip_prefix("data:") else {
                    continue;
                };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(json.trim())
                    && dialect.is_text_delta(&v)
                {
                    return Ok(());
                }
            }
        }
    }
}
