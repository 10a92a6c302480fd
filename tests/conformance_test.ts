import { type Expected, spawnStrictServer, v } from "./support.ts";
/**
 * The proof that wsconform's verdicts are true: every case passes against the
 * strict reference server, and each of the server's flaws (each breaking one
 * RFC 6455 rule, or one family of them) fails exactly the cases that check it,
 * with the verdict the RFC calls for, while every other case keeps the verdict
 * it had against the strict server.
 *
 * The affected cases are data (FLAW_TABLE), reasoned from the RFC and the
 * flaw, not computed from a run. The strict server runs in a child process, as
 * a server under test would: the suite and the server then have an event loop
 * (and a CPU core) each, so the large cases of group 9 do not stall the server
 * while the short timers of other cases (0.5 s in 6.5 onwards) run.
 *
 *   deno test --allow-net --allow-read --allow-write --allow-run tests/conformance_test.ts
 */

import assert from "node:assert/strict";
import type { CaseSpec, Level } from "../harness/case.ts";
import { runAndJudgeCases } from "../harness/suite.ts";
import { type CaseOutcome, isFailing, type Verdict, type Violation } from "../harness/verdict.ts";
import { AUTOBAHN_CASES } from "../fixtures/mod.ts";
import {
  type Flaw,
  FLAW_FAMILIES,
  FLAWS,
  type StrictServerOptions,
} from "./peers/strict_server.ts";

/**
 * The Autobahn cases proven here: not groups 12 and 13, which need
 * permessage-deflate negotiated (tests/g12_g13_test.ts runs them against the
 * strict server with its deflate option on).
 */
const CASES = AUTOBAHN_CASES.filter((c) => c.deflate === undefined);

const JOBS = 32;
/**
 * Room for the group 9 cases to run side by side (the default 32 MiB makes the
 * 4-16 MiB cases run nearly one at a time, which under keep-tcp-open, where
 * every case lasts 1 s longer, would triple that run).
 */
const MEMORY_BUDGET = 128 * 1024 * 1024;

/** A case's outcome, with the rules the server broke in what it sent. */
type Outcome = CaseOutcome & { violations: Violation[] };

/** Runs every case against the strict server with `flaws`; outcomes by case id. */
async function runAll(flaws: readonly Flaw[]): Promise<Map<string, Outcome>> {
  const server = await spawnStrictServer({ flaws: [...flaws] });
  try {
    const violations = new Map<string, Violation[]>();
    const outcomes = await runAndJudgeCases(CASES, {
      url: server.url,
      jobs: JOBS,
      memoryBudget: MEMORY_BUDGET,
      onCaseDone: (run) => void violations.set(run.spec.id, run.violations),
    });
    return new Map(
      outcomes.map((o) => [o.spec.id, { ...o, violations: violations.get(o.spec.id)! }]),
    );
  } finally {
    await server.close();
  }
}

let strictRun: Promise<Map<string, Outcome>> | undefined;
/** The run against the strict server, done once and shared by every test. */
function strictOutcomes(): Promise<Map<string, Outcome>> {
  return strictRun ??= runAll([]);
}

// ---------------------------------------------------------------------------
// Case sets, as data

/** "6.12.*" stands for every case whose id starts with "6.12."; anything else is an exact id. */
type Pattern = string;

const ids = CASES.map((c) => c.id);

function expand(patterns: readonly Pattern[]): string[] {
  const out = new Set<string>();
  for (const pattern of patterns) {
    const matches = pattern.endsWith(".*")
      ? ids.filter((id) => id.startsWith(pattern.slice(0, -1)))
      : ids.filter((id) => id === pattern);
    assert.ok(matches.length > 0, `pattern ${pattern} matches no case`);
    for (const id of matches) out.add(id);
  }
  return [...out];
}

/** The informational cases: the RFC leaves their outcome open (§5.5.1, §7.4.2). */
const INFORMATIONAL: Pattern[] = ["7.1.6", "7.13.*"];

/** Group 6 text messages that are valid UTF-8 (echoed, then the suite closes). */
const VALID_UTF8: Pattern[] = [
  ...["6.1.*", "6.2.*", "6.5.*", "6.6.2", "6.6.5", "6.6.7", "6.6.9", "6.6.11", "6.7.*", "6.9.*"],
  ...["6.11.1", "6.11.2", "6.11.3", "6.11.4", "6.22.*", "6.23.*"],
];
/**
 * Group 6 text messages that are not valid UTF-8: the peer must fail (§8.1), 1007
 * the fitting code; another is NON-STRICT, 1000 (a normal close) WRONG CODE.
 */
const INVALID_UTF8: Pattern[] = [
  ...["6.3.*", "6.4.*", "6.6.1", "6.6.3", "6.6.4", "6.6.6", "6.6.8", "6.6.10", "6.8.*"],
  ...["6.10.*", "6.11.5", "6.12.*", "6.13.*", "6.14.*", "6.15.*", "6.16.*", "6.17.*"],
  ...["6.18.*", "6.19.*", "6.20.*", "6.21.*"],
];

