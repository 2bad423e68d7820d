/**
 * When the WAL may fdatasync on the calling thread (Wal.saveNow), which is the event loop's.
 *
 * A blocking fdatasync spares the thread pool's two hand-offs per write (put-1's gain), but
 * it stalls everything else on the loop (reads, watches, keep-alives, a snapshot stream,
 * /metrics) for as long as the disk takes. On ext4 (data=ordered) a file's fdatasync commits
 * the journal, and that commit waits for the data of every file whose blocks the running
 * transaction allocated: while another process flushes a big file (etcdctl's one fsync at
 * the end of a 1.5 GB snapshot save), a 4 KiB WAL sync took 1.3 s, all of it on the loop.
 * No syscall can be cut short once started, so the choice is made before it, from two signs:
 *
 * - disk pressure now: the kernel's dirty and under-writeback page bytes (/proc/meminfo).
 *   Above PRESSURE_BYTES, some flush of that size may be in front of our sync, so it goes to
 *   the pool. Sampled at most every PROBE_INTERVAL_MS (one pread of the file kept open; the
 *   kernel computes it in tens of us).
 * - the disk's recent past: a sync slower than SLOW_SYNC_MS (blocking or not) sends the
 *   following ones to the pool until FAST_SYNCS_TO_RETURN syncs in a row were fast: a disk
 *   slow for a reason the pressure does not show (a device stall, another file system's
 *   flush) holds the loop once, not on every write.
 *
 * Both only move writes to the pool, which is always correct; durability is the same.
 *
 * Between the two, a sync that held the loop past LOOP_BOUND_MS (the event loop's bound,
 * issue 14) makes the next WARY_MS of syncs on the loop bounded (DataSyncer.within: the loop
 * waits at most the WAL's budget, then the sync finishes in the background). Not always:
 * handing each sync to another thread and back costs put-1 ~10% of its rate on this machine
 * (bench A/B, and 40% with the thread pinned to the caller's CPU), while a sync that long
 * comes about once in 20 s of put-1 here, and in bursts (a flush of other files, a host's).
 */

import { openSync, readSync } from 'node:fs';

/** Dirty + writeback bytes above which a sync may queue behind a flush this big (~0.2 s at 150 MB/s). */
export const PRESSURE_BYTES = 32 * 1024 * 1024;
/** How often the pressure is read at most; in between the last reading stands. */
export const PROBE_INTERVAL_MS = 100;
/**
 * A sync slower than this (ms) marks the disk slow. Well above what a busy machine's CPU alone
 * adds to a sync's wall time: at load 20 on 2 cores a blocking 4 KiB fdatasync's thread often
 * waits tens of ms for a CPU, and the pool path (two more thread wake-ups per write) is then
 * the slower one, so a threshold near that noise would send put-1 to the pool on a busy machine.
 */
export const SLOW_SYNC_MS = 250;
/** Syncs in a row under SLOW_SYNC_MS that mark the disk fast again. */
export const FAST_SYNCS_TO_RETURN = 16;
/** A sync longer than this (ms) held the event loop past its bound: the next ones are bounded. */
export const LOOP_BOUND_MS = 10;
/** How long (ms) syncs stay bounded after one passed LOOP_BOUND_MS (renewed by each such sync). */
export const WARY_MS = 5000;

/** Bytes of page cache waiting for or under writeback, system-wide (undefined: not known). */
export type DiskPressureProbe = () => number | undefined;

/** /proc/meminfo, kept open: a probe is one pread (no open/close per reading); -1 when it cannot be opened. */
let meminfoFd: number | undefined;
/** /proc/meminfo is ~1.5 KiB; Dirty and Writeback are in its first 1 KiB. */
const meminfoBuf = Buffer.alloc(4096);

