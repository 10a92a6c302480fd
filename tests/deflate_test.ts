/**
 * The permessage-deflate codec and negotiation (harness/deflate.ts): RFC
 * 7692's own examples byte for byte, round trips for every window size with
 * and without context takeover, a decompression bomb stopped at the limit,
 * and the §7 / §7.1 negotiation rules as tables.
 *
 *   deno test --allow-all tests/deflate_test.ts
 */
import assert from "node:assert/strict";
import zlib from "node:zlib";
import {
  answerDeflateOffers,
  checkDeflateResponse,
  type CodecOptions,
  type CompressorOptions,
  type InflateResult,
  longestDistance,
  MessageCompressor,
  MessageDecompressor,
  parseDeflateParams,
} from "../harness/deflate.ts";
import {
  type ExtensionOffer,
  formatExtensions,
  parseExtensions,
} from "../harness/server_handshake.ts";

const text = (s: string) => new TextEncoder().encode(s);
const bytes = (hex: string) => Uint8Array.fromHex(hex.replaceAll(" ", ""));
const MIB = 1 << 20;

function inflated(result: InflateResult): Uint8Array {
  assert.ok(result.ok, result.ok ? "" : `${result.code}: ${result.reason}`);
  return result.data;
}

const FLUSH_TAIL = bytes("00 00 ff ff");
const concat = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => [...p]));

/** Decompresses `messages` in order with one decompressor, then closes it. */
function decompressAll(
  options: CodecOptions,
  messages: Uint8Array[],
  maxMessageBytes = 64 * MIB,
): InflateResult[] {
  const decompressor = new MessageDecompressor({ ...options, maxMessageBytes });
  try {
    const results: InflateResult[] = [];
    for (const message of messages) results.push(decompressor.decompress(message));
    return results;
  } finally {
    decompressor.close();
  }
}

function compressAll(options: CompressorOptions, messages: Uint8Array[]): Uint8Array[] {
  const compressor = new MessageCompressor(options);
  try {
    const out: Uint8Array[] = [];
    for (const message of messages) out.push(compressor.compress(message));
    return out;
  } finally {
    compressor.close();
  }
}

const TAKEOVER = { windowBits: 15, contextTakeover: true };
const NO_TAKEOVER = { windowBits: 15, contextTakeover: false };
/** zlib's default level, at which its output is the RFC's, byte for byte (the suite uses level 1). */
const ZLIB_DEFAULT_TAKEOVER = { ...TAKEOVER, level: 6 };

// RFC 7692 §7.2.3's examples.
const HELLO = bytes("f2 48 cd c9 c9 07 00"); // §7.2.3.1
const HELLO_AGAIN = bytes("f2 00 11 00 00"); // §7.2.3.2: "Hello" again, the window taken over
const HELLO_STORED = bytes("00 05 00 fa ff 48 65 6c 6c 6f 00"); // §7.2.3.3
const HELLO_BFINAL = bytes("f3 48 cd c9 c9 07 00 00"); // §7.2.3.4
const HELLO_TWO_BLOCKS = bytes("f2 48 05 00 00 00 ff ff ca c9 c9 07 00"); // §7.2.3.5
const EMPTY_FRAGMENT = bytes("00"); // §7.2.3.6

Deno.test("RFC 7692 §7.2.3.1-2: 'Hello' compresses to its bytes, with and without the window taken over", () => {
  assert.deepEqual(compressAll(ZLIB_DEFAULT_TAKEOVER, [text("Hello"), text("Hello")]), [
    HELLO,
    HELLO_AGAIN,
  ]);
  assert.deepEqual(compressAll({ ...NO_TAKEOVER, level: 6 }, [text("Hello"), text("Hello")]), [
    HELLO,
    HELLO,
  ]);
  const [first, second] = decompressAll(TAKEOVER, [HELLO, HELLO_AGAIN]);
  assert.deepEqual([inflated(first), inflated(second)], [text("Hello"), text("Hello")]);
});

