/**
 * Verdicts with Autobahn|Testsuite's meanings, so reports can be compared
 * case by case. Pure: computed from what a session observed.
 */
import {
  type CaseSpec,
  type ClientHandshakeSpec,
  type CloseExpectation,
  type Expectation,
  type HandshakeExpectation,
  type Level,
  rfcReference,
} from "./case.ts";
import { isValidCloseCode } from "./frame.ts";
import { keyReuse } from "./server_handshake.ts";
import { type Finding, measure } from "./measure.ts";
import {
  type CloseObservation,
  type ExpectedEvents,
  FAIL_TIMER_CODE,
  type HandshakeObservation,
  type Observation,
  type Violation,
} from "./observation.ts";
import { type ObservedEvent, sequenceMatches } from "./payload.ts";

export type { CloseObservation, HandshakeObservation, Observation, Violation };

/** Every `behavior` verdict, best first (INFORMATIONAL: the RFC leaves the outcome open). */
export const BEHAVIORS = ["OK", "INFORMATIONAL", "UNIMPLEMENTED", "NON-STRICT", "FAILED"] as const;
export type Behavior = typeof BEHAVIORS[number];
/** Every `behaviorClose` verdict, best first. */
export const CLOSE_BEHAVIORS = [
  "OK",
  "INFORMATIONAL",
  "FAILED BY CLIENT",
  "UNCLEAN",
  "WRONG CODE",
  "FAILED",
] as const;
export type CloseBehavior = typeof CLOSE_BEHAVIORS[number];

export interface Verdict {
  behavior: Behavior;
  behaviorClose: CloseBehavior;
  /** Why `behavior` is what it is. */
  result: string;
  /** Why `behaviorClose` is what it is. */
  resultClose: string;
  /**
   * Which expectation alternative the events matched, if any; "okPrefix": a part of
   * `ok`, the peer having failed the connection first (`mayFailBeforeAnswering`).
   */
  matched?: "ok" | "okPrefix" | "nonStrict";
}

/**
 * The one failure rule: a case fails when its behaviour is FAILED (with
 * `strict`, NON-STRICT too) or its close is FAILED, WRONG CODE or UNCLEAN.
 * The exit status, the summary, JUnit, the HTML index and baselines all ask here.
 */
export function isFailing(v: Pick<Verdict, "behavior" | "behaviorClose">, strict = false): boolean {
  return behaviorFails(v.behavior, strict) || closeFails(v.behaviorClose);
}

/** The behaviour half of isFailing (baselines compare each half on its own). */
export function behaviorFails(behavior: Behavior, strict = false): boolean {
  return behavior === "FAILED" || (strict && behavior === "NON-STRICT");
}

/** The close half of isFailing. */
export function closeFails(behaviorClose: CloseBehavior): boolean {
  return behaviorClose === "FAILED" || behaviorClose === "WRONG CODE" ||
    behaviorClose === "UNCLEAN";
}

/** What judge() needs of an observation. */
export type JudgeInput =
  & Pick<Observation, "received" | "close">
  & Partial<Pick<Observation, "handshake" | "violations" | "deflate">>;

/** A case judged: its verdicts and what it measured. */
export interface Judged {
  verdict: Verdict;
  findings: Finding[];
}

/**
 * Judges what a session observed, apart from the run: pure, so a saved
 * observation is judged again to the same verdict.
 */
export function judgeCase(spec: CaseSpec, observation: Observation): Judged {
  return {
    verdict: judge(spec, observation.expected, observation, observation.suiteRole === "server"),
    findings: measure(spec, observation),
  };
}

/** What is kept of a judged case once its reports are written: the observation is dropped. */
export interface CaseOutcome extends Judged {
  spec: CaseSpec;
  duration: number;
  remoteCloseCode?: number;
}

/** The outcome of a judged run (a CaseRun of session.ts, or a saved one). */
export function outcomeOf(
  run: { spec: CaseSpec; duration: number; close: CloseObservation },
  judged: Judged,
): CaseOutcome {
  return {
    spec: run.spec,
    verdict: judged.verdict,
    findings: judged.findings,
    duration: run.duration,
    remoteCloseCode: run.close.remoteCloseCode,
  };
}

