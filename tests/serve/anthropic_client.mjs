// The official Anthropic npm SDK (@anthropic-ai/sdk) as a client of `provider-host serve`'s
// Messages API (tests/all/anthropic.rs): `node anthropic_client.mjs STEP` with
// ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY set (the key goes as `x-api-key`, as Claude Code
// sends it). Prints one JSON object; a failed assertion exits non-zero.
import assert from 'node:assert/strict';

import Anthropic from '@anthropic-ai/sdk';

const client = new Anthropic({ maxRetries: 0, timeout: 60_000 });
// A Grok model by its id (the developer API's chat model), and a Claude name the operator
// aliased to the rail's reasoning model.
const MODEL = 'xai-grok/grok-4.3';
const THINKER = 'claude-sonnet-4-5';
const TOOLS = [{
  name: 'get_weather', description: 'Weather of a city',
  input_schema: { type: 'object', properties: { text: { type: 'string' } } },
}];
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

/// The stream's events as the SDK parsed them, checked: message_start first with input
/// usage, message_stop last, one block open at a time, every delta at the open block's
/// index and of its type, a thinking block's signature before its stop.
function checkEvents(events) {
  assert.equal(events[0].type, 'message_start');
  assert.ok(events[0].message.usage.input_tokens > 0, JSON.stringify(events[0]));
  assert.equal(events.at(-1).type, 'message_stop');
  assert.equal(events.at(-2).type, 'message_delta');
  let open = null;
  let next = 0;
  let signed = false;
  const allowed = { text: ['text_delta'], thinking: ['thinking_delta', 'signature_delta'], tool_use: ['input_json_delta'] };
  for (const ev of events) {
    if (ev.type === 'content_block_start') {
      assert.equal(open, null, 'a block opened while another is open');
      assert.equal(ev.index, next++);
      open = { index: ev.index, type: ev.content_block.type };
      signed = false;
    } else if (ev.type === 'content_block_delta') {
      assert.ok(open, 'a delta outside a block');
      assert.equal(ev.index, open.index);
      assert.ok(allowed[open.type].includes(ev.delta.type), `${ev.delta.type} in a ${open.type} block`);
      if (ev.delta.type === 'signature_delta') signed = true;
    } else if (ev.type === 'content_block_stop') {
      assert.equal(ev.index, open.index);
      if (open.type === 'thinking') assert.ok(signed, 'a thinking block without its signature');
      open = null;
    }
  }
  assert.equal(open, null);
  return events.filter((e) => e.type === 'content_block_start').map((e) => e.content_block.type);
}

/// One streamed turn through the SDK's accumulator: its events (checked) and final message.
async function streamed(params) {
  const stream = client.messages.stream(params);
  const events = [];
  for await (const ev of stream) events.push(ev);
  const message = await stream.finalMessage();
  return { blocks: checkEvents(events), message, events };
}

/// The tool loop: a call, its result sent back, the answer; `stream` picks the API.
async function toolLoop(stream) {
  const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
  // The most input_json_delta events one turn sent.
  let pieces = 0;
  const ask = async () => {
    if (!stream) return client.messages.create({ model: MODEL, max_tokens: 256, messages, tools: TOOLS });
    const { message, events } = await streamed({ model: MODEL, max_tokens: 256, messages, tools: TOOLS });
    pieces = Math.max(pieces, events.filter((e) => e.delta?.type === 'input_json_delta').length);
    return message;
  };
  const r = await ask();
  assert.equal(r.stop_reason, 'tool_use');
  const calls = r.content.filter((b) => b.type === 'tool_use');
  assert.equal(calls.length, 1);
  assert.equal(calls[0].name, 'get_weather');
  assert.deepEqual(calls[0].input, { text: 'What is the weather in Paris?' });
  messages.push({ role: 'assistant', content: r.content });
  messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: calls[0].id, content: 'sunny' }] });
  const again = await ask();
  assert.equal(again.stop_reason, 'end_turn');
  assert.equal(again.content[0].text, 'Tool results: sunny');
  // A second round: an error result, given as blocks.
  messages.push({ role: 'assistant', content: again.content });
  messages.push({ role: 'user', content: 'And in Rome?' });
  const second = await ask();
  const call = second.content.find((b) => b.type === 'tool_use');
  messages.push({ role: 'assistant', content: second.content });
  messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, is_error: true, content: [{ type: 'text', text: 'no data' }] }] });
  const last = await ask();
  assert.equal(last.content[0].text, 'Tool results: Error: no data');
  return { calls: 2, pieces };
}

