import { expandRange, type Expected, flawExpectations, v } from "./support.ts";
/**
 * Groups 8 (masking and header encodings) and 11 (close, limits and
 * keepalive) proven against the strict reference server: every case passes
 * against it (OK / OK; the informational ones INFORMATIONAL), and each case
 * with a rule names the flaw that breaks it; under that flaw the case fails
 * (NON-STRICT where the rule is a SHOULD) while every other case of both
 * groups keeps its strict verdict, except where the flaw's nature changes
 * them too (listed, with why). The informational cases cannot fail on their
 * own rule: two peers that behave differently get different observations.
 *
 * Then the checks every case makes on what the server sends (§5.1, §5.2,
 * §5.5.1, §7.4): under each server-output flaw, cases of groups 1, 7 and 8
 * record the violation with its rule and section, and are FAILED.
 *
 * The strict server runs in this process: the groups' timers are 1 s and
 * more (the 20 ms pauses between header bytes only need to be longer than a
 * read), and the message size probe (up to 64 MiB) runs last, alone.
 *
 *   deno test --allow-all tests/g08_g11_test.ts
 */

import assert from "node:assert/strict";
import type { CaseSpec, GroupSpec, Level } from "../harness/case.ts";
import type { Finding } from "../harness/measure.ts";
import type { JudgedRun } from "../harness/report.ts";
import { runAndJudgeCase, runAndJudgeCases } from "../harness/suite.ts";
import { isFailing, type Verdict, type Violation } from "../harness/verdict.ts";
import { group as framing } from "../fixtures/g01_framing.ts";
import { group as close } from "../fixtures/g07_close.ts";
import { group as masking } from "../fixtures/g08_masking.ts";
import { group as closeLimits } from "../fixtures/g11_close_limits.ts";
import { peersOf } from "../fixtures/mod.ts";
import { type Flaw, FLAW_FAMILIES, FLAWS, startStrictServer } from "./peers/strict_server.ts";

/** The groups' server cases (their client cases: tests/g08_g11_client_test.ts). */
const CASES: readonly CaseSpec[] = [masking, closeLimits].flatMap((group) =>
  group.cases.filter((c) => peersOf(group, c).includes("server"))
);
const IDS = CASES.map((c) => c.id);
const MiB = 1024 * 1024;
/** The size probe (11.6.1) is over any budget and runs alone; the rest fits many times over. */
const MEMORY_BUDGET = 128 * MiB;

// ---------------------------------------------------------------------------
// Running the groups

/** What a test keeps of a finished case. */
interface Result {
  spec: CaseSpec;
  verdict: Verdict;
  remoteCloseCode?: number;
  violations: Violation[];
  /** Ping frames the server sent, and pongs the suite answered with. */
  pings: number;
  pongs: number;
  findings: Finding[];
}

function keep(run: JudgedRun): Result {
  const frames = run.wire.entries.filter((e) => e.kind === "frame");
  return {
    spec: run.spec,
    verdict: run.verdict,
    remoteCloseCode: run.close.remoteCloseCode,
    violations: run.violations,
    pings: frames.filter((e) => e.dir === "rx" && e.opcode === 9).length,
    pongs: frames.filter((e) => e.dir === "tx" && e.opcode === 10).length,
    findings: run.findings,
  };
}

/** Runs `cases` against the strict server (127.0.0.1, any free port) with `flaws`. */
async function runStrict(
  flaws: readonly Flaw[],
  cases: readonly CaseSpec[] = CASES,
  maxMessage?: number,
): Promise<Map<string, Result>> {
  const server = startStrictServer({ flaws: [...flaws], maxMessage });
  const results = new Map<string, Result>();
  try {
    await runAndJudgeCases(cases, {
      url: new URL(server.url),
      jobs: 16,
      memoryBudget: MEMORY_BUDGET,
      onCaseDone: (run) => void results.set(run.spec.id, keep(run)),
    });
  } finally {
    await server.close();
  }
  return results;
}

let strictRun: Promise<Map<string, Result>> | undefined;
/** The run against the strict server, done once and shared. */
function strictResults(): Promise<Map<string, Result>> {
  return strictRun ??= runStrict([]);
}

// ---------------------------------------------------------------------------
// Case sets, as ranges

const expand = (range: string): string[] => expandRange(range, IDS);

const expandAll = (ranges: readonly string[]) => ranges.flatMap(expand);

const levelOf = (id: string): Level => CASES.find((c) => c.id === id)!.expect.level ?? "must";
const INFORMATIONAL = IDS.filter((id) => levelOf(id) === "may");

