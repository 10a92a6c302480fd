/**
 * Client mode's browser drivers (issue 10) with the browsers Debian packages:
 * chromium, firefox-esr and WebKitGTK's MiniBrowser under Xvfb (.ci/run
 * installs them; a browser that is not installed has its tests ignored). Each
 * runs the echo page against a server in the test, and client cases through
 * runSuite and the CLI (--client chromium); stop() leaves no process of the
 * browser's group and no profile.
 * A binary that is no browser, or one that never loads the page, fails start()
 * with one line, within its bound.
 *
 *   deno test --allow-all tests/browser_driver_test.ts
 */
import assert from "node:assert/strict";
import {
  BROWSER_KINDS,
  browserBinary,
  browserClient,
  type BrowserDriver,
  type BrowserKind,
} from "../harness/browser_driver.ts";
import { type ClientExit, ClientStartError } from "../harness/client_driver.ts";
import { runSuite } from "../harness/suite.ts";
import { CLIENT_CASES } from "../fixtures/mod.ts";
import { exists, runCli, withTempDir } from "./support.ts";

/** Bound of each wait on a browser: generous, for a busy machine; never a timing assertion. */
const BOUND_MS = 30_000;

/** The processes that have not ended (a zombie has ended): process group, parent, program. */
function liveProcesses(): { pid: number; pgid: number; ppid: number; program: string }[] {
  // ps, not /proc: Deno lets only --allow-all read /proc of another process.
  const { stdout } = new Deno.Command("ps", { args: ["-e", "-o", "pid=,pgid=,ppid=,stat=,comm="] })
    .outputSync();
  return new TextDecoder().decode(stdout).trim().split("\n").map((line) => line.trim().split(/\s+/))
    .filter(([, , , state]) => !state.startsWith("Z"))
    .map(([pid, pgid, ppid, , program]) => ({
      pid: Number(pid),
      pgid: Number(pgid),
      ppid: Number(ppid),
      program,
    }));
}

/** What this test's process started and still runs (Xvfb, `BINARY --version`), ps aside. */
const ownChildren = () =>
  liveProcesses().filter((p) => p.ppid === Deno.pid && p.program !== "ps").map((p) => p.program);

/** The live processes of the group `pgid`. */
const groupMembers = (pgid: number) =>
  liveProcesses().filter((p) => p.pgid === pgid).map((p) => p.pid);

/** What a browser's WebSocket reported of a connection. */
function websocketEvents(exit: ClientExit) {
  assert.equal(exit.kind, "websocket");
  return (exit as Extract<ClientExit, { kind: "websocket" }>).events;
}

/** Settles with `promise`, or rejects once BOUND_MS has passed. */
async function bounded<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => reject(new Error(`${what}: not within ${BOUND_MS} ms`)), BOUND_MS)
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A WebSocket server that sends a text and a binary message to each client,
 * records the echoes with their types, and closes with 1000 once both came.
 */
function echoCheckServer() {
  const echoes: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.binaryType = "arraybuffer";
    let echoed = 0;
    socket.onopen = () => {
      socket.send("héllo");
      socket.send(new Uint8Array([0, 1, 0xfe, 0xff]));
    };
    socket.onmessage = ({ data }) => {
      echoes.push(typeof data === "string" ? `text ${data}` : `binary ${new Uint8Array(data)}`);
      if (++echoed === 2) socket.close(1000, "done");
    };
    return response;
  });
  return { echoes, url: new URL(`ws://127.0.0.1:${server.addr.port}/`), server };
}

const AGENTS: Record<BrowserKind, RegExp> = {
  chromium: /^Chromium \d+\.\d+\.\d+\.\d+$/,
  firefox: /^Mozilla Firefox \d+\.\d+/,
  webkit: /^WebKitGTK \d+\.\d+\.\d+$/,
};

