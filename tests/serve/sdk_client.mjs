// The official OpenAI npm SDK as a client of `provider-host serve` (tests/all/serve.rs):
// `node sdk_client.mjs STEP` with OPENAI_BASE_URL and OPENAI_API_KEY set. Prints one JSON
// object; a failed assertion exits non-zero.
import assert from 'node:assert/strict';

import OpenAI from 'openai';

const client = new OpenAI({ maxRetries: 0, timeout: 60_000 });
const MODEL = process.env.SERVE_MODEL ?? 'xai-grok/grok-4.3';
const TOOLS = [{
  type: 'function',
  function: { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { text: { type: 'string' } } } },
}];

const steps = {
  async models() {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.ok(ids.includes(MODEL), ids.join(','));
    return { models: ids };
  },
  async chat() {
    const r = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hello npm' }] });
    assert.equal(r.choices[0].message.content, 'Echo: hello npm');
    return { content: r.choices[0].message.content };
  },
  async stream() {
    let text = '';
    let usage = null;
    const s = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'stream for npm, long enough to be cut' }],
      stream: true, stream_options: { include_usage: true },
    });
    for await (const c of s) {
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) text += ch.delta.content ?? '';
    }
    assert.equal(text, 'Echo: stream for npm, long enough to be cut');
    assert.ok(usage && usage.total_tokens > 0);
    return { content: text };
  },
  async tools() {
    const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
    const r = await client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
    const call = r.choices[0].message.tool_calls[0];
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.equal(call.function.name, 'get_weather');
    messages.push({ role: 'assistant', content: r.choices[0].message.content, tool_calls: [call] });
    messages.push({ role: 'tool', tool_call_id: call.id, content: 'sunny' });
    const again = await client.chat.completions.create({ model: MODEL, messages, tools: TOOLS });
    assert.equal(again.choices[0].message.content, 'Tool results: sunny');
    return { tool: call.function.name };
  },
  async responses() {
    const r = await client.responses.create({ model: MODEL, input: 'hello npm responses' });
    assert.equal(r.output_text, 'Echo: hello npm responses');
    let text = '';
    for await (const ev of await client.responses.create({ model: MODEL, input: 'npm stream', stream: true })) {
      if (ev.type === 'response.output_text.delta') text += ev.delta;
    }
    assert.equal(text, 'Echo: npm stream');
    return { responses: true };
  },
  async rate_limited() {
    try {
      await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
    } catch (e) {
      assert.ok(e instanceof OpenAI.RateLimitError, String(e));
      assert.equal(e.headers.get('retry-after'), '7');
      return { status: e.status };
    }
    throw new Error('expected RateLimitError');
  },
  async bad_key() {
    const bad = new OpenAI({ apiKey: `phk_0000000000000000_${'0'.repeat(64)}`, maxRetries: 0 });
    try {
      await bad.models.list();
    } catch (e) {
      assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
      return { status: e.status };
    }
    throw new Error('expected AuthenticationError');
  },
};

console.log(JSON.stringify(await steps[process.argv[2]]()));
