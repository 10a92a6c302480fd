/**
 * Byte-level tests of the sans-I/O endpoint (harness/endpoint.ts), in both
 * roles: each rule passes on legal input and gives its stable error on input
 * that breaks exactly that rule. Every input is also fed one byte at a time,
 * which must give the same events and the same bytes out.
 */
import assert from "node:assert/strict";
import {
  Endpoint,
  type EndpointEvent,
  type EndpointOptions,
  type Extension,
  type Role,
} from "../harness/endpoint.ts";
import { MessageCompressor, MessageDecompressor, PerMessageDeflate } from "../harness/deflate.ts";
import {
  closePayload,
  concat,
  decodeHeader,
  encodeFrame,
  FrameParser,
  type FrameToEncode,
  Opcode,
} from "../harness/frame.ts";

const text = (s: string) => new TextEncoder().encode(s);
const KEY = Uint8Array.from([0x37, 0xfa, 0x21, 0x3d]);

/** Deterministic masking keys (bytes 1, 2, 3...), so two endpoints write the same bytes. */
function countingKeys(): (n: number) => Uint8Array {
  let next = 0;
  return (n) => Uint8Array.from({ length: n }, () => ++next & 0xff);
}

/** Distinct masking keys, as a client's random ones are. */
let keyCounter = 0x37fa213d;
function freshKey(): Uint8Array {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, keyCounter++);
  return key;
}

/**
 * A frame as the peer of `role` legally sends it: a client's peer does not
 * mask, a server's does, a fresh key per frame. `maskKey` forces a key.
 */
function peerFrame(
  role: Role,
  frame: Omit<FrameToEncode, "maskKey"> & { mask?: boolean; maskKey?: Uint8Array },
) {
  const masked = frame.mask ?? role === "server";
  return encodeFrame({ ...frame, maskKey: masked ? frame.maskKey ?? freshKey() : undefined });
}

function endpoint(role: Role, options: Partial<EndpointOptions> = {}): Endpoint {
  const e = new Endpoint({ role, maskKeys: countingKeys(), ...options });
  e.open();
  return e;
}

/**
 * Feeds `bytes` whole, and one byte at a time to a second endpoint; both must
 * give the same events and the same bytes to send. Returns the first's.
 */
function receive(
  role: Role,
  bytes: Uint8Array,
  options: Partial<EndpointOptions> = {},
): { events: EndpointEvent[]; sent: Uint8Array; endpoint: Endpoint } {
  const whole = endpoint(role, options);
  whole.receiveData(bytes);
  const events = whole.eventsReceived();
  const sent = whole.dataToSend();
  const chopped = endpoint(role, options);
  const choppedEvents: EndpointEvent[] = [];
  for (const byte of bytes) {
    chopped.receiveData(Uint8Array.of(byte));
    choppedEvents.push(...chopped.eventsReceived());
  }
  assert.deepEqual(choppedEvents, events, "one byte at a time gives the same events");
  assert.deepEqual(chopped.dataToSend(), sent, "one byte at a time sends the same bytes");
  return { events, sent, endpoint: whole };
}

/** The events without the frame records, in a short form to compare. */
function summary(events: EndpointEvent[]): string[] {
  return events.flatMap((e) => {
    switch (e.type) {
      case "frame":
        return [];
      case "message":
        return [`${e.binary ? "binary" : "text"} ${new TextDecoder().decode(e.payload)}`];
      case "ping":
      case "pong":
        return [`${e.type} ${new TextDecoder().decode(e.payload)}`];
      case "close":
        return [`close ${e.code} ${e.reason}${e.valid ? "" : " (invalid)"}`];
      case "observation":
        return [`observed ${e.observation.rule} ${e.observation.level}`];
      case "error":
        return [`error ${e.error.code} ${e.error.closeCode}`];
    }
  });
}

/** The frames in `bytes`, decoded and unmasked. */
function framesIn(bytes: Uint8Array) {
  const parser = new FrameParser({ maxPayload: 1 << 20 });
  parser.push(bytes);
  const frames = [];
  for (let event = parser.next(); event; event = parser.next()) {
    assert.equal(event.type, "frame");
    if (event.type === "frame") frames.push(event);
  }
  assert.equal(parser.buffered, 0, "whole frames only");
  return frames;
}

