// The peers of the conformance flow, each in a process of its own: the plugin's HTTP runs
// synchronously (preview2-shim blocks this thread on a worker), so a server in this
// process could never answer it.
//
// - the npm oidc-provider authorization server (tests/interop/oidc-server.mjs),
// - the reference model API (`reference-api`, from host/reference), checking bearers
//   against that server's JWKS.
//
// Both print one JSON line when ready and exit when their stdin closes (so they die with
// this process) or after a maximum lifetime.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const READY_TIMEOUT_MS = 60_000;
const MAX_SECONDS = 600;

/** The Cargo target directory the workspace builds into. */
export function targetDir() {
  const t = process.env.CARGO_TARGET_DIR;
  return t ? path.resolve(REPO, t) : path.join(REPO, 'target');
}

function mustExist(file, what, howToGet) {
  if (!fs.existsSync(file)) {
    throw new Error(`${what} not found at ${file}: ${howToGet}`);
  }
  return file;
}

/** The plugin component: $PLUGIN_WASM, or the one `cargo build -p provider-host` builds. */
export function pluginWasm() {
  const file =
    process.env.PLUGIN_WASM ||
    path.join(targetDir(), 'plugin-component/wasm32-wasip2/component/grok_provider_plugin.wasm');
  return mustExist(
    file,
    'the plugin component',
    'build it with `cargo build -p provider-host` (or set PLUGIN_WASM)',
  );
}

/** The hostile guest component (tests/guests/hostile), built beside the plugin. */
export function hostileWasm() {
  return mustExist(
    path.join(targetDir(), 'plugin-component/wasm32-wasip2/component/hostile_guest.wasm'),
    'the hostile guest component',
    'build it with `cargo build -p provider-host`',
  );
}

/** The reference-api binary: $REFERENCE_API, or target/debug/reference-api. */
export function referenceApiBinary() {
  const file = process.env.REFERENCE_API || path.join(targetDir(), 'debug/reference-api');
  return mustExist(
    file,
    'the reference-api binary',
    'build it with `cargo build -p provider-reference --bin reference-api` (or set REFERENCE_API)',
  );
}

/** The interop peer's directory, once its dependencies are installed. */
export function oidcServerInstalled() {
  const dir = path.join(REPO, 'tests/interop');
  mustExist(
    path.join(dir, 'node_modules/oidc-provider'),
    'oidc-provider',
    'install it with `npm ci --prefix tests/interop`',
  );
  return dir;
}

/** Spawns `command` and resolves with the JSON of its first stdout line. */
function startPeer(name, command, args) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    stderr.push(d);
    if (stderr.length > 50) stderr.shift();
  });
  // Never let a write to a peer that already exited crash the test process.
  child.stdin.on('error', () => {});
  const lines = readline.createInterface({ input: child.stdout });
  const ready = new Promise((resolve, reject) => {
    const fail = (why) => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start: ${why}\n${stderr.join('').slice(-4000)}`));
    };
    const timer = setTimeout(() => fail(`no ready line after ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(line));
      } catch (e) {
        fail(`not JSON (${e.message}): ${line}`);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      fail(`exited with ${signal ?? code}`);
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      fail(e.message);
    });
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  return ready.then((info) => {
    child.removeAllListeners('exit');
    lines.close();
    return { info, child, stop };
  });
}

async function control(base, method, route, body) {
  const res = await fetch(`${base}${route}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  return { status: res.status, json };
}

/** Starts oidc-provider; `extra` are more flags (see tests/interop/README.md). */
export async function startOidcServer(extra = []) {
  const dir = oidcServerInstalled();
  const peer = await startPeer('oidc-server', process.execPath, [
    path.join(dir, 'oidc-server.mjs'),
    '--interval',
    '1',
    '--max-seconds',
    String(MAX_SECONDS),
    ...extra,
  ]);
  const { issuer, control: controlBase } = peer.info;
  return {
    issuer,
    stop: peer.stop,
    /** Approves `userCode` as `account` with `tier`, over the provider's own pages. */
    async approve(userCode, account, tier) {
      const r = await control(controlBase, 'POST', '/approve', { user_code: userCode, account, tier });
      if (r.json.ok !== true) throw new Error(`approve failed: ${JSON.stringify(r.json)}`);
      return r.json;
    },
    /** The server's counters. */
    async stats() {
      return (await control(controlBase, 'GET', '/stats')).json;
    },
    /** The JWKS URL from discovery. */
    async jwksUri() {
      const res = await fetch(`${issuer}/.well-known/openid-configuration`);
      return (await res.json()).jwks_uri;
    },
  };
}

/** Starts the reference model API accepting the tokens of `oidc`. */
export async function startReferenceApi(oidc) {
  const peer = await startPeer('reference-api', referenceApiBinary(), [
    '--jwks-url',
    await oidc.jwksUri(),
    '--max-seconds',
    String(MAX_SECONDS),
  ]);
  return { apiBase: peer.info.api_base, stop: peer.stop };
}
