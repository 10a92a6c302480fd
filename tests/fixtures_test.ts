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
import { encodeMessage, fragmentCount, Opcode } from "../harness/frame.ts";
import { payloadLength } from "../harness/payload.ts";
import { ALL_CASES } from "../fixtures/mod.ts";

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
