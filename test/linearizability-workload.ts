// Clients for the linearizability tests: each runs one operation at a time (put, linearizable
// get, or a compare-and-set txn) on a few keys against a random member of a cluster, and
// records what it observed as a history for src/testkit's checker.
//
// Outcomes: an answer is recorded as it came; a write that failed in any way (deadline,
// connection lost, "leader changed", ...) is UNKNOWN (it may still commit); a read that failed
// is left out (it changed nothing). Values are unique per write, so the checker can tell writes
// apart. Times are performance.now() of this one process (monotonic, shared by all clients).

import {
  PutRequest, PutResponse, TxnRequest, TxnResponse, RangeRequest, RangeResponse, Compare_CompareResult, Compare_CompareTarget,
} from '../src/proto/gen/etcdserverpb/rpc.js';
import { UNKNOWN, type KvInput, type KvOutput, type KvOperation } from '../src/testkit/index.js';
import { b, mk, type EtcdClient } from './harness.js';
import type { Cluster } from './cluster-harness.js';

export interface WorkloadOptions {
  clients: number;
  keys: string[];
  /** Seeded randomness (src/testkit rng). */
  rand: () => number;
  /** Deadline of one operation. */
  opTimeoutMs: number;
}

const text = (v: Uint8Array | undefined): string | null => (v === undefined ? null : Buffer.from(v).toString());

/** Send one operation; resolves with its output or throws what the client saw. */
export async function runKvOp(c: EtcdClient, input: KvInput, timeoutMs: number, serializable = false): Promise<KvOutput> {
  const key = b(input.key);
  switch (input.kind) {
    case 'put':
      await c.unary('/etcdserverpb.KV/Put', PutRequest, PutResponse, mk.put({ key, value: b(input.value) }), timeoutMs);
      return { kind: 'put' };
    case 'get': {
      const r = await c.unary('/etcdserverpb.KV/Range', RangeRequest, RangeResponse, mk.range({ key, serializable }), timeoutMs);
      return { kind: 'get', value: text(r.kvs[0]?.value) };
    }
    case 'cas': {
      const compare = input.expect === null
        ? mk.cmp({ key, target: Compare_CompareTarget.CREATE, result: Compare_CompareResult.EQUAL, createRevision: 0n })
        : mk.cmp({ key, target: Compare_CompareTarget.VALUE, result: Compare_CompareResult.EQUAL, value: b(input.expect) });
      const r = await c.unary('/etcdserverpb.KV/Txn', TxnRequest, TxnResponse, mk.txn({
        compare: [compare], success: [mk.opPut({ key, value: b(input.value) })], failure: [mk.opRange({ key })],
      }), timeoutMs);
      if (r.succeeded) return { kind: 'cas', succeeded: true };
      return { kind: 'cas', succeeded: false, current: text(r.responses[0]?.responseRange?.kvs[0]?.value) };
    }
  }
}

export interface OpOptions {
  timeoutMs: number;
  /** Not linearizable by design: only the control test uses it, to show the checker catches it. */
  serializable?: boolean;
  /** Told what the client saw when the operation failed. */
  onError?: (e: unknown) => void;
}

/** Run `input` on member `member`, appending what was observed to `history`; undefined if it failed. */
export async function recordOp(history: KvOperation[], cluster: Cluster, member: number, client: number, input: KvInput, opts: OpOptions): Promise<KvOutput | undefined> {
  const call = performance.now();
  try {
    const output = await runKvOp(cluster.member(member).rpc, input, opts.timeoutMs, opts.serializable);
    history.push({ client, input, output, call, return: performance.now() });
    return output;
  } catch (e) {
    if (input.kind !== 'get') history.push({ client, input, output: UNKNOWN, call, return: performance.now() });
    opts.onError?.(e);
    return undefined;
  }
}

export class Workload {
  readonly history: KvOperation[] = [];
  private stopping = false;
  private loops: Promise<void>[] = [];
  private readonly lastSeen = new Map<string, string | null>();
  /** Answered and failed operations, for the test's summary line. */
  answered = 0;
  failed = 0;
  /** Failed operations by what the client saw (the message's first line), for the summary. */
  readonly failures = new Map<string, number>();

  constructor(private readonly cluster: Cluster, private readonly opts: WorkloadOptions) {}

  start(): void {
    this.loops = Array.from({ length: this.opts.clients }, (_, c) => this.loop(c));
  }

  /** Let every client finish its current operation. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  private async loop(client: number): Promise<void> {
    for (let n = 0; !this.stopping; n++) {
      const input = this.nextInput(client, n);
      const member = this.pickMember();
      if (member < 0) { await new Promise((r) => setTimeout(r, 50)); continue; }
      const onError = (e: unknown): void => {
        const what = `m${member} ${input.kind}: ${String((e as Error)?.message ?? e).split('\n')[0]!.slice(0, 100)}`;
        this.failures.set(what, (this.failures.get(what) ?? 0) + 1);
      };
      const out = await recordOp(this.history, this.cluster, member, client, input, { timeoutMs: this.opts.opTimeoutMs, onError });
      if (out === undefined) { this.failed++; await new Promise((r) => setTimeout(r, 20)); continue; }
      this.answered++;
      if (out.kind === 'get') this.lastSeen.set(`${client}/${input.key}`, out.value);
      if (out.kind === 'cas') this.lastSeen.set(`${client}/${input.key}`, out.succeeded && input.kind === 'cas' ? input.value : out.current ?? null);
    }
  }

  /** A running member (paused ones included: a request to one waits, as a real client's would). */
  private pickMember(): number {
    const running = this.cluster.members.flatMap((m, i) => (m.running ? [i] : []));
    return running.length === 0 ? -1 : running[Math.floor(this.opts.rand() * running.length)]!;
  }

  /** 40% gets, 30% puts, 30% CAS expecting the value this client last saw (so many succeed). */
  private nextInput(client: number, n: number): KvInput {
    const { rand, keys } = this.opts;
    const key = keys[Math.floor(rand() * keys.length)]!;
    const value = `c${client}.${n}`;
    const r = rand();
    if (r < 0.4) return { kind: 'get', key };
    if (r < 0.7) return { kind: 'put', key, value };
    return { kind: 'cas', key, expect: this.lastSeen.get(`${client}/${key}`) ?? null, value };
  }
}