/** The peer fails the connection (its close is not required to be clean). */
const PEER_FAILS = ["8.1.1-3", "8.2.1-3", "8.4.1-3"];
/** The suite closes after an echo; a clean close is required. */
const ECHO_CLEAN = ["8.1.4-5", "8.2.4-6"];
/** The suite's close frame; a clean close is required. */
const CLOSE_CLEAN_MUST = ["11.3.1", "11.4.1-2"];
const CLOSE_CLEAN_SHOULD = ["11.1.1-3", "11.5.1"];
/** The suite closes; the peer may fail (close not required clean). */
const CLOSE_UNCLEAN = ["11.1.4", "11.2.1-2"];
/** Informational cases where the strict server answers the suite's close frame. */
const REPLIES_TO_CLOSE_INFO = ["11.6.1", "11.7.1"];
/** The cases where the strict server fails the connection with 1002. */
const FAILS_1002 = ["8.1.1-3", "8.2.1-3", "8.4.1-3"];

// ---------------------------------------------------------------------------
// The table

const FAILED_FAILED = v("FAILED", "FAILED");

interface Row {
  cases: string[];
  flaws: Flaw[];
  verdict: Expected;
  /** Which alternative the events must match; absent: not checked. */
  matched?: "ok" | "nonStrict" | "none";
  /** The close code the server must send; null: none. Absent: not checked. */
  code?: number | null;
  /** The rule the suite's own checks on server frames must record (server-output flaws). */
  violation?: { rule: string; rfc: string };
  /**
   * The level of the rule the flaw breaks, where it is not the case's own: a close
   * code or an empty close frame weighed by the close expectation.
   */
  level?: Level;
  why: string;
}

/** Each case with a rule of its own, and the flaws that break that rule. */
const RULES: Row[] = [
  {
    cases: ["8.1.1-3", "8.2.1-3"],
    flaws: ["accept-unmasked"],
    verdict: FAILED_FAILED,
    why: "§5.1: an unmasked client frame must fail the connection; the flaw echoes it (or " +
      "answers the ping), and the suite has to close.",
  },
  {
    cases: ["8.1.4-5"],
    flaws: ["reject-zero-mask"],
    verdict: FAILED_FAILED,
    code: 1002,
    why: "§5.3: 00000000 is a masking key like any other; the flaw fails the connection (1002) " +
      "instead of echoing.",
  },
  {
    cases: ["8.2.4-6"],
    flaws: ["header-needs-one-read"],
    verdict: FAILED_FAILED,
    code: null,
    why: "§5.2: a header is a byte stream like any other; the flaw drops TCP when a header " +
      "arrives in more than one read, so no echo comes.",
  },
  {
    cases: ["8.4.1-3"],
    flaws: ["accept-msb-length"],
    verdict: FAILED_FAILED,
    why: "§5.2: the MSB of a 64-bit length must be 0; the flaw clears it and reads a 5-byte (or " +
      "empty) message, which it echoes.",
  },
  {
    cases: ["11.1.1-3"],
    flaws: ["refuse-1012-1014"],
    verdict: v("NON-STRICT", "INFORMATIONAL"),
    code: 1002,
    why: "§7.4.2 and the IANA registry: 1012-1014 are valid codes a peer SHOULD accept; the " +
      "flaw fails with 1002, a wrong code, weighed as not strict.",
  },
  {
    cases: ["11.1.4"],
    flaws: ["echo-1015"],
    verdict: v("FAILED", "INFORMATIONAL"),
    code: 1015,
    violation: { rule: "close-code", rfc: "7.4.1" },
    why: "§7.4.1: a peer SHOULD refuse 1015, and the refusal alone would be NON-STRICT; but " +
      "the flaw echoes 1015, which MUST NOT be sent, and the check on what the server sends " +
      "fails the case.",
  },
  {
    cases: ["11.1.4", "11.2.1-2"],
    flaws: ["empty-close-on-bad-close"],
    verdict: v("NON-STRICT", "INFORMATIONAL"),
    code: null,
    level: "should",
    why: "§7.4.1: 1002 (or 1007) says the peer found the error; the flaw answers with an empty " +
      "close frame, which cannot be told from a normal close: not strict. (Dropping TCP " +
      "instead passes: tested below.)",
  },
  {
    cases: ["11.2.1-2"],
    flaws: ["accept-invalid-close-reason"],
    verdict: v("FAILED", "WRONG CODE"),
    code: 1000,
    why: "§5.5.1, §8.1: an invalid UTF-8 close reason must fail the connection; the flaw " +
      "answers with a normal close (1000).",
  },
  {
    cases: ["11.3.1"],
    flaws: ["reject-125-close"],
    verdict: v("NON-STRICT", "INFORMATIONAL"),
    code: 1002,
    level: "should",
    why: "§5.5: 125 bytes is a legal control payload; the flaw answers the close with 1002. No " +
      "MUST names the code of a reply (§5.5.1: it typically echoes the code received), so a " +
      "valid code answering the suite's normal close is not strict, never a failure.",
  },
  {
    cases: ["11.4.1-2"],
    flaws: ["process-data-after-close"],
    verdict: v("FAILED", "OK"),
    code: 1000,
    why: "§5.5.1: nothing after a close frame is processed; the flaw echoes the data frame " +
      "that follows the close before answering it.",
  },
  {
    cases: ["11.5.1"],
    flaws: ["slow-tcp-close"],
    verdict: v("NON-STRICT", "INFORMATIONAL"),
    code: 1000,
    why: "§7.1.1: the server SHOULD close TCP at once after the closing handshake; the flaw " +
      "waits 3 s, the suite gives up after 1 s.",
  },
];

