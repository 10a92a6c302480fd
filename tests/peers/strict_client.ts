/**
 * The strict reference WebSocket client of wsconform's own tests, the oracle
 * of client mode: an RFC 6455 echo client over raw TCP that enforces every
 * rule the RFC lets a client enforce. It has its own minimal codec (it must not
 * share the harness code it checks). Named flaws each break exactly one rule,
 * so the client cases can be shown to fail as well as pass.
 *
 * With an offer (`deflateOffer`, `--deflate`, `--deflate-offer`) it speaks
 * permessage-deflate (RFC 7692). That codec and its negotiation rules are the
 * harness's (harness/deflate.ts), not a second copy: they are proven on their
 * own by RFC 7692's examples (tests/deflate_test.ts).
 *
 *   deno run --allow-net tests/peers/strict_client.ts ws://127.0.0.1:9001/ --flaw no-pong
 *
 * Exit status: 0 the connection ended with a closing handshake, 1 it did not
 * (a refused handshake, a failed connection, TCP lost, the run's bound; one
 * line on stderr says why), 2 bad usage.
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import {
  type AgreedDeflate,
  agreedDeflate,
  checkDeflateResponse,
  MessageCompressor,
  MessageDecompressor,
  parseDeflateParams,
  PERMESSAGE_DEFLATE,
} from "../../harness/deflate.ts";
import {
  type ExtensionOffer,
  formatExtensions,
  parseExtensions,
} from "../../harness/server_handshake.ts";

/** The flaws by what they break. */
export const FLAW_FAMILIES = {
  /** The client's request and its check of the response (§4.1). */
  handshake: [
    "bad-handshake-version",
    "fixed-key",
    "accept-non-101",
    "accept-bad-upgrade",
    "no-accept-check",
    "accept-unoffered-protocol",
    "accept-unoffered-extension",
    "http-1.0",
    "no-host",
    "no-upgrade-header",
    "key-not-base64",
    "case-sensitive-names",
    "exact-token-case",
    "connection-exact",
    "reject-extra-headers",
    "refuse-split-response",
    "drop-bytes-after-head",
  ],
  /** The frames the client sends (§5.1-§5.3). */
  clientOutput: [
    "unmasked",
    "zero-mask-key",
    "repeated-mask-key",
    "non-minimal-length",
    "rsv1",
  ],
  /** The frames the client receives (§5.1, §5.5.2, §8.1). */
  serverInput: [
    "accept-masked-frames",
    "header-needs-one-read",
    "accept-msb-length",
    "no-pong",
    "accept-invalid-utf8",
  ],
  /** Rules Autobahn's groups 1-7 and 9 check, as a server's flaws of the same names do. */
  autobahn: [
    "truncate-long-echo",
    "corrupt-large-echo",
    "echo-fragmented-as-binary",
    "accept-rsv",
    "accept-reserved-opcodes",
    "accept-fragmented-control",
    "no-fail-fast",
    "accept-invalid-close-codes",
    "close-code-1000-on-error",
    "drop-on-error",
    "oversize-pong",
    "fragmented-pong",
    "reserved-opcode-pong",
  ],
  /** Closing (§5.5.1, §7.1.1, §7.4). */
  close: [
    "close-code-1005",
    "close-code-1006",
    "refuse-1012-1014",
    "accept-invalid-close-reason",
    "data-after-close",
    "no-close-reply",
    "close-tcp-first",
    "keep-tcp-open",
  ],
  /** permessage-deflate (RFC 7692), once offered. */
  deflate: [
    // Takes a response breaking §7.1 (unknown, unoffered, duplicate, invalid, wider, two) as valid.
    "deflate-bad-response-accepted",
    // Takes a control frame with RSV1 set (answers the ping), where §6.1 says fail.
    "deflate-rsv1-on-control-accepted",
    // Takes a continuation frame with RSV1 set, where §6.1 says fail.
    "deflate-rsv1-on-continuation-accepted",
    // Drops a message that does not inflate as agreed (§7.2.2, window included) and goes on.
    "deflate-bad-inflate-ignored",
    // Fails the connection on a message without RSV1, an uncompressed one, which is legal (§6).
    "deflate-uncompressed-refused",
    // Keeps its LZ77 window across messages although client_no_context_takeover was agreed.
    "deflate-context-takeover-despite-agreement",
    // Compresses with a 15-bit window whatever client_max_window_bits was agreed (§7.1.2.2).
    "deflate-window-over-agreed",
  ],
} as const;

export const FLAWS = Object.values(FLAW_FAMILIES).flat();

/** A deliberate deviation from RFC 6455; see FLAWS. */
export type Flaw = (typeof FLAWS)[number];

export interface StrictClientOptions {
  flaws?: Flaw[];
  /** Subprotocols to offer, in order of preference; default none. */
  protocols?: string[];
  /** The Origin header to send; default none (a non-browser client, §4.1 item 8). */
  origin?: string;
  /**
   * How it fails a connection whose handshake response it refuses (§4.1):
   * "closing" TCP at once (default), or "waiting" for the server to close it,
   * ignoring what comes; the suite takes both as the refusal.
   */
  refuseBy?: "closing" | "waiting";
  /** The bound of the whole run, handshake to TCP close, in ms (default 60 s). */
  timeoutMs?: number;
  /** Largest message accepted, in bytes (default 64 MiB); a longer one fails with 1009. */
  maxMessage?: number;
  /** Pings the server this often while the connection is open (a client MAY, §5.5.2); default never. */
  pingIntervalMs?: number;
  /**
   * Follows a 3xx's Location to a ws:// URL (a client MAY, §4.1), up to
   * MAX_REDIRECTS times, with a new connection and request; default not.
   */
  followRedirects?: boolean;
  /**
   * Sec-WebSocket-Extensions to offer, permessage-deflate elements only
   * (BROWSER_DEFLATE_OFFER, or any list of offers); default none.
   */
  deflateOffer?: string;
}

/** What browsers offer (`--deflate`). */
export const BROWSER_DEFLATE_OFFER = "permessage-deflate; client_max_window_bits";

