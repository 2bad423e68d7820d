/**
 * Linearizable reads: ReadIndex rounds shared by every read waiting when a round starts,
 * then the wait for the applied index to reach the round's answer.
 */
import { strict as assert } from 'node:assert';
import { etcdError, type EtcdError } from '../errors/index.js';
import { RaftError } from '../raft/index.js';

interface IndexWaiter {
  index: number;
  resolve(): void;
  reject(e: Error): void;
}

/** Resolves promises once the applied index reaches theirs. */
export class AppliedIndexWaiter {
  index = 0;
  /** Kept sorted by index (appends are nearly always in order). */
  private waiting: IndexWaiter[] = [];

  wait(index: number): Promise<void> {
    if (index <= this.index) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { index, resolve, reject };
      const q = this.waiting;
      let i = q.length;
      while (i > 0 && q[i - 1]!.index > index) i--;
      q.splice(i, 0, w);
    });
  }

  advance(index: number): void {
    if (index < this.index) assert.fail(`applied index moved back from ${this.index} to ${index}`);
    this.index = index;
    const q = this.waiting;
    if (q.length === 0 || q[0]!.index > index) return;
    let n = 0;
    while (n < q.length && q[n]!.index <= index) n++;
    const ready = q.splice(0, n);
    for (const w of ready) w.resolve();
  }

  failAll(e: Error): void {
    const q = this.waiting;
    this.waiting = [];
    for (const w of q) w.reject(e);
  }
}

/** The part of the raft loop (RaftNode) linearizable reads need. */
export interface ReadIndexRaft {
  readonly leader: bigint;
  readonly isLeader: boolean;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly appliedTerm: number;
  /** Throws RaftError('ProposalDropped') when no leader can answer. */
  readIndex(ctx: Uint8Array): void;
  waitApplied(index: number): Promise<void>;
}

interface ReadWaiter {
  resolve(index: number): void;
  reject(e: Error): void;
}

export interface LinearizableReadsOptions {
  raft: ReadIndexRaft;
  /** Whether this member is the only voter (then a leader's commit index is the read index). */
  soleVoter(): boolean;
  /** Reads waiting for a round or for the applied index; past it reads get "too many requests". */
  maxPendingReads: number;
  /**
   * How long a round may go unanswered before its request is sent again with the same
   * context (etcd 3.5's readIndexRetryTime, 500 ms): a leader drops a ReadIndex until it has
   * committed an entry of its term, and the transport may lose one; the read must not hang.
   */
  resendRoundMs?: number;
  /**
   * Waits until a leader is known, rejecting when none is elected in time (leader-wait.ts).
   * Absent: a read without a leader fails at once with "no leader".
   */
  waitForLeader?: () => Promise<void>;
  /** etcd's ReqTimeout: a round unanswered this long fails its reads with "request timed out" (default 7 s). */
  requestTimeoutMs?: number;
}

/** etcd 3.5's readIndexRetryTime. */
const defaultResendRoundMs = 500;

/**
 * Batches reads into ReadIndex rounds: at most one round in flight; reads that arrive while
 * it runs wait for the next one (they must not ride a round that started before them), which
 * starts as soon as it ends; reads started in one task with none in flight share one round.
 *
 * Leader changes are etcd 3.4's (linearizableReadLoop): a round in flight when a new leader
 * is elected fails its reads with the retryable "leader changed", and so does a read that
 * arrived while there was no leader; a round unanswered for the request timeout fails its
 * reads with "request timed out". A round raft drops (no leader yet) just waits: the resend
 * asks again, as etcd's raft drops a ReadIndex silently.
 */
export class LinearizableReads {
  private next: ReadWaiter[] = [];
  private inflight: { ctx: Uint8Array; waiters: ReadWaiter[]; timer: NodeJS.Timeout } | undefined;
  private seq = 0;
  /** Reads between barrier() entry and exit: bounded by maxPendingReads. */
  private pending = 0;
  private resend: NodeJS.Timeout | undefined;
  private readonly o: LinearizableReadsOptions;

  constructor(o: LinearizableReadsOptions) {
    this.o = o;
  }

  get pendingReads(): number {
    return this.pending;
  }

  /**
   * Whether a read may be served at once, with no round and no wait: this member is the only
   * voter, leads, has applied an entry of its term (so its commit index is the read index) and
   * everything committed. The common case of a single member: its reads then cost what a
   * serializable read does (no promise, no microtask turn).
   */
  readableNow(): boolean {
    const { raft } = this.o;
    return raft.isLeader && raft.appliedTerm === raft.term && raft.appliedIndex >= raft.commitIndex && this.o.soleVoter();
  }

