/**
 * Groups 8 (masking and header encodings) and 11 (close, limits and
 * keepalive) in the client role (issue 10): the suite is the server, the
 * strict reference client (tests/peers/strict_client.ts) the peer. Every
 * client case of both groups passes against it (the informational ones
 * INFORMATIONAL, with their findings), and against clients taking a legal
 * alternative (dropping TCP where they must fail, closing TCP first where
 * the case does not ask otherwise). Each case with a rule fails under the
 * flaw that breaks it (NON-STRICT for a SHOULD), while the other cases run
 * with it keep their verdicts; the checks on what a client sends fire when a
 * case provokes a close code no endpoint may send (1005, 1006, 1015).
 *
 * The cases run one at a time, each against the strict client in this
 * process (tests/support.ts againstStrictClient).
 *
 *   deno test --allow-all tests/g08_g11_client_test.ts
 */

import assert from "node:assert/strict";
import { CLIENT_CASES, SERVER_CASES } from "../fixtures/mod.ts";
import type { Finding } from "../harness/measure.ts";
import { isFailing } from "../harness/verdict.ts";
import type { StrictClientOptions } from "./peers/strict_client.ts";
import {
  againstStrictClient,
  type ClientCaseResult,
  expandRange,
  type Expected,
  v,
} from "./support.ts";

const inGroups = (id: string) => id.startsWith("8.") || id.startsWith("11.");
const CLIENT_IDS = CLIENT_CASES.map((c) => c.id).filter(inGroups);
const expand = (ranges: readonly string[]): string[] =>
  ranges.flatMap((range) => expandRange(range, CLIENT_IDS));

const MiB = 1024 * 1024;
const OK = v("OK", "OK");
const INFO = v("INFORMATIONAL", "INFORMATIONAL");
const NON_STRICT = v("NON-STRICT", "INFORMATIONAL");

/** The verdicts of a run, by case id. */
function verdicts(results: Map<string, ClientCaseResult>): Map<string, Expected> {
  return new Map(
    [...results].map(([id, { verdict }]) => [id, v(verdict.behavior, verdict.behaviorClose)]),
  );
}

function finding(result: ClientCaseResult | undefined, name: string): Finding {
  const found = result?.findings.find((f) => f.name === name);
  assert.ok(found, `no finding ${name}`);
  return found;
}

// ---------------------------------------------------------------------------
// Which cases run against clients

Deno.test("groups 8 and 11: the client cases, and the server cases unchanged", () => {
  assert.deepEqual(
    CLIENT_IDS,
    expand([
      "8.1.6-9",
      "8.2.7-9",
      "8.3.1-3",
      "8.4.4-6",
      "11.1.1-4",
      "11.2.1-2",
      "11.3.1",
      "11.4.1-2",
      "11.5.2-3",
      "11.6.1-2",
      "11.7.1",
    ]),
  );
  const serverIds = SERVER_CASES.map((c) => c.id).filter(inGroups);
  const all = (ranges: string[]) => ranges.flatMap((r) => expandRange(r, serverIds));
  assert.deepEqual(
    serverIds,
    all([
      "8.1.1-5",
      "8.2.1-6",
      "8.3.1-5",
      "8.4.1-3",
      "11.1.1-4",
      "11.2.1-2",
      "11.3.1",
      "11.4.1-2",
      "11.5.1",
      "11.6.1",
      "11.7.1",
    ]),
  );
});

// ---------------------------------------------------------------------------
// The strict client, and clients taking a legal alternative

/** Every client case of both groups against the strict client, run once and shared. */
let strictRun: Promise<Map<string, ClientCaseResult>> | undefined;
const strictResults = () => strictRun ??= againstStrictClient(CLIENT_IDS);

/** The informational cases (a MAY): their verdict says what happened, the finding how. */
const INFORMATIONAL = expand(["8.3.1-3", "11.5.3", "11.6.1-2", "11.7.1"]);

Deno.test("the strict client passes every client case of groups 8 and 11", async () => {
  const results = await strictResults();
  assert.deepEqual([...results.keys()], CLIENT_IDS);
  for (const [id, { verdict, run }] of results) {
    const expected = INFORMATIONAL.includes(id) ? INFO : OK;
    assert.deepEqual(
      v(verdict.behavior, verdict.behaviorClose),
      expected,
      `${id}: ${verdict.result}`,
    );
    assert.deepEqual(run.violations, [], id);
  }
  // Where it must fail the connection it does, with the fitting code.
  const codes = (ids: string[]) => ids.map((id) => results.get(id)!.run.close.remoteCloseCode);
  const peerFails = expand(["8.1.6-9", "8.4.4-6", "11.1.4"]);
  assert.deepEqual(codes(peerFails), peerFails.map(() => 1002));
  assert.deepEqual(codes(expand(["11.2.1-2"])), [1007, 1007]);
});

