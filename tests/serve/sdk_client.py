"""The official OpenAI Python SDK as a client of `provider-host serve`.

Run by tests/all/serve.rs, one step per call: `python3 sdk_client.py STEP` with
OPENAI_BASE_URL and OPENAI_API_KEY set. Prints one JSON object describing what the SDK
saw; any assertion failure exits non-zero with its message.
"""

import json
import os
import sys

import openai

client = openai.OpenAI(max_retries=0, timeout=60)
MODEL = os.environ.get("SERVE_MODEL", "xai-grok/grok-4.3")
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
        },
    }
]


def models():
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids, ids
    return {"models": ids}


def model_ids():
    """The slash-free ids: listed, retrievable, usable; an unknown model is NotFoundError."""
    ids = [m.id for m in client.models.list()]
    # The default route's first model (listed first).
    listed = next(i for i in ids if "/" in i)
    slash_free = listed.replace("/", "--", 1)
    assert ids.index(slash_free) == ids.index(listed) + 1, ids
    for asked in (listed, slash_free, listed.split("/", 1)[1]):
        m = client.models.retrieve(asked)
        assert m.id == asked and m.object == "model" and m.owned_by, m
    r = client.chat.completions.create(
        model=slash_free, messages=[{"role": "user", "content": "no slash"}]
    )
    assert r.choices[0].message.content == "Echo: no slash", r
    r = client.responses.create(model=slash_free, input="no slash either")
    assert r.output_text == "Echo: no slash either", r
    for call in (
        lambda: client.models.retrieve("xai-grok--no-such-model"),
        lambda: client.chat.completions.create(
            model="xai-grok--no-such-model", messages=[{"role": "user", "content": "hi"}]
        ),
    ):
        try:
            call()
        except openai.NotFoundError as e:
            assert e.status_code == 404 and e.body["code"] == "model_not_found", e.body
            assert e.body["type"] == "invalid_request_error", e.body
        else:
            raise AssertionError("expected NotFoundError")
    return {"models": len(ids)}


def chat():
    r = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hello sdk"}]
    )
    assert r.object == "chat.completion", r
    assert r.choices[0].message.content == "Echo: hello sdk", r
    assert r.choices[0].finish_reason == "stop", r
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, r.usage
    return {"content": r.choices[0].message.content}


def stream():
    text, usage, finish = "", None, None
    chunks = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "stream for the sdk, long enough to be cut"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for c in chunks:
        if c.usage is not None:
            usage = c.usage
        for ch in c.choices:
            text += ch.delta.content or ""
            finish = ch.finish_reason or finish
    assert text == "Echo: stream for the sdk, long enough to be cut", text
    assert finish == "stop", finish
    assert usage is not None and usage.total_tokens > 0, usage
    return {"content": text}


def tools():
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather", call
    assert json.loads(call.function.arguments) == {"text": "What is the weather in Paris?"}, call
    # The same turn streamed: the call assembles from the chunks.
    name, args = None, ""
    for c in client.chat.completions.create(
        model=MODEL, messages=messages, tools=TOOLS, stream=True
    ):
        for ch in c.choices:
            for tc in ch.delta.tool_calls or []:
                name = tc.function.name or name
                args += tc.function.arguments or ""
    assert name == "get_weather" and json.loads(args) == json.loads(call.function.arguments), (name, args)
    messages += [
        {"role": "assistant", "content": choice.message.content, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    r = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
    assert r.choices[0].message.content == "Tool results: sunny", r
    return {"tool": call.function.name}


RESPONSE_TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
    }
]


def responses():
    r = client.responses.create(model=MODEL, input="hello responses")
    assert r.status == "completed", r
    assert r.output_text == "Echo: hello responses", r
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens, r.usage
    # Streamed: text deltas, then response.completed with the same text.
    text, completed = "", None
    for ev in client.responses.create(model=MODEL, input="stream responses", stream=True):
        if ev.type == "response.output_text.delta":
            text += ev.delta
        elif ev.type == "response.completed":
            completed = ev.response
    assert text == "Echo: stream responses", text
    assert completed is not None and completed.output_text == text, completed
    # A tool round trip.
    question = "What is the weather in Paris?"
    r = client.responses.create(model=MODEL, input=question, tools=RESPONSE_TOOLS)
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather", r.output
    assert json.loads(calls[0].arguments) == {"text": question}, calls[0]
    args, name = "", None
    for ev in client.responses.create(model=MODEL, input=question, tools=RESPONSE_TOOLS, stream=True):
        if ev.type == "response.output_item.added" and ev.item.type == "function_call":
            name = ev.item.name
        elif ev.type == "response.function_call_arguments.delta":
            args += ev.delta
    assert name == "get_weather" and json.loads(args) == {"text": question}, (name, args)
    follow = [
        {"role": "user", "content": question},
        {"type": "function_call", "call_id": calls[0].call_id, "name": calls[0].name, "arguments": calls[0].arguments},
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"},
    ]
    r = client.responses.create(model=MODEL, input=follow, tools=RESPONSE_TOOLS)
    assert r.output_text == "Tool results: sunny", r
    return {"responses": True}


def expect(exc_type, **kwargs):
    try:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], **kwargs
        )
    except exc_type as e:
        return e
    raise AssertionError(f"expected {exc_type.__name__}")


def rate_limited():
    e = expect(openai.RateLimitError)
    assert e.status_code == 429, e
    assert e.response.headers.get("retry-after") == "7", dict(e.response.headers)
    assert e.body["code"] == "rate_limited", e.body
    return {"retry_after": e.response.headers.get("retry-after")}


def tier_denied():
    e = expect(openai.PermissionDeniedError)
    assert e.status_code == 403 and e.body["code"] == "tier_denied", e.body
    return {"code": e.body["code"]}


def bad_key():
    bad = openai.OpenAI(api_key="phk_0000000000000000_" + "0" * 64, max_retries=0)
    try:
        bad.models.list()
    except openai.AuthenticationError as e:
        assert e.status_code == 401 and e.body["code"] == "invalid_api_key", e.body
        return {"code": e.body["code"]}
    raise AssertionError("expected AuthenticationError")


def invalid():
    e = expect(openai.BadRequestError, tool_choice="required")
    assert e.status_code == 400, e
    return {"message": e.body["message"]}


if __name__ == "__main__":
    print(json.dumps(globals()[sys.argv[1]]()))
