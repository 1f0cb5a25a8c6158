// Tenant-scoped secret storage: the JavaScript side of the `secrets` interface of
// wit/provider.wit, with the Rust host's rules (host/secrets/src/):
//
//   <stateDir>/tenants/<tenant>/secrets/<key>.sec             one value per file, 0600
//   <stateDir>/tenants/<tenant>/secrets/.<key>.<random>.tmp   a write in flight (ignored)
//   <stateDir>/tenants/<tenant>/locks/<name>.lock             held locks, 0600
//   <stateDir>/keyring/master.key                             32 random bytes, 0600
//
// - Names: tenant ids `[A-Za-z0-9._-]{1,64}`, keys and lock names `[a-z0-9._-]{1,128}`,
//   none starting with `.`; checked before any path is built.
// - Values are sealed with AES-256-GCM (Node has no XChaCha20); the associated data binds
//   each file to its tenant and key, so a file copied elsewhere reads as `corrupt`.
// - `set` is atomic: temp file (O_EXCL, fsync), rename, fsync of the directory.
// - Locks exclude every holder, in this process or another, until the handle is disposed
//   (jco calls `[Symbol.dispose]` when the guest drops its `exclusive-lock`). Node has no
//   flock, so a lock is a file created with O_EXCL that names its holder (pid, host,
//   random token) and is removed on release; a lock whose holder process is gone is broken
//   by the next waiter, and a process releases what it holds when it exits.
//
// Every call is synchronous, as the component's imports are; waiting for a lock blocks the
// thread (Atomics.wait) like the Rust host's blocking thread does.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const MAX_VALUE_BYTES = 1024 * 1024;
export const MAX_KEYS = 1024;
/** Most bytes (sealed values as stored) one tenant may hold, as in the Rust store. */
export const MAX_TENANT_BYTES = 16 * 1024 * 1024;
/** Longest wait a plugin may ask for, whatever `timeout-ms` says. */
export const LOCK_TIMEOUT_CAP_MS = 180_000;

/** A `.breaking` directory older than this was left by a breaker that died. */
const STALE_BREAKER_MS = 10_000;

const MAGIC = Buffer.from('PHJS');
const VERSION = 1;
const NONCE_LEN = 12;
const TAG_LEN = 16;
const VALUE_SUFFIX = '.sec';
const LOCK_SUFFIX = '.lock';
/** Internal lock serialising writers of one tenant (a name no plugin lock can have). */
const WRITE_LOCK = '.store';
const WRITE_LOCK_TIMEOUT_MS = 10_000;
const FIRST_PAUSE_MS = 2;
const MAX_PAUSE_MS = 50;
/** A temp file older than this belongs to a writer that died. */
const STALE_TEMP_MS = 10 * 60 * 1000;

/**
 * A `secret-error` of the WIT. jco turns a thrown value with an own `payload` into the
 * `err` case of the import's result; anything else thrown by an import would trap.
 */
export class SecretError extends Error {
  constructor(tag, message) {
    super(message);
    this.name = 'SecretError';
    this.payload = { tag, val: message };
  }
}

function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function problem(name, maxLen, allowed) {
  if (typeof name !== 'string' || name.length === 0) return 'must not be empty';
  if (name.length > maxLen) return 'is too long';
  if (name.startsWith('.')) return "must not start with '.'";
  if (!allowed.test(name)) return 'contains a character that is not allowed';
  return null;
}

