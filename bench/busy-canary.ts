// A control for issue 14's loop target ("no pause over 10 ms on the main thread during steady
// load"; not a test): `node dist/bench/busy-canary.js [options]`.
//
// The bench's idle floor (bench/loop-floor.ts) says how late this machine makes a timer fire
// in a process with nothing to do. A server's main thread is not idle: under range-l it is
// ~80% busy, and it makes ~45k socket writes a second, each waking the load generator. This
// program measures the same loop figure (monitorEventLoopDelay at 5 ms, its max over a window)
// in a process of no code of Concord's that keeps its loop as busy in the same way:
//   --mode echo   a TCP server on 127.0.0.1: each request (--request-bytes) costs --work-us of
//                 spinning, and the replies (--reply-bytes each) made from one read leave in one
//                 write, as Concord's HTTP/2 output does per turn. A client process (the
//                 benches' generator flags, bench/generator-process.ts) keeps --clients requests
//                 outstanding over --connections connections.
//   --mode spin   no sockets: the loop runs chunks of --chunk-us of spinning back to back
//                 (setImmediate), --duty of the time, sleeping the rest in a timer.
// The server runs in a session of its own (bench/server-session.ts: as the benches run the
// servers). Each window's loop max is read as the bench reads Concord's; the summary applies
// the bench's rule (the median of 3 consecutive windows over 10 ms is a miss).
//
// Options: --mode echo|spin  --windows 30  --seconds 4  --warmup-ms 1000  --clients 100
//          --connections 10  --request-bytes 100  --reply-bytes 330  --work-us 4
//          --chunk-us 100  --duty 0.8  --json FILE
//          --client-work-us U (the client's spinning per reply: a slower client leaves the server idle spells)
//          --alloc-bytes B (garbage per request, in ~48-byte objects)  --retain-every N (every Nth
//          request's objects replace one of 200k kept alive: old-generation garbage)
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { generatorNodeArgs } from './generator-process.js';
import { ownLoopDelay } from './loop-floor.js';
import { serversInOwnSession } from './server-session.js';

interface Options {
  mode: 'echo' | 'spin'; windows: number; seconds: number; warmupMs: number; clients: number;
  connections: number; requestBytes: number; replyBytes: number; workUs: number; chunkUs: number;
  duty: number; clientWorkUs: number; allocBytes: number; retainEvery: number; json: string;
}

function options(argv: readonly string[]): Options {
  const opt = (name: string, dflt: string): string => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1]! : dflt;
  };
  const mode = opt('mode', 'echo');
  if (mode !== 'echo' && mode !== 'spin') throw new Error(`--mode: echo or spin, not ${mode}`);
  return {
    mode, windows: Number(opt('windows', '30')), seconds: Number(opt('seconds', '4')),
    warmupMs: Number(opt('warmup-ms', '1000')), clients: Number(opt('clients', '100')),
    connections: Number(opt('connections', '10')), requestBytes: Number(opt('request-bytes', '100')),
    replyBytes: Number(opt('reply-bytes', '330')), workUs: Number(opt('work-us', '4')),
    chunkUs: Number(opt('chunk-us', '100')), duty: Number(opt('duty', '0.8')), clientWorkUs: Number(opt('client-work-us', '0')),
    allocBytes: Number(opt('alloc-bytes', '0')), retainEvery: Number(opt('retain-every', '0')), json: opt('json', ''),
  };
}

/** Objects kept alive: every --retain-every'th request replaces one, so the old generation has garbage to collect. */
const retainedSlots = 200_000;
let retained: unknown[] | undefined;
let retainAt = 0;
let handled = 0;
/** A request's garbage: small objects of ~48 bytes each, as a decoded request and its response are made of. */
function allocate(o: Options): void {
  let keep: unknown;
  for (let b = 0; b < o.allocBytes; b += 48) keep = { key: b, value: handled, next: keep };
  if (o.retainEvery > 0 && ++handled % o.retainEvery === 0) {
    retained ??= new Array(retainedSlots).fill(undefined);
    retained[retainAt] = keep;
    retainAt = (retainAt + 1) % retainedSlots;
  }
}

function spinUs(us: number): void {
  const end = performance.now() + us / 1000;
  while (performance.now() < end);
}

/** One window's figures, from the server. */
interface Window { requests: number; seconds: number; loopP99Ms: number; loopMaxMs: number; cpuPct: number }

type ToServer = { type: 'reset' } | { type: 'read' };

// ---- server role: the busy loop, measured --------------------------------------------------

/** Requests (or spin chunks) handled since the window began. */
const handledInWindow = { count: 0 };

function serve(o: Options): void {
  answerWindows();
  if (o.mode === 'spin') {
    spinInSpells(o);
    process.send!({ type: 'listening', port: 0 });
  } else echo(o, (port) => process.send!({ type: 'listening', port }));
}

