/**
 * Group 0 in the client role (issue 10): the client's request (0.7), the
 * answers it must refuse (0.8) and those it must accept (0.9), run through
 * runClientCase against the strict client: each passes it, each passes its
 * legal alternatives, and each fails against the flaw that breaks its rule
 * while every other case keeps its verdict.
 *
 *   deno test --allow-all tests/g00_client_test.ts
 */
import assert from "node:assert/strict";
import { CLIENT_CASES } from "../fixtures/mod.ts";
import type { CaseSpec } from "../harness/case.ts";
import { startCaseServer } from "../harness/case_server.ts";
import { type CaseRun, runClientCase } from "../harness/session.ts";
import { runSuite } from "../harness/suite.ts";
import type { RequestProblem } from "../harness/server_handshake.ts";
import {
  type CloseObservation,
  isFailing,
  judge,
  judgeCase,
  type JudgeInput,
  type Verdict,
} from "../harness/verdict.ts";
import { closeObservation, textMessage, withTempDir } from "./support.ts";
import {
  type Flaw,
  runStrictClient,
  type StrictClientOptions,
  type StrictClientResult,
} from "./peers/strict_client.ts";

const GROUP_0 = CLIENT_CASES.filter((c) => c.id.startsWith("0."));
const ids = (prefix: string) => GROUP_0.map((c) => c.id).filter((id) => id.startsWith(prefix));

interface Outcome {
  run: CaseRun;
  verdict: Verdict;
  client: StrictClientResult;
}

/**
 * Runs the cases at once, each through runClientCase against its own strict
 * client; a case about a second connection gets one, and a case asking for
 * subprotocols gets them offered, as client mode's runner (suite.ts) does.
 */
async function againstStrictClient(
  options: StrictClientOptions,
  cases = GROUP_0,
): Promise<Map<string, Outcome>> {
  const server = startCaseServer({ cases });
  const connectOnce = async (spec: CaseSpec) => {
    const expected = server.expect(spec.id, "strict", 10_000);
    const protocols = spec.clientHandshake?.offerProtocols ?? options.protocols;
    const client = runStrictClient(expected.url.href, { ...options, protocols, timeoutMs: 20_000 });
    const run = await runClientCase(spec, {
      url: server.url,
      connection: expected.connection.then((c) => c ?? { missing: "no client came" }),
    });
    expected.end();
    return { run, client: await client };
  };
  try {
    const outcomes = await Promise.all(cases.map(async (spec) => {
      const { run, client } = await connectOnce(spec);
      if (spec.clientHandshake?.twice) {
        const again = await connectOnce(spec);
        run.handshake.request?.keys.push(...again.run.handshake.request?.keys ?? []);
      }
      return [spec.id, { run, verdict: judgeCase(spec, run).verdict, client }] as const;
    }));
    return new Map(outcomes);
  } finally {
    await server.close();
  }
}

const verdictOf = ({ verdict }: Outcome) =>
  `${verdict.behavior}/${verdict.behaviorClose}: ${verdict.result}`;

/** The ids of the cases that fail (the one failure rule). */
const failing = (outcomes: Map<string, Outcome>) =>
  [...outcomes].filter(([, o]) => isFailing(o.verdict)).map(([id]) => id);

Deno.test("group 0, client role: 0.7-0.9 name clients only, with literal ids", () => {
  assert.deepEqual(GROUP_0.map((c) => c.id), [
    ...Array.from({ length: 8 }, (_, i) => `0.7.${i + 1}`),
    ...Array.from({ length: 17 }, (_, i) => `0.8.${i + 1}`),
    ...Array.from({ length: 8 }, (_, i) => `0.9.${i + 1}`),
  ]);
  for (const spec of GROUP_0) assert.deepEqual(spec.peers, ["client"], spec.id);
});