/** Other cases a flaw changes, beyond the rule it breaks (or, for output flaws, all of them). */
const COLLATERAL: Row[] = [
  // --- the closing of TCP ------------------------------------------------------
  {
    cases: [...ECHO_CLEAN, ...CLOSE_CLEAN_MUST],
    flaws: ["slow-tcp-close"],
    verdict: v("OK", "UNCLEAN"),
    code: 1000,
    why: "§7.1.1 again: these cases require a clean close, which includes the server closing " +
      "TCP within the suite's 1 s.",
  },
  {
    cases: ["11.1.1-3"],
    flaws: ["slow-tcp-close"],
    verdict: v("NON-STRICT", "INFORMATIONAL"),
    why: "As above, in cases whose own rule is a SHOULD.",
  },
  {
    cases: [...PEER_FAILS, ...CLOSE_UNCLEAN],
    flaws: ["slow-tcp-close"],
    verdict: v("OK", "FAILED BY CLIENT"),
    why: "After failing the connection the flaw also keeps TCP open; no clean close is " +
      "required, the suite having to close TCP is only recorded.",
  },
  // --- informational cases: the observation differs ---------------------------------
  {
    cases: ["8.3.1-5"],
    flaws: ["reject-non-minimal-lengths"],
    verdict: v("INFORMATIONAL", "INFORMATIONAL"),
    matched: "nonStrict",
    code: 1002,
    why: "The RFC leaves a longer length form to the receiver: the strict server echoes, the " +
      "flaw refuses with 1002; both are recorded, neither fails.",
  },
  {
    cases: ["8.3.4-5"],
    flaws: ["header-needs-one-read"],
    verdict: v("INFORMATIONAL", "INFORMATIONAL"),
    matched: "nonStrict",
    code: null,
    why: "The flaw drops TCP on these headers written byte by byte; the case records a refusal.",
  },
  {
    cases: ["11.7.1"],
    flaws: ["idle-close"],
    verdict: v("INFORMATIONAL", "INFORMATIONAL"),
    matched: "nonStrict",
    code: 1001,
    why: "The RFC lets a server close an idle connection: the flaw does after 2 s, with 1001; " +
      "the case records it (and its findings say when, tested below).",
  },
  // --- server output: the checks every case makes on what the server sends -------------
  {
    cases: [...PEER_FAILS],
    flaws: ["mask-server-frames"],
    verdict: FAILED_FAILED,
    violation: { rule: "masked", rfc: "5.1" },
    why: "§5.1: a server must not mask; the suite fails the connection on the masked close " +
      "frame (and echo), so the peer is not seen to fail it.",
  },
  {
    cases: [...ECHO_CLEAN, ...CLOSE_CLEAN_MUST],
    flaws: ["mask-server-frames"],
    verdict: v("FAILED", "UNCLEAN"),
    violation: { rule: "masked", rfc: "5.1" },
    why: "§5.1 as above; the suite drops TCP on the masked echo or close reply.",
  },
  {
    cases: ["8.3.1-5", ...CLOSE_CLEAN_SHOULD, ...REPLIES_TO_CLOSE_INFO],
    flaws: ["mask-server-frames"],
    verdict: v("FAILED", "INFORMATIONAL"),
    violation: { rule: "masked", rfc: "5.1" },
    why: "§5.1 as above: what the server sends is checked whatever the case's level.",
  },
  {
    cases: [...CLOSE_UNCLEAN],
    flaws: ["mask-server-frames"],
    verdict: v("FAILED", "FAILED BY CLIENT"),
    violation: { rule: "masked", rfc: "5.1" },
    why: "§5.1 as above; the masked close frame is not taken as one, and the suite drops TCP.",
  },
  {
    cases: [...PEER_FAILS, ...ECHO_CLEAN, ...CLOSE_CLEAN_MUST, ...CLOSE_CLEAN_SHOULD],
    flaws: ["non-minimal-server-lengths"],
    verdict: v("FAILED", "OK"),
    violation: { rule: "length-form", rfc: "5.2" },
    why: "§5.2: every frame must use the shortest length form; the flaw always uses 64 bits.",
  },
  {
    cases: [...CLOSE_UNCLEAN],
    flaws: ["non-minimal-server-lengths"],
    verdict: v("FAILED", "OK"),
    violation: { rule: "length-form", rfc: "5.2" },
    why: "As above.",
  },
  {
    cases: ["8.3.1-5", ...REPLIES_TO_CLOSE_INFO],
    flaws: ["non-minimal-server-lengths"],
    verdict: v("FAILED", "INFORMATIONAL"),
    violation: { rule: "length-form", rfc: "5.2" },
    why: "As above, whatever the case's level.",
  },
  {
    cases: ["8.1.3"],
    flaws: ["rsv-on-server-frames"],
    verdict: FAILED_FAILED,
    violation: { rule: "rsv", rfc: "5.2" },
    why: "§5.2: no RSV bit without an extension; the flaw sets RSV1 on echoes, the suite " +
      "fails the connection on the echo before the server fails it.",
  },
  {
    cases: [...ECHO_CLEAN],
    flaws: ["rsv-on-server-frames"],
    verdict: v("FAILED", "WRONG CODE"),
    code: 1002,
    violation: { rule: "rsv", rfc: "5.2" },
    why: "As above: the suite fails with 1002, which the server echoes where 1000 was due.",
  },
  {
    cases: ["8.3.1-5", "11.6.1"],
    flaws: ["rsv-on-server-frames"],
    verdict: v("FAILED", "INFORMATIONAL"),
    violation: { rule: "rsv", rfc: "5.2" },
    why: "As above, whatever the case's level.",
  },
  {
    cases: [...FAILS_1002],
    flaws: ["send-invalid-close-code"],
    verdict: FAILED_FAILED,
    code: 1005,
    violation: { rule: "close-code", rfc: "7.4.1" },
    why: "§7.4.1: 1005 must never be sent; the flaw fails connections with it instead of " +
      "1002, and the suite fails the connection on it.",
  },
  {
    cases: ["11.1.4"],
    flaws: ["send-invalid-close-code"],
    verdict: v("FAILED", "INFORMATIONAL"),
    code: 1005,
    violation: { rule: "close-code", rfc: "7.4.1" },
    why: "As above, in a case whose own rule is a SHOULD.",
  },
  {
    cases: [...ECHO_CLEAN, ...CLOSE_CLEAN_MUST, ...CLOSE_CLEAN_SHOULD],
    flaws: ["data-after-close"],
    verdict: v("FAILED", "OK"),
    violation: { rule: "data-after-close", rfc: "5.5.1" },
    why: "§5.5.1: nothing may follow a close frame; the flaw sends a text message after its " +
      "close reply (an extra event too).",
  },
  {
    cases: ["8.3.1-5", ...REPLIES_TO_CLOSE_INFO],
    flaws: ["data-after-close"],
    verdict: v("FAILED", "INFORMATIONAL"),
    violation: { rule: "data-after-close", rfc: "5.5.1" },
    why: "As above, whatever the case's level.",
  },
];