const ROLES: Role[] = ["client", "server"];

// ---------------------------------------------------------------------------
// Legal input

for (const role of ROLES) {
  Deno.test(`${role}: messages, pings, pongs and the peer's close are events`, () => {
    const f = (frame: Omit<FrameToEncode, "maskKey">) => peerFrame(role, frame);
    const { events, sent, endpoint } = receive(
      role,
      concat([
        f({ opcode: Opcode.Text, payload: text("héllo") }),
        f({ opcode: Opcode.Binary, payload: text("bin") }),
        f({ opcode: Opcode.Text, fin: false, payload: text("frag") }),
        f({ opcode: Opcode.Ping, payload: text("p") }),
        f({ opcode: Opcode.Continuation, fin: false, payload: text("men") }),
        f({ opcode: Opcode.Continuation, payload: text("ted") }),
        f({ opcode: Opcode.Pong, payload: text("q") }),
        f({ opcode: Opcode.Close, payload: closePayload(1001, text("bye")) }),
      ]),
    );
    assert.deepEqual(summary(events), [
      "text héllo",
      "binary bin",
      "ping p",
      "text fragmented",
      "pong q",
      "close 1001 bye",
    ]);
    assert.equal(events.filter((e) => e.type === "frame").length, 8);
    assert.deepEqual(endpoint.observations, []);
    // The ping's pong, then the close reply (§5.5.2, §5.5.1).
    const replies = framesIn(sent);
    assert.deepEqual(replies.map((r) => r.header.opcode), [Opcode.Pong, Opcode.Close]);
    assert.deepEqual(replies[0].payload, text("p"));
    assert.deepEqual(replies[1].payload, closePayload(1000));
    assert.equal(endpoint.state, "closing");
    assert.equal(endpoint.closeHandshakeDone, true);
  });

  Deno.test(`${role}: nextEvents() gives one frame's events at a time`, () => {
    const e = endpoint(role);
    const ping = peerFrame(role, { opcode: Opcode.Ping });
    e.receiveData(concat([ping, peerFrame(role, { opcode: Opcode.Text, payload: text("a") })]));
    assert.deepEqual(e.nextEvents().map((x) => x.type), ["frame", "ping"]);
    assert.equal(framesIn(e.dataToSend()).length, 1, "the second frame is not parsed yet");
    assert.deepEqual(summary(e.nextEvents()), ["text a"]);
    assert.deepEqual(e.nextEvents(), []);
  });

  Deno.test(`${role}: partialDataFrame shows a data frame still arriving`, () => {
    const e = endpoint(role);
    const frame = peerFrame(role, { opcode: Opcode.Binary, payload: text("12345") });
    e.receiveData(frame.subarray(0, frame.length - 2));
    assert.deepEqual(e.eventsReceived(), []);
    assert.equal(e.partialDataFrame?.received, 3);
    assert.equal(e.partialDataFrame?.header.opcode, Opcode.Binary);
    e.receiveData(frame.subarray(frame.length - 2));
    assert.deepEqual(summary(e.eventsReceived()), ["binary 12345"]);
    assert.equal(e.partialDataFrame, undefined);
  });

  Deno.test(`${role}: bytes received while CONNECTING wait for open()`, () => {
    const e = new Endpoint({ role });
    assert.equal(e.state, "connecting");
    e.receiveData(peerFrame(role, { opcode: Opcode.Text, payload: text("early") }));
    assert.deepEqual(e.eventsReceived(), []);
    e.open();
    assert.deepEqual(summary(e.eventsReceived()), ["text early"]);
  });

  Deno.test(`${role}: a non-minimal length form is observed, not failed`, () => {
    const { events } = receive(
      role,
      peerFrame(role, { opcode: Opcode.Text, payload: text("abc"), lengthForm: 16 }),
    );
    assert.deepEqual(summary(events), ["observed length-form must", "text abc"]);
  });
}

// ---------------------------------------------------------------------------
// Masking by role (§5.1)

Deno.test("client: a masked frame from the server fails 1002; unmasked passes", () => {
  const masked = receive("client", peerFrame("client", { opcode: Opcode.Text, mask: true }));
  assert.deepEqual(summary(masked.events), [
    "observed masked must",
    "error masked-frame-from-server 1002",
  ]);
  assert.deepEqual(framesIn(masked.sent).map((f) => f.header.opcode), [Opcode.Close]);
  const unmasked = receive("client", peerFrame("client", { opcode: Opcode.Text, mask: false }));
  assert.deepEqual(summary(unmasked.events), ["text "]);
});

