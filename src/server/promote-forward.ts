/**
 * MemberPromote off the leader (etcd's EtcdServer.PromoteMember): only the leader knows
 * whether a learner is in sync, so a member that is not the leader forwards the promotion
 * over the peer URLs, `POST /members/promote/<decimal id>`, answered with the member list as
 * etcd's JSON (etcdhttp's peerMemberPromoteHandler, cluster_util.go promoteMemberHTTP). Both
 * sides are here: the handler on the peer listener and the forwarding client. Statuses and
 * bodies are etcd's, so Concord and etcd members forward to each other.
 */
import type * as http from 'node:http';
import { peerHttpError, type PeerClientTls } from '../transport/index.js';
import { etcdError, EtcdError } from '../errors/index.js';
import type { Member as PbMember } from '../proto/index.js';
import type { Logger } from '../log/index.js';
import { peerCall } from './peer-call.js';
import { idToHex, memberToJson, membersFromJsonList } from './membership.js';

export const promotePrefix = '/members/promote/';
/** A member list answer larger than this is not one. */
const maxPromoteResponseBytes = 4 * 1024 * 1024;
/** etcd retries the leader's URLs in a loop; a short pause keeps a refused URL from spinning. */
const retryPauseMs = 50;

/** membership's and etcdserver's texts as the peer handler writes them (etcd's error values). */
const errIdNotFound = 'membership: ID not found';
const errMemberNotLearner = 'membership: can only promote a learner member';

/** The member's whole PromoteMember (which itself forwards when this member is not the leader). */
export type PromoteMember = (id: bigint) => Promise<PbMember[]>;

const protoToJson = (m: PbMember): string => memberToJson({ id: m.ID, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner });

/** peerMemberPromoteHandler.ServeHTTP for a path under /members/promote/. */
export async function servePromoteRequest(promote: PromoteMember, clusterId: bigint, log: Logger, req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<void> {
  if (req.method !== 'POST') {
    res.setHeader('Allow', 'POST');
    return peerHttpError(res, 405, 'Method Not Allowed');
  }
  res.setHeader('X-Etcd-Cluster-ID', idToHex(clusterId));
  const idText = path.slice(promotePrefix.length);
  // Go's strconv.ParseUint(s, 10, 64): decimal digits only, at most 2^64-1.
  if (!/^\d{1,20}$/.test(idText) || BigInt(idText) >= 1n << 64n) return peerHttpError(res, 404, `member ${idText} not found in cluster`);
  const id = BigInt(idText);
  let members: PbMember[];
  try {
    members = await promote(id);
  } catch (e) {
    if (!(e instanceof EtcdError)) throw e;
    log.warn('failed to promote a member', { 'member-id': idToHex(id), error: e.message });
    if (e.kind === 'MemberNotFound') return peerHttpError(res, 404, errIdNotFound);
    if (e.kind === 'MemberNotLearner') return peerHttpError(res, 412, errMemberNotLearner);
    if (e.kind === 'LearnerNotReady') return peerHttpError(res, 412, e.message);
    // etcdhttp.WriteError for any other server error.
    res.writeHead(500, { 'Content-Type': 'application/json' });
    res.end('{"message":"Internal Server Error"}');
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(`[${members.map(protoToJson).join(',')}]\n`);
}

/** One forwarded promotion's outcome: etcd's final answers end the forwarding; the rest retry. */
type Attempt = { final: true; members: PbMember[] } | { final: true; error: EtcdError } | { final: false; error: string };

async function promoteAt(url: string, id: bigint, tls: PeerClientTls | undefined, timeoutMs: number): Promise<Attempt> {
  let r: { status: number; body: Buffer };
  try {
    r = await peerCall({ method: 'POST', url: `${url.replace(/\/$/, '')}${promotePrefix}${id.toString()}`, tls, timeoutMs, maxResponseBytes: maxPromoteResponseBytes });
  } catch (e) {
    return { final: false, error: (e as Error).message };
  }
  const body = r.body.toString('utf8');
  if (r.status === 412 && body.includes(etcdError('LearnerNotReady').message)) return { final: true, error: etcdError('LearnerNotReady') };
  if (r.status === 412 && body.includes(errMemberNotLearner)) return { final: true, error: etcdError('MemberNotLearner') };
  if (r.status === 404) return { final: true, error: etcdError('MemberNotFound') };
  if (r.status !== 200) return { final: false, error: `member promote: unknown error(${body})` };
  try {
    const members = membersFromJsonList(body).map((m) => ({ ID: m.id, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner }));
    return { final: true, members };
  } catch (e) {
    return { final: false, error: (e as Error).message };
  }
}

export interface PromoteForwarderOptions {
  /** The leader's peer URLs; undefined while no leader is known. */
  leaderPeerUrls(): readonly string[] | undefined;
  /** etcd's ReqTimeout: the forwarding gives up after it ("request timed out"). */
  requestTimeoutMs: number;
  tls?: PeerClientTls;
  log: Logger;
}

/** The follower's side: try the leader's peer URLs until one answers finally or time runs out. */
export class PromoteForwarder {
  constructor(private readonly o: PromoteForwarderOptions) {}

  async promote(id: bigint): Promise<PbMember[]> {
    const deadline = Date.now() + this.o.requestTimeoutMs;
    while (Date.now() < deadline) {
      for (const url of this.o.leaderPeerUrls() ?? []) {
        const r = await promoteAt(url, id, this.o.tls, Math.max(1, deadline - Date.now()));
        if (r.final) {
          if ('members' in r) return r.members;
          throw r.error;
        }
        this.o.log.debug('failed to forward member promote to leader', { url, error: r.error });
      }
      await new Promise((resolve) => setTimeout(resolve, retryPauseMs));
    }
    throw etcdError('Timeout');
  }
}
