//! A complete (non-streamed) Responses-API reply body.
#![no_main]

use grok_provider_core::chat::{Plan, parse_reply_body};
use grok_provider_core::http::parse_json;
use grok_provider_core::{Lane, Route, RoutedModel};
use grok_provider_fuzz::check_error;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let route = Plan {
        model: RoutedModel {
            route: Route::Api,
            upstream: "grok-4.20-multi-agent-0309".into(),
        },
        lane: Lane::Responses,
    };
    let parsed = parse_json(data, "chat reply");
    match parse_reply_body(&route, data, "chat reply") {
        Ok(r) => {
            assert_eq!(r.lane, Lane::Responses);
            assert!(r.model.starts_with(Route::Api.prefix()), "{r:?}");
            assert_eq!(r.route, "api");
            // A failed response is never reported as a reply.
            let v = parsed.unwrap();
            assert_ne!(v.get("status").and_then(Value::as_str), Some("failed"));
        }
        Err(e) => check_error(&e, &[]),
    }
});
