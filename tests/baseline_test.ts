import { runCli } from "./support.ts";
/**
 * Baselines: the order of verdicts, what counts as worse, the file format, and
 * --baseline / --write-baseline through the command line.
 */

import assert from "node:assert/strict";
import {
  type Baseline,
  BaselineError,
  baselinePath,
  compareEntry,
  compareToBaseline,
  formatBaseline,
  makeBaseline,
  parseBaseline,
} from "../harness/baseline.ts";
import {
  type Behavior,
  behaviorFails,
  BEHAVIORS,
  CLOSE_BEHAVIORS as CLOSES,
  type CloseBehavior,
  closeFails,
  isFailing,
} from "../harness/verdict.ts";
import { startStrictServer } from "./peers/strict_server.ts";

const e = (behavior: Behavior, behaviorClose: CloseBehavior) => ({ behavior, behaviorClose });

Deno.test("the one failure rule: each half, and isFailing as their union", () => {
  assert.deepEqual(BEHAVIORS.filter((b) => behaviorFails(b)), ["FAILED"]);
  assert.deepEqual(BEHAVIORS.filter((b) => behaviorFails(b, true)), ["NON-STRICT", "FAILED"]);
  assert.deepEqual(CLOSES.filter(closeFails), ["UNCLEAN", "WRONG CODE", "FAILED"]);
  for (const b of BEHAVIORS) {
    for (const cl of CLOSES) {
      const pair = e(b, cl);
      assert.equal(isFailing(pair), b === "FAILED" || closeFails(cl), `${b}/${cl}`);
      assert.equal(isFailing(pair, true), isFailing(pair) || b === "NON-STRICT", `${b}/${cl}`);
    }
  }
});

Deno.test("baseline: compareEntry", async (t) => {
  const cases: [string, ReturnType<typeof e> | undefined, ReturnType<typeof e>, string, string?][] =
    [
      ["same", e("OK", "OK"), e("OK", "OK"), "unchanged"],
      ["OK -> FAILED", e("OK", "OK"), e("FAILED", "OK"), "regressed"],
      ["close OK -> UNCLEAN", e("OK", "OK"), e("OK", "UNCLEAN"), "regressed"],
      [
        "close FAILED BY CLIENT -> WRONG CODE",
        e("OK", "FAILED BY CLIENT"),
        e("OK", "WRONG CODE"),
        "regressed",
      ],
      // Already failing by its close; now its behaviour fails too: worse.
      ["failing case fails one more way", e("OK", "UNCLEAN"), e("FAILED", "UNCLEAN"), "regressed"],
      // Within the failing band of one scale: no verdict crossed the line.
      ["UNCLEAN -> FAILED", e("OK", "UNCLEAN"), e("OK", "FAILED"), "changed"],
      ["NON-STRICT -> FAILED", e("NON-STRICT", "OK"), e("FAILED", "OK"), "regressed"],
      ["OK -> NON-STRICT", e("OK", "OK"), e("NON-STRICT", "OK"), "changed"],
      ["OK -> NON-STRICT, strict", e("OK", "OK"), e("NON-STRICT", "OK"), "regressed", "strict"],
      ["NON-STRICT -> OK, strict", e("NON-STRICT", "OK"), e("OK", "OK"), "improved", "strict"],
      ["NON-STRICT -> OK", e("NON-STRICT", "OK"), e("OK", "OK"), "changed"],
      ["OK -> INFORMATIONAL", e("OK", "OK"), e("INFORMATIONAL", "INFORMATIONAL"), "changed"],
      ["OK -> FAILED BY CLIENT", e("OK", "OK"), e("OK", "FAILED BY CLIENT"), "changed"],
      ["FAILED -> OK", e("FAILED", "FAILED"), e("OK", "OK"), "improved"],
      ["FAILED -> NON-STRICT", e("FAILED", "OK"), e("NON-STRICT", "OK"), "improved"],
      // One verdict better, the other worse: a regression.
      ["mixed", e("FAILED", "OK"), e("OK", "UNCLEAN"), "regressed"],
      ["new, passing", undefined, e("OK", "OK"), "new"],
      ["new, NON-STRICT", undefined, e("NON-STRICT", "OK"), "new"],
      ["new, NON-STRICT, strict", undefined, e("NON-STRICT", "OK"), "regressed", "strict"],
      ["new, failing", undefined, e("OK", "WRONG CODE"), "regressed"],
    ];
  for (const [name, before, after, expected, strict] of cases) {
    await t.step(name, () => {
      assert.equal(compareEntry(before, after, strict === "strict"), expected);
    });
  }
  await t.step("a case is worse exactly when a verdict crosses the line upwards", () => {
    for (const b0 of BEHAVIORS) {
      for (const c0 of CLOSES) {
        for (const b1 of BEHAVIORS) {
          for (const c1 of CLOSES) {
            for (const strict of [false, true]) {
              const change = compareEntry(e(b0, c0), e(b1, c1), strict);
              const up = (!behaviorFails(b0, strict) && behaviorFails(b1, strict)) ||
                (!closeFails(c0) && closeFails(c1));
              assert.equal(change === "regressed", up, `${b0}/${c0} -> ${b1}/${c1} ${strict}`);
              // A passing case that now fails is always a regression.
              if (!isFailing(e(b0, c0), strict) && isFailing(e(b1, c1), strict)) {
                assert.equal(change, "regressed");
              }
            }
          }
        }
      }
    }
  });
});

