//! The core's `Transport` over `wasi:http/outgoing-handler`, blocking.
//!
//! Blocking WASI calls rather than an async runtime (wstd): our exports are synchronous,
//! and a `chat-stream` resource must keep reading one response body across many export
//! calls, which wstd's per-`block_on` reactor does not allow. The host decides what may
//! be reached; a refusal surfaces as `TransportError::Denied`.

use grok_provider_core::io::{
    HttpRequest, HttpResponse, Method, Patience, ResponseBody, Transport, TransportError,
};
use grok_provider_core::origin::Url;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingResponse, Method as WasiMethod, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::streams::{InputStream, StreamError};

/// Per-request timeouts asked of the host (which may lower them further), by patience:
/// (connect, first byte, between bytes) in nanoseconds.
const SECOND_NS: u64 = 1_000_000_000;
const SHORT_TIMEOUTS_NS: (u64, u64, u64) = (10 * SECOND_NS, 20 * SECOND_NS, 20 * SECOND_NS);
/// A reasoning model may think for minutes before its first byte (non-streamed: before
/// the whole reply); once streaming, two minutes without an event is a stall.
const LONG_TIMEOUTS_NS: (u64, u64, u64) = (10 * SECOND_NS, 240 * SECOND_NS, 120 * SECOND_NS);
/// Bytes asked per read; the host may return fewer.
const READ_CHUNK: u64 = 64 * 1024;
/// Bytes written per blocking write (the host accepts at most 4096 per call).
const WRITE_CHUNK: usize = 4096;

/// Sends requests through the host.
pub struct WasiTransport {
    user_agent: String,
}

impl WasiTransport {
    pub fn new(user_agent: String) -> Self {
        Self { user_agent }
    }
}

/// A response body being read from the host. Field order is drop order: the stream is a
/// child of the body, which outlives it.
pub struct WasiBody {
    stream: Option<InputStream>,
    _body: Option<IncomingBody>,
    _response: IncomingResponse,
}

impl ResponseBody for WasiBody {
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        let Some(stream) = &self.stream else {
            return Ok(None);
        };
        match stream.blocking_read(READ_CHUNK) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(StreamError::Closed) => {
                self.stream = None;
                Ok(None)
            }
            Err(StreamError::LastOperationFailed(err)) => {
                let code = wasip2::http::types::http_error_code(&err);
                self.stream = None;
                Err(match code {
                    Some(code) => transport_error(code),
                    None => TransportError::Failed(err.to_debug_string()),
                })
            }
        }
    }
}

impl Transport for WasiTransport {
    type Body = WasiBody;

