/**
 * A linearizability checker: Wing & Gong's search with Lowe's memoisation, as Porcupine does it.
 *
 * The history of each partition (per key, for a KV model) becomes a list of call and return
 * events in time order (a call before a return at equal times: such operations overlap). The
 * search walks the list: at a call it tries to linearize that operation now (the model accepts
 * its output in the current state), removes its call and return from the list and starts over
 * from the head; at a return whose operation is not linearized yet, no order of the operations
 * tried so far works, so it backtracks (undoes the last linearized operation and tries the next
 * call after it). A (set of linearized operations, model state) pair seen before is not explored
 * again: the rest of the search from there would be the same. The list is a doubly linked list
 * over typed arrays ("dancing links"): removing and restoring an operation is O(1).
 *
 * Operations with an UNKNOWN output get +Infinity as their return time: they may take effect at
 * any moment after their call, or never (linearized after every other operation, which no
 * observation can tell from "never").
 */

import { UNKNOWN, type Model, type Operation } from './history.js';

export interface CheckOptions {
  /** Search steps over the whole history before giving up with outcome 'unknown'. */
  maxSteps?: number;
}

export type CheckResult<I, O> =
  | { outcome: 'ok'; partitions: number; steps: number }
  /** Not linearizable: `longest` is the longest order found of `partition`'s operations, `stuck` an operation no order could place. */
  | { outcome: 'illegal'; partition: string; longest: Operation<I, O>[]; stuck: Operation<I, O>; steps: number }
  /** The step budget ran out before the search decided. */
  | { outcome: 'unknown'; partition: string; steps: number };

const defaultMaxSteps = 50_000_000;
const NONE = -1;

type PartitionResult<I, O> =
  | { ok: true; steps: number }
  | { ok: false; ops: Operation<I, O>[]; longest: number[]; stuck: number; steps: number }
  | { ok: 'budget'; steps: number };

/** Check a whole history, one partition after another; stops at the first illegal one. */
export function checkOperations<S, I, O>(model: Model<S, I, O>, history: Operation<I, O>[], opts: CheckOptions = {}): CheckResult<I, O> {
  let budget = opts.maxSteps ?? defaultMaxSteps;
  let steps = 0;
  const parts = partitionHistory(model, history);
  for (const [partition, ops] of parts) {
    const r = checkPartition(model, model.simplify?.(ops) ?? ops, budget);
    steps += r.steps;
    budget -= r.steps;
    if (r.ok === 'budget') return { outcome: 'unknown', partition, steps };
    if (r.ok === false) {
      return { outcome: 'illegal', partition, longest: r.longest.map((i) => r.ops[i]!), stuck: r.ops[r.stuck]!, steps };
    }
  }
  return { outcome: 'ok', partitions: parts.size, steps };
}

/** Group by the model's partition, dropping read-only operations whose outcome is unknown. */
function partitionHistory<S, I, O>(model: Model<S, I, O>, history: Operation<I, O>[]): Map<string, Operation<I, O>[]> {
  const parts = new Map<string, Operation<I, O>[]>();
  for (const op of history) {
    if (op.output === UNKNOWN && model.readOnly?.(op.input)) continue;
    if (!(op.call <= op.return) && op.output !== UNKNOWN) throw new Error(`operation returns before its call: ${op.call} > ${op.return}`);
    const key = model.partition?.(op.input) ?? '';
    let list = parts.get(key);
    if (!list) parts.set(key, (list = []));
    list.push(op);
  }
  return parts;
}

/**
 * The event list of one partition: node 0 is the head sentinel, nodes 1..2n the calls and
 * returns in time order; `next`/`prev` link the nodes still in play.
 */
class EventList {
  readonly next: Int32Array;
  readonly prev: Int32Array;
  /** For a node: its operation's index; for a call node also `returnOf`. */
  readonly opOf: Int32Array;
  readonly isCall: Uint8Array;
  readonly returnOf: Int32Array;

  constructor(ops: Operation<unknown, unknown>[]) {
    const n = ops.length;
    const events: { time: number; call: boolean; op: number }[] = [];
    ops.forEach((op, i) => {
      events.push({ time: op.call, call: true, op: i });
      events.push({ time: op.output === UNKNOWN ? Infinity : op.return, call: false, op: i });
    });
    events.sort((a, b) => (a.time - b.time) || (a.call === b.call ? a.op - b.op : a.call ? -1 : 1));
    const size = 2 * n + 1;
    this.next = new Int32Array(size);
    this.prev = new Int32Array(size);
    this.opOf = new Int32Array(size).fill(NONE);
    this.isCall = new Uint8Array(size);
    this.returnOf = new Int32Array(size).fill(NONE);
    const returnNode = new Int32Array(n);
    events.forEach((e, k) => {
      const node = k + 1;
      this.opOf[node] = e.op;
      this.isCall[node] = e.call ? 1 : 0;
      if (!e.call) returnNode[e.op] = node;
    });
    for (let node = 1; node < size; node++) if (this.isCall[node]) this.returnOf[node] = returnNode[this.opOf[node]!]!;
    for (let node = 0; node < size; node++) {
      this.next[node] = node + 1 < size ? node + 1 : NONE;
      this.prev[node] = node - 1;
    }
  }

