/**
 * The shape of a conformance case. Cases are data: fixtures/ holds them, the
 * session engine (session.ts) performs their steps, verdict.ts judges what was
 * observed against their expectations.
 */
import type { TestDataName } from "./testdata.ts";

/**
 * Bytes described as data.
 * - a string is its UTF-8 encoding;
 * - `{ hex }` is raw bytes (any bytes, valid UTF-8 or not);
 * - `{ repeat, length }` repeats a pattern until `length` bytes (the last copy
 *   truncated), like Autobahn's `payload_len`;
 * - `{ testData, offset, length }` is `length` bytes of a data set (testdata.ts)
 *   from `offset`, wrapping around its end.
 */
export type Payload =
  | string
  | { hex: string }
  | { repeat: string | { hex: string }; length: number }
  | { testData: TestDataName; offset: number; length: number };

/**
 * Messages cut from a data set, as Autobahn's compression cases send them
 * (its sendOne): message i is the `size` bytes from offset i * size, wrapping
 * around the set's end; `count` messages in all, text or binary.
 */
export interface MessageSeries {
  data: TestDataName;
  binary: boolean;
  size: number;
  count: number;
}

/** A frame as it goes on the wire, legal or not. */
export interface FrameFields {
  opcode: number;
  /** Default true. */
  fin?: boolean;
  /** The three RSV bits as a number 0-7. Default 0. */
  rsv?: number;
  payload?: Payload;
  /**
   * Masking key as 8 hex digits, or "none" to send the frame unmasked.
   * Default: a fresh random key, as RFC 6455 §5.3 asks of clients.
   */
  mask?: string;
  /** Payload length encoding; default the minimal one. */
  lengthForm?: 7 | 16 | 64;
}

/** How the bytes of one step reach TCP. */
export interface Delivery {
  /** Write in pieces of this many bytes, each flushed before the next (Autobahn's chopsize). */
  chop?: number;
  /** Write this step's bytes as a write of their own, flushed (Autobahn's sync). */
  sync?: boolean;
}

/**
 * One thing the suite does in a case, told apart by `kind`: every switch on it
 * is exhaustive, so a new kind of step does not compile until every place that
 * inspects steps handles it.
 */
export type Step =
  /** Send one frame. */
  | ({ kind: "frame"; frame: FrameFields } & Delivery)
  /**
   * Send a message as the suite's own endpoint would: one frame, or frames of
   * `fragmentSize` bytes (first with the message opcode, then continuations).
   */
  | ({
    kind: "message";
    message: {
      binary?: boolean;
      payload: Payload;
      fragmentSize?: number;
      /**
       * Sent as is, though permessage-deflate was agreed: RFC 7692 §6 lets a
       * sender leave any message uncompressed (RSV1 clear).
       */
      uncompressed?: boolean;
    };
  } & Delivery)
  /**
   * Start the closing handshake: send a close frame and enter the CLOSING state.
   * `code` absent means an empty close payload; `reason` needs no code
   * (that makes the illegal 1-byte close payload of case 7.3.2).
   */
  | ({ kind: "close"; close: { code?: number; reason?: Payload } } & Delivery)
  /** Send a frame header announcing `length` payload bytes; frameData steps send them. */
  | {
    kind: "frameStart";
    frameStart: { opcode: number; fin?: boolean; rsv?: number; length: number };
  }
  /** Send the next payload bytes of the frame opened by frameStart, masked with its key. */
  | { kind: "frameData"; frameData: Payload }
  /** Send bytes exactly as given. */
  | ({ kind: "raw"; raw: Payload } & Delivery)
  /**
   * Pause. If the connection is no longer open afterwards, the remaining steps
   * are skipped. With a tag, a `timeout` event with that tag is recorded when
   * the connection is still open (Autobahn's continueLater).
   */
  | { kind: "wait"; wait: number; tag?: string }
  /**
   * Pause until `events` events have been observed in all. If they have not
   * within `within` seconds, the suite starts the closing handshake (1000) and
   * the remaining steps are skipped, as they are when the connection closed.
   */
  | { kind: "waitForEvents"; waitForEvents: { events: number; within: number } }
  /** In this many seconds, start the closing handshake with an empty close frame if still open. */
  | { kind: "closeAfter"; closeAfter: number }
  /**
   * In this many seconds, fail the connection if it is not closed: send close
   * 1001 when open, drop TCP when already closing (Autobahn's killAfter).
   */
  | { kind: "failAfter"; failAfter: number }
  /** Send `frame`, wait for its echo, send again: `count` round trips in all. */
  | { kind: "roundTrips"; roundTrips: { count: number; frame: FrameFields } }
  /**
   * Send the series' messages as the suite's endpoint sends messages (compressed
   * when permessage-deflate is agreed; then cut in frames of `fragmentSize`
   * bytes), each once the previous one's echo has arrived.
   */
  | {
    kind: "messageRoundTrips";
    messageRoundTrips: MessageSeries & { fragmentSize?: number };
  };