/**
 * Judges a finished case. `expectedEvents` are the expectation's alternatives
 * already resolved to bytes. `suiteIsServer` tells the direction: a client that
 * leaves the TCP close to the server is only preferred when the suite is the client.
 */
export function judge(
  spec: Pick<CaseSpec, "expect" | "handshake" | "clientHandshake" | "deflate">,
  expectedEvents: ExpectedEvents,
  observed: JudgeInput,
  suiteIsServer = false,
): Verdict {
  const { expect } = spec;
  const { received, close } = observed;
  const refused = expect.refusal && refusedPartWay(expectedEvents.ok, received, close);
  const v = refused
    ? judgeEarlyClose(expect, expectedEvents.ok.length, received, close, suiteIsServer)
    : judgeEvents(expect, expectedEvents, received, close, suiteIsServer);
  const handshake = spec.handshake?.expect;
  if (handshake && handshake.outcome !== "accept") {
    judgeRefusal(v, handshake, observed.handshake);
  }
  const client = spec.clientHandshake;
  if (close.opened && client?.judge === "refuse") judgeClientRefusal(v, received, close);
  if (close.opened && client?.judge === "request") {
    judgeRequest(v, client, observed.handshake);
  }
  if (client?.judge === "accept" && close.opened && !close.closedBySuite && !received.length) {
    v.result = "The client failed the connection on an answer that passes the checks of §4.1, " +
      "by which it MUST validate the response: the connection is established.";
  }
  // A refusal with a fitting code is judged at the case's level, a wrong code at the refusal's.
  // A case that never got past a handshake it was not about did not run: no level softens that.
  const level = !close.opened && !spec.handshake
    ? "must"
    : refused && v.behavior === "FAILED"
    ? expect.refusal!.level
    : expect.level ?? "must";
  applyLevel(v, level);
  if (spec.deflate?.ifDeclined === "unimplemented" && close.opened && !observed.deflate?.agreed) {
    // Autobahn's rule: a peer without permessage-deflate has nothing to test here. The
    // steps did not run, so the events and the close expected of them say nothing; the
    // suite closed at once, and that close is judged (what the peer sent still is, below).
    v.behavior = "UNIMPLEMENTED";
    v.matched = undefined;
    v.result = suiteIsServer
      ? "The client offered no permessage-deflate the case accepts " +
        `(${observed.deflate?.offered || "no offer"}): the case did not run.`
      : "The server declined permessage-deflate: the case did not run.";
    if (close.closedBySuite && close.wasClean) {
      v.behaviorClose = "OK";
      v.resultClose = "The connection was closed properly.";
    }
  }
  // What the server sent is checked in every case, whatever the case's own level.
  const broken = (observed.violations ?? []).filter((x) => x.level !== "may");
  if (broken.length > 0 && v.behavior !== "FAILED") {
    const must = broken.some((x) => x.level === "must");
    v.behavior = must ? "FAILED" : "NON-STRICT";
    v.matched = undefined;
    v.result = `The ${suiteIsServer ? "client" : "server"} broke ${
      must ? "a MUST" : "a SHOULD"
    } in what it sent: ${broken.map((x) => `${x.detail} (${rfcReference(x.rfc)})`).join("; ")}.`;
  }
  // Against a server, say why its answer did not open the connection.
  if (!close.opened && !suiteIsServer && !spec.handshake && observed.handshake?.problems.length) {
    v.result = `${v.result.replace(/\.$/, "")}: ${observed.handshake.problems.join("; ")}.`;
  }
  return v;
}

/** The verdict for breaking a rule of each level. */
const BROKEN: Record<Level, Behavior> = {
  must: "FAILED",
  should: "NON-STRICT",
  may: "INFORMATIONAL",
};

/**
 * Judges the answer to a handshake the server is not to complete (case.ts
 * HandshakeExpectation says which answers the RFC allows). The events and
 * close verdicts stand only where the server accepted and the suite closed.
 */
