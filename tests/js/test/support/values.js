// Helpers the plugin-level tests share: reading a provider-error, printing jco values,
// listing a state directory.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

/** The provider-error a call threw (jco throws the `err` case as a ComponentError). */
export function errorOf(fn) {
  try {
    fn();
  } catch (e) {
    assert.ok(e?.payload?.tag, `not a provider-error: ${e?.stack ?? e}`);
    return e.payload;
  }
  assert.fail('expected the call to fail');
}

/** JSON for messages (u64 and s64 fields are BigInt). */
export function show(value) {
  return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? `${v}` : v));
}

/** Every file under `dir`. */
export function filesUnder(dir) {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.join(d.parentPath ?? d.path, d.name));
}
