import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, formatZapTime, formatDuration, type LoggerOptions } from './index.js';

function capture(opts: LoggerOptions = {}) {
  const lines: string[] = [];
  const log = createLogger({ now: () => new Date(Date.UTC(2026, 10, 24, 2, 53, 15, 123)), ...opts, stream: { write: (s: string) => { lines.push(s); } } });
  return { log, lines };
}

test('a line has zap\'s keys in zap\'s order: level, ts, caller, msg, then fields', () => {
  const { log, lines } = capture();
  log.info('ready to serve client requests', { address: '127.0.0.1:2379', n: 3 });
  assert.equal(lines.length, 1);
  assert.ok(lines[0]!.endsWith('\n'));
  const obj = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.deepEqual(Object.keys(obj), ['level', 'ts', 'caller', 'msg', 'address', 'n']);
  assert.equal(obj.level, 'info');
  assert.equal(obj.msg, 'ready to serve client requests');
  assert.equal(obj.address, '127.0.0.1:2379');
  assert.match(obj.caller as string, /^log\/index\.test\.[jt]s:\d+$/);
});

test('ts is zap\'s ISO8601 with milliseconds', () => {
  if (new Date().getTimezoneOffset() === 0) {
    assert.equal(formatZapTime(new Date(Date.UTC(2026, 10, 24, 2, 53, 15, 123))), '2026-11-24T02:53:15.123Z');
  }
  const { log, lines } = capture();
  log.warn('x');
  assert.match(JSON.parse(lines[0]!).ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d{4})$/);
});

test('timeEncoding epoch writes ts as zap.NewProduction does: seconds since 1970, a number', () => {
  const { log, lines } = capture({ timeEncoding: 'epoch' });
  log.info('ready to proxy client requests');
  assert.ok(lines[0]!.startsWith('{"level":"info","ts":1795488795.123,'), lines[0]);
});

test('level names are zap\'s and lines below the level are dropped', () => {
  const { log, lines } = capture({ level: 'warn' });
  log.debug('d'); log.info('i'); log.warn('w'); log.error('e'); log.panic('p'); log.log('fatal', 'f');
  assert.deepEqual(lines.map((l) => JSON.parse(l).level), ['warn', 'error', 'panic', 'fatal']);
  assert.equal(log.isLevelEnabled('info'), false);
});

test('errors print as their message, bigints as exact numbers, URLs without a trailing slash', () => {
  const { log, lines } = capture({ caller: false });
  log.error('failed', { error: new Error('boom'), id: 0xc437c30fb21fc940n, url: new URL('http://127.0.0.1:2380') });
  assert.equal(lines[0], '{"level":"error","ts":"' + JSON.parse(lines[0]!).ts + '","msg":"failed","error":"boom","id":14138984027333314880,"url":"http://127.0.0.1:2380"}\n');
});

test('child fields come right after msg, as zap\'s With', () => {
  const { log, lines } = capture({ caller: false });
  log.child({ 'local-member-id': 'abc' }).info('m', { x: 1 });
  assert.deepEqual(Object.keys(JSON.parse(lines[0]!)), ['level', 'ts', 'msg', 'local-member-id', 'x']);
});

test('--log-outputs file path appends synchronously; /dev/null discards', () => {
  const dir = mkdtempSync(join(tmpdir(), 'concord-log-'));
  try {
    const file = join(dir, 'sub', 'etcd.log');
    const log = createLogger({ outputs: [file] });
    log.info('one'); log.info('two');
    // No flush or wait: the lines are on disk when the call returns.
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.deepEqual(lines.map((l) => JSON.parse(l).msg), ['one', 'two']);
    createLogger({ outputs: ['/dev/null', file] }).info('three');
    assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('durations print as Go prints them', () => {
  assert.equal(formatDuration(100), '100ms');
  assert.equal(formatDuration(1000), '1s');
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(0.5), '500µs');
  assert.equal(formatDuration(90 * 60 * 1000), '1h30m0s');
  assert.equal(formatDuration(7_200_000), '2h0m0s');
});

test('caller names the source file and line through the source map Node holds, each call site its own', async () => {
  process.setSourceMapsEnabled(true);
  const dir = mkdtempSync(join(tmpdir(), 'concord-log-'));
  try {
    // Generated lines 2 and 3 map to lines 10 and 12 of fake-src/fake.ts ("AASE" and "AAEA":
    // column 0, source 0, line +9 then +2, column +2 then +0).
    const map = { version: 3, sources: ['fake-src/fake.ts'], names: [], mappings: ';AASE;AAEA' };
    const file = join(dir, 'fake.mjs');
    writeFileSync(file, 'export function logTwice(log) {\n  log.info("one");\n  log.info("two");\n}\n' +
      `//# sourceMappingURL=data:application/json;base64,${Buffer.from(JSON.stringify(map)).toString('base64')}\n`);
    const { logTwice } = await import(pathToFileURL(file).href) as { logTwice: (l: unknown) => void };
    const { log, lines } = capture();
    logTwice(log);
    logTwice(log);
    assert.deepEqual(lines.map((l) => JSON.parse(l).caller), ['fake-src/fake.ts:10', 'fake-src/fake.ts:12', 'fake-src/fake.ts:10', 'fake-src/fake.ts:12']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
