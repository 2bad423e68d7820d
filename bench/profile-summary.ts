// Prints a CPU profile and an allocation-sampling heap profile by call site (not a test):
// `node dist/bench/profile-summary.js DIR [--per N] [--top 40]` reads DIR/window.cpuprofile and
// DIR/window.heapprofile (bench/profile-window.ts writes them). `--per N` divides by N (the
// requests of the window) to print us and bytes per request.
//
// Each figure is given twice: by the function that spent it (self) and by the first frame of
// ours on its stack (the project's code that caused it: node:http2's internals called from our
// respond() count there), so "ours vs node's" can be read off either way.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface CpuNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: CpuNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }
interface HeapNode { callFrame: CallFrame; selfSize: number; children: HeapNode[] }

const dir = process.argv[2] ?? '.';
const argOf = (name: string, dflt: number): number => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : dflt; };
const per = argOf('per', 1);
const top = argOf('top', 40);

const ours = (f: CallFrame): boolean => f.url.includes('/dist/src/');
function where(f: CallFrame): string {
  const file = f.url === '' ? '' : f.url.replace(/^.*\/dist\//, '').replace(/^node:internal\//, 'node:');
  return `${f.functionName || '(anonymous)'} ${file}${f.url === '' ? '' : `:${f.lineNumber + 1}`}`;
}
function add(m: Map<string, number>, k: string, v: number): void { m.set(k, (m.get(k) ?? 0) + v); }
function print(title: string, m: Map<string, number>, unit: string, total: number): void {
  console.log(`\n${title} (total ${(total / per).toFixed(1)} ${unit}${per !== 1 ? ' per request' : ''})`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(v / per).toFixed(2).padStart(10)} ${unit}  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
  }
}

// --- CPU: sample time per node, self and by first frame of ours (walking up from the leaf) ---
const cpu = JSON.parse(readFileSync(join(dir, 'window.cpuprofile'), 'utf8')) as CpuProfile;
const parent = new Map<number, number>();
const byId = new Map<number, CpuNode>();
for (const n of cpu.nodes) { byId.set(n.id, n); for (const c of n.children ?? []) parent.set(c, n.id); }
const selfUs = new Map<string, number>(), oursUs = new Map<string, number>();
let totalUs = 0;
for (let i = 0; i < cpu.samples.length; i++) {
  const us = cpu.timeDeltas[i + 1] ?? 0;
  let id: number | undefined = cpu.samples[i]!;
  const leaf = byId.get(id)!;
  if (leaf.callFrame.functionName === '(idle)') continue;
  totalUs += us;
  add(selfUs, where(leaf.callFrame), us);
  let site = '(no frame of ours)';
  for (; id !== undefined; id = parent.get(id)) { const f = byId.get(id)!.callFrame; if (ours(f)) { site = where(f); break; } }
  add(oursUs, site, us);
}
print('CPU, self (not idle)', selfUs, 'us', totalUs);
print('CPU, by innermost frame of ours', oursUs, 'us', totalUs);

// --- Heap: sampled bytes, self and by first frame of ours (walking down with the stack) ---
const heap = JSON.parse(readFileSync(join(dir, 'window.heapprofile'), 'utf8')) as { head: HeapNode };
const selfB = new Map<string, number>(), oursB = new Map<string, number>();
let totalB = 0;
function walk(n: HeapNode, site: string): void {
  const s = ours(n.callFrame) ? where(n.callFrame) : site;
  if (n.selfSize > 0) { totalB += n.selfSize; add(selfB, where(n.callFrame), n.selfSize); add(oursB, s, n.selfSize); }
  for (const c of n.children) walk(c, s);
}
walk(heap.head, '(no frame of ours)');
print('Allocated bytes, self', selfB, 'B', totalB);
print('Allocated bytes, by innermost frame of ours', oursB, 'B', totalB);
