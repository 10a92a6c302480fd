/**
 * Runs one case against a server: the suite is the client. It opens a raw
 * connection, performs the opening handshake, carries out the case's steps,
 * and plays the client side of RFC 6455 the way Autobahn's fuzzing client
 * does (fail on protocol errors with a close frame, 1 s closing-handshake
 * timeout, 1 s for the server to close TCP), so verdicts keep their meaning.
 *
 * runClientCase runs a case against a client (client mode), as Autobahn's
 * fuzzingserver does: the suite is the server on the connection the client
 * made, and the same steps and observations serve, with the endpoint in the
 * server role (frames unmasked, the client's masked; the suite closes TCP first).
 */
import {
  type CaseSpec,
  type Delivery,
  type FrameFields,
  type MessageSeries,
  type Step,
  unhandled,
} from "./case.ts";
import {
  Endpoint,
  type EndpointEvent,
  type MessageOptions,
  type PeerObservation,
  type ProtocolError,
  randomBytes,
  type Role,
  type State,
} from "./endpoint.ts";
import {
  decodeHeader,
  encodeFramePieces,
  encodeHeader,
  fragmentCount,
  type FrameHeader,
  isControlOpcode,
  maskInPlace,
  Opcode,
} from "./frame.ts";
import {
  changeRequest,
  checkResponse,
  clientRequest,
  encodeRequest,
  generateKey,
  type HeaderList,
  headerTokens,
  headerValues,
  parseHead,
  parseStatusLine,
} from "./handshake.ts";
import {
  eventsEqual,
  type ObservedEvent,
  PayloadCache,
  payloadLength,
  resolveEvents,
  seriesPayload,
} from "./payload.ts";
import { concat, connectRaw, Transport } from "./transport.ts";
import { peerNow, peerTimeout, type PeerTimer } from "./clock.ts";
import { Utf8Validator } from "./utf8.ts";
import { stepTraits } from "./steps.ts";
import {
  type CloseObservation,
  type DeflateObservation,
  FAIL_TIMER_CODE,
  type HandshakeObservation,
  type Observation,
  REPORT_PAYLOAD_LIMIT,
  type Timeline,
  type Violation,
} from "./observation.ts";
import {
  checkClientRequest,
  type ExtensionOffer,
  formatExtensions,
  parseExtensions,
  requestNotes,
  serverResponse,
} from "./server_handshake.ts";
import {
  acceptDeflateOffers,
  type AgreedDeflate,
  checkDeflateResponse,
  deflateExtension,
  offerParams,
  PerMessageDeflate,
} from "./deflate.ts";
import { WireLog } from "./wirelog.ts";

export interface SessionOptions {
  url: URL;
  caCerts?: string[];
  /** Bound on TCP connect plus opening handshake. */
  openTimeoutMs?: number;
  /** Bound on the peer's answer to our close frame (Autobahn: 1 s). */
  closeTimeoutMs?: number;
  /** Bound on the server closing TCP after the closing handshake (Autobahn: 1 s). */
  peerDropTimeoutMs?: number;
  /**
   * Largest message or frame accepted from the peer (default 64 MiB); a case
   * sending a larger message takes its echo whatever this says.
   */
  maxMessage?: number;
  userAgent?: string;
  /** Subprotocols offered in every handshake (a case's own Sec-WebSocket-Protocol wins). */
  protocols?: string[];
  /** The Origin header of every handshake (a case's own Origin wins). */
  origin?: string;
  /** Headers added to every handshake request (credentials, cookies); see clientRequest. */
  headers?: HeaderList;
  /**
   * The target is not expected to echo (--protocol-only): data messages it
   * sends are kept aside (`unsolicited`), not events, so they decide no verdict
   * (a server may greet a client, as Engine.IO does).
   */
  protocolOnly?: boolean;
  /**
   * Called once the connection is open, before the steps; the case waits for
   * the returned promise, and calls the function it yields when done.
   */
  admit?: () => Promise<() => void>;
  /**
   * What the CLI's probe learnt: whether the target echoes text and binary
   * messages (absent: not known). A case waiting for the echo of a type the
   * target does not echo closes after ECHO_SILENCE_UNECHOED_MS of silence,
   * not at its own close timer (see #watchEchoSilence).
   */
  echoes?: { text?: boolean; binary?: boolean };
  /** Aborting it ends the case at once: the run was interrupted. */
  signal?: AbortSignal;
}

/**
 * What one run of a case observed, and no verdict: verdict.ts judgeCase()
 * judges the Observation part, the report writers show the rest.
 */
export interface CaseRun extends Observation {
  spec: CaseSpec;
  /** ISO time the case started. */
  started: string;
  /** Milliseconds from connect to the end of the case. */
  duration: number;
  /** Data messages kept out of the events (SessionOptions.protocolOnly). */
  unsolicited: ObservedEvent[];
  http: { request?: string; response?: string };
  /** The server's Server header, when it sent one. */
  serverHeader?: string;
  wire: WireLog;
}

/** Every timer of a case measures the peer: see clock.ts. */
type Timer = PeerTimer;

/**
 * Frames handled per turn of the event loop: the rest of a read waits for the
 * next turn, so a flood of small frames does not hold up the other cases' timers.
 */
const DRAIN_FRAMES_PER_TURN = 1024;
/**
 * Control frames handled per second at most: past it, reading waits for the
 * second to end, and TCP slows down a peer flooding pings (a correct peer
 * sends a few; parsing a flood would cost the whole run its CPU).
 */
const CONTROL_FRAMES_PER_S = 1000;
/** Ping times kept in the timeline; later pings are only counted. */
export const PEER_PINGS_KEPT = 1000;
/** Pongs are sent at most this often; pings in between get one pong, for the latest (§5.5.2). */
const PONG_INTERVAL_MS = 50;
/**
 * Silence from the peer, after the suite's last write, that shows an echo is
 * not coming: for a message type the probe found the target does not echo,
 * and for any other (a slow server that echoes has started within this time).
 */
export const ECHO_SILENCE_UNECHOED_MS = 500;
export const ECHO_SILENCE_MS = 10_000;
/** How often a case waiting for an echo checks the peer's silence. */
const ECHO_SILENCE_POLL_MS = 100;

/**
 * A message of one frame this long or longer is masked and written in pieces
 * of this size, so the suite never holds a masked copy of a 64 MiB payload.
 */
const PIECE_BYTES = 1024 * 1024;

const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder();

