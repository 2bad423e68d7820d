// A bbolt file (etcd's member/snap/db, or the bbolt part of a snapshot file) copied into
// Concord's LMDB backend, bucket by bucket. The buckets Concord keeps have etcd's layout
// byte for byte (key: revision -> mvccpb.KeyValue; meta: consistent_index, compaction
// revisions; lease; auth*; cluster), so they are copied entry for entry. Members and alarms
// Concord keeps as one record each: the caller converts those (readEtcdMembers,
// readEtcdAlarms) and they are not copied here.
//
// Streaming: the reader's cursor walks one page at a time (BoltReader.scan: transient reads in
// a few reused blocks, see bbolt's fileSource) and the backend takes the entries in bulk transactions of at most txnBytes, so
// neither side holds more than a transaction's worth of the file. A backend opened with
// deferSync (nothing serves it yet) does not fsync each transaction: the forceCommit at the
// end syncs once and makes the whole import durable before it is declared done. A fsync
// every 10,000 entries and a copy of each entry into the write buffer were what the import
// used to wait on.

import { setImmediate as nextTurn } from 'node:timers/promises';
import { AlarmMember } from '../proto/index.js';
import { BoltFormatError, type BoltCursor, type BoltReader } from '../bbolt/index.js';
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
/**
 * With a deferSync backend, a background fdatasync of what is committed so far is started
 * every this many bytes of keys and values (one at a time), so the disk writes the import as
 * it goes and the sync at the end, before the import counts as done, has only the rest.
 * Without it a 1.5 GB file's import ended with one sync of ~2 GB of LMDB pages.
 */
const writebackEveryBytes = 64 * 1024 * 1024;
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
  /**
   * Shown every entry copied into the key bucket, in order, as it is copied (views valid only
   * during the call): the key index is built from them instead of from a second read of the
   * backend once the import is done.
   */
  onKeyEntry?: (key: Uint8Array, value: Uint8Array) => void;
  /** Called as the data is copied (bytes of keys and values so far, of about `totalBytes`). */
  progress?: (doneBytes: number, totalBytes: number) => void;
  /** Bytes per transaction and between background syncs (tests; default txnBytes, writebackEveryBytes). */
  bounds?: { txnBytes?: number; writebackEveryBytes?: number };
}

export interface BoltImportStats {
  entries: number;
  bytes: number;
  /** Main revision of the key bucket's last key (0 when it is empty): the store's latest revision. */
  lastKeyRevision: number;
}

type Pair = readonly [Uint8Array, Uint8Array];

/** Entries one at a time; key and value valid until the next next() (a bbolt cursor's contract). */
interface EntrySource { next(): boolean; readonly key: Uint8Array; readonly value: Uint8Array }

/** The key/value entries of a copied bucket's cursor (nested buckets and skipped keys left out). */
function bucketEntries(cursor: BoltCursor, db: DbName, skip: BoltImportOptions['skip']): EntrySource {
  return {
    next: () => {
      while (cursor.next()) if (!cursor.isBucket && !skip?.(db, cursor.key)) return true;
      return false;
    },
    get key() { return cursor.key; },
    get value() { return cursor.value; },
  };
}

function pairEntries(pairs: Iterable<readonly [Buffer, Buffer]>): EntrySource {
  const it = pairs[Symbol.iterator]();
  const s: { key: Uint8Array; value: Uint8Array; next: () => boolean } = { key: Buffer.alloc(0), value: Buffer.alloc(0), next: () => false };
  s.next = () => {
    const r = it.next();
    if (r.done) return false;
    [s.key, s.value] = r.value;
    return true;
  };
  return s;
}

/**
 * One import transaction's entries, taken from `source` until it holds `maxBytes` of keys and
 * values or txnEntries entries, each counted into `stats` (and shown to `onKeyEntry` for the
 * key bucket) as it is taken. An iterator that allocates nothing per entry: its one pair and
 * one result are reused, as Backend.bulkLoad puts each entry before it asks for the next.
 */
