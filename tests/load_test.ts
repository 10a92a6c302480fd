/**
 * A server's verdicts do not depend on the suite: the same cases against the
 * same server give the same verdicts at --jobs 32 and --jobs 1, against a slow
 * single-threaded server and against one that serves a connection at a time,
 * and with a CPU hog running beside them. The cases are the load-sensitive
 * ones: 3.2-3.4, 4.1.3-4 and 4.2.3-5 (a race inside the peer, settled by
 * sending in one write or by taking either outcome as OK), 7.x (1 s close
 * timers), 9.x with 4 MiB messages (long server work beside other cases' 1 s
 * timers) and 9.7/9.8 (1000 round trips). The suite's own CPU work never
 * delays a case's timers: they measure the peer (harness/clock.ts).
 *
 *   deno test --allow-all tests/load_test.ts
 */
import assert from "node:assert/strict";
import { ALL_CASES } from "../fixtures/mod.ts";
import type { CaseSpec } from "../harness/case.ts";
import { peerTimeout } from "../harness/clock.ts";
import { runAndJudgeCase, runAndJudgeCases } from "../harness/suite.ts";
import { type CaseOutcome, isFailing } from "../harness/verdict.ts";
import { spawnStrictServer } from "./support.ts";

const IDS = [
  ["3.2", "3.3", "3.4", "4.1.3", "4.1.4", "4.2.3", "4.2.4", "4.2.5"],
  ["7.1.1", "7.1.2", "7.1.3", "7.1.4", "7.1.5", "7.1.6", "7.3.1", "7.3.3", "7.3.5", "7.5.1"],
  ["9.1.4", "9.2.4", "9.3.9", "9.4.8", "9.7.1", "9.8.1"],
].flat();
const CASES: CaseSpec[] = IDS.map((id) => {
  const spec = ALL_CASES.find((c) => c.id === id);
  assert.ok(spec, `case ${id} exists`);
  return spec;
});

/**
 * The server's work per MiB of message: 4 MiB hold its one thread 1.2 s, past
 * the 1 s a case beside it waits for a close reply.
 */
const BUSY_MS_PER_MIB = 300;

/** Verdicts by case id, as "behavior / behaviorClose". */
function verdicts(outcomes: CaseOutcome[]): Record<string, string> {
  return Object.fromEntries(
    outcomes.map((o) => [o.spec.id, `${o.verdict.behavior} / ${o.verdict.behaviorClose}`]),
  );
}

async function run(url: URL, jobs: number): Promise<Record<string, string>> {
  const outcomes = await runAndJudgeCases(CASES, { url, jobs });
  // A conforming server fails no case; each case's verdict is what the server earns.
  const failing = outcomes.filter((o) => isFailing(o.verdict));
  assert.deepEqual(
    failing.map((o) => `${o.spec.id}: ${o.verdict.result} ${o.verdict.resultClose}`),
    [],
    `jobs ${jobs}: cases failed against a conforming server`,
  );
  return verdicts(outcomes);
}

/** Runs `work` with a process spinning on a CPU beside it. */
async function withCpuHog<T>(work: () => Promise<T>): Promise<T> {
  const hog = new Deno.Command("sh", { args: ["-c", "while :; do :; done"], stdin: "null" })
    .spawn();
  try {
    return await work();
  } finally {
    try {
      Deno.kill(hog.pid, "SIGKILL");
    } catch { /* already gone */ }
    await hog.status;
  }
}

Deno.test("load: a slow single-threaded server gets the same verdicts at --jobs 32, --jobs 1 and beside a CPU hog", async () => {
  const server = await spawnStrictServer({ busyMsPerMiB: BUSY_MS_PER_MIB });
  try {
    const parallel = await run(server.url, 32);
    assert.deepEqual(await run(server.url, 1), parallel, "--jobs 1 against --jobs 32");
    await withCpuHog(async () => {
      for (const attempt of [1, 2]) {
        assert.deepEqual(await run(server.url, 32), parallel, `with a CPU hog, run ${attempt}`);
      }
    });
  } finally {
    await server.close();
  }
});

Deno.test("load: a server serving one connection at a time gets the same verdicts at --jobs 32 and --jobs 1", async () => {
  const server = await spawnStrictServer({
    // Slower still: the cases queued behind 4 MiB messages wait past the 5 s handshake bound.
    busyMsPerMiB: 2 * BUSY_MS_PER_MIB,
    serial: true,
  });
  try {
    const parallel = await run(server.url, 32);
    assert.deepEqual(await run(server.url, 1), parallel, "--jobs 1 against --jobs 32");
  } finally {
    await server.close();
  }
});

Deno.test("load: consecutive steps with no delivery option leave in one write (3.2, 4.1.3, 4.2.3)", async () => {
  const server = await spawnStrictServer({});
  try {
    for (const id of ["3.2", "4.1.3", "4.2.3"]) {
      const spec = CASES.find((c) => c.id === id)!;
      const run = await runAndJudgeCase(spec, { url: server.url });
      const writes = run.wire.entries.flatMap((e) =>
        e.kind === "bytes" && e.dir === "tx" ? [e] : []
      );
      const frames = run.wire.entries.flatMap((e) =>
        e.kind === "frame" && e.dir === "tx" ? [e] : []
      );
      // The text message, the frame with the bad RSV or opcode, and the ping: masked,
      // each with a 2-byte header, a 4-byte key and a short payload.
      const stepBytes = frames.slice(0, 3).reduce((sum, f) => sum + 6 + Number(f.length), 0);
      assert.equal(frames.length >= 3, true, `${id}: ${frames.length} frames sent`);
      assert.equal(writes[1].length, stepBytes, `${id}: the first write after the request`);
    }
  } finally {
    await server.close();
  }
});

Deno.test("load: a peer timer does not count the time the suite's event loop was blocked", async () => {
  let fired = false;
  const timer = peerTimeout(100, () => (fired = true));
  try {
    // The suite's own work (masking 16 MiB, comparing an echo) holds the loop 300 ms.
    const until = performance.now() + 300;
    while (performance.now() < until) { /* busy */ }
    // A wall-clock timer of 100 ms would fire in this turn; the peer has had none of it.
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(fired, false);
    // It still fires, once the peer has had its 100 ms.
    for (let waited = 0; !fired && waited < 5000; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(fired, true);
  } finally {
    timer.cancel();
  }
});