/** The suite closes, a clean close is required, and the last timer of the case is 1 s or less. */
const CLEAN_SHORT_TIMER: Pattern[] = [
  ...["1.1.1", "1.1.2", "1.1.3", "1.1.4", "1.1.5", "1.2.1", "1.2.2", "1.2.3", "1.2.4", "1.2.5"],
  ...VALID_UTF8.filter((p) => !p.startsWith("6.1.") && !p.startsWith("6.2.")),
  ...["7.1.1", "7.1.2", "7.1.3", "7.1.4", "7.1.5", "7.3.1", "7.3.3", "7.3.4", "7.3.5", "7.7.*"],
];
/** The suite closes, a clean close is required, and no timer ends the case within 1 s. */
const CLEAN_LONG_TIMER: Pattern[] = [
  ...["1.1.6", "1.1.7", "1.1.8", "1.2.6", "1.2.7", "1.2.8"],
  ...["2.1", "2.2", "2.3", "2.4", "2.6", "2.7", "2.8", "2.9", "2.10", "2.11"],
  ...["5.3", "5.4", "5.5", "5.6", "5.7", "5.8", "5.19", "5.20", "6.1.*", "6.2.*"],
  ...["9.*", "10.1.1"],
];
/** Every case where the suite closes and the RFC requires a clean close. */
const CLEAN_CLOSE: Pattern[] = [...CLEAN_SHORT_TIMER, ...CLEAN_LONG_TIMER];

/** A protocol error in a frame: the peer must fail the connection (1002, or 1007 for UTF-8). */
const PEER_FAILS: Pattern[] = [
  ...["2.5", "3.*", "4.*", "5.1", "5.2", "5.9", "5.10", "5.11", "5.12", "5.13", "5.14"],
  ...["5.15", "5.16", "5.17", "5.18"],
  ...INVALID_UTF8,
];
/**
 * A valid message, then a frame the peer must fail on, in writes of their own (sync
 * or chop): the peer's reads decide whether it echoes before failing, and both are OK.
 */
const ECHO_THEN_LATE_FRAMES: Pattern[] = ["3.3", "3.4", "4.1.5", "4.2.5"];
/** The cases where the server answers pings (not 2.5: an oversize ping must fail). */
const PONGED: Pattern[] = [
  ...["2.1", "2.2", "2.3", "2.4", "2.6", "2.9", "2.10", "2.11"],
  ...["5.6", "5.7", "5.8", "5.19", "5.20"],
];
/**
 * A close frame from the suite that breaks a rule of its body: the peer must fail
 * (1002, 1007 for the reason), another code is NON-STRICT, 1000 WRONG CODE.
 */
const BAD_CLOSE_BODY: Pattern[] = ["7.3.2", "7.3.6", "7.5.1"];
/** A close code the suite may not send: 1002 fits, any other close is NON-STRICT (no MUST). */
const INVALID_CLOSE_CODE: Pattern[] = ["7.9.*"];
/** A faulty close frame from the suite: the peer should answer 1002/1007 or drop TCP. */
const BAD_CLOSE: Pattern[] = [...BAD_CLOSE_BODY, ...INVALID_CLOSE_CODE];

// ---------------------------------------------------------------------------
// The table: flaw -> the cases it must change, and to what

const FAILED_OK = v("FAILED", "OK");
const FAILED_FAILED = v("FAILED", "FAILED");

interface Row {
  flaw: Flaw;
  cases: Pattern[];
  /** The verdict each of these cases must get. */
  verdict: Expected;
  /** Which alternative the events must match, when it matters (informational cases). */
  matched?: Matched;
  /** The close code the server must send; null: no close frame at all. */
  code?: number | null;
  /** The rule the suite's checks on what the server sends must record, at its level. */
  violation?: { rule: string; rfc: string; level: Level };
  /** Why, from the RFC. */
  why: string;
  /**
   * Set when the verdict is, by design, not a failing one (NON-STRICT, a
   * tolerated departure, an informational case): why it must not fail.
   */
  passes?: string;
}

