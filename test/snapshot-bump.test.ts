// concordutl snapshot restore --bump-revision N --mark-compacted (etcdutl 3.5): the restored
// member's revision is N past the snapshot's, every key keeps its revisions, reads at older
// revisions are refused as compacted, and the next write gets latest + N + 1.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, startServer, freePort, runConcord, b } from './harness.js';
import { concordutl } from './concordutl-cli.js';
import type { KeyValue } from '../src/proto/index.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });


const all = { key: b('\0'), rangeEnd: b('\0') };
const view = (kvs: KeyValue[]) => kvs.map((kv) => [Buffer.from(kv.key).toString(), Buffer.from(kv.value).toString(), Number(kv.createRevision), Number(kv.modRevision), Number(kv.version)]);

test('snapshot restore --bump-revision --mark-compacted', { skip: !runConcord() && 'needs Concord' }, async () => {
  const s = await startServer({ target: 'concord' });
  servers.push(s);
  const c = s.client();
  for (let i = 0; i < 40; i++) await c.put({ key: b(`k${i % 15}`), value: b(`v${i}`) });
  const live = await c.range(all);
  const rev = Number(live.header!.revision);
  c.close();
  const file = s.scratch('snap.db');
  assert.equal((await s.etcdctl(['snapshot', 'save', file])).code, 0);

  const m = new Server({ target: 'concord', name: 'b0' });
  servers.push(m);
  m.clientPort = await freePort();
  m.peerPort = await freePort();
  const args = ['snapshot', 'restore', file, '--data-dir', m.dataDir, '--name', 'b0', '--initial-cluster', `b0=${m.peerUrl}`, '--initial-advertise-peer-urls', m.peerUrl];
  const refused = await concordutl([...args, '--bump-revision', '1000']);
  assert.deepEqual({ code: refused.code, stderr: refused.stderr }, { code: 128, stderr: 'Error: --mark-compacted required if --bump-revision > 0\n' });
  const res = await concordutl([...args, '--bump-revision', '1000', '--mark-compacted']);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stderr, /"msg":"bumping latest revision".*"latest-revision":\d+,"bump-amount":1000/);
  assert.match(res.stderr, /"msg":"marking revision compacted"/);
  await m.start();
  const mc = m.client();
  const got = await mc.range(all);
  assert.deepEqual(view(got.kvs), view(live.kvs), 'every key keeps its revisions');
  assert.equal(Number(got.header!.revision), rev + 1000);
  const old = await mc.op('range', { ...all, revision: rev });
  assert.deepEqual(old.ok ? 'served' : old.message, 'etcdserver: mvcc: required revision has been compacted');
  const put = await mc.put({ key: b('next'), value: b('n') });
  assert.equal(Number(put.header!.revision), rev + 1001);
  mc.close();
});