/** The flaws of the strict server that concern these groups. */
const MASKING_FLAWS: readonly Flaw[] = FLAW_FAMILIES.masking;
const OUTPUT_FLAWS: readonly Flaw[] = FLAW_FAMILIES.serverOutput;
const CLOSE_FLAWS: readonly Flaw[] = FLAW_FAMILIES.close;

/** What each flaw must turn each case into: its rule rows, then the collateral ones. */
function expectations(flaw: Flaw) {
  return flawExpectations(flaw, RULES, COLLATERAL, (row) => expandAll(row.cases));
}

function summary(verdict: Verdict): string {
  return `${verdict.behavior} / ${verdict.behaviorClose} (matched ${verdict.matched ?? "none"})`;
}

function explain(r: Result): string {
  const rules = r.violations.map((x) => `${x.rule} §${x.rfc}`).join(", ") || "none";
  return `${r.spec.id}: ${summary(r.verdict)}, close code ${r.remoteCloseCode ?? "none"}, ` +
    `violations ${rules}; ${r.verdict.result} ${r.verdict.resultClose}`;
}

// ---------------------------------------------------------------------------
// Tests

Deno.test("groups 8 and 11: ids, levels and shapes; the table covers every case", () => {
  assert.equal(masking.id, "8");
  assert.equal(closeLimits.id, "11");
  assert.equal(new Set(IDS).size, IDS.length, "ids are unique");
  const shapes: [GroupSpec, RegExp][] = [
    [masking, /^8\.[1-4]\.\d+$/],
    [closeLimits, /^11\.[1-7]\.\d+$/],
  ];
  for (const [g, pattern] of shapes) {
    for (const c of g.cases) {
      assert.match(c.id, pattern);
      assert.ok(c.id.split(".").slice(0, 2).join(".") in g.subgroups!, `${c.id}: subgroup title`);
      assert.ok(c.rfc.length > 0 && c.requirement.length > 40, c.id);
      // The requirement names its level, as the verdict weighs it.
      const level = c.expect.level ?? "must";
      assert.match(c.requirement, { must: /MUST/, should: /SHOULD/, may: /MAY/ }[level], c.id);
    }
  }
  assert.deepEqual(INFORMATIONAL, expandAll(["8.3.1-5", "11.6.1", "11.7.1"]));
  assert.deepEqual(IDS.filter((id) => levelOf(id) === "should"), expandAll(["11.1.1-4", "11.5.1"]));
  // The case sets above, checked against the fixtures' own expectations.
  const byPeer = CASES.filter((c) => c.expect.close.by === "peer").map((c) => c.id);
  assert.deepEqual(new Set(expandAll(PEER_FAILS)), new Set(byPeer));
  const clean = CASES.filter((c) => c.expect.close.clean && c.expect.level !== "may");
  assert.deepEqual(
    new Set(expandAll([...ECHO_CLEAN, ...CLOSE_CLEAN_MUST, ...CLOSE_CLEAN_SHOULD])),
    new Set(clean.map((c) => c.id)),
  );
  assert.equal(
    INFORMATIONAL.length +
      expandAll([...PEER_FAILS, ...ECHO_CLEAN, ...CLOSE_CLEAN_MUST, ...CLOSE_CLEAN_SHOULD])
        .length +
      expandAll(CLOSE_UNCLEAN).length,
    IDS.length,
    "every case is in one set",
  );
  // Every case with a rule of its own has a rule row (11.1.4 and 11.2.x two: two ways to break it).
  const ruled = RULES.flatMap((r) => expandAll(r.cases));
  assert.deepEqual(new Set(ruled), new Set(IDS.filter((id) => !INFORMATIONAL.includes(id))));
  for (const row of [...RULES, ...COLLATERAL]) {
    for (const flaw of row.flaws) assert.ok((FLAWS as readonly string[]).includes(flaw), flaw);
    if (row.violation) assert.ok(row.verdict.behavior === "FAILED", row.why);
  }
  // A broken rule fails its case, or is NON-STRICT where the rule is a SHOULD (unless the
  // flaw also breaks a MUST in what the server sends: then FAILED).
  for (const row of RULES) {
    for (const id of expandAll(row.cases)) {
      if ((row.level ?? levelOf(id)) === "should" && !row.violation) {
        assert.equal(row.verdict.behavior, "NON-STRICT", id);
      } else assert.ok(isFailing(row.verdict), id);
    }
  }
  for (const flaw of [...MASKING_FLAWS, ...OUTPUT_FLAWS, ...CLOSE_FLAWS]) {
    assert.ok(FLAWS.includes(flaw), `the strict server has no flaw ${flaw}`);
    expectations(flaw); // no case in two rows
  }
  // Every rule-breaking flaw is used. idle-ping only shows in a finding (tested below),
  // reject-non-minimal-lengths and idle-close only in informational observations, and
  // limit-wrong-code only once a message goes over the limit (the 11.6 test lowers it).
  assert.deepEqual(
    new Set([...RULES, ...COLLATERAL].flatMap((r) => r.flaws)),
    new Set(
      [...MASKING_FLAWS, ...OUTPUT_FLAWS, ...CLOSE_FLAWS].filter((f) =>
        f !== "idle-ping" && f !== "limit-wrong-code"
      ),
    ),
  );
});

