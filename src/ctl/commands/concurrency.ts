// lock and elect: hold until SIGINT/SIGTERM (then release and exit 0), or, for lock with a
// command, run it while holding the lock (ETCD_LOCK_KEY / ETCD_LOCK_REV in its environment).
import { spawn } from 'node:child_process';
import { CtlExit, ExitCode } from '../exit.js';
import type { Ctx } from '../context.js';
import { boolFlag, intFlag, type Command } from '../command.js';

/** concurrency.NewSession: a lease (granted as a unary call, so its failure is logged like one) kept alive. */
async function session(ctx: Ctx, ttl: number): Promise<{ lease: bigint; end(): Promise<void> }> {
  const { ID, TTL } = await ctx.call(ctx.client.lease.grant(ttl));
  const ka = ctx.client.lease.keepAlive(ID, TTL);
  return { lease: ID, end: async () => { ka.close(); await ctx.client.lease.revoke(ID).catch(() => { /* expires anyway */ }); } };
}

/** Resolves on the first SIGINT or SIGTERM (the handlers are removed again). */
function untilSignal(): { done: Promise<void>; dispose(): void } {
  let resolve!: () => void;
  const done = new Promise<void>((r) => { resolve = r; });
  const on = () => resolve();
  process.once('SIGINT', on);
  process.once('SIGTERM', on);
  return { done, dispose: () => { process.off('SIGINT', on); process.off('SIGTERM', on); } };
}

function run(cmd: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: 'inherit', env: { ...env, ...process.env } });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

async function lock(ctx: Ctx): Promise<void> {
  if (ctx.args.length === 0) throw new CtlExit(ExitCode.BadArgs, 'lock takes a lock name argument and an optional command to execute');
  const sig = untilSignal();
  const ac = new AbortController();
  void sig.done.then(() => ac.abort(new CtlExit(ExitCode.Success, undefined)));
  const s = await session(ctx, ctx.int('ttl'));
  try {
    const held = await ctx.client.lock.lock(ctx.args[0]!, { lease: s.lease, signal: ac.signal });
    const cmd = ctx.args.slice(1);
    if (cmd.length > 0) {
      const code = await run(cmd, { ETCD_LOCK_KEY: held.key.toString(), ETCD_LOCK_REV: String(held.fencingToken) });
      await held.unlock();
      if (code !== 0) throw new CtlExit(ExitCode.Error, `exit status ${code}`);
      return;
    }
    ctx.display.get(await ctx.client.kv.get(held.key));
    await sig.done;
    await held.unlock();
  } finally {
    sig.dispose();
    await s.end();
  }
}

async function elect(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 1 && ctx.args.length !== 2) throw new CtlExit(ExitCode.BadArgs, 'elect takes one election name argument and an optional proposal argument');
  const listen = ctx.bool('listen');
  if (ctx.args.length === 1 && !listen) throw new CtlExit(ExitCode.BadArgs, 'no proposal argument but -l not set');
  if (ctx.args.length === 2 && listen) throw new CtlExit(ExitCode.BadArgs, 'proposal given but -l is set');
  const name = ctx.args[0]!;
  const s = await session(ctx, 60);
  const sig = untilSignal();
  const ac = new AbortController();
  void sig.done.then(() => ac.abort(new CtlExit(ExitCode.Success, undefined)));
  try {
    if (listen) {
      const leaders = await ctx.client.election.observe(name, { signal: ac.signal });
      try {
        for await (const res of leaders) ctx.display.get({ header: res.header, kvs: res.kv ? [res.kv] : [], more: false, count: res.kv ? 1 : 0 });
      } catch (e) {
        if (ac.signal.aborted) return;
        throw e;
      }
      if (!ac.signal.aborted) throw new CtlExit(ExitCode.Error, 'elect: observer lost');
      return;
    }
    const lead = await ctx.client.election.campaign(name, ctx.args[1]!, { lease: s.lease, signal: ac.signal });
    ctx.display.get(await ctx.client.kv.get(lead.leader.key));
    await sig.done;
    await lead.resign();
  } finally {
    sig.dispose();
    await s.end();
  }
}

export const concurrencyCommands: Command[] = [
  { name: 'lock', flags: [intFlag('ttl', 10)], run: lock },
  { name: 'elect', flags: [boolFlag('listen', 'l')], run: elect },
];