    fn send(&mut self, request: HttpRequest) -> Result<HttpResponse<WasiBody>, TransportError> {
        let target = Url::parse(&request.url).ok_or_else(|| {
            TransportError::Failed(format!("not an absolute http(s) URL: {}", request.url))
        })?;
        let scheme = match target.origin.scheme.as_str() {
            "https" => Scheme::Https,
            _ => Scheme::Http,
        };
        let mut headers: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
            .collect();
        if !headers.iter().any(|(n, _)| n == "user-agent") {
            headers.push(("user-agent".into(), self.user_agent.as_bytes().to_vec()));
        }
        let fields = Fields::from_list(&headers)
            .map_err(|e| TransportError::Failed(format!("invalid request header: {e:?}")))?;
        let outgoing = OutgoingRequest::new(fields);
        let method = match request.method {
            Method::Get => WasiMethod::Get,
            Method::Post => WasiMethod::Post,
        };
        let invalid =
            |what: &str| TransportError::Failed(format!("host rejected the request {what}"));
        outgoing
            .set_method(&method)
            .map_err(|()| invalid("method"))?;
        outgoing
            .set_scheme(Some(&scheme))
            .map_err(|()| invalid("scheme"))?;
        outgoing
            .set_authority(Some(&target.authority))
            .map_err(|()| invalid("authority"))?;
        outgoing
            .set_path_with_query(Some(&target.path_with_query))
            .map_err(|()| invalid("path"))?;
        let body = outgoing.body().map_err(|()| invalid("body"))?;

        let options = RequestOptions::new();
        // A host may not support a timeout option; its own caps still apply then.
        let (connect, first_byte, between_bytes) = match request.patience {
            Patience::Short => SHORT_TIMEOUTS_NS,
            Patience::Long => LONG_TIMEOUTS_NS,
        };
        let _ = options.set_connect_timeout(Some(connect));
        let _ = options.set_first_byte_timeout(Some(first_byte));
        let _ = options.set_between_bytes_timeout(Some(between_bytes));

        let pending = outgoing_handler::handle(outgoing, Some(options)).map_err(transport_error)?;
        // Write errors are not reported here: when the host refuses or fails the request it
        // closes the body, and the real reason arrives with the response future below.
        write_body(body, &request.body);

        pending.subscribe().block();
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(transport_error(code)),
            Some(Err(())) => return Err(TransportError::Failed("response already taken".into())),
            None => {
                return Err(TransportError::Failed(
                    "response not ready after wait".into(),
                ));
            }
        };
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(n, v)| {
                (
                    n.to_ascii_lowercase(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| TransportError::Failed("response body unavailable".into()))?;
        let stream = incoming
            .stream()
            .map_err(|()| TransportError::Failed("response body stream unavailable".into()))?;
        Ok(HttpResponse {
            status,
            headers,
            body: WasiBody {
                stream: Some(stream),
                _body: Some(incoming),
                _response: response,
            },
        })
    }
}

fn write_body(body: OutgoingBody, bytes: &[u8]) {
    if let Ok(stream) = body.write() {
        for chunk in bytes.chunks(WRITE_CHUNK) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
        drop(stream);
    }
    let _ = OutgoingBody::finish(body, None);
}

fn transport_error(code: ErrorCode) -> TransportError {
    match code {
        ErrorCode::HttpRequestDenied => {
            TransportError::Denied("the host does not allow this destination".into())
        }
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::DnsTimeout => TransportError::Timeout(error_name(&code).into()),
        ErrorCode::HttpResponseBodySize(limit) => TransportError::Failed(format!(
            "response body over the host's limit{}",
            limit.map(|l| format!(" of {l} bytes")).unwrap_or_default()
        )),
        ErrorCode::DnsError(p) => TransportError::Failed(match p.rcode {
            Some(rcode) => format!("DnsError ({rcode})"),
            None => "DnsError".into(),
        }),
        ErrorCode::TlsAlertReceived(p) => TransportError::Failed(match p.alert_message {
            Some(m) => format!("TlsAlertReceived ({m})"),
            None => "TlsAlertReceived".into(),
        }),
        ErrorCode::InternalError(Some(m)) => TransportError::Failed(format!("InternalError: {m}")),
        other => TransportError::Failed(error_name(&other).into()),
    }
}

/// The case's name, as its `Debug` would start (the generated `Debug`, with every
/// payload's, costs the component several KiB; the payloads that say something are
/// written by [`transport_error`]).
fn error_name(code: &ErrorCode) -> &'static str {
    match code {
        ErrorCode::DnsTimeout => "DnsTimeout",
        ErrorCode::DnsError(_) => "DnsError",
        ErrorCode::DestinationNotFound => "DestinationNotFound",
        ErrorCode::DestinationUnavailable => "DestinationUnavailable",
        ErrorCode::DestinationIpProhibited => "DestinationIpProhibited",
        ErrorCode::DestinationIpUnroutable => "DestinationIpUnroutable",
        ErrorCode::ConnectionRefused => "ConnectionRefused",
        ErrorCode::ConnectionTerminated => "ConnectionTerminated",
        ErrorCode::ConnectionTimeout => "ConnectionTimeout",
        ErrorCode::ConnectionReadTimeout => "ConnectionReadTimeout",
        ErrorCode::ConnectionWriteTimeout => "ConnectionWriteTimeout",
        ErrorCode::ConnectionLimitReached => "ConnectionLimitReached",
        ErrorCode::TlsProtocolError => "TlsProtocolError",
        ErrorCode::TlsCertificateError => "TlsCertificateError",
        ErrorCode::TlsAlertReceived(_) => "TlsAlertReceived",
        ErrorCode::HttpRequestDenied => "HttpRequestDenied",
        ErrorCode::HttpRequestLengthRequired => "HttpRequestLengthRequired",
        ErrorCode::HttpRequestBodySize(_) => "HttpRequestBodySize",
        ErrorCode::HttpRequestMethodInvalid => "HttpRequestMethodInvalid",
        ErrorCode::HttpRequestUriInvalid => "HttpRequestUriInvalid",
        ErrorCode::HttpRequestUriTooLong => "HttpRequestUriTooLong",
        ErrorCode::HttpRequestHeaderSectionSize(_) => "HttpRequestHeaderSectionSize",
        ErrorCode::HttpRequestHeaderSize(_) => "HttpRequestHeaderSize",
        ErrorCode::HttpRequestTrailerSectionSize(_) => "HttpRequestTrailerSectionSize",
        ErrorCode::HttpRequestTrailerSize(_) => "HttpRequestTrailerSize",
        ErrorCode::HttpResponseIncomplete => "HttpResponseIncomplete",
        ErrorCode::HttpResponseHeaderSectionSize(_) => "HttpResponseHeaderSectionSize",
        ErrorCode::HttpResponseHeaderSize(_) => "HttpResponseHeaderSize",
        ErrorCode::HttpResponseBodySize(_) => "HttpResponseBodySize",
        ErrorCode::HttpResponseTrailerSectionSize(_) => "HttpResponseTrailerSectionSize",
        ErrorCode::HttpResponseTrailerSize(_) => "HttpResponseTrailerSize",
        ErrorCode::HttpResponseTransferCoding(_) => "HttpResponseTransferCoding",
        ErrorCode::HttpResponseContentCoding(_) => "HttpResponseContentCoding",
        ErrorCode::HttpResponseTimeout => "HttpResponseTimeout",
        ErrorCode::HttpUpgradeFailed => "HttpUpgradeFailed",
        ErrorCode::HttpProtocolError => "HttpProtocolError",
        ErrorCode::LoopDetected => "LoopDetected",
        ErrorCode::ConfigurationError => "ConfigurationError",
        ErrorCode::InternalError(_) => "InternalError",
    }
}
