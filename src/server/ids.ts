/**
 * Member and cluster ids, derived exactly as etcd 3.4 derives them, so that a Concord member
 * bootstrapped with the same flags as an etcd member gets the same ids
 * (etcdserver/api/membership/member.go newMember, cluster.go genID).
 */
import { createHash } from 'node:crypto';

/**
 * A URL as Go's url.URL.String() writes it, which is what etcd hashes and stores:
 * "http://127.0.0.1:2380", no trailing slash. etcd only accepts URLs with an explicit port,
 * so a WHATWG URL with an empty port had the scheme's default port written out; put it back.
 */
export function urlString(u: URL): string {
  let host = u.host;
  if (u.port === '' && u.hostname !== '') {
    const def = u.protocol === 'http:' ? '80' : u.protocol === 'https:' ? '443' : '';
    if (def) host = `${u.hostname}:${def}`;
  }
  const path = u.pathname === '/' ? '' : u.pathname;
  return `${u.protocol}//${host}${path}${u.search}${u.hash}`;
}

function first8BigEndian(data: Buffer): bigint {
  return createHash('sha1').update(data).digest().readBigUInt64BE(0);
}

/**
 * etcd's member id: sha1 over the member's peer URLs (sorted as strings, concatenated), then
 * the cluster token, then — for a member added at runtime (`member add`) — the current Unix
 * time in seconds as decimal text; the first 8 bytes, big-endian.
 */
export function memberId(peerUrls: readonly (string | URL)[], clusterToken: string, now?: Date): bigint {
  const urls = peerUrls.map((u) => (typeof u === 'string' ? u : urlString(u))).sort(compareGoStrings);
  let text = urls.join('') + clusterToken;
  if (now !== undefined) text += String(Math.floor(now.getTime() / 1000));
  return first8BigEndian(Buffer.from(text, 'utf8'));
}

/** etcd's cluster id: sha1 over the member ids (sorted numerically, 8 bytes big-endian each); first 8 bytes. */
export function clusterId(memberIds: readonly bigint[]): bigint {
  const ids = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const buf = Buffer.alloc(8 * ids.length);
  ids.forEach((id, i) => buf.writeBigUInt64BE(BigInt.asUintN(64, id), 8 * i));
  return first8BigEndian(buf);
}

/**
 * The ids of a cluster bootstrapped from --initial-cluster (name -> peer URLs) and
 * --initial-cluster-token, as etcd's NewClusterFromURLsMap computes them.
 * Throws etcd's errors for two members with one id, or an id of 0 (raft.None).
 */
export function bootstrapIds(initialCluster: ReadonlyMap<string, readonly (string | URL)[]>, clusterToken: string):
  { clusterId: bigint; members: Map<string, bigint> } {
  const members = new Map<string, bigint>();
  const seen = new Set<bigint>();
  for (const [name, urls] of initialCluster) {
    const id = memberId(urls, clusterToken);
    if (seen.has(id)) throw new Error(`member exists with identical ID ${formatId(id)}`);
    if (id === 0n) throw new Error('cannot use 0 as member id');
    seen.add(id);
    members.set(name, id);
  }
  return { clusterId: clusterId([...seen]), members };
}

/** An id as etcd prints it (types.ID.String, `%x`): lowercase hex without leading zeros. */
export function formatId(id: bigint): string {
  return BigInt.asUintN(64, id).toString(16);
}

/** Parses an id as etcd does (types.IDFromString: base 16, 64 bits). */
export function parseId(text: string): bigint {
  if (!/^[0-9a-fA-F]{1,16}$/.test(text)) throw new Error(`strconv.ParseUint: parsing ${JSON.stringify(text)}: invalid syntax`);
  return BigInt('0x' + text);
}

// Go compares strings bytewise (UTF-8); JS compares UTF-16 code units. They agree for ASCII,
// which URLs are, but compare as bytes anyway so the order is Go's in every case.
function compareGoStrings(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
