/**
 * A new member's identity: its id, the cluster id and the initial members, from
 * --initial-cluster, --initial-advertise-peer-urls and --initial-cluster-token.
 */
import type { ServerConfig } from './config.js';
import { bootstrapIds, urlString } from './ids.js';
import type { Member } from './membership.js';

/**
 * The ids of a new member and its initial cluster (ids.bootstrapIds), after etcd's own
 * bootstrap checks (etcdserver/config.go hasLocalMember, advertiseMatchesCluster), with
 * etcd's messages. URLs are compared as written: etcd also resolves host names, Concord's
 * test and loopback setups use IPs.
 */
export function bootstrapIdentity(config: Pick<ServerConfig, 'name' | 'initialCluster' | 'initialAdvertisePeerUrls' | 'initialClusterToken'>): { memberId: bigint; clusterId: bigint; members: Member[] } {
  const initial = new Map([...config.initialCluster].map(([name, urls]) => [name, urls.map(urlString)] as const));
  const own = initial.get(config.name);
  if (own === undefined) throw new Error(`couldn't find local name "${config.name}" in the initial cluster configuration`);
  const advertised = config.initialAdvertisePeerUrls.map(urlString);
  const mismatch = advertiseMismatch(config.name, [...own].sort(), [...advertised].sort());
  if (mismatch) throw new Error(mismatch);
  const { clusterId, members: ids } = bootstrapIds(initial, config.initialClusterToken);
  const members: Member[] = [...initial].map(([name, peerURLs]) => ({
    id: ids.get(name)!, name: '', peerURLs, clientURLs: [], isLearner: false,
  }));
  return { memberId: ids.get(config.name)!, clusterId, members };
}

/** etcd's advertiseMatchesCluster message, or undefined when the URL sets are equal. */
function advertiseMismatch(name: string, initialUrls: string[], advertisedUrls: string[]): string | undefined {
  if (initialUrls.length === advertisedUrls.length && initialUrls.every((u, i) => u === advertisedUrls[i])) return undefined;
  const goQuote = (a: string[]): string => `[${a.map((u) => JSON.stringify(u)).join(' ')}]`;
  const err = initialUrls.length !== advertisedUrls.length
    ? `len(${goQuote(advertisedUrls)}) != len(${goQuote(initialUrls)})`
    : `resolved urls: ${JSON.stringify(advertisedUrls.find((u, i) => u !== initialUrls[i]))} != ${JSON.stringify(initialUrls.find((u, i) => u !== advertisedUrls[i]))}`;
  const notAdvertised = initialUrls.filter((u) => !advertisedUrls.includes(u));
  if (notAdvertised.length > 0) {
    return `--initial-cluster has ${notAdvertised.map((u) => `${name}=${u}`).join(',')} but missing from --initial-advertise-peer-urls=${advertisedUrls.join(',')} (${err})`;
  }
  const notInCluster = advertisedUrls.filter((u) => !initialUrls.includes(u));
  return `--initial-advertise-peer-urls has ${notInCluster.join(',')} but missing from --initial-cluster=${advertisedUrls.map((u) => `${name}=${u}`).join(',')}`;
}

/**
 * etcd's startup check (etcdserver/server.go NewServer): the backend must hold every entry up
 * to the snapshot, because the WAL before the snapshot may already be released. A backend
 * behind it (an older copy of the file, or pages a power cut lost) would be served with writes
 * silently missing; refuse to start instead, with etcd's message. etcd exempts a zero index
 * (files from before 3.0 never stored one); Concord never wrote such files, so a zero index
 * under a snapshot means the backend lost everything and is refused too.
 */
export function checkBackendMatchesSnapshot(backendPath: string, consistentIndex: number, snapshotIndex: number): void {
  if (consistentIndex < snapshotIndex) {
    throw new Error(`database file (${backendPath} index ${consistentIndex}) does not match with snapshot (index ${snapshotIndex})`);
  }
}
