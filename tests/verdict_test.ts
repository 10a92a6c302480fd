/**
 * Verdict rules beyond Autobahn's (harness/verdict.ts): requirement levels,
 * refusals part-way, failing before answering, and cases that never opened.
 * Pure: no sockets.
 *
 *   deno test tests/verdict_test.ts
 */
import assert from "node:assert/strict";
import type { CaseSpec, Expectation, HandshakeExpectation, Level } from "../harness/case.ts";
import type { ObservedEvent } from "../harness/payload.ts";
import { type CloseObservation, isFailing, judge } from "../harness/verdict.ts";
import { AUTOBAHN_CASES } from "../fixtures/mod.ts";
import { closeObservation, textMessage } from "./support.ts";

Deno.test("refusal: a peer stopping part-way is judged by its close code, at the refusal's level", () => {
  const expect: Expectation = {
    ok: [],
    close: { by: "suite", codes: [1000], clean: true },
    level: "may",
    refusal: { codes: [1009], level: "should" },
  };
  const ok = [textMessage(1), textMessage(2), textMessage(3)];
  const peerClosed = (code: number | undefined) =>
    closeObservation({ closedBySuite: false, remoteCloseCode: code });
  const run = (received: ObservedEvent[], close: CloseObservation) =>
    judge({ expect }, { ok }, { received, close });

  const refused = run([textMessage(1)], peerClosed(1009));
  assert.deepEqual([refused.behavior, refused.behaviorClose], ["INFORMATIONAL", "INFORMATIONAL"]);
  assert.match(refused.result, /refused to go on after 1 of the 3 expected events/);
  assert.equal(run([textMessage(1)], peerClosed(undefined)).behavior, "INFORMATIONAL");

  const wrong = run([textMessage(1)], peerClosed(1002));
  assert.deepEqual([wrong.behavior, wrong.behaviorClose], ["NON-STRICT", "INFORMATIONAL"]);
  assert.equal(wrong.matched, undefined);
  assert.match(wrong.result, /a refusal calls for 1009/);

  // A wrong echo before the close is no refusal: the events differ.
  const garbled = run([textMessage(5)], peerClosed(1009));
  assert.equal(garbled.behavior, "INFORMATIONAL");
  assert.doesNotMatch(garbled.result, /refused/);
  // Without a refusal clause, the same close is the peer closing where the suite was to.
  const strict = judge({ expect: { ...expect, refusal: undefined, level: "must" } }, { ok }, {
    received: [textMessage(1)],
    close: peerClosed(1009),
  });
  assert.deepEqual([strict.behavior, strict.behaviorClose], ["FAILED", "FAILED"]);
});

Deno.test("a case that never opened is FAILED whatever its level, unless the handshake is its subject", () => {
  const neverOpened = {
    received: [],
    close: closeObservation({ opened: false, openHandshakeTimeout: true }),
  };
  for (const level of ["must", "should", "may"] as const) {
    const expect: Expectation = {
      ok: [],
      close: { by: "suite", codes: [1000], clean: true },
      level,
    };
    const v = judge({ expect }, { ok: [] }, neverOpened);
    assert.deepEqual([v.behavior, v.behaviorClose], ["FAILED", "FAILED"], level);
    assert.match(v.result, /opening handshake did not complete in time/);
    // A case about the handshake itself: its level weighs the failure.
    const about = judge(
      { expect, handshake: { request: {}, expect: { outcome: "accept" } } },
      { ok: [] },
      neverOpened,
    );
    const expected = { must: "FAILED", should: "NON-STRICT", may: "INFORMATIONAL" }[level];
    assert.equal(about.behavior, expected, level);
  }
});

