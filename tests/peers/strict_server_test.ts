/**
 * Tests of the strict reference server with a raw TCP client built on the
 * project's codecs (no Deno WebSocket client): the rules it enforces, and that
 * each flaw changes exactly the behaviour it names. Every wait is bounded.
 */

import assert from "node:assert/strict";
import { encodeFrame, type FrameHeader, FrameParser, Opcode } from "../../harness/frame.ts";
import {
  checkResponse,
  encodeRequest,
  generateKey,
  type HeaderList,
  headerTokens,
  headerValues,
  type HttpHead,
  parseHead,
} from "../../harness/handshake.ts";
import {
  type AgreedDeflate,
  checkDeflateResponse,
  MessageCompressor,
  MessageDecompressor,
  type ResponseCheck,
} from "../../harness/deflate.ts";
import { parseExtensions } from "../../harness/server_handshake.ts";
import { spawnReady } from "../../harness/child.ts";
import {
  type Flaw,
  FLAW_FAMILIES,
  FLAWS,
  startStrictServer,
  type StrictServer,
  type StrictServerOptions,
} from "./strict_server.ts";

const MiB = 1024 * 1024;
const encoder = new TextEncoder();

type Event =
  | { type: "frame"; header: FrameHeader; payload: Uint8Array }
  | { type: "eof" }
  | { type: "timeout" };

interface FrameSpec {
  opcode: number;
  payload?: Uint8Array | string;
  fin?: boolean;
  rsv?: number;
  /** Default true: client frames are masked (§5.3). */
  masked?: boolean;
  lengthForm?: 7 | 16 | 64;
  declaredLength?: bigint;
  /** Default a random key. */
  maskKey?: Uint8Array;
}

function bytesOf(payload: Uint8Array | string | undefined): Uint8Array {
  return typeof payload === "string" ? encoder.encode(payload) : payload ?? new Uint8Array(0);
}

function frame(spec: FrameSpec): Uint8Array {
  return encodeFrame({
    ...spec,
    payload: bytesOf(spec.payload),
    maskKey: spec.masked === false
      ? undefined
      : spec.maskKey ?? crypto.getRandomValues(new Uint8Array(4)),
  });
}

function closeFrame(code?: number, reason: Uint8Array | string = ""): Uint8Array {
  const r = bytesOf(reason);
  const payload = code === undefined ? r : new Uint8Array([code >> 8, code & 0xff, ...r]);
  return frame({ opcode: Opcode.Close, payload });
}

function joinBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** A short, comparable description of what the client observed. */
function describe(event: Event): string {
  if (event.type !== "frame") return event.type;
  const { header, payload } = event;
  if (header.opcode === Opcode.Close) {
    return payload.length >= 2 ? `close ${(payload[0] << 8) | payload[1]}` : "close";
  }
  const name = ({ 0: "cont", 1: "text", 2: "binary", 9: "ping", 10: "pong" } as Record<
    number,
    string
  >)[header.opcode] ?? `op${header.opcode}`;
  const body = payload.length <= 40
    ? JSON.stringify(new TextDecoder("latin1").decode(payload))
    : `${payload.length} bytes`;
  return `${name} ${body}`;
}

