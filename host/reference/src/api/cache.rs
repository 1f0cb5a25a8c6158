//! Prompt caching as upstream reports it: a request whose cache key (chat completions:
//! the `x-grok-conv-id` header; Responses: `prompt_cache_key`) was seen before on this
//! server reads the previous prompt from cache.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::http::lock;

/// Keys remembered at most (bounds memory on a long-lived server).
const MAX_KEYS: usize = 100_000;

/// Prompt tokens of the last request per cache key.
#[derive(Default)]
pub(super) struct PromptCache {
    last: Mutex<HashMap<String, u64>>,
}

impl PromptCache {
    /// Cached tokens for a prompt of `prompt_tokens` under `key` (the previous prompt's
    /// tokens, at most this one's; 0 the first time), remembering this prompt.
    pub fn read(&self, key: Option<&str>, prompt_tokens: u64) -> u64 {
        let Some(key) = key.filter(|k| !k.is_empty()) else {
            return 0;
        };
        let mut last = lock(&self.last);
        let cached = last.get(key).map_or(0, |&prev| prev.min(prompt_tokens));
        if last.len() < MAX_KEYS || last.contains_key(key) {
            last.insert(key.to_owned(), prompt_tokens);
        }
        cached
    }
}
