// Startup refuses a backend that is behind its snapshot, against each selected target.
//
// A backend file older than the newest raft snapshot (an older copy restored, or committed
// pages a power cut lost) cannot be repaired from the WAL: the entries before the snapshot
// are released. etcd refuses to start ("database file (... index N) does not match with
// snapshot (index M)") instead of serving a store with writes missing; so must Concord.
//
// etcd 3.4 reaches that check only after recoverSnapshotBackend: with no `<index>.snap.db`
// (one received from a leader) to fall back on, it panics first ("recovering backend from
// snapshot error: failed to find database snapshot file", exit 2). Concord has no such files
// yet and gives the check's message directly (exit 1). Both refuse; neither serves.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, selectedTargets, b, sleep, type Server } from './harness.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });

/** The backend file: etcd's bbolt db, or Concord's LMDB environment beside where etcd keeps it. */
const backendFile = (s: Server) => join(s.dataDir, 'member', 'snap', s.target === 'etcd' ? 'db' : 'concord.lmdb');

async function putKeys(s: Server, from: number, to: number): Promise<void> {
  const c = s.client();
  try {
    for (let i = from; i < to; i++) assert.ok((await c.op('put', { key: b(`k/${i}`), value: b(`v${i}`) })).ok, `put ${i}`);
  } finally {
    c.close();
  }
}

/** Waits for the process to exit by itself; kills it (and fails) if it serves or outlives boundMs. */
async function exitCode(s: Server, boundMs = 30_000): Promise<number | null> {
  const child = s.child!;
  const deadline = Date.now() + boundMs;
  while (child.exitCode === null && child.signalCode === null) {
    if (Date.now() > deadline || s.log.includes('ready to serve client requests')) {
      await s.kill();
      assert.fail(`${s.target} still running with a stale backend:\n${s.log.slice(-2000)}`);
    }
    await sleep(50);
  }
  return child.exitCode;
}

describe('durability: a backend behind the snapshot is refused', () => {
  for (const target of selectedTargets()) {
    test(`${target}: an older backend file under a newer snapshot refuses to start with etcd's message`, async () => {
      const s = await startServer({ target, extraArgs: ['--snapshot-count', '100'] });
      servers.push(s);
      await putKeys(s, 0, 50);
      await s.stop();
      const old = s.scratch('backend.old');
      copyFileSync(backendFile(s), old);

      await s.restart();
      await putKeys(s, 50, 350);
      await s.stop();
      assert.ok(readdirSync(join(s.dataDir, 'member', 'snap')).some((f) => f.endsWith('.snap')), 'no snapshot was taken');

      copyFileSync(old, backendFile(s));
      s.launch();
      const code = await exitCode(s);
      if (target === 'etcd') {
        assert.equal(code, 2, s.log.slice(-2000));
        assert.match(s.log, /recovering backend from snapshot error: failed to find database snapshot file/);
        return;
      }
      assert.equal(code, 1, s.log.slice(-2000));
      const m = /database file \((\S+) index (\d+)\) does not match with snapshot \(index (\d+)\)/.exec(s.log);
      assert.ok(m, `no "does not match with snapshot" error:\n${s.log.slice(-2000)}`);
      assert.equal(m[1], backendFile(s));
      assert.ok(Number(m[2]) < Number(m[3]), m[0]);
      assert.ok(readFileSync(backendFile(s)).equals(readFileSync(old)), 'the refused backend file was written to');
    });
  }
});
