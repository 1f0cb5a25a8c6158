// A JavaScript host for the model-provider plugin component: transpiles it with jco, reads
// its manifest once, and instantiates it once per tenant with that tenant's capabilities —
// `secrets` (files under the state directory), `wasi:config/store` (the embedder's
// overrides of the manifest's settings), and `wasi:http/outgoing-handler` behind an origin
// allowlist derived from the manifest — and WASI from preview2-shim with no environment and
// no arguments, no sockets and no filesystem. Nothing here knows the vendor: every
// endpoint, key and route comes from the plugin's manifest.
//
// jco's "instantiation" output is used (not `--map`): its imports are an object passed
// per instance, so one process can hold many tenants, each with its own store, config
// and allowlist, over one compiled module.
//
// Every instance runs behind the Rust host's budgets (limits.js, isolate.js): its core
// modules' memories are capped (64 MiB), each instance runs in a worker thread of its own
// with a time budget per call (300 s), stopped when it runs out, and what one call hands
// back is bounded (8 MiB); a stopped or trapped instance is discarded, its locks released,
// and the next call gets a fresh one.

import { rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { transpile } from '@bytecodealliance/jco';

import { configPairs, effectiveSettings, enabledRoutes, manifestAllowlist } from './config.js';
import { Isolate } from './isolate.js';
import { HostError, capMemories, resolveLimits } from './limits.js';
import { chatRequest } from './request.js';
import { SecretError } from './secrets.js';

export {
  ConfigError,
  HOST_USER_AGENT,
  configFromEnv,
  configPairs,
  effectiveSettings,
  enabledRoutes,
  manifestAllowlist,
  originOf,
} from './config.js';
export { ComponentError } from './isolate.js';
export {
  DEFAULT_CALL_TIMEOUT_MS,
  DEFAULT_HEAP_BYTES,
  DEFAULT_MAX_FIELDS,
  DEFAULT_MAX_FIELDS_BYTES,
  DEFAULT_MAX_LIFTED_BYTES,
  DEFAULT_MEMORY_BYTES,
  DEFAULT_STDERR_BYTES_PER_CALL,
  HostError,
  capMemories,
} from './limits.js';
export { chatRequest } from './request.js';
export { allowlistedOutgoingHandler, noSocketsNoFilesystem } from './sandbox.js';
export { StreamAssembler, collectStream } from './stream.js';
export { ExclusiveLock, SecretError, SecretStore, TenantSecrets } from './secrets.js';

const dispose = Symbol.dispose ?? Symbol.for('dispose');

/**
 * Transpiles the component at `wasmPath` into `outDir` (default: a temp directory removed
 * when the process exits) and returns a loader of instances. `limits` are the defaults of
 * every instance (see `instantiate`).
 */
export async function loadPlugin(wasmPath, { outDir, limits: pluginLimits = {} } = {}) {
  const defaults = resolveLimits(pluginLimits);
  const bytes = await fs.readFile(wasmPath);
  let dir = outDir;
  if (dir === undefined) {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'provider-plugin-'));
    // A temp dir we made is ours to remove (the compiled modules stay in memory).
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  await fs.mkdir(dir, { recursive: true });
  const { files } = await transpile(bytes, { name: 'plugin', instantiation: 'async' });
  const coreNames = [];
  for (const [name, data] of Object.entries(files)) {
    if (name.endsWith('.d.ts')) continue;
    await fs.writeFile(path.join(dir, name), data);
    if (name.endsWith('.wasm')) coreNames.push(name);
  }
  const pluginJs = pathToFileURL(path.join(dir, 'plugin.js')).href;

  // Core modules, compiled once per memory cap (the cap is written into each module's
  // memory maximum) and shared by every instance's worker.
  const compiled = new Map();
  const modulesFor = (memoryBytes) => {
    if (!compiled.has(memoryBytes)) {
      compiled.set(
        memoryBytes,
        Promise.all(
          coreNames.map(async (name) => {
            const capped = capMemories(await fs.readFile(path.join(dir, name)), memoryBytes);
            return [name, await WebAssembly.compile(capped.bytes)];
          }),
        ).then(Object.fromEntries),
      );
    }
    return compiled.get(memoryBytes);
  };

  // The manifest, asked once of an instance that can reach nothing (within the budgets
  // too: a component could spin in `manifest`); everything else this host derives
  // (configuration keys, the allowlist) comes from it.
  const probe = new Isolate({
    pluginJs,
    modules: await modulesFor(defaults.memoryBytes),
    pairs: [],
    origins: [],
    secrets: noSecrets(),
    limits: defaults,
    stderr: (line) => process.stderr.write(`plugin_stderr (manifest probe): ${line}\n`),
  });
  let manifest;
  try {
    manifest = Object.freeze(probe.call('manifest'));
  } finally {
    probe.dispose();
  }

  return {
    /** Where the transpiled files are. */
    dir,
    /** The instances' default limits (`loadPlugin`'s `limits`, defaults filled in). */
    limits: defaults,
    /**
     * What the plugin says about itself: `{id, displayName, settings: [{key, env,
     * description, defaultValue, kind, route}], routes: [{name, description, credential,
     * modelPrefix}]}`.
     */
    manifest,
    /**
     * A fresh instance for one tenant, in a worker thread of its own. Returns the
     * `model-provider` exports (`manifest`, `status`, `start`, `poll`, `logout`,
     * `refresh`, `models`, `setApiKey`, `apiKeyStatus`, `deleteApiKey`, `usage`, `chat`,
     * `ChatStream`), each synchronous, plus `sandbox` (its `denied` counter),
     * `allowedOrigins`, `limits`, `instances` (how many instances it started: one more
     * after each discarded one) and `dispose()`. `chat` and `ChatStream.open` take a
     * `chat-request` as jco maps it, completed by `chatRequest` (empty lists may be left
     * out, a message's content may be a string).
     *
     * A provider error is thrown as a `ComponentError` (`payload` `{tag, val}`). A call
     * that runs past `limits.callTimeoutMs` (host waits included), traps, fills its
     * memory or hands back more than `limits.maxLiftedBytes` throws a `HostError` whose
     * `code` is the Rust host's (`call_timeout`, `plugin_trap`, `memory_limit`,
     * `resource_limit`); that instance is discarded (its locks released) and the next call
     * runs on a fresh one.
     *
     * Refused before anything runs (ConfigError): an override under a key the manifest
     * does not name, an endpoint that is neither https nor http on loopback, a route name
     * that names no route.
     *
     * @param {object} o
     * @param {import('./secrets.js').TenantSecrets} o.secrets the tenant's storage
     * @param {object} [o.config] overrides of the manifest's settings, by key
     *   (`{'api-base': 'http://127.0.0.1:8080/v1'}`); `configFromEnv(plugin.manifest)`
     *   reads them from the settings' environment variables
     * @param {string[]} [o.routes] routes to enable besides the default route: an endpoint
     *   bound to a route (e.g. `subscription-base`) is allowed only while it is enabled
     * @param {string[]} [o.allowedOrigins] instead of the allowlist the manifest implies
     * @param {boolean} [o.grantDefaultRoute] the plugin's own default route opens its
     *   route-bound endpoint (grant it to a component you trust; otherwise only `routes`
     *   and an operator's override of the route setting do)
     * @param {{memoryBytes?: number, callTimeoutMs?: number, instantiateTimeoutMs?: number, maxLiftedBytes?: number,
     *   heapBytes?: number, maxFieldsBytes?: number, maxFields?: number}} [o.limits] this
     *   instance's budgets, over the plugin's: its linear memory (64 MiB), one call
     *   (300,000 ms), what one call hands back (8 MiB serialised), its worker's JavaScript
     *   heap (256 MiB), one `wasi:http` `fields` (16 KiB), non-empty `fields` alive (2,048),
     *   stderr per call (16 KiB; the rest is dropped)
     * @param {(line: string) => void} [o.stderr] gets each line the plugin writes to
     *   stderr, control characters removed (default: this process's stderr, each line
     *   marked `plugin_stderr tenant="…":`); the plugin's stdout goes nowhere
     */
    async instantiate({
      secrets,
      config = {},
      routes = [],
      allowedOrigins,
      grantDefaultRoute = false,
      limits = {},
      stderr,
    }) {
      const pairs = configPairs(manifest, config);
      const settings = effectiveSettings(manifest, pairs);
      const enabled = enabledRoutes(manifest, settings, routes, {
        overrides: Object.fromEntries(pairs),
        grantDefaultRoute,
      });
      const origins = allowedOrigins ?? manifestAllowlist(manifest, settings, enabled);
      const resolved = resolveLimits({ ...defaults, ...limits });
      const isolate = new Isolate({
        pluginJs,
        modules: await modulesFor(resolved.memoryBytes),
        pairs,
        origins: [...origins],
        secrets: secrets.imports(),
        limits: resolved,
        stderr: stderr ?? stderrLogger(secrets.tenant),
      });
      // Online first (async), so that a worker dying while it instantiates is seen at once.
      await isolate.online();
      isolate.start();
      const api = exportsOf(isolate);
      api.allowedOrigins = Object.freeze([...origins]);
      api.limits = Object.freeze(resolved);
      return api;
    },
  };
}