Deno.test("strict server: every case OK / OK, the informational ones INFORMATIONAL", async () => {
  const strict = await strictResults();
  assert.equal(strict.size, CASES.length);
  const wrong: string[] = [];
  for (const r of strict.values()) {
    const info = INFORMATIONAL.includes(r.spec.id);
    // The strict server takes the first alternative everywhere: it echoes the longer
    // length forms (8.3), echoes every size up to 64 MiB (11.6.1), and never closes an idle client.
    const expected = info ? "INFORMATIONAL / INFORMATIONAL (matched ok)" : "OK / OK (matched ok)";
    if (summary(r.verdict) !== expected) wrong.push(`not ${expected}: ${explain(r)}`);
    if (r.violations.length > 0) wrong.push(`violations: ${explain(r)}`);
  }
  assert.deepEqual(wrong, []);
  const codes = (ids: string[]) => ids.map((id) => strict.get(id)!.remoteCloseCode ?? null);
  assert.deepEqual(codes(expandAll(FAILS_1002)), expandAll(FAILS_1002).map(() => 1002));
  assert.deepEqual(codes(expandAll(["11.1.1-4", "11.2.1-2"])), [
    1012,
    1013,
    1014,
    1002,
    1007,
    1007,
  ]);
  assert.equal(strict.get("11.7.1")!.pings, 0, "the strict server never pings");
});

