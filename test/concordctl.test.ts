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
import { mkdtempSync, rmSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, isUnimplemented } from '../src/client/index.js';
import { startServer, selectedTargets, normalize, type Server, type CmdResult, type TargetName } from './harness.js';
import { RangeResponse, MemberListResponse, type MessageFns } from '../src/proto/gen/etcdserverpb/rpc.js';

import { runTool, type Tool } from './ctl-tools.js';

interface Step {
  /** The command line (after the tool's name); a function sees the earlier outputs of its side. */
  args: string[] | ((prev: CmdResult[]) => string[]);
  stdin?: string;
  env?: Record<string, string>;
  /** Leave out --endpoints (the step sets it through ETCDCTL_ENDPOINTS). */
  noEndpoints?: boolean;
  /** stdout is this protobuf message: compared decoded, header ids aside. */
  protobuf?: MessageFns<unknown>;
}

/** Runs the tool; the environment carries no ETCDCTL_* but what the step sets. */
function runStep(tool: Tool, endpoint: string, step: Step, args: string[], cwd: string): Promise<CmdResult> {
  const argv = step.noEndpoints ? args : ['--endpoints', endpoint, ...args];
  return runTool(tool, argv, { cwd, ...(step.env ? { env: step.env } : {}), ...(step.stdin !== undefined ? { stdin: step.stdin } : {}) });
}

interface Ids { memberId: bigint; clusterId: bigint }

async function idsOf(server: Server): Promise<Ids> {
  const c = new Client({ endpoints: [server.endpoint] });
  try {
    const st = await c.maintenance.status();
    return { memberId: st.header!.memberId, clusterId: st.header!.clusterId };
  } finally { c.close(); }
}

/** The output with what differs by nature replaced by placeholders. */
function normalise(s: string, server: Server, ids: Ids): string {
  const leases = new Map<string, string>();
  const lease = (hex: string) => { if (!leases.has(hex)) leases.set(hex, `<lease${leases.size}>`); return leases.get(hex)!; };
  let out = s
    .replaceAll(server.endpoint, '<client-url>')
    .replaceAll(server.peerUrl, '<peer-url>')
    .replaceAll(`127.0.0.1:${server.clientPort}`, '<client-addr>')
    .replaceAll(ids.memberId.toString(), '<member-id>')
    .replaceAll(ids.clusterId.toString(), '<cluster-id>')
    .replaceAll(ids.memberId.toString(16), '<member-id>')
    .replaceAll(ids.clusterId.toString(16), '<cluster-id>')
    .replace(/\b[0-9a-f]{16}\b/g, (h) => lease(h))
    .replace(/"ts":("[^"]*"|[0-9.e+]+)/g, '"ts":<ts>')
    .replace(/client-[0-9a-f-]{36}/g, 'client-<uuid>')
    .replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} /gm, '<time> ')
    .replace(/remaining\(\d+s\)/g, 'remaining(<ttl>s)')
    .replace(/took = \S+/g, 'took = <took>')
    .replace(/"took":("[^"]*"|[0-9.e+-]+)/g, '"took":<took>')
    .replace(/"(dbSize|dbSizeInUse)":\d+/g, '"$1":<size>')
    // The fields format: a db's size differs between two runs of the same server (bbolt's page use).
    .replace(/"(DBSize|DBSizeInUse)" : \d+/g, '"$1" : <size>')
    .replace(/"size":"[^"]*"/g, '"size":<size>')
    .replace(/\b\d+(\.\d+)? (B|kB|MB)\b/g, '<size>')
    .replace(/(\d+(\.\d+)?(ns|µs|ms|s))(?= *\|)/g, '<took>');
  // Lease ids also print in decimal (json, fields).
  for (const [hex, name] of leases) out = out.replaceAll(BigInt(`0x${hex}`).toString(), name);
  return out.replace(/-{2,}/g, '--').replace(/ {2,}/g, ' ');
}

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

/** Runs steps with etcdctl and with concordctl on their own members; the mismatches, normalised. */
async function differ(sides: Map<Tool, { server: Server; ids: Ids; cwd: string }>, list: Step[]): Promise<string[]> {
  const prev = new Map<Tool, CmdResult[]>([['etcdctl', []], ['concordctl', []]]);
  const mismatches: string[] = [];
  for (const step of list) {
    const got = new Map<Tool, CmdResult>();
    let shown = '';
    for (const tool of ['etcdctl', 'concordctl'] as const) {
      const { server, ids, cwd } = sides.get(tool)!;
      const fill = (a: string) => a.replace('<self>', server.endpoint);
      const args = (typeof step.args === 'function' ? step.args(prev.get(tool)!) : step.args).map(fill);
      const env = Object.fromEntries(Object.entries(step.env ?? {}).map(([k, v]) => [k, fill(v)]));
      const raw = await runStep(tool, server.endpoint, { ...step, env }, args, cwd);
      prev.get(tool)!.push(raw);
      const stdout = step.protobuf ? JSON.stringify(normalize(step.protobuf.decode(Buffer.from(raw.stdout, 'latin1')))) : raw.stdout;
      got.set(tool, { code: raw.code, stdout: normalise(stdout, server, ids), stderr: normalise(raw.stderr, server, ids) });
      if (tool === 'etcdctl') shown = normalise(args.join(' '), server, ids);
    }
    try {
      assert.deepEqual(got.get('concordctl'), got.get('etcdctl'));
    } catch {
      mismatches.push(`$ ${shown}\n  etcdctl:    ${JSON.stringify(got.get('etcdctl'))}\n  concordctl: ${JSON.stringify(got.get('concordctl'))}`);
    }
  }
  return mismatches;
}

async function startSides(target: TargetName, extraArgs: string[] = []): Promise<Map<Tool, { server: Server; ids: Ids; cwd: string }>> {
  const sides = new Map<Tool, { server: Server; ids: Ids; cwd: string }>();
  for (const tool of ['etcdctl', 'concordctl'] as const) {
    const server = await startServer({ target, extraArgs });
    sides.set(tool, { server, ids: await idsOf(server), cwd: mkdtempSync(join(tmpdir(), `concordctl-${tool}-`)) });
  }
  return sides;
}

async function stopSides(sides: Map<Tool, { server: Server; cwd: string }>): Promise<void> {
  for (const { server, cwd } of sides.values()) { await server.destroy(); rmSync(cwd, { recursive: true, force: true }); }
}

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
    let sides: Map<Tool, { server: Server; ids: Ids; cwd: string }>;
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
