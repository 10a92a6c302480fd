/**
 * Client mode is bounded whatever stage a client hangs at (issue 9): a client
 * that never connects, or connects and sends no request, is one line and exit
 * 2 before any case (the probe, as an unreachable server is); one that never
 * echoes, or never closes, has every case judged. tests/peers/hanging_client.ts
 * plays each stage. The outcome is asserted, never a time: `deno task bench`
 * measures the time of the full runs.
 *
 *   deno test --allow-all tests/client_bounds_test.ts
 */
import assert from "node:assert/strict";
import { CLIENT_CASES } from "../fixtures/mod.ts";
import type { IndexJson } from "../harness/report.ts";
import { casePattern, runSuite, SuiteError } from "../harness/suite.ts";
import type { Stage } from "./peers/hanging_client.ts";
import { runCli, withTempDir } from "./support.ts";

const HANGING_CLIENT = new URL("./peers/hanging_client.ts", import.meta.url).pathname;
const STRICT_CLIENT = new URL("./peers/strict_client.ts", import.meta.url).pathname;

const hanging = (stage: Stage) => `deno run --allow-net ${HANGING_CLIENT} {url} --stage ${stage}`;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

for (
  const [what, command, line] of [
    [
      "never connects",
      hanging("never"),
      /^wsconform: the client never connected: the client did not connect within 15000 ms$/,
    ],
    [
      "connects TCP and never sends its request",
      hanging("silent"),
      new RegExp(
        "^wsconform: the client never connected: the client did not connect within 15000 ms " +
          "\\(it opened 1 TCP connection\\(s\\) but sent no request in time\\)$",
      ),
    ],
    [
      "exits at once",
      `deno eval "Deno.exit(3)" {url}`,
      /^wsconform: the client never connected: the client ended before it connected: exit code 3$/,
    ],
  ] as const
) {
  Deno.test(`client bounds: a client that ${what} is one line and exit 2, no case run`, async () => {
    await withTempDir(async (dir) => {
      const run = await runCli(["--client", command, "--out", dir, "--jobs", "32"]);
      assert.equal(run.code, 2, run.stdout + run.stderr);
      assert.equal(run.stderrCalls.length, 1, run.stderr);
      assert.match(run.stderr, line);
      assert.equal(await exists(`${dir}/index.json`), false);
    });
  });
}

Deno.test("client bounds: runSuite throws an unreachable SuiteError naming why the client never came", async () => {
  const clients: [string, number, RegExp][] = [
    [
      `deno eval "await new Promise((r) => setTimeout(r, 30000))" {url}`,
      500,
      /^the client never connected: the client did not connect within 500 ms$/,
    ],
    [
      `deno eval "Deno.exit(3)" {url}`,
      30_000,
      /^the client never connected: the client ended before it connected: exit code 3$/,
    ],
  ];
  for (const [command, connectTimeoutMs, message] of clients) {
    let started = false;
    await assert.rejects(
      runSuite({ client: { command, connectTimeoutMs }, onStart: () => void (started = true) }),
      (e) => e instanceof SuiteError && e.reason === "unreachable" && message.test(e.message),
    );
    assert.equal(started, false, command);
  }
});

/** The cases of these groups, as `--cases` takes them: echoes large and small, pings, close. */
const SELECTION = ["1.1", "1.2", "2.1", "5.1", "7.1", "9.1", "9.3"];
const selected = CLIENT_CASES.filter((c) => SELECTION.some((p) => casePattern(p)(c.id)));

Deno.test("client bounds: the probe finds that a correct client echoes both types", async () => {
  await withTempDir(async (dir) => {
    const result = await runSuite({
      client: { command: `deno run --allow-net ${STRICT_CLIENT} {url}` },
      cases: selected.filter((c) => c.id.startsWith("1.1.")),
      reports: { dir },
    });
    assert.deepEqual(result.echoes, { text: true, binary: true });
    assert.ok(result.outcomes.every((o) => o.verdict.behavior === "OK"));
    // It answered the probe's close: its cases wait the full second for each answer.
    const report = await Deno.readTextFile(`${dir}/deno_case_1_1_1.json`);
    assert.doesNotMatch(report, /close unanswered/);
  });
});

for (const stage of ["no-echo", "no-close"] as const) {
  Deno.test(`client bounds: a client that hangs at ${stage} has every case judged`, async () => {
    await withTempDir(async (dir) => {
      const run = await runCli(
        ["--client", hanging(stage), "--cases", SELECTION.join(","), "--out", dir],
      );
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.doesNotMatch(run.stdout, /not run/);
      const index: IndexJson = JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
      const results = index.deno;
      assert.deepEqual(Object.keys(results).sort(), selected.map((c) => c.id).sort());
      if (stage === "no-echo") {
        assert.match(run.stderr, /does not echo messages/);
        // A 16 MiB message the client never reads: the suite gave up its echo, not its write.
        const report = await Deno.readTextFile(`${dir}/deno_case_9_1_6.json`);
        assert.match(report, /the echo is not coming/);
        for (const id of ["1.1.1", "9.1.6", "9.3.9"]) assert.equal(results[id].behavior, "FAILED");
      } else {
        // Every echo came back: the cases fail on the close the client never answered.
        assert.equal(run.stderr, "");
        assert.equal(results["1.1.1"].behavior, "OK");
        assert.equal(results["1.1.1"].behaviorClose, "UNCLEAN");
        const report = await Deno.readTextFile(`${dir}/deno_case_1_1_1.json`);
        assert.match(report, /the client left the probe's close unanswered: 250 ms/);
      }
    });
  });
}
