/**
 * The receiving half of a stream, dialed by us (etcd's streamReader): GET
 * <peer>/raft/stream/{message|msgapp}/<our id>, then decode what the peer writes until the
 * connection ends, and dial again, at most once per dialRetryMs (etcd's rate limiter).
 */
import type * as http from 'node:http';
import { peerRequest, type PeerClientTls } from './dial.js';
import type { Message } from '../proto/index.js';
import type { Logger } from '../log/index.js';
import { errClusterIDMismatch, errIncompatibleVersion, idString, requestHeaders, type LocalIdentity } from './headers.js';
import { StreamMessageDecoder, isLinkHeartbeat } from './message-codec.js';
import { MsgAppV2Decoder } from './msgappv2-codec.js';
import { connReadTimeoutMs, streamTypeName } from './stream-writer.js';
import type { UrlPicker } from './url-picker.js';
import type { StreamKind } from './types.js';

/** The URL path of each stream (note: msgappv2 is served under .../msgapp). */
export const streamPath: Record<StreamKind, string> = {
  message: '/raft/stream/message',
  msgappv2: '/raft/stream/msgapp',
};

/** Bytes of a refusal body read for its reason (etcd reads it whole; we need a few words). */
const maxRefusalBodyBytes = 4096;

export interface StreamReaderDeps {
  tls: PeerClientTls | undefined;
  kind: StreamKind;
  local: LocalIdentity;
  peerId: bigint;
  picker: UrlPicker;
  logger: Logger;
  maxMessageBytes: number;
  dialRetryMs: number;
  onMessage(m: Message): void;
  onActive(): void;
  onInactive(reason: string): void;
  onRemovedFromCluster(): void;
}

export class StreamReader {
  private req: http.ClientRequest | undefined;
  private retry: NodeJS.Timeout | undefined;
  private lastDial = 0;
  private stopped = false;

  constructor(private readonly d: StreamReaderDeps) {}

  start(): void {
    this.d.logger.info('started stream reader with remote peer', this.fields());
    this.dial();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.req?.destroy();
    this.req = undefined;
    this.d.logger.info('stopped stream reader with remote peer', this.fields());
  }

  private dial(): void {
    if (this.stopped) return;
    this.lastDial = Date.now();
    const u = this.d.picker.pick();
    const url = new URL(`${streamPath[this.d.kind]}/${idString(this.d.local.memberId)}`, u);
    const headers = { ...requestHeaders(this.d.local), 'X-Raft-To': idString(this.d.peerId) };
    const req = peerRequest(url, { method: 'GET', headers, agent: false }, this.d.tls);
    this.req = req;
    let ended = false;
    const end = (err: string | undefined) => {
      if (ended) return;
      ended = true;
      req.destroy();
      if (err !== undefined) {
        this.d.picker.unreachable(u);
        this.d.onInactive(err);
      }
      this.scheduleDial();
    };
    req.setTimeout(connReadTimeoutMs, () => end('read timeout'));
    req.on('error', (e) => end(e.message));
    req.on('response', (res) => this.onResponse(res, end));
    req.end();
  }

  private onResponse(res: http.IncomingMessage, end: (err: string | undefined) => void): void {
    if (res.statusCode !== 200) {
      this.refused(res, end);
      return;
    }
    this.d.onActive();
    this.d.logger.info('established TCP streaming connection with remote peer', this.fields());
    const dec = this.d.kind === 'msgappv2'
      ? new MsgAppV2Decoder(this.d.local.memberId, this.d.peerId, this.d.maxMessageBytes)
      : new StreamMessageDecoder(this.d.maxMessageBytes);
    res.on('data', (chunk: Buffer) => {
      try {
        dec.push(chunk);
        for (let m = dec.next(); m !== undefined; m = dec.next()) {
          if (!isLinkHeartbeat(m)) this.d.onMessage(m);
        }
      } catch (err) {
        this.d.logger.warn('lost TCP streaming connection with remote peer', { ...this.fields(), error: (err as Error).message });
        end((err as Error).message);
      }
    });
    res.on('end', () => {
      this.d.logger.warn('lost TCP streaming connection with remote peer', { ...this.fields(), error: 'EOF' });
      end(undefined);
    });
    res.on('error', (e) => end(e.message));
  }

  /** Non-200 answers, as etcd's dial() reads them. */
  private refused(res: http.IncomingMessage, end: (err: string | undefined) => void): void {
    const status = res.statusCode ?? 0;
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (s: string) => {
      if (body.length < maxRefusalBodyBytes) body += s.slice(0, maxRefusalBodyBytes - body.length);
    });
    res.on('error', () => end(`unhandled http status ${status}`));
    res.on('end', () => {
      const reason = body.replace(/\n$/, '');
      if (status === 410) {
        this.d.onRemovedFromCluster();
        end('the member has been permanently removed from the cluster');
      } else if (status === 404) {
        end(`peer ${idString(this.d.peerId)} failed to find local node ${idString(this.d.local.memberId)}`);
      } else if (status === 412 && reason === errIncompatibleVersion) {
        this.d.logger.warn('request sent was ignored by remote peer due to server version incompatibility', { ...this.fields(), error: reason });
        end(reason);
      } else if (status === 412 && reason === errClusterIDMismatch) {
        this.d.logger.warn('request sent was ignored by remote peer due to cluster ID mismatch', {
          'remote-peer-id': idString(this.d.peerId),
          'remote-peer-cluster-id': String(res.headers['x-etcd-cluster-id'] ?? ''),
          'local-member-id': idString(this.d.local.memberId),
          'local-member-cluster-id': idString(this.d.local.clusterId),
          error: reason,
        });
        end(reason);
      } else if (status === 412) {
        end(`unhandled error "${body}" when precondition failed`);
      } else {
        end(`unhandled http status ${status}`);
      }
    });
  }

  private scheduleDial(): void {
    if (this.stopped) return;
    const wait = Math.max(0, this.lastDial + this.d.dialRetryMs - Date.now());
    this.retry = setTimeout(() => this.dial(), wait);
  }

  private fields(): Record<string, string> {
    return {
      'stream-reader-type': streamTypeName[this.d.kind],
      'local-member-id': idString(this.d.local.memberId),
      'remote-peer-id': idString(this.d.peerId),
    };
  }
}
