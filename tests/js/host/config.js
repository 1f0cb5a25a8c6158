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
 * The routes whose endpoints the sandbox allows: those named in `enabled`, a route that
 * the operator's override of a route-name setting names, and the plugin's own default
 * route only when the host grants it (`grantDefaultRoute`: it trusts the component, as the
 * Rust CLI trusts its embedded plugin). A plugin never opens a route-bound endpoint by its
 * own default. Throws ConfigError for an unknown name.
 *
 * @param {object} [o]
 * @param {object} [o.overrides] the operator's overrides, by key
 * @param {boolean} [o.grantDefaultRoute] the plugin's default route-name opens its route
 */
export function enabledRoutes(manifest, settings, enabled = [], { overrides = {}, grantDefaultRoute = false } = {}) {
  const routes = new Set(manifest.routes.map((r) => r.name));
  for (const name of enabled) {
    if (!routes.has(name)) {
      throw new ConfigError(`unknown route ${JSON.stringify(name)} (routes: ${[...routes].join(', ')})`);
    }
  }
  const named = manifest.settings
    .filter((s) => s.kind === 'route-name' && (grantDefaultRoute || overrides[s.key] !== undefined))
    .map((s) => settings[s.key]);
  return new Set([...enabled, ...named]);
}

/** The 32-bit value of a dotted IPv4 address, or undefined. */
function ipv4(text) {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.map(Number);
}

function publicV4([a, b, c]) {
  return !(
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 100 && b >= 64 && b < 128) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b < 32) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0 && (c === 0 || c === 2)) ||
    (a === 198 && (b === 18 || b === 19)) ||
    (a === 198 && b === 51 && c === 100) ||
    (a === 203 && b === 0 && c === 113) ||
    a >= 224
  );
}

/** The eight 16-bit groups of an IPv6 address (WHATWG-serialised, no brackets). */
function ipv6Groups(text) {
  const [head, tail = undefined] = text.split('::');
  const part = (s) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = part(head);
  const t = tail === undefined ? [] : part(tail);
  return [...h, ...Array(8 - h.length - t.length).fill(0), ...t];
}

/**
 * Whether `host` (as WHATWG URL serialises it: a name, dotted IPv4 or bracketed IPv6) is
 * a public address a plugin's own default may reach; a name is `true` (the JS host cannot
 * check what it resolves to: preview2-shim resolves and connects) except `localhost`.
 * The Rust host's `is_public_ip`.
 */
export function isPublicHost(host) {
  if (host === 'localhost' || host.endsWith('.localhost')) return false;
  const v4 = ipv4(host);
  if (v4) return publicV4(v4);
  if (!host.startsWith('[')) return true;
  const g = ipv6Groups(host.slice(1, -1));
  const embedded = (hi, lo) => [hi >> 8, hi & 255, lo >> 8, lo & 255];
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return publicV4(embedded(g[6], g[7]));
  if (g.slice(0, 6).every((x) => x === 0)) return g[6] !== 0 && publicV4(embedded(g[6], g[7]));
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return publicV4(embedded(g[6], g[7]));
  if (g[0] === 0x2002) return publicV4(embedded(g[1], g[2]));
  return !(
    (g[0] & 0xfe00) === 0xfc00 ||
    (g[0] & 0xffc0) === 0xfe80 ||
    (g[0] & 0xffc0) === 0xfec0 ||
    (g[0] & 0xff00) === 0xff00 ||
    (g[0] === 0x2001 && g[1] === 0x0db8)
  );
}

/**
 * The origins the plugin may reach: every endpoint setting's effective value, an endpoint
 * bound to a route only while that route is enabled. A value that is the plugin's own
 * default may not be plain http, `localhost` or a non-public address (an operator who
 * wants one sets it explicitly, to another value than the default).
 */
export function manifestAllowlist(manifest, settings, routes) {
  const origins = manifest.settings
    .filter((s) => s.kind === 'endpoint' && (s.route === undefined || routes.has(s.route)))
    .filter((s) => {
      if (settings[s.key] !== s.defaultValue) return true;
      const origin = originOf(s.defaultValue);
      const host = origin.slice(origin.indexOf('://') + 3, origin.lastIndexOf(':'));
      return origin.startsWith('https://') && isPublicHost(host);
    })
    .map((s) => originOf(settings[s.key]));
  return [...new Set(origins)];
}

/**
 * The prefix of the environment names a plugin may read without the operator's approval:
 * the first word (letters and digits) of its manifest id, upper-cased, then `_`
 * (`xai-grok` → `XAI_`); none when that word is shorter than three characters. The Rust
 * host's rule (`env_prefix` in host/runtime/src/config.rs).
 */
