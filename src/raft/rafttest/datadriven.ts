/**
 * Golden script files in the format of cockroachdb/datadriven (as etcd-io/raft's testdata):
 *
 *   # comment
 *   command arg key=value
 *   optional input lines
 *   ----
 *   expected output (no blank lines; a blank line ends it)
 *
 * runFile() executes every command and returns the file as it should read: the caller compares
 * it with the committed file, or rewrites the file with it (RAFT_REWRITE=1).
 */
import type { Command } from './interaction_env.js';

interface Block {
  prelude: string[];
  command: string[];
  output: string[];
}

export function parseScript(text: string): { blocks: Block[]; trailer: string[] } {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const blocks: Block[] = [];
  let prelude: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === '' || line.startsWith('#')) {
      prelude.push(line);
      i++;
      continue;
    }
    const command: string[] = [];
    while (i < lines.length && lines[i] !== '----') command.push(lines[i++]);
    if (i >= lines.length) throw new Error(`script: command without ---- : ${command[0]}`);
    i++; // ----
    const output: string[] = [];
    while (i < lines.length && lines[i] !== '') output.push(lines[i++]);
    if (i < lines.length) i++; // the blank line that ends the output
    blocks.push({ prelude, command, output });
    prelude = [];
  }
  return { blocks, trailer: prelude };
}

export function parseCommand(lines: string[]): Command {
  const [head, ...input] = lines;
  const [name, ...rest] = head.trim().split(/\s+/);
  const args: string[] = [];
  const kv = new Map<string, string>();
  for (const a of rest) {
    const eq = a.indexOf('=');
    if (eq < 0) args.push(a);
    else kv.set(a.slice(0, eq), a.slice(eq + 1));
  }
  return { name, args, kv, input };
}

/** Runs every block through `run` and renders the file with the actual outputs. */
export function runScript(text: string, run: (c: Command) => string): string {
  const { blocks, trailer } = parseScript(text);
  const out: string[] = [];
  for (const b of blocks) {
    out.push(...b.prelude, ...b.command, '----');
    const got = run(parseCommand(b.command));
    if (got !== '') out.push(...got.split('\n'));
    out.push('');
  }
  out.push(...trailer);
  while (out.length > 0 && out.at(-1) === '') out.pop();
  return out.join('\n') + '\n';
}
