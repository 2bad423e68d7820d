/**
 * Concord's logger: JSON lines in the shape etcd 3.4 writes with `--logger zap`, so that the
 * tools and people who read etcd's logs can read ours:
 *
 *   {"level":"info","ts":"2026-11-24T02:53:15.123Z","caller":"cli/concord.ts:42","msg":"...",...fields}
 *
 * Keys and their order are zap's (level, ts, caller, msg, then fields); level names are zap's
 * lowercase names; ts is zap's ISO8601 encoder (milliseconds, `Z` or `+hhmm`). Fields are
 * written as given, except that Errors become their message (zap.Error) and URLs their text.
 *
 * Leaf module: anyone may import it. Writes are synchronous (pino's sync destinations), so
 * the last lines before process.exit() are not lost.
 */
export { progressBar, progressLine, humanizeBytes } from './progress.js';
import { writeAroundProgress } from './progress.js';
export type { Progress, ProgressOutput, ProgressOptions } from './progress.js';
import { findSourceMap, type SourceMapping } from 'node:module';
import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

/** etcd's --log-level values (pkg/logutil ConvertToZapLevel), zap's names. */
export const logLevels = ['debug', 'info', 'warn', 'error', 'dpanic', 'panic', 'fatal'] as const;
export type LogLevel = (typeof logLevels)[number];

export type LogFields = Record<string, unknown>;

/** A line kept until a logger exists (flags are parsed before it is made), replayed through Logger.log. */
export interface LogRecord {
  level: LogLevel;
  msg: string;
  fields?: LogFields;
}

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Logs at zap's "panic" level; does not throw (the caller decides what happens next). */
  panic(msg: string, fields?: LogFields): void;
  /** Logs at "fatal", flushes and exits the process with code 1, as zap's Fatal does. */
  fatal(msg: string, fields?: LogFields): never;
  /** Writes one line at any level; unlike fatal(), never exits (for replaying records). */
  log(level: LogLevel, msg: string, fields?: LogFields): void;
  /** A logger whose lines all carry `fields` (right after msg, as zap's With). */
  child(fields: LogFields): Logger;
  isLevelEnabled(level: LogLevel): boolean;
  readonly level: LogLevel;
  /** Flushes every output (a no-op for the synchronous ones, kept for file safety). */
  flush(): void;
}

export interface LoggerOptions {
  /** Lowest level written. Default "info". */
  level?: LogLevel;
  /**
   * etcd's --log-outputs: "default" and "stderr" write to stderr, "stdout" to stdout, anything
   * else is a file path (appended to). "/dev/null" anywhere discards everything, as in zap.
   * Default ["default"].
   */
  outputs?: string[];
  /** Add a "caller" (file:line of the log call, from the stack). Default true. */
  caller?: boolean;
  /** Clock for "ts" (tests). */
  now?: () => Date;
  /**
   * How "ts" is written: zap's ISO8601 encoder (etcd's server logger, the default) or zap's
   * epoch encoder, seconds since 1970 as a number (zap.NewProduction, which `etcd gateway` uses).
   */
  timeEncoding?: 'iso8601' | 'epoch';
  /** Write here instead of the outputs (tests). */
  stream?: DestinationStream;
}

// Numeric severities for pino; zap's dpanic/panic sit between error and fatal.
const pinoLevelValues: Record<LogLevel, number> = {
  debug: 20, info: 30, warn: 40, error: 50, dpanic: 53, panic: 56, fatal: 60,
};

/** zap's ISO8601TimeEncoder: "2006-01-02T15:04:05.000Z0700" in local time. */
export function formatZapTime(d: Date): string {
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const offMin = -d.getTimezoneOffset();
  let zone = 'Z';
  if (offMin !== 0) {
    const a = Math.abs(offMin);
    zone = `${offMin < 0 ? '-' : '+'}${pad(Math.floor(a / 60))}${pad(a % 60)}`;
  }
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
    `T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}${zone}`;
}

/** zap's SecondsDurationEncoder (zap.NewProduction's): a duration as float seconds. */
export function durationSeconds(ms: number): number {
  return ms / 1000;
}

