import { expandRange, type Expected, flawExpectations, v } from "./support.ts";
/**
 * Group 0 (opening handshake) proven against the strict reference server:
 * every case passes against it (OK / OK; the informational ones
 * INFORMATIONAL), and each case names the flaw that breaks its rule; under
 * that flaw the case fails (NON-STRICT where the rule is a SHOULD) while the
 * other group-0 cases keep their strict verdict, except where a flaw's own
 * nature changes them too (listed, with why). Variants of the strict server that
 * take another reaction the RFC allows (version 8 understood, 400 for 426, 200 or
 * 404 where no upgrade is asked for, another error status) fail no case. The
 * informational cases cannot fail by design: two peers that behave differently
 * get different observed results instead.
 *
 * The group's cases are small (no request over 64 KiB), so the strict server
 * runs in this process.
 *
 *   deno test --allow-all tests/g00_handshake_test.ts
 */

import assert from "node:assert/strict";
import type { CaseSpec } from "../harness/case.ts";
import { caseReport } from "../harness/report.ts";
import { runAndJudgeCases } from "../harness/suite.ts";
import { type CaseOutcome, isFailing, type Verdict } from "../harness/verdict.ts";
import { group } from "../fixtures/g00_handshake.ts";
import {
  type Flaw,
  FLAW_FAMILIES,
  FLAWS,
  startStrictServer,
  type StrictServerOptions,
} from "./peers/strict_server.ts";

/** The group's server cases (0.1-0.6); 0.7-0.9 test clients (tests/g00_client_test.ts). */
const CASES: readonly CaseSpec[] = group.cases.filter((c) => c.peers?.includes("server"));
const IDS = CASES.map((c) => c.id);
const AGENT = "wsconform-strict";

// ---------------------------------------------------------------------------
// Running the group

interface Result {
  outcome: CaseOutcome;
  /** HTTP status of the server's answer to the opening handshake, if any. */
  status?: number;
  report: ReturnType<typeof caseReport>;
}

/** Runs `cases` against `url`; results by case id, with each case's JSON report. */
async function runGroup(
  url: string,
  cases: readonly CaseSpec[] = CASES,
): Promise<Map<string, Result>> {
  const seen = new Map<string, Omit<Result, "outcome">>();
  const outcomes = await runAndJudgeCases(cases, {
    url: new URL(url),
    jobs: 16,
    onCaseDone: (run) => {
      seen.set(run.spec.id, { status: run.handshake.status, report: caseReport(run, AGENT) });
    },
  });
  return new Map(outcomes.map((o) => [o.spec.id, { outcome: o, ...seen.get(o.spec.id)! }]));
}

/** Cases of the group against the strict server (127.0.0.1, any free port) configured so. */
async function runStrict(
  flaws: readonly Flaw[],
  cases: readonly CaseSpec[] = CASES,
  options: Omit<StrictServerOptions, "flaws"> = {},
): Promise<Map<string, Result>> {
  const server = startStrictServer({ flaws: [...flaws], ...options });
  try {
    return await runGroup(server.url, cases);
  } finally {
    await server.close();
  }
}

let strictRun: Promise<Map<string, Result>> | undefined;
/** The run against the strict server, done once and shared. */
function strictResults(): Promise<Map<string, Result>> {
  return strictRun ??= runStrict([]);
}

/** A second peer for the Origin case: Deno's own server, refusing a foreign Origin with 403. */
function serveOriginChecking(): { url: string; close(): Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const origin = request.headers.get("origin");
    if (origin !== null && origin !== new URL(request.url).origin) {
      return new Response("foreign origin\n", { status: 403 });
    }
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onmessage = (event) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(event.data);
    };
    socket.onerror = () => {};
    return response;
  });
  const { port } = server.addr as Deno.NetAddr;
  return { url: `ws://127.0.0.1:${port}/`, close: () => server.shutdown() };
}

// ---------------------------------------------------------------------------
// The table: each case, the flaw that breaks its rule, and the verdict then

/** An accept case whose handshake never completes. */
const NO_CONNECTION = v("FAILED", "FAILED");
/** A refuse case the server accepted (the suite then closes cleanly), or refused wrongly. */
const WRONG_ANSWER = v("FAILED", "OK");

interface Row {
  /** Case ids; "0.2.1-7" stands for 0.2.1 to 0.2.7. */
  cases: string;
  /** The flaws that break the rule these cases check; each gives `verdict`. */
  flaws: Flaw[];
  verdict: Expected;
  why: string;
}

