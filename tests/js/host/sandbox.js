// What the plugin may reach: `wasi:http/outgoing-handler` with an origin allowlist in
// front of preview2-shim's handler, and nothing else. A refused request fails with the
// WASI error code `HTTP-request-denied` (jco lowers a thrown `{payload}` into the `err`
// case of `handle`'s result), which the plugin reports as `denied-by-sandbox`. Redirects
// are never followed (the shim does not follow them either).
//
// The world imports neither `wasi:sockets` nor `wasi:filesystem`; a component that does
// anyway (Rust's standard library can pull them in) gets stand-ins that refuse
// everything, as the Rust host's WASI context does: no network, no DNS, no preopened
// directory. preview2-shim's own sockets would connect anywhere, whatever the allowlist.

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
 * The normalised `host:port` a request goes to, as the allowlist compares it, or null.
 * `originOf` parses like a browser (WHATWG URL): `127.0.0.1.`, `0x7f.1` or `LOCALHOST`
 * come out as `127.0.0.1` or `localhost`, which is why the request is then sent to this
 * value, never to the authority the guest wrote.
 */
function checkedAuthority(request) {
  try {
    const authority = request.authority();
    if (!authority) return null;
    const origin = originOf(`${schemeName(request.scheme())}://${authority}`);
    return { origin, authority: origin.slice(origin.indexOf('://') + 3) };
  } catch {
    return null; // not even a valid origin
  }
}

/**
 * An `outgoing-handler` that lets through only requests to `allowedOrigins` (URLs or
 * origins, validated like the configuration) and hands them to `inner` with the authority
 * it compared (so the connection goes where the allowlist said, not to some other
 * spelling of it). `denied` counts refusals.
 */
export function allowlistedOutgoingHandler(allowedOrigins, inner = http.outgoingHandler) {
  const allowed = new Set(allowedOrigins.map(originOf));
  const handler = {
    denied: 0,
    handle(request, options) {
      const checked = checkedAuthority(request);
      let sendable = checked !== null && allowed.has(checked.origin);
      if (sendable) {
        try {
          // `host:port`, lower case, explicit port: what was compared is what is dialled.
          request.setAuthority(checked.authority);
          sendable = request.authority() === checked.authority;
        } catch {
          sendable = false; // the shim cannot dial it (it takes no IPv6 literal)
        }
      }
      if (!sendable) {
        handler.denied += 1;
        throw { payload: { tag: 'HTTP-request-denied' } };
      }
      return inner.handle(request, options);
    },
  };
  return handler;
}

const denied = () => {
  // `error-code::access-denied` of wasi:sockets/network (an enum: jco lowers the string).
  throw 'access-denied';
};

/** Resources no call ever hands out (jco wants a class for each one imported). */
class Network {}
class ResolveAddressStream {}
class TcpSocket {}
class UdpSocket {}
class IncomingDatagramStream {}
class OutgoingDatagramStream {}
class Descriptor {}
class DirectoryEntryStream {}

/**
 * `wasi:sockets` and `wasi:filesystem` for a guest that must have neither: every socket
 * or name lookup fails with `access-denied` before anything is created, and there is no
 * preopened directory (so no descriptor ever exists). Keys as jco's instantiation
 * imports name them (unversioned).
 */
export function noSocketsNoFilesystem() {
  return {
    'wasi:sockets/network': { Network, networkErrorCode: () => undefined },
    'wasi:sockets/instance-network': { instanceNetwork: () => new Network() },
    'wasi:sockets/ip-name-lookup': { ResolveAddressStream, resolveAddresses: denied },
    'wasi:sockets/tcp': { TcpSocket },
    'wasi:sockets/tcp-create-socket': { createTcpSocket: denied },
    'wasi:sockets/udp': { UdpSocket, IncomingDatagramStream, OutgoingDatagramStream },
    'wasi:sockets/udp-create-socket': { createUdpSocket: denied },
    'wasi:filesystem/preopens': { getDirectories: () => [] },
    'wasi:filesystem/types': {
      Descriptor,
      DirectoryEntryStream,
      filesystemErrorCode: () => undefined,
    },
  };
}
