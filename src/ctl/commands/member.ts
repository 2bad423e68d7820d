// member add | remove | update | list | promote.
import { etcdserverpb as pb } from '../../client/index.js';
import { CtlExit, ExitCode } from '../exit.js';
import { goQuote } from '../format.js';
import type { Ctx } from '../context.js';
import { boolFlag, strFlag, type Command } from '../command.js';

const u64Max = (1n << 64n) - 1n;

/** A member ID argument in hex, as strconv.ParseUint(arg, 16, 64). */
function memberArg(arg: string | undefined): bigint {
  if (arg === undefined) throw new CtlExit(ExitCode.BadArgs, 'member ID is not provided');
  if (!/^[0-9a-fA-F]+$/.test(arg)) throw new CtlExit(ExitCode.BadArgs, `bad member ID arg (strconv.ParseUint: parsing ${JSON.stringify(arg)}: invalid syntax), expecting ID in Hex`);
  const v = BigInt(`0x${arg}`);
  if (v > u64Max) throw new CtlExit(ExitCode.BadArgs, `bad member ID arg (strconv.ParseUint: parsing ${JSON.stringify(arg)}: value out of range), expecting ID in Hex`);
  return v;
}

async function list(ctx: Ctx): Promise<void> {
  ctx.display.memberList(await ctx.call(ctx.client.cluster.memberList(ctx.callOpts)));
}

async function add(ctx: Ctx): Promise<void> {
  if (ctx.args.length < 1) throw new CtlExit(ExitCode.BadArgs, 'member name not provided');
  if (ctx.args.length > 1) {
    let ev = 'too many arguments';
    for (const s of ctx.args) if (s.toLowerCase().startsWith('http')) ev += `, did you mean --peer-urls=${s}`;
    throw new CtlExit(ExitCode.BadArgs, ev);
  }
  const name = ctx.args[0]!;
  const peerUrls = ctx.str('peer-urls');
  if (peerUrls === '') throw new CtlExit(ExitCode.BadArgs, 'member peer urls not provided');
  const res = await ctx.call(ctx.client.cluster.memberAdd(peerUrls.split(','), { learner: ctx.bool('learner'), ...ctx.callOpts }));
  const newId = res.member!.ID;
  ctx.display.memberChange('added to', newId, res.header, res, pb.MemberAddResponse as pb.MessageFns<unknown>);
  if (ctx.display.format !== 'simple') return;
  const conf = res.members.flatMap((m) => m.peerURLs.map((u) => `${m.ID === newId ? name : m.name}=${u}`));
  ctx.io.stdout(`\nETCD_NAME=${goQuote(name)}\nETCD_INITIAL_CLUSTER=${goQuote(conf.join(','))}\n`
    + `ETCD_INITIAL_ADVERTISE_PEER_URLS=${goQuote(peerUrls)}\nETCD_INITIAL_CLUSTER_STATE="existing"\n`);
}

async function remove(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 1) throw new CtlExit(ExitCode.BadArgs, 'member ID is not provided');
  const id = memberArg(ctx.args[0]);
  const res = await ctx.call(ctx.client.cluster.memberRemove(id, ctx.callOpts));
  ctx.display.memberChange('removed from', id, res.header, res, pb.MemberRemoveResponse as pb.MessageFns<unknown>);
}

async function update(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 1) throw new CtlExit(ExitCode.BadArgs, 'member ID is not provided');
  const id = memberArg(ctx.args[0]);
  const peerUrls = ctx.str('peer-urls');
  if (peerUrls === '') throw new CtlExit(ExitCode.BadArgs, 'member peer urls not provided');
  const res = await ctx.call(ctx.client.cluster.memberUpdate(id, peerUrls.split(','), ctx.callOpts));
  ctx.display.memberChange('updated in', id, res.header, res, pb.MemberUpdateResponse as pb.MessageFns<unknown>);
}

async function promote(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 1) throw new CtlExit(ExitCode.BadArgs, 'member ID is not provided');
  const id = memberArg(ctx.args[0]);
  const res = await ctx.call(ctx.client.cluster.memberPromote(id, ctx.callOpts));
  ctx.display.memberChange('promoted in', id, res.header, res, pb.MemberPromoteResponse as pb.MessageFns<unknown>);
}

export const memberCommand: Command = {
  name: 'member',
  sub: [
    { name: 'add', flags: [strFlag('peer-urls'), boolFlag('learner')], run: add },
    { name: 'remove', run: remove },
    { name: 'update', flags: [strFlag('peer-urls')], run: update },
    { name: 'list', run: list },
    { name: 'promote', run: promote },
  ],
};