const FLAW_TABLE: Row[] = [
  // --- group 1 -------------------------------------------------------------
  {
    flaw: "truncate-long-echo",
    cases: [
      ...["1.1.3", "1.1.4", "1.1.5", "1.1.6", "1.1.7", "1.1.8"],
      ...["1.2.3", "1.2.4", "1.2.5", "1.2.6", "1.2.7", "1.2.8"],
    ],
    verdict: FAILED_OK,
    why: "§5.6: a message is delivered whole; echoes of 126 bytes and more come back cut.",
  },
  {
    flaw: "truncate-long-echo",
    cases: [
      ...["9.1.*", "9.2.*", "9.3.*", "9.4.*", "9.5.*", "9.6.*"],
      ...["9.7.4", "9.7.5", "9.7.6", "9.8.4", "9.8.5", "9.8.6"],
    ],
    verdict: FAILED_OK,
    why: "Every group 9 message longer than 125 bytes (9.7.1-3, 9.8.1-3 are 0-64 bytes).",
  },
  { flaw: "truncate-long-echo", cases: ["10.1.1"], verdict: FAILED_OK, why: "64 KiB echo." },
  {
    flaw: "truncate-long-echo",
    cases: ["7.1.6"],
    verdict: v("INFORMATIONAL", "INFORMATIONAL"),
    matched: "none",
    why: "The 256 KiB echo comes back cut, so the events match neither alternative.",
    passes: "informational: the case records what the peer did",
  },
  // --- group 2 (and the pings of group 5) --------------------------------------
  {
    flaw: "no-pong",
    cases: ["2.1", "2.2", "2.3", "2.4", "2.6", "2.9", "2.10", "2.11"],
    verdict: FAILED_OK,
    why: "§5.5.2: a ping must be answered by a pong (not 2.5: an oversize ping must fail; " +
      "not 2.7, 2.8: unsolicited pongs get no answer anyway).",
  },
  {
    flaw: "no-pong",
    cases: ["5.6", "5.7", "5.8", "5.19", "5.20"],
    verdict: FAILED_OK,
    why: "§5.4, §5.5.2: pings between the fragments of a message must be answered.",
  },
  // --- group 3 ---------------------------------------------------------------
  {
    flaw: "accept-rsv",
    cases: ["3.1", "3.2", "3.3", "3.4", "3.5", "3.6"],
    verdict: FAILED_FAILED,
    why: "§5.2: RSV bits without an extension must fail the connection; the flawed server " +
      "echoes the frame (and answers the ping that follows). 3.7, an empty close frame with " +
      "RSV = 7, cannot tell: accepted, it is answered by an empty close, which the verdict " +
      "cannot tell from a failure (as in Autobahn, whose 3.7 sends the same frame).",
  },
  // --- group 4 ---------------------------------------------------------------
  {
    flaw: "accept-reserved-opcodes",
    cases: ["4.1.1", "4.1.2", "4.2.1", "4.2.2"],
    verdict: v("OK", "FAILED"),
    why: "§5.2: a reserved opcode must fail the connection; the frame is ignored, no event " +
      "shows it, the suite has to close.",
  },
  {
    flaw: "accept-reserved-opcodes",
    cases: ["4.1.3", "4.1.4", "4.1.5", "4.2.3", "4.2.4", "4.2.5"],
    verdict: FAILED_FAILED,
    why: "As above, and the ping after the ignored frame is answered.",
  },
  // --- group 5 ---------------------------------------------------------------
  {
    flaw: "accept-fragmented-control",
    cases: ["5.1"],
    verdict: FAILED_FAILED,
    why: "§5.5: a control frame must not be fragmented; the first fragment of the ping is " +
      "answered by a pong.",
  },
  {
    flaw: "accept-fragmented-control",
    cases: ["5.2"],
    verdict: v("OK", "FAILED"),
    why: "§5.5: the fragmented pong is ignored, so only the close shows the flaw.",
  },
  {
    flaw: "accept-fragmented-control",
    cases: ["5.9", "5.10", "5.11", "5.12", "5.13", "5.14", "5.15", "5.16", "5.17"],
    verdict: FAILED_FAILED,
    why: "§5.4: this flaw also ignores continuation frames with no message to continue (the " +
      "rest of a fragmented control frame is one), so the text messages that follow are " +
      "echoed. Not 5.18: a new data frame inside a message is still refused.",
  },
  // --- group 6 ---------------------------------------------------------------
  {
    flaw: "no-utf8-check",
    cases: INVALID_UTF8,
    verdict: FAILED_FAILED,
    why: "§8.1: invalid UTF-8 in a text message must fail the connection with 1007; the " +
      "flawed server echoes it, the suite fails the connection itself. Not 7.5.1: the close " +
      "reason is still checked.",
  },
  {
    flaw: "no-fail-fast",
    cases: ["6.4.*"],
    verdict: v("NON-STRICT", "OK"),
    matched: "nonStrict",
    code: 1007,
    why: "§8.1: the invalid byte is found only once the message is complete.",
    passes: "failing at the end of the message rather than at the offending byte is tolerated",
  },
  // --- group 7 ---------------------------------------------------------------
  {
    flaw: "accept-invalid-close-codes",
    cases: ["7.9.4", "7.9.5"],
    verdict: v("FAILED", "INFORMATIONAL"),
    violation: { rule: "close-code", rfc: "7.4.1", level: "must" },
    why: "§7.4.1: 1005 and 1006 MUST NOT be set in a close frame; the flawed server echoes " +
      "the code, breaking the MUST itself (not echoing 1002 alone would be NON-STRICT).",
  },
  {
    flaw: "accept-invalid-close-codes",
    cases: ["7.9.1", "7.9.2", "7.9.3", "7.9.6", "7.9.7", "7.9.8", "7.9.9"],
    verdict: v("NON-STRICT", "INFORMATIONAL"),
    violation: { rule: "close-code-undefined", rfc: "7.4.2", level: "may" },
    why: "§7.4: a code that is not used, reserved or unassigned is a protocol error, 1002 the " +
      "appropriate answer (§10.7, a SHOULD); the flawed server echoes it, as browsers do. No " +
      "MUST makes the receiver fail, and sending the code breaks none: the check on what the " +
      "server sends only records it.",
    passes: "no MUST asks the receiver to fail on such a code (a deviation from Autobahn)",
  },
  {
    flaw: "accept-invalid-close-codes",
    cases: ["7.13.*"],
    verdict: v("INFORMATIONAL", "INFORMATIONAL"),
    violation: { rule: "close-code-undefined", rfc: "7.4.2", level: "may" },
    why: "§7.4.2: the close is left open, and the flawed server echoes 5000 or 65535, codes no " +
      "range defines but no MUST forbids sending: the check on what the server sends records " +
      "it, and it decides nothing.",
    passes: "informational: no MUST forbids sending an undefined code (Autobahn says the same)",
  },
  {
    flaw: "no-close-reply",
    cases: CLEAN_CLOSE,
    verdict: v("OK", "UNCLEAN"),
    why: "§5.5.1: a close frame must be answered by one; the flawed server closes TCP " +
      "instead. Where the server is the one failing the connection it still sends its close.",
  },
  // --- the closing of TCP ------------------------------------------------------
  {
    flaw: "keep-tcp-open",
    cases: CLEAN_LONG_TIMER,
    verdict: v("OK", "UNCLEAN"),
    why: "§7.1.1: after the closing handshake the server closes TCP first; the suite gives " +
      "up after 1 s.",
  },
  {
    flaw: "keep-tcp-open",
    cases: CLEAN_SHORT_TIMER,
    verdict: v("OK", "UNCLEAN"),
    why: "As above, but the case's own timer (0.5 s or 1 s) drops TCP before the 1 s wait ends.",
  },
  {
    flaw: "keep-tcp-open",
    cases: [...PEER_FAILS, ...BAD_CLOSE],
    verdict: v("OK", "FAILED BY CLIENT"),
    why: "§7.1.1: the server does not close TCP after failing the connection either.",
    passes: "no clean close is required here; the suite having to close TCP is only recorded",
  },
  // --- the close code when failing -----------------------------------------------
  {
    flaw: "close-code-1000-on-error",
    cases: PEER_FAILS,
    verdict: v("OK", "WRONG CODE"),
    code: 1000,
    why: "§7.4.1: failing on a protocol error calls for 1002 (1007 for bad UTF-8), not 1000.",
  },
  {
    flaw: "close-code-1000-on-error",
    cases: BAD_CLOSE_BODY,
    verdict: v("FAILED", "WRONG CODE"),
    code: 1000,
    why: "As above; group 7 counts a wrong close code against the behaviour too.",
  },
  {
    flaw: "close-code-1000-on-error",
    cases: INVALID_CLOSE_CODE,
    verdict: v("NON-STRICT", "INFORMATIONAL"),
    code: 1000,
    why: "§10.7: 1002 is the appropriate answer to a code no endpoint may send; 1000 is not.",
    passes: "no MUST asks the receiver to fail on such a code (a deviation from Autobahn)",
  },
  {
    flaw: "close-code-1000-on-error",
    cases: ["7.13.*"],
    verdict: v("INFORMATIONAL", "INFORMATIONAL"),
    code: 1000,
    why:
      "The case records the answer to a code above 4999: 1000 where the strict server says 1002.",
    passes: "informational: the case records what the peer did",
  },
  {
    flaw: "drop-on-error",
    cases: [...PEER_FAILS, ...BAD_CLOSE],
    verdict: v("OK", "OK"),
    code: null,
    why: "§7.1.7: a close frame before closing TCP is a SHOULD; dropping is allowed, no clean " +
      "close is required, and an absent code is no wrong code.",
    passes: "the RFC allows failing the connection by dropping TCP",
  },
  {
    flaw: "drop-on-error",
    cases: ["7.13.*"],
    verdict: v("INFORMATIONAL", "INFORMATIONAL"),
    code: null,
    why: "The case records that the peer dropped TCP.",
    passes: "informational: the case records what the peer did",
  },
  // --- illegal control frames from the server (§5.2, §5.5) -------------------------
  {
    flaw: "oversize-pong",
    cases: ["2.5"],
    verdict: FAILED_FAILED,
    violation: { rule: "control-oversize", rfc: "5.5", level: "must" },
    why: "§5.5: a control frame MUST have 125 bytes or less; the flawed server answers the " +
      "126-byte ping with a 126-byte pong instead of failing, and the suite fails the connection.",
  },
  {
    flaw: "fragmented-pong",
    cases: [...PONGED],
    verdict: v("FAILED", "WRONG CODE"),
    code: 1002,
    violation: { rule: "control-fragmented", rfc: "5.5", level: "must" },
    why: "§5.5: a control frame MUST NOT be fragmented; the flawed server sends each pong as a " +
      "pong without FIN and a continuation, the suite fails the connection with 1002, which " +
      "the server echoes where the case closes with 1000.",
  },
  {
    flaw: "reserved-opcode-pong",
    cases: [...PONGED],
    verdict: v("FAILED", "WRONG CODE"),
    code: 1002,
    violation: { rule: "reserved-opcode", rfc: "5.2", level: "must" },
    why: "§5.2: opcode 0xB is reserved, and its receiver MUST fail the connection; the flawed " +
      "server answers pings with it, the suite fails with 1002, echoed.",
  },
  // --- group 9 ---------------------------------------------------------------
  {
    flaw: "corrupt-large-echo",
    cases: ["9.1.3", "9.1.4", "9.1.5", "9.1.6", "9.3.*", "9.5.*"],
    verdict: v("FAILED", "WRONG CODE"),
    code: 1007,
    why: "§5.6: echoes of 1 MiB and more come back with their last byte flipped; for text " +
      "that byte makes the echo invalid UTF-8, the suite fails with 1007 and the server " +
      "echoes 1007 where the case expects 1000.",
  },
  {
    flaw: "corrupt-large-echo",
    cases: ["9.2.3", "9.2.4", "9.2.5", "9.2.6", "9.4.*", "9.6.*"],
    verdict: FAILED_OK,
    why: "§5.6: the binary echoes of 1 MiB and more differ in their last byte.",
  },
  // --- group 10 (and every fragmented text message) ------------------------------
  {
    flaw: "echo-fragmented-as-binary",
    cases: ["10.1.1", "9.3.1", "9.3.2", "9.3.3", "9.3.4", "9.3.5", "9.3.6", "9.3.7", "9.3.8"],
    verdict: FAILED_OK,
    why: "§5.4, §5.6: a message's type is its first frame's opcode; fragmented text comes " +
      "back binary (not 9.3.9: a single 4 MiB fragment is one frame).",
  },
  {
    flaw: "echo-fragmented-as-binary",
    cases: ["5.3", "5.4", "5.5", "5.6", "5.7", "5.8", "5.15", "5.19", "5.20"],
    verdict: FAILED_OK,
    why: "The same for the fragmented text messages of group 5.",
  },
  {
    flaw: "echo-fragmented-as-binary",
    cases: ["6.1.2", "6.1.3", "6.2.2", "6.2.3", "6.2.4"],
    verdict: FAILED_OK,
    why: "The same for the fragmented valid text messages of group 6.",
  },
];

