// The budgets of the JavaScript host, as the Rust host has them (host/runtime/src/limits.rs;
// tests/all/hostile.rs and memory_bounds.rs drive the same guest): a call that spins, or
// blocks on the host, is stopped at its budget (`call_timeout`); an instance that grows its
// memory stops at its cap (`memory_limit`); a result over the lift bound is refused
// (`resource_limit`); a lock wait ends with the call's budget; a worker out of heap is
// `resource_limit`. Each time the instance is discarded, its locks released, and the next
// call runs on a fresh one. The calls that could hang run in a child process the test
// bounds from outside, so a missing budget fails the test instead of hanging it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { WASIShim } from '@bytecodealliance/preview2-shim/instantiation';

import { capMemories, DEFAULT_MEMORY_BYTES, loadPlugin, SecretStore } from '../host/index.js';
import { noSocketsNoFilesystem } from '../host/sandbox.js';
import { hostileWasm } from './support/peers.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** Generous outer bounds: a sanity check that nothing runs on, not a performance target. */
const OUTER_MS = 120_000;

let dir;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'js-limits-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

let runs = 0;
/** Runs `calls` of the hostile guest in a child process (see support/hostile-call.js). */
function hostileRun({ limits, calls, hold, tenant = 't', collectStderr = false }) {
  const stateDir = path.join(dir, `run-${++runs}`);
  fs.mkdirSync(stateDir);
  const plan = { stateDir, tenant, limits, calls, hold, collectStderr };
  const began = Date.now();
  const child = spawnSync(process.execPath, [path.join(HERE, 'support/hostile-call.js'), JSON.stringify(plan)], {
    encoding: 'utf8',
    timeout: OUTER_MS,
    killSignal: 'SIGKILL',
  });
  const took = Date.now() - began;
  assert.ok(
    child.status === 0,
    `the run did not finish (status ${child.status}, signal ${child.signal}, ${took} ms)\n${child.stderr.slice(-2000)}`,
  );
  return { ...JSON.parse(child.stdout.trim().split('\n').pop()), stderrBytes: child.stderr.length, stderrHead: child.stderr.slice(0, 4096) };
}

const served = (r) => r.ok === true && r.defaultModelId === 'none';
const request = (model, text = 'x') => ({ model, messages: [{ role: 'user', content: text }] });