/** A raw WebSocket client over Deno.connect, using the project's codecs. */
class RawClient {
  readonly conn: Deno.TcpConn;
  readonly key = generateKey();
  sentClose = false;
  #parser = new FrameParser({ maxPayload: 64 * MiB });
  #head: Uint8Array = new Uint8Array(0);
  /** One read at a time; a read that outlives a timeout is kept for the next call. */
  #inflight: Promise<Uint8Array | null> | undefined;

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  static async connect(server: StrictServer): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
  }

  request(
    headers: HeaderList = [],
    line: { method?: string; target?: string; httpVersion?: string } = {},
  ): Uint8Array {
    const defaults: HeaderList = [
      ["Host", "127.0.0.1"],
      ["Upgrade", "websocket"],
      ["Connection", "Upgrade"],
      ["Sec-WebSocket-Key", this.key],
      ["Sec-WebSocket-Version", "13"],
    ];
    // An override replaces the default of the same name; an empty value removes it.
    const names = new Set(headers.map(([n]) => n.toLowerCase()));
    const merged = [...defaults.filter(([n]) => !names.has(n.toLowerCase())), ...headers]
      .filter(([, v]) => v !== "");
    return encodeRequest({ target: "/", ...line, headers: merged });
  }

  /** Writes bytes; a peer that already closed is not an error (the transcript shows it). */
  async write(bytes: Uint8Array): Promise<void> {
    try {
      for (let n = 0; n < bytes.length;) n += await this.conn.write(bytes.subarray(n));
    } catch (error) {
      if (
        !(error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset)
      ) {
        throw error;
      }
    }
  }

  async send(spec: FrameSpec): Promise<void> {
    await this.write(frame(spec));
  }

  async close(code?: number, reason?: string): Promise<void> {
    this.sentClose = true;
    await this.write(closeFrame(code, reason));
  }

  async #read(ms: number): Promise<Uint8Array | null | "timeout"> {
    this.#inflight ??= (async () => {
      const buffer = new Uint8Array(256 * 1024);
      try {
        const n = await this.conn.read(buffer);
        return n === null ? null : buffer.subarray(0, n);
      } catch {
        return null; // reset or closed: the connection is over either way
      }
    })();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), ms));
    const result = await Promise.race([this.#inflight, timeout]);
    clearTimeout(timer);
    if (result !== "timeout") this.#inflight = undefined;
    return result;
  }

  /** Reads the HTTP response head; bytes after it go to the frame parser. */
  async readHead(ms = 2000): Promise<HttpHead> {
    const deadline = Date.now() + ms;
    while (true) {
      const parsed = parseHead(this.#head);
      if (parsed.type === "head") {
        this.#parser.push(this.#head.slice(parsed.head.length));
        return parsed.head;
      }
      if (parsed.type === "error") throw new Error(parsed.reason);
      const bytes = await this.#read(Math.max(1, deadline - Date.now()));
      if (bytes === "timeout") throw new Error("timed out waiting for the response head");
      if (bytes === null) throw new Error("connection closed before the response head");
      this.#head = joinBytes(this.#head, bytes);
    }
  }

  /** The next frame, EOF, or a timeout when nothing complete arrives within `ms`. */
  async next(ms = 2000): Promise<Event> {
    const deadline = Date.now() + ms;
    while (true) {
      const event = this.#parser.next();
      if (event?.type === "frame") return event;
      if (event?.type === "oversize") throw new Error("oversize frame from the server");
      const bytes = await this.#read(Math.max(1, deadline - Date.now()));
      if (bytes === "timeout") return { type: "timeout" };
      if (bytes === null) return { type: "eof" };
      this.#parser.push(bytes);
    }
  }

  /**
   * Everything until EOF or `ms` of silence, described. A close frame from the
   * server is answered once, as a client must (§5.5.1).
   */
  async transcript(ms = 500): Promise<string> {
    const seen: string[] = [];
    while (true) {
      const event = await this.next(ms);
      seen.push(describe(event));
      if (event.type !== "frame") return seen.join(" | ");
      if (event.header.opcode === Opcode.Close && !this.sentClose) await this.close(1000);
    }
  }

  async dispose(): Promise<void> {
    try {
      this.conn.close();
    } catch { /* already closed */ }
    await this.#inflight;
  }
}

/** Runs `body` against a fresh server and client, closing both whatever happens. */
async function withServer(
  options: Parameters<typeof startStrictServer>[0],
  body: (server: StrictServer) => Promise<void>,
): Promise<void> {
  const server = startStrictServer(options);
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

async function withClient<T>(server: StrictServer, body: (c: RawClient) => Promise<T>): Promise<T> {
  const client = await RawClient.connect(server);
  try {
    return await body(client);
  } finally {
    await client.dispose();
  }
}

/** An open WebSocket client: handshake done and checked. */
async function withOpen<T>(
  server: StrictServer,
  body: (c: RawClient) => Promise<T>,
  headers: HeaderList = [],
): Promise<T> {
  return await withClient(server, async (c) => {
    await c.write(c.request(headers));
    const offered = headerTokens(headers, "sec-websocket-protocol");
    assert.deepEqual(await checkResponse(await c.readHead(), c.key, offered), []);
    return await body(c);
  });
}

/** Status and selected headers of the answer to a request with these header overrides. */
async function handshakeStatus(
  server: StrictServer,
  headers: HeaderList,
  raw?: Uint8Array,
): Promise<string> {
  return await withClient(server, async (c) => {
    await c.write(raw ?? c.request(headers));
    const head = await c.readHead();
    const versions = headerValues(head.headers, "sec-websocket-version");
    return head.startLine.split(" ")[1] + (versions.length ? ` version=${versions}` : "");
  });
}

type RequestLine = { method?: string; target?: string; httpVersion?: string };

/** handshakeStatus for several requests: header overrides, or a request line. */
async function handshakeStatuses(
  server: StrictServer,
  requests: (HeaderList | RequestLine)[],
): Promise<string> {
  const seen: string[] = [];
  for (const request of requests) {
    seen.push(
      await withClient(server, async (c) => {
        await c.write(Array.isArray(request) ? c.request(request) : c.request([], request));
        const head = await c.readHead();
        const versions = headerValues(head.headers, "sec-websocket-version");
        return head.startLine.split(" ")[1] + (versions.length ? ` version=${versions}` : "");
      }),
    );
  }
  return seen.join(", ");
}

/** The values of `name` in the answers to requests offering each of `offers` in `header`. */
async function answered(
  server: StrictServer,
  header: string,
  offers: string[],
  name = header,
): Promise<string> {
  const seen: string[] = [];
  for (const offer of offers) {
    seen.push(
      await withClient(server, async (c) => {
        await c.write(c.request(offer === "" ? [] : [[header, offer]]));
        const head = await c.readHead();
        assert.deepEqual(head.startLine.split(" ")[1], "101");
        return headerValues(head.headers, name).join(" + ") || "none";
      }),
    );
  }
  return seen.join(", ");
}

/** Sends `parts` as separate TCP segments, `gap` ms apart (Nagle off). */
async function trickle(c: RawClient, parts: Uint8Array[], gap = 20): Promise<void> {
  c.conn.setNoDelay(true);
  for (const part of parts) {
    await c.write(part);
    await new Promise((r) => setTimeout(r, gap));
  }
}

/** The bytes one at a time. */
function bytewise(bytes: Uint8Array): Uint8Array[] {
  return [...bytes].map((b) => new Uint8Array([b]));
}

/** The first frame the server sends in answer to `bytes`, with its header's encoding. */
function echoHeader(server: StrictServer, bytes: Uint8Array): Promise<string> {
  return withOpen(server, async (c) => {
    await c.write(bytes);
    const event = await c.next();
    await c.close(1000);
    const rest = await c.transcript();
    if (event.type !== "frame") return `${describe(event)} | ${rest}`;
    const { masked, rsv, lengthForm } = event.header;
    return `${describe(event)} masked=${masked} rsv=${rsv} form=${lengthForm} | ${rest}`;
  });
}

/** Sends close codes, one connection each; the transcripts. */
async function closeCodes(server: StrictServer, codes: number[]): Promise<string> {
  const seen: string[] = [];
  for (const code of codes) {
    seen.push(
      await withOpen(server, async (c) => {
        await c.close(code);
        return await c.transcript();
      }),
    );
  }
  return seen.join(" ; ");
}

Deno.test("handshake: 101, right accept, Server header, frames in the same segment", async () => {
  await withServer({}, async (server) => {
    await withClient(server, async (c) => {
      const offered = ["chat", "superchat"];
      const request = c.request([
        ["Sec-WebSocket-Protocol", offered.join(", ")],
        ["Sec-WebSocket-Extensions", "permessage-deflate"],
      ]);
      // The first frame rides in the same write as the head: the server must process it.
      await c.write(joinBytes(request, frame({ opcode: Opcode.Text, payload: "early" })));
      const head = await c.readHead();
      assert.deepEqual(head.startLine, "HTTP/1.1 101 Switching Protocols");
      assert.deepEqual(await checkResponse(head, c.key, offered), []);
      assert.deepEqual(headerValues(head.headers, "server"), ["wsconform-strict"]);
      assert.deepEqual(headerTokens(head.headers, "sec-websocket-protocol"), []); // default: none
      assert.deepEqual(headerTokens(head.headers, "sec-websocket-extensions"), []);
      assert.deepEqual(describe(await c.next()), 'text "early"');
    });
  });
});

Deno.test("handshake: the first offered subprotocol is selected only if configured", async () => {
  await withServer({ protocols: ["chat"] }, async (server) => {
    for (const [offer, selected] of [["chat, superchat", ["chat"]], ["superchat, chat", []]]) {
      await withClient(server, async (c) => {
        await c.write(c.request([["Sec-WebSocket-Protocol", offer as string]]));
        const head = await c.readHead();
        assert.deepEqual(head.startLine.split(" ")[1], "101");
        assert.deepEqual(headerValues(head.headers, "sec-websocket-protocol"), selected);
      });
    }
  });
});

Deno.test("handshake: version 8 gets 426 listing 13; bad requests get 400 or 431", async () => {
  await withServer({}, async (server) => {
    assert.deepEqual(
      await handshakeStatus(server, [["Sec-WebSocket-Version", "8"]]),
      "426 version=13",
    );
    assert.deepEqual(
      await handshakeStatus(server, [["Sec-WebSocket-Version", ""]]),
      "426 version=13",
    );
    assert.deepEqual(await handshakeStatus(server, [["Host", ""]]), "400");
    assert.deepEqual(await handshakeStatus(server, [["Upgrade", "h2c"]]), "400");
    assert.deepEqual(await handshakeStatus(server, [["Connection", "keep-alive"]]), "400");
    assert.deepEqual(await handshakeStatus(server, [["Sec-WebSocket-Key", "c2hvcnQ="]]), "400");
    assert.deepEqual(await handshakeStatus(server, [["Sec-WebSocket-Protocol", "a, a"]]), "400");
    assert.deepEqual(
      await handshakeStatus(server, [["Sec-WebSocket-Key", generateKey()]], undefined),
      "101",
    );
    const post = encodeRequest({
      method: "POST",
      target: "/",
      headers: [["Host", "x"], ["Upgrade", "websocket"], ["Connection", "upgrade"], [
        "Sec-WebSocket-Key",
        generateKey(),
      ], ["Sec-WebSocket-Version", "13"]],
    });
    assert.deepEqual(await handshakeStatus(server, [], post), "400");
    assert.deepEqual(await handshakeStatus(server, [["X-Padding", "p".repeat(9000)]]), "431");
  });
});

Deno.test("echo: text, binary, fragmented, empty; unmasked minimal frames", async () => {
  await withServer({}, async (server) => {
    await withOpen(server, async (c) => {
      await c.send({ opcode: Opcode.Text, payload: "héllo" });
      await c.send({ opcode: Opcode.Binary, payload: new Uint8Array([0, 255]), lengthForm: 64 });
      await c.send({
        opcode: Opcode.Text,
        payload: new Uint8Array([0x61, 0x62, 0xc3]),
        fin: false,
      });
      await c.send({ opcode: Opcode.Continuation, payload: "", fin: false });
      await c.send({ opcode: Opcode.Continuation, payload: new Uint8Array([0xa9]) });
      await c.send({ opcode: Opcode.Text });
      const long = new Uint8Array(300).fill(7);
      await c.send({ opcode: Opcode.Binary, payload: long });
      await c.close(1000);
      const events: Event[] = [];
      for (let i = 0; i < 5; i++) events.push(await c.next());
      assert.deepEqual(events.map(describe), [
        `text "h\xc3\xa9llo"`,
        'binary "\\u0000ÿ"',
        `text "ab\xc3\xa9"`,
        'text ""',
        "binary 300 bytes",
      ]);
      for (const event of events) {
        assert(event.type === "frame" && !event.header.masked && event.header.fin);
        assert.deepEqual(event.header.lengthForm, event.payload.length < 126 ? 7 : 16);
      }
      assert.deepEqual(await c.transcript(), "close 1000 | eof");
    });
  });
});

Deno.test("echo: 16 MiB in one frame and 4 MiB as 65536 frames, quickly", async () => {
  await withServer({}, async (server) => {
    await withOpen(server, async (c) => {
      const big = new Uint8Array(16 * MiB).fill(0x61);
      big[big.length - 1] = 0x7a;
      await c.send({ opcode: Opcode.Text, payload: big });
      const echo = await c.next(10_000);
      assert(echo.type === "frame" && echo.header.opcode === Opcode.Text);
      assert.deepEqual(echo.payload.length, big.length);
      assert.deepEqual(echo.payload[big.length - 1], 0x7a);

      const piece = new Uint8Array(64);
      const frames: Uint8Array[] = [];
      for (let i = 0; i < 65536; i++) {
        piece.fill(i & 0xff);
        const opcode = i === 0 ? Opcode.Binary : Opcode.Continuation;
        frames.push(frame({ opcode, payload: piece, fin: i === 65535 }));
      }
      await c.write(joinBytes(...frames));
      const many = await c.next(10_000);
      assert(many.type === "frame" && many.header.opcode === Opcode.Binary);
      assert.deepEqual(many.payload.length, 4 * MiB);
      assert.deepEqual([many.payload[0], many.payload[64], many.payload[4 * MiB - 1]], [0, 1, 255]);
    });
  });
});

Deno.test("ping: answered with the same payload, even inside a fragmented message", async () => {
  await withServer({}, async (server) => {
    await withOpen(server, async (c) => {
      await c.send({ opcode: Opcode.Ping, payload: "p1" });
      assert.deepEqual(describe(await c.next()), 'pong "p1"');
      await c.send({ opcode: Opcode.Text, payload: "a", fin: false });
      await c.send({ opcode: Opcode.Ping, payload: "p2" });
      // The pong comes before the message ends.
      assert.deepEqual(describe(await c.next()), 'pong "p2"');
      await c.send({ opcode: Opcode.Pong, payload: "unsolicited" });
      await c.send({ opcode: Opcode.Continuation, payload: "b" });
      await c.close(1000);
      assert.deepEqual(await c.transcript(), 'text "ab" | close 1000 | eof');
    });
  });
});

Deno.test("protocol errors fail the connection with 1002, 1007 or 1009", async () => {
  const cases: [string, Uint8Array, string][] = [
    ["unmasked", frame({ opcode: Opcode.Text, payload: "x", masked: false }), "close 1002"],
    ["rsv", frame({ opcode: Opcode.Text, payload: "x", rsv: 4 }), "close 1002"],
    ["opcode 3", frame({ opcode: 3 }), "close 1002"],
    ["opcode 11", frame({ opcode: 11 }), "close 1002"],
    ["ping without FIN", frame({ opcode: Opcode.Ping, fin: false }), "close 1002"],
    [
      "ping of 126 bytes",
      frame({ opcode: Opcode.Ping, payload: new Uint8Array(126) }),
      "close 1002",
    ],
    ["continuation alone", frame({ opcode: Opcode.Continuation, payload: "x" }), "close 1002"],
    [
      "text inside a message",
      joinBytes(
        frame({ opcode: Opcode.Text, payload: "a", fin: false }),
        frame({ opcode: Opcode.Text, payload: "b" }),
      ),
      "close 1002",
    ],
    [
      "64-bit length MSB",
      frame({ opcode: Opcode.Binary, declaredLength: 1n << 63n }),
      "close 1002",
    ],
    [
      "invalid UTF-8",
      frame({ opcode: Opcode.Text, payload: new Uint8Array([0xff]) }),
      "close 1007",
    ],
    [
      "text ends inside a code point",
      frame({ opcode: Opcode.Text, payload: new Uint8Array([0xe2, 0x82]) }),
      "close 1007",
    ],
    [
      "over maxMessage",
      frame({ opcode: Opcode.Binary, payload: new Uint8Array(1001) }),
      "close 1009",
    ],
    [
      "fragments over maxMessage",
      joinBytes(
        frame({ opcode: Opcode.Binary, payload: new Uint8Array(600), fin: false }),
        frame({ opcode: Opcode.Continuation, payload: new Uint8Array(600) }),
      ),
      "close 1009",
    ],
    [
      "close of 1 byte",
      frame({ opcode: Opcode.Close, payload: new Uint8Array([3]) }),
      "close 1002",
    ],
    ["close code 1005", closeFrame(1005), "close 1002"],
    ["close code 999", closeFrame(999), "close 1002"],
    ["close reason not UTF-8", closeFrame(1000, new Uint8Array([0xc0])), "close 1007"],
  ];
  await withServer({ maxMessage: 1000 }, async (server) => {
    for (const [name, bytes, expected] of cases) {
      const seen = await withOpen(server, async (c) => {
        await c.write(bytes);
        // The server sends its close, then closes TCP: after our reply, or at once when
        // no reply can come (the bad frame was a close, or it cannot parse past it).
        return await c.transcript(2000);
      });
      assert.deepEqual(seen, `${expected} | eof`, name);
    }
  });
});

Deno.test("fail fast: invalid UTF-8 inside one frame fails before the frame ends", async () => {
  await withServer({}, async (server) => {
    await withOpen(server, async (c) => {
      const payload = encoder.encode("valid start \xff then more text");
      payload[12] = 0xff;
      const bytes = frame({ opcode: Opcode.Text, payload });
      const cut = bytes.length - payload.length + 13; // header, mask and up to the bad byte
      await c.write(bytes.subarray(0, cut));
      assert.deepEqual(describe(await c.next()), "close 1007");
      // The rest of the frame is ignored; our close reply ends the connection.
      await c.write(bytes.subarray(cut));
      await c.close(1000);
      assert.deepEqual(await c.transcript(), "eof");
    });
  });
});

Deno.test("close: the code is echoed (empty for empty), then the server closes TCP", async () => {
  await withServer({}, async (server) => {
    for (
      const [code, expected] of [[1000, "close 1000"], [4999, "close 4999"], [undefined, "close"]]
    ) {
      const seen = await withOpen(server, async (c) => {
        await c.close(code as number | undefined, code === undefined ? undefined : "bye");
        return await c.transcript();
      });
      assert.deepEqual(seen, `${expected} | eof`);
    }
  });
});

Deno.test("close: a client that never answers our close is cut off within about 1 s", async () => {
  await withServer({}, async (server) => {
    await withOpen(server, async (c) => {
      await c.send({ opcode: Opcode.Text, masked: false });
      assert.deepEqual(describe(await c.next()), "close 1002");
      const start = Date.now();
      assert.deepEqual(describe(await c.next(3000)), "eof");
      assert(Date.now() - start < 2000);
    });
  });
});

Deno.test("handshake: §4.2.1 refusals (400, 426 listing 13) and valid variants accepted", async () => {
  await withServer({}, async (server) => {
    const refusals: [string, (HeaderList | RequestLine)[], string][] = [
      ["version", [
        [["Sec-WebSocket-Version", "8"]],
        [["Sec-WebSocket-Version", "14"]],
        [["Sec-WebSocket-Version", ""]],
        [["Sec-WebSocket-Version", "13"], ["Sec-WebSocket-Version", "13"]],
      ], "426 version=13, 426 version=13, 426 version=13, 426 version=13"],
      ["key", [
        [["Sec-WebSocket-Key", ""]],
        [["Sec-WebSocket-Key", generateKey()], ["Sec-WebSocket-Key", generateKey()]],
        [["Sec-WebSocket-Key", "c2hvcnQ="]],
        [["Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAAA"]], // 18 bytes
      ], "400, 400, 400, 400"],
      [
        "request line",
        [{ method: "POST" }, { method: "get" }, { httpVersion: "HTTP/1.0" }],
        "400, 400, 400",
      ],
      ["host and tokens", [
        [["Host", ""]],
        [["Upgrade", ""]],
        [["Upgrade", "h2c"]],
        [["Connection", ""]],
        [["Connection", "keep-alive"]],
      ], "400, 400, 400, 400, 400"],
      ["accepted", [
        [["Upgrade", "WebSocket"]],
        [["Upgrade", "h2c, websocket"]],
        [["Connection", "keep-alive, Upgrade"]],
        [["Connection", "UPGRADE"]],
        [["host", "127.0.0.1"], ["upgrade", "websocket"], ["CONNECTION", "Upgrade"]],
        [["sec-websocket-key", generateKey()], ["SEC-WEBSOCKET-VERSION", "13"]],
        { target: "/chat?room=1&x=%20" },
      ], "101, 101, 101, 101, 101, 101, 101"],
    ];
    for (const [name, requests, expected] of refusals) {
      assert.deepEqual(await handshakeStatuses(server, requests), expected, name);
    }
    // No extension is ever accepted, valid offer or not (RFC 7692 §5); no subprotocol unoffered.
    assert.deepEqual(
      await answered(server, "Sec-WebSocket-Extensions", [
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits=7",
        "x-unknown, permessage-deflate",
      ]),
      "none, none, none",
    );
  });
  await withServer({ protocols: ["chat", "soap"] }, async (server) => {
    assert.deepEqual(
      await answered(server, "Sec-WebSocket-Protocol", ["", "superchat", "chat", "soap, chat"]),
      "none, none, chat, soap",
    );
  });
});

Deno.test("frames: every header form one byte per segment; zero mask; non-minimal lengths", async () => {
  await withServer({}, async (server) => {
    await withOpen(server, async (c) => {
      const frames = [
        frame({ opcode: Opcode.Text, payload: "a" }), // 6-byte header
        frame({ opcode: Opcode.Binary, payload: new Uint8Array(126) }), // 8
        frame({ opcode: Opcode.Binary, payload: new Uint8Array(65536) }), // 14
        frame({ opcode: Opcode.Text, payload: "b", lengthForm: 16 }), // non-minimal 16-bit
        frame({ opcode: Opcode.Text, payload: "c", lengthForm: 64 }), // non-minimal 64-bit
        frame({ opcode: Opcode.Text, payload: "z", maskKey: new Uint8Array(4) }),
      ];
      for (const bytes of frames) {
        const header = bytes.length - (bytes.length > 1000 ? 65536 : bytes.length > 100 ? 126 : 1);
        await trickle(c, [...bytewise(bytes.subarray(0, header)), bytes.subarray(header)], 5);
      }
      await c.close(1000);
      assert.deepEqual(
        await c.transcript(),
        'text "a" | binary 126 bytes | binary 65536 bytes | text "b" | text "c" | text "z" | ' +
          "close 1000 | eof",
      );
    });
  });
});

Deno.test("close: 1012-1014 accepted, 1015 refused, 125 bytes, reason checked in pieces", async () => {
  await withServer({}, async (server) => {
    assert.deepEqual(
      await closeCodes(server, [1012, 1013, 1014, 1015]),
      "close 1012 | eof ; close 1013 | eof ; close 1014 | eof ; close 1002 | eof",
    );
    const seen = await withOpen(server, async (c) => {
      await c.close(3000, "é".repeat(61) + "x"); // 2 + 123 bytes
      return await c.transcript();
    });
    assert.deepEqual(seen, "close 3000 | eof");
    // An invalid reason whose close frame arrives in several segments: 1007 once it is whole.
    const pieces = await withOpen(server, async (c) => {
      c.sentClose = true;
      const bytes = closeFrame(1000, new Uint8Array([0x61, 0xed, 0xa0, 0x80, 0x62]));
      await trickle(c, [bytes.subarray(0, 1), bytes.subarray(1, 7), bytes.subarray(7)]);
      return await c.transcript();
    });
    assert.deepEqual(pieces, "close 1007 | eof");
  });
});

Deno.test("close: data after the client's close is ignored, even in a later segment", async () => {
  await withServer({}, async (server) => {
    const seen = await withOpen(server, async (c) => {
      c.sentClose = true;
      await trickle(c, [
        joinBytes(closeFrame(1000), frame({ opcode: Opcode.Text, payload: "same" })),
        frame({ opcode: Opcode.Ping, payload: "later" }),
      ], 5);
      return await c.transcript();
    });
    assert.deepEqual(seen, "close 1000 | eof");
  });
});

/**
 * For each flaw, a probe whose transcript differs between the strict server
 * and the flawed one. Every probe ends with the client's close 1000, so a
 * healthy run ends "close 1000 | eof".
 */
const probes: Record<
  Exclude<Flaw, DeflateFlaw>,
  {
    probe: (server: StrictServer) => Promise<string>;
    strict: string;
    flawed: string;
    /** What the flawed server answers to a plain echo and close; default the strict answer. */
    sanity?: string;
    /** Headers of that echo's handshake. */
    sanityHeaders?: HeaderList;
  }
> = {
  "truncate-long-echo": {
    probe: (s) => sending(s, frame({ opcode: Opcode.Binary, payload: new Uint8Array(200) })),
    strict: "binary 200 bytes | close 1000 | eof",
    flawed: "binary 125 bytes | close 1000 | eof",
  },
  "no-pong": {
    probe: (s) => sending(s, frame({ opcode: Opcode.Ping, payload: "p" })),
    strict: 'pong "p" | close 1000 | eof',
    flawed: "close 1000 | eof",
  },
  "accept-rsv": {
    probe: (s) => sending(s, frame({ opcode: Opcode.Text, payload: "x", rsv: 2 })),
    strict: "close 1002 | eof",
    flawed: 'text "x" | close 1000 | eof',
  },
  "accept-reserved-opcodes": {
    probe: (s) =>
      sending(s, frame({ opcode: 5, payload: "?" }), frame({ opcode: Opcode.Text, payload: "t" })),
    strict: "close 1002 | eof",
    flawed: 'text "t" | close 1000 | eof',
  },
  "accept-fragmented-control": {
    probe: (s) =>
      sending(
        s,
        frame({ opcode: Opcode.Continuation, payload: "c" }),
        frame({ opcode: Opcode.Ping, payload: "p", fin: false }),
        frame({ opcode: Opcode.Text, payload: "t" }),
      ),
    strict: "close 1002 | eof",
    flawed: 'pong "p" | text "t" | close 1000 | eof',
  },
  "no-utf8-check": {
    probe: (s) => sending(s, frame({ opcode: Opcode.Text, payload: new Uint8Array([0x61, 0xff]) })),
    strict: "close 1007 | eof",
    flawed: 'text "aÿ" | close 1000 | eof',
  },
  "no-fail-fast": {
    probe: (s) =>
      withOpen(s, async (c) => {
        const bytes = frame({
          opcode: Opcode.Text,
          payload: new Uint8Array([0x61, 0xff, 0x62, 0x63]),
        });
        await c.write(bytes.subarray(0, bytes.length - 2));
        const early = describe(await c.next(300));
        await c.write(bytes.subarray(bytes.length - 2));
        await c.close(1000);
        return `${early} ; ${await c.transcript()}`;
      }),
    strict: "close 1007 ; eof",
    flawed: "timeout ; close 1007 | eof",
  },
  "accept-invalid-close-codes": {
    probe: (s) =>
      withOpen(s, async (c) => {
        await c.close(1004);
        return await c.transcript();
      }),
    strict: "close 1002 | eof",
    flawed: "close 1004 | eof",
  },
  "no-close-reply": {
    probe: (s) => sending(s),
    strict: "close 1000 | eof",
    flawed: "eof",
  },
  "keep-tcp-open": {
    probe: (s) => sending(s),
    strict: "close 1000 | eof",
    flawed: "close 1000 | timeout",
  },
  "corrupt-large-echo": {
    probe: (s) =>
      withOpen(s, async (c) => {
        const data = new Uint8Array(MiB).fill(9);
        await c.send({ opcode: Opcode.Binary, payload: data });
        const echo = await c.next(5000);
        const intact = echo.type === "frame" && echo.payload.every((b) => b === 9);
        await c.close(1000);
        return `${describe(echo)} ${intact ? "intact" : "corrupted"} | ${await c.transcript()}`;
      }),
    strict: "binary 1048576 bytes intact | close 1000 | eof",
    flawed: "binary 1048576 bytes corrupted | close 1000 | eof",
  },
  "echo-fragmented-as-binary": {
    probe: (s) =>
      sending(
        s,
        frame({ opcode: Opcode.Text, payload: "ab", fin: false }),
        frame({ opcode: Opcode.Continuation, payload: "cd" }),
        frame({ opcode: Opcode.Text, payload: "ef" }),
      ),
    strict: 'text "abcd" | text "ef" | close 1000 | eof',
    flawed: 'binary "abcd" | text "ef" | close 1000 | eof',
  },
  "accept-unmasked": {
    probe: (s) => sending(s, frame({ opcode: Opcode.Text, payload: "u", masked: false })),
    strict: "close 1002 | eof",
    flawed: 'text "u" | close 1000 | eof',
  },
  "close-code-1000-on-error": {
    probe: (s) => sending(s, frame({ opcode: Opcode.Text, payload: new Uint8Array([0xff]) })),
    strict: "close 1007 | eof",
    flawed: "close 1000 | eof",
  },
  "drop-on-error": {
    probe: (s) => sending(s, frame({ opcode: Opcode.Text, payload: "u", masked: false })),
    strict: "close 1002 | eof",
    flawed: "eof",
  },
  "accept-any-version": {
    probe: (s) =>
      handshakeStatuses(s, [
        [["Sec-WebSocket-Version", "8"]],
        [["Sec-WebSocket-Version", "14"]],
        [["Sec-WebSocket-Version", ""]],
      ]),
    strict: "426 version=13, 426 version=13, 426 version=13",
    flawed: "101, 101, 426 version=13",
  },
  "accept-no-version": {
    probe: (s) =>
      handshakeStatuses(s, [
        [["Sec-WebSocket-Version", "14"]],
        [["Sec-WebSocket-Version", ""]],
      ]),
    strict: "426 version=13, 426 version=13",
    flawed: "426 version=13, 101",
  },
  "accept-bad-key": {
    probe: (s) =>
      handshakeStatuses(s, [
        [["Sec-WebSocket-Key", ""]],
        [["Sec-WebSocket-Key", generateKey()], ["Sec-WebSocket-Key", generateKey()]],
        [["Sec-WebSocket-Key", "c2hvcnQ="]],
      ]),
    strict: "400, 400, 400",
    flawed: "101, 101, 101",
  },
  "accept-any-method": {
    probe: (s) => handshakeStatuses(s, [{ method: "POST" }, { httpVersion: "HTTP/1.0" }]),
    strict: "400, 400",
    flawed: "101, 101",
  },
  "accept-no-host": {
    probe: (s) => handshakeStatuses(s, [[["Host", ""]]]),
    strict: "400",
    flawed: "101",
  },
  "accept-no-upgrade-token": {
    probe: (s) => handshakeStatuses(s, [[["Upgrade", ""]], [["Connection", "keep-alive"]]]),
    strict: "400, 400",
    flawed: "101, 101",
  },
  "strict-token-match": {
    probe: (s) =>
      handshakeStatuses(s, [
        [["Upgrade", "WebSocket"]],
        [["Connection", "keep-alive, Upgrade"]],
        [["host", "127.0.0.1"], ["SEC-WEBSOCKET-VERSION", "13"]],
      ]),
    strict: "101, 101, 101",
    flawed: "400, 400, 400",
  },
  "reject-query-string": {
    probe: (s) => handshakeStatuses(s, [{ target: "/chat?room=1&x=%20" }]),
    strict: "101",
    flawed: "400",
  },
  "select-unoffered-protocol": {
    probe: (s) => answered(s, "Sec-WebSocket-Protocol", ["", "superchat, soap"]),
    strict: "none, none",
    flawed: "chat, chat",
    sanityHeaders: [["Sec-WebSocket-Protocol", "chat"]],
  },
  "accept-unknown-extension": {
    probe: (s) =>
      answered(s, "Sec-WebSocket-Extensions", [
        "x-unknown",
        "permessage-deflate; client_max_window_bits=7",
      ]),
    strict: "none, none",
    flawed: "x-unknown, permessage-deflate; client_max_window_bits=7",
  },
  "ignore-early-frames": {
    probe: (s) =>
      withClient(s, async (c) => {
        await c.write(joinBytes(c.request(), frame({ opcode: Opcode.Text, payload: "early" })));
        assert.deepEqual(await checkResponse(await c.readHead(), c.key), []);
        await c.close(1000);
        return await c.transcript();
      }),
    strict: 'text "early" | close 1000 | eof',
    flawed: "close 1000 | eof",
  },
  "no-version-list": {
    probe: (s) => handshakeStatuses(s, [[["Sec-WebSocket-Version", "8"]]]),
    strict: "426 version=13",
    flawed: "400",
  },
  "reject-zero-mask": {
    probe: (s) =>
      sending(s, frame({ opcode: Opcode.Text, payload: "z", maskKey: new Uint8Array(4) })),
    strict: 'text "z" | close 1000 | eof',
    flawed: "close 1002 | eof",
  },
  "header-needs-one-read": {
    probe: (s) =>
      withOpen(s, async (c) => {
        await trickle(c, bytewise(frame({ opcode: Opcode.Text, payload: "s" })));
        await c.close(1000);
        return await c.transcript();
      }),
    strict: 'text "s" | close 1000 | eof',
    flawed: "eof",
  },
  "reject-non-minimal-lengths": {
    probe: (s) =>
      sending(
        s,
        frame({ opcode: Opcode.Text, payload: "n", lengthForm: 16 }),
        frame({ opcode: Opcode.Binary, payload: "m", lengthForm: 64 }),
      ),
    strict: 'text "n" | binary "m" | close 1000 | eof',
    flawed: "close 1002 | eof",
  },
  "accept-msb-length": {
    probe: (s) =>
      sending(
        s,
        frame({ opcode: Opcode.Binary, payload: "abc", declaredLength: (1n << 63n) + 3n }),
      ),
    strict: "close 1002 | eof",
    flawed: 'binary "abc" | close 1000 | eof',
  },
  "mask-server-frames": {
    probe: (s) => echoHeader(s, frame({ opcode: Opcode.Text, payload: "h" })),
    strict: 'text "h" masked=false rsv=0 form=7 | close 1000 | eof',
    flawed: 'text "h" masked=true rsv=0 form=7 | close 1000 | eof',
  },
  "non-minimal-server-lengths": {
    probe: (s) => echoHeader(s, frame({ opcode: Opcode.Text, payload: "h" })),
    strict: 'text "h" masked=false rsv=0 form=7 | close 1000 | eof',
    flawed: 'text "h" masked=false rsv=0 form=64 | close 1000 | eof',
  },
  "rsv-on-server-frames": {
    probe: (s) => echoHeader(s, frame({ opcode: Opcode.Text, payload: "h" })),
    strict: 'text "h" masked=false rsv=0 form=7 | close 1000 | eof',
    flawed: 'text "h" masked=false rsv=4 form=7 | close 1000 | eof',
  },
  "send-invalid-close-code": {
    probe: (s) => sending(s, frame({ opcode: Opcode.Text, payload: "u", masked: false })),
    strict: "close 1002 | eof",
    flawed: "close 1005 | eof",
  },
  "data-after-close": {
    probe: (s) => sending(s),
    strict: "close 1000 | eof",
    flawed: 'close 1000 | text "after close" | eof',
    sanity: 'text "ok" | close 1000 | text "after close" | eof',
  },
  "refuse-1012-1014": {
    probe: (s) => closeCodes(s, [1012, 1013, 1014]),
    strict: "close 1012 | eof ; close 1013 | eof ; close 1014 | eof",
    flawed: "close 1002 | eof ; close 1002 | eof ; close 1002 | eof",
  },
  "echo-1015": {
    probe: (s) => closeCodes(s, [1015]),
    strict: "close 1002 | eof",
    flawed: "close 1015 | eof",
  },
  "accept-invalid-close-reason": {
    probe: (s) =>
      withOpen(s, async (c) => {
        c.sentClose = true;
        await c.write(closeFrame(1000, new Uint8Array([0x6f, 0x6b, 0xc0])));
        return await c.transcript();
      }),
    strict: "close 1007 | eof",
    flawed: "close 1000 | eof",
  },
  "reject-125-close": {
    probe: (s) =>
      withOpen(s, async (c) => {
        await c.close(1000, "r".repeat(123));
        return await c.transcript();
      }),
    strict: "close 1000 | eof",
    flawed: "close 1002 | eof",
  },
  "process-data-after-close": {
    probe: (s) =>
      withOpen(s, async (c) => {
        c.sentClose = true;
        await c.write(joinBytes(closeFrame(1000), frame({ opcode: Opcode.Text, payload: "late" })));
        return await c.transcript();
      }),
    strict: "close 1000 | eof",
    flawed: 'text "late" | close 1000 | eof',
  },
  "limit-wrong-code": {
    probe: (s) =>
      sending(s, frame({ opcode: Opcode.Binary, declaredLength: 64n * BigInt(MiB) + 1n })),
    strict: "close 1009 | eof",
    flawed: "close 1002 | eof",
  },
  "slow-tcp-close": {
    probe: (s) =>
      withOpen(s, async (c) => {
        await c.close(1000);
        const reply = describe(await c.next());
        const start = Date.now();
        const end = describe(await c.next(5000));
        const ms = Date.now() - start;
        return `${reply} | ${end} ${ms < 1000 ? "within 1 s" : ms < 2500 ? "slow" : "after ~3 s"}`;
      }),
    strict: "close 1000 | eof within 1 s",
    flawed: "close 1000 | eof after ~3 s",
    sanity: 'text "ok" | close 1000 | timeout',
  },
  "idle-ping": {
    probe: (s) =>
      withOpen(s, async (c) => {
        const idle = describe(await c.next(1800)); // the flawed server pings after 1 s
        await c.close(1000);
        return `${idle} | ${await c.transcript()}`;
      }),
    strict: "timeout | close 1000 | eof",
    flawed: 'ping "idle" | close 1000 | eof',
  },
  "idle-close": {
    probe: (s) =>
      withOpen(s, async (c) => {
        const idle = describe(await c.next(2800)); // the flawed server closes after 2 s
        await c.close(1000); // starts the closing handshake, or answers the server's close
        return `${idle} | ${await c.transcript()}`;
      }),
    strict: "timeout | close 1000 | eof",
    flawed: "close 1001 | eof",
  },
  "oversize-pong": {
    probe: (s) => sending(s, frame({ opcode: Opcode.Ping, payload: "p".repeat(126) })),
    strict: "close 1002 | eof",
    flawed: "pong 126 bytes | close 1000 | eof",
  },
  "fragmented-pong": {
    probe: (s) => sending(s, frame({ opcode: Opcode.Ping, payload: "pi" })),
    strict: 'pong "pi" | close 1000 | eof',
    flawed: 'pong "p" | cont "i" | close 1000 | eof',
  },
  "reserved-opcode-pong": {
    probe: (s) => sending(s, frame({ opcode: Opcode.Ping, payload: "pi" })),
    strict: 'pong "pi" | close 1000 | eof',
    flawed: 'op11 "pi" | close 1000 | eof',
  },
  "empty-close-on-bad-close": {
    probe: (s) => closeCodes(s, [1004, 1015]),
    strict: "close 1002 | eof ; close 1002 | eof",
    flawed: "close | eof ; close | eof",
  },
};

/** Opens a connection, writes the frames and a close 1000 in one go, and returns the transcript. */
function sending(server: StrictServer, ...frames: Uint8Array[]): Promise<string> {
  return sendingWith(server, [], ...frames);
}

/** sending, with these handshake headers. */
function sendingWith(
  server: StrictServer,
  headers: HeaderList,
  ...frames: Uint8Array[]
): Promise<string> {
  return withOpen(server, async (c) => {
    c.sentClose = true;
    await c.write(joinBytes(...frames, closeFrame(1000)));
    return await c.transcript();
  }, headers);
}

Deno.test("flaws: each one changes exactly the behaviour it names", async (t) => {
  const flaws = FLAWS.filter((flaw): flaw is keyof typeof probes => !isDeflateFlaw(flaw));
  assert.deepEqual(Object.keys(probes).sort(), [...flaws].sort());
  await withServer({}, async (strict) => {
    for (const flaw of flaws) {
      await t.step(flaw, async () => {
        const { probe, strict: expectedStrict, flawed: expectedFlawed } = probes[flaw];
        assert.deepEqual(await probe(strict), expectedStrict, "strict server");
        await withServer({ flaws: [flaw] }, async (server) => {
          assert.deepEqual(await probe(server), expectedFlawed, `flaw ${flaw}`);
          // Everything else still works: a plain echo and a clean close.
          if (flaw !== "no-close-reply" && flaw !== "keep-tcp-open") {
            const { sanity, sanityHeaders } = probes[flaw];
            assert.deepEqual(
              await sendingWith(
                server,
                sanityHeaders ?? [],
                frame({ opcode: Opcode.Text, payload: "ok" }),
              ),
              sanity ?? 'text "ok" | close 1000 | eof',
            );
          }
        });
      });
    }
  });
});

Deno.test("close(): stops listening and ends open connections, even mid-handshake", async () => {
  const server = startStrictServer();
  const open = await RawClient.connect(server);
  const half = await RawClient.connect(server);
  try {
    await open.write(open.request());
    assert.deepEqual((await open.readHead()).startLine.split(" ")[1], "101");
    await half.write(encoder.encode("GET / HTTP/1.1\r\n"));
    await server.close();
    assert.deepEqual(describe(await open.next()), "eof");
    assert.deepEqual(describe(await half.next()), "eof");
    let refused = false;
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port: server.port })).close();
    } catch {
      refused = true;
    }
    assert(refused);
  } finally {
    await open.dispose();
    await half.dispose();
    await server.close();
  }
});

