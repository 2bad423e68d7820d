// Real etcdctl (ETCDCTL_API=3) against real etcd and Concord: the same commands in the same
// order on two fresh servers, outputs compared after normalizing what legitimately differs
// (URLs and ports, member/cluster ids, raft term and index, db sizes, timings, temp paths,
// etcdctl's own JSON log lines on stderr). Exit codes are compared too.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { startServer, selectedTargets, type Server, type TargetName, type CmdResult } from './harness.js';

interface Node { target: TargetName; server: Server; memberIdHex?: string; memberIdDec?: string; clusterIdDec?: string }
const nodes: Node[] = [];

before(async () => {
  for (const target of selectedTargets()) {
    const server = await startServer({ target });
    const c = server.client();
    try {
      const st = await c.status();
      nodes.push({
        target, server,
        memberIdHex: st.header!.memberId.toString(16),
        memberIdDec: st.header!.memberId.toString(),
        clusterIdDec: st.header!.clusterId.toString(),
      });
    } finally { c.close(); }
  }
});

after(async () => {
  for (const n of nodes) await n.server.destroy();
});

const TABLE_VOLATILE = new Set(['ID', 'DB SIZE', 'RAFT TERM', 'RAFT INDEX', 'RAFT APPLIED INDEX', 'VERSION']);
const JSON_VOLATILE = new Set(['cluster_id', 'member_id', 'raft_term', 'leader', 'raftIndex', 'raftTerm',
  'raftAppliedIndex', 'dbSize', 'dbSizeInUse', 'ID', 'version', 'took',
  'hash', 'totalSize']); // snapshot status: the hash covers the members bucket (ids differ)

/** Normalize one output text for one node. */
function norm(text: string, n: Node): string {
  let s = text;
  const repl = (from: string | undefined, to: string) => { if (from) s = s.split(from).join(to); };
  repl(n.server.scratch(''), '<TMP>');
  repl(n.server.endpoint, '<CLIENT-URL>');
  repl(n.server.peerUrl, '<PEER-URL>');
  s = s.replace(/took = [^\s]+/g, 'took = <T>');
  // `endpoint status` (simple): endpoint, id, version, db size, leader, learner, term, index, applied, errors.
  s = s.replace(/^(<CLIENT-URL>), [0-9a-f]+, 3\.4\.\d+, [^,]+, (true|false), (true|false), \d+, \d+, \d+, /gm,
    '$1, <ID>, <VERSION>, <DB SIZE>, $2, $3, <TERM>, <INDEX>, <APPLIED>, ');
  // Tables: split into cells; blank the volatile columns; rebuild without padding.
  if (/^\+-/m.test(s)) {
    const lines = s.split('\n');
    let header: string[] | null = null;
    s = lines.map((line) => {
      if (line.startsWith('+-')) return '+';
      if (!line.startsWith('|')) return line;
      const cells = line.split('|').slice(1, -1).map((c) => c.trim());
      if (!header) { header = cells; return cells.join(' | '); }
      return cells.map((c, i) => (TABLE_VOLATILE.has(header![i]!) ? `<${header![i]}>` : c)).join(' | ');
    }).join('\n');
  }
  // JSON output (-w json): parse (ids are 64-bit: quote big integers first), blank volatile fields.
  const t = s.trim();
  if ((t.startsWith('{') || t.startsWith('[')) && !t.includes('\n')) {
    const parsed = JSON.parse(t.replace(/:(\d{16,})/g, ':"$1"'));
    const walk = (v: any): any => {
      if (Array.isArray(v)) return v.map(walk);
      if (v && typeof v === 'object') {
        const o: any = {};
        for (const [k, x] of Object.entries(v)) o[k] = JSON_VOLATILE.has(k) ? '<V>' : walk(x);
        return o;
      }
      return v;
    };
    return JSON.stringify(walk(parsed));
  }
  repl(n.memberIdHex, '<MEMBER-ID>');
  repl(n.memberIdDec, '<MEMBER-ID>');
  repl(n.clusterIdDec, '<CLUSTER-ID>');
  return s;
}

