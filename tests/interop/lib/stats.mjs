// Counters for tests, fed by oidc-provider events and one post-middleware.
// Only names, grant types and error codes are recorded: never token values.

const SHORT_GRANT = {
  'urn:ietf:params:oauth:grant-type:device_code': 'device_code',
};

function grantType(ctx) {
  const raw = ctx?.oidc?.params?.grant_type;
  if (typeof raw !== 'string' || raw === '') return 'unknown';
  return SHORT_GRANT[raw] ?? raw;
}

function bump(obj, key, by = 1) {
  obj[key] = (obj[key] ?? 0) + by;
}

/** Creates the counters object and wires it to a Provider instance. */
export function attachStats(provider, log) {
  const stats = {
    device_authorizations: 0,
    token_requests: {},
    token_successes: {},
    token_errors: {},
    refresh_redemptions: 0,
    refresh_tokens_consumed: 0,
    refresh_reuse_detected: 0,
    revocations: 0,
    revocation_errors: 0,
    grants_revoked: 0,
    approvals: 0,
    denials: 0,
    control_failures: 0,
  };

  // Post-middleware: counts every token/revocation request, whatever its outcome.
  provider.use(async (ctx, next) => {
    await next();
    const route = ctx.oidc?.route;
    if (route === 'token') {
      bump(stats.token_requests, grantType(ctx));
    } else if (route === 'revocation') {
      if (ctx.status === 200) stats.revocations += 1;
      else stats.revocation_errors += 1;
    }
  });

  provider.on('device_authorization.success', () => {
    stats.device_authorizations += 1;
  });
  provider.on('grant.success', (ctx) => {
    const gt = grantType(ctx);
    bump(stats.token_successes, gt);
    if (gt === 'refresh_token') stats.refresh_redemptions += 1;
  });
  provider.on('grant.error', (ctx, err) => {
    const gt = grantType(ctx);
    stats.token_errors[gt] ??= {};
    bump(stats.token_errors[gt], err?.error ?? 'unknown');
    // oidc-provider answers a consumed (rotated) refresh token with
    // invalid_grant, detail "refresh token already used", and revokes the grant.
    if (err?.error === 'invalid_grant' && err?.error_detail === 'refresh token already used') {
      stats.refresh_reuse_detected += 1;
    }
    log(`token error grant_type=${gt} error=${err?.error}${err?.error_detail ? ` detail="${err.error_detail}"` : ''}`);
  });
  provider.on('refresh_token.consumed', () => {
    stats.refresh_tokens_consumed += 1;
  });
  provider.on('grant.revoked', () => {
    stats.grants_revoked += 1;
  });
  provider.on('revocation.error', (_ctx, err) => {
    log(`revocation error=${err?.error}`);
  });
  provider.on('server_error', (_ctx, err) => {
    log(`server_error: ${err?.message}`);
  });

  return stats;
}