const RULES: Row[] = [
  {
    cases: "0.1.1",
    flaws: ["select-unoffered-protocol"],
    verdict: NO_CONNECTION,
    why: "§4.2.2: the valid request must get a valid 101; this flaw's 101 names a " +
      "subprotocol never offered, so no connection is established.",
  },
  {
    cases: "0.1.2-7",
    flaws: ["strict-token-match"],
    verdict: NO_CONNECTION,
    why: "§4.2.1: header names and the Upgrade and Connection tokens are case-insensitive, " +
      "Connection is a token list; the flaw wants them exactly as in the RFC's example.",
  },
  {
    cases: "0.1.8",
    flaws: ["reject-query-string"],
    verdict: NO_CONNECTION,
    why: "§3, §4.1: the resource name includes the query; the flaw refuses any target with one.",
  },
  {
    cases: "0.2.1-7",
    flaws: ["accept-bad-key"],
    verdict: WRONG_ANSWER,
    why: "§4.2.1, §11.3.1: exactly one key, base64 of 16 bytes; the flaw takes any.",
  },
  {
    cases: "0.2.8",
    flaws: ["no-version-list"],
    verdict: WRONG_ANSWER,
    why: "§4.2.2, §4.4: a refusal of a version must list the versions understood; the flaw " +
      "refuses with 400 and no Sec-WebSocket-Version (a 101 would be informational).",
  },
  {
    cases: "0.2.9",
    flaws: ["accept-any-version", "no-version-list"],
    verdict: WRONG_ANSWER,
    why: "§4.2.2, §4.4: version 14 must be refused, listing 13; one flaw accepts it, the " +
      "other refuses without Sec-WebSocket-Version.",
  },
  {
    cases: "0.2.10",
    flaws: ["accept-no-version"],
    verdict: WRONG_ANSWER,
    why: "§4.2.1: a handshake needs Sec-WebSocket-Version; the flaw accepts one without it.",
  },
  {
    cases: "0.2.11-12",
    flaws: ["accept-any-method"],
    verdict: WRONG_ANSWER,
    why: "§4.1, §4.2.1: an HTTP/1.1 GET only; the flaw accepts POST and HTTP/1.0.",
  },
  {
    cases: "0.2.13",
    flaws: ["accept-no-host"],
    verdict: WRONG_ANSWER,
    why: "§4.2.1: Host is required; the flaw accepts a request without it.",
  },
  {
    cases: "0.2.14-17",
    flaws: ["accept-no-upgrade-token"],
    verdict: WRONG_ANSWER,
    why: "RFC 7230 §6.7, §4.2.1: without the websocket token in Upgrade and the Upgrade " +
      "token in Connection no upgrade to WebSocket is asked for; the flaw checks neither " +
      "and switches anyway.",
  },
  {
    cases: "0.3.1-4",
    flaws: ["select-unoffered-protocol"],
    verdict: NO_CONNECTION,
    why: "§4.2.2: only an offered subprotocol may be selected; the flaw always selects chat, " +
      "which no case offers, and the suite fails such a 101 (§4.1).",
  },
  {
    cases: "0.4.1-4",
    flaws: ["accept-unknown-extension"],
    verdict: NO_CONNECTION,
    why: "§9.1, RFC 7692 §5: an unknown extension or an invalid permessage-deflate offer must " +
      "be declined; the flaw echoes the first offer.",
  },
  {
    cases: "0.5.1-2",
    flaws: ["ignore-early-frames"],
    verdict: v("NON-STRICT", "OK"),
    why: "A SHOULD: frames read together with the request head are still frames; the flaw " +
      "drops them, no echo comes, and the suite's timer closes (1001, echoed).",
  },
];

/**
 * Strict servers that take another reaction the RFC allows: no case may fail,
 * and only the cases listed change their verdict.
 */
interface Alternative {
  name: string;
  options: Omit<StrictServerOptions, "flaws">;
  /** The statuses the variant answers these cases with, as a check that it took its path. */
  statuses: [cases: string, status: number][];
  changed: { cases: string; verdict: Expected }[];
  why: string;
}

const NOT_STRICT = v("NON-STRICT", "OK");

