/**
 * The permessage-deflate codec and negotiation (harness/deflate.ts): RFC
 * 7692's own examples byte for byte, round trips for every window size with
 * and without context takeover, a decompression bomb stopped at the limit,
 * and the §7 / §7.1 negotiation rules as tables.
 *
 *   deno test --allow-all tests/deflate_test.ts
 */
import assert from "node:assert/strict";
import zlib from "node:zlib";
import {
  answerDeflateOffers,
  checkDeflateResponse,
  type CodecOptions,
  type CompressorOptions,
  type InflateResult,
  longestDistance,
  MessageCompressor,
  MessageDecompressor,
  parseDeflateParams,
} from "../harness/deflate.ts";
import {
  type ExtensionOffer,
  formatExtensions,
  parseExtensions,
} from "../harness/server_handshake.ts";

const text = (s: string) => new TextEncoder().encode(s);
const bytes = (hex: string) => Uint8Array.fromHex(hex.replaceAll(" ", ""));
const MIB = 1 << 20;

function inflated(result: InflateResult): Uint8Array {
  assert.ok(result.ok, result.ok ? "" : `${result.code}: ${result.reason}`);
  return result.data;
}

const FLUSH_TAIL = bytes("00 00 ff ff");
const concat = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => [...p]));

/** Decompresses `messages` in order with one decompressor, then closes it. */
function decompressAll(
  options: CodecOptions,
  messages: Uint8Array[],
  maxMessageBytes = 64 * MIB,
): InflateResult[] {
  const decompressor = new MessageDecompressor({ ...options, maxMessageBytes });
  try {
    const results: InflateResult[] = [];
    for (const message of messages) results.push(decompressor.decompress(message));
    return results;
  } finally {
    decompressor.close();
  }
}

function compressAll(options: CompressorOptions, messages: Uint8Array[]): Uint8Array[] {
  const compressor = new MessageCompressor(options);
  try {
    const out: Uint8Array[] = [];
    for (const message of messages) out.push(compressor.compress(message));
    return out;
  } finally {
    compressor.close();
  }
}

const TAKEOVER = { windowBits: 15, contextTakeover: true };
const NO_TAKEOVER = { windowBits: 15, contextTakeover: false };
/** zlib's default level, at which its output is the RFC's, byte for byte (the suite uses level 1). */
const ZLIB_DEFAULT_TAKEOVER = { ...TAKEOVER, level: 6 };

// RFC 7692 §7.2.3's examples.
const HELLO = bytes("f2 48 cd c9 c9 07 00"); // §7.2.3.1
const HELLO_AGAIN = bytes("f2 00 11 00 00"); // §7.2.3.2: "Hello" again, the window taken over
const HELLO_STORED = bytes("00 05 00 fa ff 48 65 6c 6c 6f 00"); // §7.2.3.3
const HELLO_BFINAL = bytes("f3 48 cd c9 c9 07 00 00"); // §7.2.3.4
const HELLO_TWO_BLOCKS = bytes("f2 48 05 00 00 00 ff ff ca c9 c9 07 00"); // §7.2.3.5
const EMPTY_FRAGMENT = bytes("00"); // §7.2.3.6

Deno.test("RFC 7692 §7.2.3.1-2: 'Hello' compresses to its bytes, with and without the window taken over", () => {
  assert.deepEqual(compressAll(ZLIB_DEFAULT_TAKEOVER, [text("Hello"), text("Hello")]), [
    HELLO,
    HELLO_AGAIN,
  ]);
  assert.deepEqual(compressAll({ ...NO_TAKEOVER, level: 6 }, [text("Hello"), text("Hello")]), [
    HELLO,
    HELLO,
  ]);
  const [first, second] = decompressAll(TAKEOVER, [HELLO, HELLO_AGAIN]);
  assert.deepEqual([inflated(first), inflated(second)], [text("Hello"), text("Hello")]);
});

