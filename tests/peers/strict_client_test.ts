/**
 * Tests of the strict reference client, driven by a few-line raw-TCP server
 * written here (not the harness: the oracle is checked by hand-made bytes).
 * Each test shows what the correct client puts on the wire and how each flaw
 * changes exactly that (the mask bit, the key bytes, the close code ...).
 * Every wait is bounded; every listener and connection is closed.
 */

import assert from "node:assert/strict";
import {
  type AgreedDeflate,
  answerDeflateOffers,
  checkDeflateResponse,
  MessageCompressor,
  MessageDecompressor,
  type ServerDeflateWishes,
} from "../../harness/deflate.ts";
import { formatExtensions, parseExtensions } from "../../harness/server_handshake.ts";
import { spawnReady } from "../../harness/child.ts";
import {
  BROWSER_DEFLATE_OFFER,
  type Flaw,
  FLAWS,
  runStrictClient,
  type StrictClientOptions,
  type StrictClientResult,
} from "./strict_client.ts";

const encoder = new TextEncoder();
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** A frame as the client put it on the wire, payload unmasked. */
interface WireFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  maskKey: Uint8Array | undefined;
  lengthForm: 7 | 16 | 64;
  payload: Uint8Array;
}

type Event = WireFrame | "eof" | "timeout";

interface Request {
  line: string;
  /** Lower-case names. */
  headers: Map<string, string>;
}

function bytes(payload: Uint8Array | string | number[]): Uint8Array {
  if (typeof payload === "string") return encoder.encode(payload);
  return payload instanceof Uint8Array ? payload : new Uint8Array(payload);
}