Deno.test("server: an unmasked frame from the client fails 1002; masked passes", () => {
  const unmasked = receive("server", peerFrame("server", { opcode: Opcode.Text, mask: false }));
  assert.deepEqual(summary(unmasked.events), [
    "observed unmasked must",
    "error unmasked-frame-from-client 1002",
  ]);
  const masked = receive("server", peerFrame("server", { opcode: Opcode.Text, mask: true }));
  assert.deepEqual(summary(masked.events), ["text "]);
});

Deno.test("server: a client's masking key of zeros, or its previous key, is observed (§5.3)", () => {
  const frames = (...keys: Uint8Array[]) =>
    concat(keys.map((maskKey) => peerFrame("server", { opcode: Opcode.Ping, maskKey })));
  const fresh = receive("server", frames(freshKey(), freshKey(), freshKey()));
  assert.deepEqual(summary(fresh.events), ["ping ", "ping ", "ping "]);
  const zero = receive("server", frames(freshKey(), new Uint8Array(4)));
  assert.deepEqual(summary(zero.events), ["ping ", "observed mask-key-zero must", "ping "]);
  const key = freshKey();
  const repeated = receive("server", frames(freshKey(), key, key));
  assert.deepEqual(summary(repeated.events), [
    "ping ",
    "ping ",
    "observed mask-key-repeated must",
    "ping ",
  ]);
  // Observations, not errors: the RFC gives the server no reaction to a predictable key.
  assert.equal(repeated.endpoint.failed, false);
});

// ---------------------------------------------------------------------------
// Rules both roles enforce: each legal input passes, its breach gives its error

interface RuleCase {
  name: string;
  legal: Omit<FrameToEncode, "maskKey">[];
  broken: Omit<FrameToEncode, "maskKey">[];
  events: string[];
}

const TEXT = Opcode.Text, CONT = Opcode.Continuation, BINARY = Opcode.Binary;
const RULES: RuleCase[] = [
  {
    name: "rsv-without-extension",
    legal: [{ opcode: TEXT, payload: text("x") }],
    broken: [{ opcode: TEXT, rsv: 4, payload: text("x") }],
    events: ["observed rsv must", "error rsv-without-extension 1002"],
  },
  {
    name: "reserved-opcode (data)",
    legal: [{ opcode: Opcode.Binary }],
    broken: [{ opcode: 3 }],
    events: ["observed reserved-opcode must", "error reserved-opcode 1002"],
  },
  {
    name: "reserved-opcode (control)",
    legal: [{ opcode: Opcode.Pong }],
    broken: [{ opcode: 0xb }],
    events: ["observed reserved-opcode must", "error reserved-opcode 1002"],
  },
  {
    name: "control-too-long",
    legal: [{ opcode: Opcode.Pong, payload: new Uint8Array(125) }],
    broken: [{ opcode: Opcode.Pong, payload: new Uint8Array(126) }],
    events: ["observed control-oversize must", "error control-too-long 1002"],
  },
  {
    name: "control-fragmented",
    legal: [{ opcode: Opcode.Pong, fin: true }],
    broken: [{ opcode: Opcode.Pong, fin: false }],
    events: ["observed control-fragmented must", "error control-fragmented 1002"],
  },
  {
    name: "continuation-without-start",
    legal: [{ opcode: TEXT, fin: false }, { opcode: CONT, payload: text("y") }],
    broken: [{ opcode: CONT, payload: text("y") }],
    events: ["error continuation-without-start 1002"],
  },
  {
    name: "new-message-inside-fragmented",
    legal: [{ opcode: TEXT, fin: false }, { opcode: CONT }, { opcode: TEXT }],
    broken: [{ opcode: TEXT, fin: false }, { opcode: TEXT }],
    events: ["error new-message-inside-fragmented 1002"],
  },
  {
    name: "invalid-utf8",
    legal: [{ opcode: TEXT, payload: Uint8Array.of(0xce, 0xba) }],
    broken: [{ opcode: TEXT, payload: Uint8Array.of(0xce, 0x41) }],
    events: ["error invalid-utf8 1007"],
  },
  {
    name: "invalid-utf8 (message ends inside a code point)",
    legal: [{ opcode: TEXT, fin: false, payload: Uint8Array.of(0xce) }, {
      opcode: CONT,
      payload: Uint8Array.of(0xba),
    }],
    broken: [{ opcode: TEXT, payload: Uint8Array.of(0xce) }],
    events: ["error invalid-utf8 1007"],
  },
  {
    name: "invalid-close-code (MUST NOT be sent)",
    legal: [{ opcode: Opcode.Close, payload: closePayload(1000) }],
    broken: [{ opcode: Opcode.Close, payload: closePayload(1005) }],
    events: ["observed close-code must", "close 1005  (invalid)", "error invalid-close-code 1002"],
  },
  {
    name: "invalid-close-code (unassigned: observed at level may)",
    legal: [{ opcode: Opcode.Close, payload: closePayload(4999) }],
    broken: [{ opcode: Opcode.Close, payload: closePayload(1004) }],
    events: [
      "observed close-code-undefined may",
      "close 1004  (invalid)",
      "error invalid-close-code 1002",
    ],
  },
  {
    name: "invalid-close-reason",
    legal: [{ opcode: Opcode.Close, payload: closePayload(1000, text("é")) }],
    broken: [{ opcode: Opcode.Close, payload: closePayload(1000, Uint8Array.of(0xff)) }],
    events: ["close 1000 undefined (invalid)", "error invalid-close-reason 1007"],
  },
  {
    name: "close-payload-1-byte",
    legal: [{ opcode: Opcode.Close, payload: new Uint8Array(0) }],
    broken: [{ opcode: Opcode.Close, payload: Uint8Array.of(3) }],
    events: [
      "observed close-body must",
      "close undefined undefined (invalid)",
      "error close-payload-1-byte 1002",
    ],
  },
];

