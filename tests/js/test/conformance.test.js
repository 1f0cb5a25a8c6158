// The plugin component, unmodified, under jco in Node: the conformance flow against the
// same authorization server (npm oidc-provider) and reference model API as the Rust
// interop tests, plus the sandbox's denial and tenant isolation.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { collectStream, loadPlugin, SecretStore } from '../host/index.js';
import {
  oidcServerInstalled,
  pluginWasm,
  referenceApiBinary,
  startOidcServer,
  startReferenceApi,
} from './support/peers.js';
import { errorOf, filesUnder, show } from './support/values.js';

const CHAT_MODEL = 'xai-grok/grok-4.3';
const AGENT_MODEL = 'xai-grok/grok-4.20-multi-agent-0309';

// Missing build artifacts fail this file at once, with the command that makes them.
const WASM = pluginWasm();
referenceApiBinary();
oidcServerInstalled();

let plugin;
let oidc;
let api;
let stateDir;
let store;

/** A message as jco maps `message` (WIT 0.2.0): every list given, options undefined. */
function message(role, text, more = {}) {
  return {
    role,
    content: text === undefined ? [] : [{ tag: 'text', val: text }],
    toolCalls: [],
    toolCallId: undefined,
    reasoning: [],
    ...more,
  };
}

/** A whole `chat-request` asking `text`, every list given as jco requires. */
function user(model, text, more = {}) {
  return { model, messages: [message('user', text)], tools: [], stop: [], ...more };
}

/** What the test's tools answer: the reference model calls each with `{"text": …}`. */
const TOOLS = {
  lookup: ({ text }) => `found ${text}`,
  clock: () => '12:00',
};
const FUNCTION_TOOLS = [
  {
    name: 'lookup',
    description: 'Looks a phrase up',
    parameters: JSON.stringify({
      type: 'object',
      properties: { text: { type: 'string' } },
      required: ['text'],
    }),
    strict: true,
  },
  { name: 'clock', description: undefined, parameters: undefined, strict: undefined },
];

/** A reply's usage adds up and is numbers (u32), as the contract says. */
function assertUsage(usage) {
  assert.ok(usage, 'usage reported');
  for (const k of ['inputTokens', 'outputTokens', 'totalTokens']) {
    assert.equal(typeof usage[k], 'number', `${k}: ${show(usage)}`);
  }
  assert.equal(usage.totalTokens, usage.inputTokens + usage.outputTokens, show(usage));
  assert.ok(usage.totalTokens > 0, show(usage));
}

/**
 * One agent turn with tools: the model calls every tool with the question (whole reply
 * and stream alike, the stream's calls assembled by index), the host runs them, and the
 * model answers from their results.
 */
