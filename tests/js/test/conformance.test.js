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

import { loadPlugin, SecretStore } from '../host/index.js';
import {
  oidcServerInstalled,
  pluginWasm,
  referenceApiBinary,
  startOidcServer,
  startReferenceApi,
} from './support/peers.js';

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

function user(model, text) {
  return { model, messages: [{ role: 'user', content: text }] };
}

/** The provider-error a call threw (jco throws the `err` case as a ComponentError). */
function errorOf(fn) {
  try {
    fn();
  } catch (e) {
    assert.ok(e?.payload?.tag, `not a provider-error: ${e?.stack ?? e}`);
    return e.payload;
  }
  assert.fail('expected the call to fail');
}

/** JSON for messages (u64 fields arrive as BigInt). */
function show(value) {
  return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? `${v}` : v));
}

function filesUnder(dir) {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.join(d.parentPath ?? d.path, d.name));
}

function config() {
  return { issuer: oidc.issuer, apiBase: api.apiBase };
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
    assert.equal(outcome.val.tierName, 'SuperGrok Heavy');
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
    assert.ok(reply.content.includes('hello from node'), reply.content);
    assert.equal(reply.model, CHAT_MODEL);
    assert.ok(reply.usage && reply.usage.totalTokens > 0, JSON.stringify(reply.usage));
  });

  it('chats on the responses lane', () => {
    wholeAgentReply = alice.chat({
      ...user(AGENT_MODEL, 'plan it in node'),
      thinking: 'high',
      maxOutputTokens: 512,
    });
    assert.equal(wholeAgentReply.lane, 'responses');
    assert.ok(wholeAgentReply.content.includes('plan it in node'), wholeAgentReply.content);
    assert.ok(wholeAgentReply.usage, 'usage reported');
  });

  it('streams a reply piece by piece to its terminal event', () => {
    const stream = alice.ChatStream.open({
      ...user(AGENT_MODEL, 'plan it in node'),
      thinking: 'high',
      maxOutputTokens: 512,
    });
    let text = '';
    let chunks = 0;
    let last;
    for (let chunk = stream.next(); chunk !== undefined; chunk = stream.next()) {
      text += chunk.delta;
      chunks += 1;
      last = chunk;
    }
    stream[Symbol.dispose]();
    assert.ok(chunks > 1, `expected several chunks, got ${chunks}`);
    assert.equal(text, wholeAgentReply.content);
    assert.ok(last.usage || last.finishReason, 'the last chunk carries the end of the reply');
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
        config: { issuer: 'http://auth.example.com', apiBase: api.apiBase },
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

  it('is the code the root README shows', () => {
    const example = fs.readFileSync(new URL('../examples/embed.js', import.meta.url), 'utf8');
    const readme = fs.readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const body = example.slice(example.indexOf("import { setTimeout as sleep }"));
    assert.ok(readme.includes('```js\n' + body + '```'), 'README.md shows another example');
  });
});