Deno.test("RFC 7692 §7.2.3.3-6: a stored block, BFINAL, two blocks, an empty fragment inflate", () => {
  const messages = [HELLO_STORED, HELLO_BFINAL, HELLO_AGAIN, HELLO_TWO_BLOCKS, EMPTY_FRAGMENT];
  const results = decompressAll(TAKEOVER, messages);
  // After BFINAL (§7.2.3.4) the window still holds "Hello": §7.2.3.2's message reads it.
  assert.deepEqual(results.map((r) => new TextDecoder().decode(inflated(r))), [
    "Hello",
    "Hello",
    "Hello",
    "Hello",
    "",
  ]);
  // A message's data may end in a fragment holding only an empty block (§7.2.3.6).
  const [split] = decompressAll(NO_TAKEOVER, [bytes("f2 48 cd c9 c9 07 00 00 00 ff ff 00")]);
  assert.deepEqual(inflated(split), text("Hello"));
  // An empty message compresses to that one byte (§7.2.3.6).
  assert.deepEqual(compressAll(TAKEOVER, [text("Hello"), new Uint8Array()]), [
    HELLO,
    EMPTY_FRAGMENT,
  ]);
});

/** Bytes without repeats, the same each run. */
function noise(length: number, seed = 7): Uint8Array {
  return Uint8Array.from({ length }, () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
}

/** Messages that repeat within and across themselves, and one longer than any window. */
function sampleMessages(): Uint8Array[] {
  const random = noise(3000);
  return [
    text("Hello"),
    text("Hello, Hello, Hello"),
    new Uint8Array(),
    text("the quick brown fox ".repeat(400)),
    random,
    random, // taken over, this one is a single back reference when the window holds it
    noise(100_000, 11),
    new Uint8Array(70_000).fill(0x61),
  ];
}

Deno.test("round trips for window bits 8-15, with and without context takeover", () => {
  const messages = sampleMessages();
  for (let windowBits = 8; windowBits <= 15; windowBits++) {
    for (const contextTakeover of [true, false]) {
      const options = { windowBits, contextTakeover };
      const compressed = compressAll(options, messages);
      const results = decompressAll(options, compressed);
      assert.deepEqual(results.map(inflated), messages, `${windowBits} bits, ${contextTakeover}`);
    }
  }
});

Deno.test("the compressor keeps its distances within the window bits", () => {
  const block = noise(1000);
  const message = new Uint8Array([...block, ...block]); // a repeat 1000 bytes back
  const sizes: number[] = [];
  for (const windowBits of [15, 11, 9, 8]) {
    const options = { windowBits, contextTakeover: true };
    const [compressed] = compressAll(options, [message]);
    sizes.push(compressed.length);
    assert.deepEqual(inflated((decompressAll(options, [compressed]))[0]), message);
  }
  // zlib reaches 262 bytes less than its window: 11 bits reach the repeat, 9 not (nor 8, as 9).
  assert.ok(sizes[0] < 1100 && sizes[1] < 1100, `${sizes}`);
  assert.ok(sizes[2] >= 2000 && sizes[3] >= 2000, `${sizes}`);
});

Deno.test("the decompressor holds the peer to its window bits: window-exceeded", () => {
  const block = noise(1000);
  const [wide] = compressAll(TAKEOVER, [new Uint8Array([...block, ...block])]);
  assert.equal(longestDistance(concat(wide, FLUSH_TAIL)), 1000);
  assert.equal(longestDistance(concat(HELLO_AGAIN, FLUSH_TAIL)), 5);
  // 1000 bytes back fits 10 bits (1024 bytes), not 9 (512).
  const [fits] = decompressAll({ windowBits: 10, contextTakeover: true }, [wide]);
  assert.equal(inflated(fits).length, 2000);
  const [tooFar, after] = decompressAll({ windowBits: 9, contextTakeover: true }, [
    wide,
    HELLO,
  ]);
  assert.deepEqual(tooFar.ok ? "inflated" : [tooFar.code, tooFar.reason], [
    "window-exceeded",
    "a back reference reaches 1000 bytes back, past the window of 9 bits",
  ]);
  assert.equal(after.ok ? "inflated" : after.code, "closed");
  // Blocks after a BFINAL one (§7.2.3.4's "Hello", its padding byte) are read too.
  const afterFinal = concat(HELLO_BFINAL.subarray(0, 7), wide);
  assert.equal(longestDistance(concat(afterFinal, FLUSH_TAIL)), 1000);
  const [both] = decompressAll({ windowBits: 10, contextTakeover: true }, [afterFinal]);
  assert.equal(inflated(both).length, 2005);
  // Dynamic Huffman blocks are read too: a repeat 23000 bytes back in a longer message.
  const random = noise(3000);
  const [dynamic] = compressAll(TAKEOVER, [
    new Uint8Array([...random, ...noise(20_000, 3), ...random, ...text("abc ".repeat(5000))]),
  ]);
  assert.equal(longestDistance(concat(dynamic, FLUSH_TAIL)), 23_000);
});

Deno.test("without context takeover each message inflates with a fresh window; with it, not", () => {
  const messages = [text("Hello"), text("Hello"), text("Hello, world")];
  for (const message of compressAll(NO_TAKEOVER, messages)) {
    const [alone] = decompressAll(NO_TAKEOVER, [message]);
    assert.ok(alone.ok, "each message inflates on its own");
  }
  const [, takenOver] = compressAll(TAKEOVER, messages);
  const [alone] = decompressAll(NO_TAKEOVER, [takenOver]);
  assert.equal(alone.ok ? "inflated" : alone.code, "inflate-failed");
  // A decompressor without context takeover starts each message afresh.
  const [a, b] = decompressAll(NO_TAKEOVER, [HELLO, HELLO_AGAIN]);
  assert.deepEqual(inflated(a), text("Hello"));
  assert.equal(b.ok ? "inflated" : b.code, "inflate-failed");
});

Deno.test("data that is not DEFLATE fails with inflate-failed, then the decompressor is closed", () => {
  const [bad, after] = decompressAll(TAKEOVER, [bytes("ff ff ff ff"), HELLO]);
  assert.equal(bad.ok ? "inflated" : bad.code, "inflate-failed");
  assert.equal(after.ok ? "inflated" : after.code, "closed");
});

Deno.test("the limit: a message of exactly the limit inflates, one byte more is too-big", () => {
  const [exact] = compressAll(TAKEOVER, [new Uint8Array(1000)]);
  assert.equal(inflated((decompressAll(TAKEOVER, [exact], 1000))[0]).length, 1000);
  const [over] = decompressAll(TAKEOVER, [exact], 999);
  assert.deepEqual(over.ok ? "inflated" : [over.code, over.reason], [
    "too-big",
    "the message inflates past 999 bytes",
  ]);
});

Deno.test("a decompression bomb (1 GiB of zeros, about 1 MB) stops at the limit, in small memory", async () => {
  // Built in 1 MiB writes: the 1 GiB is never in memory.
  const deflate = zlib.createDeflateRaw({ level: 9 });
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  deflate.on("data", (chunk: Uint8Array<ArrayBuffer>) => chunks.push(chunk));
  const zeros = new Uint8Array(MIB);
  for (let i = 0; i < 1024; i++) deflate.write(zeros);
  await new Promise<void>((resolve) => deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve()));
  deflate.close();
  const bomb = new Uint8Array(await new Blob(chunks).arrayBuffer());
  assert.ok(bomb.length < 2 * MIB, `the bomb is ${bomb.length} bytes`);

  const rssBefore = Deno.memoryUsage().rss;
  const [result, after] = decompressAll(TAKEOVER, [bomb.subarray(0, -4), HELLO], 16 * MIB);
  const grown = Deno.memoryUsage().rss - rssBefore;
  assert.deepEqual(result.ok ? "inflated" : [result.code, result.reason], [
    "too-big",
    `the message inflates past ${16 * MIB} bytes`,
  ]);
  assert.ok(grown < 256 * MIB, `memory grew by ${grown >> 20} MiB`);
  assert.equal(after.ok ? "inflated" : after.code, "closed");
});

