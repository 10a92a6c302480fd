import { runCli, withTempDir } from "./support.ts";
/**
 * The command line: exit codes, messages, and the reports a run leaves behind.
 * main() runs in this process with its output captured; one test runs the
 * real `deno run harness/cli.ts` to check the exit status of the process.
 */

import assert from "node:assert/strict";
import { ALL_CASES, GROUPS } from "../fixtures/mod.ts";
import { type CliIo, USAGE } from "../harness/cli.ts";
import { colorEnabled, Progress, type ProgressOptions, summaryTable } from "../harness/progress.ts";
import { caseReportName, type IndexJson } from "../harness/report.ts";
import { startStrictServer } from "./peers/strict_server.ts";

const STRICT_AGENT = "wsconform-strict";
const CLI = new URL("../harness/cli.ts", import.meta.url).pathname;

interface Captured {
  code: number;
  /** Standard output, as lines. */
  stdout: string[];
  stderr: string[];
  /** Standard output exactly as written. */
  raw: string;
}

/**
 * Runs main() with its output captured: standard output through the injected
 * writer (off a terminal, NO_COLOR unset, unless `io` says otherwise), and
 * console.error (restored, whatever happens).
 */
async function runMain(args: string[], io: CliIo = {}): Promise<Captured> {
  const run = await runCli(args, io);
  const stdout = run.stdout === "" ? [] : run.stdout.replace(/\n$/, "").split("\n");
  return { code: run.code, stdout, stderr: run.stderrCalls, raw: run.stdout };
}

/** Lines of captured output (a captured call may hold several). */
const lines = (out: string[]) => out.join("\n").split("\n").filter((l) => l.length > 0);

/** A port on 127.0.0.1 with nothing listening (it was free a moment ago). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** A usage error: exit 2, nothing on stdout, one message line on stderr (plus the hint). */
function assertUsageError(result: Captured, message: RegExp): void {
  assert.equal(result.code, 2, `exit code; stderr: ${result.stderr.join("\n")}`);
  assert.deepEqual(result.stdout, []);
  const [first, ...rest] = lines(result.stderr);
  assert.match(first, /^wsconform: /);
  assert.match(first, message);
  // The message is a single line; at most a "(try --help)" hint follows, never a stack trace.
  assert.ok(rest.every((l) => /^\(try --help\)$/.test(l)), `extra lines: ${rest.join(" | ")}`);
}

async function readIndex(dir: string): Promise<IndexJson> {
  return JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
}

