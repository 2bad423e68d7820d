// concordctl against real etcdctl: the same command lines, in the same order, run by etcdctl
// on one fresh member and by concordctl on another fresh member of the same kind (real etcd,
// then Concord), so revisions line up. stdout, stderr and exit code of every step must be
// equal once the things that differ by nature are normalised, explicitly: member and cluster
// ids, lease ids, ports, timestamps, clientv3's client uuid, durations, database sizes. A
// table's column widths follow the ids, so runs of '-' and ' ' are collapsed.
//
// Run one side only with CONCORD_TESTS_ETCD_ONLY=1 / CONCORD_TESTS_CONCORD_ONLY=1 (harness.ts).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Client, isUnimplemented } from '../src/client/index.js';
import { selectedTargets, type CmdResult } from './harness.js';
import { RangeResponse, MemberListResponse, type MessageFns } from '../src/proto/gen/etcdserverpb/rpc.js';
import type { Tool } from './ctl-tools.js';
import { differ, startSides, stopSides, type Step, type Sides } from './ctl-differ.js';

const leaseIdOf = (prev: CmdResult[]) => /lease ([0-9a-f]{16}) granted/.exec(prev.map((p) => p.stdout).join(''))?.[1] ?? 'missing';

const txnScript = 'val("foo") = "baz"\nver("a") > "0"\n\nput t yes\nget foo\ndel b --prev-kv\n\nput t no\n\n';

const steps: Step[] = [
  { args: ['put', 'foo', 'bar'] },
  { args: ['put', 'foo', 'baz', '--prev-kv'] },
  { args: ['put', 'a', '1', '-w', 'json'] },
  { args: ['put', 'b', '2', '-w', 'fields'] },
  { args: ['put', 'c'], stdin: 'from stdin' },
  { args: ['put', 'bin', '\u00e9\u0001'] },
  { args: ['get', 'foo'] },
  { args: ['get', 'foo', '-w', 'json'] },
  { args: ['get', 'foo', '-w', 'fields'] },
  { args: ['get', 'foo', '-w', 'protobuf'], protobuf: RangeResponse as MessageFns<unknown> },
  { args: ['member', 'list', '-w', 'protobuf'], protobuf: MemberListResponse as MessageFns<unknown> },
  { args: ['get', 'foo', '-w', 'table'] },
  { args: ['get', 'a', 'c'] },
  { args: ['get', '', '--prefix', '--keys-only'] },
  { args: ['get', '', '--from-key', '--limit', '2', '-w', 'json'] },
  { args: ['get', 'fo', '--prefix', '--print-value-only'] },
  { args: ['get', '', '--prefix', '--sort-by', 'VALUE', '--order', 'DESCEND'] },
  { args: ['get', '', '--prefix', '--sort-by', 'modify', '--order', 'ascend', '-w', 'fields'] },
  { args: ['get', 'foo', '--rev', '2'] },
  { args: ['get', 'bin', '--hex'] },
  { args: ['get', 'bin', '-w', 'fields'] },
  { args: ['get', 'bin', '-w', 'json'] },
  { args: ['get', 'foo', '--consistency', 's'] },
  { args: ['get', 'foo'], env: { ETCDCTL_WRITE_OUT: 'json' } },
  { args: ['get', 'foo'], env: { ETCDCTL_WRITE_OUT: 'json', ETCDCTL_HEX: 'true' } },
  // unknown variables are warned about once a client is made; one that does not parse is ignored
  { args: ['get', 'foo'], env: { ETCDCTL_FOO: 'bar', ETCDCTL_DIAL_TIMEOUT: 'zz', ETCDCTL_WATCH_KEY: 'k' } },
  { args: ['version'], env: { ETCDCTL_FOO: 'bar' } },
  { args: ['endpoint', 'health', '-w', 'json'], env: { ETCDCTL_CLUSTER: 'true' } },
  // argument errors and server errors
  { args: ['get'] },
  { args: ['get', 'foo', '--rev', '1000'] },
  { args: ['put'] },
  { args: ['put', '', 'x'] },
  { args: ['put', 'k', 'v', '--lease', 'zz'] },
  { args: ['put', 'k', 'v', '--ignore-value'] },
  { args: ['del'] },
  { args: ['get', 'a', '--prefix', '--from-key'] },
  { args: ['get', 'a', 'b', '--prefix'] },
  { args: ['get', 'a', '--order', 'UP'] },
  { args: ['get', 'a', '--sort-by', 'X'] },
  { args: ['get', 'a', '--consistency', 'x'] },
  { args: ['get', 'a', '-w', 'yaml'] },
  { args: ['frob'] },
  // txn from stdin, interactive, and its input errors
  { args: ['txn'], stdin: txnScript },
  { args: ['txn', '-w', 'json'], stdin: 'mod("t") > "1000"\n\nput t yes\n\nput t no\nget t\n\n' },
  { args: ['txn', '-w', 'fields'], stdin: 'create("t") != "0"\n\nget t\n\n\n' },
  { args: ['txn', '-i'], stdin: 'value("t") = "no"\n\nput u 1\n\n\n' },
  { args: ['txn'], stdin: 'bogus\n\n\n\n' },
  { args: ['txn'], stdin: 'val("t") = "x"\n\nfrobnicate t\n\n\n' },
  { args: ['txn'], stdin: 'val("t") = "x"\n' },
  { args: ['txn', 'extra'], stdin: '\n\n\n' },
  // deletes
  { args: ['del', 'a', '--prev-kv'] },
  { args: ['del', 'fo', '--prefix', '-w', 'json'] },
  { args: ['del', 'nothing'] },
  // compaction
  { args: ['compaction', '3'] },
  { args: ['compaction', '2'] },
  { args: ['compaction', 'x'] },
  { args: ['compaction'] },
  { args: ['get', 'foo', '--rev', '2'] },
  // cluster and maintenance
  { args: ['member', 'list'] },
  { args: ['member', 'list', '-w', 'json'] },
  { args: ['member', 'list', '-w', 'table'] },
  { args: ['member', 'list', '-w', 'fields'] },
  { args: ['member', 'remove', 'zz'] },
  { args: ['member', 'add', 'x'] },
  { args: ['member', 'add', 'x', 'http://a:1'] },
  { args: ['endpoint', 'status'] },
  { args: ['endpoint', 'status', '-w', 'json'] },
  { args: ['endpoint', 'status', '-w', 'table'] },
  { args: ['endpoint', 'status', '-w', 'fields'] },
  { args: ['endpoint', 'status', '--cluster', '-w', 'table'] },
  { args: ['endpoint', 'health'] },
  { args: ['endpoint', 'health', '-w', 'json'] },
  { args: ['endpoint', 'health', '-w', 'table'] },
  { args: ['endpoint', 'hashkv'] },
  { args: ['endpoint', 'hashkv', '-w', 'json'] },
  { args: ['endpoint', 'hashkv', '-w', 'table'] },
  { args: ['endpoint', 'hashkv', '--cluster', '-w', 'fields'] },
  { args: ['alarm', 'list'] },
  { args: ['alarm', 'disarm'] },
  { args: ['defrag'] },
  { args: ['defrag', '--cluster'] },
  { args: ['snapshot', 'save', 'snap.db'] },
  { args: ['version'] },
  { args: ['put', '/perf/x', 'y'] },
  { args: ['check', 'perf', '--prefix', '/perf/'] },
  { args: ['check', 'perf', '--load', 'q'] },
  { args: ['get', 'c'], noEndpoints: true, env: { ETCDCTL_ENDPOINTS: '<self>' } },
  { args: ['get', 'c', '--endpoints', '<self>'], env: { ETCDCTL_ENDPOINTS: '<self>' }, noEndpoints: true },
  // leases
  { args: ['lease', 'grant', '100'] },
  { args: (p) => ['lease', 'timetolive', leaseIdOf(p)] },
  { args: (p) => ['put', 'leased', 'v', '--lease', leaseIdOf(p)] },
  { args: (p) => ['lease', 'timetolive', leaseIdOf(p), '--keys'] },
  { args: ['lease', 'list'] },
  { args: (p) => ['lease', 'keep-alive', '--once', leaseIdOf(p)] },
  { args: (p) => ['lease', 'revoke', leaseIdOf(p)] },
  { args: (p) => ['lease', 'timetolive', leaseIdOf(p)] },
  { args: ['lease', 'revoke', '123'] },
  { args: ['lease', 'grant', 'x'] },
  { args: ['lease', 'revoke'] },
  // lock with a command to run while holding it
  { args: ['lock', 'mylock', 'echo', 'holding'] },
  { args: ['lock'] },
  { args: ['elect', 'e'] },
];