Deno.test("baseline: compareToBaseline sorts changes into lists", () => {
  const baseline = {
    cases: {
      "1.1.1": e("OK", "OK"),
      "1.1.2": e("OK", "OK"),
      "2.1": e("FAILED", "OK"),
      "6.4.1": e("OK", "OK"),
      "9.1.1": e("OK", "OK"),
    },
  };
  const run = {
    "1.1.2": e("OK", "OK"),
    "2.10": e("FAILED", "OK"),
    "1.1.1": e("OK", "UNCLEAN"),
    "2.1": e("OK", "OK"),
    "6.4.1": e("NON-STRICT", "OK"),
    "2.2": e("OK", "OK"),
  };
  const cmp = compareToBaseline(baseline, run);
  assert.deepEqual(cmp.regressions.map((c) => c.id), ["1.1.1", "2.10"]);
  assert.equal(cmp.regressions[1].before, undefined);
  assert.deepEqual(cmp.improvements, [{
    id: "2.1",
    before: e("FAILED", "OK"),
    after: e("OK", "OK"),
  }]);
  assert.deepEqual(cmp.changed.map((c) => c.id), ["6.4.1"]);
  assert.deepEqual(cmp.added.map((c) => c.id), ["2.2"]);
  assert.equal(cmp.unchanged, 1);
  assert.deepEqual(cmp.notRun, ["9.1.1"]);
  const strict = compareToBaseline(baseline, run, true);
  assert.deepEqual(strict.regressions.map((c) => c.id), ["1.1.1", "2.10", "6.4.1"]);
});

Deno.test("baseline: the file is stable, sorted JSON and reads back", () => {
  const outcomes = ["9.1.1", "1.1.10", "1.1.2", "2.1"].map((id) => ({
    spec: { id },
    verdict: { ...e(id === "2.1" ? "FAILED" : "OK", "OK"), result: "x", resultClose: "y" },
  }));
  const baseline = makeBaseline("Agent/1.0", outcomes);
  const text = formatBaseline(baseline);
  assert.equal(
    text,
    `{
  "version": 1,
  "agent": "Agent/1.0",
  "cases": {
    "1.1.2": {"behavior": "OK", "behaviorClose": "OK"},
    "1.1.10": {"behavior": "OK", "behaviorClose": "OK"},
    "2.1": {"behavior": "FAILED", "behaviorClose": "OK"},
    "9.1.1": {"behavior": "OK", "behaviorClose": "OK"}
  }
}
`,
  );
  assert.deepEqual(JSON.parse(text), {
    version: 1,
    agent: "Agent/1.0",
    cases: {
      "1.1.2": e("OK", "OK"),
      "1.1.10": e("OK", "OK"),
      "2.1": e("FAILED", "OK"),
      "9.1.1": e("OK", "OK"),
    },
  });
  assert.deepEqual(Object.keys(JSON.parse(text).cases), ["1.1.2", "1.1.10", "2.1", "9.1.1"]);
  const empty = formatBaseline({ version: 1, agent: 'a "quoted" one', cases: {} });
  assert.deepEqual(JSON.parse(empty), { version: 1, agent: 'a "quoted" one', cases: {} });
  // Only the two verdicts are kept; the same run in any order gives the same bytes.
  assert.equal(formatBaseline(makeBaseline("Agent/1.0", [...outcomes].reverse())), text);
  const back: Baseline = parseBaseline(text);
  assert.deepEqual(back, baseline);
  assert.equal(formatBaseline(back), text);
});