Deno.test("cli: bad URLs exit 2 with a one-line message", async (t) => {
  const port = closedPort();
  const cases: [string, RegExp][] = [
    ["http://", /not a URL: http:\/\//],
    [`http://127.0.0.1:${port}/`, /must start with ws:\/\/ or wss:\/\/, got http:/],
    ["not-a-url", /not a URL: not-a-url/],
    ["ws://x#frag", /#fragment/],
  ];
  for (const [url, message] of cases) {
    await t.step(url, async () => {
      assertUsageError(await runMain([url]), message);
    });
  }
  await t.step("two URLs", async () => {
    assertUsageError(
      await runMain([`ws://127.0.0.1:${port}/`, `ws://127.0.0.1:${port}/x`]),
      /expected one URL/,
    );
  });
});

Deno.test("cli: an unreachable target exits 2 at once with a clear message", async () => {
  const url = `ws://127.0.0.1:${closedPort()}/`;
  const started = performance.now();
  const result = await runMain([url, "--cases", "1.1.1"]);
  const elapsed = performance.now() - started;
  assert.equal(result.code, 2);
  const [first, ...rest] = lines(result.stderr);
  assert.match(first, new RegExp(`^wsconform: cannot reach ${url.replaceAll(".", "\\.")}: `));
  assert.match(first, /refused|cannot connect/i);
  assert.deepEqual(rest, []);
  assert.deepEqual(result.stdout, [], "no case ran");
  // A refused connection is known at once; only the probe's 4 s connect timeout could be slower.
  assert.ok(elapsed < 4000, `took ${elapsed.toFixed(0)} ms`);
});

Deno.test("cli: bad options exit 2", async (t) => {
  // A target that cannot be reached: should an option slip through, the run still cannot start.
  const url = `ws://127.0.0.1:${closedPort()}/`;
  await t.step("--jobs 0", async () => {
    assertUsageError(await runMain([url, "--jobs", "0"]), /--jobs must be an integer/);
  });
  await t.step("--jobs many", async () => {
    assertUsageError(await runMain([url, "--jobs", "many"]), /--jobs must be an integer/);
  });
  await t.step("--cases 99.*", async () => {
    assertUsageError(await runMain([url, "--cases", "99.*"]), /no case matches "99\.\*"/);
  });
  await t.step("--cases 1.1.1,99", async () => {
    assertUsageError(await runMain([url, "--cases", "1.1.1,99"]), /no case matches "99"/);
  });
  await t.step("--exclude everything selected", async () => {
    assertUsageError(
      await runMain([url, "--cases", "2.*", "--exclude", "2"]),
      /leaves no case to run/,
    );
  });
  await t.step("--agent empty", async () => {
    assertUsageError(await runMain([url, "--agent", " "]), /--agent must not be empty/);
  });
  await t.step("an unknown option", async () => {
    assertUsageError(await runMain([url, "--bogus"]), /bogus/);
  });
  await t.step("--ca with a ws:// URL", async () => {
    assertUsageError(await runMain([url, "--ca", "/nonexistent.pem"]), /--ca/);
  });
});

Deno.test("cli: --help exits 0 and prints the usage", async () => {
  for (const flag of ["--help", "-h"]) {
    const result = await runMain([flag]);
    assert.equal(result.code, 0, flag);
    assert.deepEqual(result.stderr, [], flag);
    const text = result.stdout.join("\n");
    assert.equal(text, USAGE);
    for (
      const option of [
        "--cases",
        "--exclude",
        "--agent",
        "--jobs",
        "--out",
        "--ca",
        "--strict",
        "--junit",
        "--baseline",
        "--write-baseline",
        "--spec",
        "--protocol NAME",
        "--header",
        "--origin URL",
      ]
    ) {
      assert.ok(text.includes(option), `usage names ${option}`);
    }
    assert.match(text, /Usage:/);
    assert.match(text, /Exit status/);
  }
});

Deno.test("cli: a process exits with main()'s status", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", "--allow-write", CLI, "ws://x#frag"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const { code, stdout, stderr } = await child.output();
    assert.equal(code, 2);
    assert.equal(new TextDecoder().decode(stdout), "");
    assert.match(new TextDecoder().decode(stderr), /^wsconform: .*#fragment/);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
  }
});

Deno.test("cli: runs against the strict server write Autobahn-shaped reports", async (t) => {
  const server = startStrictServer();
  try {
    await withTempDir(async (out) => {
      const selected = ALL_CASES.filter((c) => c.id === "1.1.1" || c.id.startsWith("2."))
        .map((c) => c.id);
      let first: IndexJson = {};

      await t.step("--cases 1.1.1,2.* passes: exit 0", async () => {
        const result = await runMain([server.url, "--cases", "1.1.1,2.*", "--out", out]);
        assert.equal(result.code, 0, [...result.stdout, ...result.stderr].join("\n"));
        assert.deepEqual(result.stderr, []);
        const text = result.stdout.join("\n");
        assert.match(text, new RegExp(`${selected.length} cases, 0 failed`));
        assert.ok(text.includes(`"${STRICT_AGENT}"`), "the agent is named");
      });

      await t.step(
        "index.json holds exactly those cases under the Server header's name",
        async () => {
          first = await readIndex(out);
          assert.deepEqual(Object.keys(first), [STRICT_AGENT]);
          assert.deepEqual(Object.keys(first[STRICT_AGENT]), selected);
          for (const [id, entry] of Object.entries(first[STRICT_AGENT])) {
            assert.equal(entry.behavior, "OK", id);
            assert.equal(entry.behaviorClose, "OK", id);
            assert.equal(typeof entry.duration, "number", id);
            assert.ok("remoteCloseCode" in entry, id);
            assert.equal(entry.reportfile, caseReportName(STRICT_AGENT, id));
          }
        },
      );

      await t.step("one report file and one page per case, with what was observed", async () => {
        const files = [];
        for await (const e of Deno.readDir(out)) files.push(e.name);
        const json = selected.map((id) => caseReportName(STRICT_AGENT, id));
        const html = json.map((name) => name.replace(/\.json$/, ".html"));
        // index.runs.json: when each result was written (the index itself keeps Autobahn's shape).
        const indexes = ["index.html", "index.json", "index.runs.json"];
        assert.deepEqual(files.sort(), [...indexes, ...json, ...html].sort());
        for (const id of selected) {
          const report = JSON.parse(
            await Deno.readTextFile(`${out}/${caseReportName(STRICT_AGENT, id)}`),
          );
          assert.equal(report.id, id);
          assert.equal(report.agent, STRICT_AGENT);
          for (const field of ["expected", "received", "wirelog", "httpRequest", "httpResponse"]) {
            assert.ok(field in report, `${id}: ${field}`);
          }
          assert.ok(Array.isArray(report.expected.ok), id);
          assert.ok(Array.isArray(report.received), id);
          assert.ok(Array.isArray(report.wirelog) && report.wirelog.length > 0, id);
          assert.match(report.httpRequest, /^GET \/ HTTP\/1\.1\r\n/, id);
          assert.match(report.httpResponse, /^HTTP\/1\.1 101 /, id);
          assert.match(report.httpResponse, /\r\nServer: wsconform-strict\r\n/i, id);
        }
      });

      await t.step("a second run with --agent other adds a second agent", async () => {
        const result = await runMain([
          server.url,
          "--cases",
          "1.1.1,2.*",
          "--out",
          out,
          "--agent",
          "other",
          "--jobs",
          "2",
        ]);
        assert.equal(result.code, 0, result.stdout.join("\n"));
        const index = await readIndex(out);
        assert.deepEqual(Object.keys(index).sort(), ["other", STRICT_AGENT]);
        assert.deepEqual(index[STRICT_AGENT], first[STRICT_AGENT], "the first agent is kept");
        assert.deepEqual(Object.keys(index.other), selected);
        for (const id of selected) {
          const file = caseReportName("other", id);
          assert.equal(index.other[id].reportfile, file);
          await Deno.stat(`${out}/${file}`);
        }
      });
    });
  } finally {
    await server.close();
  }
});

Deno.test("cli: a server that does not answer pings fails group 2: exit 1", async () => {
  const server = startStrictServer({ flaws: ["no-pong"] });
  try {
    await withTempDir(async (out) => {
      const result = await runMain([server.url, "--cases", "2.*", "--out", out]);
      assert.equal(result.code, 1, [...result.stdout, ...result.stderr].join("\n"));
      const text = result.stdout.join("\n");
      assert.match(text, /FAILED 2\.1 /);
      const index = await readIndex(out);
      assert.deepEqual(Object.keys(index), [STRICT_AGENT]);
      assert.equal(index[STRICT_AGENT]["2.1"].behavior, "FAILED");
    });
  } finally {
    await server.close();
  }
});

// --- --strict, progress and the summary ---------------------------------------

/** Control characters: none may reach a log (LF ends lines and is the only one allowed). */
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u0009\u000B-\u001F\u007F-\u009F]/;

