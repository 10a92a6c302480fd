/**
 * Client mode's drivers on the wire: a raw-TCP server in the test answers the
 * client's handshake (harness/server_handshake.ts), sends unmasked messages,
 * checks their echoes, and closes as a server does.
 */
import assert from "node:assert/strict";
import {
  type ClientConnection,
  type ClientDriver,
  type ClientExit,
  ClientStartError,
  commandClient,
  embeddedClient,
  splitCommand,
} from "../harness/client_driver.ts";
import {
  closePayload,
  encodeFrame,
  type FrameHeader,
  FrameParser,
  Opcode,
} from "../harness/frame.ts";
import { parseHead } from "../harness/handshake.ts";
import {
  checkClientRequest,
  type RequestCheck,
  serverResponse,
} from "../harness/server_handshake.ts";
import { withTempDir } from "./support.ts";

/** Bound of each wait on a real client: generous, for a busy machine; never a timing assertion. */
const WIRE_BOUND_MS = 20_000;
const enc = (s: string) => new TextEncoder().encode(s);

interface Message {
  opcode: number;
  payload: Uint8Array;
}

interface Served {
  check: RequestCheck;
  /** The client's frames, in order, with their headers (masking) and payloads. */
  frames: { header: FrameHeader; payload: Uint8Array }[];
}

/** The next connection to `listener`; the listener is closed if none comes within WIRE_BOUND_MS. */
async function accept(listener: Deno.TcpListener): Promise<Deno.TcpConn> {
  const bound = setTimeout(() => listener.close(), WIRE_BOUND_MS);
  try {
    return await listener.accept();
  } finally {
    clearTimeout(bound);
  }
}

/**
 * Serves one connection: answers the handshake with a 101
 * (selecting the first subprotocol offered), sends each message unmasked and
 * reads the client's next frame after it (its echo), then closes as a server
 * does: a close frame 1000, the client's close frame read, then TCP.
 */
async function serveEcho(
  conn: Deno.TcpConn,
  messages: (check: RequestCheck) => Message[],
): Promise<Served> {
  const bound = setTimeout(() => conn.close(), WIRE_BOUND_MS);
  const buffer = new Uint8Array(65536);
  const parser = new FrameParser({ maxPayload: 1 << 20 });
  const frames: Served["frames"] = [];
  const read = async () => {
    const n = await conn.read(buffer);
    if (n === null) throw new Error("the client closed TCP");
    return buffer.slice(0, n);
  };
  const nextFrame = async () => {
    for (let event = parser.next();; event = parser.next()) {
      if (event?.type === "frame") {
        frames.push(event);
        return event;
      }
      assert.equal(event, undefined, "no frame over the parser's limit");
      parser.push(await read());
    }
  };
  try {
    let head = new Uint8Array(0);
    for (;;) {
      head = new Uint8Array([...head, ...await read()]);
      const parsed = parseHead(head);
      if (parsed.type === "error") throw new Error(parsed.reason);
      if (parsed.type === "incomplete") continue;
      const check = checkClientRequest(parsed.head);
      await conn.write(
        await serverResponse({ key: check.offer.key ?? "", protocol: check.offer.protocols[0] }),
      );
      parser.push(head.subarray(parsed.head.length));
      for (const message of messages(check)) {
        await conn.write(encodeFrame(message));
        await nextFrame();
      }
      await conn.write(encodeFrame({ opcode: Opcode.Close, payload: closePayload(1000) }));
      while ((await nextFrame()).header.opcode !== Opcode.Close) { /* echoes in flight */ }
      return { check, frames };
    }
  } finally {
    clearTimeout(bound);
    try {
      conn.close();
    } catch { /* closed by the bound */ }
  }
}

/** The listener, started driver and URL a test uses; both stopped afterwards. */
async function withDriver(
  driver: ClientDriver,
  fn: (listener: Deno.TcpListener, url: URL) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    await driver.start();
    await fn(listener, new URL(`ws://127.0.0.1:${listener.addr.port}/runCase?case=1`));
  } finally {
    listener.close();
    await driver.stop();
  }
}

