// Linearizability under faults: concurrent clients (test/linearizability-workload.ts) do puts,
// linearizable gets and compare-and-set txns on a few keys against random members of a
// 3-member cluster while members are killed (SIGKILL, then restarted), paused (SIGSTOP longer
// than the election timeout, then SIGCONT) and cut off or slowed through the peer proxy
// (test/net-proxy.ts). The recorded history must check as linearizable (src/testkit's checker,
// per key). A separate scenario holds linearizable reads at a paused old leader while the
// others elect a new one and take a write: on resume it must not answer with the old value
// (etcd #20418).
//
//   CONCORD_CHAOS_SECONDS=20   length of the fault schedule (default 20; longer runs print more)
//   CONCORD_CHAOS_SEED=n       replay a schedule (the seed is printed on every run)
//   CONCORD_CHAOS_TARGETS=etcd,concord   which clusters to test (default: the harness's selectedTargets())

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { rng, checkOperations, explain, kvModel, type KvOperation } from '../src/testkit/index.js';
import { startCluster, type Cluster } from './cluster-harness.js';
import { Workload, recordOp } from './linearizability-workload.js';
import { sleep, selectedTargets, type TargetName } from './harness.js';

/** Every scenario runs against a 3-member etcd and a 3-member Concord cluster (CONCORD_TESTS_TARGETS narrows it). */
const TARGETS = (process.env.CONCORD_CHAOS_TARGETS?.split(',').map((s) => s.trim()) ?? selectedTargets()) as TargetName[];
const SECONDS = Number(process.env.CONCORD_CHAOS_SECONDS ?? 20);
const SEED = Number(process.env.CONCORD_CHAOS_SEED ?? (Date.now() % 1_000_000_007));
/** etcd's defaults: pauses and partitions below are sized from them. */
const HEARTBEAT_MS = 100;
const ELECTION_MS = 1000;
const FLAGS = ['--heartbeat-interval', String(HEARTBEAT_MS), '--election-timeout', String(ELECTION_MS)];

const clusters: Cluster[] = [];
after(async () => { for (const c of clusters) await c.destroy(); });

function checkHistory(history: KvOperation[], what: string): void {
  const t0 = performance.now();
  const r = checkOperations(kvModel, history);
  console.log(`# ${what}: ${history.length} operations checked in ${(performance.now() - t0).toFixed(0)} ms: ${r.outcome}`);
  assert.equal(r.outcome, 'ok', `${what} (CONCORD_CHAOS_SEED=${SEED}):\n${explain(kvModel, r)}`);
}

/** Wait until the live members agree on a leader; false if they did not within timeoutMs. */
async function settle(c: Cluster, timeoutMs = 15_000): Promise<boolean> {
  try { await c.waitForLeader(timeoutMs); return true; } catch { return false; }
}

type Fault = (c: Cluster, rand: () => number, log: (s: string) => void) => Promise<void>;

const between = (rand: () => number, lo: number, hi: number) => Math.round(lo + rand() * (hi - lo));
/** The leader half of the time (when there is one), else any member. */
async function victim(c: Cluster, rand: () => number): Promise<number> {
  const leader = rand() < 0.5 ? await c.leaderIndex() : -1;
  return leader >= 0 ? leader : Math.floor(rand() * c.size);
}

const faults: Record<string, Fault> = {
  async kill(c, rand, log) {
    const i = await victim(c, rand);
    const down = between(rand, 200, 2000);
    log(`kill -9 m${i}, restart after ${down} ms`);
    await c.kill(i);
    await sleep(down);
    await c.restart(i);
  },
  async pause(c, rand, log) {
    const i = await victim(c, rand);
    const ms = between(rand, ELECTION_MS * 1.5, ELECTION_MS * 3);
    log(`SIGSTOP m${i} for ${ms} ms`);
    c.pause(i);
    await sleep(ms);
    c.resume(i);
  },
  async isolate(c, rand, log) {
    const i = await victim(c, rand);
    const how = rand() < 0.5 ? 'drop' : 'refuse';
    const ms = between(rand, ELECTION_MS, ELECTION_MS * 3);
    log(`isolate m${i} (${how}) for ${ms} ms`);
    c.net!.isolate(i, how);
    await sleep(ms);
    c.net!.heal();
  },
  async slow(c, rand, log) {
    const i = Math.floor(rand() * c.size);
    const delay = between(rand, 20, HEARTBEAT_MS * 3);
    const ms = between(rand, 1000, 3000);
    log(`delay every link out of m${i} by ${delay} ms for ${ms} ms`);
    for (let j = 0; j < c.size; j++) if (j !== i) c.net!.delay(i, j, delay);
    await sleep(ms);
    c.net!.heal();
  },
};