export interface StrictClientResult {
  /** 0: the connection ended with a closing handshake; 1: it did not. */
  exitCode: 0 | 1;
  /** Why the exit code is 1. */
  error?: string;
}

const MiB = 1024 * 1024;
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** After the closing handshake, how long the server has to close TCP (§7.1.1). */
const TCP_CLOSE_WAIT_MS = 2000;
/** The most redirects followed in a row (followRedirects). */
const MAX_REDIRECTS = 5;
/** The longest response head accepted. */
const MAX_HEAD = 16 * 1024;
const READ_SIZE = 256 * 1024;
/** Flaw fixed-key: the same key on every connection, the RFC's own sample (§4.1 item 7). */
const FIXED_KEY = "dGhlIHNhbXBsZSBub25jZQ==";

const Opcode = { Continuation: 0, Text: 1, Binary: 2, Close: 8, Ping: 9, Pong: 10 } as const;
/** The RSV1 bit in Header.rsv: a compressed message (RFC 7692 §6). */
const RSV1 = 4;

const encoder = new TextEncoder();

/** A close code and a reason for failing the connection. */
type Failure = [code: number, reason: string];

// --- codec: only what a client needs ---------------------------------------

interface Header {
  fin: boolean;
  rsv: number;
  opcode: number;
  maskKey: Uint8Array | undefined;
  length: bigint;
}

/** Received bytes not yet consumed, as the chunks they came in. */
class Incoming {
  #chunks: Uint8Array[] = [];
  size = 0;

  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#chunks.push(bytes);
    this.size += bytes.length;
  }

  /** Removes the first `n` bytes (n ≤ size), as slices of the chunks. */
  take(n: number): Uint8Array[] {
    const pieces: Uint8Array[] = [];
    while (n > 0) {
      const chunk = this.#chunks[0];
      if (chunk.length <= n) {
        pieces.push(this.#chunks.shift()!);
        n -= chunk.length;
        this.size -= chunk.length;
      } else {
        pieces.push(chunk.subarray(0, n));
        this.#chunks[0] = chunk.subarray(n);
        this.size -= n;
        n = 0;
      }
    }
    return pieces;
  }

  /** The first `n` bytes, left in place. */
  peek(n: number): Uint8Array {
    const out = concat(this.take(n));
    this.#chunks.unshift(out);
    this.size += out.length;
    return out;
  }
}

/** Takes a frame header once all of it has arrived (§5.2). */
function takeHeader(incoming: Incoming): Header | undefined {
  if (incoming.size < 2) return undefined;
  const [b0, b1] = incoming.peek(2);
  const length7 = b1 & 0x7f;
  const lengthBytes = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
  const masked = (b1 & 0x80) !== 0;
  const size = 2 + lengthBytes + (masked ? 4 : 0);
  if (incoming.size < size) return undefined;
  const bytes = concat(incoming.take(size));
  let length = BigInt(length7);
  if (lengthBytes > 0) {
    length = 0n;
    for (let i = 2; i < 2 + lengthBytes; i++) length = (length << 8n) | BigInt(bytes[i]);
  }
  return {
    fin: (b0 & 0x80) !== 0,
    rsv: (b0 >> 4) & 0x7,
    opcode: b0 & 0x0f,
    maskKey: masked ? bytes.slice(size - 4) : undefined,
    length,
  };
}

interface OutgoingFrame {
  opcode: number;
  /** Default true. */
  fin?: boolean;
  /** The payload, in parts written one after the other (a message's chunks are not joined first). */
  payload: Uint8Array[];
  rsv?: number;
  /** Absent: unmasked. */
  maskKey?: Uint8Array;
  /** 7, 16 or 64-bit length field; default the minimal one. */
  lengthForm?: 7 | 16 | 64;
}