for (const role of ROLES) {
  for (const rule of RULES) {
    Deno.test(`${role}: ${rule.name}`, () => {
      const bytes = (frames: RuleCase["legal"]) => concat(frames.map((f) => peerFrame(role, f)));
      const legal = receive(role, bytes(rule.legal));
      assert.deepEqual(
        summary(legal.events).filter((e) => e.startsWith("error") || e.startsWith("observed")),
        [],
        "the legal input passes",
      );
      const broken = receive(role, bytes(rule.broken));
      assert.deepEqual(summary(broken.events), rule.events);
      assert.equal(broken.endpoint.failed, true);
      const error = broken.events.find((e) => e.type === "error");
      assert.ok(
        error?.type === "error" && error.error.rfc.length > 0,
        "the error names its section",
      );
    });
  }
}

// ---------------------------------------------------------------------------
// Extensions, fail-fast UTF-8, bounds

/** A made-up extension for the hook: RSV1 on a message's first frame marks it sent reversed. */
const REVERSING: Extension = {
  rsv: 4,
  rsvProblem: (header) =>
    header.rsv & 4 && header.opcode === CONT
      ? { code: "compressed-continuation-frame", detail: "RSV1 on a continuation" }
      : undefined,
  decodeMessage: (payload) => ({ ok: true, payload: payload.toReversed() }),
  encodeMessage: (payload) => ({ rsv: 4, payload: payload.toReversed() }),
};

Deno.test("an extension gives its RSV bit a meaning and decodes whole messages before delivery", () => {
  for (const role of ROLES) {
    const { events } = receive(
      role,
      concat([
        peerFrame(role, { opcode: TEXT, rsv: 4, fin: false, payload: text("fed") }),
        peerFrame(role, { opcode: CONT, payload: text("cba") }),
        // Unmarked, a message is left as it is.
        peerFrame(role, { opcode: TEXT, payload: text("xyz") }),
      ]),
      { extensions: [REVERSING] },
    );
    assert.deepEqual(summary(events), ["text abcdef", "text xyz"]);
    // A bit the extension does not claim is still an error, and so is what it forbids.
    const other = receive(role, peerFrame(role, { opcode: TEXT, rsv: 2 }), {
      extensions: [REVERSING],
    });
    assert.deepEqual(summary(other.events), [
      "observed rsv must",
      "error rsv-without-extension 1002",
    ]);
    const continuation = receive(
      role,
      concat([
        peerFrame(role, { opcode: TEXT, fin: false, payload: text("a") }),
        peerFrame(role, { opcode: CONT, rsv: 4, payload: text("b") }),
      ]),
      { extensions: [REVERSING] },
    );
    assert.deepEqual(summary(continuation.events), [
      "observed compressed-continuation-frame must",
      "error compressed-continuation-frame 1002",
    ]);
    // Sending: the extension encodes the message, its bit on the first frame only.
    const e = endpoint(role, { extensions: [REVERSING] });
    e.sendText("abc", { fragmentSize: 2 });
    e.sendText("plain", { encode: false });
    const sent = framesIn(e.dataToSend());
    assert.deepEqual(
      sent.map((f) => [f.header.rsv, new TextDecoder().decode(f.payload)]),
      [[4, "cb"], [0, "a"], [0, "plain"]],
    );
  }
});

