//! A small HTTP/1.1 client over hyper, and SSE parsing, for the crate's tests.
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// A whole response; `body` is `Err` when the body broke off (connection aborted).
pub struct Resp {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Result<Bytes, String>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.body.as_ref().expect("complete body")).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(self.body.as_ref().expect("complete body"))
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Send one request and return the response head with the unread body.
pub async fn open(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Result<Response<Incoming>, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let authority = uri.authority().ok_or("no authority")?.to_string();
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", &authority)
        .header("user-agent", "reference-tests/1");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(http_body_util::Full::new(Bytes::from(
            body.unwrap_or_default(),
        )))
        .map_err(|e| format!("{e}"))?;
    sender
        .send_request(request)
        .await
        .map_err(|e| format!("send: {e}"))
}

/// Send one request and read the whole body.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Result<Resp, String> {
    let response = open(method, url, headers, body).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| format!("body: {e}"));
    Ok(Resp {
        status,
        headers,
        body,
    })
}

pub async fn get(url: &str, bearer: Option<&str>) -> Resp {
    let auth = bearer.map(|b| format!("Bearer {b}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    send("GET", url, &headers, None).await.expect("request")
}

pub async fn post_form(url: &str, fields: &[(&str, &str)]) -> Resp {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    send(
        "POST",
        url,
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(body.into_bytes()),
    )
    .await
    .expect("request")
}

pub async fn post_json(url: &str, bearer: &str, body: &Value) -> Resp {
    try_post_json(url, bearer, body).await.expect("request")
}

pub async fn try_post_json(url: &str, bearer: &str, body: &Value) -> Result<Resp, String> {
    let auth = format!("Bearer {bearer}");
    send(
        "POST",
        url,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        Some(body.to_string().into_bytes()),
    )
    .await
}

/// Next data frame of a body, or `None` if none arrives within `wait` (a stall).
pub async fn next_frame(body: &mut Incoming, wait: Duration) -> Option<Result<Bytes, String>> {
    match tokio::time::timeout(wait, body.frame()).await {
        Err(_) => None,
        Ok(None) => Some(Ok(Bytes::new())),
        Ok(Some(Err(e))) => Some(Err(e.to_string())),
        Ok(Some(Ok(frame))) => Some(Ok(frame.into_data().unwrap_or_default())),
    }
}

/// One SSE event: its `event:` name (if any) and its joined `data:` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("event data is JSON")
    }
}

pub fn parse_sse(text: &str) -> Vec<Event> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = Some(v.trim().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                }
            }
            Event {
                name,
                data: data.join("\n"),
            }
        })
        .collect()
}

/// Wait (bounded) until `cond` holds.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}