// ---------------------------------------------------------------------------
// Negotiation.

const DECLINE = "RFC 7692 §7: a server MUST decline";
const FAIL = "RFC 7692 §7: a client MUST fail";

function extensions(header: string): ExtensionOffer[] {
  if (header === "") return [];
  const parsed = parseExtensions(header);
  assert.equal(parsed.type, "list", header);
  return parsed.type === "list" ? parsed.items : [];
}

Deno.test("offers: valid parameters parse, invalid ones are declined with §7's rule", () => {
  const valid: [string, object][] = [
    ["permessage-deflate", {}],
    ["permessage-deflate; client_max_window_bits", { clientMaxWindowBits: true }],
    ["permessage-deflate; client_max_window_bits=10", { clientMaxWindowBits: 10 }],
    ['permessage-deflate; server_max_window_bits="8"', { serverMaxWindowBits: 8 }],
    [
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15",
      { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15 },
    ],
  ];
  for (const [header, params] of valid) {
    assert.deepEqual(parseDeflateParams(extensions(header)[0], "offer"), {
      ok: true,
      params: { serverNoContextTakeover: false, clientNoContextTakeover: false, ...params },
    }, header);
  }
  const invalid = [
    "server_max_window_bits=7",
    "server_max_window_bits=16",
    "server_max_window_bits=abc",
    "server_max_window_bits=010",
    'server_max_window_bits="09"',
    "server_max_window_bits",
    "client_max_window_bits=7",
    "client_max_window_bits=16",
    "server_no_context_takeover=1",
    "client_no_context_takeover; client_no_context_takeover",
    "server_max_window_bits=10; server_max_window_bits=10",
    "x_unknown",
  ];
  for (const params of invalid) {
    const parsed = parseDeflateParams(extensions(`permessage-deflate; ${params}`)[0], "offer");
    assert.ok(!parsed.ok && parsed.rule.startsWith(DECLINE), params);
  }
  const response = parseDeflateParams(
    extensions("permessage-deflate; client_max_window_bits")[0],
    "response",
  );
  assert.ok(!response.ok && response.rule.startsWith(FAIL), "a response's value is required");
});