const ALTERNATIVES: Alternative[] = [
  {
    name: "understands version 8",
    options: { versions: ["8"] },
    statuses: [["0.2.8", 101], ["0.2.9-10", 426]],
    changed: [{ cases: "0.2.8", verdict: v("INFORMATIONAL", "OK") }],
    why: "§4.2.2 item 4 refuses only a version the server does not understand; its " +
      "refusals list 13, 8 (§4.4).",
  },
  {
    name: "refuses versions with 400",
    options: { versionRefusalStatus: 400 },
    statuses: [["0.2.8-10", 400]],
    changed: [],
    why: '426 is §4.2.2\'s example ("such as"); 400 with the version list is as right.',
  },
  {
    name: "answers requests without the upgrade tokens with 200",
    options: { plainHttpStatus: 200 },
    statuses: [["0.2.14-17", 200]],
    changed: [],
    why: "Without the tokens no upgrade is asked for: an ordinary HTTP server answers 200.",
  },
  {
    name: "answers requests without the upgrade tokens with 404",
    options: { plainHttpStatus: 404 },
    statuses: [["0.2.14-17", 404]],
    changed: [],
    why: "As above: a WebSocket-only endpoint has no plain resource there.",
  },
  {
    name: "refuses malformed handshakes with 403",
    options: { badHandshakeStatus: 403 },
    statuses: [["0.2.1-7", 403], ["0.2.11-13", 403]],
    changed: [],
    why: '§4.2.1 asks for an error code, "such as 400": any 4xx is one.',
  },
  {
    name: "refuses malformed handshakes with 500",
    options: { badHandshakeStatus: 500 },
    statuses: [["0.2.1-7", 500], ["0.2.11-13", 500]],
    changed: [{ cases: "0.2.1-7", verdict: NOT_STRICT }, {
      cases: "0.2.11-13",
      verdict: NOT_STRICT,
    }],
    why: "An error code, so the MUST is kept, but a server error for the client's fault: " +
      "NON-STRICT, never FAILED.",
  },
];

/** Other cases a flaw changes by its nature, beyond the rule it breaks. */
const COLLATERAL: Row[] = [
  {
    cases: "0.1.2-8",
    flaws: ["select-unoffered-protocol"],
    verdict: NO_CONNECTION,
    why: "Every 101 of this flaw names an unoffered subprotocol: no handshake it accepts is valid.",
  },
  {
    cases: "0.4.1-4",
    flaws: ["select-unoffered-protocol"],
    verdict: NO_CONNECTION,
    why: "As above.",
  },
  {
    cases: "0.5.1-2",
    flaws: ["select-unoffered-protocol"],
    verdict: v("NON-STRICT", "INFORMATIONAL"),
    why: "As above; the case's level (SHOULD) then weighs the failed handshake as not strict.",
  },
  {
    cases: "0.2.8",
    flaws: ["accept-any-version"],
    verdict: v("INFORMATIONAL", "OK"),
    why: "The flaw accepts every version, 8 too, which a server may understand.",
  },
];

/** The handshake flaws of the strict server; each must break some case here. */
const HANDSHAKE_FLAWS: readonly Flaw[] = FLAW_FAMILIES.handshake;

const expand = (range: string): string[] => expandRange(range, IDS);

const INFORMATIONAL = CASES.filter((c) => c.expect.level === "may").map((c) => c.id);

function summary(verdict: Pick<Verdict, "behavior" | "behaviorClose">): string {
  return `${verdict.behavior} / ${verdict.behaviorClose}`;
}

function explain(r: Result): string {
  const { spec, verdict } = r.outcome;
  return `${spec.id}: ${summary(verdict)} (status ${r.status ?? "none"}); ${verdict.result} ` +
    verdict.resultClose;
}

/** What each flaw must turn each case into: its rule rows, then the collateral ones. */
function expectations(flaw: Flaw) {
  return flawExpectations(flaw, RULES, COLLATERAL, (row) => expand(row.cases));
}

// ---------------------------------------------------------------------------
// Tests