/** The default home of a plugin's stderr: this process's stderr, each line marked as the plugin's. */
function stderrLogger(tenant) {
  return (line) => process.stderr.write(`plugin_stderr tenant=${JSON.stringify(String(tenant))}: ${line}\n`);
}

/** `secrets` for the manifest probe: every call fails (none is made). */
function noSecrets() {
  const refuse = () => {
    throw new SecretError('io', 'no storage for the manifest probe');
  };
  return { get: refuse, set: refuse, delete: refuse, listKeys: refuse, lock: refuse };
}

/**
 * The exports of an isolated instance, as jco's would be (synchronous), with streams as
 * handles into the worker: a stream outlives no discarded instance (`stream_closed`).
 */
function exportsOf(isolate) {
  const api = {
    sandbox: Object.freeze({
      get denied() {
        return isolate.denied;
      },
    }),
    /** Instances started so far (one more after each discarded one). */
    get instances() {
      return isolate.stats.instances;
    },
    /** Stops the instance and releases its locks; later calls fail. */
    dispose: () => isolate.dispose(),
  };
  for (const name of [
    'manifest',
    'status',
    'start',
    'poll',
    'logout',
    'refresh',
    'models',
    'setApiKey',
    'apiKeyStatus',
    'deleteApiKey',
    'usage',
  ]) {
    api[name] = (...args) => isolate.call(name, args);
  }
  api.chat = (request) => isolate.call('chat', [chatRequest(request)]);
  api.ChatStream = {
    open: (request) => {
      const id = isolate.call('streamOpen', [chatRequest(request)]);
      const generation = isolate.generation;
      const live = () => isolate.generation === generation;
      const stream = {
        next: () => {
          if (!live()) {
            throw new HostError('stream_closed', 'the instance of this stream was discarded; open a new stream');
          }
          return isolate.call('streamNext', [id]);
        },
        [dispose]: () => {
          if (live()) isolate.call('streamDrop', [id]);
        },
      };
      stream[Symbol.for('dispose')] = stream[dispose];
      return stream;
    },
  };
  return api;
}