Deno.test("a server's answer: the first valid offer, within what it offered", () => {
  const table: [string, object, string | undefined, number?][] = [
    // offers, the server's wishes, the response (undefined: declined), the accepted offer
    ["permessage-deflate", {}, "permessage-deflate", 0],
    [
      "permessage-deflate; server_max_window_bits=10",
      {},
      "permessage-deflate; server_max_window_bits=10",
      0,
    ],
    [
      "permessage-deflate; server_max_window_bits=10",
      { serverMaxWindowBits: 12 },
      "permessage-deflate; server_max_window_bits=10",
      0,
    ],
    [
      "permessage-deflate",
      { serverMaxWindowBits: 12 },
      "permessage-deflate; server_max_window_bits=12",
      0,
    ],
    [
      "permessage-deflate; server_no_context_takeover",
      {},
      "permessage-deflate; server_no_context_takeover",
      0,
    ],
    [
      "permessage-deflate",
      { clientNoContextTakeover: true },
      "permessage-deflate; client_no_context_takeover",
      0,
    ],
    [
      "permessage-deflate; client_max_window_bits",
      { clientMaxWindowBits: 10 },
      "permessage-deflate; client_max_window_bits=10",
      0,
    ],
    [
      "permessage-deflate; client_max_window_bits=9",
      { clientMaxWindowBits: 12 },
      "permessage-deflate; client_max_window_bits=9",
      0,
    ],
    // The client did not offer client_max_window_bits: the server cannot limit it.
    ["permessage-deflate", { clientMaxWindowBits: 10 }, "permessage-deflate", 0],
    [
      "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=7, permessage-deflate",
      {},
      "permessage-deflate",
      2,
    ],
    ["permessage-deflate; x_unknown", {}, undefined],
    ["permessage-deflate; client_max_window_bits=abc", {}, undefined],
    ["x-webkit-deflate-frame", {}, undefined],
  ];
  for (const [header, wishes, expected, expectedIndex] of table) {
    const offers = extensions(header);
    const answer = answerDeflateOffers(offers, wishes);
    if (expected === undefined) {
      assert.equal(answer.type, "decline", header);
      continue;
    }
    assert.ok(answer.type === "accept", header);
    assert.equal(formatExtensions([answer.response]), expected, header);
    assert.equal(answer.offerIndex, expectedIndex, header);
    // The client's check takes the server's answer, with the same agreement.
    assert.deepEqual(checkDeflateResponse(offers, [answer.response]), {
      type: "accepted",
      offerIndex: expectedIndex,
      agreed: answer.agreed,
    }, header);
  }
  const declined = answerDeflateOffers(extensions("permessage-deflate; x_unknown"));
  assert.ok(declined.type === "decline" && declined.problems[0].rule.startsWith(DECLINE));
});

