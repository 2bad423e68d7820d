/** The linearizability checker (checker.ts) and the KV register model (kv-model.ts). */
export { UNKNOWN, type Unknown, type Operation, type Model } from './history.js';
export { checkOperations, explain, type CheckResult, type CheckOptions } from './checker.js';
export { kvModel, applyKv, type KvInput, type KvOutput, type KvOperation } from './kv-model.js';