/** Linux: Dirty + Writeback from /proc/meminfo; undefined elsewhere or when unreadable. */
export function meminfoPressure(): number | undefined {
  let text: string;
  try {
    meminfoFd ??= openSync('/proc/meminfo', 'r');
    if (meminfoFd < 0) return undefined;
    const n = readSync(meminfoFd, meminfoBuf, 0, meminfoBuf.length, 0);
    text = meminfoBuf.toString('latin1', 0, n);
  } catch {
    meminfoFd = -1;
    return undefined;
  }
  const dirty = meminfoKiB(text, 'Dirty:');
  const writeback = meminfoKiB(text, 'Writeback:');
  if (dirty === undefined || writeback === undefined) return undefined;
  return (dirty + writeback) * 1024;
}

/** The kB value of `field` (e.g. "Dirty:      14248 kB") in /proc/meminfo's text. */
function meminfoKiB(text: string, field: string): number | undefined {
  const at = text.indexOf(`\n${field}`);
  if (at < 0) return undefined;
  const n = Number.parseInt(text.slice(at + field.length + 1, text.indexOf('\n', at + 1)).trim(), 10);
  return Number.isFinite(n) ? n : undefined;
}

export interface BlockingSyncPolicyOptions {
  probe?: DiskPressureProbe;
  /** Milliseconds, monotonic (performance.now in production). */
  now?: () => number;
  pressureBytes?: number;
  slowSyncMs?: number;
  fastSyncsToReturn?: number;
  loopBoundMs?: number;
  waryMs?: number;
}

export class BlockingSyncPolicy {
  private readonly probe: DiskPressureProbe;
  private readonly now: () => number;
  private readonly pressureBytes: number;
  private readonly slowSyncMs: number;
  private readonly fastSyncsToReturn: number;
  /** Fast syncs still needed before blocking is allowed again (0: the disk is fast). */
  private fastSyncsOwed = 0;
  private readonly loopBoundMs: number;
  private readonly waryMs: number;
  private probedAt = Number.NEGATIVE_INFINITY;
  private pressured = false;
  /** When a sync last took longer than loopBoundMs (ms on `now`'s clock). */
  private overBoundAt = Number.NEGATIVE_INFINITY;

  constructor(opts: BlockingSyncPolicyOptions = {}) {
    this.probe = opts.probe ?? meminfoPressure;
    this.now = opts.now ?? (() => performance.now());
    this.pressureBytes = opts.pressureBytes ?? PRESSURE_BYTES;
    this.slowSyncMs = opts.slowSyncMs ?? SLOW_SYNC_MS;
    this.fastSyncsToReturn = opts.fastSyncsToReturn ?? FAST_SYNCS_TO_RETURN;
    this.loopBoundMs = opts.loopBoundMs ?? LOOP_BOUND_MS;
    this.waryMs = opts.waryMs ?? WARY_MS;
  }

  /** Whether a sync may block the calling thread now. */
  mayBlock(): boolean {
    return this.fastSyncsOwed === 0 && !this.underPressure();
  }

  /** Whether a sync that may block should be bounded (DataSyncer.within): one passed the loop's bound lately. */
  bounded(): boolean {
    return this.now() - this.overBoundAt < this.waryMs;
  }

  /** Every fdatasync's duration (ms), blocking or on the pool: the disk's recent past. */
  synced(ms: number): void {
    if (ms > this.loopBoundMs) this.overBoundAt = this.now();
    if (ms > this.slowSyncMs) this.fastSyncsOwed = this.fastSyncsToReturn;
    else if (this.fastSyncsOwed > 0) this.fastSyncsOwed--;
  }

  /** Whether the last sync left the disk marked slow (for logs and tests). */
  get slow(): boolean {
    return this.fastSyncsOwed > 0;
  }

  private underPressure(): boolean {
    const t = this.now();
    if (t - this.probedAt >= PROBE_INTERVAL_MS) {
      this.probedAt = t;
      const bytes = this.probe();
      this.pressured = bytes !== undefined && bytes > this.pressureBytes;
    }
    return this.pressured;
  }
}