function echo(name) {
  const s = String(name);
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

const KEY_CHARS = /^[a-z0-9._-]+$/;
const TENANT_CHARS = /^[A-Za-z0-9._-]+$/;

/** Checks a key or lock name (`what` is "key" or "lock name"). */
export function validateKey(name, what = 'key') {
  const why = problem(name, 128, KEY_CHARS);
  if (why) {
    throw new SecretError(
      'invalid-key',
      `${what} ${echo(name)} ${why} (allowed: a-z, 0-9, '.', '_', '-'; 1 to 128 characters; not starting with '.')`,
    );
  }
}

/** Checks a tenant id. */
export function validateTenant(id) {
  const why = problem(id, 64, TENANT_CHARS);
  if (why) {
    throw new SecretError(
      'invalid-key',
      `tenant ${echo(id)} ${why} (allowed: A-Z, a-z, 0-9, '.', '_', '-'; 1 to 64 characters; not starting with '.')`,
    );
  }
}

/** Runs `fn`, turning any unexpected failure into an `io` secret error (never a trap). */
function io(what, fn) {
  try {
    return fn();
  } catch (e) {
    if (e instanceof SecretError) throw e;
    throw new SecretError('io', `${what}: ${e?.code ?? e?.message ?? String(e)}`);
  }
}

/** Creates `dir` 0700 if missing, tightens it if looser; refuses a symlink in its place. */
function ensurePrivateDir(dir) {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new SecretError('io', `${dir} is not a directory`);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

function syncDir(dir) {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function randomHex(bytes = 8) {
  return crypto.randomBytes(bytes).toString('hex');
}

function writeAtomic(dir, name, bytes) {
  const tmp = path.join(dir, `.${name}.${randomHex()}.tmp`);
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeSync(fd, bytes);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, path.join(dir, name));
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  syncDir(dir);
}

/** The master key: given, or read from (or generated into) `<stateDir>/keyring/master.key`. */
function loadMasterKey(stateDir, given) {
  if (given !== undefined) {
    const key = typeof given === 'string' ? decodeKeyString(given) : Buffer.from(given);
    if (key.length !== 32) throw new SecretError('io', 'the master key must be 32 bytes');
    return key;
  }
  const dir = path.join(stateDir, 'keyring');
  ensurePrivateDir(dir);
  const file = path.join(dir, 'master.key');
  if (!fs.existsSync(file)) {
    // Publish with link(): it fails if another process published first, and we use theirs.
    const tmp = path.join(dir, `.master.key.${randomHex()}.tmp`);
    fs.writeFileSync(tmp, crypto.randomBytes(32), { mode: 0o600, flag: 'wx' });
    try {
      fs.linkSync(tmp, file);
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  const st = fs.statSync(file);
  if ((st.mode & 0o077) !== 0) {
    throw new SecretError('io', `${file} is readable by group or others: chmod 600 it`);
  }
  const key = fs.readFileSync(file);
  if (key.length !== 32) throw new SecretError('corrupt', `${file} is not a 32-byte key`);
  return key;
}

function decodeKeyString(s) {
  const t = s.trim();
  return /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
}

function associatedData(tenant, key) {
  const t = Buffer.from(tenant);
  const k = Buffer.from(key);
  const len = (n) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return Buffer.concat([MAGIC, Buffer.from([VERSION]), len(t.length), t, len(k.length), k]);
}

function seal(masterKey, tenant, key, value) {
  const nonce = crypto.randomBytes(NONCE_LEN);
  const cipher = crypto.createCipheriv('aes-256-gcm', masterKey, nonce);
  cipher.setAAD(associatedData(tenant, key));
  const body = Buffer.concat([cipher.update(value), cipher.final()]);
  return Buffer.concat([MAGIC, Buffer.from([VERSION]), nonce, body, cipher.getAuthTag()]);
}

function open(masterKey, tenant, key, bytes) {
  const head = MAGIC.length + 1;
  const corrupt = () =>
    new SecretError(
      'corrupt',
      `the stored value of key ${echo(key)} does not decrypt (damaged, copied from another tenant or key, or another master key)`,
    );
  if (bytes.length < head + NONCE_LEN + TAG_LEN || !bytes.subarray(0, 4).equals(MAGIC)) {
    throw corrupt();
  }
  if (bytes[4] !== VERSION) throw corrupt();
  const nonce = bytes.subarray(head, head + NONCE_LEN);
  const body = bytes.subarray(head + NONCE_LEN, bytes.length - TAG_LEN);
  const tag = bytes.subarray(bytes.length - TAG_LEN);
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', masterKey, nonce);
    decipher.setAAD(associatedData(tenant, key));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw corrupt();
  }
}

// ---- locks ---------------------------------------------------------------------------

/** Lock files this process holds, released when it exits. */
const held = new Map(); // path -> token
let exitHookInstalled = false;

function releaseFile(lockPath, token) {
  held.delete(lockPath);
  try {
    // Remove only our own lock: a broken-and-retaken lock belongs to someone else now.
    if (fs.readFileSync(lockPath, 'utf8') === token) fs.unlinkSync(lockPath);
  } catch {
    // Already gone.
  }
}

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [p, token] of [...held]) releaseFile(p, token);
  });
}

