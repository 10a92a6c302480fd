import { runCli, withTempDir } from "./support.ts";
/**
 * --protocol-only, and the warning for a target that does not echo: against a
 * server that completes the handshake, answers pings and closes properly
 * (Deno.serve + Deno.upgradeWebSocket do that themselves) but ignores every
 * message, and against the strict reference server, which echoes.
 */

import assert from "node:assert/strict";
import { SERVER_CASES } from "../fixtures/mod.ts";
import { NOT_RUN_REASON, USAGE } from "../harness/cli.ts";
import { compareIds } from "../harness/case.ts";
import { caseReportName, type IndexJson } from "../harness/report.ts";
import { needsEcho, runAndJudgeCase } from "../harness/suite.ts";
import { startStrictServer } from "./peers/strict_server.ts";

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

/** A WebSocket server that does everything right except echoing: it ignores messages. */
function startNonEchoServer(): { url: string; close: () => Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("WebSocket only\n", { status: 426 });
    }
    const { socket, response } = Deno.upgradeWebSocket(request);
    // Pings, close replies and protocol errors are Deno's own work; messages are dropped.
    socket.onmessage = () => {};
    socket.onerror = () => {};
    return response;
  });
  const { port } = server.addr as Deno.NetAddr;
  return { url: `ws://127.0.0.1:${port}/`, close: () => server.shutdown() };
}

const WARNING = /does not echo messages.*cases that need an echo will fail.*--protocol-only/;
const ECHO_CASES = SERVER_CASES.filter(needsEcho);
const PROTOCOL_CASES = SERVER_CASES.filter((c) => !needsEcho(c));

Deno.test("needsEcho: a message in the expectation, or round trips", () => {
  const byId = new Map(SERVER_CASES.map((c) => [c.id, c]));
  assert.equal(needsEcho(byId.get("1.1.1")!), true, "an echoed text message");
  assert.equal(needsEcho(byId.get("2.1")!), false, "a ping answered by a pong");
  assert.equal(needsEcho(byId.get("7.1.1")!), true, "a message echoed before the close");
  for (const c of SERVER_CASES.filter((c) => c.steps.some((s) => s.kind === "roundTrips"))) {
    assert.equal(needsEcho(c), true, c.id);
  }
  // The suite has cases on both sides.
  assert.ok(ECHO_CASES.length > 0 && PROTOCOL_CASES.length > 0);
});

Deno.test("--help names --protocol-only", async () => {
  const result = await runCli(["--help"]);
  assert.equal(result.code, 0);
  assert.match(result.stdout, /--protocol-only/);
  assert.match(USAGE, /--protocol-only {7}run only the cases whose verdict does not depend on/);
});

