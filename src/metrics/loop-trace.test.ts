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

test('a blocked loop is one stall, charged to the span that blocked it, with the span summary per second', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'loop-trace-'));
  const file = join(dir, 'trace.jsonl');
  const tracer = new LoopTracer(file, 5);
  try {
    await new Promise((r) => setTimeout(r, 20)); // the probe is ticking
    const t0 = performance.now();
    while (performance.now() - t0 < 40) { /* block the loop, as a long apply would */ }
    tracer.span('test.block', t0, 7);
    // The stall is written once it has settled (300 ms) by a flush (every second).
    const deadline = Date.now() + 30_000;
    let stall: any;
    while (!stall && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      let text = '';
      try { text = readFileSync(file, 'utf8'); } catch { /* not written yet */ }
      const lines = text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
      stall = lines.find((l) => l.type === 'stall' && l.spans['test.block']);
      if (stall) {
        const second = lines.find((l) => l.type === 'second' && l.kinds['test.block']);
        assert.ok(second, 'the span is in a per-second summary');
        assert.equal(second.kinds['test.block'].count, 1);
        assert.equal(second.kinds['test.block'].n, 7);
        assert.ok(second.kinds['test.block'].maxMs >= 40);
      }
    }
    assert.ok(stall, 'a stall overlapping the blocking span was written');
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