/** Flaws this file does not run over the Autobahn cases, and where they are proven instead. */
const UNOBSERVABLE: Partial<Record<Flaw, string>> = Object.fromEntries([
  ...FLAW_FAMILIES.handshake.map((f) => [f, "proven in tests/g00_handshake_test.ts"]),
  ...[...FLAW_FAMILIES.masking, ...FLAW_FAMILIES.serverOutput, ...FLAW_FAMILIES.close].map((
    f,
  ) => [f, "proven in tests/g08_g11_test.ts (groups 8, 11, and the checks on what servers send)"]),
  ...FLAW_FAMILIES.deflate.map((f) => [f, "proven in tests/peers/strict_server_test.ts"]),
]);

// ---------------------------------------------------------------------------
// Helpers

type Matched = NonNullable<Verdict["matched"]> | "none";

function matchedOf(verdict: Verdict): Matched {
  return verdict.matched ?? "none";
}

/** What "the same verdict" compares. */
function summary(verdict: Verdict): string {
  return `${verdict.behavior} / ${verdict.behaviorClose} (matched ${matchedOf(verdict)})`;
}

function explain(o: CaseOutcome): string {
  return `${o.spec.id}: ${summary(o.verdict)}, close code ${o.remoteCloseCode ?? "none"}; ` +
    `${o.verdict.result} ${o.verdict.resultClose}`;
}

