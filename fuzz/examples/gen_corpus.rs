//! Writes the seed corpus under `fuzz/corpus/<target>/`: realistic xAI-like answers (and a
//! few hostile ones) in each target's input format. Run from the repository root with
//! `cargo +nightly run --manifest-path fuzz/Cargo.toml --example gen_corpus`; the files are
//! committed, so this only needs re-running when the seeds change.

use provider_secrets::file_format;

use std::fs;
use std::path::Path;

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::KeyInit;
use grok_provider_core::jwt::encode_unsigned;
use serde_json::{Value, json};

/// Selector bytes of `grok_provider_fuzz::status` (`STATUSES[b % 16]`).
const S200: u8 = b'0';
const S301: u8 = b'5';
const S400: u8 = b'6';
const S401: u8 = b'7';
const S402: u8 = b'8';
const S403: u8 = b'9';
const S404: u8 = b':';
const S408: u8 = b';';
const S429: u8 = b'<';
const S500: u8 = b'=';
const S503: u8 = b'>';

const OLD_REFRESH_TOKEN: &str = "rt-Zq7UO2x1Lk9c";
const OLD_ACCESS_TOKEN: &str = "at-Yx81Q0mNbc7T";
const FUZZ_MASTER_KEY: [u8; 32] = *b"fuzzing-only-master-key-32-bytes";

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn with_prefix(prefix: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend_from_slice(body);
    v
}

fn pretty(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap()
}

fn access_token(tier: Value) -> String {
    encode_unsigned(&json!({
        "iss": "https://auth.x.ai",
        "aud": "b1a00492-073a-47ea-816f-4c329264a828",
        "sub": "user-3f1e2d4c",
        "exp": 1_700_021_600u64,
        "iat": 1_700_000_000u64,
        "scope": "openid profile email offline_access grok-cli:access api:access",
        "principal_type": "user",
        "principal_id": "3f1e2d4c-0000-4000-8000-000000000001",
        "team_id": "team-77",
        "client_id": "b1a00492-073a-47ea-816f-4c329264a828",
        "jti": "5b8d2c1e-9a7f-4e3b-b1c2-d3e4f5a6b7c8",
        "tier": tier
    }))
}

