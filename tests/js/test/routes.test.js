// Routes, configuration and the API key through the JavaScript host: the manifest read
// before anything is configured, overrides reaching the plugin through wasi:config/store,
// the subscription rail's origin allowed only while its route is enabled, and an API key
// stored, described and deleted apart from the OAuth login.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { ConfigError, loadPlugin, SecretStore } from '../host/index.js';
import {
  oidcServerInstalled,
  pluginWasm,
  referenceApiBinary,
  startOidcServer,
  startReferenceApi,
} from './support/peers.js';
import { errorOf, filesUnder, show } from './support/values.js';

const WASM = pluginWasm();
referenceApiBinary();
oidcServerInstalled();

const API_KEY = 'xai-js-host-test-0123456789abcdefWXYZ';

let plugin;
let oidc;
let api;
let stateDir;
let store;
/** A loopback origin nothing listens on (connections are refused at once). */
let closedOrigin;

/** A port on 127.0.0.1 that was free a moment ago. */
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function peers() {
  return { 'oauth-issuer': oidc.issuer, 'api-base': api.apiBase };
}

/** Logs `tenant` in through the authorization server's own pages. */
async function login(provider, account) {
  const prompt = provider.start();
  await oidc.approve(prompt.userCode, account, 4);
  await sleep(1100); // the polling interval
  const outcome = provider.poll(prompt.pendingId);
  assert.equal(outcome.tag, 'connected', show(outcome));
}

before(async () => {
  plugin = await loadPlugin(WASM);
  oidc = await startOidcServer();
  api = await startReferenceApi(oidc);
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'provider-js-routes-'));
  store = new SecretStore(stateDir);
  closedOrigin = `http://127.0.0.1:${await freePort()}`;
});

after(async () => {
  await Promise.all([oidc?.stop(), api?.stop()]);
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
  if (plugin) fs.rmSync(plugin.dir, { recursive: true, force: true });
});

describe('the manifest', () => {
  it('is read before anything is configured, and each instance answers the same', async () => {
    const m = plugin.manifest;
    assert.equal(m.id, 'xai-grok');
    assert.deepEqual(
      m.routes.map((r) => [r.name, r.credential, r.modelPrefix]),
      [
        ['subscription', 'oauth', 'xai-grok-sub/'],
        ['api', 'oauth', 'xai-grok/'],
        ['api-key', 'api-key', 'xai/'],
      ],
    );
    const sub = m.settings.find((s) => s.key === 'subscription-base');
    assert.deepEqual([sub.kind, sub.route, sub.env], ['endpoint', 'subscription', 'XAI_SUBSCRIPTION_BASE']);
    // The default spends the subscription; the rail is sent a real release of xAI's CLI.
    const setting = (key) => m.settings.find((s) => s.key === key);
    assert.equal(setting('default-route').defaultValue, 'subscription');
    assert.deepEqual(
      [setting('subscription-client-version').defaultValue, setting('subscription-client-version').env],
      ['1.0.6', 'XAI_SUBSCRIPTION_CLIENT_VERSION'],
    );
    assert.equal(setting('subscription-client-mode').env, 'XAI_SUBSCRIPTION_CLIENT_MODE');
    const p = await plugin.instantiate({ secrets: store.tenant('manifest') });
    assert.deepEqual(p.manifest(), m);
  });
});

describe('configuration', () => {
  it('reaches the plugin through wasi:config/store', async () => {
    const p = await plugin.instantiate({
      secrets: store.tenant('configured'),
      config: { ...peers(), 'default-route': 'api-key' },
    });
    const status = p.status();
    assert.equal(status.defaultRoute, 'api-key');
    assert.equal(status.connected, false);
    // Each route says which pool it bills.
    assert.ok(status.routes.every((r) => typeof r.bills === 'string' && r.bills.length > 0), show(status));
    assert.deepEqual(
      status.routes.map((r) => [r.name, r.usable]),
      [
        ['subscription', false],
        ['api', false],
        ['api-key', false],
      ],
    );
    // The default route now is the API key's: listing models asks for one.
    const err = errorOf(() => p.models(false));
    assert.equal(err.tag, 'not-connected');
    assert.match(err.val, /set-api-key/);
    // A route that is not the default one is still named explicitly.
    assert.match(errorOf(() => p.models(false, 'api')).val, /call start/);
  });

  it('refuses an override the sandbox would never allow, before anything runs', async () => {
    for (const config of [
      { 'api-base': 'ftp://api.x.ai/v1' },
      { 'oauth-issuer': 'http://auth.example.com' },
      { 'subscription-base': 'http://cli-chat-proxy.grok.com/v1' },
      { 'default-route': 'premium' },
      { apiBase: 'http://127.0.0.1:1/v1' },
    ]) {
      await assert.rejects(
        plugin.instantiate({ secrets: store.tenant('refused'), config }),
        ConfigError,
        JSON.stringify(config),
      );
    }
    await assert.rejects(plugin.instantiate({ secrets: store.tenant('refused'), routes: ['premium'] }), ConfigError);
    assert.deepEqual(store.tenant('refused').listKeys(''), []);
  });
});