/** For the `default` of a switch on a union's tag: compiles only when every case is handled. */
export function unhandled(value: never): never {
  throw new Error(`unhandled: ${JSON.stringify(value)}`);
}

/** One observed event, as the expectations list them. */
export type EventSpec =
  | { message: Payload; binary?: boolean; times?: number }
  /** The `count` messages of the series, in order. */
  | { messages: MessageSeries }
  | { pong: Payload; times?: number }
  | { timeout: string };

export interface CloseExpectation {
  /** Which endpoint is expected to start the closing handshake or fail the connection. */
  by: "suite" | "peer";
  /**
   * Close codes acceptable from the peer, the preferred first. No close frame
   * at all is always acceptable; an empty one too, unless `emptyReply` says otherwise.
   */
  codes: number[];
  /**
   * The level at which a close code outside `codes` weighs. Absent or "must":
   * Autobahn's rule, WRONG CODE. "should": NON-STRICT, for cases where the RFC
   * only says "fail the connection" (§7.1.7: the close frame, and so its code,
   * is a MAY), so another code still fails it; codes in `except` say the peer
   * saw no error at all (a normal close) and stay WRONG CODE.
   */
  otherCodes?: { level: Level; except?: number[] };
  /**
   * The suite's close frame is illegal, and an empty close frame in answer
   * cannot be told from an ordinary close: it weighs at this level (absent:
   * acceptable). Dropping TCP without a close frame stays acceptable.
   */
  emptyReply?: Level;
  /** Whether the RFC requires a clean close (closing handshake completed, peer closed TCP). */
  clean: boolean;
  /**
   * Closing by the wrong endpoint fails the behaviour verdict too: the peer then
   * did not detect the error at all (Autobahn's closedByWrongEndpointIsFatal).
   */
  wrongEndpointIsFatal?: boolean;
  /**
   * After the closing handshake the suite leaves TCP open `seconds` for the
   * peer to close, then closes it itself. Absent: as its role does (§7.1.1): as
   * the client it gives the server 1 s (SessionOptions.peerDropTimeoutMs), as
   * the server it closes TCP at once. `peerFirst`: the level of the rule a peer
   * breaks by closing TCP within that time (a client SHOULD leave it to the
   * server); absent, it may.
   */
  tcpHold?: { seconds: number; peerFirst?: Level };
}

