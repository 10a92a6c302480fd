/**
 * The embedded target, Deno's own server (Deno.serve + Deno.upgradeWebSocket),
 * through the whole suite. Its verdicts are recorded as they are (README,
 * "Deno 2.9.6's scores"); the cases are not tuned to it.
 */
import assert from "node:assert/strict";
import { SERVER_CASES } from "../fixtures/mod.ts";
import { spawnReference } from "../harness/reference_server.ts";
import { runAndJudgeCases } from "../harness/suite.ts";

Deno.test("Deno's server runs through every case and deviates as documented", async () => {
  const server = await spawnReference();
  try {
    const outcomes = await runAndJudgeCases(SERVER_CASES, { url: new URL(server.url), jobs: 32 });
    assert.equal(outcomes.length, SERVER_CASES.length);
    const byId = new Map(outcomes.map((o) => [o.spec.id, o]));
    for (const c of SERVER_CASES) {
      const o = byId.get(c.id);
      assert.ok(o?.verdict.behavior && o.verdict.behaviorClose, `${c.id} has no verdict`);
      assert.doesNotMatch(o.verdict.result, /internal error/, c.id);
    }
    // Deno drops TCP without a close frame when a client breaks the framing rules:
    // the peer-fails cases of groups 3 and 4 never see a close code.
    for (const id of ["3.1", "3.2", "4.1.1", "4.2.1"]) {
      assert.equal(byId.get(id)!.remoteCloseCode, undefined, id);
    }
    // It answers the reserved close codes of 7.9 with 1002, the code §10.7 recommends
    // (a SHOULD: no MUST makes the receiver fail on them).
    for (const o of outcomes.filter((o) => o.spec.id.startsWith("7.9."))) {
      assert.equal(o.remoteCloseCode, 1002, o.spec.id);
    }
  } finally {
    await server.close();
  }
});
