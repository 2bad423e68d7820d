// A bbolt file (etcd's member/snap/db, or the bbolt part of a snapshot file) copied into
// Concord's LMDB backend, bucket by bucket. The buckets Concord keeps have etcd's layout
// byte for byte (key: revision -> mvccpb.KeyValue; meta: consistent_index, compaction
// revisions; lease; auth*; cluster), so they are copied entry for entry. Members and alarms
// Concord keeps as one record each: the caller converts those (readEtcdMembers,
// readEtcdAlarms) and they are not copied here.
//
// Streaming: the reader walks one page at a time (read ahead in blocks, see bbolt's
// fileSource) and the backend takes the entries in bulk transactions of at most txnBytes, so
// neither side holds more than a transaction's worth of the file. A backend opened with
// deferSync (nothing serves it yet) does not fsync each transaction: the forceCommit at the
// end syncs once and makes the whole import durable before it is declared done. A fsync
// every 10,000 entries and a copy of each entry into the write buffer were what the import
// used to wait on.

import { setImmediate as nextTurn } from 'node:timers/promises';
import { AlarmMember } from '../proto/index.js';
import { BoltFormatError, type BoltCheckAlong, type BoltReader } from '../bbolt/index.js';
import { throwIntegrityProblems } from './snapshot-file.js';
import { DB_NAMES, type Backend, type DbName } from '../storage/index.js';
import { humanizeBytes, type Logger } from '../log/index.js';

/**
 * Bytes of keys and values per import transaction. A transaction runs synchronously (a member
 * installing a leader's snapshot imports on its event loop) and LMDB keeps its dirty pages in
 * memory until it commits, so this bounds both the pause and the memory; bigger saves little
 * once commits are not synced.
 */
const txnBytes = 8 * 1024 * 1024;
/** Entries per import transaction (bounds the same for many small entries). */
const txnEntries = 20_000;
/** A progress line in the log at most every this many bytes of keys and values. */
const logEveryBytes = 64 * 1024 * 1024;

/** Buckets held in a Concord-specific record: converted by the caller, never copied. */
const recordBuckets: ReadonlySet<string> = new Set(['members', 'members_removed', 'alarm']);

export interface BoltImportOptions {
  log: Logger;
  /** Named in the log lines (the file imported). */
  path: string;
  /** Leave out this entry of a copied bucket (e.g. the old member's raft position in meta). */
  skip?: (bucket: DbName, key: Buffer) => boolean;
  /** Entries added to the key bucket after the file's (point-in-time recovery's replayed events). */
  extraKeyEntries?: Iterable<readonly [Buffer, Buffer]>;
  /** Called as the data is copied (bytes of keys and values so far, of about `totalBytes`). */
  progress?: (doneBytes: number, totalBytes: number) => void;
}

export interface BoltImportStats {
  entries: number;
  bytes: number;
  /** Main revision of the key bucket's last key (0 when it is empty): the store's latest revision. */
  lastKeyRevision: number;
}

type Pair = readonly [Uint8Array, Uint8Array];

/** The key/value entries of a copied bucket (nested buckets and skipped keys left out). */
function* bucketPairs(along: BoltCheckAlong, name: Buffer, db: DbName, skip: BoltImportOptions['skip']): Generator<Pair> {
  for (const e of along.bucket(name)!) if (!e.isBucket && !skip?.(db, e.key)) yield [e.key, e.value];
}

/**
 * Copies every bucket Concord keeps (but members and alarms) from `reader` into `backend`
 * (which must have no buffered writes; best opened with deferSync), in bulk transactions,
 * and force-commits at the end: the data is durable on return. Progress goes to the log as JSON lines ("importing bbolt
 * database", "imported ...").
 *
 * bbolt's integrity check (etcd's status message) is made along the copy, so the file is
 * read once, not twice: a damaged file throws (SnapshotFileError, or BoltFormatError naming
 * the page) after part of it may be in `backend`, before anything is committed for good.
 * The caller discards the backend then; nothing may serve from it before this returns.
 */
