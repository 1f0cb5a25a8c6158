// The JavaScript host's origin rules are the Rust host's (host/runtime/src/config.rs).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, originOf } from '../host/config.js';

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
