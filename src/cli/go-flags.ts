/**
 * Go's `flag` package, as etcd 3.4 uses it: the same syntax (`-f`, `--f`, `-f=v`, `-f v`,
 * booleans without a value), the same stop rules (first non-flag argument, `--`), and the
 * same error texts ("flag provided but not defined: -x", "invalid value \"v\" for flag -x:
 * parse error", ...), because scripts and people compare them with etcd's.
 * Values are parsed by Go's rules too (strconv.ParseUint with base 0, time.ParseDuration).
 */

/** A flag's value type: how Set(text) parses, and the error it gives (Go's wording). */
export interface FlagValue<T> {
  /** Parses text; throws an Error whose message is what Go's Value.Set would return. */
  parse(text: string, previous: T): T;
  isBool?: boolean;
}

export interface FlagDef<T = unknown> {
  name: string;
  value: FlagValue<T>;
  default: T;
}

export class FlagError extends Error {}
/** `-h`/`-help`/`--help` was given and is not a defined flag (Go's flag.ErrHelp). */
export class HelpRequested extends Error {}

export interface ParsedFlags {
  values: Map<string, unknown>;
  /** Flags given on the command line, in order of appearance (Go's `actual`). */
  set: Set<string>;
  /** Arguments left after the flags (the first non-flag argument and the rest). */
  rest: string[];
}

/** Go's FlagSet.Parse over `args`. Throws FlagError (exit 2 in etcd) or HelpRequested. */
export function parseGoFlags(defs: readonly FlagDef[], args: readonly string[]): ParsedFlags {
  const byName = new Map(defs.map((d) => [d.name, d]));
  const values = new Map<string, unknown>(defs.map((d) => [d.name, d.default]));
  const set = new Set<string>();
  let i = 0;
  while (i < args.length) {
    const s = args[i]!;
    if (s.length < 2 || s[0] !== '-') break;
    let minuses = 1;
    if (s[1] === '-') {
      minuses = 2;
      if (s.length === 2) { i++; break; } // "--" ends the flags
    }
    let name = s.slice(minuses);
    if (name.length === 0 || name[0] === '-' || name[0] === '=') throw new FlagError(`bad flag syntax: ${s}`);
    i++;
    let value: string | undefined;
    const eq = name.indexOf('=', 1);
    if (eq >= 1) { value = name.slice(eq + 1); name = name.slice(0, eq); }
    const def = byName.get(name);
    if (!def) {
      if (name === 'help' || name === 'h') throw new HelpRequested();
      throw new FlagError(`flag provided but not defined: -${name}`);
    }
    if (def.value.isBool) {
      if (value !== undefined) {
        try { values.set(name, def.value.parse(value, values.get(name))); } catch (e) {
          throw new FlagError(`invalid boolean value ${goQuote(value)} for -${name}: ${(e as Error).message}`);
        }
      } else {
        values.set(name, def.value.parse('true', values.get(name)));
      }
    } else {
      if (value === undefined && i < args.length) value = args[i++];
      if (value === undefined) throw new FlagError(`flag needs an argument: -${name}`);
      try { values.set(name, def.value.parse(value, values.get(name))); } catch (e) {
        throw new FlagError(`invalid value ${goQuote(value)} for flag -${name}: ${(e as Error).message}`);
      }
    }
    set.add(name);
  }
  return { values, set, rest: args.slice(i) };
}

/** Go's %q; JSON's escaping agrees with it for the printable text flags carry. */
export function goQuote(s: string): string {
  return JSON.stringify(s);
}

// ---- value types ----------------------------------------------------------------------

const parseError = () => new Error('parse error');
const rangeError = () => new Error('value out of range');

export const stringValue: FlagValue<string> = { parse: (t) => t };

/** strconv.ParseBool */
export function parseGoBool(t: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(t)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(t)) return false;
  throw parseError();
}
export const boolValue: FlagValue<boolean> = { parse: parseGoBool, isBool: true };

/**
 * strconv.ParseUint/ParseInt with base 0 (0x, 0o, 0b, leading-0 octal; underscores only
 * after a prefix), as a JS number (exact to 2^53). Throws "invalid syntax" or "out of range"
 * as strconv does; callers map them to flag's "parse error"/"value out of range".
 */
