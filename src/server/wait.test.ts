// The proposal wait registry: keyed by request id, bounded in count and bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WaitRegistry, RequestIdGenerator } from './wait.js';

const noop = { resolve: () => undefined, reject: () => undefined };

test('the registry counts proposals and their bytes, and frees both when a waiter is taken', () => {
  const w = new WaitRegistry({ maxProposalsInFlight: 2, maxProposalBytesInFlight: 100 });
  assert.equal(w.hasRoomFor(100), true);
  assert.equal(w.hasRoomFor(101), false, 'bytes bound');
  w.register(1n, 60, noop);
  assert.equal(w.hasRoomFor(40), true);
  assert.equal(w.hasRoomFor(41), false);
  w.register(2n, 10, noop);
  assert.equal(w.hasRoomFor(1), false, 'count bound');
  assert.equal(w.take(1n) !== undefined, true);
  assert.equal(w.take(1n), undefined, 'a waiter is triggered once');
  assert.deepEqual([w.size, w.bytes], [1, 10]);
});

test('registering one request id twice is a broken invariant and throws', () => {
  const w = new WaitRegistry({ maxProposalsInFlight: 10, maxProposalBytesInFlight: 100 });
  w.register(5n, 1, noop);
  assert.throws(() => w.register(5n, 1, noop), /registered twice/);
});

test('wait() registers a proposal whose promise the taken waiter settles', async () => {
  const w = new WaitRegistry({ maxProposalsInFlight: 10, maxProposalBytesInFlight: 100 });
  const applied = w.wait<string>(7n, 30);
  const failed = w.wait<string>(8n, 20);
  assert.deepEqual([w.size, w.bytes], [2, 50]);
  assert.throws(() => w.wait(7n, 1), /registered twice/);
  w.take(7n)!.resolve('put applied');
  w.take(8n)!.reject(new Error('no space'));
  assert.equal(await applied, 'put applied');
  await assert.rejects(failed, /no space/);
  assert.deepEqual([w.size, w.bytes], [0, 0]);
});

test('failAll rejects every waiter and empties the registry', async () => {
  const w = new WaitRegistry({ maxProposalsInFlight: 10, maxProposalBytesInFlight: 100 });
  const got: string[] = [];
  for (const id of [1n, 2n]) w.register(id, 5, { resolve: () => got.push('ok'), reject: (e) => got.push(e.message) });
  w.failAll(new Error('stopped'));
  assert.deepEqual(got, ['stopped', 'stopped']);
  assert.deepEqual([w.size, w.bytes], [0, 0]);
});

test('request ids carry the member id\'s low 16 bits on top and increase', () => {
  const g = new RequestIdGenerator(0x1234abcdn, 1_700_000_000_000);
  const a = g.next();
  const b = g.next();
  assert.equal(a >> 48n, 0xabcdn);
  assert.equal(b, a + 1n);
});
