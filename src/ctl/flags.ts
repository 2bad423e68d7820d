// Command-line flags the way etcdctl's cobra/pflag reads them: `--name value`, `--name=value`,
// `-w json`, `-w=json`, booleans as `--flag` or `--flag=false`, flags anywhere among the
// arguments, and `--` ending the flags (what follows is arguments, e.g. `watch k -- cmd`).
// Durations take Go's syntax ("5s", "500ms", "1m30s").
import { CtlExit, ExitCode } from './exit.js';

export type FlagKind = 'bool' | 'string' | 'int' | 'duration' | 'strings';
export type FlagValue = boolean | string | number | string[];

export interface FlagSpec {
  name: string;
  short?: string;
  kind: FlagKind;
  default: FlagValue;
  /** Its description in the usage text, when help-text.ts does not give it. */
  usage?: string;
}

/** A command line cobra/pflag would not parse: etcdctl prints the command's usage, then the error. */
export class FlagError extends CtlExit {
  constructor(text: string) { super(ExitCode.Error, text); }
}

export interface Parsed {
  /** Positional arguments (before and after `--`). */
  args: string[];
  /** Index in args where `--` was, or -1. */
  dashAt: number;
  values: Map<string, FlagValue>;
  /** Flags given on the command line (the environment does not override these). */
  changed: Set<string>;
}

const durationUnits: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration, in milliseconds. */
export function parseDuration(s: string): number | undefined {
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  const neg = s.startsWith('-');
  if (neg || s.startsWith('+')) pos = 1;
  re.lastIndex = pos;
  let m: RegExpExecArray | null;
  let any = false;
  while ((m = re.exec(s)) !== null) {
    total += parseFloat(m[1]!) * durationUnits[m[2]!]!;
    pos = re.lastIndex;
    any = true;
  }
  if (!any || pos !== s.length) return undefined;
  return neg ? -total : total;
}

export function convertFlag(spec: FlagSpec, raw: string): FlagValue {
  switch (spec.kind) {
    case 'bool': {
      if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(raw)) return true;
      if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(raw)) return false;
      throw new FlagError(`invalid argument "${raw}" for "--${spec.name}" flag: strconv.ParseBool: parsing "${raw}": invalid syntax`);
    }
    case 'int': {
      if (!/^[+-]?\d+$/.test(raw)) throw new FlagError(`invalid argument "${raw}" for "--${spec.name}" flag: strconv.ParseInt: parsing "${raw}": invalid syntax`);
      return Number(raw);
    }
    case 'duration': {
      const ms = parseDuration(raw);
      if (ms === undefined) throw new FlagError(`invalid argument "${raw}" for "--${spec.name}" flag: time: invalid duration ${JSON.stringify(raw)}`);
      return ms;
    }
    case 'strings': return raw === '' ? [] : raw.split(',');
    case 'string': return raw;
  }
}

export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[]): Parsed {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const values = new Map<string, FlagValue>(specs.map((s) => [s.name, s.default]));
  const changed = new Set<string>();
  const args: string[] = [];
  let dashAt = -1;
  const set = (spec: FlagSpec, raw: string) => {
    const v = convertFlag(spec, raw);
    // A string-slice flag given twice accumulates, as pflag's does.
    values.set(spec.name, spec.kind === 'strings' && changed.has(spec.name) ? [...(values.get(spec.name) as string[]), ...(v as string[])] : v);
    changed.add(spec.name);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { dashAt = args.length; args.push(...argv.slice(i + 1)); break; }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = a.slice(2, eq < 0 ? undefined : eq);
      const spec = byName.get(name);
      if (!spec) throw new FlagError(`unknown flag: --${name}`);
      if (eq >= 0) set(spec, a.slice(eq + 1));
      else if (spec.kind === 'bool') set(spec, 'true');
      else if (i + 1 < argv.length) set(spec, argv[++i]!);
      else throw new FlagError(`flag needs an argument: --${name}`);
      continue;
    }
    if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) {
      const c = a[1]!;
      const spec = byShort.get(c);
      if (!spec) throw new FlagError(`unknown shorthand flag: '${c}' in ${a}`);
      const rest = a.slice(2);
      if (spec.kind === 'bool') set(spec, rest.startsWith('=') ? rest.slice(1) : 'true');
      else if (rest.length > 0) set(spec, rest.startsWith('=') ? rest.slice(1) : rest);
      else if (i + 1 < argv.length) set(spec, argv[++i]!);
      else throw new FlagError(`flag needs an argument: '${c}' in -${c}`);
      continue;
    }
    args.push(a);
  }
  return { args, dashAt, values, changed };
}

/** pflag's flag name -> environment variable (ETCDCTL_DIAL_TIMEOUT for dial-timeout). */
export function flagToEnv(prefix: string, name: string): string {
  return `${prefix}_${name.toUpperCase().replace(/-/g, '_')}`;
}
