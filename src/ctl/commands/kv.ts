// get, put, del, txn and compaction, with etcdctl's flags, argument checks and messages.
import { Compare, Op, type GetOptions, type PutOptions, type DeleteOptions, type CompareOp } from '../../client/index.js';
import type { etcdserverpb as pb } from '../../client/index.js';
import { CtlExit, ExitCode } from '../exit.js';
import { parseFlags } from '../flags.js';
import type { Ctx } from '../context.js';
import { boolFlag, strFlag, intFlag, type Command } from '../command.js';

const getFlags = [strFlag('consistency', 'l'), strFlag('order'), strFlag('sort-by'), intFlag('limit'), boolFlag('prefix'),
  boolFlag('from-key'), intFlag('rev'), boolFlag('keys-only'), boolFlag('print-value-only')];
const putFlags = [strFlag('lease', '0'), boolFlag('prev-kv'), boolFlag('ignore-value'), boolFlag('ignore-lease')];
const delFlags = [boolFlag('prefix'), boolFlag('prev-kv'), boolFlag('from-key')];

type Flags = { bool(n: string): boolean; str(n: string): string; int(n: string): number };

const bothRanges = '`--prefix` and `--from-key` cannot be set at the same time, choose one';
const tooManyArgs = 'too many arguments, only accept one argument when `--prefix` or `--from-key` is set';

/** The key and range options of get/del: an empty key with --prefix or --from-key means "\0". */
function rangeArgs(f: Flags, args: string[]): { key: string; opts: { rangeEnd?: string; fromKey?: boolean; prefix?: boolean } } {
  const prefix = f.bool('prefix');
  const fromKey = f.bool('from-key');
  if (prefix && fromKey) throw new CtlExit(ExitCode.BadArgs, bothRanges);
  let key = args[0]!;
  if (args.length > 1) {
    if (prefix || fromKey) throw new CtlExit(ExitCode.BadArgs, tooManyArgs);
    return { key, opts: { rangeEnd: args[1]! } };
  }
  if (prefix) return key === '' ? { key: '\0', opts: { fromKey: true } } : { key, opts: { prefix: true } };
  if (fromKey) { if (key === '') key = '\0'; return { key, opts: { fromKey: true } }; }
  return { key, opts: {} };
}

export function getOp(f: Flags, args: string[]): [string, GetOptions] {
  if (args.length === 0) throw new CtlExit(ExitCode.BadArgs, 'get command needs one argument as key and an optional argument as range_end');
  const consistency = f.str('consistency');
  if (consistency !== 's' && consistency !== 'l') throw new CtlExit(ExitCode.BadFeature, `unknown consistency flag "${consistency}"`);
  const { key, opts } = rangeArgs(f, args);
  const order = f.str('order').toUpperCase();
  if (!['ASCEND', 'DESCEND', ''].includes(order)) throw new CtlExit(ExitCode.BadFeature, `bad sort order ${f.str('order')}`);
  const targets: Record<string, GetOptions['sort'] extends infer S ? S extends { target: infer T } ? T : never : never> = {
    CREATE: 'create', KEY: 'key', MODIFY: 'mod', VALUE: 'value', VERSION: 'version', '': 'key',
  };
  const target = targets[f.str('sort-by').toUpperCase()];
  if (target === undefined) throw new CtlExit(ExitCode.BadFeature, `bad sort target ${f.str('sort-by')}`);
  // clientv3's WithSort: ascending by key is the natural order, sent as no sort at all.
  let sortOrder: 'none' | 'ascend' | 'descend' = order === 'ASCEND' ? 'ascend' : order === 'DESCEND' ? 'descend' : 'none';
  if (target === 'key' && sortOrder === 'ascend') sortOrder = 'none';
  return [key, {
    ...opts, limit: f.int('limit'), revision: f.int('rev') > 0 ? f.int('rev') : 0, serializable: consistency === 's',
    sort: { target, order: sortOrder }, keysOnly: f.bool('keys-only'),
  }];
}