Deno.test("group 0: ids, levels and shapes; the table covers every case", () => {
  assert.equal(group.id, "0");
  assert.equal(new Set(IDS).size, IDS.length, "ids are unique");
  for (const c of CASES) {
    assert.match(c.id, /^0\.[1-6]\.\d+$/);
    assert.ok(c.id.slice(0, 3) in group.subgroups!, `${c.id} has a subgroup title`);
    assert.ok(c.rfc.length > 0 && c.requirement.length > 40, c.id);
    // The requirement names its level, as the verdict weighs it.
    const level = c.expect.level ?? "must";
    assert.match(c.requirement, { must: /MUST/, should: /SHOULD/, may: /MAY/ }[level], c.id);
    if (c.handshake && c.handshake.expect.outcome !== "accept") {
      assert.deepEqual(c.steps, [{ kind: "close", close: { code: 1000 } }], c.id);
      assert.deepEqual(c.expect, { ok: [], close: { by: "suite", codes: [1000], clean: false } });
    } else {
      assert.equal(c.expect.close.by, "suite", c.id);
      assert.equal(c.expect.close.clean, true, c.id);
    }
  }
  assert.deepEqual(INFORMATIONAL, expand("0.6.1-6"));
  assert.deepEqual(
    CASES.filter((c) => c.expect.level === "should").map((c) => c.id),
    ["0.5.1", "0.5.2"],
  );
  const outcome = (o: string) =>
    CASES.filter((c) => c.handshake?.expect.outcome === o).map((c) => c.id);
  assert.deepEqual(outcome("refuse"), expand("0.2.1-13"));
  assert.deepEqual(outcome("not-websocket"), expand("0.2.14-17"));
  // Every case with a rule has exactly one rule row, naming flaws the server has.
  const ruled = RULES.flatMap((r) => expand(r.cases));
  assert.equal(new Set(ruled).size, ruled.length, "one rule row per case");
  assert.deepEqual(
    new Set(ruled),
    new Set(IDS.filter((id) => !INFORMATIONAL.includes(id))),
    "every non-informational case has a rule row",
  );
  for (const row of [...RULES, ...COLLATERAL]) {
    for (const flaw of row.flaws) assert.ok((FLAWS as readonly string[]).includes(flaw), flaw);
  }
  // A broken rule fails its case, or is NON-STRICT where the rule is a SHOULD.
  for (const row of RULES) {
    for (const id of expand(row.cases)) {
      const should = CASES.find((c) => c.id === id)!.expect.level === "should";
      if (should) assert.equal(row.verdict.behavior, "NON-STRICT", id);
      else assert.ok(isFailing(row.verdict), id);
    }
  }
  assert.deepEqual(
    new Set(RULES.flatMap((r) => r.flaws)),
    new Set(HANDSHAKE_FLAWS),
    "every handshake flaw breaks some case's rule",
  );
});

Deno.test("strict server: every case OK / OK, the informational ones INFORMATIONAL", async () => {
  const strict = await strictResults();
  assert.equal(strict.size, CASES.length);
  const wrong: string[] = [];
  for (const r of strict.values()) {
    const info = INFORMATIONAL.includes(r.outcome.spec.id);
    const expected = info ? "INFORMATIONAL / INFORMATIONAL" : "OK / OK";
    if (summary(r.outcome.verdict) !== expected) wrong.push(`not ${expected}: ${explain(r)}`);
    if (!info && r.outcome.verdict.matched === "nonStrict") wrong.push(`non-strict: ${explain(r)}`);
  }
  assert.deepEqual(wrong, []);
  // The strict server accepts with 101, and refuses version errors with 426, others with 400.
  for (const [id, r] of strict) {
    const expected = id.startsWith("0.2.")
      ? (expand("0.2.8-10").includes(id) ? 426 : 400)
      : expand("0.6.2-5").includes(id) // heads over its 8 KiB limit
      ? 431
      : 101;
    assert.equal(r.status, expected, id);
  }
});

Deno.test("refusal cases: the report holds the HTTP request and response", async () => {
  const strict = await strictResults();
  for (const id of expand("0.2.1-17")) {
    const { report, status } = strict.get(id)!;
    assert.equal(report.behavior, "OK", id);
    assert.match(report.result, new RegExp(`(refused the handshake with|answered) ${status}`), id);
    assert.ok(report.httpRequest?.endsWith("\r\n\r\n"), id);
    assert.ok(report.httpResponse !== null, id);
    assert.match(report.httpResponse!, new RegExp(`^HTTP/1\\.1 ${status} `), id);
    assert.match(report.httpResponse!, /\r\nServer: wsconform-strict\r\n/, id);
    if (status === 426) assert.match(report.httpResponse!, /\r\nSec-WebSocket-Version: 13\r\n/);
  }
  const request = (id: string) => strict.get(id)!.report.httpRequest!;
  assert.match(request("0.2.11"), /^POST \/ HTTP\/1\.1\r\n/);
  assert.match(request("0.2.12"), /^GET \/ HTTP\/1\.0\r\n/);
  assert.doesNotMatch(request("0.2.13"), /\r\nHost:/i);
  assert.equal(request("0.2.2").match(/\r\nSec-WebSocket-Key: /g)?.length, 2);
  assert.doesNotMatch(request("0.2.10"), /Sec-WebSocket-Version/i);
});

