// concordctl: etcdctl v3's command line over client/. Global flags (and their ETCDCTL_*
// variables), the command tree, and how a run ends: output, "Error: ..." and etcdctl's exit code.
import { readFileSync } from 'node:fs';
import { Client, EtcdErrors } from '../client/index.js';
import { CtlExit, ExitCode } from './exit.js';
import { describeError } from './errors.js';
import { parseFlags, convertFlag, flagToEnv, FlagError, type FlagSpec } from './flags.js';
import { usageText } from './help.js';
import { colorWanted } from './terminal.js';
import { Ctx, type Globals } from './context.js';
import type { Io } from './io.js';
import { Printer, outputFormats, type OutputFormat } from './printer.js';
import type { Command } from './command.js';
import { kvCommands } from './commands/kv.js';
import { leaseCommand } from './commands/lease.js';
import { memberCommand } from './commands/member.js';
import { maintenanceCommands } from './commands/endpoint.js';
import { concurrencyCommands } from './commands/concurrency.js';
import { watchCommand } from './commands/watch.js';
import { checkCommand } from './commands/check.js';
import { snapshotCommand } from './commands/snapshot.js';
import { makeMirrorCommand } from './commands/mirror.js';
import { userCommand, roleCommand, authCommand } from './commands/auth.js';

/** etcdctl's persistent flags, with etcdctl's defaults. */
const globalFlags: FlagSpec[] = [
  { name: 'endpoints', kind: 'strings', default: ['127.0.0.1:2379'] },
  { name: 'debug', kind: 'bool', default: false },
  { name: 'write-out', short: 'w', kind: 'string', default: 'simple' },
  { name: 'hex', kind: 'bool', default: false },
  { name: 'dial-timeout', kind: 'duration', default: 2000 },
  { name: 'command-timeout', kind: 'duration', default: 5000 },
  { name: 'keepalive-time', kind: 'duration', default: 2000 },
  { name: 'keepalive-timeout', kind: 'duration', default: 6000 },
  { name: 'insecure-transport', kind: 'bool', default: true },
  { name: 'insecure-discovery', kind: 'bool', default: true },
  { name: 'insecure-skip-tls-verify', kind: 'bool', default: false },
  { name: 'cert', kind: 'string', default: '' },
  { name: 'key', kind: 'string', default: '' },
  { name: 'cacert', kind: 'string', default: '' },
  { name: 'user', kind: 'string', default: '' },
  { name: 'password', kind: 'string', default: '' },
  { name: 'discovery-srv', short: 'd', kind: 'string', default: '' },
  { name: 'discovery-srv-name', kind: 'string', default: '' },
];

/** The API version etcdctl 3.4 reports, and the etcdctl version concordctl speaks for. */
const ETCDCTL_VERSION = '3.4.23';
const API_VERSION = '3.4';

const versionCommand: Command = {
  name: 'version',
  run: async (ctx) => { ctx.io.stdout(`etcdctl version: ${ETCDCTL_VERSION}\nAPI version: ${API_VERSION}\n`); },
};