/** Go-style Duration text for "took" fields etc.: 1.5ms, 2s, 350µs (zap's StringDurationEncoder). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const neg = ms < 0;
  const a = Math.abs(ms);
  let s: string;
  if (a < 0.001) s = `${trimNum(a * 1e6)}ns`;
  else if (a < 1) s = `${trimNum(a * 1e3)}µs`;
  else if (a < 1000) s = `${trimNum(a)}ms`;
  else {
    // Go prints 1h2m3.5s style for >= 1s.
    let rest = a / 1000;
    const h = Math.floor(rest / 3600); rest -= h * 3600;
    const m = Math.floor(rest / 60); rest -= m * 60;
    s = `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${trimNum(rest)}s`;
  }
  return neg ? `-${s}` : s;
}

function trimNum(n: number): string {
  return String(Number(n.toFixed(9)));
}

function openDestination(output: string): DestinationStream {
  switch (output) {
    case 'default':
    case 'stderr':
      return besideProgress(pino.destination({ dest: 2, sync: true }));
    case 'stdout':
      return besideProgress(pino.destination({ dest: 1, sync: true }));
    default:
      return pino.destination({ dest: output, sync: true, append: true, mkdir: true });
  }
}

/**
 * A terminal stream whose lines clear a progress bar on screen and redraw it below them.
 * pino's own destinations are changed in place (pino calls their other methods too).
 */
function besideProgress(dest: DestinationStream): DestinationStream {
  const write = dest.write.bind(dest);
  return Object.assign(dest, { write: (line: string) => { writeAroundProgress(write, line); } });
}

function destinationFor(outputs: string[]): DestinationStream {
  if (outputs.includes('/dev/null')) return { write() { /* discard, as zap does */ } };
  // Duplicates collapse to one writer (zap's MergeOutputPaths); "default" means stderr.
  const unique = [...new Set(outputs.map((o) => (o === 'default' ? 'stderr' : o)))].sort();
  if (unique.length === 0) return openDestination('stderr');
  if (unique.length === 1) return openDestination(unique[0]!);
  // Level filtering happens in the logger itself, so every stream takes every line it gets.
  return pino.multistream(unique.map((o) => ({ stream: openDestination(o), level: 'debug' as const })));
}

/**
 * The caller of a log call, zap's short form "folder/file.ts:line": the first stack frame
 * outside this file, mapped through its source map when Node holds one (as Node's own stack
 * text does), else the JavaScript file and line.
 *
 * Why not read `new Error().stack`: with source maps enabled, formatting that text maps every
 * frame and builds strings; it was a visible share of a start-up profile. V8's structured
 * frames (CallSite objects, no text) are cheap, and each call site is resolved once and
 * remembered (`callSites`), so a line costs a short stack walk and one map lookup.
 */
function callerOf(): string {
  const prepare = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  const holder: { stack?: unknown } = {};
  Error.prepareStackTrace = structuredFrames;
  // write() and a level method (info, log, ...) sit between callerOf and the caller.
  Error.stackTraceLimit = 4;
  try {
    Error.captureStackTrace(holder, callerOf);
    const frames = holder.stack;
    if (!Array.isArray(frames)) return 'unknown';
    for (const frame of frames as NodeJS.CallSite[]) {
      const file = frame.getFileName();
      if (!file || logModuleFile.test(file)) continue;
      return callSiteText(file, frame.getLineNumber() ?? 0, frame.getColumnNumber() ?? 0);
    }
    return 'unknown';
  } finally {
    Error.prepareStackTrace = prepare;
    Error.stackTraceLimit = limit;
  }
}

const structuredFrames = (_e: Error, frames: NodeJS.CallSite[]): NodeJS.CallSite[] => frames;
const logModuleFile = /[\\/]log[\\/]index\.[jt]s$/;

/** Resolved call sites by "file:line:column". Code has finitely many; the bound is a guard. */
const callSites = new Map<string, string>();
const maxCallSites = 10_000;

function callSiteText(file: string, line: number, column: number): string {
  const key = `${file}:${line}:${column}`;
  let text = callSites.get(key);
  if (text === undefined) {
    text = resolveCallSite(file, line, column);
    if (callSites.size >= maxCallSites) callSites.clear();
    callSites.set(key, text);
  }
  return text;
}

