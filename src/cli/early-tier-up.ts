/**
 * V8's tier-up setting for the `concord` server, set at run time by bin/concord.js before it
 * loads the program (a flag given on node's command line wins). Separate from cli/concord.ts
 * for the same reason as cli/small-heap.ts: V8 gives each function its budget when the
 * function's feedback is allocated, so the flag must be set before the program's modules load.
 */
import { setFlagsFromString } from 'node:v8';
import { givenOnNodeCommandLine } from './node-flags.js';

/**
 * A fresh server serves its first seconds of requests from V8's interpreter and baseline code:
 * under one client it starts at 400-900 puts/s and reaches its steady 1,400-1,900 only after
 * 3-8 s (issue 14, session 40: flat at 470-700 under --no-opt --no-maglev, so the climb is the
 * optimizing compiler's). V8 counts bytecode executed against an interrupt budget and considers
 * a function for TurboFan after --ticks-before-optimization (3) budgets spent; a quarter of its
 * default budget sends the request path to TurboFan after a quarter of the work. A fresh
 * server under one client (session 41, six alternating pairs; docs/performance.md): 6,019-7,212
 * puts in its first 4 s against 3,183-5,946 with V8's budget, 1,532-1,950 in its second second
 * against 536-1,260. An eighth and a sixteenth of it did no better. Once optimized the code is
 * the same, so steady state is unchanged (put-100, range-s, txn-100 A/B: 0.97x-1.06x), and so
 * is RSS. The price: start-up code is optimized sooner too, and a fresh server took a median
 * 921 ms from spawn to serving against 873 (eight alternating pairs).
 */
export function preferEarlyTierUp(): void {
  if (givenOnNodeCommandLine(INTERRUPT_BUDGET_FLAG)) return;
  setFlagsFromString(`--interrupt-budget=${EARLY_INTERRUPT_BUDGET}`);
}

/** A quarter of V8 11.3's default (67,584 bytes of bytecode executed). */
const EARLY_INTERRUPT_BUDGET = 16_896;

const INTERRUPT_BUDGET_FLAG = /^--interrupt[-_]budget(=|$)/;
