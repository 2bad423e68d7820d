/**
 * An interaction environment in the shape of etcd-io/raft's rafttest.InteractionEnv: several
 * RawNodes over MemoryStorage, a message pool that the script delivers explicitly, and a
 * transcript of everything that happens (each Ready, each delivery). Scripts are
 * datadriven files (see datadriven.ts); the commands are the methods of `handle`.
 *
 * Output is deterministic: raft's randomness is a constant (the randomized election timeout
 * equals electionTick, so tick-election always campaigns), and nothing depends on time.
 *
 * Raft itself does not log (it is pure), so the INFO lines are the env's: role and term
 * changes after each command or delivery, and each configuration switch. `log-level none`
 * hides them; Readys and deliveries are always printed (as in etcd-io/raft's env).
 * `compact ID I` snapshots the state machine at I with the node's current ConfState: compact
 * only at or after the last applied conf change.
 */
import {
  type ConfChange,
  type ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
  type ConfChangeV2,
  type ConfState,
  EntryType,
  type Message,
  type Snapshot,
} from '../../proto/index.js';
import { ConfChangeError } from '../confchange/changer.js';
import { RaftError } from '../errors.js';
import { ProgressState } from '../progress.js';
import { StateType, confChangeOfEntry, stateName } from '../raft.js';
import { RawNode, SnapshotStatus } from '../rawnode.js';
import type { ReadState } from '../readindex.js';
import { MemoryStorage } from '../storage.js';
import { describeConfig } from '../tracker.js';
import { describeEntry, describeMessage, describeReady } from './describe.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface Command {
  name: string;
  /** Positional arguments (those without '='). */
  args: string[];
  /** key=value arguments. */
  kv: Map<string, string>;
  /** Lines after the command line (e.g. the changes of propose-conf-change). */
  input: string[];
}

/**
 * MemoryStorage whose snapshot() is the node's current applied state, as etcd-io/raft's env
 * does: a leader catching a follower up sends what it has applied, not a stale snapshot.
 */
class EnvStorage extends MemoryStorage {
  current: (() => Snapshot) | undefined;

  override snapshot(): Snapshot {
    return this.current ? this.current() : super.snapshot();
  }
}

interface EnvNode {
  id: bigint;
  rn: RawNode;
  storage: EnvStorage;
  confState: ConfState;
  appliedIndex: number;
  /** Every ReadState the node's Readys carried, in order. */
  readStates: ReadState[];
  /** The applied normal entries (index and data): the state machine. */
  applied: Array<[number, string]>;
}

type LogLevel = 'none' | 'info';

/** As etcd's raft logs a role change ("became pre-candidate at term 1"). */
const ROLE_WORDS: Record<StateType, string> = {
  [StateType.Follower]: 'follower',
  [StateType.Candidate]: 'candidate',
  [StateType.Leader]: 'leader',
  [StateType.PreCandidate]: 'pre-candidate',
};

/** Bound on process/deliver rounds in one stabilize: a script that does not settle is a bug. */
const MAX_STABILIZE_ROUNDS = 1000;

export class InteractionEnv {
  private readonly nodes: EnvNode[] = [];
  /** Messages sent and not yet delivered, in send order. */
  private messages: Message[] = [];
  private out: string[] = [];
  private logLevel: LogLevel = 'info';

  /** The ReadStates node `id` has received so far (for tests that assert on them). */
  readStatesOf(id: bigint): readonly ReadState[] {
    return this.nodeById(id).readStates;
  }

  /** Node `id`'s RawNode (for tests that assert on raft's state). */
  rawNode(id: bigint): RawNode {
    return this.nodeById(id).rn;
  }

  /** Runs one command; returns its transcript. */
  run(cmd: Command): string {
    this.out = [];
    const handler = this.handlers[cmd.name];
    if (!handler) throw new Error(`unknown command ${cmd.name}`);
    try {
      handler(cmd);
    } catch (e) {
      // Refusals the API documents are part of the transcript; anything else is a bug.
      if (e instanceof RaftError || e instanceof ConfChangeError) this.out.push(`error: ${e.message}`);
      else throw e;
    }
    return this.out.join('\n');
  }

