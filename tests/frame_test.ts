import assert from "node:assert/strict";
import {
  closePayload,
  decodeHeader,
  encodeFrame,
  encodeFramePieces,
  encodeFrames,
  encodeHeader,
  encodeMessage,
  fragmentCount,
  type FrameHeader,
  FrameParser,
  type FrameToEncode,
  isControlOpcode,
  isKnownOpcode,
  isValidCloseCode,
  type LengthForm,
  maskInPlace,
  minimalLengthForm,
  Opcode,
  type ParseEvent,
} from "../harness/frame.ts";

// ---------------------------------------------------------------------------
// Helpers

/** Bytes from hex, whitespace ignored. */
function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  assert.equal(clean.length % 2, 0, `odd hex: ${s}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");

/**
 * Byte-for-byte equality with a short message. (node:assert's deepEqual diff of
 * two large mismatching arrays runs out of memory, so bytes never go through it.)
 */
function assertBytes(actual: Uint8Array | undefined, expected: Uint8Array, what = "bytes"): void {
  assert.ok(actual instanceof Uint8Array, `${what}: not a Uint8Array: ${actual}`);
  let at = -1;
  const n = Math.min(actual.length, expected.length);
  for (let i = 0; i < n && at < 0; i++) if (actual[i] !== expected[i]) at = i;
  if (at < 0 && actual.length === expected.length) return;
  if (at < 0) at = n;
  const from = Math.max(0, at - 8);
  assert.fail(
    `${what}: length ${actual.length} (expected ${expected.length}), first difference at ${at}: ` +
      `actual [${from}..] ${toHex(actual.subarray(from, at + 8))}, ` +
      `expected [${from}..] ${toHex(expected.subarray(from, at + 8))}`,
  );
}

/** Events equal: types and headers deeply, payloads via assertBytes. */
function assertEvents(actual: ParseEvent[], expected: ParseEvent[], what = "events"): void {
  assert.equal(actual.length, expected.length, `${what}: number of events`);
  actual.forEach((a, i) => {
    const e = expected[i];
    assert.equal(a.type, e.type, `${what}: event ${i} type`);
    assert.deepEqual(a.header, e.header, `${what}: event ${i} header`);
    if (a.type === "frame" && e.type === "frame") {
      assertBytes(a.payload, e.payload, `${what}: event ${i} payload`);
    }
  });
}

const utf8 = (s: string) => new TextEncoder().encode(s);

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(rand: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * 256);
  return out;
}

function naiveMask(data: Uint8Array, key: Uint8Array, offset: number): Uint8Array {
  const out = data.slice();
  for (let i = 0; i < out.length; i++) out[i] ^= key[(offset + i) % 4];
  return out;
}

function header(
  fields: Omit<FrameHeader, "maskKey" | "headerLength"> & { maskKey?: Uint8Array },
): FrameHeader {
  const extra = fields.lengthForm === 7 ? 0 : fields.lengthForm === 16 ? 2 : 8;
  return {
    fin: fields.fin,
    rsv: fields.rsv,
    opcode: fields.opcode,
    masked: fields.masked,
    maskKey: fields.maskKey,
    length: fields.length,
    lengthForm: fields.lengthForm,
    headerLength: 2 + extra + (fields.masked ? 4 : 0),
  };
}

/** Feeds `chunks` one by one, draining next() after each push. */
function parseChunks(chunks: Uint8Array[], maxPayload = 1 << 20): ParseEvent[] {
  const parser = new FrameParser({ maxPayload });
  const events: ParseEvent[] = [];
  for (const c of chunks) {
    parser.push(c);
    for (let e = parser.next(); e; e = parser.next()) events.push(e);
  }
  assert.equal(parser.next(), undefined);
  return events;
}

/** Splits bytes at sizes drawn from `size()` (each >= 1). */
function chop(bytes: Uint8Array, size: () => number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length;) {
    const n = Math.max(1, size());
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return out;
}

const KEY = hex("37 fa 21 3d");
const HELLO = utf8("Hello");

// ---------------------------------------------------------------------------
// RFC 6455 §5.7 examples

interface Vector {
  name: string;
  wire: Uint8Array;
  frame: FrameToEncode;
  header: FrameHeader;
  payload: Uint8Array;
}

const payload256 = Uint8Array.from({ length: 256 }, (_, i) => (i * 7 + 3) & 0xff);
const payload64k = Uint8Array.from({ length: 65536 }, (_, i) => (i * 31 + (i >> 8)) & 0xff);

const VECTORS: Vector[] = [
  {
    name: "single-frame unmasked text 'Hello'",
    wire: hex("81 05 48 65 6c 6c 6f"),
    frame: { opcode: Opcode.Text, payload: HELLO },
    header: header({ fin: true, rsv: 0, opcode: 1, masked: false, length: 5n, lengthForm: 7 }),
    payload: HELLO,
  },
  {
    name: "single-frame masked text 'Hello'",
    wire: hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"),
    frame: { opcode: Opcode.Text, payload: HELLO, maskKey: KEY },
    header: header({
      fin: true,
      rsv: 0,
      opcode: 1,
      masked: true,
      maskKey: KEY,
      length: 5n,
      lengthForm: 7,
    }),
    payload: HELLO,
  },
  {
    name: "fragmented unmasked text, first fragment 'Hel'",
    wire: hex("01 03 48 65 6c"),
    frame: { opcode: Opcode.Text, fin: false, payload: utf8("Hel") },
    header: header({ fin: false, rsv: 0, opcode: 1, masked: false, length: 3n, lengthForm: 7 }),
    payload: utf8("Hel"),
  },
  {
    name: "fragmented unmasked text, final continuation 'lo'",
    wire: hex("80 02 6c 6f"),
    frame: { opcode: Opcode.Continuation, fin: true, payload: utf8("lo") },
    header: header({ fin: true, rsv: 0, opcode: 0, masked: false, length: 2n, lengthForm: 7 }),
    payload: utf8("lo"),
  },
  {
    name: "unmasked ping 'Hello'",
    wire: hex("89 05 48 65 6c 6c 6f"),
    frame: { opcode: Opcode.Ping, payload: HELLO },
    header: header({ fin: true, rsv: 0, opcode: 9, masked: false, length: 5n, lengthForm: 7 }),
    payload: HELLO,
  },
  {
    name: "masked pong 'Hello'",
    wire: hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58"),
    frame: { opcode: Opcode.Pong, payload: HELLO, maskKey: KEY },
    header: header({
      fin: true,
      rsv: 0,
      opcode: 10,
      masked: true,
      maskKey: KEY,
      length: 5n,
      lengthForm: 7,
    }),
    payload: HELLO,
  },
  {
    name: "256 bytes binary, single unmasked frame",
    wire: concat(hex("82 7e 01 00"), payload256),
    frame: { opcode: Opcode.Binary, payload: payload256 },
    header: header({ fin: true, rsv: 0, opcode: 2, masked: false, length: 256n, lengthForm: 16 }),
    payload: payload256,
  },
  {
    name: "64KiB binary, single unmasked frame",
    wire: concat(hex("82 7f 00 00 00 00 00 01 00 00"), payload64k),
    frame: { opcode: Opcode.Binary, payload: payload64k },
    header: header({
      fin: true,
      rsv: 0,
      opcode: 2,
      masked: false,
      length: 65536n,
      lengthForm: 64,
    }),
    payload: payload64k,
  },
];

Deno.test("RFC 6455 §5.7 examples", async (t) => {
  for (const v of VECTORS) {
    await t.step(`encode: ${v.name}`, () => {
      const before = v.frame.payload!.slice();
      assertBytes(encodeFrame(v.frame), v.wire);
      // The caller's payload is not masked in place.
      assertBytes(v.frame.payload, before);
    });
    await t.step(`encodeHeader: ${v.name}`, () => {
      const { payload: _p, ...rest } = v.frame;
      const h = encodeHeader({ ...rest, length: BigInt(v.payload.length) });
      assertBytes(h, v.wire.subarray(0, v.header.headerLength));
    });
    await t.step(`decodeHeader: ${v.name}`, () => {
      assert.deepEqual(decodeHeader(v.wire), v.header);
      // Every strict prefix of the header is "need more bytes".
      for (let n = 0; n < v.header.headerLength; n++) {
        assert.equal(decodeHeader(v.wire.subarray(0, n)), undefined);
      }
    });
    await t.step(`FrameParser: ${v.name}`, () => {
      const events = parseChunks([v.wire], 1 << 20);
      assertEvents(events, [{ type: "frame", header: v.header, payload: v.payload }]);
    });
  }

  await t.step("fragmented 'Hel' + 'lo' as one stream", () => {
    const events = parseChunks([hex("01 03 48 65 6c 80 02 6c 6f")]);
    assert.equal(events.length, 2);
    const text = events.map((e) => {
      assert.equal(e.type, "frame");
      return e.type === "frame" ? new TextDecoder().decode(e.payload) : "";
    }).join("");
    assert.equal(text, "Hello");
  });
});

// ---------------------------------------------------------------------------
// Header bits

Deno.test("every FIN/RSV/opcode combination round-trips, masked and unmasked", () => {
  const payload = utf8("abc");
  let combos = 0;
  const stream: Uint8Array[] = [];
  const expected: ParseEvent[] = [];
  for (const fin of [true, false]) {
    for (let rsv = 0; rsv < 8; rsv++) {
      for (let opcode = 0; opcode < 16; opcode++) {
        for (const maskKey of [undefined, KEY]) {
          const wire = encodeFrame({ opcode, fin, rsv, payload, maskKey });
          assert.equal(wire[0], (fin ? 0x80 : 0) | (rsv << 4) | opcode);
          assert.equal(wire[1], (maskKey ? 0x80 : 0) | 3);
          assertBytes(
            wire.subarray(wire.length - 3),
            maskKey ? naiveMask(payload, maskKey, 0) : payload,
          );
          const h = header({
            fin,
            rsv,
            opcode,
            masked: maskKey !== undefined,
            maskKey,
            length: 3n,
            lengthForm: 7,
          });
          assert.deepEqual(decodeHeader(wire), h);
          stream.push(wire);
          expected.push({ type: "frame", header: h, payload });
          combos++;
        }
      }
    }
  }
  assert.equal(combos, 2 * 8 * 16 * 2);
  assertEvents(parseChunks([concat(...stream)]), expected);
});

Deno.test("encodeHeader defaults: fin true, rsv 0; rsv and opcode are masked to their bits", () => {
  assertBytes(encodeHeader({ opcode: 1, length: 0n }), hex("81 00"));
  assertBytes(encodeHeader({ opcode: 0x12, rsv: 9, fin: false, length: 0n }), hex("12 00"));
});

Deno.test("isControlOpcode / isKnownOpcode over 0..15", () => {
  for (let op = 0; op < 16; op++) {
    assert.equal(isControlOpcode(op), op >= 8, `control ${op}`);
    assert.equal(isKnownOpcode(op), [0, 1, 2, 8, 9, 10].includes(op), `known ${op}`);
  }
});

// ---------------------------------------------------------------------------
// Length forms

Deno.test("length forms", async (t) => {
  await t.step("minimalLengthForm boundaries", () => {
    assert.equal(minimalLengthForm(0), 7);
    assert.equal(minimalLengthForm(125), 7);
    assert.equal(minimalLengthForm(126n), 16);
    assert.equal(minimalLengthForm(65535), 16);
    assert.equal(minimalLengthForm(65536), 64);
    assert.equal(minimalLengthForm(2n ** 63n), 64);
  });

  await t.step("default encoding is minimal at the boundaries", () => {
    assertBytes(encodeHeader({ opcode: 2, length: 125n }), hex("82 7d"));
    assertBytes(encodeHeader({ opcode: 2, length: 126n }), hex("82 7e 00 7e"));
    assertBytes(encodeHeader({ opcode: 2, length: 65535n }), hex("82 7e ff ff"));
    assertBytes(
      encodeHeader({ opcode: 2, length: 65536n }),
      hex("82 7f 00 00 00 00 00 01 00 00"),
    );
  });

  await t.step("non-minimal forms: length 5 in 16- and 64-bit forms, byte for byte", () => {
    const w16 = encodeFrame({ opcode: 1, payload: HELLO, lengthForm: 16 });
    assertBytes(w16, hex("81 7e 00 05 48 65 6c 6c 6f"));
    const w64 = encodeFrame({ opcode: 1, payload: HELLO, lengthForm: 64 });
    assertBytes(w64, hex("81 7f 00 00 00 00 00 00 00 05 48 65 6c 6c 6f"));
    const m64 = encodeFrame({ opcode: 1, payload: HELLO, lengthForm: 64, maskKey: KEY });
    assertBytes(m64, hex("81 ff 00 00 00 00 00 00 00 05 37 fa 21 3d 7f 9f 4d 51 58"));
    for (
      const [wire, lengthForm, masked] of [[w16, 16, false], [w64, 64, false], [
        m64,
        64,
        true,
      ]] as const
    ) {
      const h = header({
        fin: true,
        rsv: 0,
        opcode: 1,
        masked,
        maskKey: masked ? KEY : undefined,
        length: 5n,
        lengthForm,
      });
      assert.deepEqual(decodeHeader(wire), h);
      assertEvents(parseChunks([wire]), [{ type: "frame", header: h, payload: HELLO }]);
    }
  });

  await t.step("every allowed (length, form, mask) round-trips; headerLength is 2..14", () => {
    const cases: [number, LengthForm[]][] = [
      [0, [7, 16, 64]],
      [1, [7, 16, 64]],
      [5, [7, 16, 64]],
      [125, [7, 16, 64]],
      [126, [16, 64]],
      [127, [16, 64]],
      [300, [16, 64]],
      [65535, [16, 64]],
      [65536, [64]],
      [70000, [64]],
    ];
    const seen = new Set<number>();
    const rand = rng(1);
    for (const [length, forms] of cases) {
      const payload = randomBytes(rand, length);
      for (const lengthForm of forms) {
        for (const maskKey of [undefined, KEY]) {
          const masked = maskKey !== undefined;
          const wire = encodeFrame({ opcode: 2, payload, lengthForm, maskKey });
          const expectedHl = 2 + (lengthForm === 7 ? 0 : lengthForm === 16 ? 2 : 8) +
            (masked ? 4 : 0);
          assert.equal(wire.length, expectedHl + length);
          const h = decodeHeader(wire)!;
          assert.deepEqual(
            h,
            header({
              fin: true,
              rsv: 0,
              opcode: 2,
              masked,
              maskKey,
              length: BigInt(length),
              lengthForm,
            }),
          );
          assert.equal(h.headerLength, expectedHl);
          seen.add(h.headerLength);
          const events = parseChunks([wire]);
          assertEvents(events, [{ type: "frame", header: h, payload }]);
        }
      }
    }
    assert.deepEqual([...seen].sort((a, b) => a - b), [2, 4, 6, 8, 10, 14]);
  });

  await t.step("64-bit form with the MSB set encodes and decodes exactly as bigint", () => {
    const h = encodeHeader({ opcode: 2, length: 2n ** 63n });
    assertBytes(h, hex("82 7f 80 00 00 00 00 00 00 00"));
    assert.deepEqual(
      decodeHeader(h),
      header({ fin: true, rsv: 0, opcode: 2, masked: false, length: 2n ** 63n, lengthForm: 64 }),
    );
    // A lying header via encodeFrame's declaredLength, masked.
    const lie = encodeFrame({ opcode: 2, payload: HELLO, maskKey: KEY, declaredLength: 2n ** 63n });
    assertBytes(lie, hex("82 ff 80 00 00 00 00 00 00 00 37 fa 21 3d 7f 9f 4d 51 58"));
    assert.equal(decodeHeader(lie)!.length, 2n ** 63n);
    // Exactness beyond 2^53 and at the top of the range.
    for (const n of [2n ** 53n + 1n, 2n ** 63n + 1n, 2n ** 64n - 1n, 0x0123456789abcdefn]) {
      const bytes = encodeHeader({ opcode: 2, length: n });
      assert.equal(bytes.length, 10);
      assert.equal(new DataView(bytes.buffer).getBigUint64(2), n);
      assert.equal(decodeHeader(bytes)!.length, n);
    }
    assertBytes(
      encodeHeader({ opcode: 2, length: 0x0123456789abcdefn }),
      hex("82 7f 01 23 45 67 89 ab cd ef"),
    );
  });

  await t.step("declaredLength below/above the payload writes a lying header", () => {
    assertBytes(
      encodeFrame({ opcode: 1, payload: HELLO, declaredLength: 2n }),
      hex("81 02 48 65 6c 6c 6f"),
    );
    assertBytes(
      encodeFrame({ opcode: 1, payload: HELLO, declaredLength: 126n }),
      hex("81 7e 00 7e 48 65 6c 6c 6f"),
    );
  });

  await t.step("encodeHeader rejects lengths that do not fit", () => {
    assert.throws(() => encodeHeader({ opcode: 1, length: 126n, lengthForm: 7 }), RangeError);
    assert.throws(() => encodeHeader({ opcode: 1, length: 65536n, lengthForm: 16 }), RangeError);
    assert.throws(() => encodeHeader({ opcode: 1, length: 2n ** 64n }), RangeError);
    assert.throws(() => encodeHeader({ opcode: 1, length: 2n ** 64n, lengthForm: 64 }), RangeError);
    assert.throws(() => encodeHeader({ opcode: 1, length: -1n }), RangeError);
    assert.throws(() => encodeHeader({ opcode: 1, length: -1n, lengthForm: 64 }), RangeError);
    assert.throws(
      () => encodeFrame({ opcode: 1, payload: new Uint8Array(126), lengthForm: 7 }),
      RangeError,
    );
    assert.throws(
      () => encodeFrame({ opcode: 1, payload: HELLO, declaredLength: 65536n, lengthForm: 16 }),
      RangeError,
    );
    // The limits themselves are accepted.
    assertBytes(encodeHeader({ opcode: 1, length: 125n, lengthForm: 7 }), hex("81 7d"));
    assertBytes(encodeHeader({ opcode: 1, length: 65535n, lengthForm: 16 }), hex("81 7e ff ff"));
  });

  await t.step("encodeHeader rejects a masking key that is not 4 bytes", () => {
    assert.throws(
      () => encodeHeader({ opcode: 1, length: 0n, maskKey: hex("01 02 03") }),
      RangeError,
    );
    assert.throws(
      () => encodeHeader({ opcode: 1, length: 0n, maskKey: hex("01 02 03 04 05") }),
      RangeError,
    );
  });
});

// ---------------------------------------------------------------------------
// Masking

Deno.test("maskInPlace", async (t) => {
  const rand = rng(42);
  const key = randomBytes(rand, 4);

  /** Lengths 0..300, plus lengths around the word-at-a-time threshold (1024 bytes at present). */
  const lengths = [
    ...Array.from({ length: 301 }, (_, i) => i),
    ...Array.from({ length: 24 }, (_, i) => 1012 + i),
    2047,
    4099,
  ];

  await t.step("matches a naive loop for many lengths, offsets 0..7, unaligned starts", () => {
    for (const length of lengths) {
      const data = randomBytes(rand, length);
      for (let offset = 0; offset < 8; offset++) {
        for (let start = 0; start < 4; start++) {
          // Surround the target with guard bytes to catch writes outside it.
          const backing = new Uint8Array(start + length + 8).fill(0xa5);
          backing.set(data, start);
          const view = backing.subarray(start, start + length);
          maskInPlace(view, key, offset);
          assertBytes(
            view,
            naiveMask(data, key, offset),
            `len ${length} off ${offset} at ${start}`,
          );
          assert.ok(backing.subarray(0, start).every((b) => b === 0xa5));
          assert.ok(backing.subarray(start + length).every((b) => b === 0xa5));
        }
      }
    }
  });

  await t.step("default offset is 0; masking twice restores the data", () => {
    const data = randomBytes(rand, 257);
    const a = data.slice();
    maskInPlace(a, key);
    assertBytes(a, naiveMask(data, key, 0));
    maskInPlace(a, key);
    assertBytes(a, data);
  });

  await t.step("masking piecewise with offsets equals masking whole", () => {
    for (let trial = 0; trial < 200; trial++) {
      // Small pieces, and pieces long enough for the word path.
      const length = Math.floor(rand() * (trial % 2 ? 1000 : 10000));
      const maxPiece = trial % 2 ? 150 : 3000;
      const data = randomBytes(rand, length);
      const whole = data.slice();
      maskInPlace(whole, key, 0);
      const pieces = data.slice();
      let pos = 0;
      while (pos < length) {
        const n = Math.min(length - pos, Math.floor(rand() * maxPiece));
        maskInPlace(pieces.subarray(pos, pos + n), key, pos);
        pos += n;
      }
      assertBytes(pieces, whole, `trial ${trial}`);
    }
  });

  await t.step("a large buffer (word path) matches the naive loop", () => {
    const data = randomBytes(rand, 1 << 20);
    for (const start of [0, 1, 2, 3]) {
      for (const offset of [0, 1, 2, 3, 5]) {
        const view = data.slice().subarray(start);
        const expected = naiveMask(data.subarray(start), key, offset);
        maskInPlace(view, key, offset);
        assertBytes(view, expected, `start ${start} offset ${offset}`);
      }
    }
  });
});

// ---------------------------------------------------------------------------
// encodeFrames / encodeMessage (encodeFrame goes through them)

Deno.test("encodeFrames is the concatenation of encodeFrame", () => {
  const rand = rng(5);
  const frames: FrameToEncode[] = [
    { opcode: 1, payload: HELLO, maskKey: KEY },
    { opcode: 9 },
    { opcode: 2, payload: randomBytes(rand, 3000), maskKey: randomBytes(rand, 4), lengthForm: 64 },
    { opcode: 0, fin: false, rsv: 3, payload: randomBytes(rand, 130) },
    { opcode: 2, payload: randomBytes(rand, 1500), maskKey: randomBytes(rand, 4) },
  ];
  assertBytes(encodeFrames(frames), concat(...frames.map(encodeFrame)));
  assertBytes(encodeFrames([]), new Uint8Array(0));
});

Deno.test("encodeMessage", async (t) => {
  await t.step("'Hello' in 3-byte fragments is the RFC §5.7 fragmented example", () => {
    assertBytes(
      encodeMessage(HELLO, { opcode: Opcode.Text, fragmentSize: 3 }),
      hex("01 03 48 65 6c 80 02 6c 6f"),
    );
    assertBytes(encodeMessage(HELLO, { opcode: Opcode.Text }), hex("81 05 48 65 6c 6c 6f"));
    assertBytes(
      encodeMessage(HELLO, { opcode: Opcode.Text, maskKeys: KEY }),
      hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"),
    );
  });

  await t.step("equals encodeFrames of the fragments, masked and unmasked", () => {
    const rand = rng(9);
    for (
      const [length, fragmentSize] of [[0, 4], [1, 1], [10, 3], [9, 3], [5000, 1100], [
        70000,
        65536,
      ]]
    ) {
      const payload = randomBytes(rand, length);
      const count = fragmentCount(length, fragmentSize);
      const keys = randomBytes(rand, 4 * count);
      for (const maskKeys of [undefined, keys]) {
        const frames: FrameToEncode[] = [];
        for (let i = 0; i < count; i++) {
          frames.push({
            opcode: i === 0 ? Opcode.Binary : Opcode.Continuation,
            fin: i === count - 1,
            payload: payload.subarray(i * fragmentSize, (i + 1) * fragmentSize),
            maskKey: maskKeys?.subarray(4 * i, 4 * i + 4),
          });
        }
        assertBytes(
          encodeMessage(payload, { opcode: Opcode.Binary, fragmentSize, maskKeys }),
          encodeFrames(frames),
          `length ${length} fragments of ${fragmentSize} ${maskKeys ? "masked" : "unmasked"}`,
        );
      }
    }
  });

  await t.step("fragmentCount; too few mask keys is a RangeError", () => {
    assert.equal(fragmentCount(0), 1);
    assert.equal(fragmentCount(0, 10), 1);
    assert.equal(fragmentCount(10), 1);
    assert.equal(fragmentCount(10, 0), 1);
    assert.equal(fragmentCount(10, 3), 4);
    assert.equal(fragmentCount(3, 3), 1);
    // As Autobahn's sendMessage: a last fragment filled exactly is followed by an empty one.
    assert.equal(fragmentCount(9, 3), 4);
    assert.equal(fragmentCount(4 * 1024 * 1024, 256), 16385);
    assert.throws(
      () => encodeMessage(HELLO, { opcode: 1, fragmentSize: 2, maskKeys: new Uint8Array(8) }),
      RangeError,
    );
  });
});

// ---------------------------------------------------------------------------
// FrameParser

function sampleStream(rand: () => number): { bytes: Uint8Array; expected: ParseEvent[] } {
  const specs: FrameToEncode[] = [
    { opcode: 1, payload: HELLO },
    { opcode: 1, payload: HELLO, maskKey: KEY },
    { opcode: 9, payload: new Uint8Array(0) },
    { opcode: 10, payload: new Uint8Array(0), maskKey: KEY },
    { opcode: 2, payload: randomBytes(rand, 125), maskKey: randomBytes(rand, 4) },
    { opcode: 2, payload: randomBytes(rand, 126) },
    { opcode: 2, fin: false, rsv: 5, payload: randomBytes(rand, 300), maskKey: KEY },
    { opcode: 0, payload: randomBytes(rand, 3), lengthForm: 64 },
    { opcode: 0, payload: randomBytes(rand, 7), lengthForm: 16, maskKey: randomBytes(rand, 4) },
    { opcode: 2, payload: randomBytes(rand, 70000), maskKey: randomBytes(rand, 4) },
    { opcode: 8, payload: closePayload(1000, utf8("bye")), maskKey: KEY },
    { opcode: 0xb, rsv: 7, payload: randomBytes(rand, 1) },
  ];
  const wires = specs.map(encodeFrame);
  const expected: ParseEvent[] = specs.map((s, i) => ({
    type: "frame",
    header: decodeHeader(wires[i])!,
    payload: s.payload!,
  }));
  return { bytes: concat(...wires), expected };
}

Deno.test("FrameParser", async (t) => {
  const { bytes, expected } = sampleStream(rng(7));

  await t.step("all at once", () => {
    assertEvents(parseChunks([bytes]), expected);
  });

  await t.step("one byte at a time", () => {
    assertEvents(parseChunks(chop(bytes, () => 1)), expected);
  });

  await t.step("random chunk sizes (several seeds, small and large chunks)", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rand = rng(seed);
      const max = seed % 2 ? 16 : 5000;
      assertEvents(
        parseChunks(chop(bytes, () => 1 + Math.floor(rand() * max))),
        expected,
        `seed ${seed}`,
      );
    }
  });

  await t.step("every split point into two chunks", () => {
    // Limited to the first frames so this stays fast.
    const head = bytes.subarray(0, 600);
    const reference = parseChunks([head]);
    for (let cut = 0; cut <= head.length; cut++) {
      assertEvents(parseChunks([head.subarray(0, cut), head.subarray(cut)]), reference);
    }
  });

  await t.step("next() only after all pushes", () => {
    const parser = new FrameParser({ maxPayload: 1 << 20 });
    for (const c of chop(bytes, () => 33)) parser.push(c);
    const events: ParseEvent[] = [];
    for (let e = parser.next(); e; e = parser.next()) events.push(e);
    assertEvents(events, expected);
    assert.equal(parser.buffered, 0);
  });

  await t.step("several frames in one chunk come out in order, then undefined", () => {
    const parser = new FrameParser({ maxPayload: 1024 });
    parser.push(hex("81 05 48 65 6c 6c 6f 89 00 8a 85 37 fa 21 3d 7f 9f 4d 51 58 01 03 48 65 6c"));
    const types: [number, string][] = [];
    for (let e = parser.next(); e; e = parser.next()) {
      assert.equal(e.type, "frame");
      if (e.type === "frame") types.push([e.header.opcode, new TextDecoder().decode(e.payload)]);
    }
    assert.deepEqual(types, [[1, "Hello"], [9, ""], [10, "Hello"], [1, "Hel"]]);
    assert.equal(parser.next(), undefined);
    assert.equal(parser.buffered, 0);
    assert.equal(parser.pendingHeader, undefined);
    assert.equal(parser.partialPayload, undefined);
  });

  await t.step("payloads are copies: later changes to pushed chunks do not alter them", () => {
    const chunk = hex("82 03 01 02 03");
    const parser = new FrameParser({ maxPayload: 16 });
    parser.push(chunk);
    const e = parser.next();
    chunk.fill(0);
    assertEvents([e!], [{
      type: "frame",
      header: header({ fin: true, rsv: 0, opcode: 2, masked: false, length: 3n, lengthForm: 7 }),
      payload: hex("01 02 03"),
    }]);
  });

  await t.step("push of an empty chunk changes nothing", () => {
    const parser = new FrameParser({ maxPayload: 16 });
    parser.push(new Uint8Array(0));
    assert.equal(parser.buffered, 0);
    assert.equal(parser.next(), undefined);
  });

  await t.step("partialPayload exposes unmasked bytes mid-frame", () => {
    const text = utf8("Hello, world");
    const wire = encodeFrame({ opcode: 1, payload: text, maskKey: KEY });
    const h = decodeHeader(wire)!;
    const parser = new FrameParser({ maxPayload: 1024 });
    assert.equal(parser.partialPayload, undefined);
    assert.equal(parser.pendingHeader, undefined);

    // Half a header: nothing started yet.
    parser.push(wire.subarray(0, 3));
    assert.equal(parser.next(), undefined);
    assert.equal(parser.pendingHeader, undefined);
    assert.equal(parser.partialPayload, undefined);

    // Whole header, no payload yet.
    parser.push(wire.subarray(3, 6));
    assert.equal(parser.next(), undefined);
    assert.deepEqual(parser.pendingHeader, h);
    assertBytes(parser.partialPayload, new Uint8Array(0));

    // Pieces at offsets that are not multiples of 4 exercise the key phase.
    let pos = 6;
    for (const n of [1, 2, 3, 5]) {
      parser.push(wire.subarray(pos, pos + n));
      pos += n;
      assert.equal(parser.next(), undefined);
      assertBytes(parser.partialPayload, text.subarray(0, pos - 6));
      assert.deepEqual(parser.pendingHeader, h);
    }
    parser.push(wire.subarray(pos));
    assertEvents([parser.next()!], [{ type: "frame", header: h, payload: text }]);
    assert.equal(parser.partialPayload, undefined);
    assert.equal(parser.pendingHeader, undefined);
  });

  await t.step("partialPayload over a large masked frame fed in odd chunks", () => {
    const rand = rng(3);
    const payload = randomBytes(rand, 5000);
    const key = randomBytes(rand, 4);
    const wire = encodeFrame({ opcode: 2, payload, maskKey: key });
    const parser = new FrameParser({ maxPayload: 1 << 20 });
    let pushed = 0;
    for (const c of chop(wire, () => 1 + Math.floor(rand() * 97))) {
      parser.push(c);
      pushed += c.length;
      const e = parser.next();
      if (pushed < wire.length) {
        assert.equal(e, undefined);
        const got = Math.max(0, pushed - 8);
        if (pushed >= 8) assertBytes(parser.partialPayload, payload.subarray(0, got));
      } else {
        assert.equal(e?.type, "frame");
        assertBytes(e?.type === "frame" ? e.payload : undefined, payload);
      }
    }
  });

  await t.step("declared length over maxPayload: one oversize event, then inert", () => {
    const maxPayload = 1 << 20;
    // 2^62 declared: allocating it would throw, so no allocation must happen.
    const wire = hex("82 ff 40 00 00 00 00 00 00 00 37 fa 21 3d");
    const expectedHeader = header({
      fin: true,
      rsv: 0,
      opcode: 2,
      masked: true,
      maskKey: KEY,
      length: 2n ** 62n,
      lengthForm: 64,
    });
    for (const chunks of [[concat(wire, HELLO)], chop(concat(wire, HELLO), () => 1)]) {
      const parser = new FrameParser({ maxPayload });
      const events: ParseEvent[] = [];
      for (const c of chunks) {
        parser.push(c);
        for (let e = parser.next(); e; e = parser.next()) events.push(e);
      }
      assertEvents(events, [{ type: "oversize", header: expectedHeader }]);
      const buffered = parser.buffered;
      parser.push(hex("81 05 48 65 6c 6c 6f"));
      parser.push(new Uint8Array(100));
      assert.equal(parser.next(), undefined);
      assert.equal(parser.next(), undefined);
      assert.equal(parser.buffered, buffered);
    }
  });

  await t.step("maxPayload boundary: equal is accepted, one more is oversize", () => {
    const max = 1000;
    const at = encodeFrame({ opcode: 2, payload: new Uint8Array(max).fill(7), lengthForm: 64 });
    const events = parseChunks([at], max);
    assert.equal(events.length, 1);
    assert.equal(events[0].type, "frame");
    const over = encodeHeader({ opcode: 2, length: BigInt(max + 1) });
    assertEvents(parseChunks([over], max), [{
      type: "oversize",
      header: header({
        fin: true,
        rsv: 0,
        opcode: 2,
        masked: false,
        length: 1001n,
        lengthForm: 16,
      }),
    }]);
    // Frames before the oversize one are still delivered.
    const mixed = parseChunks([concat(hex("81 05 48 65 6c 6c 6f"), over, hex("81 00"))], max);
    assert.deepEqual(mixed.map((e) => e.type), ["frame", "oversize"]);
  });

  await t.step("declared 2^53+1 with maxPayload 1 MiB is oversize with the exact length", () => {
    const events = parseChunks([encodeHeader({ opcode: 1, length: 2n ** 53n + 1n })], 1 << 20);
    assert.equal(events.length, 1);
    assert.equal(events[0].type, "oversize");
    assert.equal(events[0].header.length, 2n ** 53n + 1n);
  });

  await t.step("buffered: counts pushed bytes until next() consumes them", () => {
    const parser = new FrameParser({ maxPayload: 1024 });
    assert.equal(parser.buffered, 0);
    const two = hex("81 05 48 65 6c 6c 6f 82 02 01 02");
    parser.push(two.subarray(0, 4));
    assert.equal(parser.buffered, 4);
    parser.push(two.subarray(4, 8));
    assert.equal(parser.buffered, 8);
    // First frame returned; one byte (the start of the second header) remains.
    assert.equal(parser.next()?.type, "frame");
    assert.equal(parser.buffered, 1);
    assert.equal(parser.next(), undefined);
    assert.equal(parser.buffered, 1);
    parser.push(two.subarray(8));
    assert.equal(parser.buffered, 4);
    assert.equal(parser.next()?.type, "frame");
    assert.equal(parser.buffered, 0);
  });

  await t.step({
    name: "buffered: received bytes not yet part of a returned frame, mid-frame included",
    // The header of a frame in progress counts as buffered until the frame is returned.
    fn: () => {
      const parser = new FrameParser({ maxPayload: 1024 });
      parser.push(hex("81 05 48 65"));
      assert.equal(parser.buffered, 4);
      assert.equal(parser.next(), undefined);
      assert.equal(parser.buffered, 4);

      // The invariant over a whole stream in random chunks:
      // buffered == pushed - sum(headerLength + length of returned frames).
      const rand = rng(11);
      const p = new FrameParser({ maxPayload: 1 << 20 });
      let pushed = 0;
      let returned = 0;
      for (const c of chop(bytes, () => 1 + Math.floor(rand() * 200))) {
        p.push(c);
        pushed += c.length;
        assert.equal(p.buffered, pushed - returned);
        for (let e = p.next(); e; e = p.next()) {
          if (e.type === "frame") returned += e.header.headerLength + e.payload.length;
          assert.equal(p.buffered, pushed - returned);
        }
        assert.equal(p.buffered, pushed - returned);
      }
      assert.equal(returned, bytes.length);
    },
  });
});

// ---------------------------------------------------------------------------
// Close frames

Deno.test("isValidCloseCode over 0..65535", () => {
  const valid = (c: number) =>
    (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
  let count = 0;
  for (let code = 0; code <= 65535; code++) {
    assert.equal(isValidCloseCode(code), valid(code), `code ${code}`);
    if (valid(code)) count++;
  }
  assert.equal(count, 4 + 8 + 2000);
  for (const c of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]) {
    assert.equal(isValidCloseCode(c), false, `code ${c}`);
  }
  for (const c of [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999]) {
    assert.equal(isValidCloseCode(c), true, `code ${c}`);
  }
});

Deno.test("closePayload", () => {
  assertBytes(closePayload(), new Uint8Array(0));
  assertBytes(closePayload(1000), hex("03 e8"));
  assertBytes(closePayload(1000, utf8("bye")), hex("03 e8 62 79 65"));
  assertBytes(closePayload(4999, new Uint8Array(0)), hex("13 87"));
  assertBytes(closePayload(65535), hex("ff ff"));
  assertBytes(closePayload(0), hex("00 00"));
  // A reason without a code (the illegal 1-byte close payload) is a copy.
  const reason = hex("58");
  const out = closePayload(undefined, reason);
  assertBytes(out, hex("58"));
  out[0] = 0;
  assert.equal(reason[0], 0x58);
  // On the wire: masked close 1000 "bye".
  assertBytes(
    encodeFrame({ opcode: Opcode.Close, payload: closePayload(1000, utf8("bye")), maskKey: KEY }),
    concat(hex("88 85 37 fa 21 3d"), naiveMask(hex("03 e8 62 79 65"), KEY, 0)),
  );
});

Deno.test("encodeFramePieces joined equals encodeFrame, masked or not, any piece size", () => {
  const rand = rng(11);
  for (const length of [0, 1, 125, 126, 70000]) {
    const payload = randomBytes(rand, length);
    for (const maskKey of [undefined, randomBytes(rand, 4)]) {
      for (const pieceSize of [1, 3, 1000, 65536]) {
        const pieces = [
          ...encodeFramePieces({ opcode: Opcode.Binary, payload, maskKey }, pieceSize),
        ];
        assert.ok(pieces.every((p, i) => i === 0 || p.length <= pieceSize));
        assertBytes(
          concat(...pieces),
          encodeFrame({ opcode: Opcode.Binary, payload, maskKey }),
          `${length} bytes in pieces of ${pieceSize}, ${maskKey ? "masked" : "unmasked"}`,
        );
      }
    }
  }
});
