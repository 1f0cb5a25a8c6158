#!/usr/bin/env node
// Self-test of oidc-server.mjs: starts it as a child process and runs device
// flows with plain fetch, acting as the device (client) and, through the
// control API, as the user. Prints "N passed, M failed"; exit 1 on failure.

import { spawn } from 'node:child_process';
import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { once } from 'node:events';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLIENT_ID = 'b1a00492-073a-47ea-816f-4c329264a828';
const SCOPE = 'openid profile email offline_access grok-cli:access api:access';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

// ---------------------------------------------------------------- runner

const results = [];
async function test(name, fn) {
  try {
    await fn();
    results.push({ name, ok: true });
    process.stdout.write(`ok   - ${name}\n`);
  } catch (err) {
    results.push({ name, ok: false });
    process.stdout.write(`FAIL - ${name}\n       ${String(err?.stack ?? err).split('\n').join('\n       ')}\n`);
  }
}

// ---------------------------------------------------------------- server

async function startServer(args) {
  const child = spawn(process.execPath, [path.join(HERE, 'oidc-server.mjs'), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stdoutLines = [];
  let buffered = '';
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = once(child, 'exit');
  const ready = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      buffered += d;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        stdoutLines.push(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        if (stdoutLines.length === 1) resolve(stdoutLines[0]);
      }
    });
    exited.then(([code]) => reject(new Error(`server exited (${code}) before ready:\n${stderr}`)));
    setTimeout(() => reject(new Error(`server not ready in 20s:\n${stderr}`)), 20000).unref();
  });
  const line = await ready;
  const info = JSON.parse(line);
  return {
    child,
    line,
    ...info,
    exited,
    stdoutLines: () => (buffered ? [...stdoutLines, buffered] : stdoutLines),
    stderr: () => stderr,
  };
}

// ---------------------------------------------------------------- HTTP helpers

async function postForm(url, form) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(form).toString(),
  });
  const text = await res.text();
  let json;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: res.status, json, text };
}

async function control(server, method, route, body) {
  const res = await fetch(`${server.control}${route}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, json: await res.json() };
}

function b64urlJson(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/** Verifies a compact JWS against a JWKS (EC keys, ES256) and returns header+payload. */
function verifyJwt(jwt, jwks) {
  const parts = jwt.split('.');
  assert.equal(parts.length, 3, 'JWT must have three parts');
  const header = b64urlJson(parts[0]);
  const payload = b64urlJson(parts[1]);
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} not in jwks`);
  assert.equal(header.alg, 'ES256');
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const ok = crypto.verify(
    'sha256',
    Buffer.from(`${parts[0]}.${parts[1]}`),
    { key, dsaEncoding: 'ieee-p1363' },
    Buffer.from(parts[2], 'base64url'),
  );
  assert.ok(ok, 'JWT signature must verify with the jwks_uri key');
  return { header, payload };
}

async function discover(server) {
  const res = await fetch(`${server.issuer}/.well-known/openid-configuration`);
  assert.equal(res.status, 200);
  const meta = await res.json();
  const jwks = await (await fetch(meta.jwks_uri)).json();
  return { meta, jwks };
}

async function deviceAuthorization(meta) {
  const r = await postForm(meta.device_authorization_endpoint, { client_id: CLIENT_ID, scope: SCOPE });
  assert.equal(r.status, 200, r.text);
  return r.json;
}

function pollToken(meta, deviceCode) {
  return postForm(meta.token_endpoint, { grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: CLIENT_ID });
}

function refresh(meta, refreshToken) {
  return postForm(meta.token_endpoint, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: CLIENT_ID });
}

/** Device authorization + approval + token: a fresh login. */
async function login(server, meta, account, tier) {
  const da = await deviceAuthorization(meta);
  const approval = await control(server, 'POST', '/approve', { user_code: da.user_code, account, ...(tier === undefined ? {} : { tier }) });
  assert.equal(approval.status, 200, JSON.stringify(approval.json));
  const tok = await pollToken(meta, da.device_code);
  assert.equal(tok.status, 200, tok.text);
  return { da, tokens: tok.json };
}

// ---------------------------------------------------------------- tests

const ACCESS_TTL = 120;
const DEVICE_TTL = 60;

const server = await startServer([
  '--access-ttl', String(ACCESS_TTL),
  '--device-ttl', String(DEVICE_TTL),
  '--interval', '1',
  '--max-seconds', '120',
]);
const { meta, jwks } = await discover(server);
const state = {};