  private readonly handlers: Record<string, (c: Command) => void> = {
    'add-nodes': (c) => this.addNodes(c),
    campaign: (c) => this.withLog(this.node(c), (n) => n.rn.campaign()),
    propose: (c) => this.withLog(this.node(c), (n) => n.rn.propose(enc.encode(c.args[1] ?? ''))),
    'propose-conf-change': (c) => this.withLog(this.node(c), (n) => n.rn.proposeConfChange(parseConfChange(c))),
    'read-index': (c) => this.withLog(this.node(c), (n) => n.rn.readIndex(enc.encode(c.args[1] ?? ''))),
    'transfer-leadership': (c) =>
      this.withLog(this.nodeById(BigInt(c.kv.get('from')!)), (n) => n.rn.transferLeader(BigInt(c.kv.get('to')!))),
    'tick-heartbeat': (c) => this.ticks(c, (n) => n.rn.raft.heartbeatTimeout),
    'tick-election': (c) => this.ticks(c, (n) => n.rn.raft.electionTimeout),
    'process-ready': (c) => {
      for (const n of this.selected(c)) this.processReady(n);
    },
    'deliver-msgs': (c) => this.deliverMsgs(c),
    stabilize: (c) => this.stabilize(this.selected(c)),
    'raft-state': () => this.raftState(),
    'raft-log': (c) => this.raftLog(this.node(c)),
    status: (c) => this.status(this.node(c)),
    compact: (c) => this.compact(this.node(c), Number(c.args[1])),
    'report-unreachable': (c) => this.node(c).rn.reportUnreachable(BigInt(c.args[1])),
    'report-snapshot': (c) =>
      this.node(c).rn.reportSnapshot(BigInt(c.args[1]), c.kv.get('status') === 'failure' ? SnapshotStatus.Failure : SnapshotStatus.Finish),
    'log-level': (c) => {
      const lvl = c.args[0];
      if (lvl !== 'none' && lvl !== 'info') throw new Error(`log-level: unknown level ${lvl}`);
      this.logLevel = lvl;
    },
  };

  // ------------------------------------------------------------------------------------------

  /**
   * add-nodes N [voters=(1,2,3)] [learners=(4)] [index=I] [prevote=true] [checkquorum=true]
   * [max-uncommitted-size=B]: adds N nodes; with voters, each starts from a snapshot at index I
   * (term 1) holding that configuration, as etcd-io/raft's env does; without, from nothing
   * (a node to be added to the group later).
   */
  private addNodes(c: Command): void {
    const count = Number(c.args[0]);
    const voters = parseIds(c.kv.get('voters'));
    const learners = parseIds(c.kv.get('learners'));
    const index = Number(c.kv.get('index') ?? '0');
    for (let i = 0; i < count; i++) {
      const id = BigInt(this.nodes.length + 1);
      const storage = new EnvStorage();
      const confState: ConfState = { voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false };
      if (voters.length > 0) {
        storage.applySnapshot({ data: new Uint8Array(0), metadata: { index, term: 1, confState } });
      }
      const rn = new RawNode({
        id,
        electionTick: 10,
        heartbeatTick: 1,
        storage,
        applied: index,
        maxSizePerMsg: 1 << 20,
        maxInflightMsgs: Number(c.kv.get('max-inflight') ?? '256'),
        checkQuorum: c.kv.get('checkquorum') === 'true',
        preVote: c.kv.get('prevote') === 'true',
        random: () => 0,
        maxUncommittedEntriesSize: Number(c.kv.get('max-uncommitted-size') ?? '0'),
      });
      const node: EnvNode = { id, rn, storage, confState, appliedIndex: index, readStates: [], applied: [] };
      storage.current = () => this.appliedSnapshot(node);
      this.nodes.push(node);
      this.log(`INFO ${id} switched to configuration ${describeConfig(rn.raft.trk.config)}`);
      this.log(`INFO ${id} became follower at term ${rn.raft.term}`);
      this.log(`INFO newRaft ${id} [peers: [${voters.join(',')}], term: ${rn.raft.term}, commit: ${rn.raft.log.committed}, applied: ${rn.raft.log.applied}, lastindex: ${rn.raft.log.lastIndex()}, lastterm: ${rn.raft.log.lastTerm()}]`);
    }
  }

