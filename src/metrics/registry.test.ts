import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry, goFloat } from './registry.js';

test('goFloat writes numbers as Go\'s strconv.FormatFloat(v, \'g\', -1, 64)', () => {
  const cases: Array<[number, string]> = [
    [0, '0'], [-0, '-0'], [1, '1'], [-3, '-3'], [-999999, '-999999'], [-1e6, '-1e+06'], [0.5, '0.5'], [20480, '20480'], [999999, '999999'], [1e6, '1e+06'],
    [2147483648, '2.147483648e+09'], [24805376, '2.4805376e+07'], [0.001, '0.001'], [0.0001, '0.0001'],
    [0.00001, '1e-05'], [0.011285944000000001, '0.011285944000000001'], [1.8446744073709552e19, '1.8446744073709552e+19'],
    [Infinity, '+Inf'], [-Infinity, '-Inf'], [NaN, 'NaN'], [1.7960945396e9, '1.7960945396e+09'],
  ];
  for (const [v, want] of cases) assert.equal(goFloat(v), want, String(v));
});

test('render: families sorted by name, series by label values, histograms cumulative with +Inf', () => {
  const r = new Registry();
  const c = r.counter('b_total', 'B things.', ['code', 'method']);
  c.labels('OK', 'Range').inc(2);
  c.labels('Aborted', 'Range').inc();
  const h = r.histogram('a_seconds', 'A latency.', [0.001, 0.002]).labels();
  h.observe(0.0005);
  h.observe(0.0015);
  h.observe(3);
  r.collected('c_gauge', 'C "now".\nsecond line', 'gauge', () => 7, { v: 'x"y' });
  assert.equal(r.render(), [
    '# HELP a_seconds A latency.',
    '# TYPE a_seconds histogram',
    'a_seconds_bucket{le="0.001"} 1',
    'a_seconds_bucket{le="0.002"} 2',
    'a_seconds_bucket{le="+Inf"} 3',
    'a_seconds_sum 3.002',
    'a_seconds_count 3',
    '# HELP b_total B things.',
    '# TYPE b_total counter',
    'b_total{code="Aborted",method="Range"} 1',
    'b_total{code="OK",method="Range"} 2',
    '# HELP c_gauge C "now".\\nsecond line',
    '# TYPE c_gauge gauge',
    'c_gauge{v="x\\"y"} 7',
    '',
  ].join('\n'));
});

test('a name registered twice, or the wrong number of label values, is a programming error', () => {
  const r = new Registry();
  const f = r.counter('x_total', 'X.', ['a']);
  assert.throws(() => r.counter('x_total', 'X.'), /registered twice/);
  assert.throws(() => f.labels(), /0 label values for 1 labels/);
});

test('render after a scrape: series and families added since then are rendered in their places', () => {
  const r = new Registry();
  const c = r.counter('b_total', 'B.', ['method']);
  c.labels('Range').inc();
  const first = r.render();
  c.labels('Put').inc(2); // sorts before Range
  r.gauge('a_gauge', 'A.').labels().set(3); // sorts before b_total
  r.collected('b_total_collected', 'C.', 'counter', () => 5);
  assert.equal(first, '# HELP b_total B.\n# TYPE b_total counter\nb_total{method="Range"} 1\n');
  assert.equal(r.render(), [
    '# HELP a_gauge A.', '# TYPE a_gauge gauge', 'a_gauge 3',
    '# HELP b_total B.', '# TYPE b_total counter', 'b_total{method="Put"} 2', 'b_total{method="Range"} 1',
    '# HELP b_total_collected C.', '# TYPE b_total_collected counter', 'b_total_collected 5',
    '',
  ].join('\n'));
});

test('renderInSlices: the same text as render, and with no time to spare it yields to the loop between families', async () => {
  const r = new Registry();
  const turns: string[] = [];
  let turn = 0;
  for (const name of ['c_gauge', 'a_gauge', 'b_gauge']) {
    r.collected(name, `${name}.`, 'gauge', () => { turns.push(`${name}@${turn}`); return 1; });
  }
  r.counter('d_total', 'D.', ['method']).labels('Put').inc(3);
  const whole = r.render();
  turns.length = 0;
  // A setImmediate chain counts the loop's turns while the render is in progress.
  let rendering = true;
  const tick = (): void => { turn++; if (rendering) setImmediate(tick); };
  setImmediate(tick);
  const slices: number[] = [];
  const sliced = await r.renderInSlices(0, (_t0, families) => slices.push(families));
  rendering = false;
  assert.equal(sliced, whole);
  // A budget of 0 ms is spent after every family: each is read in a later turn than the one before.
  assert.equal(turns.length, 3);
  const at = turns.map((t) => Number(t.split('@')[1]));
  assert.ok(at[0]! < at[1]! && at[1]! < at[2]!, `families read in turns ${turns.join(', ')}`);
  assert.deepEqual(slices, [1, 1, 1, 1], 'one slice per family');
  // With a budget no render reaches, it is one slice: the text at once.
  const onePiece: number[] = [];
  assert.equal(await r.renderInSlices(60_000, (_t0, families) => onePiece.push(families)), whole);
  assert.deepEqual(onePiece, [4]);
});