export interface Expectation {
  /** Events (in order) for behaviour OK. */
  ok: EventSpec[];
  /** Events (in order) for behaviour NON-STRICT. */
  nonStrict?: EventSpec[];
  /**
   * The case sends what `ok` answers, then a frame the peer must fail the connection
   * on, in writes of their own: whether the peer answers the earlier frames before
   * it fails depends on how its reads split the suite's bytes, and RFC 6455 ranks
   * neither. When the peer ends the connection itself, any prefix of `ok` is then as
   * right as `ok` (OK, the verdict saying which was seen).
   */
  mayFailBeforeAnswering?: boolean;
  close: CloseExpectation;
  /**
   * Default true: once the events match the expectation (and the suite is to
   * close), the suite starts the closing handshake with 1000 at once.
   */
  autoClose?: boolean;
  /** A WRONG CODE close verdict also fails the behaviour (Autobahn's 7.x cases). */
  wrongCodeFails?: boolean;
  /**
   * The level of the requirement (default "must"). Breaking a "should" gives
   * NON-STRICT instead of a failure. "may": the RFC leaves the outcome open,
   * and both verdicts are INFORMATIONAL, with what was observed.
   */
  level?: Level;
  /**
   * The peer may stop early by closing the connection itself (a server refusing
   * a message too big for it): when it does, with the events so far a prefix of
   * `ok`, its close code must be one of `codes` (or absent). A code outside them
   * breaks a requirement of the given level; a refusal within them is judged at
   * the case's own level.
   */
  refusal?: { codes: number[]; level: Level };
}

/**
 * The opening handshake a case sends, as changes to a valid request (§4.1).
 * Absent: the valid request.
 */
export interface HandshakeSpec {
  method?: string;
  /** Request target (path and query); default the URL's. */
  target?: string;
  /** Query parameters appended to the URL's target (keeps the endpoint's path). */
  query?: string;
  httpVersion?: string;
  /**
   * Header changes, matched case-insensitively against the valid request's
   * headers: a string (or several, sent as repeated lines) replaces or adds the
   * header, written with the name as given here; null removes it.
   */
  headers?: Record<string, string | string[] | null>;
  /** Frames sent in the same write as the request, before any answer. */
  frames?: FrameFields[];
}

/**
 * Figures a case can report:
 * - `handshakeStatus`: the HTTP status the server answered the opening handshake with;
 * - `tcpCloseDelay`: how long the peer took to close TCP after the closing handshake;
 * - `peerKeepalive`: the pings the peer sent, and whether and when it closed;
 * - `peerClose`: whether and when the peer closed the connection, and with which code;
 * - `messageSizeLimit`: the largest message echoed and the smallest one refused;
 * - `redirect`: whether the client followed the answer's redirect (a MAY of §4.1).
 */
export type Measurement =
  | "handshakeStatus"
  | "tcpCloseDelay"
  | "peerKeepalive"
  | "peerClose"
  | "messageSizeLimit"
  | "redirect";

/** Requirement levels of RFC 2119, which set the verdict when a rule is broken. */
export type Level = "must" | "should" | "may";

/**
 * What the server must do with the case's handshake, and which answers the RFC allows:
 * - "accept": complete it with a 101 that §4.1 lets the client accept;
 * - "refuse": a malformed WebSocket handshake. The server MUST answer with an HTTP
 *   error code (§4.2.1, "such as 400 Bad Request"; §4.2.2 item 4, "such as 426"): any
 *   4xx is right; a 5xx is an error code, but blames the server for the client's
 *   fault (NON-STRICT); a 3xx is the redirect §4.2.2 item 3 lets a server make,
 *   not the error code asked for (NON-STRICT); a 1xx or 2xx, a 101, or no HTTP
 *   answer breaks the MUST (FAILED);
 * - "accept-or-refuse": the request offers what the server cannot honour (an invalid
 *   permessage-deflate offer, RFC 7692 §7: the server declines it): a 101 that
 *   passes §4.1's checks (the offer declined) and an HTTP error code are both
 *   right; a 101 accepting the offer fails them (FAILED);
 * - "not-websocket": the request asks for no upgrade to WebSocket (Upgrade without
 *   the websocket token, or no Upgrade token in Connection, so RFC 7230 §6.7 does
 *   not apply Upgrade): an ordinary HTTP request, and any answer but a 101 is right.
 *   An HTTP server that drops it unanswered breaks no rule of RFC 6455 (INFORMATIONAL).
 */
