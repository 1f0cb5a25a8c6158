// Imported first by oidc-server.mjs: stdout is reserved for the single JSON
// ready line, but oidc-provider prints its NOTICEs with console.info (stdout).
// Send every console.log/info/debug to stderr instead.
const toStderr = (...args) => console.error(...args);
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;
