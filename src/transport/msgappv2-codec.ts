/**
 * etcd's "stream MsgApp v2" codec (rafthttp/msgappv2_codec.go). Each frame starts with a
 * type byte:
 *   0 link heartbeat   nothing else
 *   1 app entries      8-byte entry count, per entry 8-byte size + raftpb.Entry, 8-byte commit;
 *                      the MsgApp's term, log term and index are the ones the stream carries
 *   2 app              8-byte size + a whole raftpb.Message; sets the carried term and index
 * All integers are big-endian uint64. Encoder and decoder each carry (term, index) across
 * frames, so they must see the same messages in the same order: one pair per connection.
 */
import {
  MessageType, Writer, decodeEntryView, newMessage, sizeEntry, sizeMessage, writeEntry, writeMessage,
  type Entry, type Message, type NodeId,
} from '../proto/index.js';
import { ByteQueue, writeUint64BE } from './byte-queue.js';
import { TransportDecodeError, exceedSizeLimitMessage } from './errors.js';
import { decodePeerMessage, isLinkHeartbeat, defaultMaxMessageBytes } from './message-codec.js';

const frameLinkHeartbeat = 0;
const frameAppEntries = 1;
const frameApp = 2;

const linkHeartbeatFrame = Uint8Array.of(frameLinkHeartbeat);

/** The (term, index) a msgappv2 stream carries: the last MsgApp's term and last entry index. */
interface CarriedState {
  term: number;
  index: number;
}

function carryFrom(state: CarriedState, m: Message): void {
  state.term = m.term;
  state.index = m.entries.length > 0 ? m.entries[m.entries.length - 1]!.index : m.index;
}

export class MsgAppV2Encoder {
  private readonly state: CarriedState = { term: 0, index: 0 };

  /** The frame for m in one buffer: one allocation, one write. */
  encode(m: Message): Uint8Array {
    if (isLinkHeartbeat(m)) return linkHeartbeatFrame;
    const s = this.state;
    if (s.index === m.index && s.term === m.logTerm && m.logTerm === m.term) return this.appEntries(m);
    const size = sizeMessage(m);
    const w = new Writer(9 + size);
    w.byte(frameApp);
    uint64(w, size);
    writeMessage(w, m);
    carryFrom(s, m);
    return w.finish();
  }

  private appEntries(m: Message): Uint8Array {
    const ents = m.entries;
    let size = 9 + 8; // type and count, commit
    for (let i = 0; i < ents.length; i++) size += 8 + sizeEntry(ents[i]!);
    const w = new Writer(size);
    w.byte(frameAppEntries);
    uint64(w, ents.length);
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i]!;
      uint64(w, sizeEntry(e));
      writeEntry(w, e);
    }
    uint64(w, m.commit);
    this.state.index += ents.length;
    return w.finish();
  }
}

/** A big-endian uint64 at the writer's position (the codecs' lengths, counts and commit). */
function uint64(w: Writer, v: number): void {
  writeUint64BE(w.buf, w.pos, v);
  w.pos += 8;
}

/** Where the decoder is inside a frame. */
const enum At { Type, AppSize, AppBody, EntryCount, EntrySize, EntryBody, Commit }

/**
 * Incremental msgappv2 decoder for the stream from `remote` to `local` (app-entries frames
 * name neither). push() received bytes, then next() until undefined. One frame may hold at
 * most maxMessageBytes (counting its length prefixes), whatever its entry count says.
 *
 * The position inside a frame is a few mutable fields, not an object per step: a follower
 * decodes every entry of every append here, and a step object per entry was a third of the
 * decoder's garbage.
 */
export class MsgAppV2Decoder {
  private readonly queue = new ByteQueue();
  private readonly state: CarriedState = { term: 0, index: 0 };
  private at = At.Type;
  /** The app-entries message being filled (EntryCount..Commit). */
  private msg: Message | undefined;
  /** Entries still to read in the current frame (EntrySize, EntryBody). */
  private left = 0;
  /** Bytes of the body awaited (AppBody, EntryBody). */
  private size = 0;
  private frameBytes = 0;