/** Seconds a case may take at most, derived from its steps when it does not say. */
export function caseBound(spec: CaseSpec, options: SessionOptions): number {
  if (spec.timeout) return spec.timeout;
  // Steps that send go at once: the waits and the timers bound what follows.
  let waits = 0, timers = 0;
  for (const step of spec.steps) {
    const { pause, waitLimit, timer } = stepTraits(step);
    waits += (pause ?? 0) + (waitLimit ?? 0);
    if (timer !== undefined) timers = Math.max(timers, waits + timer);
  }
  const closing = ((options.closeTimeoutMs ?? 1000) + (options.peerDropTimeoutMs ?? 1000)) / 1000;
  return Math.max(waits, timers) + closing + 2;
}

export async function runCase(spec: CaseSpec, options: SessionOptions): Promise<CaseRun> {
  const session = new CaseSession(spec, options, "client");
  return await session.run();
}

/** A client's connection as the case server accepted it. */
export interface AcceptedConnection {
  conn: Deno.Conn;
  /** Every byte read so far: the request head and whatever followed it. */
  head: Uint8Array;
  /** The URL `{redirect}` stands for in the answer (ResponseChanges): one the case server serves. */
  redirect?: URL;
}

/** Why a case's client did not connect; `timedOut` when it did not within the time given. */
export interface MissingClient {
  missing: string;
  timedOut?: boolean;
}

export interface ClientCaseOptions extends SessionOptions {
  /** The client's connection once it came, or why it did not. */
  connection: Promise<AcceptedConnection | MissingClient>;
}

/**
 * Runs one case against a client: the suite is the server on the connection
 * the client made. It answers the client's request with a 101 (what is wrong
 * with the request is recorded, for the report: the cases judge what follows),
 * then performs the case's steps as runCase does.
 */
export async function runClientCase(spec: CaseSpec, options: ClientCaseOptions): Promise<CaseRun> {
  const session = new CaseSession(spec, options, "server");
  return await session.run();
}

class CaseSession {
  readonly spec: CaseSpec;
  readonly options:
    & Required<
      Omit<
        SessionOptions,
        | "caCerts"
        | "userAgent"
        | "protocols"
        | "origin"
        | "headers"
        | "admit"
        | "protocolOnly"
        | "echoes"
        | "signal"
      >
    >
    & SessionOptions;
  readonly log = new WireLog();
  readonly payloads = new PayloadCache();
  /** Resolved once the case may hold its payloads: a 16 MiB expectation is not built for a case that never connects. */
  expected: { ok: ObservedEvent[]; nonStrict?: ObservedEvent[] } = { ok: [] };
  readonly received: ObservedEvent[] = [];
  readonly unsolicited: ObservedEvent[] = [];
  readonly close: CloseObservation = {
    opened: false,
    closedBySuite: false,
    failedBySuite: false,
    droppedBySuite: false,
    wasClean: false,
    closeHandshakeTimeout: false,
    peerDropTimeout: false,
    openHandshakeTimeout: false,
  };
  readonly http: { request?: string; response?: string } = {};
  readonly handshake: HandshakeObservation = { versions: [], problems: [] };
  /** Rules the server broke in what it sent (checked in every case). */
  readonly violations: Violation[] = [];
  readonly timeline: Timeline = { peerPings: [] };
  serverHeader?: string;
  /** permessage-deflate's negotiation, when the case set it up (CaseSpec.deflate). */
  deflate?: DeflateObservation;
  /** The permessage-deflate extension in use, when the handshake agreed on one. */
  #deflate?: PerMessageDeflate;

  /** The protocol itself: parsing, the checks on the server's frames, reactions, encoding. */
  #endpoint: Endpoint;
  #transport?: Transport;
  #timers = new Set<Timer>();
  #closeTimer?: Timer;
  #done!: () => void;
  #doneSignal = new Promise<void>((resolve) => (this.#done = resolve));
  /** Alternatives (ok, nonStrict) the events so far are still a prefix of. */
  #alive: boolean[] = [];
  /** Key and position of a frame opened by a frameStart step. */
  #openFrame?: { key?: Uint8Array; offset: number };
  #roundTrips?: { remaining: number; frame: FrameFields };
  /** A messageRoundTrips step in progress, and the index of its next message. */
  #messageRoundTrips?: { series: MessageSeries & { fragmentSize?: number }; next: number };
  /** The closing handshake was started by a close step of the case. */
  #closedByStep = false;
  /** The suite has sent its close frame (first, or in reply). */
  #closeSent = false;
  /** When the opening handshake completed (performance.now()). */
  #openedAt = 0;
  /** Wakes a waitForEvents step when an event is recorded. */
  #onEvent?: () => void;
  /** Frames are left for later (#drainFrames); reading waits until it settles. */
  #drainLater?: Promise<void>;
  /** Control frames handled since `since` (performance.now()), for CONTROL_FRAMES_PER_S. */
  #controlFrames = { since: 0, count: 0 };
  /** When the peer last sent data-frame bytes (peerNow()); control frames do not count. */
  #lastDataHeard = 0;
  /** The data frame in progress as last seen, to tell whether more of it arrived. */
  #partialFrame?: { header: FrameHeader; received: number };
  /** When the suite last sent a pong (performance.now()). */
  #lastPongAt = -Infinity;
  /** A pong waits for PONG_INTERVAL_MS to pass. */
  #pongScheduled = false;
  /** What the case's close and fail timers do when they fire, in step order. */
  #caseTimers: (() => void)[] = [];

  /**
   * A plain field, not a constructor parameter property: transpiled, that made
   * every session stay reachable until the run ended (the abort listener below
   * must hold only a WeakRef), and a run of the 301 cases peaked at 370 MB, not 220.
   */
  readonly role: Role;

