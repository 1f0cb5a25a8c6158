// A plugin instance that traps while holding a lock: the JavaScript host releases the lock
// (the guest never will) and refuses further calls on that instance, as the Rust host
// discards a trapped instance. A guest calling `wasi:cli/exit` traps the same way instead
// of ending the host's process.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadPlugin, SecretStore } from '../host/index.js';
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
  it('gives back the locks it held and is not called again', async () => {
    const p = await hostile.instantiate({ secrets: store.tenant('alice') });
    // A real trap (the guest's panic aborts: `unreachable`), not a request jco refused.
    assert.throws(() => p.chat(request('lock-then-trap')), WebAssembly.RuntimeError);
    // Free at once, for this process and any other.
    const lock = store.tenant('alice').lock('credentials', 0);
    lock.release();
    assert.throws(() => p.models(false), /trapped earlier/);

    // A provider error is not a trap: the instance goes on.
    const q = await hostile.instantiate({ secrets: store.tenant('bob') });
    assert.throws(() => q.chat(request('anything')), (e) => e.payload?.tag === 'invalid-input');
    assert.equal(q.models(false).defaultModelId, 'none');
  });

  it('ends only the call when the guest calls wasi:cli/exit, not this process', async () => {
    const p = await hostile.instantiate({ secrets: store.tenant('carol') });
    assert.throws(() => p.chat(request('exit')), /called wasi:cli\/exit \(status 1\)/);
    assert.throws(() => p.models(false), /trapped earlier/);
    const q = await hostile.instantiate({ secrets: store.tenant('carol') });
    assert.equal(q.models(false).defaultModelId, 'none');
  });
});
