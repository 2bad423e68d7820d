/**
 * etcd's Cluster service on one member (api/v3rpc/member.go over etcdserver's AddMember,
 * RemoveMember, UpdateMember, PromoteMember): each change is checked by the guards
 * (reconfig-guards.ts), proposed as a raft ConfChange with etcd's JSON context, and answered
 * once the applier has applied it, with the member list as of that entry.
 *
 * Beyond etcd, `--auto-promote-learners`: the leader promotes a learner as soon as etcd's
 * own readiness rule (isLearnerReady) says it is in sync, through the same path as
 * MemberPromote.
 */
import { ConfChangeType, etcdserverpb as pb, type ConfChange, type Member as PbMember, type ResponseHeader } from '../proto/index.js';
import { etcdError, EtcdError } from '../errors/index.js';
import { RaftError } from '../raft/index.js';
import type { Logger } from '../log/index.js';
import { idToHex, memberToJson, type Member, type Membership } from './membership.js';
import { memberId as newMemberId } from './ids.js';
import { learnerReadiness, mayAddMember, mayPromoteMember, mayRemoveMember, type ReconfigView } from './reconfig-guards.js';
import type { WaitRegistry } from './wait.js';

/** What the service needs of the raft loop (RaftNode satisfies it). */
export interface ClusterRaft {
  readonly leader: bigint;
  readonly isLeader: boolean;
  readonly term: number;
  /** The leader's view of every tracked member's match index; undefined when not leading. */
  progressMatch(): ReadonlyMap<bigint, number> | undefined;
  proposeConfChange(cc: ConfChange): void;
  /** A conf change raft holds unapplied (its index; 0 when none). */
  pendingConfChangeIndex(): number;
  waitApplied(index: number): Promise<void>;
  /** Runs `fn` between two Readies (raft's own applied index is then current). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

/** The peer transport's word on each peer (etcd's rafthttp Transporter.ActiveSince). */
export interface PeerActivity {
  /** When the connection to `id` became active (Date.now() ms); undefined when not connected. */
  activeSince(id: bigint): number | undefined;
}

/** A transport with no peers (a lone member before clustering): nobody is ever connected. */
export const noPeerActivity: PeerActivity = { activeSince: () => undefined };

export interface ClusterServiceDeps {
  memberId: bigint;
  membership: Membership;
  raft: ClusterRaft;
  /** Proposals in flight (shared with the applier, which answers them). */
  waits: WaitRegistry;
  nextRequestId(): bigint;
  peers: PeerActivity;
  /** --strict-reconfig-check. */
  strictReconfigCheck: boolean;
  /** How long a change may take to apply (etcd's ReqTimeout) before the caller gets "request timed out". */
  requestTimeoutMs: number;
  /** The member's response header (its revision is dropped: etcd's cluster header has none). */
  header(): ResponseHeader;
  log: Logger;
  /** Wall clock (ms): member ids of added members, and how long peers have been connected. */
  now?: () => number;
  /**
   * Promotes on the leader from a member that is not it (etcd forwards over the peer API's
   * /members/promote, promote-forward.ts); absent: such a promotion answers NotLeader.
   */
  forwardPromote?: (id: bigint) => Promise<PbMember[]>;
}

export class ClusterService {
  private readonly d: ClusterServiceDeps;
  private readonly now: () => number;
  /** A promotion the auto-promoter started and that has not been answered yet. */
  private autoPromoting = false;

  constructor(deps: ClusterServiceDeps) {
    this.d = deps;
    this.now = deps.now ?? Date.now;
  }

  /** Whether this member is a learner (etcd's IsLearner, from its own membership). */
  isLearner(): boolean {
    return this.d.membership.get(this.d.memberId)?.isLearner === true;
  }

  memberList(): pb.MemberListResponse {
    return pb.MemberListResponse.fromPartial({ header: this.header(), members: this.d.membership.toProto() });
  }

