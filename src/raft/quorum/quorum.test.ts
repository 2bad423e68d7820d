import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JointConfig } from './joint.js';
import { MajorityConfig } from './majority.js';

// etcd-io/raft's quorum/testdata/{majority,joint}_commit.txt, one case a line: the configs,
// the acknowledged indexes of the sorted union of voters (_ = unknown), and the committed index.
const COMMIT_CASES = `
cfg=() idx=() -> inf
cfg=(1) idx=(_) -> 0
cfg=(1) idx=(12) -> 12
cfg=(1,2) idx=(_,_) -> 0
cfg=(1,2) idx=(12,_) -> 0
cfg=(1,2) idx=(12,5) -> 5
cfg=(1,2,3) idx=(_,_,_) -> 0
cfg=(1,2,3) idx=(12,_,_) -> 0
cfg=(1,2,3) idx=(12,5,_) -> 5
cfg=(1,2,3) idx=(12,5,6) -> 6
cfg=(1,2,3) idx=(12,5,4) -> 5
cfg=(1,2,3) idx=(5,5,_) -> 5
cfg=(1,2,3) idx=(5,5,12) -> 5
cfg=(1,2,3) idx=(100,101,103) -> 101
cfg=(1,2,3,4,5) idx=(101,104,103,103,_) -> 103
cfg=(1,2,3,4,5) idx=(101,102,103,103,_) -> 102
cfg=(1,2,3) cfgj=() idx=(100,101,99) -> 100
cfg=(1) cfgj=(2) idx=(_,_) -> 0
cfg=(1) cfgj=(2) idx=(100,_) -> 0
cfg=(1) cfgj=(2) idx=(13,100) -> 13
cfg=(1) cfgj=(1) idx=(_) -> 0
cfg=(1) cfgj=(1) idx=(100) -> 100
cfg=(1,3) cfgj=(2) idx=(_,_,_) -> 0
cfg=(1,3) cfgj=(2) idx=(100,_,_) -> 0
cfg=(1,3) cfgj=(2) idx=(100,_,50) -> 0
cfg=(1,3) cfgj=(2) idx=(100,45,50) -> 45
cfg=(1,2) cfgj=(2) idx=(_,_) -> 0
cfg=(1,2) cfgj=(2) idx=(100,_) -> 0
cfg=(1,2) cfgj=(2) idx=(_,100) -> 0
cfg=(1,2) cfgj=(2) idx=(50,100) -> 50
cfg=(1,2) cfgj=(2) idx=(100,50) -> 50
cfg=(1,2) cfgj=(3,4) idx=(50,_,_,_) -> 0
cfg=(1,2) cfgj=(3,4) idx=(50,_,49,_) -> 0
cfg=(1,2) cfgj=(3,4) idx=(50,48,49,_) -> 0
cfg=(1,2) cfgj=(3,4) idx=(50,48,49,47) -> 47
cfg=(1,2) cfgj=(2,3) idx=(_,_,_) -> 0
cfg=(1,2) cfgj=(2,3) idx=(100,_,_) -> 0
cfg=(1,2) cfgj=(2,3) idx=(_,100,_) -> 0
cfg=(1,2) cfgj=(2,3) idx=(_,100,99) -> 0
cfg=(1,2) cfgj=(2,3) idx=(101,100,99) -> 99
cfg=(1,2) cfgj=(1,2) idx=(_,_) -> 0
cfg=(1,2) cfgj=(1,2) idx=(_,40) -> 0
cfg=(1,2) cfgj=(1,2) idx=(41,40) -> 40
cfg=(1,2,3) cfgj=(4,5,6) idx=(_,_,_,_,_,_) -> 0
cfg=(1,2,3) cfgj=(4,5,6) idx=(100,_,_,_,_,_) -> 0
cfg=(1,2,3) cfgj=(4,5,6) idx=(100,_,_,90,_,_) -> 0
cfg=(1,2,3) cfgj=(4,5,6) idx=(100,99,_,_,_,_) -> 0
cfg=(1,2,3) cfgj=(4,5,6) idx=(_,99,90,97,95,_) -> 90
cfg=(1,2,3) cfgj=(4,5,6) idx=(92,99,90,97,95,_) -> 92
cfg=(1,2,3) cfgj=(4,5,6) idx=(92,99,90,97,95,77) -> 92
cfg=(1,2,3) cfgj=(1,4,5) idx=(_,_,_,_,_) -> 0
cfg=(1,2,3) cfgj=(1,4,5) idx=(100,_,_,_,_) -> 0
cfg=(1,2,3) cfgj=(1,4,5) idx=(100,101,_,_,_) -> 0
cfg=(1,2,3) cfgj=(1,4,5) idx=(100,101,100,_,_) -> 0
cfg=(1,2,3) cfgj=(1,4,5) idx=(_,100,_,99,98) -> 0
cfg=(1,2,3) cfgj=(1,4,5) idx=(_,100,99,99,98) -> 98
cfg=(1,2,3) cfgj=(1,4,5) idx=(1,100,99,99,98) -> 98
cfg=(1,2,3) cfgj=(1,4,5) idx=(100,100,99,99,98) -> 99
cfg=(1,2,3) cfgj=(2,3,4) idx=(_,_,_,_) -> 0
cfg=(1,2,3) cfgj=(2,3,4) idx=(_,100,99,_) -> 99
cfg=(1,2,3) cfgj=(2,3,4) idx=(98,100,99,_) -> 99
cfg=(1,2,3) cfgj=(2,3,4) idx=(100,100,99,_) -> 99
cfg=(1,2,3) cfgj=(2,3,4) idx=(100,100,99,98) -> 99
cfg=(1,2,3) cfgj=(2,3,4) idx=(100,_,_,101) -> 0
cfg=(1,2,3) cfgj=(2,3,4) idx=(100,99,_,101) -> 99
cfg=(1,2,3) cfgj=(1,2,3) idx=(50,45,_) -> 45
`;

