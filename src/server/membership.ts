/**
 * The cluster's members as this member knows them: ids, names, peer and client URLs.
 *
 * Membership changes arrive through raft (conf-change entries whose context is the member's
 * JSON, as etcd writes it) and attribute updates (name, client URLs) through the
 * "published local member" request. The JSON shapes are etcd's own so that conf-change
 * entries in a WAL mean the same thing to etcd and to Concord.
 */
import { Member as PbMember } from '../proto/index.js';

export interface Member {
  readonly id: bigint;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

/** Formats an id as etcd prints it (`%x`, no leading zeros). */
export function idToHex(id: bigint): string {
  return id.toString(16);
}

/**
 * etcd's `membership.Member` JSON: `{"id":N,"peerURLs":[...],"name":"...","clientURLs":[...],"isLearner":true}`
 * (name, clientURLs and isLearner omitted when empty). The id is a JSON number that may
 * exceed 2^53, so it is written and read textually rather than through JSON.parse.
 */
export function memberToJson(m: Member): string {
  let s = `{"id":${m.id.toString()},"peerURLs":${JSON.stringify(m.peerURLs)}`;
  if (m.isLearner) s += ',"isLearner":true';
  if (m.name) s += `,"name":${JSON.stringify(m.name)}`;
  if (m.clientURLs.length > 0) s += `,"clientURLs":${JSON.stringify(m.clientURLs)}`;
  return s + '}';
}

export function memberFromJson(text: string): Member {
  const idMatch = /"id"\s*:\s*(\d+)/.exec(text);
  if (!idMatch) throw new Error(`member JSON without id: ${text}`);
  // Replace the big number with a string before parsing the rest safely.
  const obj = JSON.parse(text.replace(idMatch[0], '"id":"0"')) as {
    peerURLs?: string[]; name?: string; clientURLs?: string[]; isLearner?: boolean;
  };
  return {
    id: BigInt(idMatch[1]!),
    name: obj.name ?? '',
    peerURLs: obj.peerURLs ?? [],
    clientURLs: obj.clientURLs ?? [],
    isLearner: obj.isLearner ?? false,
  };
}

/**
 * A JSON array of etcd's member objects (the peer API's /members and /members/promote
 * answers). Members are flat objects, their ids past 2^53: each is read by memberFromJson.
 */
export function membersFromJsonList(text: string): Member[] {
  if (!/^\s*\[/.test(text)) throw new Error(`not a JSON array: ${text.slice(0, 100)}`);
  return [...text.matchAll(/\{[^{}]*\}/g)].map((m) => memberFromJson(m[0]));
}

/** etcd's `membership.Attributes` JSON, the value of the publish request. */
export function attributesToJson(name: string, clientURLs: string[]): string {
  let s = '{';
  if (name) s += `"name":${JSON.stringify(name)}`;
  if (clientURLs.length > 0) s += `${name ? ',' : ''}"clientURLs":${JSON.stringify(clientURLs)}`;
  return s + '}';
}

export function attributesFromJson(text: string): { name: string; clientURLs: string[] } {
  const o = JSON.parse(text) as { name?: string; clientURLs?: string[] };
  return { name: o.name ?? '', clientURLs: o.clientURLs ?? [] };
}

/** The v2 store path etcd publishes a member's attributes to. */
export function memberAttributesPath(id: bigint): string {
  return `/0/members/${idToHex(id)}/attributes`;
}

export function parseMemberAttributesPath(path: string): bigint | undefined {
  const m = /^\/0\/members\/([0-9a-f]+)\/attributes$/.exec(path);
  return m ? BigInt('0x' + m[1]) : undefined;
}

export class Membership {
  private readonly members = new Map<bigint, Member>();
  /** Ids removed from the cluster: never to come back (etcd's ErrIDRemoved). */
  private readonly removedIds = new Set<bigint>();

  constructor(readonly clusterId: bigint, initial: Iterable<Member> = [], removed: Iterable<bigint> = []) {
    for (const m of initial) this.members.set(m.id, m);
    for (const id of removed) this.removedIds.add(id);
  }

  /** Ids removed from the cluster, ascending. */
  removedIdList(): bigint[] {
    return [...this.removedIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  isRemoved(id: bigint): boolean {
    return this.removedIds.has(id);
  }

  get(id: bigint): Member | undefined {
    return this.members.get(id);
  }

  list(): Member[] {
    return [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get size(): number {
    return this.members.size;
  }

  /** Adds or replaces a member (applying the same conf change twice is harmless). */
  add(m: Member): void {
    const old = this.members.get(m.id);
    // A replayed add must not wipe attributes published after it.
    this.members.set(m.id, old ? { ...m, name: m.name || old.name, clientURLs: m.clientURLs.length ? m.clientURLs : old.clientURLs } : m);
  }

  remove(id: bigint): void {
    this.members.delete(id);
    this.removedIds.add(id);
  }

  /** Becomes `other` (same cluster): a leader's snapshot replaced the state machine. */
  replaceWith(other: Membership): void {
    if (other.clusterId !== this.clusterId) throw new Error(`membership: snapshot of cluster ${idToHex(other.clusterId)} installed in cluster ${idToHex(this.clusterId)}`);
    this.members.clear();
    this.removedIds.clear();
    for (const m of other.list()) this.members.set(m.id, m);
    for (const id of other.removedIds) this.removedIds.add(id);
  }

  setAttributes(id: bigint, attrs: { name: string; clientURLs: string[] }): void {
    const m = this.members.get(id);
    if (!m) return;
    m.name = attrs.name;
    m.clientURLs = attrs.clientURLs;
  }

  toProto(): PbMember[] {
    return this.list().map((m) => PbMember.fromPartial({
      ID: m.id, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner,
    }));
  }

  /** A self-describing JSON snapshot (raft snapshot data and the backend's members record). */
  toJson(): string {
    const removed = [...this.removedIds].map((id) => `"${id.toString()}"`).join(',');
    return `{"clusterId":"${this.clusterId.toString()}","members":[${this.list().map(memberToJson).join(',')}],"removed":[${removed}]}`;
  }

  static fromJson(text: string): Membership {
    const clusterId = BigInt(/"clusterId":"(\d+)"/.exec(text)![1]!);
    // Members are the record's only objects, flat (no nested braces): split on their boundaries.
    const membersText = text.slice(text.indexOf('"members":['));
    const members: Member[] = [];
    for (const m of membersText.matchAll(/\{[^{}]*\}/g)) members.push(memberFromJson(m[0]));
    // Records written before removed ids were kept have no "removed" list.
    const removedText = /"removed":\[([^\]]*)\]/.exec(text)?.[1] ?? '';
    const removed = [...removedText.matchAll(/"(\d+)"/g)].map((m) => BigInt(m[1]!));
    return new Membership(clusterId, members, removed);
  }
}
