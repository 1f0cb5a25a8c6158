//! A complete (non-streamed) chat-completions reply body, read as the plugin reads it
//! (through the typed view, not a `Value`).
#![no_main]

use grok_provider_core::chat::{Plan, parse_reply_body};
use grok_provider_core::{Lane, Route, RoutedModel};
use grok_provider_fuzz::check_error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let route = Plan {
        model: RoutedModel {
            route: Route::Api,
            upstream: "grok-4.3".into(),
        },
        lane: Lane::ChatCompletions,
    };
    match parse_reply_body(&route, data, "chat reply") {
        Ok(r) => {
            assert_eq!(r.lane, Lane::ChatCompletions);
            assert!(r.model.starts_with(Route::Api.prefix()), "{r:?}");
            assert_eq!(r.route, "api");
            if let Some(u) = r.usage {
                let _ = u.total_tokens;
            }
        }
        Err(e) => check_error(&e, &[]),
    }
});
