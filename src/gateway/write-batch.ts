import type { Socket } from 'node:net';

import type { ResponseWriter } from './response-writer.js';

/**
 * WriteBatch holds what HTTP/1.x answers write during one turn of the event loop until the end of
 * that turn (setImmediate: right after the I/O callbacks of this turn, never a timer), then writes
 * it all back to back, whenever the turns are busy.
 *
 * Why: every write to a connection wakes the client that waits on it. Written one by one, spread over
 * the turn (each after its request's filters and function run, or as each upstream answer arrives),
 * each write finds the client asleep again and pays for waking it: on loopback that wake-up is
 * charged to the writer's send(2), and it costs a sizeable share of what a whole function request
 * costs (README.md, "Writing answers"). Written together, the first write wakes the
 * client and the others find it awake.
 *
 * When the turns carry one answer each (a lone client), nothing is gained by waiting and the wait
 * itself shows in a lone client's latency, so an answer is held only when the previous turn had several, or when this turn
 * already has one.
 *
 * Two forms: `end` is a response's final write (status and headers are set at once by the caller,
 * so a bad header still fails inside the request's own error handling); `cork` holds a streamed
 * answer's connection until the end of the turn, so its head and the chunks that arrive in this
 * turn go out together, and later chunks flow as they come.
 */
export class WriteBatch {
  private ends: ResponseWriter[] = [];
  private bodies: Array<Uint8Array | string | undefined> = [];
  private corked: Socket[] = [];
  /** Answers seen this turn, and in the last turn that had any. */
  private thisTurn = 0;
  private lastTurn = 0;
  private scheduled = false;
  private readonly turnEnds = () => this.flush();

  /** end writes a whole answer's `res.end(body)`, now or at the end of this turn. */
  end(res: ResponseWriter, body?: Uint8Array | string): void {
    this.count();
    this.endOrHold(res, body);
  }

  /**
   * cork starts a streamed answer: its connection is held until the end of this turn when answers
   * are being held (a no-op for a response without a connection of its own, such as a mirrored
   * request's). Node's own end() releases it earlier, fully, so the answer ends through `finish`.
   */
  cork(res: ResponseWriter): void {
    this.count();
    const socket = (res as { socket?: Socket | null }).socket;
    if (!socket || socket.destroyed || !this.holding()) return;
    socket.cork();
    this.corked.push(socket);
  }

  /** finish ends a streamed answer that cork started: `res.end()`, now or at the end of this turn. */
  finish(res: ResponseWriter): void {
    this.endOrHold(res, undefined);
  }

  private endOrHold(res: ResponseWriter, body: Uint8Array | string | undefined): void {
    if (!this.holding()) {
      res.end(body);
      return;
    }
    this.ends.push(res);
    this.bodies.push(body);
    // A streamed answer can end in a later turn than it started (an upstream answer that ends when its
    // connection closes): that turn may have counted no answer, so its end must still be seen.
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.turnEnds);
    }
  }

  /** count notes one more answer in this turn (and makes sure the turn's end is seen). */
  private count(): void {
    this.thisTurn++;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.turnEnds);
    }
  }

  /** holding: whether writes wait for the turn's end (the last turn, or this one, has several answers). */
  private holding(): boolean {
    return this.thisTurn > 1 || this.lastTurn > 1;
  }

  /** flush writes everything held and closes the turn's count; the gateway also calls it before it closes connections. */
  flush(): void {
    this.scheduled = false;
    this.lastTurn = this.thisTurn;
    this.thisTurn = 0;
    const ends = this.ends;
    const bodies = this.bodies;
    const corked = this.corked;
    if (ends.length > 0) {
      this.ends = [];
      this.bodies = [];
      for (let i = 0; i < ends.length; i++) {
        const res = ends[i]!;
        // A connection the client dropped meanwhile has nothing left to write to.
        if ((res as { destroyed?: boolean }).destroyed) continue;
        try {
          res.end(bodies[i]);
        } catch {
          res.destroy();
        }
      }
    }
    if (corked.length > 0) {
      this.corked = [];
      // end() above already released its connection; uncorking one that is not corked does nothing.
      for (const socket of corked) if (!socket.destroyed) socket.uncork();
    }
  }

  /** pending counts held writes (for tests). */
  get pending(): number {
    return this.ends.length + this.corked.length;
  }
}
