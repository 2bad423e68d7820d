// The key index rebuilt from the key bucket's records in revision order, as etcd's store
// restore does at start-up: fed by a scan of the backend (MvccStore.open), or by an import
// with the records it copies into the backend, as it copies them (booting an etcd data dir:
// server/etcd-data-dir.ts), so the store is not read a second time right after it was written.

import { readIndexFields, type RecordIndexFields } from './kvcodec.js';
import { KeyIndex } from './key_index.js';
import { isTombstoneKey, revKey, revMain, revSub } from './revision.js';
import { TreeIndex } from './tree_index.js';

/** Records below revision 1 are not the store's (etcd's restore starts there). */
const FIRST_RECORD = revKey(1, 0);

export class KeyIndexRestore {
  readonly index = new TreeIndex();
  /** Main revision of the last record (1 while there is none). */
  revision = 1;
  /** Records added, those below revision 1 too (a given restore is checked against the backend's count). */
  records = 0;
  /** Each key's lease as of its last record (etcd's keysToLease; latin1 keys, live ones with a lease only). */
  readonly keyLeases = new Map<string, bigint>();
  private readonly rec: RecordIndexFields = { key: '', createRevision: 0, version: 0, lease: 0n };

  /**
   * The key bucket's next record, in key order: `k` the bucket key (revision, '_', sub,
   * tombstone mark), `v` the marshalled KeyValue. Views of either may be transient: only the
   * fields the index needs are read (readIndexFields), nothing is kept.
   */
  add(k: Uint8Array, v: Uint8Array): void {
    this.records++;
    if (Buffer.compare(k, FIRST_RECORD) < 0) return;
    const main = revMain(k);
    const sub = revSub(k);
    const tombstone = isTombstoneKey(k);
    const { key, createRevision, version, lease } = readIndexFields(v, this.rec);
    this.revision = main;
    if (tombstone || lease === 0n) this.keyLeases.delete(key);
    else this.keyLeases.set(key, lease);
    const ki = this.index.heldKeyIndex(key);
    if (ki) {
      if (tombstone) ki.tombstone(main, sub);
      else ki.put(main, sub);
    } else if (!tombstone) {
      const nki = new KeyIndex(key);
      nki.restore(createRevision, main, sub, version);
      this.index.insert(nki);
    }
  }
}