function putOp(f: Flags, args: string[], stdin: string | undefined): [string, string, PutOptions] {
  const usage = 'put command needs 1 argument and input from stdin or 2 arguments';
  if (args.length === 0) throw new CtlExit(ExitCode.BadArgs, usage);
  if (f.bool('ignore-value') && args.length > 1) throw new CtlExit(ExitCode.BadArgs, "put command needs only 1 argument when 'ignore-value' is set");
  let value = '';
  if (!f.bool('ignore-value')) {
    if (args.length > 1) value = args[1]!;
    else if (stdin !== undefined) value = stdin;
    else throw new CtlExit(ExitCode.BadArgs, usage);
  }
  const leaseStr = f.str('lease');
  if (!/^[+-]?[0-9a-fA-F]+$/.test(leaseStr)) throw new CtlExit(ExitCode.BadArgs, `bad lease ID (strconv.ParseInt: parsing ${JSON.stringify(leaseStr)}: invalid syntax), expecting ID in Hex`);
  const lease = BigInt.asIntN(64, BigInt(`0x${leaseStr.replace(/^[+-]/, '')}`));
  return [args[0]!, value, { lease, prevKv: f.bool('prev-kv'), ignoreValue: f.bool('ignore-value'), ignoreLease: f.bool('ignore-lease') }];
}

function delOp(f: Flags, args: string[]): [string, DeleteOptions] {
  if (args.length === 0 || args.length > 2) throw new CtlExit(ExitCode.BadArgs, 'del command needs one argument as key and an optional argument as range_end');
  const { key, opts } = rangeArgs(f, args);
  return [key, { ...opts, prevKv: f.bool('prev-kv') }];
}

function flagsOf(values: Map<string, unknown>): Flags {
  return { bool: (n) => values.get(n) as boolean, str: (n) => values.get(n) as string, int: (n) => values.get(n) as number };
}

async function get(ctx: Ctx): Promise<void> {
  const [key, opts] = getOp(ctx, ctx.args);
  const res = await ctx.call(ctx.client.kv.get(key, { ...opts, ...ctx.callOpts }));
  ctx.display.valueOnly = ctx.bool('print-value-only');
  ctx.display.get(res);
}

async function put(ctx: Ctx): Promise<void> {
  const stdin = ctx.args.length === 1 && !ctx.bool('ignore-value') ? await ctx.io.readStdin() : undefined;
  const [key, value, opts] = putOp(ctx, ctx.args, stdin);
  ctx.display.put(await ctx.call(ctx.client.kv.put(key, value, { ...opts, ...ctx.callOpts })));
}

async function del(ctx: Ctx): Promise<void> {
  const [key, opts] = delOp(ctx, ctx.args);
  ctx.display.del(await ctx.call(ctx.client.kv.delete(key, { ...opts, ...ctx.callOpts })));
}

async function compaction(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 1) throw new CtlExit(ExitCode.BadArgs, 'compaction command needs 1 argument');
  const raw = ctx.args[0]!;
  if (!/^[+-]?\d+$/.test(raw)) throw new CtlExit(ExitCode.Error, `strconv.ParseInt: parsing ${JSON.stringify(raw)}: invalid syntax`);
  const rev = Number(raw);
  await ctx.call(ctx.client.kv.compact(rev, { physical: ctx.bool('physical'), ...ctx.callOpts }));
  ctx.io.stdout(`compacted revision ${rev}\n`);
}

// ---- txn: compares, a blank line, success ops, a blank line, failure ops

/** etcdctl's argify: words, "Go-quoted strings" and 'single-quoted strings'. */
export function argify(s: string): string[] {
  const re = /"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?/g;
  return (s.match(re) ?? []).map((a) => {
    if (a.startsWith("'")) return a.slice(1, -1);
    if (a.startsWith('"')) return unquoteGo(a) ?? a;
    return a;
  });
}

/** Go's strconv.Unquote of a double-quoted literal (the escapes JSON also has, plus \x.. and \a\v). */
function unquoteGo(q: string): string | undefined {
  const body = q.slice(1, -1).replace(/\\x([0-9a-fA-F]{2})/g, '\\u00$1').replace(/\\a/g, '\\u0007').replace(/\\v/g, '\\u000b');
  try { return JSON.parse(`"${body}"`) as string; } catch { return undefined; }
}

