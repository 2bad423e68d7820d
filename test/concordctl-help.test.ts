// concordctl's usage texts against real etcdctl's: `--help` of every command etcdctl 3.4 has,
// `help [command]`, a command with subcommands run alone, and command lines cobra refuses (an
// unknown flag or shorthand, a flag without its value, a value that does not parse): stdout,
// stderr and exit code equal. No server is needed: concordctl runs in this process (runCtl),
// etcdctl as a process; two lines also run through bin/concordctl.js.
//
// Explicit difference: etcdctl lists `completion *` (cobra's shell completion scripts) and
// `migrate` (v2 store migration), which concordctl does not offer; they are taken out of
// etcdctl's command list before comparing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCtl, type Io } from '../src/ctl/index.js';
import { runTool } from './ctl-tools.js';

interface Outcome { code: number | null; stdout: string; stderr: string }

async function concordctl(args: string[]): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    stdout: (s) => { stdout += typeof s === 'string' ? s : Buffer.from(s).toString('latin1'); },
    stderr: (s) => { stderr += s; },
    readStdin: async () => '',
    stdinLines: async function* () { /* no input */ },
    readLine: async () => '',
    setEcho: () => {},
  };
  const code = await runCtl(args, { ETCDCTL_API: '3' }, io);
  return { code, stdout, stderr };
}

/** etcdctl's output without the commands concordctl does not offer. */
const withoutMissing = (o: Outcome): Outcome => ({ ...o, stdout: o.stdout.replace(/^\t(completion \w+|migrate)\t.*\n/gm, '') });

async function etcdctlRun(args: string[], cwd: string): Promise<Outcome> {
  return withoutMissing(await runTool('etcdctl', args, { cwd }));
}

/** Every command path etcdctl's own help lists (runnable ones and their parents). */
async function etcdctlCommandPaths(cwd: string): Promise<string[][]> {
  const root = (await etcdctlRun(['--help'], cwd)).stdout;
  const listed = [...root.matchAll(/^\t([a-z-]+(?: [a-z-]+)?)\t/gm)].map((m) => m[1]!);
  assert.ok(listed.length > 40, `etcdctl --help lists ${listed.length} commands`);
  const parents = [...new Set(listed.filter((p) => p.includes(' ')).map((p) => p.split(' ')[0]!))];
  return [[], ...parents.map((p) => [p]), ...listed.map((p) => p.split(' '))];
}

const refused: string[][] = [
  ['get', '--badflag'], ['get', '-x'], ['get', '--rev'], ['get', '--rev=x'], ['--endpoints'],
  ['put', '--lease'], ['watch', '--rev=q'], ['--dial-timeout=x', 'get', 'k'], ['get', 'k', '--hex=maybe'],
  ['member', 'list', '--bogus'], ['user', 'add', '-z'], ['role', 'grant-permission', '--prefix=2'],
];

const usages: string[][] = [
  [], ['help'], ['help', 'get'], ['help', 'lease', 'grant'], ['help', 'frob'], ['help', 'user', 'frob'],
  ['user'], ['user', 'frob'], ['snapshot'], ['endpoint', '--cluster'], ['lease', 'grant', '-h', 'extra'], ['--hex'],
];

test('usage texts: --help of every command, help [command], subcommand-only commands, refused flags', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'concordctl-help-'));
  try {
    const paths = await etcdctlCommandPaths(cwd);
    const lines = [...paths.map((p) => [...p, '--help']), ...usages, ...refused];
    const mismatches: string[] = [];
    for (const args of lines) {
      const want = await etcdctlRun(args, cwd);
      const got = await concordctl(args);
      try { assert.deepEqual(got, want); } catch { mismatches.push(`$ ${args.join(' ')}\n  etcdctl:    ${JSON.stringify(want)}\n  concordctl: ${JSON.stringify(got)}`); }
    }
    assert.deepEqual(mismatches, [], `${mismatches.length} of ${lines.length} command lines differ:\n${mismatches.join('\n')}`);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test('usage texts through bin/concordctl.js: no arguments, and an unknown flag', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'concordctl-help-'));
  try {
    for (const args of [[], ['get', '--badflag']]) {
      assert.deepEqual(withoutMissing(await runTool('concordctl', args, { cwd })), await etcdctlRun(args, cwd), args.join(' '));
    }
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});
