// A bbolt file (etcd's member/snap/db, or the bbolt part of a snapshot file) copied into
// Concord's LMDB backend, bucket by bucket. The buckets Concord keeps have etcd's layout
// byte for byte (key: revision -> mvccpb.KeyValue; meta: consistent_index, compaction
// revisions; lease; auth*; cluster), so they are copied entry for entry. Members and alarms
// Concord keeps as one record each: the caller converts those (readEtcdMembers,
// readEtcdAlarms) and they are not copied here.
//
// Streaming: the reader walks one page at a time (positioned reads) and the backend commits
// every commitEveryEntries entries, so neither side holds more than a batch of the file.

import { AlarmMember } from '../proto/index.js';
import { BoltFormatError, type BoltReader } from '../bbolt/index.js';
import { DB_NAMES, type Backend, type DbName } from '../storage/index.js';
import { humanizeBytes, type Logger } from '../log/index.js';

/** Entries copied between two commits of the new backend (its write buffer stays bounded). */
const commitEveryEntries = 10_000;
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

/**
 * Copies every bucket Concord keeps (but members and alarms) from `reader` into `backend`,
 * committing as it goes, and force-commits at the end: the data is durable on return.
 * Progress goes to the log as JSON lines ("importing bbolt database", "imported ...").
 */
export async function importBoltBuckets(reader: BoltReader, backend: Backend, o: BoltImportOptions): Promise<BoltImportStats> {
  const known = new Set<string>(DB_NAMES);
  const totalBytes = reader.size;
  const started = Date.now();
  const stats: BoltImportStats = { entries: 0, bytes: 0, lastKeyRevision: 0 };
  let sinceCommit = 0;
  let nextLog = logEveryBytes;
  o.log.info('importing bbolt database', { path: o.path, 'size-bytes': totalBytes, 'page-size': reader.pageSize });
  const put = async (db: DbName, key: Buffer, value: Buffer): Promise<void> => {
    backend.put(db, key, value);
    if (db === 'key' && key.length >= 8) stats.lastKeyRevision = Number(key.readBigUInt64BE(0));
    stats.entries++;
    stats.bytes += key.length + value.length;
    if (++sinceCommit < commitEveryEntries) return;
    sinceCommit = 0;
    await backend.forceCommit();
    o.progress?.(stats.bytes, totalBytes);
    if (stats.bytes >= nextLog) {
      nextLog = stats.bytes + logEveryBytes;
      const seconds = Math.max(0.001, (Date.now() - started) / 1000);
      o.log.info('importing bbolt database', {
        path: o.path, 'imported-entries': stats.entries, 'imported-bytes': stats.bytes, 'size-bytes': totalBytes,
        'imported-size': humanizeBytes(stats.bytes), rate: `${humanizeBytes(Math.round(stats.bytes / seconds))}/s`,
      });
    }
  };
  for (const nameBytes of reader.bucketNames()) {
    const name = nameBytes.toString('latin1');
    if (recordBuckets.has(name)) continue;
    if (!known.has(name)) {
      o.log.warn('skipping a bucket Concord does not keep', { bucket: name });
      continue;
    }
    for (const e of reader.bucket(nameBytes)!) {
      if (e.isBucket || o.skip?.(name as DbName, e.key)) continue;
      // The reader's buffers are views of a page read: the backend keeps what it is given.
      await put(name as DbName, Buffer.from(e.key), Buffer.from(e.value));
    }
  }
  for (const [key, value] of o.extraKeyEntries ?? []) await put('key', key, value);
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
