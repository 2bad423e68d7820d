/**
 * Whether a V8 flag was given on node's command line (or through CONCORD_NODE_ARGS, which
 * bin/concord.js passes there). The settings concord makes at run time (cli/small-heap.ts,
 * cli/early-tier-up.ts, cli/idle-gc.ts) step aside for an operator's explicit choice.
 * `flag` should match the flag's name with either spelling (V8 takes `-` and `_` alike).
 */
export function givenOnNodeCommandLine(flag: RegExp): boolean {
  return process.execArgv.some((arg) => flag.test(arg));
}
