/**
 * Client mode's case server on the wire, with real clients: Deno's own
 * WebSocket, the strict client (tests/peers/strict_client.ts), raw TCP and TLS.
 *
 *   deno test --allow-all tests/case_server_test.ts
 */
import assert from "node:assert/strict";
import {
  type CaseConnection,
  type CaseServer,
  CaseServerError,
  type CaseServerOptions,
  MAX_HEAD_BYTES,
  startCaseServer,
} from "../harness/case_server.ts";
import { Endpoint } from "../harness/endpoint.ts";
import { concat, Opcode } from "../harness/frame.ts";
import {
  caseCountMessage,
  caseInfoMessage,
  caseStatusMessage,
  parseFuzzingTarget,
} from "../harness/fuzzingserver.ts";
import {
  checkResponse,
  clientRequest,
  encodeRequest,
  generateKey,
  type HttpHead,
  parseHead,
} from "../harness/handshake.ts";
import { checkClientRequest, serverResponse } from "../harness/server_handshake.ts";
import { connectRaw } from "../harness/transport.ts";
import { runAutobahnDriver } from "./peers/autobahn_driver.ts";
import { runStrictClient } from "./peers/strict_client.ts";
import { selfSigned, withTempDir } from "./support.ts";

/** Bound of each wait on a real client: generous, for a busy machine; never a timing assertion. */
const WIRE_BOUND_MS = 20_000;
const encoder = new TextEncoder();
const DRIVER = new URL("./peers/autobahn_driver.ts", import.meta.url).pathname;

/** Out of Autobahn's order on purpose, with a title that Python's JSON escapes. */
const CASES = [
  { id: "2.1", title: "Send ping without payload." },
  { id: "1.1.2", title: "Send text message with payload of length 125." },
  { id: "1.1.1", title: "Send text message \u00e9 with payload 0." },
];

/** Starts a case server on the test's cases, closes it whatever `fn` does. */
async function withServer(
  options: Partial<CaseServerOptions>,
  fn: (server: CaseServer) => Promise<void>,
): Promise<void> {
  const server = startCaseServer({ cases: CASES, ...options });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** Reads until the head is complete; the head and every byte read. */
async function readHead(conn: Deno.Conn): Promise<{ head: HttpHead; bytes: Uint8Array }> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error("the peer closed before its head was complete");
    chunks.push(buffer.slice(0, n));
    const bytes = concat(chunks);
    const parsed = parseHead(bytes);
    if (parsed.type === "error") throw new Error(parsed.reason);
    if (parsed.type === "head") return { head: parsed.head, bytes };
  }
}

interface WebSocketRun {
  messages: string[];
  code: number;
  reason: string;
  wasClean: boolean;
}

/** Deno's own WebSocket: the messages it got, and how it closed. */
function denoWebSocket(url: URL): Promise<WebSocketRun> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const messages: string[] = [];
    const bound = setTimeout(() => {
      ws.close();
      reject(new Error(`no close from ${url} within ${WIRE_BOUND_MS} ms`));
    }, WIRE_BOUND_MS);
    ws.onmessage = (event) => messages.push(event.data);
    // A refused handshake is an error event, then a close event that says so.
    ws.onerror = () => {};
    ws.onclose = (event) => {
      clearTimeout(bound);
      resolve({ messages, code: event.code, reason: event.reason, wasClean: event.wasClean });
    };
  });
}

/**
 * An echo client over raw TCP or TLS (harness codecs, client role): the
 * messages it got, the pongs, the server's close code, and whether the server
 * closed TCP (the client waits for it to, §7.1.1; the bound would end the read
 * with an error). It pings as it opens: a server that waits for the client's
 * close frame, as it must, reads the ping first and answers it.
 */