Deno.test("the informational client cases report what they measured", async () => {
  const results = await strictResults();
  // 11.5.2: the strict client waits 2 s for the server's TCP close; the suite closes it at 1 s.
  assert.equal(finding(results.get("11.5.2"), "tcpCloseDelay").value, null);
  // 11.5.3: a server that keeps TCP open: the strict client closes it after its 2 s.
  const stuck = finding(results.get("11.5.3"), "tcpCloseDelay");
  assert.ok(typeof stuck.value === "number" && stuck.value >= 1900, stuck.text);
  assert.match(stuck.text, /^The client closed TCP \d+ ms after the closing handshake\.$/);
  assert.equal(
    finding(results.get("11.6.1"), "messageSizeLimit").text,
    "Echoed up to 64 MiB: no limit found up to the largest message sent.",
  );
  // 2^63 - 1 bytes is over any limit: the strict client fails the connection at once, with 1009.
  assert.match(
    finding(results.get("11.6.2"), "peerClose").text,
    /^The client closed the connection \d+ ms after the handshake \(close code 1009\)\.$/,
  );
  assert.equal(finding(results.get("11.7.1"), "peerPings").text, "The client sent no ping.");
});

Deno.test("legal alternatives pass: dropping TCP to fail, closing TCP first where no case asks to wait", async () => {
  const failing = expand(["8.1.6-9", "8.4.4-6", "11.1.4", "11.2.1-2"]);
  for (
    const [id, { verdict }] of await againstStrictClient(failing, { flaws: ["drop-on-error"] })
  ) {
    assert.deepEqual(v(verdict.behavior, verdict.behaviorClose), OK, `${id}: ${verdict.result}`);
  }
  const closing = expand(["11.1.1-3", "11.3.1", "11.4.1-2"]);
  for (
    const [id, { verdict }] of await againstStrictClient(closing, { flaws: ["close-tcp-first"] })
  ) {
    assert.deepEqual(v(verdict.behavior, verdict.behaviorClose), OK, `${id}: ${verdict.result}`);
  }
});

// ---------------------------------------------------------------------------
// Each rule broken

interface FlawRow {
  client: StrictClientOptions;
  /** The cases run: the flaw's own and their neighbours. */
  cases: string[];
  /** The cases whose verdict the flaw changes, and to what; the others stay as against the strict client. */
  changed: Record<string, Expected>;
  /** The rule the checks on client output record in the changed cases. */
  violation?: string;
  why: string;
}

const FAILED_FAILED = v("FAILED", "FAILED");
const FAILED_INFO = v("FAILED", "INFORMATIONAL");

const FLAW_ROWS: FlawRow[] = [
  {
    client: { flaws: ["accept-masked-frames"] },
    cases: ["8.1.6-9", "8.2.7-9"],
    changed: Object.fromEntries(expand(["8.1.6-9"]).map((id) => [id, FAILED_FAILED])),
    why: "§5.1: a client MUST fail the connection on a masked frame; the flaw echoes it",
  },
  {
    client: { flaws: ["accept-msb-length"] },
    cases: ["8.3.1-3", "8.4.4-6"],
    changed: Object.fromEntries(expand(["8.4.4-6"]).map((id) => [id, FAILED_FAILED])),
    why: "§5.2: a client MUST fail the connection on a 64-bit length with its top bit set",
  },
  {
    client: { flaws: ["header-needs-one-read"] },
    cases: ["8.1.6-9", "8.2.7-9"],
    changed: Object.fromEntries(expand(["8.2.7-9"]).map((id) => [id, FAILED_FAILED])),
    why: "§5.2: a header MUST be read however TCP splits it; the flaw drops TCP",
  },
  {
    client: { flaws: ["refuse-1012-1014"] },
    cases: ["11.1.1-4"],
    changed: { "11.1.1": NON_STRICT, "11.1.2": NON_STRICT, "11.1.3": NON_STRICT },
    why: "§7.4.2, IANA: 1012-1014 are valid codes a client SHOULD accept",
  },
  {
    client: { flaws: ["accept-invalid-close-reason"] },
    cases: ["11.2.1-2", "11.3.1", "11.4.1-2"],
    changed: { "11.2.1": v("FAILED", "WRONG CODE"), "11.2.2": v("FAILED", "WRONG CODE") },
    why: "§5.5.1, §8.1: a close reason split across writes MUST still be found invalid",
  },
  {
    client: { flaws: ["close-tcp-first"] },
    cases: ["11.5.2-3"],
    changed: { "11.5.2": NON_STRICT },
    why: "§7.1.1: a client SHOULD leave the TCP close to the server",
  },
  {
    client: { flaws: ["close-code-1005"] },
    cases: ["11.3.1", "11.4.1"],
    // The suite, receiving a code no endpoint may send while closing, fails the connection.
    changed: { "11.3.1": v("FAILED", "UNCLEAN"), "11.4.1": v("FAILED", "UNCLEAN") },
    violation: "close-code",
    why: "§7.4.1: 1005 MUST NOT be set in a close frame (a reply to the server's close)",
  },
  {
    client: { flaws: ["close-code-1006"] },
    cases: ["8.1.6-9", "11.1.4", "11.2.1-2", "11.3.1"],
    // Where the client was to fail first, the suite takes 1006 as no valid close and fails it
    // itself; where it answers the suite's close, 1006 is a close code the case does not prefer.
    changed: {
      ...Object.fromEntries(expand(["8.1.6-9"]).map((id) => [id, FAILED_FAILED])),
      ...Object.fromEntries(expand(["11.1.4", "11.2.1-2"]).map((id) => [id, FAILED_INFO])),
    },
    violation: "close-code",
    why: "§7.4.1: 1006 MUST NOT be set in a close frame (the client failing the connection)",
  },
  {
    client: { flaws: ["accept-invalid-close-codes"] },
    cases: ["11.1.1-4"],
    changed: { "11.1.4": FAILED_INFO },
    violation: "close-code",
    why: "§7.4.1: 1015 MUST NOT be set in a close frame; the flaw echoes the server's",
  },
];