for (const kind of BROWSER_KINDS) {
  const binary = browserBinary(kind);
  Deno.test({
    name:
      `${kind}: its page echoes text as text and binary as binary; a URL it refuses is "failed" with the reason; stop() ends its process group and removes its profile`,
    ignore: binary === undefined,
    fn: async () => {
      const { echoes, url, server } = echoCheckServer();
      const driver: BrowserDriver = browserClient(kind);
      let running: BrowserDriver["process"];
      try {
        await bounded(driver.start(), `${kind} started`);
        assert.match(driver.agent ?? "", AGENTS[kind]);
        running = driver.process!;
        assert.ok(groupMembers(running.pid).length > 0, "the browser runs");
        assert.ok(exists(running.profile));
        const connections = [1, 2].map((n) => driver.connect(new URL(`?n=${n}`, url)));
        for (const connection of connections) {
          assert.deepEqual(websocketEvents(await bounded(connection.done, "an echo")), [
            { type: "opened", protocol: "", extensions: "" },
            { type: "closed", code: 1000, reason: "done", wasClean: true },
          ]);
        }
        assert.deepEqual(echoes.toSorted(), [
          "binary 0,1,254,255",
          "binary 0,1,254,255",
          "text héllo",
          "text héllo",
        ]);
        // A fragment is not allowed in a WebSocket URL (§3): the constructor throws.
        const refused = websocketEvents(
          await bounded(driver.connect(new URL("#fragment", url)).done, "a refusal"),
        );
        assert.equal(refused.length, 1);
        assert.equal(refused[0].type, "failed");
        assert.ok("message" in refused[0] && refused[0].message !== "");
      } finally {
        await driver.stop();
        await server.shutdown();
      }
      assert.equal(driver.process, undefined);
      assert.deepEqual(groupMembers(running!.pid), [], "no process of the browser is left");
      assert.ok(!exists(running!.profile), "its profile is removed");
      assert.deepEqual(ownChildren(), [], "no helper (Xvfb) is left");
    },
  });
}

/** A case of each kind: text and binary echoes, a ping, a fragmented message, a clean close. */
const SOME_CASES = ["1.1.1", "1.2.1", "2.1", "5.1", "7.1.1"];

for (const kind of BROWSER_KINDS) {
  Deno.test({
    name: `${kind}: runSuite runs client cases through its driver (${
      SOME_CASES.join(", ")
    }: OK), then stops it`,
    ignore: browserBinary(kind) === undefined,
    fn: async () => {
      const driver = browserClient(kind);
      let running: BrowserDriver["process"];
      const result = await runSuite({
        client: { driver },
        cases: CLIENT_CASES.filter((spec) => SOME_CASES.includes(spec.id)),
        onStart: () => void (running = driver.process),
      });
      assert.match(result.agent, AGENTS[kind]);
      assert.deepEqual(
        result.outcomes.map((
          { spec, verdict },
        ) => [spec.id, verdict.behavior, verdict.behaviorClose]),
        SOME_CASES.map((id) => [id, "OK", "OK"]),
      );
      assert.equal(driver.process, undefined);
      assert.deepEqual(groupMembers(running!.pid), [], "no process of the browser is left");
      assert.ok(!exists(running!.profile), "its profile is removed");
      assert.deepEqual(ownChildren(), [], "no helper (Xvfb) is left");
    },
  });
}

Deno.test({
  name: "CLI: --client chromium runs the cases in Chromium; --browser runs another binary of it",
  ignore: browserBinary("chromium") === undefined,
  fn: async () => {
    await withTempDir(async (dir) => {
      const run = await runCli(["--client", "chromium", "--cases", "1.1.1,2.1", "--out", dir]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /2 cases for the client, .* \(agent "Chromium \d+[.\d]*"\)/);
      const browser = browserBinary("chromium")!;
      const named = await runCli(
        ["--client", "chromium", "--browser", browser, "--cases", "1.1.1", "--out", dir],
      );
      assert.equal(named.code, 0, named.stderr);
    });
  },
});

Deno.test("CLI: a browser that cannot start is one line and exit 2; --browser needs a browser", async () => {
  const notBrowser = await runCli(["--client", "firefox", "--browser", "/bin/true"]);
  assert.equal(notBrowser.code, 2);
  assert.deepEqual(notBrowser.stderrCalls, [
    "wsconform: firefox (/bin/true) exited before its page was ready (code 0)",
  ]);
  for (
    const args of [["--browser", "/bin/true"], [
      "--client",
      "deno x {url}",
      "--browser",
      "/bin/true",
    ]]
  ) {
    const run = await runCli(args);
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /^wsconform: --browser PATH runs another binary of --client chromium, firefox or webkit/,
    );
  }
});

