/**
 * What a session observes, as plain data: the engine fills it in, the judge
 * (verdict.ts, measure.ts) and the report writers read it. It sits below both,
 * so neither imports the other's layer for its types.
 */
import type { Level } from "./case.ts";
import type { AgreedDeflate } from "./deflate.ts";
import type { Role } from "./endpoint.ts";
import type { ObservedEvent } from "./payload.ts";
import type { RequestProblem } from "./server_handshake.ts";

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
  /** The peer sent a close frame, with or without a code (absent: it sent none). */
  remoteCloseFrame?: boolean;
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

/** What the server answered to the opening handshake. */
export interface HandshakeObservation {
  /** HTTP status, when a response head arrived. */
  status?: number;
  /** Sec-WebSocket-Version values of the response (a refusal must list 13). */
  versions: string[];
  /** Why the response does not establish a connection, when it does not. */
  problems: string[];
  /**
   * Client mode: what is wrong with the client's request, or left open by it
   * (checkClientRequest and requestNotes), each at its level; absent when no request came.
   */
  request?: {
    problems: RequestProblem[];
    /** The Sec-WebSocket-Key of each request, in order (a case may see two connections). */
    keys: string[];
    /** The subprotocols the request offered. */
    protocols: string[];
  };
  /**
   * Client mode, an answer redirecting to a URL the suite serves (`{redirect}`):
   * that URL, and the request target of the connection that came to it, when
   * one came (the client followed the redirect). Absent: no one watched it.
   */
  redirect?: { location: string; followedBy?: string };
}

/** A rule the server broke in what it sent, found by the checks every case makes. */
export interface Violation {
  rule: string;
  /** RFC 6455 section. */
  rfc: string;
  level: Level;
  detail: string;
}

/** Times a session records, in milliseconds since the opening handshake completed. */
export interface Timeline {
  /** Each ping frame the peer sent, up to the first PEER_PINGS_KEPT (session.ts). */
  peerPings: number[];
  /** Pings past those, counted only: a peer may flood pings. */
  peerPingsNotKept?: number;
  /** The peer's close frame arrived. */
  peerCloseFrame?: number;
  /** Both close frames had crossed: the closing handshake was complete. */
  closeHandshakeDone?: number;
  /** The peer closed the TCP connection (absent when the suite closed it first). */
  peerClosedTcp?: number;
}

/** permessage-deflate (RFC 7692) on a case's connection, when the case set it up. */
export interface DeflateObservation {
  /** The client's Sec-WebSocket-Extensions (the suite's offers, or the client's in client mode). */
  offered: string;
  /** The server's Sec-WebSocket-Extensions; absent: none. */
  response?: string;
  /** What both sides use, when the server accepted an offer; absent: it was declined. */
  agreed?: AgreedDeflate;
}

/** The expectation's alternatives, resolved to bytes. */
export interface ExpectedEvents {
  ok: ObservedEvent[];
  nonStrict?: ObservedEvent[];
}

/**
 * Everything a case is judged on (verdict.ts judgeCase): a saved observation
 * is judged again to the same verdict.
 */
export interface Observation {
  expected: ExpectedEvents;
  received: ObservedEvent[];
  close: CloseObservation;
  handshake: HandshakeObservation;
  violations: Violation[];
  timeline: Timeline;
  /** permessage-deflate's negotiation, in a case that set it up (CaseSpec.deflate). */
  deflate?: DeflateObservation;
  /** How long the suite waited for the peer to close TCP (what tcpCloseDelay is measured against). */
  peerDropTimeoutMs: number;
  /**
   * The suite's role: absent or "client" against a server; "server" in client
   * mode, where the suite closes TCP first (§7.1.1).
   */
  suiteRole?: Role;
}

/**
 * The suite's fail timer closes with 1001 (going away); a peer echoing it
 * gave the fitting answer to that close, whatever the case expected of it.
 */
export const FAIL_TIMER_CODE = 1001;

/** Bytes of an event payload kept for a report (a case that never opened builds only these). */
export const REPORT_PAYLOAD_LIMIT = 1024;
