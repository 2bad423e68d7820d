// user, role and auth: etcd's auth management, with etcdctl's argument checks, password
// prompts, messages and exit codes (ctlv3/command/{user,role,auth}_command.go).
import { EtcdErrors, prefixEnd, type PermissionType } from '../../client/index.js';
import { CtlExit, ExitCode } from '../exit.js';
import { askPassword, scanWord } from '../password.js';
import type { Ctx } from '../context.js';
import { boolFlag, strFlag, type Command } from '../command.js';

const badArgs = (text: string) => new CtlExit(ExitCode.BadArgs, text);

function exactly(ctx: Ctx, n: number, text: string): void {
  if (ctx.args.length !== n) throw badArgs(text);
}

/** readPasswordInteractive: asked twice, must be non-empty and the same both times. */
async function newPassword(ctx: Ctx, name: string): Promise<string> {
  const first = await askPassword(ctx.io, `Password of ${name}: `);
  if (first === '') throw badArgs('empty password');
  const second = await askPassword(ctx.io, `Type password of ${name} again for confirmation: `);
  if (first !== second) throw badArgs('given passwords are different');
  return first;
}

/** The password of `user passwd` and of `user add` without one: stdin's first word or a prompt. */
const passwordFor = (ctx: Ctx, name: string) => (ctx.bool('interactive') ? newPassword(ctx, name) : scanWord(ctx.io));

async function userAdd(ctx: Ctx): Promise<void> {
  exactly(ctx, 1, 'user add command requires user name as its argument');
  const arg = ctx.args[0]!;
  let user = arg;
  let password = '';
  const noPassword = ctx.bool('no-password');
  if (!noPassword) {
    const colon = arg.indexOf(':');
    if (ctx.str('new-user-password') !== '') password = ctx.str('new-user-password');
    else if (colon < 0) password = await passwordFor(ctx, arg);
    else {
      [user, password] = [arg.slice(0, colon), arg.slice(colon + 1)];
      if (user === '') throw badArgs('empty user name is not allowed');
    }
  }
  const r = await ctx.call(ctx.client.auth.userAdd(user, password, { noPassword }));
  ctx.display.userAdd(user, r);
}

async function userGet(ctx: Ctx): Promise<void> {
  exactly(ctx, 1, 'user get command requires user name as its argument');
  const name = ctx.args[0]!;
  const r = await ctx.call(ctx.client.auth.userGet(name));
  if (!ctx.bool('detail')) { ctx.display.userGet(name, r); return; }
  ctx.io.stdout(Buffer.from(`User: ${name}\n`, 'latin1'));
  for (const role of r.roles) {
    ctx.io.stdout('\n');
    ctx.display.roleGet(role, await ctx.call(ctx.client.auth.roleGet(role)));
  }
}

async function userList(ctx: Ctx): Promise<void> {
  exactly(ctx, 0, 'user list command requires no arguments');
  ctx.display.userList(await ctx.call(ctx.client.auth.userList()));
}

async function userDelete(ctx: Ctx): Promise<void> {
  exactly(ctx, 1, 'user delete command requires user name as its argument');
  ctx.display.userDelete(ctx.args[0]!, await ctx.call(ctx.client.auth.userDelete(ctx.args[0]!)));
}

async function userPasswd(ctx: Ctx): Promise<void> {
  exactly(ctx, 1, 'user passwd command requires user name as its argument');
  const password = await passwordFor(ctx, ctx.args[0]!);
  ctx.display.userChangePassword(await ctx.call(ctx.client.auth.userChangePassword(ctx.args[0]!, password)));
}

async function userGrantRole(ctx: Ctx): Promise<void> {
  exactly(ctx, 2, 'user grant command requires user name and role name as its argument');
  const [user, role] = ctx.args as [string, string];
  ctx.display.userGrantRole(user, role, await ctx.call(ctx.client.auth.userGrantRole(user, role)));
}

async function userRevokeRole(ctx: Ctx): Promise<void> {
  exactly(ctx, 2, 'user revoke-role requires user name and role name as its argument');
  const [user, role] = ctx.args as [string, string];
  ctx.display.userRevokeRole(user, role, await ctx.call(ctx.client.auth.userRevokeRole(user, role)));
}

const interactive = { name: 'interactive', kind: 'bool', default: true } as const;

export const userCommand: Command = {
  name: 'user',
  sub: [
    { name: 'add', flags: [interactive, strFlag('new-user-password'), boolFlag('no-password')], run: userAdd },
    { name: 'delete', run: userDelete },
    { name: 'get', flags: [boolFlag('detail')], run: userGet },
    { name: 'list', run: userList },
    { name: 'passwd', flags: [interactive], run: userPasswd },
    { name: 'grant-role', run: userGrantRole },
    { name: 'revoke-role', run: userRevokeRole },
  ],
};

const zero = Buffer.from([0]);

