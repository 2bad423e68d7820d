// concordutl's offline commands on a stopped Concord member's data dir:
// - `hashkv --data-dir` gives what the running member's HashKV gave (current and older revisions);
// - `defrag --data-dir` prints etcdutl's line and leaves the data (HashKV) as it was;
// - `wal dump` lists the WAL's entries with term, index, type and the decoded request, and
//   filters by entry type and index range.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, runConcord, b, type Server } from './harness.js';
import { concordutl } from './concordutl-cli.js';

const servers: Server[] = [];
after(async () => { for (const s of servers) await s.destroy(); });


test('concordutl hashkv, defrag and wal dump on a stopped member', { skip: !runConcord() && 'needs Concord' }, async () => {
  const s = await startServer({ target: 'concord', extraArgs: ['--snapshot-count', '100'] });
  servers.push(s);
  const c = s.client();
  for (let i = 0; i < 150; i++) await c.put({ key: b(`k${i % 40}`), value: Buffer.alloc(2000, i) });
  await c.deleteRange({ key: b('k1'), rangeEnd: b('k2') });
  const mid = await c.put({ key: b('mid'), value: b('m') });
  await c.compact({ revision: Number(mid.header!.revision) - 30 });
  const lease = await c.leaseGrant({ TTL: 600 });
  const last = await c.put({ key: b('last'), value: b('l'), lease: lease.ID });
  const rev = Number(last.header!.revision);
  const now = await c.hashKV(0);
  const older = await c.hashKV(rev - 5);
  c.close();
  await s.stop();
  const dd = ['--data-dir', s.dataDir];

  const json = await concordutl(['hashkv', ...dd, '-w', 'json']);
  assert.equal(json.code, 0, json.stderr);
  assert.deepEqual(JSON.parse(json.stdout), { hash: now.hash, hashRevision: rev, compactRevision: Number(now.compactRevision) });
  const atOlder = await concordutl(['hashkv', ...dd, '--rev', String(rev - 5)]);
  assert.equal(atOlder.stdout, `${older.hash}, ${rev}, ${Number(older.compactRevision)}\n`);
  assert.match((await concordutl(['hashkv', ...dd, '-w', 'table'])).stdout, /\| +HASH +\| +HASH REVISION +\| +COMPACT REVISION +\|/);
  const compacted = await concordutl(['hashkv', ...dd, '--rev', '3']);
  assert.equal(compacted.code, 1);
  assert.match(compacted.stderr, /^Error: etcdserver: mvcc: required revision has been compacted\n$/);
  assert.equal((await concordutl(['hashkv'])).code, 128);

  const defrag = await concordutl(['defrag', ...dd]);
  assert.deepEqual({ code: defrag.code, stdout: defrag.stdout }, { code: 0, stdout: `Finished defragmenting etcd data[${s.dataDir}]\n` }, defrag.stderr);
  assert.equal((await concordutl(['hashkv', ...dd, '-w', 'json'])).stdout, json.stdout, 'the same data after defrag');
  const missing = await concordutl(['defrag', '--data-dir', s.scratch('nothing')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^Error: Failed to defragment etcd data\[.*nothing\] \(no Concord backend at .*\)\n$/);

  const dump = await concordutl(['wal', 'dump', ...dd]);
  assert.equal(dump.code, 0, dump.stderr);
  assert.match(dump.stdout, /^Snapshot:\nterm=\d+ index=\d+ nodes=\[[0-9a-f]+\]\nStart dumping log entries from snapshot.\nWAL metadata:\nnodeID=[0-9a-f]+ clusterID=[0-9a-f]+ term=\d+ commitIndex=\d+ vote=[0-9a-f]+\nWAL entries:\nlastIndex=\d+\nterm\t     index\ttype\tdata\n/);
  const lines = dump.stdout.split('\n').filter((l) => /^ *\d+\t *\d+\t(norm|conf)\t/.test(l));
  assert.ok(lines.length > 20);
  const lastPut = lines.find((l) => /\tnorm\tput id=[0-9a-f]+ \{"key":"last","value":"l","lease":"\d+"/.test(l));
  assert.ok(lastPut, `the last put is decoded:\n${lines.slice(-5).join('\n')}`);
  assert.ok(lines.some((l) => /\tnorm\tleaseGrant id=[0-9a-f]+ \{"TTL":600/.test(l)));
  const indexes = lines.map((l) => Number(l.split('\t')[1]));
  assert.deepEqual(indexes, [...indexes].sort((x, y) => x - y), 'in index order');

  const puts = await concordutl(['wal', 'dump', ...dd, '--entry-type', 'IRRPut,IRRCompaction', '--start-index', String(indexes[5]), '--end-index', String(indexes.at(-1)! - 1)]);
  const putLines = puts.stdout.split('\n').filter((l) => /^ *\d+\t/.test(l));
  assert.ok(putLines.length > 0 && putLines.every((l) => /\tnorm\t(put|compaction) /.test(l)), putLines.join('\n'));
  assert.ok(putLines.every((l) => Number(l.split('\t')[1]) >= indexes[5]! && Number(l.split('\t')[1]) < indexes.at(-1)!));
  assert.ok(putLines.some((l) => /\tcompaction /.test(l)));
  assert.match(puts.stdout, new RegExp(`Entry types \\(IRRPut,IRRCompaction\\) count is : ${putLines.length}\\n$`));
});
