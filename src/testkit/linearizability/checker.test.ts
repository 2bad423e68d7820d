// The checker on hand-written histories whose verdict is known (stale read, lost write, a CAS
// that succeeds twice, a read that goes back in time, unknown outcomes), on random histories
// generated from a correct sequential store (must pass) and on the same histories with one
// operation mutated in a way that is certainly not linearizable (must fail).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { rng } from '../index.js';
import { UNKNOWN, checkOperations, explain, kvModel, applyKv, type KvInput, type KvOutput, type KvOperation } from './index.js';

type Out = KvOutput | typeof UNKNOWN;
const op = (client: number, call: number, ret: number, input: KvInput, output: Out): KvOperation => ({ client, call, return: ret, input, output });
const put = (c: number, call: number, ret: number, key: string, value: string, unknown = false) =>
  op(c, call, ret, { kind: 'put', key, value }, unknown ? UNKNOWN : { kind: 'put' });
const get = (c: number, call: number, ret: number, key: string, value: string | null) =>
  op(c, call, ret, { kind: 'get', key }, { kind: 'get', value });
const cas = (c: number, call: number, ret: number, key: string, expect: string | null, value: string, out: { succeeded: boolean; current?: string | null } | 'unknown') =>
  op(c, call, ret, { kind: 'cas', key, expect, value }, out === 'unknown' ? UNKNOWN : { kind: 'cas', ...out });

const verdict = (h: KvOperation[], maxSteps?: number) => checkOperations(kvModel, h, { maxSteps }).outcome;

describe('linearizability checker: known histories', () => {
  test('empty and sequential histories are linearizable', () => {
    assert.equal(verdict([]), 'ok');
    assert.equal(verdict([put(0, 0, 1, 'k', 'a'), get(0, 2, 3, 'k', 'a'), put(1, 4, 5, 'k', 'b'), get(0, 6, 7, 'k', 'b')]), 'ok');
    assert.equal(verdict([get(0, 0, 1, 'k', null)]), 'ok');
  });

  test('a read concurrent with a put may see the old or the new value', () => {
    assert.equal(verdict([put(0, 0, 1, 'k', 'a'), put(1, 10, 20, 'k', 'b'), get(2, 12, 18, 'k', 'a')]), 'ok');
    assert.equal(verdict([put(0, 0, 1, 'k', 'a'), put(1, 10, 20, 'k', 'b'), get(2, 12, 18, 'k', 'b')]), 'ok');
  });

  test('stale read: a read after an acknowledged put sees the value before it', () => {
    assert.equal(verdict([put(0, 0, 10, 'k', 'a'), get(1, 20, 30, 'k', null)]), 'illegal');
    assert.equal(verdict([put(0, 0, 10, 'k', 'a'), put(0, 11, 12, 'k', 'b'), get(1, 20, 30, 'k', 'a')]), 'illegal');
  });

  test('lost write: two acknowledged puts in order, a later read sees the first', () => {
    const h = [put(0, 0, 10, 'k', '1'), put(1, 20, 30, 'k', '2'), get(2, 40, 50, 'k', '1')];
    assert.equal(verdict(h), 'illegal');
    assert.equal(verdict([...h.slice(0, 2), get(2, 40, 50, 'k', '2')]), 'ok');
  });

  test('a read goes back in time: new value, then (strictly later) the old one', () => {
    assert.equal(verdict([put(0, 0, 1, 'k', '1'), put(1, 10, 100, 'k', '2'), get(2, 20, 30, 'k', '2'), get(3, 40, 50, 'k', '1')]), 'illegal');
    assert.equal(verdict([put(0, 0, 1, 'k', '1'), put(1, 10, 100, 'k', '2'), get(2, 20, 30, 'k', '1'), get(3, 40, 50, 'k', '2')]), 'ok');
  });

  test('a compare-and-set that succeeds twice on the same expected value', () => {
    const base = put(0, 0, 1, 'k', '0');
    assert.equal(verdict([base, cas(1, 10, 20, 'k', '0', 'a', { succeeded: true }), cas(2, 12, 22, 'k', '0', 'b', { succeeded: true })]), 'illegal');
    assert.equal(verdict([base, cas(1, 10, 20, 'k', '0', 'a', { succeeded: true }), cas(2, 12, 22, 'k', '0', 'b', { succeeded: false, current: 'a' })]), 'ok');
    // The failure branch's read must be a value the key held then.
    assert.equal(verdict([base, cas(1, 10, 20, 'k', '0', 'a', { succeeded: true }), cas(2, 12, 22, 'k', '0', 'b', { succeeded: false, current: 'zz' })]), 'illegal');
    // A CAS on an absent key (expect null).
    assert.equal(verdict([cas(1, 0, 5, 'k', null, 'a', { succeeded: true }), cas(2, 1, 6, 'k', null, 'b', { succeeded: true })]), 'illegal');
    assert.equal(verdict([cas(1, 0, 5, 'k', null, 'a', { succeeded: true }), get(2, 6, 7, 'k', 'a')]), 'ok');
  });

  test('an unknown outcome may have happened, late, or never, but not both', () => {
    const p = put(0, 0, 5, 'k', 'x', true);
    assert.equal(verdict([p, get(1, 10, 20, 'k', 'x')]), 'ok');
    assert.equal(verdict([p, get(1, 10, 20, 'k', null)]), 'ok');
    assert.equal(verdict([p, get(1, 10, 20, 'k', null), get(1, 30, 40, 'k', 'x')]), 'ok', 'took effect after the client gave up');
    assert.equal(verdict([p, get(1, 10, 20, 'k', 'x'), get(1, 30, 40, 'k', null)]), 'illegal', 'happened, then un-happened');
    const c = cas(0, 0, 5, 'k', null, 'y', 'unknown');
    assert.equal(verdict([c, get(1, 10, 20, 'k', 'y')]), 'ok');
    assert.equal(verdict([put(2, 0, 1, 'k', 'z'), cas(0, 2, 5, 'k', null, 'y', 'unknown'), get(1, 10, 20, 'k', 'y')]), 'illegal', 'its compare failed');
    // A failed CAS that did not report what it saw can be explained by an unseen unknown write
    // (so such writes are not dropped as unobserved).
    assert.equal(verdict([put(0, 0, 1, 'k', 'a'), put(1, 2, 3, 'k', 'x', true), cas(2, 10, 11, 'k', 'a', 'b', { succeeded: false })]), 'ok');
    assert.equal(verdict([put(0, 0, 1, 'k', 'a'), cas(2, 10, 11, 'k', 'a', 'b', { succeeded: false })]), 'illegal');
    // An unknown read constrains nothing.
    assert.equal(verdict([put(0, 0, 1, 'k', 'a'), op(1, 2, 3, { kind: 'get', key: 'k' }, UNKNOWN)]), 'ok');
  });

  test('keys are checked separately, and the illegal one is named with an explanation', () => {
    const h = [put(0, 0, 1, 'a', '1'), put(1, 0, 1, 'b', '1'), get(2, 2, 3, 'a', '1'), get(3, 2, 3, 'b', null)];
    const r = checkOperations(kvModel, h);
    assert.equal(r.outcome, 'illegal');
    assert.equal(r.outcome === 'illegal' && r.partition, 'b');
    const text = explain(kvModel, r);
    assert.match(text, /NOT linearizable: partition "b"/);
    assert.match(text, /get b -> null/);
  });

  test('a step budget too small to decide answers unknown, not ok', () => {
    const h = Array.from({ length: 20 }, (_, i) => put(i, 0, 100, 'k', `v${i}`));
    assert.equal(verdict(h, 5), 'unknown');
  });
});

