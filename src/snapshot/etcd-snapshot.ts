// Maintenance.Snapshot's file: the backend as etcd's bbolt file (one bucket per database of
// storage/, the same keys and values, as etcd 3.4 lays them out), streamed page by page from
// a read view. The view is one LMDB read transaction, so the file is one point in time while
// writes go on; the writer's two passes both read that view, and nothing holds the whole file.
// Values are read as transient views of LMDB's read buffer (scanTransient): the only copy of a
// value the snapshot makes is into its page.

import { planBoltFileAsync, type BoltBucketSource } from '../bbolt/index.js';
import { DB_NAMES, type BackendReadView, type DbName } from '../storage/index.js';

/** A bucket's entries in bytewise key order. */
export type BucketEntries = readonly (readonly [Buffer, Buffer])[];

/**
 * Buckets whose Concord record differs from etcd's layout (members, alarm): the caller gives
 * etcd's entries for them, taken at the same point as the view.
 */
export type BucketReplacements = Partial<Record<DbName, BucketEntries>>;

/** A snapshot being streamed (the shape server/service.ts's BackendSnapshot has). */
export interface StreamedSnapshot {
  readonly size: number;
  /** The file's bytes; a chunk may be reused once the next is pulled. */
  chunks(): AsyncIterable<Uint8Array>;
  close(): Promise<void>;
}

/** Concord's own meta key (the consistent index's term, as etcd 3.5 keeps it) that etcd 3.4's files lack. */
const concordOnlyMetaKey = Buffer.from('term');

/** The meta bucket as etcd 3.4 has it: etcd's tools count its keys (snapshot status's totalKey). */
function* etcdMeta(entries: Iterable<readonly [Buffer, Uint8Array]>): Generator<readonly [Buffer, Uint8Array]> {
  for (const e of entries) if (!e[0].equals(concordOnlyMetaKey)) yield e;
}

/**
 * Bytes of pages, and milliseconds, of page making between two turns of the event loop while
 * a snapshot streams. Pages are made synchronously (LMDB reads, page layout) and the stream's
 * writes resolve at once until the client's flow-control window fills, so without a turn the
 * member would serve no put, no heartbeat and no fsync completion for as long as megabytes
 * take to build; the time bound holds on a loaded machine, where 256 KiB may take longer.
 */
const yieldEveryBytes = 256 * 1024;
const yieldEveryMs = 2;

async function* pagesYieldingToTheLoop(pages: Iterable<Buffer>): AsyncGenerator<Buffer, void, undefined> {
  let sinceTurn = 0;
  let turnStartedMs = performance.now();
  for (const page of pages) {
    yield page;
    sinceTurn += page.length;
    if (sinceTurn >= yieldEveryBytes || performance.now() - turnStartedMs >= yieldEveryMs) {
      sinceTurn = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
      turnStartedMs = performance.now();
    }
  }
}

/** Plans etcd's bbolt file over `view` (taking ownership: close() or a failure releases it). */
export async function etcdSnapshot(view: BackendReadView, replace: BucketReplacements = {}): Promise<StreamedSnapshot> {
  try {
    const buckets: BoltBucketSource[] = DB_NAMES.map((name) => ({
      name: Buffer.from(name),
      entries: () => replace[name] ?? (name === 'meta' ? etcdMeta(view.scanTransient(name)) : view.scanTransient(name)),
    }));
    const plan = await planBoltFileAsync(buckets);
    return {
      size: plan.size,
      chunks: () => pagesYieldingToTheLoop(plan.pages()),
      close: async () => view.close(),
    };
  } catch (e) {
    view.close();
    throw e;
  }
}