describe('per-call budgets of the hostile guest', () => {
  it('stops an export that spins forever at its budget, and serves the next call', () => {
    const out = hostileRun({
      limits: { callTimeoutMs: 1000 },
      calls: [{ op: 'status' }, { op: 'models', args: [false] }, { op: 'status' }, { op: 'models', args: [false] }],
    });
    const [spin, next, spin2, next2] = out.results;
    for (const s of [spin, spin2]) {
      assert.equal(s.code, 'call_timeout', JSON.stringify(s));
      assert.ok(s.ms >= 900 && s.ms < 30_000, `${s.ms} ms`);
    }
    assert.ok(served(next) && served(next2), JSON.stringify(out.results));
    assert.equal(out.instances, 3, 'a fresh instance after each stopped one');
  });

  it('loses nothing the plugin stored when its instance is stopped', () => {
    // `refresh` stores a marker; `status` then spins and its instance is stopped; the next
    // instance (`logout` reports what it finds) still reads the marker.
    const out = hostileRun({
      limits: { callTimeoutMs: 1000 },
      calls: [{ op: 'refresh' }, { op: 'status' }, { op: 'logout' }],
    });
    const [stored, spin, found] = out.results;
    assert.match(stored.message, /marker written/);
    assert.equal(spin.code, 'call_timeout');
    assert.match(found.message, /marker=found:mine/);
    assert.equal(out.instances, 2);
  });

  it('bounds a call blocked on the host in wall-clock time and releases the lock it held', () => {
    // `models(force)` takes the credentials lock, then blocks on a clock that never fires:
    // no guest instruction runs, only a wall-clock deadline ends it.
    const out = hostileRun({
      limits: { callTimeoutMs: 2000 },
      calls: [{ op: 'models', args: [true] }, { op: 'models', args: [true] }, { op: 'models', args: [false] }],
    });
    const [first, second, next] = out.results;
    // Had the first instance kept the lock, the second's 1 s wait would end in a storage
    // error instead of blocking until its own budget.
    for (const r of [first, second]) {
      assert.equal(r.code, 'call_timeout', JSON.stringify(r));
      assert.ok(r.ms < 20_000, `${r.ms} ms`);
    }
    assert.ok(served(next), JSON.stringify(next));
    assert.ok(out.lockFree, 'the discarded instance left the credentials lock held');
  });

  it('ends a lock wait with the call budget', () => {
    // This process holds the tenant's credentials lock; the guest waits 1,000 ms for it, on
    // a budget of 300 ms: the wait ends with the budget, not with the guest's timeout.
    const out = hostileRun({
      hold: 'credentials',
      limits: { callTimeoutMs: 300 },
      calls: [{ op: 'models', args: [true] }, { op: 'models', args: [false] }],
    });
    const [waited, next] = out.results;
    assert.equal(waited.code, 'call_timeout', JSON.stringify(waited));
    assert.ok(waited.ms < 900, `${waited.ms} ms: the wait outlived the budget`);
    assert.ok(served(next), JSON.stringify(next));
  });

  it('stops unbounded memory growth at the instance cap (64 MiB, configurable)', () => {
    // `start` allocates 1 MiB after 1 MiB for ever: uncapped, wasm32 lets it reach 4 GiB.
    const out = hostileRun({ limits: { callTimeoutMs: 60_000 }, calls: [{ op: 'start' }, { op: 'models', args: [false] }] });
    const [hoard, next] = out.results;
    assert.equal(hoard.code, 'memory_limit', JSON.stringify(hoard));
    assert.match(hoard.message, /memory limit of 67108864 bytes/);
    assert.ok(served(next), JSON.stringify(next));
    assert.ok(out.maxRssMiB < 1024, `the process peaked at ${out.maxRssMiB} MiB`);

    const small = hostileRun({ limits: { memoryBytes: 16 << 20 }, calls: [{ op: 'start' }] });
    assert.equal(small.results[0].code, 'memory_limit', JSON.stringify(small.results[0]));
    assert.match(small.results[0].message, /memory limit of 16777216 bytes/);
  });

  it('refuses a result over the lift bound before the host holds it, and serves one within it', () => {
    // 300,000 tiny models fit in the guest's 64 MiB but serialise to about 20 MiB.
    const out = hostileRun({
      limits: {},
      calls: [
        { op: 'models', args: [false, 'many:300000'] },
        { op: 'models', args: [false, 'many:1000'] },
        { op: 'models', args: [false] },
      ],
    });
    const [many, fine, next] = out.results;
    assert.equal(many.code, 'resource_limit', JSON.stringify(many));
    assert.match(many.message, /limit is 8388608/);
    assert.equal(fine.ok, true, JSON.stringify(fine));
    assert.equal(fine.length, 1000);
    assert.ok(served(next), JSON.stringify(next));
    assert.ok(out.maxRssMiB < 1024, `the process peaked at ${out.maxRssMiB} MiB`);

    // The bound is the embedder's to set.
    const tight = hostileRun({ limits: { maxLiftedBytes: 16 * 1024 }, calls: [{ op: 'models', args: [false, 'many:1000'] }] });
    assert.equal(tight.results[0].code, 'resource_limit', JSON.stringify(tight.results[0]));
  });

  it('caps the fields a plugin builds (16 KiB each, 2,048 alive), outside the heap limit too', () => {
    // The guest's default flood: 5,000 fields of 15 headers of 8 KiB (600 MiB of
    // Uint8Arrays, which V8's heap limit does not count).
    const out = hostileRun({
      limits: { callTimeoutMs: 60_000 },
      calls: [
        { op: 'chat', args: [request('fields-flood')] },
        { op: 'chat', args: [request('fields-flood', '8 10 100000')] },
        { op: 'chat', args: [request('fields-flood', '100 15 50')] },
        { op: 'models', args: [false] },
      ],
    });
    const [wide, many, fine, next] = out.results;
    assert.equal(wide.code, 'resource_limit', JSON.stringify(wide));
    assert.match(wide.message, /the limit is 16384/);
    assert.equal(many.code, 'resource_limit', JSON.stringify(many));
    assert.match(many.message, /more than 2048 fields alive/);
    assert.equal(fine.tag, 'invalid-input', JSON.stringify(fine));
    assert.equal(fine.message, 'held=50 bytes=75000 refused=0');
    assert.ok(served(next), JSON.stringify(next));
    assert.ok(out.maxRssMiB < 1024, `the process peaked at ${out.maxRssMiB} MiB`);
  });

  it("caps the plugin's stderr per call, strips control characters and marks its lines", () => {
    // `stderr-flood` writes 20 MiB of lines with terminal escapes posing as host output.
    const out = hostileRun({
      limits: {},
      collectStderr: true,
      calls: [{ op: 'chat', args: [request('stderr-flood')] }, { op: 'chat', args: [request('stderr-flood')] }],
    });
    assert.equal(out.results[0].message, 'flooded', JSON.stringify(out.results[0]));
    const dropped = out.stderrLines.filter((l) => /the rest of this call's stderr is dropped/.test(l));
    assert.equal(dropped.length, 2, 'the budget is per call, said once each');
    const bytes = out.stderrLines.reduce((n, l) => n + Buffer.byteLength(l), 0);
    assert.ok(bytes <= 2 * 16 * 1024, `${bytes} bytes of stderr lines`);
    assert.ok(!out.stderrLines.some((l) => /[\u0000-\u001f\u007f]/.test(l)), 'a control character got through');
    // Nothing reached this process's own stderr either (the default logger is not used).
    assert.ok(out.stderrBytes < 64 * 1024, `${out.stderrBytes} bytes on the process's stderr`);

    // By default each line goes to the process's stderr, marked as the plugin's.
    const logged = hostileRun({ limits: {}, tenant: 'loud', calls: [{ op: 'chat', args: [request('stderr-flood')] }] });
    assert.ok(logged.stderrBytes > 1024 && logged.stderrBytes < 64 * 1024, `${logged.stderrBytes} bytes`);
    assert.match(logged.stderrHead, /^plugin_stderr tenant="loud": \[2J\[31m\{"ok":true/m);
    assert.ok(!logged.stderrHead.includes('\u001b'), 'an escape reached the terminal');
  });

  it('stops a worker that fills its JavaScript heap (resource_limit), and serves the next call', () => {
    // 1,000,000 tiny headers held in preview2-shim's `fields` (their caps lifted here):
    // JavaScript objects, in the worker's heap, capped at 64 MiB.
    const out = hostileRun({
      limits: { heapBytes: 64 << 20, callTimeoutMs: 60_000, maxFields: 1e9 },
      calls: [{ op: 'chat', args: [request('fields-flood', '8 10 100000')] }, { op: 'models', args: [false] }],
    });
    const [flood, next] = out.results;
    assert.equal(flood.code, 'resource_limit', JSON.stringify(flood));
    assert.match(flood.message, /heap is limited to 67108864 bytes/);
    assert.ok(flood.ms < 30_000, `${flood.ms} ms: seen only at the deadline`);
    assert.ok(served(next), JSON.stringify(next));
  });
});

describe('the memory cap in the core module', () => {
  // (module (memory (export "memory") 1)): no maximum.
  const noMax = Uint8Array.of(
    0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    5, 3, 1, 0x00, 1,
    7, 10, 1, 6, ...Buffer.from('memory'), 2, 0,
  );

  it('writes the cap as the maximum of a memory that declares none', async () => {
    const grow = async (bytes) => {
      const { instance } = await WebAssembly.instantiate(bytes);
      const memory = instance.exports.memory;
      try {
        memory.grow(4);
        return memory.buffer.byteLength;
      } catch {
        return 'refused';
      }
    };
    assert.equal(await grow(noMax), 5 * 65536, 'uncapped, it grows');
    const capped = capMemories(noMax, 2 * 65536);
    assert.equal(capped.memories, 1);
    assert.equal(await grow(capped.bytes), 'refused');
  });

  it('refuses a memory that starts over the cap, and lowers a larger maximum', async () => {
    assert.throws(() => capMemories(noMax, 0), (e) => e.code === 'resource_limit');
    // (memory 1 100): the maximum comes down to the cap.
    const withMax = Uint8Array.of(
      0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
      5, 4, 1, 0x01, 1, 100,
      7, 10, 1, 6, ...Buffer.from('memory'), 2, 0,
    );
    const { instance } = await WebAssembly.instantiate(capMemories(withMax, 3 * 65536).bytes);
    assert.throws(() => instance.exports.memory.grow(3), RangeError);
    instance.exports.memory.grow(2);
    assert.equal(DEFAULT_MEMORY_BYTES, 64 << 20);
  });
});

describe('the cost of the budgets', () => {
  it('prints the overhead of a call through the worker against a call on this thread', async () => {
    const store = new SecretStore(path.join(dir, 'overhead'));
    const hostile = await loadPlugin(hostileWasm(), { outDir: path.join(dir, 'overhead-plugin') });
    let began = performance.now();
    const p = await hostile.instantiate({ secrets: store.tenant('o') });
    const spawnMs = performance.now() - began;

    // The same component as jco gives it, on this thread with no budget.
    const { instantiate } = await import(path.join(hostile.dir, 'plugin.js'));
    const direct = (
      await instantiate(
        (name) => WebAssembly.compile(fs.readFileSync(path.join(hostile.dir, name))),
        {
          ...new WASIShim({ sandbox: { env: {}, args: [], preopens: {}, enableNetwork: false } }).getImportObject(),
          ...noSocketsNoFilesystem(),
          'model-provider:plugin/secrets': store.tenant('o').imports(),
          'model-provider:plugin/types': {},
          'wasi:config/store': { get: () => undefined, getAll: () => [] },
          'wasi:http/outgoing-handler': { handle: () => { throw { payload: { tag: 'HTTP-request-denied' } }; } },
        },
      )
    ).modelProvider;

    const perCall = (f, n) => {
      for (let i = 0; i < 50; i++) f(); // warm up
      const t = performance.now();
      for (let i = 0; i < n; i++) f();
      return ((performance.now() - t) / n) * 1000;
    };
    const rows = [
      ['models() (an empty list)', () => p.models(false), () => direct.models(false)],
      ['models() of 1,000 entries', () => p.models(false, 'many:1000'), () => direct.models(false, 'many:1000')],
      ['apiKeyStatus()', () => p.apiKeyStatus(), () => direct.apiKeyStatus()],
    ];
    const lines = [`instantiation in a worker: ${spawnMs.toFixed(1)} ms`];
    for (const [what, viaWorker, onThread] of rows) {
      const w = perCall(viaWorker, 300);
      const d = perCall(onThread, 300);
      lines.push(`${what}: ${w.toFixed(1)} µs through the worker, ${d.toFixed(1)} µs on this thread (+${(w - d).toFixed(1)} µs)`);
    }
    assert.equal(p.models(false).defaultModelId, 'none');
    p.dispose();
    console.log(`overhead of the budgets per call:\n  ${lines.join('\n  ')}`);
  });
});
