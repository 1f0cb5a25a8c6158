// The JavaScript host's origin rules are the Rust host's (host/runtime/src/config.rs); its
// configuration and allowlist come from a plugin's manifest, whatever the vendor.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ConfigError,
  HOST_USER_AGENT,
  configFromEnv,
  envPrefix,
  forbiddenEnv,
  isPublicHost,
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

function allowlist(config, routes, { manifest = MANIFEST, grantDefaultRoute = false } = {}) {
  const pairs = configPairs(manifest, config);
  const settings = effectiveSettings(manifest, pairs);
  const enabled = enabledRoutes(manifest, settings, routes, { overrides: Object.fromEntries(pairs), grantDefaultRoute });
  return manifestAllowlist(manifest, settings, enabled);
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
    // The operator's choice of the default route enables it.
    assert.deepEqual(allowlist({ route: 'batch', 'batch-base': 'http://127.0.0.1:7' }), [
      'https://login.acme.test:443',
      'https://api.acme.test:443',
      'http://127.0.0.1:7',
    ]);
    // The plugin's own default route opens nothing unless the host grants it.
    const batchByDefault = {
      ...MANIFEST,
      settings: MANIFEST.settings.map((s) => (s.key === 'route' ? { ...s, defaultValue: 'batch' } : s)),
    };
    assert.deepEqual(allowlist({}, [], { manifest: batchByDefault }), [
      'https://login.acme.test:443',
      'https://api.acme.test:443',
    ]);
    assert.deepEqual(allowlist({}, [], { manifest: batchByDefault, grantDefaultRoute: true }), [
      'https://login.acme.test:443',
      'https://api.acme.test:443',
      'https://batch.acme.test:443',
    ]);
    assert.deepEqual(allowlist({ api: 'http://localhost:8/v2' }), ['https://login.acme.test:443', 'http://localhost:8']);
  });

  it('reads the overrides from the environment variables the manifest names', () => {
    assert.deepEqual(configFromEnv(MANIFEST, { ACME_API: 'http://127.0.0.1:1', ACME_ROUTE: '', OTHER: 'x' }), {
      api: 'http://127.0.0.1:1',
    });
  });

  it('reads only the plugin\'s own prefix or approved names, never the host\'s variables', () => {
    assert.equal(envPrefix('xai-grok'), 'XAI_');
    assert.equal(envPrefix('acme'), 'ACME_');
    assert.equal(envPrefix('ab-c'), undefined);
    const withEnv = (env, kind = 'text') => ({
      ...MANIFEST,
      settings: [...MANIFEST.settings, { key: 'leak', env, description: '', defaultValue: '', kind, route: undefined }],
    });
    const secrets = {
      PROVIDER_HOST_KEY: 'the-master-key',
      HTTPS_PROXY: 'http://user:pw@proxy:3128',
      https_proxy: 'http://user:pw@proxy:3128',
      GITHUB_TOKEN: 'ghp_secret',
      AWS_SECRET_ACCESS_KEY: 'aws-secret',
      SHARED_URL: 'http://secret-host.example',
    };
    for (const name of [
      'PROVIDER_HOST_KEY',
      'PROVIDER_HOST_SECRETS_URL',
      'HTTPS_PROXY',
      'https_proxy',
      'No_Proxy',
      'AWS_SECRET_ACCESS_KEY',
      'GITHUB_TOKEN',
    ]) {
      assert.ok(forbiddenEnv(name), name);
      let err;
      try {
        configFromEnv(withEnv(name), secrets, { approved: [name] });
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof ConfigError, name);
      assert.match(err.message, new RegExp(`"leak".*${name}`));
      for (const value of Object.values(secrets)) assert.ok(!err.message.includes(value), err.message);
    }
    // Another vendor's name: only when approved; its value is never repeated in an error.
    assert.throws(() => configFromEnv(withEnv('SHARED_URL'), secrets), /"leak".*SHARED_URL.*ACME_\*/);
    assert.deepEqual(configFromEnv(withEnv('SHARED_URL'), secrets, { approved: ['SHARED_URL'] }), {
      leak: 'http://secret-host.example',
    });
    let err;
    try {
      configFromEnv(withEnv('SHARED_URL', 'endpoint'), secrets, { approved: ['SHARED_URL'] });
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ConfigError);
    assert.ok(err.message.includes('SHARED_URL') && !err.message.includes('secret-host'), err.message);
  });
});

describe('destinations', () => {
  it('recognises non-public addresses in every form', () => {
    for (const host of [
      'localhost',
      '127.0.0.2',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '[::1]',
      '[::]',
      '[fc00::1]',
      '[fe80::1]',
      '[ff02::1]',
      '[::ffff:a9fe:a9fe]',
      '[::ffff:7f00:1]',
      '[64:ff9b::a9fe:a9fe]',
    ]) {
      assert.equal(isPublicHost(host), false, host);
    }
    for (const host of ['api.acme.test', '1.1.1.1', '172.32.0.1', '[2606:4700::1111]', '[::ffff:101:101]']) {
      assert.equal(isPublicHost(host), true, host);
    }
  });

  it('allows a non-public or plain-http endpoint only when the operator set it', () => {
    const m = {
      ...MANIFEST,
      settings: [
        ...MANIFEST.settings,
        ...[
          ['metadata', 'https://169.254.169.254'],
          ['mapped', 'https://[::ffff:169.254.169.254]'],
          ['internal', 'https://127.0.0.2:47443'],
          ['name', 'https://localhost:47443'],
          ['plain', 'http://127.0.0.1:47080'],
        ].map(([key, defaultValue]) => ({ key, env: undefined, description: '', defaultValue, kind: 'endpoint', route: undefined })),
      ],
    };
    const list = (config) => {
      const settings = effectiveSettings(m, configPairs(m, config));
      return manifestAllowlist(m, settings, enabledRoutes(m, settings, []));
    };
    assert.deepEqual(list({}), ['https://login.acme.test:443', 'https://api.acme.test:443']);
    assert.deepEqual(list({ internal: 'http://127.0.0.2:9', metadata: 'https://169.254.169.254:443/' }), [
      'https://login.acme.test:443',
      'https://api.acme.test:443',
      'https://169.254.169.254:443',
      'http://127.0.0.2:9',
    ]);
  });
});
