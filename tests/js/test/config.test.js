// The JavaScript host's origin rules are the Rust host's (host/runtime/src/config.rs); its
// configuration and allowlist come from a plugin's manifest, whatever the vendor.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ConfigError,
  HOST_USER_AGENT,
  configFromEnv,
  configPairs,
  effectiveSettings,
  enabledRoutes,
  manifestAllowlist,
  originOf,
} from '../host/config.js';

describe('origins', () => {
  it('allows https anywhere and plain http on loopback only, like the Rust host', () => {
    assert.equal(originOf('https://auth.x.ai/x'), 'https://auth.x.ai:443');
    for (const loopback of [
      'http://127.0.0.1:8080/',
      'http://127.0.0.2/',
      'http://127.255.255.254:1/',
      'http://localhost:9/',
      'http://[::1]:9/',
    ]) {
      assert.doesNotThrow(() => originOf(loopback), loopback);
    }
    for (const remote of [
      'http://128.0.0.1/',
      'http://10.0.0.1/',
      'http://localhost.evil.com/',
      'http://127.0.0.1.evil.com/',
      'http://auth.x.ai/',
    ]) {
      assert.throws(() => originOf(remote), ConfigError, remote);
    }
    assert.throws(() => originOf('https://user:pw@auth.x.ai/'), ConfigError);
    assert.throws(() => originOf('ftp://auth.x.ai/'), ConfigError);
  });
});

/** A manifest of another vendor, as jco lifts it: nothing here is xAI's. */
const MANIFEST = {
  id: 'acme',
  displayName: 'Acme',
  settings: [
    { key: 'issuer', env: 'ACME_ISSUER', description: '', defaultValue: 'https://login.acme.test', kind: 'endpoint', route: undefined },
    { key: 'api', env: 'ACME_API', description: '', defaultValue: 'https://api.acme.test/v2', kind: 'endpoint', route: undefined },
    { key: 'batch-base', env: undefined, description: '', defaultValue: 'https://batch.acme.test', kind: 'endpoint', route: 'batch' },
    { key: 'route', env: 'ACME_ROUTE', description: '', defaultValue: 'live', kind: 'route-name', route: undefined },
    { key: 'client', env: undefined, description: '', defaultValue: 'c1', kind: 'text', route: undefined },
    { key: 'user-agent', env: undefined, description: '', defaultValue: 'acme-plugin/1', kind: 'text', route: undefined },
  ],
  routes: [
    { name: 'live', description: '', credential: 'oauth', modelPrefix: 'acme/' },
    { name: 'batch', description: '', credential: 'oauth', modelPrefix: 'acme-batch/' },
  ],
};

function allowlist(config, routes) {
  const settings = effectiveSettings(MANIFEST, configPairs(MANIFEST, config));
  return manifestAllowlist(MANIFEST, settings, enabledRoutes(MANIFEST, settings, routes));
}

describe('configuration from the manifest', () => {
  it('hands the plugin the overrides only, plus the host user agent', () => {
    assert.deepEqual(configPairs(MANIFEST, {}), [['user-agent', HOST_USER_AGENT]]);
    assert.deepEqual(configPairs(MANIFEST, { api: 'http://127.0.0.1:9/v2', client: '', route: undefined }), [
      ['user-agent', HOST_USER_AGENT],
      ['api', 'http://127.0.0.1:9/v2'],
    ]);
    assert.deepEqual(configPairs(MANIFEST, { 'user-agent': 'mine/2' }), [['user-agent', 'mine/2']]);
  });

  it('refuses unknown keys, endpoints the sandbox would refuse and unknown routes', () => {
    assert.throws(() => configPairs(MANIFEST, { apiBase: 'https://x' }), /unknown configuration key "apiBase"/);
    assert.throws(() => configPairs(MANIFEST, { api: 'ftp://api.acme.test' }), ConfigError);
    assert.throws(() => configPairs(MANIFEST, { 'batch-base': 'http://batch.acme.test' }), /loopback/);
    assert.throws(() => configPairs(MANIFEST, { route: 'premium' }), /names no route \(routes: live, batch\)/);
    assert.throws(() => configPairs(MANIFEST, { client: 42 }), ConfigError);
    assert.throws(() => allowlist({}, ['premium']), /unknown route "premium"/);
  });

  it('allows every endpoint in use, a route-bound one only while its route is enabled', () => {
    assert.deepEqual(allowlist({}), ['https://login.acme.test:443', 'https://api.acme.test:443']);
    assert.deepEqual(allowlist({}, ['batch']), [
      'https://login.acme.test:443',
      'https://api.acme.test:443',
      'https://batch.acme.test:443',
    ]);
    // The default route is always enabled.
    assert.deepEqual(allowlist({ route: 'batch', 'batch-base': 'http://127.0.0.1:7' }), [
      'https://login.acme.test:443',
      'https://api.acme.test:443',
      'http://127.0.0.1:7',
    ]);
    assert.deepEqual(allowlist({ api: 'http://localhost:8/v2' }), ['https://login.acme.test:443', 'http://localhost:8']);
  });

  it('reads the overrides from the environment variables the manifest names', () => {
    assert.deepEqual(configFromEnv(MANIFEST, { ACME_API: 'http://127.0.0.1:1', ACME_ROUTE: '', OTHER: 'x' }), {
      api: 'http://127.0.0.1:1',
    });
  });
});
