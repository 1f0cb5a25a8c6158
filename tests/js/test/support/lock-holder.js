// A second process for the lock tests: takes `<lock>` of `<tenant>` in `<stateDir>`, says
// "held", releases it when told "release" on stdin (then says "released" and exits), and
// exits when stdin closes.
//
//   node lock-holder.js <stateDir> <tenant> <lock> [timeoutMs]

import readline from 'node:readline';

import { SecretStore } from '../../host/secrets.js';

const [stateDir, tenant, name, timeout = '10000'] = process.argv.slice(2);
const lock = new SecretStore(stateDir).tenant(tenant).lock(name, Number(timeout));
process.stdout.write('held\n');
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === 'release') {
    lock[Symbol.dispose]();
    process.stdout.write('released\n');
    process.exit(0);
  }
});
lines.on('close', () => process.exit(0));
