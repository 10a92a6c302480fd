import assert from "node:assert/strict";
import {
  acceptFor,
  changeRequest,
  checkResponse,
  clientRequest,
  encodeRequest,
  generateKey,
  type HeaderList,
  headerTokens,
  headerValues,
  type HttpHead,
  parseHead,
  parseStatusLine,
  WEBSOCKET_GUID,
} from "../harness/handshake.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** The §1.3 / §4.2.2 example. */
const RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

Deno.test("acceptFor: RFC 6455 §1.3 / §4.2.2 example", async () => {
  assert.equal(WEBSOCKET_GUID, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
  assert.equal(await acceptFor(RFC_KEY), RFC_ACCEPT);
  // SHA-1 is 20 bytes: 28 base64 characters with one pad.
  const other = await acceptFor("x3JJHMbDL1EzLkh9GBhXDw==");
  assert.match(other, /^[A-Za-z0-9+/]{27}=$/);
  assert.equal(other, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
});

Deno.test("generateKey: base64 of 16 bytes, fresh each call", () => {
  const keys = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const key = generateKey();
    assert.match(key, /^[A-Za-z0-9+/]{22}==$/);
    assert.equal(Uint8Array.fromBase64(key).length, 16);
    keys.add(key);
  }
  assert.equal(keys.size, 200);
});

Deno.test("clientRequest", async (t) => {
  await t.step("ws://host:9001/path?q=1", () => {
    const req = clientRequest(new URL("ws://host:9001/path?q=1"), RFC_KEY);
    assert.equal(req.target, "/path?q=1");
    assert.equal(req.method, undefined);
    assert.equal(req.httpVersion, undefined);
    assert.deepEqual(req.headers, [
      ["Host", "host:9001"],
      ["Upgrade", "websocket"],
      ["Connection", "Upgrade"],
      ["Sec-WebSocket-Key", RFC_KEY],
      ["Sec-WebSocket-Version", "13"],
    ]);
  });

  await t.step("wss://host/ omits the default port from Host", () => {
    const req = clientRequest(new URL("wss://host/"), RFC_KEY);
    assert.equal(req.target, "/");
    assert.deepEqual(req.headers[0], ["Host", "host"]);
  });

  await t.step("default ports per scheme", () => {
    const host = (url: string) => clientRequest(new URL(url), RFC_KEY).headers[0][1];
    assert.equal(host("ws://host:80/"), "host");
    assert.equal(host("wss://host:443/"), "host");
    assert.equal(host("ws://host:443/"), "host:443");
    assert.equal(host("wss://host:80/"), "host:80");
    assert.equal(host("ws://[::1]:9001/"), "[::1]:9001");
    assert.equal(host("ws://127.0.0.1/"), "127.0.0.1");
  });

  await t.step("no path is '/'; the query is kept", () => {
    assert.equal(clientRequest(new URL("ws://host"), RFC_KEY).target, "/");
    assert.equal(clientRequest(new URL("ws://host?a=b&c"), RFC_KEY).target, "/?a=b&c");
  });

  await t.step("options: protocols, origin, user agent, in that order", () => {
    const req = clientRequest(new URL("ws://host/"), RFC_KEY, {
      protocols: ["chat", "superchat"],
      origin: "http://example.com",
      userAgent: "wsconform",
    });
    assert.deepEqual(req.headers.slice(5), [
      ["Sec-WebSocket-Protocol", "chat, superchat"],
      ["Origin", "http://example.com"],
      ["User-Agent", "wsconform"],
    ]);
    const none = clientRequest(new URL("ws://host/"), RFC_KEY, { protocols: [] });
    assert.equal(none.headers.length, 5);
  });

  await t.step("extra headers come last, in order; one named like User-Agent replaces it", () => {
    const req = clientRequest(new URL("ws://host/"), RFC_KEY, {
      userAgent: "wsconform",
      headers: [["Cookie", "a=1"], ["user-agent", "mine/1"], ["Cookie", "b=2"]],
    });
    assert.deepEqual(req.headers.slice(5), [
      ["Cookie", "a=1"],
      ["user-agent", "mine/1"],
      ["Cookie", "b=2"],
    ]);
  });
});

Deno.test("changeRequest: a case's own headers win over the options' offer", () => {
  const base = clientRequest(new URL("ws://host/"), RFC_KEY, {
    protocols: ["lws-mirror-protocol"],
    origin: "https://app.example",
    headers: [["Authorization", "Bearer t"]],
  });
  const changed = changeRequest(base, {
    headers: { "Sec-WebSocket-Protocol": "x-wsconform-unknown", Origin: "http://evil.example" },
  });
  assert.deepEqual(changed.headers.slice(5), [
    ["Sec-WebSocket-Protocol", "x-wsconform-unknown"],
    ["Origin", "http://evil.example"],
    ["Authorization", "Bearer t"],
  ]);
  // A case that leaves them alone sends the options' offer.
  assert.deepEqual(changeRequest(base, { query: "x=1" }).headers, base.headers);
});

Deno.test("encodeRequest: exact bytes", () => {
  const bytes = encodeRequest(clientRequest(new URL("ws://host:9001/path?q=1"), RFC_KEY));
  const expected = "GET /path?q=1 HTTP/1.1\r\n" +
    "Host: host:9001\r\n" +
    "Upgrade: websocket\r\n" +
    "Connection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
    "Sec-WebSocket-Version: 13\r\n" +
    "\r\n";
  assert.deepEqual(bytes, enc(expected));
  assert.equal(dec(bytes), expected);

  assert.deepEqual(
    encodeRequest({ method: "POST", target: "/x", httpVersion: "HTTP/1.0", headers: [] }),
    enc("POST /x HTTP/1.0\r\n\r\n"),
  );
  assert.deepEqual(
    encodeRequest({ target: "/", headers: [["A", "1"], ["a", "2"]] }),
    enc("GET / HTTP/1.1\r\nA: 1\r\na: 2\r\n\r\n"),
  );
});

const RESPONSE = "HTTP/1.1 101 Switching Protocols\r\n" +
  "Upgrade: websocket\r\n" +
  "Connection: Upgrade\r\n" +
  `Sec-WebSocket-Accept: ${RFC_ACCEPT}\r\n` +
  "\r\n";

Deno.test("parseHead", async (t) => {
  await t.step("incomplete: every strict prefix of a head", () => {
    const bytes = enc(RESPONSE);
    for (let n = 0; n < bytes.length; n++) {
      assert.deepEqual(parseHead(bytes.subarray(0, n)), { type: "incomplete" }, `prefix ${n}`);
    }
  });

  await t.step("complete", () => {
    const bytes = enc(RESPONSE);
    assert.deepEqual(parseHead(bytes), {
      type: "head",
      head: {
        startLine: "HTTP/1.1 101 Switching Protocols",
        headers: [
          ["Upgrade", "websocket"],
          ["Connection", "Upgrade"],
          ["Sec-WebSocket-Accept", RFC_ACCEPT],
        ],
        length: bytes.length,
      },
    });
  });

  await t.step("a request head round-trips through encodeRequest", () => {
    const req = clientRequest(new URL("ws://host:9001/path?q=1"), RFC_KEY);
    const bytes = encodeRequest(req);
    const r = parseHead(bytes);
    assert.equal(r.type, "head");
    if (r.type !== "head") return;
    assert.equal(r.head.startLine, "GET /path?q=1 HTTP/1.1");
    assert.deepEqual(r.head.headers, req.headers);
    assert.equal(r.head.length, bytes.length);
  });

  await t.step("trailing bytes: length tells where the frames start", () => {
    const head = enc(RESPONSE);
    const frames = new Uint8Array([
      0x81,
      0x05,
      0x48,
      0x65,
      0x6c,
      0x6c,
      0x6f,
      0x0d,
      0x0a,
      0x0d,
      0x0a,
    ]);
    const bytes = new Uint8Array(head.length + frames.length);
    bytes.set(head);
    bytes.set(frames, head.length);
    const r = parseHead(bytes);
    assert.equal(r.type, "head");
    if (r.type !== "head") return;
    assert.equal(r.head.length, head.length);
    assert.deepEqual(bytes.subarray(r.head.length), frames);
    assert.equal(r.head.headers.length, 3);
  });

  await t.step("the first empty line ends the head, even when a second one follows", () => {
    const r = parseHead(enc("HTTP/1.1 101 OK\r\nA: 1\r\n\r\nB: 2\r\n\r\n"));
    assert.deepEqual(r, {
      type: "head",
      head: { startLine: "HTTP/1.1 101 OK", headers: [["A", "1"]], length: 25 },
    });
  });

  await t.step("no headers", () => {
    assert.deepEqual(parseHead(enc("HTTP/1.1 400 Bad Request\r\n\r\n")), {
      type: "head",
      head: { startLine: "HTTP/1.1 400 Bad Request", headers: [], length: 28 },
    });
  });

  await t.step("header names and values are trimmed; a value may contain colons", () => {
    const r = parseHead(enc("GET / HTTP/1.1\r\nHost:host:9001\r\nX-A :  v  \r\nX-Empty:\r\n\r\n"));
    assert.equal(r.type, "head");
    if (r.type !== "head") return;
    assert.deepEqual(r.head.headers, [["Host", "host:9001"], ["X-A", "v"], ["X-Empty", ""]]);
  });

  await t.step("over maxLength", () => {
    const max = 64;
    const noEnd = enc("HTTP/1.1 101 Switching Protocols\r\nX-Padding: " + "a".repeat(100));
    const at = (n: number) => parseHead(noEnd.subarray(0, n), max);
    assert.deepEqual(at(max - 1), { type: "incomplete" });
    assert.deepEqual(at(max), {
      type: "error",
      reason: "no end of HTTP head within 64 bytes",
    });
    assert.equal(at(max + 50).type, "error");

    // A head of exactly maxLength bytes is accepted; one byte longer is not.
    const exact = enc("HTTP/1.1 101 OK\r\nX: " + "b".repeat(max - 24) + "\r\n\r\n");
    assert.equal(exact.length, max);
    const ok = parseHead(exact, max);
    assert.equal(ok.type, "head");
    assert.equal(ok.type === "head" && ok.head.length, max);
    const longer = enc("HTTP/1.1 101 OK\r\nX: " + "b".repeat(max - 23) + "\r\n\r\n");
    assert.equal(parseHead(longer, max).type, "error");

    // The default limit is 16 KiB.
    assert.equal(parseHead(new Uint8Array(16383).fill(0x61)).type, "incomplete");
    assert.equal(parseHead(new Uint8Array(16384).fill(0x61)).type, "error");
  });

  await t.step("malformed header lines", () => {
    assert.deepEqual(parseHead(enc("HTTP/1.1 101 OK\r\nUpgrade websocket\r\n\r\n")), {
      type: "error",
      reason: 'malformed header line: "Upgrade websocket"',
    });
    assert.deepEqual(parseHead(enc("HTTP/1.1 101 OK\r\n: value\r\n\r\n")), {
      type: "error",
      reason: 'malformed header line: ": value"',
    });
    // A colon-less line after a good header is malformed too.
    assert.deepEqual(parseHead(enc("HTTP/1.1 101 OK\r\nA: 1\r\nB\r\n\r\n")), {
      type: "error",
      reason: 'malformed header line: "B"',
    });
  });
});

Deno.test("headerValues / headerTokens across repeated headers and case", () => {
  const headers: HeaderList = [
    ["Connection", "keep-alive, Upgrade"],
    ["Host", "h"],
    ["connection", "  FOO ,,bar , "],
    ["CONNECTION", ""],
  ];
  assert.deepEqual(headerValues(headers, "CoNnEcTiOn"), [
    "keep-alive, Upgrade",
    "  FOO ,,bar , ",
    "",
  ]);
  assert.deepEqual(headerTokens(headers, "connection"), ["keep-alive", "upgrade", "foo", "bar"]);
  assert.deepEqual(headerTokens(headers, "CONNECTION"), ["keep-alive", "upgrade", "foo", "bar"]);
  assert.deepEqual(headerTokens(headers, "host"), ["h"]);
  assert.deepEqual(headerValues(headers, "upgrade"), []);
  assert.deepEqual(headerTokens(headers, "upgrade"), []);
});

Deno.test("parseStatusLine", () => {
  assert.deepEqual(parseStatusLine("HTTP/1.1 101 Switching Protocols"), {
    httpVersion: "HTTP/1.1",
    status: 101,
    reason: "Switching Protocols",
  });
  assert.deepEqual(parseStatusLine("HTTP/1.0 404 Not Found"), {
    httpVersion: "HTTP/1.0",
    status: 404,
    reason: "Not Found",
  });
  assert.deepEqual(parseStatusLine("HTTP/1.1 101"), {
    httpVersion: "HTTP/1.1",
    status: 101,
    reason: "",
  });
  assert.deepEqual(parseStatusLine("HTTP/1.1 101 "), {
    httpVersion: "HTTP/1.1",
    status: 101,
    reason: "",
  });
  for (
    const bad of [
      "",
      "HTTP/1.1",
      "HTTP/1.1 1010 Switching",
      "HTTP/1.1 10 X",
      "HTTP/1.1  101 X",
      "HTTP/2 101 X",
      "http/1.1 101 X",
      "HTTP/1.1 abc X",
      " HTTP/1.1 101 X",
      "ICY 200 OK",
    ]
  ) {
    assert.equal(parseStatusLine(bad), undefined, JSON.stringify(bad));
  }
});

function head(startLine: string, headers: HeaderList): HttpHead {
  return { startLine, headers, length: 0 };
}

const GOOD: HeaderList = [
  ["Upgrade", "websocket"],
  ["Connection", "Upgrade"],
  ["Sec-WebSocket-Accept", RFC_ACCEPT],
];
const STATUS_101 = "HTTP/1.1 101 Switching Protocols";
const without = (name: string) => GOOD.filter(([n]) => n !== name);

Deno.test("checkResponse", async (t) => {
  await t.step("a correct response has no problems", async () => {
    const r = parseHead(enc(RESPONSE));
    assert.equal(r.type, "head");
    if (r.type !== "head") return;
    assert.deepEqual(await checkResponse(r.head, RFC_KEY), []);
    // Token matching is case-insensitive and Connection may carry other tokens.
    assert.deepEqual(
      await checkResponse(
        head(STATUS_101, [
          ["upgrade", "WebSocket"],
          ["connection", "keep-alive, upgrade"],
          ["sec-websocket-accept", RFC_ACCEPT],
        ]),
        RFC_KEY,
      ),
      [],
    );
  });

  await t.step("wrong status", async () => {
    assert.deepEqual(await checkResponse(head("HTTP/1.1 200 OK", GOOD), RFC_KEY), [
      "expected status 101, got 200 OK",
    ]);
    assert.deepEqual(await checkResponse(head("HTTP/1.1 400 Bad Request", []), RFC_KEY), [
      "expected status 101, got 400 Bad Request",
    ]);
    assert.deepEqual(await checkResponse(head("garbage", GOOD), RFC_KEY), [
      'malformed status line: "garbage"',
    ]);
  });

  await t.step("missing Upgrade / Connection tokens", async () => {
    assert.deepEqual(await checkResponse(head(STATUS_101, without("Upgrade")), RFC_KEY), [
      "Upgrade header lacks the websocket token",
    ]);
    assert.deepEqual(
      await checkResponse(head(STATUS_101, [["Upgrade", "h2c"], ...without("Upgrade")]), RFC_KEY),
      ["Upgrade header lacks the websocket token"],
    );
    assert.deepEqual(await checkResponse(head(STATUS_101, without("Connection")), RFC_KEY), [
      "Connection header lacks the Upgrade token",
    ]);
    assert.deepEqual(
      await checkResponse(
        head(STATUS_101, [["Connection", "keep-alive"], ...without("Connection")]),
        RFC_KEY,
      ),
      ["Connection header lacks the Upgrade token"],
    );
    assert.deepEqual(await checkResponse(head(STATUS_101, []), RFC_KEY), [
      "Upgrade header lacks the websocket token",
      "Connection header lacks the Upgrade token",
      `Sec-WebSocket-Accept is "", expected ${RFC_ACCEPT}`,
    ]);
  });

  await t.step("wrong, missing or repeated accept", async () => {
    const wrong = [...without("Sec-WebSocket-Accept"), [
      "Sec-WebSocket-Accept",
      "AAAA",
    ]] as HeaderList;
    assert.deepEqual(await checkResponse(head(STATUS_101, wrong), RFC_KEY), [
      `Sec-WebSocket-Accept is "AAAA", expected ${RFC_ACCEPT}`,
    ]);
    assert.deepEqual(
      await checkResponse(head(STATUS_101, without("Sec-WebSocket-Accept")), RFC_KEY),
      [
        `Sec-WebSocket-Accept is "", expected ${RFC_ACCEPT}`,
      ],
    );
    // The right accept for another key.
    assert.equal(
      (await checkResponse(head(STATUS_101, GOOD), "x3JJHMbDL1EzLkh9GBhXDw==")).length,
      1,
    );
    // Twice, both right: still a problem (exactly one is required).
    assert.deepEqual(
      await checkResponse(
        head(STATUS_101, [...GOOD, ["Sec-WebSocket-Accept", RFC_ACCEPT]]),
        RFC_KEY,
      ),
      [`Sec-WebSocket-Accept is "${RFC_ACCEPT}, ${RFC_ACCEPT}", expected ${RFC_ACCEPT}`],
    );
  });

  await t.step("subprotocols", async () => {
    const withProto = (...values: string[]): HttpHead =>
      head(STATUS_101, [
        ...GOOD,
        ...values.map((v) => ["Sec-WebSocket-Protocol", v] as [string, string]),
      ]);
    assert.deepEqual(await checkResponse(withProto("chat"), RFC_KEY, ["superchat", "chat"]), []);
    assert.deepEqual(await checkResponse(withProto("chat"), RFC_KEY), [
      "subprotocol chat was not offered",
    ]);
    assert.deepEqual(await checkResponse(withProto("chat"), RFC_KEY, ["superchat"]), [
      "subprotocol chat was not offered",
    ]);
    // Two selected, in one header line or in two.
    assert.deepEqual(
      await checkResponse(withProto("chat, superchat"), RFC_KEY, ["chat", "superchat"]),
      [
        "more than one subprotocol selected",
      ],
    );
    assert.deepEqual(
      await checkResponse(withProto("chat", "superchat"), RFC_KEY, ["chat", "superchat"]),
      [
        "more than one subprotocol selected",
      ],
    );
    // Offered but none selected is fine.
    assert.deepEqual(await checkResponse(head(STATUS_101, GOOD), RFC_KEY, ["chat"]), []);
  });

  await t.step("unoffered extension", async () => {
    assert.deepEqual(
      await checkResponse(
        head(STATUS_101, [...GOOD, ["Sec-WebSocket-Extensions", "permessage-deflate"]]),
        RFC_KEY,
      ),
      ["extension accepted though none was offered: permessage-deflate"],
    );
  });

  await t.step("several problems at once are all reported", async () => {
    const problems = await checkResponse(
      head(STATUS_101, [
        ["Sec-WebSocket-Protocol", "a, b"],
        ["Sec-WebSocket-Extensions", "x-foo"],
      ]),
      RFC_KEY,
    );
    assert.deepEqual(problems, [
      "Upgrade header lacks the websocket token",
      "Connection header lacks the Upgrade token",
      `Sec-WebSocket-Accept is "", expected ${RFC_ACCEPT}`,
      "more than one subprotocol selected",
      "extension accepted though none was offered: x-foo",
    ]);
  });
});
