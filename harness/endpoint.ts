/**
 * One end of a WebSocket connection, without I/O (RFC 6455 §5-§8): bytes in,
 * events out; actions in, bytes out. No sockets, no timers, no Deno APIs: the
 * caller reads and writes, keeps time, and decides when to close TCP.
 *
 * `role` is what this end is. It decides which way frames are masked (§5.1,
 * §5.3), which frames from the peer are illegal, and who closes TCP first
 * (§7.1.1). The endpoint never refuses an action: the suite breaks rules on
 * purpose (sendFrame writes any frame), so actions are checked by the peer.
 */
import type { Level } from "./case.ts";
import {
  closePayload,
  concat,
  encodeFrames,
  encodeMessage,
  fragmentCount,
  type FrameHeader,
  FrameParser,
  type FrameToEncode,
  isControlOpcode,
  isKnownOpcode,
  isValidCloseCode,
  minimalLengthForm,
  Opcode,
} from "./frame.ts";
import { isValidUtf8, Utf8Validator } from "./utf8.ts";

export type Role = "client" | "server";

/** §4.1, §7.1.4: CONNECTING until the opening handshake succeeds, CLOSED once TCP is. */
export type State = "connecting" | "open" | "closing" | "closed";

/** A rule broken by a frame or a message, as an extension finds it. */
export interface ExtensionProblem {
  code: ProtocolErrorCode;
  detail: string;
}

/**
 * A negotiated extension (§9), between frame parsing and message assembly:
 * it marks a message it transforms with its RSV bits on the message's first
 * frame (as permessage-deflate, RFC 7692 §6, does; deflate.ts). With none,
 * any RSV bit is an error (§5.2).
 */
export interface Extension {
  /** The RSV bits it gives a meaning to, as FrameHeader.rsv (RSV1 is 4). */
  readonly rsv: number;
  /** The rule a frame's RSV bits break (RFC 7692 §6.1: none on control or continuation frames). */
  rsvProblem(header: FrameHeader): ExtensionProblem | undefined;
  /** A received message it marked (its frames' payloads joined), as the application sees it. */
  decodeMessage(
    payload: Uint8Array,
  ): { ok: true; payload: Uint8Array } | ({ ok: false } & ExtensionProblem);
  /** An outgoing message's payload as sent, with its first frame's RSV bits. */
  encodeMessage(payload: Uint8Array): { rsv: number; payload: Uint8Array };
}

/** A rule the peer broke in what it sent; the endpoint reports it, a case judges it. */
export interface PeerObservation {
  rule: string;
  /** RFC 6455 section, or another RFC's ("RFC 7692 §6.1"): see case.ts rfcReference. */
  rfc: string;
  level: Level;
  detail: string;
}

/** Why the endpoint fails the connection (§7.1.7), one stable code per rule. */
export type ProtocolErrorCode =
  | "masked-frame-from-server"
  | "unmasked-frame-from-client"
  | "rsv-without-extension"
  | "reserved-opcode"
  | "control-too-long"
  | "control-fragmented"
  | "continuation-without-start"
  | "new-message-inside-fragmented"
  | "invalid-utf8"
  | "invalid-close-code"
  | "invalid-close-reason"
  | "close-payload-1-byte"
  | "message-too-big"
  // permessage-deflate (RFC 7692), found by the extension:
  | "compressed-control-frame"
  | "compressed-continuation-frame"
  | "inflate-failed"
  | "window-exceeded";

export interface ProtocolError {
  code: ProtocolErrorCode;
  /** The status code the RFC suggests for the close frame (§7.4.1). */
  closeCode: 1002 | 1007 | 1009;
  /** RFC 6455 section of the broken rule. */
  rfc: string;
  detail: string;
  /** This error made the endpoint send its close frame (false: one was sent before). */
  closeSent: boolean;
}