function judgeRefusal(v: Verdict, expect: HandshakeExpectation, hs?: HandshakeObservation): void {
  const status = hs?.status;
  const plainHttp = expect.outcome === "not-websocket";
  const declineOrRefuse = expect.outcome === "accept-or-refuse";
  // A valid 101 declined what the server cannot honour: the events decide, as in any case.
  if (declineOrRefuse && status === 101 && hs!.problems.length === 0) return;
  v.matched = undefined;
  if (status === 101 && hs!.problems.length === 0) {
    if (plainHttp) {
      v.behavior = "FAILED";
      v.result = "The server switched to WebSocket (101) for a request that asks for no " +
        "upgrade to it (RFC 7230 §6.7: a server MUST NOT switch to a protocol the client " +
        "did not ask for).";
      return;
    }
    const level = expect.accepting ?? "must";
    v.behavior = BROKEN[level];
    v.result = level === "may"
      ? "Informational: the server accepted (101), understanding what the client asked " +
        "for, as it may."
      : `The server accepted (101) a handshake it ${level} refuse.`;
    return;
  }
  if (status === undefined || status === 101) {
    const why = hs?.problems.join("; ") || "the connection ended without one";
    if (plainHttp && status === undefined) {
      v.behavior = v.behaviorClose = "INFORMATIONAL";
      v.result = v.resultClose = `The server sent no HTTP response: ${why}. RFC 6455 asks ` +
        "nothing of a request that is no WebSocket handshake.";
      return;
    }
    if (status === 101 && declineOrRefuse && expect.accepting && expect.accepting !== "must") {
      // What the server should not have accepted, only: the connection itself is fine.
      v.behavior = BROKEN[expect.accepting];
      v.behaviorClose = "OK";
      v.result = v.resultClose = `The server accepted what it ${expect.accepting} decline: ${why}.`;
      return;
    }
    v.behavior = v.behaviorClose = "FAILED";
    v.result = v.resultClose = plainHttp
      ? `The server answered 101 to a request that asks for no upgrade to WebSocket: ${why}.`
      : status === 101 && declineOrRefuse
      ? `The server answered 101, and not a valid one (${why}), where it had to decline what ` +
        "it cannot honour or refuse the handshake with an HTTP error code."
      : status === 101
      ? `The server answered 101, and not a valid one (${why}), where the handshake had to be ` +
        `refused with an HTTP error code${
          expect.accepting === "may" ? " or accepted with a valid 101" : ""
        }.`
      : `The server sent no HTTP error response: ${why}.`;
    return;
  }
  v.behaviorClose = "OK";
  if (plainHttp) {
    v.behavior = "OK";
    v.result = v.resultClose = `The server answered ${status}, not 101: the request asks for ` +
      "no upgrade to WebSocket, and any other answer is right.";
    return;
  }
  v.resultClose = `The server refused the handshake with ${status}.`;
  if (expect.listsVersion13 && !hs!.versions.some((x) => x.split(/\s*,\s*/).includes("13"))) {
    v.behavior = "FAILED";
    v.result = `The refusal (${status}) does not list version 13 in Sec-WebSocket-Version ` +
      "(§4.2.2, §4.4: MUST).";
    return;
  }
  [v.behavior, v.result] = refusalStatus(status, expect.alsoRight ?? []);
}

/**
 * Judges a client's answer to a 101 it MUST refuse (§4.1: it fails the
 * connection): no data frame may come, so the echo of the suite's message
 * fails it. How the client ended the connection is its own choice.
 */
function judgeClientRefusal(v: Verdict, received: ObservedEvent[], close: CloseObservation): void {
  const messages = received.filter((e) => e.type === "message").length;
  v.matched = undefined;
  if (messages > 0) {
    v.behavior = v.behaviorClose = "FAILED";
    v.result = v.resultClose = `The client took the answer as an open connection: it sent ${
      messages === 1 ? "a data message" : `${messages} data messages`
    } (the echo of the suite's message), where it MUST fail the connection (§4.1).`;
    return;
  }
  v.behavior = v.behaviorClose = "OK";
  v.result = "The client refused the answer: it sent no data frame.";
  v.resultClose = close.closedBySuite
    ? "The client sent nothing until the suite closed the connection."
    : close.remoteCloseFrame
    ? "The client sent a close frame and the connection ended."
    : "The client closed the TCP connection.";
}