const TEXT: Message = { opcode: Opcode.Text, payload: enc("héllo, wörld") };
const BINARY: Message = { opcode: Opcode.Binary, payload: new Uint8Array([0, 1, 0xfe, 0xff]) };

/** The client's frames as the server saw them: type, payload, whether masked. */
const framesOf = (served: Served) =>
  served.frames.map(({ header, payload }) => ({
    opcode: header.opcode,
    payload,
    masked: header.masked,
  }));

const websocketExit = (exit: ClientExit) => {
  assert.equal(exit.kind, "websocket");
  return exit as Extract<ClientExit, { kind: "websocket" }>;
};
const processExit = (exit: ClientExit) => {
  assert.equal(exit.kind, "process");
  return exit as Extract<ClientExit, { kind: "process" }>;
};

/**
 * Whether a process with this PID is still running: signal 0 checks without
 * sending. A zombie has ended: an orphan waits as one to be reaped by PID 1,
 * which on some machines (this project's VM) never reaps.
 */
function alive(pid: number): boolean {
  try {
    Deno.kill(pid, 0 as unknown as Deno.Signal);
  } catch {
    return false;
  }
  // ps, not /proc/PID/stat: Deno lets only --allow-all read /proc of another process.
  const { stdout } = new Deno.Command("ps", { args: ["-o", "stat=", "-p", String(pid)] })
    .outputSync();
  const state = new TextDecoder().decode(stdout).trim();
  return state !== "" && !state.startsWith("Z");
}

Deno.test("embedded client: Deno's WebSocket echoes text as text and binary as binary, and closes when the server closes", async () => {
  const driver = embeddedClient();
  await withDriver(driver, async (listener, url) => {
    assert.match(driver.agent ?? "", /^Deno\/\d+\.\d+\.\d+$/);
    const connection = driver.connect(url, { protocols: ["chat", "superchat"] });
    const served = await serveEcho(await accept(listener), () => [TEXT, BINARY]);
    assert.deepEqual(served.check.problems, []);
    assert.equal(served.check.offer.target, "/runCase?case=1");
    assert.deepEqual(served.check.offer.protocols, ["chat", "superchat"]);
    assert.deepEqual(framesOf(served), [
      { ...TEXT, masked: true },
      { ...BINARY, masked: true },
      { opcode: Opcode.Close, payload: closePayload(1000), masked: true },
    ]);
    assert.deepEqual(websocketExit(await connection.done), {
      kind: "websocket",
      events: [
        { type: "opened", protocol: "chat", extensions: "" },
        { type: "closed", code: 1000, reason: "", wasClean: true },
      ],
      stopped: false,
    });
  });
});

Deno.test("embedded client: 20 connections at once, each echoing its own messages", async () => {
  const driver = embeddedClient();
  await withDriver(driver, async (listener, url) => {
    const count = 20;
    const connections = Array.from({ length: count }, (_, i) => {
      const caseUrl = new URL(url);
      caseUrl.searchParams.set("case", String(i + 1));
      return driver.connect(caseUrl);
    });
    // Each connection's messages name its case, so an echo on the wrong connection shows.
    const messagesOf = (check: RequestCheck): Message[] => [
      { opcode: Opcode.Text, payload: enc(`text of ${check.offer.target}`) },
      { opcode: Opcode.Binary, payload: enc(`binary of ${check.offer.target}`) },
    ];
    const serving: Promise<Served>[] = [];
    for (const _ of connections) serving.push(serveEcho(await accept(listener), messagesOf));
    const served = await Promise.all(serving);
    assert.deepEqual(
      served.map((s) => s.check.offer.target).sort(),
      Array.from({ length: count }, (_, i) => `/runCase?case=${i + 1}`).sort(),
    );
    for (const s of served) {
      assert.deepEqual(
        framesOf(s).slice(0, 2),
        messagesOf(s.check).map((m) => ({ ...m, masked: true })),
      );
    }
    for (const exit of await Promise.all(connections.map((c) => c.done))) {
      assert.deepEqual(websocketExit(exit).events.at(-1), {
        type: "closed",
        code: 1000,
        reason: "",
        wasClean: true,
      });
    }
  });
});