Deno.test("group 0, client role: verdicts from observations alone", () => {
  const spec = (id: string) => GROUP_0.find((c) => c.id === id)!;
  const judged = (id: string, over: Partial<JudgeInput>) => {
    const { expect } = spec(id);
    const expected = { ok: expect.ok.map(() => textMessage(0)) };
    return judge(spec(id), expected, { received: [], close: closeObservation(), ...over }, true);
  };
  const peerEnded = (over: Partial<CloseObservation> = {}) =>
    closeObservation({ closedBySuite: false, wasClean: false, ...over });
  // Every refusal the RFC allows: closing TCP, a close frame first, waiting to be closed.
  for (const close of [peerEnded(), peerEnded({ remoteCloseFrame: true }), closeObservation()]) {
    assert.deepEqual(
      [judged("0.8.1", { close }).behavior, judged("0.8.1", { close }).behaviorClose],
      ["OK", "OK"],
    );
  }
  const echoed = judged("0.8.1", { received: [textMessage(4)], close: peerEnded() });
  assert.equal(echoed.behavior, "FAILED");
  assert.match(echoed.result, /MUST fail the connection \(§4\.1\)/);
  // A client that never connected did not refuse anything.
  const absent = judged("0.8.1", { close: closeObservation({ opened: false }) });
  assert.equal(absent.behavior, "FAILED");
  // The request: each problem at its level, only the case's sections.
  const request = (problems: RequestProblem[], keys = ["k1"]) => ({
    versions: [],
    problems: [],
    request: { problems, keys, protocols: [] },
  });
  const noVersion: RequestProblem = { section: "§4.1 item 9", level: "must", text: "no version" };
  assert.equal(judged("0.7.5", { handshake: request([noVersion]) }).behavior, "FAILED");
  assert.equal(judged("0.7.4", { handshake: request([noVersion]) }).behavior, "OK");
  assert.equal(judged("0.7.8", { handshake: request([], ["k1", "k2"]) }).behavior, "OK");
  assert.equal(judged("0.7.8", { handshake: request([], ["k1", "k1"]) }).behavior, "FAILED");
  assert.equal(judged("0.7.8", { handshake: request([]) }).behavior, "INFORMATIONAL");
});

Deno.test("group 0, client role: the strict client passes every case", async () => {
  const outcomes = await againstStrictClient({});
  for (const [id, outcome] of outcomes) {
    const { verdict, run, client } = outcome;
    // It sends no Origin, as a client that is no browser may: reported, not failed.
    const behavior = id === "0.7.7" ? "INFORMATIONAL" : "OK";
    assert.equal(verdict.behavior, behavior, `${id}: ${verdictOf(outcome)}`);
    assert.equal(verdict.behaviorClose, "OK", `${id}: ${verdictOf(outcome)}`);
    assert.ok(run.close.opened, id);
    if (id.startsWith("0.8.")) {
      // It refused the answer by closing TCP, and the suite's message got no echo.
      assert.match(client.error ?? "", /^refused the handshake: /, id);
      assert.deepEqual(run.received, [], id);
    } else {
      assert.deepEqual(client, { exitCode: 0 }, id);
    }
  }
  assert.match(outcomes.get("0.7.7")!.verdict.result, /no Origin: a browser MUST send one/);
});

Deno.test("group 0, client role: a client refusing by waiting to be closed passes too", async () => {
  const refusals = GROUP_0.filter((c) => c.id.startsWith("0.8."));
  const outcomes = await againstStrictClient({ refuseBy: "waiting" }, refusals);
  for (const [id, outcome] of outcomes) {
    assert.equal(outcome.verdict.behavior, "OK", `${id}: ${verdictOf(outcome)}`);
    assert.ok(outcome.run.close.closedBySuite, id);
    assert.match(outcome.verdict.resultClose, /sent nothing until the suite closed/, id);
  }
});

Deno.test("group 0, client role: Origin and subprotocols as the client's user asked", async () => {
  const request = GROUP_0.filter((c) => c.id === "0.7.6" || c.id === "0.7.7");
  const asked = await againstStrictClient({ origin: "https://app.example" }, request);
  assert.equal(asked.get("0.7.7")!.verdict.behavior, "OK");
  const bad = await againstStrictClient({ origin: "app.example" }, request);
  assert.equal(bad.get("0.7.7")!.verdict.behavior, "FAILED", verdictOf(bad.get("0.7.7")!));
  // The suite asked for no subprotocol: an offer is reported; a malformed list is a MUST.
  const offered = await againstStrictClient({ protocols: ["chat"] }, request);
  assert.equal(offered.get("0.7.6")!.verdict.behavior, "INFORMATIONAL");
  assert.match(offered.get("0.7.6")!.verdict.result, /offers the subprotocols chat/);
  const twice = await againstStrictClient({ protocols: ["chat", "chat"] }, request);
  assert.equal(twice.get("0.7.6")!.verdict.behavior, "FAILED", verdictOf(twice.get("0.7.6")!));
});

Deno.test("group 0, client role: client mode's runner connects the client twice for 0.7.8", async () => {
  const cases = GROUP_0.filter((c) => c.id === "0.7.8");
  for (const [flaws, behavior] of [["", "OK"], ["--flaw fixed-key ", "FAILED"]]) {
    await withTempDir(async (dir) => {
      const command = `deno run -A tests/peers/strict_client.ts ${flaws}{url}`;
      const result = await runSuite({ client: { command }, cases, reports: { dir } });
      const [outcome] = result.outcomes;
      assert.equal(outcome.verdict.behavior, behavior, `${flaws}: ${outcome.verdict.result}`);
    });
  }
});

/**
 * Each flaw, the cases it must fail (all on a MUST), and those it may fail too:
 * a client dropping the bytes read with the head loses the suite's first message
 * whenever it comes in the head's read, which TCP decides. Every other case passes.
 */