/** Starts the loop monitor and answers the orchestrator's reset and read. */
function answerWindows(): void {
  const delay = ownLoopDelay(); // as the bench's floor probes read theirs
  let t0 = performance.now();
  let cpu0 = process.cpuUsage();
  process.on('message', (m: ToServer) => {
    if (m.type === 'reset') {
      delay.reset(); handledInWindow.count = 0; t0 = performance.now(); cpu0 = process.cpuUsage();
      return;
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const { p99Ms, maxMs } = delay.read();
    const w: Window = {
      requests: handledInWindow.count, seconds, loopP99Ms: p99Ms, loopMaxMs: maxMs,
      cpuPct: ((cpu.user + cpu.system) / 1e6 / seconds) * 100,
    };
    process.send!(w);
  });
}

/** Busy `duty` of every 100 ms in chunks of chunkUs, one per loop turn; idle in a timer the rest. */
function spinInSpells(o: Options): void {
  const busyMs = 100 * o.duty;
  const spell = (): void => {
    const end = performance.now() + busyMs;
    const chunk = (): void => {
      spinUs(o.chunkUs);
      handledInWindow.count++;
      if (performance.now() < end) setImmediate(chunk);
      else setTimeout(spell, 100 - busyMs);
    };
    chunk();
  };
  spell();
}

/** The TCP server: the replies to what one read brought leave in one write. */
function echo(o: Options, listening: (port: number) => void): void {
  const server = createServer({ noDelay: true }, (socket: Socket) => {
    let partial = 0;
    socket.on('data', (chunk: Buffer) => {
      const bytes = partial + chunk.length;
      const n = Math.floor(bytes / o.requestBytes);
      partial = bytes - n * o.requestBytes;
      if (n === 0) return;
      for (let i = 0; i < n; i++) { spinUs(o.workUs); allocate(o); }
      handledInWindow.count += n;
      socket.write(Buffer.alloc(n * o.replyBytes, 1));
    });
    socket.on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    listening(typeof address === 'object' && address ? address.port : 0);
  });
}

// ---- client role: keeps requests outstanding -----------------------------------------------

function drive(o: Options, port: number): void {
  const perConnection = Math.max(1, Math.floor(o.clients / o.connections));
  const request = Buffer.alloc(o.requestBytes, 2);
  for (let c = 0; c < o.connections; c++) {
    const socket = createConnection({ port, host: '127.0.0.1', noDelay: true });
    let partial = 0;
    socket.on('connect', () => socket.write(Buffer.concat(Array.from({ length: perConnection }, () => request))));
    socket.on('data', (chunk: Buffer) => {
      const bytes = partial + chunk.length;
      const n = Math.floor(bytes / o.replyBytes);
      partial = bytes - n * o.replyBytes;
      if (n > 0 && o.clientWorkUs > 0) spinUs(n * o.clientWorkUs);
      if (n > 0) socket.write(n === 1 ? request : Buffer.concat(Array.from({ length: n }, () => request)));
    });
    socket.on('error', () => process.exit(0));
  }
}

// ---- orchestrator ---------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function nextMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m as T));
    child.once('exit', (code) => reject(new Error(`the ${child.pid} process exited (${code})`)));
  });
}

function median3(xs: readonly number[]): number { return [...xs].sort((a, b) => a - b)[1]!; }

async function orchestrate(o: Options): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const argv = process.argv.slice(2);
  const server = fork(self, ['--role', 'server', ...argv], { detached: serversInOwnSession, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const children: ChildProcess[] = [server];
  const stop = (): void => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); };
  process.on('exit', stop);
  try {
    const { port } = await nextMessage<{ port: number }>(server);
    if (o.mode === 'echo') {
      children.push(fork(self, ['--role', 'client', '--port', String(port), ...argv], { stdio: 'inherit', execArgv: generatorNodeArgs() }));
    }
    console.log(`busy-canary: mode ${o.mode}; ${o.windows} windows of ${o.seconds}s after ${o.warmupMs} ms; server pid ${server.pid}` +
      (o.mode === 'echo' ? `; ${o.clients} clients / ${o.connections} conns, ${o.workUs} us per request` : `; ${o.chunkUs} us chunks, duty ${o.duty}`));
    await sleep(o.warmupMs);
    const windows: Window[] = [];
    for (let i = 0; i < o.windows; i++) {
      server.send({ type: 'reset' });
      await sleep(o.seconds * 1000);
      const reply = nextMessage<Window>(server);
      server.send({ type: 'read' });
      const w = await reply;
      windows.push(w);
      console.log(`  window ${String(i + 1).padStart(3)}: ${Math.round(w.requests / w.seconds).toString().padStart(7)} req/s, cpu ${w.cpuPct.toFixed(0).padStart(3)}%, loop p99 ${w.loopP99Ms.toFixed(1).padStart(5)} max ${w.loopMaxMs.toFixed(1).padStart(6)} ms${w.loopMaxMs > 10 ? '  *' : ''}`);
    }
    summarize(windows);
    if (o.json) writeFileSync(o.json, JSON.stringify({ options: o, windows }, null, 1));
  } finally {
    stop();
  }
}

function summarize(windows: readonly Window[]): void {
  const maxes = windows.map((w) => w.loopMaxMs);
  const over = maxes.filter((m) => m > 10).length;
  const triples: number[] = [];
  for (let i = 0; i + 3 <= maxes.length; i += 3) triples.push(median3(maxes.slice(i, i + 3)));
  const tripleOver = triples.filter((m) => m > 10).length;
  const sorted = [...maxes].sort((a, b) => a - b);
  console.log(`windows with a loop max over 10 ms: ${over} of ${maxes.length}; medians of 3 over 10 ms: ${tripleOver} of ${triples.length}`);
  console.log(`loop max over the windows: p50 ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} ms, max ${sorted[sorted.length - 1]!.toFixed(1)} ms`);
}

const argv = process.argv.slice(2);
const o = options(argv);
const role = argv.includes('--role') ? argv[argv.indexOf('--role') + 1] : 'orchestrator';
if (role !== 'orchestrator') process.on('disconnect', () => process.exit(0)); // the orchestrator is gone
if (role === 'server') serve(o);
else if (role === 'client') drive(o, Number(argv[argv.indexOf('--port') + 1]));
else await orchestrate(o);