/** permessage-deflate both ways with RFC 7692's defaults (15 bits, context taken over). */
const DEFLATE_DEFAULTS = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
};

/** An endpoint with permessage-deflate, and the peer's compressor. */
function deflating(role: Role) {
  const e = endpoint(role, {
    extensions: [new PerMessageDeflate(DEFLATE_DEFAULTS, role, 1 << 20)],
  });
  const peer = new MessageCompressor({ windowBits: 15, contextTakeover: true });
  return { e, peer };
}

Deno.test("permessage-deflate: compressed messages inflate, fragmented or not, the window kept", () => {
  for (const role of ROLES) {
    const { e, peer } = deflating(role);
    const first = peer.compress(text("Hello, Hello, Hello"));
    const second = peer.compress(text("Hello, Hello, Hello")); // refers back to the first
    e.receiveData(concat([
      peerFrame(role, { opcode: TEXT, rsv: 4, payload: first }),
      peerFrame(role, { opcode: TEXT, rsv: 4, fin: false, payload: second.subarray(0, 2) }),
      peerFrame(role, { opcode: CONT, payload: second.subarray(2) }),
      peerFrame(role, { opcode: TEXT, payload: text("not compressed") }),
    ]));
    assert.deepEqual(summary(e.eventsReceived()), [
      "text Hello, Hello, Hello",
      "text Hello, Hello, Hello",
      "text not compressed",
    ]);
    // What it sends inflates back, RSV1 on the first frame only.
    e.sendBinary(text("x".repeat(300)), { fragmentSize: 4 });
    const frames = framesIn(e.dataToSend());
    assert.deepEqual(frames.map((f) => f.header.rsv), [4, ...frames.slice(1).map(() => 0)]);
    const inflater = new MessageDecompressor({
      windowBits: 15,
      contextTakeover: true,
      maxMessageBytes: 1 << 20,
    });
    const inflated = inflater.decompress(concat(frames.map((f) => f.payload)));
    assert.ok(inflated.ok && new TextDecoder().decode(inflated.data) === "x".repeat(300));
  }
});

Deno.test("permessage-deflate: RSV1 on a control or continuation frame, data that does not inflate, invalid UTF-8 inside, each fail", () => {
  const cases: [string, (role: Role, peer: MessageCompressor) => Uint8Array, string[]][] = [
    ["RSV1 on a ping", (role) => peerFrame(role, { opcode: Opcode.Ping, rsv: 4 }), [
      "observed compressed-control-frame must",
      "error compressed-control-frame 1002",
    ]],
    ["RSV1 on a continuation", (role, peer) =>
      concat([
        peerFrame(role, { opcode: TEXT, rsv: 4, fin: false, payload: peer.compress(text("a")) }),
        peerFrame(role, { opcode: CONT, rsv: 4 }),
      ]), [
      "observed compressed-continuation-frame must",
      "error compressed-continuation-frame 1002",
    ]],
    [
      "not DEFLATE",
      (role) =>
        peerFrame(role, { opcode: BINARY, rsv: 4, payload: Uint8Array.of(0xff, 0xff, 0xff) }),
      [
        "error inflate-failed 1007",
      ],
    ],
    [
      "invalid UTF-8 compressed",
      (role, peer) =>
        peerFrame(role, {
          opcode: TEXT,
          rsv: 4,
          payload: peer.compress(Uint8Array.of(0x61, 0xc0)),
        }),
      [
        "error invalid-utf8 1007",
      ],
    ],
    [
      "past the limit once inflated",
      (role, peer) =>
        peerFrame(role, {
          opcode: BINARY,
          rsv: 4,
          payload: peer.compress(new Uint8Array(2 << 20)),
        }),
      [
        "error message-too-big 1009",
      ],
    ],
  ];
  for (const role of ROLES) {
    for (const [what, bytes, expected] of cases) {
      const { e, peer } = deflating(role);
      e.receiveData(bytes(role, peer));
      assert.deepEqual(summary(e.eventsReceived()), expected, `${role}: ${what}`);
    }
  }
});