function join(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** A server frame, by hand: unmasked, FIN set and minimal length unless asked otherwise. */
function frame(
  opcode: number,
  payload: Uint8Array | string | number[] = [],
  options: { fin?: boolean; rsv?: number; maskKey?: number[]; length?: bigint } = {},
): Uint8Array {
  const data = bytes(payload).slice();
  const length = options.length ?? BigInt(data.length);
  const lengthBytes = length < 126n ? [] : length < 65536n ? [0, 0] : [0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0, v = length; i < lengthBytes.length; i++, v >>= 8n) {
    lengthBytes[lengthBytes.length - 1 - i] = Number(v & 255n);
  }
  const len7 = lengthBytes.length === 0 ? Number(length) : lengthBytes.length === 2 ? 126 : 127;
  const key = options.maskKey ?? [];
  for (let i = 0; i < data.length && key.length; i++) data[i] ^= key[i & 3];
  return join(
    new Uint8Array([
      ((options.fin ?? true) ? 0x80 : 0) | ((options.rsv ?? 0) << 4) | opcode,
      (key.length ? 0x80 : 0) | len7,
      ...lengthBytes,
      ...key,
    ]),
    data,
  );
}

function close(code?: number, reason: Uint8Array | string | number[] = []): Uint8Array {
  const payload = code === undefined ? [] : [code >> 8, code & 255, ...bytes(reason)];
  return frame(8, payload);
}

async function acceptFor(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", encoder.encode(key + GUID));
  return new Uint8Array(digest).toBase64();
}

/** Decodes one client frame at the start of `buffer`, or undefined while incomplete. */
function decode(buffer: Uint8Array): { frame: WireFrame; size: number } | undefined {
  if (buffer.length < 2) return undefined;
  const len7 = buffer[1] & 0x7f;
  const lengthForm = len7 === 126 ? 16 : len7 === 127 ? 64 : 7;
  const lengthBytes = lengthForm === 16 ? 2 : lengthForm === 64 ? 8 : 0;
  const masked = (buffer[1] & 0x80) !== 0;
  const start = 2 + lengthBytes + (masked ? 4 : 0);
  if (buffer.length < start) return undefined;
  let length = len7;
  if (lengthBytes > 0) {
    length = 0;
    for (let i = 2; i < 2 + lengthBytes; i++) length = length * 256 + buffer[i];
  }
  if (buffer.length < start + length) return undefined;
  const maskKey = masked ? buffer.slice(start - 4, start) : undefined;
  const payload = buffer.slice(start, start + length);
  if (maskKey) { for (let i = 0; i < payload.length; i++) payload[i] ^= maskKey[i & 3]; }
  return {
    frame: {
      fin: (buffer[0] & 0x80) !== 0,
      rsv: (buffer[0] >> 4) & 7,
      opcode: buffer[0] & 0x0f,
      maskKey,
      lengthForm,
      payload,
    },
    size: start + length,
  };
}

/** A short, comparable description of a client frame. */
function describe(event: Event): string {
  if (typeof event === "string") return event;
  const { opcode, payload } = event;
  if (opcode === 8) {
    return payload.length >= 2 ? `close ${(payload[0] << 8) | payload[1]}` : "close";
  }
  const name = ["cont", "text", "binary"][opcode] ?? { 9: "ping", 10: "pong" }[opcode] ??
    `op${opcode}`;
  const body = payload.length <= 40
    ? JSON.stringify(new TextDecoder("latin1").decode(payload))
    : `${payload.length} bytes`;
  return `${name} ${body}`;
}

/** The server's end of one connection. */
class Peer {
  readonly conn: Deno.TcpConn;
  #buffer: Uint8Array = new Uint8Array(0);
  /** One read at a time; a read that outlives a timeout is kept for the next call. */
  #inflight: Promise<Uint8Array | null> | undefined;

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  async write(data: Uint8Array | string): Promise<void> {
    const out = bytes(data);
    for (let n = 0; n < out.length;) n += await this.conn.write(out.subarray(n));
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

  async request(ms = 5000): Promise<Request> {
    const deadline = Date.now() + ms;
    while (true) {
      const text = new TextDecoder("latin1").decode(this.#buffer);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        this.#buffer = this.#buffer.slice(end + 4);
        const [line, ...fields] = text.slice(0, end).split("\r\n");
        const headers = new Map<string, string>();
        for (const field of fields) {
          const colon = field.indexOf(":");
          assert.ok(!headers.has(field.slice(0, colon).toLowerCase()), `twice: ${field}`);
          headers.set(field.slice(0, colon).toLowerCase(), field.slice(colon + 1).trim());
        }
        return { line, headers };
      }
      const data = await this.#read(Math.max(1, deadline - Date.now()));
      if (data === null || data === "timeout") throw new Error(`no request head: ${data}`);
      this.#buffer = join(this.#buffer, data);
    }
  }

  /** Reads the request and answers 101; `extra` lines are added, `replace` replaces them all. */
  async accept(options: { extra?: string[]; replace?: string[] } = {}): Promise<Request> {
    const request = await this.request();
    const lines = options.replace ?? [
      "HTTP/1.1 101 Switching Protocols",
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Accept: ${await acceptFor(request.headers.get("sec-websocket-key")!)}`,
      ...(options.extra ?? []),
    ];
    await this.write(lines.join("\r\n") + "\r\n\r\n");
    return request;
  }

  /** The next client frame, EOF, or a timeout when nothing complete arrives within `ms`. */
  async next(ms = 5000): Promise<Event> {
    const deadline = Date.now() + ms;
    while (true) {
      const decoded = decode(this.#buffer);
      if (decoded) {
        this.#buffer = this.#buffer.slice(decoded.size);
        return decoded.frame;
      }
      const data = await this.#read(Math.max(1, deadline - Date.now()));
      if (data === null) return "eof";
      if (data === "timeout") return "timeout";
      this.#buffer = join(this.#buffer, data);
    }
  }

  /** Client frames up to and with the first close frame, or up to EOF or a timeout. */
  async untilClose(ms = 5000): Promise<Event[]> {
    const events: Event[] = [];
    while (true) {
      const event = await this.next(ms);
      events.push(event);
      if (typeof event === "string" || event.opcode === 8) return events;
    }
  }

  closeTcp(): void {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }
}

/**
 * Runs the strict client against a server playing `script` on one
 * connection; the connection is closed when the script ends.
 */
async function session(
  options: StrictClientOptions,
  script: (peer: Peer) => Promise<void>,
): Promise<StrictClientResult> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = runStrictClient(`ws://127.0.0.1:${listener.addr.port}/chat?room=1`, {
    timeoutMs: 20_000,
    ...options,
  });
  try {
    const peer = new Peer(await listener.accept());
    try {
      await script(peer);
    } finally {
      peer.closeTcp();
    }
  } finally {
    listener.close();
  }
  return await client;
}

/** The frames the client sends for the script `script`, then the server's close 1000. */
async function exchange(
  flaws: Flaw[],
  script: (peer: Peer) => Promise<void>,
): Promise<{ frames: WireFrame[]; result: StrictClientResult }> {
  let events: Event[] = [];
  const result = await session({ flaws }, async (peer) => {
    await peer.accept();
    await script(peer);
    await peer.write(close(1000));
    events = await peer.untilClose();
  });
  assert.ok(events.every((e) => typeof e !== "string"), events.map(describe).join(", "));
  return { frames: events as WireFrame[], result };
}

/** Text, binary (16-bit length), a fragmented text with a ping inside, a ping. */
async function mixedMessages(peer: Peer): Promise<void> {
  await peer.write(frame(1, "hello"));
  await peer.write(frame(2, new Uint8Array(200).fill(7)));
  await peer.write(join(frame(1, "ab", { fin: false }), frame(9, "p1"), frame(0, "cd")));
  await peer.write(frame(9, "p2"));
}

const MIXED_ECHO = [
  'text "hello"',
  "binary 200 bytes",
  'pong "p1"',
  'text "abcd"',
  'pong "p2"',
  "close 1000",
];

Deno.test("strict client: the opening handshake request (§4.1)", async () => {
  let request: Request | undefined;
  const result = await session({}, async (peer) => {
    request = await peer.request();
  });
  assert.equal(result.exitCode, 1); // no answer: the handshake never completed
  const { line, headers } = request!;
  assert.equal(line, "GET /chat?room=1 HTTP/1.1");
  assert.match(headers.get("host")!, /^127\.0\.0\.1:\d+$/);
  assert.equal(headers.get("upgrade"), "websocket");
  assert.equal(headers.get("connection"), "Upgrade");
  assert.equal(headers.get("sec-websocket-version"), "13");
  assert.equal(Uint8Array.fromBase64(headers.get("sec-websocket-key")!).length, 16);
  for (const name of ["sec-websocket-protocol", "sec-websocket-extensions", "origin"]) {
    assert.ok(!headers.has(name), `${name} not asked for`);
  }
});

Deno.test("strict client: protocols and Origin only as asked; flaw bad-handshake-version", async () => {
  const requests: Request[] = [];
  const options = [
    { protocols: ["chat", "superchat"], origin: "https://app.example" },
    { flaws: ["bad-handshake-version" as const] },
  ];
  for (const option of options) {
    await session(option, async (peer) => void requests.push(await peer.request()));
  }
  assert.equal(requests[0].headers.get("sec-websocket-protocol"), "chat, superchat");
  assert.equal(requests[0].headers.get("origin"), "https://app.example");
  assert.equal(requests[0].headers.get("sec-websocket-version"), "13");
  assert.equal(requests[1].headers.get("sec-websocket-version"), "8");
});

Deno.test("strict client: a fresh key per connection; flaw fixed-key", async () => {
  const keys = async (flaws: Flaw[]) => {
    const found: string[] = [];
    for (let i = 0; i < 2; i++) {
      await session(
        { flaws },
        async (peer) => void found.push((await peer.request()).headers.get("sec-websocket-key")!),
      );
    }
    return found;
  };
  const fresh = await keys([]);
  assert.notEqual(fresh[0], fresh[1]);
  assert.deepEqual(await keys(["fixed-key"]), [
    "dGhlIHNhbXBsZSBub25jZQ==",
    "dGhlIHNhbXBsZSBub25jZQ==",
  ]);
});

Deno.test("strict client: echoes with types, answers pings, replies to close, masks each frame afresh", async () => {
  const { frames, result } = await exchange([], mixedMessages);
  assert.deepEqual(frames.map(describe), MIXED_ECHO);
  assert.deepEqual(result, { exitCode: 0 });
  assert.deepEqual(frames[1].payload, new Uint8Array(200).fill(7));
  const keys = frames.map((f) => f.maskKey?.toHex());
  assert.ok(keys.every((key) => key !== undefined && key !== "00000000"), keys.join());
  assert.equal(new Set(keys).size, keys.length, "a fresh key per frame");
  assert.deepEqual(frames.map((f) => f.lengthForm), [7, 16, 7, 7, 7, 7]);
  assert.ok(frames.every((f) => f.rsv === 0 && f.fin));
});

Deno.test("strict client: each flaw on its own frames changes only its rule", async () => {
  const run = (flaw: Flaw) => exchange([flaw], mixedMessages);
  for (
    const flaw of [
      "unmasked",
      "zero-mask-key",
      "repeated-mask-key",
      "non-minimal-length",
      "rsv1",
    ] as const
  ) {
    const { frames } = await run(flaw);
    assert.deepEqual(frames.map(describe), MIXED_ECHO, flaw);
    const keys = frames.map((f) => f.maskKey?.toHex());
    switch (flaw) {
      case "unmasked":
        assert.deepEqual(keys, frames.map(() => undefined));
        break;
      case "zero-mask-key":
        assert.deepEqual(keys, frames.map(() => "00000000"));
        break;
      case "repeated-mask-key":
        assert.equal(new Set(keys).size, 1);
        assert.notEqual(keys[0], undefined);
        break;
      case "non-minimal-length":
        assert.deepEqual(frames.map((f) => f.lengthForm), [16, 64, 16, 16, 16, 16]);
        break;
      case "rsv1":
        assert.deepEqual(frames.map((f) => f.rsv), frames.map(() => 4));
        break;
    }
    if (flaw !== "non-minimal-length") {
      assert.deepEqual(frames.map((f) => f.lengthForm), [7, 16, 7, 7, 7, 7], flaw);
    }
    if (flaw !== "rsv1") assert.ok(frames.every((f) => f.rsv === 0), flaw);
  }
});

Deno.test("strict client: large fragmented messages echoed whole, as one frame", async () => {
  const text = "é".repeat(300_000); // 600 000 bytes, split inside a code point below
  const data = encoder.encode(text);
  const { frames, result } = await exchange([], async (peer) => {
    await peer.write(frame(1, data.subarray(0, 1), { fin: false }));
    await peer.write(frame(0, data.subarray(1, 400_001), { fin: false }));
    await peer.write(frame(0, data.subarray(400_001)));
  });
  assert.deepEqual(result, { exitCode: 0 });
  assert.equal(frames.length, 2);
  assert.equal(frames[0].opcode, 1);
  assert.equal(frames[0].lengthForm, 64);
  assert.deepEqual(frames[0].payload, data);
});

/** Runs a server answering the handshake with `answer`, then sending a text frame. */
async function handshakeOutcome(
  answer: (key: string, accept: string) => string[],
  options: StrictClientOptions = {},
): Promise<{ events: string[]; result: StrictClientResult }> {
  let events: string[] = [];
  const result = await session(options, async (peer) => {
    const request = await peer.request();
    const key = request.headers.get("sec-websocket-key")!;
    const head = encoder.encode(answer(key, await acceptFor(key)).join("\r\n") + "\r\n\r\n");
    // One write: a client refusing the head may close TCP before a second one.
    await peer.write(join(head, frame(1, "x")));
    events = [describe(await peer.next())];
  });
  return { events, result };
}

const ok101 = (accept: string, ...extra: string[]) => [
  "HTTP/1.1 101 Switching Protocols",
  "Upgrade: websocket",
  "Connection: Upgrade",
  `Sec-WebSocket-Accept: ${accept}`,
  ...extra,
];

Deno.test("strict client: refuses a bad handshake response; each flaw accepts its own", async () => {
  const refusals: [string, (key: string, accept: string) => string[], Flaw][] = [
    ["status 200", (_, a) => ["HTTP/1.1 200 OK", ...ok101(a).slice(1)], "accept-non-101"],
    [
      "status 302",
      (_, a) => ["HTTP/1.1 302 Found", "Location: /", ...ok101(a).slice(1)],
      "accept-non-101",
    ],
    [
      "no Upgrade",
      (_, a) => ok101(a).filter((l) => !l.startsWith("Upgrade")),
      "accept-bad-upgrade",
    ],
    [
      "Upgrade h2c",
      (_, a) => ok101(a).map((l) => l.replace("websocket", "h2c")),
      "accept-bad-upgrade",
    ],
    [
      "Connection keep-alive",
      (_, a) => ok101(a).map((l) => l.replace("Connection: Upgrade", "Connection: keep-alive")),
      "accept-bad-upgrade",
    ],
    ["wrong accept", () => ok101("dGhlIHNhbXBsZSBub25jZQ=="), "no-accept-check"],
    ["no accept", (_, a) => ok101(a).slice(0, 3), "no-accept-check"],
    ["doubled accept", (_, a) => ok101(a, `Sec-WebSocket-Accept: ${a}`), "no-accept-check"],
    [
      "unoffered protocol",
      (_, a) => ok101(a, "Sec-WebSocket-Protocol: chat"),
      "accept-unoffered-protocol",
    ],
    [
      "unoffered extension",
      (_, a) => ok101(a, "Sec-WebSocket-Extensions: x-custom"),
      "accept-unoffered-extension",
    ],
  ];
  for (const [name, answer, flaw] of refusals) {
    const refused = await handshakeOutcome(answer);
    // Failing before the connection opens: TCP closed, no frame (§4.1).
    assert.deepEqual(refused.events, ["eof"], name);
    assert.equal(refused.result.exitCode, 1, name);
    assert.match(refused.result.error!, /^refused the handshake: /, name);
    const accepted = await handshakeOutcome(answer, { flaws: [flaw] });
    assert.deepEqual(accepted.events, ['text "x"'], `${name} under flaw ${flaw}`);
  }
});

Deno.test("strict client: a subprotocol must be one offered", async () => {
  const protocols = ["chat", "superchat"];
  const offered = await handshakeOutcome((_, a) => ok101(a, "Sec-WebSocket-Protocol: superchat"), {
    protocols,
  });
  assert.deepEqual(offered.events, ['text "x"']);
  const none = await handshakeOutcome((_, a) => ok101(a), { protocols });
  assert.deepEqual(none.events, ['text "x"']); // the server may select none (§4.2.2)
  for (const answer of ["other", "chat, superchat"]) {
    const refused = await handshakeOutcome(
      (_, a) => ok101(a, `Sec-WebSocket-Protocol: ${answer}`),
      { protocols },
    );
    assert.deepEqual(refused.events, ["eof"], answer);
  }
});

Deno.test("strict client: accepts every legal form of a 101 response", async () => {
  const forms: [string, (key: string, accept: string) => string[]][] = [
    ["any case, token lists, extra headers", (_, a) => [
      "HTTP/1.1 101 Web Socket Protocol Handshake",
      "UPGRADE: WebSocket",
      "connection: keep-alive, UPGRADE",
      `sec-websocket-accept:${a}`,
      "Server: test",
      "Set-Cookie: a=b",
    ]],
    ["no reason phrase", (_, a) => ["HTTP/1.1 101", ...ok101(a).slice(1)]],
  ];
  for (const [name, answer] of forms) {
    const { events } = await handshakeOutcome(answer);
    assert.deepEqual(events, ['text "x"'], name);
  }
  // Byte by byte, and the first frame in the same write as the head.
  const events: string[] = [];
  await session({}, async (peer) => {
    const key = (await peer.request()).headers.get("sec-websocket-key")!;
    const head = encoder.encode(ok101(await acceptFor(key)).join("\r\n") + "\r\n\r\n");
    for (const byte of head.subarray(0, -1)) await peer.write(new Uint8Array([byte]));
    await peer.write(join(head.subarray(-1), frame(1, "first")));
    events.push(describe(await peer.next()));
  });
  assert.deepEqual(events, ['text "first"']);
});

Deno.test("strict client: fails the connection on every broken server frame rule", async () => {
  const broken: [string, Uint8Array, number][] = [
    ["masked", frame(1, "hi", { maskKey: [1, 2, 3, 4] }), 1002],
    ["RSV1", frame(1, "hi", { rsv: 4 }), 1002],
    ["opcode 3", frame(3, "hi"), 1002],
    ["opcode 11", frame(11, "hi"), 1002],
    ["ping of 126 bytes", frame(9, new Uint8Array(126)), 1002],
    ["fragmented ping", frame(9, "p", { fin: false }), 1002],
    ["continuation first", frame(0, "hi"), 1002],
    ["text inside a message", join(frame(1, "a", { fin: false }), frame(1, "b")), 1002],
    ["64-bit length, MSB set", frame(2, [], { length: 1n << 63n }), 1002],
    ["invalid UTF-8", frame(1, [0x68, 0xc0, 0xaf]), 1007],
    [
      "text ending inside a code point",
      join(frame(1, [0xe2, 0x82], { fin: false }), frame(0, [])),
      1007,
    ],
    ["1-byte close", frame(8, [3]), 1002],
    ...[0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000].map((
      code,
    ): [string, Uint8Array, number] => [`close ${code}`, close(code), 1002]),
    ["close reason not UTF-8", close(1000, [0xff]), 1007],
  ];
  for (const [name, bad, code] of broken) {
    let events: Event[] = [];
    const result = await session({}, async (peer) => {
      await peer.accept();
      await peer.write(join(frame(1, "ok"), bad));
      events = await peer.untilClose();
    });
    assert.deepEqual(events.map(describe), ['text "ok"', `close ${code}`], name);
    assert.equal(result.exitCode, 1, name);
    assert.match(result.error!, new RegExp(`^failed the connection with ${code}: `), name);
  }
});

Deno.test("strict client: fails fast on invalid UTF-8, before the frame is complete (§8.1)", async () => {
  let events: Event[] = [];
  await session({}, async (peer) => {
    await peer.accept();
    // A 100-byte text frame of which only the first, invalid bytes are sent.
    const whole = frame(1, [0x61, 0xf5, ...new Array(98).fill(0x61)]);
    await peer.write(whole.subarray(0, 4));
    events = await peer.untilClose();
  });
  assert.deepEqual(events.map(describe), ["close 1007"]);
});

Deno.test("strict client: flaws accept-masked-frames and accept-invalid-utf8 echo what they must refuse", async () => {
  const masked = await exchange(
    ["accept-masked-frames"],
    (peer) => peer.write(frame(1, "hi", { maskKey: [1, 2, 3, 4] })),
  );
  assert.deepEqual(masked.frames.map(describe), ['text "hi"', "close 1000"]);
  const invalid = await exchange(
    ["accept-invalid-utf8"],
    (peer) => peer.write(frame(1, [0x68, 0xc0, 0xaf])),
  );
  assert.deepEqual(invalid.frames.map(describe), ['text "h\u00c0\u00af"', "close 1000"]);
});

Deno.test("strict client: accepts what a server may send (non-minimal lengths, any valid close)", async () => {
  const longForm = new Uint8Array([0x81, 126, 0, 2, 0x68, 0x69]); // "hi" in the 16-bit form
  const lengths = await exchange([], (peer) => peer.write(longForm));
  assert.deepEqual(lengths.frames.map(describe), ['text "hi"', "close 1000"]);
  for (const code of [1000, 1001, 1002, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4999]) {
    let events: Event[] = [];
    const result = await session({}, async (peer) => {
      await peer.accept();
      // A close reason split across writes, byte by byte.
      for (const byte of close(code, "bye é")) await peer.write(new Uint8Array([byte]));
      events = await peer.untilClose();
    });
    assert.deepEqual(events.map(describe), [`close ${code}`], `close ${code}`);
    assert.deepEqual(result, { exitCode: 0 }, `close ${code}`);
  }
  let empty: Event[] = [];
  await session({}, async (peer) => {
    await peer.accept();
    await peer.write(close());
    empty = await peer.untilClose();
  });
  assert.deepEqual(empty.map(describe), ["close"]); // no code received, none sent back
});

Deno.test("strict client: the closing flaws, on the wire", async () => {
  const afterClose = async (flaws: Flaw[], serverClose = close(1012)) => {
    let events: Event[] = [];
    const result = await session({ flaws }, async (peer) => {
      await peer.accept();
      await peer.write(serverClose);
      events = await peer.untilClose();
      // The server does not close TCP at once: what comes next, within 1 s?
      if (events.at(-1) !== "eof") events.push(await peer.next(1000));
    });
    return { events: events.map(describe), result };
  };
  // Correct: the close code echoed, nothing after it, TCP left for the server to close.
  assert.deepEqual(await afterClose([]), {
    events: ["close 1012", "timeout"],
    result: { exitCode: 0 },
  });
  assert.deepEqual((await afterClose(["refuse-1012-1014"])).events, ["close 1002", "timeout"]);
  assert.deepEqual((await afterClose(["close-code-1005"])).events, ["close 1005", "timeout"]);
  assert.deepEqual((await afterClose(["data-after-close"])).events, [
    "close 1012",
    'text "after close"',
  ]);
  assert.deepEqual((await afterClose(["close-tcp-first"])).events, ["close 1012", "eof"]);
  // No reply: the client waits its 2 s for the server's TCP close, then closes it.
  assert.deepEqual((await afterClose(["no-close-reply"])).events, ["eof"]);
});

Deno.test("strict client: flaw no-pong", async () => {
  const script = async (peer: Peer) => {
    await peer.write(join(frame(9, "are you there"), frame(1, "after")));
  };
  assert.deepEqual((await exchange([], script)).frames.map(describe), [
    'pong "are you there"',
    'text "after"',
    "close 1000",
  ]);
  assert.deepEqual((await exchange(["no-pong"], script)).frames.map(describe), [
    'text "after"',
    "close 1000",
  ]);
});

Deno.test("strict client: every wait is bounded", async () => {
  // A server that never answers the handshake: the run's bound.
  const silent = await session({ timeoutMs: 300 }, async (peer) => {
    await peer.request();
    await peer.next(5000);
  });
  assert.equal(silent.exitCode, 1);
  assert.match(silent.error!, /^no end within 0\.3 s \(state connecting\)/);
  // A server that never closes TCP after the closing handshake: the client closes it.
  let events: Event[] = [];
  const kept = await session({}, async (peer) => {
    await peer.accept();
    await peer.write(close(1000));
    events = [...await peer.untilClose(), await peer.next(10_000)];
  });
  assert.deepEqual(events.map(describe), ["close 1000", "eof"]);
  assert.deepEqual(kept, { exitCode: 0 });
  // A server that drops TCP without a closing handshake.
  const dropped = await session({}, async (peer) => void await peer.accept());
  assert.deepEqual(dropped, {
    exitCode: 1,
    error: "the server closed TCP without a closing handshake (1006)",
  });
});

/** Runs the strict client's command line; its exit status and what it wrote on stderr. */
async function runCommandLine(args: string[]): Promise<{ code: number; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", new URL("./strict_client.ts", import.meta.url).pathname, ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
}

Deno.test("strict client: command line, exit status and its one line on stderr", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const url = `ws://127.0.0.1:${listener.addr.port}/`;
  const server = (async () => {
    for (const wrongAccept of [true, false]) {
      const peer = new Peer(await listener.accept());
      const key = (await peer.request()).headers.get("sec-websocket-key")!;
      await peer.write(ok101(wrongAccept ? "x" : await acceptFor(key)).join("\r\n") + "\r\n\r\n");
      if (!wrongAccept) {
        await peer.write(close(1000));
        await peer.untilClose();
      }
      peer.closeTcp();
    }
  })();
  try {
    const refused = await runCommandLine([url, "--protocol", "a,b", "--timeout", "10"]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /^strict_client: refused the handshake: Sec-WebSocket-Accept "x", expected \S+\n$/,
    );
    assert.deepEqual(
      await runCommandLine([url, "--origin", "https://a.example", "--timeout", "10"]),
      {
        code: 0,
        stderr: "",
      },
    );
  } finally {
    listener.close();
    await server.catch(() => {});
  }
  for (
    const args of [[url, "--flaw", "nonsense"], ["wss://127.0.0.1:1/"], [], [url, "--timeout", "0"]]
  ) {
    assert.equal((await runCommandLine(args)).code, 2, args.join(" "));
  }
});

Deno.test("strict client: interoperates with Deno's own server (Deno.upgradeWebSocket)", async () => {
  const echoes: (string | number)[] = [];
  let closed: Promise<void> = Promise.resolve();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      socket.send("héllo");
      socket.send(new Uint8Array(70_000).fill(1));
    };
    socket.onmessage = ({ data }) => {
      echoes.push(typeof data === "string" ? data : (data as ArrayBuffer).byteLength);
      if (echoes.length === 2) socket.close(1000, "done");
    };
    closed = new Promise((resolve) => socket.onclose = () => resolve());
    return response;
  });
  try {
    const result = await runStrictClient(`ws://127.0.0.1:${server.addr.port}/`, {
      timeoutMs: 20_000,
    });
    await closed;
    assert.deepEqual(result, { exitCode: 0 });
    assert.deepEqual(echoes, ["héllo", 70_000]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("strict client: every flaw is exercised by a test of this file", async () => {
  const source = await Deno.readTextFile(new URL(import.meta.url));
  const missing = FLAWS.filter((flaw) => !source.includes(`"${flaw}"`));
  assert.deepEqual(missing, []);
});

Deno.test("strict client: the flaws of Autobahn's rules, each on the wire", async () => {
  const rsvText = frame(1, "hi", { rsv: 4 });
  const cases: [Flaw, Uint8Array, string[], string[]][] = [
    ["truncate-long-echo", frame(1, "a".repeat(200)), ["text 200 bytes"], ["text 125 bytes"]],
    [
      "echo-fragmented-as-binary",
      join(frame(1, "ab", { fin: false }), frame(0, "cd")),
      ['text "abcd"'],
      ['binary "abcd"'],
    ],
    ["accept-rsv", rsvText, ["close 1002"], ['text "hi"']],
    ["accept-reserved-opcodes", join(frame(3, "x"), frame(1, "hi")), ["close 1002"], ['text "hi"']],
    [
      "accept-fragmented-control",
      join(frame(9, "p", { fin: false }), frame(0, "q")),
      ["close 1002"],
      ['pong "p"'],
    ],
    [
      "no-fail-fast",
      join(frame(1, [0x61, 0xf5], { fin: false }), frame(9, "p"), frame(0, "b")),
      ["close 1007"],
      ['pong "p"', "close 1007"],
    ],
    ["close-code-1000-on-error", rsvText, ["close 1002"], ["close 1000"]],
    ["drop-on-error", rsvText, ["close 1002"], ["eof"]],
    ["oversize-pong", frame(9, new Uint8Array(126)), ["close 1002"], ["pong 126 bytes"]],
    ["fragmented-pong", frame(9, "ping"), ['pong "ping"'], ['pong "pi"', 'cont "ng"']],
    ["reserved-opcode-pong", frame(9, "p"), ['pong "p"'], ['op11 "p"']],
  ];
  const transcript = async (flaws: Flaw[], input: Uint8Array) => {
    let events: Event[] = [];
    await session({ flaws }, async (peer) => {
      await peer.accept();
      await peer.write(join(input, close(1000)));
      events = await peer.untilClose();
    });
    // A client that did not fail answers the server's close: that reply is left out.
    const described = events.map(describe);
    return described.at(-1) === "close 1000" && described.length > 1
      ? described.slice(0, -1)
      : described;
  };
  for (const [flaw, input, correct, flawed] of cases) {
    assert.deepEqual(await transcript([], input), correct, `${flaw}: correct client`);
    assert.deepEqual(await transcript([flaw], input), flawed, `flaw ${flaw}`);
  }
  // Close codes: an invalid one must fail the connection, the flaw echoes it.
  const closeWith = async (flaws: Flaw[]) => {
    let events: Event[] = [];
    await session({ flaws }, async (peer) => {
      await peer.accept();
      await peer.write(close(1004));
      events = await peer.untilClose();
    });
    return events.map(describe);
  };
  assert.deepEqual(await closeWith([]), ["close 1002"]);
  assert.deepEqual(await closeWith(["accept-invalid-close-codes"]), ["close 1004"]);
});

Deno.test("strict client: flaw corrupt-large-echo", async () => {
  const data = new Uint8Array(1024 * 1024).fill(0x61);
  const echo = async (flaws: Flaw[]) =>
    (await exchange(flaws, (peer) => peer.write(frame(2, data)))).frames[0].payload;
  assert.deepEqual(await echo([]), data);
  const corrupt = await echo(["corrupt-large-echo"]);
  assert.equal(corrupt.length, data.length);
  assert.deepEqual(corrupt.subarray(0, -1), data.subarray(0, -1));
  assert.equal(corrupt.at(-1), 0x61 ^ 0xff);
});

Deno.test("strict client: flaws close-code-1006, accept-invalid-close-reason, keep-tcp-open, header-needs-one-read and accept-msb-length, on the wire", async () => {
  /** What the client sends back, described, once the raw server has played `script`. */
  const answersTo = (script: (peer: Peer) => Promise<Event[]>) => async (flaws: Flaw[]) => {
    let events: Event[] = [];
    await session({ flaws }, async (peer) => {
      await peer.accept();
      events = await script(peer);
    });
    return events.map(describe);
  };
  // Failing the connection: the fitting code, or 1006, which is never sent (§7.4.1).
  const failWith = answersTo(async (peer) => {
    await peer.write(frame(1, "hi", { maskKey: [1, 2, 3, 4] }));
    return await peer.untilClose();
  });
  assert.deepEqual(await failWith([]), ["close 1002"]);
  assert.deepEqual(await failWith(["close-code-1006"]), ["close 1006"]);
  // A close reason that is not UTF-8 fails the connection (1007); the flaw answers it with 1000.
  const badReason = answersTo(async (peer) => {
    await peer.write(close(1000, [0x63, 0xc3, 0x28]));
    return await peer.untilClose();
  });
  assert.deepEqual(await badReason([]), ["close 1007"]);
  assert.deepEqual(await badReason(["accept-invalid-close-reason"]), ["close 1000"]);
  // After the closing handshake the client closes TCP itself after its 2 s; the flaw never does.
  const afterHandshake = answersTo(async (peer) => {
    await peer.write(close(1000));
    const events = await peer.untilClose();
    events.push(await peer.next(3000));
    return events;
  });
  assert.deepEqual(await afterHandshake([]), ["close 1000", "eof"]);
  assert.deepEqual(await afterHandshake(["keep-tcp-open"]), ["close 1000", "timeout"]);
  // A frame header written one byte per write, with pauses: read however TCP splits it.
  const splitHeader = answersTo(async (peer) => {
    const bytes = frame(1, "a".repeat(126));
    // The flawed client closes TCP part-way: a later write may fail, and it shows in the events.
    const write = (data: Uint8Array) => peer.write(data).catch(() => {});
    for (const byte of bytes.subarray(0, 4)) {
      await write(new Uint8Array([byte]));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await write(join(bytes.subarray(4), close(1000)));
    return await peer.untilClose();
  });
  assert.deepEqual(await splitHeader([]), ["text 126 bytes", "close 1000"]);
  assert.deepEqual(await splitHeader(["header-needs-one-read"]), ["eof"]);
  // A 64-bit length with its top bit set fails the connection; the flaw reads the bits below it.
  const msbLength = answersTo(async (peer) => {
    await peer.write(join(frame(1, "hi", { length: (1n << 63n) + 2n }), close(1000)));
    return await peer.untilClose();
  });
  assert.deepEqual(await msbLength([]), ["close 1002"]);
  assert.deepEqual(await msbLength(["accept-msb-length"]), ['text "hi"', "close 1000"]);
});

Deno.test("strict client: flaws http-1.0, no-host, no-upgrade-header and key-not-base64, on the wire", async () => {
  const requestWith = async (flaw: Flaw) => {
    let request: Request | undefined;
    await session({ flaws: [flaw] }, async (peer) => void (request = await peer.request()));
    return request!;
  };
  assert.equal((await requestWith("http-1.0")).line, "GET /chat?room=1 HTTP/1.0");
  assert.ok(!(await requestWith("no-host")).headers.has("host"));
  assert.ok(!(await requestWith("no-upgrade-header")).headers.has("upgrade"));
  const key = (await requestWith("key-not-base64")).headers.get("sec-websocket-key")!;
  assert.match(key, /^[0-9a-f]{32}$/);
});

Deno.test("strict client: flaws refusing a legal 101, each its own; refusing by waiting", async () => {
  const refusals: [Flaw, (key: string, accept: string) => string[]][] = [
    ["case-sensitive-names", (_, a) => [...ok101(a).slice(0, 3), `sec-websocket-accept: ${a}`]],
    ["exact-token-case", (_, a) => ok101(a).map((l) => l.replace("websocket", "WebSocket"))],
    [
      "connection-exact",
      (_, a) =>
        ok101(a).map((l) => l.replace("Connection: Upgrade", "Connection: keep-alive, Upgrade")),
    ],
    ["reject-extra-headers", (_, a) => ok101(a, "Server: test")],
  ];
  for (const [flaw, answer] of refusals) {
    assert.deepEqual((await handshakeOutcome(answer)).events, ['text "x"'], flaw);
    assert.deepEqual((await handshakeOutcome(answer, { flaws: [flaw] })).events, ["eof"], flaw);
  }
  /** The events after a 101 written in two pieces 50 ms apart, a text frame with the second. */
  const splitOutcome = async (options: StrictClientOptions, ms?: number) => {
    let event: Event | undefined;
    await session(options, async (peer) => {
      const key = (await peer.request()).headers.get("sec-websocket-key")!;
      const head = encoder.encode(ok101(await acceptFor(key)).join("\r\n") + "\r\n\r\n");
      await peer.write(head.subarray(0, 20));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await peer.write(join(head.subarray(20), frame(1, "x")));
      event = await peer.next(ms);
    });
    return describe(event!);
  };
  assert.equal(await splitOutcome({}), 'text "x"');
  assert.equal(await splitOutcome({ flaws: ["refuse-split-response"] }), "eof");
  // The frame came in the head's read, and was lost with it.
  assert.equal(await splitOutcome({ flaws: ["drop-bytes-after-head"] }, 500), "timeout");
  // A refusal may also leave TCP's close to the server.
  const waiting = { flaws: ["refuse-split-response" as const], refuseBy: "waiting" as const };
  assert.equal(await splitOutcome(waiting, 500), "timeout");
});

// --- permessage-deflate (RFC 7692) -------------------------------------------

/** The server's end of a connection that agreed permessage-deflate: its codecs, as agreed. */
class DeflatePeer {
  readonly peer: Peer;
  readonly agreed: AgreedDeflate;
  readonly #compressor: MessageCompressor;
  readonly #decompressor: MessageDecompressor;

  constructor(peer: Peer, agreed: AgreedDeflate) {
    this.peer = peer;
    this.agreed = agreed;
    this.#compressor = new MessageCompressor({
      windowBits: agreed.serverMaxWindowBits,
      contextTakeover: !agreed.serverNoContextTakeover,
    });
    // Holds the client to its side of the agreement: its window bits and context takeover.
    this.#decompressor = new MessageDecompressor({
      windowBits: agreed.clientMaxWindowBits,
      contextTakeover: !agreed.clientNoContextTakeover,
      maxMessageBytes: 1 << 24,
    });
  }

  /** A message's payload, compressed as agreed. */
  compress(data: Uint8Array | string | number[]): Uint8Array {
    return this.#compressor.compress(bytes(data));
  }

  /** A compressed message in `parts` frames, RSV1 on the first only. */
  frames(opcode: number, data: Uint8Array | string | number[], parts: number): Uint8Array[] {
    const payload = this.compress(data);
    const size = Math.ceil(payload.length / parts);
    return Array.from(
      { length: parts },
      (_, i) =>
        frame(i === 0 ? opcode : 0, payload.subarray(i * size, (i + 1) * size), {
          fin: i === parts - 1,
          rsv: i === 0 ? 4 : 0,
        }),
    );
  }

  /** A compressed message as one frame. */
  message(opcode: number, data: Uint8Array | string | number[]): Uint8Array {
    return this.frames(opcode, data, 1)[0];
  }

  /** The next client frame described, "deflated ..." once inflated when it has RSV1. */
  async next(ms?: number): Promise<string> {
    const event = await this.peer.next(ms);
    if (typeof event === "string" || event.rsv !== 4) return describe(event);
    const inflated = this.#decompressor.decompress(event.payload);
    if (!inflated.ok) return `${describe(event).split(" ")[0]} that does not inflate`;
    return `deflated ${describe({ ...event, payload: inflated.data })}`;
  }

  /** Client frames described up to and with the first close frame, EOF or a timeout. */
  async untilClose(ms?: number): Promise<string[]> {
    const events: string[] = [];
    while (true) {
      events.push(await this.next(ms));
      if (/^(close|eof|timeout)/.test(events.at(-1)!)) return events;
    }
  }

  close(): void {
    this.#compressor.close();
    this.#decompressor.close();
  }
}