  async memberAdd(req: pb.MemberAddRequest): Promise<pb.MemberAddResponse> {
    const peerURLs = parsePeerUrls(req.peerURLs);
    if (peerURLs === undefined) throw etcdError('MemberBadURLs');
    // etcd's NewMember("", urls, "", now): no cluster token, the time in seconds.
    const member: Member = { id: newMemberId(peerURLs, '', new Date(this.now())), name: '', peerURLs, clientURLs: [], isLearner: req.isLearner };
    if (this.d.strictReconfigCheck) this.refuse(mayAddMember(this.view(), req.isLearner), 'rejecting member add request', { 'requested-member-add': memberToJson(member) });
    const members = await this.configure({
      type: req.isLearner ? ConfChangeType.ConfChangeAddLearnerNode : ConfChangeType.ConfChangeAddNode,
      nodeId: member.id, context: Buffer.from(memberToJson(member)),
    });
    return pb.MemberAddResponse.fromPartial({
      header: this.header(), member: { ID: member.id, peerURLs, isLearner: req.isLearner }, members,
    });
  }

  async memberRemove(req: pb.MemberRemoveRequest): Promise<pb.MemberRemoveResponse> {
    if (this.d.strictReconfigCheck) this.refuse(mayRemoveMember(this.view(), req.ID), 'rejecting member remove request', { 'requested-member-remove': idToHex(req.ID) });
    const members = await this.configure({ type: ConfChangeType.ConfChangeRemoveNode, nodeId: req.ID });
    return pb.MemberRemoveResponse.fromPartial({ header: this.header(), members });
  }

  async memberUpdate(req: pb.MemberUpdateRequest): Promise<pb.MemberUpdateResponse> {
    // etcd takes the URLs as given here (no parse), in a Member without name or client URLs.
    const member: Member = { id: req.ID, name: '', peerURLs: req.peerURLs, clientURLs: [], isLearner: false };
    const members = await this.configure({ type: ConfChangeType.ConfChangeUpdateNode, nodeId: req.ID, context: Buffer.from(memberToJson(member)) });
    return pb.MemberUpdateResponse.fromPartial({ header: this.header(), members });
  }

  async memberPromote(req: pb.MemberPromoteRequest): Promise<pb.MemberPromoteResponse> {
    const members = await this.promoteMember(req.ID);
    return pb.MemberPromoteResponse.fromPartial({ header: this.header(), members });
  }

  /**
   * etcd's PromoteMember: only the leader knows whether the learner is in sync, so a member
   * that finds it is not the leader forwards the promotion to the leader. Also what this
   * member's peer handler answers a forwarded promotion with.
   */
  async promoteMember(id: bigint): Promise<PbMember[]> {
    try {
      return await this.promote(id);
    } catch (e) {
      if (!(e instanceof EtcdError && e.kind === 'NotLeader') || this.d.forwardPromote === undefined) throw e;
      return this.d.forwardPromote(id);
    }
  }

  /**
   * --auto-promote-learners: on the leader, promotes one learner that is in sync (etcd's
   * isLearnerReady and, with strict reconfig, mayPromoteMember). Call it now and then
   * (every heartbeat); one promotion at a time.
   */
  maybeAutoPromote(): void {
    if (this.autoPromoting || !this.d.raft.isLeader) return;
    const learners = this.d.membership.list().filter((m) => m.isLearner);
    if (learners.length === 0) return;
    const match = this.d.raft.progressMatch();
    const learner = learners.find((m) => (match?.get(m.id) ?? 0) > 0 && learnerReadiness(match, this.d.memberId, m.id) === undefined);
    if (learner === undefined) return;
    this.autoPromoting = true;
    this.d.log.info('auto-promoting learner that is in sync with leader', { 'local-member-id': idToHex(this.d.memberId), 'learner-id': idToHex(learner.id) });
    this.promote(learner.id).then(
      () => undefined,
      (e: unknown) => {
        if (!(e instanceof EtcdError)) throw e;
        this.d.log.warn('failed to auto-promote learner', { 'learner-id': idToHex(learner.id), error: e.message });
      },
    ).finally(() => { this.autoPromoting = false; });
  }

  private async promote(id: bigint): Promise<PbMember[]> {
    const { raft, memberId } = this.d;
    const notReady = learnerReadiness(raft.progressMatch(), memberId, id);
    if (notReady) throw notReady;
    if (this.d.strictReconfigCheck) this.refuse(mayPromoteMember(this.view()), 'rejecting member promote request', { 'requested-member-remove-id': idToHex(id) });
    // etcd's ConfigChangeContext{Member{ID}, IsPromote: true}: peerURLs marshal as null.
    const context = Buffer.from(`{"id":${id.toString()},"peerURLs":null,"isPromote":true}`);
    return this.configure({ type: ConfChangeType.ConfChangeAddNode, nodeId: id, context });
  }

