/**
 * The strict reference WebSocket server of wsconform's own tests: an RFC 6455
 * echo server over raw TCP that enforces every rule the RFC lets a server
 * enforce. Named flaws each break exactly one rule, so the suite's tests can
 * show that every case group can fail as well as pass.
 *
 *   deno run --allow-net tests/peers/strict_server.ts --port 9001 --flaw no-pong
 */

import { parseArgs } from "node:util";
import {
  closePayload,
  encodeFrame,
  encodeFrames,
  type FrameHeader,
  FrameParser,
  isControlOpcode,
  isKnownOpcode,
  isValidCloseCode,
  minimalLengthForm,
  Opcode,
} from "../../harness/frame.ts";
import {
  acceptFor,
  headerTokens,
  headerValues,
  type HttpHead,
  parseHead,
  TOKEN,
} from "../../harness/handshake.ts";
import { isValidUtf8, Utf8Validator } from "../../harness/utf8.ts";
import {
  type AgreedDeflate,
  answerDeflateOffers,
  MessageCompressor,
  MessageDecompressor,
  parseDeflateParams,
  PERMESSAGE_DEFLATE,
  type ServerDeflateWishes,
} from "../../harness/deflate.ts";
import { formatExtensions, parseExtensions } from "../../harness/server_handshake.ts";

/**
 * The flaws by what they break; each family is proven by the tests of the
 * groups that check those rules.
 */
export const FLAW_FAMILIES = {
  /** Rules Autobahn's groups check (tests/conformance_test.ts). */
  autobahn: [
    "truncate-long-echo",
    "no-pong",
    "accept-rsv",
    "accept-reserved-opcodes",
    "accept-fragmented-control",
    "no-utf8-check",
    "no-fail-fast",
    "accept-invalid-close-codes",
    "no-close-reply",
    "keep-tcp-open",
    "corrupt-large-echo",
    "echo-fragmented-as-binary",
    "close-code-1000-on-error",
    "drop-on-error",
    "oversize-pong",
    "fragmented-pong",
    "reserved-opcode-pong",
  ],
  /** Opening handshake (§4.2.1, §4.2.2, §4.4, §9, RFC 7692 §5). */
  handshake: [
    "accept-any-version",
    "accept-no-version",
    "accept-bad-key",
    "accept-any-method",
    "accept-no-host",
    "accept-no-upgrade-token",
    "strict-token-match",
    "reject-query-string",
    "select-unoffered-protocol",
    "accept-unknown-extension",
    "ignore-early-frames",
    "no-version-list",
  ],
  /** Masking and header encodings (§5.1-§5.3). */
  masking: [
    "accept-unmasked",
    "reject-zero-mask",
    "header-needs-one-read",
    "reject-non-minimal-lengths",
    "accept-msb-length",
  ],
  /** What the server sends (§5.1, §5.2, §7.4). */
  serverOutput: [
    "mask-server-frames",
    "non-minimal-server-lengths",
    "rsv-on-server-frames",
    "send-invalid-close-code",
    "data-after-close",
  ],
  /** Close, limits, keepalive (§5.5.1, §7, §10.4). */
  close: [
    "refuse-1012-1014",
    "echo-1015",
    "accept-invalid-close-reason",
    "reject-125-close",
    "process-data-after-close",
    "limit-wrong-code",
    "slow-tcp-close",
    "idle-ping",
    "idle-close",
    "empty-close-on-bad-close",
  ],
  /** permessage-deflate (RFC 7692), under option deflate: negotiation, RSV1, the codec. */
  deflate: [
    "deflate-window-over-offer",
    "deflate-unoffered-client-bits",
    "deflate-duplicate-param",
    "deflate-invalid-value",
    "deflate-two-elements",
    "deflate-server-no-context-takeover-dropped",
    "deflate-accept-invalid-offer",
    "deflate-rsv1-on-control-accepted",
    "deflate-rsv1-on-continuation-accepted",
    "deflate-uncompressed-refused",
    "deflate-bad-inflate-ignored",
    "deflate-inflated-size-unlimited",
    "deflate-context-takeover-despite-agreement",
    "deflate-window-over-agreed",
    "deflate-rsv1-on-continuation-sent",
  ],
} as const;

export const FLAWS = Object.values(FLAW_FAMILIES).flat();

/** A deliberate deviation from RFC 6455; see FLAWS. */
export type Flaw = (typeof FLAWS)[number];

export interface StrictServerOptions {
  flaws?: Flaw[];
  /** Subprotocols the server may select; default none. */
  protocols?: string[];
  /**
   * Refuse (400) a handshake that offers none of `protocols`, as a server
   * serving only its own subprotocol may (§4.2.2 lets a server refuse).
   */
  requireProtocol?: boolean;
  /** Largest message accepted, in bytes (default 64 MiB); a longer one fails with 1009. */
  maxMessage?: number;
  /** Largest opening handshake head accepted, in bytes (default 8 KiB); a longer one gets 431. */
  maxHead?: number;
  /**
   * The close code for failing the connection on a protocol error (default 1002);
   * 1003, 1009 and 1011 are other codes servers fail with, as §7.1.7 lets them.
   */
  protocolErrorCode?: number;
  /**
   * The close code for failing the connection on invalid UTF-8 (default 1007);
   * Chromium fails with 1002, as §7.1.7 lets it (§8.1 asks only for the failing).
   */
  invalidUtf8Code?: number;
  /**
   * The close code answering a client's valid close frame (default: the code it
   * carried, echoed; none for an empty one). §5.5.1 says only that the reply
   * "typically echos" that code: 1000, or any valid code, is as legal; 1005 breaks §7.4.1.
   */
  closeReplyCode?: number;
  /**
   * WebSocket versions understood besides 13 (default none). ["8"]: the draft
   * version 8 too, whose framing is 13's, as many servers understand on purpose
   * (§4.2.2 item 4 refuses only a version the server does not understand).
   */
  versions?: string[];
  /**
   * The status refusing a version not understood (default 426, §4.2.2's example;
   * 400 is as right); either lists the versions understood (§4.4).
   */
  versionRefusalStatus?: number;
  /** The status refusing a malformed handshake (default 400; §4.2.1: an error code). */
  badHandshakeStatus?: number;
  /**
   * The status answering a request that asks for no upgrade to WebSocket (no
   * websocket token in Upgrade, or no Upgrade token in Connection); default 400.
   * 200 or 404 answer it as an ordinary HTTP server does: there is no handshake to refuse.
   */
  plainHttpStatus?: number;
  /** Port to listen on; default 0, any free port. */
  port?: number;
  /**
   * A slow single-threaded server: each message holds the server's one thread
   * busy this long per MiB before its echo, delaying every connection (default 0).
   */
  busyMsPerMiB?: number;
  /** Serve one connection at a time; the next waits in the accept queue (default false). */
  serial?: boolean;
  /**
   * The messages echoed (default "all"): "text" echoes only text messages, as a
   * text-only server does; "none" echoes nothing, as a chat server. The rest of
   * the protocol stays strict.
   */
  echo?: "all" | "text" | "none";
  /**
   * Hold each echo until the header of the client's next frame has passed the checks
   * (or HELD_ECHO_MS went by with none), as a server reading ahead before it answers
   * may: a protocol error in that frame fails the connection with the echo unsent.
   * The RFC ranks neither this nor echoing first (default false); it makes the "fail
   * before echoing" outcome of 3.3, 3.4, 4.1.5 and 4.2.5 reproducible.
   */
  echoAfterNextHeader?: boolean;
  /**
   * Accept permessage-deflate (RFC 7692): true, or what the server would like
   * (each used only where the offer lets it). Default off: every offer is
   * declined. On, every echo is compressed, whether the message was or not.
   */
  deflate?: boolean | ServerDeflateWishes;
}