export function envPrefix(pluginId) {
  const word = /^[A-Za-z0-9]*/.exec(pluginId)[0];
  return word.length >= 3 ? `${word.toUpperCase()}_` : undefined;
}

const FORBIDDEN_ENV_PREFIXES = [
  ['PROVIDER_HOST_', "the host's own configuration (its master key, its database)"],
  ['AWS_', 'cloud credentials'],
  ['AZURE_', 'cloud credentials'],
  ['GOOGLE_', 'cloud credentials'],
  ['GCLOUD_', 'cloud credentials'],
  ['ARM_', 'cloud credentials'],
  ['ACTIONS_', 'CI credentials'],
];
const PROXY = "the host's proxy (which may carry credentials)";
const CREDENTIAL = 'a credential';
const FORBIDDEN_ENV_NAMES = new Map([
  ['HTTP_PROXY', PROXY],
  ['HTTPS_PROXY', PROXY],
  ['ALL_PROXY', PROXY],
  ['NO_PROXY', "the host's proxy settings"],
  ['FTP_PROXY', PROXY],
  ['SSL_CERT_FILE', "the host's trust store"],
  ['SSL_CERT_DIR', "the host's trust store"],
  ['NODE_OPTIONS', "the host's own configuration"],
  ['NODE_EXTRA_CA_CERTS', "the host's trust store"],
  ['RUST_LOG', "the host's own configuration"],
  ...[
    'GITHUB_TOKEN',
    'GH_TOKEN',
    'GITLAB_TOKEN',
    'CI_JOB_TOKEN',
    'NPM_TOKEN',
    'NODE_AUTH_TOKEN',
    'CARGO_REGISTRY_TOKEN',
    'DOCKER_PASSWORD',
    'DOCKER_AUTH_CONFIG',
    'VAULT_TOKEN',
    'PGPASSWORD',
    'DATABASE_URL',
    'SSH_AUTH_SOCK',
    'KUBECONFIG',
  ].map((n) => [n, CREDENTIAL]),
]);

/**
 * Why no plugin may read the environment variable `name`, or undefined: the host's own
 * variables (`PROVIDER_HOST_*`), proxy variables in any case, known credential variables.
 * The operator cannot approve these.
 */
export function forbiddenEnv(name) {
  const upper = name.toUpperCase();
  const prefix = FORBIDDEN_ENV_PREFIXES.find(([p]) => upper.startsWith(p));
  return prefix ? prefix[1] : FORBIDDEN_ENV_NAMES.get(upper);
}

/**
 * The configuration a command-line host reads from the environment: each setting with an
 * `env` name that `env` sets (not blank), under its key. Every `env` name of the manifest
 * is checked first, set or not: a name no plugin may read (`forbiddenEnv`) is refused even
 * if approved; any other must carry the plugin's prefix (`envPrefix`) or be in `approved`.
 * A refusal is a ConfigError naming the setting and the variable. An endpoint value the
 * sandbox would refuse is a ConfigError naming the variable, which repeats the value only
 * when the variable is the plugin's own.
 */
export function configFromEnv(manifest, env = process.env, { approved = [] } = {}) {
  const prefix = envPrefix(manifest.id);
  const own = (name) => prefix !== undefined && name.startsWith(prefix);
  const allowed = new Set(approved);
  for (const s of manifest.settings) {
    if (s.env === undefined) continue;
    const why = forbiddenEnv(s.env);
    if (why !== undefined) {
      throw new ConfigError(
        `setting ${JSON.stringify(s.key)} of ${manifest.id} reads the environment variable ${s.env}, which no plugin may read (${why})`,
      );
    }
    if (!own(s.env) && !allowed.has(s.env)) {
      throw new ConfigError(
        `setting ${JSON.stringify(s.key)} of ${manifest.id} reads the environment variable ${s.env}: ${manifest.id} may read ${prefix ? `only ${prefix}* names` : 'no name'} unless the operator approves another`,
      );
    }
  }
  const config = {};
  for (const s of manifest.settings) {
    if (s.env === undefined) continue;
    const value = env[s.env]?.trim();
    if (!value) continue;
    if (s.kind === 'endpoint') {
      try {
        originOf(value);
      } catch (e) {
        throw new ConfigError(
          own(s.env) ? `${s.env}: ${e.message}` : `${s.env}: not an endpoint (https, or http on a loopback host)`,
        );
      }
    }
    config[s.key] = value;
  }
  return config;
}

/** The `wasi:config/store` import over fixed pairs. */
export function configStore(pairs) {
  const map = new Map(pairs);
  return {
    get: (key) => map.get(key),
    getAll: () => pairs.map(([k, v]) => [k, v]),
  };
}