/**
 * Judges the client's request by the problems found in the case's sections,
 * or, for a case that saw two connections, by their keys; the worst level decides.
 */
function judgeRequest(v: Verdict, spec: ClientHandshakeSpec, hs?: HandshakeObservation): void {
  const sections = spec.sections ?? [];
  const found = spec.twice
    ? keyReuse(hs?.request?.keys ?? [])
    : (hs?.request?.problems ?? []).filter((p) => sections.includes(p.section));
  v.matched = undefined;
  const worst = (["must", "should", "may"] as const).find((l) => found.some((p) => p.level === l));
  if (worst === undefined) {
    v.behavior = "OK";
    v.result = spec.twice
      ? "The client's key was new on its second connection."
      : `The client's request meets ${sections.join(", ")}.`;
    return;
  }
  v.behavior = BROKEN[worst];
  v.result = `The client's request: ${
    found.map((p) => `${p.text} (${p.section}, ${p.level.toUpperCase()})`).join("; ")
  }.`;
}

/** How a status weighs as the refusal of a malformed WebSocket handshake (§4.2.1). */
function refusalStatus(status: number, alsoRight: number[]): [Behavior, string] {
  if ((status >= 400 && status < 500) || alsoRight.includes(status)) {
    return ["OK", `The server refused the handshake with ${status}, an HTTP error code.`];
  }
  if (status >= 500 && status < 600) {
    return [
      "NON-STRICT",
      `The server refused the handshake with ${status}: an HTTP error code, as required, ` +
      "but a server error for the client's fault; a 4xx fits.",
    ];
  }
  if (status >= 300 && status < 400) {
    return [
      "NON-STRICT",
      `The server redirected (${status}) a request that is no valid handshake, as §4.2.2 ` +
      "lets it; §4.2.1 asks for an HTTP error code, a 4xx.",
    ];
  }
  return ["FAILED", `The server answered ${status}, not an HTTP error code (§4.2.1: MUST).`];
}

/** The peer closed the connection itself with the events so far a proper prefix of `ok`. */
function refusedPartWay(ok: ObservedEvent[], received: ObservedEvent[], close: CloseObservation) {
  return close.opened && !close.closedBySuite && received.length < ok.length &&
    sequenceMatches(received, ok.slice(0, received.length), true);
}

/**
 * Judges a peer that stopped part-way on purpose (a `refusal`): the events
 * before it are right; the close is judged as the peer's, against the refusal's codes.
 */
function judgeEarlyClose(
  expect: Expectation,
  expectedCount: number,
  received: ObservedEvent[],
  close: CloseObservation,
  suiteIsServer: boolean,
): Verdict {
  const asRefusal: Expectation = {
    ...expect,
    close: { ...expect.close, by: "peer", codes: expect.refusal!.codes },
    wrongCodeFails: true,
  };
  const v = judgeEvents(asRefusal, { ok: received }, received, close, suiteIsServer);
  v.matched = undefined; // no alternative was completed
  if (v.behavior === "OK") {
    v.result = `The peer refused to go on after ${received.length} of the ${expectedCount} ` +
      `expected events, closing the connection ${
        close.remoteCloseCode !== undefined ? `with ${close.remoteCloseCode}` : "without a code"
      }, as it may.`;
  } else if (v.behaviorClose === "WRONG CODE") {
    v.result = `The peer refused to go on after ${received.length} of the ${expectedCount} ` +
      `expected events with close code ${close.remoteCloseCode}; a refusal calls for ${
        expect.refusal!.codes.join(" or ")
      }.`;
  }
  return v;
}