Deno.test("flaws: each breaks the cases whose rule it violates, the others keep their verdict", async (t) => {
  const strict = await strictResults();
  for (const flaw of [...MASKING_FLAWS, ...OUTPUT_FLAWS, ...CLOSE_FLAWS]) {
    await t.step(flaw, async () => {
      const expected = expectations(flaw);
      const flawed = await runStrict([flaw]);
      const wrong: string[] = [];
      for (const id of IDS) {
        const r = flawed.get(id)!;
        const entry = expected.get(id);
        if (!entry) {
          const before = strict.get(id)!;
          if (summary(r.verdict) !== summary(before.verdict)) {
            wrong.push(`unlisted case changed from ${summary(before.verdict)}: ${explain(r)}`);
          }
          if (r.violations.length > 0) wrong.push(`unlisted case with violations: ${explain(r)}`);
          continue;
        }
        const { row, rule } = entry;
        const got = r.verdict;
        if (
          got.behavior !== row.verdict.behavior || got.behaviorClose !== row.verdict.behaviorClose
        ) {
          wrong.push(
            `expected ${row.verdict.behavior} / ${row.verdict.behaviorClose}: ${explain(r)}`,
          );
        }
        if (row.matched !== undefined && (got.matched ?? "none") !== row.matched) {
          wrong.push(`expected matched ${row.matched}: ${explain(r)}`);
        }
        if (row.code !== undefined && (r.remoteCloseCode ?? null) !== row.code) {
          wrong.push(`expected close code ${row.code ?? "none"}: ${explain(r)}`);
        }
        const found = r.violations.map((x) => `${x.rule} §${x.rfc} ${x.level}`);
        const want = row.violation ? [`${row.violation.rule} §${row.violation.rfc} must`] : [];
        if (found.join() !== want.join()) {
          wrong.push(`expected violations [${want}], got [${found}]: ${explain(r)}`);
        }
        const should = (row.level ?? levelOf(id)) === "should";
        if (rule && !(should && !row.violation ? got.behavior === "NON-STRICT" : isFailing(got))) {
          wrong.push(`rule not seen as broken: ${explain(r)}`);
        }
      }
      assert.deepEqual(wrong, []);
    });
  }
});

/** The finding `name` of a case. */
function finding(r: Result, name: string): Finding {
  const found = r.findings.find((f) => f.name === name);
  assert.ok(found, `${r.spec.id}: no finding ${name} in ${JSON.stringify(r.findings)}`);
  return found;
}

Deno.test("11.6.1: the probe finds the server's message limit; a refusal calls for 1009", async () => {
  const probe = CASES.filter((c) => c.id === "11.6.1");
  const strict = (await strictResults()).get("11.6.1")!;
  // The same server with a 4 MiB limit, and that server refusing with the wrong code.
  const small = (await runStrict([], probe, 4 * MiB)).get("11.6.1")!;
  const wrongCode = (await runStrict(["limit-wrong-code"], probe, 4 * MiB)).get("11.6.1")!;

  assert.equal(summary(strict.verdict), "INFORMATIONAL / INFORMATIONAL (matched ok)");
  assert.equal(finding(strict, "messageSizeLimit").value, 64 * MiB);
  assert.match(finding(strict, "messageSizeLimit").text, /up to 64 MiB: no limit found/);

  // Refused with 1009: the RFC's own code, so still informational, with the limit found.
  assert.equal(summary(small.verdict), "INFORMATIONAL / INFORMATIONAL (matched none)");
  assert.equal(small.remoteCloseCode, 1009);
  assert.equal(finding(small, "messageSizeLimit").value, 4 * MiB);
  assert.equal(
    finding(small, "messageSizeLimit").text,
    "Echoed up to 4 MiB; the server closed the connection on the 8 MiB message with close code 1009.",
  );
  assert.match(small.verdict.result, /refused to go on after 7 of the 11 expected events/);

  // Refused with 1002: the SHOULD is broken.
  assert.equal(summary(wrongCode.verdict), "NON-STRICT / INFORMATIONAL (matched none)");
  assert.equal(wrongCode.remoteCloseCode, 1002);
  assert.match(wrongCode.verdict.result, /close code 1002; a refusal calls for 1009/);
  assert.equal(finding(wrongCode, "messageSizeLimit").value, 4 * MiB);
});