/** Whether the holder named in a lock file is certainly gone. */
function holderIsGone(content) {
  const [pidText, host, token] = content.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || !token || host !== os.hostname()) return false;
  if (pid === process.pid) return ![...held.values()].includes(content);
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return e.code === 'ESRCH';
  }
}

/**
 * Removes a lock file whose holder is gone, one breaker at a time: under the directory
 * `<lock>.breaking` (mkdir is atomic) the file is read again and removed only if it still
 * is the dead holder's. Two waiters can thus never both break it and both take it.
 * Returns whether it made progress (false: another waiter is breaking it).
 */
function breakStale(lockPath, seen) {
  const breaker = `${lockPath}.breaking`;
  try {
    fs.mkdirSync(breaker, { mode: 0o700 });
  } catch (e) {
    if (e.code !== 'EEXIST') throw e;
    // A breaker that died in its few microseconds of work is cleared after a while.
    try {
      if (Date.now() - fs.statSync(breaker).mtimeMs > STALE_BREAKER_MS) fs.rmdirSync(breaker);
    } catch {
      // Gone already.
    }
    return false;
  }
  try {
    let current = null;
    try {
      current = fs.readFileSync(lockPath, 'utf8');
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
    }
    if (current === seen) fs.unlinkSync(lockPath);
  } finally {
    fs.rmSync(breaker, { recursive: true, force: true });
  }
  return true;
}