Deno.test("invalid UTF-8 fails at its byte, before the frame or the message ends (§8.1)", () => {
  for (const role of ROLES) {
    const e = endpoint(role);
    const first = peerFrame(role, { opcode: TEXT, fin: false, payload: text("ok") });
    const invalid = peerFrame(role, {
      opcode: CONT,
      fin: false,
      payload: Uint8Array.of(0x61, 0x61, 0xc0, 0x80, 0x61, 0x61, 0x61),
    });
    e.receiveData(first);
    assert.deepEqual(summary(e.eventsReceived()), []);
    // The header and the bytes up to the invalid 0xc0 only: the frame is far from complete.
    const headerLength = decodeHeader(invalid)!.headerLength;
    e.receiveData(invalid.subarray(0, headerLength + 3));
    assert.deepEqual(summary(e.eventsReceived()), ["error invalid-utf8 1007"]);
    assert.equal(framesIn(e.dataToSend()).at(-1)?.header.opcode, Opcode.Close);
  }
});

Deno.test("a code point split across fragments is valid", () => {
  for (const role of ROLES) {
    const euro = text("€");
    const { events } = receive(
      role,
      concat([
        peerFrame(role, { opcode: TEXT, fin: false, payload: euro.subarray(0, 1) }),
        peerFrame(role, { opcode: Opcode.Ping }),
        peerFrame(role, { opcode: CONT, fin: false, payload: euro.subarray(1, 2) }),
        peerFrame(role, { opcode: CONT, payload: euro.subarray(2) }),
      ]),
    );
    assert.deepEqual(summary(events), ["ping ", "text €"]);
  }
});

Deno.test("message-too-big: a frame announced over the limit fails before its payload", () => {
  for (const role of ROLES) {
    const atLimit = receive(
      role,
      peerFrame(role, { opcode: Opcode.Binary, payload: text("12345") }),
      {
        maxMessageSize: 5,
      },
    );
    assert.deepEqual(summary(atLimit.events), ["binary 12345"]);
    const e = endpoint(role, { maxMessageSize: 5 });
    const frame = peerFrame(role, { opcode: Opcode.Binary, payload: text("123456") });
    e.receiveData(frame.subarray(0, decodeHeader(frame)!.headerLength));
    assert.deepEqual(summary(e.eventsReceived()), ["error message-too-big 1009"]);
    assert.deepEqual(framesIn(e.dataToSend())[0].payload.subarray(0, 2), Uint8Array.of(0x03, 0xf1));
    // Nothing more can be read: the endpoint's owner closes TCP.
    assert.equal(e.shouldCloseTcp, true);
  }
});

Deno.test("message-too-big: a fragmented message fails at the header that takes it over", () => {
  for (const role of ROLES) {
    const options = { maxMessageSize: 5 };
    const legal = receive(
      role,
      concat([
        peerFrame(role, { opcode: TEXT, fin: false, payload: text("123") }),
        peerFrame(role, { opcode: CONT, payload: text("45") }),
      ]),
      options,
    );
    assert.deepEqual(summary(legal.events), ["text 12345"]);
    const e = endpoint(role, options);
    const second = peerFrame(role, { opcode: CONT, payload: text("456") });
    e.receiveData(peerFrame(role, { opcode: TEXT, fin: false, payload: text("123") }));
    e.receiveData(second.subarray(0, decodeHeader(second)!.headerLength));
    assert.deepEqual(summary(e.eventsReceived()), ["error message-too-big 1009"]);
    // Still reading: the peer's close completes the closing handshake.
    e.receiveData(second.subarray(decodeHeader(second)!.headerLength));
    e.receiveData(peerFrame(role, { opcode: Opcode.Close, payload: closePayload(1000) }));
    assert.deepEqual(summary(e.eventsReceived()), ["close 1000 "]);
    assert.equal(e.closeHandshakeDone, true);
  }
});

