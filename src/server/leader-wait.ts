/**
 * Requests that arrive while this member knows no leader wait for one, as etcd's do: raft's
 * node.run stops reading proposals while there is no leader (etcd 3.4 raft/node.go, propc =
 * nil), so a Put blocks in Propose, and a ReadIndex is retried until one answers; both give
 * up after the server's request timeout. Failing them at once ("no leader") would turn every
 * election into a burst of errors that etcd's clients never see.
 *
 * Bounded: past `maxWaiters` requests waiting, more fail at once with "no leader".
 */
import { etcdError, type EtcdError, type ErrorKind } from '../errors/index.js';

interface Waiter {
  resolve(): void;
  reject(e: EtcdError): void;
  timer: NodeJS.Timeout;
}

export interface LeaderWaitOptions {
  hasLeader(): boolean;
  /** Requests waiting at most; past it more are refused with "no leader". */
  maxWaiters: number;
}

export class LeaderWait {
  private readonly waiters = new Set<Waiter>();
  private stopped: EtcdError | undefined;

  constructor(private readonly o: LeaderWaitOptions) {}

  get waiting(): number {
    return this.waiters.size;
  }

  /**
   * Resolves at once when there is a leader, else once one is elected; rejects with
   * `onTimeout` after `timeoutMs` and with "server stopped" when the member stops.
   */
  wait(timeoutMs: number, onTimeout: ErrorKind): Promise<void> {
    if (this.stopped) return Promise.reject(this.stopped);
    if (this.o.hasLeader()) return Promise.resolve();
    if (this.waiters.size >= this.o.maxWaiters) return Promise.reject(etcdError('NoLeader'));
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        resolve, reject,
        timer: setTimeout(() => {
          this.waiters.delete(w);
          reject(etcdError(onTimeout));
        }, timeoutMs),
      };
      this.waiters.add(w);
    });
  }

  /** A leader is known: every waiting request goes on. */
  leaderElected(): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve();
    }
    this.waiters.clear();
  }

  /** The member stops: every waiting request fails with "server stopped". */
  stop(): void {
    this.stopped = etcdError('Stopped');
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(this.stopped);
    }
    this.waiters.clear();
  }
}
