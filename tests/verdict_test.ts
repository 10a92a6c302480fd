/**
 * Verdict rules beyond Autobahn's (harness/verdict.ts): requirement levels,
 * refusals part-way, and cases that never opened. Pure: no sockets.
 *
 *   deno test tests/verdict_test.ts
 */
import assert from "node:assert/strict";
import type { Expectation } from "../harness/case.ts";
import type { ObservedEvent } from "../harness/payload.ts";
import { type CloseObservation, judge } from "../harness/verdict.ts";
import { closeObservation, textMessage } from "./support.ts";

Deno.test("refusal: a peer stopping part-way is judged by its close code, at the refusal's level", () => {
  const expect: Expectation = {
    ok: [],
    close: { by: "suite", codes: [1000], clean: true },
    level: "may",
    refusal: { codes: [1009], level: "should" },
  };
  const ok = [textMessage(1), textMessage(2), textMessage(3)];
  const peerClosed = (code: number | undefined) =>
    closeObservation({ closedBySuite: false, remoteCloseCode: code });
  const run = (received: ObservedEvent[], close: CloseObservation) =>
    judge({ expect }, { ok }, { received, close });

  const refused = run([textMessage(1)], peerClosed(1009));
  assert.deepEqual([refused.behavior, refused.behaviorClose], ["INFORMATIONAL", "INFORMATIONAL"]);
  assert.match(refused.result, /refused to go on after 1 of the 3 expected events/);
  assert.equal(run([textMessage(1)], peerClosed(undefined)).behavior, "INFORMATIONAL");

  const wrong = run([textMessage(1)], peerClosed(1002));
  assert.deepEqual([wrong.behavior, wrong.behaviorClose], ["NON-STRICT", "INFORMATIONAL"]);
  assert.equal(wrong.matched, undefined);
  assert.match(wrong.result, /a refusal calls for 1009/);

  // A wrong echo before the close is no refusal: the events differ.
  const garbled = run([textMessage(5)], peerClosed(1009));
  assert.equal(garbled.behavior, "INFORMATIONAL");
  assert.doesNotMatch(garbled.result, /refused/);
  // Without a refusal clause, the same close is the peer closing where the suite was to.
  const strict = judge({ expect: { ...expect, refusal: undefined, level: "must" } }, { ok }, {
    received: [textMessage(1)],
    close: peerClosed(1009),
  });
  assert.deepEqual([strict.behavior, strict.behaviorClose], ["FAILED", "FAILED"]);
});

Deno.test("a case that never opened is FAILED whatever its level, unless the handshake is its subject", () => {
  const neverOpened = {
    received: [],
    close: closeObservation({ opened: false, openHandshakeTimeout: true }),
  };
  for (const level of ["must", "should", "may"] as const) {
    const expect: Expectation = {
      ok: [],
      close: { by: "suite", codes: [1000], clean: true },
      level,
    };
    const v = judge({ expect }, { ok: [] }, neverOpened);
    assert.deepEqual([v.behavior, v.behaviorClose], ["FAILED", "FAILED"], level);
    assert.match(v.result, /opening handshake did not complete in time/);
    // A case about the handshake itself: its level weighs the failure.
    const about = judge(
      { expect, handshake: { request: {}, expect: { outcome: "accept" } } },
      { ok: [] },
      neverOpened,
    );
    const expected = { must: "FAILED", should: "NON-STRICT", may: "INFORMATIONAL" }[level];
    assert.equal(about.behavior, expected, level);
  }
});
