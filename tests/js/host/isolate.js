// One plugin instance behind its budgets: the component runs in a worker thread of its own
// (worker.js) and every call has a deadline. The calling thread keeps the tenant's store,
// its locks and the quota; it waits for the call's reply, serving the worker's `secrets`
// requests as they come, and when the budget runs out it stops the worker at once
// (`worker.terminate()` interrupts wasm, even a loop that never calls out) and releases
// the locks the instance held. A discarded instance loses nothing: a secret is written
// here, whole and atomically, while the worker waits, so a kill never lands inside a write;
// a fresh instance is started at once, for the next call.
//
// Calls stay synchronous, as the plugin's exports are: the calling thread blocks on
// `Atomics.wait` (as preview2-shim already blocks it on HTTP), and messages are taken with
// `receiveMessageOnPort`, never through the event loop.

import { once } from 'node:events';
import v8 from 'node:v8';
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';

import { HostError } from './limits.js';

const WORKER = new URL('./worker.js', import.meta.url);
/** How often a waiting call looks whether its worker died by itself (heap limit). */
const SLICE_MS = 100;

/**
 * A `provider-error` of the plugin, as jco throws it: `payload` is `{tag, val}`.
 * (Anything else an instance throws is a `HostError`.)
 */
export class ComponentError extends Error {
  constructor(payload, message) {
    super(message || `${String(payload?.tag)} (see error.payload)`);
    this.name = 'ComponentError';
    Object.defineProperty(this, 'payload', { value: payload, enumerable: true });
  }
}

const now = () => performance.now();

/**
 * A plugin instance in a worker. `call(op, args)` runs one export (`chat`, `models`, …, or
 * `streamOpen`/`streamNext`/`streamDrop`) within `limits.callTimeoutMs`, instantiating
 * first when there is no live instance (within `limits.instantiateTimeoutMs`, before the
 * call's budget starts).
 */
export class Isolate {
  #spawnData;
  #secrets;
  #limits;
  /** The live worker: `{worker, bell, up, down, locks, generation}`, or null. */
  #live = null;
  #generation = 0;
  #lockIds = 0;
  #disposed = false;
  /** Where the plugin's stderr lines go (already capped and cleaned by the worker). */
  #stderr;
  /** Refusals of the allowlist, over every instance this isolate ran. */
  denied = 0;
  #deniedBefore = 0;
  /** Instances started, and the last call's timings (for measuring the overhead). */
  stats = { instances: 0 };

  /**
   * @param {object} o
   * @param {string} o.pluginJs URL of jco's transpiled `plugin.js`
   * @param {Record<string, WebAssembly.Module>} o.modules its core modules, memories capped
   * @param {Array<[string, string]>} o.pairs the `wasi:config/store` pairs
   * @param {string[]} o.origins the allowlist
   * @param {object} o.secrets the `secrets` import functions (`get`, `set`, `delete`,
   *   `listKeys`, `lock`), run on this thread
   * @param {ReturnType<import('./limits.js').resolveLimits>} o.limits
   * @param {(line: string) => void} [o.stderr] gets each line the plugin writes to stderr
   */
  constructor({ pluginJs, modules, pairs, origins, secrets, limits, stderr }) {
    this.#spawnData = { pluginJs, modules, pairs, origins, limits };
    this.#secrets = secrets;
    this.#limits = limits;
    this.#stderr = stderr ?? (() => {});
  }

  /** The generation of the live instance (changes when one is discarded), or null. */
  get generation() {
    return this.#live ? this.#live.generation : null;
  }

  /** Starts an instance now, if none is live (a call would otherwise start it). */
  start() {
    this.#ensure(now() + this.#limits.instantiateTimeoutMs);
    return this.#live.generation;
  }