// ---------------------------------------------------------------------------
// permessage-deflate (RFC 7692), option deflate: the client side uses
// harness/deflate.ts's codec and negotiation checks.

type DeflateFlaw = (typeof FLAW_FAMILIES.deflate)[number];

function isDeflateFlaw(flaw: Flaw): flaw is DeflateFlaw {
  return (FLAW_FAMILIES.deflate as readonly Flaw[]).includes(flaw);
}

/** RSV1 in FrameHeader.rsv: permessage-deflate's mark on a compressed message (RFC 7692 §6). */
const RSV1 = 4;

/** A client's check of the 101's Sec-WebSocket-Extensions against its offer (RFC 7692 §7.1). */
function deflateCheck(offer: string, head: HttpHead): ResponseCheck {
  const offers = parseExtensions(offer);
  const lines = headerValues(head.headers, "sec-websocket-extensions");
  if (lines.length === 0) return { type: "declined" };
  const response = parseExtensions(lines);
  if (response.type === "error") {
    return { type: "error", rule: "RFC 6455 §9.1", reason: response.reason };
  }
  return checkDeflateResponse(offers.type === "list" ? offers.items : [], response.items);
}

/** The 101's Sec-WebSocket-Extensions for each offer, and what a client's check makes of it. */
async function deflateAnswers(server: StrictServer, offers: string[]): Promise<string> {
  const seen: string[] = [];
  for (const offer of offers) {
    seen.push(
      await withClient(server, async (c) => {
        await c.write(c.request([["Sec-WebSocket-Extensions", offer]]));
        const head = await c.readHead();
        assert.deepEqual(head.startLine.split(" ")[1], "101");
        const response = headerValues(head.headers, "sec-websocket-extensions").join(" + ");
        return `${response || "none"} -> ${deflateCheck(offer, head).type}`;
      }),
    );
  }
  return seen.join(", ");
}