const compareOps: Record<string, CompareOp> = { '=': '=', '==': '=', '!=': '!=', '<': '<', '>': '>' };

export function parseCompare(line: string): pb.Compare {
  const paren = line.indexOf('(');
  if (paren < 0) throw new CtlExit(ExitCode.InvalidInput, `malformed comparison: ${line}`);
  const target = line.slice(0, paren);
  const m = /^("(?:[^"\\]|\\.)*")\)\s+(\S+)\s+("(?:[^"\\]|\\.)*")/.exec(line.slice(paren + 1));
  const key = m ? unquoteGo(m[1]!) : undefined;
  const val = m ? unquoteGo(m[3]!) : undefined;
  if (!m || key === undefined || val === undefined) throw new CtlExit(ExitCode.InvalidInput, `malformed comparison: ${line}`);
  const op = compareOps[m[2]!];
  if (op === undefined) throw new CtlExit(ExitCode.InvalidInput, `malformed comparison: ${line}`);
  const int = () => {
    if (!/^[+-]?\d+$/.test(val)) throw new CtlExit(ExitCode.InvalidInput, `invalid txn compare request: ${line}`);
    return Number(val);
  };
  switch (target) {
    case 'ver': case 'version': return Compare.version(key, op, int());
    case 'c': case 'create': return Compare.createRevision(key, op, int());
    case 'm': case 'mod': return Compare.modRevision(key, op, int());
    case 'val': case 'value': return Compare.value(key, op, val);
    default: throw new CtlExit(ExitCode.InvalidInput, `malformed comparison: ${line} (unknown target ${target})`);
  }
}

export function parseRequestOp(line: string): pb.RequestOp {
  const args = argify(line);
  if (args.length < 2) throw new CtlExit(ExitCode.InvalidInput, `invalid txn compare request: ${line}`);
  const invalid = () => new CtlExit(ExitCode.InvalidInput, `invalid txn request: ${line}`);
  const specs = { get: getFlags, put: putFlags, del: delFlags }[args[0]!];
  if (!specs) throw invalid();
  let parsed;
  try { parsed = parseFlags(args.slice(1), specs); } catch { throw invalid(); }
  const f = flagsOf(parsed.values);
  switch (args[0]) {
    case 'get': { const [k, o] = getOp(f, parsed.args); return Op.get(k, o); }
    case 'put': { const [k, v, o] = putOp(f, parsed.args, undefined); return Op.put(k, v, o); }
    default: { const [k, o] = delOp(f, parsed.args); return Op.delete(k, o); }
  }
}

async function txn(ctx: Ctx): Promise<void> {
  if (ctx.args.length !== 0) throw new CtlExit(ExitCode.BadArgs, 'txn command does not accept argument');
  const interactive = ctx.bool('interactive');
  const prompt = (s: string) => { if (interactive) ctx.io.stdout(`${s}\n`); };
  const lines = ctx.io.stdinLines()[Symbol.asyncIterator]();
  /** Lines up to a blank one; running out of input is etcdctl's "EOF" (exit 3). */
  const section = async <T>(parse: (l: string) => T): Promise<T[]> => {
    const out: T[] = [];
    for (;;) {
      const r = await lines.next();
      if (r.done) throw new CtlExit(ExitCode.InvalidInput, 'EOF');
      const l = r.value.trim();
      if (l === '') return out;
      out.push(parse(l));
    }
  };
  prompt('compares:');
  const compares = await section(parseCompare);
  prompt('success requests (get, put, del):');
  const success = await section(parseRequestOp);
  prompt('failure requests (get, put, del):');
  const failure = await section(parseRequestOp);
  const t = ctx.client.kv.txn().if(...compares).then(...success).else(...failure);
  ctx.display.txn(await ctx.call(t.commit()));
}

export const kvCommands: Command[] = [
  { name: 'get', flags: getFlags, run: get },
  { name: 'put', flags: putFlags, run: put },
  { name: 'del', flags: delFlags, run: del },
  { name: 'txn', flags: [boolFlag('interactive', 'i')], run: txn },
  { name: 'compaction', flags: [boolFlag('physical')], run: compaction },
];