function encodeFrame(
  { opcode, fin = true, payload, rsv = 0, maskKey, lengthForm }: OutgoingFrame,
): Uint8Array {
  const n = payload.reduce((size, part) => size + part.length, 0);
  const form = lengthForm ?? (n < 126 ? 7 : n < 65536 ? 16 : 64);
  const lengthBytes = form === 7 ? 0 : form === 16 ? 2 : 8;
  const start = 2 + lengthBytes + (maskKey ? 4 : 0);
  const out = new Uint8Array(start + n);
  out[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
  out[1] = (maskKey ? 0x80 : 0) | (form === 7 ? n : form === 16 ? 126 : 127);
  for (let i = 0; i < lengthBytes; i++) out[2 + i] = Math.floor(n / 256 ** (lengthBytes - 1 - i));
  if (maskKey) out.set(maskKey, start - 4);
  let offset = start;
  for (const part of payload) {
    out.set(part, offset);
    offset += part.length;
  }
  if (maskKey) xorMask(out.subarray(start), maskKey, 0);
  return out;
}

/** XORs bytes in place with the key, the first byte being at `offset` in the payload (§5.3). */
function xorMask(bytes: Uint8Array, key: Uint8Array, offset: number): void {
  for (let i = 0; i < bytes.length; i++) bytes[i] ^= key[(offset + i) & 3];
}

function concat(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(chunks.reduce((n, chunk) => n + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** Close codes a close frame may carry (§7.4.1, §7.4.2 and IANA's 1012-1014). */
function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

function isValidUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

async function acceptFor(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", encoder.encode(key + GUID));
  return new Uint8Array(digest).toBase64();
}

// --- opening handshake (§4.1) ----------------------------------------------

interface Response {
  status: number;
  /** Lower-case names, in order, repeated names kept. */
  headers: [name: string, value: string][];
}

/** Header names as RFC 6455 writes them (flaw case-sensitive-names knows only these). */
const RFC_NAMES = [
  "Upgrade",
  "Connection",
  "Sec-WebSocket-Accept",
  "Sec-WebSocket-Protocol",
  "Sec-WebSocket-Extensions",
];

/**
 * Parses a response head (without its final CRLF CRLF); a string says why it
 * is malformed. `rfcNamesOnly` (flaw case-sensitive-names): header names are
 * case-insensitive (RFC 7230 §3.2), and a line with a name written otherwise is
 * dropped.
 */
function parseResponse(head: string, rfcNamesOnly: boolean): Response | string {
  const [statusLine, ...lines] = head.split("\r\n");
  const status = /^HTTP\/1\.1 (\d{3})(?: |$)/.exec(statusLine);
  if (!status) return `malformed status line ${JSON.stringify(statusLine)}`;
  const headers: [string, string][] = [];
  for (const line of lines) {
    const field = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!field) return `malformed header line ${JSON.stringify(line)}`;
    if (rfcNamesOnly && !RFC_NAMES.includes(field[1])) continue;
    headers.push([field[1].toLowerCase(), field[2]]);
  }
  return { status: Number(status[1]), headers };
}

/** The comma-separated elements of every line of a header, trimmed, empty ones dropped. */
function listValues(response: Response, name: string): string[] {
  return response.headers.filter(([n]) => n === name)
    .flatMap(([, value]) => value.split(","))
    .map((element) => element.trim())
    .filter((element) => element !== "");
}

// --- the client --------------------------------------------------------------

/**
 * - connecting: the opening handshake.
 * - open: exchanging messages.
 * - failed: we failed the connection (§7.1.7); waiting for the server to close TCP.
 * - closed: both close frames crossed; waiting for the server to close TCP (§7.1.1).
 */
type State = "connecting" | "open" | "failed" | "closed";

interface Message {
  opcode: number;
  chunks: Uint8Array[];
  size: number;
  frames: number;
  /** Streaming validation of a text message, so invalid UTF-8 fails fast (§8.1). */
  utf8: TextDecoder | undefined;
  /** Flaw no-fail-fast: the text is validated only once whole. */
  validateWhole: boolean;
  /** RSV1 on its first frame: the payload is DEFLATE data (RFC 7692 §6). */
  compressed: boolean;
}

interface Frame {
  header: Header;
  /** Read and dropped (only under some flaws). */
  ignored: boolean;
  /** Payload bytes still to come. */
  remaining: number;
  /** Payload bytes received (unmasked), kept for control frames only. */
  chunks: Uint8Array[];
  /** Payload bytes received so far, for unmasking. */
  received: number;
}

class StrictClient {
  #url: URL;
  #flaws: ReadonlySet<Flaw>;
  #protocols: readonly string[];
  #origin: string | undefined;
  #refuseBy: "closing" | "waiting";
  #maxMessage: number;
  #pingIntervalMs: number | undefined;
  #followRedirects: boolean;
  /** Where a 3xx answer sent us, when we follow redirects: runStrictClient goes there next. */
  redirect: URL | undefined;
  /** Sec-WebSocket-Extensions as given, and its permessage-deflate offers in order. */
  #deflateOffer: string | undefined;
  #deflateOffers: ExtensionOffer[];
  /** Once the response accepted an offer: what both sides use, and the codecs. */
  #agreed: AgreedDeflate | undefined;
  #compressor: MessageCompressor | undefined;
  #decompressor: MessageDecompressor | undefined;
  #conn!: Deno.TcpConn;
  /** The last write queued: writes go out in order, so a ping never splits another frame. */
  #writing: Promise<void> = Promise.resolve();
  #state: State = "connecting";
  #key = "";
  #head: Uint8Array = new Uint8Array(0);
  #incoming = new Incoming();
  #frame: Frame | undefined;
  #message: Message | undefined;
  /** Flaw repeated-mask-key: the one key of every frame. */
  #fixedMaskKey = crypto.getRandomValues(new Uint8Array(4));
  /** Why the run ends with exit code 1. */
  #error: string | undefined;
  /** The run's bound (whole run) and the wait for the server's TCP close. */
  #deadline: ReturnType<typeof setTimeout> | undefined;
  #closeWait: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** Resolves when TCP is closed (or the run ends before it was open). */
  #ended: Promise<undefined>;
  #resolveEnded!: (value: undefined) => void;

  constructor(url: URL, options: StrictClientOptions) {
    this.#url = url;
    this.#flaws = new Set(options.flaws ?? []);
    this.#protocols = [...(options.protocols ?? [])];
    this.#origin = options.origin;
    this.#refuseBy = options.refuseBy ?? "closing";
    this.#maxMessage = options.maxMessage ?? 64 * MiB;
    this.#pingIntervalMs = options.pingIntervalMs;
    this.#followRedirects = options.followRedirects ?? false;
    this.#deflateOffer = options.deflateOffer;
    this.#deflateOffers = options.deflateOffer === undefined
      ? []
      : parseDeflateOffer(options.deflateOffer);
    this.#ended = new Promise((resolve) => this.#resolveEnded = resolve);
  }

  #has(flaw: Flaw): boolean {
    return this.#flaws.has(flaw);
  }

  /**
   * Runs the connection until it ends, or `timeoutMs` pass. `boundMs` is the
   * whole run's bound, which the error names: redirects share one bound.
   */
  async run(timeoutMs: number, boundMs = timeoutMs): Promise<StrictClientResult> {
    this.#deadline = setTimeout(() => {
      if (this.#state === "closed") this.#closeTcp(); // the server kept TCP open: we close it
      else this.#abort(`no end within ${boundMs / 1000} s (state ${this.#state})`);
    }, timeoutMs);
    let pinging: ReturnType<typeof setInterval> | undefined;
    try {
      const connecting = Deno.connect({
        hostname: this.#url.hostname.replace(/^\[|\]$/g, ""),
        port: Number(this.#url.port || 80),
      });
      const conn = await Promise.race([connecting, this.#ended]);
      if (conn === undefined) {
        connecting.then((late) => late.close(), () => {}); // the bound ran out while connecting
        return this.#result();
      }
      this.#conn = conn;
      if (this.#pingIntervalMs !== undefined) {
        pinging = setInterval(() => {
          // A ping that cannot be written finds TCP gone: the read loop ends the run.
          if (this.#state !== "open") return;
          this.#send(Opcode.Ping, [encoder.encode("keepalive")]).catch(() => {});
        }, this.#pingIntervalMs);
      }
      await this.#session();
    } catch (error) {
      // After the closing handshake, a reset is just how the server closed TCP.
      if (this.#state !== "closed") this.#error ??= `connection error: ${(error as Error).message}`;
    } finally {
      clearInterval(pinging);
      clearTimeout(this.#deadline);
      clearTimeout(this.#closeWait);
      this.#closeTcp();
      this.#compressor?.close();
      this.#decompressor?.close();
    }
    return this.#result();
  }

  #result(): StrictClientResult {
    if (this.#error === undefined && this.#state !== "closed") {
      this.#error = "the server closed TCP without a closing handshake (1006)";
    }
    return this.#error === undefined ? { exitCode: 0 } : { exitCode: 1, error: this.#error };
  }

  async #session(): Promise<void> {
    this.#conn.setNoDelay(true);
    await this.#write(encoder.encode(this.#request()));
    const buffer = new Uint8Array(READ_SIZE);
    while (!this.#closed) {
      let n: number | null;
      try {
        n = await this.#conn.read(buffer);
      } catch (error) {
        if (this.#closed) return; // our own close ended the read
        throw error;
      }
      if (n === null) return; // the server closed TCP
      // A copy of exactly what was read: received chunks are kept by reference.
      const bytes = buffer.slice(0, n);
      if (this.#state === "connecting") await this.#onHandshakeBytes(bytes);
      else if (this.#state === "open") await this.#onFrameBytes(bytes);
      // failed or closed: whatever else the server sends is ignored until it closes TCP
    }
  }

  /** Ends the run: exit code 1 with this reason, TCP closed at once. */
  #abort(reason: string): void {
    this.#error ??= reason;
    this.#closeTcp();
  }

  #closeTcp(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#resolveEnded(undefined);
    try {
      this.#conn?.close();
    } catch { /* already closed */ }
  }

  #write(bytes: Uint8Array): Promise<void> {
    const written = this.#writing.then(async () => {
      for (let n = 0; n < bytes.length;) n += await this.#conn.write(bytes.subarray(n));
    });
    // A failed write fails its caller; the writes queued after it still run (and fail).
    this.#writing = written.catch(() => {});
    return written;
  }

  #maskKey(): Uint8Array | undefined {
    if (this.#has("unmasked")) return undefined; // flaw: every client frame is masked (§5.1)
    if (this.#has("zero-mask-key")) return new Uint8Array(4); // flaw: unpredictable (§5.3)
    if (this.#has("repeated-mask-key")) return this.#fixedMaskKey; // flaw: fresh per frame (§5.3)
    return crypto.getRandomValues(new Uint8Array(4));
  }

  async #send(opcode: number, payload: Uint8Array[], fin = true, rsv = 0): Promise<void> {
    const n = payload.reduce((size, part) => size + part.length, 0);
    await this.#write(encodeFrame({
      opcode,
      fin,
      payload,
      rsv: this.#has("rsv1") ? RSV1 : rsv, // flaw: RSV bits need an extension (§5.2)
      maskKey: this.#maskKey(),
      // Flaw non-minimal-length: the minimal length form is required (§5.2).
      lengthForm: this.#has("non-minimal-length") && n < 65536 ? (n < 126 ? 16 : 64) : undefined,
    }));
  }

  /** Sends a close frame with this code (none: an empty payload). */
  async #sendClose(code: number | undefined): Promise<void> {
    // Flaw close-code-1005: 1005 must never be sent in a close frame (§7.4.1).
    if (this.#has("close-code-1005")) code = 1005;
    const payload = code === undefined
      ? new Uint8Array(0)
      : new Uint8Array([code >> 8, code & 255]);
    await this.#send(Opcode.Close, [payload]);
    // Flaw data-after-close: no data frame may follow a close frame (§5.5.1).
    if (this.#has("data-after-close")) {
      await this.#send(Opcode.Text, [encoder.encode("after close")]);
    }
  }

  /** The server has this long to close TCP (§7.1.1), then we close it. */
  #awaitTcpClose(): void {
    this.#closeWait = setTimeout(() => this.#closeTcp(), TCP_CLOSE_WAIT_MS);
  }

  /** Fails the WebSocket connection (§7.1.7): a close frame with the code, then TCP's close. */
  async #fail([code, reason]: Failure): Promise<void> {
    this.#error = `failed the connection with ${code}: ${reason}`;
    this.#state = "failed";
    this.#message = undefined;
    // Flaw drop-on-error: a close frame should come first (§7.1.7).
    if (this.#has("drop-on-error")) return this.#closeTcp();
    // Flaw close-code-1000-on-error: 1000 says all went well; flaw close-code-1006: 1006
    // only reports a connection lost without a close frame, and is never sent (§7.4.1).
    const sent = this.#has("close-code-1000-on-error")
      ? 1000
      : this.#has("close-code-1006")
      ? 1006
      : code;
    await this.#sendClose(sent);
    this.#awaitTcpClose();
  }

  // --- opening handshake (§4.1) -------------------------------------------

  #request(): string {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    // Flaw key-not-base64: the key is 16 bytes in base64 (§4.1 item 7); hex is not.
    this.#key = this.#has("fixed-key")
      ? FIXED_KEY
      : this.#has("key-not-base64")
      ? bytes.toHex()
      : bytes.toBase64();
    const url = this.#url;
    const lines = [
      // Flaw http-1.0: the request must be HTTP/1.1 or later (§4.1 item 2).
      `GET ${url.pathname}${url.search} HTTP/${this.#has("http-1.0") ? "1.0" : "1.1"}`,
      // Flaw no-host: the request must carry Host (§4.1 item 4).
      ...this.#has("no-host") ? [] : [`Host: ${url.host}`],
      // Flaw no-upgrade-header: the request must carry Upgrade: websocket (§4.1 item 5).
      ...this.#has("no-upgrade-header") ? [] : ["Upgrade: websocket"],
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${this.#key}`,
      // Flaw bad-handshake-version: the version must be 13 (§4.1 item 9).
      `Sec-WebSocket-Version: ${this.#has("bad-handshake-version") ? 8 : 13}`,
    ];
    if (this.#origin !== undefined) lines.push(`Origin: ${this.#origin}`);
    if (this.#protocols.length > 0) {
      lines.push(`Sec-WebSocket-Protocol: ${this.#protocols.join(", ")}`);
    }
    if (this.#deflateOffer !== undefined) {
      lines.push(`Sec-WebSocket-Extensions: ${this.#deflateOffer}`);
    }
    return lines.join("\r\n") + "\r\n\r\n";
  }

  async #onHandshakeBytes(bytes: Uint8Array): Promise<void> {
    this.#head = concat([this.#head, bytes]);
    const end = headEnd(this.#head);
    if (end < 0) {
      // Flaw refuse-split-response: a head may come in any number of reads (RFC 7230 §3).
      if (this.#has("refuse-split-response")) {
        return this.#refuse("the response head did not come in one read");
      }
      if (this.#head.length > MAX_HEAD) this.#abort(`response head over ${MAX_HEAD} bytes`);
      return;
    }
    const head = new TextDecoder("latin1").decode(this.#head.subarray(0, end));
    const rest = this.#head.subarray(end + 4);
    this.#head = new Uint8Array(0);
    const refusal = await this.#checkResponse(head);
    if (refusal !== undefined) return this.#refuse(refusal);
    if (this.#agreed) {
      const { clientMaxWindowBits, clientNoContextTakeover } = this.#agreed;
      this.#compressor = new MessageCompressor({
        // Flaw deflate-window-over-agreed: the window must stay within client_max_window_bits.
        windowBits: this.#has("deflate-window-over-agreed") ? 15 : clientMaxWindowBits,
        // Flaw deflate-context-takeover-despite-agreement: client_no_context_takeover
        // agreed, each message starts with an empty window (§7.1.1.2).
        contextTakeover: !clientNoContextTakeover ||
          this.#has("deflate-context-takeover-despite-agreement"),
      });
      this.#decompressor = this.#newDecompressor();
    }
    this.#state = "open";
    // The first frames may come in the same read as the head; flaw drop-bytes-after-head
    // loses them (after the 101 the bytes are the new protocol's, RFC 7230 §6.7).
    if (rest.length > 0 && !this.#has("drop-bytes-after-head")) await this.#onFrameBytes(rest);
  }

  /** Fails the connection before it opens: no frame, TCP closed by us or, waiting, by the server. */
  #refuse(reason: string): void {
    const why = `refused the handshake: ${reason}`;
    if (this.#refuseBy === "closing") return this.#abort(why);
    this.#error ??= why;
    this.#state = "failed";
  }

  /** Checks the response as §4.1 items 1-6 of the client's requirements ask; why it fails. */
  async #checkResponse(head: string): Promise<string | undefined> {
    const response = parseResponse(head, this.#has("case-sensitive-names"));
    if (typeof response === "string") return response;
    // Flaw reject-extra-headers: the checks of §4.1 ask nothing of other headers.
    const extra = response.headers.find(([name]) =>
      !RFC_NAMES.some((n) => n.toLowerCase() === name)
    );
    if (extra && this.#has("reject-extra-headers")) return `unexpected header ${extra[0]}`;
    // A 3xx is handled per HTTP, and a client MAY follow it: no connection opens on it (item 1).
    const location = response.headers.find(([n]) => n === "location")?.[1];
    if (this.#followRedirects && Math.floor(response.status / 100) === 3 && location) {
      const next = URL.parse(location, this.#url);
      if (next?.protocol === "ws:") this.redirect = next;
    }
    // Flaw accept-non-101: any status but 101 means no WebSocket connection (item 1).
    if (response.status !== 101 && !this.#has("accept-non-101")) {
      return `status ${response.status}, expected 101`;
    }
    if (!this.#has("accept-bad-upgrade")) {
      // Flaw accept-bad-upgrade: Upgrade must be "websocket", Connection hold "Upgrade" (items 2-3).
      // Flaw exact-token-case: both tokens are compared without regard to case (items 2-3).
      const same = (token: string, word: string) =>
        this.#has("exact-token-case") ? token === word : token.toLowerCase() === word.toLowerCase();
      const upgrade = listValues(response, "upgrade");
      if (upgrade.length !== 1 || !same(upgrade[0], "websocket")) {
        return `Upgrade ${JSON.stringify(upgrade.join(", "))}, expected websocket`;
      }
      const connection = listValues(response, "connection");
      if (!connection.some((t) => same(t, "Upgrade"))) {
        return "Connection header lacks the Upgrade token";
      }
      // Flaw connection-exact: Connection is a token list; one token Upgrade is enough (item 3).
      if (this.#has("connection-exact") && connection.length !== 1) {
        return `Connection ${JSON.stringify(connection.join(", "))}, expected Upgrade alone`;
      }
    }
    if (!this.#has("no-accept-check")) {
      // Flaw no-accept-check: exactly one Sec-WebSocket-Accept, of our key (item 4).
      const accepts = response.headers.filter(([n]) => n === "sec-websocket-accept");
      const expected = await acceptFor(this.#key);
      if (accepts.length !== 1 || accepts[0][1] !== expected) {
        return `Sec-WebSocket-Accept ${
          JSON.stringify(accepts.map(([, v]) => v).join(", "))
        }, expected ${expected}`;
      }
    }
    const extensionProblem = this.#checkExtensions(response);
    if (extensionProblem !== undefined) return extensionProblem;
    // Flaw accept-unoffered-protocol: at most one subprotocol, one we offered (item 6).
    const protocols = response.headers.filter(([n]) => n === "sec-websocket-protocol")
      .map(([, value]) => value);
    const offered = protocols.length === 1 && this.#protocols.includes(protocols[0]);
    if (protocols.length > 0 && !offered && !this.#has("accept-unoffered-protocol")) {
      return `subprotocol not offered: ${protocols.join(", ")}`;
    }
    return undefined;
  }

  /**
   * Checks Sec-WebSocket-Extensions (§4.1 item 5, §9.1; RFC 7692 §7.1) and
   * keeps what an accepted permessage-deflate offer agreed; why it fails.
   */
  #checkExtensions(response: Response): string | undefined {
    // Flaw accept-unoffered-extension: only an extension offered may be in use (item 5).
    const acceptUnoffered = this.#has("accept-unoffered-extension");
    if (this.#deflateOffers.length === 0) {
      const extensions = listValues(response, "sec-websocket-extensions");
      if (extensions.length === 0 || acceptUnoffered) return undefined;
      return `extension not offered: ${extensions.join(", ")}`;
    }
    const lines = response.headers.filter(([n]) => n === "sec-websocket-extensions")
      .map(([, value]) => value);
    if (lines.length === 0) return undefined; // the server declined the offers
    const parsed = parseExtensions(lines);
    if (parsed.type === "error") return parsed.reason;
    const unoffered = parsed.items.filter((e) => e.name !== PERMESSAGE_DEFLATE);
    if (unoffered.length > 0 && !acceptUnoffered) {
      return `extension not offered: ${formatExtensions(unoffered)}`;
    }
    const check = checkDeflateResponse(this.#deflateOffers, parsed.items);
    if (check.type === "accepted") this.#agreed = check.agreed;
    if (check.type !== "error") return undefined;
    // Flaw deflate-bad-response-accepted: a response breaking RFC 7692 §7.1 fails the connection.
    if (!this.#has("deflate-bad-response-accepted")) return `${check.reason} (${check.rule})`;
    this.#agreed = agreedAsWritten(this.#deflateOffers[0], parsed.items);
    return undefined;
  }

  /** Inflates the server's messages: server window bits, server_no_context_takeover (§7.2.2). */
  #newDecompressor(): MessageDecompressor {
    const { serverMaxWindowBits, serverNoContextTakeover } = this.#agreed!;
    return new MessageDecompressor({
      windowBits: serverMaxWindowBits,
      contextTakeover: !serverNoContextTakeover,
      maxMessageBytes: this.#maxMessage,
    });
  }

  // --- frames (§5) --------------------------------------------------------

  async #onFrameBytes(bytes: Uint8Array): Promise<void> {
    const incoming = this.#incoming;
    // Flaw header-needs-one-read: a header must be read however TCP splits it (§5.2).
    if (this.#has("header-needs-one-read") && this.#frame === undefined && incoming.size > 0) {
      return this.#abort("the previous read ended inside a frame header");
    }
    incoming.push(bytes);
    while (this.#state === "open") {
      if (this.#frame === undefined) {
        const header = takeHeader(incoming);
        if (header === undefined) return;
        const verdict = this.#checkHeader(header);
        if (Array.isArray(verdict)) return await this.#fail(verdict);
        this.#frame = {
          header,
          ignored: verdict === "ignore",
          remaining: Number(header.length),
          chunks: [],
          received: 0,
        };
      }
      const frame = this.#frame;
      const pieces = incoming.take(Math.min(incoming.size, frame.remaining));
      for (const piece of pieces) {
        const failure = this.#onPayload(frame, piece);
        if (failure) return await this.#fail(failure);
      }
      if (frame.remaining > 0) return;
      this.#frame = undefined;
      await this.#onFrame(frame);
    }
  }

  /**
   * Checks a frame header before its payload arrives (§5.1, §5.2, §5.4, §5.5)
   * and starts a message on a text or binary frame; "ignore" (only under some
   * flaws): the frame is read and dropped.
   */
  #checkHeader(header: Header): Failure | "ignore" | undefined {
    if (header.maskKey && !this.#has("accept-masked-frames")) {
      return [1002, "masked frame from the server"]; // §5.1
    }
    const rsvProblem = header.rsv !== 0 && !this.#has("accept-rsv") && this.#rsvProblem(header);
    if (rsvProblem) return [1002, rsvProblem];
    if (header.length >= 1n << 63n) {
      // Flaw accept-msb-length: the bit is ignored, where it must fail the connection (§5.2).
      if (!this.#has("accept-msb-length")) {
        return [1002, "64-bit payload length with the most significant bit set"];
      }
      header.length &= (1n << 63n) - 1n;
    }
    const { opcode } = header;
    const reserved = opcode > Opcode.Pong || (opcode > Opcode.Binary && opcode < Opcode.Close);
    if (reserved) {
      // Flaw accept-reserved-opcodes: an unknown opcode must fail the connection (§5.2).
      if (this.#has("accept-reserved-opcodes")) return "ignore";
      return [1002, `reserved opcode ${opcode}`];
    }
    if (opcode >= 8) {
      // Flaw oversize-pong: a ping over 125 bytes is answered (§5.5: it must fail).
      const answered = opcode === Opcode.Ping && this.#has("oversize-pong") &&
        header.length <= 65535n;
      if (header.length > 125n && !answered) {
        return [1002, "control frame payload over 125 bytes"]; // §5.5
      }
      // Flaw accept-fragmented-control: control frames must not be fragmented (§5.5).
      if (!header.fin && !this.#has("accept-fragmented-control")) {
        return [1002, "fragmented control frame"];
      }
      return undefined;
    }
    const message = this.#message;
    if (opcode === Opcode.Continuation && message === undefined) {
      // Flaw accept-fragmented-control: the continuation of a fragmented control frame.
      if (this.#has("accept-fragmented-control")) return "ignore";
      return [1002, "continuation frame with no message to continue"]; // §5.4
    }
    if (opcode !== Opcode.Continuation && message !== undefined) {
      return [1002, "new data frame inside a fragmented message"]; // §5.4
    }
    if ((message?.size ?? 0) + Number(header.length) > this.#maxMessage) {
      return [1009, `message over ${this.#maxMessage} bytes`]; // §7.4.1
    }
    if (message === undefined) {
      const compressed = this.#agreed !== undefined && (header.rsv & RSV1) !== 0;
      // Flaw deflate-uncompressed-refused: a message without RSV1 is legal after the agreement.
      if (this.#agreed && !compressed && this.#has("deflate-uncompressed-refused")) {
        return [1002, "message without RSV1 although permessage-deflate was agreed"];
      }
      // Flaw accept-invalid-utf8: text must be valid UTF-8 (§8.1); flaw no-fail-fast
      // checks it only once the message is whole, as is compressed text, once inflated.
      const validate = opcode === Opcode.Text && !this.#has("accept-invalid-utf8");
      const failFast = validate && !compressed && !this.#has("no-fail-fast");
      this.#message = {
        opcode,
        chunks: [],
        size: 0,
        frames: 0,
        utf8: failFast ? new TextDecoder("utf-8", { fatal: true }) : undefined,
        validateWhole: validate && !failFast,
        compressed,
      };
    }
    this.#message!.frames++;
    return undefined;
  }

  /**
   * Why RSV bits are not allowed (§5.2): only RSV1, only with permessage-deflate
   * agreed, never on a control or continuation frame (RFC 7692 §6, §6.1).
   */
  #rsvProblem({ rsv, opcode }: Header): string | undefined {
    if (rsv !== RSV1 || !this.#agreed) return "RSV bits set without a negotiated extension";
    // Flaws deflate-rsv1-on-control-accepted and deflate-rsv1-on-continuation-accepted.
    if (opcode >= 8 && !this.#has("deflate-rsv1-on-control-accepted")) {
      return "RSV1 set on a control frame (RFC 7692 §6.1)";
    }
    if (opcode === Opcode.Continuation && !this.#has("deflate-rsv1-on-continuation-accepted")) {
      return "RSV1 set on a continuation frame (RFC 7692 §6.1)";
    }
    return undefined;
  }

  /** Unmasks and keeps payload bytes as they arrive; text is validated at once (fail fast). */
  #onPayload(frame: Frame, piece: Uint8Array): Failure | undefined {
    const { header } = frame;
    if (header.maskKey) {
      piece = piece.slice(); // flaw accept-masked-frames; the read buffer stays as received
      xorMask(piece, header.maskKey, frame.received);
    }
    frame.received += piece.length;
    frame.remaining -= piece.length;
    if (frame.ignored) return undefined;
    if (header.opcode >= 8) {
      frame.chunks.push(piece);
      return undefined;
    }
    const message = this.#message!;
    message.chunks.push(piece);
    message.size += piece.length;
    try {
      message.utf8?.decode(piece, { stream: true });
    } catch {
      return [1007, "invalid UTF-8 in a text message"];
    }
    return undefined;
  }

  async #onFrame(frame: Frame): Promise<void> {
    const { header } = frame;
    if (frame.ignored) return;
    switch (header.opcode) {
      case Opcode.Ping:
        // Flaw no-pong: a ping must be answered with its payload (§5.5.2).
        if (!this.#has("no-pong")) await this.#pong(concat(frame.chunks));
        return;
      case Opcode.Pong:
        return; // unsolicited pongs are ignored (§5.5.3)
      case Opcode.Close:
        return await this.#onClose(concat(frame.chunks));
    }
    if (!header.fin) return;
    const message = this.#message!;
    this.#message = undefined;
    if (message.compressed) {
      const inflated = this.#decompressor!.decompress(concat(message.chunks));
      if (!inflated.ok && inflated.code === "too-big") {
        return await this.#fail([
          1009,
          `compressed message inflates past ${this.#maxMessage} bytes`,
        ]);
      }
      if (!inflated.ok) {
        // Flaw deflate-bad-inflate-ignored: data that does not inflate fails the connection.
        if (!this.#has("deflate-bad-inflate-ignored")) {
          return await this.#fail([
            1007,
            `compressed message does not inflate: ${inflated.reason}`,
          ]);
        }
        this.#decompressor = this.#newDecompressor(); // the failed one is closed
        return;
      }
      message.chunks = [inflated.data];
      message.size = inflated.data.length;
    }
    try {
      message.utf8?.decode(); // the text must end on a code point boundary
    } catch {
      return await this.#fail([1007, "text message ends inside a UTF-8 sequence"]);
    }
    if (message.validateWhole && !isValidUtf8(concat(message.chunks))) {
      return await this.#fail([1007, "text message is not valid UTF-8"]);
    }
    await this.#echo(message);
  }

  /** Echoes a message with its type, as one frame; some flaws change it (§1.2's echo). */
  async #echo(message: Message): Promise<void> {
    let payload = message.chunks;
    if (this.#has("truncate-long-echo") && message.size > 125) {
      payload = [concat(payload).subarray(0, 125)];
    }
    if (this.#has("corrupt-large-echo") && message.size >= MiB) {
      const whole = concat(payload).slice();
      whole[whole.length - 1] ^= 0xff;
      payload = [whole];
    }
    const binary = this.#has("echo-fragmented-as-binary") && message.frames > 1;
    const opcode = binary ? Opcode.Binary : message.opcode;
    // With permessage-deflate every message goes out compressed, as one frame with RSV1.
    if (this.#compressor) {
      return await this.#send(opcode, [this.#compressor.compress(concat(payload))], true, RSV1);
    }
    await this.#send(opcode, payload);
  }

  /** Answers a ping (§5.5.2); some flaws send what no client may send (§5.2, §5.5). */
  async #pong(payload: Uint8Array): Promise<void> {
    if (this.#has("fragmented-pong")) {
      // Flaw fragmented-pong: control frames must not be fragmented (§5.5).
      const half = payload.length >> 1;
      await this.#send(Opcode.Pong, [payload.subarray(0, half)], false);
      return await this.#send(Opcode.Continuation, [payload.subarray(half)]);
    }
    // Flaw reserved-opcode-pong: 0xB is reserved for further control frames (§5.2).
    await this.#send(this.#has("reserved-opcode-pong") ? 0xb : Opcode.Pong, [payload]);
  }

  // --- closing (§5.5.1, §7) -----------------------------------------------

  async #onClose(payload: Uint8Array): Promise<void> {
    if (payload.length === 1) return await this.#fail([1002, "close payload of 1 byte"]);
    let code: number | undefined;
    if (payload.length >= 2) {
      code = (payload[0] << 8) | payload[1];
      // Flaw refuse-1012-1014: these codes are registered and valid (§7.4.2, IANA).
      const refused = code >= 1012 && code <= 1014 && this.#has("refuse-1012-1014");
      // Flaw accept-invalid-close-codes: only the codes of §7.4 may be sent.
      const valid = isValidCloseCode(code) || this.#has("accept-invalid-close-codes");
      if (!valid || refused) {
        return await this.#fail([1002, `invalid close code ${code}`]);
      }
      // Flaw accept-invalid-close-reason: a close reason must be valid UTF-8 (§5.5.1, §8.1).
      if (!isValidUtf8(payload.subarray(2)) && !this.#has("accept-invalid-close-reason")) {
        return await this.#fail([1007, "close reason is not valid UTF-8"]);
      }
    }
    this.#state = "closed";
    this.#message = undefined;
    // Flaw no-close-reply: a close frame must be answered with one (§5.5.1).
    if (!this.#has("no-close-reply")) await this.#sendClose(code);
    // Flaw close-tcp-first: the server closes TCP first; the client waits (§7.1.1). Flaw
    // keep-tcp-open: it waits for ever, where it may close TCP after a reasonable time.
    if (this.#has("close-tcp-first")) this.#closeTcp();
    else if (!this.#has("keep-tcp-open")) this.#awaitTcpClose();
  }
}

/** Where the head's CRLF CRLF starts, or -1. */
function headEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

/**
 * The permessage-deflate offers of a Sec-WebSocket-Extensions value; throws
 * on one that does not parse or offers another extension (none is implemented).
 */
export function parseDeflateOffer(offer: string): ExtensionOffer[] {
  const parsed = parseExtensions(offer);
  if (parsed.type === "error") throw new Error(parsed.reason);
  const other = parsed.items.find((e) => e.name !== PERMESSAGE_DEFLATE);
  if (other) throw new Error(`only ${PERMESSAGE_DEFLATE} can be offered, not ${other.name}`);
  return parsed.items;
}

/**
 * Flaw deflate-bad-response-accepted: what the first permessage-deflate
 * element says, where it parses, over the first offer (defaults elsewhere).
 */
function agreedAsWritten(offer: ExtensionOffer, response: ExtensionOffer[]): AgreedDeflate {
  const none = { serverNoContextTakeover: false, clientNoContextTakeover: false };
  const offered = parseDeflateParams(offer, "offer");
  const answered = parseDeflateParams(
    response.find((e) => e.name === PERMESSAGE_DEFLATE)!,
    "response",
  );
  return agreedDeflate(offered.ok ? offered.params : none, answered.ok ? answered.params : none);
}

/**
 * Connects to a ws:// URL, echoes every message until the connection ends,
 * and says how it ended. Throws only on a URL that is not ws:// and on a
 * deflateOffer parseDeflateOffer refuses.
 */
export async function runStrictClient(
  url: string,
  options: StrictClientOptions = {},
): Promise<StrictClientResult> {
  let target = new URL(url);
  if (target.protocol !== "ws:") throw new Error(`not a ws:// URL: ${url}`);
  const boundMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + boundMs;
  for (let redirects = 0;; redirects++) {
    const client = new StrictClient(target, options);
    const result = await client.run(Math.max(0, deadline - Date.now()), boundMs);
    if (client.redirect === undefined) return result;
    if (redirects === MAX_REDIRECTS) {
      return { exitCode: 1, error: `more than ${MAX_REDIRECTS} redirects` };
    }
    target = client.redirect;
  }
}

/**
 * Reads the command line of a program that runs the strict client (this one,
 * tests/peers/autobahn_driver.ts): one ws:// URL, `--flaw NAME`... and
 * `--timeout S` (default 60), and the program's own `options` (parseArgs'
 * form). On bad usage it prints the reason and `usage` on stderr and exits
 * with status 2.
 */
export function parseClientCommand<T extends ParseArgsOptionsConfig>(
  args: string[],
  usage: string,
  options: T,
) {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        ...options,
        flaw: { type: "string", multiple: true, default: [] },
        timeout: { type: "string", default: "60" },
      },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage}`);
    Deno.exit(2);
  }
  const { values, positionals } = parsed;
  // parseArgs' types lose these two behind the program's options: they are as declared above.
  const { flaw, timeout } = values as { flaw: string[]; timeout: string };
  const seconds = Number(timeout);
  const unknown = flaw.filter((name) => !(FLAWS as readonly string[]).includes(name));
  const url = positionals.length === 1 && URL.canParse(positionals[0])
    ? new URL(positionals[0])
    : undefined;
  if (unknown.length > 0 || url?.protocol !== "ws:" || !(seconds > 0)) {
    console.error(unknown.length > 0 ? `unknown flaw: ${unknown.join(", ")}\n${usage}` : usage);
    Deno.exit(2);
  }
  return { url, flaws: flaw as Flaw[], timeoutMs: seconds * 1000, values };
}

if (import.meta.main) {
  const usage = "usage: strict_client.ts WS-URL [--flaw NAME]... [--protocol P]... " +
    "[--origin O] [--follow-redirects] [--deflate | --deflate-offer OFFERS] [--timeout S]\n" +
    `flaws: ${FLAWS.join(", ")}`;
  const { url, flaws, timeoutMs, values } = parseClientCommand(Deno.args, usage, {
    protocol: { type: "string", multiple: true, default: [] },
    origin: { type: "string" },
    "follow-redirects": { type: "boolean", default: false },
    deflate: { type: "boolean", default: false },
    "deflate-offer": { type: "string" },
  });
  const deflateOffer = values.deflate ? BROWSER_DEFLATE_OFFER : values["deflate-offer"];
  try {
    if (values.deflate && values["deflate-offer"] !== undefined) {
      throw new Error("--deflate and --deflate-offer exclude each other");
    }
    if (deflateOffer !== undefined) parseDeflateOffer(deflateOffer);
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage}`);
    Deno.exit(2);
  }
  const result = await runStrictClient(url.href, {
    flaws,
    protocols: values.protocol.flatMap((list) => list.split(",")).map((p) => p.trim()),
    origin: values.origin,
    followRedirects: values["follow-redirects"],
    deflateOffer,
    timeoutMs,
  });
  if (result.error !== undefined) console.error(`strict_client: ${result.error}`);
  Deno.exit(result.exitCode);
}