  constructor(
    private readonly local: NodeId,
    private readonly remote: NodeId,
    private readonly maxMessageBytes = defaultMaxMessageBytes,
  ) {}

  push(chunk: Uint8Array): void {
    this.queue.push(chunk);
  }

  get bufferedBytes(): number {
    return this.queue.bufferedBytes;
  }

  next(): Message | undefined {
    for (;;) {
      const done = this.advance();
      if (done === 'need-more') return undefined;
      if (done !== 'continue') return done;
    }
  }

  /** One step of the frame; a message when the frame completes. */
  private advance(): Message | 'need-more' | 'continue' {
    const q = this.queue;
    switch (this.at) {
      case At.Type: {
        if (!q.has(1)) return 'need-more';
        this.frameBytes = 0;
        const typ = q.byte();
        if (typ === frameLinkHeartbeat) return newMessage({ type: MessageType.MsgHeartbeat });
        if (typ === frameApp) this.at = At.AppSize;
        else if (typ === frameAppEntries) {
          this.msg = this.appFromCarried();
          this.at = At.EntryCount;
        } else throw new TransportDecodeError('bad-stream-type', `failed to parse type ${typ} in msgappv2 stream`);
        return 'continue';
      }
      case At.AppSize: {
        const size = this.length(q, false);
        if (size === undefined) return 'need-more';
        this.size = size;
        this.at = At.AppBody;
        return 'continue';
      }
      case At.AppBody: {
        if (!q.has(this.size)) return 'need-more';
        const m = decodePeerMessage(q.take(this.size));
        carryFrom(this.state, m);
        this.at = At.Type;
        return m;
      }
      case At.EntryCount: {
        const count = this.length(q, true);
        if (count === undefined) return 'need-more';
        this.left = count;
        this.at = count === 0 ? At.Commit : At.EntrySize;
        return 'continue';
      }
      case At.EntrySize: {
        const size = this.length(q, false);
        if (size === undefined) return 'need-more';
        this.size = size;
        this.at = At.EntryBody;
        return 'continue';
      }
      case At.EntryBody: {
        if (!q.has(this.size)) return 'need-more';
        this.msg!.entries.push(decodePeerEntry(q.take(this.size)));
        this.state.index++;
        this.at = --this.left > 0 ? At.EntrySize : At.Commit;
        return 'continue';
      }
      case At.Commit: {
        if (!q.has(8)) return 'need-more';
        const m = this.msg!;
        m.commit = q.uint64() ?? Number.MAX_SAFE_INTEGER;
        this.msg = undefined;
        this.at = At.Type;
        return m;
      }
    }
  }

  /**
   * An 8-byte length or count, checked against the frame's byte budget: a size is charged
   * with its prefix, a count must leave room for at least 8 bytes per entry. A hostile
   * prefix therefore fails here, before anything it announces is awaited.
   */
  private length(q: ByteQueue, isCount: boolean): number | undefined {
    if (!q.has(8)) return undefined;
    const v = q.uint64();
    this.frameBytes += 8;
    const need = v === undefined ? Infinity : isCount ? v * 8 : v;
    if (this.frameBytes + need > this.maxMessageBytes) {
      throw new TransportDecodeError('exceeds-limit', exceedSizeLimitMessage);
    }
    if (!isCount) this.frameBytes += need;
    return v!;
  }

  private appFromCarried(): Message {
    const { term, index } = this.state;
    return newMessage({ type: MessageType.MsgApp, from: this.remote, to: this.local, term, logTerm: term, index });
  }
}

/**
 * An entry from the stream, its data a view of the received bytes (socket chunks are never
 * reused): a copy per entry was most of a follower's decoding cost.
 */
function decodePeerEntry(body: Uint8Array): Entry {
  try {
    return decodeEntryView(body);
  } catch (err) {
    throw new TransportDecodeError('bad-protobuf', `rafthttp: ${(err as Error).message}`);
  }
}