export interface StrictServer {
  /** ws://127.0.0.1:PORT/ */
  url: string;
  port: number;
  /** Stops listening, closes every open connection and waits for all of them. */
  close(): Promise<void>;
}

const MiB = 1024 * 1024;
/** A client must complete its opening handshake within this time. */
const HANDSHAKE_MS = 5000;
/** After failing the connection, how long to wait for the client's close frame. */
const CLOSE_WAIT_MS = 1000;
/** After our FIN, how long to wait for the client's before closing anyway. */
const LINGER_MS = 1000;
/** An open connection with no traffic for this long is dropped, so no wait is unbounded. */
const IDLE_MS = 60_000;
/** Flaw idle-ping: ping a client silent for this long, and again as long as it stays silent. */
const IDLE_PING_MS = 1000;
/** Flaw idle-close: close (1001) a connection silent for this long. */
const IDLE_CLOSE_MS = 2000;
/** Flaw slow-tcp-close: delay between the closing handshake and closing TCP. */
const SLOW_CLOSE_MS = 3000;
/** Option echoAfterNextHeader: how long an echo waits for the client's next frame at most. */
const HELD_ECHO_MS = 2000;
/** Flaw process-data-after-close: how long data frames after the client's close are still echoed. */
const AFTER_CLOSE_GRACE_MS = 100;
/** The headers of a valid request as RFC 6455 §4.1 writes them (flaw strict-token-match). */
const CANONICAL: Record<string, string | undefined> = {
  Host: undefined,
  Upgrade: "websocket",
  Connection: "Upgrade",
  "Sec-WebSocket-Key": undefined,
  "Sec-WebSocket-Version": undefined,
};
const READ_SIZE = 64 * 1024;
const SERVER_HEADER = "Server: wsconform-strict";
/** base64 of exactly 16 bytes, with canonical (zero) padding bits (RFC 4648 §3.5). */
const KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;
const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
};

const encoder = new TextEncoder();

interface Config {
  flaws: ReadonlySet<Flaw>;
  protocols: readonly string[];
  requireProtocol: boolean;
  versions: readonly string[];
  versionRefusalStatus: number;
  badHandshakeStatus: number;
  plainHttpStatus: number;
  maxMessage: number;
  maxHead: number;
  protocolErrorCode: number;
  invalidUtf8Code: number;
  closeReplyCode?: number;
  echo: "all" | "text" | "none";
  busyMsPerMiB: number;
  echoAfterNextHeader: boolean;
  deflate: ServerDeflateWishes | undefined;
}

/** A close code and a reason for failing the connection. */
type Failure = [code: number, reason: string];

interface Message {
  opcode: number;
  /** Frame payloads, concatenated once when the message ends. */
  chunks: Uint8Array[];
  size: number;
  frames: number;
  utf8: Utf8Validator;
  /** RSV1 on its first frame: permessage-deflate compressed it (RFC 7692 §6). */
  compressed: boolean;
}

/** RSV1 in FrameHeader.rsv (RSV1 RSV2 RSV3 as bits 2 1 0). */
const RSV1 = 4;

/** A connection's permessage-deflate codecs, once negotiated. */
interface DeflateCodecs {
  compressor: MessageCompressor;
  decompressor: MessageDecompressor;
}

/**
 * - connecting: reading the opening handshake.
 * - open: exchanging messages.
 * - closing: we failed the connection and sent a close frame; waiting for the client's.
 * - closed: the closing handshake is over (or never happened); only TCP teardown remains.
 */
type State = "connecting" | "open" | "closing" | "closed";