/** A colour or style code (SGR). */
const SGR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`);

Deno.test("cli: new options exit 2 when misused", async (t) => {
  const url = `ws://127.0.0.1:${closedPort()}/`;
  await t.step("--junit with no file name", async () => {
    assertUsageError(await runMain([url, "--junit", ""]), /--junit needs a file name/);
  });
  await t.step("--junit with no value", async () => {
    assertUsageError(await runMain([url, "--junit"]), /junit/);
  });
  await t.step("--baseline that does not exist", async () => {
    assertUsageError(
      await runMain([url, "--baseline", "/nonexistent/base.json"]),
      /cannot read --baseline \/nonexistent\/base\.json/,
    );
  });
  await t.step("--spec with a URL", async () => {
    assertUsageError(await runMain([url, "--spec", "/nonexistent.json"]), /--spec .*drop a URL/);
  });
  await t.step("--strict takes no value", async () => {
    assertUsageError(await runMain([url, "--strict=yes"]), /strict/);
  });
});

Deno.test("cli: --strict counts NON-STRICT as failed", async () => {
  // Without fail-fast, 6.4.x are NON-STRICT (see conformance_test.ts).
  const server = startStrictServer({ flaws: ["no-fail-fast"] });
  try {
    await withTempDir(async (out) => {
      const args = [server.url, "--cases", "6.4.1,6.4.2", "--out", out];
      const lenient = await runMain(args);
      assert.equal(lenient.code, 0, lenient.stdout.join("\n"));
      const text = lenient.stdout.join("\n");
      assert.match(text, /\n6 UTF-8 handling\s+2\s+0\s+2\s+0\s+0\s+0\n/);
      assert.match(text, /\n2 cases, 0 failed in /);

      const strict = await runMain([...args, "--strict", "--junit", `${out}/junit.xml`]);
      assert.equal(strict.code, 1, strict.stdout.join("\n"));
      const strictText = strict.stdout.join("\n");
      assert.match(strictText, /\(agent "wsconform-strict"\), --strict\n/);
      assert.match(strictText, /\n6 UTF-8 handling\s+2\s+0\s+2\s+0\s+0\s+2\n/);
      assert.match(strictText, /\n2 cases, 2 failed \(NON-STRICT counts, --strict\) in /);
      assert.match(strictText, /\n {2}FAILED 6\.4\.1 .*: NON-STRICT\/OK\n/);
      const xml = await Deno.readTextFile(`${out}/junit.xml`);
      assert.match(xml, /failures="2"/);
      assert.match(xml, /observed NON-STRICT \(--strict\)/);
    });
  } finally {
    await server.close();
  }
});

