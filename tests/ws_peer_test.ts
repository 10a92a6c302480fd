/**
 * Fidelity against a real third-party server, node's `ws` 8.23.0, where
 * Autobahn|Testsuite's verdicts are known: `ws` refuses a message of more
 * than 16384 fragments (its maxFragments default), so Autobahn's 9.3.1,
 * 9.3.2 and 9.4.2 fail there (65537 and 16385 frames) while 9.3.3 (4097
 * frames) passes. `.ci/run` installs `ws` and names its folder in
 * WS_PEER_DIR; without it the test is skipped.
 *
 *   WS_PEER_DIR=~/.cache/wsconform/ws-8.23.0 deno test --allow-all tests/ws_peer_test.ts
 */
import assert from "node:assert/strict";
import { ALL_CASES } from "../fixtures/mod.ts";
import { runAndJudgeCases } from "../harness/suite.ts";
import { startWsEcho, wsPeerDir } from "./peers/ws_echo.ts";

const installed = wsPeerDir() !== undefined;

Deno.test({
  name: "ws 8.23.0: the fragment-count limit fails the cases Autobahn fails there",
  ignore: !installed,
  async fn() {
    const server = await startWsEcho();
    try {
      const cases = ALL_CASES.filter((c) => ["9.3.1", "9.3.2", "9.3.3", "9.4.2"].includes(c.id));
      const outcomes = await runAndJudgeCases(cases, { url: new URL(server.url), jobs: 4 });
      const behavior = Object.fromEntries(outcomes.map((o) => [o.spec.id, o.verdict.behavior]));
      assert.deepEqual(behavior, {
        "9.3.1": "FAILED",
        "9.3.2": "FAILED",
        "9.3.3": "OK",
        "9.4.2": "FAILED",
      });
      // ws says why: 1008, policy violation (too many fragments).
      for (const o of outcomes.filter((o) => o.verdict.behavior === "FAILED")) {
        assert.equal(o.remoteCloseCode, 1008, o.spec.id);
      }
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "ws 8.23.0 with permessage-deflate: Autobahn's compression cases pass, each parameter set",
  ignore: !installed,
  async fn() {
    const server = await startWsEcho({ deflate: true });
    try {
      // One case of each offer and each data set, small and large, fragmented or not.
      const ids = ["12.1.1", "12.2.5", "12.3.10", "12.4.11", "12.5.3", "13.1.2", "13.2.6"]
        .concat(["13.3.4", "13.4.12", "13.5.1", "13.6.9", "13.7.18"]);
      const cases = ALL_CASES.filter((c) => ids.includes(c.id));
      assert.equal(cases.length, ids.length);
      const outcomes = await runAndJudgeCases(cases, { url: new URL(server.url), jobs: 4 });
      for (const o of outcomes) {
        assert.equal(o.verdict.behavior, "OK", `${o.spec.id}: ${o.verdict.result}`);
        assert.equal(o.verdict.behaviorClose, "OK", `${o.spec.id}: ${o.verdict.resultClose}`);
      }
    } finally {
      await server.close();
    }
  },
});