export function parseGoInt(t: string, opts: { signed: boolean; bits: number }): { value?: number; error?: 'syntax' | 'range' } {
  let s = t;
  let neg = false;
  if (opts.signed && (s[0] === '+' || s[0] === '-')) { neg = s[0] === '-'; s = s.slice(1); }
  if (s === '') return { error: 'syntax' };
  let base = 10;
  let prefixed = false;
  if (/^0[xX]/.test(s)) { base = 16; s = s.slice(2); prefixed = true; }
  else if (/^0[oO]/.test(s)) { base = 8; s = s.slice(2); prefixed = true; }
  else if (/^0[bB]/.test(s)) { base = 2; s = s.slice(2); prefixed = true; }
  else if (s.length > 1 && s[0] === '0') { base = 8; s = s.slice(1); prefixed = true; }
  if (s.includes('_')) {
    if (!prefixed || !/^_?[0-9a-zA-Z]+(_[0-9a-zA-Z]+)*$/.test(s)) return { error: 'syntax' };
    s = s.replace(/_/g, '');
  }
  const digits = base === 16 ? /^[0-9a-fA-F]+$/ : base === 8 ? /^[0-7]+$/ : base === 2 ? /^[01]+$/ : /^[0-9]+$/;
  if (!digits.test(s)) return { error: 'syntax' };
  let v = 0n;
  for (const c of s.toLowerCase()) v = v * BigInt(base) + BigInt(parseInt(c, 16));
  const max = opts.signed ? (1n << BigInt(opts.bits - 1)) - (neg ? 0n : 1n) : (1n << BigInt(opts.bits)) - 1n;
  if (v > max) return { error: 'range' };
  return { value: Number(neg ? -v : v) };
}

function goIntValue(signed: boolean, bits: number): FlagValue<number> {
  return {
    parse(t) {
      const r = parseGoInt(t, { signed, bits });
      if (r.error === 'syntax') throw parseError();
      if (r.error === 'range') throw rangeError();
      return r.value!;
    },
  };
}
export const uintValue = goIntValue(false, 64);
export const intValue = goIntValue(true, 64);

/** etcd's flags.Uint32Value: returns strconv's own error text, not flag's. */
export const uint32Value: FlagValue<number> = {
  parse(t) {
    const r = parseGoInt(t, { signed: false, bits: 32 });
    if (r.error) throw new Error(`strconv.ParseUint: parsing ${goQuote(t)}: ${r.error === 'syntax' ? 'invalid syntax' : 'value out of range'}`);
    return r.value!;
  },
};

const durationUnits: Record<string, number> = {
  ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000,
};

/** time.ParseDuration, in milliseconds. Throws Go's error text ("time: invalid duration ..."). */
export function parseGoDuration(text: string): number {
  const quoted = goQuote(text);
  let s = text;
  let neg = false;
  if (s[0] === '-' || s[0] === '+') { neg = s[0] === '-'; s = s.slice(1); }
  if (s === '0') return 0;
  if (s === '') throw new Error(`time: invalid duration ${quoted}`);
  let total = 0;
  while (s !== '') {
    const m = /^([0-9]*)(\.[0-9]*)?/.exec(s)!;
    if (m[0] === '' || m[0] === '.') throw new Error(`time: invalid duration ${quoted}`);
    const num = Number(m[0]);
    s = s.slice(m[0].length);
    const u = /^[^0-9.]*/.exec(s)![0];
    if (u === '') throw new Error(`time: missing unit in duration ${quoted}`);
    const mult = durationUnits[u];
    if (mult === undefined) throw new Error(`time: unknown unit ${goQuote(u)} in duration ${quoted}`);
    total += num * mult;
    s = s.slice(u.length);
  }
  return neg ? -total : total;
}

export const durationValue: FlagValue<number> = {
  parse(t) {
    try { return parseGoDuration(t); } catch { throw parseError(); }
  },
};

/** etcd's flags.SelectiveStringValue. */
export function selectValue(valid: readonly string[]): FlagValue<string> {
  return {
    parse(t) {
      if (!valid.includes(t)) throw new Error('invalid value');
      return t;
    },
  };
}

/** etcd's flags.UniqueStringsValue: comma-separated, deduplicated, sorted. */
export const uniqueStringsValue: FlagValue<string[]> = {
  parse: (t) => [...new Set(t.split(','))].sort(),
};

/** etcd's flags.StringsValue: comma-separated, as given. */
export const stringsValue: FlagValue<string[]> = { parse: (t) => t.split(',') };

