// A stream's queued fan-outs (Fanout), and merging them into one response per watcher when the
// stream is behind.
//
// A stream that keeps up sends each revision as it comes: one response per revision per
// watcher. One that fell behind holds several revisions in its queue; sending them one by one
// costs the client (and the server) a response per revision per watcher. etcd's batching does
// the same job (a watcher that fell behind gets many revisions in one WatchResponse from
// syncWatchers, at most watchBatchMaxRevs = 1000): here the watch service takes the run of
// fan-outs at the head of the queue (WatchStream.nextFanouts, bounded by FanoutRunBounds) and
// mergeFanouts gives each watcher one response with its events of every revision in the run,
// in order, whole revisions only, its header revision the last one's.

import type { Event } from '../proto/index.js';

/**
 * Consecutive events replies of one stream that carry the same events array at the same
 * revision (one revision's fan-out to the stream's watchers of a key): one queue item
 * holding the watcher ids in order, so a fan-out costs an id per watcher, not an object,
 * and the layer above encodes the events once for the lot.
 */
export interface Fanout {
  readonly kind: 'fanout';
  readonly events: readonly Event[];
  readonly revision: number;
  /**
   * The watchers it goes to, in queue order; each counts as one response in the bounds. A
   * cohort's fan-outs share its (frozen) array: a reader never changes it.
   */
  readonly watchIds: readonly number[];
  /** Estimated bytes of one response (eventsReplyBytes): counted once per fan-out in the byte bound, queuedIdBytes per further watcher. */
  readonly bytesEach: number;
}

/** How much one run (hence one merged response) may hold. */
export interface FanoutRunBounds {
  /** Distinct revisions (etcd's watchBatchMaxRevs). */
  maxRevisions: number;
  /** Estimated bytes of one watcher's response (the sum of the fan-outs' bytesEach). */
  maxBytes: number;
}

/** etcd's watchBatchMaxRevs, and a size every client takes (grpc-js and grpc-go accept 4 MiB by default). */
export const defaultFanoutRunBounds: FanoutRunBounds = { maxRevisions: 1000, maxBytes: 1024 * 1024 };

/** Distinct revisions among `events` (in revision order, as a fan-out carries them). */
export function revisionsIn(events: readonly Event[]): number {
  let n = 0;
  let last = -1;
  for (const e of events) {
    const rev = e.kv!.modRevision;
    if (rev !== last) { n++; last = rev; }
  }
  return n;
}

/**
 * One fan-out per set of watchers that got the same fan-outs of `run` (queue order): its
 * events are theirs, concatenated in order; its revision is the last one's. Watchers of the
 * same fan-outs share one events array (encoded once for them all). Each watcher's events stay
 * in its order, and a fan-out is never split; the order between different watchers' responses
 * follows their first fan-out in the run (nothing orders responses across watchers).
 */
export function mergeFanouts(run: readonly Fanout[]): Fanout[] {
  if (run.length <= 1) return run.slice();
  if (sameWatchers(run)) return [merged(run, run[0].watchIds)];
  // Each watcher's fan-outs, by index in the run; then watchers grouped by that list.
  const partsOf = new Map<number, number[]>();
  let repeated = false;
  run.forEach((f, i) => {
    for (const id of f.watchIds) {
      const parts = partsOf.get(id);
      if (parts === undefined) partsOf.set(id, [i]);
      else { parts.push(i); repeated = true; }
    }
  });
  if (!repeated) return run.slice(); // one revision per watcher (watchers of different keys): nothing to merge
  const groups = new Map<string, { parts: number[]; ids: number[] }>();
  for (const [id, parts] of partsOf) {
    const key = parts.join(',');
    const g = groups.get(key);
    if (g === undefined) groups.set(key, { parts, ids: [id] });
    else g.ids.push(id);
  }
  const out: Fanout[] = [];
  for (const { parts, ids } of groups.values()) out.push(parts.length === 1 ? { ...run[parts[0]], watchIds: ids } : merged(parts.map((i) => run[i]), ids));
  return out;
}

/** True if every fan-out of `run` goes to the same watchers in the same order (a key's watchers that all kept their place). */
function sameWatchers(run: readonly Fanout[]): boolean {
  const ids = run[0].watchIds;
  for (let i = 1; i < run.length; i++) {
    const other = run[i].watchIds;
    if (other === ids) continue; // a cohort's array, unchanged since
    if (other.length !== ids.length) return false;
    for (let j = 0; j < ids.length; j++) if (other[j] !== ids[j]) return false;
  }
  return true;
}

function merged(parts: readonly Fanout[], watchIds: readonly number[]): Fanout {
  const events: Event[] = [];
  let bytesEach = 0;
  for (const p of parts) {
    for (const e of p.events) events.push(e);
    bytesEach += p.bytesEach;
  }
  return { kind: 'fanout', events, revision: parts[parts.length - 1].revision, watchIds, bytesEach };
}
