//! The OpenID discovery document (untrusted JSON from the issuer), its cached record, and
//! the origin parser that decides where device codes and refresh tokens may be sent.
#![no_main]

use grok_provider_core::discovery::{DiscoveryCache, endpoint_allowed, parse_discovery};
use grok_provider_core::http::parse_json;
use grok_provider_core::origin::Origin;
use grok_provider_fuzz::{NOW_MS, check_error};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const ISSUERS: [&str; 2] = ["https://auth.x.ai", "http://127.0.0.1:9"];

/// The origin parser's promises: lower-case scheme and host, a host of plain characters,
/// and the canonical form of the origin parses back to the same origin.
fn check_origin(url: &str) {
    let Some(o) = Origin::parse(url) else {
        return;
    };
    assert!(o.scheme == "http" || o.scheme == "https", "{o:?}");
    assert!(!o.host.is_empty(), "{url:?}");
    assert_eq!(o.host, o.host.to_ascii_lowercase());
    assert!(
        o.host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_[]:".contains(&b)),
        "{o:?} from {url:?}"
    );
    let canonical = format!("{}://{}:{}/", o.scheme, o.host, o.port);
    assert_eq!(Origin::parse(&canonical).as_ref(), Some(&o), "{url:?}");
    if o.is_xai_https() {
        assert!(o.host == "x.ai" || o.host.ends_with(".x.ai"));
    }
}

/// Every string in the document, through the origin parser (bounded work).
fn walk(v: &Value, budget: &mut usize) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    match v {
        Value::String(s) => check_origin(s),
        Value::Array(a) => a.iter().for_each(|x| walk(x, budget)),
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            check_origin(k);
            walk(x, budget)
        }),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    // What the provider does with a 2xx discovery answer.
    match parse_json(data, "discovery") {
        Ok(doc) => {
            for issuer in ISSUERS {
                let origin = Origin::parse(issuer).unwrap();
                match parse_discovery(issuer, &doc) {
                    Ok(e) => {
                        // Nothing off the issuer's origin or https x.ai is ever accepted.
                        for url in [Some(&e.token_endpoint)]
                            .into_iter()
                            .chain(
                                [&e.device_authorization_endpoint, &e.revocation_endpoint]
                                    .map(Option::as_ref),
                            )
                            .flatten()
                        {
                            assert!(endpoint_allowed(&origin, url), "{url:?} for {issuer}");
                            let o = Origin::parse(url).unwrap();
                            assert!(o == origin || o.is_xai_https(), "{url:?}");
                        }
                    }
                    Err(err) => check_error(&err, &[]),
                }
            }
            walk(&doc, &mut 256);
        }
        Err(err) => check_error(&err, &[]),
    }
    // The cached record as read back from the store (a corrupt one counts as absent).
    if let Ok(c) = serde_json::from_slice::<DiscoveryCache>(data) {
        for now in [0, NOW_MS, u64::MAX, c.fetched_at_ms] {
            let _ = c.is_fresh(ISSUERS[0], now);
        }
    }
    // The origin parser on raw text.
    if let Ok(s) = std::str::from_utf8(data) {
        check_origin(s);
    }
});
