/**
 * The key-value state machine of a simulated member (the simulation's `kv` mode): the
 * server's real Applier over an MvccStore on a real LMDB Backend in the run's temporary
 * directory. The backend is the member's disk and outlives crashes; the store, the applier
 * and the proposals' waiters belong to one incarnation.
 *
 * The backend commits only when the simulation forces it (where a server takes a snapshot:
 * snapshot-policy.ts force-commits there). A crash drops every write since then
 * (Backend.loseUncommitted); the restarted member opens a new store over the backend, which
 * reads back its consistent index, and the applier skips the WAL's entries up to it while
 * the Ready loop replays the log, as member.ts restarts from a data dir.
 *
 * Nothing here waits on LMDB: a forced commit is handed to LMDB at once and counts as durable
 * from that call, so the simulation's schedule (and a seed's replay) never depends on I/O.
 * For the same reason the LMDB environment stays open across a crash instead of being closed
 * and reopened: after loseUncommitted it holds exactly what a reopen would read.
 */
import { Backend } from '../storage/index.js';
import { MvccStore } from '../mvcc/index.js';
import { testApplier, type Applier, type WaitRegistry } from '../server/index.js';
import type { NodeId } from '../proto/index.js';

/** One incarnation's state machine. */
export interface KvIncarnation {
  readonly store: MvccStore;
  readonly applier: Applier;
  readonly waits: WaitRegistry;
}

/** Bound on one incarnation's proposals awaiting their entry (the simulation proposes in bursts of < 30). */
const maxProposalsInFlight = 10_000;
/** Never commit on a timer (setTimeout's largest delay) or a count: only forceCommit commits. */
const neverMs = 2 ** 31 - 1;

export class KvDisk {
  private readonly backend: Backend;
  private current: KvIncarnation | undefined;
  /** For the run's summary: backend writes crashes dropped, and restarts that found a consistent index. */
  lostWrites = 0;
  resumedFromIndex = 0;
  /** A forced commit that failed: the member's disk is broken, reported by the simulation. */
  commitError: unknown;

  constructor(readonly id: NodeId, path: string) {
    this.backend = Backend.open({ path, batchIntervalMs: neverMs, batchLimit: Number.POSITIVE_INFINITY });
  }

  /** The running incarnation's state machine. */
  get kv(): KvIncarnation {
    if (!this.current) throw new Error(`simtest: member ${this.id} has no running state machine`);
    return this.current;
  }

  /** A new incarnation: the store as the disk holds it. */
  open(): KvIncarnation {
    const store = MvccStore.open({ backend: this.backend });
    if (store.consistentIndex() > 0) this.resumedFromIndex++;
    const { applier, waits } = testApplier(this.id, store, maxProposalsInFlight);
    this.current = { store, applier, waits };
    return this.current;
  }

  /** Makes every write so far durable (etcd's ForceCommit, at a snapshot). */
  forceCommit(): void {
    this.backend.forceCommit().catch((e: unknown) => { this.commitError ??= e; });
  }

  /** Power cut: writes not force-committed are gone, and so is the incarnation. */
  crash(): void {
    this.lostWrites += this.backend.pendingWrites;
    this.backend.loseUncommitted();
    this.current = undefined;
  }

  /** End of the run: commits what is left and closes LMDB (the directory is removed by the caller). */
  async close(): Promise<void> {
    this.current = undefined;
    await this.backend.close();
  }
}