Deno.test("--protocol-only: a non-echo server gets only the cases that need no echo", async () => {
  const server = startNonEchoServer();
  try {
    await withTempDir(async (dir) => {
      const junit = `${dir}/junit.xml`;
      const result = await runCli([server.url, "--protocol-only", "--out", dir, "--junit", junit]);
      const all = `${result.stdout}\n${result.stderr}`;
      assert.notEqual(result.code, 2, all);
      // No warning: the probe's echo check is off, no case that needs one runs.
      assert.doesNotMatch(result.stderr, WARNING);
      assert.doesNotMatch(result.stdout, /hint:/);

      const index: IndexJson = JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
      const agents = Object.keys(index);
      assert.equal(agents.length, 1);
      const ran = index[agents[0]];
      assert.deepEqual(
        Object.keys(ran).sort(),
        PROTOCOL_CASES.map((c) => c.id).sort(),
        "exactly the cases that need no echo ran",
      );
      const byId = new Map(SERVER_CASES.map((c) => [c.id, c]));
      for (const [id, entry] of Object.entries(ran)) {
        const spec = byId.get(id)!;
        // No verdict can rest on a missing echo: nothing run expects a message.
        assert.equal(needsEcho(spec), false, id);
        const expected = [...spec.expect.ok, ...(spec.expect.nonStrict ?? [])];
        assert.ok(!expected.some((e) => "message" in e), `${id} expects a message`);
        assert.ok(entry.behavior, `${id} has a verdict`);
      }

      // The summary counts what was not run, and says why.
      assert.match(
        result.stdout,
        new RegExp(`${ECHO_CASES.length} cases not run \\(${escape(NOT_RUN_REASON)}\\)`),
      );
      assert.match(result.stdout, new RegExp(`^${PROTOCOL_CASES.length} cases, \\d+ failed`, "m"));
      assert.match(result.stdout, /--protocol-only \(\d+ not run\)/);

      // JUnit: the cases not run are <skipped/> with the reason; the counts include them.
      const xml = await Deno.readTextFile(junit);
      const skipped = [
        ...xml.matchAll(/<skipped message="not run: need an echo; --protocol-only"/g),
      ];
      assert.equal(skipped.length, ECHO_CASES.length);
      // Skipped too: the cases run that had nothing to test (UNIMPLEMENTED: group 14's
      // RSV1 cases need permessage-deflate, which this server declines).
      const unimplemented = Object.values(ran).filter((e) => e.behavior === "UNIMPLEMENTED");
      const allSkipped = ECHO_CASES.length + unimplemented.length;
      assert.match(
        xml,
        new RegExp(`<testsuites [^>]*tests="${SERVER_CASES.length}"[^>]*skipped="${allSkipped}"`),
      );
      assert.match(
        xml,
        new RegExp(`<testsuite [^>]*tests="${SERVER_CASES.length}"[^>]*skipped="${allSkipped}"`),
      );
      assert.equal([...xml.matchAll(/<testcase /g)].length, SERVER_CASES.length);
      // In id order, the skipped among the run.
      const ids = [...xml.matchAll(/<testcase [^>]*name="(\S+) /g)].map((m) => m[1]);
      assert.deepEqual(ids, SERVER_CASES.map((c) => c.id).sort(compareIds));
    });
  } finally {
    await server.close();
  }
});

Deno.test("without --protocol-only: a non-echo server is detected and the way out is named", async () => {
  const server = startNonEchoServer();
  try {
    await withTempDir(async (dir) => {
      const result = await runCli([server.url, "--cases", "1.1.1,1.1.2,2.1", "--out", dir]);
      const all = `${result.stdout}\n${result.stderr}`;
      assert.equal(result.code, 1, all);
      // The warning comes before the run, with the number of cases that will fail.
      assert.match(result.stderr, /^wsconform: warning: ws:\/\/127\.0\.0\.1:\d+\/ does not echo/);
      assert.match(result.stderr, WARNING);
      assert.match(result.stderr, /the 2 cases that need an echo will fail/);
      // The hint ends the summary.
      const lines = result.stdout.trimEnd().split("\n");
      assert.match(
        lines[lines.length - 1],
        /^hint: the target does not echo messages: 2 of its 2 failed cases need an echo; rerun with --protocol-only/,
      );
    });
  } finally {
    await server.close();
  }
});

Deno.test("no warning when no selected case needs an echo", async () => {
  const server = startNonEchoServer();
  try {
    await withTempDir(async (dir) => {
      const result = await runCli([server.url, "--cases", "2.1,2.2", "--out", dir]);
      assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
      assert.equal(result.stderr, "");
      assert.doesNotMatch(result.stdout, /hint:/);
    });
  } finally {
    await server.close();
  }
});

Deno.test("an echoing server gets no warning", async () => {
  const server = startStrictServer();
  try {
    await withTempDir(async (dir) => {
      const result = await runCli([server.url, "--cases", "1.1.1,2.1", "--out", dir]);
      assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
      assert.equal(result.stderr, "");
      assert.doesNotMatch(result.stdout, /hint:|not run/);
    });
  } finally {
    await server.close();
  }
});

Deno.test("--protocol-only with --cases/--exclude, --spec and a baseline", async (t) => {
  const server = startNonEchoServer();
  try {
    await t.step("a selection of echo cases only is a usage error", async () => {
      const result = await runCli([server.url, "--protocol-only", "--cases", "1.1.*,9"]);
      assert.equal(result.code, 2);
      assert.equal(result.stdout, "");
      assert.match(result.stderr, /--protocol-only: every selected case needs an echo/);
    });
    await t.step("--cases and --exclude narrow the selection first", async () => {
      await withTempDir(async (dir) => {
        const result = await runCli([
          server.url,
          "--protocol-only",
          "--cases",
          "1.1.1,2.*",
          "--exclude",
          "2.2",
          "--out",
          dir,
        ]);
        assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
        const index: IndexJson = JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
        const ids = Object.keys(Object.values(index)[0]);
        const expected = SERVER_CASES.filter((c) => c.id.startsWith("2.") && c.id !== "2.2")
          .map((c) => c.id);
        assert.deepEqual(ids.sort(), expected.sort());
        assert.match(result.stdout, /^1 cases not run \(need an echo; --protocol-only\)$/m);
      });
    });
    await t.step("cases not run are not regressions", async () => {
      await withTempDir(async (dir) => {
        const baseline = `${dir}/baseline.json`;
        await Deno.writeTextFile(
          baseline,
          JSON.stringify({
            version: 1,
            agent: "NoEcho",
            cases: {
              "1.1.1": { behavior: "OK", behaviorClose: "OK" },
              "2.1": { behavior: "OK", behaviorClose: "OK" },
            },
          }),
        );
        const result = await runCli([
          server.url,
          "--protocol-only",
          "--cases",
          "1.1.1,2.1",
          "--agent",
          "NoEcho",
          "--baseline",
          baseline,
          "--out",
          `${dir}/out`,
        ]);
        assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
        assert.match(result.stdout, /0 regressed.*\(1 baseline cases not run\)/);
      });
    });
    await t.step("--spec: each server's selection, then the echo cases left out", async () => {
      await withTempDir(async (dir) => {
        const spec = `${dir}/spec.json`;
        await Deno.writeTextFile(
          spec,
          JSON.stringify({
            outdir: `${dir}/out`,
            servers: [{ agent: "NoEcho", url: server.url }],
            cases: ["1.1.1", "2.1", "2.2"],
          }),
        );
        const result = await runCli(["--spec", spec, "--protocol-only"]);
        assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
        const index: IndexJson = JSON.parse(await Deno.readTextFile(`${dir}/out/index.json`));
        assert.deepEqual(Object.keys(index.NoEcho).sort(), ["2.1", "2.2"]);
        assert.match(result.stdout, /^1 cases not run/m);

        const echoOnly = `${dir}/echo_only.json`;
        await Deno.writeTextFile(
          echoOnly,
          JSON.stringify({
            outdir: `${dir}/out2`,
            servers: [{ agent: "NoEcho", url: server.url }],
            cases: ["1.*"],
          }),
        );
        const refused = await runCli(["--spec", echoOnly, "--protocol-only"]);
        assert.equal(refused.code, 2);
        assert.match(refused.stderr, /servers\[0\].*every selected case needs an echo/);
      });
    });
  } finally {
    await server.close();
  }
});

/** A string as a literal part of a RegExp. */
function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A server that greets each client with a text message on connect, as Engine.IO does. */
const GREETING = '0{"sid":"wsconform","upgrades":[],"pingInterval":25000}';

function startGreetingServer(): { url: string; close: () => Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onopen = () => socket.send(GREETING);
    socket.onmessage = () => {};
    socket.onerror = () => {};
    return response;
  });
  const { port } = server.addr as Deno.NetAddr;
  return { url: `ws://127.0.0.1:${port}/`, close: () => server.shutdown() };
}