/** `help [command]`: the usage of the command its arguments name (etcdctl's own, for none). */
const helpCommand: Command = {
  name: 'help',
  run: async (ctx) => {
    const found = findCommand(ctx.args);
    if (found !== undefined && 'unknown' in found) {
      ctx.io.stderr(`Unknown help topic [${ctx.args.map((a) => `\`${a}\``).join(' ')}]\n`);
      ctx.io.stdout(usageText(rootCommand, [], versions, false));
      return;
    }
    ctx.io.stdout(usageText(rootCommand, found?.path ?? [], versions));
  },
};

const commands: Command[] = [
  ...kvCommands, watchCommand, leaseCommand, memberCommand, ...maintenanceCommands, snapshotCommand, makeMirrorCommand, ...concurrencyCommands, checkCommand, versionCommand,
  userCommand, roleCommand, authCommand, helpCommand,
];

/** etcdctl itself: the commands, and the global flags every one inherits. */
const rootCommand: Command = { name: 'etcdctl', sub: commands, persistentFlags: globalFlags };
const versions = { version: ETCDCTL_VERSION, apiVersion: API_VERSION };
const helpFlag: FlagSpec = { name: 'help', short: 'h', kind: 'bool', default: false };

/** The command path named by the leading words of argv (flags skipped, global ones with their values). */
function findCommand(argv: readonly string[]): { path: Command[]; rest: string[] } | { unknown: string } | undefined {
  const valued = new Set(globalFlags.filter((f) => f.kind !== 'bool').flatMap((f) => [`--${f.name}`, ...(f.short ? [`-${f.short}`] : [])]));
  const path: Command[] = [];
  let level: Command[] = commands;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { rest.push(...argv.slice(i)); break; }
    if (a.startsWith('-')) { rest.push(a); if (valued.has(a) && i + 1 < argv.length) rest.push(argv[++i]!); continue; }
    const cmd = level.find((c) => c.name === a);
    if (cmd && (path.length === 0 || path[path.length - 1]!.sub)) {
      path.push(cmd);
      level = cmd.sub ?? [];
      continue;
    }
    if (path.length === 0) return { unknown: a };
    rest.push(...argv.slice(i));
    break;
  }
  return path.length === 0 ? undefined : { path, rest };
}

/** ETCDCTL_* variables for the flags a command inherits (the global ones, endpoint's --cluster). */
function readEnvInto(parsed: ReturnType<typeof parseFlags>, env: NodeJS.ProcessEnv, inherited: readonly FlagSpec[]): void {
  for (const spec of inherited) {
    const key = flagToEnv('ETCDCTL', spec.name);
    const v = env[key];
    if (v === undefined || v === '') continue;
    if (parsed.changed.has(spec.name)) {
      // etcd's pkg/flags ends the program through capnslog's Fatalf, in capnslog's layout.
      throw new CtlFatal(`pkg/flags: conflicting environment variable "${key}" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`);
    }
    // pkg/flags returns a value that does not parse as an error etcdctl ignores: the default stays.
    try { parsed.values.set(spec.name, convertFlag(spec, v)); } catch (e) { if (!(e instanceof FlagError)) throw e; }
  }
}

/**
 * pkg/flags' verifyEnv: every ETCDCTL_* variable no inherited flag reads, as "NAME=value", in
 * the environment's order. etcdctl takes ETCDCTL_API out first; watch reads ETCDCTL_WATCH_KEY
 * and ETCDCTL_WATCH_RANGE_END itself.
 */
function unrecognizedEnv(env: NodeJS.ProcessEnv, inherited: readonly FlagSpec[], leaf: Command): string[] {
  const known = new Set(['ETCDCTL_API', ...inherited.map((f) => flagToEnv('ETCDCTL', f.name))]);
  if (leaf === watchCommand) known.add('ETCDCTL_WATCH_KEY').add('ETCDCTL_WATCH_RANGE_END');
  return Object.entries(env).filter(([k]) => k.startsWith('ETCDCTL_') && !known.has(k)).map(([k, v]) => `${k}=${v}`);
}

function globalsOf(values: Map<string, unknown>): Globals {
  let user = values.get('user') as string;
  let password = values.get('password') as string;
  if (user.includes(':') && password === '') [user, password] = [user.slice(0, user.indexOf(':')), user.slice(user.indexOf(':') + 1)];
  const askPassword = user !== '' && password === '' && !(values.get('user') as string).includes(':');
  return {
    askPassword,
    endpoints: values.get('endpoints') as string[],
    dialTimeoutMs: values.get('dial-timeout') as number,
    commandTimeoutMs: values.get('command-timeout') as number,
    user, password,
    insecureTransport: values.get('insecure-transport') as boolean,
    cacert: values.get('cacert') as string,
    cert: values.get('cert') as string,
    key: values.get('key') as string,
  };
}

function makeClient(g: Globals, endpoints: string[], ctx: Ctx): Client {
  const tlsWanted = g.cacert !== '' || g.cert !== '' || g.key !== '';
  return new Client({
    endpoints,
    dialTimeoutMs: g.dialTimeoutMs,
    // etcdctl's mustClient asks for a --user's missing password, before the command's first call.
    auth: g.user !== '' ? { username: g.user, password: g.askPassword ? () => ctx.loginPassword() : g.password } : undefined,
    onIgnoredError: (e) => ctx.logRetryFailure(e),
    tls: tlsWanted ? {
      ca: g.cacert !== '' ? readFileSync(g.cacert) : undefined,
      cert: g.cert !== '' ? readFileSync(g.cert) : undefined,
      key: g.key !== '' ? readFileSync(g.key) : undefined,
    } : undefined,
  });
}

/** A fatal log line (capnslog's "C" level) rather than "Error: ...". */
class CtlFatal extends Error {}

/** capnslog's time: "2006-01-02 15:04:05.000000" in local time. */
function capnslogTime(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds() * 1000, 6)}`;
}