// ---- random histories from a correct store ----

interface GenOptions { seed: number; clients: number; keys: number; opsPerClient: number; unknownRate: number }

/**
 * Clients issue operations one at a time with random durations; each operation takes effect at
 * a random point inside its interval (an unknown one: at a random point after its call, or
 * never), in that order, against a correct sequential store. So the history is linearizable.
 */
function generate(g: GenOptions): KvOperation[] {
  const rand = rng(g.seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const written = new Map<string, string[]>();
  const planned: { op: KvOperation; at: number; unknown: boolean; happens: boolean }[] = [];
  for (let c = 0; c < g.clients; c++) {
    let t = rand() * 5;
    for (let i = 0; i < g.opsPerClient; i++) {
      const key = `k${Math.floor(rand() * g.keys)}`;
      const value = `c${c}.${i}`;
      const seen = written.get(key) ?? [];
      const r = rand();
      const input: KvInput = r < 0.4 ? { kind: 'get', key } : r < 0.7 ? { kind: 'put', key, value }
        : { kind: 'cas', key, expect: seen.length > 0 && rand() < 0.8 ? pick(seen.slice(-4)) : null, value };
      if (input.kind !== 'get') seen.push(value);
      written.set(key, seen);
      const dur = 1 + rand() * 10;
      const unknown = rand() < g.unknownRate;
      const at = unknown ? t + rand() * dur * 3 : t + rand() * dur;
      planned.push({ op: { client: c, input, output: UNKNOWN, call: t, return: t + dur }, at, unknown, happens: !unknown || rand() < 0.5 });
      t += dur + rand() * 3;
    }
  }
  const state = new Map<string, string | null>();
  for (const p of [...planned].sort((a, b) => a.at - b.at)) {
    if (!p.happens) continue;
    const r = applyKv(state.get(p.op.input.key) ?? null, p.op.input);
    state.set(p.op.input.key, r.state);
    if (!p.unknown) p.op.output = r.output; // unknown ones keep UNKNOWN, happened or not
  }
  return planned.map((p) => p.op);
}

const isGet = (o: KvOperation): o is KvOperation & { input: { kind: 'get' }; output: { kind: 'get'; value: string | null } } =>
  o.input.kind === 'get' && o.output !== UNKNOWN;
/** A write that certainly took effect, and the value it left. */
const effectiveWrite = (o: KvOperation): string | undefined =>
  o.output === UNKNOWN ? undefined : o.input.kind === 'put' ? o.input.value
    : o.input.kind === 'cas' && o.output.kind === 'cas' && o.output.succeeded ? o.input.value : undefined;

type Mutation = (h: KvOperation[], rand: () => number) => KvOperation[] | null;

/** One read answers a value nobody wrote. */
const readNeverWritten: Mutation = (h, rand) => {
  const gets = h.filter(isGet);
  if (gets.length === 0) return null;
  const g = gets[Math.floor(rand() * gets.length)]!;
  return h.map((o) => (o === g ? { ...o, output: { kind: 'get', value: 'never-written' } } : o));
};

/** One read answers a value whose put started only after the read returned. */
const readFromTheFuture: Mutation = (h) => {
  for (const g of h.filter(isGet)) {
    const w = h.find((o) => o.input.key === g.input.key && o.input.kind !== 'get' && o.call > g.return);
    if (w && w.input.kind !== 'get') return h.map((o) => (o === g ? { ...o, output: { kind: 'get', value: w.input.kind === 'get' ? null : w.input.value } } : o));
  }
  return null;
};

/**
 * Stale read: a read answers the value of a write p although a later write q (certainly
 * effective, after p returned) also returned before the read began. Values are unique, so
 * nothing else could have written p's value back.
 */
const staleRead: Mutation = (h) => {
  for (const g of h.filter(isGet)) {
    for (const q of h) {
      if (q.input.key !== g.input.key || effectiveWrite(q) === undefined || !(q.return < g.call)) continue;
      const p = h.find((o) => o !== q && o.input.key === g.input.key && effectiveWrite(o) !== undefined && o.return < q.call);
      if (p) return h.map((o) => (o === g ? { ...o, output: { kind: 'get', value: effectiveWrite(p)! } } : o));
    }
  }
  return null;
};

describe('linearizability checker: generated histories', () => {
  const configs: Omit<GenOptions, 'seed'>[] = [
    { clients: 4, keys: 1, opsPerClient: 60, unknownRate: 0 },
    { clients: 6, keys: 3, opsPerClient: 100, unknownRate: 0.05 },
    { clients: 10, keys: 2, opsPerClient: 80, unknownRate: 0.1 },
  ];
  const seeds = Array.from({ length: 12 }, (_, i) => 1000 + i);

  test('histories from a correct store check as linearizable', () => {
    for (const cfg of configs) for (const seed of seeds) {
      const h = generate({ ...cfg, seed });
      const r = checkOperations(kvModel, h);
      assert.equal(r.outcome, 'ok', `seed ${seed} ${JSON.stringify(cfg)}: ${explain(kvModel, r)}`);
    }
  });

  test('the same histories with one certainly-illegal mutation fail', () => {
    let applied = 0;
    for (const [name, mutate] of Object.entries({ readNeverWritten, readFromTheFuture, staleRead })) {
      for (const cfg of configs) for (const seed of seeds) {
        const mutated = mutate(generate({ ...cfg, seed }), rng(seed * 7));
        if (!mutated) continue;
        applied++;
        const r = checkOperations(kvModel, mutated);
        assert.equal(r.outcome, 'illegal', `${name}, seed ${seed} ${JSON.stringify(cfg)} passed`);
      }
    }
    assert.ok(applied >= 3 * configs.length * seeds.length * 0.8, `most mutations applied (${applied})`);
  });

  test('a larger history (16 clients, 4 keys, 4,000 operations) is decided', () => {
    const h = generate({ clients: 16, keys: 4, opsPerClient: 250, unknownRate: 0.03, seed: 7 });
    const t0 = performance.now();
    const r = checkOperations(kvModel, h);
    console.log(`# 4,000-operation history: ${r.outcome}, ${r.steps} steps, ${(performance.now() - t0).toFixed(0)} ms`);
    assert.equal(r.outcome, 'ok', explain(kvModel, r));
  });
});
