//! Failed answers of the model API and the OAuth endpoints: status, `Retry-After` and an
//! error body (JSON, HTML or anything) become a typed error whose message holds no secret,
//! no control character and no more than a bounded amount of upstream text.
//!
//! Input: one status selector byte (see `grok_provider_fuzz::status`), then the
//! `Retry-After` value up to the first `\n`, then a string the caller treats as a secret up
//! to the next `\n`, then the body.
#![no_main]

use grok_provider_core::api_error::{ApiFailure, classify_api_error, upstream_message};
use grok_provider_core::http::Reply;
use grok_provider_core::oauth::{OAuthReply, classify_oauth};
use grok_provider_core::redact::{MAX_MESSAGE_CHARS, sanitize};
use grok_provider_core::retry_after::{RETRY_AFTER_CAP_SECONDS, parse_retry_after};
use grok_provider_core::routes::Route;
use grok_provider_fuzz::{SECRETS, check_error, check_message, status};
use libfuzzer_sys::fuzz_target;

fn line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// Checks `Retry-After` parsing against its definition (as xAI's CLI reads it): integer
/// seconds capped at two minutes; anything else, HTTP dates included, is not read.
fn check_retry_after(v: &str) {
    let ours = parse_retry_after(v);
    let t = v.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let cap = u64::from(RETRY_AFTER_CAP_SECONDS);
        let expected = t.parse::<u64>().map_or(cap, |n| n.min(cap)) as u32;
        assert_eq!(ours, Some(expected), "{v:?}");
    } else {
        assert_eq!(ours, None, "{v:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (retry_after, rest) = line(rest);
    let (extra_secret, body) = line(rest);
    let status = status(selector);
    let retry_after = String::from_utf8_lossy(retry_after);
    let extra_secret = String::from_utf8_lossy(extra_secret);
    let mut secrets = SECRETS.to_vec();
    secrets.push(&extra_secret);

    check_retry_after(&retry_after);

    for route in Route::ALL {
        match classify_api_error(status, Some(&retry_after), body, &secrets, route) {
            ApiFailure::Unauthenticated(m) | ApiFailure::Server { message: m, .. } => {
                check_message(&m, &secrets)
            }
            ApiFailure::Final(e) => {
                check_error(&e, &secrets);
                // A quota refusal always names the route that refused.
                if let grok_provider_core::ProviderError::QuotaExhausted { route: r, .. } = &e {
                    assert_eq!(r, route.name());
                }
            }
        }
    }
    let m = upstream_message(status, body, &secrets);
    check_message(&m, &secrets);
    assert!(m.chars().count() <= MAX_MESSAGE_CHARS + 1, "{m:?}");

    let reply = Reply {
        status,
        headers: vec![("retry-after".into(), retry_after.to_string())],
        body: body.to_vec(),
    };
    match classify_oauth(&reply, "token endpoint", &secrets) {
        OAuthReply::Success(v) => assert!(v.is_object()),
        OAuthReply::Error { code, description } => {
            check_message(code.as_str(), &secrets);
            if let Some(d) = description {
                check_message(&d, &secrets);
            }
        }
        OAuthReply::Failure(e) => check_error(&e, &secrets),
    }

    // The sanitizer on the raw text, too.
    let text = String::from_utf8_lossy(body);
    let clean = sanitize(&text, &secrets);
    check_message(&clean, &secrets);
    assert!(clean.chars().count() <= MAX_MESSAGE_CHARS + 1);
});
