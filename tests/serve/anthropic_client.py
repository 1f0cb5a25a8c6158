"""The official Anthropic Python SDK (`anthropic`) as a client of `provider-host serve`'s
Messages API.

Run by tests/all/anthropic.rs, one step per call: `python3 anthropic_client.py STEP` with
ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY set (sent as `x-api-key`). Prints one JSON object;
any assertion failure exits non-zero with its message.
"""

import json
import sys

import anthropic

client = anthropic.Anthropic(max_retries=0, timeout=60)
MODEL = "xai-grok/grok-4.3"
# A Claude name the operator aliased to the rail's reasoning model.
THINKER = "claude-sonnet-4-5"
TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather of a city",
        "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
    }
]
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def text():
    r = client.messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hello python"}]
    )
    assert r.type == "message" and r.role == "assistant", r
    assert [b.type for b in r.content] == ["text"], r
    assert r.content[0].text == "Echo: hello python", r
    assert r.stop_reason == "end_turn", r
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0, r.usage
    return {"text": r.content[0].text}


def stream():
    kinds = []
    with client.messages.stream(
        model=MODEL,
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "stream for python"}],
    ) as s:
        for ev in s:
            kinds.append(ev.type)
        message = s.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop", kinds
    assert "content_block_delta" in kinds, kinds
    assert message.content[0].text == "Echo: stream for python", message
    assert message.stop_reason == "end_turn", message
    assert message.usage.output_tokens > 0, message.usage
    return {"events": len(kinds)}


def ask(messages, streamed):
    if not streamed:
        return client.messages.create(model=MODEL, max_tokens=256, messages=messages, tools=TOOLS)
    with client.messages.stream(model=MODEL, max_tokens=256, messages=messages, tools=TOOLS) as s:
        return s.get_final_message()


def tools():
    for streamed in (False, True):
        messages = [{"role": "user", "content": "Weather in Oslo?"}]
        r = ask(messages, streamed)
        assert r.stop_reason == "tool_use", r
        calls = [b for b in r.content if b.type == "tool_use"]
        assert len(calls) == 1 and calls[0].name == "get_weather", r
        assert calls[0].input == {"text": "Weather in Oslo?"}, calls[0]
        messages.append({"role": "assistant", "content": [b.model_dump() for b in r.content]})
        messages.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "rain"}],
            }
        )
        again = ask(messages, streamed)
        assert again.content[0].text == "Tool results: rain", again
    return {"tools": True}


def thinking():
    messages = [{"role": "user", "content": "think in python"}]
    params = dict(model=THINKER, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 8000})
    with client.messages.stream(messages=messages, **params) as s:
        message = s.get_final_message()
    assert [b.type for b in message.content] == ["thinking", "text"], message
    assert message.content[0].thinking and message.content[0].signature, message
    messages.append({"role": "assistant", "content": [b.model_dump() for b in message.content]})
    messages.append({"role": "user", "content": "continue"})
    r = client.messages.create(messages=messages, **params)
    # The reference model says when reasoning came back to it.
    assert r.content[-1].text == "Echo: continue [reasoning returned]", r
    return {"thinking": True}


def images():
    r = client.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "text", "text": "describe"},
                ],
            }
        ],
    )
    assert r.content[0].text == "Echo: describe [image data:image/png]", r
    return {"text": r.content[0].text}


def count_tokens():
    messages = [{"role": "user", "content": "count me"}]
    bare = client.messages.count_tokens(model=MODEL, messages=messages)
    full = client.messages.count_tokens(
        model=MODEL, messages=messages, system="A long system prompt for counting.", tools=TOOLS
    )
    assert 0 < bare.input_tokens < full.input_tokens, (bare, full)
    return {"bare": bare.input_tokens, "full": full.input_tokens}


def expect(error, call):
    try:
        call()
    except error as e:
        body = e.body
        assert body["type"] == "error" and body["error"]["type"], body
        return e
    raise AssertionError(f"expected {error.__name__}")


def bad_key():
    bad = anthropic.Anthropic(api_key="phk_0000000000000000_" + "0" * 64, max_retries=0)
    e = expect(
        anthropic.AuthenticationError,
        lambda: bad.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]),
    )
    assert e.body["error"]["type"] == "authentication_error", e.body
    return {"status": e.status_code}


def invalid():
    e = expect(
        anthropic.BadRequestError,
        lambda: client.messages.create(
            model=MODEL,
            max_tokens=8,
            messages=[{"role": "user", "content": [{"type": "document", "source": {"type": "text", "data": "x", "media_type": "text/plain"}}]}],
        ),
    )
    assert e.body["error"]["type"] == "invalid_request_error" and "document" in e.body["error"]["message"], e.body
    return {"status": e.status_code}


def rate_limited():
    e = expect(
        anthropic.RateLimitError,
        lambda: client.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]),
    )
    assert e.response.headers["retry-after"] == "7", e.response.headers
    assert e.body["error"]["type"] == "rate_limit_error", e.body
    return {"status": e.status_code}


STEPS = {f.__name__: f for f in (text, stream, tools, thinking, images, count_tokens, bad_key, invalid, rate_limited)}

if __name__ == "__main__":
    print(json.dumps(STEPS[sys.argv[1]]()))
