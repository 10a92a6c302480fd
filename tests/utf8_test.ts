import assert from "node:assert/strict";
import { isValidUtf8, Utf8Validator } from "../harness/utf8.ts";
import { UTF8_SEQUENCES } from "../fixtures/g06_utf8.ts";

const fromHex = (hex: string): Uint8Array =>
  Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
const toHex = (bytes: Uint8Array): string =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
};

/** Pushes `bytes` cut at the given offsets; returns the validator. */
function pushChunks(bytes: Uint8Array, cuts: number[]): Utf8Validator {
  const v = new Utf8Validator();
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    v.push(bytes.subarray(from, to));
    from = to;
  }
  return v;
}
const byteByByte = (bytes: Uint8Array) =>
  pushChunks(bytes, Array.from({ length: Math.max(0, bytes.length - 1) }, (_, i) => i + 1));

/** Oracle: whole-buffer validity by the platform decoder. */
function decoderAccepts(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}
/**
 * Oracle: offset of the first byte after which the input is no longer a prefix of
 * any valid UTF-8 string, or -1. The WHATWG streaming decoder reports errors as
 * soon as a byte is out of range, which is exactly fail-fast.
 */
function decoderFailOffset(bytes: Uint8Array): number {
  const d = new TextDecoder("utf-8", { fatal: true });
  for (let i = 0; i < bytes.length; i++) {
    try {
      d.decode(bytes.subarray(i, i + 1), { stream: true });
    } catch {
      return i;
    }
  }
  return -1;
}

/** Checks the validator's verdict on `bytes` whole, byte by byte and at every single split. */
function assertVerdict(bytes: Uint8Array, valid: boolean, failedAt: number) {
  const label = toHex(bytes);
  assert.equal(isValidUtf8(bytes), valid, `isValidUtf8(${label})`);
  const runs: [string, Utf8Validator][] = [["whole", pushChunks(bytes, [])]];
  runs.push(["byte by byte", byteByByte(bytes)]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    runs.push([`split at ${cut}`, pushChunks(bytes, [cut])]);
  }
  for (const [how, v] of runs) {
    assert.equal(v.failedAt, failedAt, `${label} ${how}: failedAt`);
    assert.equal(v.valid, failedAt < 0, `${label} ${how}: valid`);
    assert.equal(v.complete, valid, `${label} ${how}: complete`);
  }
}