Deno.test("flaws: each breaks the cases whose rule it violates, the others keep their verdict", async (t) => {
  const strict = await strictResults();
  for (const flaw of HANDSHAKE_FLAWS) {
    await t.step(flaw, async () => {
      const expected = expectations(flaw);
      const flawed = await runStrict([flaw]);
      const wrong: string[] = [];
      for (const id of IDS) {
        const r = flawed.get(id)!;
        const got = r.outcome.verdict;
        const entry = expected.get(id);
        if (!entry) {
          const before = strict.get(id)!.outcome.verdict;
          if (summary(got) !== summary(before)) {
            wrong.push(`unlisted case changed from ${summary(before)}: ${explain(r)}`);
          }
          continue;
        }
        if (summary(got) !== summary(entry.row.verdict)) {
          wrong.push(`expected ${summary(entry.row.verdict)}: ${explain(r)}`);
        }
        const should = r.outcome.spec.expect.level === "should";
        if (entry.rule && !(should ? got.behavior === "NON-STRICT" : isFailing(got))) {
          wrong.push(`rule not seen as broken: ${explain(r)}`);
        }
      }
      assert.deepEqual(wrong, []);
    });
  }
});

Deno.test("legal alternatives: a server taking another allowed reaction fails no case", async (t) => {
  const strict = await strictResults();
  for (const alternative of ALTERNATIVES) {
    await t.step(alternative.name, async () => {
      const results = await runStrict([], CASES, alternative.options);
      const wrong: string[] = [];
      for (const [range, status] of alternative.statuses) {
        for (const id of expand(range)) {
          if (results.get(id)!.status !== status) {
            wrong.push(`not ${status}: ${explain(results.get(id)!)}`);
          }
        }
      }
      const changed = new Map(
        alternative.changed.flatMap((c) => expand(c.cases).map((id) => [id, c.verdict] as const)),
      );
      for (const [id, r] of results) {
        const expected = changed.get(id) ?? strict.get(id)!.outcome.verdict;
        if (summary(r.outcome.verdict) !== summary(expected)) {
          wrong.push(`expected ${summary(expected)}: ${explain(r)}`);
        }
        if (isFailing(r.outcome.verdict)) wrong.push(`failed: ${explain(r)}`);
      }
      assert.deepEqual(wrong, []);
      // A version refusal carries the versions understood, whatever its status.
      for (const id of expand("0.2.8-10")) {
        const r = results.get(id)!;
        if (r.status !== 101) {
          assert.match(r.report.httpResponse!, /\r\nSec-WebSocket-Version: 13\b/, id);
        }
      }
    });
  }
});

Deno.test("informational cases: two peers that differ get different observed results", async () => {
  const headSizes = CASES.filter((c) => expand("0.6.1-5").includes(c.id));
  const origin = CASES.filter((c) => c.id === "0.6.6");
  // Head sizes: a server reading at most 2 KiB of head refuses them all, one reading 128 KiB
  // takes them all. Origin: the strict server ignores it; the other peer refuses a foreign one.
  const small = await runStrict([], headSizes, { maxHead: 2 * 1024 });
  const large = await runStrict([], headSizes, { maxHead: 128 * 1024 });
  const strict = await strictResults();
  const peer = serveOriginChecking();
  let checking: Map<string, Result>;
  try {
    checking = await runGroup(peer.url, origin);
  } finally {
    await peer.close();
  }
  const pairs = [
    ...headSizes.map((c) => [small.get(c.id)!, large.get(c.id)!, 431, 101] as const),
    [strict.get("0.6.6")!, checking.get("0.6.6")!, 101, 403] as const,
  ];
  for (const [a, b, statusA, statusB] of pairs) {
    const id = a.outcome.spec.id;
    for (const r of [a, b]) {
      assert.equal(summary(r.outcome.verdict), "INFORMATIONAL / INFORMATIONAL", explain(r));
      assert.ok(!isFailing(r.outcome.verdict), id);
      assert.match(r.report.httpResponse!, new RegExp(`^HTTP/1\\.1 ${r.status} `), id);
      // The status is reported as a finding, beside the verdicts.
      assert.deepEqual(r.outcome.findings.map((f) => f.value), [r.status], id);
    }
    assert.deepEqual([a.status, b.status], [statusA, statusB], id);
    assert.notEqual(a.outcome.verdict.result, b.outcome.verdict.result, id);
    const [accepted, refused] = a.status === 101 ? [a, b] : [b, a];
    assert.match(accepted.outcome.verdict.result, /^Informational: the events matched/);
    assert.match(refused.outcome.verdict.result, /^Informational: .*never completed/);
  }
});
