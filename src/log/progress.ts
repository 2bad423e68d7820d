// Progress of long work (a snapshot saved, restored, exported) for a person at a terminal:
// one line redrawn in place with the bytes done, the total, the share and the rate. Piped
// or redirected output gets nothing (a log or a script reads the tool's own lines instead),
// so tools whose output is compared with etcd's stay byte-identical when not on a terminal.
//
// Sizes read as etcd's tools print them: go-humanize's Bytes (SI units, Go's rounding).

/** Where a bar is drawn: process.stderr, or a test's fake terminal. */
export interface ProgressOutput {
  readonly isTTY?: boolean;
  /** Width in characters; 0 or absent (a terminal of unknown size): 80. */
  readonly columns?: number;
  write(text: string): unknown;
}

export interface Progress {
  /** Bytes done so far, of `totalBytes` when known (the last total given is kept). */
  update(doneBytes: number, totalBytes?: number): void;
  /** Draws the final state and ends the line. Updates after it are ignored. */
  done(): void;
}

export interface ProgressOptions {
  /** Milliseconds since some fixed point (default: performance.now). */
  now?: () => number;
  /** Least time between two redraws, in milliseconds. */
  redrawEveryMs?: number;
}

const quiet: Progress = { update() { /* not a terminal */ }, done() { /* not a terminal */ } };

/** Bars on screen now (drawn, not done): a log line clears them first and redraws them after. */
const barsOnScreen = new Set<{ out: ProgressOutput; redraw(): void }>();
const clearLine = '\r\x1b[K';

/**
 * Writes a log line with the bars on screen moved out of its way: each bar's line is cleared,
 * the line written, the bar redrawn below it. Without this a line written while a bar is
 * drawn lands after the bar's text, mid-line. The logger calls it for every line it writes
 * to a terminal stream; with no bar on screen it just writes.
 */
export function writeAroundProgress(write: (line: string) => unknown, line: string): void {
  if (barsOnScreen.size === 0) { write(line); return; }
  for (const bar of barsOnScreen) bar.out.write(clearLine);
  write(line);
  for (const bar of barsOnScreen) bar.redraw();
}

/** A bar on `out` if it is a terminal, else a progress that writes nothing. */
export function progressBar(label: string, out: ProgressOutput = process.stderr, opts: ProgressOptions = {}): Progress {
  if (out.isTTY !== true) return quiet;
  const now = opts.now ?? (() => performance.now());
  const redrawEveryMs = opts.redrawEveryMs ?? 100;
  const started = now();
  let lastDraw = -Infinity;
  let done = 0;
  let total: number | undefined;
  let finished = false;
  const draw = (t: number): void => {
    lastDraw = t;
    const seconds = Math.max(0.001, (t - started) / 1000);
    out.write(`\r${progressLine(label, done, total, done / seconds, out.columns || 80)}\x1b[K`);
    barsOnScreen.add(onScreen);
  };
  const onScreen = { out, redraw: () => draw(now()) };
  return {
    update(doneBytes, totalBytes) {
      if (finished) return;
      done = doneBytes;
      if (totalBytes !== undefined) total = totalBytes;
      const t = now();
      if (t - lastDraw >= redrawEveryMs) draw(t);
    },
    done() {
      if (finished) return;
      finished = true;
      draw(now());
      barsOnScreen.delete(onScreen);
      out.write('\n');
    },
  };
}

/** `label [=====>    ]  45% 115 MB / 256 MB  42 MB/s`, the bar filling what `columns` leaves. */
export function progressLine(label: string, done: number, total: number | undefined, bytesPerSecond: number, columns: number): string {
  const known = total !== undefined && total > 0;
  const share = known ? Math.min(1, done / total) : 0;
  const figures = `${known ? `${String(Math.floor(share * 100)).padStart(3)}% ` : ''}${humanizeBytes(done)}${known ? ` / ${humanizeBytes(total)}` : ''}  ${humanizeBytes(Math.round(bytesPerSecond))}/s`;
  const width = Math.min(40, columns - label.length - figures.length - 5);
  if (!known || width < 10) return `${label} ${figures}`;
  const filled = Math.floor(share * width);
  const bar = filled >= width ? '='.repeat(width) : `${'='.repeat(filled)}>${' '.repeat(width - filled - 1)}`;
  return `${label} [${bar}] ${figures}`;
}

/**
 * go-humanize's Bytes, as etcd's tools print sizes: SI units, one decimal under 10, Go's
 * %.0f above (which rounds half to even: 12.5 MB prints "12 MB").
 */
export function humanizeBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const sizes = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const e = Math.floor(Math.log(n) / Math.log(1000));
  const val = Math.floor((n / 1000 ** e) * 10 + 0.5) / 10;
  return `${val < 10 ? val.toFixed(1) : roundHalfEven(val)} ${sizes[e]}`;
}

/** Go's %.0f of a value with one decimal: halves go to the even neighbour. */
function roundHalfEven(x: number): string {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff > 0.5 || (diff === 0.5 && f % 2 === 1)) return String(f + 1);
  return String(f);
}