function specOf(id: string): CaseSpec {
  return CASES.find((c) => c.id === id)!;
}

// ---------------------------------------------------------------------------
// Tests

Deno.test("flaw table: well formed, and consistent with what the fixtures expect", () => {
  for (const row of FLAW_TABLE) assert.ok((FLAWS as readonly string[]).includes(row.flaw));
  const tabled = new Set(FLAW_TABLE.map((r) => r.flaw));
  assert.deepEqual(
    FLAWS.filter((f) => !tabled.has(f)).sort(),
    Object.keys(UNOBSERVABLE).sort(),
    "every flaw has rows, or is named unobservable",
  );
  // No case in two rows of one flaw.
  for (const flaw of tabled) {
    const seen = new Set<string>();
    for (const row of FLAW_TABLE.filter((r) => r.flaw === flaw)) {
      for (const id of expand(row.cases)) {
        assert.ok(!seen.has(id), `${flaw}: case ${id} is in two rows`);
        seen.add(id);
      }
    }
  }
  // A row's verdict fails exactly when it says nothing to the contrary.
  for (const row of FLAW_TABLE) {
    const failing = isFailing(row.verdict);
    if (row.passes) {
      assert.ok(!failing, `${row.flaw} ${row.cases[0]}: said to pass, yet failing`);
    } else assert.ok(failing, `${row.flaw} ${row.cases[0]}: not failing, and no reason why`);
  }
  // The case sets, checked against the fixtures' own expectations.
  const informational = new Set(expand(INFORMATIONAL));
  assert.deepEqual(
    informational,
    new Set(CASES.filter((c) => c.expect.level === "may").map((c) => c.id)),
  );
  const byPeer = CASES.filter((c) => c.expect.close.by === "peer").map((c) => c.id);
  assert.deepEqual(new Set(expand(PEER_FAILS)), new Set(byPeer));
  const utf8 = CASES.filter((c) => c.expect.close.codes.includes(1007) && c.id[0] === "6");
  assert.deepEqual(new Set(expand(INVALID_UTF8)), new Set(utf8.map((c) => c.id)));
  const group6 = CASES.filter((c) => c.id.startsWith("6.")).map((c) => c.id);
  assert.deepEqual(
    new Set([...expand(VALID_UTF8), ...expand(INVALID_UTF8)]),
    new Set(group6),
    "group 6 is valid or invalid UTF-8",
  );
  assert.equal(expand(VALID_UTF8).length + expand(INVALID_UTF8).length, group6.length);
  const clean = CASES.filter((c) => c.expect.close.clean && c.expect.level !== "may");
  assert.deepEqual(new Set(expand(CLEAN_CLOSE)), new Set(clean.map((c) => c.id)));
  assert.equal(expand(CLEAN_SHORT_TIMER).length + expand(CLEAN_LONG_TIMER).length, clean.length);
  const failAfter = (id: string) => {
    const step = specOf(id).steps.find((s) => s.kind === "failAfter");
    return step?.kind === "failAfter" ? step.failAfter : Infinity;
  };
  for (const id of expand(CLEAN_SHORT_TIMER)) assert.ok(failAfter(id) <= 1, id);
  for (const id of expand(CLEAN_LONG_TIMER)) assert.ok(failAfter(id) > 1, id);
  const badClose = CASES.filter((c) =>
    c.expect.close.by === "suite" && !c.expect.close.clean && c.expect.level !== "may"
  );
  assert.deepEqual(new Set(expand(BAD_CLOSE)), new Set(badClose.map((c) => c.id)));
  const echoThenLate = CASES.filter((c) =>
    c.expect.close.by === "peer" && c.expect.ok.length > 0 &&
    c.steps.some((s) => ("chop" in s && s.chop) || ("sync" in s && s.sync))
  );
  assert.deepEqual(new Set(ECHO_THEN_LATE_FRAMES), new Set(echoThenLate.map((c) => c.id)));
  const eitherWay = CASES.filter((c) => c.expect.mayFailBeforeAnswering);
  assert.deepEqual(new Set(ECHO_THEN_LATE_FRAMES), new Set(eitherWay.map((c) => c.id)));
  assert.equal(
    informational.size + expand([...CLEAN_CLOSE, ...PEER_FAILS, ...BAD_CLOSE]).length,
    CASES.length,
    "every case is informational, or closed cleanly by the suite, or a peer failure, or a bad close",
  );
});