Deno.test({
  name:
    "chromium: a browser that dies ends its running connections with the reason, and any later one at once",
  ignore: browserBinary("chromium") === undefined,
  fn: async () => {
    const driver = browserClient("chromium");
    // A server that accepts TCP and never answers: the connection waits in CONNECTING.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const url = new URL(`ws://127.0.0.1:${listener.addr.port}/`);
    const accepted: Deno.Conn[] = [];
    (async () => {
      for await (const conn of listener) accepted.push(conn);
    })();
    try {
      await bounded(driver.start(), "chromium started");
      const { pid } = driver.process!;
      const waiting = driver.connect(url);
      Deno.kill(-pid, "SIGKILL");
      const [event] = websocketEvents(await bounded(waiting.done, "the abandoned connection"));
      assert.deepEqual(event, { type: "error", message: "chromium's process exited (code 137)" });
      const later = websocketEvents(await bounded(driver.connect(url).done, "a later connection"));
      assert.deepEqual(later, [event]);
    } finally {
      await driver.stop();
      listener.close();
      for (const conn of accepted) conn.close();
    }
  },
});

Deno.test({
  name:
    "chromium: a page that crashes (its renderer killed) ends the running connections with the reason",
  ignore: browserBinary("chromium") === undefined,
  fn: async () => {
    const driver = browserClient("chromium");
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepted: Deno.Conn[] = [];
    (async () => {
      for await (const conn of listener) accepted.push(conn);
    })();
    try {
      await bounded(driver.start(), "chromium started");
      const waiting = driver.connect(new URL(`ws://127.0.0.1:${listener.addr.port}/`));
      const { stdout } = new Deno.Command("ps", { args: ["-e", "-o", "pid=,pgid=,args="] })
        .outputSync();
      const renderers = new TextDecoder().decode(stdout).trim().split("\n")
        .map((line) => line.trim().split(/\s+/))
        .filter(([, pgid, ...args]) =>
          Number(pgid) === driver.process!.pid && args.includes("--type=renderer")
        );
      assert.ok(renderers.length > 0, "chromium runs its page in a renderer process");
      for (const [pid] of renderers) Deno.kill(Number(pid), "SIGKILL");
      const events = websocketEvents(await bounded(waiting.done, "the abandoned connection"));
      assert.deepEqual(events.at(-1), {
        type: "error",
        message: "chromium's page closed its command stream",
      });
      assert.ok(groupMembers(driver.process!.pid).length > 0, "the browser lives on");
    } finally {
      await driver.stop();
      listener.close();
      for (const conn of accepted) conn.close();
    }
  },
});

Deno.test("a binary that is not a browser fails start() with one line; one that does not exist too", async () => {
  for (const kind of BROWSER_KINDS) {
    const driver = browserClient(kind, { binary: "/bin/true" });
    const error = await driver.start().then(() => undefined, (e) => e);
    assert.ok(error instanceof ClientStartError, String(error));
    assert.match(
      error.message,
      /^\w+ \(\/bin\/true\) exited before its page was ready \(code 0\)$/,
    );
    await driver.stop();
  }
  const missing = browserClient("firefox", { binary: "/nonexistent/firefox" });
  await assert.rejects(missing.start(), {
    name: "ClientStartError",
    message: "/nonexistent/firefox does not exist",
  });
});

Deno.test("a browser that never loads its page fails start() within its bound, and is stopped", async () => {
  await withTempDir(async (dir) => {
    // It records its PID (for --version too) and hangs, whatever its arguments.
    const binary = `${dir}/hanging-browser`;
    await Deno.writeTextFile(binary, `#!/bin/sh\necho $$ >> ${dir}/pids\nexec sleep 60\n`);
    await Deno.chmod(binary, 0o755);
    const driver = browserClient("chromium", { binary, readyTimeoutMs: 2000 });
    const error = await driver.start().then(() => undefined, (e) => e);
    assert.ok(error instanceof ClientStartError, String(error));
    assert.equal(error.message, `chromium (${binary}) did not load its page within 2000 ms`);
    const pids = (await Deno.readTextFile(`${dir}/pids`)).trim().split("\n").map(Number);
    assert.ok(pids.length >= 1);
    const left = liveProcesses().filter((p) => pids.includes(p.pid) || pids.includes(p.pgid));
    assert.deepEqual(left, [], "its processes are stopped");
  });
});
