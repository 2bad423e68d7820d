// lease grant | revoke | timetolive | list | keep-alive, with etcdctl's wrapping of errors.
import { CtlExit, ExitCode } from '../exit.js';
import { describeError } from '../errors.js';
import type { Ctx } from '../context.js';
import { boolFlag, type Command } from '../command.js';

/** A lease ID argument in hex, as strconv.ParseInt(arg, 16, 64). */
function leaseArg(arg: string): bigint {
  if (!/^[+-]?[0-9a-fA-F]+$/.test(arg)) throw new CtlExit(ExitCode.BadArgs, `bad lease ID arg (strconv.ParseInt: parsing ${JSON.stringify(arg)}: invalid syntax), expecting ID in Hex`);
  const v = BigInt(`0x${arg.replace(/^[+-]/, '')}`) * (arg.startsWith('-') ? -1n : 1n);
  if (v > 0x7fffffffffffffffn || v < -0x8000000000000000n) throw new CtlExit(ExitCode.BadArgs, `bad lease ID arg (strconv.ParseInt: parsing ${JSON.stringify(arg)}: value out of range), expecting ID in Hex`);
  return BigInt.asUintN(64, v);
}

/** Runs a call whose failure etcdctl wraps as "<what> (<error>)". */
async function wrapped<T>(ctx: Ctx, what: string, p: Promise<T>): Promise<T> {
  try {
    return await ctx.call(p);
  } catch (e) {
    if (e instanceof CtlExit) throw e;
    throw new CtlExit(ExitCode.Error, `${what} (${describeError(e)})`);
  }
}

/** timetolive and list end with ExitBadConnection and the error as it is (and no deadline). */
async function bareConnectionError<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw new CtlExit(ExitCode.BadConnection, describeError(e));
  }
}

async function grant(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 1) throw new CtlExit(ExitCode.BadArgs, 'lease grant command needs TTL argument');
  const raw = ctx.args[0]!;
  if (!/^[+-]?\d+$/.test(raw)) throw new CtlExit(ExitCode.BadArgs, `bad TTL (strconv.ParseInt: parsing ${JSON.stringify(raw)}: invalid syntax)`);
  const res = await wrapped(ctx, 'failed to grant lease', ctx.client.lease.grant(Number(raw), ctx.callOpts));
  ctx.display.grant(res);
}

async function revoke(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 1) throw new CtlExit(ExitCode.BadArgs, 'lease revoke command needs 1 argument');
  const id = leaseArg(ctx.args[0]!);
  const res = await wrapped(ctx, 'failed to revoke lease', ctx.client.lease.revoke(id, ctx.callOpts));
  ctx.display.revoke(id, res);
}

async function timetolive(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 1) throw new CtlExit(ExitCode.BadArgs, 'lease timetolive command needs lease ID as argument');
  const id = leaseArg(ctx.args[0]!);
  const keys = ctx.bool('keys');
  const res = await bareConnectionError(ctx.call(ctx.client.lease.timeToLive(id, { keys })));
  ctx.display.timeToLive(res, keys);
}

async function list(ctx: Ctx): Promise<void> {
  const res = await bareConnectionError(ctx.call(ctx.client.lease.leases()));
  ctx.display.leases(res);
}

async function keepAlive(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 1) throw new CtlExit(ExitCode.BadArgs, 'lease keep-alive command needs lease ID as argument');
  const id = leaseArg(ctx.args[0]!);
  if (ctx.bool('once')) {
    const res = await ctx.client.lease.keepAliveOnce(id);
    if (res.TTL <= 0) throw new CtlExit(ExitCode.BadConnection, 'etcdserver: requested lease not found');
    ctx.display.keepAlive(res);
    return;
  }
  // The first renewal tells the TTL the keep-alive works with; later ones arrive by themselves.
  const first = await ctx.client.lease.keepAliveOnce(id);
  if (first.TTL > 0) {
    ctx.display.keepAlive(first);
    const ka = ctx.client.lease.keepAlive(id, first.TTL, (res) => ctx.display.keepAlive(res));
    await ka.lost;
  }
  if (ctx.display.format === 'simple') ctx.io.stdout(`lease ${id.toString(16).padStart(16, '0')} expired or revoked.\n`);
}

export const leaseCommand: Command = {
  name: 'lease',
  sub: [
    { name: 'grant', run: grant },
    { name: 'revoke', run: revoke },
    { name: 'timetolive', flags: [boolFlag('keys')], run: timetolive },
    { name: 'list', run: list },
    { name: 'keep-alive', flags: [boolFlag('once')], run: keepAlive },
  ],
};