/** An open connection that agreed permessage-deflate, with the client's codecs. */
class DeflateSession {
  readonly client: RawClient;
  readonly agreed: AgreedDeflate;
  /** Client to server: client_max_window_bits, client_no_context_takeover. */
  readonly compressor: MessageCompressor;
  /**
   * Server to client: a fresh window per message under server_no_context_takeover, and
   * a reference past server_max_window_bits is an error (the codec checks both).
   */
  readonly decompressor: MessageDecompressor;

  constructor(client: RawClient, agreed: AgreedDeflate) {
    this.client = client;
    this.agreed = agreed;
    this.compressor = new MessageCompressor({
      windowBits: agreed.clientMaxWindowBits,
      contextTakeover: !agreed.clientNoContextTakeover,
    });
    this.decompressor = new MessageDecompressor({
      windowBits: agreed.serverMaxWindowBits,
      contextTakeover: !agreed.serverNoContextTakeover,
      maxMessageBytes: 64 * MiB,
    });
  }

  /**
   * A message compressed, in `fragments` frames: RSV1 on the first, `continuationRsv`
   * on the others (RFC 7692 §6.1: none).
   */
  compressed(
    opcode: number,
    message: Uint8Array | string,
    fragments = 1,
    continuationRsv = 0,
  ): Uint8Array {
    const payload = this.compressor.compress(bytesOf(message));
    const size = Math.ceil(payload.length / fragments);
    return joinBytes(
      ...Array.from({ length: fragments }, (_, i) =>
        frame({
          opcode: i === 0 ? opcode : Opcode.Continuation,
          payload: payload.subarray(i * size, (i + 1) * size),
          fin: i === fragments - 1,
          rsv: i === 0 ? RSV1 : continuationRsv,
        })),
    );
  }