Deno.test("a client's check of the response against its offers (§7, §7.1)", () => {
  const all15 = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 15,
    clientMaxWindowBits: 15,
  };
  const accepted: [string, string, object, number?][] = [
    ["permessage-deflate", "permessage-deflate", {}],
    // A server may add these without the offer (§7.1.1.1, §7.1.1.2, §7.1.2.1).
    ["permessage-deflate", "permessage-deflate; server_no_context_takeover", {
      serverNoContextTakeover: true,
    }],
    ["permessage-deflate", "permessage-deflate; client_no_context_takeover", {
      clientNoContextTakeover: true,
    }],
    ["permessage-deflate", "permessage-deflate; server_max_window_bits=10", {
      serverMaxWindowBits: 10,
    }],
    [
      "permessage-deflate; server_max_window_bits=10",
      "permessage-deflate; server_max_window_bits=8",
      {
        serverMaxWindowBits: 8,
      },
    ],
    [
      "permessage-deflate; client_max_window_bits",
      "permessage-deflate; client_max_window_bits=10",
      {
        clientMaxWindowBits: 10,
      },
    ],
    // The client said it uses at most 11 bits; the server did not answer it.
    ["permessage-deflate; client_max_window_bits=11", "permessage-deflate", {
      clientMaxWindowBits: 11,
    }],
    // The response matches the second offer only.
    [
      "permessage-deflate; server_max_window_bits=10, permessage-deflate",
      "permessage-deflate",
      {},
      1,
    ],
  ];
  for (const [offers, response, agreed, offerIndex] of accepted) {
    assert.deepEqual(checkDeflateResponse(extensions(offers), extensions(response)), {
      type: "accepted",
      offerIndex: offerIndex ?? 0,
      agreed: { ...all15, ...agreed },
    }, `${offers} → ${response}`);
  }
  assert.deepEqual(
    checkDeflateResponse(extensions("permessage-deflate"), extensions("")),
    { type: "declined" },
  );
  const broken: [string, string, string][] = [
    // offers, response, the rule broken (its start)
    ["permessage-deflate", "permessage-deflate; client_max_window_bits=10", "RFC 7692 §7.1.2.2"],
    [
      "permessage-deflate; server_max_window_bits=10",
      "permessage-deflate; server_max_window_bits=12",
      "RFC 7692 §7.1.2.1",
    ],
    ["permessage-deflate; server_max_window_bits=10", "permessage-deflate", "RFC 7692 §7.1.2.1"],
    ["permessage-deflate; server_no_context_takeover", "permessage-deflate", "RFC 7692 §7.1.1.1"],
    [
      "permessage-deflate",
      "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
      FAIL,
    ],
    ["permessage-deflate", "permessage-deflate; server_max_window_bits=7", FAIL],
    ["permessage-deflate", "permessage-deflate; server_max_window_bits=16", FAIL],
    ["permessage-deflate", "permessage-deflate; server_max_window_bits=abc", FAIL],
    [
      "permessage-deflate; client_max_window_bits",
      "permessage-deflate; client_max_window_bits",
      FAIL,
    ],
    ["permessage-deflate", "permessage-deflate; x_unknown", FAIL],
    [
      "permessage-deflate, permessage-deflate",
      "permessage-deflate, permessage-deflate",
      "RFC 7692 §5",
    ],
    ["x-webkit-deflate-frame", "permessage-deflate", "RFC 6455 §9.1"],
  ];
  for (const [offers, response, rule] of broken) {
    const check = checkDeflateResponse(extensions(offers), extensions(response));
    assert.ok(check.type === "error" && check.rule.startsWith(rule), `${offers} → ${response}`);
  }
});
