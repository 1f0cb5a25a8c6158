//! The device authorization endpoint's answer (RFC 8628 §3.2), whatever its status, and
//! the pending-flow record built from it and stored.
//!
//! Input: one status selector byte (see `grok_provider_fuzz::status`), then the body.
#![no_main]

use grok_provider_core::device::{
    PendingFlow, browser_url_allowed, parse_device_authorization, valid_user_code,
};
use grok_provider_core::http::Reply;
use grok_provider_core::oauth::{OAuthReply, classify_oauth};
use grok_provider_fuzz::{NOW_MS, check_error, check_message, status};
use libfuzzer_sys::fuzz_target;

const FLOW_ID: &str = "0123456789abcdef0123456789abcdef";

fn exercise(flow: &PendingFlow) {
    for now in [0, NOW_MS, flow.created_at_ms, flow.expires_at_ms, u64::MAX] {
        let _ = (flow.is_expired(now), flow.too_early(now));
        let _ = (flow.pending_login(FLOW_ID, now), flow.prompt(FLOW_ID, now));
    }
    // Debug never shows the device code: it does not even depend on it.
    let mut other = flow.clone();
    other.device_code = "something else".into();
    assert_eq!(format!("{flow:?}"), format!("{other:?}"));
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let reply = Reply {
        status: status(selector),
        headers: vec![("retry-after".into(), "7".into())],
        body: body.to_vec(),
    };
    match classify_oauth(&reply, "device authorization", &[]) {
        OAuthReply::Success(v) => match parse_device_authorization(&v) {
            Ok(a) => {
                assert!(valid_user_code(&a.user_code), "{a:?}");
                assert!(browser_url_allowed(&a.verification_uri), "{a:?}");
                assert!(browser_url_allowed(&a.verification_uri_complete), "{a:?}");
                assert!(a.interval >= 1 && a.expires_in >= 1, "{a:?}");
                let flow = PendingFlow::new(a, NOW_MS);
                exercise(&flow);
                let bytes = serde_json::to_vec(&flow).unwrap();
                assert!(serde_json::from_slice::<PendingFlow>(&bytes).unwrap() == flow);
            }
            Err(e) => check_error(&e, &[]),
        },
        OAuthReply::Error { code, description } => {
            assert!(code.as_str().chars().count() <= 65, "{code:?}");
            check_message(code.as_str(), &[]);
            if let Some(d) = description {
                check_message(&d, &[]);
            }
        }
        OAuthReply::Failure(e) => check_error(&e, &[]),
    }
    // A pending-flow record as read back from the store.
    if let Ok(flow) = serde_json::from_slice::<PendingFlow>(body) {
        exercise(&flow);
    }
});
