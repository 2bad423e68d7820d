/**
 * A FIFO of received chunks that framed decoders read from, without copying when a read
 * falls inside one chunk. It holds only what arrived and was not yet consumed; the decoders
 * that use it consume every complete frame at once and refuse frames above their limit, so
 * it never holds more than one frame plus one chunk.
 */
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  private head = 0; // offset of the first unread byte in chunks[0]
  /** Unread bytes held. */
  bufferedBytes = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
  }

  has(n: number): boolean {
    return this.bufferedBytes >= n;
  }

  /**
   * Takes the next n bytes (the caller checked has(n)): a view when they sit in one chunk, else
   * a copy. Either way a plain Uint8Array: a Buffer's subarray builds a Buffer (a derived
   * class, several times the cost of a Uint8Array view), once per frame and entry.
   */
  take(n: number): Uint8Array {
    if (n > this.bufferedBytes) throw new Error(`byte queue: take(${n}) with ${this.bufferedBytes} buffered`);
    const first = this.chunks[0];
    if (n === 0) return new Uint8Array(0);
    if (first !== undefined && first.length - this.head >= n) {
      const out = new Uint8Array(first.buffer, first.byteOffset + this.head, n);
      this.advance(n);
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const part = Math.min(n - filled, c.length - this.head);
      out.set(c.subarray(this.head, this.head + part), filled);
      filled += part;
      this.advance(part);
    }
    return out;
  }

  /** The next byte (the caller checked has(1)), read in place. */
  byte(): number {
    const b = this.chunks[0]![this.head]!;
    this.advance(1);
    return b;
  }

  /**
   * The next 8 bytes as a big-endian uint64 (the caller checked has(8)), or undefined when it
   * does not fit in a safe integer (every length and index a peer may send does). Read in
   * place unless it straddles two chunks.
   */
  uint64(): number | undefined {
    const first = this.chunks[0]!;
    let b = first;
    let at = this.head;
    if (first.length - at < 8) {
      b = this.take(8);
      at = 0;
    } else {
      this.advance(8);
    }
    const hi = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
    const lo = ((b[at + 4]! << 24) | (b[at + 5]! << 16) | (b[at + 6]! << 8) | b[at + 7]!) >>> 0;
    if (hi >= 0x200000) return undefined;
    return hi * 0x1_0000_0000 + lo;
  }

  private advance(n: number): void {
    this.head += n;
    this.bufferedBytes -= n;
    while (this.chunks.length > 0 && this.head >= this.chunks[0]!.length) {
      this.head -= this.chunks[0]!.length;
      this.chunks.shift();
    }
  }
}

/** 8 bytes: v as a big-endian uint64 (v a safe integer). */
export function uint64BE(v: number): Uint8Array {
  const b = new Uint8Array(8);
  writeUint64BE(b, 0, v);
  return b;
}

export function writeUint64BE(b: Uint8Array, pos: number, v: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  const lo = v >>> 0;
  b[pos] = hi >>> 24; b[pos + 1] = (hi >>> 16) & 0xff; b[pos + 2] = (hi >>> 8) & 0xff; b[pos + 3] = hi & 0xff;
  b[pos + 4] = lo >>> 24; b[pos + 5] = (lo >>> 16) & 0xff; b[pos + 6] = (lo >>> 8) & 0xff; b[pos + 7] = lo & 0xff;
}