Deno.test("close codes: outside `codes` WRONG CODE by default, NON-STRICT where `otherCodes` says should", () => {
  const failCase = (close: Expectation["close"]): Expectation => ({ ok: [], close });
  const peerFailed = (code: number | undefined) =>
    closeObservation({ closedBySuite: false, wasClean: false, remoteCloseCode: code });
  const run = (expect: Expectation, close: CloseObservation) =>
    judge({ expect }, { ok: [] }, { received: [], close });
  const autobahn = failCase({ by: "peer", codes: [1002], clean: false });
  const newGroups = failCase({ ...autobahn.close, otherCodes: { level: "should" } });
  for (const code of [1003, 1009, 1011]) {
    const wrong = run(autobahn, peerFailed(code));
    assert.deepEqual([wrong.behavior, wrong.behaviorClose], ["OK", "WRONG CODE"], `${code}`);
    const lenient = run(newGroups, peerFailed(code));
    assert.deepEqual([lenient.behavior, lenient.behaviorClose], ["NON-STRICT", "INFORMATIONAL"]);
    assert.match(lenient.resultClose, new RegExp(`close code was ${code}; 1002 is the fitting`));
  }
  // The preferred code, or no close frame at all: OK in both.
  for (const expect of [autobahn, newGroups]) {
    for (const code of [1002, undefined]) {
      const v = run(expect, peerFailed(code));
      assert.deepEqual([v.behavior, v.behaviorClose], ["OK", "OK"]);
    }
  }
  // A code listed in `except` says the peer saw no error: still WRONG CODE, and with
  // wrongCodeFails a failed behaviour.
  const badReason: Expectation = {
    ok: [],
    close: {
      by: "suite",
      codes: [1007, 1002],
      clean: false,
      otherCodes: { level: "should", except: [1000] },
    },
    wrongCodeFails: true,
  };
  const echoed = run(badReason, closeObservation({ localCloseCode: 1000, remoteCloseCode: 1000 }));
  assert.deepEqual([echoed.behavior, echoed.behaviorClose], ["FAILED", "WRONG CODE"]);
  const other = run(badReason, closeObservation({ localCloseCode: 1000, remoteCloseCode: 1011 }));
  assert.deepEqual([other.behavior, other.behaviorClose], ["NON-STRICT", "INFORMATIONAL"]);
  // A MAY: recorded, the behaviour untouched.
  const may = run(
    failCase({ ...autobahn.close, otherCodes: { level: "may" } }),
    peerFailed(1011),
  );
  assert.deepEqual([may.behavior, may.behaviorClose], ["OK", "INFORMATIONAL"]);
});

/**
 * Judges each case, in both roles, for a peer that failed the connection with
 * each code: the fitting code and no close frame are OK, the other failing
 * codes NON-STRICT, 1000 (a normal close: the error unseen) WRONG CODE.
 */
function assertFailingCodes(cases: readonly CaseSpec[], fitting: number, others: number[]): void {
  for (const spec of cases) {
    for (const suiteIsServer of [false, true]) {
      const failedWith = (code: number | undefined) => {
        const close = closeObservation({
          closedBySuite: false,
          wasClean: false,
          remoteCloseFrame: code !== undefined,
          remoteCloseCode: code,
        });
        const v = judge(spec, { ok: [] }, { received: [], close }, suiteIsServer);
        return `${spec.id} ${v.behavior} / ${v.behaviorClose}`;
      };
      assert.equal(failedWith(fitting), `${spec.id} OK / OK`);
      assert.equal(failedWith(undefined), `${spec.id} OK / OK`);
      for (const code of others) {
        assert.equal(failedWith(code), `${spec.id} NON-STRICT / INFORMATIONAL`);
      }
      assert.equal(failedWith(1000), `${spec.id} OK / WRONG CODE`);
    }
  }
}

Deno.test("invalid UTF-8 (group 6): failing with 1007 OK, another code NON-STRICT, 1000 WRONG CODE", () => {
  const cases = AUTOBAHN_CASES.filter((c) =>
    c.id.startsWith("6.") && c.expect.close.by === "peer" && c.expect.ok.length === 0
  );
  assert.equal(cases.length, 71); // the invalid ones but the fail-fast 6.4.x
  assertFailingCodes(cases, 1007, [1002, 1003, 1011]);
});

