//! The Responses dialect's tests: requests mapped, replies and event streams written.

use provider_runtime::bindings::types::*;
use serde_json::{Value, json};

use super::reply::*;
use super::request::*;

fn events(chunks: &[ChatChunk]) -> Vec<Value> {
    let mut w = EventWriter::new("resp_1".into(), 0, "m".into());
    let mut out = w.start();
    for c in chunks {
        out.extend(w.chunk(c));
    }
    out.extend(w.finish());
    out.into_iter().map(|(_, v)| v).collect()
}

/// Reasoning, then text, then a call: each item announced at its own index before its
/// deltas, with one id from `added` to `completed`, as OpenAI's Responses API streams.
#[test]
fn a_stream_with_reasoning_follows_openais_event_order() {
    let evs = events(&[
        ChatChunk::Reasoning("think".into()),
        ChatChunk::Reasoning("ing".into()),
        ChatChunk::ReasoningItem(ReasoningItem {
            lane: Lane::Responses,
            data: r#"{"type":"reasoning","id":"up","encrypted_content":"enc_1","summary":[]}"#
                .into(),
        }),
        ChatChunk::Reasoning("\n\n".into()),
        ChatChunk::Text("hi".into()),
        ChatChunk::ToolCallStart(ToolCallStart {
            index: 0,
            id: "call".into(),
            name: "f".into(),
        }),
        ChatChunk::ToolCallArguments(ToolCallDelta {
            index: 0,
            arguments: "{}".into(),
        }),
        ChatChunk::Finish(FinishReason::ToolCalls),
    ]);
    let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    // One id per output index, in every event that names the item.
    for e in &evs {
        let (Some(index), Some(id)) = (
            e["output_index"].as_u64(),
            e["item_id"].as_str().or(e["item"]["id"].as_str()),
        ) else {
            continue;
        };
        let kind = ["rs", "msg", "fc"][index as usize];
        assert_eq!(id, format!("{kind}_1_{index}"), "{e}");
    }
    let added = &evs[2]["item"];
    assert_eq!(added["status"], "in_progress");
    assert_eq!(added["summary"], json!([]));
    let done = &evs[8]["item"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["encrypted_content"], "enc_1");
    assert_eq!(done["summary"][0]["text"], "thinking");
    let completed = &evs.last().unwrap()["response"];
    assert_eq!(completed["output"].as_array().unwrap().len(), 3);
    assert_eq!(completed["output"][0], *done);
    assert_eq!(completed["output"][2]["arguments"], "{}");
    let seqs: Vec<u64> = evs
        .iter()
        .map(|e| e["sequence_number"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
}

#[test]
fn a_whole_reply_of_a_chat_lane_reasoning_model_has_its_reasoning_item() {
    let reply = ChatReply {
        content: "answer".into(),
        tool_calls: vec![],
        reasoning: Some("because".into()),
        reasoning_items: vec![],
        citations: vec![],
        model: "m".into(),
        route: "r".into(),
        lane: Lane::ChatCompletions,
        usage: None,
        finish_reason: None,
    };
    let v = whole("resp_1", 0, "m", &reply);
    assert_eq!(v["output"][0]["type"], "reasoning");
    assert_eq!(v["output"][0]["status"], "completed");
    assert_eq!(v["output"][0]["summary"][0]["text"], "because");
    assert_eq!(v["output"][1]["id"], "msg_1_1");
}

fn request(body: Value) -> Result<ChatRequest, String> {
    parse(body.to_string().as_bytes()).map(|(_, _, r)| r)
}

#[test]
fn optional_fields_are_forwarded_accepted_or_refused_by_name() {
    let r = request(json!({"model": "p--m", "input": "x", "store": true, "metadata": {"a": "b"},
        "include": ["reasoning.encrypted_content"], "truncation": "disabled", "service_tier": "auto",
        "user": "u", "parallel_tool_calls": true, "reasoning": {"effort": "low", "summary": "auto"}}))
    .unwrap();
    assert_eq!(r.model, "p/m");
    assert_eq!(r.extra_body.as_deref(), Some(r#"{"user":"u"}"#));
    assert!(r.lane.is_none());
    for (body, named) in [
        (
            json!({"model": "m", "input": "x", "previous_response_id": "r"}),
            "previous_response_id",
        ),
        (
            json!({"model": "m", "input": "x", "background": true}),
            "background",
        ),
        (
            json!({"model": "m", "input": "x", "top_logprobs": 3}),
            "top_logprobs",
        ),
        (
            json!({"model": "m", "input": "x", "text": {"verbosity": "low"}}),
            "verbosity",
        ),
        (
            json!({"model": "m", "input": [{"type": "item_reference", "id": "i"}]}),
            "item_reference",
        ),
        (
            json!({"model": "m", "input": "x", "max_tool_calls": 2}),
            "max_tool_calls",
        ),
    ] {
        let e = request(body.clone()).unwrap_err();
        assert!(e.contains(named), "{body}: {e}");
    }
}

#[test]
fn server_side_tools_go_to_the_responses_lane() {
    let r = request(json!({"model": "m", "input": "x", "tools": [
        {"type": "web_search"}, {"type": "function", "name": "f"}]}))
    .unwrap();
    assert!(matches!(r.lane, Some(Lane::Responses)));
    assert_eq!(r.tools.len(), 1);
    assert_eq!(
        r.extra_body.as_deref(),
        Some(r#"{"tools":[{"type":"web_search"}]}"#)
    );
}

#[test]
fn only_encrypted_reasoning_is_passed_back() {
    let r = request(json!({"model": "m", "input": [
        {"role": "user", "content": "q"},
        {"type": "reasoning", "id": "rs_1_0", "status": "completed", "summary": []},
        {"type": "reasoning", "id": "rs_2_0", "status": "completed", "summary": [], "encrypted_content": "e"},
        {"role": "assistant", "content": "a"},
    ]}))
    .unwrap();
    let passed: Vec<&ReasoningItem> = r.messages.iter().flat_map(|m| &m.reasoning).collect();
    assert_eq!(passed.len(), 1);
    let v: Value = serde_json::from_str(&passed[0].data).unwrap();
    assert_eq!(
        v,
        json!({"type": "reasoning", "id": "rs_2_0", "summary": [], "encrypted_content": "e"})
    );
}