Deno.test("cli: off a terminal, one plain line per group and no control characters", async () => {
  const server = startStrictServer({ flaws: ["no-pong"] });
  try {
    await withTempDir(async (out) => {
      // An agent name with escape sequences, as a hostile Server header could carry.
      const agent = "evil\x1b[2J\x1b[31m\ttab\x07";
      const result = await runMain(
        [server.url, "--cases", "1.1.1,1.1.2,2.1", "--out", out, "--agent", agent],
        { env: () => undefined },
      );
      assert.equal(result.code, 1);
      assert.ok(!CONTROL.test(result.raw), JSON.stringify(result.raw));
      assert.deepEqual(result.stdout.slice(0, 3), [
        `wsconform: 3 cases against ${server.url} (agent "evil?[2J?[31m?tab?")`,
        "  group 1 (Framing) done: 2 cases, 0 failed",
        "  group 2 (Pings and pongs) done: 1 case, 1 failed",
      ]);
      assert.equal(result.stdout.at(-1), `        ${out}/index.json`);
      assert.equal(result.stdout.at(-2), `report: ${out}/index.html`);
    });
  } finally {
    await server.close();
  }
});

Deno.test("cli: on a terminal, a live line, then the table; colour unless NO_COLOR", async (t) => {
  const server = startStrictServer({ flaws: ["no-pong"] });
  try {
    await withTempDir(async (out) => {
      const args = [server.url, "--cases", "1.1.1,2.1", "--out", out];
      await t.step("colour", async () => {
        const result = await runMain(args, { isTTY: true, env: () => undefined, columns: 100 });
        assert.equal(result.code, 1);
        assert.ok(result.raw.includes("\r\x1b[K  0/2 cases · "), "a live line redrawn in place");
        assert.ok(result.raw.includes("\r\x1b[K  2/2 cases · \x1b[31m1 failed\x1b[0m · "));
        assert.ok(!result.raw.includes("group 1 (Framing) done"), "no group lines on a terminal");
        assert.ok(result.raw.includes("\x1b[31mFAILED\x1b[0m 2.1 "));
        // The live line is cleared before the table is printed.
        const table = result.raw.indexOf("\x1b[1mgroup ");
        assert.ok(table > 0 && result.raw.lastIndexOf("\r\x1b[K", table) > 0);
        assert.ok(!result.raw.slice(table).includes("\r"), "nothing redrawn after the table");
      });
      await t.step("NO_COLOR", async () => {
        const env = (name: string) => name === "NO_COLOR" ? "1" : undefined;
        const result = await runMain(args, { isTTY: true, env, columns: 100 });
        assert.equal(result.code, 1);
        assert.ok(result.raw.includes("\r\x1b[K  2/2 cases · 1 failed · "));
        assert.ok(!SGR.test(result.raw), "no colour codes");
      });
    });
  } finally {
    await server.close();
  }
});