Deno.test("RFC 7692 §7.2.3.3-6: a stored block, BFINAL, two blocks, an empty fragment inflate", () => {
  const messages = [HELLO_STORED, HELLO_BFINAL, HELLO_AGAIN, HELLO_TWO_BLOCKS, EMPTY_FRAGMENT];
  const results = decompressAll(TAKEOVER, messages);
  // After BFINAL (§7.2.3.4) the window still holds "Hello": §7.2.3.2's message reads it.
  assert.deepEqual(results.map((r) => new TextDecoder().decode(inflated(r))), [
    "Hello",
    "Hello",
    "Hello",
    "Hello",
    "",
  ]);
  // A message's data may end in a fragment holding only an empty block (§7.2.3.6).
  const [split] = decompressAll(NO_TAKEOVER, [bytes("f2 48 cd c9 c9 07 00 00 00 ff ff 00")]);
  assert.deepEqual(inflated(split), text("Hello"));
  // An empty message compresses to that one byte (§7.2.3.6).
  assert.deepEqual(compressAll(TAKEOVER, [text("Hello"), new Uint8Array()]), [
    HELLO,
    EMPTY_FRAGMENT,
  ]);
});

/** Bytes without repeats, the same each run. */
function noise(length: number, seed = 7): Uint8Array {
  return Uint8Array.from({ length }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
}

/** Messages that repeat within and across themselves, and one longer than any window. */
function sampleMessages(): Uint8Array[] {
  const random = noise(3000);
  return [
    text("Hello"),
    text("Hello, Hello, Hello"),
    new Uint8Array(),
    text("the quick brown fox ".repeat(400)),
    random,
    random, // taken over, this one is a single back reference when the window holds it
    noise(100_000, 11),
    new Uint8Array(70_000).fill(0x61),
  ];
}

Deno.test("round trips for window bits 8-15, with and without context takeover", () => {
  const messages = sampleMessages();
  for (let windowBits = 8; windowBits <= 15; windowBits++) {
    for (const contextTakeover of [true, false]) {
      const options = { windowBits, contextTakeover };
      const compressed = compressAll(options, messages);
      const results = decompressAll(options, compressed);
      assert.deepEqual(results.map(inflated), messages, `${windowBits} bits, ${contextTakeover}`);
    }
  }
});

Deno.test("the compressor keeps its distances within the window bits", () => {
  const block = noise(1000);
  const message = new Uint8Array([...block, ...block]); // a repeat 1000 bytes back
  const sizes: number[] = [];
  for (const windowBits of [15, 11, 9, 8]) {
    const options = { windowBits, contextTakeover: true };
    const [compressed] = compressAll(options, [message]);
    sizes.push(compressed.length);
    assert.deepEqual(inflated((decompressAll(options, [compressed]))[0]), message);
  }
  // zlib reaches 262 bytes less than its window: 11 bits reach the repeat, 9 not (nor 8, as 9).
  assert.ok(sizes[0] < 1100 && sizes[1] < 1100, `${sizes}`);
  assert.ok(sizes[2] >= 2000 && sizes[3] >= 2000, `${sizes}`);
});

Deno.test("the decompressor holds the peer to its window bits: window-exceeded", () => {
  const block = noise(1000);
  const [wide] = compressAll(TAKEOVER, [new Uint8Array([...block, ...block])]);
  assert.equal(longestDistance(concat(wide, FLUSH_TAIL)), 1000);
  assert.equal(longestDistance(concat(HELLO_AGAIN, FLUSH_TAIL)), 5);
  // 1000 bytes back fits 10 bits (1024 bytes), not 9 (512).
  const [fits] = decompressAll({ windowBits: 10, contextTakeover: true }, [wide]);
  assert.equal(inflated(fits).length, 2000);
  const [tooFar, after] = decompressAll({ windowBits: 9, contextTakeover: true }, [
    wide,
    HELLO,
  ]);
  assert.deepEqual(tooFar.ok ? "inflated" : [tooFar.code, tooFar.reason], [
    "window-exceeded",
    "a back reference reaches 1000 bytes back, past the window of 9 bits",
  ]);
  assert.equal(after.ok ? "inflated" : after.code, "closed");
  // Blocks after a BFINAL one (§7.2.3.4's "Hello", its padding byte) are read too.
  const afterFinal = concat(HELLO_BFINAL.subarray(0, 7), wide);
  assert.equal(longestDistance(concat(afterFinal, FLUSH_TAIL)), 1000);
  const [both] = decompressAll({ windowBits: 10, contextTakeover: true }, [afterFinal]);
  assert.equal(inflated(both).length, 2005);
  // Dynamic Huffman blocks are read too: a repeat 23000 bytes back in a longer message.
  const random = noise(3000);
  const [dynamic] = compressAll(TAKEOVER, [
    new Uint8Array([...random, ...noise(20_000, 3), ...random, ...text("abc ".repeat(5000))]),
  ]);
  assert.equal(longestDistance(concat(dynamic, FLUSH_TAIL)), 23_000);
});

// ---------------------------------------------------------------------------
// longestDistance against its reference.

/**
 * The test's reference for longestDistance: the straightforward reader it
 * replaced, one bit at a time, canonical decoding as zlib's puff.c, with its
 * own tables (RFC 1951 §3.2.5-6). Its contract is the same: where the data
 * stops parsing (it throws, and catches), the distances so far.
 */
function referenceLongestDistance(data: Uint8Array): number {
  interface Huffman {
    counts: Uint16Array;
    symbols: Uint16Array;
  }
  const huffman = (lengths: ArrayLike<number>): Huffman => {
    const counts = new Uint16Array(16);
    for (let i = 0; i < lengths.length; i++) counts[lengths[i]]++;
    counts[0] = 0;
    const offsets = new Uint16Array(16);
    for (let len = 1; len < 15; len++) offsets[len + 1] = offsets[len] + counts[len];
    const symbols = new Uint16Array(lengths.length);
    for (let i = 0; i < lengths.length; i++) if (lengths[i]) symbols[offsets[lengths[i]]++] = i;
    return { counts, symbols };
  };
  const fixedLiterals = huffman(
    Array.from({ length: 288 }, (_, i) => i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8),
  );
  const fixedDistances = huffman(new Array(30).fill(5));
  // Length codes 257-285's extra bits (286 and 287, undefined, read none).
  const lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, ...[1, 2, 3, 4, 5].flatMap((n) => [n, n, n, n]), 0];
  // Distance codes 0-29: each starts where the one before ends.
  const distanceExtra = (code: number) => Math.max(0, (code >> 1) - 1);
  const distanceBase = [1];
  for (let code = 1; code < 30; code++) {
    distanceBase.push(distanceBase[code - 1] + (1 << distanceExtra(code - 1)));
  }
  const codeLengthOrder = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

  let bitPos = 0;
  let longest = 0;
  const end = data.length * 8;
  const bits = (n: number) => {
    if (bitPos + n > end) throw new RangeError("out of data");
    let value = 0;
    for (let i = 0; i < n; i++, bitPos++) value |= ((data[bitPos >> 3] >> (bitPos & 7)) & 1) << i;
    return value;
  };
  const decode = ({ counts, symbols }: Huffman) => {
    let code = 0, first = 0, index = 0;
    for (let len = 1; len < 16; len++) {
      code |= bits(1);
      const count = counts[len];
      if (code - first < count) return symbols[index + code - first];
      index += count;
      first = (first + count) << 1;
      code <<= 1;
    }
    throw new RangeError("invalid code");
  };
  try {
    while (bitPos < end) {
      const final = bits(1);
      const type = bits(2);
      if (type === 0) {
        bitPos = (bitPos + 7) & ~7;
        const length = bits(16);
        bits(16);
        bitPos += length * 8;
        continue;
      }
      let literals = fixedLiterals, distances = fixedDistances;
      if (type === 2) {
        const literalCount = bits(5) + 257, distanceCount = bits(5) + 1, lengthCount = bits(4) + 4;
        const codeLengths = new Uint8Array(19);
        for (let i = 0; i < lengthCount; i++) codeLengths[codeLengthOrder[i]] = bits(3);
        const lengthCode = huffman(codeLengths);
        const lengths: number[] = [];
        while (lengths.length < literalCount + distanceCount) {
          const symbol = decode(lengthCode);
          if (symbol < 16) lengths.push(symbol);
          else if (symbol === 16) lengths.push(...new Array(3 + bits(2)).fill(lengths.at(-1)));
          else lengths.push(...new Array(symbol === 17 ? 3 + bits(3) : 11 + bits(7)).fill(0));
        }
        literals = huffman(lengths.slice(0, literalCount));
        distances = huffman(lengths.slice(literalCount));
      } else if (type !== 1) {
        return longest;
      }
      for (let symbol = decode(literals); symbol !== 256; symbol = decode(literals)) {
        if (symbol < 256) continue;
        bits(lengthExtra[symbol - 257]);
        const code = decode(distances);
        const distance = distanceBase[code] + bits(distanceExtra(code));
        if (distance > longest) longest = distance;
      }
      if (final) bitPos = (bitPos + 7) & ~7;
    }
  } catch {
    // Out of data or an invalid code.
  }
  return longest;
}

