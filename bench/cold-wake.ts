// How much slower a thread's work runs right after it slept, on this machine now (not a test):
// `node dist/bench/cold-wake.js [--runs 1500]`.
//
// The same small piece of JavaScript (reading ~1,200 objects spread over a few hundred KiB of
// heap, ~10 us hot) is timed back to back, after the thread slept 0.02-3 ms (Atomics.wait),
// after it spun for 0.3 or 1 ms, and after an fdatasync of 256 bytes. On an ordinary day the
// rows are close; on a day when this VM's host runs other work on a core while its vCPU idles,
// the work after a sleep of 1 ms or more ran 4-8x slower (session 38: 51-86 us against 9-14),
// while after a spin it kept most of its speed. A server that sleeps between requests (put-1:
// in epoll_wait and in the WAL's sync) pays that on every request: read its put-1 figures
// against this (docs/performance.md, session 38).
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const runsAt = process.argv.indexOf('--runs');
const runs = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 1500;

const objects = Array.from({ length: 8192 }, (_, i) => ({ a: i, b: `k${i}`, c: [i, i + 1] }));
function work(): number {
  let s = 0;
  for (let i = 0; i < objects.length; i += 7) {
    const o = objects[i]!;
    s += o.a + o.b.length + o.c[1]!;
  }
  return s;
}

const waitCell = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms: number) => (): void => void Atomics.wait(waitCell, 0, 0, ms);
const spin = (ms: number) => (): void => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

function row(label: string, before: () => void): void {
  const us: number[] = [];
  let sink = 0;
  for (let i = 0; i < runs; i++) {
    before();
    const t = performance.now();
    sink += work();
    us.push((performance.now() - t) * 1000);
  }
  us.sort((a, b) => a - b);
  const at = (q: number) => us[Math.min(us.length - 1, Math.floor(us.length * q))]!.toFixed(1);
  console.log(`${label.padEnd(24)} p50 ${at(0.5).padStart(6)} us   p90 ${at(0.9).padStart(6)} us${sink < 0 ? ' ' : ''}`);
}

const dir = mkdtempSync(join(tmpdir(), 'cold-wake-'));
const fd = openSync(join(dir, 'sync'), 'w');
const record = Buffer.alloc(256, 7);
try {
  console.log(`cold-wake: the same work (~10 us hot), ${runs} times after each of:`);
  row('nothing (hot)', () => {});
  for (const ms of [0.02, 0.1, 0.3, 1, 3]) row(`a sleep of ${ms} ms`, sleep(ms));
  row('a spin of 0.3 ms', spin(0.3));
  row('a spin of 1 ms', spin(1));
  row('an fdatasync', () => {
    writeSync(fd, record, 0, record.length, 0);
    fdatasyncSync(fd);
  });
  row('nothing (hot) again', () => {});
} finally {
  closeSync(fd);
  rmSync(dir, { recursive: true, force: true });
}