const FLAW_CASES: [Flaw, string[], string[]?][] = [
  ["http-1.0", ["0.7.1"]],
  ["no-host", ["0.7.2"]],
  ["no-upgrade-header", ["0.7.3"]],
  ["key-not-base64", ["0.7.4"]],
  ["bad-handshake-version", ["0.7.5"]],
  ["fixed-key", ["0.7.8"]],
  ["accept-non-101", ids("0.8.").slice(0, 4)],
  ["accept-bad-upgrade", ids("0.8.").slice(4, 8)],
  ["no-accept-check", ids("0.8.").slice(8, 13)],
  ["accept-unoffered-protocol", ["0.8.14", "0.8.17"]],
  ["accept-unoffered-extension", ["0.8.15", "0.8.16"]],
  ["case-sensitive-names", ["0.9.1", "0.9.2"]],
  ["exact-token-case", ["0.9.3"]],
  ["connection-exact", ["0.9.4"]],
  ["reject-extra-headers", ["0.9.5"]],
  ["refuse-split-response", ["0.9.6", "0.9.7"]],
  ["drop-bytes-after-head", ["0.9.8"], ids("0.9.").slice(0, 7)],
];

for (const [flaw, expected, mayFail = []] of FLAW_CASES) {
  Deno.test(`group 0, client role: flaw ${flaw} fails ${expected.join(", ")}`, async () => {
    const outcomes = await againstStrictClient({ flaws: [flaw] });
    const failed = failing(outcomes);
    assert.deepEqual(failed.filter((id) => !mayFail.includes(id)), expected);
    for (const id of expected) {
      const outcome = outcomes.get(id)!;
      assert.equal(outcome.verdict.behavior, "FAILED", `${id}: ${verdictOf(outcome)}`);
      // A refused answer the client took shows as the echo of the suite's message.
      if (id.startsWith("0.8.")) assert.match(outcome.verdict.result, /MUST fail the connection/);
    }
  });
}

/** Runs `cases` through client mode's runner against the strict client run with `args`. */
function strictCommandRun(args: string, cases: CaseSpec[]) {
  return runSuite({
    client: { command: `deno run -A tests/peers/strict_client.ts ${args}{url}` },
    cases,
  });
}

Deno.test("group 0, client role: 0.8.4 reports whether the client followed the redirect", async () => {
  const cases = GROUP_0.filter((c) => c.id === "0.8.4");
  const redirect = /127\.0\.0\.1:\d+\/redirected\?casetuple=0\.8\.4&agent=deno/;
  const runs: [string, RegExp][] = [["--follow-redirects ", /followed the redirect/], ["", /not/]];
  for (const [args, finding] of runs) {
    const { outcomes: [outcome] } = await strictCommandRun(args, cases);
    // Following is a MAY: the verdict is the refusal of the 302 either way.
    assert.equal(outcome.verdict.behavior, "OK", `${args}: ${outcome.verdict.result}`);
    const [found] = outcome.findings;
    assert.equal(found.name, "redirect");
    assert.match(found.text, finding, args);
    assert.match(found.text, redirect, args);
    assert.equal(found.value === null, args === "", found.text);
  }
  // The rule stays: a client opening the connection on the 302 itself fails.
  const { outcomes: [opened] } = await strictCommandRun("--flaw accept-non-101 ", cases);
  assert.equal(opened.verdict.behavior, "FAILED", opened.verdict.result);
  assert.match(opened.findings[0].text, /did not follow/);
});

Deno.test("group 0, client role: 0.8.17 runs only on a client that offered subprotocols", async () => {
  const cases = GROUP_0.filter((c) => c.id === "0.8.17");
  // A command client is not told what to offer: offering none, it did not try the case.
  const untold = await strictCommandRun("", cases);
  assert.deepEqual(untold.outcomes, []);
  const [notRun] = untold.notRun;
  assert.equal(notRun.why, "client-never-tried");
  assert.deepEqual(notRun.cases.map((c) => c.id), ["0.8.17"]);
  assert.match(notRun.reason, /offered no subprotocol where asked for chat, superchat/);
  // One whose command offers some is judged: the answer names one it did not offer.
  for (const [args, behavior] of [["", "OK"], ["--flaw accept-unoffered-protocol ", "FAILED"]]) {
    const { outcomes: [outcome], notRun } = await strictCommandRun(
      `${args}--protocol chat `,
      cases,
    );
    assert.equal(outcome.verdict.behavior, behavior, `${args}: ${outcome.verdict.result}`);
    assert.deepEqual(notRun, []);
  }
  // The embedded client is told, and offers them: the case runs, whatever Deno then does.
  const embedded = await runSuite({ client: {}, cases });
  assert.deepEqual(embedded.outcomes.map((o) => o.spec.id), ["0.8.17"]);
  assert.deepEqual(embedded.notRun, []);
});