function agentLoop(provider, model, question, more = {}) {
  const ask = user(model, question, { tools: FUNCTION_TOOLS, toolChoice: { tag: 'auto' }, ...more });

  const reply = provider.chat(ask);
  assert.equal(reply.content, 'Calling lookup, clock.', show(reply));
  assert.deepEqual(reply.finishReason, { tag: 'tool-calls' });
  assert.deepEqual(
    reply.toolCalls.map((c) => [c.name, JSON.parse(c.arguments)]),
    [
      ['lookup', { text: question }],
      ['clock', { text: question }],
    ],
  );
  assert.equal(new Set(reply.toolCalls.map((c) => c.id)).size, 2, show(reply.toolCalls));
  assertUsage(reply.usage);

  const streamed = collectStream(provider.ChatStream.open(ask));
  const tags = streamed.chunks.map((c) => c.tag);
  assert.equal(tags.filter((t) => t === 'tool-call-start').length, 2, tags.join(' '));
  assert.ok(tags.includes('tool-call-arguments'), tags.join(' '));
  // Each call starts before its arguments; indexes are the calls' positions.
  const starts = streamed.chunks.filter((c) => c.tag === 'tool-call-start').map((c) => c.val.index);
  assert.deepEqual(starts, [0, 1]);
  for (const [i, c] of streamed.chunks.entries()) {
    if (c.tag !== 'tool-call-arguments') continue;
    const start = streamed.chunks.findIndex((s) => s.tag === 'tool-call-start' && s.val.index === c.val.index);
    assert.ok(start >= 0 && start < i, `arguments of call ${c.val.index} before its start`);
  }
  assert.deepEqual(tags.slice(-1), ['finish']);
  const got = streamed.reply;
  assert.equal(got.content, reply.content);
  assert.deepEqual(got.finishReason, { tag: 'tool-calls' });
  // Same calls as the whole reply, up to their ids (each reply makes its own).
  assert.deepEqual(
    got.toolCalls.map(({ name, arguments: a }) => [name, a]),
    reply.toolCalls.map(({ name, arguments: a }) => [name, a]),
  );
  assertUsage(got.usage);

  // Run the calls; send the assistant turn back with its calls, then one tool message each.
  const results = reply.toolCalls.map((call) => ({
    call,
    output: TOOLS[call.name](JSON.parse(call.arguments)),
  }));
  const conversation = {
    ...ask,
    messages: [
      ...ask.messages,
      message('assistant', reply.content, {
        toolCalls: reply.toolCalls,
        reasoning: reply.reasoningItems,
      }),
      ...results.map(({ call, output }) => message('tool', output, { toolCallId: call.id })),
    ],
  };
  const expected = `Tool results: found ${question}; 12:00`;
  const answer = provider.chat(conversation);
  assert.equal(answer.content, expected, show(answer));
  assert.deepEqual(answer.toolCalls, []);
  assert.deepEqual(answer.finishReason, { tag: 'stop' });
  assertUsage(answer.usage);
  const answerStreamed = collectStream(provider.ChatStream.open(conversation)).reply;
  assert.equal(answerStreamed.content, expected);
  assert.deepEqual(answerStreamed.toolCalls, []);
  assert.deepEqual(answerStreamed.finishReason, { tag: 'stop' });
  return { reply, answer };
}

/** The overrides pointing the plugin at the peers (keys from the plugin's manifest). */
// The flow runs on the developer API's route (the reference API serves it); the plugin's
// own default is the subscription rail.
function config() {
  return { 'oauth-issuer': oidc.issuer, 'api-base': api.apiBase, 'default-route': 'api' };
}

before(async () => {
  plugin = await loadPlugin(WASM);
  oidc = await startOidcServer();
  api = await startReferenceApi(oidc);
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'provider-js-state-'));
  store = new SecretStore(stateDir);
});

after(async () => {
  await Promise.all([oidc?.stop(), api?.stop()]);
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
  if (plugin) fs.rmSync(plugin.dir, { recursive: true, force: true });
});

