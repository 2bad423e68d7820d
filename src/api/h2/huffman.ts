/**
 * HPACK's Huffman code (RFC 7541 Appendix B): a table-driven decoder that reads four bits
 * per step, and an encoder.
 *
 * The decoder is a state machine over the code tree's 256 internal nodes: for each node and
 * each 4-bit input, one precomputed entry says which node comes next, which symbol (at most
 * one: the shortest code has 5 bits) was completed on the way, whether EOS was met (an error
 * in a string), and whether stopping there is allowed (the padding rule: the bits left over
 * are a prefix of EOS, i.e. all ones, and at most 7 of them). So a string costs two table
 * reads per input byte and no bit fiddling beyond a shift.
 */

/** Code of each symbol (0-255 octets, 256 = EOS), right-aligned. */
const codes: readonly number[] = [
  0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7,
  0xfffffe8, 0xffffea, 0x3ffffffc, 0xfffffe9, 0xfffffea, 0x3ffffffd, 0xfffffeb, 0xfffffec,
  0xfffffed, 0xfffffee, 0xfffffef, 0xffffff0, 0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3,
  0xffffff4, 0xffffff5, 0xffffff6, 0xffffff7, 0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb,
  0x14, 0x3f8, 0x3f9, 0xffa, 0x1ff9, 0x15, 0xf8, 0x7fa,
  0x3fa, 0x3fb, 0xf9, 0x7fb, 0xfa, 0x16, 0x17, 0x18,
  0x0, 0x1, 0x2, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
  0x1e, 0x1f, 0x5c, 0xfb, 0x7ffc, 0x20, 0xffb, 0x3fc,
  0x1ffa, 0x21, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62,
  0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
  0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72,
  0xfc, 0x73, 0xfd, 0x1ffb, 0x7fff0, 0x1ffc, 0x3ffc, 0x22,
  0x7ffd, 0x3, 0x23, 0x4, 0x24, 0x5, 0x25, 0x26,
  0x27, 0x6, 0x74, 0x75, 0x28, 0x29, 0x2a, 0x7,
  0x2b, 0x76, 0x2c, 0x8, 0x9, 0x2d, 0x77, 0x78,
  0x79, 0x7a, 0x7b, 0x7ffe, 0x7fc, 0x3ffd, 0x1ffd, 0xffffffc,
  0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8, 0x3fffd3, 0x3fffd4, 0x3fffd5, 0x7fffd9,
  0x3fffd6, 0x7fffda, 0x7fffdb, 0x7fffdc, 0x7fffdd, 0x7fffde, 0xffffeb, 0x7fffdf,
  0xffffec, 0xffffed, 0x3fffd7, 0x7fffe0, 0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3,
  0x7fffe4, 0x1fffdc, 0x3fffd8, 0x7fffe5, 0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef,
  0x3fffda, 0x1fffdd, 0xfffe9, 0x3fffdb, 0x3fffdc, 0x7fffe8, 0x7fffe9, 0x1fffde,
  0x7fffea, 0x3fffdd, 0x3fffde, 0xfffff0, 0x1fffdf, 0x3fffdf, 0x7fffeb, 0x7fffec,
  0x1fffe0, 0x1fffe1, 0x3fffe0, 0x1fffe2, 0x7fffed, 0x3fffe1, 0x7fffee, 0x7fffef,
  0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4, 0x7ffff0, 0x3fffe5, 0x3fffe6, 0x7ffff1,
  0x3ffffe0, 0x3ffffe1, 0xfffeb, 0x7fff1, 0x3fffe7, 0x7ffff2, 0x3fffe8, 0x1ffffec,
  0x3ffffe2, 0x3ffffe3, 0x3ffffe4, 0x7ffffde, 0x7ffffdf, 0x3ffffe5, 0xfffff1, 0x1ffffed,
  0x7fff2, 0x1fffe3, 0x3ffffe6, 0x7ffffe0, 0x7ffffe1, 0x3ffffe7, 0x7ffffe2, 0xfffff2,
  0x1fffe4, 0x1fffe5, 0x3ffffe8, 0x3ffffe9, 0xffffffd, 0x7ffffe3, 0x7ffffe4, 0x7ffffe5,
  0xfffec, 0xfffff3, 0xfffed, 0x1fffe6, 0x3fffe9, 0x1fffe7, 0x1fffe8, 0x7ffff3,
  0x3fffea, 0x3fffeb, 0x1ffffee, 0x1ffffef, 0xfffff4, 0xfffff5, 0x3ffffea, 0x7ffff4,
  0x3ffffeb, 0x7ffffe6, 0x3ffffec, 0x3ffffed, 0x7ffffe7, 0x7ffffe8, 0x7ffffe9, 0x7ffffea,
  0x7ffffeb, 0xffffffe, 0x7ffffec, 0x7ffffed, 0x7ffffee, 0x7ffffef, 0x7fffff0, 0x3ffffee,
  0x3fffffff,
];

/** Bit length of each symbol's code. */
const codeBits: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const eos = 256;
const symbolCount = 257;

/** Transition entry layout: bits 0-7 next state, 8-15 the completed octet, then flags. */
const emitFlag = 1 << 16;
const failFlag = 1 << 17;
const acceptFlag = 1 << 18;

