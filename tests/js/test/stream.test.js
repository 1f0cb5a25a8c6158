// The stream assembler on its own: `chat-chunk` variants folded into a reply, tool calls
// put together by index whatever the order of their events.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { StreamAssembler, collectStream } from '../host/stream.js';

const fold = (chunks) => {
  const a = new StreamAssembler();
  for (const c of chunks) a.push(c);
  return a.reply();
};

describe('stream assembly', () => {
  it('assembles interleaved tool calls by index, arguments in pieces', () => {
    const reply = fold([
      { tag: 'text', val: 'Calling a, ' },
      { tag: 'tool-call-start', val: { index: 1, id: 'call_1', name: 'b' } },
      { tag: 'tool-call-start', val: { index: 0, id: 'call_0', name: 'a' } },
      { tag: 'tool-call-arguments', val: { index: 1, arguments: '{"x":' } },
      { tag: 'tool-call-arguments', val: { index: 0, arguments: '{}' } },
      { tag: 'text', val: 'b.' },
      { tag: 'tool-call-arguments', val: { index: 1, arguments: '1}' } },
      { tag: 'tool-call-arguments', val: { index: 1, arguments: '' } },
      { tag: 'usage', val: { inputTokens: 1, outputTokens: 2, totalTokens: 3 } },
      { tag: 'finish', val: { tag: 'tool-calls' } },
    ]);
    assert.equal(reply.content, 'Calling a, b.');
    assert.deepEqual(reply.toolCalls, [
      { id: 'call_0', name: 'a', arguments: '{}' },
      { id: 'call_1', name: 'b', arguments: '{"x":1}' },
    ]);
    assert.deepEqual(reply.finishReason, { tag: 'tool-calls' });
    assert.equal(reply.usage.totalTokens, 3);
    assert.equal(reply.reasoning, undefined);
  });

  it('keeps reasoning, reasoning items and citations in order', () => {
    const item = { lane: 'responses', data: '{}' };
    const cite = { url: 'https://example.com/', title: undefined, startIndex: 0, endIndex: 2 };
    const reply = fold([
      { tag: 'reasoning', val: 'thin' },
      { tag: 'reasoning', val: 'king' },
      { tag: 'reasoning-item', val: item },
      { tag: 'text', val: 'hi' },
      { tag: 'citation', val: cite },
      { tag: 'finish', val: { tag: 'other', val: 'end_turn' } },
    ]);
    assert.equal(reply.reasoning, 'thinking');
    assert.deepEqual(reply.reasoningItems, [item]);
    assert.deepEqual(reply.citations, [cite]);
    assert.deepEqual(reply.finishReason, { tag: 'other', val: 'end_turn' });
  });

  it('refuses arguments before their start, a start twice, and unknown chunks', () => {
    const a = new StreamAssembler();
    assert.throws(() => a.push({ tag: 'tool-call-arguments', val: { index: 0, arguments: '{}' } }), /before its start/);
    a.push({ tag: 'tool-call-start', val: { index: 0, id: 'c', name: 'n' } });
    assert.throws(() => a.push({ tag: 'tool-call-start', val: { index: 0, id: 'c', name: 'n' } }), /twice/);
    assert.throws(() => a.push({ tag: 'delta', val: 'x' }), /unknown chat-chunk/);
  });

  it('reads a stream to its end and disposes it, also when a chunk is refused', () => {
    const stream = (chunks) => {
      const s = { disposed: false, next: () => chunks.shift() };
      s[Symbol.dispose] = () => (s.disposed = true);
      return s;
    };
    const ok = stream([{ tag: 'text', val: 'a' }, { tag: 'finish', val: { tag: 'stop' } }]);
    const { reply, chunks } = collectStream(ok);
    assert.equal(reply.content, 'a');
    assert.equal(chunks.length, 2);
    assert.ok(ok.disposed);
    const bad = stream([{ tag: 'tool-call-arguments', val: { index: 3, arguments: '' } }]);
    assert.throws(() => collectStream(bad), /before its start/);
    assert.ok(bad.disposed);
  });
});
