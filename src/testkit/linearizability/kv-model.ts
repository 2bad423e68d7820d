/**
 * The sequential specification of etcd's keys as registers: put, get, and compare-and-set (a
 * txn comparing the key's value, or its absence, that puts on success and reads the key on
 * failure). Values are strings; a missing key is null. Partitioned by key: operations on
 * different keys never interact, so each key's history is checked alone.
 */

import { UNKNOWN, type Model, type Operation, type Unknown } from './history.js';

export type KvInput =
  | { kind: 'put'; key: string; value: string }
  | { kind: 'get'; key: string }
  /** Txn: If(value(key) == expect, or key absent when expect is null) Then(put value) Else(get key). */
  | { kind: 'cas'; key: string; expect: string | null; value: string };

export type KvOutput =
  | { kind: 'put' }
  | { kind: 'get'; value: string | null }
  /** `current`: the failure branch's read (undefined if the client did not read it). */
  | { kind: 'cas'; succeeded: boolean; current?: string | null };

export type KvOperation = Operation<KvInput, KvOutput>;

/** The key's value, or null when absent. */
type Register = string | null;

function step(state: Register, input: KvInput, output: KvOutput | Unknown): Register | undefined {
  switch (input.kind) {
    case 'put':
      return input.value;
    case 'get':
      if (output === UNKNOWN) return state;
      return output.kind === 'get' && output.value === state ? state : undefined;
    case 'cas': {
      const holds = state === input.expect;
      if (output === UNKNOWN) return holds ? input.value : state;
      if (output.kind !== 'cas' || output.succeeded !== holds) return undefined;
      if (holds) return input.value;
      return output.current === undefined || output.current === state ? state : undefined;
    }
  }
}

/** The value an operation writes if it takes effect (put; cas on success), else undefined. */
function valueWritten(input: KvInput): string | undefined {
  return input.kind === 'get' ? undefined : input.value;
}

/**
 * Drop writes of unknown outcome whose value nothing observed (no read returned it, no CAS
 * compared against it, no failed CAS saw it). Values are unique per write, so such a write is
 * indistinguishable from one that never happened (linearized last): while it held the key
 * nothing looked. That needs every failed CAS to report what it saw (`current`): a failed CAS
 * that did not could be explained by the unseen write, so then nothing is dropped.
 */
function simplify(ops: KvOperation[]): KvOperation[] {
  const blindFailure = ops.some((o) => o.output !== UNKNOWN && o.output.kind === 'cas' && !o.output.succeeded && o.output.current === undefined);
  if (blindFailure) return ops;
  let kept = ops;
  for (;;) {
    const observed = new Set<string | null>();
    for (const o of kept) {
      if (o.input.kind === 'cas') observed.add(o.input.expect);
      if (o.output === UNKNOWN) continue;
      if (o.output.kind === 'get') observed.add(o.output.value);
      if (o.output.kind === 'cas' && o.output.current !== undefined) observed.add(o.output.current);
    }
    const next = kept.filter((o) => {
      if (o.output !== UNKNOWN) return true;
      const v = valueWritten(o.input);
      return v !== undefined && observed.has(v);
    });
    if (next.length === kept.length) return kept;
    kept = next;
  }
}

export const kvModel: Model<Register, KvInput, KvOutput> = {
  init: () => null,
  step,
  stateKey: (s) => (s === null ? '\u0000' : `=${s}`),
  partition: (input) => input.key,
  readOnly: (input) => input.kind === 'get',
  simplify,
  describe(input, output) {
    const out = output === UNKNOWN ? '?' : output.kind === 'get' ? JSON.stringify(output.value)
      : output.kind === 'cas' ? `${output.succeeded ? 'succeeded' : 'failed'}${output.current !== undefined ? ` (saw ${JSON.stringify(output.current)})` : ''}` : 'ok';
    switch (input.kind) {
      case 'put': return `put ${input.key}=${JSON.stringify(input.value)} -> ${out}`;
      case 'get': return `get ${input.key} -> ${out}`;
      case 'cas': return `cas ${input.key} if ${JSON.stringify(input.expect)} then ${JSON.stringify(input.value)} -> ${out}`;
    }
  },
};

/** kvModel's step without the Model wrapper, for generators that simulate a correct store. */
export function applyKv(state: Register, input: KvInput): { state: Register; output: KvOutput } {
  switch (input.kind) {
    case 'put': return { state: input.value, output: { kind: 'put' } };
    case 'get': return { state, output: { kind: 'get', value: state } };
    case 'cas': {
      if (state === input.expect) return { state: input.value, output: { kind: 'cas', succeeded: true } };
      return { state, output: { kind: 'cas', succeeded: false, current: state } };
    }
  }
}