/**
 * Runs the strict client, offering BROWSER_DEFLATE_OFFER unless `options`
 * says otherwise, against a server accepting with `answer` (what
 * answerDeflateOffers makes of these wishes, or a valid
 * Sec-WebSocket-Extensions value as written) and then playing `script`.
 */
async function deflateSession(
  options: StrictClientOptions,
  answer: ServerDeflateWishes | string,
  script: (server: DeflatePeer) => Promise<void>,
): Promise<{ offer: string | undefined; result: StrictClientResult }> {
  let offer: string | undefined;
  const result = await session(
    { deflateOffer: BROWSER_DEFLATE_OFFER, ...options },
    async (peer) => {
      const request = await peer.request();
      offer = request.headers.get("sec-websocket-extensions");
      const offers = parseExtensions(offer ?? "");
      assert.equal(offers.type, "list", `the offer ${offer}`);
      if (offers.type !== "list") return;
      let agreed: AgreedDeflate, response: string;
      if (typeof answer === "string") {
        const written = parseExtensions(answer);
        const check = checkDeflateResponse(
          offers.items,
          written.type === "list" ? written.items : [],
        );
        assert.equal(check.type, "accepted", answer);
        if (check.type !== "accepted") return;
        [agreed, response] = [check.agreed, answer];
      } else {
        const accepted = answerDeflateOffers(offers.items, answer);
        assert.equal(accepted.type, "accept", offer);
        if (accepted.type !== "accept") return;
        [agreed, response] = [accepted.agreed, formatExtensions([accepted.response])];
      }
      const key = request.headers.get("sec-websocket-key")!;
      const head = ok101(await acceptFor(key), `Sec-WebSocket-Extensions: ${response}`);
      await peer.write(head.join("\r\n") + "\r\n\r\n");
      const server = new DeflatePeer(peer, agreed);
      try {
        await script(server);
      } finally {
        server.close();
      }
    },
  );
  return { offer, result };
}

