// The OpenAI Agents SDK for JavaScript (`@openai/agents`) as a client of `provider-host
// serve` (tests/all/frameworks.rs): `node openai_agents.mjs API STEP` (API: responses or
// chat_completions) with OPENAI_BASE_URL and OPENAI_API_KEY set. Prints one JSON object;
// a failed assertion exits non-zero.
import assert from 'node:assert/strict';

import {
  Agent, run, setDefaultOpenAIClient, setOpenAIAPI, setTracingDisabled, tool,
} from '@openai/agents';
import OpenAI from 'openai';
import { z } from 'zod';

const [api, step] = process.argv.slice(2);
const MODEL = process.env.SERVE_MODEL ?? 'xai-grok--grok-4.3';
const REASONING_MODEL = process.env.SERVE_REASONING_MODEL ?? 'xai-grok--grok-4.6';
const QUESTION = 'What is the weather in Paris?';
// A 1x1 PNG.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

setDefaultOpenAIClient(new OpenAI({ maxRetries: 0, timeout: 60_000 }));
setOpenAIAPI(api);
setTracingDisabled(true);

const calls = [];
const getWeather = tool({
  name: 'get_weather',
  description: 'Weather of a city',
  parameters: z.object({ text: z.string() }),
  execute: async ({ text }) => { calls.push(text); return 'sunny'; },
});

const agent = (model = MODEL, extra = {}) => new Agent({ name: 'assistant', model, ...extra });

async function go(a, input, streamed) {
  if (!streamed) return run(a, input);
  const s = await run(a, input, { stream: true });
  let text = '';
  for await (const t of s.toTextStream()) text += t;
  await s.completed;
  assert.ok(text.length > 0, 'no text streamed');
  return s;
}

async function loop(model, streamed) {
  calls.length = 0;
  const r = await go(agent(model, { tools: [getWeather] }), QUESTION, streamed);
  assert.deepEqual(calls, [QUESTION]);
  assert.equal(r.finalOutput, 'Tool results: sunny');
  const kinds = r.newItems.map((i) => i.type);
  assert.ok(kinds.includes('tool_call_item') && kinds.includes('tool_call_output_item'), kinds.join());
  if (model === REASONING_MODEL && api === 'responses') assert.ok(kinds.includes('reasoning_item'), kinds.join());
  return { items: kinds };
}

const steps = {
  async text() {
    const r = await go(agent(), 'hello agents', false);
    assert.equal(r.finalOutput, 'Echo: hello agents');
    return { text: r.finalOutput };
  },
  async stream() {
    const r = await go(agent(), 'stream for agents', true);
    assert.equal(r.finalOutput, 'Echo: stream for agents');
    return { text: r.finalOutput };
  },
  tools: () => loop(MODEL, false),
  tools_streamed: () => loop(MODEL, true),
  async structured() {
    const r = await go(agent(MODEL, { outputType: z.object({ city: z.string(), sunny: z.boolean() }) }), 'a city', false);
    assert.deepEqual(r.finalOutput, { city: 'Echo: a city', sunny: true });
    return { output: r.finalOutput };
  },
  reasoning_tools: () => loop(REASONING_MODEL, false),
  reasoning_tools_streamed: () => loop(REASONING_MODEL, true),
  async image() {
    const r = await go(agent(), [{
      role: 'user',
      content: [
        { type: 'input_text', text: 'what is this' },
        { type: 'input_image', image: `data:image/png;base64,${PNG}` },
      ],
    }], false);
    assert.match(r.finalOutput, /^Echo: what is this \[image/);
    return { text: r.finalOutput };
  },
  async unknown_model() {
    try {
      await run(agent('xai-grok--no-such-model'), 'hi');
    } catch (e) {
      assert.ok(e instanceof OpenAI.NotFoundError, String(e));
      assert.equal(e.code, 'model_not_found');
      return { status: e.status };
    }
    throw new Error('expected NotFoundError');
  },
};

console.log(JSON.stringify(await steps[step]()));