describe('the subscription route', () => {
  let alice;

  before(async () => {
    alice = await plugin.instantiate({ secrets: store.tenant('alice'), config: peers() });
    await login(alice, 'alice');
  });

  it('has its origin allowed only while the route is enabled', async () => {
    const config = { ...peers(), 'subscription-base': `${closedOrigin}/v1`, 'default-route': 'api' };
    const off = await plugin.instantiate({ secrets: store.tenant('alice'), config });
    assert.ok(!off.allowedOrigins.includes(closedOrigin), off.allowedOrigins.join(' '));
    // Nor does the plugin's own default route open it without the host's grant.
    const ungranted = await plugin.instantiate({
      secrets: store.tenant('alice'),
      config: { ...peers(), 'subscription-base': `${closedOrigin}/v1` },
    });
    assert.ok(!ungranted.allowedOrigins.includes(closedOrigin), ungranted.allowedOrigins.join(' '));
    const denied = errorOf(() => off.usage('subscription'));
    assert.equal(denied.tag, 'denied-by-sandbox', show(denied));
    assert.equal(off.sandbox.denied, 1);
    // The other routes are not affected.
    const api = off.usage('api');
    assert.deepEqual([api.route, api.credits, api.percentUsed, api.period], ['api', undefined, undefined, undefined]);

    for (const on of [
      await plugin.instantiate({ secrets: store.tenant('alice'), config, routes: ['subscription'] }),
      await plugin.instantiate({
        secrets: store.tenant('alice'),
        config: { ...config, 'default-route': 'subscription' },
      }),
      // The manifest's own default route is the subscription, granted by this host.
      await plugin.instantiate({
        secrets: store.tenant('alice'),
        config: { ...peers(), 'subscription-base': `${closedOrigin}/v1` },
        grantDefaultRoute: true,
      }),
    ]) {
      assert.ok(on.allowedOrigins.includes(closedOrigin), on.allowedOrigins.join(' '));
      // Allowed: the request leaves, and nothing listens there.
      const err = errorOf(() => on.usage('subscription'));
      assert.equal(err.tag, 'network', show(err));
      assert.equal(on.sandbox.denied, 0);
    }
  });
});

describe('the API key', () => {
  it('is stored, described and deleted apart from the OAuth login', async () => {
    const bob = await plugin.instantiate({ secrets: store.tenant('bob'), config: peers() });
    assert.deepEqual(bob.apiKeyStatus(), { stored: false, lastFour: undefined });

    const refused = errorOf(() => bob.setApiKey('xai-with a space'));
    assert.equal(refused.tag, 'invalid-input');
    assert.ok(!refused.val.includes('with a space'), refused.val);

    assert.deepEqual(bob.setApiKey(API_KEY), { stored: true, lastFour: 'WXYZ' });
    assert.deepEqual(bob.apiKeyStatus(), { stored: true, lastFour: 'WXYZ' });
    // Only a key: not connected, yet the api-key route is usable.
    const only = bob.status();
    assert.equal(only.connected, false);
    assert.equal(only.apiKeyStored, true);
    assert.deepEqual(
      only.routes.map((r) => [r.name, r.usable]),
      [
        ['subscription', false],
        ['api', false],
        ['api-key', true],
      ],
    );
    // Encrypted at rest like every secret.
    for (const file of filesUnder(stateDir)) {
      assert.ok(!fs.readFileSync(file).toString('latin1').includes(API_KEY), `${file} holds the key in the clear`);
    }

    // A login and a logout leave the key alone.
    await login(bob, 'bob');
    assert.equal(bob.status().apiKeyStored, true);
    assert.equal(bob.logout().wasConnected, true);
    assert.deepEqual(bob.apiKeyStatus(), { stored: true, lastFour: 'WXYZ' });

    // Deleting the key leaves the login alone (and deleting twice is fine).
    await login(bob, 'bob');
    assert.deepEqual(bob.deleteApiKey(), { stored: false, lastFour: undefined });
    assert.deepEqual(bob.deleteApiKey(), { stored: false, lastFour: undefined });
    const status = bob.status();
    assert.equal(status.connected, true);
    assert.equal(status.apiKeyStored, false);
  });

  it('is sent as the bearer on the api-key route; a refusal asks to check it, never refreshes', async () => {
    const carol = await plugin.instantiate({ secrets: store.tenant('carol'), config: peers() });
    await login(carol, 'carol');
    carol.setApiKey(API_KEY);
    const before = await oidc.stats();
    // The reference API accepts only its issuer's tokens: this key is refused.
    const err = errorOf(() =>
      carol.chat({ model: 'xai/grok-4.3', messages: [{ role: 'user', content: 'hi' }] }),
    );
    assert.equal(err.tag, 'unauthorized', show(err));
    assert.match(err.val, /check or replace the key \(console\.x\.ai\)/);
    assert.ok(!err.val.includes(API_KEY.slice(4, 24)), err.val);
    const afterStats = await oidc.stats();
    assert.equal(afterStats.refresh_redemptions, before.refresh_redemptions);
    // The OAuth route still serves the same tenant (the seed's `xai-grok/` id names it).
    const reply = carol.chat({ model: 'xai-grok/grok-4.3', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(reply.route, 'api');
    assert.equal(reply.model, 'xai-grok/grok-4.3');
  });
});