const steps = {
  async text() {
    const r = await client.messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'hello anthropic' }] });
    assert.equal(r.type, 'message');
    assert.equal(r.role, 'assistant');
    assert.equal(r.model, MODEL);
    assert.deepEqual(r.content, [{ type: 'text', text: 'Echo: hello anthropic' }]);
    assert.equal(r.stop_reason, 'end_turn');
    assert.ok(r.usage.input_tokens > 0 && r.usage.output_tokens > 0, JSON.stringify(r.usage));
    return { text: r.content[0].text };
  },
  async stream() {
    const { blocks, message, events } = await streamed({
      model: MODEL, max_tokens: 64, system: 'Be brief.',
      messages: [{ role: 'user', content: 'stream for anthropic, long enough to be cut' }],
    });
    assert.deepEqual(blocks, ['text']);
    assert.equal(message.content[0].text, 'Echo: stream for anthropic, long enough to be cut');
    assert.equal(message.stop_reason, 'end_turn');
    assert.ok(events.filter((e) => e.type === 'content_block_delta').length > 1, 'the text came in pieces');
    // message_delta's usage is upstream's count.
    assert.ok(message.usage.output_tokens > 0 && message.usage.input_tokens > 0);
    return { text: message.content[0].text };
  },
  async tools() {
    await toolLoop(false);
    return toolLoop(true);
  },
  async thinking() {
    const messages = [{ role: 'user', content: 'think about this' }];
    const thinking = { type: 'enabled', budget_tokens: 2048 };
    const whole = await client.messages.create({ model: THINKER, max_tokens: 4096, thinking, messages });
    assert.equal(whole.model, THINKER);
    assert.equal(whole.content[0].type, 'thinking');
    assert.ok(whole.content[0].thinking.length > 0);
    assert.ok(whole.content[0].signature.length > 0);
    assert.equal(whole.content[1].type, 'text');
    // Streamed: the thinking block (thinking_delta, then signature_delta), then the text.
    const { blocks, message } = await streamed({ model: THINKER, max_tokens: 4096, thinking, messages });
    assert.deepEqual(blocks, ['thinking', 'text']);
    assert.ok(message.content[0].signature.length > 0);
    // Sent back (as Claude Code does), the thinking round-trips to upstream.
    messages.push({ role: 'assistant', content: message.content });
    messages.push({ role: 'user', content: 'and then?' });
    const next = await client.messages.create({ model: THINKER, max_tokens: 4096, thinking, messages });
    // The reference model says when reasoning came back to it.
    assert.equal(next.content.at(-1).text, 'Echo: and then? [reasoning returned]');
    return { signature: message.content[0].signature };
  },
  async images() {
    const r = await client.messages.create({
      model: MODEL, max_tokens: 64, messages: [{
        role: 'user', content: [
          { type: 'text', text: 'what is this' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/cat.png' } },
        ],
      }],
    });
    assert.equal(r.content[0].text, 'Echo: what is this [image data:image/png] [image https://example.com/cat.png]');
    return { text: r.content[0].text };
  },
  async count_tokens() {
    const messages = [{ role: 'user', content: 'count me please' }];
    const bare = await client.messages.countTokens({ model: MODEL, messages });
    const full = await client.messages.countTokens({ model: MODEL, messages, system: 'You are a counting assistant.', tools: TOOLS });
    assert.ok(bare.input_tokens > 0);
    assert.ok(full.input_tokens > bare.input_tokens, `${full.input_tokens} > ${bare.input_tokens}`);
    const image = await client.messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } }] }] });
    assert.equal(image.input_tokens, 1600);
    return { bare: bare.input_tokens, full: full.input_tokens };
  },
  async bad_key() {
    const bad = new Anthropic({ apiKey: `phk_0000000000000000_${'0'.repeat(64)}`, maxRetries: 0 });
    try {
      await bad.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
    } catch (e) {
      assert.ok(e instanceof Anthropic.AuthenticationError, String(e));
      assert.equal(e.error.type, 'error');
      assert.equal(e.error.error.type, 'authentication_error');
      return { status: e.status };
    }
    throw new Error('expected AuthenticationError');
  },
  async bearer() {
    // Claude Code's ANTHROPIC_AUTH_TOKEN: the same key as a bearer.
    const bearer = new Anthropic({ apiKey: null, authToken: process.env.ANTHROPIC_API_KEY, maxRetries: 0 });
    const r = await bearer.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'bearer' }] });
    assert.equal(r.content[0].text, 'Echo: bearer');
    return { ok: true };
  },
  async invalid() {
    try {
      await client.messages.create({ model: MODEL, max_tokens: 8, top_k: 5, messages: [{ role: 'user', content: 'hi' }] });
    } catch (e) {
      assert.ok(e instanceof Anthropic.BadRequestError, String(e));
      assert.equal(e.error.error.type, 'invalid_request_error');
      assert.match(e.error.error.message, /top_k/);
      return { status: e.status };
    }
    throw new Error('expected BadRequestError');
  },
  async unknown_model() {
    try {
      await client.messages.create({ model: 'xai-grok/grok-nope', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
    } catch (e) {
      assert.ok(e instanceof Anthropic.NotFoundError, String(e));
      assert.equal(e.error.error.type, 'not_found_error');
      return { status: e.status };
    }
    throw new Error('expected NotFoundError');
  },
  async rate_limited() {
    try {
      await client.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
    } catch (e) {
      assert.ok(e instanceof Anthropic.RateLimitError, String(e));
      assert.equal(e.error.error.type, 'rate_limit_error');
      assert.equal(e.headers.get('retry-after'), '7');
      return { status: e.status };
    }
    throw new Error('expected RateLimitError');
  },
  async overloaded() {
    try {
      // Streamed: an error before the head is the response's own status, not an event.
      await streamed({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
    } catch (e) {
      assert.ok(e instanceof Anthropic.OverloadedError, String(e));
      assert.equal(e.error.error.type, 'overloaded_error');
      return { status: e.status };
    }
    throw new Error('expected OverloadedError');
  },
  async permission() {
    try {
      await client.messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
    } catch (e) {
      assert.ok(e instanceof Anthropic.PermissionDeniedError, String(e));
      assert.equal(e.error.error.type, 'permission_error');
      return { status: e.status };
    }
    throw new Error('expected PermissionDeniedError');
  },
  async routes() {
    // What the SDK hides: the alias table in /v1/models, `?beta=true` with Anthropic's
    // headers, a stream always answered as a stream, errors without a key.
    const base = process.env.ANTHROPIC_BASE_URL;
    const key = process.env.ANTHROPIC_API_KEY;
    const headers = { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'anthropic-beta': 'claude-code-20250219', 'content-type': 'application/json' };
    const models = await (await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${key}` } })).json();
    const alias = models.data.find((m) => m.id === THINKER);
    assert.ok(alias, JSON.stringify(models));
    assert.equal(alias.alias_for, 'grok-4.6');
    const body = { model: MODEL, max_tokens: 8, messages: [{ role: 'user', content: 'raw' }] };
    const whole = await fetch(`${base}/v1/messages?beta=true`, { method: 'POST', headers, body: JSON.stringify(body) });
    assert.equal(whole.status, 200);
    assert.equal((await whole.json()).content[0].text, 'Echo: raw');
    const streamedRaw = await fetch(`${base}/v1/messages?beta=true`, { method: 'POST', headers, body: JSON.stringify({ ...body, stream: true }) });
    assert.equal(streamedRaw.status, 200);
    assert.match(streamedRaw.headers.get('content-type'), /^text\/event-stream/);
    const text = await streamedRaw.text();
    assert.match(text, /^event: message_start\n/);
    assert.match(text, /event: ping\n/);
    assert.match(text, /event: message_stop\n/);
    const noKey = await fetch(`${base}/v1/messages/count_tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(noKey.status, 401);
    const refused = await noKey.json();
    assert.equal(refused.type, 'error');
    assert.equal(refused.error.type, 'authentication_error');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /serve_requests_total\{route="\/v1\/messages",status="200"\} [1-9]/);
    assert.match(metrics, /serve_requests_total\{route="\/v1\/messages\/count_tokens",status="401"\} 1/);
    return { ok: true };
  },
  async claude_code() {
    // Shaped like Claude Code's turns: the beta endpoint (`?beta=true`, anthropic-beta),
    // system blocks with cache_control, system text inside messages, thinking from an
    // earlier turn sent back, many tools, metadata, streamed.
    const tools = Array.from({ length: 24 }, (_, i) => ({
      name: `Tool${i}`, description: `Tool number ${i}`,
      input_schema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
      ...(i === 23 ? { cache_control: { type: 'ephemeral' } } : {}),
    }));
    const first = await client.messages.create({
      model: THINKER, max_tokens: 4096, thinking: { type: 'enabled', budget_tokens: 31999 },
      messages: [{ role: 'user', content: 'plan' }],
    });
    const params = {
      model: THINKER, max_tokens: 32000, stream: true,
      betas: ['claude-code-20250219', 'interleaved-thinking-2025-05-14', 'fine-grained-tool-streaming-2025-05-14'],
      system: [
        { type: 'text', text: "You are Claude Code, Anthropic's official CLI for Claude.", cache_control: { type: 'ephemeral' } },
        { type: 'text', text: 'Help with software tasks.', cache_control: { type: 'ephemeral' } },
      ],
      messages: [
        { role: 'system', content: 'The working directory is /tmp.' },
        { role: 'user', content: [{ type: 'text', text: 'plan', cache_control: { type: 'ephemeral' } }] },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'text', text: '<system-reminder>todo list is empty</system-reminder>' }, { type: 'text', text: 'now do it', cache_control: { type: 'ephemeral' } }] },
      ],
      tools, tool_choice: { type: 'auto' },
      thinking: { type: 'enabled', budget_tokens: 31999 },
      metadata: { user_id: 'user_abc_account__session_123' },
    };
    const events = [];
    const stream = await client.beta.messages.create(params);
    for await (const ev of stream) events.push(ev);
    const blocks = checkEvents(events);
    assert.equal(blocks[0], 'thinking');
    assert.ok(blocks.includes('tool_use'), blocks.join(','));
    assert.equal(events.filter((e) => e.type === 'content_block_start' && e.content_block.type === 'tool_use').length, 24);
    const counted = await client.beta.messages.countTokens({ model: THINKER, betas: params.betas, system: params.system, messages: params.messages, tools });
    assert.ok(counted.input_tokens > 200, String(counted.input_tokens));
    return { blocks: blocks.length };
  },
};

console.log(JSON.stringify(await steps[process.argv[2]]()));