Deno.test("a bad close frame: 7.9.x's codes are never FAILED; 7.3.2, 7.3.6, 7.5.1 fail only on 1000", () => {
  const answered = (id: string, code: number | null | "dropped") => {
    const spec = AUTOBAHN_CASES.find((c) => c.id === id)!;
    const close = closeObservation({
      wasClean: code !== "dropped",
      remoteCloseFrame: code !== "dropped",
      remoteCloseCode: typeof code === "number" ? code : undefined,
    });
    const v = judge(spec, { ok: [] }, { received: [], close });
    return `${id} ${v.behavior} / ${v.behaviorClose}`;
  };
  const invalidCodes = AUTOBAHN_CASES.filter((c) => c.id.startsWith("7.9."));
  assert.equal(invalidCodes.length, 9);
  for (const { id, steps } of invalidCodes) {
    const sent = steps[0].kind === "close" ? steps[0].close.code! : NaN;
    assert.equal(answered(id, 1002), `${id} OK / OK`);
    assert.equal(answered(id, "dropped"), `${id} OK / OK`);
    // The code echoed (as browsers do), a normal close, another code, an empty close frame.
    for (const code of [sent, 1000, 1011, null]) {
      assert.equal(answered(id, code), `${id} NON-STRICT / INFORMATIONAL`, `${code}`);
    }
  }
  for (const [id, fitting] of [["7.3.2", 1002], ["7.3.6", 1002], ["7.5.1", 1007]] as const) {
    assert.equal(answered(id, fitting), `${id} OK / OK`);
    assert.equal(answered(id, "dropped"), `${id} OK / OK`);
    assert.equal(answered(id, 1003), `${id} NON-STRICT / INFORMATIONAL`);
    assert.equal(answered(id, 1000), `${id} FAILED / WRONG CODE`);
  }
});

Deno.test("a protocol error (groups 2-5): failing with 1002 OK, another code NON-STRICT, 1000 WRONG CODE", () => {
  const cases = AUTOBAHN_CASES.filter((c) => /^[2-5]\./.test(c.id) && c.expect.close.by === "peer");
  assert.equal(cases.length, 30); // 2.5, 3.x, 4.x, 5.1, 5.2, 5.9-5.18
  for (const spec of cases) assert.ok(spec.deviation?.includes("1000 stays WRONG CODE"), spec.id);
  assertFailingCodes(cases, 1002, [1003, 1007, 1011]);
});

Deno.test("the reply to the suite's normal close: another valid code NON-STRICT, an invalid one WRONG CODE", () => {
  const expect: Expectation = {
    ok: [],
    close: { by: "suite", codes: [1000], clean: true },
    wrongCodeFails: true,
  };
  const run = (remote: number, local: Partial<CloseObservation> = { localCloseCode: 1000 }) => {
    const close = closeObservation({ ...local, remoteCloseCode: remote });
    const v = judge({ expect }, { ok: [] }, { received: [], close });
    return `${v.behavior} / ${v.behaviorClose}`;
  };
  // The fail timer's 1001 echoed is the fitting answer to that close.
  assert.equal(run(1001, { localCloseCode: 1001 }), "OK / OK");
  for (const code of [1001, 1002, 1011, 3001, 4999]) {
    assert.equal(run(code), "NON-STRICT / INFORMATIONAL", `${code}`);
  }
  const other = judge({ expect }, { ok: [] }, {
    received: [],
    close: closeObservation({ localCloseCode: 1000, remoteCloseCode: 1002 }),
  });
  assert.match(other.resultClose, /normal close \(1000\) with 1002.*typically echoes .*§5\.5\.1/);
  assert.match(other.result, /^Not strict \(a SHOULD of the RFC\)/);
  // A code no close frame may carry breaks a MUST of its own (§7.4.1), or is none to send.
  for (const code of [1005, 1006, 1015, 999, 5000]) {
    assert.equal(run(code), "FAILED / WRONG CODE", `${code}`);
  }
  // An empty close frame from the suite is normal too; a 1-byte body is not.
  assert.equal(run(1002, {}), "NON-STRICT / INFORMATIONAL");
  assert.equal(run(1005, {}), "FAILED / WRONG CODE");
  assert.equal(run(1002, { localCloseReason: "a" }), "FAILED / WRONG CODE");
  // The suite failing the connection is no normal close: the case's codes decide.
  assert.equal(run(1003, { localCloseCode: 1002, failedBySuite: true }), "FAILED / WRONG CODE");
});