async function rawWebSocket(
  url: URL,
  caCerts?: string[],
): Promise<{ messages: string[]; pongs: number; closeCode?: number; serverClosedTcp: boolean }> {
  const conn = await connectRaw({ url, caCerts, timeoutMs: WIRE_BOUND_MS });
  const bound = setTimeout(() => conn.close(), WIRE_BOUND_MS);
  try {
    const key = generateKey();
    await writeAll(conn, encodeRequest(clientRequest(url, key)));
    const { head, bytes } = await readHead(conn);
    assert.deepEqual(await checkResponse(head, key), []);
    const endpoint = new Endpoint({ role: "client" });
    endpoint.open();
    endpoint.receiveData(bytes.subarray(head.length));
    endpoint.sendPing(encoder.encode("still there?"));
    const messages: string[] = [];
    let pongs = 0;
    let closeCode: number | undefined;
    const buffer = new Uint8Array(64 * 1024);
    for (;;) {
      for (const event of endpoint.eventsReceived()) {
        if (event.type === "message") {
          messages.push(new TextDecoder().decode(event.payload));
          endpoint.sendText(event.payload);
        }
        if (event.type === "close") closeCode = event.code;
        // A pong after the server's close frame comes as a frame only: it has no meaning left.
        if (event.type === "frame" && event.header.opcode === Opcode.Pong) pongs++;
        assert.notEqual(event.type, "error", Deno.inspect(event));
      }
      await writeAll(conn, endpoint.dataToSend());
      const n = await conn.read(buffer);
      if (n === null) return { messages, pongs, closeCode, serverClosedTcp: true };
      endpoint.receiveData(buffer.slice(0, n));
    }
  } finally {
    clearTimeout(bound);
    try {
      conn.close();
    } catch { /* the server closed it */ }
  }
}

/** A GET with a valid opening handshake to `target`, over raw TCP: the whole answer, as text. */
async function rawExchange(server: CaseServer, target: string): Promise<string> {
  const conn = await connectRaw({ url: server.url, timeoutMs: WIRE_BOUND_MS });
  const bound = setTimeout(() => conn.close(), WIRE_BOUND_MS);
  try {
    const request = clientRequest(server.url, generateKey());
    await writeAll(conn, encodeRequest({ ...request, target }));
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(64 * 1024);
    for (let n; (n = await conn.read(buffer)) !== null;) chunks.push(buffer.slice(0, n));
    return new TextDecoder().decode(concat(chunks));
  } finally {
    clearTimeout(bound);
    conn.close();
  }
}