for (const row of FLAW_ROWS) {
  const flaws = row.client.flaws!.join(", ");
  Deno.test(`client flaw ${flaws}: exactly its cases change (${row.why})`, async () => {
    const strict = verdicts(await strictResults());
    const results = await againstStrictClient(expand(row.cases), row.client);
    for (const [id, result] of results) {
      const { verdict, run } = result;
      const expected = row.changed[id] ?? strict.get(id);
      assert.deepEqual(
        v(verdict.behavior, verdict.behaviorClose),
        expected,
        `${id}: ${verdict.result} / ${verdict.resultClose}`,
      );
      if (row.changed[id] && row.violation) {
        assert.ok(run.violations.some((x) => x.rule === row.violation), id);
      }
    }
    assert.ok(Object.keys(row.changed).every((id) => results.has(id)));
  });
}

Deno.test("client flaw close-code-1005: a close frame with no code (7.3.1) provokes the 1005 reply", async () => {
  const correct = (await againstStrictClient(["7.3.1"])).get("7.3.1")!;
  assert.deepEqual(v(correct.verdict.behavior, correct.verdict.behaviorClose), OK);
  const flawed = (await againstStrictClient(["7.3.1"], { flaws: ["close-code-1005"] })).get(
    "7.3.1",
  )!;
  assert.equal(flawed.verdict.behavior, "FAILED", flawed.verdict.result);
  assert.ok(flawed.run.violations.some((x) => x.rule === "close-code" && x.level === "must"));
});

Deno.test("client flaw keep-tcp-open, and a lower message limit: the findings change, the verdicts do not", async () => {
  const stuck = await againstStrictClient(expand(["11.5.2-3"]), { flaws: ["keep-tcp-open"] });
  assert.deepEqual(verdicts(stuck), new Map([["11.5.2", OK], ["11.5.3", INFO]]));
  const open = finding(stuck.get("11.5.3"), "tcpCloseDelay");
  assert.equal(open.value, null);
  assert.equal(
    open.text,
    "The client did not close TCP within 10000 ms of the closing handshake; the suite closed it.",
  );
  const limited = await againstStrictClient(["11.6.1"], { maxMessage: MiB });
  assert.ok(!isFailing(limited.get("11.6.1")!.verdict));
  assert.equal(
    finding(limited.get("11.6.1"), "messageSizeLimit").text,
    "Echoed up to 1 MiB; the client closed the connection on the 2 MiB message with close " +
      "code 1009.",
  );
});

Deno.test("11.7.1 against a client that pings when idle: its pings are counted and answered", async () => {
  const result = (await againstStrictClient(["11.7.1"], { pingIntervalMs: 1000 })).get("11.7.1")!;
  assert.deepEqual(v(result.verdict.behavior, result.verdict.behaviorClose), INFO);
  const pings = finding(result, "peerPings");
  assert.ok(typeof pings.value === "number" && pings.value >= 2, pings.text);
  assert.match(pings.text, /^The client sent \d+ pings, the first \d+ ms after the handshake/);
  const frames = result.run.wire.entries.filter((e) => e.kind === "frame");
  const received = frames.filter((e) => e.dir === "rx" && e.opcode === 9).length;
  const answered = frames.filter((e) => e.dir === "tx" && e.opcode === 10).length;
  // A ping that crosses the suite's close frame gets no pong; the others each get one.
  assert.ok(answered >= 2 && answered <= received, `${answered} pongs for ${received} pings`);
  assert.equal(received, pings.value);
});