/** `n` random bytes twice: compressing the second half needs distances of `n` bytes. */
function repeatedRandom(n: number): Uint8Array {
  const half = crypto.getRandomValues(new Uint8Array(n));
  return join(half, half);
}

/** Pseudo-random text, compressible, the same each run. */
const LOREM = Array.from({ length: 400 }, (_, i) => ["lorem", "ipsum", "dolor", "sit"][i * 7 % 4])
  .join(" ");
const LOREM_ECHO = `deflated text ${LOREM.length} bytes`;

Deno.test("strict client, deflate: offers only when asked; the offer as given; bad offers refused", async () => {
  const offerOf = async (options: StrictClientOptions) => {
    let offer: string | undefined;
    await session(options, async (peer) => {
      offer = (await peer.request()).headers.get("sec-websocket-extensions");
    });
    return offer;
  };
  assert.equal(await offerOf({}), undefined);
  assert.equal(await offerOf({ deflateOffer: BROWSER_DEFLATE_OFFER }), BROWSER_DEFLATE_OFFER);
  const two = 'permessage-deflate; client_max_window_bits="10", permessage-deflate';
  assert.equal(await offerOf({ deflateOffer: two }), two);
  for (const bad of ["x-webkit-deflate-frame", "permessage-deflate; =", ""]) {
    await assert.rejects(runStrictClient("ws://127.0.0.1:1/", { deflateOffer: bad }), bad);
  }
});