class TxnEntries implements Iterable<Pair>, Iterator<Pair> {
  /** The source had no more entries. */
  end = false;
  private taken = 0;
  private readonly untilBytes: number;
  private readonly pair: [Uint8Array, Uint8Array] = [Buffer.alloc(0), Buffer.alloc(0)];
  private readonly result: IteratorYieldResult<Pair> = { done: false, value: this.pair };

  constructor(private readonly db: DbName, private readonly source: EntrySource, private readonly stats: BoltImportStats, maxBytes: number, private readonly onKeyEntry: BoltImportOptions['onKeyEntry']) {
    this.untilBytes = stats.bytes + maxBytes;
  }

  [Symbol.iterator](): Iterator<Pair> { return this; }

  next(): IteratorResult<Pair> {
    if (this.taken >= txnEntries || this.stats.bytes >= this.untilBytes) return { done: true, value: undefined };
    if (!this.source.next()) {
      this.end = true;
      return { done: true, value: undefined };
    }
    const { key, value } = this.source;
    if (this.db === 'key') {
      if (key.length >= 8) this.stats.lastKeyRevision = mainRevisionOf(key);
      this.onKeyEntry?.(key, value);
    }
    this.taken++;
    this.stats.entries++;
    this.stats.bytes += key.length + value.length;
    this.pair[0] = key;
    this.pair[1] = value;
    return this.result;
  }
}

/** The main revision in a key bucket's key (its first 8 bytes, big-endian). */
function mainRevisionOf(key: Uint8Array): number {
  const u32 = (at: number): number => key[at]! * 0x100_0000 + ((key[at + 1]! << 16) | (key[at + 2]! << 8) | key[at + 3]!);
  return u32(0) * 0x1_0000_0000 + u32(4);
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
  const writeback = new Writeback(backend, o.bounds?.writebackEveryBytes ?? writebackEveryBytes);
  const bytesPerTxn = o.bounds?.txnBytes ?? txnBytes;
  o.log.info('importing bbolt database', { path: o.path, 'size-bytes': totalBytes, 'page-size': reader.pageSize });
  const copy = async (db: DbName, source: EntrySource): Promise<void> => {
    for (let end = false; !end;) {
      const txn = new TxnEntries(db, source, stats, bytesPerTxn, o.onKeyEntry);
      backend.bulkLoad(db, txn);
      end = txn.end;
      writeback.after(stats.bytes);
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
    await copy(name as DbName, bucketEntries(along.scan(nameBytes)!, name as DbName, o.skip));
  }
  throwIntegrityProblems(along.problems());
  if (o.extraKeyEntries !== undefined) await copy('key', pairEntries(o.extraKeyEntries));
  await writeback.finished();
  await backend.forceCommit();
  o.progress?.(totalBytes, totalBytes);
  o.log.info('imported bbolt database', { path: o.path, 'imported-entries': stats.entries, 'imported-bytes': stats.bytes, took: `${Date.now() - started}ms` });
  return stats;
}

/**
 * The background syncs of an import into a deferSync backend: one at a time, the next started
 * once `everyBytes` more were committed; a failed one fails the import.
 */
class Writeback {
  private running: Promise<void> | undefined;
  private failed: unknown;
  private nextAt: number;

  constructor(private readonly backend: Backend, private readonly everyBytes: number) {
    this.nextAt = everyBytes;
  }

  /** Called after each transaction with the bytes copied so far; throws a failed sync's error. */
  after(bytes: number): void {
    if (this.failed !== undefined) throw this.failed;
    if (!this.backend.deferSync || bytes < this.nextAt || this.running !== undefined) return;
    this.nextAt = bytes + this.everyBytes;
    const p = this.backend.writebackSoFar().then(
      () => { this.running = undefined; },
      (e: unknown) => { this.running = undefined; this.failed = e; },
    );
    this.running = p;
  }

  /** Waits for the sync running (if any); throws if one failed. */
  async finished(): Promise<void> {
    await this.running;
    if (this.failed !== undefined) throw this.failed;
  }
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
