/**
 * permessage-deflate (RFC 7692), pure: the message compressor (§7.2.1), the
 * bounded decompressor (§7.2.2) and the negotiation rules (§5, §7.1) over the
 * extension lists that server_handshake.ts parses. No I/O: zlib runs in memory.
 *
 * The codec is synchronous, so the sans-I/O endpoint can use it between frame
 * parsing and message assembly. node:zlib's streams keep their LZ77 window
 * across messages (context takeover) and flush on demand, but only
 * asynchronously; the sync one-shot functions start afresh each call, and the
 * Web CompressionStream cannot flush per message. So a stream is driven
 * through its zlib handle's writeSync, as node:zlib's own sync functions do
 * (zlibStep below; Deno 2.9.6 and Node share that binding).
 */

import zlib from "node:zlib";
import type { DeflateAcceptanceSpec, DeflateOfferSpec } from "./case.ts";
import type { Extension, ExtensionProblem, Role } from "./endpoint.ts";
import { concat, type FrameHeader, isControlOpcode, Opcode } from "./frame.ts";
import type { ExtensionOffer } from "./server_handshake.ts";

export const PERMESSAGE_DEFLATE = "permessage-deflate";

/** The empty stored block's LEN/NLEN that a sync flush ends with (§7.2.1 removes them). */
const FLUSH_TAIL = new Uint8Array([0x00, 0x00, 0xff, 0xff]);

// ---------------------------------------------------------------------------
// Errors as values, with stable codes (like ws's receiver error codes).

export type DeflateErrorCode =
  /** the data is not DEFLATE, or does not end where §7.2.2 expects */
  | "inflate-failed"
  /** the message inflates past the limit (a peer closes with 1009) */
  | "too-big"
  /** a back reference reaches past the agreed window bits (§7.1.2.1, §7.1.2.2) */
  | "window-exceeded"
  /** the codec failed or was closed before; its window is lost */
  | "closed";

export type InflateResult =
  | { ok: true; data: Uint8Array }
  | { ok: false; code: DeflateErrorCode; reason: string };

// ---------------------------------------------------------------------------
// zlib, driven synchronously.

/** The parts of node:zlib's internal handle that its own sync functions use. */
interface ZlibHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOffset: number,
    inLength: number,
    output: Uint8Array,
    outOffset: number,
    outLength: number,
  ): void;
  reset(): void;
  onerror: (message: string, errno: number) => void;
}

/** A zlib stream fed synchronously; an error is kept, never thrown or emitted. */
class ZlibStream {
  readonly #stream: zlib.DeflateRaw | zlib.InflateRaw;
  readonly #handle: ZlibHandle;
  /** [output space left, input left] after each writeSync, as the binding reports them. */
  readonly #state: Uint32Array;
  error?: string;

  constructor(stream: zlib.DeflateRaw | zlib.InflateRaw) {
    this.#stream = stream;
    const internals = stream as unknown as { _handle: ZlibHandle; _writeState: Uint32Array };
    this.#handle = internals._handle;
    this.#state = internals._writeState;
    this.#handle.onerror = (message) => this.error = message;
    // The stream would emit its error later too: it is handled here, by value.
    stream.on("error", () => {});
  }

  /**
   * Feeds `input` and flushes (Z_SYNC_FLUSH), collecting the output until it
   * is all out or passes `maxOutput`. `consumed` < input.length with output
   * space left means the DEFLATE stream ended (a block with BFINAL set).
   */
  step(input: Uint8Array, maxOutput = Infinity): StepResult {
    const chunks: Uint8Array[] = [];
    let length = 0, offset = 0, inputLeft = input.length;
    // zlib writes into one scratch buffer, and each piece is copied out at its size:
    // a buffer sized for the worst case per call cost more in allocation than the copy.
    const out = SCRATCH;
    for (;;) {
      this.#handle.writeSync(
        zlib.constants.Z_SYNC_FLUSH,
        input,
        offset,
        inputLeft,
        out,
        0,
        out.length,
      );
      if (this.error) return { chunks, length, consumed: offset, error: this.error };
      const [outputLeft, nowLeft] = this.#state;
      const produced = out.length - outputLeft;
      if (produced > 0) chunks.push(out.slice(0, produced));
      length += produced;
      offset += inputLeft - nowLeft;
      inputLeft = nowLeft;
      if (length > maxOutput || outputLeft > 0) return { chunks, length, consumed: offset };
    }
  }

  /** Empties the window and starts a new DEFLATE stream, keeping zlib's memory (deflateReset). */
  reset(): void {
    this.#handle.reset();
    this.error = undefined;
  }

  close(): void {
    this.#stream.close();
  }
}

/** zlib's output buffer: the codec is synchronous, so one serves every stream. */
const SCRATCH = new Uint8Array(64 * 1024);

interface StepResult {
  chunks: Uint8Array[];
  length: number;
  consumed: number;
  error?: string;
}

