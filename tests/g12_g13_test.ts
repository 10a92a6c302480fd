/**
 * Groups 12 and 13 (Autobahn's permessage-deflate cases) end to end, on a
 * sample that covers each data set, fragmented and whole messages, the window
 * bits and context takeover parameters, and several offers: against the strict
 * server with permessage-deflate every echo comes back as sent (OK), also from
 * a server that compresses with less than it may (its own no_context_takeover
 * and a 9-bit window: RFC 7692 §7.1.1.1, §7.1.2.1); a server truncating its
 * echoes past 125 bytes fails exactly the cases whose messages are longer; a
 * server declining permessage-deflate leaves nothing to test (UNIMPLEMENTED,
 * Autobahn's rule). In client mode the strict client, offering
 * permessage-deflate, passes them too.
 *
 *   deno test --allow-all tests/g12_g13_test.ts
 */
import assert from "node:assert/strict";
import type { CaseSpec } from "../harness/case.ts";
import { runAndJudgeCases } from "../harness/suite.ts";
import { GROUPS } from "../fixtures/mod.ts";
import type { StrictServerOptions } from "./peers/strict_server.ts";
import { againstStrictClient, spawnStrictServer } from "./support.ts";

/** [id, what it covers] */
const SAMPLE: [id: string, covers: string][] = [
  ["12.1.1", "JSON text, 100 messages of 16 bytes"],
  ["12.2.11", "the bitmap, compressed data in 256-byte frames"],
  ["12.3.4", "German prose as binary, 100 messages of 1 KiB"],
  ["12.4.16", "HTML text of 128 KiB in 1 KiB frames"],
  ["12.5.10", "the PDF's incompressible streams, 128 KiB messages"],
  ["13.3.5", "8 window bits asked of the peer"],
  ["13.5.18", "no context takeover and 8 window bits, 32 KiB frames"],
  ["13.7.2", "three offers, 100 messages of 64 bytes"],
];
const CASES: CaseSpec[] = SAMPLE.map(([id]) =>
  GROUPS.flatMap((g) => g.cases).find((c) => c.id === id)!
);

/** Each sampled case's behaviour / close verdicts against the strict server with `options`. */
async function verdicts(options: StrictServerOptions): Promise<Record<string, string>> {
  const server = await spawnStrictServer(options);
  try {
    const outcomes = await runAndJudgeCases(CASES, { url: server.url, jobs: 8 });
    return Object.fromEntries(
      outcomes.map((o) => [o.spec.id, `${o.verdict.behavior} / ${o.verdict.behaviorClose}`]),
    );
  } finally {
    await server.close();
  }
}

const every = (verdict: string) => Object.fromEntries(SAMPLE.map(([id]) => [id, verdict]));

Deno.test("groups 12 and 13: every echo comes back as sent from a server with permessage-deflate", async () => {
  assert.deepEqual(await verdicts({ flaws: [], deflate: true }), every("OK / OK"));
});

Deno.test("groups 12 and 13: a server compressing with its own context reset and 9 window bits passes", async () => {
  const deflate = { serverNoContextTakeover: true, serverMaxWindowBits: 9 };
  assert.deepEqual(await verdicts({ flaws: [], deflate }), every("OK / OK"));
});

Deno.test("groups 12 and 13: echoes cut at 125 bytes fail the cases whose messages are longer", async () => {
  const got = await verdicts({ flaws: ["truncate-long-echo"], deflate: true });
  const short = ["12.1.1", "13.7.2"]; // 16 and 64 bytes: echoed whole
  assert.deepEqual(
    got,
    Object.fromEntries(
      SAMPLE.map(([id]) => [id, short.includes(id) ? "OK / OK" : "FAILED / OK"]),
    ),
  );
});

Deno.test("groups 12 and 13: a server declining permessage-deflate gets UNIMPLEMENTED", async () => {
  assert.deepEqual(await verdicts({ flaws: [] }), every("UNIMPLEMENTED / OK"));
});

Deno.test("groups 12 and 13, client mode: the strict client offering permessage-deflate passes", async () => {
  const ids = ["12.1.1", "12.3.4", "13.3.5", "13.7.2"];
  const results = await againstStrictClient(ids, {
    deflateOffer: "permessage-deflate; client_no_context_takeover; client_max_window_bits",
  });
  const got = Object.fromEntries(
    [...results].map(([id, r]) => [id, `${r.verdict.behavior} / ${r.verdict.behaviorClose}`]),
  );
  assert.deepEqual(got, Object.fromEntries(ids.map((id) => [id, "OK / OK"])));
});
