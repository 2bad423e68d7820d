// The progress bar draws on a terminal only, with bytes, total, share and rate, at most once
// per redraw interval; humanizeBytes rounds as go-humanize's Bytes (Go's %.0f: half to even).
// (The sizes as etcdctl prints them are compared with real etcdctl in test/snapshot-status-size.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { humanizeBytes, progressBar, progressLine } from './progress.js';
import { createLogger } from './index.js';

function fakeTerminal(isTTY: boolean): { isTTY: boolean; columns: number; written: string[]; write(s: string): void } {
  const written: string[] = [];
  return { isTTY, columns: 100, written, write(s: string) { written.push(s); } };
}

test('piped or redirected output gets no bar at all', () => {
  const out = fakeTerminal(false);
  const bar = progressBar('restoring', out, { now: () => 0 });
  bar.update(10, 100);
  bar.done();
  assert.deepEqual(out.written, []);
});

test('a terminal gets one line redrawn in place with bytes, total, share and rate, then a newline', () => {
  const out = fakeTerminal(true);
  let t = 0;
  const bar = progressBar('restoring', out, { now: () => t, redrawEveryMs: 100 });
  t = 1000;
  bar.update(50_000_000, 200_000_000);
  t = 1050;
  bar.update(60_000_000); // within the redraw interval: not drawn
  t = 2000;
  bar.update(100_000_000);
  bar.done();
  assert.equal(out.written.length, 4);
  assert.ok(out.written.slice(0, 3).every((l) => l.startsWith('\r') && l.endsWith('\x1b[K')));
  assert.match(out.written[0]!, /^\rrestoring \[=+> +\]  25% 50 MB \/ 200 MB  50 MB\/s\x1b\[K$/);
  assert.match(out.written[1]!, /  50% 100 MB \/ 200 MB  50 MB\/s/, 'the total given first is kept');
  assert.equal(out.written[3], '\n');
  bar.update(1, 2);
  assert.equal(out.written.length, 4, 'nothing after done()');
});

test('without a known total the line shows bytes and rate only; a narrow terminal drops the bar', () => {
  assert.equal(progressLine('saving', 2500, undefined, 1234, 80), 'saving 2.5 kB  1.2 kB/s');
  assert.equal(progressLine('saving', 2500, 10_000, 1234, 20), 'saving  25% 2.5 kB / 10 kB  1.2 kB/s');
  assert.equal(progressLine('x', 10, 10, 10, 80), `x [${'='.repeat(40)}] 100% 10 B / 10 B  10 B/s`);
});

test('humanizeBytes is go-humanize Bytes: SI units, one decimal under 10, halves to even above', () => {
  const cases: Array<[number, string]> = [
    [0, '0 B'], [9, '9 B'], [10, '10 B'], [999, '999 B'], [1000, '1.0 kB'], [2500, '2.5 kB'], [9949, '9.9 kB'],
    [9950, '10 kB'], [82_854_982, '83 MB'],
    [12_500_992, '12 MB'], [13_500_416, '14 MB'], [10_500_096, '10 MB'], [11_501_568, '12 MB'], [12_549_999, '12 MB'],
    [12_550_000, '13 MB'], [268_435_456, '268 MB'],
  ];
  for (const [n, want] of cases) assert.equal(humanizeBytes(n), want, String(n));
});

test('a log line written while a bar is on screen clears the bar and redraws it below the line', () => {
  const screen: string[] = [];
  const out = { isTTY: true, columns: 100, write(s: string) { screen.push(s); } };
  const log = createLogger({ caller: false, stream: { write(s: string) { screen.push(s); } } });
  let t = 0;
  const bar = progressBar('restoring', out, { now: () => t });
  t = 1000;
  bar.update(50_000_000, 200_000_000);
  log.info('restored snapshot');
  bar.done();
  log.info('after the bar');
  const barLine = `\r${progressLine('restoring', 50_000_000, 200_000_000, 50_000_000, 100)}\x1b[K`;
  assert.deepEqual(screen.map((s) => (s.startsWith('{') ? JSON.parse(s).msg : s)),
    [barLine, '\r\x1b[K', 'restored snapshot', barLine, barLine, '\n', 'after the bar']);
});
