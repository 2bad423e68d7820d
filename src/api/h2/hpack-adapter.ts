/**
 * THROWAWAY: hpack.ts's interface over hpack.js, until helper h-hpack's own HPACK codec
 * (src/api/h2/hpack.ts) lands; then imports switch to it and this file goes.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
interface Decompressor {
  write(b: Buffer): void;
  execute(cb?: (e: Error | null) => void): void;
  read(): { name: string; value: string } | null;
  on(event: 'error', fn: (e: Error) => void): void;
}
interface Compressor {
  write(h: Array<{ name: string; value: string; huffman: boolean; incremental: boolean }>): void;
  read(): Buffer;
}
const hpack = require('hpack.js') as {
  decompressor: { create(o: { table: { size: number } }): Decompressor };
  compressor: { create(o: { table: { size: number } }): Compressor };
};

export class HpackError extends Error {}

export class HpackDecoder {
  private readonly d: Decompressor;
  private failure: Error | undefined;

  constructor(maxTableBytes = 4096, private readonly maxHeaderListBytes = 64 * 1024) {
    this.d = hpack.decompressor.create({ table: { size: maxTableBytes } });
    this.d.on('error', (e) => { this.failure = e; });
  }

  decode(block: Uint8Array, onHeader: (name: string, value: string) => void): void {
    if (this.failure !== undefined) throw new HpackError(`decoder failed earlier: ${this.failure.message}`);
    this.d.write(Buffer.from(block.buffer, block.byteOffset, block.byteLength));
    try {
      this.d.execute();
    } catch (e) {
      this.failure = e as Error;
    }
    let listBytes = 0;
    const fields: Array<[string, string]> = [];
    for (let h = this.d.read(); h !== null; h = this.d.read()) fields.push([h.name, h.value]);
    if (this.failure !== undefined) throw new HpackError(this.failure.message);
    for (const [name, value] of fields) {
      listBytes += name.length + value.length + 32;
      if (listBytes > this.maxHeaderListBytes) throw new HpackError('header list too large');
      onHeader(name, value);
    }
  }
}

export function encodeHeaderBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const c = hpack.compressor.create({ table: { size: 4096 } });
  c.write(fields.map(([name, value]) => ({ name, value, huffman: false, incremental: false })));
  return c.read();
}
