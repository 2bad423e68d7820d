/**
 * etcd's v2 store as raft snapshots carry it (etcdserver/api/v2store's Save: the JSON of its
 * node tree), reduced to what etcd 3.4 still keeps there: membership (/0/members,
 * /0/removed_members) and the cluster version (/0/version). Concord's snapshots carry it so
 * an etcd member can install a Concord leader's snapshot (and etcd boots from the snap files
 * `concordutl export` writes); Concord reads it back, and its own older membership record.
 */
import { Membership, attributesToJson, idToHex, type Member } from './membership.js';

/** A v2 store node as etcd's snapshot JSON writes it (v2store/node.go); a directory has Children. */
interface V2Node { Path: string; CreatedIndex: number; ModifiedIndex: number; ExpireTime: string; Value: string; Children: Record<string, V2Node> | null }

const noExpiry = '0001-01-01T00:00:00Z';
const v2File = (path: string, value: string, index: number): V2Node => ({ Path: path, CreatedIndex: index, ModifiedIndex: index, ExpireTime: noExpiry, Value: value, Children: null });
const v2Dir = (path: string, children: Record<string, V2Node>): V2Node => ({ Path: path, CreatedIndex: 0, ModifiedIndex: 0, ExpireTime: noExpiry, Value: '', Children: children });

/**
 * etcd's v2 store as a raft snapshot's data: /0/members/<id>/{raftAttributes,attributes},
 * /0/removed_members/<id>, /0/version, and an empty /1 (the v2 keys Concord does not keep).
 */
export function v2StoreOfMembership(m: Membership, clusterVersion: string | undefined, index: number): string {
  const members: Record<string, V2Node> = {};
  for (const x of m.list()) {
    const id = idToHex(x.id);
    const raft = JSON.stringify(x.isLearner ? { peerURLs: x.peerURLs, isLearner: true } : { peerURLs: x.peerURLs });
    const children: Record<string, V2Node> = { raftAttributes: v2File(`/0/members/${id}/raftAttributes`, raft, index) };
    if (x.name || x.clientURLs.length > 0) children.attributes = v2File(`/0/members/${id}/attributes`, attributesToJson(x.name, x.clientURLs), index);
    members[id] = v2Dir(`/0/members/${id}`, children);
  }
  const removed: Record<string, V2Node> = {};
  // etcd's mustDeleteMemberFromStore: an empty file per removed id, its directory made by the first.
  for (const id of m.removedIdList()) removed[idToHex(id)] = v2File(`/0/removed_members/${idToHex(id)}`, '', index);
  const cluster: Record<string, V2Node> = { members: v2Dir('/0/members', members) };
  if (Object.keys(removed).length > 0) cluster.removed_members = v2Dir('/0/removed_members', removed);
  if (clusterVersion !== undefined) cluster.version = v2File('/0/version', clusterVersion, index);
  const root = v2Dir('/', { 0: v2Dir('/0', cluster), 1: v2Dir('/1', {}) });
  return JSON.stringify({ Root: root, CurrentIndex: index, CurrentVersion: 2 });
}

function isConcordMembership(text: string): boolean {
  return text.startsWith('{"clusterId":');
}

/** A raft snapshot's data as membership: Concord's record, or etcd's v2 store (a snapshot from etcd). */
export function membershipOfSnapshotData(data: Uint8Array, clusterId: bigint): Membership {
  const text = Buffer.from(data).toString('utf8');
  return isConcordMembership(text) ? Membership.fromJson(text) : membershipOfV2Store(text, clusterId);
}

/**
 * Membership from etcd's v2 store JSON: /0/members/<hex id>/raftAttributes
 * ({"peerURLs","isLearner"}) and /attributes ({"name","clientURLs"}), /0/removed_members/<hex id>.
 */
export function membershipOfV2Store(text: string, clusterId: bigint): Membership {
  let root: Partial<V2Node> | undefined;
  try {
    root = (JSON.parse(text) as { Root?: Partial<V2Node> }).Root;
  } catch (e) {
    throw new Error(`snap: data is neither Concord's membership nor etcd's v2 store: ${(e as Error).message}`);
  }
  const cluster = root?.Children?.['0']?.Children ?? {};
  const members: Member[] = [];
  for (const [hex, node] of Object.entries(cluster.members?.Children ?? {})) {
    const raft = JSON.parse(node.Children?.raftAttributes?.Value ?? '{}') as { peerURLs?: string[]; isLearner?: boolean };
    const attrs = JSON.parse(node.Children?.attributes?.Value ?? '{}') as { name?: string; clientURLs?: string[] };
    members.push({ id: hexId(hex), name: attrs.name ?? '', peerURLs: raft.peerURLs ?? [], clientURLs: attrs.clientURLs ?? [], isLearner: raft.isLearner ?? false });
  }
  const removed = Object.keys(cluster.removed_members?.Children ?? {}).map(hexId);
  return new Membership(clusterId, members, removed);
}

function hexId(hex: string): bigint {
  if (!/^[0-9a-f]{1,16}$/.test(hex)) throw new Error(`snap: etcd's v2 store names a member ${JSON.stringify(hex)}, not a hex id`);
  return BigInt(`0x${hex}`);
}
