// A racer for the lock exclusivity test: `rounds` times, takes `<lock>` of `<tenant>`,
// checks that nobody else is inside (a marker file created exclusively), and leaves; every
// third time it leaves the lock file behind rewritten as if its holder had died (pid
// `<deadPid>`), so that the other racers must break it, all at once.
//
//   node lock-racer.js <stateDir> <tenant> <lock> <rounds> <deadPid>

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { SecretStore } from '../../host/secrets.js';

const [stateDir, tenant, name, rounds, deadPid] = process.argv.slice(2);
const secrets = new SecretStore(stateDir).tenant(tenant);
const lockFile = path.join(stateDir, 'tenants', tenant, 'locks', `${name}.lock`);
const marker = path.join(stateDir, `${tenant}-${name}.inside`);

for (let round = 0; round < Number(rounds); round += 1) {
  const lock = secrets.lock(name, 20_000);
  try {
    fs.closeSync(fs.openSync(marker, 'wx'));
  } catch (e) {
    process.stdout.write(`overlap in round ${round}: ${e.code}\n`);
    process.exit(1);
  }
  const until = Date.now() + 1;
  while (Date.now() < until);
  fs.unlinkSync(marker);
  if (round % 3 === 0) {
    fs.writeFileSync(lockFile, `${deadPid} ${os.hostname()} ${round}dead${process.pid}\n`);
  } else {
    lock.release();
  }
}
process.stdout.write('done\n');