  /**
   * Like RawClient.transcript, a message per entry: "deflated" when it came
   * compressed and inflated, the codec's error code when it did not inflate;
   * RSV bits where RFC 7692 §6.1 forbids them are named.
   */
  async transcript(ms = 500): Promise<string> {
    const seen: string[] = [];
    let frames: FrameHeader[] = [];
    const chunks: Uint8Array[] = [];
    while (true) {
      const event = await this.client.next(ms);
      if (event.type !== "frame") return [...seen, describe(event)].join(" | ");
      const { header, payload } = event;
      if (header.opcode >= 8) {
        seen.push(describe(event) + (header.rsv ? ` rsv=${header.rsv}` : ""));
        if (header.opcode === Opcode.Close && !this.client.sentClose) await this.client.close(1000);
        continue;
      }
      frames.push(header);
      chunks.push(payload);
      if (!header.fin) continue;
      const data = joinBytes(...chunks.splice(0));
      let text = describe({ type: "frame", header: frames[0], payload: data });
      if (frames[0].rsv === RSV1) {
        const inflated = this.decompressor.decompress(data);
        text = inflated.ok
          ? `${describe({ type: "frame", header: frames[0], payload: inflated.data })} deflated`
          : `${text.split(" ")[0]} not inflating: ${inflated.code}`;
      } else if (frames[0].rsv !== 0) {
        text += ` rsv=${frames[0].rsv}`;
      }
      if (frames.slice(1).some((f) => f.rsv !== 0)) text += " with RSV on a continuation";
      seen.push(text);
      frames = [];
    }
  }

