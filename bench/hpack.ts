// HPACK decoding cost (not a test): `node dist/bench/hpack.js [--blocks 2000] [--repeat 7]`.
//
// Decodes the header blocks a grpc-go client (etcdctl, etcd's clientv3) and a grpc-js client
// send on one connection, with Concord's decoder (src/api/h2/hpack.ts) and with hpack.js's decompressor,
// and prints per request block:
//   ns        CPU time of the process (user + system; median of --repeat runs): less
//             sensitive to the machine's load than wall time, but compare in the same run only
//   alloc B   bytes the V8 heap grew by over a window without GC (does not depend on load)
//
// The blocks are made by a small stand-in for grpc-go's encoder (golang.org/x/net/http2/hpack:
// every field indexed when it fits the 4096-byte table, full-table search, Huffman when
// shorter), over the fields etcdctl sends with each Put (captured from etcdctl 3.4: see
// hpack.test.ts), grpc-timeout changing per request as a deadline does. So from the second
// request on, 8 fields are one-octet references and grpc-timeout is a new literal that
// churns the table, evicting the oldest entries (which grpc-go then sends as literals again).
// The grpc-js blocks differ in that nghttp2 never indexes :path: it is a literal each time.
//
// It runs itself in a child with --expose-gc and a large young generation (`--child` marks it).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { createRequire } from 'node:module';
import { PerformanceObserver } from 'node:perf_hooks';
import { HpackDecoder } from '../src/api/h2/hpack.js';
import { huffmanEncode, huffmanEncodedLength } from '../src/api/h2/huffman.js';

function opt(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}
const blockCount = Number(opt('blocks', '2000'));
const repeat = Number(opt('repeat', '7'));

const require = createRequire(import.meta.url);
const hpackJs = require('hpack.js') as {
  decompressor: { create(o: { table: { maxSize: number } }): { write(b: Buffer): void; execute(): void; read(): { name: string; value: string } | null } };
};

// ---- a grpc-go-like encoder ----

const staticTable: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''],
];

function pushInt(out: number[], value: number, prefixBits: number, high: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) { out.push(high | value); return; }
  out.push(high | max);
  for (value -= max; value >= 0x80; value = Math.floor(value / 128)) out.push((value & 0x7f) | 0x80);
  out.push(value);
}

function pushString(out: number[], s: string): void {
  const h = huffmanEncodedLength(s);
  if (h < s.length) {
    const b = Buffer.alloc(h);
    huffmanEncode(s, b, 0);
    pushInt(out, h, 7, 0x80);
    out.push(...b);
  } else {
    pushInt(out, s.length, 7, 0);
    for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i));
  }
}

/** One connection's encoder: grpc-go's choices (index everything that fits, search the whole table). */
class GoLikeEncoder {
  private dynamic: Array<[string, string]> = []; // newest first
  private bytes = 0;

  /** `notIndexed`: names sent as literals without indexing (nghttp2 does that for :path). */
  constructor(private readonly notIndexed: ReadonlySet<string> = new Set()) {}

  encode(fields: ReadonlyArray<readonly [string, string]>): Buffer {
    const out: number[] = [];
    for (const [name, value] of fields) {
      const { index, exact } = this.search(name, value);
      if (exact) { pushInt(out, index, 7, 0x80); continue; }
      const indexing = !this.notIndexed.has(name);
      pushInt(out, index, indexing ? 6 : 4, indexing ? 0x40 : 0x00);
      if (index === 0) pushString(out, name);
      pushString(out, value);
      if (indexing) this.add(name, value);
    }
    return Buffer.from(out);
  }

  private search(name: string, value: string): { index: number; exact: boolean } {
    let nameIndex = 0;
    const all = [...staticTable, ...this.dynamic];
    for (let i = 0; i < all.length; i++) {
      if (all[i]![0] !== name) continue;
      if (all[i]![1] === value) return { index: i + 1, exact: true };
      if (nameIndex === 0) nameIndex = i + 1;
    }
    return { index: nameIndex, exact: false };
  }

  private add(name: string, value: string): void {
    const size = name.length + value.length + 32;
    this.dynamic.unshift([name, value]);
    this.bytes += size;
    while (this.bytes > 4096) {
      const [n, v] = this.dynamic.pop()!;
      this.bytes -= n.length + v.length + 32;
    }
  }
}

/**
 * The blocks of `n` Put requests on one connection: etcdctl's (grpc-go: everything indexed),
 * or a grpc-js client's (nghttp2: :path as a literal without indexing in every request).
 */
