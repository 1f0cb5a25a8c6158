// The per-call budgets of the JavaScript host, matching the Rust host's defaults
// (host/runtime/src/limits.rs): a memory cap per instance, a time budget per call, and a
// bound on what one call hands back to the host. The failures are `HostError`s whose
// `code` is the Rust host's wire spelling (host/runtime/src/code.rs).

/** Most bytes an instance's linear memory may hold (the Rust host's default). */
export const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;
/** Longest one export call may run, host waits included (the Rust host's default). */
export const DEFAULT_CALL_TIMEOUT_MS = 300_000;
/**
 * Longest an instance may take to start: its worker's boot, the component's compile and its
 * start functions (a host cost of 250–500 ms, more on a loaded machine). Counted apart from
 * the call that needed the instance, so a short call budget is not eaten by the start.
 */
export const DEFAULT_INSTANTIATE_TIMEOUT_MS = 30_000;
/** Most bytes one call may hand the host: its result (or error) as serialised. */
export const DEFAULT_MAX_LIFTED_BYTES = 8 * 1024 * 1024;
/**
 * The V8 heap of an instance's worker (its JavaScript side: the lifted values, preview2-shim's
 * resources such as HTTP `fields`). Past it the worker is stopped (`resource_limit`).
 */
export const DEFAULT_HEAP_BYTES = 256 * 1024 * 1024;
/** Largest `fields` (headers or trailers) a plugin may build: names and values (the Rust host's). */
export const DEFAULT_MAX_FIELDS_BYTES = 16 * 1024;
/** Most non-empty `fields` an instance may hold alive at once (the Rust host caps all resources at 2,048). */
export const DEFAULT_MAX_FIELDS = 2048;
/** Bytes of stderr a plugin may write per call (the Rust host's); the rest is dropped. */
export const DEFAULT_STDERR_BYTES_PER_CALL = 16 * 1024;
/** Core instances, and memories among them, a component may create (as in the Rust host). */
export const MAX_CORE_INSTANCES = 4;
/** See `MAX_CORE_INSTANCES`. */
export const MAX_MEMORIES = 1;

const PAGE = 65536;

/**
 * A failure of the host, not a `provider-error` of the plugin: `code` is one of
 * `call_timeout` (the call's budget ran out), `memory_limit` (the instance reached its
 * memory cap), `resource_limit` (a result over the lift bound, a worker out of heap, a
 * component with too many memories or instances), `plugin_trap` (the plugin trapped or
 * called `wasi:cli/exit`) or `stream_closed` (a stream of an instance discarded since).
 * The instance that failed is discarded; the next call gets a fresh one.
 */
export class HostError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'HostError';
    this.code = code;
  }
}

/** The limits of one instance, defaults filled in; refuses nonsense. */
export function resolveLimits(limits = {}) {
  const out = {
    memoryBytes: limits.memoryBytes ?? DEFAULT_MEMORY_BYTES,
    callTimeoutMs: limits.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
    instantiateTimeoutMs: limits.instantiateTimeoutMs ?? DEFAULT_INSTANTIATE_TIMEOUT_MS,
    maxLiftedBytes: limits.maxLiftedBytes ?? DEFAULT_MAX_LIFTED_BYTES,
    heapBytes: limits.heapBytes ?? DEFAULT_HEAP_BYTES,
    maxFieldsBytes: limits.maxFieldsBytes ?? DEFAULT_MAX_FIELDS_BYTES,
    maxFields: limits.maxFields ?? DEFAULT_MAX_FIELDS,
    stderrBytesPerCall: limits.stderrBytesPerCall ?? DEFAULT_STDERR_BYTES_PER_CALL,
  };
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isSafeInteger(v) || v <= 0) {
      throw new TypeError(`limits.${k} must be a positive integer, not ${String(v)}`);
    }
  }
  if (out.memoryBytes % PAGE !== 0) {
    throw new TypeError(`limits.memoryBytes must be a multiple of 64 KiB, not ${out.memoryBytes}`);
  }
  return out;
}

// ---- the memory cap, written into the core module --------------------------------------

function readU32(bytes, at) {
  let value = 0;
  let shift = 0;
  for (let i = 0; ; i++) {
    if (at + i >= bytes.length || i > 9) throw new HostError('plugin_error', 'malformed core module (LEB128)');
    const b = bytes[at + i];
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) return { value, next: at + i + 1 };
  }
}

function leb(value) {
  const out = [];
  let v = value;
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    out.push(b);
  } while (v > 0);
  return out;
}

/**
 * The core module `bytes` with the maximum of every memory it defines lowered to
 * `maxBytes` (a memory declaring no maximum, or a larger one, gets this one), so a
 * `memory.grow` past the cap fails inside the guest (its allocator then aborts: a trap)
 * instead of taking the host's memory. Returns `{bytes, memories}` (memories defined).
 * A memory whose initial size is already over the cap is refused (`resource_limit`).
 * Imported memories are left alone: they are another module's, capped there.
 */
export function capMemories(bytes, maxBytes) {
  const src = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (src.length < 8 || src[0] !== 0 || src[1] !== 0x61 || src[2] !== 0x73 || src[3] !== 0x6d) {
    throw new HostError('plugin_error', 'not a core wasm module');
  }
  const capPages = Math.floor(maxBytes / PAGE);
  const parts = [src.subarray(0, 8)];
  let memories = 0;
  let at = 8;
  while (at < src.length) {
    const id = src[at];
    const { value: size, next } = readU32(src, at + 1);
    const end = next + size;
    if (end > src.length) throw new HostError('plugin_error', 'malformed core module (section size)');
    if (id !== 5) {
      parts.push(src.subarray(at, end));
      at = end;
      continue;
    }
    // The memory section: a vector of limits.
    let p = next;
    const { value: count, next: afterCount } = readU32(src, p);
    p = afterCount;
    const body = [...leb(count)];
    for (let i = 0; i < count; i++) {
      const flags = src[p++];
      if (flags & ~0x07) throw new HostError('plugin_error', `unknown memory limits flags ${flags}`);
      const min = readU32(src, p);
      p = min.next;
      let max = Infinity;
      if (flags & 0x01) {
        const m = readU32(src, p);
        p = m.next;
        max = m.value;
      }
      if (min.value > capPages) {
        throw new HostError(
          'resource_limit',
          `a memory of the plugin starts at ${min.value * PAGE} bytes; the limit is ${maxBytes}`,
        );
      }
      body.push(flags | 0x01, ...leb(min.value), ...leb(Math.min(max, capPages)));
      memories += 1;
    }
    if (p !== end) throw new HostError('plugin_error', 'malformed core module (memory section)');
    parts.push(Uint8Array.of(5, ...leb(body.length), ...body));
    at = end;
  }
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let o = 0;
  for (const part of parts) {
    out.set(part, o);
    o += part.length;
  }
  return { bytes: out, memories };
}