/** Deterministic pseudo-random integers below `n`, from `seed`. */
function randomInts(seed: number): (n: number) => number {
  return (n) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
}

/** Data of `length` bytes of one of several kinds, from `random`'s choices. */
function sampleData(random: (n: number) => number, length: number): Uint8Array {
  const data = new Uint8Array(length);
  const words = ["id", "name", "value", "status", "ok", "error", "the", "quick", "brown", "fox"];
  switch (random(6)) {
    case 0: // random bytes: stored blocks, literals only
      data.set(noise(length, random(1 << 30)));
      break;
    case 1: { // JSON-like text
      const text = new TextEncoder().encode(
        Array.from(
          { length: Math.ceil(length / 30) },
          () =>
            `{"${words[random(10)]}":${random(100_000)},"${words[random(10)]}":"${
              words[random(10)]
            }"}`,
        ).join(","),
      );
      data.set(text.subarray(0, length));
      break;
    }
    case 2: // runs of bytes: long matches at distance 1 (Z_RLE's kind)
      for (let i = 0; i < length;) {
        const run = 1 + random(300);
        data.fill(random(4), i, i + run);
        i += run;
      }
      break;
    case 3: // skewed bytes: byte k about 2^-k of them, so some codes are 11-15 bits long
      for (let i = 0; i < length; i++) data[i] = Math.min(Math.clz32(random(1 << 30) | 1) - 2, 20);
      break;
    case 4: { // random pieces repeated from up to 32 KiB back: every distance code
      for (let i = 0; i < length;) {
        const piece = 3 + random(200);
        const from = i - 1 - random(Math.min(i, 32_768) || 1);
        if (from >= 0 && random(3)) data.copyWithin(i, from, from + piece);
        else data.set(noise(piece, random(1 << 30)).subarray(0, length - i), i);
        i += piece;
      }
      break;
    }
    default: // zeros
  }
  return data;
}

