// Applies the fix of Portkey-AI/gateway#1389 to the pinned build (idempotent): on Node,
// a streamed reply passed through unchanged keeps the immutable headers of `fetch`'s
// Response, and `updateHeaders` then throws "TypeError: immutable", so every streamed
// request answers 500 "Something went wrong". The fix copies the response (a new
// Response has mutable headers) and uses the copy.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const file = fileURLToPath(
  new URL('./node_modules/@portkey-ai/gateway/build/start-server.js', import.meta.url),
);
const edits = [
  ['this.updateHeaders(i,n.cacheStatus,o),{response:i', 'i=this.updateHeaders(i,n.cacheStatus,o),{response:i'],
  ['updateHeaders(e,t,a){return e.headers.append(', 'updateHeaders(e,t,a){return e=new Response(e.body,e),e.headers.append('],
];
let text = readFileSync(file, 'utf8');
for (const [from, to] of edits) {
  if (text.includes(to)) continue;
  const n = text.split(from).length - 1;
  if (n !== 1) {
    console.error(`portkey patch: expected one "${from}" in ${file}, found ${n}`);
    process.exit(1);
  }
  text = text.replace(from, to);
}
writeFileSync(file, text);
