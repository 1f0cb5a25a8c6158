// A plugin instance that traps while holding a lock: the JavaScript host releases the lock
// (the guest never will) and discards that instance, as the Rust host does; the next call
// runs on a fresh one. A guest calling `wasi:cli/exit` traps the same way instead of
// ending the host's process.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HostError, loadPlugin, SecretStore } from '../host/index.js';
import { hostileWasm } from './support/peers.js';

let dir;
let store;
let hostile;

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'js-traps-'));
  store = new SecretStore(path.join(dir, 'state'));
  hostile = await loadPlugin(hostileWasm(), { outDir: path.join(dir, 'hostile') });
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

const request = (model) => ({
  model,
  messages: [{ role: 'user', content: [{ tag: 'text', val: 'x' }], toolCalls: [], reasoning: [] }],
  tools: [],
  stop: [],
});

describe('a trapping instance', () => {
  it('gives back the locks it held and is discarded: the next call runs on a fresh instance', async () => {
    const p = await hostile.instantiate({ secrets: store.tenant('alice') });
    // A real trap (the guest's panic aborts: `unreachable`), not a request jco refused.
    assert.throws(
      () => p.chat(request('lock-then-trap')),
      (e) => e instanceof HostError && e.code === 'plugin_trap' && /unreachable/.test(e.message),
    );
    // Free at once, for this process and any other.
    const lock = store.tenant('alice').lock('credentials', 0);
    lock.release();
    assert.equal(p.instances, 2, 'a fresh instance is started at once');
    assert.equal(p.models(false).defaultModelId, 'none');
    assert.equal(p.instances, 2);

    // A provider error is not a trap: the instance goes on.
    const q = await hostile.instantiate({ secrets: store.tenant('bob') });
    assert.throws(() => q.chat(request('anything')), (e) => e.payload?.tag === 'invalid-input');
    assert.equal(q.models(false).defaultModelId, 'none');
  });

  it('ends only the call when the guest calls wasi:cli/exit, not this process', async () => {
    const p = await hostile.instantiate({ secrets: store.tenant('carol') });
    assert.throws(
      () => p.chat(request('exit')),
      (e) => e.code === 'plugin_trap' && /called wasi:cli\/exit \(status 1\)/.test(e.message),
    );
    assert.equal(p.models(false).defaultModelId, 'none');
    assert.equal(p.instances, 2);
  });
});
