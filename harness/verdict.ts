/**
 * Verdicts with Autobahn|Testsuite's meanings, so reports can be compared
 * case by case. Pure: computed from what a session observed.
 */
import type { Expectation } from "./case.ts";
import { type ObservedEvent, sequenceMatches } from "./payload.ts";

export type Behavior = "OK" | "NON-STRICT" | "INFORMATIONAL" | "UNIMPLEMENTED" | "FAILED";
export type CloseBehavior =
  | "OK"
  | "FAILED"
  | "WRONG CODE"
  | "UNCLEAN"
  | "FAILED BY CLIENT"
  | "INFORMATIONAL";

/** How the connection ended, from the suite's side. */
export interface CloseObservation {
  /** The opening handshake completed. */
  opened: boolean;
  /** The suite sent the first close frame (Autobahn's closedByMe). */
  closedBySuite: boolean;
  /** The suite failed the connection because of something the peer did. */
  failedBySuite: boolean;
  /** The suite closed the TCP connection (Autobahn's droppedByMe). */
  droppedBySuite: boolean;
  /** Both close frames were exchanged and the TCP connection then closed in time. */
  wasClean: boolean;
  notCleanReason?: string;
  remoteCloseCode?: number;
  remoteCloseReason?: string;
  localCloseCode?: number;
  localCloseReason?: string;
  /** The peer did not answer our close frame in time. */
  closeHandshakeTimeout: boolean;
  /** The peer (a server) did not close TCP in time after the closing handshake. */
  peerDropTimeout: boolean;
  /** The opening handshake did not finish in time. */
  openHandshakeTimeout: boolean;
}

export interface Verdict {
  behavior: Behavior;
  behaviorClose: CloseBehavior;
  /** Why `behavior` is what it is. */
  result: string;
  /** Why `behaviorClose` is what it is. */
  resultClose: string;
  /** Which expectation alternative the events matched, if any. */
  matched?: "ok" | "nonStrict";
}

/** A case counts as failed when either verdict is one of these. */
export function isFailing(v: Pick<Verdict, "behavior" | "behaviorClose">): boolean {
  return v.behavior === "FAILED" || v.behaviorClose === "FAILED" ||
    v.behaviorClose === "WRONG CODE" || v.behaviorClose === "UNCLEAN";
}

/**
 * Judges a finished case. `expectedEvents` are the expectation's alternatives
 * already resolved to bytes. `suiteIsServer` tells the direction: a client that
 * leaves the TCP close to the server is only preferred when the suite is the client.
 */
export function judge(
  expect: Expectation,
  expectedEvents: { ok: ObservedEvent[]; nonStrict?: ObservedEvent[] },
  received: ObservedEvent[],
  close: CloseObservation,
  suiteIsServer = false,
): Verdict {
  const v: Verdict = {
    behavior: "FAILED",
    behaviorClose: "FAILED",
    result: "The events observed differ from every expected sequence.",
    resultClose: "The TCP connection was dropped without a closing handshake.",
  };
  if (sequenceMatches(received, expectedEvents.ok, true)) {
    v.behavior = "OK";
    v.matched = "ok";
    v.result = "The events observed match the expected sequence.";
  } else if (
    expectedEvents.nonStrict && sequenceMatches(received, expectedEvents.nonStrict, true)
  ) {
    v.behavior = "NON-STRICT";
    v.matched = "nonStrict";
    v.result = "The events observed match the sequence the RFC tolerates, not the preferred one.";
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
    } else if (
      close.remoteCloseCode !== undefined && !expect.close.codes.includes(close.remoteCloseCode)
    ) {
      v.behaviorClose = "WRONG CODE";
      v.resultClose = `The peer's close code was ${close.remoteCloseCode}; expected ${
        expect.close.codes.join(" or ")
      }, or none.`;
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
  if (expect.informational) {
    v.result = v.matched === "ok"
      ? "Informational: the events matched the first alternative."
      : v.matched === "nonStrict"
      ? "Informational: the events matched the second alternative."
      : "Informational: the RFC leaves the outcome open.";
    v.behavior = "INFORMATIONAL";
    v.behaviorClose = "INFORMATIONAL";
  }
  return v;
}