for (const target of TARGETS) {
  describe(`linearizability under faults (${target})`, () => {
    test(`clients on random members while members are killed, paused and partitioned: the history is linearizable`, async () => {
      console.log(`# chaos: target ${target}, ${SECONDS} s, CONCORD_CHAOS_SEED=${SEED}`);
      const rand = rng(SEED);
      const c = await startCluster({ target, size: 3, proxy: true, flags: FLAGS });
      clusters.push(c);
      const w = new Workload(c, { clients: 6, keys: ['lin/a', 'lin/b', 'lin/c'], rand: rng(SEED + 1), opTimeoutMs: 2 * ELECTION_MS });
      w.start();
      const names = Object.keys(faults);
      const deadline = Date.now() + SECONDS * 1000;
      let applied = 0;
      while (Date.now() < deadline) {
        await sleep(between(rand, 300, 1500));
        const name = names[Math.floor(rand() * names.length)]!;
        await faults[name]!(c, rand, (s) => console.log(`#   t+${(SECONDS * 1000 - (deadline - Date.now())) / 1000}s ${s}`));
        applied++;
        assert.ok(await settle(c), `the cluster recovers a leader after the fault (seed ${SEED})`);
      }
      await sleep(500);
      await w.stop();
      // Everything healed: one last read of every key through every member closes the history,
      // so a write lost at the end cannot hide.
      // A read that fails is tried again (a member just restarted may still be catching up).
      const unanswered: string[] = [];
      for (const m of c.members) m.closeRpc(); // fresh connections, none in reconnect backoff
      for (let m = 0; m < c.size; m++) for (const key of ['lin/a', 'lin/b', 'lin/c']) {
        const errors: string[] = [];
        for (let attempt = 0; attempt < 3; attempt++) {
          const out = await recordOp(w.history, c, m, 100 + m, { kind: 'get', key }, { timeoutMs: 10_000, onError: (e) => errors.push(String(e)) });
          if (out) break;
          await sleep(1000);
        }
        if (errors.length === 3) {
          unanswered.push(`m${m} ${key}: ${errors.join('; ')}`);
          console.log(`# m${m} did not answer; the end of its log:\n${c.member(m).log.slice(-3000)}`);
        }
      }
      console.log(`# ${applied} faults, ${w.answered} operations answered, ${w.failed} failed (writes among them: unknown outcome)`);
      for (const [what, n] of [...w.failures].sort((x, y) => y[1] - x[1]).slice(0, 12)) console.log(`#   ${n} x ${what}`);
      checkHistory(w.history, `chaos history (${target})`);
      assert.deepEqual(unanswered, [], `every member answers a linearizable read once healed (seed ${SEED})`);
      assert.ok(w.answered > 50, 'the clients made progress between faults');
    });

    test('a paused old leader never answers a linearizable read with the value from before the new leader (etcd #20418)', async () => {
      const c = await startCluster({ target, size: 3, flags: FLAGS });
      clusters.push(c);
      const history: KvOperation[] = [];
      const rounds = 3;
      for (let round = 0; round < rounds; round++) {
        const key = `stale/${round}`;
        const old = await c.waitForLeader();
        const others = [0, 1, 2].filter((i) => i !== old);
        assert.ok(await recordOp(history, c, old, 0, { kind: 'put', key, value: `old${round}` }, { timeoutMs: 10_000 }), 'the first write is acknowledged');
        // Its own read of the key before the pause: the old leader serves it (warms the connection).
        await recordOp(history, c, old, 1, { kind: 'get', key }, { timeoutMs: 10_000 });
        c.pause(old);
        // The others elect a leader of their own and take a newer write.
        let written = false;
        for (let n = 0; n < 60 && !written; n++) {
          written = (await recordOp(history, c, others[n % 2]!, 2, { kind: 'put', key, value: `new${round}` }, { timeoutMs: 2000 })) !== undefined;
        }
        assert.ok(written, 'the majority took the new write while the old leader was paused');
        // Reads sent to the paused old leader now sit in its socket; it sees them when resumed,
        // still believing it leads.
        const held = Array.from({ length: 4 }, (_, k) => recordOp(history, c, old, 10 + k, { kind: 'get', key }, { timeoutMs: 6000 }));
        await sleep(200);
        c.resume(old);
        // And reads sent right after the resume, before it heard of the new term.
        const after = Array.from({ length: 4 }, (_, k) => recordOp(history, c, old, 20 + k, { kind: 'get', key }, { timeoutMs: 6000 }));
        const answers = await Promise.all([...held, ...after]);
        for (const a of answers) {
          if (a?.kind === 'get') assert.notEqual(a.value, `old${round}`, `round ${round}: the resumed old leader answered a stale read`);
        }
        console.log(`# round ${round}: ${answers.filter((a) => a !== undefined).length}/8 reads at the resumed old leader answered, none stale`);
        assert.ok(await settle(c));
      }
      checkHistory(history, `paused-leader history (${target})`);
    });

    test('control: the recorder and checker catch a stale read (a serializable read at a partitioned member)', async () => {
      const c = await startCluster({ target, size: 3, proxy: true, flags: FLAGS });
      clusters.push(c);
      const history: KvOperation[] = [];
      const leader = await c.waitForLeader();
      const cut = [0, 1, 2].find((i) => i !== leader)!;
      assert.ok(await recordOp(history, c, leader, 0, { kind: 'put', key: 'ctl', value: 'before' }, { timeoutMs: 10_000 }));
      for (let n = 0; n < 100; n++) {
        const r = await recordOp([], c, cut, 1, { kind: 'get', key: 'ctl' }, { timeoutMs: 2000, serializable: true });
        if (r?.kind === 'get' && r.value === 'before') break;
        await sleep(50);
      }
      c.net!.isolate(cut);
      assert.ok(await recordOp(history, c, leader, 0, { kind: 'put', key: 'ctl', value: 'after' }, { timeoutMs: 10_000 }), 'the majority takes the write');
      const stale = await recordOp(history, c, cut, 1, { kind: 'get', key: 'ctl' }, { timeoutMs: 2000, serializable: true });
      assert.deepEqual(stale, { kind: 'get', value: 'before' }, 'the cut-off member serves its old value locally');
      const r = checkOperations(kvModel, history);
      assert.equal(r.outcome, 'illegal', explain(kvModel, r));
      // The same read, linearizable, is refused or times out at the cut-off member: nothing recorded.
      assert.equal(await recordOp(history, c, cut, 1, { kind: 'get', key: 'ctl' }, { timeoutMs: 2000 }), undefined);
      c.net!.heal();
    });
  });
}
