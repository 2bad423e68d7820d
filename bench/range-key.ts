// The one key the benches' range calls read (not a test): its name, the put that seeds it, and
// the --op choice shared by the single-call tools (put-cost, loop-stalls), so each drives the
// same call as bench/main.ts's range-l / range-s rows.
import type { Server } from '../test/harness.js';
import type { LoadOp } from './loadgen.js';

/** The key every range scenario reads. */
export const rangeKey = 'bench/range-key';

/** Puts rangeKey with a value of `valueBytes` (the benches' values are 256 bytes). */
export async function seedRangeKey(server: Server, valueBytes = 256): Promise<void> {
  const c = server.client();
  try { await c.put({ key: Buffer.from(rangeKey), value: Buffer.alloc(valueBytes, 0x62) }); } finally { c.close(); }
}

/** The call a single-call tool drives: puts, txns of one put, or one-key ranges, linearizable or serializable. */
export type BenchOp = 'put' | 'txn-put' | 'range-l' | 'range-s';

/** `--op`'s value checked. */
export function benchOp(value: string): BenchOp {
  if (value === 'put' || value === 'txn-put' || value === 'range-l' || value === 'range-s') return value;
  throw new Error(`--op must be put, txn-put, range-l or range-s, got ${value}`);
}

/** The load generator's fields for `op` (bench/loadgen.ts's LoadConfig). */
export function loadFieldsFor(op: BenchOp): { op: LoadOp; rangeKey: string; serializable: boolean } {
  if (op === 'put' || op === 'txn-put') return { op, rangeKey: '', serializable: false };
  return { op: 'range', rangeKey, serializable: op === 'range-s' };
}
