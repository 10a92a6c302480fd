/**
 * The fixtures put on the wire what Autobahn|Testsuite puts there for the ids
 * they share: a fragmented message is split as Autobahn's sendMessage splits
 * it, so a peer with a limit on fragments per message gets the same verdict
 * from both suites (ws 8.23.0 refuses 16385 fragments: Autobahn's 9.3.2 and
 * 9.4.2 fail there, and so must ours).
 *
 *   deno test tests/fixtures_test.ts
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { DeflateAcceptanceSpec, DeflateOfferSpec } from "../harness/case.ts";
import { encodeMessage, fragmentCount, Opcode } from "../harness/frame.ts";
import { PayloadCache, payloadLength, resolveEvents, seriesPayload } from "../harness/payload.ts";
import { TEST_DATA_SETS, testData, type TestDataName } from "../harness/testdata.ts";
import { ALL_CASES, GROUPS } from "../fixtures/mod.ts";

const MiB = 1024 * 1024;

/** Autobahn's frame count for each fragmented message of a shared id (its sendMessage loop). */
const AUTOBAHN_FRAMES: Record<string, number> = {
  // 4 MiB in fragments of 64 B to 4 MiB: an exact multiple gets an empty last frame.
  ...Object.fromEntries(
    [64, 256, 1024, 4096, 16384, 65536, 262144, MiB, 4 * MiB].flatMap((size, i) => {
      const frames = size >= 4 * MiB ? 1 : 4 * MiB / size + 1;
      return [[`9.3.${i + 1}`, frames], [`9.4.${i + 1}`, frames]];
    }),
  ),
  // 1-byte fragments: one frame per byte, then the empty last one.
  "6.2.3": new TextEncoder().encode("Hello-µ@ßöäüàá-UTF-8!!").length + 1,
  "6.2.4": 11 + 1,
  "6.3.2": 20 + 1,
  // 64 KiB in 1300-byte fragments: 50 full and one of 536 bytes.
  "10.1.1": 51,
};

Deno.test("fragmented messages: the frame counts Autobahn's sendMessage puts on the wire", () => {
  const fragmented = ALL_CASES.flatMap((spec) =>
    spec.steps.flatMap((step) =>
      step.kind === "message" && step.message.fragmentSize !== undefined
        ? [{ id: spec.id, length: payloadLength(step.message.payload), ...step.message }]
        : []
    )
  );
  assert.deepEqual(fragmented.map((f) => f.id).sort(), Object.keys(AUTOBAHN_FRAMES).sort());
  for (const f of fragmented) {
    assert.equal(fragmentCount(f.length, f.fragmentSize), AUTOBAHN_FRAMES[f.id], f.id);
  }
});

Deno.test("a message filling its last fragment exactly ends with an empty FIN continuation", () => {
  const bytes = encodeMessage(new TextEncoder().encode("abcdef"), {
    opcode: Opcode.Text,
    fragmentSize: 3,
  });
  assert.equal(bytes.toHex(), "0103616263" + "0003646566" + "8000");
});

// ---------------------------------------------------------------------------
// Groups 12 and 13: Autobahn's compression cases (case12_x_x.py)

/** Autobahn's MSG_SIZES: payload length, WAITSECS (the close timer), auto-fragment size (0: none). */
const AUTOBAHN_MSG_SIZES: [size: number, waitSecs: number, autoFragmentSize: number][] = [
  ...[16, 64].map((size): [number, number, number] => [size, 60, 0]),
  [256, 120, 0],
  [1024, 240, 0],
  ...[4096, 8192, 16384, 32768, 65536, 131072].map((s): [number, number, number] => [s, 480, 0]),
  ...[8192, 16384, 32768, 65536, 131072].map((s): [number, number, number] => [s, 480, 256]),
  ...[1024, 4096, 32768].map((f): [number, number, number] => [131072, 480, f]),
];

/** Messages per case, by size: min(100, max(8, ceil(128 KiB / size))), written out. */
const MESSAGE_COUNTS: Record<number, number> = {
  16: 100,
  64: 100,
  256: 100,
  1024: 100,
  4096: 32,
  8192: 16,
  16384: 8,
  32768: 8,
  65536: 8,
  131072: 8,
};

/** Autobahn's PerMessageDeflateOffer(requestNoContextTakeover, requestMaxWindowBits). */
const autobahnOffer = (noContextTakeover = false, maxWindowBits = 0): DeflateOfferSpec => ({
  clientNoContextTakeover: true,
  clientMaxWindowBits: true,
  ...(noContextTakeover ? { serverNoContextTakeover: true } : {}),
  ...(maxWindowBits ? { serverMaxWindowBits: maxWindowBits } : {}),
});
/** Autobahn's accept1 .. accept6: (requestNoContextTakeover, requestMaxWindowBits). */
const autobahnAccept = (noContextTakeover = false, maxWindowBits = 0): DeflateAcceptanceSpec => ({
  ...(noContextTakeover ? { clientNoContextTakeover: true } : {}),
  ...(maxWindowBits ? { clientMaxWindowBits: maxWindowBits } : {}),
});