/** The answer an HTTP error with this status line and one-line body would be. */
function httpErrorText(statusLine: string, body: string): RegExp {
  const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${escaped(statusLine)}\\r\\n[^]*\\r\\n\\r\\n${escaped(body)}\\n$`);
}

/** echoCase's message: over 125 bytes, so that a truncated echo shows. */
const caseMessage = (caseId: string) => `case ${caseId} `.padEnd(200, "~");

/**
 * A stand-in for the session running a case: answers the handshake, sends one
 * text message, waits for its echo, closes as a server does (§7.1.1). The echoes.
 */
async function echoCase(connection: CaseConnection): Promise<string[]> {
  const { conn } = connection;
  const bound = setTimeout(() => conn.close(), WIRE_BOUND_MS);
  try {
    const parsed = parseHead(connection.head);
    assert.equal(parsed.type, "head");
    const { head } = parsed as { head: HttpHead };
    const check = checkClientRequest(head);
    assert.deepEqual(check.problems, []);
    await writeAll(conn, await serverResponse({ key: check.offer.key! }));
    const endpoint = new Endpoint({ role: "server" });
    endpoint.open();
    endpoint.receiveData(connection.head.subarray(head.length));
    endpoint.sendText(caseMessage(connection.caseId));
    const echoes: string[] = [];
    const buffer = new Uint8Array(64 * 1024);
    for (;;) {
      for (const event of endpoint.eventsReceived()) {
        if (event.type !== "message") continue;
        echoes.push(new TextDecoder().decode(event.payload));
        endpoint.sendClose(1000);
      }
      await writeAll(conn, endpoint.dataToSend());
      if (endpoint.shouldCloseTcp) return echoes;
      const n = await conn.read(buffer);
      if (n === null) return echoes;
      endpoint.receiveData(buffer.slice(0, n));
    }
  } finally {
    clearTimeout(bound);
    conn.close();
  }
}

Deno.test("case server: getCaseCount, getCaseInfo, getCaseStatus send Autobahn's message and close cleanly (Deno's WebSocket)", async () => {
  const asked: string[][] = [];
  const caseStatus = async (caseId: string, agent: string) => {
    asked.push([caseId, agent]);
    await Promise.resolve();
    return "NON-STRICT";
  };
  await withServer({ caseStatus }, async (server) => {
    assert.deepEqual(server.numbering, ["1.1.1", "1.1.2", "2.1"]);
    const numbering = server.numbering;
    const expected: [string, string][] = [
      ["getCaseCount", caseCountMessage(numbering)],
      ["getCaseInfo?case=1", caseInfoMessage("1.1.1", CASES[2].title)],
      ["getCaseInfo?casetuple=2.1", caseInfoMessage("2.1", CASES[0].title)],
      ["getCaseStatus?case=2&agent=Deno+client", caseStatusMessage("NON-STRICT")],
    ];
    for (const [path, message] of expected) {
      const run = await denoWebSocket(new URL(path, server.url));
      assert.deepEqual(run, { messages: [message], code: 1000, reason: "", wasClean: true }, path);
    }
    assert.equal(caseCountMessage(numbering), "3");
    assert.match(caseInfoMessage("1.1.1", CASES[2].title), /message \\u00e9 with/);
    assert.deepEqual(asked, [["1.1.2", "Deno client"]]);
  });
});

Deno.test("case server: the strict client ends each answer with a closing handshake, the server closing TCP", async () => {
  await withServer({ caseStatus: () => "OK" }, async (server) => {
    for (const path of ["getCaseCount", "getCaseInfo?case=3", "getCaseStatus?case=1&agent=a"]) {
      const result = await runStrictClient(new URL(path, server.url).href, {
        timeoutMs: WIRE_BOUND_MS,
      });
      assert.deepEqual(result, { exitCode: 0 }, path);
    }
    const raw = await rawWebSocket(new URL("getCaseCount", server.url));
    assert.deepEqual(raw, { messages: ["3"], pongs: 1, closeCode: 1000, serverClosedTcp: true });
  });
});

Deno.test("case server: getCaseStatus of a case with no result sends no message and closes 1011", async () => {
  await withServer({ caseStatus: () => undefined }, async (server) => {
    const run = await denoWebSocket(new URL("getCaseStatus?case=1&agent=x", server.url));
    assert.deepEqual(run, {
      messages: [],
      code: 1011,
      reason: "no result for case 1.1.1 and agent x",
      wasClean: true,
    });
  });
});

Deno.test("case server: updateReports awaits the hook, then closes cleanly", async () => {
  const order: string[] = [];
  const onUpdateReports = async (agent: string) => {
    await new Promise((resolve) => setTimeout(resolve, 10));
    order.push(`reports for ${agent}`);
  };
  await withServer({ onUpdateReports }, async (server) => {
    const run = await denoWebSocket(new URL("updateReports?agent=ws%20client", server.url));
    order.push(`closed ${run.code}`);
    assert.deepEqual(run.messages, []);
    assert.equal(run.wasClean, true);
    assert.deepEqual(order, ["reports for ws client", "closed 1000"]);
  });
  // A hook that fails: the driver learns it from the close.
  const failing = () => Promise.reject(new Error("disk full"));
  await withServer({ onUpdateReports: failing }, async (server) => {
    const run = await denoWebSocket(new URL("updateReports?agent=a", server.url));
    assert.equal(run.code, 1011);
    assert.equal(run.reason, "reports not updated: disk full");
  });
});

Deno.test("case server: runCase hands over the connection with the bytes read, to onRunCase", async () => {
  let handed!: (connection: CaseConnection) => void;
  const arrived = new Promise<CaseConnection>((resolve) => handed = resolve);
  await withServer({ onRunCase: (connection) => handed(connection) }, async (server) => {
    const url = new URL("runCase?case=3&agent=strict", server.url);
    const client = runStrictClient(url.href, { timeoutMs: WIRE_BOUND_MS });
    const connection = await arrived;
    assert.equal(connection.caseId, "2.1");
    assert.equal(connection.caseNumber, 3);
    assert.equal(connection.agent, "strict");
    assert.equal(connection.target, "/runCase?case=3&agent=strict");
    const parsed = parseHead(connection.head);
    assert.equal(parsed.type, "head");
    const check = checkClientRequest((parsed as { head: HttpHead }).head);
    assert.deepEqual(check.problems, []);
    assert.equal(check.offer.target, connection.target);
    // The server did not touch the connection: the case answers the handshake itself.
    assert.deepEqual(await echoCase(connection), [caseMessage("2.1")]);
    assert.deepEqual(await client, { exitCode: 0 });
  });
});

Deno.test("case server: expect() gets its connection, refuses a second one (409), and a case over waits for none", async () => {
  await withServer({}, async (server) => {
    const expectation = server.expect("1.1.2", "strict", WIRE_BOUND_MS);
    assert.equal(expectation.url.href, `${server.url.href}runCase?casetuple=1.1.2&agent=strict`);
    const client = runStrictClient(expectation.url.href, { timeoutMs: WIRE_BOUND_MS });
    const connection = await expectation.connection;
    assert.ok(connection);
    assert.equal(connection.caseId, "1.1.2");
    assert.equal(connection.caseNumber, 2);
    assert.equal(connection.agent, "strict");

    const second = await rawExchange(server, expectation.url.pathname + expectation.url.search);
    const reason = "case 1.1.2 for agent strict is already running";
    assert.match(second, httpErrorText("HTTP/1.1 409 Conflict", reason));
    assert.deepEqual(server.refusals, [{
      status: 409,
      reason,
      target: "/runCase?casetuple=1.1.2&agent=strict",
    }]);

    assert.deepEqual(await echoCase(connection), [caseMessage("1.1.2")]);
    assert.deepEqual(await client, { exitCode: 0 });
    expectation.end();
    // No expectation and no onRunCase: nobody takes the connection.
    const late = await rawExchange(server, "/runCase?case=2&agent=strict");
    assert.match(
      late,
      httpErrorText("HTTP/1.1 404 Not Found", "case 1.1.2 is not waiting for a client"),
    );
    assert.equal(server.refusalCount, 2);
  });
});

Deno.test("case server: expect() settles undefined when no client comes, or when the server closes", async () => {
  const server = startCaseServer({ cases: CASES });
  try {
    assert.equal(await server.expect("1.1.1", "a", 50).connection, undefined);
    assert.throws(() => server.expect("9.9.9", "a", 50), /^Error: case 9\.9\.9 is not served$/);
    // The expectation is gone: the case no longer takes a connection.
    const late = await rawExchange(server, "/runCase?case=1&agent=a");
    assert.match(
      late,
      httpErrorText("HTTP/1.1 404 Not Found", "case 1.1.1 is not waiting for a client"),
    );
  } finally {
    const pending = server.expect("2.1", "a", WIRE_BOUND_MS);
    await server.close();
    assert.equal(await pending.connection, undefined);
  }
});

Deno.test("case server: a target outside the protocol gets a 404 with the reason, a bad handshake a 400", async () => {
  await withServer({}, async (server) => {
    for (const target of ["/", "/getCaseInfo?case=9", "/runCase?case=1", "/stopServer"]) {
      const reason = (parseFuzzingTarget(target, server.numbering) as { reason: string }).reason;
      assert.match(
        await rawExchange(server, target),
        httpErrorText("HTTP/1.1 404 Not Found", reason),
      );
    }
    // Deno's WebSocket sees the refusal as a failed connection.
    const run = await denoWebSocket(new URL("getCaseInfo?case=0", server.url));
    assert.equal(run.wasClean, false);

    const conn = await connectRaw({ url: server.url, timeoutMs: WIRE_BOUND_MS });
    try {
      await writeAll(conn, encoder.encode("GET /getCaseCount HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
      const chunks: Uint8Array[] = [];
      const buffer = new Uint8Array(4096);
      for (let n; (n = await conn.read(buffer)) !== null;) chunks.push(buffer.slice(0, n));
      const answer = new TextDecoder().decode(concat(chunks));
      assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/);
      assert.match(
        answer,
        /\r\n\r\nUpgrade header lacks the websocket token \(RFC 6455 §4\.1 item 5\)\n$/,
      );
    } finally {
      conn.close();
    }
    assert.deepEqual(server.refusals.map((r) => r.status), [404, 404, 404, 404, 404, 400]);
  });
});

Deno.test("case server: a head past 16 KiB gets a 400", async () => {
  await withServer({}, async (server) => {
    const conn = await connectRaw({ url: server.url, timeoutMs: WIRE_BOUND_MS });
    const bound = setTimeout(() => conn.close(), WIRE_BOUND_MS);
    try {
      // Exactly the bound, so the server reads it all: unread bytes would make its close a reset.
      const start = "GET /getCaseCount HTTP/1.1\r\nX-Padding: ";
      await writeAll(conn, encoder.encode(start.padEnd(MAX_HEAD_BYTES, "p")));
      const chunks: Uint8Array[] = [];
      const buffer = new Uint8Array(4096);
      for (let n; (n = await conn.read(buffer)) !== null;) chunks.push(buffer.slice(0, n));
      const reason = `no end of HTTP head within ${MAX_HEAD_BYTES} bytes`;
      assert.match(
        new TextDecoder().decode(concat(chunks)),
        httpErrorText("HTTP/1.1 400 Bad Request", reason),
      );
      assert.deepEqual(server.refusals, [{ status: 400, reason, target: undefined }]);
    } finally {
      clearTimeout(bound);
      conn.close();
    }
  });
});

Deno.test("case server: a client that sends no head is dropped and counted; close() ends a head half sent", async () => {
  await withServer({ headTimeoutMs: 200 }, async (server) => {
    const silent = await connectRaw({ url: server.url, timeoutMs: WIRE_BOUND_MS });
    const bound = setTimeout(() => silent.close(), WIRE_BOUND_MS);
    try {
      // The server's close ends the read (EOF); the bound's would make it throw.
      assert.equal(await silent.read(new Uint8Array(16)), null);
    } finally {
      clearTimeout(bound);
      silent.close();
    }
    assert.equal(server.silentClients, 1);
  });

  const server = startCaseServer({ cases: CASES });
  const half = await connectRaw({ url: server.url, timeoutMs: WIRE_BOUND_MS });
  try {
    await writeAll(half, encoder.encode("GET /getCaseCount HTTP/1.1\r\n"));
    await server.close();
    assert.equal(await half.read(new Uint8Array(16)).catch(() => null), null);
    assert.equal(server.silentClients, 0);
  } finally {
    half.close();
  }
});

Deno.test("case server: wss:// with a self-signed certificate", async () => {
  await withTempDir(async (dir) => {
    const { cert, key } = await selfSigned(dir);
    let handed!: (connection: CaseConnection) => void;
    const arrived = new Promise<CaseConnection>((resolve) => handed = resolve);
    await withServer({ tls: { cert, key }, onRunCase: (c) => handed(c) }, async (server) => {
      assert.equal(server.url.protocol, "wss:");
      const count = await rawWebSocket(new URL("getCaseCount", server.url), [cert]);
      assert.deepEqual(count, {
        messages: ["3"],
        pongs: 1,
        closeCode: 1000,
        serverClosedTcp: true,
      });
      // A handed-over TLS connection carries on where the server left it.
      const run = rawWebSocket(new URL("runCase?case=1&agent=tls", server.url), [cert]);
      const connection = await arrived;
      assert.equal(connection.caseId, "1.1.1");
      await echoCase(connection);
      assert.deepEqual(await run, {
        messages: [caseMessage("1.1.1")],
        pongs: 1,
        closeCode: 1000,
        serverClosedTcp: true,
      });
    });
  });
});

Deno.test("case server: a certificate or key that is not PEM, or a port in use, is a one-line error", async () => {
  const attempts: CaseServerOptions["tls"][] = [
    { cert: "", key: "" },
    { cert: "not a certificate", key: "not a key" },
  ];
  for (const tls of attempts) {
    assert.throws(
      () => startCaseServer({ cases: CASES, tls }),
      (error: Error) =>
        error instanceof CaseServerError && !error.message.includes("\n") &&
        /^cannot listen with the TLS certificate and key: /.test(error.message),
    );
  }
  await withServer({}, (server) => {
    assert.throws(
      () => startCaseServer({ cases: CASES, port: server.port }),
      (error: Error) =>
        error instanceof CaseServerError &&
        error.message.startsWith(`cannot listen with 127.0.0.1:${server.port}: `),
    );
    return Promise.resolve();
  });
});

/**
 * A case server whose cases are echoCase: a case is OK when its echo came back
 * as sent. The status waits for the case's end, as a real case's result would.
 * The cases run and the reports updated go to `log`, in order.
 */
function echoCaseServer(log: string[]): CaseServer {
  const echoes = new Map<string, Promise<string[]>>();
  return startCaseServer({
    cases: CASES,
    onRunCase: (connection) => {
      log.push(`run ${connection.caseId}`);
      echoes.set(connection.caseId, echoCase(connection));
    },
    caseStatus: async (caseId) => {
      const echoed = await echoes.get(caseId);
      if (echoed === undefined) return undefined;
      return echoed.join() === caseMessage(caseId) ? "OK" : "FAILED";
    },
    onUpdateReports: (agent) => void log.push(`reports for ${agent}`),
  });
}

Deno.test("case server: the Autobahn driver runs every case in Autobahn's order, gets each status, updates the reports", async () => {
  const log: string[] = [];
  const server = echoCaseServer(log);
  try {
    const result = await runAutobahnDriver(server.url.href, {
      agent: "strict client",
      timeoutMs: WIRE_BOUND_MS,
    });
    assert.deepEqual(result, {
      caseCount: 3,
      cases: [1, 2, 3].map((caseNumber) => ({ caseNumber, exitCode: 0, behavior: "OK" })),
    });
    assert.deepEqual(log, ["run 1.1.1", "run 1.1.2", "run 2.1", "reports for strict client"]);
  } finally {
    await server.close();
  }
});

Deno.test("case server: the Autobahn driver as a command: a line per case, exit 0; a client that breaks the echo gets FAILED", async () => {
  const log: string[] = [];
  const server = echoCaseServer(log);
  try {
    const driver = (...args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-net", DRIVER, server.url.href, ...args],
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(WIRE_BOUND_MS),
      }).output();
    const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    const ok = await driver("--agent", "cmd");
    assert.equal(ok.code, 0, text(ok.stderr));
    assert.equal(text(ok.stdout), "case 1: closed, OK\ncase 2: closed, OK\ncase 3: closed, OK\n");
    // The driver still runs every case; the cases see the flaw.
    const flawed = await driver("--agent", "flawed", "--flaw", "truncate-long-echo");
    assert.equal(flawed.code, 0, text(flawed.stderr));
    assert.equal(
      text(flawed.stdout),
      "case 1: closed, FAILED\ncase 2: closed, FAILED\ncase 3: closed, FAILED\n",
    );
    assert.deepEqual(log.filter((line) => line.startsWith("reports")), [
      "reports for cmd",
      "reports for flawed",
    ]);
    assert.equal((await driver("--agent", "x", "--flaw", "no-such-flaw")).code, 2);
  } finally {
    await server.close();
  }
});