  private node(c: Command): EnvNode {
    return this.nodeById(BigInt(c.args[0]));
  }

  private nodeById(id: bigint): EnvNode {
    const n = this.nodes[Number(id) - 1];
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** The nodes a command names, or all of them. */
  private selected(c: Command): EnvNode[] {
    return c.args.length === 0 ? this.nodes : c.args.map((a) => this.nodeById(BigInt(a)));
  }

  private log(line: string): void {
    if (this.logLevel !== 'none') this.out.push(line);
  }

  /** Runs f against n and logs a change of role or term, as raft's own log lines would. */
  private withLog(n: EnvNode, f: (n: EnvNode) => void): void {
    const r = n.rn.raft;
    const before = { state: r.state, term: r.term };
    try {
      f(n);
    } finally {
      if (r.state !== before.state || r.term !== before.term) {
        this.log(`INFO ${n.id} became ${ROLE_WORDS[r.state]} at term ${r.term}`);
      }
    }
  }

  private ticks(c: Command, count: (n: EnvNode) => number): void {
    const n = this.node(c);
    const k = count(n);
    this.withLog(n, () => {
      for (let i = 0; i < k; i++) n.rn.tick();
    });
  }

  /** Persists, applies and advances one Ready of n; its messages join the pool. */
  private processReady(n: EnvNode): void {
    const rn = n.rn;
    if (!rn.hasReady()) return;
    const rd = rn.ready();
    this.out.push(`> ${n.id} handling Ready`);
    for (const l of describeReady(rd)) this.out.push(`  ${l}`);
    if (rd.snapshot) {
      n.storage.applySnapshot(rd.snapshot);
      n.confState = rd.snapshot.metadata.confState;
      n.appliedIndex = rd.snapshot.metadata.index;
      n.applied = JSON.parse(dec.decode(rd.snapshot.data ?? enc.encode('[]')) || '[]') as Array<[number, string]>;
    }
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    n.readStates.push(...rd.readStates);
    n.storage.append(rd.entries);
    for (const e of rd.committedEntries) {
      n.appliedIndex = e.index;
      if (e.type === EntryType.EntryNormal) {
        if (e.data && e.data.length > 0) n.applied.push([e.index, dec.decode(e.data)]);
        continue;
      }
      n.confState = rn.applyConfChange(confChangeOfEntry(e));
      this.log(`  INFO ${n.id} switched to configuration ${describeConfig(rn.raft.trk.config)}`);
    }
    this.messages.push(...rd.messages);
    this.withLog(n, () => rn.advance(rd));
  }

  /** deliver-msgs [drop=(ids)] [ids...]: delivers (or drops) what is addressed to the ids. */
  private deliverMsgs(c: Command): void {
    const drop = new Set(parseIds(c.kv.get('drop')));
    if (drop.size > 0) {
      this.messages = this.messages.filter((m) => {
        if (!drop.has(m.to)) return true;
        this.out.push(`dropped: ${describeMessage(m)}`);
        return false;
      });
    }
    for (const n of this.selected(c)) if (!drop.has(n.id)) this.deliverTo(n);
  }

  /** Delivers every message addressed to n; true if there were any. */
  private deliverTo(n: EnvNode): boolean {
    const mine = this.messages.filter((m) => m.to === n.id);
    if (mine.length === 0) return false;
    this.messages = this.messages.filter((m) => m.to !== n.id);
    this.out.push(`> ${n.id} receiving messages`);
    for (const m of mine) {
      this.out.push(`  ${describeMessage(m)}`);
      this.withLog(n, () => {
        try {
          n.rn.step(m);
        } catch (e) {
          if (!(e instanceof RaftError)) throw e;
          this.out.push(`  INFO ${n.id} step error: ${e.message}`);
        }
      });
    }
    return true;
  }

  private stabilize(nodes: EnvNode[]): void {
    for (let round = 0; round < MAX_STABILIZE_ROUNDS; round++) {
      let done = true;
      for (const n of nodes) {
        if (n.rn.hasReady()) {
          this.processReady(n);
          done = false;
        }
      }
      for (const n of nodes) if (this.deliverTo(n)) done = false;
      if (done) return;
    }
    throw new Error('stabilize did not settle');
  }

  private raftState(): void {
    for (const n of this.nodes) {
      const r = n.rn.raft;
      const role = r.trk.isVoter(n.id) ? 'Voter' : r.trk.config.learners.has(n.id) ? 'Learner' : 'Non-Voter';
      this.out.push(`${n.id}: ${stateName(r.state)} (${role}) Term:${r.term} Lead:${r.lead}`);
    }
  }

  private raftLog(n: EnvNode): void {
    const s = n.storage;
    if (s.lastIndex() < s.firstIndex()) {
      this.out.push(`log is empty: first index=${s.firstIndex()}, last index=${s.lastIndex()}`);
      return;
    }
    for (const e of s.entries(s.firstIndex(), s.lastIndex() + 1, Number.MAX_SAFE_INTEGER)) this.out.push(describeEntry(e));
  }

  /** status ID: the leader's view of every member, etcd's Progress.String. */
  private status(n: EnvNode): void {
    const st = n.rn.status();
    if (!st.progress) {
      this.out.push(`${n.id} is not the leader (${stateName(st.softState.raftState)})`);
      return;
    }
    for (const [id, p] of [...st.progress].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      let s = `${id}: State${ProgressState[p.state]} match=${p.match} next=${p.next}`;
      if (p.isLearner) s += ' learner';
      if (p.paused) s += ' paused';
      const pr = n.rn.raft.trk.progress.get(id)!;
      if (pr.pendingSnapshot > 0) s += ` pendingSnap=${pr.pendingSnapshot}`;
      if (!p.recentActive) s += ' inactive';
      if (p.inflight > 0) s += ` inflight=${p.inflight}${pr.inflights.full() ? '[full]' : ''}`;
      this.out.push(s);
    }
  }

  private appliedSnapshot(n: EnvNode): Snapshot {
    const index = n.appliedIndex;
    const state = n.applied.filter(([i]) => i <= index);
    return { data: enc.encode(JSON.stringify(state)), metadata: { index, term: n.storage.term(index), confState: n.confState } };
  }

  /** compact ID INDEX: snapshots the state machine at INDEX (applied) and drops the log before. */
  private compact(n: EnvNode, index: number): void {
    const state = n.applied.filter(([i]) => i <= index);
    n.storage.createSnapshot(index, n.confState, enc.encode(JSON.stringify(state)));
    n.storage.compact(index);
    this.raftLog(n);
  }
}

function parseIds(s: string | undefined): bigint[] {
  if (!s) return [];
  const inner = s.replace(/^\(|\)$/g, '').trim();
  return inner === '' ? [] : inner.split(',').map((x) => BigInt(x.trim()));
}

/**
 * propose-conf-change ID [v1=true] [transition=auto|implicit|explicit] with the changes on the
 * next line ("v2 l3 r1 u4"); v1 proposes a ConfChange (exactly one change).
 */
function parseConfChange(c: Command): ConfChange | ConfChangeV2 {
  const changes: ConfChangeSingle[] = c.input.join(' ').split(/\s+/).filter(Boolean).map((tok) => {
    const type = { v: ConfChangeType.ConfChangeAddNode, l: ConfChangeType.ConfChangeAddLearnerNode, r: ConfChangeType.ConfChangeRemoveNode, u: ConfChangeType.ConfChangeUpdateNode }[tok[0]];
    if (type === undefined) throw new Error(`bad change ${tok}`);
    return { type, nodeId: BigInt(tok.slice(1)) };
  });
  if (c.kv.get('v1') === 'true') {
    if (changes.length !== 1) throw new Error('v1 conf change needs exactly one change');
    return { type: changes[0].type, nodeId: changes[0].nodeId, id: 0n };
  }
  const transitions: Record<string, ConfChangeTransition> = {
    auto: ConfChangeTransition.ConfChangeTransitionAuto,
    implicit: ConfChangeTransition.ConfChangeTransitionJointImplicit,
    explicit: ConfChangeTransition.ConfChangeTransitionJointExplicit,
  };
  const transition = transitions[c.kv.get('transition') ?? 'auto'];
  if (transition === undefined) throw new Error(`bad transition ${c.kv.get('transition')}`);
  return { transition, changes };
}