describe('conformance flow under jco', () => {
  let alice;
  let prompt;
  let wholeAgentReply;

  it('starts a device login and polls while it is pending', async () => {
    alice = await plugin.instantiate({ secrets: store.tenant('alice'), config: config() });
    assert.equal(alice.status().connected, false);
    prompt = alice.start();
    assert.ok(prompt.verificationUrlWithCode.includes(prompt.userCode), JSON.stringify(prompt));
    assert.ok(prompt.verificationUrl.startsWith(oidc.issuer), prompt.verificationUrl);
    assert.match(prompt.userCode, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    assert.equal(prompt.intervalSeconds, 1);
    const pending = alice.poll(prompt.pendingId);
    assert.equal(pending.tag, 'pending');
    assert.equal(pending.val.pendingId, prompt.pendingId);
  });

  it('connects with the approved tier after approval', async () => {
    await oidc.approve(prompt.userCode, 'alice', 4);
    await sleep(1100); // the polling interval
    const outcome = alice.poll(undefined);
    assert.equal(outcome.tag, 'connected', show(outcome));
    assert.equal(outcome.val.connected, true);
    assert.equal(outcome.val.tier, 4);
    assert.equal(outcome.val.tierName, 'X Premium+', 'tier 4 of xAI\'s enum');
    assert.equal(outcome.val.defaultModelId, CHAT_MODEL);
    // The used device code is forgotten, never polled again.
    assert.equal(errorOf(() => alice.poll(prompt.pendingId)).tag, 'not-connected');
  });

  it('reports the status with the tier and expiry', () => {
    const status = alice.status();
    assert.equal(status.connected, true);
    assert.equal(status.tier, 4);
    assert.equal(typeof status.expiresAt, 'bigint');
    assert.ok(status.expiresAt > BigInt(Math.floor(Date.now() / 1000)), `${status.expiresAt}`);
  });

  it('lists the models tier 4 unlocks, media apart, then from the cache', () => {
    const list = alice.models(true); // forced: fetched upstream now

    const ids = list.models.map((m) => m.id);
    assert.ok(ids.includes(CHAT_MODEL), ids.join(' '));
    assert.ok(ids.includes(AGENT_MODEL), ids.join(' '));
    assert.ok(ids.includes('xai-grok/grok-build-0.1'), ids.join(' '));
    assert.equal(list.models.find((m) => m.id === CHAT_MODEL).lane, 'chat-completions');
    assert.equal(list.models.find((m) => m.id === AGENT_MODEL).lane, 'responses');
    assert.ok(list.mediaModels.length > 0);
    assert.ok(list.mediaModels.every((m) => m.id.includes('imagine') && m.lane === 'media'));
    assert.ok(!ids.some((id) => id.includes('imagine')), ids.join(' '));
    assert.equal(list.defaultModelId, CHAT_MODEL);
    assert.equal(list.cached, false);
    const again = alice.models(false);
    assert.equal(again.cached, true);
    assert.deepEqual(again.models.map((m) => m.id), ids);
    // status() knows the same models without a network call.
    assert.deepEqual(alice.status().models.map((m) => m.id), ids);
  });

  it('chats on the chat-completions lane', () => {
    const reply = alice.chat(user(CHAT_MODEL, 'hello from node'));
    assert.equal(reply.lane, 'chat-completions');
    assert.equal(reply.content, 'Echo: hello from node');
    assert.equal(reply.model, CHAT_MODEL);
    assert.deepEqual(reply.toolCalls, []);
    assert.deepEqual(reply.reasoningItems, []);
    assert.deepEqual(reply.citations, []);
    assert.deepEqual(reply.finishReason, { tag: 'stop' });
    assertUsage(reply.usage);
    assert.equal(typeof reply.usage.cachedInputTokens, 'number', show(reply.usage));
  });

  it('chats on the responses lane', () => {
    wholeAgentReply = alice.chat({
      ...user(AGENT_MODEL, 'plan it in node'),
      thinking: 'high',
      maxOutputTokens: 512,
    });
    assert.equal(wholeAgentReply.lane, 'responses');
    assert.equal(wholeAgentReply.content, 'Echo: plan it in node');
    assert.deepEqual(wholeAgentReply.finishReason, { tag: 'stop' });
    assertUsage(wholeAgentReply.usage);
    // Reasoning: visible text, counted inside the output, and an item to pass back.
    assert.equal(typeof wholeAgentReply.reasoning, 'string', show(wholeAgentReply));
    assert.ok(wholeAgentReply.usage.reasoningTokens > 0, show(wholeAgentReply.usage));
    assert.ok(wholeAgentReply.usage.outputTokens >= wholeAgentReply.usage.reasoningTokens);
    assert.equal(wholeAgentReply.reasoningItems.length, 1, show(wholeAgentReply));
    assert.equal(wholeAgentReply.reasoningItems[0].lane, 'responses');
    assert.equal(typeof wholeAgentReply.reasoningItems[0].data, 'string');
  });

  it('streams a reply piece by piece to its terminal event', () => {
    const stream = alice.ChatStream.open({
      ...user(AGENT_MODEL, 'plan it in node'),
      thinking: 'high',
      maxOutputTokens: 512,
    });
    // Every chunk is a `chat-chunk` variant, `{tag, val}`.
    const chunks = [];
    for (let chunk = stream.next(); chunk !== undefined; chunk = stream.next()) chunks.push(chunk);
    stream[Symbol.dispose]();
    const tags = chunks.map((c) => c.tag);
    assert.ok(tags.filter((t) => t === 'text').length > 1, `several text deltas: ${tags.join(' ')}`);
    const text = chunks.filter((c) => c.tag === 'text').map((c) => c.val).join('');
    assert.equal(text, wholeAgentReply.content);
    const reasoning = chunks.filter((c) => c.tag === 'reasoning').map((c) => c.val).join('');
    assert.equal(reasoning, wholeAgentReply.reasoning);
    assert.equal(tags.filter((t) => t === 'reasoning-item').length, 1, tags.join(' '));
    // Usage once, then the finish reason last.
    assert.equal(tags.filter((t) => t === 'usage').length, 1, tags.join(' '));
    assert.deepEqual(chunks.at(-1), { tag: 'finish', val: { tag: 'stop' } });
    assertUsage(chunks.find((c) => c.tag === 'usage').val);
    // The assembler gives what `chat` answers (the reasoning item is a new one).
    const again = collectStream(
      alice.ChatStream.open({ ...user(AGENT_MODEL, 'plan it in node'), thinking: 'high' }),
    ).reply;
    assert.equal(again.content, wholeAgentReply.content);
    assert.equal(again.reasoning, wholeAgentReply.reasoning);
    assert.deepEqual(again.finishReason, wholeAgentReply.finishReason);
  });

  it('ends a stream with stream_closed once its instance is gone', async () => {
    const other = await plugin.instantiate({ secrets: store.tenant('alice'), config: config() });
    const stream = other.ChatStream.open({ ...user(AGENT_MODEL, 'plan it in node'), thinking: 'high' });
    assert.equal(typeof stream.next()?.tag, 'string');
    // Stopped mid-stream (as a budget would stop it): the handle answers, the host lives on.
    other.dispose();
    assert.throws(() => stream.next(), (e) => e.code === 'stream_closed');
    stream[Symbol.dispose]();
  });

  it('runs an agent loop with function tools on the chat-completions lane', () => {
    const { reply, answer } = agentLoop(alice, CHAT_MODEL, 'weather in Oslo');
    assert.equal(reply.lane, 'chat-completions');
    assert.equal(answer.lane, 'chat-completions');
  });

  it('runs the same agent loop on the responses lane, asked for by `lane`', () => {
    const { reply, answer } = agentLoop(alice, CHAT_MODEL, 'weather in Bergen', {
      lane: 'responses',
    });
    assert.equal(reply.lane, 'responses');
    assert.equal(answer.lane, 'responses');
  });

  it('calls only the named tool, or one tool when parallel calls are off', () => {
    const named = alice.chat(
      user(CHAT_MODEL, 'what time', {
        tools: FUNCTION_TOOLS,
        toolChoice: { tag: 'function', val: 'clock' },
      }),
    );
    assert.deepEqual(named.toolCalls.map((c) => c.name), ['clock']);
    const single = alice.chat(
      user(CHAT_MODEL, 'what time', { tools: FUNCTION_TOOLS, parallelToolCalls: false }),
    );
    assert.deepEqual(single.toolCalls.map((c) => c.name), ['lookup']);
    const none = alice.chat(
      user(CHAT_MODEL, 'what time', { tools: FUNCTION_TOOLS, toolChoice: { tag: 'none' } }),
    );
    assert.deepEqual(none.toolCalls, []);
    assert.equal(none.content, 'Echo: what time');
  });

  it('passes the reasoning items of a turn back with its assistant message', () => {
    const next = alice.chat({
      ...user(AGENT_MODEL, undefined),
      messages: [
        message('user', 'plan it in node'),
        message('assistant', wholeAgentReply.content, {
          reasoning: wholeAgentReply.reasoningItems,
        }),
        message('user', 'and now?'),
      ],
      thinking: 'low',
    });
    assert.equal(next.lane, 'responses');
    // The reference model says when an encrypted reasoning item came back to it.
    assert.equal(next.content, 'Echo: and now? [reasoning returned]');
  });

  it('sends image parts, by URL and inline, with their detail', () => {
    // The smallest PNG: a 1×1 transparent pixel.
    const png =
      'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
    const reply = alice.chat({
      ...user(CHAT_MODEL, undefined),
      messages: [
        message('user', undefined, {
          content: [
            { tag: 'text', val: 'what is this' },
            {
              tag: 'image',
              val: { source: { tag: 'url', val: 'https://example.com/cat.png' }, detail: 'low' },
            },
            {
              tag: 'image',
              val: {
                source: { tag: 'data', val: { mediaType: 'image/png', base64: png } },
                detail: undefined,
              },
            },
          ],
        }),
      ],
    });
    assert.equal(
      reply.content,
      'Echo: what is this [image https://example.com/cat.png detail=low] [image data:image/png]',
    );
  });

  it('refuses client tools for a multi-agent model with invalid-input', () => {
    const err = errorOf(() => alice.chat(user(AGENT_MODEL, 'x', { tools: FUNCTION_TOOLS })));
    assert.equal(err.tag, 'invalid-input', show(err));
    assert.match(err.val, /client-side tools/);
  });

  it('maps the other request fields: format, sampling, cache key, extra body', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] };
    const structured = alice.chat(
      user(CHAT_MODEL, 'hello', {
        responseFormat: {
          tag: 'json-schema',
          val: { name: 'answer', schema: JSON.stringify(schema), description: undefined, strict: true },
        },
        seed: 42n, // s64: a BigInt
        topP: 0.5,
        temperature: 0.2,
        stop: ['\n\n'],
        maxOutputTokens: 64,
      }),
    );
    assert.deepEqual(JSON.parse(structured.content), { a: 'Echo: hello' });
    const json = alice.chat(user(CHAT_MODEL, 'hello', { responseFormat: { tag: 'json-object' } }));
    assert.equal(typeof JSON.parse(json.content), 'object', json.content);

    // One conversation, one prompt cache: the second turn's prompt is served from it.
    const key = `js-${process.pid}-${Date.now()}`;
    const first = alice.chat(user(CHAT_MODEL, 'cache me', { promptCacheKey: key }));
    const second = alice.chat(user(CHAT_MODEL, 'cache me', { promptCacheKey: key }));
    assert.equal(first.usage.cachedInputTokens, 0, show(first.usage));
    assert.ok(second.usage.cachedInputTokens > 0, show(second.usage));
    assert.ok(second.usage.cachedInputTokens <= second.usage.inputTokens, show(second.usage));

    // `extra-body` reaches upstream: live search answers with citations.
    const cited = alice.chat(
      user(CHAT_MODEL, 'hello', { extraBody: JSON.stringify({ search_parameters: { mode: 'on' } }) }),
    );
    assert.ok(cited.citations.length > 0, show(cited));
    assert.ok(cited.citations.every((c) => c.url.startsWith('https://')), show(cited.citations));

    // A field the request already sets is refused, before anything is sent.
    const clash = errorOf(() =>
      alice.chat(user(CHAT_MODEL, 'hello', { extraBody: JSON.stringify({ model: 'other' }) })),
    );
    assert.equal(clash.tag, 'invalid-input', show(clash));
  });

  it('completes a short request: omitted lists, a string as the content', () => {
    // The JS host fills in what jco would otherwise refuse (see host/request.js).
    const reply = alice.chat({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'short' }] });
    assert.equal(reply.content, 'Echo: short');
    const streamed = collectStream(
      alice.ChatStream.open({ model: CHAT_MODEL, messages: [{ role: 'user', content: 'short' }] }),
    ).reply;
    assert.equal(streamed.content, 'Echo: short');
  });

  it('keeps another tenant apart', async () => {
    const bob = await plugin.instantiate({ secrets: store.tenant('bob'), config: config() });
    assert.equal(bob.status().connected, false);
    assert.equal(errorOf(() => bob.poll(undefined)).tag, 'not-connected');
    assert.equal(errorOf(() => bob.chat(user(CHAT_MODEL, 'hi'))).tag, 'not-connected');
    assert.deepEqual(store.tenant('bob').listKeys(''), []);
    // ...while a second instance of the same tenant sees its login: state lives in the host.
    const alice2 = await plugin.instantiate({ secrets: store.tenant('alice'), config: config() });
    assert.equal(alice2.status().connected, true);
    assert.equal(alice.status().connected, true);
  });

  it('refreshes, rotating the refresh token, and the API accepts the new token', async () => {
    await sleep(2100); // past the 2 s window in which forced refreshes are shared
    const status = alice.refresh();
    assert.equal(status.connected, true);
    assert.equal(status.tier, 4);
    const stats = await oidc.stats();
    assert.equal(stats.refresh_redemptions, 1, JSON.stringify(stats));
    assert.equal(stats.refresh_reuse_detected, 0, JSON.stringify(stats));
    const reply = alice.chat(user(CHAT_MODEL, 'after refresh'));
    assert.ok(reply.content.includes('after refresh'), reply.content);
  });

  it('released every lock and stored no token in the clear', () => {
    // Each lock the plugin took was released when it dropped the handle.
    const locks = fs.readdirSync(path.join(stateDir, 'tenants/alice/locks'));
    assert.deepEqual(locks, []);
    assert.ok(store.tenant('alice').listKeys('').length > 0);
    for (const file of filesUnder(stateDir)) {
      const bytes = fs.readFileSync(file).toString('latin1');
      // A JWT (the access token) starts with base64url of '{"': "eyJ".
      assert.ok(!bytes.includes('eyJ'), `${file} holds a token in the clear`);
    }
  });

  it('logs out, revoking upstream, and is no longer connected', async () => {
    const report = alice.logout();
    assert.equal(report.wasConnected, true);
    assert.equal(report.revoked, true);
    assert.equal(alice.status().connected, false);
    assert.equal(errorOf(() => alice.chat(user(CHAT_MODEL, 'hi'))).tag, 'not-connected');
    const stats = await oidc.stats();
    assert.ok(stats.revocations >= 1, JSON.stringify(stats));
  });
});