for (const target of selectedTargets()) {
  test(`auth against ${target}: --user and --password, wrong and missing credentials`, async (t) => {
    const sides = await startSides(target);
    try {
      for (const { server } of sides.values()) {
        const c = new Client({ endpoints: [server.endpoint] });
        try {
          await c.auth.userAdd('root', 'pw');
          await c.auth.roleAdd('root');
          await c.auth.userGrantRole('root', 'root');
          await c.auth.enable();
        } catch (e) {
          if (!isUnimplemented(e)) throw e;
          t.skip(`${target} answers Unimplemented for etcdserverpb.Auth (${(e as Error).message})`);
          return;
        } finally { c.close(); }
      }
      const mismatches = await differ(sides, [
        { args: ['put', 'k', 'v', '--user', 'root:pw'] },
        { args: ['get', 'k', '--user', 'root', '--password', 'pw'] },
        { args: ['get', 'k'], env: { ETCDCTL_USER: 'root:pw' } },
        { args: ['get', 'k'] },
        { args: ['get', 'k', '--user', 'root:wrong'] },
        { args: ['get', 'k', '--user', 'nobody:pw'] },
      ]);
      assert.deepEqual(mismatches, [], mismatches.join('\n'));
    } finally {
      await stopSides(sides);
    }
  });

  describe(`concordctl and etcdctl give the same output against ${target}`, () => {
    let sides: Sides;
    before(async () => { sides = await startSides(target); });
    after(async () => { if (sides) await stopSides(sides); });

    test('every step: stdout, stderr and exit code', async () => {
      const mismatches = await differ(sides, steps);
      const snap = (tool: Tool) => join(sides.get(tool)!.cwd, 'snap.db');
      assert.ok(existsSync(snap('concordctl')) && statSync(snap('concordctl')).size > 0, 'concordctl saved no snapshot');
      assert.deepEqual(mismatches, [], `${mismatches.length} of ${steps.length} steps differ:\n${mismatches.join('\n')}`);
    });
  });
}
