/**
 * mvcc/: etcd's multi-version store. `MvccStore` (range/put/deleteRange/txn with etcd's
 * semantics, compaction, hash, hashKV, consistent index) over a storage/ `Backend`; the key
 * index (key -> generations of revisions) and etcd's revision key layout.
 */
export { MvccStore } from './store.js';
export type { MvccStoreOptions, HashResult, HashKVResult } from './store.js';
export { KeyIndex, Generation } from './key_index.js';
export type { KeyRevision } from './key_index.js';
export { TreeIndex } from './tree_index.js';
export { revKey, revMain, revSub, isTombstoneKey } from './revision.js';
export { encodeKeyValue, decodeKeyValue } from './kvcodec.js';
export { WatchableStore, WatchStream, defaultWatchStreamBounds, watchErrors } from './watchable-store.js';
export type { WatchStreamBounds, WatchableOptions, WatchReply, Queued, WatchRequest, WatchResult } from './watchable-store.js';
export { prefixRangeEnd } from './watcher-group.js';
