// A `chat-request` as jco lowers it (WIT 0.2.0): records are objects with camelCase
// fields, every `list` an array (none may be missing), `option` a value or undefined,
// variants `{tag, val}` (`content-part` `{tag: 'text', val}` or `{tag: 'image', val}`),
// `s64` (`seed`) a BigInt.

/** A message as jco lowers it; `content` may be a string (one text part). */
function message(m) {
  if (m === null || typeof m !== 'object') return m; // jco reports what is wrong
  return {
    ...m,
    content: typeof m.content === 'string' ? [{ tag: 'text', val: m.content }] : (m.content ?? []),
    toolCalls: m.toolCalls ?? [],
    reasoning: m.reasoning ?? [],
  };
}

/**
 * `request` with its empty lists filled in (`tools`, `stop`, and each message's
 * `toolCalls` and `reasoning`) and string contents made text parts, so that
 * `{model, messages: [{role: 'user', content: 'Hello'}]}` is a whole request. Anything
 * given is passed on as it is.
 */
export function chatRequest(request) {
  if (request === null || typeof request !== 'object') return request;
  return {
    ...request,
    messages: Array.isArray(request.messages) ? request.messages.map(message) : request.messages,
    tools: request.tools ?? [],
    stop: request.stop ?? [],
  };
}