Deno.test("after failing, only the peer's close is heard", () => {
  for (const role of ROLES) {
    const { events, sent, endpoint } = receive(
      role,
      concat([
        peerFrame(role, { opcode: 3 }),
        peerFrame(role, { opcode: TEXT, payload: text("ignored") }),
        peerFrame(role, { opcode: Opcode.Ping }),
        peerFrame(role, { opcode: Opcode.Close, payload: closePayload(1002) }),
      ]),
    );
    assert.deepEqual(summary(events), [
      "observed reserved-opcode must",
      "error reserved-opcode 1002",
      "close 1002 ",
    ]);
    // One close frame, with the error's code, and no pong.
    const out = framesIn(sent);
    assert.deepEqual(out.map((f) => f.header.opcode), [Opcode.Close]);
    assert.deepEqual(out[0].payload.subarray(0, 2), Uint8Array.of(0x03, 0xea));
    const error = events.find((e) => e.type === "error");
    assert.ok(error?.type === "error" && error.error.closeSent, "the error sent the close frame");
    assert.equal(endpoint.closeHandshakeDone, true);
    assert.equal(endpoint.shouldCloseTcp, role === "server");
  }
});

Deno.test("an error after this end's close asks to close TCP", () => {
  const e = endpoint("client");
  e.sendClose(1000);
  e.receiveData(peerFrame("client", { opcode: 3 }));
  const errors = e.eventsReceived().filter((x) => x.type === "error");
  assert.equal(errors.length, 1);
  assert.ok(errors[0].type === "error" && errors[0].error.closeSent === false);
  assert.equal(e.shouldCloseTcp, true);
});

// ---------------------------------------------------------------------------
// Bytes out

Deno.test("client output is masked, a fresh random key per frame (§5.3)", () => {
  const e = new Endpoint({ role: "client" });
  e.open();
  e.sendText("one");
  e.sendBinary(text("two"), { fragmentSize: 2 });
  e.sendPing(text("p"));
  e.sendFrame({ opcode: TEXT, payload: text("crafted") });
  const frames = framesIn(e.dataToSend());
  assert.equal(frames.length, 5);
  assert.ok(frames.every((f) => f.header.masked), "every frame masked");
  const keys = new Set(frames.map((f) => f.header.maskKey!.toHex()));
  assert.equal(keys.size, frames.length, "no key used twice");
  assert.deepEqual(frames[0].payload, text("one"));
  assert.deepEqual(
    frames.slice(1, 3).map((f) => [f.header.opcode, f.header.fin, f.payload]),
    [[Opcode.Binary, false, text("tw")], [CONT, true, text("o")]],
  );
  assert.deepEqual(e.dataToSend(), new Uint8Array(0), "dataToSend() clears the queue");
});

Deno.test("server output is unmasked (§5.1)", () => {
  const e = endpoint("server");
  e.sendText("one");
  e.sendBinary(text("two"), { fragmentSize: 2 });
  e.sendPong();
  e.sendClose(1001, "bye");
  const frames = framesIn(e.dataToSend());
  assert.deepEqual(frames.map((f) => f.header.masked), [false, false, false, false, false]);
  assert.deepEqual(frames[4].payload, closePayload(1001, text("bye")));
});

Deno.test("sendFrame writes the fields as given, whatever the role", () => {
  const server = endpoint("server");
  server.sendFrame({ opcode: 0xb, rsv: 7, fin: false, mask: KEY, lengthForm: 64 });
  const client = endpoint("client");
  client.sendFrame({ opcode: TEXT, payload: text("x"), mask: "none", declaredLength: 9n });
  const [crafted] = framesIn(server.dataToSend());
  assert.deepEqual(
    [crafted.header.opcode, crafted.header.rsv, crafted.header.fin, crafted.header.lengthForm],
    [0xb, 7, false, 64],
  );
  assert.deepEqual(crafted.header.maskKey, KEY);
  const lying = client.dataToSend();
  assert.deepEqual(decodeHeader(lying)!.masked, false);
  assert.equal(decodeHeader(lying)!.length, 9n);
});