function requestBlocks(n: number, client: 'grpc-go' | 'grpc-js'): Buffer[] {
  const enc = new GoLikeEncoder(client === 'grpc-js' ? new Set([':path']) : new Set());
  const blocks: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const fields: Array<[string, string]> = client === 'grpc-go'
      ? [[':method', 'POST'], [':scheme', 'http'], [':path', '/etcdserverpb.KV/Put'], [':authority', '127.0.0.1:2379'],
        ['content-type', 'application/grpc'], ['user-agent', 'grpc-go/1.33.3'], ['te', 'trailers'],
        ['grpc-timeout', `${4999000 - ((i * 7919) % 5000)}u`], ['client-api-version', '3.4']]
      : [[':authority', '127.0.0.1:2379'], [':method', 'POST'], [':path', '/etcdserverpb.KV/Put'], [':scheme', 'http'],
        ['grpc-accept-encoding', 'identity,deflate,gzip'], ['accept-encoding', 'identity'], ['grpc-timeout', `${4999 - ((i * 7919) % 5000)}m`],
        ['user-agent', 'grpc-node-js/1.14.7'], ['content-type', 'application/grpc'], ['te', 'trailers']];
    blocks.push(enc.encode(fields));
  }
  return blocks;
}

// ---- the two decoders ----

let sink = 0;
const onHeader = (name: string, value: string): void => { sink += name.length + value.length; };

function decodeOurs(blocks: readonly Buffer[]): void {
  const d = new HpackDecoder();
  for (const b of blocks) d.decode(b, onHeader);
}

function decodeHpackJs(blocks: readonly Buffer[]): void {
  const d = hpackJs.decompressor.create({ table: { maxSize: 4096 } });
  for (const b of blocks) {
    d.write(b);
    d.execute();
    for (let h = d.read(); h; h = d.read()) onHeader(h.name, h.value);
  }
}

/** Connections (each a fresh decoder over all blocks) per timed run: enough for CPU time's microsecond ticks. */
const connectionsPerRun = 10;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function nsPerBlock(decode: (b: readonly Buffer[]) => void, blocks: readonly Buffer[]): number {
  const runs: number[] = [];
  for (let r = 0; r < repeat; r++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < connectionsPerRun; i++) decode(blocks);
    const used = process.cpuUsage(t0);
    runs.push(((used.user + used.system) * 1000) / (blocks.length * connectionsPerRun));
  }
  return median(runs);
}

/** Heap growth per block over a window with no GC in it (retried with fewer blocks if one came). */
async function allocPerBlock(decode: (b: readonly Buffer[]) => void, blocks: readonly Buffer[]): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  let gcs = 0;
  const obs = new PerformanceObserver((list) => { gcs += list.getEntries().length; });
  obs.observe({ entryTypes: ['gc'] });
  try {
    for (let n = blocks.length; n >= 10; n = Math.floor(n / 2)) {
      const window = blocks.slice(0, n);
      gc();
      await new Promise((r) => setTimeout(r, 200)); // gc entries are delivered late
      const before = gcs;
      const h0 = process.memoryUsage().heapUsed;
      decode(window);
      const h1 = process.memoryUsage().heapUsed;
      await new Promise((r) => setTimeout(r, 200)); // gc entries are delivered late
      if (gcs === before) return (h1 - h0) / n;
    }
    return NaN;
  } finally {
    obs.disconnect();
  }
}

async function child(): Promise<void> {
  console.log(`load average ${loadavg()[0]!.toFixed(2)} (CPU ns depend on it somewhat; bytes do not)`);
  for (const client of ['grpc-go', 'grpc-js'] as const) {
    const blocks = requestBlocks(blockCount, client);
    const encodedBytes = blocks.slice(1).reduce((s, b) => s + b.length, 0) / (blocks.length - 1);
    // Warm both up (JIT) on the same blocks.
    for (let i = 0; i < 5; i++) { decodeOurs(blocks); decodeHpackJs(blocks); }
    const rows = [
      { name: 'concord', ns: nsPerBlock(decodeOurs, blocks), alloc: await allocPerBlock(decodeOurs, blocks) },
      { name: 'hpack.js', ns: nsPerBlock(decodeHpackJs, blocks), alloc: await allocPerBlock(decodeHpackJs, blocks) },
    ];
    console.log(`\n${client}-like Put request blocks: ${blocks.length} on one connection, ${encodedBytes.toFixed(1)} encoded bytes each after the first`);
    console.log('decoder  CPU ns/block   alloc B/block');
    for (const r of rows) console.log(`${r.name.padEnd(10)} ${r.ns.toFixed(0).padStart(9)} ${r.alloc.toFixed(0).padStart(15)}`);
    console.log(`ratio (hpack.js / concord): time ${(rows[1]!.ns / rows[0]!.ns).toFixed(2)}x, alloc ${(rows[1]!.alloc / Math.max(1, rows[0]!.alloc)).toFixed(2)}x`);
  }
  if (sink === 0) console.log('(no headers decoded)');
}

if (process.argv.includes('--child')) {
  await child();
} else {
  const r = spawnSync(process.execPath, ['--expose-gc', '--max-semi-space-size=64', fileURLToPath(import.meta.url), '--child', ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
}