/** A flag etcd still accepts but ignores (flags.IgnoredFlag): boolean-shaped, warns when set. */
export const ignoredValue: FlagValue<boolean> = { parse: () => true, isBool: true };

// ---- URLs (etcd's pkg/types.NewURLs over Go's net/url) ------------------------------------

/** A URL as Go's url.Parse sees it; `text` is url.URL.String(). */
export interface GoUrl {
  scheme: string;
  /** host[:port] as written (Go's URL.Host). */
  host: string;
  hostname: string;
  port: string;
  text: string;
}

/** Go's net.SplitHostPort; throws Go's error text. */
export function splitHostPort(hostport: string): { host: string; port: string } {
  const missingPort = () => new Error(`address ${hostport}: missing port in address`);
  const tooMany = () => new Error(`address ${hostport}: too many colons in address`);
  if (hostport.startsWith('[')) {
    const end = hostport.indexOf(']');
    if (end < 0) throw new Error(`address ${hostport}: missing ']' in address`);
    if (end + 1 === hostport.length) throw missingPort();
    if (hostport[end + 1] !== ':') throw new Error(`address ${hostport}: unexpected ']' in address`);
    const host = hostport.slice(1, end);
    const port = hostport.slice(end + 2);
    if (port.includes(':')) throw tooMany();
    return { host, port };
  }
  const i = hostport.lastIndexOf(':');
  if (i < 0) throw missingPort();
  const host = hostport.slice(0, i);
  if (host.includes(':')) throw tooMany();
  return { host, port: hostport.slice(i + 1) };
}

/** etcd's types.NewURLs for one string: scheme, host:port, no path. Throws etcd's error text. */
export function parseEtcdUrl(raw: string): GoUrl {
  const input = raw.trim();
  const sm = /^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$/s.exec(input);
  if (input.startsWith(':')) throw new Error(`parse ${goQuote(input)}: missing protocol scheme`);
  const scheme = sm ? sm[1]!.toLowerCase() : '';
  if (!['http', 'https', 'unix', 'unixs'].includes(scheme)) {
    throw new Error(`URL scheme must be http, https, unix, or unixs: ${input}`);
  }
  let rest = sm![2]!;
  let authority = '';
  if (rest.startsWith('//')) {
    const end = rest.slice(2).search(/[/?#]/);
    authority = end < 0 ? rest.slice(2) : rest.slice(2, 2 + end);
    rest = end < 0 ? '' : rest.slice(2 + end);
  }
  const at = authority.lastIndexOf('@');
  const host = at >= 0 ? authority.slice(at + 1) : authority;
  let hp: { host: string; port: string };
  try { hp = splitHostPort(host); } catch {
    throw new Error(`URL address does not have the form "host:port": ${input}`);
  }
  const path = /^[^?#]*/.exec(rest)![0];
  if (path !== '') throw new Error(`URL must not contain a path: ${input}`);
  return { scheme, host, hostname: hp.host, port: hp.port, text: `${scheme}://${authority}${rest}` };
}

/** types.NewURLs: every part parsed, then sorted by text. */
export function parseEtcdUrls(parts: readonly string[]): GoUrl[] {
  if (parts.length === 0) throw new Error('no valid URLs given');
  return parts.map(parseEtcdUrl).sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
}

/**
 * etcd's flags.UniqueURLs. An exception ("" for the URL flags, "*" for --cors) is accepted
 * and leaves the URL list as it was, as in etcd.
 */
export function urlsValue(exceptions: readonly string[] = []): FlagValue<GoUrl[]> {
  return {
    parse(t, prev) {
      if (exceptions.includes(t)) return prev;
      return parseEtcdUrls(t.split(','));
    },
  };
}

/** types.NewURLsMap ("name=url,name=url,..."); throws the first NewURLs error. */
export function parseUrlsMap(s: string): Map<string, GoUrl[]> {
  const raw = new Map<string, string[]>();
  for (const item of s.split(',')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    const [k, v] = eq >= 0 ? [item.slice(0, eq), item.slice(eq + 1)] : [item, ''];
    raw.set(k, [...(raw.get(k) ?? []), v]);
  }
  const out = new Map<string, GoUrl[]>();
  for (const [k, v] of raw) out.set(k, parseEtcdUrls(v));
  return out;
}