Deno.test("baseline: broken files are rejected with a reason", () => {
  const bad: [string, RegExp][] = [
    ["{", /not valid JSON/],
    ["[]", /JSON object/],
    [`{"version": 2, "agent": "a", "cases": {}}`, /unsupported version 2/],
    [`{"version": 1, "cases": {}}`, /"agent"/],
    [`{"version": 1, "agent": "a", "cases": []}`, /"cases"/],
    [`{"version": 1, "agent": "a", "cases": {"x": {}}}`, /not a case id/],
    [`{"version": 1, "agent": "a", "cases": {"1.1": {"behavior": "GOOD"}}}`, /case 1\.1/],
    [
      `{"version": 1, "agent": "a", "cases": {"1.1": {"behavior": "OK", "behaviorClose": "MEH"}}}`,
      /case 1\.1/,
    ],
  ];
  for (const [text, message] of bad) {
    assert.throws(() => parseBaseline(text, "b.json"), (err: Error) => {
      assert.ok(err instanceof BaselineError);
      assert.match(err.message, /^b\.json: /);
      assert.match(err.message, message);
      return true;
    });
  }
});

Deno.test("baseline: {agent} in a path", () => {
  assert.equal(baselinePath("b/{agent}.json", "My Server/1.0"), "b/my_server_1_0.json");
  assert.equal(baselinePath("b.json", "x"), "b.json");
  assert.equal(baselinePath("{agent}", "!!!"), "agent");
});

// --- through the command line -------------------------------------------------

/** The lines listed under a heading ("regressions (2):") up to the next unindented line. */
function listed(stdout: string, heading: string): string[] {
  const lines = stdout.split("\n");
  const start = lines.findIndex((l) => l.startsWith(`${heading} (`));
  if (start < 0) return [];
  const out: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (!l.startsWith("  ")) break;
    out.push(l.trim());
  }
  return out;
}