/** "folder/file:line", through the source map Node keeps for the module if it has one. */
function resolveCallSite(file: string, line: number, column: number): string {
  let source = file;
  let sourceLine = line;
  const map = findSourceMap(file);
  if (map !== undefined) {
    // findEntry takes and returns zero-based positions; an empty object means no mapping.
    const entry = map.findEntry(line - 1, column - 1) as Partial<SourceMapping>;
    if (entry.originalSource !== undefined && entry.originalLine !== undefined) {
      source = entry.originalSource;
      sourceLine = entry.originalLine + 1;
    }
  }
  const parts = source.split(/[\\/]/);
  return `${parts.slice(-2).join('/')}:${sourceLine}`;
}

/** Makes a field value JSON-friendly the way zap's typed fields would print it. */
function fieldValue(v: unknown): unknown {
  if (v instanceof Error) return v.message;
  if (v instanceof URL) return goUrlText(v);
  if (Array.isArray(v)) return v.map(fieldValue);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), fieldValue(x)]));
  return v;
}

// Go's url.URL.String() has no trailing "/" for a bare host; WHATWG's href does.
function goUrlText(u: URL): string {
  return u.pathname === '/' && !u.search && !u.hash ? u.href.slice(0, -1) : u.href;
}

class ZapLogger implements Logger {
  constructor(
    private readonly p: PinoLogger<'dpanic' | 'panic'>,
    private readonly withCaller: boolean,
    private readonly bound: LogFields,
    readonly level: LogLevel,
  ) {}

  private write(level: LogLevel, msg: string, fields?: LogFields): void {
    if (!this.isLevelEnabled(level)) return;
    // One object in zap's key order: caller, msg, the child's fields (zap's With), the line's.
    const obj: LogFields = {};
    if (this.withCaller) obj.caller = callerOf();
    obj.msg = msg;
    for (const k of Object.keys(this.bound)) obj[k] = this.bound[k];
    if (fields) for (const k of Object.keys(fields)) obj[k] = fieldValue(fields[k]);
    (this.p[level] as (o: object) => void).call(this.p, obj);
  }

  log(level: LogLevel, msg: string, fields?: LogFields): void { this.write(level, msg, fields); }
  debug(msg: string, fields?: LogFields): void { this.write('debug', msg, fields); }
  info(msg: string, fields?: LogFields): void { this.write('info', msg, fields); }
  warn(msg: string, fields?: LogFields): void { this.write('warn', msg, fields); }
  error(msg: string, fields?: LogFields): void { this.write('error', msg, fields); }
  panic(msg: string, fields?: LogFields): void { this.write('panic', msg, fields); }
  fatal(msg: string, fields?: LogFields): never {
    this.write('fatal', msg, fields);
    this.flush();
    process.exit(1);
  }

  child(fields: LogFields): Logger {
    const bound: LogFields = { ...this.bound };
    for (const k of Object.keys(fields)) bound[k] = fieldValue(fields[k]);
    return new ZapLogger(this.p, this.withCaller, bound, this.level);
  }

  isLevelEnabled(level: LogLevel): boolean {
    return pinoLevelValues[level] >= pinoLevelValues[this.level];
  }

  flush(): void {
    try { this.p.flush(); } catch { /* sync destinations have nothing pending */ }
  }
}

/** Creates a logger writing etcd/zap-style JSON lines to `outputs` (default stderr). */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  if (!logLevels.includes(level)) throw new Error(`unknown level "${String(level)}"`);
  const now = options.now ?? (() => new Date());
  const p = pino<'dpanic' | 'panic'>(
    {
      level: 'debug', // filtering is ours (isLevelEnabled), so child loggers share one pino
      base: null,
      messageKey: 'msg',
      customLevels: { dpanic: pinoLevelValues.dpanic, panic: pinoLevelValues.panic },
      timestamp: options.timeEncoding === 'epoch'
        ? () => `,"ts":${now().getTime() / 1000}`
        : () => `,"ts":"${formatZapTime(now())}"`,
      formatters: { level: (label: string) => ({ level: label }) },
    },
    options.stream ? besideProgress({ write: options.stream.write.bind(options.stream) }) : destinationFor(options.outputs ?? ['default']),
  );
  return new ZapLogger(p, options.caller ?? true, {}, level);
}

/** A logger that drops everything (tests, tools). */
export function nopLogger(): Logger {
  return createLogger({ stream: { write() { /* discard */ } }, caller: false, level: 'fatal' });
}
