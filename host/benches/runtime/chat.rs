//! c) a non-streaming chat turn through the plugin against the same request sent directly
//! by the host with hyper to the same reference API (1 KiB reply), and the extra latency of
//! the first streamed chunk.
//!
//! The host sends the plugin's `wasi:http` requests over a keep-alive pool, so the direct
//! baseline keeps its connection alive too; a direct client that opens a new connection
//! per request (what wasi-http's default sender does) is shown as well.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use provider_reference::RecordedRequest;
use provider_runtime::bindings::types::{ChatRequest, Message, Role};

use crate::native::Native;
use crate::support::{REPLY_BYTES, Report, Row, Samples, World, dur, heading, ratio};

pub async fn run(world: &World, native: &mut Native, iterations: usize, report: &mut Report) {
    heading(&format!(
        "c) chat through the plugin vs the same request sent directly with hyper ({REPLY_BYTES} B reply)"
    ));
    let mut session = world.connect("bench-chat").await;
    let request = ChatRequest::new(
        "xai-grok/grok-4.3",
        vec![Message::text(
            Role::User,
            "Say something long enough to fill the reply.",
        )],
    );

    // The exact requests the plugin sends, to replay them directly.
    world.api.clear_requests();
    let reply = session.chat(&request).await.expect("chat");
    assert_eq!(reply.content.len(), REPLY_BYTES, "reply size");
    let whole = last_request(world, "/v1/chat/completions");
    let stream = session
        .open_chat_stream(&request)
        .await
        .expect("open stream");
    while session.next_chunk(&stream).await.expect("chunk").is_some() {}
    session.close_chat_stream(stream).await.expect("close");
    let streamed = last_request(world, "/v1/chat/completions");
    assert!(String::from_utf8_lossy(&streamed.body).contains("\"stream\":true"));
    let addr = world.api.addr();

    // The reply's bytes, for the native run of the same logic.
    let reply_bytes = send(&mut connect(addr).await, &whole)
        .await
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let core_request = grok_provider_core::ChatRequest {
        model: request.model.clone(),
        messages: vec![grok_provider_core::Message::text(
            grok_provider_core::Role::User,
            request.messages[0].text_content(),
        )],
        ..Default::default()
    };

    let mut kept = connect(addr).await;
    for _ in 0..50 {
        session.chat(&request).await.expect("chat");
        direct_whole(&mut connect(addr).await, &whole).await;
        direct_whole(&mut kept, &whole).await;
    }

    let mut plugin = Samples::with_capacity(iterations);
    let mut direct = Samples::with_capacity(iterations);
    let mut direct_kept = Samples::with_capacity(iterations);
    let mut logic = Samples::with_capacity(iterations);
    for _ in 0..iterations {
        let reply =
            logic.time(|| native.chat(&world.settings, "bench-chat", &core_request, &reply_bytes));
        assert_eq!(reply.expect("native chat").content.len(), REPLY_BYTES);

        let t = Instant::now();
        let reply = session.chat(&request).await.expect("chat");
        plugin.push(t.elapsed());
        assert_eq!(reply.content.len(), REPLY_BYTES);

        let t = Instant::now();
        let content = direct_whole(&mut connect(addr).await, &whole).await;
        direct.push(t.elapsed());
        assert_eq!(content.len(), REPLY_BYTES);

        let t = Instant::now();
        direct_whole(&mut kept, &whole).await;
        direct_kept.push(t.elapsed());
    }
    println!(
        "   plugin chat()                     : {}",
        plugin.summary()
    );
    println!(
        "   direct hyper, new connection      : {}",
        direct.summary()
    );
    println!(
        "   direct hyper, kept-alive connection: {}",
        direct_kept.summary()
    );
    println!(
        "   the plugin's logic natively, reply in memory (credentials read, request built, reply parsed): {}",
        logic.summary()
    );
    let r = ratio(plugin.p50(), direct_kept.p50());
    let r_new = ratio(plugin.p50(), direct.p50());
    println!(
        "   ratio (p50): {r:.2}× vs kept-alive (target ≤ 1.10×), {r_new:.2}× vs a new connection per request"
    );

    // First streamed chunk.
    let mut plugin_first = Samples::with_capacity(iterations);
    let mut direct_first = Samples::with_capacity(iterations);
    for i in 0..iterations + 50 {
        let t = Instant::now();
        let stream = session.open_chat_stream(&request).await.expect("open");
        loop {
            let chunk = session
                .next_chunk(&stream)
                .await
                .expect("chunk")
                .expect("a chunk");
            if matches!(&chunk, provider_runtime::bindings::types::ChatChunk::Text(t) if !t.is_empty())
            {
                break;
            }
        }
        let first = t.elapsed();
        while session.next_chunk(&stream).await.expect("chunk").is_some() {}
        session.close_chat_stream(stream).await.expect("close");

        let t = Instant::now();
        let mut body = send(&mut kept, &streamed).await;
        first_delta(&mut body).await;
        let direct = t.elapsed();
        while body.frame().await.is_some() {}
        if i >= 50 {
            plugin_first.push(first);
            direct_first.push(direct);
        }
    }
    let extra = plugin_first.p50().saturating_sub(direct_first.p50());
    println!("   first chunk, plugin : {}", plugin_first.summary());
    println!("   first chunk, direct : {}", direct_first.summary());
    println!("   extra latency (p50): {} (target ≤ 0.5 ms)", dur(extra));

    report.add(Row {
        bench: "c) non-streaming chat, 1 KiB reply (p50)",
        figure: dur(plugin.p50()),
        baseline: format!(
            "{} direct hyper, kept-alive connection ({} on a new connection: {r_new:.2}×)",
            dur(direct_kept.p50()),
            dur(direct.p50())
        ),
        ratio: format!("{r:.2}×"),
        target: "≤ 1.10×",
        met: Some(r <= 1.10),
    });
    report.add(Row {
        bench: "c′) first streamed chunk (p50)",
        figure: dur(plugin_first.p50()),
        baseline: format!(
            "{} (direct hyper, kept-alive connection)",
            dur(direct_first.p50())
        ),
        ratio: format!("+{}", dur(extra)),
        target: "≤ +0.5 ms",
        met: Some(extra <= Duration::from_micros(500)),
    });
    drop(session);
}

fn last_request(world: &World, path: &str) -> RecordedRequest {
    world
        .api
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == path)
        .expect("the plugin's request")
}

async fn connect(addr: std::net::SocketAddr) -> SendRequest<Full<Bytes>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    recorded: &RecordedRequest,
) -> hyper::body::Incoming {
    let mut builder = hyper::Request::builder()
        .method(recorded.method.as_str())
        .uri(&recorded.path);
    for (name, value) in &recorded.headers {
        builder = builder.header(name, value);
    }
    let req = builder
        .body(Full::new(recorded.body.clone()))
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    resp.into_body()
}

/// Send the whole-reply request and parse the reply's text, as a host would.
async fn direct_whole(sender: &mut SendRequest<Full<Bytes>>, recorded: &RecordedRequest) -> String {
    let body = send(sender, recorded)
        .await
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    v["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_string()
}

/// Read server-sent events until one carries a non-empty text delta.
async fn first_delta(body: &mut hyper::body::Incoming) {
    let mut buf = Vec::new();
    loop {
        let frame = body.frame().await.expect("a frame").expect("frame");
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            for line in text.lines() {
                let Some(json) = line.strip_prefix("data: ") else {
                    continue;
                };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(json)
                    && v["choices"][0]["delta"]["content"]
                        .as_str()
                        .is_some_and(|s| !s.is_empty())
                {
                    return;
                }
            }
        }
    }
}
