// An etcd snapshot file on disk: bbolt pages, then (when it came from Maintenance.Snapshot)
// the sha256 of those pages. etcd tells the two apart by size alone (hasChecksum: bbolt files
// are whole pages, so a size of 32 past a multiple of 512 means a trailer), and so do we.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { crc32c } from '@node-rs/crc32';
import { BoltReader, fileSource } from '../bbolt/index.js';

export const sha256Bytes = 32;

/** etcd's hasChecksum (clientv3/snapshot): the file ends with a sha256 trailer. */
export function hasChecksum(size: number): boolean {
  return size % 512 === sha256Bytes;
}

/** A snapshot file that fails etcd's checks (messages as etcd words them). */
export class SnapshotFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotFileError';
  }
}

/** Go's %v of a []byte: "[1 2 3]". */
const goBytes = (b: Uint8Array): string => `[${[...b].join(' ')}]`;

/**
 * etcd's restore checks: the trailer's sha256 must match the pages (unless skipHashCheck),
 * and a file without one needs skipHashCheck. Returns how many bytes are bbolt pages.
 */
export async function verifySnapshotFile(path: string, skipHashCheck: boolean): Promise<{ dbBytes: number }> {
  const size = fs.statSync(path).size;
  const hasHash = hasChecksum(size);
  if (!hasHash && !skipHashCheck) throw new SnapshotFileError('snapshot missing hash but --skip-hash-check=false');
  const dbBytes = hasHash ? size - sha256Bytes : size;
  if (hasHash && !skipHashCheck) {
    const h = createHash('sha256');
    for await (const chunk of fs.createReadStream(path, { start: 0, end: dbBytes - 1, highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
    const got = h.digest();
    const fd = fs.openSync(path, 'r');
    const want = Buffer.alloc(sha256Bytes);
    try { fs.readSync(fd, want, 0, sha256Bytes, dbBytes); } finally { fs.closeSync(fd); }
    if (!got.equals(want)) throw new SnapshotFileError(`expected sha256 ${goBytes(want)}, got ${goBytes(got)}`);
  }
  return { dbBytes };
}

/** The bbolt part of a snapshot file (`dbBytes` from verifySnapshotFile); close() when done. */
export function openSnapshotDb(path: string, dbBytes: number): { reader: BoltReader; close(): void } {
  const src = fileSource(path);
  try {
    const size = Math.min(dbBytes, src.size);
    const reader = BoltReader.open({ size, read: (o, n) => src.read(o, n), readTransient: (o, n) => src.readTransient(o, n) });
    return { reader, close: () => src.close() };
  } catch (e) {
    src.close();
    throw e;
  }
}

/**
 * bbolt's integrity check (tx.Check: every page reached once or free) with etcd's status
 * message. A sha256 proves the bytes are the ones sent, not that the sender wrote a sound file,
 * and a file restored with --skip-hash-check or an etcd data dir's own db has no sha256 at
 * all: importBoltBuckets makes the same check along its copy (the file read once).
 */
export function checkSnapshotDb(reader: BoltReader): void {
  throwIntegrityProblems(reader.check());
}

/** The problems of a bbolt check (BoltReader.check, checkAlong), as etcd's status reports them. */
export function throwIntegrityProblems(problems: readonly string[]): void {
  if (problems.length > 0) throw new SnapshotFileError(`snapshot file integrity check failed. ${problems.length} errors found.\n${problems.join('\n')}`);
}

/** What `snapshot status` reports (etcd's snapshot.Status, its JSON names). */
export interface SnapshotStatus { hash: number; revision: number; totalKey: number; totalSize: number }

/**
 * etcd's Status: bbolt's integrity check, then a CRC-32C over every bucket's name, keys and
 * values in order; the revision of the key bucket's last key; the count of all entries; the
 * database size (pages up to the high-water mark).
 */
export function snapshotStatus(path: string): SnapshotStatus {
  const { reader, close } = openSnapshotDb(path, Number.MAX_SAFE_INTEGER);
  try {
    checkSnapshotDb(reader);
    let hash = 0;
    let revision = 0;
    let totalKey = 0;
    for (const name of reader.bucketNames()) {
      hash = crc32c(name, hash);
      const isKey = name.toString('latin1') === 'key';
      for (const e = reader.scan(name)!; e.next();) {
        hash = crc32c(e.key, hash);
        hash = crc32c(e.value, hash);
        if (isKey && e.key.length >= 8) revision = Number(e.key.readBigUInt64BE(0));
        totalKey++;
      }
    }
    return { hash: hash >>> 0, revision, totalKey, totalSize: reader.size };
  } finally {
    close();
  }
}