/** Runs one concordctl invocation; resolves with its exit code. */
export async function runCtl(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  let ctx: Ctx | undefined;
  try {
    const found = findCommand(argv) ?? { path: [], rest: [...argv] };
    if ('unknown' in found) {
      io.stderr(`Error: unknown command "${found.unknown}" for "etcdctl"\nRun 'etcdctl --help' for usage.\n`);
      throw new CtlExit(ExitCode.Error, `unknown command "${found.unknown}" for "etcdctl"`);
    }
    const leaf = found.path[found.path.length - 1] ?? rootCommand;
    const usage = () => io.stdout(usageText(rootCommand, found.path, versions));
    const specs = [...globalFlags, ...found.path.flatMap((c) => c.persistentFlags ?? []), ...(leaf.flags ?? []), helpFlag];
    let parsed: ReturnType<typeof parseFlags>;
    try {
      parsed = parseFlags(found.rest, specs);
    } catch (e) {
      // cobra prints the usage and the error, then etcdctl prints the error again.
      if (e instanceof FlagError) { usage(); io.stderr(`Error: ${e.text}\n\n`); }
      throw e;
    }
    // A command with subcommands, or --help: cobra prints the usage and succeeds.
    if (!leaf.run || parsed.values.get('help') === true) { usage(); return ExitCode.Success; }
    const inherited = [...globalFlags, ...found.path.slice(0, -1).flatMap((c) => c.persistentFlags ?? [])];
    readEnvInto(parsed, env, inherited);
    // Logged when the first client is made, as clientConfigFromCmd does (version makes none).
    let unrecognized = unrecognizedEnv(env, inherited, leaf);
    const clientMaker = (g: Globals, endpoints: string[], c: Ctx) => {
      for (const kv of unrecognized) io.stderr(`${capnslogTime(new Date())} W | pkg/flags: unrecognized environment variable ${kv}\n`);
      unrecognized = [];
      return makeClient(g, endpoints, c);
    };
    const format = parsed.values.get('write-out') as string;
    if (!outputFormats.includes(format)) throw new CtlExit(ExitCode.BadFeature, 'unsupported output format');
    const display = new Printer(format as OutputFormat, parsed.values.get('hex') as boolean, io.stdout, (s) => io.stderr(String(s)),
      colorWanted(io.stdoutIsTerminal, env));
    ctx = new Ctx(globalsOf(parsed.values), parsed.args, parsed.dashAt, parsed.values, display, io, clientMaker);
    await leaf.run(ctx);
    return ExitCode.Success;
  } catch (e) {
    if (e instanceof CtlFatal) {
      io.stderr(`${capnslogTime(new Date())} C | ${e.message}\n`);
      return ExitCode.Error;
    }
    if (e instanceof CtlExit) {
      if (e.text !== undefined) io.stderr(`Error: ${e.text}\n`);
      return e.code;
    }
    io.stderr(`Error: ${describeError(e)}\n`);
    // Credentials are checked when etcdctl makes its client (mustClient), which exits 2.
    return e instanceof EtcdErrors.AuthFailed ? ExitCode.BadConnection : ExitCode.Error;
  } finally {
    ctx?.close();
  }
}