  /**
   * Starts an instance if none is live, and resolves once its worker is reported online
   * or gone (from then on a worker that dies by itself is noticed within 100 ms, not only
   * at the call's deadline).
   */
  online() {
    return (this.#live ?? this.#spawn()).online;
  }

  /** Runs one export call within the budget; see the class comment. */
  call(op, args = []) {
    if (this.#disposed) throw new HostError('plugin_trap', 'the instance was disposed');
    const live = this.#ensure(now() + this.#limits.instantiateTimeoutMs);
    const deadline = now() + this.#limits.callTimeoutMs;
    try {
      live.worker.postMessage({ op, args });
      for (;;) {
        const m = this.#next(live, deadline);
        if (m.t === 'secrets') {
          this.#serve(live, m, deadline);
          continue;
        }
        if (m.t !== 'reply') continue;
        const r = v8.deserialize(Buffer.from(m.buffer));
        this.denied = this.#deniedBefore + r.denied;
        if (r.t === 'ok') return r.value;
        if (r.kind === 'provider') throw new ComponentError(r.payload, r.message);
        // A trap or a limit: this instance is done.
        this.#discard(live);
        throw new HostError(r.code, r.message);
      }
    } finally {
      // The next instance starts now, while the embedder handles this failure: the next
      // call need not wait for it, and it is online (watched) by then.
      if (this.#live === null && !this.#disposed) this.#spawn();
    }
  }

  /** Stops the instance and releases its locks; later calls fail. */
  dispose() {
    this.#disposed = true;
    if (this.#live) this.#discard(this.#live);
  }

  /** The live instance, started (or its start awaited) within `deadline` if need be. */
  #ensure(deadline) {
    const live = this.#live ?? this.#spawn();
    if (live.ready) return live;
    const m = this.#next(
      live,
      deadline,
      `the plugin instance took longer than ${this.#limits.instantiateTimeoutMs} ms to start and was stopped`,
    );
    if (m.t === 'ready') {
      live.ready = true;
      return live;
    }
    this.#discard(live);
    if (m.kind === 'provider') throw new ComponentError(m.payload, m.message);
    throw new HostError(m.code ?? 'plugin_error', `the plugin could not be instantiated: ${m.message}`);
  }

  /** Starts a worker (it instantiates the component by itself) and makes it the live one. */
  #spawn() {
    const doorbells = new SharedArrayBuffer(8);
    const up = new MessageChannel();
    const down = new MessageChannel();
    const { limits } = this.#spawnData;
    const worker = new Worker(WORKER, {
      workerData: { ...this.#spawnData, doorbells, toHost: up.port2, fromHost: down.port1 },
      transferList: [up.port2, down.port1],
      // Nothing of this process's environment reaches the worker's JavaScript either.
      env: {},
      resourceLimits: { maxOldGenerationSizeMb: Math.max(16, Math.ceil(limits.heapBytes / 2 ** 20)) },
    });
    // Its failures are read from its replies (or its death seen): never an unhandled event.
    worker.on('error', (e) => {
      live.error = e;
    });
    worker.once('exit', () => {
      live.exited = true;
    });
    this.#generation += 1;
    this.#deniedBefore = this.denied;
    const live = {
      worker,
      bell: new Int32Array(doorbells),
      up: up.port1,
      down: down.port2,
      locks: new Map(),
      generation: this.#generation,
      ready: false,
      // Kept referenced until online (awaiting that must keep the process alive), then
      // not: an instance never keeps the process from exiting.
      online: Promise.race([once(worker, 'online'), once(worker, 'exit')]).then(
        () => worker.unref(),
        () => {},
      ),
      exited: false,
      error: null,
    };
    this.#live = live;
    this.stats.instances += 1;
    return live;
  }

  /** The worker's next message; past the deadline, or if it died, discards it and throws. */
  #next(live, deadline, late = `the plugin call ran past its budget of ${this.#limits.callTimeoutMs} ms and was stopped`) {
    for (;;) {
      const seen = Atomics.load(live.bell, 0);
      const m = receiveMessageOnPort(live.up);
      if (m?.message.t === 'stderr') {
        for (const line of m.message.lines) this.#stderr(line);
        continue;
      }
      if (m) return m.message;
      const left = deadline - now();
      if (left <= 0) {
        this.#discard(live);
        throw new HostError('call_timeout', late);
      }
      const waited = Atomics.wait(live.bell, 0, seen, Math.min(left, SLICE_MS));
      if (waited === 'timed-out' && (live.exited || stopped(live.worker))) {
        this.#discard(live);
        const why = live.error ? `: ${live.error.code ?? live.error.message}` : '';
        throw new HostError(
          'resource_limit',
          `the plugin's worker stopped by itself (its JavaScript heap is limited to ${this.#limits.heapBytes} bytes)${why}`,
        );
      }
    }
  }

  /** Runs one `secrets` request of the worker here, and answers it. */
  #serve(live, { op, args }, deadline) {
    let reply;
    try {
      reply = { ok: this.#secretOp(live, op, args, deadline) };
    } catch (e) {
      if (e instanceof HostError) throw e;
      reply = { err: { tag: e?.payload?.tag ?? 'io', message: String(e?.payload?.val ?? e?.message ?? e) } };
    }
    live.down.postMessage(reply);
    Atomics.add(live.bell, 1, 1);
    Atomics.notify(live.bell, 1);
  }

  #secretOp(live, op, args, deadline) {
    switch (op) {
      case 'get':
      case 'set':
      case 'delete':
      case 'listKeys':
        return this.#secrets[op](...args);
      case 'lock': {
        // A lock wait ends with the call's budget: waiting longer could only end in a
        // timeout of the call anyway.
        const [name, timeoutMs] = args;
        const left = Math.max(0, Math.floor(deadline - now()));
        try {
          const lock = this.#secrets.lock(name, Math.min(timeoutMs, left));
          this.#lockIds += 1;
          live.locks.set(this.#lockIds, lock);
          return this.#lockIds;
        } catch (e) {
          if (e?.payload?.tag === 'lock-timeout' && timeoutMs > left) {
            this.#discard(live);
            throw new HostError(
              'call_timeout',
              `the plugin call ran past its budget of ${this.#limits.callTimeoutMs} ms waiting for lock "${name}" and was stopped`,
            );
          }
          throw e;
        }
      }
      case 'unlock': {
        const lock = live.locks.get(args[0]);
        live.locks.delete(args[0]);
        lock?.release();
        return undefined;
      }
      default:
        throw new HostError('plugin_trap', `unknown secrets request ${op}`);
    }
  }

  #discard(live) {
    if (this.#live === live) this.#live = null;
    live.worker.terminate().catch(() => {});
    // The instance will never drop them; the Rust host releases them with the store.
    for (const lock of live.locks.values()) lock.release();
    live.locks.clear();
    live.up.close();
    live.down.close();
  }
}

/**
 * Whether a worker has stopped by itself (its heap limit), seen without the event loop:
 * Node reports a stopped worker's event-loop idle time as -1. Where it does not, the
 * call's deadline still ends the wait.
 */
function stopped(worker) {
  try {
    return worker.performance.eventLoopUtilization().idle < 0;
  } catch {
    return false;
  }
}