Deno.test("every Autobahn case the suite closes normally: another valid reply code is NON-STRICT, 1005 fails", () => {
  const cases = AUTOBAHN_CASES.filter((c) =>
    c.expect.close.by === "suite" && !c.expect.close.otherCodes && c.expect.level !== "may" &&
    !c.deflate
  );
  assert.ok(cases.length > 150, `${cases.length}`);
  for (const spec of cases) {
    const step = spec.steps.find((s) => s.kind === "close");
    const sent = step?.kind === "close" ? step.close.code : 1000;
    const other = [1002, 1003, 3001].find((c) => !spec.expect.close.codes.includes(c))!;
    for (const suiteIsServer of [false, true]) {
      const replied = (code: number) => {
        const close = closeObservation({ localCloseCode: sent, remoteCloseCode: code });
        const v = judge(spec, { ok: [] }, { received: [], close }, suiteIsServer);
        return v;
      };
      for (const code of spec.expect.close.codes) {
        const v = replied(code);
        assert.equal(`${v.behavior} / ${v.behaviorClose}`, "OK / OK", `${spec.id} ${code}`);
      }
      const lenient = replied(other);
      assert.equal(
        `${lenient.behavior} / ${lenient.behaviorClose}`,
        "NON-STRICT / INFORMATIONAL",
        `${spec.id} ${other}`,
      );
      assert.ok(isFailing(replied(1005)), `${spec.id} 1005`);
    }
  }
});

Deno.test("an empty close frame answering an illegal close weighs at `emptyReply`; no close frame passes", () => {
  const expect: Expectation = {
    ok: [],
    close: { by: "suite", codes: [1002], clean: false, emptyReply: "should" },
    wrongCodeFails: true,
  };
  const run = (close: CloseObservation, e = expect) =>
    judge({ expect: e }, { ok: [] }, { received: [], close });
  const empty = run(closeObservation({ remoteCloseFrame: true }));
  assert.deepEqual([empty.behavior, empty.behaviorClose], ["NON-STRICT", "INFORMATIONAL"]);
  assert.match(empty.resultClose, /empty close frame, which cannot be told from a normal close/);
  const dropped = run(closeObservation({ wasClean: false }));
  assert.deepEqual([dropped.behavior, dropped.behaviorClose], ["OK", "OK"]);
  const fitting = run(closeObservation({ remoteCloseFrame: true, remoteCloseCode: 1002 }));
  assert.deepEqual([fitting.behavior, fitting.behaviorClose], ["OK", "OK"]);
  // Without `emptyReply` (Autobahn's cases): an empty close is no wrong code.
  const autobahn = run(closeObservation({ remoteCloseFrame: true }), {
    ...expect,
    close: { ...expect.close, emptyReply: undefined },
  });
  assert.deepEqual([autobahn.behavior, autobahn.behaviorClose], ["OK", "OK"]);
});

Deno.test("checks on server output: a MUST fails the case, a MAY is only recorded", () => {
  const expect: Expectation = { ok: [], close: { by: "suite", codes: [1000], clean: true } };
  const run = (level: Level) =>
    judge({ expect }, { ok: [] }, {
      received: [],
      close: closeObservation(),
      violations: [{ rule: "r", rfc: "5.5", level, detail: "what was sent" }],
    });
  assert.equal(run("must").behavior, "FAILED");
  assert.match(
    run("must").result,
    /broke a MUST in what it sent: what was sent \(RFC 6455 §5\.5\)/,
  );
  assert.equal(run("should").behavior, "NON-STRICT");
  assert.deepEqual([run("may").behavior, run("may").behaviorClose], ["OK", "OK"]);
});