/** Weighs a verdict by the requirement's level: a broken SHOULD is NON-STRICT, a MAY informational. */
function applyLevel(v: Verdict, level: Level): void {
  if (level === "may") {
    v.result = v.matched === "ok"
      ? `Informational: the events matched the first alternative. ${v.result}`
      : v.matched === "nonStrict"
      ? `Informational: the events matched the second alternative. ${v.result}`
      : `Informational: the RFC leaves the outcome open. ${v.result}`;
    v.behavior = "INFORMATIONAL";
    v.behaviorClose = "INFORMATIONAL";
  } else if (level === "should" && isFailing(v)) {
    v.result = `Not strict (a SHOULD of the RFC): ${v.result}`;
    v.behavior = "NON-STRICT";
    if (v.behaviorClose !== "OK") {
      v.resultClose = `Not strict (a SHOULD of the RFC): ${v.resultClose}`;
      v.behaviorClose = "INFORMATIONAL";
    }
  }
}

/** Whether the peer's close code is one the case accepts. */
function codeAccepted(expect: Expectation["close"], close: CloseObservation): boolean {
  const code = close.remoteCloseCode!;
  return expect.codes.includes(code) ||
    (code === FAIL_TIMER_CODE && close.localCloseCode === FAIL_TIMER_CODE);
}

/**
 * Whether the suite's close, which the peer answered, was a normal one: the suite
 * started the closing handshake (not failing the connection) with a legal close
 * frame, empty or with a valid code. Cases whose own close frame breaks a rule say
 * how another code weighs (`otherCodes`), so they are never normal here.
 */
function suiteClosedNormally(expect: CloseExpectation, close: CloseObservation): boolean {
  if (expect.by !== "suite" || expect.otherCodes || !close.closedBySuite) return false;
  if (close.failedBySuite) return false;
  const code = close.localCloseCode;
  return code === undefined ? !close.localCloseReason : isValidCloseCode(code);
}

/**
 * A close the case does not prefer, weighed at `level`: a broken MUST is
 * WRONG CODE (Autobahn's rule), a SHOULD is NON-STRICT, a MAY is informational.
 */
function weighCloseCode(v: Verdict, level: Level, why: string): void {
  if (level === "must") {
    v.behaviorClose = "WRONG CODE";
    v.resultClose = why;
    return;
  }
  v.behaviorClose = "INFORMATIONAL";
  v.resultClose = level === "should" ? `Not strict (a SHOULD of the RFC): ${why}` : why;
  if (level === "should" && v.behavior === "OK") {
    v.behavior = "NON-STRICT";
    v.result = `Not strict (a SHOULD of the RFC): ${why}`;
  }
}