Deno.test("progress: the writer, driven directly", async (t) => {
  const cases = ["1.1.1", "1.1.2", "2.1"].map((id) => ({ id }));
  const ok = { behavior: "OK", behaviorClose: "OK" } as const;
  const nonStrict = { behavior: "NON-STRICT", behaviorClose: "OK" } as const;
  const failed = { behavior: "FAILED", behaviorClose: "OK" } as const;
  let clock = 0;
  const make = (isTTY: boolean, extra: Partial<ProgressOptions> = {}) => {
    const chunks: string[] = [];
    const progress = new Progress({
      isTTY,
      env: () => undefined,
      write: (t) => void chunks.push(t),
      now: () => clock,
      tickMs: 0,
      groups: GROUPS,
      ...extra,
    });
    return { progress, chunks };
  };

  await t.step("colorEnabled follows the terminal and NO_COLOR", () => {
    assert.equal(colorEnabled(false, () => undefined), false);
    assert.equal(colorEnabled(true, () => undefined), true);
    assert.equal(colorEnabled(true, () => "1"), false);
    assert.equal(colorEnabled(true, () => ""), true, "an empty NO_COLOR is unset (no-color.org)");
  });

  await t.step("off a terminal: a line per finished group", () => {
    const { progress, chunks } = make(false);
    progress.begin(cases);
    progress.caseDone({ spec: { id: "1.1.2" }, verdict: ok });
    progress.caseDone({ spec: { id: "2.1" }, verdict: failed });
    progress.line("between\x1b[31m");
    progress.caseDone({ spec: { id: "1.1.1" }, verdict: nonStrict });
    progress.end();
    assert.deepEqual(chunks, [
      "  group 2 (Pings and pongs) done: 1 case, 1 failed\n",
      "between?[31m\n",
      "  group 1 (Framing) done: 2 cases, 0 failed\n",
    ]);
  });

  await t.step("with strict, NON-STRICT counts as failed", () => {
    const { progress, chunks } = make(false, { strict: true });
    progress.begin(cases);
    for (const id of ["1.1.1", "1.1.2"]) progress.caseDone({ spec: { id }, verdict: nonStrict });
    progress.end();
    assert.deepEqual(chunks, ["  group 1 (Framing) done: 2 cases, 2 failed\n"]);
  });

  await t.step("on a terminal: redrawn with \\r, cleared around lines and at the end", () => {
    clock = 0;
    const { progress, chunks } = make(true, { env: () => "1" });
    progress.begin(cases);
    clock = 1500;
    progress.caseDone({ spec: { id: "2.1" }, verdict: failed });
    progress.line("a line");
    clock = 3000;
    progress.caseDone({ spec: { id: "1.1.1" }, verdict: ok });
    clock = 3010; // within 50 ms of the last redraw: skipped
    progress.caseDone({ spec: { id: "1.1.2" }, verdict: ok });
    progress.end();
    assert.deepEqual(chunks, [
      "\r\x1b[K  0/3 cases · 0 failed · 0.0 s",
      "\r\x1b[K  1/3 cases · 1 failed · 2 Pings and pongs · 1.5 s",
      "\r\x1b[K",
      "a line\n",
      "\r\x1b[K  1/3 cases · 1 failed · 2 Pings and pongs · 1.5 s",
      "\r\x1b[K  2/3 cases · 1 failed · 1 Framing · 3.0 s",
      // The last case always redraws.
      "\r\x1b[K  3/3 cases · 1 failed · 1 Framing · 3.0 s",
      "\r\x1b[K",
    ]);
  });

  await t.step("the live line fits the terminal, colour codes aside", () => {
    clock = 0;
    const { progress, chunks } = make(true, { columns: 24 });
    progress.begin(cases);
    clock = 100;
    progress.caseDone({ spec: { id: "2.1" }, verdict: failed });
    progress.end();
    for (const chunk of chunks) {
      // deno-lint-ignore no-control-regex
      const visible = chunk.replace(/\r|\x1b\[K|\x1b\[[0-9;]*m/g, "");
      assert.ok([...visible].length <= 23, JSON.stringify(chunk));
    }
    assert.ok(chunks[1].includes("\x1b[31m"), "coloured");
    assert.ok(chunks[1].endsWith("\x1b[0m"), "a cut line still resets the colour");
  });

  await t.step("the summary table", () => {
    const runs = [
      { spec: { id: "1.1.1" }, verdict: ok },
      { spec: { id: "1.1.2" }, verdict: nonStrict },
      { spec: { id: "2.1" }, verdict: failed },
      { spec: { id: "12.1.1" }, verdict: { ...ok, behavior: "UNIMPLEMENTED" as const } },
    ];
    const plain = summaryTable(runs, { groups: GROUPS });
    assert.equal(plain.failed, 1);
    assert.deepEqual(plain.text.split("\n").map((l) => l.split(/\s{2,}/).join("|")), [
      "group|cases|ok|non-strict|info|unimpl.|failed",
      "1 Framing|2|1|1|0|0|0",
      "2 Pings and pongs|1|0|0|0|0|1",
      "12 Compression of different data|1|0|0|0|1|0",
    ]);
    assert.equal(summaryTable(runs, { groups: GROUPS, strict: true }).failed, 2);
  });
});

// --- options real servers need (--protocol, --header, --origin) and permissions --------

/** The case file of one case, parsed. */
async function caseFile(out: string, agent: string, id: string) {
  return JSON.parse(await Deno.readTextFile(`${out}/${caseReportName(agent, id)}`));
}

Deno.test("cli: --protocol, --header and --origin go into every handshake", async (t) => {
  // A server that serves only its own subprotocol (as libwebsockets' test server does).
  const server = startStrictServer({ protocols: ["lws-mirror-protocol"], requireProtocol: true });
  try {
    await withTempDir(async (out) => {
      const options = [
        ...["--protocol", "lws-mirror-protocol", "--protocol", "x-other,x-third"],
        ...["--header", "Authorization: Bearer t0ken", "--header", "Cookie: a=1"],
        ...["--origin", "https://app.example"],
      ];
      await t.step("offered, selected by the server and accepted: group 1 passes", async () => {
        const result = await runMain([server.url, "--cases", "1", "--out", out, ...options]);
        assert.equal(result.code, 0, [...result.stdout, ...result.stderr].join("\n"));
        const ids = ALL_CASES.filter((c) => c.id.startsWith("1.")).map((c) => c.id);
        assert.deepEqual(Object.keys((await readIndex(out))[STRICT_AGENT]), ids);
        for (const id of ids) {
          const report = await caseFile(out, STRICT_AGENT, id);
          assert.equal(`${report.behavior}/${report.behaviorClose}`, "OK/OK", id);
          assert.match(
            report.httpRequest,
            new RegExp(
              "\r\nSec-WebSocket-Protocol: lws-mirror-protocol, x-other, x-third\r\n" +
                "Origin: https://app\\.example\r\nUser-Agent: wsconform\r\n" +
                "Authorization: Bearer t0ken\r\nCookie: a=1\r\n\r\n$",
            ),
            id,
          );
          assert.match(report.httpResponse, /\r\nSec-WebSocket-Protocol: lws-mirror-protocol\r\n/);
        }
      });
      await t.step("without --protocol that server refuses the handshake: FAILED", async () => {
        const result = await runMain([server.url, "--cases", "1.1.1", "--out", out]);
        assert.equal(result.code, 1, [...result.stdout, ...result.stderr].join("\n"));
        const report = await caseFile(out, STRICT_AGENT, "1.1.1");
        assert.equal(report.behavior, "FAILED");
        assert.doesNotMatch(report.httpRequest, /Sec-WebSocket-Protocol/);
        assert.match(report.httpResponse, /^HTTP\/1\.1 400 /);
      });
    });
  } finally {
    await server.close();
  }
});

Deno.test("cli: the group 0 cases that offer their own subprotocol or Origin keep theirs", async () => {
  const server = startStrictServer({ protocols: ["lws-mirror-protocol", "x-wsconform-a"] });
  try {
    await withTempDir(async (out) => {
      const result = await runMain([
        ...[server.url, "--cases", "0.3.1,0.3.3,0.6.6", "--out", out],
        ...["--protocol", "lws-mirror-protocol", "--origin", "https://app.example"],
      ]);
      assert.equal(result.code, 0, [...result.stdout, ...result.stderr].join("\n"));
      const request = async (id: string) => (await caseFile(out, STRICT_AGENT, id)).httpRequest;
      // 0.3.1 offers nothing of its own: the option's offer is made and its selection accepted.
      assert.match(await request("0.3.1"), /\r\nSec-WebSocket-Protocol: lws-mirror-protocol\r\n/);
      const own = await request("0.3.3");
      assert.match(own, /\r\nSec-WebSocket-Protocol: x-wsconform-a, x-wsconform-b\r\n/);
      assert.doesNotMatch(own, /lws-mirror-protocol/);
      const foreign = await request("0.6.6");
      assert.match(foreign, /\r\nOrigin: http:\/\/evil\.example\r\n/);
      assert.doesNotMatch(foreign, /app\.example/);
    });
  } finally {
    await server.close();
  }
});

Deno.test("cli: a subprotocol the suite did not offer fails the handshake", async () => {
  // The flaw selects "chat" whatever is offered: only an offered name may come back (§4.1).
  const server = startStrictServer({ flaws: ["select-unoffered-protocol"] });
  try {
    await withTempDir(async (out) => {
      const args = [server.url, "--cases", "1.1.1", "--out", out];
      const unoffered = await runMain([...args, "--protocol", "lws-mirror-protocol"]);
      assert.equal(unoffered.code, 1, unoffered.stdout.join("\n"));
      assert.equal((await caseFile(out, STRICT_AGENT, "1.1.1")).behavior, "FAILED");
      const offered = await runMain([...args, "--protocol", "lws-mirror-protocol,chat"]);
      assert.equal(offered.code, 0, offered.stdout.join("\n"));
    });
  } finally {
    await server.close();
  }
});

Deno.test("cli: bad --protocol, --header and --origin exit 2 with one line", async (t) => {
  const url = `ws://127.0.0.1:${closedPort()}/`;
  const cases: [string[], RegExp][] = [
    [["--protocol", "a b"], /--protocol "a b": a subprotocol name is an HTTP token/],
    [["--protocol", "chat,"], /--protocol "": a subprotocol name is an HTTP token/],
    [["--protocol", "chat", "--protocol", "x,chat"], /--protocol chat is offered twice/],
    [["--header", "no colon"], /--header "no colon": expected "Name: value"/],
    [["--header", ": value"], /expected "Name: value"/],
    [["--header", "Bad Name: v"], /expected "Name: value"/],
    [["--header", "X-Evil: a\r\nHost: b"], /--header X-Evil: the value holds a control character/],
    [["--header", "Host: example.com"], /--header Host cannot be set: the opening handshake/],
    [["--header", "upgrade: h2c"], /--header upgrade cannot be set/],
    [["--header", "Connection: close"], /--header Connection cannot be set/],
    [["--header", "Sec-WebSocket-Key: x"], /--header Sec-WebSocket-Key cannot be set/],
    [["--header", "Sec-WebSocket-Version: 8"], /--header Sec-WebSocket-Version cannot be set/],
    [["--header", "Sec-WebSocket-Accept: x"], /--header Sec-WebSocket-Accept cannot be set/],
    [["--header", "Sec-WebSocket-Protocol: x"], /cannot be set: use --protocol/],
    [["--header", "Origin: https://a.example"], /cannot be set: use --origin/],
    [["--header", "Sec-WebSocket-Extensions: permessage-deflate"], /implements no extension/],
    [["--origin", "app.example"], /--origin "app\.example": expected an origin/],
    [["--origin", "https://app.example/path"], /expected an origin such as https:\/\/example\.com/],
    [["--origin", "https://user@app.example"], /expected an origin/],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), async () => {
      assertUsageError(await runMain([url, ...args]), message);
    });
  }
  await t.step("an origin is sent as its serialization; an empty header value is one", async () => {
    const server = startStrictServer();
    try {
      await withTempDir(async (out) => {
        const result = await runMain([
          ...[server.url, "--cases", "1.1.1", "--out", out],
          ...["--origin", "HTTPS://App.Example:443/", "--header", "X-Empty:"],
        ]);
        assert.equal(result.code, 0, [...result.stdout, ...result.stderr].join("\n"));
        const { httpRequest } = await caseFile(out, STRICT_AGENT, "1.1.1");
        assert.match(httpRequest, /\r\nOrigin: https:\/\/app\.example\r\n/);
        assert.match(httpRequest, /\r\nX-Empty: \r\n/);
      });
    } finally {
      await server.close();
    }
  });
});