Deno.test("strict server: every case passes", async () => {
  const started = performance.now();
  const strict = await strictOutcomes();
  console.log(`strict run: ${Math.round(performance.now() - started)} ms`);
  assert.equal(strict.size, CASES.length);
  const informational = new Set(expand(INFORMATIONAL));
  const wrong: string[] = [];
  for (const o of strict.values()) {
    if (isFailing(o.verdict)) wrong.push(`failing: ${explain(o)}`);
    // The strict server takes the RFC's first alternative everywhere: it echoes
    // both messages of 7.1.6 and refuses the codes of 7.13 with 1002.
    const expected = informational.has(o.spec.id)
      ? "INFORMATIONAL / INFORMATIONAL (matched ok)"
      : "OK / OK (matched ok)";
    if (summary(o.verdict) !== expected) wrong.push(`not ${expected}: ${explain(o)}`);
    if (o.violations.length > 0) wrong.push(`violations: ${explain(o)}`);
  }
  assert.deepEqual(wrong, []);
  for (const id of expand(["7.13.*"])) assert.equal(strict.get(id)!.remoteCloseCode, 1002);
});

Deno.test("3.3, 3.4, 4.1.5, 4.2.5: echoing before failing and failing first are both OK; accepting the bad frame fails", async (t) => {
  const racing = expand(ECHO_THEN_LATE_FRAMES);
  // The same frames in one write: the outcome is reproducible, and Autobahn's rule stays.
  const oneWrite = ["3.2", "4.1.3", "4.1.4", "4.2.3", "4.2.4"];
  const cases = [...racing, ...oneWrite].map(specOf);
  const configs: {
    name: string;
    options: StrictServerOptions;
    expected: (id: string) => string;
  }[] = [
    {
      name: "strict server: echoes, then fails",
      options: {},
      expected: () => "OK / OK (matched ok)",
    },
    {
      name: "echoAfterNextHeader: fails before echoing",
      options: { echoAfterNextHeader: true },
      expected: (id) =>
        racing.includes(id) ? "OK / OK (matched okPrefix)" : "NON-STRICT / OK (matched nonStrict)",
    },
    ...[{}, { echoAfterNextHeader: true }].flatMap((option) =>
      (["accept-rsv", "accept-reserved-opcodes"] as const).map((flaw) => ({
        name: `${flaw}${option.echoAfterNextHeader ? ", echoAfterNextHeader" : ""}`,
        options: { ...option, flaws: [flaw] },
        expected: (id: string) =>
          // Each flaw breaks the rule of its own group: the frame is accepted, the ping answered.
          id.startsWith(flaw === "accept-rsv" ? "3." : "4.")
            ? "FAILED / FAILED (matched none)"
            : racing.includes(id) && option.echoAfterNextHeader
            ? "OK / OK (matched okPrefix)"
            : option.echoAfterNextHeader
            ? "NON-STRICT / OK (matched nonStrict)"
            : "OK / OK (matched ok)",
      }))
    ),
  ];
  for (const { name, options, expected } of configs) {
    await t.step(name, async () => {
      const server = await spawnStrictServer(options);
      try {
        const outcomes = await runAndJudgeCases(cases, { url: server.url, jobs: JOBS });
        const wrong = outcomes.filter((o) => summary(o.verdict) !== expected(o.spec.id))
          .map((o) => `expected ${expected(o.spec.id)}: ${explain(o)}`);
        assert.deepEqual(wrong, []);
        for (const o of outcomes.filter((o) => o.verdict.matched === "okPrefix")) {
          assert.match(o.verdict.result, /failed the connection after 0 of the 1 events/);
        }
      } finally {
        await server.close();
      }
    });
  }
});