Deno.test("embedded client: stop() ends a connection whose handshake is never answered; the driver's stop() ends the others", async () => {
  const driver = embeddedClient({ graceMs: 500 });
  const accepted: Deno.TcpConn[] = []; // and never answered
  let left: ClientConnection | undefined;
  try {
    await withDriver(driver, async (listener, url) => {
      const connection = driver.connect(url);
      accepted.push(await accept(listener));
      const exit = websocketExit(await connection.stop());
      assert.equal(exit.stopped, true);
      assert.equal(exit.events.some((e) => e.type === "opened"), false);
      assert.equal(await connection.done, exit);
      left = driver.connect(url);
      accepted.push(await accept(listener));
    });
    assert.equal(websocketExit(await left!.done).stopped, true);
    // Once stopped, the client's process is gone: a connection ends at once, saying so.
    const late = websocketExit(await driver.connect(new URL("ws://127.0.0.1:1/")).done);
    assert.equal(late.stopped, false);
    assert.equal(late.events.length, 1);
    assert.match(late.events[0].type === "error" ? late.events[0].message : "", /process exited/);
  } finally {
    for (const conn of accepted) conn.close();
  }
});

Deno.test("embedded client: a URL Deno's WebSocket refuses is reported as failed", async () => {
  const driver = embeddedClient();
  await withDriver(driver, async () => {
    const exit = websocketExit(await driver.connect(new URL("ftp://127.0.0.1/")).done);
    assert.equal(exit.events.length, 1);
    assert.equal(exit.events[0].type, "failed");
    assert.equal(exit.stopped, false);
  });
});

/** The strict client run by spawn mode; the paths are quoted, as splitCommand reads them. */
const STRICT_CLIENT_COMMAND = `'${Deno.execPath()}' run --allow-net '${
  new URL("./peers/strict_client.ts", import.meta.url).pathname
}' {url}`;

Deno.test("spawn mode: the strict client connects, echoes, completes the closing handshake and exits 0", async () => {
  const driver = commandClient(STRICT_CLIENT_COMMAND);
  await withDriver(driver, async (listener, url) => {
    assert.equal(driver.agent, undefined);
    const connection = driver.connect(url);
    const served = await serveEcho(await accept(listener), () => [TEXT, BINARY]);
    assert.deepEqual(served.check.problems, []);
    assert.deepEqual(framesOf(served), [
      { ...TEXT, masked: true },
      { ...BINARY, masked: true },
      { opcode: Opcode.Close, payload: closePayload(1000), masked: true },
    ]);
    const exit = processExit(await connection.done);
    assert.deepEqual({ ...exit, stdout: "", stderr: "" }, {
      kind: "process",
      code: 0,
      signal: null,
      stdout: "",
      stderr: "",
      stopped: false,
    });
    // A finished client's stop() changes nothing.
    assert.equal(await connection.stop(), exit);
  });
});

Deno.test("spawn mode: a client's failure is recorded with its exit code and the end of its output", async () => {
  const driver = commandClient(STRICT_CLIENT_COMMAND);
  await withDriver(driver, async (listener, url) => {
    const connection = driver.connect(url);
    const conn = await accept(listener);
    try {
      // Not a WebSocket answer: the strict client refuses it and exits 1, saying why on stderr.
      await conn.write(enc("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"));
      const exit = processExit(await connection.done);
      assert.equal(exit.code, 1);
      assert.equal(exit.signal, null);
      assert.equal(exit.stopped, false);
      assert.match(exit.stderr, /404/);
    } finally {
      conn.close();
    }
  });
});

/**
 * Spawns a client that never connects: a shell that starts a child, writes
 * both PIDs to a file and waits. Once they are written, `stop` stops it; then
 * neither process may be left.
 */
