import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoopTracer, loopTrace } from './loop-trace.js';

test('off by default: no tracer without CONCORD_LOOP_TRACE', () => {
  if (process.env.CONCORD_LOOP_TRACE) return;
  assert.equal(loopTrace, undefined);
});

/** The trace file's lines once `done` holds for them (stalls are written once settled, 300 ms, by a flush, every second). */
async function traceLines(file: string, done: (lines: any[]) => boolean): Promise<any[]> {
  const deadline = Date.now() + 30_000;
  let lines: any[] = [];
  while (!done(lines) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    let text = '';
    try { text = readFileSync(file, 'utf8'); } catch { /* not written yet */ }
    lines = text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  }
  return lines;
}

test('a blocked loop is one stall, charged to the span that blocked it, with the span summary per second', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loop-trace-'));
  const file = join(dir, 'trace.jsonl');
  const tracer = new LoopTracer(file, 5);
  try {
    await new Promise((r) => setTimeout(r, 20)); // the probe is ticking
    const t0 = performance.now();
    while (performance.now() - t0 < 40) { /* block the loop, as a long apply would */ }
    tracer.span('test.block', t0, 7);
    const isStall = (l: any): boolean => l.type === 'stall' && l.spans['test.block'];
    const lines = await traceLines(file, (ls) => ls.some(isStall));
    const stall = lines.find(isStall);
    assert.ok(stall, 'a stall overlapping the blocking span was written');
    const second = lines.find((l) => l.type === 'second' && l.kinds['test.block']);
    assert.ok(second, 'the span is in a per-second summary');
    assert.equal(second.kinds['test.block'].count, 1);
    assert.equal(second.kinds['test.block'].n, 7);
    assert.ok(second.kinds['test.block'].maxMs >= 40);
    assert.ok(stall.ms >= 35, `stall of ${stall.ms} ms`);
    const [overlapMs, spans, n] = stall.spans['test.block'];
    assert.ok(overlapMs >= 35, `overlap ${overlapMs} ms`);
    assert.equal(spans, 1);
    assert.equal(n, 7);
  } finally {
    tracer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a stall keeps its span when more spans than the ring holds come after it before the flush', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loop-trace-'));
  const file = join(dir, 'trace.jsonl');
  const tracer = new LoopTracer(file, 5);
  try {
    await new Promise((r) => setTimeout(r, 20));
    const t0 = performance.now();
    while (performance.now() - t0 < 40) { /* the stall */ }
    tracer.span('test.block', t0, 1);
    await new Promise((r) => setTimeout(r, 10)); // the probe's tick finds the stall
    // A busy server marks ~100k spans a second; the stall is written 0.3-1.3 s after it.
    for (let i = 0; i < 70_000; i++) tracer.span('test.after', performance.now(), 0);
    const isStall = (l: any): boolean => l.type === 'stall' && l.ms >= 35;
    const stall = (await traceLines(file, (ls) => ls.some(isStall))).find(isStall);
    assert.ok(stall, 'the stall was written');
    assert.ok(stall.spans['test.block'], `charged to its span: ${JSON.stringify(stall.spans)}`);
    assert.equal(stall.spans['test.after'], undefined);
  } finally {
    tracer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