// Vote cases in the spirit of etcd-io/raft's majority_vote.txt / joint_vote.txt: votes of the
// sorted union of voters (y granted, n rejected, _ not yet).
const VOTE_CASES = `
cfg=() votes=() -> won
cfg=(1) votes=(_) -> pending
cfg=(1) votes=(n) -> lost
cfg=(1) votes=(y) -> won
cfg=(1,2) votes=(y,_) -> pending
cfg=(1,2) votes=(y,n) -> lost
cfg=(1,2) votes=(y,y) -> won
cfg=(1,2,3) votes=(y,n,_) -> pending
cfg=(1,2,3) votes=(y,n,n) -> lost
cfg=(1,2,3) votes=(y,_,y) -> won
cfg=(1,2,3,4) votes=(y,y,n,_) -> pending
cfg=(1,2,3,4) votes=(y,y,n,n) -> lost
cfg=(1,2,3,4) votes=(y,y,_,y) -> won
cfg=(1) cfgj=(1) votes=(y) -> won
cfg=(1) cfgj=(2) votes=(y,_) -> pending
cfg=(1) cfgj=(2) votes=(y,n) -> lost
cfg=(1) cfgj=(2) votes=(y,y) -> won
cfg=(1,2,3) cfgj=(1) votes=(n,y,y) -> lost
cfg=(1,2,3) cfgj=(1) votes=(y,y,_) -> won
cfg=(1,2,3) cfgj=(4,5,6) votes=(y,y,_,y,_,_) -> pending
cfg=(1,2,3) cfgj=(4,5,6) votes=(y,y,_,y,y,_) -> won
cfg=(1,2,3) cfgj=(4,5,6) votes=(y,y,_,n,n,_) -> lost
cfg=(1,2,3) cfgj=(2,3,4) votes=(n,y,y,_) -> won
`;

interface Case {
  cfg: bigint[];
  cfgj?: bigint[];
  values: string[];
  want: string;
  line: string;
}

function ids(s: string): bigint[] {
  return s === '' ? [] : s.split(',').map((x) => BigInt(x.trim()));
}

function parse(table: string, field: string): Case[] {
  const re = new RegExp(`^cfg=\\(([^)]*)\\)(?: cfgj=\\(([^)]*)\\))? ${field}=\\(([^)]*)\\) -> (\\S+)$`);
  return table.trim().split('\n').map((line) => {
    const m = re.exec(line);
    assert.ok(m, `bad case ${line}`);
    return { cfg: ids(m[1]), cfgj: m[2] === undefined ? undefined : ids(m[2]), values: m[3] === '' ? [] : m[3].split(','), want: m[4], line };
  });
}

/** The sorted union of voters, which the value columns follow. */
function union(c: Case): bigint[] {
  return [...new Set([...c.cfg, ...(c.cfgj ?? [])])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

test('committed index: etcd-io/raft majority and joint cases', () => {
  for (const c of parse(COMMIT_CASES, 'idx')) {
    const acked = new Map<bigint, number>();
    union(c).forEach((id, i) => {
      if (c.values[i] !== '_') acked.set(id, Number(c.values[i]));
    });
    const want = c.want === 'inf' ? Number.POSITIVE_INFINITY : Number(c.want);
    const joint = new JointConfig(c.cfg, c.cfgj ?? []);
    assert.equal(joint.committedIndex((id) => acked.get(id)), want, c.line);
    if (c.cfgj === undefined) {
      // A majority config behaves the same alone and joint with the empty config.
      assert.equal(new MajorityConfig(c.cfg).committedIndex((id) => acked.get(id)), want, c.line);
    }
  }
});

test('vote result: majority and joint cases', () => {
  for (const c of parse(VOTE_CASES, 'votes')) {
    const votes = new Map<bigint, boolean>();
    union(c).forEach((id, i) => {
      if (c.values[i] !== '_') votes.set(id, c.values[i] === 'y');
    });
    assert.equal(new JointConfig(c.cfg, c.cfgj ?? []).voteResult(votes), c.want, c.line);
    if (c.cfgj === undefined) assert.equal(new MajorityConfig(c.cfg).voteResult(votes), c.want, c.line);
  }
});

test('a joint config renders as etcd does', () => {
  assert.equal(String(new JointConfig([3n, 1n, 2n])), '(1 2 3)');
  assert.equal(String(new JointConfig([1n, 2n], [1n])), '(1 2)&&(1)');
});
