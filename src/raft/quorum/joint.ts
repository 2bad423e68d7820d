/**
 * A joint configuration: the incoming and the outgoing majority configurations, both of which
 * must agree while a membership change is in joint consensus. Outside joint consensus the
 * outgoing half is empty and, agreeing to everything, drops out of every decision.
 */
import type { NodeId } from '../../proto/index.js';
import { type AckedIndexer, MajorityConfig, type VoteResult } from './majority.js';

export class JointConfig {
  readonly incoming: MajorityConfig;
  readonly outgoing: MajorityConfig;

  constructor(incoming: Iterable<NodeId> = [], outgoing: Iterable<NodeId> = []) {
    this.incoming = new MajorityConfig(incoming);
    this.outgoing = new MajorityConfig(outgoing);
  }

  isJoint(): boolean {
    return this.outgoing.size > 0;
  }

  /** Every voter of either half. */
  ids(): Set<NodeId> {
    const s = new Set(this.incoming.ids);
    for (const id of this.outgoing.ids) s.add(id);
    return s;
  }

  has(id: NodeId): boolean {
    return this.incoming.has(id) || this.outgoing.has(id);
  }

  /** "(1 2 3)" or, in joint consensus, "(1 2 3)&&(1 2)" as etcd renders it. */
  toString(): string {
    return this.isJoint() ? `${this.incoming}&&${this.outgoing}` : `${this.incoming}`;
  }

  /** The largest index both halves have committed. */
  committedIndex(acked: AckedIndexer): number {
    return Math.min(this.incoming.committedIndex(acked), this.outgoing.committedIndex(acked));
  }

  /** Won when both halves win, lost when either loses, pending otherwise. */
  voteResult(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    const r1 = this.incoming.voteResult(votes);
    const r2 = this.outgoing.voteResult(votes);
    if (r1 === r2) return r1;
    if (r1 === 'lost' || r2 === 'lost') return 'lost';
    return 'pending';
  }
}