const STRATEGIES = [
  zlib.constants.Z_DEFAULT_STRATEGY,
  zlib.constants.Z_FILTERED,
  zlib.constants.Z_HUFFMAN_ONLY,
  zlib.constants.Z_RLE,
  zlib.constants.Z_FIXED,
];

/** `messages` through one raw DEFLATE stream, each with a sync flush, then its end (BFINAL). */
async function deflateStream(
  messages: Uint8Array[],
  options: zlib.ZlibOptions,
): Promise<{ flushed: Uint8Array[]; final: Uint8Array }> {
  const deflate = zlib.createDeflateRaw(options);
  const chunks: Uint8Array[] = [];
  deflate.on("data", (chunk: Uint8Array) => chunks.push(chunk));
  const flushed: Uint8Array[] = [];
  for (const message of messages) {
    deflate.write(message);
    await new Promise<void>((resolve) =>
      deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve())
    );
    flushed.push(concat(...chunks.splice(0)));
  }
  await new Promise<void>((resolve) => deflate.end(() => resolve()));
  return { flushed, final: concat(...chunks) };
}

Deno.test("longestDistance reads what its bit-at-a-time reference reads, valid, cut or corrupted", async () => {
  const random = randomInts(0x5eed);
  const sizes = [0, 1, 3, 40, 700, 3000, 20_000, 70_000, 200_000];
  let checked = 0;
  const check = (data: Uint8Array, what: string) => {
    assert.equal(longestDistance(data), referenceLongestDistance(data), what);
    checked++;
  };
  for (let config = 0; config < 70; config++) {
    const options = {
      level: 1 + config % 9,
      strategy: STRATEGIES[config % 5],
      windowBits: 9 + config % 7,
      memLevel: 1 + random(9),
    };
    const messages = Array.from(
      { length: 1 + random(4) },
      () => sampleData(random, sizes[random(sizes.length)]),
    );
    const { flushed, final } = await deflateStream(messages, options);
    const stream = concat(...flushed, final);
    const what = `${JSON.stringify(options)}, ${messages.map((m) => m.length)}`;
    check(stream, what);
    // Each message as the decompressor reads it: its data, ending in the sync flush's 00 00 ff ff.
    for (const message of flushed) check(message, what);
    // Cut anywhere, and with bits flipped: the distances up to where parsing stops.
    for (let copy = 0; copy < 4; copy++) {
      check(stream.subarray(0, random(stream.length + 1)), `${what}, cut`);
      const corrupted = stream.slice(0, Math.min(stream.length, 1 + random(5000)));
      for (let flips = 1 + random(3); flips > 0; flips--) {
        corrupted[random(corrupted.length)] ^= 1 << random(8);
      }
      check(corrupted, `${what}, corrupted`);
    }
  }
  // Random bytes: any block type, invalid and over-subscribed codes, repeats past the counts.
  for (let i = 0; i < 3000; i++) check(noise(1 + random(400), random(1 << 30)), "random bytes");
  assert.ok(checked > 3000);
});

