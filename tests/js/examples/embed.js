// The README's "Embedding in a JavaScript host" example: one tenant, device login, chat.
//   PLUGIN_WASM=…/grok_provider_plugin.wasm node examples/embed.js
// The plugin's manifest names its settings and their environment variables (for xAI:
// XAI_OAUTH_ISSUER, XAI_API_BASE, …); the sandbox allows exactly the origins of the
// endpoints in use.
import { setTimeout as sleep } from 'node:timers/promises';

import { configFromEnv, loadPlugin, SecretStore } from '../host/index.js';

const plugin = await loadPlugin(process.env.PLUGIN_WASM); // jco transpile, once per process
const store = new SecretStore(process.env.STATE_DIR ?? './state'); // encrypted, per tenant
const provider = await plugin.instantiate({
  secrets: store.tenant('tenant-42'),
  config: configFromEnv(plugin.manifest), // overrides of the manifest's defaults
});

try {
  if (!provider.status().connected) {
    const prompt = provider.start();
    console.log(`Open ${prompt.verificationUrlWithCode} and check the code ${prompt.userCode}`);
    for (;;) {
      await sleep(prompt.intervalSeconds * 1000);
      const outcome = provider.poll(prompt.pendingId);
      if (outcome.tag === 'connected') break;
    }
  }
  const reply = provider.chat({
    model: 'xai-grok/grok-4.3',
    messages: [{ role: 'user', content: 'Hello' }],
  });
  console.log(`${reply.content} (route ${reply.route})`);
} catch (e) {
  // Every export throws its `provider-error` as e.payload: {tag: 'access-denied', val: '...'}
  console.error(`${e.payload?.tag ?? 'error'}: ${e.payload?.val?.message ?? e.payload?.val ?? e}`);
  process.exitCode = 1;
}
