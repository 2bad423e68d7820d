// The proposal wait registry: keyed by request id, bounded in count and bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WaitRegistry, RequestIdGenerator } from './wait.js';

const noop = { resolve: () => undefined, reject: () => undefined };

/** Registers a proposal under `id` and returns the promise its waiter settles (as EtcdServer.propose does). */
function waitOn<T>(w: WaitRegistry, id: bigint, bytes: number): Promise<T> {
  let waiter!: { resolve: (r: unknown) => void; reject: (e: Error) => void };
  const settled = new Promise<T>((resolve, reject) => { waiter = { resolve: resolve as (r: unknown) => void, reject }; });
  w.register(id, bytes, waiter);
  return settled;
}

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

test('a registered waiter settles its caller\'s promise when taken', async () => {
  const w = new WaitRegistry({ maxProposalsInFlight: 10, maxProposalBytesInFlight: 100 });
  const applied = waitOn<string>(w, 7n, 30);
  const failed = waitOn<string>(w, 8n, 20);
  assert.deepEqual([w.size, w.bytes], [2, 50]);
  assert.throws(() => waitOn(w, 7n, 1), /registered twice/);
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

test('ids that share a ring slot (a waiter pending 4096 proposals, or ids made apart) are all held, taken and failed', () => {
  const w = new WaitRegistry({ maxProposalsInFlight: 10, maxProposalBytesInFlight: 100 });
  const got: string[] = [];
  const waiter = (name: string) => ({ resolve: () => got.push(`${name} ok`), reject: (e: Error) => got.push(`${name} ${e.message}`) });
  // The same low 12 bits: one slot, the others spill.
  const ids = [0x1000_0005n, 0x1000_1005n, 0x2000_0005n, 0x0005n];
  ids.forEach((id, i) => w.register(id, i + 1, waiter(`id${i}`)));
  assert.throws(() => w.register(0x1000_1005n, 1, noop), /registered twice/, 'a spilled id registered again');
  assert.deepEqual([w.size, w.bytes], [4, 10]);
  assert.equal(w.take(0x3000_0005n), undefined, 'an id never registered, in an occupied slot');
  w.take(0x1000_0005n)!.resolve(undefined); // the slot's own
  w.take(0x2000_0005n)!.resolve(undefined); // a spilled one
  assert.deepEqual([w.size, w.bytes], [2, 6]);
  w.register(0x4000_0005n, 1, waiter('id4')); // the freed slot is used again
  w.failAll(new Error('stopped'));
  assert.deepEqual(got.sort(), ['id0 ok', 'id1 stopped', 'id2 ok', 'id3 stopped', 'id4 stopped']);
  assert.deepEqual([w.size, w.bytes], [0, 0]);
  assert.equal(w.take(0x1000_1005n), undefined);
});

test('request ids carry the member id\'s low 16 bits on top and increase', () => {
  const g = new RequestIdGenerator(0x1234abcdn, 1_700_000_000_000);
  const a = g.next();
  const b = g.next();
  assert.equal(a >> 48n, 0xabcdn);
  assert.equal(b, a + 1n);
});

test('expireOlderThan takes and fails the waiters registered before the cutoff (ring and spilled), with the error for each one\'s start; the rest stay', () => {
  let now = 0;
  const w = new WaitRegistry({ maxProposalsInFlight: 10, maxProposalBytesInFlight: 100, clock: () => now });
  const got: string[] = [];
  const waiter = (name: string) => ({ resolve: () => got.push(`${name} ok`), reject: (e: Error) => got.push(`${name} ${e.message}`) });
  now = 100; w.register(0x1000_0001n, 1, waiter('a'));
  now = 200; w.register(0x2000_0001n, 2, waiter('b')); // same slot as a: spilled
  now = 300; w.register(0x1000_0002n, 4, waiter('c'));
  assert.equal(w.expireOlderThan(250, (started) => new Error(`timed out (started ${started})`)), 2);
  assert.deepEqual(got.sort(), ['a timed out (started 100)', 'b timed out (started 200)']);
  assert.deepEqual([w.size, w.bytes], [1, 4]);
  assert.equal(w.take(0x1000_0001n), undefined, 'an expired waiter is gone: its entry, applied later, answers nobody');
  assert.equal(w.take(0x2000_0001n), undefined);
  assert.equal(w.expireOlderThan(300, () => new Error('x')), 0, 'registered at the cutoff: kept');
  w.take(0x1000_0002n)!.resolve(undefined);
  assert.deepEqual([w.size, w.bytes], [0, 0]);
});
