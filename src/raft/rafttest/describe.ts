/**
 * Human-readable renderings of raft's values, in the wording of etcd-io/raft's util.go
 * (DescribeEntry, DescribeMessage, DescribeReady...), so transcripts read like etcd's.
 */
import {
  ConfChangeTransition,
  ConfChangeType,
  type ConfChangeSingle,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type Snapshot,
} from '../../proto/index.js';
import { confChangeOfEntry } from '../raft.js';
import { stateName } from '../raft.js';
import type { Ready, SoftState } from '../rawnode.js';
import type { ReadState } from '../readindex.js';

const dec = new TextDecoder();

/** "v2 l3 r1 u4", etcd's ConfChangesToString. */
export function describeChanges(ccs: readonly ConfChangeSingle[]): string {
  const prefix: Record<ConfChangeType, string> = {
    [ConfChangeType.ConfChangeAddNode]: 'v',
    [ConfChangeType.ConfChangeAddLearnerNode]: 'l',
    [ConfChangeType.ConfChangeRemoveNode]: 'r',
    [ConfChangeType.ConfChangeUpdateNode]: 'u',
  };
  return ccs.map((c) => `${prefix[c.type]}${c.nodeId}`).join(' ');
}

function describeData(e: Entry): string {
  if (e.type === EntryType.EntryNormal) return JSON.stringify(dec.decode(e.data ?? new Uint8Array(0)));
  const cc = confChangeOfEntry(e);
  let s = describeChanges(cc.changes);
  // etcd prints only the changes; the transition matters to joint consensus, so show it.
  if (cc.transition !== ConfChangeTransition.ConfChangeTransitionAuto) s += ` ${ConfChangeTransition[cc.transition]}`;
  return s;
}

export function describeEntry(e: Entry): string {
  return `${e.term}/${e.index} ${EntryType[e.type]} ${describeData(e)}`;
}

export function describeSnapshot(s: Snapshot): string {
  const cs = s.metadata.confState;
  const ids = (a: bigint[]): string => `[${a.join(' ')}]`;
  let c = `Voters:${ids(cs.voters)} VotersOutgoing:${ids(cs.votersOutgoing)} Learners:${ids(cs.learners)} LearnersNext:${ids(cs.learnersNext)} AutoLeave:${cs.autoLeave}`;
  c = `{${c}}`;
  return `Index:${s.metadata.index} Term:${s.metadata.term} ConfState:${c}`;
}

export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${MessageType[m.type]} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.commit !== 0) s += ` Commit:${m.commit}`;
  if (m.entries.length > 0) {
    // ReadIndex carries its request context as the data of one entry.
    if (m.type === MessageType.MsgReadIndex || m.type === MessageType.MsgReadIndexResp) {
      s += ` Context:${JSON.stringify(dec.decode(m.entries[0].data ?? new Uint8Array(0)))}`;
    } else {
      s += ` Entries:[${m.entries.map(describeEntry).join(', ')}]`;
    }
  }
  if (m.snapshot && m.snapshot.metadata.index > 0) s += ` Snapshot: ${describeSnapshot(m.snapshot)}`;
  return s;
}

export function describeHardState(h: HardState): string {
  return `Term:${h.term}${h.vote !== 0n ? ` Vote:${h.vote}` : ''} Commit:${h.commit}`;
}

export function describeSoftState(s: SoftState): string {
  return `Lead:${s.lead} State:${stateName(s.raftState)}`;
}

function describeReadState(r: ReadState): string {
  return `{Index:${r.index} RequestCtx:${JSON.stringify(dec.decode(r.requestCtx))}}`;
}

/** etcd's DescribeReady, one line per item. */
export function describeReady(rd: Ready): string[] {
  const out: string[] = [];
  if (rd.softState) out.push(describeSoftState(rd.softState));
  if (rd.hardState) out.push(`HardState ${describeHardState(rd.hardState)}`);
  if (rd.readStates.length > 0) out.push(`ReadStates [${rd.readStates.map(describeReadState).join(' ')}]`);
  if (rd.entries.length > 0) out.push('Entries:', ...rd.entries.map(describeEntry));
  if (rd.snapshot && rd.snapshot.metadata.index > 0) out.push(`Snapshot ${describeSnapshot(rd.snapshot)}`);
  if (rd.committedEntries.length > 0) out.push('CommittedEntries:', ...rd.committedEntries.map(describeEntry));
  if (rd.messages.length > 0) out.push('Messages:', ...rd.messages.map(describeMessage));
  if (out.length === 0) return ['<empty Ready>'];
  return [`Ready MustSync=${rd.mustSync}:`, ...out];
}
