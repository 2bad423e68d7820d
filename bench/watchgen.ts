// The streaming load generator, run as its own process by bench/main.ts for the watch and
// lease rows (identical for every target), on the lean client of bench/h2-grpc.ts.
//
// kind 'watch': `watchers` watchers spread over `connections` streams (one connection each);
// watcher i watches key wbench/k<i % keys> (or the prefix wbench/ with `prefix`); `writers`
// closed-loop put loops write MARK + their send time as the value, to the keys in turn (with
// `putsPerSecond`, the writers together start one put every 1/putsPerSecond s, as a steady
// application would, and every event's latency is sampled, not one in 16). Counts
// events delivered per second to all watchers together (every response is framed and scanned
// for MARK, once per event, not decoded), samples put-to-event latency, and notes events per
// response and bytes per event (how the target batches). `slowStreams` more streams, each on its own
// connection with HTTP/2's default 64 KiB windows, create `slowWatchersPerStream` watchers on
// the same keys and then read nothing: the readers must not be stalled by them, and the
// server's memory must stay bounded (its RSS is sampled from /proc and reported).
// kind 'lease': `clients` keep-alive loops, each with its own lease (client-chosen id) and
// LeaseKeepAlive stream, sending the next keep-alive when the previous one is answered.
//
// Input: argv[2] = JSON StreamLoadConfig. Output over IPC as loadgen.ts: progress,
// window-start, result (a LoadResult plus `note`).
import type * as http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import type { LoadResult } from './loadgen.js';
import { connect, grpcFrame, openBidi, pbBytes, pbVarint, unary } from './h2-grpc.js';

export interface StreamLoadConfig {
  endpoint: string;
  kind: 'watch' | 'lease';
  watchers: number;
  connections: number;
  keys: number;
  prefix: boolean;
  writers: number;
  writerConnections: number;
  slowStreams: number;
  slowWatchersPerStream: number;
  /** 0: closed-loop writers, as fast as the server answers; else the writers' total rate. */
  putsPerSecond?: number;
  clients: number;
  warmupMs: number;
  durationMs: number;
  /** The server process, for its memory (VmRSS) during the window. */
  serverPid: number;
}

export type StreamLoadResult = LoadResult & { note: string };

const MARK = Buffer.from('@WB@');
const stampBytes = MARK.length + 8;
const PREFIX = 'wbench/';
const PREFIX_END = Buffer.from('wbench0'); // '/' + 1
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Warm-up, then the measured window; counts and latency samples only inside it. */
class Window {
  measuring = false;
  count = 0;
  errors = 0;
  firstError: string | null = null;
  readonly latencies: number[] = [];
  private rssMaxKiB = 0;
  private rssLastKiB = 0;
  private rssStartKiB = 0;

  /** Made before the generator connects: the RSS before the load is the first sample. */
  constructor(private readonly cfg: StreamLoadConfig) {
    this.sampleRss();
    this.rssStartKiB = this.rssLastKiB;
  }

  error(e: string): void {
    this.errors++;
    this.firstError ??= e;
  }