describe('sandbox', () => {
  it('denies an issuer outside the allowlist before any request leaves', async () => {
    const before = await oidc.stats();
    const p = await plugin.instantiate({
      secrets: store.tenant('mallory'),
      config: config(),
      allowedOrigins: [api.apiBase], // the issuer is left out
    });
    const err = errorOf(() => p.start());
    assert.equal(err.tag, 'denied-by-sandbox', JSON.stringify(err));
    assert.ok(p.sandbox.denied >= 1);
    const afterStats = await oidc.stats();
    assert.equal(afterStats.device_authorizations, before.device_authorizations);
    assert.equal(p.status().connected, false);
  });

  it('refuses a plain-http origin off loopback before anything runs', async () => {
    await assert.rejects(
      plugin.instantiate({
        secrets: store.tenant('mallory'),
        config: { 'oauth-issuer': 'http://auth.example.com', 'api-base': api.apiBase },
      }),
      /plain http is allowed only on loopback/,
    );
  });
});

describe('the README example', () => {
  it('logs in and chats as a separate Node program', async () => {
    const example = fileURLToPath(new URL('../examples/embed.js', import.meta.url));
    const child = spawn(process.execPath, [example], {
      env: {
        ...process.env,
        PLUGIN_WASM: WASM,
        STATE_DIR: path.join(stateDir, 'example'),
        XAI_OAUTH_ISSUER: oidc.issuer,
        XAI_API_BASE: api.apiBase,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const code = await new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        const m = out.match(/check the code ([A-Z]{4}-[A-Z]{4})/);
        if (m) resolve(m[1]);
      });
      exited.then(() => reject(new Error(`exited before the prompt: ${out}${err}`)));
    });
    assert.match(out, new RegExp(`^Open ${oidc.issuer}/device\\S*${code}`));
    await oidc.approve(code, 'example', 1);
    assert.equal(await exited, 0, err);
    assert.match(out, /Echo: Hello/);
  });

  it('is the code the JavaScript embedding guide shows', () => {
    const example = fs.readFileSync(new URL('../examples/embed.js', import.meta.url), 'utf8');
    const guide = fs.readFileSync(new URL('../../../docs/embedders/js.md', import.meta.url), 'utf8');
    const body = example.slice(example.indexOf("import { setTimeout as sleep }"));
    assert.ok(guide.includes('```js\n' + body + '```'), 'docs/embedders/js.md shows another example');
  });
});
