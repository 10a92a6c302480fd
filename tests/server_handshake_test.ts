import assert from "node:assert/strict";
import { acceptFor, checkResponse, type HttpHead, parseHead } from "../harness/handshake.ts";
import {
  checkClientRequest,
  type ExtensionOffer,
  formatExtensions,
  formatProtocols,
  parseExtensions,
  parseProtocols,
  type ResponseChanges,
  serverResponse,
} from "../harness/server_handshake.ts";
import { type Flaw, runStrictClient } from "./peers/strict_client.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** The §1.3 / §4.2.2 example key and its Accept. */
const RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

function head(text: string): HttpHead {
  const parsed = parseHead(enc(text));
  assert.equal(parsed.type, "head", text);
  return (parsed as { type: "head"; head: HttpHead }).head;
}

/** A request from its lines, CRLF-terminated. */
function request(...lines: string[]): HttpHead {
  return head(lines.join("\r\n") + "\r\n\r\n");
}

/** The request of RFC 6455 §1.2, as its lines. */
const RFC_REQUEST = [
  "GET /chat HTTP/1.1",
  "Host: server.example.com",
  "Upgrade: websocket",
  "Connection: Upgrade",
  `Sec-WebSocket-Key: ${RFC_KEY}`,
  "Origin: http://example.com",
  "Sec-WebSocket-Protocol: chat, superchat",
  "Sec-WebSocket-Version: 13",
];

/** RFC_REQUEST with the line starting with `prefix` replaced by `lines` (none: removed). */
function changed(prefix: string, ...lines: string[]): HttpHead {
  const at = RFC_REQUEST.findIndex((line) => line.startsWith(prefix));
  assert.ok(at >= 0, prefix);
  return request(...RFC_REQUEST.slice(0, at), ...lines, ...RFC_REQUEST.slice(at + 1));
}

/** The problems of a request, as "section level" strings. */
function problemsOf(h: HttpHead): string[] {
  return checkClientRequest(h).problems.map((p) => `${p.section} ${p.level}`);
}

Deno.test("checkClientRequest: the request of RFC 6455 §1.2", () => {
  assert.deepEqual(checkClientRequest(request(...RFC_REQUEST)), {
    offer: {
      method: "GET",
      target: "/chat",
      httpVersion: "HTTP/1.1",
      host: "server.example.com",
      key: RFC_KEY,
      version: "13",
      origin: "http://example.com",
      protocols: ["chat", "superchat"],
      extensions: [],
    },
    problems: [],
  });
});