  constructor(spec: CaseSpec, options: SessionOptions, role: Role) {
    this.role = role;
    this.spec = spec;
    this.options = {
      openTimeoutMs: 5000,
      closeTimeoutMs: 1000,
      peerDropTimeoutMs: 1000,
      ...options,
      maxMessage: Math.max(options.maxMessage ?? 64 * 1024 * 1024, largestMessage(spec)),
    };
    // The suite answers pings itself, paced (#answerPing).
    this.#endpoint = new Endpoint({
      role,
      maxMessageSize: this.options.maxMessage,
      autoPong: false,
    });
    // A weak reference: the signal outlives the case, and must not hold its data.
    const session = new WeakRef(this);
    options.signal?.addEventListener("abort", () => {
      const live = session.deref();
      if (live) live.#interrupt();
    }, { once: true });
  }

  get #state(): State {
    return this.#endpoint.state;
  }

  async run(): Promise<CaseRun> {
    const started = new Date().toISOString();
    const t0 = performance.now();
    let release: (() => void) | undefined;
    try {
      if (await (this.role === "client" ? this.#open() : this.#accept())) {
        release = await this.options.admit?.();
        this.#resolveExpected();
        // The bound starts with the steps: waiting for admission is not the peer's time.
        this.#after(caseBound(this.spec, this.options) * 1000, () => {
          this.log.note("case deadline reached");
          this.#abort("the case reached its time bound");
        });
        this.#runSteps().catch((e) => this.#internalError(e));
        await this.#doneSignal;
      }
    } catch (e) {
      this.#internalError(e);
    } finally {
      release?.();
      for (const t of this.#timers) t.cancel();
      this.#transport?.close();
      this.#deflate?.close();
    }
    // For the report only: the events are never compared, so long payloads are built in part.
    if (!this.close.opened) this.#resolveExpected(REPORT_PAYLOAD_LIMIT);
    return {
      spec: this.spec,
      started,
      duration: Math.round(performance.now() - t0),
      received: this.received,
      unsolicited: this.unsolicited,
      expected: this.expected,
      close: this.close,
      handshake: this.handshake,
      violations: this.violations,
      timeline: this.timeline,
      peerDropTimeoutMs: this.#peerDropWaitMs,
      suiteRole: this.role,
      http: this.http,
      serverHeader: this.serverHeader,
      deflate: this.deflate,
      wire: this.log,
    };
  }

  /** Builds the expected events; `previewBytes` limits long payloads to their first bytes. */
  #resolveExpected(previewBytes = Infinity): void {
    const { ok, nonStrict } = this.spec.expect;
    // The largest payload of each pattern first: the smaller ones become views of it.
    if (previewBytes === Infinity) {
      this.payloads.warm([
        ...this.spec.steps.map((s) => s.kind === "message" ? s.message.payload : undefined),
        ...[...ok, ...nonStrict ?? []].map((e) => "message" in e ? e.message : undefined),
      ]);
    }
    this.expected = {
      ok: resolveEvents(ok, this.payloads, previewBytes),
      ...(nonStrict ? { nonStrict: resolveEvents(nonStrict, this.payloads, previewBytes) } : {}),
    };
    this.#alive = this.#alternatives().map(() => true);
  }

  // ---- opening handshake -------------------------------------------------

  async #open(): Promise<boolean> {
    const { url, openTimeoutMs } = this.options;
    const openDeadline = peerNow() + openTimeoutMs;
    let conn: Deno.Conn;
    try {
      conn = await connectRaw({ url, caCerts: this.options.caCerts, timeoutMs: openTimeoutMs });
    } catch (e) {
      this.log.note((e as Error).message);
      this.close.notCleanReason = (e as Error).message;
      this.#endpoint.connectionClosed();
      return false;
    }
    const transport = new Transport(conn, this.log);
    this.#transport = transport;
    const changes = this.spec.handshake?.request;
    const deflateOffers = this.spec.deflate?.offers.map((o) => deflateExtension(offerParams(o)));
    const base = clientRequest(url, generateKey(), {
      ...this.options,
      headers: deflateOffers
        ? [...this.options.headers ?? [], [
          "Sec-WebSocket-Extensions",
          formatExtensions(deflateOffers),
        ]]
        : this.options.headers,
    });
    const req = changes ? changeRequest(base, changes) : base;
    // The accept value and the subprotocol check follow what was actually sent.
    const key = headerValues(req.headers, "sec-websocket-key")[0] ?? "";
    const offered = headerTokens(req.headers, "sec-websocket-protocol");
    const offeredExtensions = headerValues(req.headers, "sec-websocket-extensions");
    const head0 = encodeRequest(req);
    this.http.request = latin1.decode(head0);
    const early = changes?.frames?.length
      ? this.#encodeFrames(
        changes.frames.map((f) => ({ fields: f, payload: this.payloads.resolve(f.payload) })),
      )
      : undefined;
    const request = early ? concat([head0, early]) : head0;

    let head: Uint8Array = new Uint8Array(0);
    /** Why TCP closed after a complete response head: processed once the head is judged. */
    let closedAfterHead: string | undefined;
    const outcome = new Promise<string | undefined>((resolve) => {
      const timer = this.#after(Math.max(0, openDeadline - peerNow()), () => {
        this.close.openHandshakeTimeout = true;
        resolve(`no complete handshake response within ${openTimeoutMs} ms`);
      });
      transport.onClosed = (reason) => resolve(`connection closed during the handshake: ${reason}`);
      transport.onData = (chunk) => {
        head = head.length ? concat([head, chunk]) : chunk;
        const parsed = parseHead(head);
        if (parsed.type === "incomplete") return;
        timer.cancel();
        if (parsed.type === "error") return resolve(`invalid handshake response: ${parsed.reason}`);
        this.http.response = latin1.decode(head.subarray(0, parsed.head.length));
        this.serverHeader = headerValues(parsed.head.headers, "server")[0];
        this.handshake.status = parseStatusLine(parsed.head.startLine)?.status;
        this.handshake.versions = headerValues(parsed.head.headers, "sec-websocket-version");
        // Bytes after the head are frames; keep them for the parser.
        this.#endpoint.receiveData(head.slice(parsed.head.length));
        // Frames, and even TCP's close, may follow at once: both wait until the check is
        // done, so the outcome does not depend on how the peer's bytes were segmented.
        transport.onData = (more) => this.#endpoint.receiveData(more);
        transport.onClosed = (reason) => closedAfterHead = reason;
        const checkExtensions = deflateOffers &&
          ((lines: string[]) => this.#checkDeflateResponse(offeredExtensions, lines));
        checkResponse(parsed.head, key, offered, offeredExtensions, checkExtensions).then(
          (problems) => {
            this.handshake.problems = problems;
            resolve(problems.length ? problems.join("; ") : undefined);
          },
        );
      };
    });
    transport.send(request);
    const failure = await outcome;
    if (failure) {
      if (this.handshake.problems.length === 0) this.handshake.problems = [failure];
      this.log.note(`opening handshake failed: ${failure}`);
      this.close.notCleanReason = failure;
      this.#endpoint.connectionClosed();
      return false;
    }
    this.#opened(transport, closedAfterHead);
    return true;
  }

  /** The server role's opening handshake: the client's request, answered with a 101. */
  async #accept(): Promise<boolean> {
    const accepted = await (this.options as ClientCaseOptions).connection;
    if ("missing" in accepted) {
      this.log.note(accepted.missing);
      this.close.notCleanReason = accepted.missing;
      this.close.openHandshakeTimeout = accepted.timedOut ?? false;
      this.#endpoint.connectionClosed();
      return false;
    }
    const transport = new Transport(accepted.conn, this.log);
    this.#transport = transport;
    let closedAfterHead: string | undefined;
    transport.onClosed = (reason) => closedAfterHead = reason;
    const parsed = parseHead(accepted.head);
    if (parsed.type !== "head") {
      const why = parsed.type === "error" ? parsed.reason : "the request head is incomplete";
      this.log.note(`opening handshake failed: ${why}`);
      this.handshake.problems = [why];
      this.close.notCleanReason = why;
      this.#endpoint.connectionClosed();
      return false;
    }
    this.http.request = latin1.decode(accepted.head.subarray(0, parsed.head.length));
    const { offer, problems } = checkClientRequest(parsed.head);
    // Recorded for the report; the cases about the request (clientHandshake) judge them.
    this.handshake.problems = problems.map((p) => `${p.section}: ${p.text}`);
    this.handshake.request = {
      problems: [...problems, ...requestNotes(offer)],
      keys: offer.key === undefined ? [] : [offer.key],
      protocols: offer.protocols,
    };
    const answer = this.spec.clientHandshake;
    const extensionAnswer = this.#answerDeflateOffers(
      headerValues(parsed.head.headers, "sec-websocket-extensions"),
      offer.extensions,
    );
    // A case that needs permessage-deflate and declined does not run: nor is its own answer sent.
    const notRun = this.spec.deflate?.ifDeclined === "unimplemented" && !extensionAnswer;
    const response = await serverResponse({
      key: offer.key ?? "",
      changes: extensionAnswer
        ? {
          ...answer?.response,
          headers: { "Sec-WebSocket-Extensions": extensionAnswer, ...answer?.response?.headers },
        }
        : notRun
        ? undefined
        : answer?.response,
      redirect: accepted.redirect?.href,
    });
    this.http.response = latin1.decode(response);
    // Frames the client sent after its request wait for the 101 to be sent.
    this.#endpoint.receiveData(accepted.head.slice(parsed.head.length));
    transport.onData = (chunk) => this.#endpoint.receiveData(chunk);
    const frames = answer?.frames?.length
      ? this.#encodeFrames(
        answer.frames.map((f) => ({ fields: f, payload: this.payloads.resolve(f.payload) })),
      )
      : undefined;
    const bytes = frames ? concat([response, frames]) : response;
    if (answer?.pause && answer.chop) {
      for (let at = 0; at < bytes.length; at += answer.chop) {
        if (at > 0) await this.#sleep(answer.pause * 1000);
        transport.send(bytes.subarray(at, at + answer.chop), { sync: true });
      }
    } else {
      transport.send(bytes, { chop: answer?.chop });
    }
    this.#opened(transport, closedAfterHead);
    return true;
  }

  /**
   * The suite as the client: the server's Sec-WebSocket-Extensions against the
   * suite's permessage-deflate offers (RFC 7692 §7, §7.1). Accepted, the
   * endpoint compresses from the first frame on; the problems fail the handshake.
   */
  #checkDeflateResponse(offeredLines: string[], responseLines: string[]): string[] {
    const offers = parseExtensions(offeredLines);
    const response = parseExtensions(responseLines);
    this.deflate = {
      offered: offeredLines.join(", "),
      response: responseLines.join(", ") || undefined,
    };
    if (responseLines.length === 0) return [];
    if (response.type === "error") return [response.reason];
    if (offers.type === "error") return [`the suite's own offer: ${offers.reason}`];
    const unoffered = response.items.filter((e) => !offers.items.some((o) => o.name === e.name));
    if (unoffered.length > 0) {
      return [`extension accepted though not offered: ${formatExtensions(unoffered)}`];
    }
    const check = checkDeflateResponse(offers.items, response.items);
    if (check.type === "error") return [`${check.rule}: ${check.reason}`];
    if (check.type === "declined") return [];
    // The suite keeps a promise its offer made: a client offering client_no_context_takeover
    // does not take over context, whatever the answer (RFC 7692 §7.1.1.2).
    const hint = this.spec.deflate!.offers[check.offerIndex]?.clientNoContextTakeover ?? false;
    this.deflate.agreed = check.agreed;
    this.#useDeflate({
      ...check.agreed,
      clientNoContextTakeover: check.agreed.clientNoContextTakeover || hint,
    });
    return [];
  }

  /**
   * The suite as the server: its answer to the client's permessage-deflate
   * offers, as the case's acceptances choose it (Autobahn's accept functions);
   * undefined when the case sets none up or declines.
   */
  #answerDeflateOffers(
    offeredLines: string[],
    offers: ExtensionOffer[],
  ): string | undefined {
    const spec = this.spec.deflate;
    if (!spec) return undefined;
    this.deflate = { offered: offeredLines.join(", ") };
    const answer = acceptDeflateOffers(offers, spec.accept);
    if (answer.type === "decline") {
      for (const { rule, reason } of answer.problems) this.log.note(`declined: ${rule}: ${reason}`);
      return undefined;
    }
    this.deflate.response = formatExtensions([answer.response]);
    this.deflate.agreed = answer.agreed;
    this.#useDeflate(answer.agreed);
    return this.deflate.response;
  }

  #useDeflate(agreed: AgreedDeflate): void {
    this.#deflate = new PerMessageDeflate(agreed, this.role, this.options.maxMessage);
    this.#endpoint.useExtensions([this.#deflate]);
    this.log.note(`permessage-deflate in use: ${JSON.stringify(agreed)}`);
  }

  /** The connection is open: frames flow, and what the peer sent meanwhile is handled. */
  #opened(transport: Transport, closedAfterHead: string | undefined): void {
    this.close.opened = true;
    this.#openedAt = performance.now();
    this.#endpoint.open();
    this.log.note("connection open");
    transport.onData = (chunk) => {
      this.#endpoint.receiveData(chunk);
      return this.#drainFrames();
    };
    transport.onClosed = (reason) => this.#connectionLost(reason);
    const draining = this.#drainFrames();
    const lost = closedAfterHead;
    if (lost !== undefined) {
      // TCP's close comes after every frame the peer sent before it, however many.
      const afterFrames = async () => {
        for (let pending = draining; pending; pending = this.#drainLater) await pending;
        this.#connectionLost(lost);
      };
      if (draining) afterFrames();
      else this.#connectionLost(lost);
    }
  }

  // ---- steps ---------------------------------------------------------------

  async #runSteps(): Promise<void> {
    if (this.spec.deflate?.ifDeclined === "unimplemented" && !this.#deflate) {
      // Autobahn's rule for its groups 12 and 13: nothing to test, the case is UNIMPLEMENTED.
      this.log.note("permessage-deflate was not agreed: the steps are not run");
      return this.#sendClose(1000, undefined, false);
    }
    for (const step of this.spec.steps) {
      // Steps go on after the case's own close step (cases send after it on purpose),
      // never after the connection was failed or closed by the peer.
      if (this.#state === "closed" || (this.#state === "closing" && !this.#closedByStep)) return;
      switch (step.kind) {
        case "wait":
          this.log.note(`wait ${step.wait} s${step.tag ? ` (${step.tag})` : ""}`);
          await this.#sleep(step.wait * 1000);
          if (this.#state !== "open") return;
          if (step.tag) {
            this.log.note(`wait ${step.tag} over, connection still open`);
            this.#record({ type: "timeout", tag: step.tag });
          }
          break;
        case "waitForEvents": {
          const { events, within } = step.waitForEvents;
          this.log.note(`wait up to ${within} s for ${events} events in all`);
          await this.#waitForEvents(events, within * 1000);
          if (this.#state !== "open") return;
          if (this.received.length < events) {
            this.log.note(`${events} events not observed within ${within} s: closing`);
            return this.#sendClose(1000, undefined, false);
          }
          break;
        }
        default:
          this.#perform(step);
      }
    }
    this.#watchEchoSilence();
  }

  /** Performs a step that does not pause the steps. */
  #perform(step: Exclude<Step, { kind: "wait" | "waitForEvents" }>): void {
    switch (step.kind) {
      case "frame":
        this.#sendFrame(step.frame, step);
        break;
      case "message": {
        const { binary, payload, fragmentSize, uncompressed } = step.message;
        const bytes = this.payloads.resolve(payload);
        const count = fragmentCount(bytes.length, fragmentSize);
        const opcode = binary ? Opcode.Binary : Opcode.Text;
        if (
          count === 1 && bytes.length >= PIECE_BYTES && !step.chop && !step.sync && !this.#deflate
        ) {
          // Masked piece by piece as it is written: the payload is not held twice.
          const frame = { opcode, payload: bytes, maskKey: this.#maskKey() };
          this.#logFrames(encodeHeader({ ...frame, length: BigInt(bytes.length) }), 1, () => bytes);
          this.#transport!.sendPieces(encodeFramePieces(frame, PIECE_BYTES));
          break;
        }
        this.#sendMessage(bytes, { binary, fragmentSize, encode: !uncompressed }, step);
        break;
      }
      case "close": {
        const reason = step.close.reason === undefined
          ? undefined
          : this.payloads.resolve(step.close.reason);
        this.#closedByStep = this.#state === "open";
        this.#sendClose(step.close.code, reason, false, step);
        break;
      }
      case "frameStart": {
        const key = this.#maskKey();
        const { opcode, fin, rsv, length } = step.frameStart;
        const header = encodeHeader({ opcode, fin, rsv, length: BigInt(length), maskKey: key });
        this.#openFrame = { key, offset: 0 };
        this.#transport!.send(header);
        break;
      }
      case "frameData": {
        const frame = this.#openFrame!;
        const data = this.payloads.resolve(step.frameData).slice();
        if (frame.key) maskInPlace(data, frame.key, frame.offset);
        frame.offset += data.length;
        this.#transport!.send(data);
        break;
      }
      case "raw":
        this.#transport!.send(this.payloads.resolve(step.raw), step);
        break;
      case "closeAfter":
        this.#after(
          step.closeAfter * 1000,
          this.#caseTimer(() => {
            if (this.#state === "closed") return;
            this.log.note(`close timer (${step.closeAfter} s) fired`);
            this.#sendClose(undefined, undefined, false);
          }),
        );
        break;
      case "failAfter":
        this.#after(
          step.failAfter * 1000,
          this.#caseTimer(() => {
            // Once closing, the closing handshake's own bounds (1 s for the close reply,
            // 1 s for the server to close TCP) decide: a load-dependent race with the
            // case's timer must not decide who closed TCP.
            if (this.#state !== "open") return;
            this.log.note(`fail timer (${step.failAfter} s) fired`);
            this.#fail(FAIL_TIMER_CODE, "going away", false);
          }),
        );
        break;
      case "roundTrips":
        this.#roundTrips = { remaining: step.roundTrips.count - 1, frame: step.roundTrips.frame };
        this.#sendFrame(step.roundTrips.frame, {});
        break;
      case "messageRoundTrips":
        this.#messageRoundTrips = { series: step.messageRoundTrips, next: 0 };
        this.#sendNextInSeries();
        break;
      default:
        unhandled(step);
    }
  }

  /** Sends a message through the endpoint: framed (and fragmented) as the endpoint frames messages. */
  #sendMessage(
    bytes: Uint8Array,
    { binary, ...options }: { binary?: boolean } & MessageOptions,
    delivery: Delivery = {},
  ): void {
    if (binary) this.#endpoint.sendBinary(bytes, options);
    else this.#endpoint.sendText(bytes, options);
    // A compressed message's frames do not carry the bytes given: logged as sent.
    if (this.#deflate) return this.#sendQueued(delivery);
    const encoded = this.#endpoint.dataToSend();
    const count = fragmentCount(bytes.length, options.fragmentSize);
    this.#logFrames(encoded, count, (pos, len) => bytes.subarray(pos, pos + len));
    this.#transport!.send(encoded, delivery);
  }

  /** Sends the next message of the messageRoundTrips step, if any is left. */
  #sendNextInSeries(): void {
    const progress = this.#messageRoundTrips!;
    const { series } = progress;
    if (progress.next >= series.count) return;
    const bytes = this.payloads.resolve(seriesPayload(series, progress.next++));
    this.#sendMessage(bytes, series);
  }

  /**
   * Sends frames as a client, in one write: each masked with a fresh key unless
   * its fields say otherwise. The log shows each header as encoded.
   */
  #send(
    frames: { fields: Omit<FrameFields, "payload">; payload: Uint8Array }[],
    delivery: Delivery = {},
  ): void {
    // The endpoint's own frames (a close reply, a pong) leave first: they were queued first.
    this.#sendQueued();
    this.#transport!.send(this.#encodeFrames(frames), delivery);
  }

  /** Encodes frames as the client's endpoint does (logged as sent). */
  #encodeFrames(
    frames: { fields: Omit<FrameFields, "payload">; payload: Uint8Array }[],
  ): Uint8Array {
    for (const { fields, payload } of frames) {
      const mask = fields.mask === "none" || fields.mask === undefined
        ? fields.mask
        : Uint8Array.fromHex(fields.mask);
      this.#endpoint.sendFrame({ ...fields, payload, mask });
    }
    const bytes = this.#endpoint.dataToSend();
    let i = 0;
    this.#logFrames(bytes, frames.length, () => frames[i++].payload);
    return bytes;
  }

  /**
   * Sends the frames the endpoint queued by itself (a close reply, a failure's
   * close frame, a pong), logged as the peer will decode them.
   */
  #sendQueued(delivery: Delivery = {}): void {
    const bytes = this.#endpoint.dataToSend();
    if (bytes.length === 0) return;
    for (let pos = 0; pos < bytes.length;) {
      const header = decodeHeader(bytes.subarray(pos))!;
      const start = pos + header.headerLength;
      pos = start + Number(header.length);
      const payload = bytes.slice(start, pos);
      if (header.maskKey) maskInPlace(payload, header.maskKey);
      this.log.frame("tx", header, payload);
    }
    this.#transport!.send(bytes, delivery);
  }

  /** The key of a frame the suite writes itself: a client masks (§5.3), a server does not (§5.1). */
  #maskKey(): Uint8Array | undefined {
    return this.role === "client" ? randomBytes(4) : undefined;
  }

  /**
   * Logs the `count` frames in `bytes` as the peer will decode them. `payloadAt`
   * gives a frame's unmasked payload from its offset in the data and its length.
   */
  #logFrames(
    bytes: Uint8Array,
    count: number,
    payloadAt: (offset: number, length: number) => Uint8Array,
  ): void {
    for (let pos = 0, offset = 0, i = 0; i < count; i++) {
      const header = decodeHeader(bytes.subarray(pos))!;
      const length = Number(header.length);
      const payload = payloadAt(offset, length);
      // Only the frames the log keeps are built: its head, and the last ones of a long batch.
      if (this.log.keeps(count - i)) this.log.frame("tx", header, payload);
      else this.log.elide("tx frame", 1);
      pos += header.headerLength + length;
      offset += length;
    }
  }

  #sendFrame(fields: FrameFields, delivery: Delivery): void {
    this.#send([{ fields, payload: this.payloads.resolve(fields.payload) }], delivery);
  }

  // ---- incoming frames -----------------------------------------------------

  /**
   * Handles the frames read so far. Returns a promise when it leaves some for
   * later (the next read waits for it): after DRAIN_FRAMES_PER_TURN frames, and
   * for the rest of the second after CONTROL_FRAMES_PER_S control frames.
   */
  #drainFrames(): Promise<void> | undefined {
    if (this.#drainLater) return this.#drainLater;
    for (let decoded = 0; this.#state !== "closed"; decoded++) {
      if (decoded === DRAIN_FRAMES_PER_TURN) return this.#drainIn(0);
      if (this.#controlFrames.count >= CONTROL_FRAMES_PER_S) {
        const now = performance.now();
        const wait = this.#controlFrames.since + 1000 - now;
        if (wait > 0) return this.#drainIn(wait);
        this.#controlFrames = { since: now, count: 0 };
      }
      const events = this.#endpoint.nextEvents();
      if (events.length === 0) {
        this.#notePartialFrame();
        break;
      }
      for (const event of events) this.#onEndpointEvent(event);
      // What the endpoint answered by itself: a close reply, a failure's close frame.
      this.#sendQueued();
    }
    this.#answerPing();
    return undefined;
  }

  /** Handles the frames left in `ms`; reading waits until then (or until the case ends). */
  #drainIn(ms: number): Promise<void> {
    this.#answerPing();
    this.#drainLater = new Promise<void>((resolve) => {
      const resume = () => {
        this.#drainLater = undefined;
        resolve();
      };
      this.#after(ms, () => {
        resume();
        this.#drainFrames();
      });
      this.#doneSignal.then(resume);
    });
    return this.#drainLater;
  }

  /** More bytes of a data frame still in progress show the peer is sending. */
  #notePartialFrame(): void {
    const partial = this.#endpoint.partialDataFrame;
    if (!partial) return;
    const { header, received } = partial;
    if (header === this.#partialFrame?.header && received === this.#partialFrame.received) return;
    this.#partialFrame = partial;
    this.#lastDataHeard = peerNow();
  }

  /**
   * Sends the pong owed for the latest ping, at most every PONG_INTERVAL_MS: a
   * peer flooding pings gets one pong per interval, for its latest (§5.5.2).
   */
  #answerPing(): void {
    if (!this.#endpoint.pongOwed || this.#pongScheduled) return;
    const wait = this.#lastPongAt + PONG_INTERVAL_MS - performance.now();
    if (wait > 0) {
      this.#pongScheduled = true;
      this.#after(wait, () => {
        this.#pongScheduled = false;
        this.#answerPing();
      });
      return;
    }
    if (this.#state !== "open") return;
    this.#lastPongAt = performance.now();
    this.#endpoint.sendOwedPong();
    this.#sendQueued();
  }

  /** What the endpoint made of the server's bytes (its checks and reactions are RFC 6455's). */
  #onEndpointEvent(event: EndpointEvent): void {
    switch (event.type) {
      case "frame": {
        const { header, payload } = event;
        if (isControlOpcode(header.opcode)) this.#controlFrames.count++;
        else this.#lastDataHeard = peerNow();
        this.log.frame("rx", header, payload);
        // The pong owed goes out before the suite reacts to any other frame.
        if (header.opcode !== Opcode.Ping) this.#answerPing();
        return;
      }
      case "observation":
        return this.#violate(event.observation);
      case "error":
        return this.#onProtocolError(event.error);
      case "ping":
        if (this.timeline.peerPings.length < PEER_PINGS_KEPT) {
          this.timeline.peerPings.push(this.#sinceOpen());
        } else {
          this.timeline.peerPingsNotKept = (this.timeline.peerPingsNotKept ?? 0) + 1;
        }
        // Answered once this read is processed (#answerPing).
        return;
      case "pong":
        return this.#record({ type: "pong", payload: event.payload });
      case "message": {
        const message: ObservedEvent = {
          type: "message",
          binary: event.binary,
          payload: event.payload,
        };
        if (!this.options.protocolOnly) return this.#record(message);
        this.log.note(
          "a message the suite did not ask for: reported, not judged (--protocol-only)",
        );
        this.unsolicited.push(message);
        return;
      }
      case "close":
        return this.#onCloseFrame(event);
      default:
        unhandled(event);
    }
  }

  /** Rules the server broke in what it sent (checked in every case), each reported once. */
  #violate(observation: PeerObservation): void {
    this.violations.push(observation);
    const { level, rfc, detail } = observation;
    this.log.note(`${level === "may" ? "noted" : "rule broken"} (§${rfc}): ${detail}`);
  }

  /** The endpoint failed the connection (§7.1.7), with a close frame when it could. */
  #onProtocolError(error: ProtocolError): void {
    const { closeCode, detail } = error;
    this.log.note(`failing the connection (${closeCode}): ${detail}`);
    this.close.failedBySuite = true;
    if (!error.closeSent) return this.#failedWhileClosing(detail);
    this.#onCloseSent(closeCode, new TextEncoder().encode(detail), false);
    // Past a frame over the limit nothing can be read, not even a close reply.
    if (this.#endpoint.shouldCloseTcp) {
      this.#after(this.options.closeTimeoutMs, () => this.#drop());
    }
  }

  #onCloseFrame(event: Extract<EndpointEvent, { type: "close" }>): void {
    this.close.remoteCloseFrame = true;
    // Recorded before it is judged, so an invalid code the peer sent shows as WRONG CODE.
    this.close.remoteCloseCode = event.code;
    // An invalid close frame: the endpoint's error comes next and fails the connection.
    if (!event.valid) return;
    this.close.remoteCloseReason = event.reason;
    this.timeline.peerCloseFrame ??= this.#sinceOpen();
    this.close.wasClean = true;
    if (this.#closeSent) {
      this.#closeTimer?.cancel();
    } else {
      // The endpoint answered it (§5.5.1).
      this.#onCloseSent(1000, undefined, true);
    }
    this.#awaitPeerDrop();
  }

  /**
   * After the closing handshake the server closes TCP (§7.1.1): the suite as
   * the server does once its close frame is out, unless the case holds TCP
   * open for the client to close (tcpHold); as the client, it gives the
   * server a bounded time.
   */
  #awaitPeerDrop(): void {
    this.timeline.closeHandshakeDone = this.#sinceOpen();
    const holding = this.spec.expect.close.tcpHold !== undefined;
    if (this.#endpoint.shouldCloseTcp && !holding) {
      this.#after(this.options.closeTimeoutMs, () => this.#drop());
      this.#transport!.drained().then(() => this.#drop());
      return;
    }
    this.#after(this.#peerDropWaitMs, () => {
      if (this.#state === "closed") return;
      if (this.role === "server") {
        // A client may keep TCP open for the server to close: that is no unclean close.
        this.log.note(`the client left TCP open for ${this.#peerDropWaitMs} ms`);
      } else {
        this.close.wasClean = false;
        this.close.peerDropTimeout = true;
        this.close.notCleanReason =
          "the server did not close the TCP connection in time after the closing handshake";
      }
      this.#drop();
    });
  }

  /** How long the suite leaves TCP open for the peer after the closing handshake. */
  get #peerDropWaitMs(): number {
    const hold = this.spec.expect.close.tcpHold;
    return hold ? hold.seconds * 1000 : this.options.peerDropTimeoutMs;
  }

  // ---- an echo that is not coming ----------------------------------------

  /** Keeps what a close or fail timer of the case does, for #watchEchoSilence. */
  #caseTimer(fire: () => void): () => void {
    this.#caseTimers.push(fire);
    return fire;
  }

  /**
   * Once the steps are done, brings the case's first timer forward when the
   * echo it waits for is not coming (see #onEchoGivenUp). The timer does what
   * it would have done later, so the verdict is the one it would have given.
   */
  #watchEchoSilence(): void {
    const fireTimer = this.#caseTimers[0];
    if (fireTimer) this.#onEchoGivenUp(() => fireTimer());
  }

  /**
   * Calls `then` once the echo the case waits for is not coming: the suite has
   * written everything, a message is the next event expected, and the peer has
   * sent no data-frame byte for ECHO_SILENCE_MS (ECHO_SILENCE_UNECHOED_MS for a
   * type the probe found the target does not echo). Pings do not count: a
   * server may keep a connection alive without echoing. Silence is peer time
   * (clock.ts). Returns a function that stops the watch.
   */
  #onEchoGivenUp(then: () => void): () => void {
    let quietSince = peerNow();
    let stopped = false;
    const check = () => {
      if (stopped || this.#state !== "open") return;
      const now = peerNow();
      const limit = this.#echoSilenceLimit();
      // A peer known not to echo may not read either: the suite's write would never end.
      const mayEcho = limit !== ECHO_SILENCE_UNECHOED_MS;
      if (limit === undefined || (this.#transport!.writing && mayEcho)) quietSince = now;
      if (limit === undefined || now - Math.max(quietSince, this.#lastDataHeard) < limit) {
        this.#after(ECHO_SILENCE_POLL_MS, check);
        return;
      }
      this.log.note(
        `no data from the peer for ${limit / 1000} s after the suite's last write, while a ` +
          "message is expected: the echo is not coming",
      );
      then();
    };
    this.#after(ECHO_SILENCE_POLL_MS, check);
    return () => (stopped = true);
  }

  /** The silence that shows the next expected message is not coming; undefined when none is next. */
  #echoSilenceLimit(): number | undefined {
    const n = this.received.length;
    let limit: number | undefined;
    this.#alternatives().forEach((alt, i) => {
      const next = alt[n];
      if (!this.#alive[i] || next?.type !== "message") return;
      const echoed = this.options.echoes?.[next.binary ? "binary" : "text"];
      limit = Math.max(limit ?? 0, echoed === false ? ECHO_SILENCE_UNECHOED_MS : ECHO_SILENCE_MS);
    });
    return limit;
  }

  /** The run was interrupted: the case ends at once. */
  #interrupt(): void {
    this.log.note("the run was interrupted");
    this.#abort("the run was interrupted");
  }

  // ---- events and progress -------------------------------------------------

  #alternatives(): ObservedEvent[][] {
    return this.expected.nonStrict
      ? [this.expected.ok, this.expected.nonStrict]
      : [this.expected.ok];
  }

  #record(event: ObservedEvent): void {
    this.received.push(event);
    const n = this.received.length;
    const alternatives = this.#alternatives();
    alternatives.forEach((alt, i) => {
      if (!this.#alive[i]) return;
      this.#alive[i] = n <= alt.length && eventsEqual(event, alt[n - 1]);
      // An echo equal to what was expected need not be kept twice: hold the expected copy.
      if (this.#alive[i]) this.received[n - 1] = alt[n - 1];
    });
    this.#onEvent?.();
    if (event.type === "timeout") return;
    // No data after the suite's own close frame (§5.5.1): the round trips end when it closes.
    if (
      event.type === "message" && this.#roundTrips && this.#state === "open" &&
      this.#alive.some((a) => a)
    ) {
      if (this.#roundTrips.remaining > 0) {
        this.#roundTrips.remaining--;
        this.#sendFrame(this.#roundTrips.frame, {});
      }
    }
    if (
      event.type === "message" && this.#messageRoundTrips && this.#state === "open" &&
      this.#alive.some((a) => a)
    ) this.#sendNextInSeries();
    const { expect } = this.spec;
    if (expect.close.by !== "suite" || expect.autoClose === false || this.#state !== "open") return;
    // #alive already holds the prefix comparison: a full match is a live prefix of full length.
    if (alternatives.every((alt, i) => this.#alive[i] && n === alt.length)) {
      this.#sendClose(expect.close.codes[0], undefined, false);
    } else if (!this.#alive.some((a) => a)) {
      // The verdict is settled; waiting for the case's timers would only cost time.
      this.log.note("the events can no longer match the expectation: closing");
      this.#sendClose(expect.close.codes[0], undefined, false);
    }
  }

  // ---- closing -------------------------------------------------------------

  #sendClose(
    code: number | undefined,
    reason: Uint8Array | undefined,
    isReply: boolean,
    delivery: Delivery = {},
  ): void {
    if (this.#state !== "open") return;
    this.#endpoint.sendClose(code, reason);
    this.#sendQueued(delivery);
    this.#onCloseSent(code, reason, isReply);
  }

  /** A close frame left, the suite's own or the endpoint's reply or failure. */
  #onCloseSent(code: number | undefined, reason: Uint8Array | undefined, isReply: boolean): void {
    this.#closeSent = true;
    this.close.closedBySuite = !isReply;
    this.close.localCloseCode = code;
    if (reason) this.close.localCloseReason = closeReasonText(reason);
    if (isReply) return;
    this.#closeTimer = this.#after(this.options.closeTimeoutMs, () => {
      if (this.#state === "closed") return;
      this.close.wasClean = false;
      this.close.closeHandshakeTimeout = true;
      this.close.notCleanReason = "the peer did not answer the close frame in time";
      this.#drop();
    });
  }

  /** Fails the connection (§7.1.7): a close frame when open, else drop TCP. */
  #fail(code: number, reason: string, drop = false): void {
    if (this.#state === "closed") return;
    this.log.note(`failing the connection (${code}): ${reason}`);
    if (code !== FAIL_TIMER_CODE) this.close.failedBySuite = true;
    if (this.#state === "open") {
      this.#sendClose(code, new TextEncoder().encode(reason), false);
      if (drop) this.#after(this.options.closeTimeoutMs, () => this.#drop());
    } else {
      this.#failedWhileClosing(reason);
    }
  }

  /** Failing while closing ends the handshake early: the close is not clean. */
  #failedWhileClosing(reason: string): void {
    this.close.wasClean = false;
    this.close.notCleanReason ??= `the suite failed the connection while closing: ${reason}`;
    this.#drop();
  }

  #drop(): void {
    if (this.#state === "closed") return;
    this.log.note("the suite closes the TCP connection");
    this.close.droppedBySuite = true;
    this.#finish();
  }

  #abort(reason: string): void {
    if (this.#state === "closed") return;
    if (!this.close.notCleanReason) this.close.notCleanReason = reason;
    // The suite ended the connection: the peer did not, whatever the case expected of it.
    this.close.closedBySuite = true;
    this.close.wasClean = false;
    this.#drop();
  }

  /** A bug in the suite must cost one case, never the run: record it and end the case. */
  #internalError(e: unknown): void {
    this.log.note(`internal error: ${(e as Error)?.stack ?? e}`);
    this.#abort(`the suite hit an internal error: ${(e as Error)?.message ?? e}`);
    this.#endpoint.connectionClosed();
  }

  #connectionLost(reason: string): void {
    if (this.#state === "closed") return;
    this.timeline.peerClosedTcp = this.#sinceOpen();
    this.log.note(reason);
    if (!this.close.wasClean && !this.close.notCleanReason) {
      this.close.notCleanReason = "the peer closed the TCP connection without a closing handshake";
    }
    this.#finish();
  }

  #finish(): void {
    this.#endpoint.connectionClosed();
    this.#transport?.close();
    this.#done();
  }

  // ---- timers --------------------------------------------------------------

  #after(ms: number, fn: () => void): Timer {
    const timer = peerTimeout(ms, () => {
      this.#timers.delete(timer);
      fn();
    });
    this.#timers.add(timer);
    return timer;
  }

  #sinceOpen(): number {
    return performance.now() - this.#openedAt;
  }

  /** Resolves once `count` events have been recorded, `ms` passed, or the case ended. */
  #waitForEvents(count: number, ms: number): Promise<void> {
    if (this.received.length >= count) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#onEvent = undefined;
        timer.cancel();
        stopWatch();
        resolve();
      };
      const timer = this.#after(ms, done);
      // An echo that is not coming ends the wait as its bound would, only sooner.
      const stopWatch = this.#onEchoGivenUp(done);
      this.#onEvent = () => {
        if (this.received.length >= count) done();
      };
      this.#doneSignal.then(done);
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.#after(ms, resolve);
      this.#doneSignal.then(() => {
        timer.cancel();
        resolve();
      });
    });
  }
}

/** The suite's close reason as the report shows it: text, or hex when a case sends invalid UTF-8. */
function closeReasonText(reason: Uint8Array): string {
  const validator = new Utf8Validator();
  return validator.push(reason) && validator.complete
    ? utf8.decode(reason)
    : `0x${reason.toHex()} (not valid UTF-8)`;
}

/** The largest message a case sends: its echo must fit the suite's receive limit. */
function largestMessage(spec: CaseSpec): number {
  let largest = 0;
  for (const step of spec.steps) {
    switch (step.kind) {
      case "message":
        largest = Math.max(largest, payloadLength(step.message.payload));
        break;
      case "messageRoundTrips":
        largest = Math.max(largest, step.messageRoundTrips.size);
        break;
      case "frame":
      case "close":
      case "frameStart":
      case "frameData":
      case "raw":
      case "roundTrips":
        break; // No case sends a single frame past the default limit.
      case "wait":
      case "waitForEvents":
      case "closeAfter":
      case "failAfter":
        break;
      default:
        unhandled(step);
    }
  }
  return largest;
}