Deno.test("strict client, deflate: inflates the server's messages and echoes them compressed, for window bits 8 and 15, with and without context takeover", async () => {
  const text = `${LOREM} é`;
  const binary = repeatedRandom(3000);
  for (const bits of [8, 15]) {
    for (const takeover of [true, false]) {
      const name = `${bits} bits, context takeover ${takeover}`;
      let events: string[] = [];
      const { result } = await deflateSession({}, {
        serverMaxWindowBits: bits,
        clientMaxWindowBits: bits,
        serverNoContextTakeover: !takeover,
        clientNoContextTakeover: !takeover,
      }, async (server) => {
        assert.deepEqual(server.agreed, {
          serverMaxWindowBits: bits,
          clientMaxWindowBits: bits,
          serverNoContextTakeover: !takeover,
          clientNoContextTakeover: !takeover,
        }, name);
        // The same text three times: with context takeover each refers to the one before.
        for (let i = 0; i < 3; i++) await server.peer.write(server.message(1, text));
        await server.peer.write(server.message(2, binary));
        // Fragmented, RSV1 on the first frame only, a ping between the fragments.
        const [first, ...rest] = server.frames(1, "fragmented ".repeat(50), 3);
        await server.peer.write(join(first, frame(9, "p"), ...rest));
        await server.peer.write(server.message(1, "")); // the empty message (§7.2.3.6)
        await server.peer.write(frame(1, "plain")); // uncompressed: legal (§6)
        await server.peer.write(close(1000));
        events = await server.untilClose();
      });
      assert.deepEqual(result, { exitCode: 0 }, name);
      const echoText = `deflated text ${text.length + 1} bytes`;
      assert.deepEqual(events, [
        echoText,
        echoText,
        echoText,
        "deflated binary 6000 bytes",
        'pong "p"',
        "deflated text 550 bytes",
        'deflated text ""',
        'deflated text "plain"',
        "close 1000",
      ], name);
    }
  }
});

