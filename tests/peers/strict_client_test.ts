/**
 * Tests of the strict reference client, driven by a few-line raw-TCP server
 * written here (not the harness: the oracle is checked by hand-made bytes).
 * Each test shows what the correct client puts on the wire and how each flaw
 * changes exactly that (the mask bit, the key bytes, the close code ...).
 * Every wait is bounded; every listener and connection is closed.
 */

import assert from "node:assert/strict";
import {
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

Deno.test("strict client: command line, exit status and its one line on stderr", async () => {
  const run = async (args: string[]) => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        new URL("./strict_client.ts", import.meta.url).pathname,
        ...args,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    return { code: output.code, stderr: new TextDecoder().decode(output.stderr) };
  };
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
    const refused = await run([url, "--protocol", "a,b", "--timeout", "10"]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /^strict_client: refused the handshake: Sec-WebSocket-Accept "x", expected \S+\n$/,
    );
    assert.deepEqual(await run([url, "--origin", "https://a.example", "--timeout", "10"]), {
      code: 0,
      stderr: "",
    });
  } finally {
    listener.close();
    await server.catch(() => {});
  }
  for (
    const args of [[url, "--flaw", "nonsense"], ["wss://127.0.0.1:1/"], [], [url, "--timeout", "0"]]
  ) {
    assert.equal((await run(args)).code, 2, args.join(" "));
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
  // Failing the connection: the fitting code, or 1006, which is never sent (§7.4.1).
  const failWith = async (flaws: Flaw[]) => {
    let events: Event[] = [];
    await session({ flaws }, async (peer) => {
      await peer.accept();
      await peer.write(frame(1, "hi", { maskKey: [1, 2, 3, 4] }));
      events = await peer.untilClose();
    });
    return events.map(describe);
  };
  assert.deepEqual(await failWith([]), ["close 1002"]);
  assert.deepEqual(await failWith(["close-code-1006"]), ["close 1006"]);
  // A close reason that is not UTF-8 fails the connection (1007); the flaw answers it with 1000.
  const badReason = async (flaws: Flaw[]) => {
    let events: Event[] = [];
    await session({ flaws }, async (peer) => {
      await peer.accept();
      await peer.write(close(1000, [0x63, 0xc3, 0x28]));
      events = await peer.untilClose();
    });
    return events.map(describe);
  };
  assert.deepEqual(await badReason([]), ["close 1007"]);
  assert.deepEqual(await badReason(["accept-invalid-close-reason"]), ["close 1000"]);
  // After the closing handshake the client closes TCP itself after its 2 s; the flaw never does.
  const afterHandshake = async (flaws: Flaw[]) => {
    let events: Event[] = [];
    await session({ flaws }, async (peer) => {
      await peer.accept();
      await peer.write(close(1000));
      events = await peer.untilClose();
      events.push(await peer.next(3000));
    });
    return events.map(describe);
  };
  assert.deepEqual(await afterHandshake([]), ["close 1000", "eof"]);
  assert.deepEqual(await afterHandshake(["keep-tcp-open"]), ["close 1000", "timeout"]);
  // A frame header written one byte per write, with pauses: read however TCP splits it.
  const splitHeader = async (flaws: Flaw[]) => {
    let events: Event[] = [];
    await session({ flaws }, async (peer) => {
      await peer.accept();
      const bytes = frame(1, "a".repeat(126));
      // The flawed client closes TCP part-way: a later write may fail, and it shows in the events.
      const write = (data: Uint8Array) => peer.write(data).catch(() => {});
      for (const byte of bytes.subarray(0, 4)) {
        await write(new Uint8Array([byte]));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await write(join(bytes.subarray(4), close(1000)));
      events = await peer.untilClose();
    });
    return events.map(describe);
  };
  assert.deepEqual(await splitHeader([]), ["text 126 bytes", "close 1000"]);
  assert.deepEqual(await splitHeader(["header-needs-one-read"]), ["eof"]);
  // A 64-bit length with its top bit set fails the connection; the flaw reads the bits below it.
  const msbLength = async (flaws: Flaw[]) => {
    let events: Event[] = [];
    await session({ flaws }, async (peer) => {
      await peer.accept();
      await peer.write(join(frame(1, "hi", { length: (1n << 63n) + 2n }), close(1000)));
      events = await peer.untilClose();
    });
    return events.map(describe);
  };
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