  dispose(): void {
    this.compressor.close();
    this.decompressor.close();
  }
}

/** A session that offered `offer` and had it accepted. */
async function withDeflate<T>(
  server: StrictServer,
  offer: string,
  body: (d: DeflateSession) => Promise<T>,
): Promise<T> {
  return await withClient(server, async (c) => {
    await c.write(c.request([["Sec-WebSocket-Extensions", offer]]));
    const head = await c.readHead();
    assert.deepEqual(await checkResponse(head, c.key, [], [], () => []), []);
    const check = deflateCheck(offer, head);
    assert.equal(check.type, "accepted", JSON.stringify(check));
    const session = new DeflateSession(c, (check as { agreed: AgreedDeflate }).agreed);
    try {
      return await body(session);
    } finally {
      session.dispose();
    }
  });
}

/** withDeflate: writes what `frames` builds and a close 1000 in one go; the transcript. */
function sendingDeflated(
  server: StrictServer,
  offer: string,
  frames: (d: DeflateSession) => Uint8Array[],
): Promise<string> {
  return withDeflate(server, offer, async (d) => {
    d.client.sentClose = true;
    await d.client.write(joinBytes(...frames(d), closeFrame(1000)));
    return await d.transcript();
  });
}

/** Bytes that compress, with repeats `distance` bytes back: a random block, twice and more. */
function repetitive(distance: number, length: number): Uint8Array {
  const block = crypto.getRandomValues(new Uint8Array(distance));
  return Uint8Array.from({ length }, (_, i) => block[i % distance]);
}

Deno.test("deflate: off by default, every offer is declined", async () => {
  await withServer({}, async (server) => {
    assert.deepEqual(
      await deflateAnswers(server, [
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",
      ]),
      "none -> declined, none -> declined",
    );
  });
});