Deno.test("strict client, deflate: the echo is exact, masked, with RSV1 only on data frames", async () => {
  const data = repeatedRandom(20_000);
  const frames: WireFrame[] = [];
  let inflated: Uint8Array | undefined;
  await deflateSession({}, {}, async (server) => {
    await server.peer.write(join(server.message(2, data), frame(9, "p"), close(1000)));
    for (let i = 0; i < 3; i++) frames.push((await server.peer.next()) as WireFrame);
    const decompressor = new MessageDecompressor({
      windowBits: 15,
      contextTakeover: true,
      maxMessageBytes: 1 << 20,
    });
    const result = decompressor.decompress(frames[0].payload);
    decompressor.close();
    if (result.ok) inflated = result.data;
  });
  assert.deepEqual(frames.map((f) => [f.opcode, f.rsv, f.fin]), [[2, 4, true], [10, 0, true], [
    8,
    0,
    true,
  ]]);
  assert.ok(frames.every((f) => f.maskKey !== undefined && f.maskKey.toHex() !== "00000000"));
  assert.ok(frames[0].payload.length < 30_000, "compressed");
  assert.deepEqual(inflated, data);
});

/** Valid responses to these offers: the client opens and echoes. */
const VALID_RESPONSES: [offer: string, response: string][] = [
  [BROWSER_DEFLATE_OFFER, "permessage-deflate"],
  [BROWSER_DEFLATE_OFFER, "permessage-deflate; client_max_window_bits=10"],
  [BROWSER_DEFLATE_OFFER, 'permessage-deflate; client_max_window_bits="9"'],
  // A server may limit its own window and context unasked (§7.1.1.1, §7.1.2.1).
  [
    "permessage-deflate",
    "permessage-deflate; server_no_context_takeover; server_max_window_bits=9",
  ],
  ["permessage-deflate", "permessage-deflate; client_no_context_takeover"],
  [
    "permessage-deflate; server_max_window_bits=10",
    "permessage-deflate; server_max_window_bits=8",
  ],
  // The second offer accepted.
  [
    "permessage-deflate; server_max_window_bits=8; server_no_context_takeover, permessage-deflate",
    "permessage-deflate",
  ],
];

