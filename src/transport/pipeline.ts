/**
 * etcd's pipeline: raft messages POSTed one per request to <peer>/raft, for MsgSnap and for
 * whatever the streams cannot take. At most connPerPipeline requests in flight; the rest wait
 * in a queue of pipelineBufSize messages.
 */
import { PeerAgents, type PeerClientTls } from './dial.js';
import { MessageType, encodeMessage, sizeMessage, type Message } from '../proto/index.js';
import { BoundedQueue } from './bounded-queue.js';
import type { LocalIdentity } from './headers.js';
import { post, type PostResult } from './post.js';
import type { UrlPicker } from './url-picker.js';

/** etcd's connPerPipeline and pipelineBufSize (messages). */
export const connPerPipeline = 4;
export const pipelineBufSize = 64;
/** A POST with no progress this long has failed (etcd sets none; we refuse to wedge a slot). */
const pipelineIdleTimeoutMs = 30_000;

export interface PipelineDeps {
  local: LocalIdentity;
  picker: UrlPicker;
  maxQueuedBytes: number;
  tls: PeerClientTls | undefined;
  /** After each POST: the result, for raft's reports and the peer's status. */
  onResult(m: Message, r: PostResult): void;
}

export class Pipeline {
  private readonly queue: BoundedQueue<Message>;
  private inflight = 0;
  private stopped = false;
  private readonly agents = new PeerAgents({ keepAlive: true, maxSockets: connPerPipeline });

  constructor(private readonly d: PipelineDeps) {
    this.queue = new BoundedQueue(pipelineBufSize, d.maxQueuedBytes, sizeMessage);
  }

  /** Queues m; false when the queue is full. */
  offer(m: Message): boolean {
    if (this.stopped || !this.queue.offer(m)) return false;
    this.pump();
    return true;
  }

  stop(): void {
    this.stopped = true;
    this.queue.clear();
    this.agents.destroy();
  }

  private pump(): void {
    while (!this.stopped && this.inflight < connPerPipeline) {
      const m = this.queue.poll();
      if (m === undefined) return;
      this.inflight++;
      void this.send(m).finally(() => {
        this.inflight--;
        this.pump();
      });
    }
  }

  private async send(m: Message): Promise<void> {
    const u = this.d.picker.pick();
    const url = new URL('/raft', u);
    const r = await post({
      url: url.toString(), local: this.d.local, contentType: 'application/protobuf',
      body: encodeMessage(m), idleTimeoutMs: pipelineIdleTimeoutMs, agent: this.agents.for(url), tls: this.d.tls,
    });
    if (this.stopped) return;
    if (!r.ok) this.d.picker.unreachable(u);
    this.d.onResult(m, r);
  }
}

export const isMsgSnap = (m: Message): boolean => m.type === MessageType.MsgSnap;