Deno.test("deflate: the first valid offer is accepted, within it, with the server's wishes", async () => {
  await withServer({ deflate: true }, async (server) => {
    assert.deepEqual(
      await deflateAnswers(server, [
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=10; server_max_window_bits=9",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        // The invalid first offer is declined, the second accepted (RFC 7692 §5, §7).
        "permessage-deflate; x-unknown, permessage-deflate; server_max_window_bits=12",
        "x-webkit-deflate-frame, permessage-deflate",
      ]),
      [
        "permessage-deflate -> accepted",
        "permessage-deflate -> accepted",
        "permessage-deflate; server_max_window_bits=9; client_max_window_bits=10 -> accepted",
        // client_no_context_takeover in an offer is the client's hint, not a request (§7.1.1.2).
        "permessage-deflate; server_no_context_takeover -> accepted",
        "permessage-deflate; server_max_window_bits=12 -> accepted",
        "permessage-deflate -> accepted",
      ].join(", "),
    );
    // Offers it cannot honour, and a malformed list, are declined (§7).
    assert.deepEqual(
      await deflateAnswers(server, [
        "permessage-deflate; x-unknown",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_max_window_bits",
        "x-webkit-deflate-frame",
        "permessage-deflate; =",
      ]),
      Array(7).fill("none -> declined").join(", "),
    );
  });
  const wishes = {
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    serverMaxWindowBits: 12,
    clientMaxWindowBits: 10,
  };
  await withServer({ deflate: wishes }, async (server) => {
    assert.deepEqual(
      await deflateAnswers(server, [
        "permessage-deflate; client_max_window_bits",
        // No client_max_window_bits offered: the server cannot limit the client (§7.1.2.2).
        "permessage-deflate; server_max_window_bits=10",
      ]),
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; " +
        "server_max_window_bits=12; client_max_window_bits=10 -> accepted, " +
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; " +
        "server_max_window_bits=10 -> accepted",
    );
  });
});

Deno.test("deflate: echoes compressed, inflating to what was sent, window bits 8-15, with and without context takeover", async () => {
  const text = "permessage-deflate, ".repeat(20);
  // Repeats 200 bytes back: within the smallest window (8 bits, 256 bytes).
  const binary = repetitive(200, 3000);
  await withServer({ deflate: true }, async (server) => {
    for (let bits = 8; bits <= 15; bits++) {
      for (const takeover of [true, false]) {
        const offer = `permessage-deflate; server_max_window_bits=${bits}; ` +
          `client_max_window_bits=${bits}` +
          (takeover ? "" : "; server_no_context_takeover; client_no_context_takeover");
        const transcript = await sendingDeflated(server, offer, (d) => {
          assert.equal(d.agreed.serverMaxWindowBits, bits);
          assert.equal(d.agreed.serverNoContextTakeover, !takeover);
          return [
            d.compressed(Opcode.Text, text),
            // The same again: with context takeover it compresses to a back reference.
            d.compressed(Opcode.Text, text),
            d.compressed(Opcode.Binary, binary, 3),
          ];
        });
        assert.deepEqual(
          transcript,
          `text 400 bytes deflated | text 400 bytes deflated | binary 3000 bytes deflated | ` +
            "close 1000 | eof",
          offer,
        );
      }
    }
    // The echoes' content, compared: the transcript gives only lengths past 40 bytes.
    await withDeflate(server, "permessage-deflate; server_max_window_bits=8", async (d) => {
      await d.client.write(d.compressed(Opcode.Binary, binary));
      const echo = await d.client.next();
      assert.equal(echo.type, "frame");
      if (echo.type !== "frame") return;
      assert.equal(echo.header.rsv, RSV1);
      const inflated = d.decompressor.decompress(echo.payload);
      assert.ok(inflated.ok);
      assert.deepEqual(inflated.data, binary);
    });
  });
});

Deno.test("deflate: uncompressed messages, fragmented and empty ones echoed; pongs carry no RSV1", async () => {
  const greek = "κόσμε";
  await withServer({ deflate: true }, async (server) => {
    assert.deepEqual(
      await sendingDeflated(server, "permessage-deflate", (d) => [
        // A message without RSV1 is uncompressed, legal after the agreement (RFC 7692 §6).
        frame({ opcode: Opcode.Text, payload: "plain" }),
        d.compressed(Opcode.Text, "in three frames", 3),
        frame({ opcode: Opcode.Ping, payload: "p" }),
        d.compressed(Opcode.Binary, ""),
        frame({ opcode: Opcode.Binary, payload: "" }),
        // UTF-8 split across fragments of a compressed text message.
        d.compressed(Opcode.Text, greek, 4),
      ]),
      'text "plain" deflated | text "in three frames" deflated | pong "p" | ' +
        'binary "" deflated | binary "" deflated | ' +
        // describe() shows bytes as latin1.
        `text ${JSON.stringify(new TextDecoder("latin1").decode(encoder.encode(greek)))} ` +
        "deflated | close 1000 | eof",
    );
  });
});

Deno.test("deflate: RSV1 where RFC 7692 forbids it, data that does not inflate, limits fail the connection", async () => {
  const invalidUtf8 = new Uint8Array([0x61, 0xff]);
  await withServer({ deflate: true, maxMessage: 1000 }, async (server) => {
    const fails = (frames: (d: DeflateSession) => Uint8Array[], offer = "permessage-deflate") =>
      sendingDeflated(server, offer, frames);
    // §6.1: RSV1 on a control frame, on a continuation frame.
    assert.deepEqual(
      await fails(() => [frame({ opcode: Opcode.Ping, payload: "p", rsv: RSV1 })]),
      "close 1002 | eof",
    );
    assert.deepEqual(
      await fails((d) => [d.compressed(Opcode.Text, "hello", 2, RSV1)]),
      "close 1002 | eof",
    );
    assert.deepEqual(
      await fails(() => [
        frame({ opcode: Opcode.Text, payload: "a", fin: false }),
        frame({ opcode: Opcode.Continuation, payload: "b", rsv: RSV1 }),
      ]),
      "close 1002 | eof",
    );
    // RSV2 and RSV3 stay reserved (RFC 6455 §5.2).
    assert.deepEqual(
      await fails(() => [frame({ opcode: Opcode.Text, payload: "a", rsv: RSV1 | 2 })]),
      "close 1002 | eof",
    );
    // Data that does not inflate (BTYPE 11 is reserved, RFC 1951 §3.2.3).
    assert.deepEqual(
      await fails(() => [frame({ opcode: Opcode.Binary, payload: "\xff\xff", rsv: RSV1 })]),
      "close 1007 | eof",
    );
    // A back reference past the client_max_window_bits agreed (§7.1.2.2).
    assert.deepEqual(
      await fails((d) => {
        const farReaching = new MessageCompressor({ windowBits: 15, contextTakeover: true });
        const payload = farReaching.compress(repetitive(600, 900));
        farReaching.close();
        assert.equal(d.agreed.clientMaxWindowBits, 9);
        return [frame({ opcode: Opcode.Binary, payload, rsv: RSV1 })];
      }, "permessage-deflate; client_max_window_bits=9"),
      "close 1007 | eof",
    );
    // Small on the wire, past the server's limit inflated: 1009 (RFC 6455 §7.4.1).
    assert.deepEqual(
      await fails((d) => [d.compressed(Opcode.Binary, new Uint8Array(1001))]),
      "close 1009 | eof",
    );
    assert.deepEqual(
      await fails((d) => [d.compressed(Opcode.Binary, new Uint8Array(1000))]),
      "binary 1000 bytes deflated | close 1000 | eof",
    );
    // Text is checked once inflated (RFC 6455 §8.1).
    assert.deepEqual(
      await fails((d) => [d.compressed(Opcode.Text, invalidUtf8)]),
      "close 1007 | eof",
    );
    assert.deepEqual(
      await fails((d) => [d.compressed(Opcode.Text, new Uint8Array([0xce, 0xba, 0xce]), 2)]),
      "close 1007 | eof",
    );
    // RSV1 without the extension agreed (RFC 6455 §5.2): no offer, or a declined one.
    assert.deepEqual(
      await sending(server, frame({ opcode: Opcode.Text, payload: "a", rsv: RSV1 })),
      "close 1002 | eof",
    );
    assert.deepEqual(
      await sendingWith(
        server,
        [["Sec-WebSocket-Extensions", "permessage-deflate; x-unknown"]],
        frame({ opcode: Opcode.Text, payload: "a", rsv: RSV1 }),
      ),
      "close 1002 | eof",
    );
  });
  // The same without the option: RSV1 is a reserved bit.
  await withServer({}, async (server) => {
    assert.deepEqual(
      await sendingWith(
        server,
        [["Sec-WebSocket-Extensions", "permessage-deflate"]],
        frame({ opcode: Opcode.Text, payload: "a", rsv: RSV1 }),
      ),
      "close 1002 | eof",
    );
  });
});

/**
 * For each deflate flaw, a probe whose transcript differs between the strict
 * server with deflate and the flawed one; `options` go to both servers.
 */
const deflateProbes: Record<
  DeflateFlaw,
  {
    probe: (server: StrictServer) => Promise<string>;
    strict: string;
    flawed: string;
    options?: StrictServerOptions;
    /** An offer whose answer the flaw leaves alone (default permessage-deflate); null: none. */
    sanityOffer?: string | null;
  }
