// Point-in-time recovery from a continuous backup: the newest chain whose snapshot is at or
// below the target revision, then its events up to that revision. The events are not
// proposed again (that would give them new revisions): each becomes the key-bucket entry the
// store wrote for it — revision key (main, sub[, tombstone]) → KeyValue — so the restored
// store has every revision, create/mod revision and version the original had.

import { Event_EventType, type Event } from '../proto/index.js';
import { encodeKeyValue, revKey } from '../mvcc/index.js';
import { restoreSnapshot, type RestoreOptions } from './restore.js';
import { BackupFormatError, listChains, listSegments, readSegment, snapshotFileName } from './segments.js';
import fs from 'node:fs';
import path from 'node:path';

export interface PitrOptions extends Omit<RestoreOptions, 'snapshotPath' | 'extraKeyEntries' | 'skipHashCheck'> {
  /** The backup directory (concordutl backup start --dir). */
  from: string;
  toRevision: number;
}

/** Largest decompressed segment accepted (a bound on what one file may make us hold). */
const maxSegmentBytes = 1024 * 1024 * 1024;

export async function restoreToRevision(o: PitrOptions): Promise<{ memberId: bigint; clusterId: bigint; snapshotRevision: number }> {
  const chain = listChains(o.from).filter((c) => c.revision <= o.toRevision).at(-1);
  if (chain === undefined) throw new Error(`no backup snapshot at or below revision ${o.toRevision} in ${o.from}`);
  const segments = listSegments(chain.dir);
  const covered = segments.at(-1)?.last ?? chain.revision;
  if (covered < o.toRevision) throw new Error(`the backup in ${chain.dir} ends at revision ${covered}, before ${o.toRevision}`);
  const files = segments.map((s) => s.file);
  // A first pass reads and checks every segment (checksum, order, no missing revision), so a
  // damaged one is refused before anything is written; the second pass replays them.
  let events = 0;
  for (const _ of replayedEntries(files, chain.revision, o.toRevision)) events++;
  o.log.info('restoring to revision', { chain: chain.dir, 'snapshot-revision': chain.revision, 'to-revision': o.toRevision, segments: segments.length, events });
  const ids = await restoreSnapshot({
    ...o,
    snapshotPath: path.join(chain.dir, snapshotFileName),
    skipHashCheck: false,
    extraKeyEntries: replayedEntries(files, chain.revision, o.toRevision),
  });
  return { ...ids, snapshotRevision: chain.revision };
}

/**
 * The revision a backup had on disk at wall-clock time `atMs` (`backup restore --to-time`):
 * the newest file (a chain's snapshot, or a segment: its mtime is when it was written whole)
 * written at or before then. Events received but not yet in a segment at `atMs` were not
 * saved yet, so they do not count: the scheme's granularity is one segment interval.
 */
export function revisionAtTime(from: string, atMs: number): number {
  let best = 0;
  for (const chain of listChains(from)) {
    if (fs.statSync(path.join(chain.dir, snapshotFileName)).mtimeMs <= atMs) best = Math.max(best, chain.revision);
    for (const s of listSegments(chain.dir)) if (fs.statSync(s.file).mtimeMs <= atMs) best = Math.max(best, s.last);
  }
  if (best === 0) throw new Error(`no backup file in ${from} was written at or before ${new Date(atMs).toISOString()}`);
  return best;
}

/** Key-bucket entries for the events in (after, upTo], checking that no revision is missing. */
function* replayedEntries(files: string[], after: number, upTo: number): Generator<[Buffer, Buffer]> {
  let last = after;
  let sub = 0;
  for (const file of files) {
    for (const e of readSegment(file, maxSegmentBytes)) {
      const kv = e.kv;
      if (!kv) throw new BackupFormatError(`segment ${file}: an event without a key-value`);
      const rev = Number(kv.modRevision);
      if (rev <= after) continue;
      if (rev > upTo) return;
      if (rev < last) throw new BackupFormatError(`segment ${file}: revision ${rev} after ${last}`);
      if (rev > last + 1) throw new BackupFormatError(`segment ${file}: revisions ${last + 1}..${rev - 1} are missing`);
      sub = rev === last ? sub + 1 : 0;
      last = rev;
      yield entryOf(e, rev, sub);
    }
  }
}

function entryOf(e: Event, rev: number, sub: number): [Buffer, Buffer] {
  const kv = e.kv!;
  if (e.type === Event_EventType.DELETE) return [revKey(rev, sub, true), encodeKeyValue(kv.key, Buffer.alloc(0), 0, 0, 0, 0n)];
  return [revKey(rev, sub), encodeKeyValue(kv.key, kv.value, Number(kv.createRevision), rev, Number(kv.version), kv.lease)];
}