/** Small deterministic PRNG (mulberry32), so failures reproduce. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KOSME = fromHex("cebae1bdb9cf83cebcceb5");

Deno.test("group 6 table: every sequence has its expected validity", () => {
  let count = 0;
  for (const { title, sequences } of UTF8_SEQUENCES) {
    for (const { valid, hex } of sequences) {
      const bytes = fromHex(hex);
      // The table itself is checked against the platform decoder.
      assert.equal(decoderAccepts(bytes), valid, `${title}: ${hex} expectation`);
      assertVerdict(bytes, valid, decoderFailOffset(bytes));
      count++;
    }
  }
  assert.equal(count, 132);
});

Deno.test("group 6 table: prefix validities do not merely echo the validator", () => {
  const prefixes = UTF8_SEQUENCES[1].sequences;
  assert.deepEqual(
    prefixes.map(({ valid, hex }) => [hex.length / 2, valid]),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((n) => [n, [2, 5, 7, 9, 11].includes(n)]),
  );
});

Deno.test("fail-fast offsets whatever the chunking", () => {
  const edited = new TextEncoder().encode("edited");
  // 6.3.x: an encoded surrogate after 11 valid bytes fails on its 2nd byte (0xa0).
  assertVerdict(concat(KOSME, fromHex("eda080")), false, 12);
  assertVerdict(concat(KOSME, fromHex("eda080"), edited), false, 12);
  // 6.4.x: F4 90 would exceed U+10FFFF: fails on the 0x90.
  assertVerdict(concat(KOSME, fromHex("f4908080"), edited), false, 12);
  assertVerdict(fromHex("f5"), false, 0);
  assertVerdict(fromHex("80"), false, 0);
  assertVerdict(concat(edited, fromHex("eda080")), false, 7);
  assertVerdict(fromHex("6564eda080"), false, 3);
  assertVerdict(fromHex("c0af"), false, 0);
  assertVerdict(fromHex("e080af"), false, 1);
  assertVerdict(fromHex("f08fbfbf"), false, 1);
  assertVerdict(fromHex("ce20"), false, 1);
  // Truncated at the end: never fails, but is not complete.
  assertVerdict(fromHex("cebae1bd"), false, -1);
  assertVerdict(fromHex("f48fbf"), false, -1);

  // All 3-chunk splittings of the 6.4 message.
  const msg = concat(KOSME, fromHex("f4908080"), edited);
  for (let a = 0; a <= msg.length; a++) {
    for (let b = a; b <= msg.length; b++) {
      const v = pushChunks(msg, [a, b]);
      assert.equal(v.failedAt, 12, `cuts ${a},${b}`);
      assert.equal(v.valid, false);
    }
  }
});

Deno.test("pushes after a failure are ignored", () => {
  const v = new Utf8Validator();
  assert.equal(v.push(fromHex("6162")), true);
  assert.equal(v.push(fromHex("63ff64")), false);
  assert.equal(v.failedAt, 3);
  assert.equal(v.push(fromHex("6566")), false);
  assert.equal(v.failedAt, 3);
  assert.equal(v.valid, false);
  assert.equal(v.complete, false);
  v.reset();
  assert.equal(v.valid, true);
  assert.equal(v.complete, true);
  assert.equal(v.failedAt, -1);
  assert.equal(v.push(fromHex("ce")), true);
  assert.equal(v.failedAt, -1);
  assert.equal(v.push(fromHex("ff")), false);
  assert.equal(v.failedAt, 1, "offsets restart at 0 after reset");
});

Deno.test("complete is false in the middle of a code point", () => {
  const v = new Utf8Validator();
  assert.equal(v.complete, true, "nothing pushed yet");
  assert.equal(v.push(new Uint8Array(0)), true);
  assert.equal(v.complete, true);
  // κόσμε: code points end after bytes 2, 5, 7, 9, 11.
  for (let i = 0; i < KOSME.length; i++) {
    assert.equal(v.push(KOSME.subarray(i, i + 1)), true);
    assert.equal(v.valid, true);
    assert.equal(v.complete, [2, 5, 7, 9, 11].includes(i + 1), `after ${i + 1} bytes`);
  }
  for (const hex of ["f0", "f090", "f09080", "e0", "e0a0", "ed", "ed9f", "c2", "f4", "f48f"]) {
    const w = new Utf8Validator();
    assert.equal(w.push(fromHex(hex)), true, hex);
    assert.equal(w.valid, true, hex);
    assert.equal(w.complete, false, hex);
    assert.equal(w.failedAt, -1, hex);
  }
});

Deno.test("every scalar value U+0000..U+10FFFF encoded by TextEncoder is valid", () => {
  const enc = new TextEncoder();
  const buf = new Uint8Array(4);
  const all = new Utf8Validator();
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (cp === 0xd800) cp = 0xe000;
    const { written } = enc.encodeInto(String.fromCodePoint(cp), buf);
    assert.equal(written, cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);
    const bytes = buf.subarray(0, written);
    if (!isValidUtf8(bytes)) assert.fail(`U+${cp.toString(16)} (${toHex(bytes)}) rejected`);
    all.push(bytes);
  }
  assert.equal(all.complete, true);
});

Deno.test("surrogates, overlongs and values above U+10FFFF are invalid", () => {
  const three = (cp: number) =>
    Uint8Array.of(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  const four = (cp: number) =>
    Uint8Array.of(
      0xf0 | (cp >> 18),
      0x80 | ((cp >> 12) & 0x3f),
      0x80 | ((cp >> 6) & 0x3f),
      0x80 | (cp & 0x3f),
    );
  const two = (cp: number) => Uint8Array.of(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
  for (let cp = 0xd800; cp <= 0xdfff; cp++) {
    const bytes = three(cp);
    const v = pushChunks(bytes, []);
    if (isValidUtf8(bytes) || v.failedAt !== 1) {
      assert.fail(`surrogate U+${cp.toString(16)} (${toHex(bytes)}): failedAt ${v.failedAt}`);
    }
  }
  // CESU-8 pairs fail on the first surrogate.
  for (const [hi, lo] of [[0xd800, 0xdc00], [0xdbff, 0xdfff], [0xd83d, 0xde00]]) {
    assertVerdict(concat(three(hi), three(lo)), false, 1);
  }
  for (let cp = 0; cp < 0x80; cp++) assertVerdict(two(cp), false, 0);
  for (let cp = 0; cp < 0x800; cp++) {
    if (isValidUtf8(three(cp)) || pushChunks(three(cp), []).failedAt !== 1) {
      assert.fail(`overlong 3-byte U+${cp.toString(16)}`);
    }
  }
  for (let cp = 0; cp < 0x10000; cp += 7) {
    if (isValidUtf8(four(cp)) || pushChunks(four(cp), []).failedAt !== 1) {
      assert.fail(`overlong 4-byte U+${cp.toString(16)}`);
    }
  }
  for (let cp = 0x110000; cp <= 0x1fffff; cp += 0x1001) {
    const bytes = four(cp);
    const expected = bytes[0] === 0xf4 ? 1 : 0; // F5-F7 are never valid lead bytes
    if (isValidUtf8(bytes) || pushChunks(bytes, []).failedAt !== expected) {
      assert.fail(`beyond U+10FFFF: ${cp.toString(16)} (${toHex(bytes)})`);
    }
  }
  for (let b = 0; b < 256; b++) {
    const lead = Uint8Array.of(b);
    const ok = b < 0x80 || (b >= 0xc2 && b <= 0xf4);
    assert.equal(new Utf8Validator().push(lead), ok, `lone byte ${b.toString(16)}`);
  }
});

Deno.test("agrees with TextDecoder(fatal) on random byte strings", () => {
  const rnd = prng(0x6455);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
  const enc = new TextEncoder();
  /** Byte classes that keep random strings close to the interesting boundaries. */
  const classes = [
    () => Math.floor(rnd() * 256),
    () => Math.floor(rnd() * 0x80),
    () => 0x80 + Math.floor(rnd() * 0x40),
    () => pick([0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf]),
    () => pick([0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5]),
  ];
  let valid = 0;
  for (let n = 0; n < 5000; n++) {
    let bytes: Uint8Array;
    if (n % 3 === 0) {
      // Valid text with one byte possibly mutated.
      const text = Array.from(
        { length: 1 + Math.floor(rnd() * 6) },
        () => String.fromCodePoint(pick([0x7f, 0x7ff, 0xffff, 0x10ffff]) * rnd() | 0),
      ).join("");
      bytes = enc.encode(text.replace(/[\ud800-\udfff]/g, "x"));
      if (rnd() < 0.5) bytes[Math.floor(rnd() * bytes.length)] = pick(classes)();
    } else {
      bytes = Uint8Array.from({ length: 1 + Math.floor(rnd() * 12) }, () => pick(classes)());
    }
    const expected = decoderAccepts(bytes);
    if (expected) valid++;
    const failAt = decoderFailOffset(bytes);
    const label = toHex(bytes);
    assert.equal(isValidUtf8(bytes), expected, `isValidUtf8(${label})`);
    const cuts = [Math.floor(rnd() * (bytes.length + 1)), Math.floor(rnd() * (bytes.length + 1))]
      .sort((a, b) => a - b);
    for (const v of [pushChunks(bytes, []), pushChunks(bytes, cuts), byteByByte(bytes)]) {
      assert.equal(v.failedAt, failAt, `${label} failedAt (cuts ${cuts})`);
      assert.equal(v.complete, expected, `${label} complete (cuts ${cuts})`);
    }
  }
  // The generator must exercise both outcomes substantially.
  assert.ok(valid > 500 && valid < 4000, `valid ${valid} of 5000`);
});
