/**
 * The runner's scheduling: job slots, and what a target that never answers
 * the handshake costs.
 *
 *   deno test --allow-net tests/runner_test.ts
 */
import assert from "node:assert/strict";
import { runCases } from "../harness/runner.ts";
import { group } from "../fixtures/g01_framing.ts";

/** A server that accepts TCP and never answers; it counts the connections open at once. */
function silentServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let peak = 0;
  (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      peak = Math.max(peak, conns.size);
      conn.readable.pipeTo(new WritableStream()).catch(() => {}).finally(() => conns.delete(conn));
    }
  })().catch(() => {});
  return {
    url: `ws://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/`,
    peak: () => peak,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

Deno.test("runner: cases stalled in the handshake give up their job slot, within a bound", async () => {
  const server = silentServer();
  const cases = group.cases.slice(0, 4);
  try {
    const outcomes = await runCases(cases, {
      url: new URL(server.url),
      jobs: 1,
      openTimeoutMs: 1500,
    });
    // With one job, a case waits its whole handshake timeout only while it holds the slot;
    // after a second without an answer the next case starts beside it.
    assert.ok(server.peak() > 1, `at most ${server.peak()} connection(s) at once`);
    assert.ok(server.peak() <= 1 + 4, `${server.peak()} connections at once, over the bound`);
    for (const o of outcomes) {
      assert.deepEqual([o.verdict.behavior, o.verdict.behaviorClose], ["FAILED", "FAILED"]);
      assert.match(o.verdict.result, /did not complete in time/);
    }
  } finally {
    server.close();
  }
});
