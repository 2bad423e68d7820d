// The seed's continuous backup: a snapshot, then the watch stream of every event after it,
// written in segments every segmentIntervalMs; every snapshotIntervalMs a new snapshot starts
// a new chain. Restoring = a chain's snapshot plus its events replayed up to a revision
// (pitr.ts). Events are held in memory only until the next segment (bounded by
// maxPendingEventBytes, which writes a segment early), so a crash of this process loses at
// most one interval, and a restart resumes the newest chain from its last segment.
//
// A broken stream (member restarted, leader change) is resumed from the revision after the
// last event received: no gap and no duplicate, as long as a watch response carries whole
// revisions (etcd's and Concord's do unless fragmenting, which this watch does not ask for).
// If that revision was compacted meanwhile the gap cannot be filled: this says so and starts
// a new chain.

import fs from 'node:fs';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { Event } from '../proto/index.js';
import { snapshotStatus, openSnapshotDb, hasChecksum, sha256Bytes } from '../snapshot/index.js';
import type { Logger } from '../log/index.js';
import { connect, saveSnapshot, watchAll, CompactedError } from './client.js';
import {
  chainDirName, encodeSegment, listChains, listSegments, segmentFileName, snapshotFileName, writeFileDurably, type Chain,
} from './segments.js';

export interface ContinuousBackupOptions {
  endpoint: string;
  dir: string;
  snapshotIntervalMs: number;
  segmentIntervalMs: number;
  log: Logger;
  /** Event bytes held before a segment is written early. Default 64 MiB. */
  maxPendingEventBytes?: number;
}

const retryDelayMs = 1000;

export class ContinuousBackup {
  private stopped = false;
  private readonly stopSignal: Promise<void>;
  private signalStop!: () => void;
  private pending: Event[] = [];
  private pendingBytes = 0;
  private chain: Chain | undefined;
  /** The revision the watch resumes from: one past the last event received. */
  private nextRevision = 0;
  private readonly maxPendingEventBytes: number;

  constructor(private readonly o: ContinuousBackupOptions) {
    this.maxPendingEventBytes = o.maxPendingEventBytes ?? 64 * 1024 * 1024;
    this.stopSignal = new Promise((resolve) => { this.signalStop = resolve; });
  }

  /** Runs until stop(); the last events are written before it resolves. */
  async run(): Promise<void> {
    fs.mkdirSync(this.o.dir, { recursive: true });
    const client = connect(this.o.endpoint);
    try {
      while (!this.stopped) {
        try {
          await this.runChain(client);
        } catch (e) {
          if (this.stopped) break;
          this.o.log.warn('backup chain failed; retrying', { error: (e as Error).message });
          await this.sleep(retryDelayMs);
        }
      }
    } finally {
      this.flush();
      client.close();
    }
  }

  stop(): void {
    this.stopped = true;
    this.signalStop();
  }

  private async runChain(client: grpc.Client): Promise<void> {
    const startedAt = this.resume() ?? (await this.newChain(client));
    const endsAt = startedAt + this.o.snapshotIntervalMs;
    const timer = setInterval(() => this.flush(), this.o.segmentIntervalMs);
    try {
      while (!this.stopped && Date.now() < endsAt) {
        const watch = watchAll(client, this.nextRevision, (events) => this.take(events));
        const outcome = await Promise.race([
          watch.ended.then(() => 'ended' as const, (e: unknown) => e),
          this.stopSignal.then(() => 'stop' as const),
          this.delay(endsAt - Date.now()).then(() => 'interval' as const),
        ]);
        watch.close();
        watch.ended.catch(() => { /* settled above or moot after close */ });
        if (outcome === 'stop' || outcome === 'interval') break;
        this.flush();
        if (outcome instanceof CompactedError) {
          this.o.log.warn('events after the last one backed up were compacted; this gap cannot be filled, starting a new chain', {
            'next-revision': this.nextRevision, 'compact-revision': outcome.compactRevision,
          });
          return;
        }
        this.o.log.warn('watch stream broken; resuming', { 'next-revision': this.nextRevision, error: outcome instanceof Error ? outcome.message : String(outcome) });
        await this.sleep(retryDelayMs);
      }
    } finally {
      clearInterval(timer);
      this.flush();
    }
  }

  /** Continues the newest chain if it is younger than the snapshot interval; returns its start time. */
  private resume(): number | undefined {
    if (this.chain === undefined) {
      const newest = listChains(this.o.dir).at(-1);
      if (newest === undefined) return undefined;
      const startedAt = fs.statSync(path.join(newest.dir, snapshotFileName)).mtimeMs;
      if (Date.now() - startedAt >= this.o.snapshotIntervalMs) return undefined;
      const last = listSegments(newest.dir).at(-1)?.last ?? newest.revision;
      this.chain = newest;
      this.nextRevision = last + 1;
      this.o.log.info('resuming backup chain', { chain: newest.dir, 'next-revision': this.nextRevision });
      return startedAt;
    }
    return undefined;
  }

  private async newChain(client: grpc.Client): Promise<number> {
    const startedAt = Date.now();
    const tmp = path.join(this.o.dir, `snapshot-${process.pid}.db`);
    await saveSnapshot(client, tmp);
    const revision = snapshotRevision(tmp);
    const dir = path.join(this.o.dir, chainDirName(revision));
    fs.mkdirSync(dir, { recursive: true });
    fs.renameSync(tmp, path.join(dir, snapshotFileName));
    this.chain = { dir, revision };
    this.nextRevision = revision + 1;
    this.o.log.info('started backup chain', { chain: dir, 'snapshot-revision': revision });
    return startedAt;
  }

  private take(events: Event[]): void {
    for (const e of events) {
      this.pending.push(e);
      this.pendingBytes += 64 + (e.kv?.key.length ?? 0) + (e.kv?.value.length ?? 0);
    }
    this.nextRevision = Number(events[events.length - 1]!.kv!.modRevision) + 1;
    if (this.pendingBytes >= this.maxPendingEventBytes) this.flush();
  }

  /** Writes the events held so far as one segment of the current chain. */
  private flush(): void {
    if (this.pending.length === 0 || this.chain === undefined) return;
    const first = Number(this.pending[0]!.kv!.modRevision);
    const last = Number(this.pending[this.pending.length - 1]!.kv!.modRevision);
    writeFileDurably(path.join(this.chain.dir, segmentFileName(first, last)), encodeSegment(this.pending));
    this.o.log.info('wrote backup segment', { first, last, events: this.pending.length });
    this.pending = [];
    this.pendingBytes = 0;
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => { const t = setTimeout(resolve, Math.max(0, ms)); void this.stopSignal.then(() => clearTimeout(t)); });
  }

  private sleep(ms: number): Promise<void> {
    return Promise.race([this.delay(ms), this.stopSignal]);
  }
}

/**
 * The revision a snapshot file holds the store at: its key bucket's newest revision, or the
 * finished compaction if that is newer (a compaction removes tombstones up to it).
 */
export function snapshotRevision(file: string): number {
  const size = fs.statSync(file).size;
  const { reader, close } = openSnapshotDb(file, hasChecksum(size) ? size - sha256Bytes : size);
  try {
    const meta = [...(reader.bucket(Buffer.from('meta')) ?? [])].find((e) => e.key.toString('latin1') === 'finishedCompactRev');
    const compacted = meta && meta.value.length >= 8 ? Number(meta.value.readBigUInt64BE(0)) : 0;
    return Math.max(snapshotStatus(file).revision, compacted);
  } finally {
    close();
  }
}