// --- least privilege: the task's permissions and the README's hardened command line -----

const ROOT = new URL("..", import.meta.url).pathname;

/** Runs Deno with `args` in `cwd` (bounded: killed by its PID after 60 s, and in the end). */
async function runDeno(args: string[], cwd: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
  };
  const timer = setTimeout(kill, 60_000);
  try {
    const { code, stdout, stderr } = await child.output();
    const dec = new TextDecoder();
    return { code, stdout: dec.decode(stdout), stderr: dec.decode(stderr) };
  } finally {
    clearTimeout(timer);
    kill();
  }
}

/**
 * A directory laid out as the project (harness/ and fixtures/ linked), to run
 * command lines in without writing to the project's own reports/.
 */
function withProjectLayout(fn: (dir: string) => Promise<void>): Promise<void> {
  return withTempDir(async (dir) => {
    for (const name of ["harness", "fixtures"]) {
      await Deno.symlink(`${ROOT}${name}`, `${dir}/${name}`);
    }
    await fn(dir);
  });
}

Deno.test("cli: the README's hardened command line works, and runs nothing", async () => {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const line = /^ {4}(deno run --allow-net=127\.0\.0\.1:9001 .* ws:\/\/127\.0\.0\.1:9001\/)$/m
    .exec(readme)?.[1];
  assert.ok(line, "the README shows the hardened command line");
  assert.doesNotMatch(line, /--allow-run|--allow-all|\s-A\b/);
  const server = startStrictServer();
  try {
    await withProjectLayout(async (dir) => {
      const [, ...args] = line.replaceAll("9001", String(server.port)).split(" ");
      const result = await runDeno([...args, "--cases", "1.1"], dir);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.equal(result.stderr, "");
      const index = JSON.parse(await Deno.readTextFile(`${dir}/reports/servers/index.json`));
      assert.equal(Object.keys(index[STRICT_AGENT]).length, 8);
    });
  } finally {
    await server.close();
  }
});

