/**
 * Batched ReadIndex on the leader. Reads queue up; one heartbeat round at a time confirms
 * leadership for every read that was queued when the round started. The round's read index is
 * the commit index at its start. Reads arriving during a round wait for the next one, which
 * starts as soon as the current one completes, so a burst of reads costs one round trip.
 */
import type { NodeId } from '../proto/index.js';

export interface ReadState {
  /** The commit index the read must wait to be applied before it reads. */
  index: number;
  requestCtx: Uint8Array;
}

export interface PendingRead {
  ctx: Uint8Array;
  /** Requesting node (the leader itself for local reads). */
  from: NodeId;
}

export interface ReadRound {
  ctx: Uint8Array;
  index: number;
  reads: PendingRead[];
  acks: Set<NodeId>;
}

export class ReadIndexBatcher {
  private queue: PendingRead[] = [];
  private current: ReadRound | null = null;
  private nextId = 1;
  readonly maxPending: number;

  constructor(maxPending: number) {
    this.maxPending = maxPending;
  }

  /** Queues a read; false when the bound is reached (the read is dropped, the caller retries). */
  enqueue(read: PendingRead): boolean {
    if (this.queue.length >= this.maxPending) return false;
    this.queue.push(read);
    return true;
  }

  pendingCount(): number {
    return this.queue.length + (this.current ? this.current.reads.length : 0);
  }

  /** The round in flight, whose context heartbeats carry. */
  round(): ReadRound | null {
    return this.current;
  }

  /** Starts a round for every queued read if none is in flight. */
  maybeStart(committed: number, self: NodeId): ReadRound | null {
    if (this.current || this.queue.length === 0) return null;
    const id = this.nextId++;
    const ctx = new Uint8Array(8);
    new DataView(ctx.buffer).setBigUint64(0, BigInt(id));
    this.current = { ctx, index: committed, reads: this.queue, acks: new Set([self]) };
    this.queue = [];
    return this.current;
  }

  /** Records a heartbeat ack; returns the round if this ack is for it. */
  ack(ctx: Uint8Array | undefined, from: NodeId): ReadRound | null {
    const r = this.current;
    if (!r || !ctx || ctx.length !== 8 || !sameBytes(ctx, r.ctx)) return null;
    r.acks.add(from);
    return r;
  }

  /** Ends the current round (its reads are answered by the caller). */
  finish(): ReadRound | null {
    const r = this.current;
    this.current = null;
    return r;
  }

  /** Drops everything (leadership lost or term changed). */
  reset(): void {
    this.queue = [];
    this.current = null;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return a.length === b.length;
}
