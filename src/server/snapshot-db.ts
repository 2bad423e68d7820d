/**
 * The backend image that travels with a MsgSnap (etcd's merged snapshot): the leader streams
 * its backend as an etcd bbolt file after the message; the follower writes it to
 * `<data-dir>/member/snap/%016x.snap.db` (etcd's name: the snapshot's index in hex), durably,
 * before raft sees the MsgSnap. Installing that file is the applier's restore.
 */
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { humanizeBytes as humanBytes, type Logger } from '../log/index.js';
import type { Message } from '../proto/index.js';
import type { SnapshotToSend } from '../transport/index.js';
import type { BackendSnapshot } from './service.js';

/** A big image's transfer logs its progress every this many bytes (etcd logs only start and end). */
const progressStepBytes = 16 * 1024 * 1024;

/** etcd's snap.Snapshotter.DBFilePath. */
export function snapshotDbPath(snapDir: string, index: number): string {
  return join(snapDir, `${index.toString(16).padStart(16, '0')}.snap.db`);
}

/**
 * etcd's SaveDBFrom: streams the bytes into `<name>.tmp`, fsyncs, renames into place.
 * Resolves once the file is durable; a failure leaves no file behind.
 */
export async function saveSnapshotDb(snapDir: string, m: Message, db: AsyncIterable<Uint8Array>, log: Logger): Promise<void> {
  const index = m.snapshot?.metadata.index ?? 0;
  const path = snapshotDbPath(snapDir, index);
  const tmp = `${path}.tmp`;
  const f = await open(tmp, 'w', 0o600);
  let bytes = 0;
  try {
    let nextReport = progressStepBytes;
    for await (const chunk of db) {
      await f.write(chunk);
      bytes += chunk.length;
      if (bytes >= nextReport) {
        nextReport += progressStepBytes;
        log.info('receiving database snapshot progress', { path, 'received-bytes': bytes, received: humanBytes(bytes) });
      }
    }
    await f.sync();
  } catch (e) {
    await f.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await f.close();
  await rename(tmp, path);
  const dir = await open(snapDir, 'r');
  try { await dir.sync(); } finally { await dir.close(); }
  log.info('saved database snapshot to disk', { path, bytes, size: humanBytes(bytes) });
}

/** Bytes per chunk handed to the socket: each a fresh copy, as the image reuses its page buffers. */
const sendChunkBytes = 1024 * 1024;

/**
 * The image's pages copied into fresh chunks of sendChunkBytes: a socket write completes
 * after the next page was produced, and the writer may reuse a page's buffer for it.
 */
async function* copiedInChunks(pages: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  let chunk = Buffer.allocUnsafe(sendChunkBytes);
  let used = 0;
  for await (const page of pages) {
    let off = 0;
    while (off < page.length) {
      const n = Math.min(page.length - off, sendChunkBytes - used);
      chunk.set(page.subarray(off, off + n), used);
      used += n;
      off += n;
      if (used === sendChunkBytes) {
        yield chunk;
        chunk = Buffer.allocUnsafe(sendChunkBytes);
        used = 0;
      }
    }
  }
  if (used > 0) yield chunk.subarray(0, used);
}

/** A merged snapshot to hand to the transport, and the release of its backend image. */
export interface MergedSnapshot {
  send: SnapshotToSend;
  /** Closes the image (once), whether or not the transport read it all. */
  release(): Promise<void>;
}

/**
 * The leader's side (etcd's sendMergedSnap): the backend image read at this moment, which is
 * at least as new as the raft snapshot the MsgSnap names (the follower skips the entries the
 * image already holds by its consistent index).
 */
export function mergedSnapshot(m: Message, image: BackendSnapshot, log: Logger, ids: { from: string; to: string }): MergedSnapshot {
  const fields = { from: ids.from, to: ids.to, bytes: image.size, size: humanBytes(image.size) };
  log.info('sending merged snapshot', fields);
  let released: Promise<void> | undefined;
  const release = (): Promise<void> => (released ??= image.close());
  async function* streamed(): AsyncIterable<Uint8Array> {
    let sent = 0;
    let nextReport = progressStepBytes;
    for await (const chunk of copiedInChunks(image.chunks())) {
      yield chunk;
      sent += chunk.length;
      if (sent >= nextReport && sent < image.size) {
        nextReport += progressStepBytes;
        log.info('sending merged snapshot progress', { ...fields, 'sent-bytes': sent, sent: humanBytes(sent), percent: Math.floor((sent * 100) / image.size) });
      }
    }
    log.info('sent merged snapshot', fields);
  }
  return { send: { message: m, db: streamed(), dbBytes: image.size }, release };
}
