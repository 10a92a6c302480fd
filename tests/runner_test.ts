/**
 * The runner's scheduling: job slots, what a target that never answers the
 * handshake costs, heavy cases run alone, and a target that falls behind gets
 * fewer connections, not more.
 *
 *   deno test --allow-net tests/runner_test.ts
 */
import assert from "node:assert/strict";
import { ALL_CASES } from "../fixtures/mod.ts";
import { group } from "../fixtures/g01_framing.ts";
import type { CaseSpec } from "../harness/case.ts";
import { deserialize, serialize } from "node:v8";
import type { Observation } from "../harness/observation.ts";
import { runCases } from "../harness/runner.ts";
import type { CaseRun } from "../harness/session.ts";
import { runAndJudgeCases } from "../harness/suite.ts";
import { isFailing, judgeCase } from "../harness/verdict.ts";
import { startStrictServer } from "./peers/strict_server.ts";

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
    const outcomes = await runAndJudgeCases(cases, {
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

/** Cases by id. */
function cases(...ids: string[]): CaseSpec[] {
  return ids.map((id) => {
    const spec = ALL_CASES.find((c) => c.id === id);
    assert.ok(spec, `case ${id} exists`);
    return spec;
  });
}

Deno.test("runner: a heavy case connects only once it may run, and runs beside no other case", async () => {
  const server = startStrictServer();
  // Three cases of 1 MiB or more, and light ones to run beside each other.
  const heavy = ["9.1.3", "9.2.3", "9.5.6"];
  const spans = new Map<string, { from: number; to: number }>();
  try {
    const outcomes = await runAndJudgeCases(cases(...heavy, "1.1.1", "1.1.2", "2.1", "9.7.1"), {
      url: new URL(server.url),
      jobs: 32,
      // A case's span runs from the start of its run (before it connects) to its end.
      onCaseDone: (run) =>
        void spans.set(run.spec.id, { from: Date.parse(run.started), to: Date.now() }),
    });
    for (const o of outcomes) assert.equal(isFailing(o.verdict), false, o.spec.id);
    for (const id of heavy) {
      const { from, to } = spans.get(id)!;
      const beside = [...spans].filter(([other, span]) =>
        other !== id && span.from < to && from < span.to
      );
      assert.deepEqual(beside.map(([other]) => other), [], `${id} ran beside other cases`);
    }
  } finally {
    await server.close();
  }
});

Deno.test("runner: a handshake that timed out while the target served other cases runs again, at lower concurrency", async () => {
  // One connection at a time: a case waits for the one before it, which waits 1 s.
  const server = startStrictServer({ serial: true });
  const slow = cases("1.1.1", "1.1.2", "1.1.3", "1.2.1").map((spec): CaseSpec => ({
    ...spec,
    steps: [{ kind: "wait", wait: 1 }, ...spec.steps],
  }));
  try {
    const alone = await runAndJudgeCases(slow, {
      url: new URL(server.url),
      jobs: 1,
      openTimeoutMs: 500,
    });
    const parallel = await runAndJudgeCases(slow, {
      url: new URL(server.url),
      jobs: 4,
      openTimeoutMs: 500,
    });
    const verdicts = (outcomes: typeof alone) =>
      outcomes.map((o) => [o.spec.id, o.verdict.behavior, o.verdict.behaviorClose]);
    assert.deepEqual(verdicts(parallel), verdicts(alone));
    for (const o of parallel) assert.equal(isFailing(o.verdict), false, o.spec.id);
  } finally {
    await server.close();
  }
});

Deno.test("runner: onCaseDone's results come back; a saved observation is judged again to the same verdict", async () => {
  // no-pong breaks 2.x (a MUST): the rejudged verdicts must show the failure too.
  const server = startStrictServer({ flaws: ["no-pong"] });
  const ids = ["1.1.1", "2.2", "2.3", "7.1.1"];
  try {
    const saved = await runCases(ALL_CASES.filter((c) => ids.includes(c.id)), {
      url: new URL(server.url),
      jobs: 4,
      // What a caller keeps: the verdict of the moment, and the observation as bytes.
      onCaseDone: (run) => {
        const observation: Observation = {
          expected: run.expected,
          received: run.received,
          close: run.close,
          handshake: run.handshake,
          violations: run.violations,
          timeline: run.timeline,
          peerDropTimeoutMs: run.peerDropTimeoutMs,
        };
        return { spec: run.spec, judged: judgeCase(run.spec, run), bytes: serialize(observation) };
      },
    });
    assert.deepEqual(saved.map((s) => s.spec.id), ids, "results in the order of the cases");
    for (const { spec, judged, bytes } of saved) {
      assert.deepEqual(judgeCase(spec, deserialize(bytes)), judged, spec.id);
    }
    const failing = saved.filter((s) => isFailing(s.judged.verdict)).map((s) => s.spec.id);
    assert.deepEqual(failing, ["2.2", "2.3"]);
  } finally {
    await server.close();
  }
});

Deno.test("runner: permessage-deflate cases count their zlib state and wire log against the memory budget", async () => {
  // 12.1.1 sends 16-byte messages: by its payload alone it would run at every job slot.
  const spec = ALL_CASES.find((c) => c.id === "12.1.1")!;
  const plain: CaseSpec = { ...spec, deflate: undefined };
  const peakOf = async (c: CaseSpec, echoes?: { text: boolean; binary: boolean }) => {
    let inFlight = 0, peak = 0;
    await runCases(Array.from({ length: 40 }, (_, i) => ({ ...c, id: `${c.id}.${i}` })), {
      url: new URL("ws://127.0.0.1:1/"),
      jobs: 32,
      echoes,
      runOne: async (s) => {
        peak = Math.max(peak, ++inFlight);
        await new Promise((resolve) => setTimeout(resolve, 20));
        inFlight--;
        return { spec: s, close: { opened: false, openHandshakeTimeout: false } } as CaseRun;
      },
      onCaseDone: () => undefined,
    });
    return peak;
  };
  assert.equal(await peakOf(plain), 32);
  const deflating = await peakOf(spec);
  assert.ok(deflating > 1 && deflating <= 16, `${deflating} deflate cases at once`);
  // A target known not to echo exchanges no compressed traffic: every job slot is used.
  assert.equal(await peakOf(spec, { text: false, binary: false }), 32);
});
