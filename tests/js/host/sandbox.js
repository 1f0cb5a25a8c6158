// Outgoing HTTP for the plugin: `wasi:http/outgoing-handler` with an origin allowlist in
// front of preview2-shim's handler. A refused request fails with the WASI error code
// `HTTP-request-denied` (jco lowers a thrown `{payload}` into the `err` case of `handle`'s
// result), which the plugin reports as `denied-by-sandbox`. Redirects are never followed
// (the shim does not follow them either).

import { http } from '@bytecodealliance/preview2-shim';

import { originOf } from './config.js';

/** Scheme of a `wasi:http/types.scheme` value; the shim treats a missing one as https. */
function schemeName(scheme) {
  if (!scheme) return 'https';
  if (scheme.tag === 'HTTP') return 'http';
  if (scheme.tag === 'HTTPS') return 'https';
  return String(scheme.val).toLowerCase();
}

/**
 * An `outgoing-handler` that lets through only requests to `allowedOrigins` (URLs or
 * origins, validated like the configuration) and hands them to `inner`.
 * `denied` counts refusals.
 */
export function allowlistedOutgoingHandler(allowedOrigins, inner = http.outgoingHandler) {
  const allowed = new Set(allowedOrigins.map(originOf));
  const handler = {
    denied: 0,
    handle(request, options) {
      let origin = null;
      try {
        const authority = request.authority();
        if (authority) origin = originOf(`${schemeName(request.scheme())}://${authority}`);
      } catch {
        origin = null; // not even a valid origin: refused below
      }
      if (origin === null || !allowed.has(origin)) {
        handler.denied += 1;
        throw { payload: { tag: 'HTTP-request-denied' } };
      }
      return inner.handle(request, options);
    },
  };
  return handler;
}
