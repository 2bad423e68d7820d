// Profiles a server process over a window its driver chooses (not a test): loaded into Concord
// with `--import <this file's URL>` (bench/put-cost.ts's --profile DIR does that), it starts,
// on the first SIGUSR2, V8's CPU profiler and its sampling heap profiler, and on the second writes both to $PROFILE_WINDOW_DIR (window.cpuprofile,
// window.heapprofile) and stops them.
//
// Why not node's --heap-prof: it keeps only the samples still alive when the process exits,
// so it shows what is retained, not what is allocated per request (the 15 KB a put costs are
// almost all garbage by the next scavenge). Here the sampling keeps the objects collected by
// both GCs: the profile is the allocation rate, by the stack that allocated.
// bench/profile-summary.ts prints the two profiles by call site.
// PROFILE_WINDOW_SURVIVORS=1 keeps only the samples no scavenge collected: what outlived the
// young generation (promoted, or young at the window's end), by the stack that allocated it.
// PROFILE_WINDOW_SNAPSHOT_AFTER_MS=N also writes a heap snapshot (window.heapsnapshot) N ms
// into the window, under load: what is alive then (e.g. how many calls a scavenge finds).
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.PROFILE_WINDOW_DIR ?? '.';
/** Bytes between heap samples (V8's default is 512 KiB: too coarse for a few KB per request). */
const heapIntervalBytes = Number(process.env.PROFILE_WINDOW_HEAP_INTERVAL ?? 16384);
const survivorsOnly = process.env.PROFILE_WINDOW_SURVIVORS === '1';
const snapshotAfterMs = Number(process.env.PROFILE_WINDOW_SNAPSHOT_AFTER_MS ?? NaN);
const session = new Session();
session.connect();
const post = (method: string, params: object = {}): Promise<any> =>
  new Promise((resolve, reject) => session.post(method, params, (e, r) => (e ? reject(e) : resolve(r))));
let running = false;

process.on('SIGUSR2', () => { void (running ? stop() : start()); });

async function start(): Promise<void> {
  running = true;
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 200 });
  await post('Profiler.start');
  await post('HeapProfiler.enable');
  await post('HeapProfiler.startSampling', {
    samplingInterval: heapIntervalBytes, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !survivorsOnly,
  });
  if (snapshotAfterMs >= 0) setTimeout(() => { void snapshot(); }, snapshotAfterMs);
}

async function snapshot(): Promise<void> {
  const chunks: string[] = [];
  const onChunk = (m: { params: { chunk: string } }): void => { chunks.push(m.params.chunk); };
  session.on('HeapProfiler.addHeapSnapshotChunk', onChunk);
  await post('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
  session.off('HeapProfiler.addHeapSnapshotChunk', onChunk);
  writeFileSync(join(dir, 'window.heapsnapshot'), chunks.join(''));
}

async function stop(): Promise<void> {
  running = false;
  const { profile: heap } = await post('HeapProfiler.stopSampling');
  const { profile: cpu } = await post('Profiler.stop');
  writeFileSync(join(dir, 'window.heapprofile'), JSON.stringify(heap));
  writeFileSync(join(dir, 'window.cpuprofile'), JSON.stringify(cpu));
  process.stdout.write(`PROFILE-WINDOW written to ${dir}\n`);
}
