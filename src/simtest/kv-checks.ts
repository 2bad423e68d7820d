/**
 * The simulation's kv-mode checks once the cluster has healed and every member has applied
 * the same prefix of the log: the members' MVCC stores agree (revision, hash, hashKV, every
 * key with its revisions), and every acknowledged put is there at its revision.
 */
import { rangeReq } from '../mvcc/index.js';
import type { KvIncarnation } from './kv-disk.js';
import type { AckedPut } from './kv-workload.js';
import type { SimMember } from './sim-member.js';

/** Every key, value and revision the store holds now, as comparable text. */
function contents(kv: KvIncarnation): string {
  const all = kv.store.range(rangeReq('\0', { rangeEnd: Buffer.from([0]) }));
  return all.kvs.map((x) => `${x.key.toString()}=${x.value.toString()}@${x.createRevision}/${x.modRevision}/v${x.version}`).join(' ');
}

function summary(kv: KvIncarnation): string {
  return `revision ${kv.store.currentRevision} hash ${kv.store.hash().hash} hashKV ${kv.store.hashKV(0).hash}`;
}

/** Violations among `members`, all at the same applied index. */
export function checkHealedStores(members: readonly SimMember[], acked: readonly AckedPut[]): string[] {
  const out: string[] = [];
  const [first, ...rest] = members;
  if (!first) return out;
  const ref = first.disk!.kv;
  for (const n of rest) {
    const kv = n.disk!.kv;
    if (summary(kv) !== summary(ref)) out.push(`kv agreement: at applied index ${n.appliedIndex} node ${n.id} has ${summary(kv)}, node ${first.id} ${summary(ref)}`);
    else if (contents(kv) !== contents(ref)) out.push(`kv agreement: nodes ${n.id} and ${first.id} hold different keys at applied index ${n.appliedIndex}`);
  }
  for (const n of members) {
    const { store } = n.disk!.kv;
    for (const a of acked) {
      const kv = a.revision <= store.currentRevision ? store.range(rangeReq(a.key, { revision: a.revision })).kvs[0] : undefined;
      if (kv?.value.toString() !== a.value || kv.modRevision !== a.revision) {
        out.push(`acknowledged write lost: put ${a.key}=${a.value} at revision ${a.revision} (acknowledged by node ${a.member}) is not at node ${n.id}`);
        break;
      }
    }
  }
  return out;
}