  private view(): ReconfigView {
    return { self: this.d.memberId, members: this.d.membership.list(), activeSince: (id) => this.d.peers.activeSince(id), nowMs: this.now() };
  }

  private refuse(err: EtcdError | undefined, msg: string, fields: Record<string, string>): void {
    if (err === undefined) return;
    this.d.log.warn(`${msg}; ${err.kind === 'Unhealthy' ? 'local member has not been connected to all peers, reconfigure breaks active quorum' : 'not enough healthy members'}`,
      { 'local-member-id': idToHex(this.d.memberId), ...fields, error: err.message });
    throw err;
  }

  /**
   * etcd's configure: proposes the change under a new request id and waits for the
   * applier's answer (the member list after it, or etcd's refusal). It first waits for a
   * conf change raft still holds unapplied: raft would turn this one into an empty entry
   * that answers nobody (etcd's caller then times out). Every wait ends at the request timeout.
   */
  private async configure(change: Omit<ConfChange, 'id' | 'context'> & { context?: Uint8Array }): Promise<PbMember[]> {
    const { raft } = this.d;
    // One change at a time: raft would turn this one into an empty entry while another is unapplied.
    const pending = raft.pendingConfChangeIndex();
    if (pending !== 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(etcdError('Timeout')), this.d.requestTimeoutMs); });
      try {
        await Promise.race([raft.waitApplied(pending).then(() => raft.exclusive(async () => undefined)), timedOut]);
      } finally {
        clearTimeout(timer);
      }
    }
    return this.proposeAndWait(change);
  }

  private proposeAndWait(change: Omit<ConfChange, 'id' | 'context'> & { context?: Uint8Array }): Promise<PbMember[]> {
    const { raft, waits } = this.d;
    if (raft.leader === 0n) return Promise.reject(etcdError('NoLeader'));
    const id = this.d.nextRequestId();
    const cc: ConfChange = { ...change, id };
    const bytes = cc.context?.length ?? 0;
    if (!waits.hasRoomFor(bytes)) return Promise.reject(etcdError('RequestTooManyRequests'));
    // A change raft never applies is answered by the registry's request-timeout sweep
    // (EtcdServer.expireProposals), with etcd's choice of timeout message, like any proposal.
    return new Promise<PbMember[]>((resolve, reject) => {
      const applied = (r: unknown): void => {
        this.d.log.info('applied a configuration change through raft', {
          'local-member-id': idToHex(this.d.memberId), 'raft-conf-change': ConfChangeType[cc.type] ?? String(cc.type), 'raft-conf-change-node-id': idToHex(cc.nodeId),
        });
        resolve(r as PbMember[]);
      };
      waits.register(id, bytes, { resolve: applied, reject });
      try {
        raft.proposeConfChange(cc);
      } catch (e) {
        waits.take(id);
        if (!(e instanceof RaftError && e.code === 'ProposalDropped')) throw e;
        reject(etcdError('NoLeader'));
        return;
      }
    });
  }

  /** etcd's ClusterServer header: cluster, member, raft term; no revision. */
  private header(): ResponseHeader {
    return { ...this.d.header(), revision: 0 };
  }
}

/**
 * etcd's types.NewURLs: each URL trimmed, scheme http/https/unix/unixs, a host:port, no
 * path; sorted. undefined when any is invalid or none is given.
 */
export function parsePeerUrls(raw: readonly string[]): string[] | undefined {
  if (raw.length === 0) return undefined;
  const urls: string[] = [];
  for (const text of raw) {
    const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(.*)$/.exec(text.trim());
    if (!m) return undefined;
    const scheme = m[1]!.toLowerCase();
    if (!['http', 'https', 'unix', 'unixs'].includes(scheme) || !hasHostPort(m[2]!) || m[3] !== '') return undefined;
    urls.push(`${scheme}://${m[2]!}${m[4]!}`);
  }
  return urls.sort();
}

/** Go's net.SplitHostPort succeeds: "host:port" or "[v6]:port" (the port may be empty). */
function hasHostPort(host: string): boolean {
  const at = host.lastIndexOf('@');
  const hp = at >= 0 ? host.slice(at + 1) : host;
  if (hp.startsWith('[')) return /^\[[^\]]*\]:[^:]*$/.test(hp);
  return /^[^:]*:[^:]*$/.test(hp);
}
