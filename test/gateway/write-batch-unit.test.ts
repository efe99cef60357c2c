import { describe, expect, it } from 'vitest';

import type { ResponseWriter } from '../../src/gateway/context.js';
import { WriteBatch } from '../../src/gateway/write-batch.js';

/** A response that records what was written and a connection that counts corks. */
function fakeRes() {
  const socket = { destroyed: false, corks: 0, cork() { this.corks++; }, uncork() { if (this.corks > 0) this.corks--; } };
  const res = {
    ended: [] as Array<string | undefined>,
    destroyed: false,
    socket,
    headersSent: true,
    writableEnded: false,
    writeHead: () => undefined,
    write: () => true,
    end(body?: string) { res.ended.push(body); },
    destroy() { res.destroyed = true; },
  };
  return res as typeof res & ResponseWriter;
}
const nextTurn = () => new Promise<void>((r) => setImmediate(r));

describe('WriteBatch', () => {
  it('writes a lone answer at once, holds answers once a turn has several, and flushes them at the end of the turn', async () => {
    const w = new WriteBatch();
    const a = fakeRes();
    w.end(a, 'a');
    expect(a.ended).toEqual(['a']);
    const b = fakeRes();
    w.end(b, 'b');
    // The second answer of this turn waits for the turn's end.
    expect(b.ended).toEqual([]);
    expect(w.pending).toBe(1);
    await nextTurn();
    expect(b.ended).toEqual(['b']);
    // The last turn was busy: this turn's first answer waits too.
    const c = fakeRes();
    w.end(c, 'c');
    expect(c.ended).toEqual([]);
    await nextTurn();
    expect(c.ended).toEqual(['c']);
    // c's turn had one answer: the next lone answer goes out at once again.
    await nextTurn();
    const d = fakeRes();
    w.end(d, 'd');
    expect(d.ended).toEqual(['d']);
  });

  it('ends a streamed answer that finishes in a later, quiet turn (an upstream answer that ends when its connection closes)', async () => {
    const w = new WriteBatch();
    // A busy turn: two streamed answers start.
    const a = fakeRes();
    const b = fakeRes();
    w.cork(a);
    w.cork(b);
    await nextTurn();
    // Their ends arrive in later turns that count no new answer; each must still be written.
    w.finish(a);
    await nextTurn();
    expect(a.ended).toEqual([undefined]);
    await nextTurn();
    w.finish(b);
    await nextTurn();
    expect(b.ended).toEqual([undefined]);
    expect(w.pending).toBe(0);
  });

  it('counts a streamed answer once, from cork to finish, and releases held connections at the end of the turn', async () => {
    const w = new WriteBatch();
    const s = fakeRes();
    w.cork(s);
    expect(s.socket.corks).toBe(0);
    w.finish(s);
    expect(s.ended).toEqual([undefined]);
    await nextTurn();
    // A busy turn: streamed answers are corked, and uncorked when the turn ends even if they have not finished.
    w.end(fakeRes(), 'x');
    w.end(fakeRes(), 'y');
    await nextTurn();
    const t = fakeRes();
    w.cork(t);
    expect(t.socket.corks).toBe(1);
    await nextTurn();
    expect(t.socket.corks).toBe(0);
    expect(t.ended).toEqual([]);
  });

  it('skips answers whose client went away and destroys one whose write throws', async () => {
    const w = new WriteBatch();
    w.end(fakeRes(), 'one');
    const gone = fakeRes();
    const broken = fakeRes();
    broken.end = () => {
      throw new Error('write after end');
    };
    w.end(gone, 'two');
    w.end(broken, 'three');
    gone.destroyed = true;
    w.flush();
    expect(gone.ended).toEqual([]);
    expect(broken.destroyed).toBe(true);
    expect(w.pending).toBe(0);
  });
});