Deno.test("cli: a permission the command line lacks is one line and exit 2", async (t) => {
  const server = startStrictServer();
  try {
    await withProjectLayout(async (dir) => {
      const net = `--allow-net=127.0.0.1:${server.port}`;
      const files = ["--allow-read=reports", "--allow-write=reports", "harness/cli.ts"];
      const cases: [string, string[], RegExp][] = [
        [
          "the embedded server without --allow-run",
          ["--allow-net", ...files, "--cases", "1.1.1"],
          /^wsconform: cannot start the embedded reference server: .* add --allow-run=deno$/,
        ],
        [
          "a target outside --allow-net",
          ["--allow-net=127.0.0.1:1", ...files, server.url],
          /^wsconform: cannot reach .*: Requires net access to "127\.0\.0\.1:\d+"/,
        ],
        [
          "--out outside --allow-read",
          [net, ...files, server.url, "--out", "elsewhere"],
          /^wsconform: --out elsewhere: no permission to read elsewhere \(deno run needs --allow-read=elsewhere;/,
        ],
        [
          "--junit outside --allow-write",
          [net, ...files, server.url, "--junit", "../junit.xml"],
          /^wsconform: --junit \.\.\/junit\.xml: no permission to write \.\. /,
        ],
        [
          "--write-baseline outside --allow-write",
          [net, ...files, server.url, "--write-baseline", "ci/{agent}.json"],
          /^wsconform: --write-baseline ci\/\{agent\}\.json: no permission to write ci /,
        ],
        [
          "--baseline outside --allow-read",
          [net, ...files, server.url, "--baseline", "base.json"],
          /^wsconform: cannot read --baseline base\.json: Requires read access to "base\.json"/,
        ],
      ];
      for (const [name, args, message] of cases) {
        await t.step(name, async () => {
          const result = await runDeno(["run", "--no-prompt", ...args], dir);
          assert.equal(result.code, 2, result.stdout + result.stderr);
          assert.equal(result.stdout, "");
          const [first, ...rest] = result.stderr.trimEnd().split("\n");
          assert.match(first, message);
          assert.ok(rest.every((l) => l === "(try --help)"), `extra lines: ${rest.join(" | ")}`);
        });
      }
    });
  } finally {
    await server.close();
  }
});

Deno.test("cli: the test task may run Deno for the embedded server, nothing for a URL", async (t) => {
  const task: string = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks.test;
  const [deno, run, ...rest] = task.split(" ");
  const flags = rest.slice(0, -1);
  assert.deepEqual([deno, run, rest.at(-1)], ["deno", "run", "harness/cli.ts"]);
  // The project, the system's programs and a browser's profile in /tmp; Deno, the browsers, Xvfb.
  const browsers = "chromium,firefox-esr,Xvfb,/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";
  for (
    const flag of [
      `--allow-run=deno,${browsers}`,
      "--allow-read=.,/usr/bin,/usr/lib,/tmp",
      "--allow-write=.,/tmp",
      "--no-prompt",
    ]
  ) {
    assert.ok(flags.includes(flag), `the task has ${flag}`);
  }
  assert.ok(!flags.some((f) => /^--allow-(run|read|write|all)$|^-A$/.test(f)), task);
  await withTempDir(async (tmp) => {
    // Loaded before the CLI: says, as the process exits, whether it may run anything, and Deno.
    const preload = `${tmp}/tell_run_permission.ts`;
    await Deno.writeTextFile(
      preload,
      `globalThis.addEventListener("unload", () => console.error("run:", ` +
        `Deno.permissions.querySync({ name: "run" }).state, ` +
        `Deno.permissions.querySync({ name: "run", command: "deno" }).state));\n`,
    );
    // The task may write only in the project: a report directory of this test's own.
    const out = `reports/cli-test-${crypto.randomUUID()}`;
    const taskRun = (args: string[]) =>
      runDeno(["run", `--preload=${preload}`, ...flags, "harness/cli.ts", ...args], ROOT);
    try {
      await t.step("a URL target: the run permission is gone before it connects", async () => {
        const server = startStrictServer();
        try {
          const result = await taskRun([server.url, "--cases", "1.1.1", "--out", out]);
          assert.equal(result.code, 0, result.stdout + result.stderr);
          assert.match(result.stderr, /^run: (prompt|denied) (prompt|denied)$/m);
        } finally {
          await server.close();
        }
      });
      await t.step("the embedded target: Deno may run, nothing else", async () => {
        const result = await taskRun(["--cases", "1.1.1", "--out", out]);
        assert.equal(result.code, 0, result.stdout + result.stderr);
        assert.match(result.stdout, /against ws:\/\/127\.0\.0\.1:\d+\/ \(agent "Deno\//);
        assert.match(result.stderr, /^run: (prompt|denied) granted$/m);
      });
    } finally {
      await Deno.remove(`${ROOT}${out}`, { recursive: true }).catch(() => {});
    }
  });
});