/** etcdctl's stderr without its zap JSON log lines. */
const stderrText = (e: string) => e.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{')).join('\n');

interface Both { raw: CmdResult[]; out: string; err: string; code: number | null }

/** Run the same etcdctl command on every node; assert normalized outputs and exit codes equal. */
async function ctl(args: string[] | ((n: Node) => string[]), opts: { stdin?: string } = {}): Promise<Both> {
  const raw: CmdResult[] = [];
  const views: Array<{ code: number | null; stdout: string; stderr: string }> = [];
  for (const n of nodes) {
    const a = typeof args === 'function' ? args(n) : args;
    const r = await n.server.etcdctl(a, opts);
    raw.push(r);
    views.push({ code: r.code, stdout: norm(r.stdout, n), stderr: norm(stderrText(r.stderr), n) });
  }
  const label = typeof args === 'function' ? args(nodes[0]!).join(' ') : args.join(' ');
  for (let i = 1; i < nodes.length; i++) {
    assert.deepStrictEqual(views[i], views[0], `etcdctl ${label}: ${nodes[i]!.target} differs from ${nodes[0]!.target}`);
  }
  return { raw, out: views[0]!.stdout, err: views[0]!.stderr, code: views[0]!.code };
}

describe('etcdctl against etcd and Concord', () => {
  test('put prints OK, --prev-kv prints the previous pair', async () => {
    assert.equal((await ctl(['put', 'foo', 'bar'])).out, 'OK\n');
    assert.equal((await ctl(['put', 'foo', 'baz', '--prev-kv'])).out, 'OK\nfoo\nbar\n');
    for (const [k, v] of [['k/1', 'e'], ['k/2', 'd'], ['k/3', 'c'], ['k/4', 'b'], ['k/5', 'a'], ['k/3', 'cc'], ['z', 'last']]) {
      assert.equal((await ctl(['put', k!, v!])).code, 0);
    }
  });

  test('get with --prefix, --keys-only, --rev, -w json, --sort-by, --order, --limit, --from-key, --print-value-only', async () => {
    assert.equal((await ctl(['get', 'foo'])).out, 'foo\nbaz\n');
    assert.equal((await ctl(['get', 'k/', '--prefix'])).out, 'k/1\ne\nk/2\nd\nk/3\ncc\nk/4\nb\nk/5\na\n');
    assert.equal((await ctl(['get', 'k/', '--prefix', '--keys-only'])).out, 'k/1\n\nk/2\n\nk/3\n\nk/4\n\nk/5\n\n');
    assert.equal((await ctl(['get', 'foo', '--rev', '2'])).out, 'foo\nbar\n');
    assert.equal((await ctl(['get', 'k/3', '--rev', '6'])).out, 'k/3\nc\n');
    await ctl(['get', 'foo', '-w', 'json']);
    await ctl(['get', 'k/', '--prefix', '-w', 'json']);
    await ctl(['get', 'k/', '--prefix', '--rev', '5', '-w', 'json']);
    await ctl(['get', 'missing', '-w', 'json']);
    for (const by of ['KEY', 'VERSION', 'CREATE', 'MODIFY', 'VALUE']) {
      for (const order of ['ASCEND', 'DESCEND']) await ctl(['get', 'k/', '--prefix', '--sort-by', by, '--order', order]);
    }
    assert.equal((await ctl(['get', 'k/', '--prefix', '--sort-by', 'VALUE', '--order', 'ASCEND', '--print-value-only'])).out, 'a\nb\ncc\nd\ne\n');
    await ctl(['get', 'k/', '--prefix', '--order', 'DESCEND']);
    assert.equal((await ctl(['get', 'k/', '--prefix', '--limit', '2'])).out, 'k/1\ne\nk/2\nd\n');
    await ctl(['get', 'k/', '--prefix', '--limit', '2', '-w', 'json']);
    assert.equal((await ctl(['get', 'k/4', '--from-key'])).out, 'k/4\nb\nk/5\na\nz\nlast\n');
    await ctl(['get', '', '--from-key', '--keys-only']);
    assert.equal((await ctl(['get', 'k/', '--prefix', '--print-value-only'])).out, 'e\nd\ncc\nb\na\n');
    await ctl(['get', 'k/', '--prefix', '--count-only', '-w', 'json']);
    await ctl(['get', 'k/1', 'k/4']);
    const fut = await ctl(['get', 'foo', '--rev', '1000']);
    assert.equal(fut.code, 1);
    assert.equal(fut.err, 'Error: etcdserver: mvcc: required revision is a future revision');
  });

  test('del with --prev-kv and --prefix prints counts and previous pairs', async () => {
    assert.equal((await ctl(['del', 'k/5', '--prev-kv'])).out, '1\nk/5\na\n');
    assert.equal((await ctl(['del', 'nothing'])).out, '0\n');
    assert.equal((await ctl(['del', 'k/', '--prefix', '--prev-kv'])).out, '4\nk/1\ne\nk/2\nd\nk/3\ncc\nk/4\nb\n');
    for (const k of ['d/1', 'd/2', 'd/3']) await ctl(['put', k, 'x']);
    assert.equal((await ctl(['del', 'd/', '--prefix'])).out, '3\n');
    await ctl(['get', '', '--from-key']);
  });

  test('txn fed on stdin (-i): success and failure branches, simple and json output', async () => {
    const ok = await ctl(['txn', '-i'], { stdin: 'value("foo") = "baz"\n\nput foo ok\nget foo\n\nput foo bad\n\n' });
    assert.match(ok.out, /^SUCCESS\n\nOK\n\nfoo\nok\n$/m);
    const fail = await ctl(['txn', '-i'], { stdin: 'version("foo") = "9"\nmod("z") > "1"\n\ndel foo\n\nput t1 v1\nget foo\ndel z --prev-kv\n\n' });
    assert.match(fail.out, /^FAILURE\n\nOK\n\nfoo\nok\n\n1\nz\nlast\n$/m);
    await ctl(['txn', '-i', '-w', 'json'], { stdin: 'create("foo") > "0"\n\nget foo\nput t2 v2\n\n\n' });
    await ctl(['txn', '-i'], { stdin: 'value("foo") != "nope"\n\nput t3 v3 --prev-kv\n\n\n' });
    await ctl(['get', 't', '--prefix']);
  });

  test('compaction, then reads below it fail with etcd\'s message', async () => {
    const st = await ctl(['get', 'foo', '-w', 'json']);
    const rev = JSON.parse(st.raw[0]!.stdout.replace(/:(\d{16,})/g, ':"$1"')).header.revision as number;
    assert.equal((await ctl(['compaction', String(rev - 2)])).out, `compacted revision ${rev - 2}\n`);
    assert.equal((await ctl(['compaction', '--physical', String(rev - 1)])).out, `compacted revision ${rev - 1}\n`);
    const old = await ctl(['get', 'foo', '--rev', String(rev - 3)]);
    assert.equal(old.code, 1);
    assert.equal(old.err, 'Error: etcdserver: mvcc: required revision has been compacted');
    const again = await ctl(['compaction', String(rev - 2)]);
    assert.equal(again.code, 1);
    assert.equal(again.err, 'Error: etcdserver: mvcc: required revision has been compacted');
    await ctl(['get', 'foo', '--rev', String(rev - 1)]);
  });

  test('defrag reports the member it defragmented', async () => {
    assert.equal((await ctl(['defrag'])).out, 'Finished defragmenting etcd member[<CLIENT-URL>]\n');
    await ctl(['get', '', '--from-key']);
  });

  test('endpoint status (table and json) and endpoint health', async () => {
    const table = await ctl(['endpoint', 'status', '-w', 'table']);
    assert.match(table.out, /ENDPOINT \| ID \| VERSION \| DB SIZE \| IS LEADER \| IS LEARNER \| RAFT TERM \| RAFT INDEX \| RAFT APPLIED INDEX \| ERRORS/);
    assert.match(table.out, /<CLIENT-URL> \| <ID> \| <VERSION> \| <DB SIZE> \| true \| false \|/);
    for (const r of table.raw) assert.match(r.stdout, /\| +3\.4\.\d+ \|/);
    await ctl(['endpoint', 'status', '-w', 'json']);
    await ctl(['endpoint', 'status']);
    const health = await ctl(['endpoint', 'health']);
    assert.equal(health.code, 0);
    assert.equal(health.err, '<CLIENT-URL> is healthy: successfully committed proposal: took = <T>');
    await ctl(['endpoint', 'health', '-w', 'json']);
  });

  test('alarm list and alarm disarm with no alarm raised print nothing', async () => {
    const list = await ctl(['alarm', 'list']);
    assert.equal(list.code, 0);
    assert.equal(list.out, '');
    const disarm = await ctl(['alarm', 'disarm']);
    assert.equal(disarm.code, 0);
    assert.equal(disarm.out, '');
  });

  test('snapshot save writes the file and etcdctl says it is saved', async () => {
    const r = await ctl((n) => ['snapshot', 'save', n.server.scratch('snap.db')]);
    assert.equal(r.code, 0);
    assert.equal(r.out, 'Snapshot saved at <TMP>/snap.db\n');
    for (const n of nodes) {
      const p = n.server.scratch('snap.db');
      assert.ok(existsSync(p), `${n.target}: ${p} written`);
      assert.ok(statSync(p).size > 0, `${n.target}: snapshot not empty`);
      assert.ok(!existsSync(`${p}.part`), `${n.target}: no .part left behind`);
    }
  });

  // etcd's snapshot is a bbolt file that `etcdctl snapshot status` reads: the same revision and
  // total keys (every bucket's entries) as etcd's own file of the same store.
  test('snapshot status reads the saved snapshot', async () => {
    const r = await ctl((n) => ['snapshot', 'status', n.server.scratch('snap.db'), '-w', 'json']);
    assert.equal(r.code, 0, r.err);
    for (const raw of r.raw) {
      const st = JSON.parse(raw.stdout);
      assert.ok(st.revision > 0 && st.totalKey > 0 && st.totalSize > 0, raw.stdout);
    }
  });

  test('member list (simple and table) shows the one member', async () => {
    const simple = await ctl(['member', 'list']);
    assert.equal(simple.out, '<MEMBER-ID>, started, t0, <PEER-URL>, <CLIENT-URL>, false\n');
    const table = await ctl(['member', 'list', '-w', 'table']);
    assert.match(table.out, /<ID> \| started \| t0 \| <PEER-URL> \| <CLIENT-URL> \| false/);
    await ctl(['member', 'list', '-w', 'json']);
  });
});
