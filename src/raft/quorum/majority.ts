/**
 * A majority configuration: a set of voters, deciding by simple majority. The committed index
 * is the highest index acknowledged by a majority; a vote is won with a majority of grants.
 * An empty configuration agrees to everything (committed index +Infinity, vote won), so that a
 * joint configuration whose outgoing half is empty behaves as its incoming half alone.
 */
import type { NodeId } from '../../proto/index.js';

export type VoteResult = 'pending' | 'lost' | 'won';

/** Looks up what a voter acknowledged; undefined when nothing is known of it. */
export type AckedIndexer = (id: NodeId) => number | undefined;

export class MajorityConfig {
  readonly ids: ReadonlySet<NodeId>;
  /** The same voters in an array: committedIndex() runs once per acknowledgement, without an iterator. */
  private readonly voters: readonly NodeId[];
  /** Reused by committedIndex() (one slot per voter) so the commit path does not allocate. */
  private readonly scratch: number[];

  constructor(ids: Iterable<NodeId> = []) {
    this.ids = new Set(ids);
    this.voters = [...this.ids];
    this.scratch = this.voters.map(() => 0);
  }

  get size(): number {
    return this.ids.size;
  }

  has(id: NodeId): boolean {
    return this.ids.has(id);
  }

  /** The voters in ascending order (as etcd's MajorityConfig.Slice). */
  slice(): NodeId[] {
    return [...this.ids].sort(cmpId);
  }

  /** "(1 2 3)", etcd's rendering; "()" when empty. */
  toString(): string {
    return `(${this.slice().join(' ')})`;
  }

  /**
   * The largest index that a majority has acknowledged; voters with nothing known count as 0.
   * +Infinity for the empty configuration.
   */
  committedIndex(acked: AckedIndexer): number {
    const voters = this.voters;
    const n = voters.length;
    if (n === 0) return Number.POSITIVE_INFINITY;
    if (n === 1) return acked(voters[0]) ?? 0;
    // Insertion sort, descending, in place: a handful of voters, and Array.prototype.sort
    // allocates a work array per call (~150 B per put on a single member, issue 14).
    const arr = this.scratch;
    for (let i = 0; i < n; i++) {
      const v = acked(voters[i]) ?? 0;
      let j = i;
      for (; j > 0 && arr[j - 1] < v; j--) arr[j] = arr[j - 1];
      arr[j] = v;
    }
    return arr[(n >> 1)];
  }

  /** Whether the votes so far (true = granted) win, lose, or leave the election open. */
  voteResult(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    const n = this.ids.size;
    if (n === 0) return 'won';
    let granted = 0;
    let missing = 0;
    for (const id of this.ids) {
      const v = votes.get(id);
      if (v === undefined) missing++;
      else if (v) granted++;
    }
    const q = (n >> 1) + 1;
    if (granted >= q) return 'won';
    if (granted + missing >= q) return 'pending';
    return 'lost';
  }
}

export function cmpId(a: NodeId, b: NodeId): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
