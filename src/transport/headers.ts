/**
 * etcd's peer headers (rafthttp/http.go, util.go): what a request carries and the checks a
 * receiver makes before it reads a byte of the body.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { etcdServerVersion } from '../version.js';

/** etcd 3.4's version.MinClusterVersion: the oldest member version this one talks to. */
export const minClusterVersion = '3.0.0';

/** 412 bodies (without http.Error's trailing newline), as etcd writes and parses them. */
export const errIncompatibleVersion = 'incompatible version';
export const errClusterIDMismatch = 'cluster ID mismatch';

/** A member or cluster id as etcd prints it (types.ID.String: lowercase hex, no padding). */
export function idString(id: bigint): string {
  return id.toString(16);
}

/** types.IDFromString: hex, at most 64 bits; undefined when it does not parse. */
export function parseId(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F]{1,16}$/.test(s)) return undefined;
  return BigInt('0x' + s);
}

/** Who this member is, as every request and stream response announces it. */
export interface LocalIdentity {
  memberId: bigint;
  clusterId: bigint;
  /** This member's advertised peer URLs (X-PeerURLs). */
  peerUrls: readonly string[];
}

/** The headers of every request this member sends to a peer (createPostRequest, dial). */
export function requestHeaders(local: LocalIdentity): OutgoingHttpHeaders {
  const h: OutgoingHttpHeaders = {
    'X-Server-From': idString(local.memberId),
    'X-Server-Version': etcdServerVersion,
    'X-Min-Cluster-Version': minClusterVersion,
    'X-Etcd-Cluster-ID': idString(local.clusterId),
  };
  if (local.peerUrls.length > 0) h['X-PeerURLs'] = local.peerUrls.join(',');
  return h;
}

interface MajorMinor {
  major: number;
  minor: number;
}

/** semver's major.minor, or undefined when the string is no semver (Go would panic). */
function majorMinor(v: string): MajorMinor | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/.exec(v);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

function compareMajorMinor(a: MajorMinor, b: MajorMinor): number {
  return a.major !== b.major ? Math.sign(a.major - b.major) : Math.sign(a.minor - b.minor);
}

/** A request header's first value, '' when absent (Go's Header.Get). */
export function getHeader(h: IncomingHttpHeaders, name: string): string {
  const v = h[name.toLowerCase()];
  return (Array.isArray(v) ? v[0] : v) ?? '';
}

export type CompatibilityResult =
  | { ok: true }
  | { ok: false; body: typeof errIncompatibleVersion | typeof errClusterIDMismatch; reason: string };

/**
 * checkClusterCompatibilityFromHeader: the remote's server version must be at least our
 * minimum cluster version, its minimum cluster version at most our version (major.minor),
 * and its cluster id ours. Missing versions count as 2.0.0, as in etcd.
 */
export function checkCompatibility(h: IncomingHttpHeaders, clusterId: bigint): CompatibilityResult {
  const remoteServer = majorMinor(getHeader(h, 'X-Server-Version') || '2.0.0');
  const remoteMin = majorMinor(getHeader(h, 'X-Min-Cluster-Version') || '2.0.0');
  const localServer = majorMinor(etcdServerVersion)!;
  const localMin = majorMinor(minClusterVersion)!;
  const name = getHeader(h, 'X-Server-From');
  if (remoteServer === undefined || remoteMin === undefined) {
    return { ok: false, body: errIncompatibleVersion, reason: 'malformed version header' };
  }
  if (compareMajorMinor(remoteServer, localMin) < 0) {
    return { ok: false, body: errIncompatibleVersion, reason: `remote version is too low: remote[${name}]=${getHeader(h, 'X-Server-Version')}, local=${etcdServerVersion}` };
  }
  if (compareMajorMinor(remoteMin, localServer) > 0) {
    return { ok: false, body: errIncompatibleVersion, reason: `local version is too low: remote[${name}]=${getHeader(h, 'X-Server-Version')}, local=${etcdServerVersion}` };
  }
  const gcid = getHeader(h, 'X-Etcd-Cluster-ID');
  if (gcid !== idString(clusterId)) {
    return { ok: false, body: errClusterIDMismatch, reason: `got ${gcid} want ${idString(clusterId)}` };
  }
  return { ok: true };
}

/** The remote's advertised peer URLs (X-PeerURLs), split as etcd splits them. */
export function peerUrlsFrom(h: IncomingHttpHeaders): string[] {
  const v = getHeader(h, 'X-PeerURLs');
  return v === '' ? [] : v.split(',');
}