Deno.test("baseline: --write-baseline, then --baseline gates on regressions only", async (t) => {
  const good = startStrictServer();
  const flawed = startStrictServer({ flaws: ["no-pong"] });
  const dir = await Deno.makeTempDir({ prefix: "wsconform_baseline_test_" });
  const file = `${dir}/base/strict.json`;
  const cases = ["--cases", "1.1.1,2.*", "--out", `${dir}/reports`];
  try {
    await t.step("a run against the strict server writes the baseline", async () => {
      const result = await runCli([good.url, ...cases, "--write-baseline", file]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, new RegExp(`baseline written: ${file}\n`));
      const baseline = parseBaseline(await Deno.readTextFile(file));
      assert.equal(baseline.agent, "wsconform-strict");
      assert.deepEqual(Object.keys(baseline.cases), [
        "1.1.1",
        ...Array.from({ length: 11 }, (_, i) => `2.${i + 1}`),
      ]);
      assert.ok(Object.values(baseline.cases).every((v) => v.behavior === "OK"));
    });

    await t.step("the same run with --baseline exits 0", async () => {
      const result = await runCli([good.url, ...cases, "--baseline", file]);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /: 0 regressed, 0 improved, .* 12 unchanged/);
      assert.match(result.stdout, /\nregressions: none\n/);
      assert.match(result.stdout, /\nimprovements: none\n/);
    });

    await t.step("a server that stopped answering pings regresses: exit 1, 2.1 named", async () => {
      const result = await runCli([flawed.url, ...cases, "--baseline", file]);
      assert.equal(result.code, 1, result.stdout + result.stderr);
      const regressions = listed(result.stdout, "regressions");
      assert.ok(
        regressions.some((l) => l.startsWith("2.1 Ping without payload: OK/OK -> FAILED/")),
      );
      assert.deepEqual(regressions.map((l) => l.split(" ")[0]), [
        "2.1",
        "2.2",
        "2.3",
        "2.4",
        "2.6",
        "2.9",
        "2.10",
        "2.11",
      ]);
      assert.match(result.stdout, /\nimprovements: none\n/);
    });

    const known = `${dir}/base/known.json`;
    await t.step("known failures in the baseline do not fail the run", async () => {
      // Write the flawed server's baseline while comparing with the good one.
      const first = await runCli([flawed.url, ...cases, "--write-baseline", known]);
      assert.equal(first.code, 1);
      const again = await runCli([flawed.url, ...cases, "--baseline", known]);
      assert.equal(again.code, 0, again.stdout);
      assert.match(again.stdout, /8 failed/, "the failures are still reported");
      assert.match(again.stdout, /: 0 regressed, 0 improved/);
    });

    await t.step("fixing them is listed as improvements", async () => {
      const result = await runCli([good.url, ...cases, "--baseline", known]);
      assert.equal(result.code, 0);
      assert.equal(listed(result.stdout, "improvements").length, 8);
      assert.match(listed(result.stdout, "improvements")[0], /^2\.1 .*: FAILED\/OK -> OK\/OK$/);
      assert.match(result.stdout, /\nregressions: none\n/);
    });

    await t.step("--baseline and --write-baseline on one file: compare, then update", async () => {
      const ratchet = `${dir}/ratchet.json`;
      await Deno.copyFile(file, ratchet);
      const result = await runCli([
        flawed.url,
        ...cases,
        "--baseline",
        ratchet,
        "--write-baseline",
        ratchet,
      ]);
      assert.equal(result.code, 1, "compared with the old content");
      const updated = parseBaseline(await Deno.readTextFile(ratchet));
      assert.equal(updated.cases["2.1"].behavior, "FAILED");
    });

    await t.step("{agent} in the file name", async () => {
      const template = `${dir}/per-agent/{agent}.json`;
      const w = await runCli([good.url, ...cases, "--write-baseline", template]);
      assert.equal(w.code, 0);
      await Deno.stat(`${dir}/per-agent/wsconform_strict.json`);
      const r = await runCli([flawed.url, ...cases, "--baseline", template]);
      assert.equal(r.code, 1);
      assert.match(r.stdout, new RegExp(`baseline ${dir}/per-agent/wsconform_strict\\.json`));
      const missing = await runCli([
        flawed.url,
        ...cases,
        "--agent",
        "nobody",
        "--baseline",
        template,
      ]);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /cannot read baseline .*nobody\.json/);
    });

    await t.step(
      "a missing or broken --baseline is a usage error before any case runs",
      async () => {
        const missing = await runCli([good.url, ...cases, "--baseline", `${dir}/nope.json`]);
        assert.equal(missing.code, 2);
        assert.equal(missing.stdout, "");
        assert.match(missing.stderr, /^wsconform: cannot read --baseline .*nope\.json/);
        await Deno.writeTextFile(`${dir}/broken.json`, `{"version": 7}`);
        const broken = await runCli([good.url, ...cases, "--baseline", `${dir}/broken.json`]);
        assert.equal(broken.code, 2);
        assert.equal(broken.stdout, "");
        assert.match(broken.stderr, /^wsconform: baseline .*broken\.json: unsupported version 7/);
      },
    );
  } finally {
    await good.close();
    await flawed.close();
    await Deno.remove(dir, { recursive: true });
  }
});
