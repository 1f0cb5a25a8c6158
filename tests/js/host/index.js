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

import { rmSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { transpile } from '@bytecodealliance/jco';
import { WASIShim } from '@bytecodealliance/preview2-shim/instantiation';

import {
  configPairs,
  configStore,
  effectiveSettings,
  enabledRoutes,
  manifestAllowlist,
} from './config.js';
import { chatRequest } from './request.js';
import { allowlistedOutgoingHandler, noSocketsNoFilesystem } from './sandbox.js';
import { ExclusiveLock, SecretError } from './secrets.js';

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

  /** One instance over these capabilities (the world's imports). */
  const instanceWith = ({ secretsImports, pairs, sandbox }) =>
    instantiate(getCoreModule, {
      ...new WASIShim({
        sandbox: { env: {}, args: [], preopens: {}, enableNetwork: false },
      }).getImportObject(),
      // Not in the world: refused outright, whatever the shim would do.
      ...noSocketsNoFilesystem(),
      // The shim's exit ends this whole process: here it ends only the call, as a trap
      // (the instance is discarded), like the Rust host.
      'wasi:cli/exit': { exit: exitTrap, exitWithCode: exitTrap },
      'wasi:http/outgoing-handler': sandbox,
      'wasi:config/store': configStore(pairs),
      'model-provider:plugin/secrets': secretsImports,
      'model-provider:plugin/types': {},
    });

  // The manifest, asked once of an instance that can reach nothing: `manifest` calls no
  // import, and everything else this host derives (configuration keys, the allowlist)
  // comes from it.
  const probe = await instanceWith({
    secretsImports: noSecrets(),
    pairs: [],
    sandbox: allowlistedOutgoingHandler([]),
  });
  const manifest = Object.freeze(probe.modelProvider.manifest());

  return {
    /** Where the transpiled files are. */
    dir,
    /**
     * What the plugin says about itself: `{id, displayName, settings: [{key, env,
     * description, defaultValue, kind, route}], routes: [{name, description, credential,
     * modelPrefix}]}`.
     */
    manifest,
    /**
     * A fresh instance for one tenant. Returns the `model-provider` exports (`manifest`,
     * `status`, `start`, `poll`, `logout`, `refresh`, `models`, `setApiKey`,
     * `apiKeyStatus`, `deleteApiKey`, `usage`, `chat`, `ChatStream`) plus `sandbox` (the
     * allowlisted handler, with its `denied` counter) and `allowedOrigins`. `chat` and
     * `ChatStream.open` take a `chat-request` as jco maps it, completed by `chatRequest`
     * (empty lists may be left out, a message's content may be a string).
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
     */
    async instantiate({ secrets, config = {}, routes = [], allowedOrigins, grantDefaultRoute = false }) {
      const pairs = configPairs(manifest, config);
      const settings = effectiveSettings(manifest, pairs);
      const enabled = enabledRoutes(manifest, settings, routes, {
        overrides: Object.fromEntries(pairs),
        grantDefaultRoute,
      });
      const origins = allowedOrigins ?? manifestAllowlist(manifest, settings, enabled);
      const sandbox = allowlistedOutgoingHandler(origins);
      // The locks this instance holds: released if it traps (it will never drop them) or
      // is disposed, as the Rust host releases them with a discarded store.
      const held = new Set();
      const tenantImports = secrets.imports();
      const exports = await instanceWith({
        secretsImports: {
          ...tenantImports,
          lock: (name, timeoutMs) => {
            for (const l of held) if (!l.held) held.delete(l);
            const lock = tenantImports.lock(name, timeoutMs);
            held.add(lock);
            return lock;
          },
        },
        pairs,
        sandbox,
      });
      const api = guarded(exports.modelProvider, sandbox, () => {
        for (const l of held) l.release();
        held.clear();
      });
      api.allowedOrigins = Object.freeze([...origins]);
      return api;
    },
  };
}

/** `secrets` for the manifest probe: every call fails (none is made). */
function noSecrets() {
  const refuse = () => {
    throw new SecretError('io', 'no storage for the manifest probe');
  };
  return { ExclusiveLock, get: refuse, set: refuse, delete: refuse, listKeys: refuse, lock: refuse };
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
    api[name] = (...args) => call(() => provider[name](...args));
  }
  api.chat = (request) => call(() => provider.chat(chatRequest(request)));
  api.ChatStream = {
    open: (request) => wrapStream(call(() => provider.ChatStream.open(chatRequest(request)))),
  };
  return api;
}
