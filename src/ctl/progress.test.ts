import { test } from 'node:test';
import assert from 'node:assert/strict';
import { progressFrame, ProgressBar, colorWanted } from './progress.js';
import { Printer } from './printer.js';
import { etcdserverpb as pb } from '../client/index.js';

test('progressFrame: the bar fills with the bytes done; sizes and rate as go-humanize words them', () => {
  assert.equal(progressFrame(0, 2_000_000, 0), `[>${' '.repeat(29)}] 0 B / 2.0 MB  0 B/s`);
  assert.equal(progressFrame(1_000_000, 2_000_000, 2000), `[${'='.repeat(15)}>${' '.repeat(14)}] 1.0 MB / 2.0 MB  500 kB/s`);
  assert.equal(progressFrame(2_000_000, 2_000_000, 1000), `[${'='.repeat(30)}] 2.0 MB / 2.0 MB  2.0 MB/s`);
});

test('ProgressBar: redraws in place at most every 100 ms, pads over a longer frame, ends its line', () => {
  let now = 0;
  const written: string[] = [];
  const bar = new ProgressBar((s) => written.push(s), () => now);
  bar.update(10, 1_000_000);
  now = 50;
  bar.update(20, 1_000_000); // too soon: not drawn
  assert.equal(written.length, 1);
  assert.ok(written[0]!.startsWith('\r[>'));
  now = 1000;
  bar.update(1_000_000, 1_000_000);
  assert.equal(written.length, 2);
  assert.match(written[1]!, /^\r\[=+\] 1\.0 MB \/ 1\.0 MB {2}1\.0 MB\/s$/);
  bar.finish();
  assert.equal(written.at(-1), '\n');
  // A shorter frame after a longer one is padded to the longer one's width.
  const frames = written.filter((w) => w.startsWith('\r'));
  for (let i = 1; i < frames.length; i++) assert.ok(frames[i]!.length >= frames[i - 1]!.length);
});

test('colorWanted: only on a terminal, and not with NO_COLOR set to something', () => {
  assert.equal(colorWanted(true, {}), true);
  assert.equal(colorWanted(true, { NO_COLOR: '' }), true);
  assert.equal(colorWanted(true, { NO_COLOR: '1' }), false);
  assert.equal(colorWanted(false, {}), false);
  assert.equal(colorWanted(undefined, {}), false);
});

test('Printer with color: get colors keys and values in the simple format only', () => {
  const kv = { key: Buffer.from('k'), value: Buffer.from('v'), createRevision: 2, modRevision: 2, version: 1, lease: 0n };
  const res: pb.RangeResponse = { header: undefined, kvs: [kv], more: false, count: 1 };
  const run = (format: 'simple' | 'json', color: boolean) => {
    const out: string[] = [];
    new Printer(format, false, (s) => out.push(Buffer.from(s).toString('latin1')), () => {}, color).get(res);
    return out.join('');
  };
  assert.equal(run('simple', true), '\x1b[1;34mk\x1b[0m\n\x1b[32mv\x1b[0m\n');
  assert.equal(run('simple', false), 'k\nv\n');
  assert.doesNotMatch(run('json', true), /\x1b/);
});