Deno.test("sendClose sends the reason as given, even past a control frame's 125 bytes", () => {
  const e = endpoint("server");
  e.sendClose(1000, "r".repeat(124));
  assert.equal(framesIn(e.dataToSend())[0].payload.length, 126);
});

Deno.test("data after the peer's close is observed and dropped: failing would change nothing", () => {
  for (const role of ROLES) {
    const { events, sent, endpoint } = receive(
      role,
      concat([
        peerFrame(role, { opcode: Opcode.Close }),
        peerFrame(role, { opcode: TEXT, payload: text("late") }),
        peerFrame(role, { opcode: Opcode.Ping }),
      ]),
    );
    assert.deepEqual(summary(events), ["close undefined ", "observed data-after-close must"]);
    assert.deepEqual(framesIn(sent).map((f) => f.header.opcode), [Opcode.Close], "no pong");
    assert.equal(endpoint.failed, false);
    // Data before the close is legal.
    const legal = receive(
      role,
      concat([peerFrame(role, { opcode: TEXT }), peerFrame(role, { opcode: Opcode.Close })]),
    );
    assert.deepEqual(summary(legal.events), ["text ", "close undefined "]);
  }
});

Deno.test("autoPong off: the caller sends the pong owed for the latest ping", () => {
  const e = endpoint("client", { autoPong: false });
  e.receiveData(peerFrame("client", { opcode: Opcode.Ping, payload: text("p1") }));
  e.receiveData(peerFrame("client", { opcode: Opcode.Ping, payload: text("p2") }));
  assert.deepEqual(summary(e.eventsReceived()), ["ping p1", "ping p2"]);
  assert.equal(e.dataToSend().length, 0);
  assert.equal(e.pongOwed, true);
  e.sendOwedPong();
  assert.equal(e.pongOwed, false);
  assert.deepEqual(framesIn(e.dataToSend()).map((f) => f.payload), [text("p2")]);
  e.sendOwedPong();
  assert.equal(e.dataToSend().length, 0, "one pong per ping answered");
});

Deno.test("autoPong off: a pong still owed goes out before this end's close frame", () => {
  for (const role of ROLES) {
    const { sent } = receive(
      role,
      concat([
        peerFrame(role, { opcode: Opcode.Ping, payload: text("p") }),
        peerFrame(role, { opcode: Opcode.Close }),
      ]),
      { autoPong: false },
    );
    assert.deepEqual(framesIn(sent).map((f) => f.header.opcode), [Opcode.Pong, Opcode.Close]);
  }
});

// ---------------------------------------------------------------------------
// Closing handshake and who closes TCP (§7.1.1)

for (const role of ROLES) {
  Deno.test(`${role}: closing handshake started here`, () => {
    const e = endpoint(role);
    assert.equal(e.sendClose(1000), true);
    assert.equal(e.sendClose(1000), false, "only one close frame");
    assert.equal(e.state, "closing");
    assert.equal(e.closeHandshakeDone, false);
    // Data the peer sent before it saw the close is still delivered.
    e.receiveData(peerFrame(role, { opcode: TEXT, payload: text("late") }));
    e.receiveData(peerFrame(role, { opcode: Opcode.Close, payload: closePayload(1000) }));
    assert.deepEqual(summary(e.eventsReceived()), ["text late", "close 1000 "]);
    assert.deepEqual(framesIn(e.dataToSend()).map((f) => f.header.opcode), [Opcode.Close]);
    assert.equal(e.closeHandshakeDone, true);
    assert.equal(e.shouldCloseTcp, role === "server", "the server closes TCP first");
    assert.equal(e.closeExpected, role === "client", "the client waits for the server");
    e.connectionClosed();
    assert.equal(e.state, "closed");
    assert.equal(e.closeExpected, false);
  });

  Deno.test(`${role}: closing handshake started by the peer`, () => {
    const { sent, endpoint: e } = receive(
      role,
      peerFrame(role, { opcode: Opcode.Close, payload: closePayload(1001) }),
    );
    const [reply] = framesIn(sent);
    assert.equal(reply.header.masked, role === "client");
    assert.deepEqual(reply.payload, closePayload(1000));
    assert.equal(e.closeHandshakeDone, true);
    assert.equal(e.shouldCloseTcp, role === "server");
    assert.equal(e.closeExpected, role === "client");
  });
}
