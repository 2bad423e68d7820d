/**
 * mvcc/: etcd's multi-version store. `MvccStore` (range/put/deleteRange and write txns with
 * etcd's semantics; the txn rules live in server/txn.ts, compaction, hash, hashKV, consistent index) over a storage/ `Backend`; the key
 * index (key -> generations of revisions) and etcd's revision key layout.
 */
export { MvccStore, checkPutShape, isOneKeyRead, storedConsistentIndex } from './store.js';
export type { MvccStoreOptions, HashResult, HashKVResult, TxnWrite } from './store.js';
/** Test kit for the layers above: a store in a temporary directory, terse requests. */
export { b, cmp, delReq, keysOf, opDel, opPut, opRange, opTxn, openStore, putReq, rangeReq, tempDir, txnReq } from './testutil.js';
export { KeyIndex, type Generation } from './key_index.js';
export type { KeyRevision } from './key_index.js';
export { TreeIndex } from './tree_index.js';
export { KeyIndexRestore } from './index-restore.js';
export { revKey, revMain, revSub, isTombstoneKey } from './revision.js';
export { encodeKeyValue, decodeKeyValue } from './kvcodec.js';
export { WatchableStore, WatchStream, defaultWatchStreamBounds, watchErrors } from './watchable-store.js';
export { mergeFanouts, defaultFanoutRunBounds } from './fanout-merge.js';
export type { Fanout, FanoutRunBounds } from './fanout-merge.js';
export type { WatchStreamBounds, WatchableOptions, WatchReply, Queued, QueuedItem, WatchRequest, WatchResult } from './watchable-store.js';
export { prefixRangeEnd } from '../proto/index.js';
