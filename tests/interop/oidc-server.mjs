#!/usr/bin/env node
// Independent OAuth 2.0 / OpenID authorization server for interop tests,
// built on oidc-provider (RFC 8628 device flow). See README.md.
//
// stdout carries exactly one line, the JSON ready line; logs go to stderr.

import './lib/stdout-guard.mjs'; // must stay the first import
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import { Provider } from 'oidc-provider';

import { startControl } from './lib/control.mjs';
import { CLIENT_ID, providerConfiguration } from './lib/provider.mjs';
import { attachStats } from './lib/stats.mjs';

const USAGE = `usage: node oidc-server.mjs [options]
  --port N            issuer port on 127.0.0.1 (default 0 = OS-chosen)
  --control-port N    control API port (default 0 = OS-chosen)
  --access-ttl S      access token lifetime in seconds (default 3600)
  --device-ttl S      device code lifetime in seconds (default 600)
  --refresh-ttl S     refresh token lifetime in seconds (default 1209600)
  --interval S        add "interval": S to device authorization responses
                      (oidc-provider sends none; RFC 8628 default is 5)
  --audience AUD      "aud" of access tokens (default: the client id)
  --max-seconds S     exit after S seconds (default 300)
  --ignore-stdin      do not exit when stdin closes (manual runs)
  --verbose           log provider events to stderr`;

function log(msg) {
  process.stderr.write(`[oidc-server] ${msg}\n`);
}

function fail(msg) {
  process.stderr.write(`oidc-server: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function parseCli() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string', default: '0' },
        'control-port': { type: 'string', default: '0' },
        'access-ttl': { type: 'string', default: '3600' },
        'device-ttl': { type: 'string', default: '600' },
        'refresh-ttl': { type: 'string', default: String(14 * 24 * 3600) },
        interval: { type: 'string' },
        audience: { type: 'string' },
        'max-seconds': { type: 'string', default: '300' },
        'ignore-stdin': { type: 'boolean', default: false },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    fail(err.message);
  }
  if (values.help) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (name, min, max) => {
    const raw = values[name];
    if (!/^\d+$/.test(raw)) fail(`--${name} must be a non-negative integer`);
    const n = Number(raw);
    if (n < min || n > max) fail(`--${name} must be between ${min} and ${max}`);
    return n;
  };
  return {
    port: int('port', 0, 65535),
    controlPort: int('control-port', 0, 65535),
    accessTtl: int('access-ttl', 1, 10 * 365 * 24 * 3600),
    deviceTtl: int('device-ttl', 1, 24 * 3600),
    refreshTtl: int('refresh-ttl', 1, 10 * 365 * 24 * 3600),
    interval: values.interval === undefined ? undefined : int('interval', 0, 3600),
    audience: values.audience,
    maxSeconds: int('max-seconds', 1, 24 * 3600),
    ignoreStdin: values['ignore-stdin'],
    verbose: values.verbose,
  };
}

async function listen(server, port) {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return server.address().port;
}

async function main() {
  const opts = parseCli();

  // The issuer URL contains the port, so bind first and plug the app in after.
  let app = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const issuerServer = http.createServer((req, res) => app(req, res));
  const port = await listen(issuerServer, opts.port);
  const issuer = `http://127.0.0.1:${port}`;

  const tiers = new Map();
  const provider = new Provider(issuer, providerConfiguration({
    accessTtl: opts.accessTtl,
    deviceTtl: opts.deviceTtl,
    refreshTtl: opts.refreshTtl,
    audience: opts.audience ?? CLIENT_ID,
    tiers,
  }));
  const stats = attachStats(provider, opts.verbose ? log : () => {});

  if (opts.interval !== undefined) {
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.oidc?.route === 'device_authorization' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
        ctx.body.interval = opts.interval;
      }
    });
  }
  if (opts.verbose) {
    provider.use(async (ctx, next) => {
      await next();
      log(`${ctx.method} ${ctx.path} -> ${ctx.status}`);
    });
  }

  app = provider.callback();

  let stopping = false;
  let controlServer;
  const shutdown = (why) => {
    if (stopping) return;
    stopping = true;
    log(`shutting down (${why})`);
    const closeAll = (server) => new Promise((resolve) => {
      if (!server) return resolve();
      server.close(() => resolve());
      server.closeAllConnections?.();
    });
    Promise.all([closeAll(issuerServer), closeAll(controlServer)]).finally(() => process.exit(0));
    // Never hang on a stuck connection.
    setTimeout(() => process.exit(0), 2000).unref();
  };

  controlServer = await startControl({
    provider,
    issuer,
    tiers,
    stats,
    shutdown: () => shutdown('control /shutdown'),
    log,
  }, opts.controlPort);
  const control = `http://127.0.0.1:${controlServer.address().port}`;

  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  setTimeout(() => shutdown(`--max-seconds ${opts.maxSeconds} reached`), opts.maxSeconds * 1000);
  if (!opts.ignoreStdin) {
    // The parent keeps our stdin open; EOF means it went away.
    process.stdin.on('end', () => shutdown('stdin closed'));
    process.stdin.on('close', () => shutdown('stdin closed'));
    process.stdin.on('error', () => shutdown('stdin error'));
    process.stdin.resume();
  }

  log(`issuer ${issuer}, control ${control}, access-ttl ${opts.accessTtl}s, device-ttl ${opts.deviceTtl}s`);
  process.stdout.write(`${JSON.stringify({ issuer, control })}\n`);
}

main().catch((err) => {
  log(`fatal: ${err?.stack ?? err}`);
  process.exit(1);
});