Deno.test("checkClientRequest: what real clients send is valid", async (t) => {
  const key = "x3JJHMbDL1EzLkh9GBhXDw==";
  const deflateWithBits: ExtensionOffer[] = [
    { name: "permessage-deflate", params: [{ name: "client_max_window_bits" }] },
  ];
  const clients: [string, string[], ExtensionOffer[]][] = [
    ["Chrome", [
      "GET /runCase?case=1&agent=chrome HTTP/1.1",
      "Host: 127.0.0.1:9001",
      "Connection: Upgrade",
      "Pragma: no-cache",
      "Cache-Control: no-cache",
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36",
      "Upgrade: websocket",
      "Origin: http://127.0.0.1:8080",
      "Sec-WebSocket-Version: 13",
      "Accept-Encoding: gzip, deflate, br, zstd",
      "Accept-Language: en-US,en;q=0.9",
      `Sec-WebSocket-Key: ${key}`,
      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    ], deflateWithBits],
    ["Firefox", [
      "GET /runCase?case=1&agent=firefox HTTP/1.1",
      "Host: 127.0.0.1:9001",
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
      "Accept: */*",
      "Sec-WebSocket-Version: 13",
      "Origin: http://localhost:8080",
      "Sec-WebSocket-Extensions: permessage-deflate",
      `Sec-WebSocket-Key: ${key}`,
      "Connection: keep-alive, Upgrade",
      "Sec-Fetch-Dest: empty",
      "Sec-Fetch-Mode: websocket",
      "Sec-Fetch-Site: same-site",
      "Pragma: no-cache",
      "Cache-Control: no-cache",
      "Upgrade: websocket",
    ], [{ name: "permessage-deflate", params: [] }]],
    // Header names and tokens in lower case, as undici writes them; "WebSocket" as old Safari.
    ["lower-case names", [
      "GET / HTTP/1.1",
      "host: [::1]:9001",
      "connection: upgrade",
      "upgrade: WebSocket",
      `sec-websocket-key: ${key}`,
      "sec-websocket-version: 13",
      "sec-websocket-extensions: permessage-deflate; client_max_window_bits",
    ], deflateWithBits],
    ["several offers, on two lines", [
      "GET http://127.0.0.1:9001/path?q=1 HTTP/1.1",
      "Host: 127.0.0.1:9001",
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${key}`,
      "Sec-WebSocket-Version: 13",
      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15;" +
      " server_no_context_takeover",
      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-webkit-deflate-frame",
    ], [
      {
        name: "permessage-deflate",
        params: [{ name: "client_max_window_bits", value: "15" }, {
          name: "server_no_context_takeover",
        }],
      },
      ...deflateWithBits,
      { name: "x-webkit-deflate-frame", params: [] },
    ]],
  ];
  for (const [client, lines, extensions] of clients) {
    await t.step(client, () => {
      const check = checkClientRequest(request(...lines));
      assert.deepEqual(check.problems, []);
      assert.equal(check.offer.key, key);
      assert.deepEqual(check.offer.extensions, extensions);
    });
  }
  await t.step(
    "HTTP/1.2, Origin null or in capitals, a protocol list with an empty element",
    () => {
      assert.deepEqual(problemsOf(changed("GET", "GET /chat HTTP/1.2")), []);
      assert.deepEqual(problemsOf(changed("Origin", "Origin: null")), []);
      assert.deepEqual(problemsOf(changed("Origin", "Origin: HTTPS://Example.COM:8443")), []);
      const protocols = changed(
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Protocol: chat, , superchat",
      );
      assert.deepEqual(checkClientRequest(protocols).offer.protocols, ["chat", "superchat"]);
    },
  );
  await t.step("Origin and Sec-WebSocket-Protocol are optional", () => {
    const check = checkClientRequest(changed("Origin"));
    assert.deepEqual(check.problems, []);
    assert.equal(check.offer.origin, undefined);
    const bare = checkClientRequest(changed("Sec-WebSocket-Protocol"));
    assert.deepEqual(bare.problems, []);
    assert.deepEqual(bare.offer.protocols, []);
  });
});

Deno.test("checkClientRequest: each broken rule is one problem, with its section", async (t) => {
  const cases: [string, HttpHead, string][] = [
    ["POST", changed("GET", "POST /chat HTTP/1.1"), "§4.1 item 2"],
    ["lower-case get", changed("GET", "get /chat HTTP/1.1"), "§4.1 item 2"],
    ["HTTP/1.0", changed("GET", "GET /chat HTTP/1.0"), "§4.1 item 2"],
    ["no version in the request line", changed("GET", "GET /chat"), "§4.1 item 1"],
    ["a target that is no resource name", changed("GET", "GET chat HTTP/1.1"), "§4.1 item 3"],
    ["a ws: absolute target", changed("GET", "GET ws://a/chat HTTP/1.1"), "§4.1 item 3"],
    ["a fragment", changed("GET", "GET /chat#top HTTP/1.1"), "§3"],
    ["no Host", changed("Host"), "§4.1 item 4"],
    ["two Host lines", changed("Host", "Host: a", "Host: b"), "§4.1 item 1"],
    ["an empty Host", changed("Host", "Host:"), "§4.1 item 4"],
    ["a Host with a path", changed("Host", "Host: a/b"), "§4.1 item 4"],
    ["no Upgrade", changed("Upgrade"), "§4.1 item 5"],
    ["Upgrade: h2c", changed("Upgrade", "Upgrade: h2c"), "§4.1 item 5"],
    ["no Connection", changed("Connection"), "§4.1 item 6"],
    ["Connection: keep-alive", changed("Connection", "Connection: keep-alive"), "§4.1 item 6"],
    ["no key", changed("Sec-WebSocket-Key"), "§4.1 item 7"],
    [
      "two keys",
      changed(
        "Sec-WebSocket-Key",
        `Sec-WebSocket-Key: ${RFC_KEY}`,
        `Sec-WebSocket-Key: ${RFC_KEY}`,
      ),
      "§11.3.1",
    ],
    [
      "a 15-byte key",
      changed("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA"),
      "§4.1 item 7",
    ],
    [
      "a 17-byte key",
      changed("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA="),
      "§4.1 item 7",
    ],
    [
      "a key with non-zero padding bits",
      changed("Sec-WebSocket-Key", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR=="),
      "§4.1 item 7",
    ],
    [
      "a key that is not base64",
      changed("Sec-WebSocket-Key", "Sec-WebSocket-Key: the sample nonce!!!!!=="),
      "§4.1 item 7",
    ],
    ["no version", changed("Sec-WebSocket-Version"), "§4.1 item 9"],
    ["version 8", changed("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8"), "§4.1 item 9"],
    [
      "version 13 twice",
      changed("Sec-WebSocket-Version", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 13"),
      "§11.3.5",
    ],
    [
      "two Origin lines",
      changed("Origin", "Origin: http://a", "Origin: http://b"),
      "RFC 6454 §7.3",
    ],
    ["an Origin with a path", changed("Origin", "Origin: http://example.com/"), "§4.1 item 8"],
    ["an Origin without a scheme", changed("Origin", "Origin: example.com"), "§4.1 item 8"],
    [
      "a subprotocol offered twice",
      changed("Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol: chat, chat"),
      "§4.1 item 10",
    ],
    [
      "a subprotocol that is no token",
      changed("Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol: chat/1"),
      "§4.1 item 10",
    ],
    [
      "an empty subprotocol list",
      changed("Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol:"),
      "§4.1 item 10",
    ],
    [
      "a malformed extension offer",
      changed("Origin", "Sec-WebSocket-Extensions: permessage-deflate; =15"),
      "§9.1",
    ],
  ];
  for (const [name, h, section] of cases) {
    await t.step(name, () => assert.deepEqual(problemsOf(h), [`${section} must`]));
  }
  await t.step("a problem says what is wrong", () => {
    assert.deepEqual(
      checkClientRequest(changed("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8")).problems,
      [
        { section: "§4.1 item 9", level: "must", text: "Sec-WebSocket-Version 8, not 13" },
      ],
    );
  });
  await t.step("a bare GET breaks five rules", () => {
    assert.deepEqual(problemsOf(head("GET / HTTP/1.1\r\nX: y\r\n\r\n")), [
      "§4.1 item 4 must",
      "§4.1 item 5 must",
      "§4.1 item 6 must",
      "§4.1 item 7 must",
      "§4.1 item 9 must",
    ]);
  });
  await t.step("a malformed list leaves the offer's list empty", () => {
    const check = checkClientRequest(
      changed("Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol: chat, chat"),
    );
    assert.deepEqual(check.offer.protocols, []);
  });
});

Deno.test("checkClientRequest never throws", () => {
  // A fixed linear congruential sequence: the same bytes each run.
  let seed = 6455;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
  const alphabet = ' \t:;,="\\/?#[]@abcGET13websocketUpgrade';
  for (let i = 0; i < 500; i++) {
    const text = Array.from({ length: next() % 40 }, () => alphabet[next() % alphabet.length]).join(
      "",
    );
    const lines = [
      text,
      `Host: ${text}`,
      `Sec-WebSocket-Key: ${text}`,
      `Sec-WebSocket-Protocol: ${text}`,
      `Sec-WebSocket-Extensions: ${text}`,
      `Origin: ${text}`,
    ];
    const parsed = parseHead(enc(lines.join("\r\n") + "\r\n\r\n"));
    if (parsed.type === "head") checkClientRequest(parsed.head);
    parseExtensions(text);
    parseProtocols(text);
  }
});

Deno.test("parseExtensions", async (t) => {
  const parsed = (lines: string | string[]) => {
    const result = parseExtensions(lines);
    assert.equal(result.type, "list", JSON.stringify(result));
    return (result as { items: ExtensionOffer[] }).items;
  };
  await t.step("an extension with a parameter without a value (Chrome)", () => {
    assert.deepEqual(parsed("permessage-deflate; client_max_window_bits"), [
      { name: "permessage-deflate", params: [{ name: "client_max_window_bits" }] },
    ]);
  });
  await t.step("several offers in preference order (RFC 7692 §5)", () => {
    assert.deepEqual(
      parsed(
        "permessage-deflate; client_max_window_bits; server_max_window_bits=10, " +
          "permessage-deflate; client_max_window_bits",
      ),
      [
        {
          name: "permessage-deflate",
          params: [{ name: "client_max_window_bits" }, {
            name: "server_max_window_bits",
            value: "10",
          }],
        },
        { name: "permessage-deflate", params: [{ name: "client_max_window_bits" }] },
      ],
    );
  });
  await t.step("quoted values, unescaped", () => {
    assert.deepEqual(parsed('permessage-deflate; client_max_window_bits="10"'), [
      { name: "permessage-deflate", params: [{ name: "client_max_window_bits", value: "10" }] },
    ]);
    assert.deepEqual(parsed('x; a="1\\0"'), [
      { name: "x", params: [{ name: "a", value: "10" }] },
    ]);
  });
  await t.step("whitespace around every separator, tabs too", () => {
    assert.deepEqual(parsed('  a ;b = 1 ;\tc\t,\td ; e = "f"  '), [
      { name: "a", params: [{ name: "b", value: "1" }, { name: "c" }] },
      { name: "d", params: [{ name: "e", value: "f" }] },
    ]);
  });
  await t.step("repeated parameters kept, for the extension to judge", () => {
    assert.deepEqual(parsed("x; p=1; p=2"), [
      { name: "x", params: [{ name: "p", value: "1" }, { name: "p", value: "2" }] },
    ]);
  });
  await t.step("several lines make one list; empty elements are skipped", () => {
    assert.deepEqual(parsed(["a", ", b; x ,", "c"]), [
      { name: "a", params: [] },
      { name: "b", params: [{ name: "x" }] },
      { name: "c", params: [] },
    ]);
  });
  await t.step("malformed lists are one-line errors", () => {
    const errors: [string | string[], RegExp][] = [
      ["", /lists no extension/],
      [" , ,", /lists no extension/],
      [[], /lists no extension/],
      ["a;", /expects a parameter name at character 2 of "a;"/],
      ["a; =1", /expects a parameter name/],
      ["a; b=", /expects a parameter value/],
      ["a; b=@", /expects a parameter value/],
      ['a; b="1', /unterminated quoted string/],
      ['a; b="1\\"', /unterminated quoted string/],
      ['a; b=""', /not a token once unescaped/],
      ['a; b="1 2"', /not a token once unescaped/],
      ["a b", /expects "," or ";" at character 2/],
      ["a; b=1 2", /expects "," or ";"/],
      ["a=1", /expects "," or ";"/],
      ["; a", /expects an extension name at character 0/],
      ["a, @", /expects an extension name/],
      [["a", "b;"], /expects a parameter name/],
    ];
    for (const [text, reason] of errors) {
      const result = parseExtensions(text);
      assert.equal(result.type, "error", JSON.stringify(text));
      const message = (result as { reason: string }).reason;
      assert.match(message, /^Sec-WebSocket-Extensions /);
      assert.match(message, reason);
      assert.doesNotMatch(message, /\n/);
    }
  });
});

Deno.test("formatExtensions", () => {
  assert.equal(formatExtensions([]), "");
  const text = "permessage-deflate; client_max_window_bits=10; server_no_context_takeover, " +
    "permessage-deflate";
  const parsed = parseExtensions(text);
  assert.equal(parsed.type, "list");
  assert.equal(formatExtensions((parsed as { items: ExtensionOffer[] }).items), text);
  // The canonical form of a quoted value that is a token is the token.
  const quoted = parseExtensions('x; a="1"') as { items: ExtensionOffer[] };
  assert.equal(formatExtensions(quoted.items), "x; a=1");
  // A value that is no token is written quoted, escaped (a case's deliberately wrong answer).
  assert.equal(
    formatExtensions([{ name: "x", params: [{ name: "a", value: 'b "c" \\d' }] }]),
    'x; a="b \\"c\\" \\\\d"',
  );
});

Deno.test("parseProtocols and formatProtocols", () => {
  assert.deepEqual(parseProtocols("chat, superchat"), {
    type: "list",
    items: ["chat", "superchat"],
  });
  assert.deepEqual(parseProtocols(["chat", "superchat,v2.json"]), {
    type: "list",
    items: ["chat", "superchat", "v2.json"],
  });
  // Names are case-sensitive: "Chat" is another subprotocol.
  assert.deepEqual(parseProtocols("chat,Chat"), { type: "list", items: ["chat", "Chat"] });
  assert.deepEqual(parseProtocols("chat, chat"), {
    type: "error",
    reason: "Sec-WebSocket-Protocol offers chat twice",
  });
  assert.deepEqual(parseProtocols("a b"), {
    type: "error",
    reason: 'Sec-WebSocket-Protocol "a b" is not a token',
  });
  assert.equal(parseProtocols("chat/1").type, "error");
  assert.equal(parseProtocols('"chat"').type, "error");
  assert.equal(parseProtocols(" , ").type, "error");
  assert.equal(formatProtocols(["chat", "superchat"]), "chat, superchat");
});

/** A response's text, parsed back into a head. */
async function response(
  key: string,
  options: Omit<Parameters<typeof serverResponse>[0], "key"> = {},
) {
  const bytes = await serverResponse({ key, ...options });
  return { text: dec(bytes), head: head(dec(bytes)) };
}

Deno.test("serverResponse: the 101 of RFC 6455 §1.3, byte for byte", async () => {
  const { text } = await response(RFC_KEY);
  assert.equal(
    text,
    "HTTP/1.1 101 Switching Protocols\r\n" +
      "Upgrade: websocket\r\n" +
      "Connection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${RFC_ACCEPT}\r\n` +
      "\r\n",
  );
});

Deno.test("serverResponse: subprotocol, extensions, extra headers", async () => {
  const { text, head: h } = await response(RFC_KEY, {
    protocol: "chat",
    extensions: [{ name: "permessage-deflate", params: [{ name: "server_no_context_takeover" }] }],
    headers: [["Server", "wsconform"], ["Set-Cookie", "a=1"]],
  });
  assert.equal(
    text,
    "HTTP/1.1 101 Switching Protocols\r\n" +
      "Upgrade: websocket\r\n" +
      "Connection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${RFC_ACCEPT}\r\n` +
      "Sec-WebSocket-Protocol: chat\r\n" +
      "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n" +
      "Server: wsconform\r\n" +
      "Set-Cookie: a=1\r\n" +
      "\r\n",
  );
  // The client side's checker: the subprotocol was offered; the suite offers no extension.
  assert.deepEqual(await checkResponse(h, RFC_KEY, ["superchat", "chat"]), [
    "extension accepted though none was offered: permessage-deflate; server_no_context_takeover",
  ]);
});

Deno.test("serverResponse: changes as data", async (t) => {
  const key = "x3JJHMbDL1EzLkh9GBhXDw==";
  const accept = "HSmrc0sMlYUkAGmm5OPpG2HaGWk=";
  const lines = async (changes: ResponseChanges) =>
    (await response(key, { changes })).text.split("\r\n").slice(0, -2);
  await t.step("status, reason and HTTP version", async () => {
    assert.equal((await lines({ status: 200 }))[0], "HTTP/1.1 200 OK");
    assert.equal((await lines({ status: 426 }))[0], "HTTP/1.1 426 Upgrade Required");
    // An unlisted status keeps the space before its empty reason (RFC 7230 §3.1.2).
    assert.equal((await lines({ status: 299 }))[0], "HTTP/1.1 299 ");
    assert.equal((await lines({ status: 101, reason: "Go" }))[0], "HTTP/1.1 101 Go");
    assert.equal((await lines({ httpVersion: "HTTP/1.0" }))[0], "HTTP/1.0 101 Switching Protocols");
    // Only what is named changes: a 200 keeps the WebSocket headers.
    assert.deepEqual((await lines({ status: 200 })).slice(1), [
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Accept: ${accept}`,
    ]);
  });
  await t.step("headers replaced in place under the name as written, removed, added", async () => {
    assert.deepEqual(
      await lines({
        headers: {
          "UPGRADE": "WEBSOCKET",
          "connection": null,
          "sec-websocket-accept": "{accept}",
          "X-Extra": ["1", "2"],
        },
      }),
      [
        "HTTP/1.1 101 Switching Protocols",
        "UPGRADE: WEBSOCKET",
        `sec-websocket-accept: ${accept}`,
        "X-Extra: 1",
        "X-Extra: 2",
      ],
    );
  });
  await t.step("{accept} and {key} in values", async () => {
    assert.deepEqual(
      (await lines({ headers: { "Sec-WebSocket-Accept": ["{accept}", "{accept}"] } })).slice(3),
      [
        `Sec-WebSocket-Accept: ${accept}`,
        `Sec-WebSocket-Accept: ${accept}`,
      ],
    );
    assert.deepEqual((await lines({ headers: { "Sec-WebSocket-Accept": "{key}" } })).slice(3), [
      `Sec-WebSocket-Accept: ${key}`,
    ]);
    // {other-accept}: the Accept of the key with an "x" appended, never the right one.
    const other = await lines({ headers: { "Sec-WebSocket-Accept": "{other-accept}" } });
    assert.deepEqual(other.slice(3), [`Sec-WebSocket-Accept: ${await acceptFor(`${key}x`)}`]);
    assert.notEqual(other[3], `Sec-WebSocket-Accept: ${accept}`);
  });
});

Deno.test("serverResponse: the client's checker accepts the legal answers and refuses the rest", async (t) => {
  const key = "x3JJHMbDL1EzLkh9GBhXDw==";
  const offered = ["chat"];
  const legal: [string, Parameters<typeof serverResponse>[0]][] = [
    ["the plain 101", { key }],
    ["the offered subprotocol", { key, protocol: "chat" }],
    ["header names in lower case", {
      key,
      changes: {
        headers: {
          upgrade: "websocket",
          connection: "upgrade",
          "sec-websocket-accept": "{accept}",
        },
      },
    }],
    ["header names and tokens in capitals", {
      key,
      changes: {
        headers: {
          UPGRADE: "WEBSOCKET",
          CONNECTION: "UPGRADE",
          "SEC-WEBSOCKET-ACCEPT": "{accept}",
        },
      },
    }],
    ["Connection with several tokens", {
      key,
      changes: { headers: { Connection: "keep-alive, Upgrade" } },
    }],
    ["extra headers", {
      key,
      headers: [["Server", "x"], ["Date", "Fri, 27 Nov 2026 09:00:00 GMT"]],
    }],
  ];
  for (const [name, options] of legal) {
    await t.step(`legal: ${name}`, async () => {
      const h = head(dec(await serverResponse(options)));
      assert.deepEqual(await checkResponse(h, key, offered), []);
    });
  }
  const refused: [string, Parameters<typeof serverResponse>[0], RegExp][] = [
    ["status 200", { key, changes: { status: 200 } }, /expected status 101, got 200/],
    ["no Accept", { key, changes: { headers: { "Sec-WebSocket-Accept": null } } }, /Accept/],
    [
      "the key as Accept",
      { key, changes: { headers: { "Sec-WebSocket-Accept": "{key}" } } },
      /Accept/,
    ],
    [
      "the RFC's Accept",
      { key, changes: { headers: { "Sec-WebSocket-Accept": RFC_ACCEPT } } },
      /Accept/,
    ],
    ["Accept twice", {
      key,
      changes: { headers: { "Sec-WebSocket-Accept": ["{accept}", "{accept}"] } },
    }, /Accept/],
    ["two Accepts in one line", {
      key,
      changes: { headers: { "Sec-WebSocket-Accept": "{accept}, {accept}" } },
    }, /Accept/],
    ["no Upgrade", { key, changes: { headers: { Upgrade: null } } }, /Upgrade header/],
    ["Upgrade: h2c", { key, changes: { headers: { Upgrade: "h2c" } } }, /Upgrade header/],
    ["no Connection", { key, changes: { headers: { Connection: null } } }, /Connection header/],
    ["Connection: keep-alive", {
      key,
      changes: { headers: { Connection: "keep-alive" } },
    }, /Connection header/],
    ["an unoffered subprotocol", { key, protocol: "superchat" }, /superchat was not offered/],
    ["an unoffered extension", {
      key,
      extensions: [{ name: "permessage-deflate", params: [] }],
    }, /extension accepted/],
  ];
  for (const [name, options, problem] of refused) {
    await t.step(`refused: ${name}`, async () => {
      const h = head(dec(await serverResponse(options)));
      const problems = await checkResponse(h, key, offered);
      assert.equal(problems.length, 1, problems.join("; "));
      assert.match(problems[0], problem);
    });
  }
});

/** Bound of each wait on a real client: generous, for a busy machine; never a timing assertion. */
const WIRE_BOUND_MS = 20_000;
/** A close frame, code 1000, unmasked as a server sends it. */
const SERVER_CLOSE = new Uint8Array([0x88, 0x02, 0x03, 0xe8]);

/**
 * Serves one connection: reads the client's request head, answers with
 * `answer(check)` and, after a 101, closes (a close frame, the client's reply
 * read, then TCP). Returns the check of the request.
 */
async function serveOnce(
  listener: Deno.TcpListener,
  answer: (check: ReturnType<typeof checkClientRequest>) => ResponseChanges,
) {
  const conn = await listener.accept();
  let timedOut = false;
  const bound = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, WIRE_BOUND_MS);
  try {
    let bytes = new Uint8Array(0);
    const buffer = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) throw new Error("the client closed before its request head");
      bytes = new Uint8Array([...bytes, ...buffer.subarray(0, n)]);
      const parsed = parseHead(bytes);
      if (parsed.type === "error") throw new Error(parsed.reason);
      if (parsed.type === "incomplete") continue;
      const check = checkClientRequest(parsed.head);
      const changes = answer(check);
      const protocol = check.offer.protocols[0];
      await conn.write(await serverResponse({ key: check.offer.key ?? "", protocol, changes }));
      if ((changes.status ?? 101) === 101) {
        try {
          await conn.write(SERVER_CLOSE);
          await conn.read(buffer); // the client's close, or the end of its side
        } catch (error) {
          // A client that refused the answer may have reset the connection already.
          if (
            !(error instanceof Deno.errors.ConnectionReset ||
              error instanceof Deno.errors.BrokenPipe)
          ) {
            throw error;
          }
        }
      }
      return check;
    }
  } finally {
    clearTimeout(bound);
    if (!timedOut) conn.close();
  }
}

Deno.test("on the wire: real clients' requests, and the answers they accept or refuse", async (t) => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const url = `ws://127.0.0.1:${listener.addr.port}/runCase?case=1&agent=test`;
  try {
    await t.step("Deno's WebSocket: a valid request; the 101 opens the connection", async () => {
      const socket = new WebSocket(url, ["chat", "superchat"]);
      const events: string[] = [];
      const closed = new Promise<void>((resolve) => {
        socket.onopen = () => events.push(`open ${socket.protocol}`);
        socket.onerror = () => events.push("error");
        socket.onclose = () => resolve();
      });
      const check = await serveOnce(listener, () => ({}));
      await closed;
      assert.deepEqual(check.problems, []);
      assert.equal(check.offer.target, "/runCase?case=1&agent=test");
      assert.equal(check.offer.host, `127.0.0.1:${listener.addr.port}`);
      assert.deepEqual(check.offer.protocols, ["chat", "superchat"]);
      assert.deepEqual(events, ["open chat"]);
    });
    const strict = async (flaws: Flaw[], answer: ResponseChanges) => {
      const [result, check] = await Promise.all([
        runStrictClient(url, { flaws, origin: "http://localhost:8080", timeoutMs: WIRE_BOUND_MS }),
        serveOnce(listener, () => answer),
      ]);
      return { result, check };
    };
    await t.step(
      "the strict client: a valid request; it completes the closing handshake",
      async () => {
        const { result, check } = await strict([], {});
        assert.deepEqual(check.problems, []);
        assert.equal(check.offer.origin, "http://localhost:8080");
        assert.deepEqual(result, { exitCode: 0 });
      },
    );
    await t.step("the strict client refuses a wrong Accept", async () => {
      const { result, check } = await strict([], { headers: { "Sec-WebSocket-Accept": "{key}" } });
      assert.deepEqual(check.problems, []);
      assert.equal(result.exitCode, 1);
      assert.match(result.error ?? "", /Accept/);
    });
    await t.step("the strict client's flaw bad-handshake-version: §4.1 item 9", async () => {
      const { check } = await strict(["bad-handshake-version"], { status: 426 });
      assert.deepEqual(check.problems, [
        { section: "§4.1 item 9", level: "must", text: "Sec-WebSocket-Version 8, not 13" },
      ]);
    });
  } finally {
    listener.close();
  }
});
