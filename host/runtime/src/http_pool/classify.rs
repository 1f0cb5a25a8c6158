//! What a failed request of the default client becomes: one of wasi-http's error codes, so
//! the plugin can tell a refused destination, a TLS failure, a refused or timed-out
//! connection and a broken exchange apart.

use std::error::Error as StdError;
use std::io;

use wasmtime_wasi_http::Error as HttpError;

use super::client::ForbiddenDestination;

/// The wasi-http error for a failed request.
pub(super) fn classify(e: hyper_util::client::legacy::Error) -> HttpError {
    // A refused destination may come wrapped in io::Errors, whose `source` skips payloads.
    let forbidden = sources(&e).any(|s| {
        let mut cause: &(dyn StdError + 'static) = s;
        loop {
            if cause.is::<ForbiddenDestination>() {
                return true;
            }
            match cause
                .downcast_ref::<io::Error>()
                .and_then(io::Error::get_ref)
            {
                Some(inner) => cause = inner,
                None => return false,
            }
        }
    });
    if forbidden {
        tracing::debug!(error = %chain(&e), "refused a non-public destination");
        return HttpError::HttpRequestDenied;
    }
    let io_cause = sources(&e).find_map(|s| s.downcast_ref::<io::Error>());
    // rustls's error comes in the chain, or as the payload of (nested) io::Errors, which
    // an io::Error's `source` skips.
    let tls_cause = sources(&e).find_map(|s| {
        let mut cause: &(dyn StdError + 'static) = s;
        loop {
            if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
            let inner = cause.downcast_ref::<io::Error>()?.get_ref()?;
            cause = inner;
        }
    });
    if let Some(tls) = tls_cause {
        return match tls {
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                HttpError::TlsCertificateError
            }
            rustls::Error::AlertReceived(alert) => HttpError::TlsAlertReceived {
                alert_id: None,
                alert_message: Some(format!("{alert:?}")),
            },
            _ => HttpError::TlsProtocolError,
        };
    }
    if e.is_connect() {
        return match io_cause.map(io::Error::kind) {
            Some(io::ErrorKind::TimedOut) => HttpError::ConnectionTimeout,
            Some(io::ErrorKind::ConnectionRefused) => HttpError::ConnectionRefused,
            Some(kind) => HttpError::Connect(io::Error::new(kind, chain(&e))),
            None => HttpError::Connect(io::Error::other(chain(&e))),
        };
    }
    if let Some(h) = sources(&e).find_map(|s| s.downcast_ref::<hyper::Error>()) {
        if h.is_timeout() {
            return HttpError::HttpResponseTimeout;
        }
        if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
            return HttpError::ConnectionTerminated;
        }
        if h.is_parse() || h.is_parse_status() {
            return HttpError::HttpProtocolError;
        }
    }
    // A body error of the request itself (the guest's stream failed) comes back as is.
    if let Some(code) = sources(&e).find_map(|s| s.downcast_ref::<HttpError>()) {
        return clone_error(code).unwrap_or_else(|| HttpError::InternalError(Some(chain(&e))));
    }
    HttpError::InternalError(Some(chain(&e)))
}

/// The error and its causes.
fn sources<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |e: &&'a (dyn StdError + 'static)| (*e).source())
}

/// Every message of the chain, for diagnostics.
fn chain(e: &(dyn StdError + 'static)) -> String {
    sources(e)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// The variants a request body can fail with that carry no non-clonable payload.
fn clone_error(e: &HttpError) -> Option<HttpError> {
    Some(match e {
        HttpError::HttpRequestBodySize(n) => HttpError::HttpRequestBodySize(*n),
        HttpError::HttpRequestDenied => HttpError::HttpRequestDenied,
        HttpError::ConnectionTerminated => HttpError::ConnectionTerminated,
        HttpError::InternalError(m) => HttpError::InternalError(m.clone()),
        _ => return None,
    })
}
