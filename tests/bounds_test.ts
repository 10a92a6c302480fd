/**
 * Every run ends, whatever the target: a valid server that does not echo (or
 * echoes only text), a server flooding pings, a run stopped by SIGINT, a
 * target that dies mid-run, a TLS set-up that cannot work, an unwritable
 * report directory. The case selections are the ones that used to take long
 * (9.1.6, 9.5.x, 9.6.x, the 10 s fail timers of 1.1.6 and 10.1.1) plus a
 * sample; `deno task bench` times the full runs. Durations are only bounded
 * here (a hang fails the test instead of CI).
 */

import assert from "node:assert/strict";
import { ALL_CASES } from "../fixtures/mod.ts";
import { Opcode } from "../harness/frame.ts";
import type { IndexJson } from "../harness/report.ts";
import { caseReport } from "../harness/report.ts";
import { PEER_PINGS_KEPT } from "../harness/session.ts";
import { needsEcho, runAndJudgeCase, runAndJudgeCases, selectCases } from "../harness/suite.ts";
import { isFailing } from "../harness/verdict.ts";
import { startHostilePeer } from "./hostile_peers.ts";
import { startStrictServer } from "./peers/strict_server.ts";
import { runCli, selfSigned, withTempDir } from "./support.ts";

const CLI = new URL("../harness/cli.ts", import.meta.url).pathname;
const SLOW_CASES = "9.1.6,9.5,9.6,1.1.1,1.1.6,1.2.1,2.1,5.1,6.1.1,7.1.1,10.1.1";
const byId = new Map(ALL_CASES.map((c) => [c.id, c]));
const count = (selection: string) => selectCases(ALL_CASES, selection).length;

/** A run that takes longer than this has hung: fail the test rather than CI. */
const SAFETY_MS = 150_000;