> = {
  "deflate-window-over-offer": {
    probe: (s) => deflateAnswers(s, ["permessage-deflate; server_max_window_bits=10"]),
    strict: "permessage-deflate; server_max_window_bits=10 -> accepted",
    flawed: "permessage-deflate; server_max_window_bits=15 -> error",
  },
  "deflate-unoffered-client-bits": {
    probe: (s) =>
      deflateAnswers(s, ["permessage-deflate", "permessage-deflate; client_max_window_bits"]),
    strict: "permessage-deflate -> accepted, permessage-deflate -> accepted",
    flawed:
      "permessage-deflate; client_max_window_bits=15 -> error, permessage-deflate -> accepted",
    sanityOffer: "permessage-deflate; client_max_window_bits",
  },
  "deflate-duplicate-param": {
    probe: (s) =>
      deflateAnswers(s, ["permessage-deflate", "permessage-deflate; server_no_context_takeover"]),
    strict: "permessage-deflate -> accepted, " +
      "permessage-deflate; server_no_context_takeover -> accepted",
    flawed: "permessage-deflate; server_max_window_bits=15; server_max_window_bits=15 -> error, " +
      "permessage-deflate; server_no_context_takeover; server_no_context_takeover -> error",
    sanityOffer: null,
  },
  "deflate-invalid-value": {
    probe: (s) => deflateAnswers(s, ["permessage-deflate"]),
    strict: "permessage-deflate -> accepted",
    flawed: "permessage-deflate; server_max_window_bits=7 -> error",
    sanityOffer: null,
  },
  "deflate-two-elements": {
    probe: (s) => deflateAnswers(s, ["permessage-deflate"]),
    strict: "permessage-deflate -> accepted",
    flawed: "permessage-deflate, permessage-deflate -> error",
    sanityOffer: null,
  },
  "deflate-server-no-context-takeover-dropped": {
    probe: (s) => deflateAnswers(s, ["permessage-deflate; server_no_context_takeover"]),
    strict: "permessage-deflate; server_no_context_takeover -> accepted",
    flawed: "permessage-deflate -> error",
  },
  "deflate-accept-invalid-offer": {
    probe: (s) =>
      deflateAnswers(s, [
        "permessage-deflate; x-unknown",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=abc",
      ]),
    strict: "none -> declined, none -> declined, none -> declined",
    flawed: Array(3).fill("permessage-deflate -> error").join(", "),
  },
  "deflate-rsv1-on-control-accepted": {
    probe: (s) =>
      sendingDeflated(s, "permessage-deflate", () => [
        frame({ opcode: Opcode.Ping, payload: "p", rsv: RSV1 }),
      ]),
    strict: "close 1002 | eof",
    flawed: 'pong "p" | close 1000 | eof',
  },
  "deflate-rsv1-on-continuation-accepted": {
    probe: (s) =>
      sendingDeflated(
        s,
        "permessage-deflate",
        (d) => [d.compressed(Opcode.Text, "hello", 2, RSV1)],
      ),
    strict: "close 1002 | eof",
    flawed: 'text "hello" deflated | close 1000 | eof',
  },
  "deflate-uncompressed-refused": {
    probe: (s) =>
      sendingDeflated(s, "permessage-deflate", () => [
        frame({ opcode: Opcode.Text, payload: "plain" }),
      ]),
    strict: 'text "plain" deflated | close 1000 | eof',
    flawed: "close 1002 | eof",
  },
  "deflate-bad-inflate-ignored": {
    probe: (s) =>
      sendingDeflated(s, "permessage-deflate", () => [
        frame({ opcode: Opcode.Binary, payload: "\xff\xff", rsv: RSV1 }),
        frame({ opcode: Opcode.Text, payload: "plain" }),
      ]),
    strict: "close 1007 | eof",
    flawed: 'text "plain" deflated | close 1000 | eof',
  },
  "deflate-inflated-size-unlimited": {
    probe: (s) =>
      sendingDeflated(s, "permessage-deflate", (d) => [
        d.compressed(Opcode.Binary, new Uint8Array(100_000)),
      ]),
    strict: "close 1009 | eof",
    flawed: "binary 100000 bytes deflated | close 1000 | eof",
    options: { maxMessage: 1000 },
  },
  "deflate-context-takeover-despite-agreement": {
    // The client inflates each echo with a fresh window, as server_no_context_takeover says.
    probe: (s) =>
      sendingDeflated(s, "permessage-deflate; server_no_context_takeover", (d) => [
        d.compressed(Opcode.Text, "again and again"),
        d.compressed(Opcode.Text, "again and again"),
      ]),
    strict: 'text "again and again" deflated | text "again and again" deflated | ' +
      "close 1000 | eof",
    flawed: 'text "again and again" deflated | text not inflating: inflate-failed | ' +
      "close 1000 | eof",
  },
  "deflate-window-over-agreed": {
    // Repeats 600 bytes back: out of a 9-bit window (512 bytes).
    probe: (s) =>
      sendingDeflated(s, "permessage-deflate; server_max_window_bits=9", (d) => [
        d.compressed(Opcode.Binary, repetitive(600, 1200)),
      ]),
    strict: "binary 1200 bytes deflated | close 1000 | eof",
    flawed: "binary not inflating: window-exceeded | close 1000 | eof",
  },
  "deflate-rsv1-on-continuation-sent": {
    probe: (s) =>
      sendingDeflated(s, "permessage-deflate", (d) => [d.compressed(Opcode.Text, "hello")]),
    strict: 'text "hello" deflated | close 1000 | eof',
    flawed: 'text "hello" deflated with RSV on a continuation | close 1000 | eof',
    sanityOffer: null,
  },
};

Deno.test("deflate flaws: each one changes exactly the behaviour it names", async (t) => {
  assert.deepEqual(Object.keys(deflateProbes).sort(), [...FLAW_FAMILIES.deflate].sort());
  for (const flaw of FLAW_FAMILIES.deflate) {
    await t.step(flaw, async () => {
      const { probe, strict, flawed, options, sanityOffer } = deflateProbes[flaw];
      await withServer({ deflate: true, ...options }, async (server) => {
        assert.deepEqual(await probe(server), strict, "strict server");
      });
      await withServer({ deflate: true, ...options, flaws: [flaw] }, async (server) => {
        assert.deepEqual(await probe(server), flawed, `flaw ${flaw}`);
        // Everything else still works: an echo, deflated where agreed, and a clean close.
        assert.deepEqual(
          sanityOffer === null
            ? await sending(server, frame({ opcode: Opcode.Text, payload: "ok" }))
            : await sendingDeflated(server, sanityOffer ?? "permessage-deflate", (d) => [
              d.compressed(Opcode.Text, "ok"),
            ]),
          `text "ok"${sanityOffer === null ? "" : " deflated"} | close 1000 | eof`,
        );
      });
    });
  }
});

Deno.test("deflate: the command line's flags", async () => {
  const module = new URL("./strict_server.ts", import.meta.url).pathname;
  const server = await spawnReady(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      module,
      "--deflate-server-no-context-takeover",
      "--deflate-server-max-window-bits",
      "10",
      "--deflate-client-max-window-bits",
      "9",
    ],
    timeoutMs: 20_000,
    what: "the strict server",
  });
  try {
    const { port } = new URL(server.line);
    assert.deepEqual(
      await deflateAnswers(
        { url: server.line, port: Number(port), close: server.stop },
        ["permessage-deflate; client_max_window_bits"],
      ),
      "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; " +
        "client_max_window_bits=9 -> accepted",
    );
  } finally {
    await server.stop();
  }
  // Window bits are 8-15 (RFC 7692 §7.1.2): bad usage.
  const refused = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net=127.0.0.1", module, "--deflate-client-max-window-bits", "7"],
    stdout: "null",
    stderr: "null",
  }).output();
  assert.equal(refused.code, 2);
});

Deno.test("deflate: a client keeping its window despite client_no_context_takeover fails", async () => {
  await withServer({ deflate: { clientNoContextTakeover: true } }, async (server) => {
    const offer = "permessage-deflate";
    const twice = (compressor: MessageCompressor) =>
      [1, 2].map(() =>
        frame({ opcode: Opcode.Text, payload: compressor.compress(bytesOf("again")), rsv: RSV1 })
      );
    // As agreed: each message on its own.
    assert.deepEqual(
      await sendingDeflated(server, offer, (d) => twice(d.compressor)),
      'text "again" deflated | text "again" deflated | close 1000 | eof',
    );
    // The second message refers back into the first: the server's fresh window lacks it.
    assert.deepEqual(
      await sendingDeflated(server, offer, (d) => {
        assert.equal(d.agreed.clientNoContextTakeover, true);
        const keeping = new MessageCompressor({ windowBits: 15, contextTakeover: true });
        try {
          return twice(keeping);
        } finally {
          keeping.close();
        }
      }),
      'text "again" deflated | close 1007 | eof',
    );
  });
});