Deno.test("handshake refusals: any 4xx refuses, a 5xx or 3xx is NON-STRICT, a version refusal lists 13", () => {
  const expect: Expectation = { ok: [], close: { by: "suite", codes: [1000], clean: false } };
  const run = (hs: HandshakeExpectation, status?: number, versions: string[] = []) => {
    const accepted = status === 101;
    const v = judge({ expect, handshake: { request: {}, expect: hs } }, { ok: [] }, {
      received: [],
      close: closeObservation({ opened: accepted, wasClean: accepted }),
      handshake: { status, versions, problems: accepted ? [] : [`status ${status ?? "none"}`] },
    });
    return `${v.behavior} / ${v.behaviorClose}`;
  };
  const refuse: HandshakeExpectation = { outcome: "refuse" };
  for (const status of [400, 403, 404, 405, 426]) assert.equal(run(refuse, status), "OK / OK");
  for (const status of [500, 503, 301, 302]) assert.equal(run(refuse, status), "NON-STRICT / OK");
  for (const status of [100, 200, 204]) assert.equal(run(refuse, status), "FAILED / OK");
  assert.equal(run(refuse, 101), "FAILED / OK");
  assert.equal(run(refuse, undefined), "FAILED / FAILED");
  assert.equal(run({ outcome: "refuse", alsoRight: [505] }, 505), "OK / OK");
  assert.equal(run(refuse, 505), "NON-STRICT / OK");

  // A version: the list is a MUST whatever the status; accepting weighs at `accepting`.
  const version8: HandshakeExpectation = {
    outcome: "refuse",
    listsVersion13: true,
    accepting: "may",
  };
  assert.equal(run(version8, 400, ["13"]), "OK / OK");
  assert.equal(run(version8, 426, ["13, 8"]), "OK / OK");
  assert.equal(run(version8, 426, ["8", "13"]), "OK / OK");
  assert.equal(run(version8, 500, ["13"]), "NON-STRICT / OK");
  assert.equal(run(version8, 426), "FAILED / OK");
  assert.equal(run(version8, 400, ["8"]), "FAILED / OK");
  assert.equal(run(version8, 101), "INFORMATIONAL / OK");
  assert.equal(run({ ...version8, accepting: undefined }, 101), "FAILED / OK");

  // No upgrade asked for: any answer but 101; none at all breaks no rule of RFC 6455.
  const plain: HandshakeExpectation = { outcome: "not-websocket" };
  for (const status of [200, 301, 400, 404, 426, 500]) assert.equal(run(plain, status), "OK / OK");
  assert.equal(run(plain, 101), "FAILED / OK");
  assert.equal(run(plain, undefined), "INFORMATIONAL / INFORMATIONAL");

  // An invalid 101 (Deno's to a doubled key) is an acceptance, and says so.
  const invalid = judge({ expect, handshake: { request: {}, expect: refuse } }, { ok: [] }, {
    received: [],
    close: closeObservation({ opened: false, wasClean: false }),
    handshake: { status: 101, versions: [], problems: ["Sec-WebSocket-Accept is wrong"] },
  });
  assert.equal(`${invalid.behavior} / ${invalid.behaviorClose}`, "FAILED / FAILED");
  assert.match(invalid.result, /answered 101, and not a valid one \(Sec-WebSocket-Accept/);
});

Deno.test("mayFailBeforeAnswering: echoing before failing and failing first are both OK, and say which", () => {
  const expect: Expectation = {
    ok: [{ message: "Hello", binary: false }],
    mayFailBeforeAnswering: true,
    close: { by: "peer", codes: [1002], clean: false },
  };
  const hello: ObservedEvent = {
    type: "message",
    binary: false,
    payload: new TextEncoder().encode("Hello"),
  };
  const peerFailed = closeObservation({
    closedBySuite: false,
    wasClean: false,
    remoteCloseCode: 1002,
  });
  const run = (received: ObservedEvent[], close = peerFailed, e = expect) =>
    judge({ expect: e }, { ok: [hello] }, { received, close });
  const verdict = (v: ReturnType<typeof run>) => `${v.behavior} / ${v.behaviorClose}`;

  const echoed = run([hello]);
  assert.equal(verdict(echoed), "OK / OK");
  assert.equal(echoed.matched, "ok");
  assert.match(echoed.result, /answered what the suite sent before the frame it must fail on/);
  const failedFirst = run([]);
  assert.equal(verdict(failedFirst), "OK / OK");
  assert.equal(failedFirst.matched, "okPrefix");
  assert.match(failedFirst.result, /failed the connection after 0 of the 1 events expected/);
  // Dropping TCP without a close frame is failing too.
  const dropped = run([], closeObservation({ closedBySuite: false, wasClean: false }));
  assert.equal(verdict(dropped), "OK / OK");

  // Anything else is judged as before: a wrong echo, more than `ok`, or no failing at all.
  const garbled = run([{ ...hello, payload: new TextEncoder().encode("Hellp") }]);
  assert.equal(verdict(garbled), "FAILED / OK");
  assert.equal(garbled.matched, undefined);
  assert.equal(verdict(run([textMessage(5)])), "FAILED / OK");
  const pong: ObservedEvent = { type: "pong", payload: new Uint8Array(0) };
  assert.equal(verdict(run([hello, pong])), "FAILED / OK");
  const suiteClosed = closeObservation({ closedBySuite: true, localCloseCode: 1001 });
  const notFailing = run([], suiteClosed);
  assert.equal(verdict(notFailing), "FAILED / FAILED");
  assert.match(notFailing.result, /did not fail the connection, which alone would excuse/);
  assert.equal(verdict(run([hello], suiteClosed)), "OK / FAILED");
  // A wrong close code is still a wrong code, whichever outcome.
  const normal = closeObservation({ closedBySuite: false, wasClean: true, remoteCloseCode: 1000 });
  assert.equal(verdict(run([], normal)), "OK / WRONG CODE");

  // Without the flag (Autobahn's cases sent in one write): failing first stays NON-STRICT.
  const autobahn: Expectation = { ...expect, mayFailBeforeAnswering: undefined, nonStrict: [] };
  const tolerated = judge({ expect: autobahn }, { ok: [hello], nonStrict: [] }, {
    received: [],
    close: peerFailed,
  });
  assert.equal(verdict(tolerated), "NON-STRICT / OK");
  assert.equal(verdict(run([], peerFailed, { ...autobahn, nonStrict: undefined })), "FAILED / OK");
});

Deno.test("tcpHold: a client closing TCP while the suite holds it open breaks the case's peerFirst level", () => {
  const expect: Expectation = {
    ok: [],
    close: {
      by: "suite",
      codes: [1000],
      clean: true,
      tcpHold: { seconds: 1, peerFirst: "should" },
    },
    level: "should",
  };
  const run = (close: CloseObservation) =>
    judge({ expect }, { ok: [] }, { received: [], close }, true);
  // The client left the TCP close to the suite, which closed it once the hold was over.
  const waited = run(closeObservation({ droppedBySuite: true, remoteCloseCode: 1000 }));
  assert.deepEqual([waited.behavior, waited.behaviorClose], ["OK", "OK"]);
  // It closed TCP itself first: a SHOULD broken.
  const first = run(closeObservation({ remoteCloseCode: 1000 }));
  assert.deepEqual([first.behavior, first.behaviorClose], ["NON-STRICT", "INFORMATIONAL"]);
  assert.match(first.resultClose, /SHOULD wait for it \(§7\.1\.1\)/);
  // Without peerFirst, closing first is the client's right.
  const free: Expectation = { ...expect, close: { ...expect.close, tcpHold: { seconds: 1 } } };
  const allowed = judge({ expect: free }, { ok: [] }, {
    received: [],
    close: closeObservation({ remoteCloseCode: 1000 }),
  }, true);
  assert.deepEqual([allowed.behavior, allowed.behaviorClose], ["OK", "OK"]);
});
