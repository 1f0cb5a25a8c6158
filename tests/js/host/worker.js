// One plugin instance in a worker thread of its own (see isolate.js for the host's side).
//
// The component runs here, with WASI from preview2-shim (no environment, no arguments),
// the allowlisted `wasi:http` handler, the `wasi:config/store` pairs, and a `secrets`
// import that asks the host thread (where the tenant's store, its locks and its quota
// live) synchronously: post a request, wait on a shared doorbell, take the reply. The host
// thread can thus stop this thread at any instant (`worker.terminate()`) without losing
// anything a call had not already written through the store.
//
// Protocol: calls arrive as messages on `parentPort` (`{op, args}`); replies and secret
// requests go out on `toHost`, each followed by a ring of doorbell 0; answers to secret
// requests come back on `fromHost`, each followed by a ring of doorbell 1.

import { receiveMessageOnPort, parentPort, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';

import { WASIShim } from '@bytecodealliance/preview2-shim/instantiation';

import { configStore } from './config.js';
import { MAX_CORE_INSTANCES, MAX_MEMORIES } from './limits.js';
import { allowlistedOutgoingHandler, noSocketsNoFilesystem } from './sandbox.js';

const { pluginJs, modules, pairs, origins, doorbells, toHost, fromHost, limits } = workerData;
const bell = new Int32Array(doorbells);

function post(message, transfer) {
  toHost.postMessage(message, transfer);
  Atomics.add(bell, 0, 1);
  Atomics.notify(bell, 0);
}

/** A thrown value jco lowers into an import's `err` case (a `secret-error`). */
class SecretFailure extends Error {
  constructor(tag, message) {
    super(message);
    this.payload = { tag, val: message };
  }
}

/** Asks the host thread to run a `secrets` operation; blocks until it answers. */
function ask(op, args) {
  post({ t: 'secrets', op, args });
  for (;;) {
    const seen = Atomics.load(bell, 1);
    const m = receiveMessageOnPort(fromHost);
    if (m) {
      const { ok, err } = m.message;
      if (err) throw new SecretFailure(err.tag, err.message);
      return ok;
    }
    Atomics.wait(bell, 1, seen);
  }
}

const dispose = Symbol.dispose ?? Symbol.for('dispose');

/** The guest's `exclusive-lock`: the lock itself is held by the host thread. */
class ExclusiveLock {
  #id;
  constructor(id) {
    this.#id = id;
  }
  [dispose]() {
    if (this.#id === null) return;
    const id = this.#id;
    this.#id = null;
    ask('unlock', [id]);
  }
}
if (dispose !== Symbol.for('dispose')) {
  ExclusiveLock.prototype[Symbol.for('dispose')] = ExclusiveLock.prototype[dispose];
}

const secrets = {
  ExclusiveLock,
  get: (key) => ask('get', [key]),
  set: (key, value) => ask('set', [key, value]),
  delete: (key) => ask('delete', [key]),
  listKeys: (prefix) => ask('listKeys', [prefix]),
  lock: (name, timeoutMs) => new ExclusiveLock(ask('lock', [name, timeoutMs])),
};

/** `wasi:cli/exit` for a plugin: never returns, and never ends the host. */
function exitTrap(status) {
  const code = typeof status === 'number' ? status : status?.tag === 'err' ? 1 : 0;
  throw new Error(`the plugin called wasi:cli/exit (status ${code})`);
}

// Every memory and core instance the component creates, for the caps and for telling a
// trap at the memory cap (`memory_limit`) from any other.
const memories = [];
let coreInstances = 0;
async function instantiateCore(module, imports) {
  coreInstances += 1;
  const defined = WebAssembly.Module.exports(module).filter((e) => e.kind === 'memory').length;
  if (coreInstances > MAX_CORE_INSTANCES || memories.length + defined > MAX_MEMORIES) {
    throw Object.assign(new Error(
      `the component creates more than ${MAX_CORE_INSTANCES} core module instances or ` +
        `${MAX_MEMORIES} memory (resource limit exceeded)`,
    ), { hostCode: 'resource_limit' });
  }
  const instance = await WebAssembly.instantiate(module, imports);
  for (const v of Object.values(instance.exports)) {
    if (v instanceof WebAssembly.Memory) memories.push(v);
  }
  return instance;
}

/**
 * Caps preview2-shim's `fields` as the Rust host caps them: at most `maxFieldsBytes` of
 * names and values in one, at most `maxFields` non-empty ones alive. Their bytes are
 * `Uint8Array`s outside V8's heap, which the worker's heap limit does not see. The class
 * is this worker's own copy (one instance per worker), so patching it touches no other
 * instance. Past a cap the call traps (`resource_limit`).
 */
function capFields(Fields) {
  const sized = new WeakSet();
  const alive = new FinalizationRegistry(() => {
    live -= 1;
  });
  let live = 0;
  const check = (fields) => {
    let bytes = 0;
    for (const [name, value] of fields.entries()) bytes += name.length + value.length;
    if (bytes > limits.maxFieldsBytes) {
      throw Object.assign(
        new Error(`the plugin built a fields of ${bytes} bytes; the limit is ${limits.maxFieldsBytes} (resource limit exceeded)`),
        { hostCode: 'resource_limit' },
      );
    }
    if (bytes > 0 && !sized.has(fields)) {
      sized.add(fields);
      alive.register(fields, null);
      live += 1;
      if (live > limits.maxFields) {
        throw Object.assign(
          new Error(`the plugin holds more than ${limits.maxFields} fields alive (resource limit exceeded)`),
          { hostCode: 'resource_limit' },
        );
      }
    }
    return fields;
  };
  for (const method of ['append', 'set']) {
    const original = Fields.prototype[method];
    Fields.prototype[method] = function capped(...args) {
      const r = original.apply(this, args);
      check(this);
      return r;
    };
  }
  const fromList = Fields.fromList;
  Fields.fromList = (entries) => check(fromList.call(Fields, entries));
}

// The plugin's standard output goes nowhere, and its stderr (preview2-shim writes both to
// this worker's `process` streams) at most `stderrBytesPerCall` bytes per call, control
// characters (terminal escapes among them) removed, line by line to the host thread,
// which logs each line as the plugin's (never as its own output), as the Rust host does.
const LINE_BYTES = 1024;
let stderrUsed = 0;
let stderrLine = '';
const clean = (line) => line.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g, '').slice(0, LINE_BYTES);
function takeStderr(chunk) {
  const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const before = stderrUsed;
  stderrUsed += buf.length;
  const allowed = Math.max(0, Math.min(buf.length, limits.stderrBytesPerCall - before));
  const parts = (stderrLine + buf.subarray(0, allowed).toString('utf8')).split('\n');
  stderrLine = parts.pop().slice(0, LINE_BYTES);
  const lines = parts.map(clean).filter((l) => l !== '');
  if (allowed < buf.length && before <= limits.stderrBytesPerCall) {
    if (stderrLine) lines.push(clean(stderrLine));
    stderrLine = '';
    lines.push(`(the rest of this call's stderr is dropped: the limit is ${limits.stderrBytesPerCall} bytes per call)`);
    stderrUsed = Infinity; // said once per call
  }
  if (lines.length) post({ t: 'stderr', lines });
}
function endOfCallStderr() {
  if (stderrLine) post({ t: 'stderr', lines: [clean(stderrLine)] });
  stderrLine = '';
  stderrUsed = 0;
}
const sink = (take) =>
  function write(chunk, encoding, callback) {
    take(chunk);
    const done = typeof encoding === 'function' ? encoding : callback;
    if (typeof done === 'function') queueMicrotask(done);
    return true;
  };
process.stdout.write = sink(() => {});
process.stderr.write = sink(takeStderr);

const sandbox = allowlistedOutgoingHandler(origins);
let provider;
try {
  const { instantiate } = await import(pluginJs);
  const wasi = new WASIShim({
    sandbox: { env: {}, args: [], preopens: {}, enableNetwork: false },
  }).getImportObject();
  capFields(wasi['wasi:http/types'].Fields);
  const exports = await instantiate(
    (name) => modules[name],
    {
      ...wasi,
      // Not in the world: refused outright, whatever the shim would do.
      ...noSocketsNoFilesystem(),
      // The shim's exit ends the whole process: here it ends the call, as a trap.
      'wasi:cli/exit': { exit: exitTrap, exitWithCode: exitTrap },
      'wasi:http/outgoing-handler': sandbox,
      'wasi:config/store': configStore(pairs),
      'model-provider:plugin/secrets': secrets,
      'model-provider:plugin/types': {},
    },
    instantiateCore,
  );
  provider = exports.modelProvider;
  endOfCallStderr();
  post({ t: 'ready' });
} catch (e) {
  endOfCallStderr();
  post({ t: 'failed', ...failure(e) });
}

/** What a thrown value is, for the host: a provider error, or a trap and its class. */
function failure(e) {
  if (e && typeof e === 'object' && 'payload' in e && !(e instanceof SecretFailure)) {
    return { kind: 'provider', payload: e.payload, message: String(e.message ?? '') };
  }
  const message = String(e?.message ?? e);
  if (e?.hostCode) return { kind: 'host', code: e.hostCode, message };
  // A trap with the memory at its cap is the cap: the guest's allocator could not grow it
  // and aborted. (A grow of more than an eighth of the cap at once that fails is reported
  // as a plain trap.)
  const cap = limits.memoryBytes;
  const full = memories.some((m) => m.buffer.byteLength > cap - cap / 8);
  if (e instanceof WebAssembly.RuntimeError && full) {
    return {
      kind: 'host',
      code: 'memory_limit',
      message: `the plugin reached its memory limit of ${cap} bytes (${message})`,
    };
  }
  return { kind: 'host', code: 'plugin_trap', message: `the plugin trapped: ${message}` };
}

// Streams the host holds handles to, by id.
const streams = new Map();
let nextStream = 1;

function run(op, args) {
  switch (op) {
    case 'chat':
      return provider.chat(args[0]);
    case 'streamOpen': {
      const s = provider.ChatStream.open(args[0]);
      const id = nextStream++;
      streams.set(id, s);
      return id;
    }
    case 'streamNext': {
      const s = streams.get(args[0]);
      if (!s) throw Object.assign(new Error('no such stream'), { hostCode: 'stream_closed' });
      return s.next();
    }
    case 'streamDrop': {
      const s = streams.get(args[0]);
      streams.delete(args[0]);
      s?.[dispose]?.();
      return undefined;
    }
    default:
      return provider[op](...args);
  }
}

parentPort.on('message', ({ op, args }) => {
  let reply;
  try {
    reply = { t: 'ok', value: run(op, args) };
  } catch (e) {
    reply = { t: 'err', ...failure(e) };
  }
  reply.denied = sandbox.denied;
  endOfCallStderr();
  // What crosses to the host is bounded: serialised here (where the worker's heap bounds
  // it), refused past the bound, else moved without a copy.
  let bytes;
  try {
    bytes = v8.serialize(reply);
  } catch (e) {
    bytes = v8.serialize({ t: 'err', kind: 'host', code: 'plugin_trap', message: String(e), denied: sandbox.denied });
  }
  if (bytes.length > limits.maxLiftedBytes) {
    bytes = v8.serialize({
      t: 'err',
      kind: 'host',
      code: 'resource_limit',
      message: `the plugin handed the host ${bytes.length} bytes in one call; the limit is ${limits.maxLiftedBytes}`,
      denied: sandbox.denied,
    });
  }
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  const buffer = whole ? bytes.buffer : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
  post({ t: 'reply', buffer }, [buffer]);
});
