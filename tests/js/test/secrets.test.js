// The JavaScript secret store on its own: the Rust host's key rules, tenant scoping,
// sealing at rest, and an exclusive lock that holds across processes until disposed.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { ExclusiveLock, SecretStore } from '../host/secrets.js';

const HOLDER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'support/lock-holder.js');
const bytes = (s) => new TextEncoder().encode(s);
const text = (b) => new TextDecoder().decode(b);

let dir;
let store;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'provider-js-secrets-'));
  store = new SecretStore(dir);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The `secret-error` tag a call threw. */
function tagOf(fn) {
  try {
    fn();
  } catch (e) {
    assert.ok(e?.payload?.tag, `not a secret-error: ${e?.stack ?? e}`);
    return e.payload.tag;
  }
  assert.fail('expected the call to fail');
}

/** A lock-holder child process; resolves once it holds the lock. */
async function holder(tenant, name) {
  const child = spawn(process.execPath, [HOLDER, dir, tenant, name], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout });
  const next = () => new Promise((resolve) => lines.once('line', resolve));
  assert.equal(await next(), 'held');
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return { child, next, exited };
}

describe('secret store', () => {
  it('accepts only the keys the WIT allows', () => {
    const t = store.tenant('alice');
    for (const bad of ['', 'Upper', '.hidden', 'a/b', '../x', 'sp ace', 'é', 'k'.repeat(129)]) {
      assert.equal(tagOf(() => t.set(bad, bytes('v'))), 'invalid-key', JSON.stringify(bad));
      assert.equal(tagOf(() => t.get(bad)), 'invalid-key', JSON.stringify(bad));
      assert.equal(tagOf(() => t.lock(bad, 0)), 'invalid-key', JSON.stringify(bad));
    }
    t.set('k'.repeat(128), bytes('v'));
    t.set('a.b_c-9', bytes('v'));
    for (const bad of ['', '.x', 'a/b', 't'.repeat(65)]) {
      assert.equal(tagOf(() => store.tenant(bad)), 'invalid-key', JSON.stringify(bad));
    }
  });

  it('reads, replaces, lists (sorted, by prefix) and deletes', () => {
    const t = store.tenant('lister');
    assert.equal(t.get('missing'), undefined);
    t.set('b.two', bytes('2'));
    t.set('a.one', bytes('1'));
    t.set('b.one', bytes('x'));
    t.set('b.one', bytes('1b'));
    assert.equal(text(t.get('b.one')), '1b');
    assert.deepEqual(t.listKeys(''), ['a.one', 'b.one', 'b.two']);
    assert.deepEqual(t.listKeys('b.'), ['b.one', 'b.two']);
    t.delete('b.one');
    t.delete('b.one'); // absent: still fine
    assert.deepEqual(t.listKeys('b'), ['b.two']);
    assert.equal(t.get('b.one'), undefined);
  });

  it('keeps tenants apart and seals values at rest', () => {
    store.tenant('alice').set('token', bytes('secret-value-alice'));
    assert.equal(store.tenant('bob').get('token'), undefined);
    assert.deepEqual(store.tenant('bob').listKeys(''), []);
    const file = path.join(dir, 'tenants/alice/secrets/token.sec');
    assert.ok(!fs.readFileSync(file).toString('latin1').includes('secret-value'));
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(dir, 'tenants/alice')).mode & 0o777, 0o700);
    // A file copied to another tenant does not open there.
    fs.copyFileSync(file, path.join(dir, 'tenants/bob/secrets/token.sec'));
    assert.equal(tagOf(() => store.tenant('bob').get('token')), 'corrupt');
    // Nor under another master key.
    const other = new SecretStore(dir, { masterKey: Buffer.alloc(32, 7) });
    assert.equal(tagOf(() => other.tenant('alice').get('token')), 'corrupt');
    // The same key from a second store object (another process) does open it.
    assert.equal(text(new SecretStore(dir).tenant('alice').get('token')), 'secret-value-alice');
  });

  it('refuses values and key counts over the limits', () => {
    const small = new SecretStore(dir, { maxValueBytes: 8, maxKeys: 2 });
    const t = small.tenant('limited');
    assert.equal(tagOf(() => t.set('big', bytes('123456789'))), 'too-large');
    t.set('one', bytes('1'));
    t.set('two', bytes('2'));
    t.set('two', bytes('22')); // replacing is not adding
    assert.equal(tagOf(() => t.set('three', bytes('3'))), 'too-large');
  });

  it('holds each tenant to its byte quota (16 MiB by default, as the Rust store)', () => {
    // 1 MiB values under the default quota: a tenant used to reach 1 GiB (1,024 keys).
    const t = store.tenant('filler');
    const mib = new Uint8Array(1024 * 1024 - 64);
    let stored = 0;
    for (; stored < 40; stored++) {
      try {
        t.set(`v${stored}`, mib);
      } catch (e) {
        assert.equal(e?.payload?.tag, 'too-large', `${e?.stack ?? e}`);
        assert.match(e.payload.val, /quota is 16777216/);
        break;
      }
    }
    assert.ok(stored >= 15 && stored < 17, `stored ${stored} MiB`);
    // Replacing a value with one no larger, and deleting, still work at the quota.
    t.set('v0', bytes('small'));
    t.delete('v1');
    t.set('v1', mib);
    // Another tenant is not affected.
    store.tenant('other-filler').set('v', mib);
    const small = new SecretStore(dir, { maxTenantBytes: 200 });
    const q = small.tenant('tiny-quota');
    q.set('a', bytes('x'.repeat(60)));
    assert.equal(tagOf(() => q.set('b', bytes('y'.repeat(120)))), 'too-large');
  });

  it('locks exclusively within a process until disposed', () => {
    const t = store.tenant('alice');
    const lock = t.lock('credentials', 1000);
    assert.ok(lock instanceof ExclusiveLock);
    assert.equal(tagOf(() => t.lock('credentials', 30)), 'lock-timeout');
    assert.equal(tagOf(() => store.tenant('alice').lock('credentials', 0)), 'lock-timeout');
    // Other names and other tenants are independent.
    t.lock('login', 0)[Symbol.dispose]();
    store.tenant('bob').lock('credentials', 0)[Symbol.dispose]();
    lock[Symbol.dispose]();
    assert.equal(lock.held, false);
    t.lock('credentials', 0)[Symbol.dispose]();
  });

  it('locks exclusively across processes', async () => {
    const other = await holder('alice', 'credentials');
    assert.equal(tagOf(() => store.tenant('alice').lock('credentials', 100)), 'lock-timeout');
    other.child.stdin.write('release\n');
    assert.equal(await other.next(), 'released');
    await other.exited;
    store.tenant('alice').lock('credentials', 1000)[Symbol.dispose]();
  });

  it('lets exactly one waiter in when several break the same dead holder\'s lock', { timeout: 60_000 }, async () => {
    // A pid that is certainly gone: a process that has exited.
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => dead.once('exit', resolve));
    const RACER = path.join(path.dirname(HOLDER), 'lock-racer.js');
    const racers = [0, 1, 2, 3, 4, 5, 6, 7].map(
      () =>
        new Promise((resolve) => {
          const child = spawn(
            process.execPath,
            [RACER, dir, 'racers', 'credentials', '150', String(dead.pid)],
            { stdio: ['ignore', 'pipe', 'inherit'] },
          );
          let out = '';
          child.stdout.on('data', (d) => (out += d));
          child.once('exit', (code) => resolve({ code, out }));
        }),
    );
    for (const { code, out } of await Promise.all(racers)) {
      assert.equal(out.trim(), 'done', out);
      assert.equal(code, 0);
    }
  });

  it('breaks a lock whose holder process died', async () => {
    const other = await holder('alice', 'login');
    assert.equal(tagOf(() => store.tenant('alice').lock('login', 50)), 'lock-timeout');
    other.child.kill('SIGKILL');
    await other.exited;
    const lock = store.tenant('alice').lock('login', 2000);
    assert.ok(lock.held);
    lock[Symbol.dispose]();
  });
});
