// Progress of a long transfer on a terminal: "[=========>          ]  12.3 MB / 40.1 MB  4.5 MB/s",
// drawn over itself on stderr at most every REDRAW_MS. Off a terminal (piped, in a script)
// nothing is drawn, as etcdctl draws nothing.
import { humanizeBytes } from './format.js';

const REDRAW_MS = 100;
const BAR_CELLS = 30;

/** One frame of the bar: done of total bytes, at the rate since the start. */
export function progressFrame(doneBytes: number, totalBytes: number, elapsedMs: number): string {
  const fraction = totalBytes > 0 ? Math.min(1, doneBytes / totalBytes) : 0;
  const filled = Math.floor(fraction * BAR_CELLS);
  const bar = filled >= BAR_CELLS ? '='.repeat(BAR_CELLS) : `${'='.repeat(filled)}>${' '.repeat(BAR_CELLS - filled - 1)}`;
  const rate = elapsedMs > 0 ? doneBytes / (elapsedMs / 1000) : 0;
  return `[${bar}] ${humanizeBytes(doneBytes)} / ${humanizeBytes(totalBytes)}  ${humanizeBytes(Math.round(rate))}/s`;
}

export class ProgressBar {
  private readonly started: number;
  private lastDraw = -Infinity;
  private lastWidth = 0;
  private done = 0;
  private total = 0;

  /** `write` is stderr on a terminal; `now` a clock in ms (tests pass their own). */
  constructor(private readonly write: (s: string) => void, private readonly now: () => number = Date.now) {
    this.started = now();
  }

  update(doneBytes: number, totalBytes: number): void {
    this.done = doneBytes;
    this.total = totalBytes;
    const t = this.now();
    if (t - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = t;
    this.draw(t);
  }

  /** The last frame, and the line ended. */
  finish(): void {
    this.draw(this.now());
    this.write('\n');
  }

  private draw(t: number): void {
    const frame = progressFrame(this.done, this.total, t - this.started);
    // Pad over a longer previous frame so that no stale characters stay at its end.
    this.write(`\r${frame.padEnd(this.lastWidth)}`);
    this.lastWidth = frame.length;
  }
}

/** The no-op bar used off a terminal. */
export const noProgress = { update(): void {}, finish(): void {} };

/** Colors and bars are for people: a terminal, and NO_COLOR (https://no-color.org) unset or empty. */
export function colorWanted(isTerminal: boolean | undefined, env: NodeJS.ProcessEnv): boolean {
  return isTerminal === true && (env.NO_COLOR ?? '') === '';
}