export interface HandshakeExpectation {
  outcome: "accept" | "refuse" | "accept-or-refuse" | "not-websocket";
  /** "refuse": statuses outside 4xx that are as right for this request (505 for HTTP/1.0). */
  alsoRight?: number[];
  /**
   * "refuse": the request names a version other than 13. A refusal MUST carry
   * Sec-WebSocket-Version with the versions the server understands (§4.2.2 item 4,
   * §4.4), 13 among them; a refusal without it is FAILED whatever its status.
   */
  listsVersion13?: boolean;
  /**
   * "refuse": the level of the rule a valid 101 breaks (default "must": FAILED).
   * "may": the server may understand what the client asked for (version 8, a draft
   * whose framing is 13's), so accepting is INFORMATIONAL. "accept-or-refuse": the
   * level of the rule a 101 accepting the offer breaks (default "must").
   */
  accepting?: Level;
}

/**
 * How the suite, as the server, changes its answer to a client's opening
 * handshake (client mode; server_handshake.ts serverResponse). `headers` work
 * as a request's changes do (HandshakeSpec.headers): matched without regard to
 * case, a string (or several, sent as repeated lines) replaces the header in
 * place or adds it at the end, written with the name as given here; null
 * removes it. In a value, `{accept}` stands for the right Sec-WebSocket-Accept,
 * `{key}` for the client's key, and `{other-accept}` for the Accept of another
 * key (the client's with an "x" appended), so a case can double, misplace or
 * spoil them; `{redirect}` for a URL the case server serves for the case, where
 * a client following a 3xx's Location arrives (recorded: measure "redirect").
 */
export interface ResponseChanges {
  status?: number;
  /** Default: the status's usual phrase, if server_handshake.ts knows it, else empty. */
  reason?: string;
  httpVersion?: string;
  headers?: Record<string, string | string[] | null>;
}

/**
 * Client mode: how the suite answers the client's opening handshake, and what
 * the case judges of the client (§4.1):
 * - "accept": the answer is one §4.1 lets the client accept: the connection
 *   must open, which the echo the case's steps ask for shows;
 * - "refuse": the answer fails a check of §4.1 the client MUST make: it must
 *   fail the connection, so it never sends a data frame (no echo of the message
 *   the steps send). Closing TCP, at once or after a close frame, or sending
 *   nothing until the suite closes, are all the refusal;
 * - "request": the answer is valid, and the case judges the client's request:
 *   the problems found in it (server_handshake.ts checkClientRequest and
 *   requestNotes) under `sections`, each at its level.
 */
export interface ClientHandshakeSpec {
  judge: "accept" | "refuse" | "request";
  /** Changes to the valid 101. */
  response?: ResponseChanges;
  /** Write the answer in pieces of this many bytes, each flushed (1: byte by byte). */
  chop?: number;
  /** Seconds between the pieces of a chopped answer, so they reach the client in reads of their own. */
  pause?: number;
  /** Frames sent in the same write as the answer, before any step. */
  frames?: FrameFields[];
  /** "request": the sections of §4.1 (as the problems name them) the case judges. */
  sections?: string[];
  /**
   * "request": the client connects twice, the second time once the first
   * connection ended (client mode's runner, suite.ts), and the case judges
   * only that the two keys differ (§4.1 item 7: a new nonce per connection).
   */
  twice?: boolean;
  /**
   * The subprotocols the client is asked to offer (the driver's
   * ConnectOptions.protocols). A client that offered none (a command client is
   * not told: its command chooses) did not try the case: it is not run.
   */
  offerProtocols?: string[];
}

/**
 * The parameters of one permessage-deflate offer the suite makes as the
 * client (RFC 7692 §7.1), as written in Sec-WebSocket-Extensions.
 */
export interface DeflateOfferSpec {
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  serverMaxWindowBits?: number;
  /** `true`: the parameter without a value (the client accepts any limit, §7.1.2.2). */
  clientMaxWindowBits?: number | true;
}

/**
 * How the suite, as the server, accepts a client's permessage-deflate offer:
 * what it asks of the client beyond what the offer asks of the server (which
 * it always grants, §7.1.1.1, §7.1.2.1).
 */
