// oidc-provider configuration for the interop authorization server.
//
// Everything protocol-related is done by oidc-provider itself; this file only
// picks options so that the server behaves like xAI's device login as seen by
// public clients (see notes in README.md): public client, device grant without
// PKCE, JWT access tokens carrying a `tier` claim, single-use refresh tokens.

import * as crypto from 'node:crypto';

import { errors } from 'oidc-provider';

/** The public client id used by xAI's CLI and by the plugin under test. */
export const CLIENT_ID = 'b1a00492-073a-47ea-816f-4c329264a828';

/** Scopes the client may ask for (same list third-party clients use with xAI). */
export const CLIENT_SCOPES = 'openid profile email offline_access grok-cli:access api:access';

/**
 * Resource indicator of the simulated API. The client never sends `resource`;
 * `defaultResource` picks this one so every access token is a JWT for it.
 */
export const API_RESOURCE = 'urn:grok-interop:api';

/** Scopes owned by the API resource server (they end up in the JWT `scope`). */
export const API_SCOPES = 'grok-cli:access api:access';

/** Tier put into access tokens of accounts nobody chose a tier for. */
export const DEFAULT_TIER = 3;

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/**
 * Builds the `new Provider(issuer, configuration)` argument.
 *
 * @param {object} opts
 * @param {number} opts.accessTtl access-token lifetime in seconds
 * @param {number} opts.deviceTtl device-code lifetime in seconds
 * @param {number} opts.refreshTtl refresh-token lifetime in seconds
 * @param {string} opts.audience `aud` of access tokens
 * @param {Map<string, number>} opts.tiers account id -> tier (read at token issuance)
 */
export function providerConfiguration({ accessTtl, deviceTtl, refreshTtl, audience, tiers }) {
  // A fresh ES256 key per run (xAI signs with ES256 too); published at jwks_uri.
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = {
    ...privateKey.export({ format: 'jwk' }),
    kid: `interop-${crypto.randomBytes(6).toString('hex')}`,
    alg: 'ES256',
    use: 'sig',
  };

  const apiResourceServer = {
    scope: API_SCOPES,
    audience,
    accessTokenTTL: accessTtl,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'ES256' } },
  };

  return {
    clients: [
      {
        client_id: CLIENT_ID,
        client_name: 'Grok interop test client',
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        grant_types: [DEVICE_GRANT, 'refresh_token'],
        response_types: [],
        redirect_uris: [],
        scope: CLIENT_SCOPES,
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    // profile/email become known scopes through their claims lists; the API
    // scopes are listed too because client metadata `scope` may only name
    // scopes the server knows (they also show up in scopes_supported).
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid', 'offline_access', ...API_SCOPES.split(' ')],
    async findAccount(_ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            name: sub,
            preferred_username: sub,
            email: `${sub}@example.test`,
            email_verified: true,
          };
        },
      };
    },
    features: {
      // Login/consent pages shipped with oidc-provider; the control server
      // drives them over HTTP like a browser would.
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true, charset: 'base-20', mask: '****-****' },
      revocation: {
        enabled: true,
        // Same as the library default, spelled out: public clients may only
        // revoke their own tokens (others are silently ignored).
        async allowedPolicy(_ctx, client, token) {
          return token.clientId === client.clientId;
        },
      },
      resourceIndicators: {
        enabled: true,
        // The device request carries no `resource`: default to the API so
        // that the grant (and every token from it) targets it.
        async defaultResource(_ctx, _client, oneOf) {
          return oneOf ? oneOf[0] : API_RESOURCE;
        },
        // Without this, a token request for a grant with `openid` and no
        // `resource` parameter would get an opaque userinfo-only token.
        async useGrantedResource() {
          return true;
        },
        async getResourceServerInfo(_ctx, resourceIndicator) {
          if (resourceIndicator === API_RESOURCE) return apiResourceServer;
          throw new errors.InvalidTarget();
        },
      },
    },
    // `tier` is chosen per account when the control server approves a login.
    async extraTokenClaims(_ctx, token) {
      if (token.kind !== 'AccessToken') return undefined;
      return { tier: tiers.get(token.accountId) ?? DEFAULT_TIER };
    },
    // Refresh tokens come only with offline_access (library default, explicit).
    async issueRefreshToken(_ctx, client, source) {
      return client.grantTypeAllowed('refresh_token') && source.scopes.has('offline_access');
    },
    // Every refresh rotates; redeeming a consumed token revokes the whole
    // grant (oidc-provider's behaviour for rotated-token reuse).
    rotateRefreshToken: true,
    // The device authorization endpoint never checks PKCE; this only
    // documents that nothing else here needs it either.
    pkce: { required: () => false },
    ttl: {
      AccessToken: accessTtl,
      DeviceCode: deviceTtl,
      RefreshToken: refreshTtl,
      IdToken: accessTtl,
      Interaction: 600,
      Session: 3600,
      Grant: Math.max(refreshTtl, 3600),
    },
  };
}
