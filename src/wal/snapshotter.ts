/**
 * Raft snapshot files, as etcd's etcdserver/api/snap writes them: `%016x-%016x.snap` (term,
 * index) holding snappb.Snapshot{crc: CRC32C(data), data: marshalled raftpb.Snapshot}.
 * Loading tries the newest first; a file that cannot be read or fails its CRC is renamed
 * `<name>.broken` and the next older one is tried.
 */

import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { decodeSnapshot, encodeSnapshot, isEmptySnapshot, type Snapshot } from '../proto/index.js';
import { decodeSnapFile, encodeSnapFile, type WalSnapshot } from '../proto/index.js';
import { snapName } from './names.js';
import type { WalLogger } from './wal.js';

const SNAP_SUFFIX = '.snap';

export class SnapshotError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`snap: ${reason}: ${path}`);
    this.name = 'SnapshotError';
  }
}

/** Reads and checks one `.snap` file. Throws SnapshotError if it is empty or corrupt. */
export async function readSnapFile(path: string): Promise<Snapshot> {
  const buf = await readFile(path);
  if (buf.length === 0) throw new SnapshotError(path, 'empty snapshot');
  let file;
  try {
    file = decodeSnapFile(buf);
  } catch (err) {
    throw new SnapshotError(path, `cannot decode snappb.Snapshot (${(err as Error).message})`);
  }
  if (file.data === undefined || file.data.length === 0 || file.crc === 0) {
    throw new SnapshotError(path, 'empty snapshot');
  }
  if ((crc32c(file.data) >>> 0) !== file.crc) throw new SnapshotError(path, 'crc mismatch');
  try {
    return decodeSnapshot(file.data);
  } catch (err) {
    throw new SnapshotError(path, `cannot decode raftpb.Snapshot (${(err as Error).message})`);
  }
}

export class Snapshotter {
  private readonly log: WalLogger;

  constructor(
    readonly dir: string,
    opts: { logger?: WalLogger } = {},
  ) {
    this.log = opts.logger ?? (() => {});
  }

  /** Writes and fsyncs the snapshot's file. An empty snapshot (index 0) is not saved. */
  async save(snapshot: Snapshot): Promise<void> {
    if (isEmptySnapshot(snapshot)) return;
    const data = encodeSnapshot(snapshot);
    const bytes = encodeSnapFile({ crc: crc32c(data) >>> 0, data });
    const path = join(this.dir, snapName(snapshot.metadata.term, snapshot.metadata.index));
    try {
      const h = await open(path, 'w', 0o666);
      try {
        await h.writeFile(bytes);
        await h.sync();
      } finally {
        await h.close();
      }
    } catch (err) {
      // Leave no partial file behind for load() to trip over.
      await unlink(path).catch(() => {});
      throw err;
    }
  }

  /** The newest readable snapshot, or undefined if there is none. */
  load(): Promise<Snapshot | undefined> {
    return this.loadMatching(() => true);
  }

  /**
   * The newest readable snapshot that the WAL also has a snapshot record for (etcd's
   * LoadNewestAvailable), given `validSnapshotEntries()` of the WAL.
   */
  loadNewestAvailable(walSnaps: readonly WalSnapshot[]): Promise<Snapshot | undefined> {
    return this.loadMatching((s) =>
      walSnaps.some((w) => w.term === s.metadata.term && w.index === s.metadata.index),
    );
  }

  /** `.snap` file names, newest first. */
  async snapNames(): Promise<string[]> {
    const names = await readdir(this.dir);
    return names.filter((n) => n.endsWith(SNAP_SUFFIX)).sort().reverse();
  }

  private async loadMatching(match: (s: Snapshot) => boolean): Promise<Snapshot | undefined> {
    for (const name of await this.snapNames()) {
      const path = join(this.dir, name);
      let snap: Snapshot;
      try {
        snap = await readSnapFile(path);
      } catch (err) {
        this.log('warn', 'snap: failed to read a snap file', { path, error: (err as Error).message });
        await rename(path, path + '.broken').then(
          () => this.log('warn', 'snap: renamed to a broken snap file', { path, brokenPath: path + '.broken' }),
          (rerr: Error) => this.log('warn', 'snap: failed to rename a broken snap file', { path, error: rerr.message }),
        );
        continue;
      }
      if (match(snap)) return snap;
    }
    return undefined;
  }
}
