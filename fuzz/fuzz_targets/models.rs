//! `GET /models` answers and the cached catalogues, on every route.
#![no_main]

use grok_provider_core::chat::plan;
use grok_provider_core::http::parse_json;
use grok_provider_core::models::{ModelsCache, choose_default, lane_for, parse_models};
use grok_provider_core::routes::resolve;
use grok_provider_core::{ChatRequest, Lane, Message, Role, Route};
use grok_provider_fuzz::{NOW_MS, check_error};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    for route in Route::ALL {
        check_route(data, route);
    }
    // The cache record as read back from the store.
    if let Ok(c) = serde_json::from_slice::<ModelsCache>(data) {
        for now in [0, NOW_MS, c.fetched_at_ms, u64::MAX] {
            let _ = c.is_fresh(now, c.tier);
        }
        let _ = c.to_list(Route::Api, true);
    }
});

fn check_route(data: &[u8], route: Route) {
    match parse_json(data, "model list").and_then(|v| {
        let n = v.get("data").and_then(Value::as_array).map(Vec::len);
        parse_models(&v, route).map(|m| (m, n))
    }) {
        Ok(((chat, media), n)) => {
            assert_eq!(Some(chat.len() + media.len()), n);
            for m in &chat {
                assert!(m.id.starts_with(route.prefix()), "{m:?}");
                assert_eq!(m.route, route.name(), "{m:?}");
                assert_ne!(m.lane, Lane::Media, "{m:?}");
                // Every listed chat model can be chatted with, on the route and the lane
                // it is listed with, whatever the default route.
                for default in Route::ALL {
                    let req = ChatRequest {
                        model: m.id.clone(),
                        messages: vec![Message::text(Role::User, "hi")],
                        ..ChatRequest::default()
                    };
                    let routed = resolve(None, &req.model, default)
                        .unwrap_or_else(|e| panic!("listed model {:?} has no route: {e}", m.id));
                    assert_eq!(routed.route, route, "{m:?}");
                    assert_eq!(m.lane, lane_for(&routed.upstream), "{m:?}");
                    match plan(&req, routed) {
                        Ok(p) => assert_eq!(p.lane, m.lane, "{m:?}"),
                        Err(e) => panic!("listed chat model {:?} refused: {e}", m.id),
                    }
                }
            }
            for m in &media {
                assert!(m.id.starts_with(route.prefix()), "{m:?}");
                assert_eq!(m.lane, Lane::Media, "{m:?}");
                assert_eq!(m.lane, lane_for(route.unprefixed(&m.id)), "{m:?}");
            }
            let default = choose_default(route, &chat);
            assert!(
                chat.is_empty()
                    || chat.iter().any(|m| m.id == default)
                    || default == route.default_model_id()
            );
            let cache = ModelsCache {
                fetched_at_ms: NOW_MS,
                tier: Some(1),
                models: chat,
                media_models: media,
            };
            let bytes = serde_json::to_vec(&cache).unwrap();
            assert_eq!(
                serde_json::from_slice::<ModelsCache>(&bytes).unwrap(),
                cache
            );
        }
        Err(e) => check_error(&e, &[]),
    }
}