Deno.test("strict client, deflate: accepts each valid response, and uses what it agrees", async () => {
  for (const [offer, response] of VALID_RESPONSES) {
    let events: string[] = [];
    const { result } = await deflateSession({ deflateOffer: offer }, response, async (server) => {
      for (let i = 0; i < 2; i++) await server.peer.write(server.message(1, LOREM));
      await server.peer.write(close(1000));
      events = await server.untilClose();
    });
    const name = `${offer} → ${response}`;
    assert.deepEqual(result, { exitCode: 0 }, name);
    assert.deepEqual(events, [
      LOREM_ECHO,
      LOREM_ECHO,
      "close 1000",
    ], name);
  }
  // Declined: no compression either way, RSV1 is then an error (RFC 6455 §5.2).
  const declined = await handshakeOutcome((_, a) => ok101(a), {
    deflateOffer: BROWSER_DEFLATE_OFFER,
  });
  assert.deepEqual(declined.events, ['text "x"']);
  let rsv: string[] = [];
  await session({ deflateOffer: BROWSER_DEFLATE_OFFER }, async (peer) => {
    await peer.accept();
    await peer.write(frame(1, [0x4b, 0x04, 0x00], { rsv: 4 }));
    rsv = (await peer.untilClose()).map(describe);
  });
  assert.deepEqual(rsv, ["close 1002"]);
});

Deno.test("strict client, deflate: fails on each response breaking RFC 7692 §7.1; flaw deflate-bad-response-accepted takes them", async () => {
  const bad: [name: string, offer: string, response: string][] = [
    ["an unknown parameter", BROWSER_DEFLATE_OFFER, "permessage-deflate; x_window=1"],
    [
      "client_max_window_bits not offered",
      "permessage-deflate",
      "permessage-deflate; client_max_window_bits=10",
    ],
    [
      "server_max_window_bits over the offer",
      "permessage-deflate; server_max_window_bits=10",
      "permessage-deflate; server_max_window_bits=12",
    ],
    [
      "server_max_window_bits offered, not answered",
      "permessage-deflate; server_max_window_bits=10",
      "permessage-deflate",
    ],
    [
      "server_no_context_takeover offered, not answered",
      "permessage-deflate; server_no_context_takeover",
      "permessage-deflate",
    ],
    [
      "a parameter twice",
      BROWSER_DEFLATE_OFFER,
      "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    ],
    ["window bits 16", BROWSER_DEFLATE_OFFER, "permessage-deflate; server_max_window_bits=16"],
    ["window bits 7", BROWSER_DEFLATE_OFFER, "permessage-deflate; client_max_window_bits=7"],
    ["window bits abc", BROWSER_DEFLATE_OFFER, "permessage-deflate; server_max_window_bits=abc"],
    ["window bits 010", BROWSER_DEFLATE_OFFER, "permessage-deflate; server_max_window_bits=010"],
    [
      "client_max_window_bits without a value",
      BROWSER_DEFLATE_OFFER,
      "permessage-deflate; client_max_window_bits",
    ],
    [
      "a value on server_no_context_takeover",
      BROWSER_DEFLATE_OFFER,
      "permessage-deflate; server_no_context_takeover=1",
    ],
    ["two elements", BROWSER_DEFLATE_OFFER, "permessage-deflate, permessage-deflate"],
  ];
  for (const [name, offer, response] of bad) {
    const answer = (_: string, a: string) => ok101(a, `Sec-WebSocket-Extensions: ${response}`);
    const refused = await handshakeOutcome(answer, { deflateOffer: offer });
    // Failing before the connection opens: TCP closed, no frame (§4.1).
    assert.deepEqual(refused.events, ["eof"], name);
    assert.match(refused.result.error!, /^refused the handshake: .*RFC 7692 §/, name);
    const taken = await handshakeOutcome(answer, {
      deflateOffer: offer,
      flaws: ["deflate-bad-response-accepted"],
    });
    assert.match(taken.events[0], /^text /, `${name}, flawed`);
  }
  // Another extension beside it: not offered (§9.1), the flaw of that rule, not this one.
  const other = (_: string, a: string) =>
    ok101(a, "Sec-WebSocket-Extensions: permessage-deflate, x-custom");
  const options = { deflateOffer: BROWSER_DEFLATE_OFFER };
  assert.deepEqual((await handshakeOutcome(other, options)).events, ["eof"]);
  assert.deepEqual(
    (await handshakeOutcome(other, { ...options, flaws: ["deflate-bad-response-accepted"] }))
      .events,
    ["eof"],
  );
  assert.match(
    (await handshakeOutcome(other, { ...options, flaws: ["accept-unoffered-extension"] }))
      .events[0],
    /^text /,
  );
});

/** LOREM compressed in two frames, RSV1 on both. */
function rsv1OnContinuation(server: DeflatePeer): Uint8Array {
  const payload = server.compress(LOREM);
  return join(
    frame(1, payload.subarray(0, 10), { fin: false, rsv: 4 }),
    frame(0, payload.subarray(10), { rsv: 4 }),
  );
}

/** What the client sends after `input` (then a close 1000) on a connection that agreed `wishes`. */
async function deflateTranscript(
  flaws: Flaw[],
  input: (server: DeflatePeer) => Uint8Array,
  wishes: ServerDeflateWishes = {},
  options: StrictClientOptions = {},
): Promise<string[]> {
  let events: string[] = [];
  await deflateSession({ flaws, ...options }, wishes, async (server) => {
    await server.peer.write(join(input(server), close(1000)));
    events = await server.untilClose();
  });
  return events;
}

Deno.test("strict client, deflate: fails the connection on each broken RFC 7692 frame rule", async () => {
  const broken: [string, (server: DeflatePeer) => Uint8Array, string, ServerDeflateWishes?][] = [
    ["RSV1 on a ping", () => frame(9, "p", { rsv: 4 }), "close 1002"],
    ["RSV1 on a pong", () => frame(10, "p", { rsv: 4 }), "close 1002"],
    ["RSV1 on a close", () => frame(8, [3, 232], { rsv: 4 }), "close 1002"],
    ["RSV1 on a continuation", (s) => rsv1OnContinuation(s), "close 1002"],
    ["RSV2", () => frame(1, "x", { rsv: 2 }), "close 1002"],
    ["RSV1 and RSV2", () => frame(1, "x", { rsv: 6 }), "close 1002"],
    ["data that does not inflate", () => frame(1, [0xff], { rsv: 4 }), "close 1007"],
    [
      "a back reference past the window (10 bits agreed, 15 used)",
      () => {
        const wide = new MessageCompressor({ windowBits: 15, contextTakeover: false });
        const payload = wide.compress(repeatedRandom(5000));
        wide.close();
        return frame(2, payload, { rsv: 4 });
      },
      "close 1007",
      { serverMaxWindowBits: 10 },
    ],
    ["compressed text that is not UTF-8", (s) => s.message(1, [0x68, 0xc0, 0xaf]), "close 1007"],
  ];
  for (const [name, input, closeWith, wishes] of broken) {
    assert.deepEqual(
      await deflateTranscript([], (s) => join(s.message(1, "ok"), input(s)), wishes),
      ['deflated text "ok"', closeWith],
      name,
    );
  }
  // server_no_context_takeover agreed: a message reaching into the one before does not inflate.
  const keptWindow = await deflateTranscript([], () => {
    const keeping = new MessageCompressor({ windowBits: 15, contextTakeover: true });
    const payloads = [LOREM, LOREM].map((text) => keeping.compress(encoder.encode(text)));
    keeping.close();
    return join(...payloads.map((payload) => frame(1, payload, { rsv: 4 })));
  }, { serverNoContextTakeover: true });
  assert.deepEqual(keptWindow, [LOREM_ECHO, "close 1007"]);
  // A small message inflating past the client's limit: 1009.
  const bomb = await deflateTranscript(
    [],
    (s) => s.message(2, new Uint8Array(100_000)),
    {},
    { maxMessage: 10_000 },
  );
  assert.deepEqual(bomb, ["close 1009"]);
});

Deno.test("strict client, deflate: each flaw on the frames it receives breaks exactly its rule", async () => {
  const cases: [Flaw, (server: DeflatePeer) => Uint8Array, string[], string[]][] = [
    ["deflate-rsv1-on-control-accepted", () => frame(9, "p", { rsv: 4 }), ["close 1002"], [
      'pong "p"',
      "close 1000",
    ]],
    [
      "deflate-rsv1-on-continuation-accepted",
      (s) => rsv1OnContinuation(s),
      ["close 1002"],
      [LOREM_ECHO, "close 1000"],
    ],
    [
      "deflate-bad-inflate-ignored",
      (s) => join(frame(1, [0xff], { rsv: 4 }), s.message(1, "after")),
      ["close 1007"],
      ['deflated text "after"', "close 1000"],
    ],
    [
      "deflate-uncompressed-refused",
      () => frame(1, "plain"),
      ['deflated text "plain"', "close 1000"],
      ["close 1002"],
    ],
  ];
  for (const [flaw, input, correct, flawed] of cases) {
    assert.deepEqual(await deflateTranscript([], input), correct, `${flaw}: correct client`);
    assert.deepEqual(await deflateTranscript([flaw], input), flawed, `flaw ${flaw}`);
  }
  // The other rules hold under each flaw: RSV1 on a ping still fails under the continuation's.
  for (const [flaw] of cases.filter(([f]) => f !== "deflate-rsv1-on-control-accepted")) {
    assert.deepEqual(
      await deflateTranscript([flaw], () => frame(9, "p", { rsv: 4 })),
      ["close 1002"],
      flaw,
    );
  }
});

Deno.test("strict client, deflate: flaws deflate-context-takeover-despite-agreement and deflate-window-over-agreed", async () => {
  // client_no_context_takeover agreed: each echo inflates with a fresh window.
  const twice = (s: DeflatePeer) => join(s.message(1, LOREM), s.message(1, LOREM));
  const fresh = { clientNoContextTakeover: true };
  const echoed = [LOREM_ECHO, LOREM_ECHO, "close 1000"];
  assert.deepEqual(await deflateTranscript([], twice, fresh), echoed);
  assert.deepEqual(
    await deflateTranscript(["deflate-context-takeover-despite-agreement"], twice, fresh),
    [LOREM_ECHO, "text that does not inflate", "close 1000"],
  );
  // Without the agreement the flaw changes nothing: the window may be kept.
  assert.deepEqual(
    await deflateTranscript(["deflate-context-takeover-despite-agreement"], twice),
    echoed,
  );
  // client_max_window_bits=9 agreed: no back reference past 512 bytes; the message repeats
  // 1000 random bytes, which a 15-bit window reaches back for.
  const far = (s: DeflatePeer) => s.message(2, repeatedRandom(1000));
  const narrow = { clientMaxWindowBits: 9 };
  assert.deepEqual(await deflateTranscript([], far, narrow), [
    "deflated binary 2000 bytes",
    "close 1000",
  ]);
  assert.deepEqual(await deflateTranscript(["deflate-window-over-agreed"], far, narrow), [
    "binary that does not inflate",
    "close 1000",
  ]);
  assert.deepEqual(await deflateTranscript(["deflate-window-over-agreed"], far), [
    "deflated binary 2000 bytes",
    "close 1000",
  ]);
});

Deno.test("strict client, deflate: command line --deflate and --deflate-offer", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const url = `ws://127.0.0.1:${listener.addr.port}/`;
  const offers: (string | undefined)[] = [];
  const server = (async () => {
    for (let i = 0; i < 2; i++) {
      const peer = new Peer(await listener.accept());
      const request = await peer.request();
      offers.push(request.headers.get("sec-websocket-extensions"));
      const accept = await acceptFor(request.headers.get("sec-websocket-key")!);
      await peer.write(
        ok101(accept, "Sec-WebSocket-Extensions: permessage-deflate").join("\r\n") + "\r\n\r\n",
      );
      await peer.write(close(1000));
      await peer.untilClose();
      peer.closeTcp();
    }
  })();
  try {
    assert.deepEqual(await runCommandLine([url, "--deflate", "--timeout", "10"]), {
      code: 0,
      stderr: "",
    });
    const offer = "permessage-deflate; client_no_context_takeover";
    assert.deepEqual(await runCommandLine([url, "--deflate-offer", offer, "--timeout", "10"]), {
      code: 0,
      stderr: "",
    });
    await server;
  } finally {
    listener.close();
    await server.catch(() => {});
  }
  assert.deepEqual(offers, [
    BROWSER_DEFLATE_OFFER,
    "permessage-deflate; client_no_context_takeover",
  ]);
  for (
    const args of [
      [url, "--deflate", "--deflate-offer", "permessage-deflate"],
      [url, "--deflate-offer", "x-custom"],
      [url, "--deflate-offer", "permessage-deflate;"],
    ]
  ) {
    assert.equal((await runCommandLine(args)).code, 2, args.join(" "));
  }
});

