// Control API (JSON over HTTP on 127.0.0.1) used by tests to play the user.
//
//   POST /approve  {"user_code": "...", "account": "alice", "tier": 4}
//   POST /deny     {"user_code": "...", "at": "consent" | "login" | "confirm"}
//   POST /account  {"account": "alice", "tier": 2}
//   GET  /stats
//   POST /shutdown

import * as http from 'node:http';

import { actAsUser, FlowError } from './browser.mjs';
import { DEFAULT_TIER } from './provider.mjs';

const MAX_BODY = 64 * 1024;

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, 'body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  try {
    const value = JSON.parse(text);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new Error('not an object');
    }
    return value;
  } catch {
    throw new HttpError(400, 'body must be a JSON object');
  }
}

function requireString(body, key, fallback) {
  const value = body[key] ?? fallback;
  if (typeof value !== 'string' || value === '') throw new HttpError(400, `"${key}" must be a non-empty string`);
  return value;
}

function optionalTier(body) {
  if (body.tier === undefined || body.tier === null) return undefined;
  if (!Number.isSafeInteger(body.tier)) throw new HttpError(400, '"tier" must be an integer');
  return body.tier;
}

// Same normalisation oidc-provider applies to typed user codes.
function normalizeUserCode(code) {
  return code.toUpperCase().replace(/\W/g, '');
}

/**
 * Starts the control server.
 *
 * @param {object} deps
 * @param {import('oidc-provider').Provider} deps.provider
 * @param {string} deps.issuer
 * @param {Map<string, number>} deps.tiers
 * @param {object} deps.stats
 * @param {() => void} deps.shutdown
 * @param {(msg: string) => void} deps.log
 * @param {number} port 0 = OS-chosen
 * @returns {Promise<http.Server>}
 */
export async function startControl({ provider, issuer, tiers, stats, shutdown, log }, port) {
  // Reads the device code's state straight from the provider's store: the
  // answer to /approve and /deny must reflect what the token endpoint will see.
  async function deviceCodeState(userCode) {
    const code = await provider.DeviceCode.findByUserCode(normalizeUserCode(userCode), { ignoreExpiration: true });
    if (!code) return { found: false };
    return { found: true, accountId: code.accountId, error: code.error, expired: code.isExpired };
  }

  async function drive(userCode, opts) {
    try {
      return await actAsUser(issuer, { userCode, ...opts });
    } catch (err) {
      stats.control_failures += 1;
      if (err instanceof FlowError) {
        const state = await deviceCodeState(userCode);
        const why = !state.found ? 'unknown user code'
          : state.expired ? 'device code expired'
            : state.accountId ? 'already approved'
              : state.error ? `already finished with ${state.error}` : err.message;
        throw Object.assign(new HttpError(409, why), { stage: err.stage });
      }
      throw err;
    }
  }

  const routes = {
    'POST /approve': async (body) => {
      const userCode = requireString(body, 'user_code');
      const account = requireString(body, 'account', 'alice');
      const requested = optionalTier(body);
      // The tier belongs to the account; tokens read it when they are issued.
      const tier = requested ?? tiers.get(account) ?? DEFAULT_TIER;
      tiers.set(account, tier);
      const { pages } = await drive(userCode, { account, decision: 'approve' });
      const state = await deviceCodeState(userCode);
      if (state.accountId !== account) {
        stats.control_failures += 1;
        throw new HttpError(409, 'pages completed but the device code is not approved');
      }
      stats.approvals += 1;
      log(`approved a device for account=${account} tier=${tier}`);
      return { ok: true, account, tier, pages };
    },
    'POST /deny': async (body) => {
      const userCode = requireString(body, 'user_code');
      const at = body.at ?? 'consent';
      if (!['confirm', 'login', 'consent'].includes(at)) {
        throw new HttpError(400, '"at" must be one of confirm, login, consent');
      }
      const account = requireString(body, 'account', 'alice');
      const { pages } = await drive(userCode, { account, decision: 'deny', denyAt: at });
      const state = await deviceCodeState(userCode);
      if (state.error !== 'access_denied') {
        stats.control_failures += 1;
        throw new HttpError(409, 'pages completed but the device code is not denied');
      }
      stats.denials += 1;
      log(`denied a device at ${at}`);
      return { ok: true, pages };
    },
    'POST /account': async (body) => {
      const account = requireString(body, 'account');
      const tier = optionalTier(body);
      if (tier === undefined) throw new HttpError(400, '"tier" is required');
      tiers.set(account, tier);
      return { ok: true, account, tier };
    },
    'GET /stats': async () => structuredClone(stats),
    'POST /shutdown': async () => {
      setImmediate(shutdown);
      return { ok: true };
    },
  };

  const server = http.createServer(async (req, res) => {
    const path = new URL(req.url, 'http://control').pathname;
    const handler = routes[`${req.method} ${path}`];
    try {
      if (!handler) throw new HttpError(404, `no route ${req.method} ${path}`);
      const body = req.method === 'POST' ? await readJson(req) : {};
      send(res, 200, await handler(body));
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) log(`control error: ${err?.stack ?? err}`);
      send(res, status, { ok: false, error: err?.message ?? String(err), ...(err.stage ? { stage: err.stage } : {}) });
    }
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return server;
}