/** etcdctl's permRange: the key and range end a permission covers, from the arguments and flags. */
function permRange(ctx: Ctx, args: string[]): [Buffer, Buffer] {
  const prefix = ctx.bool('prefix');
  const fromKey = ctx.bool('from-key');
  const exclusive = '--from-key and --prefix flags are mutually exclusive';
  const key = Buffer.from(args[0]!);
  if (key.length === 0) {
    if (prefix && fromKey) throw badArgs(exclusive);
    // Every key: "\0" as the key, and "\0" (open ended) as the end for --prefix and --from-key.
    return [zero, prefix || fromKey ? zero : Buffer.alloc(0)];
  }
  if (args.length === 1) {
    if (prefix && fromKey) throw badArgs(exclusive);
    if (prefix) return [key, prefixEnd(key)];
    return [key, fromKey ? zero : Buffer.alloc(0)];
  }
  if (prefix) throw badArgs('unexpected endkey argument with --prefix flag');
  if (fromKey) throw badArgs('unexpected endkey argument with --from-key flag');
  return [key, Buffer.from(args[1]!)];
}

/** clientv3.StrToPermissionType. */
function permissionType(s: string): PermissionType {
  const t = ({ READ: 'read', WRITE: 'write', READWRITE: 'readwrite' } as const)[s.toUpperCase()];
  if (t === undefined) throw badArgs(`invalid permission type: ${s}`);
  return t;
}

async function roleAdd(ctx: Ctx): Promise<void> {
  exactly(ctx, 1, 'role add command requires role name as its argument');
  ctx.display.roleAdd(ctx.args[0]!, await ctx.call(ctx.client.auth.roleAdd(ctx.args[0]!)));
}

async function roleDelete(ctx: Ctx): Promise<void> {
  exactly(ctx, 1, 'role delete command requires role name as its argument');
  ctx.display.roleDelete(ctx.args[0]!, await ctx.call(ctx.client.auth.roleDelete(ctx.args[0]!)));
}

async function roleGet(ctx: Ctx): Promise<void> {
  exactly(ctx, 1, 'role get command requires role name as its argument');
  ctx.display.roleGet(ctx.args[0]!, await ctx.call(ctx.client.auth.roleGet(ctx.args[0]!)));
}

async function roleList(ctx: Ctx): Promise<void> {
  exactly(ctx, 0, 'role list command requires no arguments');
  ctx.display.roleList(await ctx.call(ctx.client.auth.roleList()));
}

async function roleGrantPermission(ctx: Ctx): Promise<void> {
  if (ctx.args.length < 3) throw badArgs('role grant command requires role name, permission type, and key [endkey] as its argument');
  const [role, type] = ctx.args as [string, string];
  const perm = permissionType(type);
  const [key, rangeEnd] = permRange(ctx, ctx.args.slice(2));
  ctx.display.roleGrantPermission(role, await ctx.call(ctx.client.auth.roleGrantPermission(role, key, perm, { rangeEnd })));
}

async function roleRevokePermission(ctx: Ctx): Promise<void> {
  if (ctx.args.length < 2) throw badArgs('role revoke-permission command requires role name and key [endkey] as its argument');
  const role = ctx.args[0]!;
  const [key, rangeEnd] = permRange(ctx, ctx.args.slice(1));
  const r = await ctx.call(ctx.client.auth.roleRevokePermission(role, key, { rangeEnd }));
  ctx.display.roleRevokePermission(role, Buffer.from(ctx.args[1]!), rangeEnd, r);
}

const permFlags = [boolFlag('prefix'), boolFlag('from-key')];

export const roleCommand: Command = {
  name: 'role',
  sub: [
    { name: 'add', run: roleAdd },
    { name: 'delete', run: roleDelete },
    { name: 'get', run: roleGet },
    { name: 'list', run: roleList },
    { name: 'grant-permission', flags: permFlags, run: roleGrantPermission },
    { name: 'revoke-permission', flags: permFlags, run: roleRevokePermission },
  ],
};

/** etcdctl's auth enable: when root lacks the root role, it adds the role, grants it, and tries again. */
async function authEnable(ctx: Ctx): Promise<void> {
  exactly(ctx, 0, 'auth enable command does not accept any arguments');
  const opts = ctx.callOpts;
  for (;;) {
    try {
      await ctx.call(ctx.client.auth.enable(opts));
      break;
    } catch (e) {
      if (!(e instanceof EtcdErrors.RootRoleNotExist)) throw e;
    }
    await ctx.call(ctx.client.auth.roleAdd('root', opts));
    await ctx.call(ctx.client.auth.userGrantRole('root', 'root', opts));
  }
  ctx.io.stdout('Authentication Enabled\n');
}

async function authDisable(ctx: Ctx): Promise<void> {
  exactly(ctx, 0, 'auth disable command does not accept any arguments');
  await ctx.call(ctx.client.auth.disable(ctx.callOpts));
  ctx.io.stdout('Authentication Disabled\n');
}

export const authCommand: Command = {
  name: 'auth',
  sub: [
    { name: 'enable', run: authEnable },
    { name: 'disable', run: authDisable },
  ],
};