export interface DeflateAcceptanceSpec {
  /** client_no_context_takeover in the response (§7.1.1.2: any offer allows it). */
  clientNoContextTakeover?: boolean;
  /**
   * client_max_window_bits=N in the response: only an offer with
   * client_max_window_bits allows it (§7.1.2.2), else this acceptance does not apply.
   */
  clientMaxWindowBits?: number;
  /**
   * Applies only to an offer with server_max_window_bits under 15, so that a
   * case's own response (ClientHandshakeSpec.response) with 15 is larger than
   * the offer allows (§7.1.2.1).
   */
  offerLimitsServerWindow?: boolean;
}

/**
 * permessage-deflate (RFC 7692) on the case's connection, in either role, as
 * Autobahn's groups 12 and 13 set it up.
 */
export interface DeflateSpec {
  /** Server role: the offers the suite makes, most preferred first (RFC 7692 §5). */
  offers: DeflateOfferSpec[];
  /**
   * Client role: the suite's acceptances, tried in order; the first that one of
   * the client's offers allows is the answer (each offer in the client's order).
   * None applies, or the client offered nothing: the suite declines.
   */
  accept: DeflateAcceptanceSpec[];
  /**
   * What a connection without permessage-deflate (the server declined, or the
   * client offered nothing the suite could accept) gets: "unimplemented", the
   * case is UNIMPLEMENTED and its steps are not run (Autobahn's rule); "run",
   * the steps run all the same and are judged as usual (declining is as right).
   */
  ifDeclined: "unimplemented" | "run";
}

export interface CaseSpec {
  /** Dotted id; Autobahn's where the case is Autobahn's. */
  id: string;
  /** What the case does, in a line. */
  title: string;
  /** RFC 6455 section(s) checked, e.g. "5.5.1". */
  rfc: string;
  /** The requirement checked, in our own words. */
  requirement: string;
  /**
   * The peers this case tests, when not every one its group names: a rule of
   * one side only (what a client must refuse in a 101, say). Absent: the group's.
   */
  peers?: readonly PeerRole[];
  /** A handshake other than the valid one, and what the server must do with it. */
  handshake?: { request: HandshakeSpec; expect: HandshakeExpectation };
  /** Client mode: the suite's answer to the client's handshake, and what is judged of it. */
  clientHandshake?: ClientHandshakeSpec;
  /** permessage-deflate offered (server role) or accepted (client role) on the connection. */
  deflate?: DeflateSpec;
  steps: Step[];
  expect: Expectation;
  /** Where and why this case departs from Autobahn's. */
  deviation?: string;
  /** Report timing prominently (performance cases). */
  reportTime?: boolean;
  /** What the case measures and reports as findings, beside its verdicts (measure.ts). */
  measure?: Measurement[];
  /** Upper bound on the case's duration in seconds; derived from the steps when absent. */
  timeout?: number;
}

export interface GroupSpec {
  /** Top-level group id, e.g. "1". */
  id: string;
  title: string;
  rfc: string;
  /** Titles of sub-groups, keyed by their id prefix ("1.1"). */
  subgroups?: Record<string, string>;
  /**
   * The peers the group's cases test: "server" (the suite is the client) and
   * "client" (client mode, the suite is the server, as Autobahn's fuzzingserver).
   */
  peers: readonly PeerRole[];
  cases: CaseSpec[];
}

/** What the peer under test is. */
export type PeerRole = "server" | "client";

/**
 * Orders dotted case ids as tuples of integers (1.1.10 after 1.1.9, 1.2 before
 * 1.2.1): the order of reports, and the order Autobahn numbers its cases in.
 */
export function compareIds(a: string, b: string): number {
  const pa = a.split(".").map(Number), pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * An `rfc` field (a case's, a group's, a broken rule's) as a reference: sections
 * of RFC 6455, unless it names its RFC ("RFC 7692 §7.1").
 */
export function rfcReference(rfc: string): string {
  return /^RFC \d/.test(rfc) ? rfc : `RFC 6455 §${rfc}`;
}

/** The group of a case id in a catalog (its first component is the group's id). */
export function groupOf(groups: readonly GroupSpec[], caseId: string): GroupSpec | undefined {
  const top = caseId.split(".")[0];
  return groups.find((g) => g.id === top);
}
