import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { threadNiceFromEnv } from './thread-priority.js';

const module = fileURLToPath(new URL('./thread-priority.js', import.meta.url));
const dataSyncer = fileURLToPath(new URL('../wal/data-syncer.js', import.meta.url));
const isRoot = process.getuid?.() === 0;

/**
 * Runs a node child that holds `want` (rescanning every 50 ms), then starts a worker thread
 * (a thread born after the first scan, with the main thread's value), waits for two rescans
 * and prints every thread's nice value as /proc shows it: the main thread's first.
 */
function niceValuesInChild(want: object, opts: { childNice?: number; walSync?: boolean } = {}): { main: number; others: number[]; byName: Map<string, number[]> } {
  const script = `
    const { holdThreadNice, ownThreads } = await import(${JSON.stringify(module)});
    const { Worker } = await import('node:worker_threads');
    const warnings = [];
    const log = { warn: (msg, fields) => warnings.push(msg) };
    holdThreadNice(${JSON.stringify(want)}, log, 50);
    if (${opts.walSync === true}) {
      // The WAL's bounded sync thread, started (as the WAL does) on its first sync.
      const { boundedDataSyncer } = await import(${JSON.stringify(dataSyncer)});
      const { openSync, unlinkSync } = await import('node:fs');
      const file = (await import('node:os')).tmpdir() + '/concord-nice-' + process.pid;
      boundedDataSyncer().within(openSync(file, 'w'), 5000, () => {});
      unlinkSync(file);
    }
    const w = new Worker('setInterval(() => {}, 1000)', { eval: true });
    await new Promise((r) => w.once('online', r));
    await new Promise((r) => setTimeout(r, 300));
    const threads = ownThreads();
    console.log(JSON.stringify({ threads, pid: process.pid, warnings }));
    process.exit(0);`;
  const argv = ['--input-type=module', '-e', script];
  const out = opts.childNice === undefined
    ? execFileSync(process.execPath, argv, { encoding: 'utf8' })
    : execFileSync('nice', ['-n', String(opts.childNice), process.execPath, ...argv], { encoding: 'utf8' });
  const { threads, pid } = JSON.parse(out) as { threads: Array<{ tid: number; name: string; nice: number }>; pid: number };
  const main = threads.find((t) => t.tid === pid)!.nice;
  const others = threads.filter((t) => t.tid !== pid);
  const byName = new Map<string, number[]>();
  for (const t of others) byName.set(t.name, [...(byName.get(t.name) ?? []), t.nice]);
  return { main, others: others.map((t) => t.nice), byName };
}

test('every thread but the main one runs nicer by the offset, threads born later too', { skip: process.platform !== 'linux' }, () => {
  const r = niceValuesInChild({ helpersAboveMain: 10, main: undefined });
  assert.equal(r.main, 0);
  assert.ok(r.others.length >= 8, `V8's workers, libuv's pool and the worker thread: ${r.others.length}`);
  assert.deepEqual(new Set(r.others), new Set([10]));
});

test('the WAL\'s bounded sync thread, which the main thread waits on, keeps the main thread\'s value', { skip: process.platform !== 'linux' }, () => {
  const r = niceValuesInChild({ helpersAboveMain: 10, main: undefined }, { childNice: 3, walSync: true });
  assert.equal(r.main, 3);
  assert.deepEqual(r.byName.get('concord-walsync'), [3]);
  const helpers = r.others.length - 1;
  assert.ok(helpers >= 8, `the other threads: ${helpers}`);
  assert.deepEqual(new Set([...r.byName].filter(([name]) => name !== 'concord-walsync').flatMap(([, n]) => n)), new Set([13]));
});

test('the offset is from the main thread\'s value, capped at 19', { skip: process.platform !== 'linux' }, () => {
  const r = niceValuesInChild({ helpersAboveMain: 10, main: undefined }, { childNice: 15 });
  assert.equal(r.main, 15);
  assert.deepEqual(new Set(r.others), new Set([19]));
});

test('off leaves every thread alone', { skip: process.platform !== 'linux' }, () => {
  const r = niceValuesInChild({ helpersAboveMain: undefined, main: undefined });
  assert.equal(r.main, 0);
  assert.deepEqual(new Set(r.others), new Set([0]));
});

test('a main-thread boost (root only) moves the helpers with it', { skip: process.platform !== 'linux' || !isRoot }, () => {
  const r = niceValuesInChild({ helpersAboveMain: 10, main: -5 });
  assert.equal(r.main, -5);
  assert.deepEqual(new Set(r.others), new Set([5]));
});

test('the environment: default, off, values and malformed ones', () => {
  assert.deepEqual(threadNiceFromEnv({}), { helpersAboveMain: 5, main: undefined });
  assert.deepEqual(threadNiceFromEnv({ CONCORD_THREAD_NICE: 'off' }), { helpersAboveMain: undefined, main: undefined });
  assert.deepEqual(threadNiceFromEnv({ CONCORD_THREAD_NICE: '0', CONCORD_MAIN_NICE: '-10' }), { helpersAboveMain: 0, main: -10 });
  for (const bad of [{ CONCORD_THREAD_NICE: '-1' }, { CONCORD_THREAD_NICE: '40' }, { CONCORD_THREAD_NICE: 'x' }, { CONCORD_MAIN_NICE: '-21' }, { CONCORD_MAIN_NICE: '1.5' }]) {
    assert.match(String(threadNiceFromEnv(bad)), /^invalid CONCORD_(THREAD|MAIN)_NICE/);
  }
});
