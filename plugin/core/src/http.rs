//! Request builders and capped body reading shared by every endpoint.

use serde_json::Value;

use crate::error::ProviderError;
use crate::io::{HttpRequest, HttpResponse, Method, Patience, ResponseBody};

/// Largest JSON body accepted from a successful response.
pub const JSON_BODY_CAP: usize = 4 * 1024 * 1024;
/// How much of an error body is read (the rest is ignored).
pub const ERROR_BODY_CAP: usize = 64 * 1024;
/// Longest line accepted in an event stream.
pub const SSE_LINE_CAP: usize = 1024 * 1024;

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// Read at most `cap` bytes of `body`. Returns the bytes and whether more followed
/// (reading stops there: an oversized body is never buffered whole).
pub fn read_capped<B: ResponseBody>(
    body: &mut B,
    cap: usize,
) -> Result<(Vec<u8>, bool), ProviderError> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next_chunk()? {
        if out.len() + chunk.len() > cap {
            let room = cap - out.len();
            out.extend_from_slice(&chunk[..room]);
            return Ok((out, true));
        }
        out.extend_from_slice(&chunk);
    }
    Ok((out, false))
}

/// Read and parse a successful response's JSON body (capped at [`JSON_BODY_CAP`]).
pub fn read_json<B: ResponseBody>(body: &mut B, what: &str) -> Result<Value, ProviderError> {
    parse_json(&read_json_body(body, what)?, what)
}

/// The bytes of a JSON body, within the same cap as [`read_json`], for a caller that reads
/// them through a typed view.
pub fn read_json_body<B: ResponseBody>(body: &mut B, what: &str) -> Result<Vec<u8>, ProviderError> {
    let (bytes, over) = read_capped(body, JSON_BODY_CAP)?;
    if over {
        return Err(ProviderError::InvalidResponse(format!(
            "{what}: response body over {} MiB",
            JSON_BODY_CAP / (1024 * 1024)
        )));
    }
    Ok(bytes)
}

/// Parse bytes as JSON, naming `what` on failure (never quoting the body).
pub fn parse_json(bytes: &[u8], what: &str) -> Result<Value, ProviderError> {
    serde_json::from_slice(bytes).map_err(|_| not_json(what))
}

/// The error of a body that is not JSON.
pub fn not_json(what: &str) -> ProviderError {
    ProviderError::InvalidResponse(format!("{what}: body is not valid JSON"))
}

/// A response whose body was read completely (within caps).
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body bytes (the first [`ERROR_BODY_CAP`] for non-2xx answers).
    pub body: Vec<u8>,
}

impl Reply {
    /// First header value with this name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Read a whole response: 2xx bodies up to [`JSON_BODY_CAP`] (over -> error), others up
/// to [`ERROR_BODY_CAP`] (silently cut: only the message is wanted).
pub fn read_reply<B: ResponseBody>(
    mut resp: HttpResponse<B>,
    what: &str,
) -> Result<Reply, ProviderError> {
    let success = (200..300).contains(&resp.status);
    let cap = if success {
        JSON_BODY_CAP
    } else {
        ERROR_BODY_CAP
    };
    let (body, over) = read_capped(&mut resp.body, cap)?;
    if over && success {
        return Err(ProviderError::InvalidResponse(format!(
            "{what}: response body over {} MiB",
            JSON_BODY_CAP / (1024 * 1024)
        )));
    }
    Ok(Reply {
        status: resp.status,
        headers: resp.headers,
        body,
    })
}

/// A GET expecting JSON.
pub fn get_json(url: String, user_agent: &str, bearer: Option<&str>) -> HttpRequest {
    let mut headers = vec![
        ("user-agent".to_owned(), user_agent.to_owned()),
        ("accept".to_owned(), JSON.to_owned()),
    ];
    if let Some(token) = bearer {
        headers.push(("authorization".to_owned(), format!("Bearer {token}")));
    }
    HttpRequest {
        method: Method::Get,
        url,
        headers,
        body: Vec::new(),
        patience: Patience::Short,
    }
}

/// A form POST expecting JSON (the OAuth endpoints).
pub fn post_form(url: String, user_agent: &str, pairs: &[(&str, &str)]) -> HttpRequest {
    HttpRequest {
        method: Method::Post,
        url,
        headers: vec![
            ("user-agent".to_owned(), user_agent.to_owned()),
            ("accept".to_owned(), JSON.to_owned()),
            ("content-type".to_owned(), FORM.to_owned()),
        ],
        body: crate::form::encode(pairs),
        patience: Patience::Short,
    }
}

/// A JSON POST with a bearer token (chat: [`Patience::Long`]); `accept` is `application/json` or `text/event-stream`.
pub fn post_json(
    url: String,
    user_agent: &str,
    bearer: &str,
    body: Vec<u8>,
    accept: &str,
) -> HttpRequest {
    HttpRequest {
        method: Method::Post,
        url,
        headers: vec![
            ("user-agent".to_owned(), user_agent.to_owned()),
            ("accept".to_owned(), accept.to_owned()),
            ("content-type".to_owned(), JSON.to_owned()),
            ("authorization".to_owned(), format!("Bearer {bearer}")),
        ],
        body,
        patience: Patience::Long,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::TransportError;

    struct Chunks(Vec<Vec<u8>>);
    impl ResponseBody for Chunks {
        fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
            Ok(if self.0.is_empty() {
                None
            } else {
                Some(self.0.remove(0))
            })
        }
    }

    #[test]
    fn caps_bodies() {
        let mut b = Chunks(vec![b"abc".to_vec(), b"def".to_vec()]);
        assert_eq!(read_capped(&mut b, 6).unwrap(), (b"abcdef".to_vec(), false));
        let mut b = Chunks(vec![b"abc".to_vec(), b"def".to_vec()]);
        assert_eq!(read_capped(&mut b, 4).unwrap(), (b"abcd".to_vec(), true));
        let big = vec![b' '; JSON_BODY_CAP + 1];
        let mut b = Chunks(vec![big]);
        assert!(
            matches!(read_json(&mut b, "x"), Err(ProviderError::InvalidResponse(m)) if m.contains("over 4 MiB"))
        );
    }

    #[test]
    fn error_bodies_are_cut_not_refused() {
        let resp = HttpResponse {
            status: 500,
            headers: vec![],
            body: Chunks(vec![vec![b'e'; ERROR_BODY_CAP * 2]]),
        };
        let r = read_reply(resp, "x").unwrap();
        assert_eq!(r.body.len(), ERROR_BODY_CAP);
    }

    #[test]
    fn transport_errors_are_network_errors() {
        struct Broken;
        impl ResponseBody for Broken {
            fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
                Err(TransportError::Failed("reset".into()))
            }
        }
        assert_eq!(
            read_capped(&mut Broken, 10),
            Err(ProviderError::Network("reset".into()))
        );
    }
}
