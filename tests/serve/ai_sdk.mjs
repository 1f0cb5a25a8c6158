// The Vercel AI SDK as a client of `provider-host serve` (tests/all/frameworks.rs):
// `node ai_sdk.mjs PROVIDER STEP` with OPENAI_BASE_URL and OPENAI_API_KEY set.
// PROVIDER: xai-chat (@ai-sdk/xai 4's chat model, the one that reads each tool-call delta
// as a whole call), xai (@ai-sdk/xai's default: Responses), openai-chat, openai-responses,
// compatible (@ai-sdk/openai-compatible). Prints one JSON object; a failed assertion exits
// non-zero.
import assert from 'node:assert/strict';

import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { createXai } from '@ai-sdk/xai';
import { createXai as createXaiV4 } from '@ai-sdk/xai-v4';
import { APICallError, Output, generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';

const [providerName, step] = process.argv.slice(2);
const baseURL = process.env.OPENAI_BASE_URL;
const apiKey = process.env.OPENAI_API_KEY;
const MODEL = process.env.SERVE_MODEL ?? 'xai-grok/grok-4.3';
const REASONING_MODEL = process.env.SERVE_REASONING_MODEL ?? 'xai-grok/grok-4.6';

const providers = {
  'xai-chat': (id) => createXaiV4({ baseURL, apiKey }).chat(id),
  xai: (id) => createXai({ baseURL, apiKey })(id),
  'openai-chat': (id) => createOpenAI({ baseURL, apiKey }).chat(id),
  'openai-responses': (id) => createOpenAI({ baseURL, apiKey }).responses(id),
  // serve takes JSON schemas: said so, the provider sends them instead of JSON mode.
  compatible: (id) => createOpenAICompatible({ name: 'serve', baseURL, apiKey, supportsStructuredOutputs: true }).chatModel(id),
};
const model = (id) => providers[providerName](id);
// Nothing is stored upstream: the openai provider must send items whole (its default
// refers back to stored items by id).
const providerOptions = { openai: { store: false } };
// OpenAI's chat API has no reasoning text: the openai chat model shows none.
const showsReasoning = providerName !== 'openai-chat';

const weather = tool({
  description: 'Weather of a city',
  inputSchema: z.object({ text: z.string() }),
  execute: async () => 'sunny',
});

/** A tool loop: the call, its result, the answer. */
function checkLoop(r, question) {
  const calls = r.steps.flatMap((s) => s.toolCalls);
  assert.equal(calls.length, 1, JSON.stringify(r.steps.map((s) => s.content)));
  assert.equal(calls[0].toolName, 'get_weather');
  assert.deepEqual(calls[0].input, { text: question });
  assert.equal(r.text, 'Tool results: sunny');
  return { steps: r.steps.length, call: calls[0].toolCallId };
}

async function loop(id, streamed) {
  const question = 'What is the weather in Paris?';
  const options = {
    model: model(id), prompt: question, tools: { get_weather: weather },
    stopWhen: stepCountIs(3), providerOptions,
  };
  if (!streamed) return { r: await generateText(options), question };
  const errors = [];
  const s = streamText({ ...options, onError: ({ error }) => errors.push(error) });
  const r = { text: await s.text, steps: await s.steps, reasoningText: await s.reasoningText };
  assert.deepEqual(errors.map(String), []);
  return { r, question };
}

const steps = {
  async text() {
    const r = await generateText({ model: model(MODEL), prompt: 'hello ai sdk', providerOptions });
    assert.equal(r.text, 'Echo: hello ai sdk');
    assert.ok(r.usage.totalTokens > 0, JSON.stringify(r.usage));
    return { text: r.text };
  },
  async stream() {
    const errors = [];
    const s = streamText({
      model: model(MODEL), prompt: 'stream for the ai sdk', providerOptions,
      onError: ({ error }) => errors.push(error),
    });
    let text = '';
    for await (const t of s.textStream) text += t;
    assert.deepEqual(errors.map(String), []);
    assert.equal(text, 'Echo: stream for the ai sdk');
    assert.equal(await s.finishReason, 'stop');
    return { text };
  },
  async tools() {
    const { r, question } = await loop(MODEL, false);
    return checkLoop(r, question);
  },
  async tools_streamed() {
    const { r, question } = await loop(MODEL, true);
    return checkLoop(r, question);
  },
  async structured() {
    const r = await generateText({
      model: model(MODEL), prompt: 'a city', providerOptions,
      output: Output.object({ schema: z.object({ city: z.string(), sunny: z.boolean() }) }),
    });
    assert.deepEqual(r.output, { city: 'Echo: a city', sunny: true });
    return { output: r.output };
  },
  async reasoning_tools() {
    const { r, question } = await loop(REASONING_MODEL, false);
    if (showsReasoning) assert.ok(r.reasoningText && r.reasoningText.length > 0, 'no reasoning');
    return checkLoop(r, question);
  },
  async reasoning_tools_streamed() {
    const { r, question } = await loop(REASONING_MODEL, true);
    if (showsReasoning) assert.ok(r.reasoningText && r.reasoningText.length > 0, 'no reasoning');
    return checkLoop(r, question);
  },
  async image() {
    // A 1x1 PNG.
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
    const r = await generateText({
      model: model(MODEL), providerOptions,
      messages: [{ role: 'user', content: [
        { type: 'text', text: 'what is this' },
        { type: 'image', image: Buffer.from(png, 'base64'), mediaType: 'image/png' },
      ] }],
    });
    assert.match(r.text, /^Echo: what is this \[image/);
    return { text: r.text };
  },
  // Server-side search: a Responses model's provider tool (`web_search`), served upstream
  // on the Responses lane whatever the model's own lane.
  async web_search() {
    const tools = providerName === 'xai'
      ? { web_search: createXai({ baseURL, apiKey }).tools.webSearch() }
      : { web_search: createOpenAI({ baseURL, apiKey }).tools.webSearch() };
    const r = await generateText({ model: model(MODEL), prompt: 'news of the day', tools, providerOptions });
    assert.equal(r.text.split(' [')[0], 'Echo: news of the day');
    const urls = r.sources.filter((s) => s.sourceType === 'url');
    assert.ok(urls.length > 0, JSON.stringify(r.content));
    return { sources: urls.length };
  },
  async unknown_model() {
    try {
      await generateText({ model: model('xai-grok/no-such-model'), prompt: 'hi', maxRetries: 0, providerOptions });
    } catch (e) {
      assert.ok(APICallError.isInstance(e), String(e));
      assert.equal(e.statusCode, 404, String(e));
      return { status: e.statusCode };
    }
    throw new Error('expected APICallError');
  },
};

console.log(JSON.stringify(await steps[step]()));