await test('ready line is one JSON object with issuer and control URLs', () => {
  assert.deepEqual(Object.keys(JSON.parse(server.line)).sort(), ['control', 'issuer']);
  assert.match(server.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(server.control, /^http:\/\/127\.0\.0\.1:\d+$/);
});

await test('discovery lists device, token, revocation endpoints and jwks_uri', () => {
  assert.equal(meta.issuer, server.issuer);
  for (const key of ['device_authorization_endpoint', 'token_endpoint', 'revocation_endpoint', 'jwks_uri']) {
    assert.ok(meta[key]?.startsWith(`${server.issuer}/`), `${key} missing`);
  }
  assert.ok(meta.grant_types_supported.includes(DEVICE_GRANT));
  assert.ok(jwks.keys.length >= 1 && jwks.keys.every((k) => !('d' in k)), 'jwks must hold public keys only');
});

await test('device authorization answers codes, URIs, expires_in and interval', async () => {
  const da = await deviceAuthorization(meta);
  assert.equal(typeof da.device_code, 'string');
  assert.match(da.user_code, /^[A-Z0-9-]+$/);
  assert.equal(da.verification_uri, `${server.issuer}/device`);
  assert.equal(da.verification_uri_complete, `${server.issuer}/device?user_code=${encodeURIComponent(da.user_code)}`);
  assert.equal(da.expires_in, DEVICE_TTL);
  assert.equal(da.interval, 1);
  state.da = da;
});

await test('token endpoint says authorization_pending (400) before approval', async () => {
  const r = await pollToken(meta, state.da.device_code);
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'authorization_pending');
});

await test('control /approve drives the pages and reports ok', async () => {
  const r = await control(server, 'POST', '/approve', { user_code: state.da.user_code, account: 'alice', tier: 4 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.ok, true);
  assert.deepEqual(r.json.pages, ['device-input', 'device-confirm', 'login', 'consent', 'success']);
});

await test('device grant returns JWT access token with tier, aud, exp; refresh and id tokens', async () => {
  const r = await pollToken(meta, state.da.device_code);
  assert.equal(r.status, 200, r.text);
  const t = r.json;
  assert.equal(t.token_type, 'Bearer');
  assert.equal(t.expires_in, ACCESS_TTL);
  assert.equal(typeof t.refresh_token, 'string');
  assert.equal(typeof t.id_token, 'string');
  assert.equal(t.scope, 'grok-cli:access api:access');
  const { header, payload } = verifyJwt(t.access_token, jwks);
  assert.equal(header.typ, 'at+jwt');
  assert.equal(payload.iss, server.issuer);
  assert.equal(payload.aud, CLIENT_ID);
  assert.equal(payload.client_id, CLIENT_ID);
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.tier, 4);
  assert.ok(Number.isInteger(payload.tier));
  assert.equal(payload.exp - payload.iat, ACCESS_TTL);
  assert.equal(payload.scope, 'grok-cli:access api:access');
  const idt = verifyJwt(t.id_token, jwks).payload;
  assert.equal(idt.aud, CLIENT_ID);
  assert.equal(idt.sub, 'alice');
  state.rt0 = t.refresh_token;
});

await test('control /approve refuses a code that is already approved (409)', async () => {
  const r = await control(server, 'POST', '/approve', { user_code: state.da.user_code, account: 'alice' });
  assert.equal(r.status, 409);
  assert.equal(r.json.ok, false);
  assert.match(r.json.error, /already approved/);
});

await test('control /approve refuses an unknown user code (409)', async () => {
  const r = await control(server, 'POST', '/approve', { user_code: 'BBBB-BBBB', account: 'alice' });
  assert.equal(r.status, 409);
  assert.match(r.json.error, /unknown user code/);
});

await test('refresh rotates the refresh token (twice)', async () => {
  const r1 = await refresh(meta, state.rt0);
  assert.equal(r1.status, 200, r1.text);
  assert.ok(typeof r1.json.refresh_token === 'string' && r1.json.refresh_token !== state.rt0, 'refresh token must rotate');
  assert.equal(verifyJwt(r1.json.access_token, jwks).payload.tier, 4);
  const r2 = await refresh(meta, r1.json.refresh_token);
  assert.equal(r2.status, 200, r2.text);
  assert.ok(typeof r2.json.refresh_token === 'string' && r2.json.refresh_token !== r1.json.refresh_token, 'refresh token must rotate');
  state.rt1 = r1.json.refresh_token;
  state.rt2 = r2.json.refresh_token;
});

await test('control /account changes the tier of later access tokens', async () => {
  const c = await control(server, 'POST', '/account', { account: 'alice', tier: 2 });
  assert.equal(c.status, 200);
  const r = await refresh(meta, state.rt2);
  assert.equal(r.status, 200, r.text);
  assert.equal(verifyJwt(r.json.access_token, jwks).payload.tier, 2);
  state.rt3 = r.json.refresh_token;
});

