// A JavaScript host for the model-provider plugin component: transpiles it with jco and
// instantiates it once per tenant with that tenant's capabilities — `secrets` (files
// under the state directory), `config`, and `wasi:http/outgoing-handler` behind an origin
// allowlist — and WASI from preview2-shim with no environment and no arguments, no
// sockets and no filesystem.
//
// jco's "instantiation" output is used (not `--map`): its imports are an object passed
// per instance, so one process can hold many tenants, each with its own store, config
// and allowlist, over one compiled module.

import { rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { transpile } from '@bytecodealliance/jco';
import { WASIShim } from '@bytecodealliance/preview2-shim/instantiation';

import { defaultAllowlist, providerConfig } from './config.js';
import { chatRequest } from './request.js';
import { allowlistedOutgoingHandler, noSocketsNoFilesystem } from './sandbox.js';

export { XAI_DEFAULTS, ConfigError, defaultAllowlist, originOf, providerConfig } from './config.js';
export { chatRequest } from './request.js';
export { allowlistedOutgoingHandler, noSocketsNoFilesystem } from './sandbox.js';
export { StreamAssembler, collectStream } from './stream.js';
export { ExclusiveLock, SecretError, SecretStore, TenantSecrets } from './secrets.js';

/**
 * Transpiles the component at `wasmPath` into `outDir` (default: a temp directory removed
 * when the process exits) and returns a loader of instances.
 */
export async function loadPlugin(wasmPath, { outDir } = {}) {
  const bytes = await fs.readFile(wasmPath);
  let dir = outDir;
  if (dir === undefined) {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'provider-plugin-'));
    // A temp dir we made is ours to remove (the compiled modules stay in memory).
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  await fs.mkdir(dir, { recursive: true });
  const { files } = await transpile(bytes, { name: 'plugin', instantiation: 'async' });
  for (const [name, data] of Object.entries(files)) {
    if (name.endsWith('.d.ts')) continue;
    await fs.writeFile(path.join(dir, name), data);
  }
  const { instantiate } = await import(pathToFileURL(path.join(dir, 'plugin.js')).href);

  // Core modules are compiled once and shared by every instance.
  const compiled = new Map();
  const getCoreModule = (name) => {
    if (!compiled.has(name)) {
      compiled.set(name, fs.readFile(path.join(dir, name)).then((b) => WebAssembly.compile(b)));
    }
    return compiled.get(name);
  };

  return {
    /** Where the transpiled files are. */
    dir,
    /**
     * A fresh instance for one tenant. Returns the `model-provider` exports
     * (`status`, `start`, `poll`, `logout`, `refresh`, `models`, `chat`, `ChatStream`)
     * plus `sandbox` (the allowlisted handler, with its `denied` counter). `chat` and
     * `ChatStream.open` take a `chat-request` as jco maps it, completed by `chatRequest`
     * (empty lists may be left out, a message's content may be a string).
     *
     * @param {object} o
     * @param {import('./secrets.js').TenantSecrets} o.secrets the tenant's storage
     * @param {object} [o.config] overrides of XAI_DEFAULTS ({issuer, apiBase, ...})
     * @param {string[]} [o.allowedOrigins] default: the issuer's and the API's origins
     */
    async instantiate({ secrets, config = {}, allowedOrigins }) {
      const cfg = providerConfig(config);
      const sandbox = allowlistedOutgoingHandler(allowedOrigins ?? defaultAllowlist(cfg));
      const wasi = new WASIShim({
        sandbox: { env: {}, args: [], preopens: {}, enableNetwork: false },
      }).getImportObject();
      // The locks this instance holds: released if it traps (it will never drop them) or
      // is disposed, as the Rust host releases them with a discarded store.
      const held = new Set();
      const tenantImports = secrets.imports();
      const exports = await instantiate(getCoreModule, {
        ...wasi,
        // Not in the world: refused outright, whatever the shim would do.
        ...noSocketsNoFilesystem(),
        // The shim's exit ends this whole process: here it ends only the call, as a trap
        // (the instance is discarded), like the Rust host.
        'wasi:cli/exit': { exit: exitTrap, exitWithCode: exitTrap },
        'wasi:http/outgoing-handler': sandbox,
        'model-provider:plugin/secrets': {
          ...tenantImports,
          lock: (name, timeoutMs) => {
            for (const l of held) if (!l.held) held.delete(l);
            const lock = tenantImports.lock(name, timeoutMs);
            held.add(lock);
            return lock;
          },
        },
        'model-provider:plugin/config': { get: () => ({ ...cfg }) },
        'model-provider:plugin/types': {},
      });
      return guarded(exports.modelProvider, sandbox, () => {
        for (const l of held) l.release();
        held.clear();
      });
    },
  };
}

/** `wasi:cli/exit` for a plugin: never returns, and never ends the host. */
function exitTrap(status) {
  const code = typeof status === 'number' ? status : status?.tag === 'err' ? 1 : 0;
  throw new Error(`the plugin called wasi:cli/exit (status ${code})`);
}

/**
 * The exports with trap handling: a provider error (`e.payload`) passes through; anything
 * else is a trap, after which the instance is unusable: its locks are released and every
 * later call throws. `dispose()` releases the locks of an instance the embedder drops.
 */
function guarded(provider, sandbox, releaseLocks) {
  let trapped = null;
  const call = (f) => {
    if (trapped) throw new Error(`the plugin instance trapped earlier (${trapped}); instantiate a new one`);
    try {
      return f();
    } catch (e) {
      if (!(e && typeof e === 'object' && 'payload' in e)) {
        trapped = String(e && e.message ? e.message : e);
        releaseLocks();
      }
      throw e;
    }
  };
  const wrapStream = (stream) => ({
    next: () => call(() => stream.next()),
    [Symbol.dispose ?? Symbol.for('dispose')]: () => stream[Symbol.dispose ?? Symbol.for('dispose')](),
  });
  const api = { sandbox, dispose: releaseLocks };
  for (const name of ['status', 'start', 'poll', 'logout', 'refresh', 'models']) {
    api[name] = (...args) => call(() => provider[name](...args));
  }
  api.chat = (request) => call(() => provider.chat(chatRequest(request)));
  api.ChatStream = {
    open: (request) => wrapStream(call(() => provider.ChatStream.open(chatRequest(request)))),
  };
  return api;
}
