/**
 * Bounded work per event-loop turn for the gRPC front end.
 *
 * Why: one socket read can carry hundreds of requests (100 clients over 10 connections put a
 * whole round of requests in one poll phase), and node:http2 hands them over synchronously.
 * Running every handler (and its response) inside that read made one macrotask of 10-30 ms,
 * and every timer, raft tick and other connection waited behind it (issue 14: no main-thread
 * pause over 10 ms). So a request that has arrived is queued here and started a bounded
 * number per turn; the rest wait for the next turn (setImmediate), after timers and I/O.
 *
 * Order: first in, first started (fair across connections and streams, as arrival is).
 * Bound: the queue holds at most `maxQueuedJobs` jobs; past it a job runs at once (today's
 * behaviour, never a refusal), so a flood of streams cannot grow this queue without limit.
 * Each queued job is a stream node:http2 already holds, so the bytes are bounded by the
 * request-size limit times that count.
 */
import { loopTrace } from '../../metrics/index.js';

/** Work started per turn before yielding (about 1-3 ms of handlers on this project's machines). */
export const defaultJobsPerTurn = 32;
/** Queued jobs past which a new one runs at once instead of waiting. */
export const defaultMaxQueuedJobs = 100_000;

export interface TurnQueueOptions {
  jobsPerTurn?: number;
  maxQueuedJobs?: number;
  /** The span kind a drained turn is recorded as when CONCORD_LOOP_TRACE is on. */
  traceKind?: string;
}

/** A FIFO of (run, argument, argument) jobs drained `jobsPerTurn` at a time, one batch per turn. */
export class TurnQueue<A, B> {
  readonly jobsPerTurn: number;
  readonly maxQueuedJobs: number;
  private readonly traceKind: string;
  // Two parallel arrays read from a moving head: no object per job on the hot path.
  private firsts: (A | undefined)[] = [];
  private seconds: (B | undefined)[] = [];
  private head = 0;
  private scheduled = false;
  /** Jobs runOrPush ran at once since the turn began (reset by a setImmediate). */
  private ranAtOnce = 0;

  constructor(private readonly run: (a: A, b: B) => void, opts: TurnQueueOptions = {}) {
    this.jobsPerTurn = opts.jobsPerTurn ?? defaultJobsPerTurn;
    this.maxQueuedJobs = opts.maxQueuedJobs ?? defaultMaxQueuedJobs;
    this.traceKind = opts.traceKind ?? 'turn';
    if (!(this.jobsPerTurn >= 1)) throw new Error(`jobsPerTurn must be at least 1, got ${this.jobsPerTurn}`);
  }

  /** Jobs waiting for a turn. */
  get length(): number { return this.firsts.length - this.head; }

  /** Runs `run(a, b)` in a later turn, after the jobs already queued. */
  push(a: A, b: B): void {
    if (this.length >= this.maxQueuedJobs) { this.run(a, b); return; }
    this.firsts.push(a);
    this.seconds.push(b);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(drainTurn, this);
    }
  }

  /**
   * Runs `run(a, b)` at once while this turn has run fewer than jobsPerTurn jobs this way and
   * none waits (no added latency in the common case); else queues it like push().
   */
  runOrPush(a: A, b: B): void {
    if (this.length > 0 || this.ranAtOnce >= this.jobsPerTurn) { this.push(a, b); return; }
    if (this.ranAtOnce++ === 0) setImmediate(newTurn, this);
    this.run(a, b);
  }

  /** @internal */
  resetTurn(): void { this.ranAtOnce = 0; }

  /** @internal one turn: at most jobsPerTurn jobs, then the rest in the next turn. */
  drain(): void {
    const firsts = this.firsts, seconds = this.seconds, start = this.head;
    const end = Math.min(firsts.length, start + this.jobsPerTurn);
    // This turn's jobs leave the queue before any runs, so a job that queues more cannot
    // make this turn longer than its budget.
    this.head = end;
    const t0 = loopTrace === undefined ? 0 : performance.now();
    try {
      for (let i = start; i < end; i++) {
        const a = firsts[i]!, b = seconds[i]!;
        firsts[i] = undefined;
        seconds[i] = undefined;
        this.run(a, b);
      }
    } finally {
      if (t0 > 0) loopTrace?.span(this.traceKind, t0, end - start);
      // Booked after the jobs, so what they queued with setImmediate (the raft loop's turn,
      // response writes) runs before the next batch starts.
      if (this.head === this.firsts.length) {
        this.firsts = [];
        this.seconds = [];
        this.head = 0;
        this.scheduled = false;
      } else {
        setImmediate(drainTurn, this);
        if (this.head >= compactAfterJobs) this.compact();
      }
    }
  }

  /** Drops the consumed prefix of a queue that never empties (steady overload). */
  private compact(): void {
    this.firsts = this.firsts.slice(this.head);
    this.seconds = this.seconds.slice(this.head);
    this.head = 0;
  }
}

/** Consumed slots kept before a queue that never empties is compacted. */
const compactAfterJobs = 4096;

function drainTurn(q: TurnQueue<any, any>): void { q.drain(); }
function newTurn(q: TurnQueue<any, any>): void { q.resetTurn(); }