/**
 * transitions[state * 16 + nibble]. State 0 is the tree's root. A 257-leaf code tree has 256
 * internal nodes, so states fit in a byte.
 */
const transitions: Uint32Array = buildTransitions();

function buildTransitions(): Uint32Array {
  // children[node * 2 + bit]: > 0 an internal node, < 0 the leaf -(symbol + 1), 0 none yet
  // (the root is never anyone's child, so 0 is free to mean "none").
  const children = new Int32Array(256 * 2);
  let nodes = 1;
  for (let sym = 0; sym < symbolCount; sym++) {
    let node = 0;
    for (let i = codeBits[sym]! - 1; i >= 0; i--) {
      const slot = node * 2 + ((codes[sym]! >>> i) & 1);
      if (i === 0) {
        if (children[slot] !== 0) throw new Error(`huffman: code of symbol ${sym} is not prefix-free`);
        children[slot] = -(sym + 1);
      } else {
        if (children[slot] === 0) children[slot] = nodes++;
        node = children[slot]!;
        if (node < 0) throw new Error(`huffman: code of symbol ${sym} is not prefix-free`);
      }
    }
  }
  if (nodes !== 256) throw new Error(`huffman: ${nodes} internal nodes, expected 256`);

  // Where a string may end: at the root, or up to 7 one-bits down from it (a prefix of EOS).
  const accepting = new Uint8Array(256);
  accepting[0] = 1;
  for (let node = 0, depth = 1; depth <= 7; depth++) {
    node = children[node * 2 + 1]!;
    accepting[node] = 1;
  }

  const table = new Uint32Array(256 * 16);
  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let bit = 3; bit >= 0; bit--) {
        const child = children[node * 2 + ((nibble >>> bit) & 1)]!;
        if (child > 0) { node = child; continue; }
        const sym = -child - 1;
        if (sym === eos) { entry = failFlag; break; }
        entry = emitFlag | (sym << 8);
        node = 0;
      }
      if ((entry & failFlag) === 0) entry |= node | (accepting[node] ? acceptFlag : 0);
      table[state * 16 + nibble] = entry;
    }
  }
  return table;
}

/** The most octets `encodedBytes` bytes of Huffman code can decode to (5 bits per octet at best). */
export function huffmanDecodedMax(encodedBytes: number): number {
  return Math.floor((encodedBytes * 8) / 5);
}

/** huffmanDecode's result for a string that is not valid HPACK Huffman code (EOS inside, or bad padding). */
export const huffmanInvalid = -1;
/** huffmanDecode's result when the decoded string would not fit in `dst`. */
export const huffmanTooLong = -2;

/**
 * Decodes the Huffman-coded octets src[start, end) into dst from index 0. Returns the number
 * of octets written, or huffmanInvalid / huffmanTooLong. Never reads or writes out of bounds.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, dst: Uint8Array): number {
  let state = 0;
  let accept = true;
  let n = 0;
  const cap = dst.length;
  for (let i = start; i < end; i++) {
    const byte = src[i]!;
    let entry = transitions[(state << 4) | (byte >>> 4)]!;
    if ((entry & failFlag) !== 0) return huffmanInvalid;
    if ((entry & emitFlag) !== 0) {
      if (n === cap) return huffmanTooLong;
      dst[n++] = (entry >>> 8) & 0xff;
    }
    entry = transitions[((entry & 0xff) << 4) | (byte & 0x0f)]!;
    if ((entry & failFlag) !== 0) return huffmanInvalid;
    if ((entry & emitFlag) !== 0) {
      if (n === cap) return huffmanTooLong;
      dst[n++] = (entry >>> 8) & 0xff;
    }
    state = entry & 0xff;
    accept = (entry & acceptFlag) !== 0;
  }
  return accept ? n : huffmanInvalid;
}

/** Bytes the Huffman code of the latin1 string `s` takes. */
export function huffmanEncodedLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += codeBits[s.charCodeAt(i) & 0xff]!;
  return (bits + 7) >>> 3;
}

/**
 * Writes the Huffman code of the latin1 string `s` into dst at `offset` (padded with the
 * start of EOS, all ones); returns the offset after it. dst must have huffmanEncodedLength(s)
 * bytes free there.
 */
export function huffmanEncode(s: string, dst: Uint8Array, offset: number): number {
  let acc = 0; // pending bits, right-aligned; fewer than 8 between symbols
  let accBits = 0;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    let bits = codeBits[sym]!;
    const code = codes[sym]!;
    // Feed the code in chunks of at most 16 bits so `acc` stays within 31 bits.
    while (bits > 0) {
      const take = bits > 16 ? 16 : bits;
      bits -= take;
      acc = (acc << take) | ((code >>> bits) & ((1 << take) - 1));
      accBits += take;
      while (accBits >= 8) {
        accBits -= 8;
        dst[offset++] = (acc >>> accBits) & 0xff;
      }
      acc &= (1 << accBits) - 1;
    }
  }
  if (accBits > 0) dst[offset++] = ((acc << (8 - accBits)) | (0xff >>> accBits)) & 0xff;
  return offset;
}
