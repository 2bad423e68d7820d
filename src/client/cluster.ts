// Cluster membership: list, add (as voter or learner), remove, update peer URLs, promote.
import type { etcdserverpb as pb } from '../proto/index.js';
import type { Connection, CallOptions } from './connection.js';
import { Cluster } from './rpcs.js';

export class ClusterClient {
  constructor(private readonly conn: Connection) {}

  memberList(opts?: CallOptions): Promise<pb.MemberListResponse> {
    return this.conn.unary(Cluster.memberList, {}, opts);
  }

  memberAdd(peerURLs: string[], opts?: CallOptions & { learner?: boolean }): Promise<pb.MemberAddResponse> {
    return this.conn.unary(Cluster.memberAdd, { peerURLs, isLearner: opts?.learner ?? false }, opts);
  }

  memberRemove(id: bigint, opts?: CallOptions): Promise<pb.MemberRemoveResponse> {
    return this.conn.unary(Cluster.memberRemove, { ID: id }, opts);
  }

  memberUpdate(id: bigint, peerURLs: string[], opts?: CallOptions): Promise<pb.MemberUpdateResponse> {
    return this.conn.unary(Cluster.memberUpdate, { ID: id, peerURLs }, opts);
  }

  memberPromote(id: bigint, opts?: CallOptions): Promise<pb.MemberPromoteResponse> {
    return this.conn.unary(Cluster.memberPromote, { ID: id }, opts);
  }
}