// ---------------------------------------------------------------------------
// The codec.

export interface CodecOptions {
  /** LZ77 window bits agreed for this direction, 8-15 (15 when not negotiated). */
  windowBits: number;
  /** Whether the window carries over from one message to the next (§7.2.1, §7.2.2). */
  contextTakeover: boolean;
}

export interface CompressorOptions extends CodecOptions {
  /** zlib's compression level (default 1: every level is valid DEFLATE, the fastest serves a suite best). */
  level?: number;
}

/**
 * Compresses messages per §7.2.1: raw DEFLATE, a sync flush at the end of
 * each message, its trailing 00 00 ff ff removed.
 */
export class MessageCompressor {
  readonly #options: CompressorOptions;
  #stream?: ZlibStream;

  constructor(options: CompressorOptions) {
    checkWindowBits(options.windowBits);
    this.#options = options;
  }

  compress(message: Uint8Array): Uint8Array {
    // Without context takeover each message starts with an empty window.
    if (!this.#options.contextTakeover) this.#stream?.reset();
    // zlib refuses 8 window bits for raw deflate (since 1.2.9; before, it
    // silently used 9). Autobahn 0.8.2 asks zlib for 8 and so gets 9: we
    // ask for 9. Its longest distance, 512 - 262 (zlib's MIN_LOOKAHEAD)
    // = 250 bytes, fits a 256-byte window, so an 8-bit inflater reads it.
    this.#stream ??= new ZlibStream(zlib.createDeflateRaw({
      windowBits: Math.max(this.#options.windowBits, 9),
      level: this.#options.level ?? 1,
    }));
    const { chunks, error } = this.#stream.step(message);
    if (error) throw new Error(`zlib failed to compress: ${error}`);
    const out = concat(chunks);
    // zlib writes nothing for a flush with nothing new since the last one: the
    // empty message is then one empty stored block's first byte (§7.2.3.6).
    if (out.length === 0) return Uint8Array.of(0);
    const tail = out.subarray(out.length - FLUSH_TAIL.length);
    if (!tail.every((b, i) => b === FLUSH_TAIL[i])) {
      throw new Error("zlib's sync flush did not end with 00 00 ff ff");
    }
    return out.subarray(0, out.length - FLUSH_TAIL.length);
  }

  /** Ends the stream; the next message starts with an empty window. */
  close(): void {
    this.#stream?.close();
    this.#stream = undefined;
  }
}

export interface DecompressorOptions extends CodecOptions {
  /** The most bytes a message may inflate to; past it, "too-big" (nothing more is inflated). */
  maxMessageBytes: number;
}

/**
 * Decompresses messages per §7.2.2: appends 00 00 ff ff and inflates. A
 * message that inflates past maxMessageBytes stops there with "too-big", so
 * a decompression bomb costs the limit, not memory. After an error the
 * decompressor is closed: its window is lost, and the connection fails on
 * the error anyway.
 *
 * A DEFLATE block with BFINAL set ends zlib's stream, but §7.2.1 lets more
 * blocks follow it (§7.2.3.4): the rest is inflated by a new stream primed
 * with the window so far, which is what the old stream held.
 *
 * Deno 2.9.6's inflateRaw ignores windowBits (it reads distances up to
 * 32 KiB whatever it is given), so under 15 bits the message's DEFLATE
 * distances are read first (longestDistance) and one past the window is
 * "window-exceeded".
 */
export class MessageDecompressor {
  readonly #options: DecompressorOptions;
  #stream?: ZlibStream;
  /** The latest output, at least a window's worth when there is that much: the dictionary. */
  #history: Uint8Array[] = [];
  #historyLength = 0;
  #failed?: string;

  constructor(options: DecompressorOptions) {
    checkWindowBits(options.windowBits);
    this.#options = options;
  }

