/** Helpers shared by the wal tests (not part of the public API). */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../proto/index.js';

/** A fresh temp directory; `cleanup()` removes it. */
export function tempDir(prefix = 'concord-wal-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Entries [from, to] of `term` with `bytes`-long data derived from the index. */
export function makeEntries(from: number, to: number, term: number, bytes = 16): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) {
    const data = Buffer.alloc(bytes);
    for (let j = 0; j < bytes; j++) data[j] = (i * 31 + j) & 0xff;
    out.push({ term, index: i, type: 0, data });
  }
  return out;
}

/** Plain-object view of entries, for deepStrictEqual across Buffer/Uint8Array. */
export function plain(entries: Entry[]): { term: number; index: number; type: number; data: string }[] {
  return entries.map((e) => ({
    term: e.term,
    index: e.index,
    type: e.type,
    data: Buffer.from(e.data ?? []).toString('hex'),
  }));
}