export type EndpointEvent =
  /**
   * A frame as received, payload unmasked. The errors its header or text
   * caused come before it (they are found as its bytes arrive), what it means
   * (message, ping, pong, close) after it.
   */
  | { type: "frame"; header: FrameHeader; payload: Uint8Array }
  | { type: "message"; binary: boolean; payload: Uint8Array }
  | { type: "ping"; payload: Uint8Array }
  | { type: "pong"; payload: Uint8Array }
  /**
   * The peer's close frame: `code` when it has one, `reason` when it is valid
   * UTF-8; not `valid`, it broke a rule and an error follows.
   */
  | { type: "close"; code?: number; reason?: string; valid: boolean }
  /** The first time the peer breaks a rule (one per rule). */
  | { type: "observation"; observation: PeerObservation }
  | { type: "error"; error: ProtocolError };

/** A frame to send exactly as described. */
export interface FrameToSend extends Omit<FrameToEncode, "maskKey"> {
  /** A 4-byte key, "none" for unmasked; absent: as the role masks (§5.3). */
  mask?: Uint8Array | "none";
}

export interface EndpointOptions {
  role: Role;
  /** Negotiated extensions, in the order of the handshake response. */
  extensions?: Extension[];
  /** Largest message (and frame) accepted; larger is error 1009. Default 64 MiB. */
  maxMessageSize?: number;
  /**
   * Answers every ping at once (§5.5.2). Default true. Off, the caller sends
   * the pong owed for the latest ping (sendOwedPong) at its own pace; one still
   * owed goes out before this end's close frame, as the ping came first.
   */
  autoPong?: boolean;
  /** Fills `byteCount` bytes of masking keys (4 per frame). Default crypto.getRandomValues. */
  maskKeys?: (byteCount: number) => Uint8Array;
}

/** How a message is sent. */
export interface MessageOptions {
  /** Frames of this many payload bytes (after encoding); absent: one frame. */
  fragmentSize?: number;
  /** Default true: the agreed extensions encode the message. */
  encode?: boolean;
}

/** Close codes that MUST NOT be set in a close frame (§7.4.1). */
const NEVER_SENT_CODES = [1005, 1006, 1015];

const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** Masking keys (§5.3): crypto.getRandomValues fills at most 64 KiB per call. */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(out.subarray(off, off + 65536));
  return out;
}

