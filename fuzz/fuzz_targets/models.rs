//! `GET /models` answers and the cached catalogue.
#![no_main]

use grok_provider_core::chat::route;
use grok_provider_core::http::parse_json;
use grok_provider_core::models::{ModelsCache, choose_default, lane_for, parse_models, unprefixed};
use grok_provider_core::{ChatRequest, Lane, MODEL_PREFIX, Message, Role};
use grok_provider_fuzz::{NOW_MS, check_error};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    match parse_json(data, "model list").and_then(|v| {
        let n = v.get("data").and_then(Value::as_array).map(Vec::len);
        parse_models(&v).map(|m| (m, n))
    }) {
        Ok(((chat, media), n)) => {
            assert_eq!(Some(chat.len() + media.len()), n);
            for m in &chat {
                assert!(m.id.starts_with(MODEL_PREFIX), "{m:?}");
                assert_ne!(m.lane, Lane::Media, "{m:?}");
                assert_eq!(m.lane, lane_for(unprefixed(&m.id)), "{m:?}");
                // Every listed chat model can be chatted with, on the lane it is listed with.
                let req = ChatRequest {
                    model: m.id.clone(),
                    messages: vec![Message::text(Role::User, "hi")],
                    ..ChatRequest::default()
                };
                match route(&req) {
                    Ok(r) => assert_eq!(r.lane, m.lane, "{m:?}"),
                    Err(e) => panic!("listed chat model {:?} refused: {e}", m.id),
                }
            }
            for m in &media {
                assert!(m.id.starts_with(MODEL_PREFIX), "{m:?}");
                assert_eq!(m.lane, Lane::Media, "{m:?}");
                assert_eq!(m.lane, lane_for(unprefixed(&m.id)), "{m:?}");
            }
            let default = choose_default(&chat);
            assert!(
                chat.is_empty()
                    || chat.iter().any(|m| m.id == default)
                    || default == grok_provider_core::DEFAULT_MODEL_ID
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
    // The cache record as read back from the store.
    if let Ok(c) = serde_json::from_slice::<ModelsCache>(data) {
        for now in [0, NOW_MS, c.fetched_at_ms, u64::MAX] {
            let _ = c.is_fresh(now, c.tier);
        }
        let _ = c.to_list(true);
    }
});
