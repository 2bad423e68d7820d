// watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...], and -i: watch
// requests read from stdin, one per line. Runs until interrupted or the server cancels it.
import { spawn } from 'node:child_process';
import { WatchCompactedError, WatchCanceledError, type WatchBatch, type Watcher } from '../../client/index.js';
import { CtlExit, ExitCode } from '../exit.js';
import { describeError } from '../errors.js';
import { goQuote } from '../format.js';
import { parseFlags } from '../flags.js';
import { argify } from './kv.js';
import type { Ctx } from '../context.js';
import { boolFlag, intFlag, type Command } from '../command.js';

const watchFlags = [boolFlag('interactive', 'i'), boolFlag('prefix'), intFlag('rev'), boolFlag('prev-kv')];

interface WatchArgs { key: string; rangeEnd?: string; prefix: boolean; rev: number; prevKv: boolean }

function start(ctx: Ctx, w: WatchArgs): Watcher {
  if (w.rangeEnd !== undefined && w.prefix) throw new CtlExit(ExitCode.BadArgs, '`range_end` and `--prefix` are mutually exclusive');
  const range = w.rangeEnd !== undefined ? { rangeEnd: w.rangeEnd } : w.prefix ? { prefix: true } : {};
  return ctx.client.watch.watch(w.key, { ...range, startRevision: w.rev, prevKv: w.prevKv, requireLeader: true });
}

function runExec(cmd: string[], batch: WatchBatch, ev: WatchBatch['events'][number]): Promise<void> {
  const env = {
    ...process.env,
    ETCD_WATCH_REVISION: String(batch.revision),
    ETCD_WATCH_EVENT_TYPE: `"${ev.type === 1 ? 'DELETE' : 'PUT'}"`,
    ETCD_WATCH_KEY: goQuote(ev.kv!.key),
    ETCD_WATCH_VALUE: goQuote(ev.kv!.value),
  };
  return new Promise((resolve, reject) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: 'inherit', env });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit status ${code}`))));
  });
}

/** Prints every batch until the watch ends; a server cancel is reported as etcdctl does. */
async function print(ctx: Ctx, w: Watcher, exec: string[]): Promise<void> {
  try {
    for await (const batch of w) {
      ctx.display.watch(batch.header, batch.events);
      for (const ev of exec.length > 0 ? batch.events : []) {
        try { await runExec(exec, batch, ev); } catch (e) {
          ctx.io.stderr(`command [${exec.map((a) => goQuote(a)).join(' ')}] error (${describeError(e)})\n`);
          throw new CtlExit(ExitCode.Error, undefined);
        }
      }
    }
  } catch (e) {
    if (!(e instanceof WatchCompactedError || e instanceof WatchCanceledError)) throw e;
    const reason = e instanceof WatchCompactedError ? 'etcdserver: mvcc: required revision has been compacted' : e.message;
    ctx.io.stderr(`watch was canceled (${reason})\n`);
  }
}

async function watch(ctx: Ctx): Promise<void> {
  const envKey = process.env.ETCDCTL_WATCH_KEY ?? '';
  const envRange = process.env.ETCDCTL_WATCH_RANGE_END ?? '';
  if (envKey === '' && envRange !== '') throw new CtlExit(ExitCode.BadArgs, `ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=${goQuote(envRange)}`);
  if (ctx.bool('interactive')) { await interactive(ctx, envKey, envRange); return; }
  const dash = ctx.dashAt;
  const watchArgs = dash < 0 ? ctx.args : ctx.args.slice(0, dash);
  const exec = dash < 0 ? [] : ctx.args.slice(dash);
  if (dash >= 0 && exec.length === 0) throw new CtlExit(ExitCode.BadArgs, 'bad number of arguments (found separator --, but no commands)');
  if (watchArgs.length > 0 && envKey !== '') throw new CtlExit(ExitCode.BadArgs, 'bad number of arguments (found conflicting environment key)');
  const args = envKey !== '' ? [envKey, ...(envRange !== '' ? [envRange] : [])] : watchArgs;
  if (args.length < 1 || args.length > 2) throw new CtlExit(ExitCode.BadArgs, 'bad number of arguments');
  const w = start(ctx, { key: args[0]!, rangeEnd: args[1], prefix: ctx.bool('prefix'), rev: ctx.int('rev'), prevKv: ctx.bool('prev-kv') });
  await print(ctx, w, exec);
  throw new CtlExit(ExitCode.Interrupted, 'watch is canceled by the server');
}

async function interactive(ctx: Ctx, envKey: string, envRange: string): Promise<void> {
  const running: Promise<void>[] = [];
  for await (const line of ctx.io.stdinLines()) {
    const args = argify(line);
    if (args.length < 1) { ctx.io.stderr(`Invalid command: ${line} (watch and progress supported)\n`); continue; }
    if (args[0] !== 'watch') { ctx.io.stderr(`Invalid command ${line} (only support watch)\n`); continue; }
    if (args.length < 2 && envKey === '') { ctx.io.stderr(`Invalid command ${line} (command type or key is not provided)\n`); continue; }
    const parsed = parseFlags(args.slice(1), watchFlags);
    const dash = parsed.dashAt;
    const wargs = dash < 0 ? parsed.args : parsed.args.slice(0, dash);
    const exec = dash < 0 ? [] : parsed.args.slice(dash);
    const keys = wargs.length > 0 ? wargs : [envKey, ...(envRange !== '' ? [envRange] : [])];
    try {
      const w = start(ctx, { key: keys[0]!, rangeEnd: keys[1], prefix: parsed.values.get('prefix') as boolean, rev: parsed.values.get('rev') as number, prevKv: parsed.values.get('prev-kv') as boolean });
      running.push(print(ctx, w, exec));
    } catch (e) {
      ctx.io.stderr(`Invalid command ${line} (${describeError(e)})\n`);
    }
  }
  throw new CtlExit(ExitCode.InvalidInput, 'Error reading watch request line: EOF');
}

export const watchCommand: Command = { name: 'watch', flags: watchFlags, run: watch };