/** Autobahn's rules for the events and the close. */
function judgeEvents(
  expect: Expectation,
  expectedEvents: ExpectedEvents,
  received: ObservedEvent[],
  close: CloseObservation,
  suiteIsServer: boolean,
): Verdict {
  const v: Verdict = {
    behavior: "FAILED",
    behaviorClose: "FAILED",
    result: "The events observed differ from every expected sequence.",
    resultClose: "The TCP connection was dropped without a closing handshake.",
  };
  const { ok } = expectedEvents;
  const partOfOk = expect.mayFailBeforeAnswering && received.length < ok.length &&
    sequenceMatches(received, ok, false);
  const answered = `${received.length} of the ${ok.length} events expected for what the ` +
    "suite sent before the frame the peer must fail on";
  if (sequenceMatches(received, ok, true)) {
    v.behavior = "OK";
    v.matched = "ok";
    v.result = expect.mayFailBeforeAnswering
      ? "The events observed match the expected sequence: the peer answered what the suite " +
        "sent before the frame it must fail on (failing before answering would be as right: " +
        "RFC 6455 ranks neither)."
      : "The events observed match the expected sequence.";
  } else if (partOfOk && close.opened && !close.closedBySuite) {
    v.behavior = "OK";
    v.matched = "okPrefix";
    v.result = `The peer failed the connection after ${answered}, as it may: its read ` +
      "boundaries decide whether it answers first, and RFC 6455 ranks neither.";
  } else if (
    expectedEvents.nonStrict && sequenceMatches(received, expectedEvents.nonStrict, true)
  ) {
    v.behavior = "NON-STRICT";
    v.matched = "nonStrict";
    v.result = "The events observed match the sequence the RFC tolerates, not the preferred one.";
  } else if (partOfOk) {
    v.result = `The peer sent ${answered}, and did not fail the connection, which alone ` +
      "would excuse the rest.";
  }

  if (!close.opened) {
    // Autobahn would still score the events here (an empty expectation "matches" a
    // server that never answered); a case that never ran cannot have behaved well.
    v.behavior = "FAILED";
    v.matched = undefined;
    v.result = v.resultClose = close.openHandshakeTimeout
      ? "The opening handshake did not complete in time."
      : "The opening handshake was never completed.";
  } else {
    const expectedBySuite = expect.close.by === "suite";
    if (expectedBySuite !== close.closedBySuite) {
      v.behaviorClose = "FAILED";
      v.resultClose = expectedBySuite
        ? "The peer closed the connection, where the suite was to close it."
        : "The peer did not close or fail the connection; the suite had to.";
      if (expect.close.wrongEndpointIsFatal) {
        v.behavior = "FAILED";
        v.matched = undefined;
        v.result = "The peer did not fail the connection: it did not detect the error.";
      }
    } else if (expect.close.clean && !close.wasClean) {
      v.behaviorClose = "UNCLEAN";
      v.resultClose = `The RFC requires a clean close here, but ${
        close.notCleanReason ?? "the closing handshake did not complete"
      }.`;
    } else if (close.remoteCloseCode !== undefined && !codeAccepted(expect.close, close)) {
      const code = close.remoteCloseCode;
      if (isValidCloseCode(code) && suiteClosedNormally(expect.close, close)) {
        // No MUST names the code answering a close: §5.5.1 says only that the reply
        // "typically echos" the code received, and §7.4 lets an endpoint choose its
        // code. A code outside the valid ones is no such choice (1005, 1006, 1015: §7.4.1's
        // MUST NOT): it is weighed as the case says, WRONG CODE by default.
        weighCloseCode(
          v,
          "should",
          `The peer answered the suite's normal close (${
            close.localCloseCode ?? "no code"
          }) with ${code}, a valid code, where ${expect.close.codes.join(" or ")} fits: ` +
            "an endpoint typically echoes the code it received (§5.5.1), a preference no " +
            "MUST enforces.",
        );
      } else {
        const other = expect.close.otherCodes;
        const level = other && !other.except?.includes(code) ? other.level : "must";
        weighCloseCode(
          v,
          level,
          `The peer's close code was ${code}; ${level === "must" ? "expected " : ""}${
            expect.close.codes.join(" or ")
          }${level === "must" ? ", or none" : " is the fitting code"}.`,
        );
      }
    } else if (
      close.remoteCloseFrame && close.remoteCloseCode === undefined && expect.close.emptyReply
    ) {
      weighCloseCode(
        v,
        expect.close.emptyReply,
        "The peer answered with an empty close frame, which cannot be told from a normal " +
          `close; ${expect.close.codes.join(" or ")} would say it found the error.`,
      );
    } else if (expect.close.tcpHold?.peerFirst && close.wasClean && !close.droppedBySuite) {
      weighCloseCode(
        v,
        expect.close.tcpHold.peerFirst,
        "The peer closed the TCP connection while the suite held it open: after the closing " +
          "handshake the server closes TCP first, and a client SHOULD wait for it (§7.1.1).",
      );
    } else if (!suiteIsServer && close.droppedBySuite) {
      v.behaviorClose = "FAILED BY CLIENT";
      v.resultClose =
        "The suite had to close the TCP connection; the server should close it first.";
    } else {
      v.behaviorClose = "OK";
      v.resultClose = "The connection was closed properly.";
    }
  }

  if (expect.wrongCodeFails && v.behaviorClose === "WRONG CODE") {
    v.behavior = "FAILED";
    v.result = v.resultClose;
  }
  return v;
}
