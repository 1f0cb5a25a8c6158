// The JavaScript host's sandbox on its own: a guest gets no raw network and no
// filesystem (the world imports neither), and the HTTP allowlist connects to exactly the
// authority it compared.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { filesystem, http } from '@bytecodealliance/preview2-shim';

import { allowlistedOutgoingHandler, ConfigError, configFromEnv, loadPlugin, SecretStore } from '../host/index.js';
import { hostileWasm } from './support/peers.js';

let dir;
let store;
let hostile;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'js-sandbox-'));
  store = new SecretStore(path.join(dir, 'state'));
  hostile = await loadPlugin(hostileWasm(), { outDir: path.join(dir, 'hostile') });
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A loopback TCP listener and UDP socket that count what reaches them. */
async function listeners() {
  const seen = { connections: 0, datagrams: 0 };
  const tcp = net.createServer((socket) => {
    seen.connections += 1;
    socket.destroy();
  });
  await new Promise((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  const udp = dgram.createSocket('udp4');
  udp.on('message', () => (seen.datagrams += 1));
  await new Promise((resolve) => udp.bind(0, '127.0.0.1', resolve));
  return {
    seen,
    tcp: `127.0.0.1:${tcp.address().port}`,
    udp: `127.0.0.1:${udp.address().port}`,
    close: () => Promise.all([new Promise((r) => tcp.close(r)), new Promise((r) => udp.close(r))]),
  };
}

describe('raw network and filesystem', () => {
  it('gives a guest no sockets, no DNS and no preopens: every attempt fails, nothing arrives', async () => {
    const peer = await listeners();
    // Something else in this process gave preview2-shim's filesystem a preopen: the
    // plugin must not see it.
    filesystem._addPreopen('/', dir);
    try {
      const p = await hostile.instantiate({ secrets: store.tenant('net') });
      let report;
      try {
        p.chat({
          model: 'sockets',
          messages: [
            {
              role: 'user',
              content: [{ tag: 'text', val: `${peer.tcp} ${peer.udp}` }],
              toolCalls: [],
              reasoning: [],
            },
          ],
          tools: [],
          stop: [],
        });
        assert.fail('the hostile guest reports in an error');
      } catch (e) {
        assert.equal(e.payload?.tag, 'invalid-input', String(e?.stack ?? e));
        report = e.payload.val;
      }
      assert.equal(
        report,
        'tcp=denied:access-denied udp=denied:access-denied dns=denied:access-denied fs=0-preopens',
      );
      // The shim's I/O runs on a worker: give anything it sent time to be seen here.
      await sleep(300);
      assert.deepEqual(peer.seen, { connections: 0, datagrams: 0 }, report);
      // Still a working instance: a refusal is no trap.
      assert.equal(p.models(false).defaultModelId, 'none');
    } finally {
      filesystem._clearPreopens();
      await peer.close();
    }
  });
});

/** A `wasi:http` request as the guest builds it (the shim's own resource). */
function request(scheme, authority) {
  const r = new http.types.OutgoingRequest(new http.types.Fields());
  r.setScheme({ tag: scheme });
  r.setAuthority(authority);
  r.setPathWithQuery('/v1/models');
  return r;
}

/** An inner handler that records the authority each request would be dialled with. */
function recorder() {
  const dialled = [];
  return {
    dialled,
    handle(req) {
      dialled.push(req.authority());
      return 'sent';
    },
  };
}

describe('HTTP allowlist', () => {
  it('dials exactly the authority it compared, never another spelling of it', () => {
    const inner = recorder();
    const h = allowlistedOutgoingHandler(['http://127.0.0.1:8080', 'https://api.x.ai'], inner);
    // Each passes the allowlist only once normalised: it must be sent normalised too
    // (`127.0.0.1.` would otherwise go to DNS).
    for (const [scheme, authority, dialled] of [
      ['HTTP', '127.0.0.1.:8080', '127.0.0.1:8080'],
      ['HTTP', '127.1:8080', '127.0.0.1:8080'],
      ['HTTP', '0x7f.0.0.1:8080', '127.0.0.1:8080'],
      ['HTTP', '2130706433:8080', '127.0.0.1:8080'],
      ['HTTPS', 'API.X.AI', 'api.x.ai:443'],
      ['HTTPS', 'api.x.ai:443', 'api.x.ai:443'],
      ['HTTP', '127.0.0.1:8080', '127.0.0.1:8080'],
    ]) {
      inner.dialled.length = 0;
      assert.equal(h.handle(request(scheme, authority)), 'sent', authority);
      assert.deepEqual(inner.dialled, [dialled], authority);
    }
    assert.equal(h.denied, 0);
  });

  it('refuses other hosts, ports and schemes before the inner handler sees them', () => {
    const inner = recorder();
    const h = allowlistedOutgoingHandler(['http://127.0.0.1:8080', 'https://api.x.ai'], inner);
    for (const [scheme, authority] of [
      ['HTTP', '127.0.0.1:8081'],
      ['HTTP', '127.0.0.2:8080'],
      ['HTTP', 'localhost:8080'],
      ['HTTPS', '127.0.0.1:8080'],
      ['HTTP', 'api.x.ai'],
      ['HTTPS', 'api.x.ai.'],
      ['HTTPS', 'api.x.ai:8443'],
      ['HTTPS', 'evil.example.com'],
    ]) {
      assert.throws(
        () => h.handle(request(scheme, authority)),
        (e) => e?.payload?.tag === 'HTTP-request-denied',
        authority,
      );
    }
    assert.deepEqual(inner.dialled, []);
    assert.equal(h.denied, 8);
  });
});

describe("the hostile guest's manifest", () => {
  it("cannot read the host's variables: refused by name, approved or not, no value shown", () => {
    const env = {
      PROVIDER_HOST_KEY: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
      HTTPS_PROXY: 'http://user:pw@127.0.0.1:9',
      GITHUB_TOKEN: 'ghp_secretsecretsecret',
    };
    for (const approved of [[], Object.keys(env)]) {
      let err;
      try {
        configFromEnv(hostile.manifest, env, { approved });
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, /"leak-key".*PROVIDER_HOST_KEY/);
      for (const value of Object.values(env)) assert.ok(!err.message.includes(value), err.message);
    }
    // Each forbidden setting on its own.
    for (const [key, name] of [
      ['leak-key', 'PROVIDER_HOST_KEY'],
      ['leak-proxy', 'HTTPS_PROXY'],
      ['leak-token', 'GITHUB_TOKEN'],
    ]) {
      const only = {
        ...hostile.manifest,
        settings: hostile.manifest.settings.filter((s) => s.env === undefined || s.key === key),
      };
      assert.throws(() => configFromEnv(only, env, { approved: [name] }), new RegExp(`"${key}".*${name}`));
    }
  });

  it('reaches none of its non-public defaults: they are not on the allowlist', async () => {
    const p = await hostile.instantiate({ secrets: store.tenant('reach') });
    for (const refused of [
      'https://169.254.169.254:443',
      'https://[::ffff:a9fe:a9fe]:443',
      'https://127.0.0.2:47443',
      'https://localhost:47443',
      'http://127.0.0.1:47080',
    ]) {
      assert.ok(!p.allowedOrigins.includes(refused), `${refused} in ${p.allowedOrigins.join(' ')}`);
    }
    assert.ok(p.allowedOrigins.includes('https://api.hostile.example:443'), p.allowedOrigins.join(' '));
    let report;
    try {
      p.chat({
        model: 'fetch',
        messages: [
          {
            role: 'user',
            content: [{ tag: 'text', val: 'https://169.254.169.254/ https://[::ffff:169.254.169.254]/' }],
            toolCalls: [],
            reasoning: [],
          },
        ],
        tools: [],
        stop: [],
      });
      assert.fail('the hostile guest reports in an error');
    } catch (e) {
      assert.equal(e.payload?.tag, 'invalid-input', String(e?.stack ?? e));
      report = e.payload.val;
    }
    assert.equal(p.sandbox.denied, 2, report);
    // The operator's explicit setting is another matter.
    const q = await hostile.instantiate({ secrets: store.tenant('reach'), config: { internal: 'http://127.0.0.2:9' } });
    assert.ok(q.allowedOrigins.includes('http://127.0.0.2:9'), q.allowedOrigins.join(' '));
  });
});
