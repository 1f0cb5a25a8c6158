// Runs calls of the hostile guest in a process of its own and prints what became of each,
// so that a test can bound the whole run from outside: without the host's budgets a call
// that spins, or blocks, never returns, and this process is killed by the test's timeout
// instead of hanging the test runner.
//
//   node hostile-call.js '<plan as JSON>'
//   plan: {stateDir, tenant, limits, hold?: lock name held by this process meanwhile,
//          collectStderr?: the plugin's stderr lines are collected instead of logged,
//          calls: [{op, args}]}
// Prints one JSON line: {results: [{ms, ok?, tag?, code?, message?, length?}], instances,
//   lockFree, maxRssMiB, stderrLines?}.

import path from 'node:path';

import { loadPlugin, SecretStore } from '../../host/index.js';
import { hostileWasm } from './peers.js';

const plan = JSON.parse(process.argv[2]);
const store = new SecretStore(plan.stateDir);
const hostile = await loadPlugin(hostileWasm(), {
  outDir: path.join(plan.stateDir, 'hostile'),
  limits: plan.limits,
});
const stderrLines = [];
const p = await hostile.instantiate({
  secrets: store.tenant(plan.tenant),
  stderr: plan.collectStderr ? (line) => stderrLines.push(line) : undefined,
});
const held = plan.hold ? store.tenant(plan.tenant).lock(plan.hold, 0) : null;

const results = [];
for (const { op, args = [] } of plan.calls) {
  const began = performance.now();
  const r = {};
  try {
    const value = p[op](...args);
    r.ok = true;
    if (Array.isArray(value?.models)) r.length = value.models.length;
    if (typeof value?.defaultModelId === 'string') r.defaultModelId = value.defaultModelId;
  } catch (e) {
    r.ok = false;
    r.code = e.code;
    r.tag = e.payload?.tag;
    r.message = String(e.payload?.val ?? e.message).slice(0, 300);
  }
  r.ms = Math.round(performance.now() - began);
  results.push(r);
}
held?.release();

// Whether the instance left the tenant's credentials lock free.
let lockFree = true;
try {
  store.tenant(plan.tenant).lock('credentials', 0).release();
} catch {
  lockFree = false;
}
const out = {
  results,
  instances: p.instances,
  lockFree,
  maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  stderrLines: plan.collectStderr ? stderrLines : undefined,
};
p.dispose();
console.log(JSON.stringify(out));
