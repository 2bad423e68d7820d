// Snapshot catch-up: a follower stopped while the others write past --snapshot-count and
// past the 5,000 entries a leader keeps behind its snapshot rejoins; the leader sends it a
// MsgSnap followed by its backend as an etcd bbolt file, which the follower saves as
// member/snap/<index %016x>.snap.db, then installs (its backend swapped for the leader's)
// before raft carries on. Concord with Concord, and across Concord and etcd both ways: etcd's
// snapshot data is its v2 store JSON, which a Concord leader must send and a Concord
// follower must read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, b, prefixEnd, runConcord, runEtcd, type EtcdClient, type TargetName } from './harness.js';
import { startCluster, type Cluster, type ClusterMember } from './cluster-members.js';

/** Past the leader's kept tail (etcd's SnapshotCatchUpEntries, 5,000) and several snapshots. */
const writes = 5300;
/** Written after the install: the follower applies them and snapshots past the installed index. */
const moreWrites = 250;

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function putMany(client: EtcdClient, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, to - i) }, (_, j) =>
      client.put({ key: b(`snap/${String(i + j).padStart(6, '0')}`), value: b('x'.repeat(100)) })));
  }
}

/** Writes through the leader (retried once on a leader change, which the writes' keys make idempotent). */
async function writeThroughLeader(c: Cluster, from: number, to: number): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const client = (await c.leader(60_000)).client();
    try {
      await putMany(client, from, to);
      return;
    } catch (e) {
      if (attempt >= 2) throw e;
    } finally {
      client.close();
    }
  }
}

function errorLine(m: ClusterMember): string {
  return m.log.split('\n').filter((l) => /"level":"(error|panic|fatal)"/.test(l)).pop() ?? m.log.slice(-2000);
}

/** Waits until `m` serves `count` keys under snap/ (serializable: from its own state). */
async function untilServes(m: ClusterMember, count: number): Promise<void> {
  const cl = m.client();
  try {
    await until(`${m.name} to serve ${count} keys`, async () => {
      if (!m.running) throw new Error(`${m.name} stopped: ${errorLine(m)}`);
      const got = await cl.range({ key: b('snap/'), rangeEnd: prefixEnd('snap/'), countOnly: true, serializable: true }).catch(() => undefined);
      return got !== undefined && Number(got.count) === count ? true : undefined;
    });
  } finally {
    cl.close();
  }
}

/**
 * Serializable reads against `m` until stop(): every answer is a count or a connection
 * error while the member is down or starting; anything else (a read that hit the backend
 * while its file was swapped) is collected.
 */
function readLoop(m: ClusterMember): { stop(): Promise<string[]> } {
  const failures: string[] = [];
  let stopped = false;
  const cl = m.client();
  const running = (async () => {
    while (!stopped) {
      try {
        await cl.range({ key: b('snap/'), rangeEnd: prefixEnd('snap/'), countOnly: true, serializable: true });
      } catch (e) {
        const msg = String((e as Error).message);
        if (!/UNAVAILABLE|ECONNREFUSED|connect|closed|GOAWAY|RST_STREAM|cancel|deadline/i.test(msg)) failures.push(msg);
        await sleep(20);
      }
    }
  })();
  return { async stop() { stopped = true; await running; cl.close(); return failures; } };
}

interface Scenario {
  name: string;
  kinds: TargetName[];
  /** Which member lags (and then installs the leader's snapshot). */
  lagging: (c: Cluster, leader: ClusterMember) => ClusterMember;
  skip: boolean;
}

const scenarios: Scenario[] = [
  { name: '3 Concord members', kinds: ['concord', 'concord', 'concord'], lagging: (c, leader) => c.members.find((m) => m !== leader)!, skip: !runConcord() },
  {
    name: 'an etcd leader sends its snapshot to a Concord follower', kinds: ['etcd', 'etcd', 'concord'],
    lagging: (c) => c.members[2]!, skip: !runConcord() || !runEtcd(),
  },
  {
    name: 'a Concord leader sends its snapshot to an etcd follower', kinds: ['concord', 'concord', 'etcd'],
    lagging: (c) => c.members[2]!, skip: !runConcord() || !runEtcd(),
  },
];

for (const s of scenarios) {
  test(`snapshot catch-up, ${s.name}: a lagging follower installs the leader's snapshot and carries on`, { skip: s.skip, timeout: 900_000 }, async (t) => {
    const c = await startCluster(s.kinds, ['--snapshot-count', '100']);
    try {
      const lagging = s.lagging(c, await c.leader());
      await lagging.stop();
      await writeThroughLeader(c, 0, writes);
      const leader = await c.leader(60_000);

      lagging.launch();
      const reads = readLoop(lagging);
      await untilServes(lagging, writes);

      await t.test('the leader streamed its backend; the follower saved it as member/snap/%016x.snap.db and applied it', () => {
        assert.match(leader.log, /"msg":"sending merged snapshot"/);
        const saved = /"msg":"saved database snapshot to disk"[^\n]*"path":"[^"]*\/member\/snap\/([0-9a-f]{16})\.snap\.db"/.exec(lagging.log);
        assert.ok(saved, `no saved database snapshot in the follower's log:\n${lagging.log.slice(-3000)}`);
        assert.ok(parseInt(saved[1]!, 16) > 5000, `snapshot index ${parseInt(saved[1]!, 16)}: past the kept tail`);
        assert.match(lagging.log, /"msg":"applied snapshot"/);
      });

      await t.test('it applies the writes that follow and survives a restart', async () => {
        await writeThroughLeader(c, writes, writes + moreWrites);
        await untilServes(lagging, writes + moreWrites);
        assert.deepEqual(await reads.stop(), [], 'reads during the install failed');
        await lagging.stop();
        await lagging.restart();
        await untilServes(lagging, writes + moreWrites);
        const rev = Math.min(...(await c.hashes()).map((h) => h.revision));
        const hs = await c.hashes(rev);
        assert.equal(new Set(hs.map((h) => h.hash)).size, 1, JSON.stringify(hs));
      });
    } finally {
      await c.destroy();
    }
  });
}
