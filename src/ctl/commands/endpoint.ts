// endpoint health | status | hashkv (each endpoint asked on its own; --cluster: every member's
// client URLs from the member list), defrag, alarm list | disarm, move-leader.
import { EtcdErrors } from '../../client/index.js';
import { CtlExit, ExitCode } from '../exit.js';
import { describeError } from '../errors.js';
import { goDuration } from '../format.js';
import type { Ctx } from '../context.js';
import type { EpHealth, EpStatus, EpHashKV } from '../printer.js';
import { boolFlag, intFlag, strFlag, type Command } from '../command.js';

async function endpointsOf(ctx: Ctx): Promise<string[]> {
  if (!ctx.bool('cluster')) return ctx.globals.endpoints;
  let members;
  try {
    members = await ctx.call(ctx.client.cluster.memberList(ctx.callOpts));
  } catch (e) {
    throw new CtlExit(ExitCode.Error, `failed to fetch endpoints from etcd cluster member list: ${describeError(e)}`);
  }
  return members.members.flatMap((m) => m.clientURLs);
}

async function health(ctx: Ctx): Promise<void> {
  const eps = await endpointsOf(ctx);
  const results = await Promise.all(eps.map(async (ep): Promise<EpHealth> => {
    const c = ctx.clientFor(ep);
    const start = process.hrtime.bigint();
    try {
      await c.kv.get('health', ctx.callOpts);
      return { ep, health: true, took: goDuration(Number(process.hrtime.bigint() - start)), error: '' };
    } catch (e) {
      const took = goDuration(Number(process.hrtime.bigint() - start));
      // Permission denied still proves the proposal went through consensus.
      if (e instanceof EtcdErrors.PermissionDenied) return { ep, health: true, took, error: '' };
      return { ep, health: false, took, error: describeError(e) };
    } finally {
      c.close();
    }
  }));
  ctx.display.endpointHealth(results);
  if (results.some((h) => h.error !== '')) throw new CtlExit(ExitCode.Error, 'unhealthy cluster');
}

/** One call per endpoint; failures reported as etcdctl does, then exit 1 after the rest printed. */
async function perEndpoint<T>(ctx: Ctx, call: (ep: string) => Promise<T>, failed: (ep: string, e: unknown) => string): Promise<{ ok: Array<{ ep: string; res: T }>; failures: number }> {
  const ok: Array<{ ep: string; res: T }> = [];
  let failures = 0;
  for (const ep of await endpointsOf(ctx)) {
    try {
      ok.push({ ep, res: await ctx.call(call(ep)) });
    } catch (e) {
      failures++;
      ctx.io.stderr(failed(ep, e));
    }
  }
  return { ok, failures };
}

async function status(ctx: Ctx): Promise<void> {
  const { ok, failures } = await perEndpoint(ctx, (ep) => ctx.client.maintenance.status({ endpoint: ep, ...ctx.callOpts }),
    (ep, e) => `Failed to get the status of endpoint ${ep} (${describeError(e)})\n`);
  ctx.display.endpointStatus(ok.map(({ ep, res }): EpStatus => ({ ep, resp: res })));
  if (failures > 0) throw new CtlExit(ExitCode.Error, undefined);
}

async function hashkv(ctx: Ctx): Promise<void> {
  const { ok, failures } = await perEndpoint(ctx, (ep) => ctx.client.maintenance.hashKV(ctx.int('rev'), { endpoint: ep, ...ctx.callOpts }),
    (ep, e) => `Failed to get the hash of endpoint ${ep} (${describeError(e)})\n`);
  ctx.display.endpointHashKV(ok.map(({ ep, res }): EpHashKV => ({ ep, resp: res })));
  if (failures > 0) throw new CtlExit(ExitCode.Error, undefined);
}

async function defrag(ctx: Ctx): Promise<void> {
  if (ctx.str('data-dir') !== '') throw new CtlExit(ExitCode.BadFeature, 'defrag --data-dir is not supported by concordctl; use concordutl');
  let failures = 0;
  for (const ep of await endpointsOf(ctx)) {
    try {
      await ctx.call(ctx.client.maintenance.defragment({ endpoint: ep, ...ctx.callOpts }));
      ctx.io.stdout(`Finished defragmenting etcd member[${ep}]\n`);
    } catch (e) {
      failures++;
      ctx.io.stderr(`Failed to defragment etcd member[${ep}] (${describeError(e)})\n`);
    }
  }
  if (failures > 0) throw new CtlExit(ExitCode.Error, undefined);
}

async function alarmList(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 0) throw new CtlExit(ExitCode.BadArgs, 'alarm list command accepts no arguments');
  ctx.display.alarm(await ctx.call(ctx.client.maintenance.alarms(ctx.callOpts)));
}

async function alarmDisarm(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 0) throw new CtlExit(ExitCode.BadArgs, 'alarm disarm command accepts no arguments');
  // clientv3's AlarmDisarm of an empty member: list, then disarm each raised alarm.
  const raised = await ctx.call(ctx.client.maintenance.alarms(ctx.callOpts));
  let last = raised;
  for (const a of raised.alarms) last = await ctx.call(ctx.client.maintenance.disarm(a, ctx.callOpts));
  ctx.display.alarm(raised.alarms.length === 0 ? raised : last);
}

async function moveLeader(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 1) throw new CtlExit(ExitCode.BadArgs, 'move-leader command needs 1 argument');
  const raw = ctx.args[0]!;
  if (!/^[0-9a-fA-F]+$/.test(raw)) throw new CtlExit(ExitCode.BadArgs, `strconv.ParseUint: parsing ${JSON.stringify(raw)}: invalid syntax`);
  const target = BigInt(`0x${raw}`);
  // Find the leader among the endpoints; the request must go to it.
  let leaderEp: string | undefined;
  let leaderId = 0n;
  for (const ep of ctx.globals.endpoints) {
    const st = await ctx.call(ctx.client.maintenance.status({ endpoint: ep, ...ctx.callOpts }));
    if (st.header && st.leader === st.header.memberId) { leaderEp = ep; leaderId = st.leader; break; }
  }
  if (leaderEp === undefined) throw new CtlExit(ExitCode.Error, 'no leader endpoint given at [' + ctx.globals.endpoints.join(' ') + ']');
  await ctx.call(ctx.client.maintenance.moveLeader(target, { endpoint: leaderEp, ...ctx.callOpts }));
  ctx.io.stdout(`Leadership transferred from ${leaderId.toString(16)} to ${target.toString(16)}\n`);
}

export const maintenanceCommands: Command[] = [
  {
    name: 'endpoint',
    persistentFlags: [boolFlag('cluster')],
    sub: [
      { name: 'health', run: health },
      { name: 'status', run: status },
      { name: 'hashkv', flags: [intFlag('rev')], run: hashkv },
    ],
  },
  { name: 'defrag', flags: [boolFlag('cluster'), strFlag('data-dir')], run: defrag },
  { name: 'alarm', sub: [{ name: 'list', run: alarmList }, { name: 'disarm', run: alarmDisarm }] },
  { name: 'move-leader', run: moveLeader },
];
