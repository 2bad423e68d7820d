/**
 * --initial-cluster-state existing: a new member joining a running cluster (after
 * `etcdctl member add`) learns the cluster from a peer's /members, as etcd does
 * (GetClusterFromRemotePeers, ValidateClusterAndAssignIDs), and takes its id from there.
 */
import type { ServerConfig } from './config.js';
import { urlString } from './ids.js';
import { membersFromJsonList, type Member } from './membership.js';
import type { Logger } from '../log/index.js';
import type { PeerClientTls } from '../transport/index.js';
import { peerCall } from './peer-call.js';

/** etcd's getClusterFromRemotePeers timeout. */
const fetchTimeoutMs = 10_000;
/** A /members answer larger than this is not a member list. */
const maxMembersBodyBytes = 4 * 1024 * 1024;

export interface JoinIdentity {
  memberId: bigint;
  clusterId: bigint;
  /** The cluster as the peer reported it (this member included, not started yet). */
  members: Member[];
}

type JoinConfig = Pick<ServerConfig, 'name' | 'initialCluster'>;

/** The peer URLs of every other initial member, sorted (etcd's getRemotePeerURLs). */
function remotePeerUrls(config: JoinConfig): string[] {
  const urls: string[] = [];
  for (const [name, u] of config.initialCluster) if (name !== config.name) urls.push(...u.map(urlString));
  return urls.sort();
}

/** GET <url>/members: the members and the cluster id, or undefined (logged as etcd logs it). */
async function fetchMembers(url: string, log: Logger, tls: PeerClientTls | undefined): Promise<{ members: Member[]; clusterId: bigint } | undefined> {
  const address = `${url}/members`;
  let body: string;
  let header: string | undefined;
  try {
    const r = await peerCall({ method: 'GET', url: address, tls, timeoutMs: fetchTimeoutMs, maxResponseBytes: maxMembersBodyBytes });
    body = r.body.toString('utf8');
    const h = r.headers['x-etcd-cluster-id'];
    header = typeof h === 'string' ? h : undefined;
  } catch (e) {
    log.warn('failed to get cluster response', { address, error: String((e as Error).message ?? e) });
    return undefined;
  }
  let members: Member[];
  try {
    members = membersFromJsonList(body);
  } catch (e) {
    log.warn('failed to unmarshal cluster response', { address, error: String((e as Error).message ?? e) });
    return undefined;
  }
  if (header === undefined || !/^[0-9a-fA-F]{1,16}$/.test(header)) {
    log.warn('failed to parse cluster ID', { address, header: header ?? '', error: 'invalid cluster ID' });
    return undefined;
  }
  return { members, clusterId: BigInt('0x' + header) };
}

/**
 * Asks the other initial members for the cluster, then matches every existing member to an
 * initial one by peer URLs to learn this member's id. Throws etcd's errors.
 */
export async function joinIdentity(config: JoinConfig, log: Logger, tls?: PeerClientTls): Promise<JoinIdentity> {
  const own = config.initialCluster.get(config.name);
  if (own === undefined) throw new Error(`couldn't find local name "${config.name}" in the initial cluster configuration`);
  let existing: { members: Member[]; clusterId: bigint } | undefined;
  for (const url of remotePeerUrls(config)) {
    existing = await fetchMembers(url, log, tls);
    if (existing === undefined) continue;
    if (existing.members.length === 0) throw new Error('cannot fetch cluster info from peer urls: failed to get raft cluster member(s) from the given URLs');
    break;
  }
  if (existing === undefined) throw new Error('cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs');
  const ownUrls = own.map(urlString).sort();
  const initial = [...config.initialCluster.values()].map((u) => u.map(urlString).sort().join(','));
  if (existing.members.length !== initial.length) throw new Error(`error validating peerURLs ${describe(existing)}: member count is unequal`);
  let memberId: bigint | undefined;
  for (const m of existing.members) {
    const urls = [...m.peerURLs].sort().join(',');
    if (!initial.includes(urls)) {
      throw new Error(`error validating peerURLs ${describe(existing)}: PeerURLs: no match found for existing member (${m.id.toString(16)}, [${m.peerURLs.join(' ')}]), last resolver error (<nil>)`);
    }
    if (urls === ownUrls.join(',')) memberId = m.id;
  }
  if (memberId === undefined) throw new Error(`error validating peerURLs ${describe(existing)}: member count is unequal`);
  return { memberId, clusterId: existing.clusterId, members: existing.members };
}

/** RaftCluster's String(): {ClusterID:x Members:[...]}. */
function describe(c: { members: Member[]; clusterId: bigint }): string {
  return `{ClusterID:${c.clusterId.toString(16)} Members:[${c.members.map((m) => `&{ID:${m.id.toString(16)} RaftAttributes:{PeerURLs:[${m.peerURLs.join(' ')}] IsLearner:${m.isLearner}} Attributes:{Name:${m.name} ClientURLs:[${m.clientURLs.join(' ')}]}}`).join(' ')}] RemovedMemberIDs:[]}`;
}
