// TurnQueue: FIFO, at most jobsPerTurn jobs per event-loop turn, a bound past which jobs run
// at once, and a queue that never empties keeps its order when its consumed prefix is dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TurnQueue } from './turns.js';

/** Resolves after `n` event-loop turns (check phases). */
const turns = (n: number): Promise<void> => new Promise((resolve) => {
  const step = (left: number): void => { if (left === 0) resolve(); else setImmediate(step, left - 1); };
  step(n);
});

test('jobs run in push order, at most jobsPerTurn per turn', async () => {
  const ran: number[] = [];
  const perTurn: number[] = [];
  const q = new TurnQueue<number, number>((a, b) => { ran.push(a + b); perTurn[perTurn.length - 1]!++; }, { jobsPerTurn: 3 });
  const countTurns = (): void => { perTurn.push(0); if (q.length > 0 || perTurn.length < 2) setImmediate(countTurns); };
  for (let i = 0; i < 10; i++) q.push(i, 100);
  assert.deepEqual(ran, [], 'nothing runs in the pushing turn');
  setImmediate(countTurns);
  await turns(12);
  assert.deepEqual(ran, Array.from({ length: 10 }, (_, i) => i + 100));
  assert.ok(Math.max(...perTurn) <= 3, `per turn: ${perTurn.join(',')}`);
});

test('runOrPush runs at once within the turn budget, then queues behind what waits', async () => {
  const ran: number[] = [];
  const q = new TurnQueue<number, null>((a) => { ran.push(a); }, { jobsPerTurn: 2 });
  q.runOrPush(1, null);
  q.runOrPush(2, null);
  q.runOrPush(3, null);
  q.runOrPush(4, null);
  assert.deepEqual(ran, [1, 2]);
  await turns(3);
  assert.deepEqual(ran, [1, 2, 3, 4]);
  q.runOrPush(5, null);
  assert.deepEqual(ran, [1, 2, 3, 4, 5], 'a new turn has a fresh budget');
});

test('past maxQueuedJobs a job runs at once rather than growing the queue', () => {
  const ran: number[] = [];
  const q = new TurnQueue<number, null>((a) => { ran.push(a); }, { jobsPerTurn: 1, maxQueuedJobs: 2 });
  q.push(1, null);
  q.push(2, null);
  q.push(3, null);
  assert.deepEqual(ran, [3]);
  assert.equal(q.length, 2);
});

test('a queue that never empties keeps its order across compaction', async () => {
  const ran: number[] = [];
  const q = new TurnQueue<number, null>((a) => { ran.push(a); }, { jobsPerTurn: 1000 });
  let next = 0;
  for (; next < 3000; next++) q.push(next, null);
  // Keep it from emptying: each turn adds more than it can run... until 20,000 were pushed.
  const feed = (): void => { for (let i = 0; i < 1500 && next < 20_000; i++) q.push(next++, null); if (next < 20_000) setImmediate(feed); };
  setImmediate(feed);
  while (ran.length < 20_000) await turns(1);
  assert.deepEqual(ran, Array.from({ length: 20_000 }, (_, i) => i));
  assert.equal(q.length, 0);
});