export async function importBoltBuckets(reader: BoltReader, backend: Backend, o: BoltImportOptions): Promise<BoltImportStats> {
  const known = new Set<string>(DB_NAMES);
  const totalBytes = reader.size;
  const started = Date.now();
  const stats: BoltImportStats = { entries: 0, bytes: 0, lastKeyRevision: 0 };
  let nextLog = logEveryBytes;
  o.log.info('importing bbolt database', { path: o.path, 'size-bytes': totalBytes, 'page-size': reader.pageSize });
  /** Up to one transaction's worth of `source`, counted into stats as it is taken. */
  function* oneTxn(db: DbName, source: Iterator<Pair>, done: { end: boolean }): Generator<Pair> {
    const until = stats.bytes + txnBytes;
    for (let n = 0; n < txnEntries && stats.bytes < until; n++) {
      const next = source.next();
      if (next.done) {
        done.end = true;
        return;
      }
      const [key, value] = next.value;
      if (db === 'key' && key.length >= 8) stats.lastKeyRevision = Number(Buffer.from(key.buffer, key.byteOffset, 8).readBigUInt64BE(0));
      stats.entries++;
      stats.bytes += key.length + value.length;
      yield next.value;
    }
  }
  const copy = async (db: DbName, entries: Iterable<Pair>): Promise<void> => {
    const source = entries[Symbol.iterator]();
    for (const done = { end: false }; !done.end;) {
      backend.bulkLoad(db, oneTxn(db, source, done));
      o.progress?.(stats.bytes, totalBytes);
      if (stats.bytes >= nextLog) {
        nextLog = stats.bytes + logEveryBytes;
        const seconds = Math.max(0.001, (Date.now() - started) / 1000);
        o.log.info('importing bbolt database', {
          path: o.path, 'imported-entries': stats.entries, 'imported-bytes': stats.bytes, 'size-bytes': totalBytes,
          'imported-size': humanizeBytes(stats.bytes), rate: `${humanizeBytes(Math.round(stats.bytes / seconds))}/s`,
        });
      }
      await nextTurn(); // signals and timers get a turn between transactions
    }
  };
  const along = reader.checkAlong();
  for (const nameBytes of reader.bucketNames()) {
    const name = nameBytes.toString('latin1');
    if (recordBuckets.has(name)) continue;
    if (!known.has(name)) {
      o.log.warn('skipping a bucket Concord does not keep', { bucket: name });
      continue;
    }
    await copy(name as DbName, bucketPairs(along, nameBytes, name as DbName, o.skip));
  }
  throwIntegrityProblems(along.problems());
  if (o.extraKeyEntries !== undefined) await copy('key', o.extraKeyEntries);
  await backend.forceCommit();
  o.progress?.(totalBytes, totalBytes);
  o.log.info('imported bbolt database', { path: o.path, 'imported-entries': stats.entries, 'imported-bytes': stats.bytes, took: `${Date.now() - started}ms` });
  return stats;
}

/** The value at `key` in top-level bucket `bucket` (a scan: meant for small buckets like meta). */
export function boltGet(reader: BoltReader, bucket: string, key: string): Buffer | undefined {
  const want = Buffer.from(key);
  for (const e of reader.bucket(Buffer.from(bucket)) ?? []) if (!e.isBucket && e.key.equals(want)) return Buffer.from(e.value);
  return undefined;
}

/** etcd's consistent index in the file's meta bucket (0 when it keeps none). */
export function boltConsistentIndex(reader: BoltReader): number {
  const v = boltGet(reader, 'meta', 'consistent_index');
  return v !== undefined && v.length === 8 ? Number(v.readBigUInt64BE(0)) : 0;
}

/** etcd's alarm bucket: each key a marshalled AlarmMember. */
export function readEtcdAlarms(reader: BoltReader): AlarmMember[] {
  return [...reader.bucket(Buffer.from('alarm')) ?? []].map((e) => AlarmMember.decode(e.key));
}

/**
 * etcd's members bucket (key: the id in hex, value: the member's JSON, which the server
 * parses) and members_removed bucket (key: the id in hex).
 */
export function readEtcdMembers(reader: BoltReader): { members: string[]; removed: bigint[] } {
  const members = [...reader.bucket(Buffer.from('members')) ?? []].map((e) => e.value.toString('utf8'));
  const removed = [...reader.bucket(Buffer.from('members_removed')) ?? []].map((e) => {
    const hex = e.key.toString('latin1');
    if (!/^[0-9a-f]{1,16}$/.test(hex)) throw new BoltFormatError(`bucket members_removed: key ${JSON.stringify(hex)} is not a member id`);
    return BigInt(`0x${hex}`);
  });
  return { members, removed };
}