Deno.test("failing on a bad frame or close with a code other than the fitting one is NON-STRICT; an empty close answering a bad close too", async (t) => {
  const invalidUtf8 = expand(INVALID_UTF8);
  const emptyReplyWeighs = ["7.3.2", "7.5.1", ...expand(INVALID_CLOSE_CODE)];
  const cases = expand([...PEER_FAILS, ...BAD_CLOSE]).map(specOf);
  const ok = "OK / OK (matched ok)";
  const nonStrict = "NON-STRICT / INFORMATIONAL (matched ok)";
  // The close code each legal alternative sends, and the verdict it must get.
  const configs: {
    name: string;
    options: StrictServerOptions;
    expected: (id: string) => [verdict: string, code: number | null];
  }[] = [
    {
      name: "invalidUtf8Code 1002 (Chromium's): NON-STRICT where 1007 fits, OK in 7.5.1",
      options: { invalidUtf8Code: 1002 },
      expected: (id) => [invalidUtf8.includes(id) ? nonStrict : ok, 1002],
    },
    {
      name: "1003 for every error: NON-STRICT (groups 2-5, 6, 7.3.x, 7.5.1, 7.9.x)",
      options: { protocolErrorCode: 1003, invalidUtf8Code: 1003 },
      expected: () => [nonStrict, 1003],
    },
    {
      name: "empty-close-on-bad-close: NON-STRICT where the suite's close is bad",
      options: { flaws: ["empty-close-on-bad-close"] },
      expected: (id) =>
        emptyReplyWeighs.includes(id)
          ? [nonStrict, null]
          : [ok, invalidUtf8.includes(id) ? 1007 : 1002],
    },
  ];
  for (const { name, options, expected } of configs) {
    await t.step(name, async () => {
      const server = await spawnStrictServer(options);
      try {
        const outcomes = await runAndJudgeCases(cases, { url: server.url, jobs: JOBS });
        const wrong = outcomes.filter((o) => {
          const [verdict, code] = expected(o.spec.id);
          return summary(o.verdict) !== verdict || (o.remoteCloseCode ?? null) !== code;
        }).map((o) => `expected ${expected(o.spec.id).join(", code ")}: ${explain(o)}`);
        assert.deepEqual(wrong, []);
      } finally {
        await server.close();
      }
    });
  }
});

