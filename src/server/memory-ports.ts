/**
 * In-memory implementations of the Ready loop's ports (ports.ts), for tests and for
 * simulations that run the real loop: a WAL that remembers what it was given (and can hold
 * saves back, to control when they become durable), a snapshotter, and a network that
 * delivers messages between RaftNodes of one process, with links that can be cut.
 */
import { strict as assert } from 'node:assert';
import type { Entry, HardState, Message, NodeId, Snapshot } from '../proto/index.js';
import type { SnapshotterPort, TransportPort, WalPort } from './ports.js';

/** A WAL in memory. `hold()` keeps later saves pending until `release()`. */
export class MemoryWal implements WalPort {
  hardState: HardState | undefined;
  readonly entries: Entry[] = [];
  readonly snapshots: Array<{ index: number; term: number }> = [];
  saves = 0;
  private held: Array<() => void> | undefined;

  save(hardState: HardState | undefined, entries: readonly Entry[], _mustSync: boolean): Promise<void> {
    const persist = (): void => {
      if (hardState) this.hardState = hardState;
      if (entries.length > 0) {
        // A new leader may overwrite an uncommitted tail: drop what follows the first new index.
        const first = entries[0]!.index;
        while (this.entries.length > 0 && this.entries[this.entries.length - 1]!.index >= first) this.entries.pop();
        this.entries.push(...entries);
      }
      this.saves++;
    };
    if (this.held) {
      const held = this.held;
      return new Promise((resolve) => held.push(() => { persist(); resolve(); }));
    }
    persist();
    return new Promise((resolve) => setImmediate(resolve));
  }

  saveSnapshot(snap: { index: number; term: number }): Promise<void> {
    this.snapshots.push(snap);
    return Promise.resolve();
  }

  /** From now on saves stay pending (not durable) until release(). */
  hold(): void {
    this.held ??= [];
  }

  /** Completes every pending save, in order, and stops holding. */
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const done of held) done();
  }

  /** Saves waiting for release(). */
  get pending(): number {
    return this.held?.length ?? 0;
  }
}

export class MemorySnapshotter implements SnapshotterPort {
  readonly saved: Snapshot[] = [];

  save(snapshot: Snapshot): Promise<void> {
    this.saved.push(snapshot);
    return Promise.resolve();
  }
}

/**
 * Members of one process exchanging messages. Each delivery happens on a later event-loop
 * turn (as over a socket), and is dropped when the link is cut.
 */
export class MemoryNetwork {
  private readonly nodes = new Map<NodeId, { step(m: Message): void }>();
  private readonly cut = new Set<string>();
  /** Messages delivered so far. */
  delivered = 0;

  /** The transport for member `id`; `receiver` gets the messages sent to it. */
  join(id: NodeId, receiver: { step(m: Message): void }): void {
    assert.ok(!this.nodes.has(id), `member ${id} joined twice`);
    this.nodes.set(id, receiver);
  }

  transport(from: NodeId): TransportPort {
    const deliver = (messages: readonly Message[]): void => {
      for (const m of messages) {
        assert.equal(m.from, from, 'a member sends only its own messages');
        if (this.cut.has(linkKey(m.from, m.to))) continue;
        setImmediate(() => {
          const to = this.nodes.get(m.to);
          if (!to || this.cut.has(linkKey(m.from, m.to))) return;
          this.delivered++;
          to.step(m);
        });
      }
    };
    return { send: deliver, sendSnapshot: (m) => deliver([m]) };
  }

  /** Cuts both directions between a and b. */
  partition(a: NodeId, b: NodeId): void {
    this.cut.add(linkKey(a, b));
    this.cut.add(linkKey(b, a));
  }

  heal(): void {
    this.cut.clear();
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}