Deno.test("11.5.1 and 11.7.1 report what they measure", async () => {
  const measured = CASES.filter((c) => c.id === "11.5.1" || c.id === "11.7.1");
  const strict = await strictResults();

  // How long the server took to close TCP after the closing handshake.
  const fast = finding(strict.get("11.5.1")!, "tcpCloseDelay");
  assert.ok(typeof fast.value === "number" && fast.value < 500, fast.text);
  assert.match(fast.text, /^The server closed TCP \d+ ms after the closing handshake\.$/);
  const slow = finding(
    (await runStrict(["slow-tcp-close"], measured)).get("11.5.1")!,
    "tcpCloseDelay",
  );
  assert.equal(slow.value, null);
  assert.match(slow.text, /did not close TCP within 1000 ms/);

  // What the server does with an idle client: nothing, pings (each answered), or a close.
  const quiet = strict.get("11.7.1")!;
  assert.equal(quiet.pings, 0);
  assert.equal(finding(quiet, "peerPings").value, 0);
  assert.equal(finding(quiet, "peerIdleClose").value, null);
  const pinged = (await runStrict(["idle-ping"], measured)).get("11.7.1")!;
  assert.ok(pinged.pings >= 2, `pings in 3 s of idling: ${pinged.pings}`);
  assert.equal(pinged.pongs, pinged.pings, "every ping answered");
  assert.equal(finding(pinged, "peerPings").value, pinged.pings);
  assert.match(
    finding(pinged, "peerPings").text,
    /the first \d+ ms after the handshake, then every/,
  );
  const closed = (await runStrict(["idle-close"], measured)).get("11.7.1")!;
  const idleClose = finding(closed, "peerIdleClose");
  assert.ok(
    typeof idleClose.value === "number" && idleClose.value >= 1900 && idleClose.value < 3000,
    idleClose.text,
  );
  assert.match(idleClose.text, /\(close code 1001\)/);
});

// ---------------------------------------------------------------------------
// The checks on every frame the server sends, across groups

/** Per server-output flaw: the rule it breaks, and cases of groups 1, 7 and 8 that show it. */
const GLOBAL_CHECKS: { flaw: Flaw; rule: string; rfc: string; cases: string[]; note?: string }[] = [
  {
    flaw: "mask-server-frames",
    rule: "masked",
    rfc: "5.1",
    cases: ["1.1.1", "1.2.3", "7.1.1", "7.3.3", "8.1.1", "8.1.4"],
  },
  {
    flaw: "non-minimal-server-lengths",
    rule: "length-form",
    rfc: "5.2",
    cases: ["1.1.2", "1.2.6", "7.1.1", "7.3.3", "8.1.1", "8.2.5"],
  },
  {
    flaw: "rsv-on-server-frames",
    rule: "rsv",
    rfc: "5.2",
    cases: ["1.1.1", "1.2.2", "7.1.1", "8.1.4", "8.2.4"],
    note: "only echoes carry the bit: cases without an echo (7.3.3, 8.1.1) show nothing",
  },
  {
    flaw: "send-invalid-close-code",
    rule: "close-code",
    rfc: "7.4.1",
    cases: ["7.3.2", "7.9.1", "8.1.1", "8.4.1"],
    note: "only failing connections send 1005: no group 1 case makes the server fail",
  },
  {
    flaw: "data-after-close",
    rule: "data-after-close",
    rfc: "5.5.1",
    cases: ["1.1.1", "1.2.1", "7.1.1", "7.3.3", "8.1.4"],
  },
];

const OTHER_CASES: readonly CaseSpec[] = [...framing.cases, ...close.cases, ...masking.cases];

Deno.test("every case checks what the server sends: server-output flaws fail cases of groups 1, 7 and 8", async (t) => {
  const specOf = (id: string) => OTHER_CASES.find((c) => c.id === id)!;
  const runAll = async (flaws: Flaw[], ids: string[]): Promise<JudgedRun[]> => {
    const server = startStrictServer({ flaws });
    try {
      return await Promise.all(
        ids.map((id) => runAndJudgeCase(specOf(id), { url: new URL(server.url) })),
      );
    } finally {
      await server.close();
    }
  };
  const everyId = [...new Set(GLOBAL_CHECKS.flatMap((g) => g.cases))];
  for (const id of everyId) assert.ok(specOf(id), `no case ${id}`);
  const strict = await runAll([], everyId);
  for (const run of strict) {
    assert.deepEqual(run.violations, [], run.spec.id);
    assert.ok(!isFailing(run.verdict), `${run.spec.id}: ${summary(run.verdict)}`);
  }
  for (const check of GLOBAL_CHECKS) {
    await t.step(check.flaw, async () => {
      assert.ok(OUTPUT_FLAWS.includes(check.flaw));
      for (const group of ["1.", "7.", "8."]) {
        if (!check.cases.some((id) => id.startsWith(group))) {
          assert.ok(check.note?.includes(`group ${group[0]}`), `${check.flaw}: no group ${group}`);
        }
      }
      const runs = await runAll([check.flaw], check.cases);
      for (const run of runs) {
        const what = `${run.spec.id}: ${summary(run.verdict)}; ${run.verdict.result}`;
        const hit = run.violations.find((x) => x.rule === check.rule);
        assert.ok(hit, `${check.flaw}: no ${check.rule} violation in ${what}`);
        assert.equal(hit.rfc, check.rfc, what);
        assert.equal(hit.level, "must", what);
        assert.ok(hit.detail.length > 0, what);
        assert.equal(run.verdict.behavior, "FAILED", what);
        assert.ok(isFailing(run.verdict), what);
        // The violation is in the wire log too, with its section.
        assert.ok(
          run.wire.entries.some((e) => e.kind === "note" && e.text.includes(`§${check.rfc}`)),
          what,
        );
      }
    });
  }
});

