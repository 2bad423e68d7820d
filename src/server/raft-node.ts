/**
 * The Ready loop: drives the pure RawNode with a clock, persists what it asks to persist to
 * the WAL (one fdatasync per Ready, however many proposals it carries), sends its messages
 * and hands committed entries to the applier.
 *
 * Group commit falls out of the shape of the loop: while one Ready's fdatasync is in flight
 * the event loop keeps accepting requests, whose proposals pile up in raft's unstable log and
 * all ride the next Ready's single fdatasync.
 *
 * Entries are applied as soon as they are both committed and persisted here. Because the
 * leader counts its own log only once persisted (raft/ durability rule), committed entries
 * of a Ready were persisted by an earlier Ready and are applied *before* this Ready's fsync,
 * overlapping apply with disk I/O.
 */
import { RawNode, MemoryStorage, StateType, type Ready } from '../raft/index.js';
import type { Entry, Message, Snapshot } from '../proto/raftpb.js';
import type { Wal, Snapshotter } from '../wal/index.js';
import type { Logger } from '../log/index.js';

export interface RaftNodeHooks {
  /** Applies committed entries in order (synchronous: state machine only). */
  apply(entries: Entry[]): void;
  /** A ReadIndex round finished: reads tagged `ctx` may proceed once `index` is applied. */
  readState(ctx: Uint8Array, index: number): void;
  /** Leader or term changed. */
  softState(leader: bigint, isLeader: boolean, term: number): void;
  /** Sends messages to peers (none in a one-member cluster). */
  send(messages: Message[]): void;
  /** Called between Readies, when no WAL write is in flight: the moment to take a snapshot. */
  idle(): Promise<void>;
}

export interface RaftNodeOptions {
  raw: RawNode;
  storage: MemoryStorage;
  wal: Wal;
  snapshotter: Snapshotter;
  hooks: RaftNodeHooks;
  heartbeatIntervalMs: number;
  log: Logger;
}

export class RaftNode {
  readonly raw: RawNode;
  readonly storage: MemoryStorage;
  private readonly wal: Wal;
  private readonly hooks: RaftNodeHooks;
  private readonly log: Logger;
  private ticker: NodeJS.Timeout | undefined;
  private scheduled = false;
  private running = false;
  private stopped = false;
  private failed: Error | undefined;
  /** Resolves when the current loop run ends (used by stop()). */
  private runDone: Promise<void> = Promise.resolve();
  private readonly heartbeatIntervalMs: number;
  /** Last index durably in the WAL. */
  private persistedIndex: number;
  term = 0;
  commitIndex = 0;
  /** Counters for metrics and tuning (cumulative). */
  readonly stats = { readies: 0, walSaves: 0, walSaveMs: 0, entriesSaved: 0 };

  constructor(o: RaftNodeOptions) {
    this.raw = o.raw;
    this.storage = o.storage;
    this.wal = o.wal;
    this.hooks = o.hooks;
    this.log = o.log;
    this.heartbeatIntervalMs = o.heartbeatIntervalMs;
    this.persistedIndex = o.storage.lastIndex();
  }

  start(): void {
    this.ticker = setInterval(() => this.tick(), this.heartbeatIntervalMs);
    this.kick();
  }

  tick(): void {
    if (this.stopped) return;
    this.raw.tick();
    this.kick();
  }

  /** Schedules a loop run if raft has something to say and none is running. */
  kick(): void {
    if (this.scheduled || this.running || (this.stopped && this.tasks.length === 0)) return;
    this.scheduled = true;
    // setImmediate (not a microtask) lets pending socket reads land first: bigger batches.
    setImmediate(() => {
      this.scheduled = false;
      if (!this.running) this.runDone = this.run();
    });
  }

  /** The error that stopped the loop, if any (a WAL write failed: the member must stop). */
  get error(): Error | undefined {
    return this.failed;
  }

  /**
   * Runs `fn` on the loop between two Readies: no WAL write or apply is in flight while it
   * runs (defragmentation, backend snapshots, raft snapshots). Proposals pile up meanwhile.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.tasks.push(() => fn().then(resolve, reject));
      this.kick();
    });
  }

  private readonly tasks: Array<() => Promise<void>> = [];
  private drainWaiters: Array<() => void> = [];

  /** Resolves once the loop has nothing left to do (every pending Ready handled). */
  drained(): Promise<void> {
    if (!this.running && !this.scheduled && !this.raw.hasReady() && this.tasks.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      for (;;) {
        while (this.tasks.length > 0) await this.tasks.shift()!();
        if (this.stopped || !this.raw.hasReady()) break;
        const rd = this.raw.ready();
        await this.handle(rd);
        this.raw.advance(rd);
        await this.hooks.idle();
      }
    } catch (e) {
      this.failed = e as Error;
      this.stopped = true;
      this.log.error('raft loop failed; stopping', { error: String((e as Error).stack ?? e) });
      throw e;
    } finally {
      this.running = false;
    }
    // Something may have arrived while the last advance ran.
    if (!this.stopped && (this.raw.hasReady() || this.tasks.length > 0)) this.kick();
    else if (this.drainWaiters.length > 0) {
      const ws = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of ws) w();
    }
  }

  /** Role as of the last Ready's soft state (status() allocates; this does not). */
  isLeader = false;
  leader = 0n;

  private async handle(rd: Ready): Promise<void> {
    if (rd.hardState) {
      this.term = rd.hardState.term;
      this.commitIndex = rd.hardState.commit;
    }
    if (rd.softState) {
      this.leader = rd.softState.lead;
      this.isLeader = rd.softState.raftState === StateType.Leader;
      this.hooks.softState(this.leader, this.isLeader, this.term);
    }
    // A leader may send before persisting (its own log counts only once persisted anyway).
    const isLeader = this.isLeader;
    if (isLeader && rd.messages.length > 0) this.hooks.send(rd.messages);

    if (rd.snapshot && rd.snapshot.metadata.index > 0) await this.persistSnapshot(rd.snapshot);
    // Start this Ready's WAL write first: the write and fdatasync run on the thread pool
    // while this thread applies what is already durable and answers those clients.
    const t0 = performance.now();
    const saving = rd.entries.length > 0 || rd.hardState ? this.wal.save(rd.hardState, rd.entries, rd.mustSync) : undefined;

    const committed = rd.committedEntries;
    let split = committed.length;
    while (split > 0 && committed[split - 1]!.index > this.persistedIndex) split--;
    if (split > 0) this.hooks.apply(split === committed.length ? committed : committed.slice(0, split));

    for (const rs of rd.readStates) this.hooks.readState(rs.requestCtx, rs.index);

    if (saving) {
      await saving;
      this.stats.walSaves++;
      this.stats.walSaveMs += performance.now() - t0;
      this.stats.entriesSaved += rd.entries.length;
    }
    this.stats.readies++;
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    if (rd.entries.length > 0) {
      this.storage.append(rd.entries);
      this.persistedIndex = rd.entries[rd.entries.length - 1]!.index;
    }
    if (!isLeader && rd.messages.length > 0) this.hooks.send(rd.messages);
    if (split < committed.length) this.hooks.apply(committed.slice(split));
  }

  private async persistSnapshot(_snap: Snapshot): Promise<void> {
    // Receiving snapshots from a leader comes with clustering (transport issue).
    throw new Error('applying a raft snapshot from a leader is not supported yet');
  }

  /** Stops ticking and waits for the loop to finish its current Ready. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    await this.runDone.catch(() => undefined);
  }

}