async function bounded<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no end within ${SAFETY_MS} ms`)),
      SAFETY_MS,
    );
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function readIndex(dir: string): Promise<Record<string, IndexJson[string][string]>> {
  const index: IndexJson = JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
  return Object.values(index)[0];
}

/** Case JSON files written so far in `dir`. */
function caseFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => /_case_.*\.json$/.test(n));
}

/** Whether a case needs the echo of a binary message (its expectation or its round trips). */
function needsBinaryEcho(id: string): boolean {
  const spec = byId.get(id)!;
  return [...spec.expect.ok, ...spec.expect.nonStrict ?? []].some((e) =>
    "message" in e && e.binary === true
  ) ||
    spec.steps.some((s) => s.kind === "roundTrips" && s.roundTrips.frame.opcode === Opcode.Binary);
}

async function waitFor(test: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = performance.now() + ms;
  while (!test()) {
    if (performance.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// ---------------------------------------------------------------------------
// Targets that do not echo

Deno.test("a valid server that echoes nothing: the echo cases end soon and fail, the rest pass", async () => {
  const server = startStrictServer({ echo: "none" });
  try {
    await withTempDir(async (dir) => {
      const run = await bounded(runCli([server.url, "--cases", SLOW_CASES, "--out", dir]), "run");
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /does not echo messages \(neither a text nor a binary message/);
      const index = await readIndex(dir);
      assert.equal(Object.keys(index).length, count(SLOW_CASES));
      for (const [id, entry] of Object.entries(index)) {
        const failing = isFailing({ behavior: entry.behavior, behaviorClose: entry.behaviorClose });
        assert.equal(
          failing,
          needsEcho(byId.get(id)!),
          `${id}: ${entry.behavior}/${entry.behaviorClose}`,
        );
      }
      // The case ended by the silence rule closes as its timer would: cleanly, with the peer's reply.
      assert.equal(index["9.5.1"].behaviorClose, "OK");
      const report = JSON.parse(await Deno.readTextFile(`${dir}/${index["9.5.1"].reportfile}`));
      const notes = report.wirelog.filter((e: { kind: string }) => e.kind === "note")
        .map((e: { text: string }) => e.text);
      assert.ok(notes.some((t: string) => /the echo is not coming/.test(t)), notes.join(" | "));
      // Well before the 1000 s the case allows, whatever the load.
      assert.ok(index["9.5.1"].duration < 100_000, `9.5.1 took ${index["9.5.1"].duration} ms`);
    });
  } finally {
    await server.close();
  }
});

Deno.test("the size probe (11.6.1) stops waiting for an echo that is not coming", async () => {
  const server = startStrictServer({ echo: "none" });
  try {
    const probe = ALL_CASES.find((c) => c.id === "11.6.1")!;
    const run = await runAndJudgeCase(probe, {
      url: new URL(server.url),
      echoes: { text: false, binary: false },
    });
    const notes = run.wire.entries.flatMap((e) => e.kind === "note" ? [e.text] : []);
    assert.ok(notes.some((t) => /the echo is not coming/.test(t)), notes.join(" | "));
    assert.equal(run.verdict.behavior, "INFORMATIONAL");
    // Without the rule, the first message alone waits its whole 10 s for the echo.
    assert.ok(run.duration < 10_000, `11.6.1 took ${run.duration} ms`);
  } finally {
    await server.close();
  }
});

Deno.test("a server that echoes only text: text echoes pass (16 MiB too), binary ones end and fail", async () => {
  const server = startStrictServer({ echo: "text" });
  try {
    await withTempDir(async (dir) => {
      const run = await bounded(runCli([server.url, "--cases", SLOW_CASES, "--out", dir]), "run");
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /does not echo binary messages \(a binary message sent/);
      const binary = selectCases(ALL_CASES, SLOW_CASES).filter((c) => needsBinaryEcho(c.id)).length;
      assert.match(
        run.stdout,
        new RegExp(
          `hint: the target does not echo binary messages: ${binary} of its ${binary} failed`,
        ),
      );
      const index = await readIndex(dir);
      for (const [id, entry] of Object.entries(index)) {
        const failing = isFailing({ behavior: entry.behavior, behaviorClose: entry.behaviorClose });
        assert.equal(
          failing,
          needsBinaryEcho(id),
          `${id}: ${entry.behavior}/${entry.behaviorClose}`,
        );
      }
      assert.equal(index["9.1.6"].behavior, "OK");
    });
  } finally {
    await server.close();
  }
});

Deno.test("without the probe, a silent peer still ends a long wait for an echo (ECHO_SILENCE_MS)", async () => {
  const server = startStrictServer({ echo: "none" });
  try {
    // 9.5.1 allows 1000 s; the suite knows nothing of the target here.
    const run = await bounded(
      runAndJudgeCase(byId.get("9.5.1")!, { url: new URL(server.url) }),
      "9.5.1",
    );
    assert.equal(run.verdict.behavior, "FAILED");
    assert.equal(run.verdict.behaviorClose, "OK");
    assert.ok(run.duration < 100_000, `9.5.1 took ${run.duration} ms`);
  } finally {
    await server.close();
  }
});

// ---------------------------------------------------------------------------
// A peer flooding pings

Deno.test("a peer flooding pings: the run ends, reports stay small, pongs are few", async (t) => {
  const peer = startHostilePeer("ping-flood");
  try {
    await t.step("the CLI run ends with a verdict per case and small case files", async () => {
      await withTempDir(async (dir) => {
        const cases = "9.1.6,9.5.1,9.6.1,1.1.1,2.1,11.7.1";
        const run = await bounded(runCli([peer.url, "--cases", cases, "--out", dir]), "run");
        assert.equal(run.code, 1, run.stderr);
        const index = await readIndex(dir);
        assert.equal(Object.keys(index).length, 6);
        for (const entry of Object.values(index)) {
          const { size } = await Deno.stat(`${dir}/${entry.reportfile}`);
          assert.ok(size < 4 * 1024 * 1024, `${entry.reportfile}: ${size} bytes`);
        }
      });
    });
    await t.step(
      "pings are counted past the first ones kept; one pong per 50 ms at most",
      async () => {
        const run = await bounded(
          runAndJudgeCase(byId.get("11.7.1")!, { url: new URL(peer.url) }),
          "11.7.1",
        );
        const pings = run.findings.find((f) => f.name === "peerPings")!;
        assert.ok((pings.value as number) > PEER_PINGS_KEPT, `${pings.value} pings`);
        assert.equal(run.timeline.peerPings.length, PEER_PINGS_KEPT);
        const txFrames = run.wire.entries.filter((e) =>
          e.kind === "frame" && e.dir === "tx"
        ).length +
          (run.wire.elided["tx frame"] ?? 0);
        // The pongs, and the close frame.
        assert.ok(txFrames <= run.duration / 50 + 3, `${txFrames} frames in ${run.duration} ms`);
        assert.ok(JSON.stringify(caseReport(run, "flood")).length < 4 * 1024 * 1024);
      },
    );
  } finally {
    await peer.close();
  }
});

// ---------------------------------------------------------------------------
// Stopping a run

Deno.test("runCases with an aborted signal: cases not started are not run, the finished come back", async () => {
  const server = startStrictServer({ echo: "none" });
  try {
    const stop = new AbortController();
    const cases = ["1.1.1", "1.1.2", "1.1.3", "1.1.4", "1.1.5"].map((id) => byId.get(id)!);
    const done: string[] = [];
    const outcomes = await bounded(
      runAndJudgeCases(cases, {
        url: new URL(server.url),
        jobs: 1,
        signal: stop.signal,
        onCaseDone: (run) => {
          done.push(run.spec.id);
          if (done.length === 2) stop.abort("test");
        },
      }),
      "aborted run",
    );
    assert.equal(done.length, 2, "no case reported after the abort");
    assert.deepEqual(outcomes.map((o) => o.spec.id).sort(), done.sort());
  } finally {
    await server.close();
  }
});

Deno.test("SIGINT: the cases that finished are reported, the rest marked not run; exit 130", async () => {
  const server = startStrictServer({ echo: "none" });
  let child: Deno.ChildProcess | undefined;
  try {
    await withTempDir(async (dir) => {
      const junit = `${dir}/junit.xml`;
      child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          CLI,
          server.url,
          "--cases",
          "1,9.5",
          "--jobs",
          "1",
          "--out",
          dir,
          "--junit",
          junit,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      await waitFor(() => caseFiles(dir).length >= 3, "three cases finished");
      Deno.kill(child.pid, "SIGINT");
      const { code, stdout, stderr } = await bounded(child.output(), "the interrupted run");
      child = undefined;
      const out = new TextDecoder().decode(stdout);
      assert.equal(code, 130, `${out}\n${new TextDecoder().decode(stderr)}`);
      const index = await readIndex(dir);
      const finished = Object.keys(index).length;
      const selected = count("1,9.5");
      assert.ok(finished >= 3 && finished < selected, `${finished} cases in index.json`);
      const notRun = selected - finished;
      assert.match(out, new RegExp(`^${notRun} cases not run \\(interrupted by SIGINT\\)$`, "m"));
      assert.ok((await Deno.stat(`${dir}/index.html`)).isFile);
      const xml = await Deno.readTextFile(junit);
      assert.equal([...xml.matchAll(/<testcase /g)].length, selected);
      assert.equal(
        [...xml.matchAll(/<skipped message="not run: interrupted by SIGINT"/g)].length,
        notRun,
      );
    });
  } finally {
    if (child) {
      try {
        Deno.kill(child.pid, "SIGKILL");
      } catch { /* already gone */ }
      await child.output();
    }
    await server.close();
  }
});

Deno.test("a target that dies mid-run: one line naming the case, the rest not run, exit 2", async () => {
  const server = startStrictServer({ echo: "none" });
  let closed = false;
  try {
    await withTempDir(async (dir) => {
      const selection = "1.1,1.2,6.1,6.2,6.3";
      const running = runCli([server.url, "--cases", selection, "--jobs", "1", "--out", dir]);
      await waitFor(() => caseFiles(dir).length >= 3, "three cases finished");
      await server.close();
      closed = true;
      const run = await bounded(running, "the run");
      assert.equal(run.code, 2, run.stderr);
      const stopped = run.stderrCalls.filter((l) => /stopped answering/.test(l));
      assert.equal(stopped.length, 1, run.stderr);
      assert.match(
        stopped[0],
        /^wsconform: the target stopped answering at case \d+(\.\d+)+: .*connect/,
      );
      const at = /at case (\S+):/.exec(stopped[0])![1];
      const index = await readIndex(dir);
      assert.equal(index[at], undefined, "the case that found the target gone is not run");
      const notRun = count(selection) - Object.keys(index).length;
      assert.ok(notRun > 0);
      assert.match(
        run.stdout,
        new RegExp(
          `^${notRun} cases not run \\(the target stopped answering at case ${at}\\)$`,
          "m",
        ),
      );
    });
  } finally {
    if (!closed) await server.close();
  }
});

// ---------------------------------------------------------------------------
// Failures found before the run

/** One line on stderr, exit 2, before any case (no report written). */
function assertRefusedBeforeRun(run: Awaited<ReturnType<typeof runCli>>, message: RegExp): void {
  assert.equal(run.code, 2, run.stderr);
  assert.equal(run.stderrCalls.length, 1, run.stderr);
  assert.doesNotMatch(run.stderr, /\n| {4}at /);
  assert.match(run.stderr, message);
  assert.doesNotMatch(run.stdout, /cases against/);
}

Deno.test("TLS failures and an unwritable --out exit 2 with one line, before the run", async (t) => {
  await withTempDir(async (dir) => {
    const { cert, key, certFile } = await selfSigned(dir);
    const tls = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert, key, onListen: () => {} },
      (request) => {
        const { socket, response } = Deno.upgradeWebSocket(request);
        socket.onmessage = (e) => socket.send(e.data);
        return response;
      },
    );
    const wss = `wss://127.0.0.1:${tls.addr.port}/`;
    const plain = startStrictServer();
    try {
      await t.step("the control: with --ca, the wss:// target is tested", async () => {
        const run = await runCli([wss, "--ca", certFile, "--cases", "1.1.1", "--out", `${dir}/ok`]);
        assert.equal(run.code, 0, run.stderr);
      });
      await t.step("an unknown issuer", async () => {
        const run = await runCli([wss, "--cases", "1.1.1", "--out", `${dir}/a`]);
        assertRefusedBeforeRun(run, /^wsconform: cannot reach wss:.*TLS handshake .*failed/);
      });
      await t.step("a --ca file that is not PEM", async () => {
        const notPem = `${dir}/not.pem`;
        await Deno.writeTextFile(notPem, "this is not a certificate\n");
        const run = await runCli([wss, "--ca", notPem, "--cases", "1.1.1", "--out", `${dir}/b`]);
        assertRefusedBeforeRun(run, /^wsconform: cannot reach wss:/);
      });
      await t.step("wss:// to a plain port", async () => {
        const url = plain.url.replace("ws:", "wss:");
        const run = await bounded(runCli([url, "--cases", "1.1.1", "--out", `${dir}/c`]), "run");
        assertRefusedBeforeRun(run, /^wsconform: cannot reach wss:.*TLS handshake/);
      });
      await t.step("an --out that cannot be written", async () => {
        const file = `${dir}/a-file`;
        await Deno.writeTextFile(file, "");
        const run = await runCli([plain.url, "--cases", "1.1.1", "--out", `${file}/reports`]);
        assertRefusedBeforeRun(
          run,
          /^wsconform: cannot write reports to --out .*a-file\/reports: /,
        );
      });
    } finally {
      await plain.close();
      await tls.shutdown();
    }
  });
});
