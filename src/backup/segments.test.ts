// Segment files: a round trip, and damaged files (flipped bytes, cut short) give
// BackupFormatError naming the file, never another error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rng } from '../testkit/index.js';
import { Event_EventType, type Event } from '../proto/index.js';
import { BackupFormatError, encodeSegment, readSegment, writeFileDurably, listSegments, segmentFileName } from './segments.js';

const event = (i: number): Event => ({
  type: i % 3 === 0 ? Event_EventType.DELETE : Event_EventType.PUT,
  kv: { key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`.repeat(i % 7)), createRevision: i, modRevision: i + 1, version: 1, lease: 0n },
  prevKv: undefined,
});

test('segments round trip and are listed in revision order', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'concord-seg-'));
  try {
    const events = Array.from({ length: 100 }, (_, i) => event(i));
    writeFileDurably(path.join(dir, segmentFileName(101, 200)), encodeSegment(events));
    writeFileDurably(path.join(dir, segmentFileName(1, 100)), encodeSegment(events.slice(0, 3)));
    assert.deepEqual(listSegments(dir).map((s) => [s.first, s.last]), [[1, 100], [101, 200]]);
    const back = readSegment(listSegments(dir)[1]!.file, 1 << 20);
    assert.deepEqual(back.map((e) => [e.type, Buffer.from(e.kv!.key).toString(), Number(e.kv!.modRevision)]), events.map((e) => [e.type, Buffer.from(e.kv!.key).toString(), Number(e.kv!.modRevision)]));
    assert.ok(!fs.readdirSync(dir).some((f) => f.endsWith('.part')));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('fuzz: a damaged or cut segment gives BackupFormatError', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'concord-seg-'));
  const rand = rng(99);
  const good = encodeSegment(Array.from({ length: 50 }, (_, i) => event(i)));
  let noticed = 0;
  try {
    for (let round = 0; round < 300; round++) {
      const bad = Buffer.from(good);
      if (round % 2 === 0) bad[Math.floor(rand() * bad.length)] ^= 1 + Math.floor(rand() * 255);
      const file = path.join(dir, 'seg.gz');
      fs.writeFileSync(file, round % 2 === 0 ? bad : bad.subarray(0, Math.floor(rand() * bad.length)));
      try {
        readSegment(file, 1 << 20);
      } catch (e) {
        assert.ok(e instanceof BackupFormatError, `round ${round}: ${String(e)}`);
        assert.match((e as Error).message, /seg\.gz/);
        noticed++;
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(noticed > 250, `gzip's CRC and length catch damage (${noticed} of 300)`);
});