fn discovery() {
    let xai = json!({
        "issuer": "https://auth.x.ai",
        "authorization_endpoint": "https://auth.x.ai/oauth2/auth",
        "device_authorization_endpoint": "https://auth.x.ai/oauth2/device/code",
        "token_endpoint": "https://auth.x.ai/oauth2/token",
        "revocation_endpoint": "https://auth.x.ai/oauth2/revoke",
        "userinfo_endpoint": "https://auth.x.ai/oauth2/userinfo",
        "jwks_uri": "https://auth.x.ai/.well-known/jwks.json",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        "scopes_supported": ["openid", "profile", "email", "offline_access", "grok-cli:access", "api:access"],
        "token_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["ES256"]
    });
    write("discovery", "xai.json", &pretty(&xai));
    write(
        "discovery",
        "local.json",
        &pretty(&json!({
            "issuer": "http://127.0.0.1:9",
            "device_authorization_endpoint": "http://127.0.0.1:9/oauth2/device/code",
            "token_endpoint": "http://127.0.0.1:9/oauth2/token",
            "revocation_endpoint": null
        })),
    );
    write("discovery", "ipv6.json", br#"{"token_endpoint":"http://[::1]:9/t","revocation_endpoint":"HTTPS://Other.X.AI:443/r?x=1#f"}"#);
    write("discovery", "foreign.json", br#"{"issuer":"https://auth.x.ai","token_endpoint":"https://auth.x.ai.evil.example/oauth2/token"}"#);
    write("discovery", "userinfo.json", br#"{"token_endpoint":"https://x.ai@evil.example/token","device_authorization_endpoint":"https://x.ai\\evil.example/"}"#);
    write(
        "discovery",
        "wrong-types.json",
        br#"{"token_endpoint":5,"device_authorization_endpoint":["https://auth.x.ai/d"]}"#,
    );
    write(
        "discovery",
        "array.json",
        b"[\"https://auth.x.ai/oauth2/token\"]",
    );
    write("discovery", "challenge.html", b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>");
    write("discovery", "cache.json", &serde_json::to_vec(&json!({
        "issuer": "https://auth.x.ai", "fetched_at_ms": 1_699_999_000_000u64,
        "endpoints": {"device_authorization_endpoint": "https://auth.x.ai/oauth2/device/code",
                      "token_endpoint": "https://auth.x.ai/oauth2/token", "revocation_endpoint": null}
    })).unwrap());
    write(
        "discovery",
        "url.txt",
        b"https://auth.x.ai:8443/oauth2/token?grant=1",
    );
}

fn device_authorization() {
    let t = "device_authorization";
    let full = json!({
        "device_code": "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS",
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://accounts.x.ai/oauth2/device",
        "verification_uri_complete": "https://accounts.x.ai/oauth2/device?user_code=WDJB-MJHT",
        "expires_in": 1800,
        "interval": 5
    });
    write(t, "xai", &with_prefix(&[S200], &pretty(&full)));
    write(t, "minimal", &with_prefix(&[S200], br#"{"device_code":"D","user_code":"ABCD-1234","verification_url":"https://accounts.x.ai/oauth2/device?lang=en#top","expires_in":"600","interval":"0"}"#));
    write(t, "loopback", &with_prefix(&[S200], br#"{"device_code":"D","user_code":"A1","verification_uri":"http://127.0.0.1:8080/device","verification_uri_complete":"http://[::1]:8080/device?user_code=A1"}"#));
    write(t, "hostile-uri", &with_prefix(&[S200], br#"{"device_code":"D","user_code":"AB&x=1","verification_uri":"javascript:alert(1)","verification_uri_complete":"http://evil.example/d"}"#));
    write(t, "error-200", &with_prefix(&[S200], br#"{"error":"invalid_client","error_description":"Client authentication failed\r\n\u001b[31m"}"#));
    write(t, "error-400", &with_prefix(&[S400], br#"{"error":"invalid_scope","error_description":"The requested scope is invalid, unknown, or malformed."}"#));
    write(
        t,
        "disabled-404",
        &with_prefix(&[S404], b"404 page not found"),
    );
    write(
        t,
        "challenge-403",
        &with_prefix(
            &[S403],
            b"<html><body>Attention Required! | Cloudflare</body></html>",
        ),
    );
    write(
        t,
        "rate-limited",
        &with_prefix(&[S429], br#"{"error":"rate limited"}"#),
    );
    write(
        t,
        "server-error",
        &with_prefix(
            &[S503],
            b"upstream connect error or disconnect/reset before headers",
        ),
    );
    write(t, "redirect", &with_prefix(&[S301], b""));
    write(t, "pending-record", &with_prefix(&[S200], &serde_json::to_vec(&json!({
        "device_code": "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS", "user_code": "WDJB-MJHT",
        "verification_uri": "https://accounts.x.ai/oauth2/device",
        "verification_uri_complete": "https://accounts.x.ai/oauth2/device?user_code=WDJB-MJHT",
        "created_at_ms": 1_700_000_000_000u64, "expires_at_ms": 1_700_001_800_000u64,
        "interval_secs": 10, "last_poll_ms": 1_700_000_005_000u64
    })).unwrap()));
}

fn token_response() {
    let t = "token_response";
    let ok = json!({
        "access_token": access_token(json!(3)),
        "refresh_token": "rt-2c3b1d0e9f8a7b6c5d4e3f2a1b0c9d8e",
        "id_token": encode_unsigned(&json!({"iss": "https://auth.x.ai", "sub": "user-3f1e2d4c", "email": "a@example.com"})),
        "expires_in": 21600,
        "scope": "openid profile email offline_access grok-cli:access api:access",
        "token_type": "Bearer"
    });
    write(t, "xai", &with_prefix(&[S200], &pretty(&ok)));
    write(
        t,
        "no-rotation",
        &with_prefix(
            &[S200],
            &serde_json::to_vec(&json!({
                "access_token": access_token(json!("4")), "token_type": "bearer"
            }))
            .unwrap(),
        ),
    );
    write(
        t,
        "opaque",
        &with_prefix(
            &[S200],
            br#"{"access_token":"opaque-access-token","refresh_token":"r2","expires_in":"900"}"#,
        ),
    );
    write(
        t,
        "mac",
        &with_prefix(
            &[S200],
            br#"{"access_token":"at-Qw3rTy7Ui0pA5s","token_type":"rt-Zq7UO2x1Lk9c"}"#,
        ),
    );
    for (name, code, desc) in [
        (
            "pending",
            "authorization_pending",
            "The authorization request is still pending",
        ),
        ("slow-down", "slow_down", "Polling too fast"),
        ("denied", "access_denied", "The end-user denied the request"),
        ("expired", "expired_token", "The device code has expired"),
    ] {
        write(
            t,
            name,
            &with_prefix(
                &[S400],
                &serde_json::to_vec(&json!({"error": code, "error_description": desc})).unwrap(),
            ),
        );
    }
    write(
        t,
        "pending-200",
        &with_prefix(&[S200], br#"{"error":"authorization_pending"}"#),
    );
    write(t, "invalid-grant-echo", &with_prefix(&[S400], format!(
        r#"{{"error":"invalid_grant","error_description":"Refresh token {OLD_REFRESH_TOKEN} has been revoked (bearer {OLD_ACCESS_TOKEN})"}}"#
    ).as_bytes()));
    write(
        t,
        "unauthorized",
        &with_prefix(&[S401], br#"{"error":"invalid_client"}"#),
    );
    write(
        t,
        "rate-limited",
        &with_prefix(&[S429], b"Too Many Requests"),
    );
    write(
        t,
        "server-html",
        &with_prefix(
            &[S500],
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        ),
    );
    write(
        t,
        "credentials-record",
        &with_prefix(
            &[S200],
            &serde_json::to_vec(&json!({
                "access_token": access_token(json!(1)), "refresh_token": OLD_REFRESH_TOKEN,
                "expires_at_ms": 1_700_021_600_000u64, "obtained_at_ms": 1_700_000_000_000u64,
                "tier": 1, "scope": "openid offline_access", "generation": 7
            }))
            .unwrap(),
        ),
    );
}

fn jwt_claims() {
    let t = "jwt_claims";
    write(t, "xai", access_token(json!(3)).as_bytes());
    write(t, "tier-string", access_token(json!("4")).as_bytes());
    write(
        t,
        "no-tier",
        encode_unsigned(&json!({"sub": "u", "exp": "1700000000", "iat": 1.7e9})).as_bytes(),
    );
    let padded = format!(
        "eyJhbGciOiJub25lIn0.{}.sig",
        base64_padded(br#"{"tier":2,"exp":1}"#)
    );
    write(t, "padded", padded.as_bytes());
    write(t, "opaque", b"xai-opaque-access-token-0123456789");
    write(t, "four-parts", b"a.eyJ0aWVyIjoxfQ.c.d");
    write(t, "array-payload", b"a.WzFd.c");
}

fn base64_padded(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE.encode(b)
}

fn models() {
    let t = "models";
    let list = json!({"object": "list", "data": [
        {"id": "grok-4.3", "created": 1_750_000_000u64, "object": "model", "owned_by": "xai"},
        {"id": "grok-4.6", "created": 1_760_000_000u64, "object": "model", "owned_by": "xai"},
        {"id": "grok-build-0.1", "object": "model", "owned_by": "xai"},
        {"id": "grok-4.20-0309-reasoning", "object": "model", "owned_by": "xai"},
        {"id": "grok-4.20-0309-non-reasoning", "object": "model", "owned_by": "xai"},
        {"id": "grok-4.20-multi-agent-0309", "object": "model", "owned_by": "xai"},
        {"id": "grok-imagine-image", "object": "model", "owned_by": "xai"},
        {"id": "grok-imagine-image-2.0", "object": "model", "owned_by": "xai"},
        {"id": "grok-imagine-video", "created": "1760000000", "object": "model", "owned_by": "xai"}
    ]});
    write(t, "xai.json", &pretty(&list));
    write(t, "prefixed.json", br#"{"data":[{"id":"xai-grok/grok-4.3"},{"id":"xai-grok/grok-imagine-image"},{"id":"GROK-Imagine-Video"}]}"#);
    write(t, "empty.json", br#"{"object":"list","data":[]}"#);
    write(t, "no-id.json", br#"{"data":[{"created":1}]}"#);
    write(t, "cache.json", &serde_json::to_vec(&json!({
        "fetched_at_ms": 1_700_000_000_000u64, "tier": 3,
        "models": [{"id": "xai-grok/grok-4.3", "lane": "chat-completions", "owned_by": "xai", "created": 1}],
        "media_models": []
    })).unwrap());
}

fn chat_completions_reply() {
    let t = "chat_completions_reply";
    write(
        t,
        "xai.json",
        &pretty(&json!({
            "id": "chatcmpl-7c1f", "object": "chat.completion", "created": 1_700_000_000u64,
            "model": "grok-4.3",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help?", "refusal": null}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20,
                      "prompt_tokens_details": {"cached_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 120}},
            "system_fingerprint": "fp_1a2b3c"
        })),
    );
    write(t, "null-content.json", br#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[]},"finish_reason":"length"}],"usage":{"prompt_tokens":"5","completion_tokens":7.0}}"#);
    write(t, "no-choices.json", br#"{"choices":[]}"#);
    write(t, "error.json", br#"{"error":{"message":"The model grok-9 does not exist","type":"invalid_request_error","code":"model_not_found"}}"#);
}

fn responses_reply() {
    let t = "responses_reply";
    write(
        t,
        "xai.json",
        &pretty(&json!({
            "id": "resp_01", "object": "response", "created_at": 1_700_000_000u64, "status": "completed",
            "model": "grok-4.20-multi-agent-0309",
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}]},
                {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": "Four agents agree: ", "annotations": []},
                             {"type": "output_text", "text": "42."}]}
            ],
            "usage": {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42,
                      "output_tokens_details": {"reasoning_tokens": 500}}
        })),
    );
    write(t, "incomplete.json", br#"{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[{"type":"message","content":[{"type":"output_text","text":"cut"}]}]}"#);
    write(t, "failed.json", br#"{"status":"failed","error":{"code":"rate_limit_exceeded","message":"Too many agents"},"output":[]}"#);
    write(t, "no-output.json", br#"{"status":"completed"}"#);
}

const CHAT_STREAM: &str = concat!(
    ": keep-alive\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"grok-4.3\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hmm\"}}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\u00e9\"},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11,\"completion_tokens_details\":{\"reasoning_tokens\":30}}}\n\n",
    "data: [DONE]\n\n",
);

const RESPONSES_STREAM: &str = concat!(
    "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\"}}\n\n",
    "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"type\":\"reasoning\"}}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hello\"}\n\n",
    "event: response.output_text.delta\r\ndata: {\"type\":\"response.output_text.delta\",\r\ndata: \"delta\":\", world\"}\r\n\r\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"usage\":{\"input_tokens\":5,\"output_tokens\":3,\"total_tokens\":8,\"output_tokens_details\":{\"reasoning_tokens\":40}}}}\n\n",
);

/// OpenAI-style tool calls: id and name first, the arguments over several chunks, two
/// calls interleaved by index.
const CHAT_TOOLS_SPLIT: &str = concat!(
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"weather\",\"arguments\":\"\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"search\",\"arguments\":\"{}\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":17,\"total_tokens\":67}}\n\n",
    "data: [DONE]\n\n",
);

/// xAI-style: reasoning, then each call whole in one chunk (two in one chunk here).
const CHAT_TOOLS_WHOLE: &str = concat!(
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"First\",\"role\":\"assistant\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"call_1\",\"function\":{\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"},\"index\":0,\"type\":\"function\"},{\"id\":\"call_2\",\"function\":{\"name\":\"weather\",\"arguments\":\"{}\"},\"index\":1,\"type\":\"function\"}]}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":291,\"completion_tokens\":26,\"total_tokens\":513,\"prompt_tokens_details\":{\"cached_tokens\":290},\"completion_tokens_details\":{\"reasoning_tokens\":196}}}\n\n",
    "data: [DONE]\n\n",
);

/// A function call streamed as deltas (repeated by its `.done` events), then one whose
/// arguments come only in `output_item.done`.
const RESPONSES_TOOLS: &str = concat!(
    "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"type\":\"function_call\",\"id\":\"fc_a\",\"call_id\":\"call_a\",\"name\":\"weather\",\"arguments\":\"\"}}\n\n",
    "data: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"fc_a\",\"output_index\":0,\"delta\":\"{\\\"city\\\":\"}\n\n",
    "data: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"fc_a\",\"output_index\":0,\"delta\":\"\\\"Paris\\\"}\"}\n\n",
    "data: {\"type\":\"response.function_call_arguments.done\",\"item_id\":\"fc_a\",\"output_index\":0,\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}\n\n",
    "data: {\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"type\":\"function_call\",\"id\":\"fc_a\",\"call_id\":\"call_a\",\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}\n\n",
    "data: {\"type\":\"response.output_item.done\",\"output_index\":1,\"item\":{\"type\":\"function_call\",\"id\":\"fc_b\",\"call_id\":\"call_b\",\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}}\n\n",
    "data: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"usage\":{\"input_tokens\":20,\"output_tokens\":9,\"total_tokens\":29}}}\n\n",
);

fn streams() {
    let chat_variants: Vec<(&str, String)> = vec![
        ("chat", CHAT_STREAM.to_owned()),
        ("chat-crlf", CHAT_STREAM.replace('\n', "\r\n")),
        ("chat-cr", CHAT_STREAM.replace('\n', "\r")),
        ("chat-cut", CHAT_STREAM[..CHAT_STREAM.len() / 2].to_owned()),
        ("chat-error", "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"slow down\"}}\n\n".to_owned()),
        ("chat-no-newline", "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]".to_owned()),
        ("chat-garbage", "data: {not json\n\n".to_owned()),
        ("chat-tools-split", CHAT_TOOLS_SPLIT.to_owned()),
        ("chat-tools-whole", CHAT_TOOLS_WHOLE.to_owned()),
    ];
    let responses_variants: Vec<(&str, String)> = vec![
        ("responses", RESPONSES_STREAM.to_owned()),
        ("responses-incomplete", "event: response.output_text.delta\ndata: {\"delta\":\"partial\"}\n\nevent: response.incomplete\ndata: {\"response\":{\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":\"max_output_tokens\"}}}\n\n".to_owned()),
        ("responses-failed", "data: {\"type\":\"response.failed\",\"response\":{\"error\":{\"code\":\"server_error\",\"message\":\"boom\"}}}\n\n".to_owned()),
        ("responses-error", "event: error\ndata: {\"type\":\"error\",\"code\":\"invalid_prompt\",\"message\":\"bad input\"}\n\n".to_owned()),
        ("responses-cut", RESPONSES_STREAM[..RESPONSES_STREAM.len() - 30].to_owned()),
        ("responses-tools", RESPONSES_TOOLS.to_owned()),
    ];
    for (name, body) in chat_variants.iter().chain(&responses_variants) {
        let b = body.as_bytes();
        write("sse_framing", name, &with_prefix(&[0], b));
        write(
            "sse_framing",
            &format!("{name}-cut"),
            &with_prefix(&[4, 7, 1, 30, 0], b),
        );
    }
    // chat_stream: bit 5 of the first byte picks the lane, its low 5 bits count cut points.
    for (name, body) in &chat_variants {
        write("chat_stream", name, &with_prefix(&[0x00], body.as_bytes()));
        write(
            "chat_stream",
            &format!("{name}-cut"),
            &with_prefix(&[0x03, 13, 1, 40], body.as_bytes()),
        );
    }
    for (name, body) in &responses_variants {
        write("chat_stream", name, &with_prefix(&[0x20], body.as_bytes()));
        write(
            "chat_stream",
            &format!("{name}-cut"),
            &with_prefix(&[0x23, 13, 1, 40], body.as_bytes()),
        );
    }
}

/// stream_assembly reads its script with `arbitrary::Unstructured`: any bytes are a
/// script, so the seeds are pseudo-random bytes (xorshift, fixed seeds) whose first byte
/// picks the lane (odd: Responses), a few per lane and of different lengths.
fn stream_assembly() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 24) as u8
    };
    for (name, lane, len) in [
        ("chat-small", 0u8, 48),
        ("chat-medium", 0, 160),
        ("chat-large", 0, 400),
        ("responses-small", 1, 48),
        ("responses-medium", 1, 160),
        ("responses-large", 1, 400),
    ] {
        let mut bytes: Vec<u8> = (0..len).map(|_| next()).collect();
        bytes[0] = (bytes[0] & !1) | lane;
        write("stream_assembly", name, &bytes);
    }
}

fn api_error() {
    let t = "api_error";
    // selector, Retry-After line, secret line, body.
    let cases: [(&str, u8, &str, &str, String); 11] = [
        ("rate-limited", S429, "120", "sk-test-9d8c7b6a5f4e", r#"{"error":"Too many requests, try again later"}"#.into()),
        ("rate-limited-date", S429, "Wed, 21 Oct 2015 07:28:00 GMT", "", r#"{"code":"rate_limited","error":"slow"}"#.into()),
        ("bad-credentials", S403, "", OLD_ACCESS_TOKEN, r#"{"code":"unauthenticated:bad-credentials","error":"Bearer token invalid"}"#.into()),
        ("tier", S403, "", "", r#"{"code":"permission-denied","error":"The caller does not have permission to execute the specified operation"}"#.into()),
        ("spending-limit", S403, "", "", r#"{"code":"personal-team-blocked:spending-limit","error":"Your team has reached its monthly spending limit"}"#.into()),
        ("credits", S402, "", "", "You have run out of credits".into()),
        ("echo-token", S401, "", OLD_ACCESS_TOKEN, format!(r#"{{"error":{{"message":"Incorrect API key provided: {OLD_ACCESS_TOKEN}","type":"invalid_request_error"}}}}"#)),
        ("html", S500, "", "", "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>".into()),
        ("model-not-found", S404, "", "", r#"{"error":{"message":"The model grok-9 does not exist or your team does not have access to it.","type":"invalid_request_error","code":"model_not_found"}}"#.into()),
        ("timeout", S408, "  3600  ", "", "request timeout\r\n\x1b[2J".into()),
        ("bad-request", S400, "soon", "", r#"{"detail":"messages: field required"}"#.into()),
    ];
    for (name, sel, retry, secret, body) in cases {
        write(
            t,
            name,
            format!("{}{retry}\n{secret}\n{body}", sel as char).as_bytes(),
        );
    }
    write(t, "redirect", &with_prefix(&[S301], b"\n\n"));
    write(t, "oauth-200-error", &with_prefix(&[S200], b"\n\n{\"error\":\"invalid_grant\",\"error_description\":\"Refresh token rt-Zq7UO2x1Lk9c was revoked\"}"));
}

fn secret_file() {
    let t = "secret_file";
    let cipher = XChaCha20Poly1305::new(&FUZZ_MASTER_KEY.into());
    let creds = serde_json::to_vec(&json!({
        "access_token": access_token(json!(3)), "refresh_token": OLD_REFRESH_TOKEN,
        "expires_at_ms": 1_700_021_600_000u64, "obtained_at_ms": 1_700_000_000_000u64,
        "tier": 3, "scope": "openid offline_access", "generation": 2
    }))
    .unwrap();
    for (name, value) in [("credentials", &creds[..]), ("empty", b""), ("short", b"x")] {
        let sealed = file_format::seal(&cipher, "tenant-1", "credentials", value).unwrap();
        write(t, name, &sealed);
    }
    let mut header_only = b"PHSC\x01".to_vec();
    header_only.extend_from_slice(&[0; 24 + 16]);
    write(t, "zero-nonce-and-tag", &header_only);
    write(
        t,
        "version-2",
        b"PHSC\x02not a real file at all, but long enough for the overhead",
    );
    write(t, "truncated", b"PHS");
}

fn main() {
    discovery();
    device_authorization();
    token_response();
    jwt_claims();
    models();
    chat_completions_reply();
    responses_reply();
    streams();
    stream_assembly();
    api_error();
    secret_file();
    println!("corpus written");
}
