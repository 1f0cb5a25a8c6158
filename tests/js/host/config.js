// What the plugin is told to talk to (the `config` import), and the origins the sandbox
// lets it reach. Same rules as the Rust host (host/runtime/src/config.rs): an origin must be
// https://, or http:// on a loopback host named explicitly (for local test servers).

/** xAI's public endpoints and client, as in the Rust host's ProviderSettings::default(). */
export const XAI_DEFAULTS = Object.freeze({
  issuer: 'https://auth.x.ai',
  apiBase: 'https://api.x.ai/v1',
  clientId: 'b1a00492-073a-47ea-816f-4c329264a828',
  scope: 'openid profile email offline_access grok-cli:access api:access',
  userAgent: 'provider-host-js/0.1.0',
});

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
 * The record the `config` import returns: XAI_DEFAULTS overridden by `overrides`
 * ({issuer, apiBase, clientId, scope, userAgent}; undefined or empty ones are ignored),
 * trailing slashes trimmed, validated.
 */
export function providerConfig(overrides = {}) {
  const given = Object.entries(overrides).filter(([, v]) => v !== undefined && v !== '');
  const c = { ...XAI_DEFAULTS, ...Object.fromEntries(given) };
  c.issuer = c.issuer.replace(/\/+$/, '');
  c.apiBase = c.apiBase.replace(/\/+$/, '');
  originOf(c.issuer);
  originOf(c.apiBase);
  return Object.freeze(c);
}

/** Exactly the issuer's and the API's origins. */
export function defaultAllowlist(config) {
  return [...new Set([originOf(config.issuer), originOf(config.apiBase)])];
}