  /** Resolves once this member may serve a read that reflects every write acknowledged before the call. */
  async barrier(): Promise<void> {
    const { raft, waitForLeader } = this.o;
    if (raft.leader === 0n && waitForLeader === undefined) throw etcdError('NoLeader');
    if (this.pending >= this.o.maxPendingReads) throw etcdError('RequestTooManyRequests');
    this.pending++;
    try {
      if (raft.leader === 0n) {
        // etcd's ReadIndex finds no leader and waits: the election that ends the wait fails it.
        await waitForLeader!();
        throw etcdError('LeaderChanged');
      }
      // One voter, leading, with an entry of its own term applied: its commit index is the
      // read index (what a ReadIndex round would answer), no round needed.
      const index = raft.isLeader && raft.appliedTerm === raft.term && this.o.soleVoter() ? raft.commitIndex : await this.round();
      if (raft.appliedIndex < index) await raft.waitApplied(index);
    } finally {
      this.pending--;
    }
  }

  /**
   * Joins the next round. With none in flight, the round starts once the current task's
   * microtasks run, not at once: every read started in the same task (the gRPC server starts a
   * turn's requests in one loop) then shares it, instead of the first going alone and the rest
   * waiting a whole round behind it. Raft sends the round's heartbeats in a later turn anyway.
   */
  private round(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.next.push({ resolve, reject });
      if (!this.inflight && !this.roundQueued) {
        this.roundQueued = true;
        queueMicrotask(this.startQueuedRound);
      }
    });
  }

  /** A round start round() queued is pending (at most one). */
  private roundQueued = false;
  private readonly startQueuedRound = (): void => {
    this.roundQueued = false;
    if (this.inflight) return;
    try {
      this.startRound();
    } catch (e) {
      // raft refused the round for a reason other than a missing leader (requestRound waits
      // that out): a bug below, which the round's reads get rather than a hang.
      const ctx = this.inflightCtx();
      if (ctx === undefined) throw e;
      this.endRound(ctx, e instanceof Error ? e : new Error(String(e)));
    }
  };

  private startRound(): void {
    if (this.next.length === 0) return;
    const ctx = Buffer.allocUnsafe(8);
    ctx.writeDoubleBE(++this.seq);
    const waiters = this.next;
    this.next = [];
    // Not unref'd: failAll (the member stopping) clears it.
    const timer = setTimeout(() => this.endRound(ctx, etcdError('Timeout')), this.o.requestTimeoutMs ?? 7000);
    this.inflight = { ctx, waiters, timer };
    this.requestRound(ctx);
  }

  /** The context of the round in flight, if any. */
  private inflightCtx(): Uint8Array | undefined {
    return this.inflight?.ctx;
  }

  /** Asks raft for the round `ctx`, and again every resendRoundMs while it stays unanswered. */
  private requestRound(ctx: Uint8Array): void {
    const f = this.inflight;
    if (!f || f.ctx !== ctx) return;
    try {
      this.o.raft.readIndex(ctx);
    } catch (e) {
      // Dropped for want of a leader: the resend asks again; an election or the timeout ends it.
      if (!(e instanceof RaftError && e.code === 'ProposalDropped')) throw e;
    }
    this.clearResend();
    this.resend = setTimeout(() => this.requestRound(ctx), this.o.resendRoundMs ?? defaultResendRoundMs);
    this.resend.unref();
  }

  private clearResend(): void {
    if (this.resend) clearTimeout(this.resend);
    this.resend = undefined;
  }

  /** Raft answered the round tagged `ctx`. */
  roundDone(ctx: Uint8Array, index: number): void {
    const f = this.inflight;
    if (!f || Buffer.compare(ctx, f.ctx) !== 0) return;
    this.endRound(f.ctx, index);
  }

  /** Ends the round `ctx` (if still in flight) with its index or an error; the next one starts. */
  private endRound(ctx: Uint8Array, outcome: number | Error): void {
    const f = this.inflight;
    if (!f || f.ctx !== ctx) return;
    this.inflight = undefined;
    clearTimeout(f.timer);
    this.clearResend();
    for (const w of f.waiters) {
      if (typeof outcome === 'number') w.resolve(outcome);
      else w.reject(outcome);
    }
    this.startRound();
  }

  /** The member's leader changed: a new leader fails the round in flight (etcd's ErrLeaderChanged). */
  leaderChanged(leader: bigint): void {
    const f = this.inflight;
    if (!f || leader === 0n) return;
    this.endRound(f.ctx, etcdError('LeaderChanged'));
  }

  failAll(e: EtcdError): void {
    const f = this.inflight;
    if (f) clearTimeout(f.timer);
    this.clearResend();
    const all = [...(f?.waiters ?? []), ...this.next];
    this.inflight = undefined;
    this.next = [];
    for (const w of all) w.reject(e);
  }
}