export class Endpoint {
  readonly role: Role;
  readonly maxMessageSize: number;
  /** Every rule the peer broke, once each, in the order first seen. */
  readonly observations: PeerObservation[] = [];
  #extensions: Extension[];
  #allowedRsv: number;
  #autoPong: boolean;
  /** The payload of the latest ping not answered yet (autoPong off). */
  #owedPong?: Uint8Array;
  #maskKeys: (byteCount: number) => Uint8Array;
  #parser: FrameParser;
  #state: State = "connecting";
  #events: EndpointEvent[] = [];
  #outgoing: Uint8Array[] = [];
  #closeSent = false;
  #peerClosed = false;
  #failed = false;
  /** An error came after this end's close frame: there is no frame left to fail with. */
  #failedWhileClosing = false;
  /** The parser stopped at a frame over the limit: nothing more can be read. */
  #receiveStopped = false;
  /** The header checked last, so a frame arriving in pieces is checked once. */
  #checkedHeader?: FrameHeader;
  /** The frame in progress is dropped when complete (an error, or after a close). */
  #discard = false;
  /** Payload bytes of the frame in progress already pushed to the UTF-8 validator. */
  #validated = 0;
  #message?: {
    binary: boolean;
    parts: Uint8Array[];
    size: number;
    utf8?: Utf8Validator;
    /** The extension that marked the message with its RSV bits: it decodes the whole message. */
    encodedBy?: Extension;
  };
  /** The masking key of the peer's previous frame, to tell a fresh key (§5.3). */
  #previousMaskKey?: Uint8Array;

  constructor(options: EndpointOptions) {
    this.role = options.role;
    this.maxMessageSize = options.maxMessageSize ?? 64 * 1024 * 1024;
    this.#extensions = [];
    this.#allowedRsv = 0;
    this.useExtensions(options.extensions ?? []);
    this.#autoPong = options.autoPong ?? true;
    this.#maskKeys = options.maskKeys ?? randomBytes;
    this.#parser = new FrameParser({ maxPayload: this.maxMessageSize });
  }

  get state(): State {
    return this.#state;
  }

  /** Both close frames have crossed (§7.1.3). */
  get closeHandshakeDone(): boolean {
    return this.#closeSent && this.#peerClosed;
  }

  /** This end failed the connection (§7.1.7). */
  get failed(): boolean {
    return this.#failed;
  }

  /**
   * This end should close TCP now: a server once the closing handshake is done
   * (§7.1.1), either end once it cannot read on (a frame over the limit) or
   * it failed the connection after its close frame had left.
   */
  get shouldCloseTcp(): boolean {
    return (this.role === "server" && this.closeHandshakeDone) || this.#receiveStopped ||
      this.#failedWhileClosing;
  }

  /** The peer is expected to close TCP: a client waits for the server to (§7.1.1). */
  get closeExpected(): boolean {
    return this.role === "client" && this.closeHandshakeDone && this.#state !== "closed";
  }

  /** The extensions the opening handshake agreed on, in the response's order (§9.1). */
  useExtensions(extensions: Extension[]): void {
    this.#extensions = extensions;
    this.#allowedRsv = extensions.reduce((bits, e) => bits | e.rsv, 0);
  }

  /** The opening handshake succeeded (§4.1, §4.2.2): frames may flow. */
  open(): void {
    if (this.#state === "connecting") this.#state = "open";
  }

  /** The TCP connection is closed, by either end (§7.1.4). */
  connectionClosed(): void {
    this.#state = "closed";
  }

  // ---- bytes in, events out -------------------------------------------------

  /** Bytes from the peer; parsed as events are asked for (none before open()). */
  receiveData(bytes: Uint8Array): void {
    if (this.#state !== "closed") this.#parser.push(bytes);
  }

  /**
   * The events of one more frame (or of the part of one received so far);
   * empty when the bytes so far give no more. One frame at a time lets a
   * caller pace a flood.
   */
  nextEvents(): EndpointEvent[] {
    this.#parseOne();
    return this.#events.splice(0);
  }

  /** Every event the bytes so far give. */
  eventsReceived(): EndpointEvent[] {
    while (this.#parseOne());
    return this.#events.splice(0);
  }

  /** Data-frame payload bytes of the frame in progress received so far, if one is. */
  get partialDataFrame(): { header: FrameHeader; received: number } | undefined {
    const header = this.#parser.pendingHeader;
    if (!header || isControlOpcode(header.opcode)) return undefined;
    return { header, received: this.#parser.partialPayload?.length ?? 0 };
  }

  /** Parses one step; false when the bytes so far give nothing more. */
  #parseOne(): boolean {
    if (this.#state === "connecting" || this.#state === "closed" || this.#receiveStopped) {
      return false;
    }
    const parsed = this.#parser.next();
    if (!parsed) {
      // A frame in progress is checked from its header and, for text, as its bytes arrive.
      const header = this.#parser.pendingHeader;
      if (header) {
        this.#checkHeader(header);
        this.#validateText(this.#parser.partialPayload!);
      }
      return false;
    }
    if (parsed.type === "oversize") {
      this.#receiveStopped = true;
      this.#observeHeader(parsed.header);
      const control = isControlOpcode(parsed.header.opcode);
      this.#fail(
        control ? "control-too-long" : "message-too-big",
        `a frame announces ${parsed.header.length} bytes, over the limit of ${this.maxMessageSize}`,
      );
      return true;
    }
    const { header, payload } = parsed;
    this.#checkHeader(header);
    this.#validateText(payload);
    const discard = this.#discard;
    this.#checkedHeader = undefined;
    this.#discard = false;
    this.#validated = 0;
    this.#events.push({ type: "frame", header, payload });
    if (!discard) this.#onFrame(header, payload);
    return true;
  }

  /**
   * Checks a header once, as soon as it is complete: a frame over the limit or
   * illegal fails the connection before its payload arrives.
   */
  #checkHeader(header: FrameHeader): void {
    if (header === this.#checkedHeader) return;
    this.#checkedHeader = header;
    this.#validated = 0;
    this.#discard = true;
    this.#observeHeader(header);
    const { opcode } = header;
    const control = isControlOpcode(opcode);
    // After the peer's close nothing it sends has a meaning (§5.5.1): it is observed and
    // dropped, as failing would change nothing, both close frames being sent or owed.
    if (this.#peerClosed) return;
    // Once failed, this end only waits for the peer's close (§7.1.7).
    if (this.#failed && opcode !== Opcode.Close) return;
    const error = this.#headerError(header);
    if (error) return this.#fail(...error);
    this.#discard = false;
    if (control) return;
    const message = this.#message ??= {
      binary: opcode === Opcode.Binary,
      parts: [],
      size: 0,
      utf8: opcode === Opcode.Text ? new Utf8Validator() : undefined,
      encodedBy: this.#extensions.find((e) => header.rsv & e.rsv),
    };
    message.size += Number(header.length);
  }

  /** The rule a header breaks for this end to receive it, if any. */
  #headerError(header: FrameHeader): [ProtocolErrorCode, string] | undefined {
    const { opcode, length } = header;
    if (this.role === "client" && header.masked) {
      return ["masked-frame-from-server", "the server masked a frame"];
    }
    if (this.role === "server" && !header.masked) {
      return ["unmasked-frame-from-client", "the client sent an unmasked frame"];
    }
    if (header.rsv & ~this.#allowedRsv) {
      return [
        "rsv-without-extension",
        `RSV bits ${header.rsv} set, no extension gives them a meaning`,
      ];
    }
    for (const extension of this.#extensions) {
      const problem = extension.rsvProblem(header);
      if (problem) return [problem.code, problem.detail];
    }
    if (!isKnownOpcode(opcode)) return ["reserved-opcode", `reserved opcode ${opcode}`];
    if (isControlOpcode(opcode)) {
      if (!header.fin) return ["control-fragmented", "a fragmented control frame"];
      if (length > 125n) {
        return ["control-too-long", `a control frame of ${length} bytes, over 125`];
      }
      return undefined;
    }
    if (opcode === Opcode.Continuation && !this.#message) {
      return ["continuation-without-start", "a continuation frame with no message to continue"];
    }
    if (opcode !== Opcode.Continuation && this.#message) {
      return ["new-message-inside-fragmented", "a new data frame inside a fragmented message"];
    }
    if ((this.#message?.size ?? 0) + Number(length) > this.maxMessageSize) {
      return [
        "message-too-big",
        `the message grows over the limit of ${this.maxMessageSize} bytes`,
      ];
    }
    return undefined;
  }

  /**
   * Fails a text message at the first invalid byte (§8.1), whatever the
   * fragmentation: `payload` is the frame's payload received so far. A
   * message an extension encoded is checked once decoded, whole.
   */
  #validateText(payload: Uint8Array): void {
    const validator = this.#message?.utf8;
    if (this.#discard || !validator || isControlOpcode(this.#checkedHeader!.opcode)) return;
    if (this.#message!.encodedBy) return;
    const fresh = payload.subarray(this.#validated);
    this.#validated = payload.length;
    if (validator.push(fresh)) return;
    this.#message = undefined;
    this.#discard = true;
    this.#fail("invalid-utf8", `invalid UTF-8 at byte ${validator.failedAt} of the message`);
  }

  #onFrame(header: FrameHeader, payload: Uint8Array): void {
    switch (header.opcode) {
      case Opcode.Ping:
        this.#events.push({ type: "ping", payload });
        if (this.#autoPong) this.sendPong(payload);
        else this.#owedPong = payload;
        return;
      case Opcode.Pong:
        this.#events.push({ type: "pong", payload });
        return;
      case Opcode.Close:
        return this.#onClose(payload);
    }
    const message = this.#message!;
    message.parts.push(payload);
    if (!header.fin) return;
    this.#message = undefined;
    let data = message.parts.length === 1 ? message.parts[0] : concat(message.parts);
    if (message.encodedBy) {
      const decoded = message.encodedBy.decodeMessage(data);
      if (!decoded.ok) return this.#fail(decoded.code, decoded.detail);
      data = decoded.payload;
      if (message.utf8 && !message.utf8.push(data)) {
        return this.#fail(
          "invalid-utf8",
          `invalid UTF-8 at byte ${message.utf8.failedAt} of the message`,
        );
      }
    }
    if (message.utf8 && !message.utf8.complete) {
      return this.#fail("invalid-utf8", "the text message ends inside a UTF-8 sequence");
    }
    this.#events.push({ type: "message", binary: message.binary, payload: data });
  }

  /** The peer's close frame (§5.5.1, §7.1.5): checked, then answered if this end has not closed. */
  #onClose(payload: Uint8Array): void {
    this.#peerClosed = true;
    const code = payload.length >= 2 ? (payload[0] << 8) | payload[1] : undefined;
    const reason = payload.subarray(2);
    const reasonValid = isValidUtf8(reason);
    const problem = this.#closeProblem(payload.length, code, reasonValid);
    this.#events.push({
      type: "close",
      code,
      reason: payload.length !== 1 && reasonValid ? utf8.decode(reason) : undefined,
      valid: !problem,
    });
    if (problem) return this.#fail(...problem);
    // §5.5.1: a close frame MUST be answered with one, unless one was sent.
    this.sendClose(1000);
  }

  /** The rule a close frame's body breaks (§5.5.1, §7.4), observing what the peer broke. */
  #closeProblem(
    length: number,
    code: number | undefined,
    reasonValid: boolean,
  ): [ProtocolErrorCode, string] | undefined {
    if (length === 1) {
      this.#observe(
        "close-body",
        "5.5.1",
        "must",
        "a close frame with a 1-byte body, where a body MUST begin with a 2-byte code",
      );
      return ["close-payload-1-byte", "a close frame with a 1-byte payload"];
    }
    if (code !== undefined && !isValidCloseCode(code)) {
      if (NEVER_SENT_CODES.includes(code)) {
        this.#observe(
          "close-code",
          "7.4.1",
          "must",
          `the peer sent close code ${code}, which MUST NOT be set in a close frame`,
        );
      } else {
        // Unassigned and out-of-range codes carry no MUST for the sender: recorded only.
        this.#observe(
          "close-code-undefined",
          "7.4.2",
          "may",
          `the peer sent close code ${code}, reserved or unassigned (no MUST forbids sending it)`,
        );
      }
      return ["invalid-close-code", `invalid close code ${code}`];
    }
    if (!reasonValid) return ["invalid-close-reason", "the close reason is not valid UTF-8"];
    return undefined;
  }

  /**
   * The checks on everything the peer sends (§5.1, §5.2, §5.5, §5.5.1),
   * whatever the frame's fate: each broken rule is reported once.
   */
  #observeHeader(header: FrameHeader): void {
    const { opcode, length } = header;
    if (this.role === "client" && header.masked) {
      this.#observe("masked", "5.1", "must", "a frame from the server was masked");
    }
    if (this.role === "server" && !header.masked) {
      this.#observe("unmasked", "5.1", "must", "a frame from the client was not masked");
    }
    if (this.role === "server" && header.maskKey) this.#observeMaskKey(header.maskKey);
    if (header.lengthForm !== minimalLengthForm(length)) {
      this.#observe(
        "length-form",
        "5.2",
        "must",
        `a ${length}-byte payload used the ${header.lengthForm}-bit length form, not the minimal one`,
      );
    }
    if (header.rsv & ~this.#allowedRsv) {
      this.#observe(
        "rsv",
        "5.2",
        "must",
        `RSV bits ${header.rsv} set with no extension negotiated`,
      );
    }
    for (const extension of this.#extensions) {
      const problem = extension.rsvProblem(header);
      if (problem) {
        this.#observe(problem.code, ERROR_RULES[problem.code][1], "must", problem.detail);
      }
    }
    if (!isKnownOpcode(opcode)) {
      // No sender MUST names opcodes, but with no extension negotiated a reserved one
      // leaves its receiver no choice: it MUST fail the connection (§5.2).
      this.#observe(
        "reserved-opcode",
        "5.2",
        "must",
        `a frame with reserved opcode ${opcode}, no extension negotiated`,
      );
    } else if (isControlOpcode(opcode)) {
      if (length > 125n) {
        this.#observe(
          "control-oversize",
          "5.5",
          "must",
          `a control frame (opcode ${opcode}) of ${length} bytes, over 125`,
        );
      }
      if (!header.fin) {
        this.#observe(
          "control-fragmented",
          "5.5",
          "must",
          `a control frame (opcode ${opcode}) with FIN clear: control frames MUST NOT be fragmented`,
        );
      }
    }
    if (this.#peerClosed && !isControlOpcode(opcode)) {
      this.#observe(
        "data-after-close",
        "5.5.1",
        "must",
        "a data frame followed the peer's close frame",
      );
    }
  }

  /**
   * §5.3: a client MUST pick a fresh, unpredictable key for every frame. A key
   * of zeros (no masking at all) or the previous frame's key shows it did not;
   * a random key is either by chance once in 2^32 frames.
   */
  #observeMaskKey(key: Uint8Array): void {
    const previous = this.#previousMaskKey;
    this.#previousMaskKey = key;
    if (key.every((b) => b === 0)) {
      this.#observe("mask-key-zero", "5.3", "must", "a client frame was masked with the key 0");
    } else if (previous && key.every((b, i) => b === previous[i])) {
      this.#observe(
        "mask-key-repeated",
        "5.3",
        "must",
        `two frames in a row were masked with the same key ${key.toHex()}`,
      );
    }
  }

  #observe(rule: string, rfc: string, level: Level, detail: string): void {
    if (this.observations.some((o) => o.rule === rule)) return;
    const observation = { rule, rfc, level, detail };
    this.observations.push(observation);
    this.#events.push({ type: "observation", observation });
  }

  /**
   * Fails the connection (§7.1.7): a close frame with the suggested code, unless
   * one left. The details are short, so they fit the frame's 123-byte reason.
   */
  #fail(code: ProtocolErrorCode, detail: string): void {
    const [closeCode, rfc] = ERROR_RULES[code];
    const closeSent = this.sendClose(closeCode, detail);
    if (!closeSent) this.#failedWhileClosing = true;
    this.#failed = true;
    this.#events.push({ type: "error", error: { code, closeCode, rfc, detail, closeSent } });
  }

  // ---- actions in, bytes out ------------------------------------------------

  /** The bytes queued to send, cleared. */
  dataToSend(): Uint8Array {
    const out = this.#outgoing.length === 1 ? this.#outgoing[0] : concat(this.#outgoing);
    this.#outgoing = [];
    return out;
  }

  /**
   * A text message, in frames of `fragmentSize` bytes when given (§5.4, §5.6),
   * encoded by the extensions agreed (compressed by permessage-deflate) unless
   * `encode` is false: an extension leaves a sender free not to (RFC 7692 §6).
   */
  sendText(data: string | Uint8Array, options: MessageOptions = {}): void {
    const payload = typeof data === "string" ? utf8Encoder.encode(data) : data;
    this.#sendMessage(Opcode.Text, payload, options);
  }

  sendBinary(data: Uint8Array, options: MessageOptions = {}): void {
    this.#sendMessage(Opcode.Binary, data, options);
  }

  sendPing(payload: Uint8Array = new Uint8Array(0)): void {
    this.sendFrame({ opcode: Opcode.Ping, payload });
  }

  sendPong(payload: Uint8Array = new Uint8Array(0)): void {
    this.sendFrame({ opcode: Opcode.Pong, payload });
  }

  /** The pong owed for the latest ping, if one is (autoPong off); only the latest needs one. */
  get pongOwed(): boolean {
    return this.#owedPong !== undefined;
  }

  sendOwedPong(): void {
    if (!this.#owedPong) return;
    this.sendPong(this.#owedPong);
    this.#owedPong = undefined;
  }

  /**
   * Starts (or answers) the closing handshake (§5.5.1, §7.1.2): only once, from
   * OPEN; returns whether a close frame was queued. The reason is sent as given,
   * even past the 123 bytes a control frame allows (a case may send that); a
   * second close can be crafted with sendFrame.
   */
  sendClose(code?: number, reason?: string | Uint8Array): boolean {
    if (this.#state !== "open") return false;
    this.sendOwedPong();
    const bytes = typeof reason === "string" ? utf8Encoder.encode(reason) : reason;
    this.sendFrame({
      opcode: Opcode.Close,
      payload: closePayload(code, bytes),
    });
    this.#state = "closing";
    this.#closeSent = true;
    return true;
  }

  /** Queues any frame, legal or not, exactly as described; masked as the role masks by default. */
  sendFrame(frame: FrameToSend): void {
    const maskKey = frame.mask === "none"
      ? undefined
      : frame.mask ?? (this.role === "client" ? this.#maskKeys(4) : undefined);
    this.#outgoing.push(encodeFrames([{ ...frame, maskKey }]));
  }

  #sendMessage(opcode: number, payload: Uint8Array, options: MessageOptions): void {
    let rsv = 0;
    if (options.encode ?? true) {
      for (const extension of this.#extensions) {
        const encoded = extension.encodeMessage(payload);
        rsv |= encoded.rsv;
        payload = encoded.payload;
      }
    }
    const { fragmentSize } = options;
    const count = fragmentCount(payload.length, fragmentSize);
    const maskKeys = this.role === "client" ? this.#maskKeys(4 * count) : undefined;
    this.#outgoing.push(encodeMessage(payload, { opcode, fragmentSize, maskKeys, rsv }));
  }
}

/** Each error's close code (§7.4.1) and the section of the rule it breaks. */
const ERROR_RULES: Record<ProtocolErrorCode, [1002 | 1007 | 1009, string]> = {
  "masked-frame-from-server": [1002, "5.1"],
  "unmasked-frame-from-client": [1002, "5.1"],
  "rsv-without-extension": [1002, "5.2"],
  "reserved-opcode": [1002, "5.2"],
  "control-too-long": [1002, "5.5"],
  "control-fragmented": [1002, "5.5"],
  "continuation-without-start": [1002, "5.4"],
  "new-message-inside-fragmented": [1002, "5.4"],
  "invalid-utf8": [1007, "8.1"],
  "invalid-close-code": [1002, "7.4.1"],
  "invalid-close-reason": [1007, "5.5.1"],
  "close-payload-1-byte": [1002, "5.5.1"],
  "message-too-big": [1009, "7.4.1"],
  "compressed-control-frame": [1002, "RFC 7692 §6.1"],
  "compressed-continuation-frame": [1002, "RFC 7692 §6.1"],
  "inflate-failed": [1007, "RFC 7692 §6.2"],
  "window-exceeded": [1007, "RFC 7692 §7.1.2"],
};
