// Differential runs of concordctl against real etcdctl: the same command lines, in the same
// order, run by etcdctl on one fresh member and by concordctl on another fresh member of the
// same kind, so revisions line up. stdout, stderr and exit code of every step must be equal once
// the things that differ by nature are normalised, explicitly: member and cluster ids, lease
// ids, ports, timestamps, clientv3's client uuid, durations, database sizes. A table's column
// widths follow the ids, so runs of '-' and ' ' are collapsed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '../src/client/index.js';
import { startServer, normalize, type Server, type CmdResult, type TargetName } from './harness.js';
import type { MessageFns } from '../src/proto/gen/etcdserverpb/rpc.js';
import { runTool, type Tool } from './ctl-tools.js';

/** Each tool's own member, its ids and its working directory. */
export type Sides = Map<Tool, { server: Server; ids: Ids; cwd: string }>;

export interface Step {
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
export function runStep(tool: Tool, endpoint: string, step: Step, args: string[], cwd: string): Promise<CmdResult> {
  const argv = step.noEndpoints ? args : ['--endpoints', endpoint, ...args];
  return runTool(tool, argv, { cwd, ...(step.env ? { env: step.env } : {}), ...(step.stdin !== undefined ? { stdin: step.stdin } : {}) });
}

export interface Ids { memberId: bigint; clusterId: bigint }

export async function idsOf(server: Server): Promise<Ids> {
  const c = new Client({ endpoints: [server.endpoint] });
  try {
    const st = await c.maintenance.status();
    return { memberId: st.header!.memberId, clusterId: st.header!.clusterId };
  } finally { c.close(); }
}

/** The output with what differs by nature replaced by placeholders. */
export function normalise(s: string, server: Server, ids: Ids): string {
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

/** Runs steps with etcdctl and with concordctl on their own members; the mismatches, normalised. */
export async function differ(sides: Sides, list: Step[]): Promise<string[]> {
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

export async function startSides(target: TargetName, extraArgs: string[] = []): Promise<Sides> {
  const sides: Sides = new Map();
  for (const tool of ['etcdctl', 'concordctl'] as const) {
    const server = await startServer({ target, extraArgs });
    sides.set(tool, { server, ids: await idsOf(server), cwd: mkdtempSync(join(tmpdir(), `concordctl-${tool}-`)) });
  }
  return sides;
}

export async function stopSides(sides: Map<Tool, { server: Server; cwd: string }>): Promise<void> {
  for (const { server, cwd } of sides.values()) { await server.destroy(); rmSync(cwd, { recursive: true, force: true }); }
}