// ---------------------------------------------------------------------------
// Failing the connection: the close frame is a MAY (§7.1.7), its code a preference

const specById = (id: string) => [...CASES, ...close.cases].find((c) => c.id === id)!;

/** Runs the cases (by id) side by side against a strict server started with `options`. */
async function runIds(
  ids: string[],
  options: Parameters<typeof startStrictServer>[0],
): Promise<JudgedRun[]> {
  const server = startStrictServer(options);
  try {
    return await Promise.all(
      ids.map((id) => runAndJudgeCase(specById(id), { url: new URL(server.url) })),
    );
  } finally {
    await server.close();
  }
}

const verdictOf = (run: JudgedRun) => `${run.verdict.behavior} / ${run.verdict.behaviorClose}`;
const what = (run: JudgedRun) => explain(keep(run));

Deno.test("failing with 1003, 1009 or 1011 instead of 1002: NON-STRICT in groups 8 and 11 and in Autobahn's 7.3.2", async (t) => {
  const ids = [...expandAll(PEER_FAILS), "11.1.4", "7.3.2"];
  for (const code of [1003, 1009, 1011]) {
    await t.step(`failing with ${code}`, async () => {
      for (const run of await runIds(ids, { protocolErrorCode: code })) {
        assert.equal(run.close.remoteCloseCode, code, what(run));
        // §7.1.7 leaves the code to the peer: 1002 fits, another one is a SHOULD broken.
        assert.equal(verdictOf(run), "NON-STRICT / INFORMATIONAL", what(run));
        assert.ok(!isFailing(run.verdict), what(run));
        assert.match(run.verdict.resultClose, new RegExp(`close code was ${code}; 1002 is`));
      }
    });
  }
});

Deno.test("failing by dropping TCP, with no close frame, passes where the peer must fail", async () => {
  const ids = [...expandAll([...PEER_FAILS, "11.1.4", "11.2.1-2"]), "7.3.2"];
  for (const run of await runIds(ids, { flaws: ["drop-on-error"] })) {
    assert.equal(run.close.remoteCloseFrame, undefined, what(run));
    assert.equal(run.violations.length, 0, what(run));
    assert.equal(run.verdict.behaviorClose, "OK", what(run));
    // 8.1.3: the reset may discard the echo of the valid message, which the case tolerates.
    const allowed = run.spec.id === "8.1.3" ? ["OK", "NON-STRICT"] : ["OK"];
    assert.ok(allowed.includes(run.verdict.behavior), what(run));
  }
});

Deno.test("an empty close frame answering an illegal close is NON-STRICT in 7.3.2, 7.5.1, 7.9.x and 11.x, not OK", async () => {
  const runs = await runIds(["7.3.2", "11.2.1", "11.2.2", "11.1.4", "7.5.1", "7.9.1"], {
    flaws: ["empty-close-on-bad-close"],
  });
  for (const run of runs) {
    assert.equal(run.close.remoteCloseFrame, true, what(run));
    assert.equal(run.close.remoteCloseCode, undefined, what(run));
    // It cannot be told from a normal close, which ignores the error.
    assert.equal(verdictOf(run), "NON-STRICT / INFORMATIONAL", what(run));
    assert.match(run.verdict.resultClose, /empty close frame, which cannot be told/);
  }
  assert.match(specById("7.3.2").deviation!, /NON-STRICT/);
});

Deno.test("the suite's fail timer closes with 1001: a peer echoing 1001 gets no WRONG CODE", async () => {
  const spec: CaseSpec = {
    id: "0.0.1",
    title: "Nothing to do: the fail timer closes",
    rfc: "7.1.7",
    requirement: "A peer answering the suite's close (1001, going away) MUST answer with a close.",
    steps: [{ kind: "failAfter", failAfter: 0.2 }],
    expect: { ok: [], close: { by: "suite", codes: [1000], clean: true } },
  };
  const server = startStrictServer();
  try {
    const run = await runAndJudgeCase(spec, { url: new URL(server.url) });
    assert.equal(run.close.localCloseCode, 1001, what(run));
    assert.equal(run.close.remoteCloseCode, 1001, what(run));
    assert.equal(verdictOf(run), "OK / OK", what(run));
  } finally {
    await server.close();
  }
});
