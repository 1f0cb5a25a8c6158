// What the plugin is configured with (the `wasi:config/store` import), and the origins the
// sandbox lets it reach — both derived from the plugin's own manifest, so nothing here
// knows any vendor. Same origin rules as the Rust host (host/runtime/src/config.rs): an
// endpoint must be https://, or http:// on a loopback host named explicitly (for local test
// servers).

/** The `user-agent` this host sets unless the embedder overrides it. */
export const HOST_USER_AGENT = 'provider-host-js/0.1.0';

/** Loopback as the Rust host says it: `localhost`, 127.0.0.0/8, `[::1]`. */
function isLoopback(host) {
  if (host === 'localhost' || host === '[::1]') return true;
  const octets = host.split('.');
  return (
    octets.length === 4 &&
    octets[0] === '127' &&
    octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255)
  );
}

/** A configuration that names something the sandbox would never allow. */
export class ConfigError extends Error {}

/**
 * `scheme://host:port` of a URL, lower-case, with the scheme's default port made explicit.
 * Throws ConfigError for anything but https, or http on loopback.
 */
export function originOf(url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`not an absolute URL: ${JSON.stringify(url)}`);
  }
  const scheme = u.protocol.slice(0, -1);
  if (scheme !== 'https' && scheme !== 'http') {
    throw new ConfigError(`only http(s) origins are allowed: ${url}`);
  }
  if (u.username || u.password) throw new ConfigError(`credentials in a URL are refused: ${url}`);
  const host = u.hostname.toLowerCase();
  if (scheme === 'http' && !isLoopback(host)) {
    throw new ConfigError(`plain http is allowed only on loopback: ${url}`);
  }
  const port = u.port || (scheme === 'https' ? '443' : '80');
  return `${scheme}://${host}:${port}`;
}

/**
 * The overrides `config` ({key: value} with the manifest's keys; undefined or empty values
 * are ignored) checked against `manifest`: an unknown key, an endpoint that is neither
 * https nor http on loopback, or a route name that names no route is a ConfigError. The
 * host's own `user-agent` is added unless overridden. Returns the pairs the
 * `wasi:config/store` import answers (overrides only: the plugin applies its defaults).
 */
export function configPairs(manifest, config = {}) {
  const byKey = new Map(manifest.settings.map((s) => [s.key, s]));
  const routes = new Set(manifest.routes.map((r) => r.name));
  const pairs = new Map();
  if (byKey.has('user-agent')) pairs.set('user-agent', HOST_USER_AGENT);
  for (const [key, value] of Object.entries(config)) {
    if (value === undefined || value === '') continue;
    const setting = byKey.get(key);
    if (!setting) {
      throw new ConfigError(
        `unknown configuration key ${JSON.stringify(key)}: ${manifest.id} reads ${[...byKey.keys()].join(', ')}`,
      );
    }
    if (typeof value !== 'string') throw new ConfigError(`configuration key ${key}: not a string`);
    if (setting.kind === 'endpoint') originOf(value);
    if (setting.kind === 'route-name' && !routes.has(value)) {
      throw new ConfigError(
        `configuration key ${key}: ${JSON.stringify(value)} names no route (routes: ${[...routes].join(', ')})`,
      );
    }
    pairs.set(key, value);
  }
  return Object.freeze([...pairs.entries()].map(([k, v]) => Object.freeze([k, v])));
}

/** The value the plugin runs with for each setting: the override, else the default. */
export function effectiveSettings(manifest, pairs) {
  const given = new Map(pairs);
  return Object.fromEntries(manifest.settings.map((s) => [s.key, given.get(s.key) ?? s.defaultValue]));
}

/**
 * The routes whose endpoints the sandbox allows: those named in `enabled`, plus every route
 * a route-name setting names (the default route). Throws ConfigError for an unknown name.
 */
export function enabledRoutes(manifest, settings, enabled = []) {
  const routes = new Set(manifest.routes.map((r) => r.name));
  for (const name of enabled) {
    if (!routes.has(name)) {
      throw new ConfigError(`unknown route ${JSON.stringify(name)} (routes: ${[...routes].join(', ')})`);
    }
  }
  const defaults = manifest.settings.filter((s) => s.kind === 'route-name').map((s) => settings[s.key]);
  return new Set([...enabled, ...defaults]);
}

/**
 * The origins the plugin may reach: every endpoint setting's effective value, an endpoint
 * bound to a route only while that route is enabled.
 */
export function manifestAllowlist(manifest, settings, routes) {
  const origins = manifest.settings
    .filter((s) => s.kind === 'endpoint' && (s.route === undefined || routes.has(s.route)))
    .map((s) => originOf(settings[s.key]));
  return [...new Set(origins)];
}

/**
 * The configuration a command-line host reads from the environment: each setting with an
 * `env` name that `env` sets, under its key.
 */
export function configFromEnv(manifest, env = process.env) {
  return Object.fromEntries(
    manifest.settings.filter((s) => s.env !== undefined && env[s.env]).map((s) => [s.key, env[s.env]]),
  );
}

/** The `wasi:config/store` import over fixed pairs. */
export function configStore(pairs) {
  const map = new Map(pairs);
  return {
    get: (key) => map.get(key),
    getAll: () => pairs.map(([k, v]) => [k, v]),
  };
}
