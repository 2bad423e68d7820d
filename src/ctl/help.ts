// etcdctl's usage text (ctlv3/help.go's template, laid out by a tabwriter): name and summary,
// usage line, version, the runnable commands below, description, the command's own flags and
// the ones it inherits, each with its default.
import type { Command } from './command.js';
import type { FlagSpec } from './flags.js';
import { commandHelp, globalFlagHelp } from './help-text.js';
import { goDuration, goQuote } from './format.js';
import { tabwrite } from './tabwriter.js';

export interface HelpVersions { version: string; apiVersion: string }

/** pflag's DefValue for a flag's default, quoted (%q) for string flags as etcdctl prints it. */
function defaultText(f: FlagSpec): string {
  switch (f.kind) {
    case 'string': return goQuote(f.default as string);
    case 'duration': return goDuration((f.default as number) * 1e6);
    case 'strings': return `[${(f.default as string[]).join(',')}]`;
    default: return String(f.default);
  }
}

/** etcdFlagUsages: one line per flag, sorted by name; booleans take an optional value. */
function flagLines(flags: readonly FlagSpec[], usage: (f: FlagSpec) => string): string {
  return [...flags].sort((a, b) => (a.name < b.name ? -1 : 1)).map((f) => {
    const name = f.short ? `  -${f.short}, --${f.name}` : `      --${f.name}`;
    const value = f.kind === 'bool' ? `[=${defaultText(f)}]` : `=${defaultText(f)}`;
    return `${name}${value}\t${usage(f)}\n`;
  }).join('');
}

const helpFlag = (name: string): FlagSpec => ({ name: 'help', short: 'h', kind: 'bool', default: false, usage: `help for ${name}` });

/** The runnable commands under a command, depth first in name order, named from it. */
function runnableBelow(cmd: Command, prefix: string[] = []): Array<[string, Command]> {
  const subs = [...(cmd.sub ?? [])].sort((a, b) => (a.name < b.name ? -1 : 1));
  return subs.flatMap((c) => [
    ...(c.run ? [[[...prefix, c.name].join(' '), c] as [string, Command]] : []),
    ...runnableBelow(c, [...prefix, c.name]),
  ]);
}

/**
 * The usage of the command at `path` (empty: etcdctl itself); root is the tree's top, its
 * persistentFlags the global flags. cobra lists -h/--help only on the command it runs (not on
 * the root it shows for an unknown help topic).
 */
export function usageText(root: Command, path: readonly Command[], v: HelpVersions, withHelpFlag = true): string {
  const cmd = path.length === 0 ? root : path[path.length - 1]!;
  const key = path.map((c) => c.name).join(' ');
  const help = commandHelp[key];
  if (!help) throw new Error(`no help text for command "${key}"`);
  const isRoot = path.length === 0;
  const parents = ['etcdctl', ...path.slice(0, -1).map((c) => c.name)].join(' ');
  const own = (f: FlagSpec) => f.usage ?? help.flags?.[f.name] ?? '';
  const inheritedFrom = isRoot ? [] : [root, ...path.slice(0, -1)];
  const inherited = inheritedFrom.flatMap((c) => c.persistentFlags ?? []);
  const inheritedUsage = (f: FlagSpec) => globalFlagHelp[f.name] ?? (inheritedFrom.map((c) => commandHelp[pathKey(path, c)]?.flags?.[f.name]).find((u) => u !== undefined) ?? '');
  const local = [...(cmd.flags ?? []), ...(cmd.persistentFlags ?? []), ...(withHelpFlag ? [helpFlag(cmd.name)] : [])];

  let t = `NAME:\n\t${isRoot ? cmd.name : key} - ${help.short}\n\nUSAGE:\n\t${isRoot ? help.use : `${parents} ${help.use}`} [flags]\n`;
  if (isRoot) t += `\nVERSION:\n\t${v.version}\n`;
  if (cmd.sub) {
    t += `\nAPI VERSION:\n\t${v.apiVersion}\n`;
    t += '\n\nCOMMANDS:\n';
    for (const [name, sub] of runnableBelow(cmd)) t += `\t${name}\t${commandHelp[[...path.map((c) => c.name), name].join(' ')]?.short ?? sub.name}\n`;
  }
  if (help.long) t += `\nDESCRIPTION:\n${help.long.split('\n').map((l) => `\t${l}\n`).join('')}`;
  t += `\nOPTIONS:\n${flagLines(local, (f) => (isRoot ? globalFlagHelp[f.name] ?? own(f) : own(f)))}`;
  if (inherited.length > 0) t += `\nGLOBAL OPTIONS:\n${flagLines(inherited, inheritedUsage)}`;
  return tabwrite(`${t}\n`);
}

/** The help key of an ancestor of the command at `path`. */
function pathKey(path: readonly Command[], ancestor: Command): string {
  const i = path.indexOf(ancestor);
  return path.slice(0, i + 1).map((c) => c.name).join(' ');
}
