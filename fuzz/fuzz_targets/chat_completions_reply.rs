//! A complete (non-streamed) chat-completions reply body.
#![no_main]

use grok_provider_core::chat::{Route, parse_reply};
use grok_provider_core::http::parse_json;
use grok_provider_core::{Lane, MODEL_PREFIX};
use grok_provider_fuzz::check_error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let route = Route {
        upstream_model: "grok-4.3".into(),
        lane: Lane::ChatCompletions,
    };
    match parse_json(data, "chat reply").and_then(|v| parse_reply(&route, &v)) {
        Ok(r) => {
            assert_eq!(r.lane, Lane::ChatCompletions);
            assert!(r.model.starts_with(MODEL_PREFIX), "{r:?}");
            if let Some(u) = r.usage {
                let _ = u.total_tokens;
            }
        }
        Err(e) => check_error(&e, &[]),
    }
});
