// Lease calls for the lease tests: @grpc/grpc-js with the generated codecs. Unary calls
// come back as Outcomes (so errors compare too); keep-alive is a real bidi stream.
import * as grpc from '@grpc/grpc-js';
import {
  LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse,
  LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, LeaseLeasesRequest, LeaseLeasesResponse,
  LeaseKeepAliveRequest, LeaseKeepAliveResponse,
} from '../src/proto/gen/etcdserverpb/rpc.js';
import type { EtcdClient, Outcome } from './harness.js';

const path = (m: string): string => `/etcdserverpb.Lease/${m}`;

export function leaseApi(c: EtcdClient) {
  return {
    grant: (TTL: number, ID = 0n): Promise<Outcome<LeaseGrantResponse>> =>
      c.outcome(path('LeaseGrant'), LeaseGrantRequest, LeaseGrantResponse, { TTL, ID }),
    revoke: (ID: bigint): Promise<Outcome<LeaseRevokeResponse>> =>
      c.outcome(path('LeaseRevoke'), LeaseRevokeRequest, LeaseRevokeResponse, { ID }),
    timeToLive: (ID: bigint, keys = false): Promise<Outcome<LeaseTimeToLiveResponse>> =>
      c.outcome(path('LeaseTimeToLive'), LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, { ID, keys }),
    leases: (): Promise<Outcome<LeaseLeasesResponse>> =>
      c.outcome(path('LeaseLeases'), LeaseLeasesRequest, LeaseLeasesResponse, {}),
  };
}

/** One LeaseKeepAlive stream: send(id) and await the next answer, in order. */
export class KeepAliveStream {
  private readonly call: grpc.ClientDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>;
  private readonly answers: LeaseKeepAliveResponse[] = [];
  private waiter: (() => void) | undefined;
  status: { code: number; details: string } | undefined;

  constructor(c: EtcdClient) {
    this.call = c.raw.makeBidiStreamRequest(path('LeaseKeepAlive'),
      (m: LeaseKeepAliveRequest) => Buffer.from(LeaseKeepAliveRequest.encode(m).finish()),
      (b: Buffer) => LeaseKeepAliveResponse.decode(b));
    this.call.on('data', (r: LeaseKeepAliveResponse) => { this.answers.push(r); this.wake(); });
    this.call.on('error', (e: grpc.ServiceError) => { this.status = { code: e.code, details: e.details }; this.wake(); });
    this.call.on('status', (s: grpc.StatusObject) => { this.status ??= { code: s.code, details: s.details }; this.wake(); });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Sends one keep-alive and resolves with its answer (rejects if the stream ends or after timeoutMs). */
  async keepAlive(ID: bigint, timeoutMs = 15_000): Promise<LeaseKeepAliveResponse> {
    this.call.write({ ID });
    const deadline = Date.now() + timeoutMs;
    while (this.answers.length === 0) {
      if (this.status !== undefined) throw new Error(`keep-alive stream ended: ${this.status.code} ${this.status.details}`);
      if (Date.now() > deadline) throw new Error('no keep-alive answer');
      await new Promise<void>((r) => { this.waiter = r; setTimeout(r, 200); });
    }
    return this.answers.shift()!;
  }

  close(): void {
    this.call.end();
    this.call.cancel();
  }
}