function tryCreate(lockPath, token) {
  let fd;
  try {
    fd = fs.openSync(lockPath, 'wx', 0o600);
  } catch (e) {
    if (e.code === 'EEXIST') return false;
    throw e;
  }
  try {
    fs.writeSync(fd, token);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/** Waits up to `timeoutMs` for the lock file; returns its release function. */
function acquire(lockPath, description, timeoutMs) {
  installExitHook();
  const token = `${process.pid} ${os.hostname()} ${randomHex(16)}\n`;
  const start = Date.now();
  let pause = FIRST_PAUSE_MS;
  for (;;) {
    if (tryCreate(lockPath, token)) {
      held.set(lockPath, token);
      return () => releaseFile(lockPath, token);
    }
    let content = null;
    try {
      content = fs.readFileSync(lockPath, 'utf8');
    } catch (e) {
      if (e.code !== 'ENOENT') throw e;
      content = null; // released just now: try again at once
    }
    if (content !== null && holderIsGone(content) && breakStale(lockPath, content)) {
      continue;
    }
    const waited = Date.now() - start;
    if (waited >= timeoutMs) {
      throw new SecretError(
        'lock-timeout',
        `${description} is held elsewhere; gave up after ${timeoutMs} ms`,
      );
    }
    if (content !== null) {
      sleepSync(Math.min(pause, timeoutMs - waited));
      pause = Math.min(pause * 2, MAX_PAUSE_MS);
    }
  }
}

/** The `exclusive-lock` resource: held until disposed (the guest dropping it). */
export class ExclusiveLock {
  #release;
  #name;

  /** Not for embedders: use `TenantSecrets.lock`. */
  constructor(name, release) {
    this.#name = name;
    this.#release = release;
  }

  /** The lock's name. */
  get name() {
    return this.#name;
  }

  /** Whether it is still held. */
  get held() {
    return this.#release !== null;
  }

  /** Releases the lock (idempotent). */
  release() {
    const release = this.#release;
    this.#release = null;
    if (release) release();
  }

  [Symbol.dispose ?? Symbol.for('dispose')]() {
    this.release();
  }
}
if (Symbol.dispose && Symbol.dispose !== Symbol.for('dispose')) {
  // jco looks the dispose method up under Symbol.dispose, or Symbol.for('dispose') on
  // runtimes without it; answer to both.
  ExclusiveLock.prototype[Symbol.for('dispose')] = ExclusiveLock.prototype.release;
}

// ---- store ---------------------------------------------------------------------------

/** Secret storage under one state directory, shared by many tenants. */
export class SecretStore {
  #stateDir;
  #masterKey;
  #limits;

  /**
   * @param {string} stateDir created 0700 when missing
   * @param {{masterKey?: Uint8Array|string, maxValueBytes?: number, maxKeys?: number,
   *          maxTenantBytes?: number, lockTimeoutCapMs?: number}} [options] `masterKey`:
   *          32 bytes, or 64 hex characters / base64 of 32 bytes; default: generated into
   *          the state directory. `maxTenantBytes`: a tenant's byte quota (stored bytes)
   */
  constructor(stateDir, options = {}) {
    this.#stateDir = path.resolve(stateDir);
    io('creating the state directory', () => {
      if (!fs.existsSync(this.#stateDir)) fs.mkdirSync(this.#stateDir, { recursive: true, mode: 0o700 });
    });
    this.#masterKey = io('loading the master key', () =>
      loadMasterKey(this.#stateDir, options.masterKey),
    );
    this.#limits = {
      maxValueBytes: options.maxValueBytes ?? MAX_VALUE_BYTES,
      maxKeys: options.maxKeys ?? MAX_KEYS,
      maxTenantBytes: options.maxTenantBytes ?? MAX_TENANT_BYTES,
      lockTimeoutCapMs: options.lockTimeoutCapMs ?? LOCK_TIMEOUT_CAP_MS,
    };
  }

  /** The state directory. */
  get stateDir() {
    return this.#stateDir;
  }

  /** The storage of one tenant (its directories are created 0700). */
  tenant(id) {
    validateTenant(id);
    const root = path.join(this.#stateDir, 'tenants', id);
    const dirs = {
      secrets: path.join(root, 'secrets'),
      locks: path.join(root, 'locks'),
    };
    io('creating the tenant directories', () => {
      for (const d of [path.join(this.#stateDir, 'tenants'), root, dirs.secrets, dirs.locks]) {
        ensurePrivateDir(d);
      }
    });
    return new TenantSecrets(id, dirs, this.#masterKey, this.#limits);
  }
}

/** One tenant's secrets and locks. Every method is synchronous. */
export class TenantSecrets {
  #tenant;
  #dirs;
  #key;
  #limits;

  constructor(tenant, dirs, masterKey, limits) {
    this.#tenant = tenant;
    this.#dirs = dirs;
    this.#key = masterKey;
    this.#limits = limits;
  }

  /** The tenant's id. */
  get tenant() {
    return this.#tenant;
  }

  /** The value of `key` (a Uint8Array), or undefined when absent. */
  get(key) {
    validateKey(key);
    const file = path.join(this.#dirs.secrets, key + VALUE_SUFFIX);
    const bytes = io(`reading key ${echo(key)}`, () => {
      try {
        return fs.readFileSync(file);
      } catch (e) {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      }
    });
    return bytes === undefined ? undefined : open(this.#key, this.#tenant, key, bytes);
  }

  /** Replaces the value of `key` atomically. */
  set(key, value) {
    validateKey(key);
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    if (bytes.length > this.#limits.maxValueBytes) {
      throw new SecretError(
        'too-large',
        `the value for key ${echo(key)} is ${bytes.length} bytes; the limit is ${this.#limits.maxValueBytes}`,
      );
    }
    const sealed = seal(this.#key, this.#tenant, key, bytes);
    const name = key + VALUE_SUFFIX;
    // Serialised with the tenant's other writers, so counting keys and adding one is one step.
    const release = io('taking the write lock', () =>
      acquire(
        path.join(this.#dirs.locks, WRITE_LOCK + LOCK_SUFFIX),
        `the write lock of tenant ${echo(this.#tenant)}`,
        WRITE_LOCK_TIMEOUT_MS,
      ),
    );
    try {
      io(`writing key ${echo(key)}`, () => {
        const keys = this.#scan();
        if (!keys.includes(key) && keys.length >= this.#limits.maxKeys) {
          throw new SecretError(
            'too-large',
            `tenant ${echo(this.#tenant)} already holds ${keys.length} keys; the limit is ${this.#limits.maxKeys}`,
          );
        }
        // The byte quota: what the tenant stores after this write, the replaced value's
        // bytes given back. A write that does not grow the tenant is always accepted.
        const sizeOf = (k) => fs.statSync(path.join(this.#dirs.secrets, k + VALUE_SUFFIX)).size;
        const stored = keys.reduce((sum, k) => sum + sizeOf(k), 0);
        const replaced = keys.includes(key) ? sizeOf(key) : 0;
        const after = stored - replaced + sealed.length;
        if (sealed.length > replaced && after > this.#limits.maxTenantBytes) {
          throw new SecretError(
            'too-large',
            `tenant ${echo(this.#tenant)} would store ${after} bytes; its quota is ${this.#limits.maxTenantBytes}`,
          );
        }
        writeAtomic(this.#dirs.secrets, name, sealed);
      });
    } finally {
      release();
    }
  }

  /** Removes `key`; removing an absent key succeeds. */
  delete(key) {
    validateKey(key);
    io(`deleting key ${echo(key)}`, () => {
      try {
        fs.unlinkSync(path.join(this.#dirs.secrets, key + VALUE_SUFFIX));
      } catch (e) {
        if (e.code === 'ENOENT') return;
        throw e;
      }
      syncDir(this.#dirs.secrets);
    });
  }

  /** Keys starting with `prefix`, sorted. */
  listKeys(prefix) {
    return io('listing keys', () => this.#scan()).filter((k) => k.startsWith(prefix));
  }

  /** Waits up to `timeoutMs` (capped) for the tenant's lock `name`. */
  lock(name, timeoutMs) {
    validateKey(name, 'lock name');
    const timeout = Math.min(timeoutMs, this.#limits.lockTimeoutCapMs);
    const release = io(`taking lock ${echo(name)}`, () =>
      acquire(
        path.join(this.#dirs.locks, name + LOCK_SUFFIX),
        `lock ${echo(name)} of tenant ${echo(this.#tenant)}`,
        timeout,
      ),
    );
    return new ExclusiveLock(name, release);
  }

  /**
   * The object to pass as the `model-provider:plugin/secrets` import of one instance.
   * Imports are called as plain functions, hence the bound methods.
   */
  imports() {
    return {
      ExclusiveLock,
      get: (key) => this.get(key),
      set: (key, value) => this.set(key, value),
      delete: (key) => this.delete(key),
      listKeys: (prefix) => this.listKeys(prefix),
      lock: (name, timeoutMs) => this.lock(name, timeoutMs),
    };
  }

  #scan() {
    const dir = this.#dirs.secrets;
    const keys = [];
    for (const name of fs.readdirSync(dir)) {
      const key = name.endsWith(VALUE_SUFFIX) ? name.slice(0, -VALUE_SUFFIX.length) : null;
      if (key !== null && problem(key, 128, KEY_CHARS) === null) {
        keys.push(key);
      } else if (name.startsWith('.') && name.endsWith('.tmp')) {
        removeIfStaleTemp(path.join(dir, name));
      }
    }
    return keys.sort();
  }
}

function removeIfStaleTemp(file) {
  try {
    if (Date.now() - fs.statSync(file).mtimeMs > STALE_TEMP_MS) fs.rmSync(file, { force: true });
  } catch {
    // Gone already.
  }
}