/** Where .ci/run installed node's ws 8.23.0; without it the interoperability test is skipped. */
const WS_PEER_DIR = Deno.env.get("WS_PEER_DIR");

Deno.test({
  name: "strict client, deflate: interoperates with node's ws 8.23.0, whose zlib holds it to " +
    "the agreed window and context (flaws shown)",
  ignore: WS_PEER_DIR === undefined,
  async fn() {
    const runs: [perMessageDeflate: object, flaws: Flaw[], line: object][] = [
      [{ threshold: 0 }, [], { extensions: "permessage-deflate", same: true }],
      [
        {
          threshold: 0,
          serverNoContextTakeover: true,
          clientNoContextTakeover: true,
          serverMaxWindowBits: 9,
          clientMaxWindowBits: 9,
        },
        [],
        { extensions: "permessage-deflate", same: true },
      ],
      [
        { threshold: 0, clientMaxWindowBits: 9 },
        ["deflate-window-over-agreed"],
        { error: "invalid distance too far back" },
      ],
      [
        { threshold: 0, clientNoContextTakeover: true },
        ["deflate-context-takeover-despite-agreement"],
        { error: "invalid distance too far back" },
      ],
    ];
    for (const [perMessageDeflate, flaws, expected] of runs) {
      let report: (line: string) => void = () => {};
      const reported = new Promise<string>((resolve) => report = resolve);
      const peer = await spawnReady("node", {
        args: [
          new URL("./ws_deflate_peer.cjs", import.meta.url).pathname,
          JSON.stringify(perMessageDeflate),
        ],
        env: { NODE_PATH: `${WS_PEER_DIR}/node_modules` },
        timeoutMs: 10_000,
        what: "the ws deflate peer",
        onLine: report,
      });
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await runStrictClient(`ws://127.0.0.1:${peer.line.trim()}/`, {
          deflateOffer: BROWSER_DEFLATE_OFFER,
          flaws,
          timeoutMs: 20_000,
        });
        const line = await Promise.race([
          reported,
          new Promise<string>((resolve) =>
            timer = setTimeout(() => resolve('{"error":"no line within 10 s"}'), 10_000)
          ),
        ]);
        assert.deepEqual(JSON.parse(line), expected, JSON.stringify(perMessageDeflate));
      } finally {
        clearTimeout(timer);
        await peer.stop();
      }
    }
  },
});
