/**
 * Linearizable reads: ReadIndex rounds shared by every read waiting when a round starts,
 * and the wait for the applied index to reach the round's answer.
 */
import type { EtcdError } from '../errors/index.js';
import { etcdError } from '../errors/index.js';

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

interface ReadWaiter {
  resolve(index: number): void;
  reject(e: Error): void;
}

/**
 * Batches reads into ReadIndex rounds: at most one round in flight; reads that arrive while
 * it runs wait for the next one (they must not ride a round that started before them).
 */
export class ReadIndexBatcher {
  private next: ReadWaiter[] = [];
  private inflight: { ctx: Uint8Array; key: string; waiters: ReadWaiter[] } | undefined;
  private seq = 0;
  private readonly requestRound: (ctx: Uint8Array) => void;
  private readonly kick: () => void;

  constructor(o: { requestRound(ctx: Uint8Array): void; kick(): void }) {
    this.requestRound = o.requestRound;
    this.kick = o.kick;
  }

  read(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.next.push({ resolve, reject });
      if (!this.inflight) this.startRound();
    });
  }

  private startRound(): void {
    if (this.next.length === 0) return;
    const ctx = Buffer.allocUnsafe(8);
    ctx.writeDoubleBE(++this.seq);
    const waiters = this.next;
    this.next = [];
    this.inflight = { ctx, key: ctx.toString('hex'), waiters };
    try {
      this.requestRound(ctx);
    } catch {
      this.inflight = undefined;
      for (const w of waiters) w.reject(etcdError('NoLeader'));
      return;
    }
    this.kick();
  }

  roundDone(ctx: Uint8Array, index: number): void {
    const f = this.inflight;
    if (!f || Buffer.from(ctx).toString('hex') !== f.key) return;
    this.inflight = undefined;
    for (const w of f.waiters) w.resolve(index);
    this.startRound();
  }

  /** A round in flight may never be answered once the leader changes: retry it. */
  leaderChanged(): void {
    const f = this.inflight;
    if (!f) return;
    this.inflight = undefined;
    this.next = f.waiters.concat(this.next);
    setTimeout(() => { if (!this.inflight) this.startRound(); }, 10).unref();
  }

  failAll(e: EtcdError): void {
    const all = [...(this.inflight?.waiters ?? []), ...this.next];
    this.inflight = undefined;
    this.next = [];
    for (const w of all) w.reject(e);
  }
}
