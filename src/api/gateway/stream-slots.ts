/**
 * `--max-concurrent-streams` as etcd's gateway meets it. etcd's grpc-gateway calls the gRPC
 * server over ONE client connection, so every gateway call in flight (a unary call, a
 * snapshot, a watch) is one HTTP/2 stream on it, and a call past the server's limit waits in
 * grpc-go for a stream to end (etcd's e2e v3_curl_maxstream: with the limit taken by watches,
 * a range waits until curl gives up). Concord's gateway calls the services in-process, so it
 * keeps that count itself.
 */
import type http from 'node:http';

export class StreamSlots {
  private inUse = 0;
  /** Calls waiting for a slot, oldest first (a Set iterates in insertion order). */
  private readonly waiting = new Set<() => void>();

  /**
   * @param maxStreams the limit (etcd's default 2^32-1: in effect none)
   * @param maxWaitingCalls calls that may wait at once; past it a call is refused
   */
  constructor(private readonly maxStreams: number, private readonly maxWaitingCalls: number) {}

  /**
   * Runs `start` once a slot is free and gives the slot back when `res` closes (finished or
   * the client gone). A call whose client leaves while it waits never starts. False: the
   * wait queue is full and nothing was queued.
   */
  enter(res: http.ServerResponse, start: () => void): boolean {
    if (this.inUse < this.maxStreams) {
      this.occupy(res);
      start();
      return true;
    }
    if (this.waiting.size >= this.maxWaitingCalls) return false;
    const wake = (): void => {
      res.off('close', leave);
      this.occupy(res);
      start();
    };
    const leave = (): void => { this.waiting.delete(wake); };
    res.once('close', leave);
    this.waiting.add(wake);
    return true;
  }

  private occupy(res: http.ServerResponse): void {
    this.inUse++;
    res.once('close', () => {
      this.inUse--;
      const next = this.waiting.values().next();
      if (!next.done) {
        this.waiting.delete(next.value);
        next.value();
      }
    });
  }
}
