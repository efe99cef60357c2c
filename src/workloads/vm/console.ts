/** What the guest said about itself on the serial console. */
export interface ConsoleState {
  /** ms since the watcher was created when the init reported the workload started. */
  startedAfterMs?: number;
  exitCode?: number;
  exitSignal?: number;
  /** The init's own failure (mount, module, network, config), before the workload ran. */
  initFailure?: string;
  /** The text after `Kernel panic - not syncing:`. */
  panic?: string;
  /** The guest kernel's OOM killer killed a process. */
  oomKill?: boolean;
  /** The last few lines, for messages. */
  tail: string[];
}

const MARKER = /^skiff-vminit: ([0-9a-f]+) (started|exit|signal|failed)(?: (.*))?$/;
const PANIC = /Kernel panic - not syncing:?\s*(.*)$/;
const OOM = /Out of memory: Killed process \d+/;
const TAIL_LINES = 20;
const MAX_LINE = 16 << 10;

/**
 * ConsoleWatcher splits QEMU's serial output into lines, hands each to `onLine`, and picks out the
 * init's markers (those carrying this boot's token; a workload printing the same text without the
 * token is ignored), kernel panics and OOM kills. The guest is untrusted: what it reports decides
 * only the exit the host records, never anything the host does.
 */
export class ConsoleWatcher {
  readonly state: ConsoleState = { tail: [] };
  private partial = '';
  private readonly t0 = Date.now();

  constructor(
    private readonly token: string,
    private readonly onLine: (line: string) => void,
    private readonly onStarted?: () => void,
  ) {}

  feed(chunk: Buffer | string): void {
    const text = this.partial + chunk.toString('utf8');
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    if (this.partial.length > MAX_LINE) {
      lines.push(this.partial);
      this.partial = '';
    }
    for (const l of lines) this.line(l);
  }

  /** end flushes an unterminated last line. */
  end(): void {
    if (this.partial) this.line(this.partial);
    this.partial = '';
  }

  private line(raw: string): void {
    const line = raw.replace(/\r+$/, '').replace(/^\r+/, '');
    this.state.tail.push(line);
    if (this.state.tail.length > TAIL_LINES) this.state.tail.shift();
    const m = MARKER.exec(line);
    if (m && m[1] === this.token) {
      const arg = m[3] ?? '';
      if (m[2] === 'started' && this.state.startedAfterMs === undefined) {
        this.state.startedAfterMs = Date.now() - this.t0;
        this.onStarted?.();
      } else if (m[2] === 'exit') this.state.exitCode = Number(arg);
      else if (m[2] === 'signal') this.state.exitSignal = Number(arg);
      else if (m[2] === 'failed') this.state.initFailure = arg;
    }
    const p = PANIC.exec(line);
    if (p && this.state.panic === undefined) this.state.panic = p[1] || 'kernel panic';
    if (OOM.test(line)) this.state.oomKill = true;
    this.onLine(line);
  }
}
