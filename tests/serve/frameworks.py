"""Python agent frameworks as clients of `provider-host serve` (tests/all/frameworks.rs).

`python3 frameworks.py FRAMEWORK STEP` with OPENAI_BASE_URL and OPENAI_API_KEY set.
FRAMEWORK: agents (openai-agents, Responses), agents-chat (openai-agents on chat
completions), langchain (langchain-openai's ChatOpenAI). Prints one JSON object; a failed
assertion exits non-zero.
"""

import asyncio
import base64
import json
import os
import sys

import openai

MODEL = os.environ.get("SERVE_MODEL", "xai-grok--grok-4.3")
REASONING_MODEL = os.environ.get("SERVE_REASONING_MODEL", "xai-grok--grok-4.6")
QUESTION = "What is the weather in Paris?"
# A 1x1 PNG.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


# ---------------------------------------------------------------- openai-agents
def agents_steps(api):
    from pydantic import BaseModel

    import agents
    from agents import Agent, ModelSettings, Runner, function_tool

    client = openai.AsyncOpenAI(max_retries=0)
    agents.set_default_openai_client(client, use_for_tracing=False)
    agents.set_default_openai_api(api)
    agents.set_tracing_disabled(True)
    calls = []

    @function_tool
    def get_weather(text: str) -> str:
        """Weather of a city."""
        calls.append(text)
        return "sunny"

    def agent(model=MODEL, **kw):
        # A model id without a slash: openai-agents reads `a/b` as provider `a`.
        return Agent(name="assistant", model=model, **kw)

    def run(a, text, streamed=False):
        if not streamed:
            return Runner.run_sync(a, text)

        async def go():
            r = Runner.run_streamed(a, text)
            deltas = []
            async for ev in r.stream_events():
                if ev.type == "raw_response_event" and getattr(ev.data, "type", "") in (
                    "response.output_text.delta",
                ):
                    deltas.append(ev.data.delta)
            return r, "".join(deltas)

        r, streamed_text = asyncio.run(go())
        assert streamed_text, "no text deltas"
        return r

    def loop(model, streamed):
        calls.clear()
        r = run(agent(model, tools=[get_weather]), QUESTION, streamed)
        assert calls == [QUESTION], calls
        assert r.final_output == "Tool results: sunny", r.final_output
        kinds = [i.type for i in r.new_items]
        assert "tool_call_item" in kinds and "tool_call_output_item" in kinds, kinds
        return kinds

    class City(BaseModel):
        city: str
        sunny: bool

    def text():
        r = run(agent(), "hello agents")
        assert r.final_output == "Echo: hello agents", r.final_output
        return {"text": r.final_output}

    def stream():
        r = run(agent(), "stream for agents", streamed=True)
        assert r.final_output == "Echo: stream for agents", r.final_output
        return {"text": r.final_output}

    def tools():
        return {"items": loop(MODEL, False)}

    def tools_streamed():
        return {"items": loop(MODEL, True)}

    def structured():
        r = run(agent(output_type=City), "a city")
        assert r.final_output == City(city="Echo: a city", sunny=True), r.final_output
        return {"output": r.final_output.model_dump()}

    def reasoning_tools():
        kinds = loop(REASONING_MODEL, False)
        if api == "responses":
            assert "reasoning_item" in kinds, kinds
        return {"items": kinds}

    def reasoning_tools_streamed():
        kinds = loop(REASONING_MODEL, True)
        if api == "responses":
            assert "reasoning_item" in kinds, kinds
        return {"items": kinds}

    def image():
        url = "data:image/png;base64," + PNG
        if api == "responses":
            content = [{"type": "input_text", "text": "what is this"},
                       {"type": "input_image", "image_url": url, "detail": "auto"}]
        else:
            content = [{"type": "input_text", "text": "what is this"},
                       {"type": "input_image", "image_url": url}]
        r = run(agent(), [{"role": "user", "content": content}])
        assert r.final_output.startswith("Echo: what is this [image"), r.final_output
        return {"text": r.final_output}

    def unknown_model():
        try:
            run(agent("xai-grok--no-such-model"), "hi")
        except openai.NotFoundError as e:
            assert e.status_code == 404 and e.body["code"] == "model_not_found", e.body
            return {"code": e.body["code"]}
        raise AssertionError("expected NotFoundError")

    _ = ModelSettings
    return locals()


# ---------------------------------------------------------------- langchain-openai
def langchain_steps(responses):
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel

    def chat(model=MODEL):
        return ChatOpenAI(model=model, max_retries=0, use_responses_api=responses)

    @tool
    def get_weather(text: str) -> str:
        """Weather of a city."""
        return "sunny"

    def text_of(m):
        return m.text if isinstance(m.text, str) else m.text()

    def loop(model, streamed):
        llm = chat(model).bind_tools([get_weather])
        messages = [HumanMessage(QUESTION)]
        if streamed:
            ai = None
            for c in llm.stream(messages):
                ai = c if ai is None else ai + c
        else:
            ai = llm.invoke(messages)
        assert len(ai.tool_calls) == 1, ai
        call = ai.tool_calls[0]
        assert call["name"] == "get_weather" and call["args"] == {"text": QUESTION}, call
        messages += [ai, ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])]
        if streamed:
            final = None
            for c in llm.stream(messages):
                final = c if final is None else final + c
        else:
            final = llm.invoke(messages)
        assert text_of(final) == "Tool results: sunny", final
        return {"call": call["id"]}

    def text():
        r = chat().invoke("hello langchain")
        assert text_of(r) == "Echo: hello langchain", r
        return {"text": text_of(r)}

    def stream():
        out = "".join(text_of(c) for c in chat().stream("stream for langchain"))
        assert out == "Echo: stream for langchain", out
        return {"text": out}

    def tools():
        return loop(MODEL, False)

    def tools_streamed():
        return loop(MODEL, True)

    class City(BaseModel):
        city: str
        sunny: bool

    def structured():
        r = chat().with_structured_output(City).invoke("a city")
        assert r == City(city="Echo: a city", sunny=True), r
        return {"output": r.model_dump()}

    def reasoning_tools():
        return loop(REASONING_MODEL, False)

    def reasoning_tools_streamed():
        return loop(REASONING_MODEL, True)

    def image():
        r = chat().invoke([HumanMessage(content=[
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG}},
        ])])
        assert text_of(r).startswith("Echo: what is this [image"), r
        return {"text": text_of(r)}

    def unknown_model():
        try:
            chat("xai-grok--no-such-model").invoke("hi")
        except openai.NotFoundError as e:
            assert e.status_code == 404, e
            return {"status": e.status_code}
        raise AssertionError("expected NotFoundError")

    return locals()


FRAMEWORKS = {
    "agents": lambda: agents_steps("responses"),
    "agents-chat": lambda: agents_steps("chat_completions"),
    "langchain": lambda: langchain_steps(False),
    "langchain-responses": lambda: langchain_steps(True),
}

if __name__ == "__main__":
    framework, step = sys.argv[1], sys.argv[2]
    print(json.dumps(FRAMEWORKS[framework]()[step]()))
    _ = base64