/** Each subgroup's data set, offers and acceptances, from Autobahn's DEFLATE_PARAMS. */
const COMPRESSION_SUBGROUPS: Record<
  string,
  { data: TestDataName; offers: DeflateOfferSpec[]; accept: DeflateAcceptanceSpec[] }
> = {
  ...Object.fromEntries(
    (["json", "bitmap", "faust", "html", "pdf"] as const).map((data, i) => [
      `12.${i + 1}`,
      { data, offers: [autobahnOffer()], accept: [autobahnAccept()] },
    ]),
  ),
  "13.1": { data: "json", offers: [autobahnOffer()], accept: [autobahnAccept()] },
  "13.2": { data: "json", offers: [autobahnOffer(true)], accept: [autobahnAccept(true)] },
  "13.3": { data: "json", offers: [autobahnOffer(false, 8)], accept: [autobahnAccept(false, 8)] },
  "13.4": { data: "json", offers: [autobahnOffer(false, 15)], accept: [autobahnAccept(false, 15)] },
  "13.5": { data: "json", offers: [autobahnOffer(true, 8)], accept: [autobahnAccept(true, 8)] },
  "13.6": { data: "json", offers: [autobahnOffer(true, 15)], accept: [autobahnAccept(true, 15)] },
  "13.7": {
    data: "json",
    offers: [autobahnOffer(true, 8), autobahnOffer(true), autobahnOffer()],
    accept: [autobahnAccept(true, 8), autobahnAccept(true), autobahnAccept()],
  },
};

/** Byte equality, natively: assert.deepEqual walks 128 KiB payloads one index at a time. */
const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

const compressionGroups = () => GROUPS.filter((g) => g.id === "12" || g.id === "13");

Deno.test("groups 12 and 13: Autobahn's ids, in its order, against servers and clients", () => {
  const groups = compressionGroups();
  assert.deepEqual(groups.map((g) => g.id), ["12", "13"]);
  for (const g of groups) assert.deepEqual(g.peers, ["server", "client"]);
  const subgroups = Object.keys(COMPRESSION_SUBGROUPS);
  assert.deepEqual(groups.flatMap((g) => Object.keys(g.subgroups ?? {})), subgroups);
  const ids = subgroups.flatMap((sub) => AUTOBAHN_MSG_SIZES.map((_, i) => `${sub}.${i + 1}`));
  assert.equal(ids.length, 216);
  assert.deepEqual(groups.flatMap((g) => g.cases.map((c) => c.id)), ids);
});

Deno.test("groups 12 and 13: sizes, fragments, close timers, counts and offers of each case", () => {
  for (const spec of compressionGroups().flatMap((g) => g.cases)) {
    const [group, sub, row] = spec.id.split(".");
    const [size, waitSecs, autoFragmentSize] = AUTOBAHN_MSG_SIZES[Number(row) - 1];
    const { data, offers, accept } = COMPRESSION_SUBGROUPS[`${group}.${sub}`];
    const series = {
      data,
      binary: TEST_DATA_SETS[data].binary,
      size,
      count: MESSAGE_COUNTS[size],
      ...(autoFragmentSize ? { fragmentSize: autoFragmentSize } : {}),
    };
    assert.deepEqual(spec.steps, [
      { kind: "messageRoundTrips", messageRoundTrips: series },
      { kind: "closeAfter", closeAfter: waitSecs },
    ], spec.id);
    assert.deepEqual(spec.deflate, { offers, accept, ifDeclined: "unimplemented" }, spec.id);
    assert.deepEqual(spec.expect.close, { by: "suite", codes: [1000], clean: true }, spec.id);
    assert.ok(spec.deviation?.includes("1000 messages"), spec.id);
  }
});

Deno.test("groups 12 and 13: each expected echo is the message the step sends, as Autobahn cuts it", () => {
  const cache = new PayloadCache();
  for (const spec of compressionGroups().flatMap((g) => g.cases)) {
    const step = spec.steps[0];
    assert.ok(step.kind === "messageRoundTrips");
    const { data, binary, size, count } = step.messageRoundTrips;
    const expected = resolveEvents(spec.expect.ok, cache);
    assert.equal(expected.length, count, spec.id);
    // Autobahn's sendOne: from a pointer that moves on by the size, wrapping around the file.
    const file = testData(data);
    let pointer = 0;
    for (let i = 0; i < count; i++) {
      const sent = cache.resolve(seriesPayload(step.messageRoundTrips, i));
      const to = (pointer + size) % file.length;
      const autobahn = to > pointer
        ? file.subarray(pointer, to)
        : Buffer.concat([file.subarray(pointer), file.subarray(0, to)]);
      pointer = to;
      assert.ok(sameBytes(sent, autobahn), `${spec.id} message ${i}`);
      const echo = expected[i];
      assert.ok(echo.type === "message" && echo.binary === binary, spec.id);
      assert.ok(sameBytes(echo.payload, sent), `${spec.id} echo ${i}`);
    }
  }
});
