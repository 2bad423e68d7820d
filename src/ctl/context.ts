// What every command gets: its arguments and flags, the global settings, the printer, the
// streams, and a client made on first use. Unary calls go through `call`, which reports a
// failure as etcd's clientv3 does before etcdctl prints "Error: ...": one warn line from its
// retry interceptor (JSON, zap's layout) on stderr.
import { randomUUID } from 'node:crypto';
import {
  Client, EtcdError, GrpcStatusError, DeadlineExceededError, NoAvailableEndpointError, type CallOptions,
} from '../client/index.js';
import type { FlagValue } from './flags.js';
import { grpcCodeName } from './errors.js';
import type { Printer } from './printer.js';
import { askPassword } from './password.js';
import type { Io } from './io.js';


export interface Globals {
  endpoints: string[];
  dialTimeoutMs: number;
  commandTimeoutMs: number;
  user: string;
  password: string;
  /** --user gave a name only: the password is asked for on first use. */
  askPassword: boolean;
  insecureTransport: boolean;
  cacert: string;
  cert: string;
  key: string;
}


/** zap's ISO8601 time with milliseconds, as etcdctl's client logger writes it. */
function zapTime(d: Date): string {
  return d.toISOString();
}

export class Ctx {
  private clientInstance: Client | undefined;
  private readonly clientId = randomUUID();

  constructor(
    readonly globals: Globals,
    readonly args: string[],
    readonly dashAt: number,
    private readonly flags: Map<string, FlagValue>,
    readonly display: Printer,
    readonly io: Io,
    private readonly makeClient: (g: Globals, endpoints: string[], ctx: Ctx) => Client,
  ) {}

  private loginPrompt: Promise<string> | undefined;

  /** The --user password the flags left out: asked once (speakeasy's "Password: " prompt), for every client. */
  loginPassword(): Promise<string> {
    this.loginPrompt ??= askPassword(this.io, 'Password: ');
    return this.loginPrompt;
  }

  bool(name: string): boolean { return this.flags.get(name) as boolean; }
  str(name: string): string { return this.flags.get(name) as string; }
  int(name: string): number { return this.flags.get(name) as number; }

  /** The client over --endpoints, made on first use. */
  get client(): Client {
    this.clientInstance ??= this.makeClient(this.globals, this.globals.endpoints, this);
    return this.clientInstance;
  }

  /** A client to one endpoint only (endpoint health/status/hashkv/defrag ask each member). */
  clientFor(endpoint: string): Client {
    return this.makeClient(this.globals, [endpoint], this);
  }

  /** A client to other endpoints with other settings (make-mirror's destination: its own TLS, no auth). */
  clientWith(endpoints: string[], settings: Partial<Globals>): Client {
    return this.makeClient({ ...this.globals, ...settings }, endpoints, this);
  }

  /** Per-call options for a short command (--command-timeout). */
  get callOpts(): CallOptions { return { timeoutMs: this.globals.commandTimeoutMs }; }

  /** A unary call, its failure logged as clientv3's retry interceptor logs it. */
  async call<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (e) {
      this.logRetryFailure(e);
      throw e;
    }
  }

  logRetryFailure(e: unknown): void {
    let error: string | undefined;
    if (e instanceof EtcdError || e instanceof GrpcStatusError) error = `rpc error: code = ${grpcCodeName(e.code)} desc = ${e.message}`;
    else if (e instanceof DeadlineExceededError || e instanceof NoAvailableEndpointError) error = 'rpc error: code = DeadlineExceeded desc = latest balancer error: all SubConns are in TransientFailure';
    if (error === undefined) return;
    const target = `endpoint://client-${this.clientId}/${(this.globals.endpoints[0] ?? '').replace(/^[a-z]+:\/\//, '')}`;
    this.io.stderr(`${JSON.stringify({ level: 'warn', ts: zapTime(new Date()), caller: 'clientv3/retry_interceptor.go:62', msg: 'retrying of unary invoker failed', target, attempt: 0, error })}\n`);
  }

  close(): void { this.clientInstance?.close(); }
}