  get first(): number { return this.next[0]!; }

  /** Take a call node and its return out of the list. */
  lift(call: number): void {
    this.unlink(call);
    this.unlink(this.returnOf[call]!);
  }

  /** Put them back (exactly the reverse of lift). */
  unlift(call: number): void {
    this.relink(this.returnOf[call]!);
    this.relink(call);
  }

  private unlink(node: number): void {
    const p = this.prev[node]!;
    const nx = this.next[node]!;
    this.next[p] = nx;
    if (nx !== NONE) this.prev[nx] = p;
  }

  private relink(node: number): void {
    const p = this.prev[node]!;
    const nx = this.next[node]!;
    this.next[p] = node;
    if (nx !== NONE) this.prev[nx] = node;
  }
}

/** The set of linearized operations, as bits; `key()` is exact (memo keys never collide). */
class OpSet {
  private readonly words: Uint32Array;
  private readonly halves: Uint16Array;
  constructor(n: number) {
    this.words = new Uint32Array(Math.ceil(n / 32) || 1);
    this.halves = new Uint16Array(this.words.buffer);
  }
  add(i: number): void { this.words[i >>> 5]! |= 1 << (i & 31); }
  delete(i: number): void { this.words[i >>> 5]! &= ~(1 << (i & 31)); }
  key(): string { return String.fromCharCode(...this.halves); }
}

function checkPartition<S, I, O>(model: Model<S, I, O>, ops: Operation<I, O>[], maxSteps: number): PartitionResult<I, O> {
  const list = new EventList(ops as Operation<unknown, unknown>[]);
  const linearized = new OpSet(ops.length);
  const seen = new Set<string>();
  const stack: { call: number; state: S }[] = [];
  let longest: number[] = [];
  let stuck = NONE;
  let state = model.init();
  let node = list.first;
  let steps = 0;
  while (list.first !== NONE) {
    if (++steps > maxSteps) return { ok: 'budget', steps };
    if (list.isCall[node]) {
      const opIndex = list.opOf[node]!;
      const op = ops[opIndex]!;
      const after = model.step(state, op.input, op.output);
      if (after !== undefined) {
        linearized.add(opIndex);
        const key = `${linearized.key()}|${model.stateKey(after)}`;
        if (!seen.has(key)) {
          seen.add(key);
          stack.push({ call: node, state });
          state = after;
          list.lift(node);
          node = list.first;
          continue;
        }
        linearized.delete(opIndex);
      }
      node = list.next[node]!;
      continue;
    }
    // A return whose operation is not linearized: undo the last choice and try the next call.
    if (stack.length >= longest.length) { longest = stack.map((s) => list.opOf[s.call]!); stuck = list.opOf[node]!; }
    const top = stack.pop();
    if (!top) return { ok: false, ops, longest, stuck, steps };
    state = top.state;
    linearized.delete(list.opOf[top.call]!);
    list.unlift(top.call);
    node = list.next[top.call]!;
  }
  return { ok: true, steps };
}

/** A readable account of a failed check (for test failure messages). */
export function explain<S, I, O>(model: Model<S, I, O>, r: CheckResult<I, O>, maxOps = 20): string {
  if (r.outcome === 'ok') return `linearizable (${r.partitions} partitions, ${r.steps} steps)`;
  if (r.outcome === 'unknown') return `undecided: step budget spent in partition ${JSON.stringify(r.partition)} after ${r.steps} steps`;
  const fmt = (op: Operation<I, O>) => {
    const what = model.describe?.(op.input, op.output) ?? `${JSON.stringify(op.input)} -> ${op.output === UNKNOWN ? '?' : JSON.stringify(op.output)}`;
    return `  client ${op.client} [${op.call.toFixed(1)}, ${op.output === UNKNOWN ? 'inf' : op.return.toFixed(1)}] ${what}`;
  };
  const shown = r.longest.slice(-maxOps);
  return [
    `NOT linearizable: partition ${JSON.stringify(r.partition)}; longest order found has ${r.longest.length} operations${shown.length < r.longest.length ? ` (last ${shown.length})` : ''}:`,
    ...shown.map(fmt),
    'after which no order can return:',
    fmt(r.stuck),
  ].join('\n');
}