await test('reusing a rotated refresh token fails with invalid_grant and kills the login', async () => {
  const before = (await control(server, 'GET', '/stats')).json;
  const reuse = await refresh(meta, state.rt1);
  assert.equal(reuse.status, 400);
  assert.equal(reuse.json.error, 'invalid_grant');
  // The whole grant is revoked: the newest refresh token is dead too.
  const latest = await refresh(meta, state.rt3);
  assert.equal(latest.status, 400);
  assert.equal(latest.json.error, 'invalid_grant');
  const after = (await control(server, 'GET', '/stats')).json;
  assert.equal(after.refresh_reuse_detected - before.refresh_reuse_detected, 1);
  assert.equal(after.grants_revoked - before.grants_revoked, 1);
});

for (const at of ['consent', 'login', 'confirm']) {
  await test(`control /deny (at ${at}) makes the token endpoint answer access_denied`, async () => {
    const da = await deviceAuthorization(meta);
    const d = await control(server, 'POST', '/deny', { user_code: da.user_code, at });
    assert.equal(d.status, 200, JSON.stringify(d.json));
    assert.equal(d.json.ok, true);
    assert.equal(d.json.pages.at(-1), 'device-aborted');
    const r = await pollToken(meta, da.device_code);
    assert.equal(r.status, 400);
    assert.equal(r.json.error, 'access_denied');
  });
}

await test('revocation of the refresh token ends the login; JWT access tokens are not revocable', async () => {
  const { tokens } = await login(server, meta, 'bob');
  assert.equal(verifyJwt(tokens.access_token, jwks).payload.tier, 3, 'default tier is 3');
  const rv = await postForm(meta.revocation_endpoint, { token: tokens.refresh_token, token_type_hint: 'refresh_token', client_id: CLIENT_ID });
  assert.equal(rv.status, 200, rv.text);
  const r = await refresh(meta, tokens.refresh_token);
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'invalid_grant');
  const at = await postForm(meta.revocation_endpoint, { token: tokens.access_token, client_id: CLIENT_ID });
  assert.equal(at.status, 400);
  assert.equal(at.json.error, 'unsupported_token_type');
});

await test('redeeming a device code twice fails with invalid_grant and revokes the grant', async () => {
  const { da, tokens } = await login(server, meta, 'carol', 5);
  const again = await pollToken(meta, da.device_code);
  assert.equal(again.status, 400);
  assert.equal(again.json.error, 'invalid_grant');
  const r = await refresh(meta, tokens.refresh_token);
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'invalid_grant');
});

await test('/stats counts token requests, redemptions, reuse and revocations', async () => {
  const s = (await control(server, 'GET', '/stats')).json;
  assert.equal(s.refresh_redemptions, 3);
  assert.equal(s.refresh_tokens_consumed, 3);
  assert.equal(s.refresh_reuse_detected, 1);
  assert.equal(s.revocations, 1);
  assert.equal(s.revocation_errors, 1);
  assert.equal(s.approvals, 3);
  assert.equal(s.denials, 3);
  assert.equal(s.token_requests.refresh_token, 7);
  assert.equal(s.token_successes.device_code, 3);
  assert.equal(s.token_errors.device_code.authorization_pending, 1);
  assert.equal(s.token_errors.device_code.access_denied, 3);
  assert.equal(s.token_errors.device_code.invalid_grant, 1);
  assert.equal(s.token_requests.device_code, 8);
});

await test('control /shutdown stops the server; stdout held only the ready line', async () => {
  const r = await control(server, 'POST', '/shutdown');
  assert.equal(r.json.ok, true);
  const [code] = await server.exited;
  assert.equal(code, 0);
  assert.deepEqual(server.stdoutLines(), [server.line]);
});

await test('an expired device code yields expired_token', async () => {
  const short = await startServer(['--device-ttl', '1', '--max-seconds', '30']);
  try {
    const { meta: m } = await discover(short);
    const da = await deviceAuthorization(m);
    assert.equal(da.expires_in, 1);
    assert.equal(da.interval, undefined, 'oidc-provider itself sends no interval');
    await new Promise((resolve) => { setTimeout(resolve, 2500); });
    const r = await pollToken(m, da.device_code);
    assert.equal(r.status, 400);
    assert.equal(r.json.error, 'expired_token');
  } finally {
    short.child.stdin.end();
  }
  const [code] = await short.exited;
  assert.equal(code, 0, 'server exits when stdin closes');
});

await test('SIGTERM stops the server', async () => {
  const s = await startServer(['--max-seconds', '30']);
  s.child.kill('SIGTERM');
  const [code] = await s.exited;
  assert.equal(code, 0);
});

const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
process.stdout.write(`${passed} passed, ${failed} failed\n`);
if (server.child.exitCode === null) server.child.kill('SIGTERM');
process.exit(failed === 0 ? 0 : 1);