  decompress(data: Uint8Array): InflateResult {
    if (this.#failed) return { ok: false, code: "closed", reason: this.#failed };
    if (!this.#options.contextTakeover) this.#reset();
    const limit = this.#options.maxMessageBytes;
    const message: Uint8Array[] = [];
    let length = 0;
    let input = concat([data, FLUSH_TAIL]);
    const { windowBits } = this.#options;
    // zlib's own check covers 15 bits (32 KiB, DEFLATE's longest distance).
    const farthest = windowBits < 15 ? longestDistance(input) : 0;
    if (farthest > 1 << windowBits) {
      return this.#fail(
        "window-exceeded",
        `a back reference reaches ${farthest} bytes back, past the window of ${windowBits} bits`,
      );
    }
    while (input.length > 0) {
      const stream = this.#stream ??= this.#open();
      const step = stream.step(input, limit - length);
      length += step.length;
      if (length > limit) {
        return this.#fail("too-big", `the message inflates past ${limit} bytes`);
      }
      if (step.error) return this.#fail("inflate-failed", step.error);
      message.push(...step.chunks);
      this.#remember(step.chunks);
      if (step.consumed === input.length) break;
      // BFINAL ended the stream: the rest of the input continues in a new one.
      input = input.subarray(step.consumed);
      stream.close();
      this.#stream = undefined;
    }
    return { ok: true, data: concat(message) };
  }

  #open(): ZlibStream {
    const stream = new ZlibStream(zlib.createInflateRaw({ windowBits: this.#options.windowBits }));
    if (this.#historyLength === 0) return stream;
    // Deno's inflateRaw ignores the `dictionary` option, so the window is
    // refilled by inflating it as one stored block (BTYPE 00), output dropped.
    const history = concat(this.#history);
    const window = history.subarray(Math.max(0, history.length - (1 << this.#options.windowBits)));
    const header = [0x00, window.length & 0xff, window.length >> 8];
    stream.step(concat([new Uint8Array([...header, header[1] ^ 0xff, header[2] ^ 0xff]), window]));
    return stream;
  }

  /** Keeps the output's tail that a window can still reach, dropping older chunks. */
  #remember(chunks: readonly Uint8Array[]): void {
    const windowSize = 1 << this.#options.windowBits;
    for (const chunk of chunks) {
      this.#history.push(chunk);
      this.#historyLength += chunk.length;
    }
    while (this.#historyLength - this.#history[0]?.length >= windowSize) {
      this.#historyLength -= this.#history.shift()!.length;
    }
  }

  /** Forgets the window: the next message starts with an empty one. */
  #reset(): void {
    this.#stream?.reset();
    this.#history = [];
    this.#historyLength = 0;
  }

  #fail(code: DeflateErrorCode, reason: string): InflateResult {
    this.close();
    this.#failed = `the decompressor failed before: ${reason}`;
    return { ok: false, code, reason };
  }

  close(): void {
    this.#stream?.close();
    this.#stream = undefined;
    this.#history = [];
    this.#historyLength = 0;
    this.#failed = "the decompressor is closed";
  }
}

/** RSV1, the "Per-Message Compressed" bit (RFC 7692 §6), as FrameHeader.rsv has it. */
const COMPRESSED_BIT = 4;

/**
 * permessage-deflate as an endpoint's extension (endpoint.ts): what this end
 * sends it compresses with its own direction's parameters, what it receives
 * it inflates with the peer's (§7.1: server_* parameters are the server's
 * direction, client_* the client's).
 */
export class PerMessageDeflate implements Extension {
  readonly rsv = COMPRESSED_BIT;
  readonly #compressor: MessageCompressor;
  readonly #decompressor: MessageDecompressor;

  constructor(agreed: AgreedDeflate, role: Role, maxMessageBytes: number) {
    const server = {
      windowBits: agreed.serverMaxWindowBits,
      contextTakeover: !agreed.serverNoContextTakeover,
    };
    const client = {
      windowBits: agreed.clientMaxWindowBits,
      contextTakeover: !agreed.clientNoContextTakeover,
    };
    const [own, peer] = role === "server" ? [server, client] : [client, server];
    this.#compressor = new MessageCompressor(own);
    this.#decompressor = new MessageDecompressor({ ...peer, maxMessageBytes });
  }

  rsvProblem(header: FrameHeader): ExtensionProblem | undefined {
    if (!(header.rsv & COMPRESSED_BIT)) return undefined;
    if (isControlOpcode(header.opcode)) {
      return {
        code: "compressed-control-frame",
        detail: `RSV1 set on a control frame (opcode ${header.opcode})`,
      };
    }
    if (header.opcode === Opcode.Continuation) {
      return { code: "compressed-continuation-frame", detail: "RSV1 set on a continuation frame" };
    }
    return undefined;
  }

  decodeMessage(
    payload: Uint8Array,
  ): { ok: true; payload: Uint8Array } | ({ ok: false } & ExtensionProblem) {
    const inflated = this.#decompressor.decompress(payload);
    if (inflated.ok) return { ok: true, payload: inflated.data };
    const detail = `a compressed message: ${inflated.reason}`;
    switch (inflated.code) {
      case "too-big":
        return { ok: false, code: "message-too-big", detail };
      case "window-exceeded":
        return { ok: false, code: "window-exceeded", detail };
      case "inflate-failed":
      case "closed":
        return { ok: false, code: "inflate-failed", detail };
    }
  }

  encodeMessage(payload: Uint8Array): { rsv: number; payload: Uint8Array } {
    return { rsv: COMPRESSED_BIT, payload: this.#compressor.compress(payload) };
  }

  /** Frees zlib's memory: the connection is over. */
  close(): void {
    this.#compressor.close();
    this.#decompressor.close();
  }
}

function checkWindowBits(windowBits: number): void {
  if (!Number.isInteger(windowBits) || windowBits < 8 || windowBits > 15) {
    throw new RangeError(`window bits must be 8-15, not ${windowBits}`);
  }
}

// ---------------------------------------------------------------------------
// Negotiation (§5, §7.1), over the extension lists of server_handshake.ts.

/** The parameters of one permessage-deflate offer or response, as written. */
export interface DeflateParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  /** Absent: undefined. */
  serverMaxWindowBits?: number;
  /** Absent: undefined; `true`: present without a value (offers only, §7.1.2.2). */
  clientMaxWindowBits?: number | true;
}

/** What both sides use once a response accepted an offer (§7.1): the codecs' options. */
export interface AgreedDeflate {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

/** A broken rule: `rule` names the requirement, `reason` says what broke it. */
export interface NegotiationProblem {
  rule: string;
  reason: string;
}

export type ParamsParse =
  | { ok: true; params: DeflateParams }
  | ({ ok: false } & NegotiationProblem);

const DECLINE_RULE = "RFC 7692 §7: a server MUST decline an offer with an unknown parameter, " +
  "a parameter twice, or an invalid value";
const FAIL_RULE = "RFC 7692 §7: a client MUST fail the connection on a response with an " +
  "unknown parameter, a parameter twice, or an invalid value";

/** 8-15, decimal, no leading zero (§7.1.2.1, §7.1.2.2); quotes are already gone. */
const WINDOW_BITS_VALUE = /^(?:8|9|1[0-5])$/;

/**
 * Reads and validates a permessage-deflate element's parameters: an offer
 * (`from` "offer") or a response ("response", where client_max_window_bits
 * needs a value, §7.1.2.2).
 */
export function parseDeflateParams(
  extension: ExtensionOffer,
  from: "offer" | "response",
): ParamsParse {
  const rule = from === "offer" ? DECLINE_RULE : FAIL_RULE;
  const problem = (reason: string): ParamsParse => ({ ok: false, rule, reason });
  const params: DeflateParams = { serverNoContextTakeover: false, clientNoContextTakeover: false };
  const seen = new Set<string>();
  for (const { name, value } of extension.params) {
    if (seen.has(name)) return problem(`${name} appears twice`);
    seen.add(name);
    const shown = value === undefined ? name : `${name}=${value}`;
    switch (name) {
      case "server_no_context_takeover":
      case "client_no_context_takeover":
        // §7.1.1.1, §7.1.1.2: these parameters have no value.
        if (value !== undefined) return problem(`${shown}: this parameter has no value`);
        params[
          name === "server_no_context_takeover"
            ? "serverNoContextTakeover"
            : "clientNoContextTakeover"
        ] = true;
        break;
      case "server_max_window_bits":
        if (value === undefined || !WINDOW_BITS_VALUE.test(value)) {
          return problem(`${shown}: the value must be 8-15, without leading zeros (§7.1.2.1)`);
        }
        params.serverMaxWindowBits = Number(value);
        break;
      case "client_max_window_bits":
        if (value === undefined && from === "offer") {
          params.clientMaxWindowBits = true;
        } else if (value === undefined || !WINDOW_BITS_VALUE.test(value)) {
          return problem(
            `${shown}: the value must be 8-15, without leading zeros` +
              (from === "response" ? ", and a response must give one (§7.1.2.2)" : " (§7.1.2.2)"),
          );
        } else {
          params.clientMaxWindowBits = Number(value);
        }
        break;
      default:
        return problem(`${shown} is not a parameter of permessage-deflate (§7.1)`);
    }
  }
  return { ok: true, params };
}

/** The element that writes `params`, in §7.1's order. */
export function deflateExtension(params: DeflateParams): ExtensionOffer {
  const out: ExtensionOffer = { name: PERMESSAGE_DEFLATE, params: [] };
  if (params.serverNoContextTakeover) out.params.push({ name: "server_no_context_takeover" });
  if (params.clientNoContextTakeover) out.params.push({ name: "client_no_context_takeover" });
  if (params.serverMaxWindowBits !== undefined) {
    out.params.push({ name: "server_max_window_bits", value: `${params.serverMaxWindowBits}` });
  }
  if (params.clientMaxWindowBits === true) out.params.push({ name: "client_max_window_bits" });
  else if (params.clientMaxWindowBits !== undefined) {
    out.params.push({ name: "client_max_window_bits", value: `${params.clientMaxWindowBits}` });
  }
  return out;
}

/** What a response that accepts `offer` makes both sides use. */
export function agreedDeflate(offer: DeflateParams, response: DeflateParams): AgreedDeflate {
  const offeredClientBits = typeof offer.clientMaxWindowBits === "number"
    ? offer.clientMaxWindowBits
    : 15;
  return {
    serverNoContextTakeover: response.serverNoContextTakeover,
    clientNoContextTakeover: response.clientNoContextTakeover,
    serverMaxWindowBits: response.serverMaxWindowBits ?? 15,
    // The response's value, else the one the client promised in its offer (§7.1.2.2).
    clientMaxWindowBits: typeof response.clientMaxWindowBits === "number"
      ? response.clientMaxWindowBits
      : offeredClientBits,
  };
}

/**
 * Why `response` does not accept `offer` (§7.1), or undefined when it does.
 * server_no_context_takeover, client_no_context_takeover and
 * server_max_window_bits may be in a response that was not offered them.
 */
export function acceptanceProblem(
  offer: DeflateParams,
  response: DeflateParams,
): NegotiationProblem | undefined {
  if (offer.serverNoContextTakeover && !response.serverNoContextTakeover) {
    return {
      rule: "RFC 7692 §7.1.1.1: a server accepts server_no_context_takeover by including it",
      reason: "the offer has server_no_context_takeover, the response does not",
    };
  }
  if (offer.serverMaxWindowBits !== undefined) {
    const answered = response.serverMaxWindowBits;
    if (answered === undefined || answered > offer.serverMaxWindowBits) {
      return {
        rule: "RFC 7692 §7.1.2.1: a server accepts server_max_window_bits by including it " +
          "with the same or a smaller value",
        reason: `the offer has server_max_window_bits=${offer.serverMaxWindowBits}, the response ` +
          (answered === undefined ? "none" : `${answered}`),
      };
    }
  }
  if (response.clientMaxWindowBits !== undefined && offer.clientMaxWindowBits === undefined) {
    return {
      rule: "RFC 7692 §7.1.2.2: a response MUST NOT include client_max_window_bits " +
        "unless the offer did",
      reason: `the response has client_max_window_bits=${response.clientMaxWindowBits}, ` +
        "the offer none",
    };
  }
  return undefined;
}

/** What a server would like; each is used only where the offer lets it (§7.1). */
export interface ServerDeflateWishes {
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  serverMaxWindowBits?: number;
  clientMaxWindowBits?: number;
}

export type ServerAnswer =
  | { type: "accept"; offerIndex: number; response: ExtensionOffer; agreed: AgreedDeflate }
  | { type: "decline"; problems: NegotiationProblem[] };

/**
 * A server's answer to a client's extension list: it accepts the first
 * valid permessage-deflate offer (the client lists them by preference, §5)
 * and declines the invalid ones (§7); `offerIndex` is the accepted one's
 * position in `offers`.
 */
export function answerDeflateOffers(
  offers: readonly ExtensionOffer[],
  wishes: ServerDeflateWishes = {},
): ServerAnswer {
  const problems: NegotiationProblem[] = [];
  for (const [offerIndex, extension] of offers.entries()) {
    if (extension.name !== PERMESSAGE_DEFLATE) continue;
    const parsed = parseDeflateParams(extension, "offer");
    if (!parsed.ok) {
      problems.push({ rule: parsed.rule, reason: parsed.reason });
      continue;
    }
    const offer = parsed.params;
    const smaller = (a?: number, b?: number) =>
      a === undefined ? b : b === undefined ? a : Math.min(a, b);
    const response: DeflateParams = {
      serverNoContextTakeover: offer.serverNoContextTakeover || !!wishes.serverNoContextTakeover,
      clientNoContextTakeover: !!wishes.clientNoContextTakeover,
      serverMaxWindowBits: smaller(offer.serverMaxWindowBits, wishes.serverMaxWindowBits),
      // Only an offer with client_max_window_bits lets the server limit the client (§7.1.2.2).
      clientMaxWindowBits: offer.clientMaxWindowBits === undefined ? undefined : smaller(
        offer.clientMaxWindowBits === true ? undefined : offer.clientMaxWindowBits,
        wishes.clientMaxWindowBits,
      ),
    };
    return {
      type: "accept",
      offerIndex,
      response: deflateExtension(response),
      agreed: agreedDeflate(offer, response),
    };
  }
  return { type: "decline", problems };
}

/** A case's offer (case.ts) as the parameters it writes. */
export function offerParams(offer: DeflateOfferSpec): DeflateParams {
  return {
    serverNoContextTakeover: offer.serverNoContextTakeover ?? false,
    clientNoContextTakeover: offer.clientNoContextTakeover ?? false,
    serverMaxWindowBits: offer.serverMaxWindowBits,
    clientMaxWindowBits: offer.clientMaxWindowBits,
  };
}

/**
 * A server's answer as a case sets it (case.ts DeflateSpec.accept, Autobahn's
 * accept functions): the first acceptance that one of the client's offers
 * allows, for the first such offer; one asking to limit the client's window
 * applies only to an offer with client_max_window_bits (§7.1.2.2). Whatever
 * the offer asks of the server, the answer grants (answerDeflateOffers).
 */
export function acceptDeflateOffers(
  offers: readonly ExtensionOffer[],
  acceptances: readonly DeflateAcceptanceSpec[],
): ServerAnswer {
  const problems: NegotiationProblem[] = [];
  const valid: { offerIndex: number; extension: ExtensionOffer; params: DeflateParams }[] = [];
  for (const [offerIndex, extension] of offers.entries()) {
    if (extension.name !== PERMESSAGE_DEFLATE) continue;
    const parsed = parseDeflateParams(extension, "offer");
    if (parsed.ok) valid.push({ offerIndex, extension, params: parsed.params });
    else problems.push({ rule: parsed.rule, reason: parsed.reason });
  }
  for (const acceptance of acceptances) {
    const limitsClient = acceptance.clientMaxWindowBits !== undefined;
    const offer = valid.find((o) =>
      (!limitsClient || o.params.clientMaxWindowBits !== undefined) &&
      (!acceptance.offerLimitsServerWindow || (o.params.serverMaxWindowBits ?? 15) < 15)
    );
    if (!offer) continue;
    const answer = answerDeflateOffers([offer.extension], acceptance);
    if (answer.type === "accept") return { ...answer, offerIndex: offer.offerIndex };
  }
  return { type: "decline", problems };
}

export type ResponseCheck =
  | { type: "accepted"; offerIndex: number; agreed: AgreedDeflate }
  | { type: "declined" }
  | ({ type: "error" } & NegotiationProblem);

/**
 * A client's check of a server's Sec-WebSocket-Extensions against its
 * offers: no permessage-deflate is a decline; otherwise the response must
 * be one element, valid (§7), that accepts one of the offers (§7.1).
 * `offerIndex` is the first offer it accepts.
 */
export function checkDeflateResponse(
  offers: readonly ExtensionOffer[],
  response: readonly ExtensionOffer[],
): ResponseCheck {
  const accepted = response.filter((e) => e.name === PERMESSAGE_DEFLATE);
  if (accepted.length === 0) return { type: "declined" };
  if (accepted.length > 1) {
    return {
      type: "error",
      rule: "RFC 7692 §5: a server accepts exactly one offer, with one element",
      reason: `the response has permessage-deflate ${accepted.length} times`,
    };
  }
  const parsed = parseDeflateParams(accepted[0], "response");
  if (!parsed.ok) return { type: "error", rule: parsed.rule, reason: parsed.reason };
  let firstProblem: NegotiationProblem | undefined;
  for (const [offerIndex, extension] of offers.entries()) {
    if (extension.name !== PERMESSAGE_DEFLATE) continue;
    const offer = parseDeflateParams(extension, "offer");
    if (!offer.ok) continue;
    const problem = acceptanceProblem(offer.params, parsed.params);
    if (!problem) {
      return { type: "accepted", offerIndex, agreed: agreedDeflate(offer.params, parsed.params) };
    }
    firstProblem ??= problem;
  }
  return {
    type: "error",
    ...(firstProblem ?? {
      rule: "RFC 6455 §9.1: a server accepts only an extension the client offered",
      reason: "the client offered no valid permessage-deflate",
    }),
  };
}

// ---------------------------------------------------------------------------
// DEFLATE distances (RFC 1951), read without inflating: Deno's zlib does not
// hold a peer to its window bits, so the decompressor checks them itself. It
// reads every message under 15 bits, so it decodes by table, as zlib does.

/** Codes up to this long decode by one table lookup; longer ones (zlib gives them to rare symbols) bit by bit. */
const TABLE_BITS = 9;

/**
 * A canonical Huffman code: how many codes of each length and the symbols in
 * code order (for decodeLong), and `table`, indexed by the next input bits
 * (`mask`): for the code they start with, `symbol << 4 | length`; 0 where that
 * code is longer than the table's bits, or invalid.
 */
interface Huffman {
  counts: Uint16Array;
  symbols: Uint16Array;
  table: Uint16Array;
  mask: number;
}

/** Each value's TABLE_BITS bits reversed: DEFLATE sends a code's first bit in the lowest. */
const REVERSED = Uint16Array.from({ length: 1 << TABLE_BITS }, (_, value) => {
  let reversed = 0;
  for (let bit = 0; bit < TABLE_BITS; bit++) {
    reversed |= ((value >> bit) & 1) << (TABLE_BITS - 1 - bit);
  }
  return reversed;
});

function huffman(lengths: ArrayLike<number>): Huffman {
  const counts = new Uint16Array(16);
  for (let i = 0; i < lengths.length; i++) counts[lengths[i]]++;
  counts[0] = 0;
  const offsets = new Uint16Array(16);
  for (let len = 1; len < 15; len++) offsets[len + 1] = offsets[len] + counts[len];
  const symbols = new Uint16Array(lengths.length);
  for (let i = 0; i < lengths.length; i++) if (lengths[i]) symbols[offsets[lengths[i]]++] = i;
  // Tables are built per block: one covers the longest code, TABLE_BITS at most.
  let longestCode = 15;
  while (longestCode > 0 && counts[longestCode] === 0) longestCode--;
  const tableBits = Math.min(longestCode, TABLE_BITS);
  const table = new Uint16Array(1 << tableBits);
  // Codes are assigned as decodeLong reads them: those of an over-subscribed
  // length that do not fit in its bits are never matched, and left out.
  for (let len = 1, first = 0, index = 0; len <= tableBits; len++) {
    const count = counts[len];
    for (let k = 0; k < count && first + k < 1 << len; k++) {
      const entry = (symbols[index + k] << 4) | len;
      // The entry fills every slot whose low `len` bits are the code.
      const start = REVERSED[(first + k) << (TABLE_BITS - len)];
      for (let slot = start; slot < table.length; slot += 1 << len) table[slot] = entry;
    }
    index += count;
    first = (first + count) << 1;
  }
  return { counts, symbols, table, mask: table.length - 1 };
}

/**
 * The table entry for the code at the start of `bits` (15 or more), decoded
 * one bit at a time as zlib's puff.c does: for the codes the table leaves out.
 */
function decodeLong({ counts, symbols }: Huffman, bits: number): number {
  let code = 0, first = 0, index = 0;
  for (let len = 1; len < 16; len++) {
    code |= (bits >> (len - 1)) & 1;
    const count = counts[len];
    if (code - first < count) return (symbols[index + code - first] << 4) | len;
    index += count;
    first = (first + count) << 1;
    code <<= 1;
  }
  return 0;
}

/** The entry (`symbol << 4 | length`) for the code at the start of `bits` (15 or more); 0 if invalid. */
function decode(code: Huffman, bits: number): number {
  return code.table[bits & code.mask] || decodeLong(code, bits);
}

/** Byte `at` of `data`; zero past the end, where the bits run out. */
function byteAt(data: Uint8Array, at: number): number {
  return at < data.length ? data[at] : 0;
}

/** The 17 bits or more from bit `pos` to the end of its byte and the 2 after, the first lowest (as DEFLATE packs them). */
function bitsAt(data: Uint8Array, pos: number): number {
  const at = pos >> 3;
  const bytes = byteAt(data, at) | (byteAt(data, at + 1) << 8) | (byteAt(data, at + 2) << 16);
  return bytes >> (pos & 7);
}

const FIXED_LITERALS = huffman(
  Array.from({ length: 288 }, (_, i) => i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8),
);
const FIXED_DISTANCES = huffman(new Array(30).fill(5));
/** Extra bits after length codes 257-287 (§3.2.5; 286 and 287 are invalid: zlib stops there, this reads none). */
const LENGTH_EXTRA = Uint8Array.from({ length: 31 }, (_, i) => i < 8 || i > 27 ? 0 : (i >> 2) - 1);
const DISTANCE_BASE = [
  1,
  2,
  3,
  4,
  5,
  7,
  9,
  13,
  17,
  25,
  33,
  49,
  65,
  97,
  129,
  193,
  257,
  385,
  513,
  769,
  1025,
  1537,
  2049,
  3073,
  4097,
  6145,
  8193,
  12289,
  16385,
  24577,
];
const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
/** Code length symbols 16, 17, 18 (§3.2.7): extra bits, and the repeat count they start at. */
const REPEAT_EXTRA = [2, 3, 7];
const REPEAT_BASE = [3, 3, 11];

/** Where the data stops parsing, as readSymbols returns it. */
const STOPPED = -1;

/**
 * A Huffman block's symbols from bit `pos` to its end-of-block code: the
 * longest distance in them, and the bit after them (or STOPPED). The hot
 * loop: its bit buffer is in locals, which V8 keeps in registers (in a
 * closure's variables or an object's fields it measured 40% slower).
 */
function readSymbols(
  data: Uint8Array,
  pos: number,
  literals: Huffman,
  distances: Huffman,
): { longest: number; next: number } {
  const end = data.length * 8;
  let longest = 0;
  // Starts at `pos`; restarts after the extra bits of an invalid distance code.
  restart: for (;;) {
    // `hold` has the next `held` bits, the next one lowest; `next` is the byte
    // after them, so (next << 3) - held is the position (past `end`: out of
    // data, and zeros in `hold`). At most 31 bits: `hold` stays a non-negative
    // int32, never a heap number.
    let hold = bitsAt(data, pos), held = 24 - (pos & 7), next = (pos >> 3) + 3;
    for (;;) {
      // 24 bits or more: a literal/length code (15 at most) and its extra bits (5).
      for (; held < 24; held += 8) hold |= byteAt(data, next++) << held;
      const entry = decode(literals, hold);
      hold >>= entry & 15;
      held -= entry & 15;
      if (entry === 0 || (next << 3) - held > end) return { longest, next: STOPPED };
      const symbol = entry >> 4;
      if (symbol < 256) continue;
      if (symbol === 256) return { longest, next: (next << 3) - held };
      const lengthExtra = LENGTH_EXTRA[symbol - 257];
      hold >>= lengthExtra;
      held -= lengthExtra;
      // Again: a distance code (15 at most), then, refilled, its extra bits (13).
      for (; held < 24; held += 8) hold |= byteAt(data, next++) << held;
      const distanceEntry = decode(distances, hold);
      hold >>= distanceEntry & 15;
      held -= distanceEntry & 15;
      if (distanceEntry === 0) return { longest, next: STOPPED };
      const code = distanceEntry >> 4;
      const extraBits = Math.max(0, (code >> 1) - 1);
      if (code >= 30) {
        // Invalid: zlib fails the message there, whatever is found after. Its
        // extra bits (up to 83, past HDIST's 32 codes), by the same pattern,
        // are stepped over.
        pos = (next << 3) - held + extraBits;
        if (pos > end) return { longest, next: STOPPED };
        continue restart;
      }
      for (; held < 24; held += 8) hold |= byteAt(data, next++) << held;
      const distance = DISTANCE_BASE[code] + (hold & ((1 << extraBits) - 1));
      hold >>= extraBits;
      held -= extraBits;
      if ((next << 3) - held > end) return { longest, next: STOPPED };
      if (distance > longest) longest = distance;
    }
  }
}

/**
 * A dynamic block's literal/length and distance codes (§3.2.7) from bit `pos`,
 * and the bit after them; undefined where the data stops parsing.
 */
function readDynamicCodes(
  data: Uint8Array,
  pos: number,
): { literals: Huffman; distances: Huffman; next: number } | undefined {
  const end = data.length * 8;
  const header = bitsAt(data, pos); // HLIT, HDIST, HCLEN
  if ((pos += 14) > end) return undefined;
  const literalCount = (header & 31) + 257, distanceCount = ((header >> 5) & 31) + 1;
  const codeLengths = new Uint8Array(19);
  for (let i = 0; i < ((header >> 10) & 15) + 4; i++) {
    codeLengths[CODE_LENGTH_ORDER[i]] = bitsAt(data, pos) & 7;
    if ((pos += 3) > end) return undefined;
  }
  const lengthCode = huffman(codeLengths);
  // zlib refuses a repeat past the counts; here its excess (137 at most) joins the distance code.
  const lengths = new Uint8Array(literalCount + distanceCount + 137);
  let count = 0;
  while (count < literalCount + distanceCount) {
    const entry = decode(lengthCode, bitsAt(data, pos));
    if (entry === 0 || (pos += entry & 15) > end) return undefined;
    const symbol = entry >> 4;
    if (symbol < 16) {
      lengths[count++] = symbol;
      continue;
    }
    const extraBits = REPEAT_EXTRA[symbol - 16];
    const repeatEnd = count + REPEAT_BASE[symbol - 16] +
      (bitsAt(data, pos) & ((1 << extraBits) - 1));
    if ((pos += extraBits) > end) return undefined;
    // 16 repeats the previous length (none yet: zero); 17 and 18 repeat zero.
    lengths.fill(symbol === 16 && count > 0 ? lengths[count - 1] : 0, count, repeatEnd);
    count = repeatEnd;
  }
  return {
    literals: huffman(lengths.subarray(0, literalCount)),
    distances: huffman(lengths.subarray(literalCount, count)),
    next: pos,
  };
}

/**
 * The longest back-reference distance in raw DEFLATE data, BFINAL blocks
 * included (§7.2.1 lets blocks follow them). Where the data stops parsing,
 * the distances so far: zlib reports the error itself.
 */
export function longestDistance(data: Uint8Array): number {
  const end = data.length * 8;
  let pos = 0, longest = 0;
  while (pos < end) {
    const header = bitsAt(data, pos); // BFINAL (more blocks may follow it), BTYPE
    if ((pos += 3) > end) return longest;
    const type = (header >> 1) & 3;
    if (type === 0) {
      // LEN and NLEN (zlib checks it) from the next byte boundary, then LEN bytes.
      pos = (pos + 7) & ~7;
      const length = bitsAt(data, pos) & 0xffff;
      if ((pos += 32) > end) return longest;
      pos += length * 8;
      continue;
    }
    if (type === 3) return longest;
    let literals = FIXED_LITERALS, distances = FIXED_DISTANCES;
    if (type === 2) {
      const codes = readDynamicCodes(data, pos);
      if (!codes) return longest;
      ({ literals, distances, next: pos } = codes);
    }
    const block = readSymbols(data, pos, literals, distances);
    if (block.longest > longest) longest = block.longest;
    if (block.next === STOPPED) return longest;
    // A BFINAL block is padded to a byte boundary; the next block starts there (§7.2.1).
    pos = header & 1 ? (block.next + 7) & ~7 : block.next;
  }
  return longest;
}