async function stopHangingClient(
  script: string,
  graceMs: number,
  stop: (driver: ClientDriver, connection: ClientConnection) => Promise<unknown>,
) {
  let exit: ClientExit | undefined;
  await withTempDir(async (dir) => {
    const pids = `${dir}/pids`;
    const driver = commandClient(
      `sh -c '${script}; sleep 600 & echo $$ $! >${pids}.tmp; mv ${pids}.tmp ${pids}; wait' {url}`,
      { graceMs },
    );
    await withDriver(driver, async (_listener, url) => {
      const connection = driver.connect(url);
      const [shell, child] = (await poll(`${pids} written`, async () => {
        try {
          return await Deno.readTextFile(pids);
        } catch (error) {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
          return undefined;
        }
      })).trim().split(" ").map(Number);
      await stop(driver, connection);
      exit = await connection.done;
      assert.equal(alive(shell), false, "the client is stopped");
      // Its child got the same signal, and may take a moment to die on a busy machine.
      await poll(
        `process ${child} stopped`,
        () => Promise.resolve(alive(child) ? undefined : true),
      );
    });
  });
  return processExit(exit!);
}

/** The first value `probe` gives, polled every 20 ms within WIRE_BOUND_MS; `what` names it. */
async function poll<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let waited = 0; waited < WIRE_BOUND_MS; waited += 20) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`not ${what} within ${WIRE_BOUND_MS} ms`);
}

Deno.test("spawn mode: a client that hangs is stopped by its PID (SIGTERM) when its case ends, with what it started", async () => {
  const exit = await stopHangingClient("true", 2000, (_, connection) => connection.stop());
  assert.deepEqual([exit.signal, exit.stopped], ["SIGTERM", true]);
});

Deno.test("spawn mode: a client that ignores SIGTERM gets SIGKILL after the grace period; the driver's stop() stops it", async () => {
  const exit = await stopHangingClient(`trap "" TERM`, 300, (driver) => driver.stop());
  assert.deepEqual([exit.signal, exit.stopped], ["SIGKILL", true]);
});

Deno.test("spawn mode: a client that cannot be started is one line, before any case", async () => {
  const startError = async (command: string) => {
    const error = await commandClient(command).start().then(() => undefined, (e) => e);
    assert.ok(error instanceof ClientStartError, `${command}: ${error}`);
    assert.doesNotMatch(error.message, /\n/);
    return error.message;
  };
  assert.match(await startError("no-such-client-4fd1 {url}"), /no-such-client-4fd1 is not on PATH/);
  assert.match(await startError("/no/such/client {url}"), /\/no\/such\/client does not exist/);
  await withTempDir(async (dir) => {
    const script = `${dir}/client.sh`;
    await Deno.writeTextFile(script, "#!/bin/sh\n", { mode: 0o644 });
    assert.match(await startError(`${script} {url}`), /is not an executable file/);
    assert.match(await startError(`${dir} {url}`), /is not an executable file/);
  });
  // The error connect() gives when the program disappears after start().
  assert.throws(
    () => commandClient("no-such-client-4fd1 {url}").connect(new URL("ws://127.0.0.1:1/")),
    (e) => e instanceof ClientStartError && /no-such-client-4fd1/.test(e.message),
  );
});

Deno.test("splitCommand: words, quotes and backslashes as a shell splits them, with nothing else special", () => {
  assert.deepEqual(splitCommand("client {url}"), ["client", "{url}"]);
  assert.deepEqual(splitCommand("  client\t--url={url}  -v "), ["client", "--url={url}", "-v"]);
  assert.deepEqual(splitCommand(`'/opt/my client/run' "{url}" ''`), [
    "/opt/my client/run",
    "{url}",
    "",
  ]);
  assert.deepEqual(splitCommand(`c "a \\"b\\" \\\\ \\n" 'x\\y' a\\ b {url}`), [
    "c",
    `a "b" \\ \\n`,
    "x\\y",
    "a b",
    "{url}",
  ]);
  assert.deepEqual(splitCommand("c $HOME *.ts a|b >out {url}"), [
    "c",
    "$HOME",
    "*.ts",
    "a|b",
    ">out",
    "{url}",
  ]);
  assert.deepEqual(splitCommand("c pre'fix {url}'post"), ["c", "prefix {url}post"]);
  for (
    const [command, error] of [
      ["", /empty/],
      ["client 'x {url}", /unterminated '/],
      ['client "x {url}', /unterminated "/],
      ["client ws://127.0.0.1/", /no \{url\}/],
    ] as const
  ) {
    assert.throws(
      () => splitCommand(command),
      (e) => e instanceof ClientStartError && error.test(e.message),
    );
  }
});