class Connection {
  state: State = "connecting";
  /** Settles when the connection is gone; never rejects. */
  readonly done: Promise<void>;
  #conn: Deno.TcpConn;
  #config: Config;
  #head: Uint8Array = new Uint8Array(0);
  #parser: FrameParser;
  /** The data message being received, from its first frame's header on. */
  #message: Message | undefined;
  /** The frame in progress whose header was already checked (checks run once per frame). */
  #frame: FrameHeader | undefined;
  /** The frame in progress is to be ignored (only under some flaws). */
  #ignore = false;
  /** Payload bytes of the frame in progress already given to the UTF-8 validator. */
  #fed = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #dropped = false;
  /** Writes in progress, chained so that timer-driven frames never interleave with others. */
  #writing: Promise<void> = Promise.resolve();
  /** The next deadline closes TCP gracefully even though the state is "closed" (slow-tcp-close). */
  #shutdownOnDeadline = false;
  /** Flaw accept-msb-length: the bytes the parser still holds (and maybe more before them). */
  #recent: Uint8Array[] | undefined;
  /** Flaw process-data-after-close: the client's close code, while its reply is held back. */
  #heldClose: { code: number | undefined } | undefined;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  /** Flaw idle-ping: the pinging interval, and when the client last sent anything. */
  #pinger: ReturnType<typeof setInterval> | undefined;
  #lastRead = Date.now();
  /** Option echoAfterNextHeader: echoes waiting for the client's next frame header, and their bound. */
  #heldEchoes: (() => Promise<void>)[] = [];
  #heldEchoTimer: ReturnType<typeof setTimeout> | undefined;
  /** Option deflate: the codecs, when the client's offer was accepted. */
  #deflate: DeflateCodecs | undefined;
  /** How long an open connection may stay silent. */
  get #idleMs(): number {
    return this.#has("idle-close") ? IDLE_CLOSE_MS : IDLE_MS;
  }

  constructor(conn: Deno.TcpConn, config: Config) {
    this.#conn = conn;
    this.#config = config;
    this.#parser = new FrameParser({ maxPayload: config.maxMessage });
    if (config.flaws.has("accept-msb-length")) this.#recent = [];
    try {
      conn.setNoDelay(true); // pongs and close frames are small and must not wait
    } catch { /* the client may already be gone */ }
    this.done = this.#run();
  }

  /** Drops TCP at once (server shutdown). */
  abort(): void {
    this.#drop();
  }

  #has(flaw: Flaw): boolean {
    return this.#config.flaws.has(flaw);
  }

  async #run(): Promise<void> {
    this.#arm(HANDSHAKE_MS);
    try {
      while (!this.#dropped) {
        // A fresh buffer per read: the frame parser keeps references to what it is given.
        const buffer = new Uint8Array(READ_SIZE);
        const n = await this.#conn.read(buffer);
        if (n === null) break; // the client closed TCP
        this.#lastRead = Date.now();
        if (this.state === "open") this.#arm(this.#idleMs);
        await this.#onBytes(buffer.subarray(0, n));
      }
    } catch (error) {
      // Resets, broken pipes and our own close() surface here; they just end the connection.
      if (!isIoError(error)) console.error("strict_server:", error);
    } finally {
      this.#drop();
    }
  }

  // --- timing -------------------------------------------------------------

  /** Sets the one deadline of the connection, replacing the previous one. */
  #arm(ms: number): void {
    clearTimeout(this.#timer);
    if (!this.#dropped) this.#timer = setTimeout(() => this.#onDeadline(), ms);
  }

  #onDeadline(): void {
    // Flaw idle-close: the RFC lets a server close an idle connection; the strict one waits long.
    if (this.state === "open" && this.#has("idle-close")) {
      this.#fail([1001, "idle"]).catch(() => this.#drop());
      return;
    }
    // The client never answered our close frame: close TCP from our side anyway.
    const shutdown = this.state === "closing" || this.#shutdownOnDeadline;
    this.#shutdownOnDeadline = false;
    if (shutdown) this.#shutdown().catch(() => this.#drop());
    else this.#drop();
  }

  // --- I/O helpers --------------------------------------------------------

  /** Writes bytes after any write in progress; `rearm` false leaves the idle deadline alone. */
  #write(bytes: Uint8Array, rearm = true): Promise<void> {
    const write = this.#writing.then(async () => {
      // A write blocked by a client that does not read ends with the deadline, which closes TCP.
      for (let written = 0; written < bytes.length;) {
        written += await this.#conn.write(bytes.subarray(written));
        if (rearm && this.state === "open") this.#arm(this.#idleMs);
      }
    });
    this.#writing = write.catch(() => {});
    return write;
  }

  /** Sends one unmasked frame, FIN set, minimal length form, RSV clear (unless flawed). */
  #send(opcode: number, payload: Uint8Array, rsv = 0, rearm = true): Promise<void> {
    return this.#write(
      encodeFrame({
        opcode,
        payload,
        rsv,
        // Flaw mask-server-frames: a server must not mask (§5.1).
        maskKey: this.#has("mask-server-frames")
          ? crypto.getRandomValues(new Uint8Array(4))
          : undefined,
        // Flaw non-minimal-server-lengths: the minimal form is required (§5.2).
        lengthForm: this.#has("non-minimal-server-lengths") ? 64 : undefined,
      }),
      rearm,
    );
  }

  /**
   * Closes TCP gracefully: FIN now (the server closes first, §7.1.1), then
   * drain until the client's FIN, so unread data never turns our close into a reset.
   */
  async #shutdown(): Promise<void> {
    this.state = "closed";
    this.#arm(LINGER_MS);
    await this.#conn.closeWrite();
  }

  /** Closes TCP at once, unread data or not. */
  #drop(): void {
    if (this.#dropped) return;
    this.#dropped = true;
    this.state = "closed";
    clearTimeout(this.#timer);
    clearTimeout(this.#graceTimer);
    clearInterval(this.#pinger);
    clearTimeout(this.#heldEchoTimer);
    this.#deflate?.compressor.close();
    this.#deflate?.decompressor.close();
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  // --- input --------------------------------------------------------------

  async #onBytes(bytes: Uint8Array): Promise<void> {
    switch (this.state) {
      case "connecting":
        return await this.#onHandshakeBytes(bytes);
      case "open":
      case "closing":
        return await this.#onFrameBytes(bytes);
      case "closed":
        return; // teardown: whatever the client still sends is ignored
    }
  }

  // --- opening handshake (§4.2) -------------------------------------------

  async #onHandshakeBytes(bytes: Uint8Array): Promise<void> {
    this.#head = concat([this.#head, bytes], this.#head.length + bytes.length);
    const { maxHead } = this.#config;
    const parsed = parseHead(this.#head.subarray(0, maxHead), maxHead + 1);
    if (parsed.type === "incomplete") {
      if (this.#head.length >= maxHead) {
        await this.#reject({ status: 431, reason: `HTTP head longer than ${maxHead} bytes` });
      }
      return;
    }
    if (parsed.type === "error") return await this.#reject({ status: 400, reason: parsed.reason });
    const verdict = checkRequest(parsed.head, this.#config);
    if ("status" in verdict) return await this.#reject(verdict);
    const lines = [
      "HTTP/1.1 101 Switching Protocols",
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Accept: ${await acceptFor(verdict.key)}`,
    ];
    if (verdict.protocol !== undefined) lines.push(`Sec-WebSocket-Protocol: ${verdict.protocol}`);
    if (verdict.extension !== undefined) {
      lines.push(`Sec-WebSocket-Extensions: ${verdict.extension}`);
    }
    if (verdict.deflate) this.#deflate = this.#deflateCodecs(verdict.deflate);
    lines.push(SERVER_HEADER);
    await this.#write(encodeHead(lines));
    this.state = "open";
    this.#arm(this.#idleMs);
    if (this.#has("idle-ping")) {
      // Flaw idle-ping: the RFC lets a server ping (§5.5.2); the strict one never does.
      let lastPing = 0;
      this.#pinger = setInterval(() => {
        const now = Date.now();
        if (this.state !== "open" || now - Math.max(this.#lastRead, lastPing) < IDLE_PING_MS) {
          return;
        }
        lastPing = now;
        this.#send(Opcode.Ping, encoder.encode("idle"), 0, false).catch(() => this.#drop());
      }, IDLE_PING_MS / 10);
    }
    // Bytes after the head in the same read are already frames
    // (flaw ignore-early-frames: they are thrown away).
    const rest = this.#head.subarray(parsed.head.length);
    this.#head = new Uint8Array(0);
    if (rest.length > 0 && !this.#has("ignore-early-frames")) await this.#onFrameBytes(rest);
  }

  /** The codecs for what the 101 agreed (RFC 7692 §7.1); some flaws do otherwise. */
  #deflateCodecs(agreed: AgreedDeflate): DeflateCodecs {
    return {
      compressor: new MessageCompressor({
        // Flaw deflate-window-over-agreed: never a window over server_max_window_bits (§7.1.2.1).
        windowBits: this.#has("deflate-window-over-agreed") ? 15 : agreed.serverMaxWindowBits,
        // Flaw deflate-context-takeover-despite-agreement: server_no_context_takeover
        // agreed means each message starts with an empty window (§7.1.1.1).
        contextTakeover: !agreed.serverNoContextTakeover ||
          this.#has("deflate-context-takeover-despite-agreement"),
      }),
      decompressor: new MessageDecompressor({
        windowBits: agreed.clientMaxWindowBits,
        contextTakeover: !agreed.clientNoContextTakeover,
        // Flaw deflate-inflated-size-unlimited: the limit binds the message inflated, not
        // only its compressed bytes on the wire, or a small bomb gets through (§7.4.1's 1009).
        maxMessageBytes: this.#has("deflate-inflated-size-unlimited")
          ? Number.MAX_SAFE_INTEGER
          : this.#config.maxMessage,
      }),
    };
  }

  async #reject(reject: Reject): Promise<void> {
    const body = encoder.encode(reject.reason + "\n");
    const lines = [
      `HTTP/1.1 ${reject.status} ${STATUS_TEXT[reject.status]}`,
      ...(reject.headers ?? ["Connection: close"]),
      SERVER_HEADER,
      "Content-Type: text/plain; charset=utf-8",
      `Content-Length: ${body.length}`,
    ];
    await this.#write(encodeHead(lines, body));
    await this.#shutdown();
  }

  // --- frames (§5) --------------------------------------------------------

  async #onFrameBytes(bytes: Uint8Array): Promise<void> {
    const parser = this.#parser;
    if (
      this.#has("header-needs-one-read") && this.state === "open" &&
      parser.pendingHeader === undefined && parser.buffered > 0
    ) {
      // Flaw header-needs-one-read: the previous read ended inside a frame header.
      return this.#drop();
    }
    parser.push(bytes);
    this.#recent?.push(bytes);
    try {
      await this.#parseFrames();
    } finally {
      this.#trimRecent();
    }
  }

  async #parseFrames(): Promise<void> {
    while (this.state === "open" || this.state === "closing") {
      const held = this.#parser.buffered;
      const event = this.#parser.next();
      if (event === undefined) {
        if (this.state === "open") await this.#onPartialFrame();
        return;
      }
      if (event.type === "oversize" && this.#recent && event.header.length >= 1n << 63n) {
        this.#restartWithoutMsb(held);
        continue;
      }
      if (this.state === "closing") {
        // After failing, only the client's close frame matters (§7.1.7).
        if (event.type === "frame" && event.header.opcode === Opcode.Close) {
          await this.#finishClosingHandshake();
        }
        continue;
      }
      if (event.type === "oversize") {
        // The parser stops here, so a close reply could not be parsed any more.
        // The header check says why: 1002 for a 64-bit length with the MSB set, else 1009.
        return await this.#fail(this.#begin(event.header) ?? this.#tooBig("frame too big"), true);
      }
      await this.#onFrame(event.header, event.payload);
    }
  }

  /**
   * Flaw accept-msb-length: the parser stopped at a 64-bit length with the MSB
   * set; parse again from that header (the last `held` bytes seen), MSB cleared.
   */
  #restartWithoutMsb(held: number): void {
    const recent = this.#recent!;
    const all = concat(recent, recent.reduce((n, chunk) => n + chunk.length, 0));
    const rest = all.slice(all.length - held);
    rest[2] &= 0x7f; // the first byte of the 64-bit length
    this.#parser = new FrameParser({ maxPayload: this.#config.maxMessage });
    this.#parser.push(rest);
    this.#recent = [rest];
  }

  /** Flaw accept-msb-length: keeps only the chunks that hold bytes the parser still holds. */
  #trimRecent(): void {
    const recent = this.#recent;
    if (!recent) return;
    let total = recent.reduce((n, chunk) => n + chunk.length, 0);
    while (recent.length > 0 && total - recent[0].length >= this.#parser.buffered) {
      total -= recent.shift()!.length;
    }
  }

  /** A message over the limit: 1009 (§7.4.1); flaw limit-wrong-code says 1002. */
  #tooBig(reason: string): Failure {
    return [this.#has("limit-wrong-code") ? 1002 : 1009, reason];
  }

  /** Acts on a frame not yet complete: its header, and its text bytes so far (fail fast, §8.1). */
  async #onPartialFrame(): Promise<void> {
    const header = this.#parser.pendingHeader;
    if (header === undefined) return;
    const failure = this.#begin(header) ?? this.#feedUtf8(this.#parser.partialPayload!);
    // The rest of this frame may never come, and whatever comes next would be
    // parsed as its payload: the client's close frame could not be recognised.
    if (failure) await this.#fail(failure, true);
  }

  async #onFrame(header: FrameHeader, payload: Uint8Array): Promise<void> {
    const failure = this.#begin(header) ?? this.#feedUtf8(payload);
    // A close frame that fails the header checks (e.g. 126 bytes) is still the client's close.
    if (failure) return await this.#fail(failure, header.opcode === Opcode.Close);
    this.#frame = undefined;
    if (this.#ignore) return;
    if (this.#heldClose && isControlOpcode(header.opcode)) return; // only data, see #onClose
    switch (header.opcode) {
      case Opcode.Ping:
        // Answered at once, even between the frames of a fragmented message (§5.4, §5.5.2).
        if (!this.#has("no-pong")) await this.#pong(payload);
        return;
      case Opcode.Pong:
        return; // unsolicited pongs are ignored (§5.5.3)
      case Opcode.Close:
        return await this.#onClose(payload);
    }
    const message = this.#message!;
    message.frames++;
    if (payload.length > 0) {
      message.chunks.push(payload);
      message.size += payload.length;
    }
    if (header.fin) {
      this.#message = undefined;
      await this.#deliver(message);
    }
  }

  /**
   * Checks a frame header as soon as it is complete, before its payload
   * arrives, and starts a message on a text or binary frame. Runs once per
   * frame, however many reads its payload takes.
   */
  #begin(header: FrameHeader): Failure | undefined {
    if (header === this.#frame) return undefined;
    const verdict = this.#check(header);
    if (Array.isArray(verdict)) return verdict;
    this.#sendHeldEchoes();
    this.#frame = header;
    this.#ignore = verdict === "ignore";
    this.#fed = 0;
    if (!this.#ignore && (header.opcode === Opcode.Text || header.opcode === Opcode.Binary)) {
      this.#message = {
        opcode: header.opcode,
        chunks: [],
        size: 0,
        frames: 0,
        utf8: new Utf8Validator(),
        compressed: this.#deflate !== undefined && (header.rsv & RSV1) !== 0,
      };
    }
    return undefined;
  }

  #check(header: FrameHeader): Failure | "ok" | "ignore" {
    if (!header.masked && !this.#has("accept-unmasked")) {
      return [1002, "client frame not masked"]; // §5.1
    }
    if (header.masked && this.#has("reject-zero-mask") && header.maskKey!.every((b) => b === 0)) {
      return [1002, "all-zero masking key"]; // flaw: any 32-bit key is valid (§5.3)
    }
    if (header.rsv !== 0 && !this.#has("accept-rsv") && !this.#rsv1Allowed(header)) {
      // §5.2; RFC 7692 §6.1: RSV1 on a message's first frame only.
      return [
        1002,
        this.#deflate
          ? "RSV bits set other than RSV1 on a message's first frame"
          : "RSV bits set without a negotiated extension",
      ];
    }
    if (
      this.#has("reject-non-minimal-lengths") &&
      header.lengthForm !== minimalLengthForm(header.length)
    ) {
      return [1002, "non-minimal payload length"]; // flaw: §5.2 binds senders only
    }
    if (header.length >= 1n << 63n) {
      return [1002, "64-bit payload length with the most significant bit set"]; // §5.2
    }
    if (!isKnownOpcode(header.opcode)) {
      if (this.#has("accept-reserved-opcodes")) return "ignore";
      return [1002, `reserved opcode ${header.opcode}`]; // §5.2
    }
    if (isControlOpcode(header.opcode)) {
      // Flaw oversize-pong: an oversize ping is answered (§5.5: it must fail the connection).
      const answered = header.opcode === Opcode.Ping && this.#has("oversize-pong");
      if (header.length > 125n && !answered) {
        return [1002, "control frame payload over 125 bytes"]; // §5.5
      }
      if (!header.fin && !this.#has("accept-fragmented-control")) {
        return [1002, "fragmented control frame"]; // §5.5
      }
      return "ok";
    }
    const message = this.#message;
    if (header.opcode === Opcode.Continuation && message === undefined) {
      if (this.#has("accept-fragmented-control")) return "ignore";
      return [1002, "continuation frame with no message to continue"]; // §5.4
    }
    if (header.opcode !== Opcode.Continuation && message !== undefined) {
      return [1002, "new data frame inside a fragmented message"]; // §5.4
    }
    if (
      this.#has("deflate-uncompressed-refused") && this.#deflate &&
      header.opcode !== Opcode.Continuation && header.rsv === 0
    ) {
      return [1002, "message not compressed"]; // flaw: RFC 7692 §6 lets a message go uncompressed
    }
    // A compressed message is held to the limit on the wire as well as inflated.
    if ((message?.size ?? 0) + Number(header.length) > this.#config.maxMessage) {
      return this.#tooBig(`message over ${this.#config.maxMessage} bytes`); // §7.4.1
    }
    return "ok";
  }

  /** RSV1 marks a compressed message on its first frame (RFC 7692 §6, §6.1). */
  #rsv1Allowed(header: FrameHeader): boolean {
    if (header.rsv !== RSV1 || !this.#deflate) return false;
    switch (header.opcode) {
      case Opcode.Text:
      case Opcode.Binary:
        return true;
      case Opcode.Continuation:
        // Flaw deflate-rsv1-on-continuation-accepted: §6.1 forbids RSV1 on a continuation frame.
        return this.#has("deflate-rsv1-on-continuation-accepted");
      default:
        // Flaw deflate-rsv1-on-control-accepted: §6.1 forbids RSV1 on a control frame.
        return isControlOpcode(header.opcode) && this.#has("deflate-rsv1-on-control-accepted");
    }
  }

  /**
   * Validates the new bytes of the frame in progress (`payload` is all of it so
   * far) when it belongs to a text message, so an invalid byte fails the
   * connection before the rest of the frame or message arrives.
   */
  #feedUtf8(payload: Uint8Array): Failure | undefined {
    const message = this.#message;
    const failFast = !this.#has("no-utf8-check") && !this.#has("no-fail-fast");
    // A compressed message's text is checked once inflated (#deliver).
    const text = message?.opcode === Opcode.Text && !message.compressed &&
      !isControlOpcode(this.#frame!.opcode);
    if (!failFast || this.#ignore || !text || payload.length === this.#fed) return undefined;
    const valid = message.utf8.push(payload.subarray(this.#fed));
    this.#fed = payload.length;
    return valid ? undefined : [1007, "invalid UTF-8 in a text message"];
  }

  /** Answers a ping (§5.5.2); some flaws send what no server may send (§5.2, §5.5). */
  async #pong(payload: Uint8Array): Promise<void> {
    if (this.#has("fragmented-pong")) {
      // Flaw fragmented-pong: control frames must not be fragmented (§5.5).
      const half = payload.length >> 1;
      return await this.#write(encodeFrames([
        { opcode: Opcode.Pong, fin: false, payload: payload.subarray(0, half) },
        { opcode: Opcode.Continuation, payload: payload.subarray(half) },
      ]));
    }
    // Flaw reserved-opcode-pong: 0xB is reserved for further control frames (§5.2).
    await this.#send(this.#has("reserved-opcode-pong") ? 0xb : Opcode.Pong, payload);
  }

  /** Echoes a complete message with its type, as one frame. */
  async #deliver(message: Message): Promise<void> {
    const busyUntil = performance.now() + this.#config.busyMsPerMiB * message.size / MiB;
    while (performance.now() < busyUntil) { /* the one thread works on the message */ }
    let data = concat(message.chunks, message.size);
    if (message.compressed) {
      const inflated = this.#deflate!.decompressor.decompress(data);
      if (!inflated.ok) {
        // Flaw deflate-bad-inflate-ignored: data that does not inflate fails the
        // connection (RFC 7692 §7.2.2); flawed, the message is dropped, and with
        // the decompressor lost, every compressed one after it.
        const ignored = inflated.code === "inflate-failed" || inflated.code === "closed";
        if (ignored && this.#has("deflate-bad-inflate-ignored")) return;
        // A back reference past the agreed window (§7.1.2.2) is bad data too: 1007,
        // as the suite's endpoint and the strict client answer.
        return await this.#fail(
          inflated.code === "too-big" ? this.#tooBig(inflated.reason) : [1007, inflated.reason],
        );
      }
      data = inflated.data;
    }
    if (message.opcode === Opcode.Text && !this.#has("no-utf8-check")) {
      // Fail-fast validation already saw every byte (unless compressed); it remains to
      // end on a code point boundary.
      const valid = this.#has("no-fail-fast") || message.compressed
        ? isValidUtf8(data)
        : message.utf8.complete;
      if (!valid) return await this.#fail([1007, "text message is not valid UTF-8"]);
    }
    const { echo } = this.#config;
    if (echo === "none" || (echo === "text" && message.opcode !== Opcode.Text)) return;
    if (this.#has("truncate-long-echo") && data.length > 125) data = data.subarray(0, 125);
    if (this.#has("corrupt-large-echo") && data.length >= MiB) data[data.length - 1] ^= 0xff;
    const binary = this.#has("echo-fragmented-as-binary") && message.frames > 1;
    // Flaw rsv-on-server-frames: RSV1 with no extension negotiated (§5.2).
    const rsv = this.#has("rsv-on-server-frames") ? 4 : 0;
    if (this.#config.echoAfterNextHeader) {
      this.#heldEchoes.push(() => this.#echo(binary ? Opcode.Binary : message.opcode, data, rsv));
      this.#heldEchoTimer ??= setTimeout(() => this.#sendHeldEchoes(), HELD_ECHO_MS);
      return;
    }
    await this.#echo(binary ? Opcode.Binary : message.opcode, data, rsv);
  }

  /**
   * Sends an echo as one frame; compressed, RSV1 set, when deflate was agreed
   * (RFC 7692 §6), compressing only now so the window follows the sending order.
   */
  #echo(opcode: number, data: Uint8Array, rsv: number): Promise<void> {
    if (!this.#deflate) return this.#send(opcode, data, rsv);
    const payload = this.#deflate.compressor.compress(data);
    if (this.#has("deflate-rsv1-on-continuation-sent")) {
      // Flaw: the echo in two frames, RSV1 on both; §6.1 allows it on the first only.
      const half = payload.length >> 1;
      return this.#write(encodeFrames([
        { opcode, fin: false, rsv: RSV1, payload: payload.subarray(0, half) },
        { opcode: Opcode.Continuation, rsv: RSV1, payload: payload.subarray(half) },
      ]));
    }
    return this.#send(opcode, payload, RSV1);
  }

  /** Option echoAfterNextHeader: the echoes held so far go out, in order. */
  #sendHeldEchoes(): void {
    clearTimeout(this.#heldEchoTimer);
    this.#heldEchoTimer = undefined;
    for (const echo of this.#heldEchoes.splice(0)) echo().catch(() => this.#drop());
  }

  // --- closing (§5.5.1, §7) -----------------------------------------------

  /** A close frame from the client while open: validate it, echo its code, close TCP. */
  async #onClose(payload: Uint8Array): Promise<void> {
    if (this.#heldClose) return; // flaw process-data-after-close: a second close is ignored
    let code: number | undefined;
    // The client has sent its close frame already: after ours, no other is coming.
    // Flaw empty-close-on-bad-close: an empty close frame, as if the close were valid.
    const refuse = (failure: Failure) =>
      this.#has("empty-close-on-bad-close")
        ? this.#replyToClose(undefined)
        : this.#fail(failure, true);
    if (payload.length === 1) return await refuse([1002, "close payload of 1 byte"]);
    if (payload.length === 125 && this.#has("reject-125-close")) {
      return await this.#fail([1002, "close payload of 125 bytes"], true); // flaw: §5.5 allows 125
    }
    if (payload.length >= 2) {
      code = (payload[0] << 8) | payload[1];
      if (!this.#acceptsCloseCode(code)) {
        return await refuse([1002, `invalid close code ${code}`]);
      }
      if (!this.#has("accept-invalid-close-reason") && !isValidUtf8(payload.subarray(2))) {
        return await refuse([1007, "close reason is not valid UTF-8"]);
      }
    }
    if (this.#has("process-data-after-close")) {
      // Flaw: data frames after the client's close are still echoed for a while
      // before the reply (§5.5.1 and §1.4: nothing after a close frame counts).
      this.#heldClose = { code };
      this.#graceTimer = setTimeout(() => {
        if (this.state === "open") this.#replyToClose(code).catch(() => this.#drop());
      }, AFTER_CLOSE_GRACE_MS);
      return;
    }
    await this.#replyToClose(this.#config.closeReplyCode ?? code);
  }

  async #replyToClose(code: number | undefined): Promise<void> {
    this.#message = undefined;
    this.state = "closed"; // everything after the client's close frame is ignored
    if (!this.#has("no-close-reply")) await this.#send(Opcode.Close, closePayload(code));
    // Flaw data-after-close: nothing may follow a close frame (§5.5.1).
    if (this.#has("data-after-close")) await this.#send(Opcode.Text, encoder.encode("after close"));
    await this.#finishClosingHandshake();
  }

  /** Close codes a close frame may carry (§7.4); some flaws change the list. */
  #acceptsCloseCode(code: number): boolean {
    if (code >= 1012 && code <= 1014 && this.#has("refuse-1012-1014")) return false;
    if (code === 1015 && this.#has("echo-1015")) return true;
    return isValidCloseCode(code) || this.#has("accept-invalid-close-codes");
  }

  /** Both close frames have crossed: the server closes TCP first (§7.1.1). */
  async #finishClosingHandshake(): Promise<void> {
    if (this.#has("keep-tcp-open")) {
      this.state = "closed";
      this.#arm(IDLE_MS); // wait for the client to close TCP, but not forever
      return;
    }
    if (this.#has("slow-tcp-close")) {
      // Flaw: TCP stays open SLOW_CLOSE_MS after the closing handshake (§7.1.1: "immediately").
      this.state = "closed";
      this.#shutdownOnDeadline = true;
      this.#arm(SLOW_CLOSE_MS);
      return;
    }
    await this.#shutdown();
  }

  /**
   * Fails the WebSocket connection (§7.1.7): a close frame with the code, then
   * wait for the client's, unless none can come (`noCloseToCome`): its (faulty)
   * close frame is what failed, or the failing frame is incomplete or oversize,
   * so the bytes that follow cannot be parsed as frames. Waiting then would only
   * hold TCP open for CLOSE_WAIT_MS, as long as a client's own wait for the
   * server to close TCP (Autobahn's and the suite's are 1 s).
   */
  async #fail([code, reason]: Failure, noCloseToCome = false): Promise<void> {
    if (this.#has("drop-on-error")) return this.#drop();
    this.state = "closing";
    this.#message = undefined;
    this.#heldEchoes = []; // failed before answering them
    this.#arm(CLOSE_WAIT_MS);
    let sent = this.#has("close-code-1000-on-error")
      ? 1000
      : code === 1002
      ? this.#config.protocolErrorCode
      : code === 1007
      ? this.#config.invalidUtf8Code
      : code;
    // Flaw send-invalid-close-code: 1005 must never be sent in a close frame (§7.4.1).
    if (sent === 1002 && this.#has("send-invalid-close-code")) sent = 1005;
    await this.#send(Opcode.Close, closePayload(sent, encoder.encode(reason)));
    if (noCloseToCome) await this.#finishClosingHandshake();
  }
}

interface Accept {
  key: string;
  protocol?: string;
  /** The Sec-WebSocket-Extensions of the 101: option deflate, or flaw accept-unknown-extension. */
  extension?: string;
  /** Option deflate: what the accepted offer agreed. */
  deflate?: AgreedDeflate;
}

interface Reject {
  status: number;
  reason: string;
  /** Headers replacing the default "Connection: close". */
  headers?: string[];
}

/** Checks an opening handshake request against §4.2.1. */
function checkRequest(head: HttpHead, config: Config): Accept | Reject {
  const has = (flaw: Flaw) => config.flaws.has(flaw);
  const bad = (reason: string): Reject => ({ status: config.badHandshakeStatus, reason });
  const headers = head.headers;
  const line = /^(\S+) (\S+) (\S+)$/.exec(head.startLine);
  if (!line) return bad("malformed request line");
  const [, method, target, version] = line;
  if (!has("accept-any-method")) {
    if (method !== "GET") return bad(`method ${method}, expected GET`);
    if (version !== "HTTP/1.1") return bad(`${version}, expected HTTP/1.1`);
  }
  if (!target.startsWith("/") && !/^https?:\/\//i.test(target)) {
    return bad("request target is neither a resource name nor an absolute http(s) URI");
  }
  // Flaw reject-query-string: a resource name may have a query (§3, §4.1 item 3).
  if (has("reject-query-string") && target.includes("?")) return bad("query string in target");
  // Flaw strict-token-match: header names are case-insensitive and Upgrade and
  // Connection hold case-insensitive token lists (§4.2.1, RFC 7230 §3.2, §6.1).
  if (has("strict-token-match")) {
    for (const [name, value] of Object.entries(CANONICAL)) {
      const lines = headers.filter(([n]) => n === name);
      if (lines.length === 0 || (value !== undefined && lines[0][1] !== value)) {
        return bad(`expected header "${name}${value === undefined ? "" : `: ${value}`}"`);
      }
    }
  }
  const hosts = headerValues(headers, "host");
  if ((hosts.length !== 1 || hosts[0] === "") && !has("accept-no-host")) {
    return bad("exactly one non-empty Host header needed");
  }
  if (!has("accept-no-upgrade-token")) {
    // Without both tokens no upgrade to WebSocket is asked for (RFC 7230 §6.7).
    const plain = (reason: string): Reject => ({ status: config.plainHttpStatus, reason });
    if (!headerTokens(headers, "upgrade").includes("websocket")) {
      return plain("Upgrade header lacks the websocket token");
    }
    if (!headerTokens(headers, "connection").includes("upgrade")) {
      return plain("Connection header lacks the Upgrade token");
    }
  }
  const versions = headerValues(headers, "sec-websocket-version");
  const understood = ["13", ...config.versions];
  // Flaw accept-any-version: any version passes as 13, 14 too; flaw accept-no-version: so
  // does a request without one (§4.2.1 item 6, §4.2.2 item 4).
  const versionOk = versions.length === 1
    ? understood.includes(versions[0]) || has("accept-any-version")
    : versions.length === 0 && has("accept-no-version");
  if (!versionOk) {
    const reason = `WebSocket versions understood: ${understood.join(", ")}`;
    // Flaw no-version-list: §4.2.2 item 4 and §4.4 ask a refusal to list the versions.
    if (has("no-version-list")) return bad(reason);
    const status = config.versionRefusalStatus;
    return {
      status,
      reason,
      headers: [
        `Sec-WebSocket-Version: ${understood.join(", ")}`,
        // RFC 7230 §6.7: a 426 names the protocol to upgrade to.
        ...(status === 426
          ? ["Upgrade: websocket", "Connection: Upgrade, close"]
          : ["Connection: close"]),
      ],
    };
  }
  const keys = headerValues(headers, "sec-websocket-key");
  if ((keys.length !== 1 || !KEY.test(keys[0])) && !has("accept-bad-key")) {
    return bad("Sec-WebSocket-Key must appear once and be base64 of 16 bytes");
  }
  // Subprotocol names are case-sensitive tokens, each offered once (§4.1 item 10).
  const offered = headerValues(headers, "sec-websocket-protocol")
    .flatMap((value) => value.split(","))
    .map((name) => name.trim());
  if (offered.some((name) => !TOKEN.test(name)) || new Set(offered).size !== offered.length) {
    return bad("malformed Sec-WebSocket-Protocol");
  }
  let protocol = offered.length > 0 && config.protocols.includes(offered[0])
    ? offered[0]
    : undefined;
  if (protocol === undefined && config.requireProtocol) {
    return bad(`a subprotocol is required: ${config.protocols.join(", ")}`);
  }
  // Flaw select-unoffered-protocol: only an offered subprotocol may be selected (§4.2.2).
  if (has("select-unoffered-protocol")) protocol = "chat";
  // Flaw accept-unknown-extension: the strict server implements no extension (§9.1).
  const extension = has("accept-unknown-extension")
    ? headerValues(headers, "sec-websocket-extensions").join(",").split(",")[0]?.trim() || undefined
    : undefined;
  const deflate = config.deflate &&
    answerDeflate(headerValues(headers, "sec-websocket-extensions"), config);
  if (deflate) return { key: keys[0] ?? "", protocol, ...deflate };
  return { key: keys[0] ?? "", protocol, extension };
}

/**
 * Option deflate: the response element accepting the client's first valid
 * permessage-deflate offer (RFC 7692 §5, §7), or undefined to decline. The
 * negotiation flaws change only what the 101 says; the codecs follow the
 * honest agreement.
 */
function answerDeflate(
  lines: string[],
  config: Config,
): { extension: string; deflate: AgreedDeflate } | undefined {
  const has = (flaw: Flaw) => config.flaws.has(flaw);
  if (lines.length === 0) return undefined;
  const parsed = parseExtensions(lines);
  // A malformed list is declined whole, as the server without deflate ignores it.
  if (parsed.type === "error") return undefined;
  // Flaw deflate-accept-invalid-offer: an offer with an unknown parameter, a parameter
  // twice or an invalid value must be declined (§7); flawed, its parameters are ignored.
  const offers = has("deflate-accept-invalid-offer")
    ? parsed.items.map((offer) =>
      offer.name === PERMESSAGE_DEFLATE && !parseDeflateParams(offer, "offer").ok
        ? { name: offer.name, params: [] }
        : offer
    )
    : parsed.items;
  const answer = answerDeflateOffers(offers, config.deflate);
  if (answer.type === "decline") return undefined;
  const params = answer.response.params;
  const offered = (name: string) => offers[answer.offerIndex].params.some((p) => p.name === name);
  const set = (name: string, value: string) => {
    const param = params.find((p) => p.name === name);
    if (param) param.value = value;
    else params.push({ name, value });
  };
  // Flaw deflate-window-over-offer: the offer's server_max_window_bits is a ceiling (§7.1.2.1).
  if (has("deflate-window-over-offer") && offered("server_max_window_bits")) {
    set("server_max_window_bits", "15");
  }
  // Flaw deflate-unoffered-client-bits: only an offer with client_max_window_bits lets the
  // response have it (§7.1.2.2).
  if (has("deflate-unoffered-client-bits") && !offered("client_max_window_bits")) {
    set("client_max_window_bits", "15");
  }
  // Flaw deflate-server-no-context-takeover-dropped: a server accepts the offer's
  // server_no_context_takeover by including it (§7.1.1.1).
  const noContextTakeover = params.findIndex((p) => p.name === "server_no_context_takeover");
  if (has("deflate-server-no-context-takeover-dropped") && noContextTakeover >= 0) {
    params.splice(noContextTakeover, 1);
  }
  // Flaw deflate-invalid-value: window bits are 8-15 (§7.1.2.1).
  if (has("deflate-invalid-value")) set("server_max_window_bits", "7");
  // Flaw deflate-duplicate-param: a parameter appears at most once (§7); the first one
  // twice, or the default server_max_window_bits=15 twice, which agrees to nothing new.
  if (has("deflate-duplicate-param")) {
    if (params.length === 0) set("server_max_window_bits", "15");
    params.push({ ...params[0] });
  }
  const element = formatExtensions([answer.response]);
  // Flaw deflate-two-elements: a response accepts one offer, with one element (§5).
  return {
    extension: has("deflate-two-elements") ? `${element}, ${element}` : element,
    deflate: answer.agreed,
  };
}

function encodeHead(lines: string[], body?: Uint8Array): Uint8Array {
  const head = encoder.encode(lines.join("\r\n") + "\r\n\r\n");
  return body ? concat([head, body], head.length + body.length) : head;
}

/** Concatenates once; a single chunk is returned as is. */
function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** Errors of the network itself (reset, broken pipe, closed resource), as opposed to bugs. */
function isIoError(error: unknown): boolean {
  return Object.values(Deno.errors).some((type) => error instanceof type);
}

export function startStrictServer(options: StrictServerOptions = {}): StrictServer {
  const config: Config = {
    flaws: new Set(options.flaws ?? []),
    protocols: [...(options.protocols ?? [])],
    requireProtocol: options.requireProtocol ?? false,
    versions: [...(options.versions ?? [])],
    versionRefusalStatus: options.versionRefusalStatus ?? 426,
    badHandshakeStatus: options.badHandshakeStatus ?? 400,
    plainHttpStatus: options.plainHttpStatus ?? 400,
    maxMessage: options.maxMessage ?? 64 * MiB,
    maxHead: options.maxHead ?? 8192,
    protocolErrorCode: options.protocolErrorCode ?? 1002,
    invalidUtf8Code: options.invalidUtf8Code ?? 1007,
    closeReplyCode: options.closeReplyCode,
    echo: options.echo ?? "all",
    busyMsPerMiB: options.busyMsPerMiB ?? 0,
    echoAfterNextHeader: options.echoAfterNextHeader ?? false,
    deflate: options.deflate === true ? {} : options.deflate || undefined,
  };
  const listener = Deno.listen({ hostname: "127.0.0.1", port: options.port ?? 0 });
  const port = listener.addr.port;
  const connections = new Set<Connection>();
  let stopping = false;

  const acceptLoop = (async () => {
    while (!stopping) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (stopping) break;
        // E.g. out of file descriptors: retry shortly rather than spin or give up.
        if (!isIoError(error)) console.error("strict_server: accept:", error);
        await new Promise((resolve) => setTimeout(resolve, 10));
        continue;
      }
      const connection = new Connection(conn, config);
      connections.add(connection);
      connection.done.then(() => connections.delete(connection));
      if (options.serial) await connection.done;
    }
  })();

  return {
    url: `ws://127.0.0.1:${port}/`,
    port,
    async close() {
      if (!stopping) {
        stopping = true;
        listener.close();
      }
      // A serial server's accept loop waits for the connection it serves.
      for (const connection of connections) connection.abort();
      await acceptLoop;
      const open = [...connections];
      for (const connection of open) connection.abort();
      await Promise.all(open.map((connection) => connection.done));
    },
  };
}

if (import.meta.main) {
  const usage = `usage: strict_server.ts [--port N] [--flaw NAME]... [--protocol NAME]... ` +
    `[--max-message BYTES] [--deflate] [--deflate-server-no-context-takeover] ` +
    `[--deflate-client-no-context-takeover] [--deflate-server-max-window-bits N] ` +
    `[--deflate-client-max-window-bits N]\nflaws: ${FLAWS.join(", ")}`;
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        port: { type: "string", default: "0" },
        flaw: { type: "string", multiple: true, default: [] },
        protocol: { type: "string", multiple: true, default: [] },
        "max-message": { type: "string" },
        deflate: { type: "boolean", default: false },
        "deflate-server-no-context-takeover": { type: "boolean", default: false },
        "deflate-client-no-context-takeover": { type: "boolean", default: false },
        "deflate-server-max-window-bits": { type: "string" },
        "deflate-client-max-window-bits": { type: "string" },
      },
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage}`);
    Deno.exit(2);
  }
  const unknown = values.flaw.filter((flaw) => !(FLAWS as readonly string[]).includes(flaw));
  const port = Number(values.port);
  const maxMessage = values["max-message"] === undefined
    ? undefined
    : Number(values["max-message"]);
  const windowBits = (value: string | undefined) => value === undefined ? undefined : Number(value);
  const deflateWishes: ServerDeflateWishes = {
    serverNoContextTakeover: values["deflate-server-no-context-takeover"],
    clientNoContextTakeover: values["deflate-client-no-context-takeover"],
    serverMaxWindowBits: windowBits(values["deflate-server-max-window-bits"]),
    clientMaxWindowBits: windowBits(values["deflate-client-max-window-bits"]),
  };
  // Any wish turns deflate on.
  const deflate = values.deflate ||
    Object.values(deflateWishes).some((wish) => wish !== undefined && wish !== false);
  const badWindowBits = [deflateWishes.serverMaxWindowBits, deflateWishes.clientMaxWindowBits]
    .some((bits) => bits !== undefined && !(Number.isInteger(bits) && bits >= 8 && bits <= 15));
  if (
    unknown.length > 0 || !Number.isInteger(port) || port < 0 || port > 65535 ||
    (maxMessage !== undefined && !(Number.isInteger(maxMessage) && maxMessage >= 0)) ||
    badWindowBits
  ) {
    console.error(unknown.length > 0 ? `unknown flaw: ${unknown.join(", ")}\n${usage}` : usage);
    Deno.exit(2);
  }
  const server = startStrictServer({
    port,
    flaws: values.flaw as Flaw[],
    protocols: values.protocol,
    maxMessage,
    deflate: deflate && deflateWishes,
  });
  console.log(server.url);
}