Deno.test("answering the suite's normal close with another valid code is NON-STRICT, with 1000 OK, with 1005 FAILED", async (t) => {
  // Every case where the suite closes normally and awaits a clean close, but the long ones.
  const cases = expand([
    ...CLEAN_SHORT_TIMER,
    ...["2.1", "2.7", "2.9", "5.3", "5.6", "5.19", "6.1.1", "9.1.1", "9.7.1", "10.1.1"],
  ]).map(specOf);
  const repliesWith = (spec: CaseSpec, code: number) => spec.expect.close.codes.includes(code);
  const configs: { code: number; expected: (spec: CaseSpec) => string }[] = [
    { code: 1000, expected: () => "OK / OK (matched ok)" },
    {
      code: 1002,
      expected: (spec) =>
        repliesWith(spec, 1002)
          ? "OK / OK (matched ok)"
          : "NON-STRICT / INFORMATIONAL (matched ok)",
    },
    // §7.4.1: 1005 MUST NOT be set in a close frame; the suite fails the connection on it.
    { code: 1005, expected: () => "FAILED / UNCLEAN (matched none)" },
  ];
  for (const { code, expected } of configs) {
    await t.step(`closeReplyCode ${code}`, async () => {
      const server = await spawnStrictServer({ closeReplyCode: code });
      try {
        const outcomes = await runAndJudgeCases(cases, { url: server.url, jobs: JOBS });
        const wrong = outcomes.filter((o) =>
          summary(o.verdict) !== expected(o.spec) || o.remoteCloseCode !== code
        ).map((o) => `expected ${expected(o.spec)}: ${explain(o)}`);
        assert.deepEqual(wrong, []);
        for (const o of outcomes.filter((o) => o.verdict.behavior === "NON-STRICT")) {
          assert.match(o.verdict.resultClose, /typically echoes the code it received \(§5\.5\.1\)/);
        }
        for (const o of outcomes.filter((o) => o.verdict.behavior === "FAILED")) {
          assert.match(o.verdict.result, /broke a MUST in what it sent: .*1005.*§7\.4\.1/);
        }
      } finally {
        await server.close();
      }
    });
  }
});

Deno.test("flaws: each changes exactly the cases its table rows name", async (t) => {
  const strict = await strictOutcomes();
  const flaws = [...new Set(FLAW_TABLE.map((r) => r.flaw))];
  for (const flaw of flaws) {
    await t.step(flaw, async () => {
      const rows = FLAW_TABLE.filter((r) => r.flaw === flaw);
      const started = performance.now();
      const flawed = await runAll([flaw]);
      console.log(`${flaw}: ${Math.round(performance.now() - started)} ms`);
      const rowOf = new Map<string, Row>();
      for (const row of rows) for (const id of expand(row.cases)) rowOf.set(id, row);
      const wrong: string[] = [];
      for (const id of ids) {
        const o = flawed.get(id)!;
        const row = rowOf.get(id);
        if (!row) {
          const before = strict.get(id)!;
          if (summary(o.verdict) !== summary(before.verdict)) {
            wrong.push(`unlisted case changed from ${summary(before.verdict)}: ${explain(o)}`);
          }
          continue;
        }
        const got = o.verdict;
        if (
          got.behavior !== row.verdict.behavior || got.behaviorClose !== row.verdict.behaviorClose
        ) {
          wrong.push(
            `expected ${row.verdict.behavior} / ${row.verdict.behaviorClose}: ${explain(o)}`,
          );
        }
        if (row.matched !== undefined && matchedOf(got) !== row.matched) {
          wrong.push(`expected matched ${row.matched}: ${explain(o)}`);
        }
        if (row.code !== undefined && (o.remoteCloseCode ?? null) !== row.code) {
          wrong.push(`expected close code ${row.code ?? "none"}: ${explain(o)}`);
        }
        if (isFailing(got) !== !row.passes) {
          wrong.push(`isFailing is ${isFailing(got)}: ${explain(o)}`);
        }
        const found = o.violations.map((x) => `${x.rule} §${x.rfc} ${x.level}`);
        const want = row.violation
          ? [`${row.violation.rule} §${row.violation.rfc} ${row.violation.level}`]
          : [];
        if (found.join() !== want.join()) {
          wrong.push(`expected violations [${want}], got [${found}]: ${explain(o)}`);
        }
      }
      assert.deepEqual(wrong, []);
    });
  }
});