  private sampleRss(): void {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${this.cfg.serverPid}/status`, 'utf8'));
      if (m) { this.rssLastKiB = Number(m[1]); this.rssMaxKiB = Math.max(this.rssMaxKiB, this.rssLastKiB); }
    } catch { /* not on Linux or the server is gone */ }
  }

  async run(): Promise<{ elapsedMs: number; cpu: NodeJS.CpuUsage; rss: string }> {
    const start = performance.now();
    const progress = setInterval(() => {
      process.send?.({ type: 'progress', phase: this.measuring ? 'measure' : 'warmup', elapsedMs: performance.now() - start, requests: this.count, errors: this.errors });
    }, 1000);
    await sleep(this.cfg.warmupMs);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    this.measuring = true;
    process.send?.({ type: 'window-start' });
    const rssTimer = setInterval(() => this.sampleRss(), 250);
    this.sampleRss();
    await sleep(this.cfg.durationMs);
    this.measuring = false;
    const elapsedMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(rssTimer);
    clearInterval(progress);
    this.sampleRss();
    return { elapsedMs, cpu, rss: `server RSS ${(this.rssStartKiB / 1024).toFixed(0)} MiB before the load, max ${(this.rssMaxKiB / 1024).toFixed(0)} MiB` };
  }

  result(elapsedMs: number, cpu: NodeJS.CpuUsage, note: string): StreamLoadResult {
    const lat = this.latencies.sort((a, b) => a - b);
    const q = (p: number): number => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]! : NaN);
    return {
      requests: this.count, errors: this.errors, firstError: this.firstError, elapsedMs,
      throughput: this.count / (elapsedMs / 1000),
      p50Ms: q(0.5), p90Ms: q(0.9), p99Ms: q(0.99), maxMs: lat.length ? lat[lat.length - 1]! : NaN,
      cpuUserMs: cpu.user / 1000, cpuSystemMs: cpu.system / 1000, note,
    };
  }
}

const keyOf = (i: number, cfg: StreamLoadConfig): Buffer => Buffer.from(`${PREFIX}k${i % cfg.keys}`);

function createRequest(i: number, cfg: StreamLoadConfig): Buffer {
  const create = cfg.prefix ? Buffer.concat([pbBytes(1, Buffer.from(PREFIX)), pbBytes(2, PREFIX_END)]) : pbBytes(1, keyOf(i, cfg));
  return grpcFrame(pbBytes(1, create));
}

/**
 * Opens `count` watchers (watcher numbers from `first`) on one new stream; resolves once all
 * are created. A response without MARK is a create answer; one with it goes to `onEvents`
 * with the offset of its first MARK (each response is scanned once).
 */
async function openWatchStream(session: http2.ClientHttp2Session, first: number, count: number, cfg: StreamLoadConfig, onEvents: (message: Buffer, firstMark: number) => void): Promise<http2.ClientHttp2Stream> {
  let created = 0;
  const stream = openBidi(session, '/etcdserverpb.Watch/Watch', (m) => {
    const at = m.indexOf(MARK);
    if (at < 0) created++;
    else onEvents(m, at);
  });
  for (let i = 0; i < count; i++) stream.write(createRequest(first + i, cfg));
  while (created < count) {
    if (stream.closed) throw new Error(`watch stream closed after ${created} of ${count} creates`);
    await sleep(10);
  }
  return stream;
}

async function runWatch(cfg: StreamLoadConfig): Promise<StreamLoadResult> {
  const win = new Window(cfg);
  let sample = 0;
  /** Latency sampled for one event in sampleMask + 1 (all of them at a fixed, low put rate). */
  const sampleMask = (cfg.putsPerSecond ?? 0) > 0 ? 0 : 15;
  /** Event responses and their bytes in the window: events per response and bytes per event say how the target batches. */
  let responses = 0;
  let responseBytes = 0;
  const onEvents = (m: Buffer, firstMark: number): void => {
    if (!win.measuring) return;
    responses++;
    responseBytes += m.length + 5;
    const now = performance.now();
    for (let at = firstMark; at >= 0 && at + stampBytes <= m.length; at = m.indexOf(MARK, at + stampBytes)) {
      win.count++;
      if ((++sample & sampleMask) === 0) win.latencies.push(now - m.readDoubleLE(at + MARK.length));
    }
  };
  const sessions: http2.ClientHttp2Session[] = [];
  const perStream = Math.ceil(cfg.watchers / cfg.connections);
  for (let c = 0, first = 0; first < cfg.watchers; c++, first += perStream) {
    sessions.push(connect(cfg.endpoint));
    await openWatchStream(sessions[c]!, first, Math.min(perStream, cfg.watchers - first), cfg, onEvents);
  }
  for (let s = 0; s < cfg.slowStreams; s++) {
    const session = connect(cfg.endpoint, false);
    sessions.push(session);
    const stream = await openWatchStream(session, s * cfg.slowWatchersPerStream, cfg.slowWatchersPerStream, cfg, () => {});
    stream.pause(); // reads nothing more: HTTP/2 flow control stops the server's writes, its queue fills
  }
  const writerSessions = Array.from({ length: cfg.writerConnections }, () => connect(cfg.endpoint));
  sessions.push(...writerSessions);
  let stop = false;
  let puts = 0;
  const pacedStart = performance.now();
  let paced = 0;
  /** With putsPerSecond: waits for the next free slot of the shared schedule (never catches up in a burst). */
  const nextSlot = async (): Promise<void> => {
    const rate = cfg.putsPerSecond ?? 0;
    if (rate <= 0) return;
    const due = Math.max(pacedStart + (paced * 1000) / rate, performance.now());
    paced = Math.floor(((due - pacedStart) * rate) / 1000) + 1;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
  };
  const writer = async (w: number): Promise<void> => {
    const session = writerSessions[w % writerSessions.length]!;
    const value = Buffer.allocUnsafe(stampBytes);
    MARK.copy(value);
    for (let seq = w; !stop; seq += cfg.writers) {
      await nextSlot();
      if (stop) break;
      value.writeDoubleLE(performance.now(), MARK.length);
      const err = await unary(session, '/etcdserverpb.KV/Put', grpcFrame(Buffer.concat([pbBytes(1, keyOf(seq, cfg)), pbBytes(2, value)])));
      if (err !== null) win.error(`put: ${err}`);
      else if (win.measuring) puts++;
    }
  };
  const loops = Array.from({ length: cfg.writers }, (_, w) => writer(w));
  const { elapsedMs, cpu, rss } = await win.run();
  stop = true;
  await Promise.all(loops);
  for (const s of sessions) s.destroy();
  const slow = cfg.slowStreams > 0 ? `, ${cfg.slowStreams}x${cfg.slowWatchersPerStream} watchers not reading` : '';
  const shape = `${(win.count / Math.max(1, responses)).toFixed(1)} events/response, ${(responseBytes / Math.max(1, win.count)).toFixed(0)} B/event`;
  return win.result(elapsedMs, cpu, `events/s, put-to-event ms; ${(puts / (elapsedMs / 1000)).toFixed(0)} puts/s${slow}; ${shape}; ${rss}`);
}

async function runLease(cfg: StreamLoadConfig): Promise<StreamLoadResult> {
  const win = new Window(cfg);
  const sessions = Array.from({ length: cfg.connections }, () => connect(cfg.endpoint));
  // Client-chosen ids (random base): no response decoding, and repeated runs never collide.
  const base = BigInt(Math.floor(Math.random() * 2 ** 40)) << 12n;
  let stop = false;
  let zeroTtl = 0;
  const ttl60 = pbVarint(3, 60);
  const ttl59 = pbVarint(3, 59);
  const client = async (i: number): Promise<void> => {
    const session = sessions[i % sessions.length]!;
    const id = base + BigInt(i);
    const err = await unary(session, '/etcdserverpb.Lease/LeaseGrant', grpcFrame(Buffer.concat([pbVarint(1, 60), pbVarint(2, id)])));
    if (err !== null) { win.error(`grant: ${err}`); return; }
    const request = grpcFrame(pbVarint(1, id));
    await new Promise<void>((resolve) => {
      let sentAt = 0;
      const stream = openBidi(session, '/etcdserverpb.Lease/LeaseKeepAlive', (m) => {
        if (win.measuring) {
          win.count++;
          if ((win.count & 7) === 0) win.latencies.push(performance.now() - sentAt);
          if (m.indexOf(ttl60) < 0 && m.indexOf(ttl59) < 0) zeroTtl++;
        }
        if (stop) { stream.close(); resolve(); return; }
        sentAt = performance.now();
        stream.write(request);
      });
      stream.on('close', () => resolve());
      sentAt = performance.now();
      stream.write(request);
    });
  };
  const loops = Array.from({ length: cfg.clients }, (_, i) => client(i));
  const { elapsedMs, cpu } = await win.run();
  stop = true;
  await Promise.all(loops);
  for (const s of sessions) s.destroy();
  return win.result(elapsedMs, cpu, `keep-alives/s${zeroTtl ? `; ${zeroTtl} answers without TTL 59/60!` : ''}`);
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as StreamLoadConfig;
(cfg.kind === 'lease' ? runLease(cfg) : runWatch(cfg)).then((result) => {
  if (process.send) process.send({ type: 'result', result }, () => process.exit(0));
  else { console.log(JSON.stringify(result)); process.exit(0); }
}, (e) => { console.error(e); process.exit(1); });