/** Writes bits as DEFLATE packs them: numbers from their lowest bit, Huffman codes from their highest. */
class BitWriter {
  readonly #bits: number[] = [];

  number(value: number, count: number): this {
    for (let i = 0; i < count; i++) this.#bits.push(i < 31 ? (value >> i) & 1 : 0);
    return this;
  }

  code(code: number, length: number): this {
    for (let i = length - 1; i >= 0; i--) this.#bits.push((code >> i) & 1);
    return this;
  }

  bytes(): Uint8Array {
    const bytes = new Uint8Array(Math.ceil(this.#bits.length / 8));
    this.#bits.forEach((bit, i) => bytes[i >> 3] |= bit << (i & 7));
    return bytes;
  }
}

/** The canonical Huffman codes (RFC 1951 §3.2.2) of code lengths, by symbol. */
function canonicalCodes(lengths: number[]): number[] {
  const counts = new Array(16).fill(0);
  for (const length of lengths) if (length) counts[length]++;
  const next = [0];
  for (let len = 1, code = 0; len < 16; len++) next[len] = code = (code + counts[len - 1]) << 1;
  return lengths.map((length) => length ? next[length]++ : -1);
}

Deno.test("longestDistance reads what zlib refuses as its reference does: distance codes 30, 31 and past HDIST, 16 first", () => {
  // Dynamic blocks of 258 literal/length codes (254 of 8 bits, 4 of 9: 257 is length 3), their
  // lengths sent by a code-length code of 19 symbols, all 5 bits long (16-18: [symbol, extra, bits]).
  const literalLengths = Array.from({ length: 258 }, (_, i) => i < 254 ? 8 : 9);
  const cases: {
    distanceCount: number;
    symbols: (number | number[])[];
    lengths: number[];
    invalid?: number[];
  }[] = [
    // 32 distance codes: 30 and 31 are invalid, their 14 extra bits stepped over.
    ...[30, 31].map((invalid) => ({
      distanceCount: 32,
      symbols: [...literalLengths, ...new Array(32).fill(5)],
      lengths: [...literalLengths, ...new Array(32).fill(5)],
      invalid: [invalid, 14],
    })),
    // HDIST says 30; after 29 lengths (28 zeros, a 5), 16 repeats the 5 six times: codes 29-34.
    {
      distanceCount: 30,
      symbols: [...literalLengths, ...new Array(28).fill(0), 5, [16, 3, 2]],
      lengths: [...literalLengths, ...new Array(28).fill(0), ...new Array(7).fill(5)],
      invalid: [34, 16],
    },
    // 16 first repeats no length: zeros.
    {
      distanceCount: 30,
      symbols: [[16, 3, 2], ...literalLengths.slice(6), ...new Array(30).fill(5)],
      lengths: [...new Array(6).fill(0), ...literalLengths.slice(6), ...new Array(30).fill(5)],
    },
  ];
  for (const { distanceCount, symbols, lengths, invalid } of cases) {
    const literals = canonicalCodes(lengths.slice(0, 258));
    const distances = canonicalCodes(lengths.slice(258));
    const writer = new BitWriter().number(0b101, 3) // BFINAL, dynamic
      .number(258 - 257, 5).number(distanceCount - 1, 5).number(19 - 4, 4);
    for (let i = 0; i < 19; i++) writer.number(5, 3);
    for (const symbol of symbols) {
      if (typeof symbol === "number") writer.code(symbol, 5);
      else writer.code(symbol[0], 5).number(symbol[1], symbol[2]);
    }
    // Length 3 at an invalid distance code, then at 32768 (code 29, its 13 extra bits all ones).
    if (invalid) {
      writer.code(literals[257], 9).code(distances[invalid[0]], 5).number(-1, invalid[1]);
    }
    writer.code(literals[257], 9).code(distances[29], 5).number(0x1fff, 13);
    const data = writer.code(literals[256], 9).bytes();
    assert.equal(referenceLongestDistance(data), 32768, JSON.stringify(symbols.slice(0, 2)));
    for (let cut = 0; cut <= data.length; cut++) {
      const part = data.subarray(0, cut);
      assert.equal(longestDistance(part), referenceLongestDistance(part), `${invalid}, ${cut}`);
    }
  }
});

Deno.test("without context takeover each message inflates with a fresh window; with it, not", () => {
  const messages = [text("Hello"), text("Hello"), text("Hello, world")];
  for (const message of compressAll(NO_TAKEOVER, messages)) {
    const [alone] = decompressAll(NO_TAKEOVER, [message]);
    assert.ok(alone.ok, "each message inflates on its own");
  }
  const [, takenOver] = compressAll(TAKEOVER, messages);
  const [alone] = decompressAll(NO_TAKEOVER, [takenOver]);
  assert.equal(alone.ok ? "inflated" : alone.code, "inflate-failed");
  // A decompressor without context takeover starts each message afresh.
  const [a, b] = decompressAll(NO_TAKEOVER, [HELLO, HELLO_AGAIN]);
  assert.deepEqual(inflated(a), text("Hello"));
  assert.equal(b.ok ? "inflated" : b.code, "inflate-failed");
});

Deno.test("data that is not DEFLATE fails with inflate-failed, then the decompressor is closed", () => {
  const [bad, after] = decompressAll(TAKEOVER, [bytes("ff ff ff ff"), HELLO]);
  assert.equal(bad.ok ? "inflated" : bad.code, "inflate-failed");
  assert.equal(after.ok ? "inflated" : after.code, "closed");
});

Deno.test("the limit: a message of exactly the limit inflates, one byte more is too-big", () => {
  const [exact] = compressAll(TAKEOVER, [new Uint8Array(1000)]);
  assert.equal(inflated((decompressAll(TAKEOVER, [exact], 1000))[0]).length, 1000);
  const [over] = decompressAll(TAKEOVER, [exact], 999);
  assert.deepEqual(over.ok ? "inflated" : [over.code, over.reason], [
    "too-big",
    "the message inflates past 999 bytes",
  ]);
});

Deno.test("a decompression bomb (1 GiB of zeros, about 1 MB) stops at the limit, in small memory", async () => {
  // Built in 1 MiB writes: the 1 GiB is never in memory.
  const deflate = zlib.createDeflateRaw({ level: 9 });
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  deflate.on("data", (chunk: Uint8Array<ArrayBuffer>) => chunks.push(chunk));
  const zeros = new Uint8Array(MIB);
  for (let i = 0; i < 1024; i++) deflate.write(zeros);
  await new Promise<void>((resolve) => deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve()));
  deflate.close();
  const bomb = new Uint8Array(await new Blob(chunks).arrayBuffer());
  assert.ok(bomb.length < 2 * MIB, `the bomb is ${bomb.length} bytes`);

  const rssBefore = Deno.memoryUsage().rss;
  const [result, after] = decompressAll(TAKEOVER, [bomb.subarray(0, -4), HELLO], 16 * MIB);
  const grown = Deno.memoryUsage().rss - rssBefore;
  assert.deepEqual(result.ok ? "inflated" : [result.code, result.reason], [
    "too-big",
    `the message inflates past ${16 * MIB} bytes`,
  ]);
  assert.ok(grown < 256 * MIB, `memory grew by ${grown >> 20} MiB`);
  assert.equal(after.ok ? "inflated" : after.code, "closed");
});

// ---------------------------------------------------------------------------
// Negotiation.

const DECLINE = "RFC 7692 §7: a server MUST decline";
const FAIL = "RFC 7692 §7: a client MUST fail";

function extensions(header: string): ExtensionOffer[] {
  if (header === "") return [];
  const parsed = parseExtensions(header);
  assert.equal(parsed.type, "list", header);
  return parsed.type === "list" ? parsed.items : [];
}

Deno.test("offers: valid parameters parse, invalid ones are declined with §7's rule", () => {
  const valid: [string, object][] = [
    ["permessage-deflate", {}],
    ["permessage-deflate; client_max_window_bits", { clientMaxWindowBits: true }],
    ["permessage-deflate; client_max_window_bits=10", { clientMaxWindowBits: 10 }],
    ['permessage-deflate; server_max_window_bits="8"', { serverMaxWindowBits: 8 }],
    [
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15",
      { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15 },
    ],
  ];
  for (const [header, params] of valid) {
    assert.deepEqual(parseDeflateParams(extensions(header)[0], "offer"), {
      ok: true,
      params: { serverNoContextTakeover: false, clientNoContextTakeover: false, ...params },
    }, header);
  }
  const invalid = [
    "server_max_window_bits=7",
    "server_max_window_bits=16",
    "server_max_window_bits=abc",
    "server_max_window_bits=010",
    'server_max_window_bits="09"',
    "server_max_window_bits",
    "client_max_window_bits=7",
    "client_max_window_bits=16",
    "server_no_context_takeover=1",
    "client_no_context_takeover; client_no_context_takeover",
    "server_max_window_bits=10; server_max_window_bits=10",
    "x_unknown",
  ];
  for (const params of invalid) {
    const parsed = parseDeflateParams(extensions(`permessage-deflate; ${params}`)[0], "offer");
    assert.ok(!parsed.ok && parsed.rule.startsWith(DECLINE), params);
  }
  const response = parseDeflateParams(
    extensions("permessage-deflate; client_max_window_bits")[0],
    "response",
  );
  assert.ok(!response.ok && response.rule.startsWith(FAIL), "a response's value is required");
});

Deno.test("a server's answer: the first valid offer, within what it offered", () => {
  const table: [string, object, string | undefined, number?][] = [
    // offers, the server's wishes, the response (undefined: declined), the accepted offer
    ["permessage-deflate", {}, "permessage-deflate", 0],
    [
      "permessage-deflate; server_max_window_bits=10",
      {},
      "permessage-deflate; server_max_window_bits=10",
      0,
    ],
    [
      "permessage-deflate; server_max_window_bits=10",
      { serverMaxWindowBits: 12 },
      "permessage-deflate; server_max_window_bits=10",
      0,
    ],
    [
      "permessage-deflate",
      { serverMaxWindowBits: 12 },
      "permessage-deflate; server_max_window_bits=12",
      0,
    ],
    [
      "permessage-deflate; server_no_context_takeover",
      {},
      "permessage-deflate; server_no_context_takeover",
      0,
    ],
    [
      "permessage-deflate",
      { clientNoContextTakeover: true },
      "permessage-deflate; client_no_context_takeover",
      0,
    ],
    [
      "permessage-deflate; client_max_window_bits",
      { clientMaxWindowBits: 10 },
      "permessage-deflate; client_max_window_bits=10",
      0,
    ],
    [
      "permessage-deflate; client_max_window_bits=9",
      { clientMaxWindowBits: 12 },
      "permessage-deflate; client_max_window_bits=9",
      0,
    ],
    // The client did not offer client_max_window_bits: the server cannot limit it.
    ["permessage-deflate", { clientMaxWindowBits: 10 }, "permessage-deflate", 0],
    [
      "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=7, permessage-deflate",
      {},
      "permessage-deflate",
      2,
    ],
    ["permessage-deflate; x_unknown", {}, undefined],
    ["permessage-deflate; client_max_window_bits=abc", {}, undefined],
    ["x-webkit-deflate-frame", {}, undefined],
  ];
  for (const [header, wishes, expected, expectedIndex] of table) {
    const offers = extensions(header);
    const answer = answerDeflateOffers(offers, wishes);
    if (expected === undefined) {
      assert.equal(answer.type, "decline", header);
      continue;
    }
    assert.ok(answer.type === "accept", header);
    assert.equal(formatExtensions([answer.response]), expected, header);
    assert.equal(answer.offerIndex, expectedIndex, header);
    // The client's check takes the server's answer, with the same agreement.
    assert.deepEqual(checkDeflateResponse(offers, [answer.response]), {
      type: "accepted",
      offerIndex: expectedIndex,
      agreed: answer.agreed,
    }, header);
  }
  const declined = answerDeflateOffers(extensions("permessage-deflate; x_unknown"));
  assert.ok(declined.type === "decline" && declined.problems[0].rule.startsWith(DECLINE));
});

Deno.test("a client's check of the response against its offers (§7, §7.1)", () => {
  const all15 = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 15,
  };
  const accepted: [string, string, object, number?][] = [
    ["permessage-deflate", "permessage-deflate", {}],
    // A server may add these without the offer (§7.1.1.1, §7.1.1.2, §7.1.2.1).
    ["permessage-deflate", "permessage-deflate; server_no_context_takeover", {
      serverNoContextTakeover: true,
    }],
    ["permessage-deflate", "permessage-deflate; client_no_context_takeover", {
      clientNoContextTakeover: true,
    }],
    ["permessage-deflate", "permessage-deflate; server_max_window_bits=10", {
      serverMaxWindowBits: 10,
    }],
    [
      "permessage-deflate; server_max_window_bits=10",
      "permessage-deflate; server_max_window_bits=8",
      {
        serverMaxWindowBits: 8,
      },
    ],
    [
      "permessage-deflate; client_max_window_bits",
      "permessage-deflate; client_max_window_bits=10",
      {
        clientMaxWindowBits: 10,
      },
    ],
    // The client said it uses at most 11 bits; the server did not answer it.
    ["permessage-deflate; client_max_window_bits=11", "permessage-deflate", {
      clientMaxWindowBits: 11,
    }],
    // The response matches the second offer only.
    [
      "permessage-deflate; server_max_window_bits=10, permessage-deflate",
      "permessage-deflate",
      {},
      1,
    ],
  ];
  for (const [offers, response, agreed, offerIndex] of accepted) {
    assert.deepEqual(checkDeflateResponse(extensions(offers), extensions(response)), {
      type: "accepted",
      offerIndex: offerIndex ?? 0,
      agreed: { ...all15, ...agreed },
    }, `${offers} → ${response}`);
  }
  assert.deepEqual(
    checkDeflateResponse(extensions("permessage-deflate"), extensions("")),
    { type: "declined" },
  );
  const broken: [string, string, string][] = [
    // offers, response, the rule broken (its start)
    ["permessage-deflate", "permessage-deflate; client_max_window_bits=10", "RFC 7692 §7.1.2.2"],
    [
      "permessage-deflate; server_max_window_bits=10",
      "permessage-deflate; server_max_window_bits=12",
      "RFC 7692 §7.1.2.1",
    ],
    ["permessage-deflate; server_max_window_bits=10", "permessage-deflate", "RFC 7692 §7.1.2.1"],
    ["permessage-deflate; server_no_context_takeover", "permessage-deflate", "RFC 7692 §7.1.1.1"],
    [
      "permessage-deflate",
      "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
      FAIL,
    ],
    ["permessage-deflate", "permessage-deflate; server_max_window_bits=7", FAIL],
    ["permessage-deflate", "permessage-deflate; server_max_window_bits=16", FAIL],
    ["permessage-deflate", "permessage-deflate; server_max_window_bits=abc", FAIL],
    [
      "permessage-deflate; client_max_window_bits",
      "permessage-deflate; client_max_window_bits",
      FAIL,
    ],
    ["permessage-deflate", "permessage-deflate; x_unknown", FAIL],
    [
      "permessage-deflate, permessage-deflate",
      "permessage-deflate, permessage-deflate",
      "RFC 7692 §5",
    ],
    ["x-webkit-deflate-frame", "permessage-deflate", "RFC 6455 §9.1"],
  ];
  for (const [offers, response, rule] of broken) {
    const check = checkDeflateResponse(extensions(offers), extensions(response));
    assert.ok(check.type === "error" && check.rule.startsWith(rule), `${offers} → ${response}`);
  }
});