Deno.test("--protocol-only: a message the server sends on its own is shown, not judged", async () => {
  const server = startGreetingServer();
  const ids = ["2.1", "2.2", "7.3.1", "7.3.3"];
  try {
    // Without the option, the greeting is the first event and decides every case.
    for (const id of ids) {
      const spec = SERVER_CASES.find((c) => c.id === id)!;
      const run = await runAndJudgeCase(spec, { url: new URL(server.url) });
      assert.equal(run.verdict.behavior, "FAILED", `${id}: ${run.verdict.result}`);
      assert.equal(run.unsolicited.length, 0);
    }
    await withTempDir(async (dir) => {
      const result = await runCli([
        server.url,
        "--protocol-only",
        "--cases",
        ids.join(","),
        "--agent",
        "Greeter",
        "--out",
        dir,
      ]);
      assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
      for (const id of ids) {
        const report = JSON.parse(
          await Deno.readTextFile(`${dir}/${caseReportName("Greeter", id)}`),
        );
        assert.deepEqual([report.behavior, report.behaviorClose], ["OK", "OK"], id);
        assert.deepEqual(report.received.filter((e: { type: string }) => e.type === "message"), []);
        assert.equal(report.unsolicited.length, 1, id);
        assert.equal(report.unsolicited[0].payload.text, GREETING, id);
        const page = await Deno.readTextFile(
          `${dir}/${caseReportName("Greeter", id).replace(/\.json$/, ".html")}`,
        );
        assert.match(page, /Messages the server sent unasked/);
        assert.ok(page.includes("0{&quot;sid&quot;:&quot;wsconform&quot;"), id);
      }
    });
  } finally {
    await server.close();
  }
});
