// A streamed reply put back together: the `chat-chunk` events of a `chat-stream` (jco
// variants `{tag, val}`) folded into what `chat` would have answered, a `chat-reply`
// without `model` and `lane`. Tool calls are assembled by index: a `tool-call-start`
// gives the id and name, the `tool-call-arguments` deltas of that index append to its
// arguments.

export class StreamAssembler {
  #text = '';
  #reasoning = undefined;
  #calls = new Map();
  #reasoningItems = [];
  #citations = [];
  #usage = undefined;
  #finishReason = undefined;

  /** Folds one chunk in; throws on a chunk the contract does not allow. */
  push(chunk) {
    const { tag, val } = chunk;
    switch (tag) {
      case 'text':
        this.#text += val;
        break;
      case 'reasoning':
        this.#reasoning = (this.#reasoning ?? '') + val;
        break;
      case 'tool-call-start':
        if (this.#calls.has(val.index)) throw new Error(`tool call ${val.index} started twice`);
        this.#calls.set(val.index, { id: val.id, name: val.name, arguments: '' });
        break;
      case 'tool-call-arguments': {
        const call = this.#calls.get(val.index);
        if (!call) throw new Error(`arguments for tool call ${val.index} before its start`);
        call.arguments += val.arguments;
        break;
      }
      case 'reasoning-item':
        this.#reasoningItems.push(val);
        break;
      case 'citation':
        this.#citations.push(val);
        break;
      case 'usage':
        this.#usage = val;
        break;
      case 'finish':
        this.#finishReason = val;
        break;
      default:
        throw new Error(`unknown chat-chunk ${JSON.stringify(tag)}`);
    }
  }

  /** The reply so far: tool calls in index order. */
  reply() {
    const toolCalls = [...this.#calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, call]) => ({ ...call }));
    return {
      content: this.#text,
      toolCalls,
      reasoning: this.#reasoning,
      reasoningItems: [...this.#reasoningItems],
      citations: [...this.#citations],
      usage: this.#usage,
      finishReason: this.#finishReason,
    };
  }
}

/**
 * Reads `stream` (from `ChatStream.open`) to its end, disposes it, and returns the
 * assembled `reply` and the `chunks` as they came.
 */
export function collectStream(stream) {
  const assembler = new StreamAssembler();
  const chunks = [];
  try {
    for (let chunk = stream.next(); chunk !== undefined; chunk = stream.next()) {
      chunks.push(chunk);
      assembler.push(chunk);
    }
  } finally {
    stream[Symbol.dispose ?? Symbol.for('dispose')]();
  }
  return { reply: assembler.reply(), chunks };
}
