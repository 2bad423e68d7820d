// StreamWriter over a real loopback HTTP response: the messages of one send batch go out in
// one write (one HTTP chunk, one writev), in order, and a batch past maxBatchBytes or a peer
// that stops reading splits it without losing or reordering a message (the msgappv2 encoder
// carries state across frames, so order is what the decoder relies on).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { MessageType, newMessage, type Entry, type Message } from '../proto/index.js';
import { createLogger } from '../log/index.js';
import { MsgAppV2Decoder } from './msgappv2-codec.js';
import { StreamMessageDecoder, isLinkHeartbeat } from './message-codec.js';
import { StreamWriter, maxBatchBytes } from './stream-writer.js';
import type { StreamKind } from './types.js';

const log = createLogger({ stream: { write: () => {} }, caller: false });

interface Harness {
  writer: StreamWriter;
  /** res.write calls since attach. */
  writes: () => number;
  /** The server side's socket (the one the writer writes to). */
  socket: () => Socket;
  /** Resolves with the first n messages the client decoded (link heartbeats skipped). */
  received: (n: number) => Promise<Message[]>;
  pauseReading: () => void;
  resumeReading: () => void;
  close: () => Promise<void>;
}

/** A server whose one GET gets a StreamWriter of `kind`, and a client decoding what it writes. */
async function streamPair(kind: StreamKind): Promise<Harness> {
  const writer = new StreamWriter(kind, '2', '1', log, 64 * 1024 * 1024, () => {});
  let writes = 0;
  let serverSocket: Socket | undefined;
  const server = http.createServer((_req, res) => {
    serverSocket = res.socket!;
    res.writeHead(200);
    res.flushHeaders();
    const write = res.write.bind(res) as (chunk: Uint8Array) => boolean;
    res.write = ((chunk: Uint8Array) => { writes++; return write(chunk); }) as typeof res.write;
    writer.attach(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const got: Message[] = [];
  const waiters: Array<() => void> = [];
  const dec = kind === 'msgappv2' ? new MsgAppV2Decoder(2n, 1n) : new StreamMessageDecoder();
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, resolve);
    req.on('error', reject);
  });
  res.on('data', (chunk: Buffer) => {
    dec.push(chunk);
    for (let m = dec.next(); m !== undefined; m = dec.next()) if (!isLinkHeartbeat(m)) got.push(plain(m));
    for (const w of waiters.splice(0)) w();
  });
  // The GET reached the handler once the response headers came back: the writer is attached.
  assert.ok(writer.working);
  return {
    writer,
    writes: () => writes,
    socket: () => serverSocket!,
    received: (n) => new Promise((resolve) => {
      const check = () => (got.length >= n ? resolve(got.slice(0, n)) : waiters.push(check));
      check();
    }),
    pauseReading: () => res.pause(),
    resumeReading: () => res.resume(),
    close: async () => {
      writer.detach();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** m with its entries' data as plain Uint8Arrays (decoded ones are Buffer views), to compare with what was sent. */
const plain = (m: Message): Message => ({ ...m, entries: m.entries.map((e) => (e.data === undefined ? e : { ...e, data: new Uint8Array(e.data) })) });

const entry = (index: number, bytes = 16): Entry => ({ term: 2, index, type: 0, data: new Uint8Array(bytes).fill(index & 0xff) });

/** Consecutive MsgApps of one entry each (the msgappv2 encoder sends them as app-entries frames). */
function appends(count: number, entryBytes = 16, first = 1): Message[] {
  return Array.from({ length: count }, (_, i) => newMessage({
    type: MessageType.MsgApp, from: 1n, to: 2n, term: 2, logTerm: 2, index: first + i - 1, commit: first + i - 1,
    entries: [entry(first + i, entryBytes)],
  }));
}

for (const kind of ['msgappv2', 'message'] as const) {
  test(`${kind}: one send batch is one write, decoded in order`, async () => {
    const h = await streamPair(kind);
    try {
      const batch = appends(20);
      for (const m of batch) assert.equal(h.writer.offer(m), true);
      assert.equal(h.writes(), 0, 'nothing is written before the batch ends');
      h.writer.flush();
      assert.equal(h.writes(), 1);
      assert.deepEqual(await h.received(batch.length), batch);
      h.writer.flush();
      assert.equal(h.writes(), 1, 'an empty batch writes nothing');
    } finally {
      await h.close();
    }
  });
}

test('flush() hands the batch to the socket at once, not on the next tick after whatever else the turn does', async () => {
  const h = await streamPair('message');
  try {
    const batch = appends(3);
    for (const m of batch) h.writer.offer(m);
    h.writer.flush();
    const socket = h.socket();
    assert.equal(socket.writableCorked, 0, 'the socket is not left corked');
    assert.equal(socket.writableLength, 0, 'the chunk went to the kernel');
    assert.deepEqual(await h.received(batch.length), batch);
  } finally {
    await h.close();
  }
});

test('msgappv2: a batch past maxBatchBytes, and a peer that stops reading, lose and reorder nothing', async () => {
  const h = await streamPair('msgappv2');
  try {
    const entryBytes = 64 * 1024;
    const count = Math.ceil((4 * maxBatchBytes) / entryBytes) + 3;
    h.pauseReading();
    const first = appends(count, entryBytes);
    for (const m of first) assert.equal(h.writer.offer(m), true);
    h.writer.flush();
    // The first maxBatchBytes went out and the socket pushed back: the rest, and what comes
    // now, wait in the queue behind it, for 'drain'.
    assert.equal(h.writes(), 1);
    const second = appends(50, 16, count + 1);
    for (const m of second) assert.equal(h.writer.offer(m), true);
    h.writer.flush();
    h.resumeReading();
    assert.deepEqual(await h.received(count + second.length), [...first, ...second]);
    assert.ok(h.writes() >= 4, `${count} x 64 KiB go out in writes of about ${maxBatchBytes} bytes (${h.writes()} writes)`);
  } finally {
    await h.close();
  }
});
