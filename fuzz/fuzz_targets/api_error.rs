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
use grok_provider_core::retry_after::parse_retry_after;
use grok_provider_core::routes::Route;
use grok_provider_fuzz::{NOW_MS, SECRETS, check_error, check_message, status};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, UNIX_EPOCH};

fn line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// Checks `Retry-After` parsing against its definition and an independent HTTP-date parser.
fn check_retry_after(v: &str) {
    let ours = parse_retry_after(v, NOW_MS);
    let t = v.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let expected = t
            .parse::<u64>()
            .map_or(u32::MAX, |n| n.min(u64::from(u32::MAX)) as u32);
        assert_eq!(ours, Some(expected), "{v:?}");
    } else if let Ok(at) = httpdate::parse_http_date(t)
        && httpdate::fmt_http_date(at) == t
    {
        // A canonical IMF-fixdate: we must read the same instant.
        let secs = at
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let now = NOW_MS.div_ceil(1000);
        let expected = u32::try_from(secs.saturating_sub(now)).unwrap_or(u32::MAX);
        assert_eq!(ours, Some(expected), "{v:?}");
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
        match classify_api_error(status, Some(&retry_after), body, NOW_MS, &secrets, route) {
            ApiFailure::Unauthenticated(m) | ApiFailure::Server(m) => check_message(&m, &secrets),
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
    match classify_oauth(&reply, "token endpoint", NOW_MS, &secrets) {
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
