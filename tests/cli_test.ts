/**
 * The command line: exit codes, messages, and the reports a run leaves behind.
 * main() runs in this process with console output captured; one test runs the
 * real `deno run harness/cli.ts` to check the exit status of the process.
 */

import assert from "node:assert/strict";
import { ALL_CASES } from "../fixtures/mod.ts";
import { main, USAGE } from "../harness/cli.ts";
import { caseReportName, type IndexJson } from "../harness/report.ts";
import { startStrictServer } from "./peers/strict_server.ts";

const STRICT_AGENT = "wsconform-strict";
const CLI = new URL("../harness/cli.ts", import.meta.url).pathname;

interface Captured {
  code: number;
  stdout: string[];
  stderr: string[];
}

/** Runs main() with console.log/console.error captured (and restored, whatever happens). */
async function runMain(args: string[]): Promise<Captured> {
  const stdout: string[] = [], stderr: string[] = [];
  const { log, error } = console;
  const text = (parts: unknown[]) => parts.map(String).join(" ");
  console.log = (...parts: unknown[]) => void stdout.push(text(parts));
  console.error = (...parts: unknown[]) => void stderr.push(text(parts));
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    console.log = log;
    console.error = error;
  }
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

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "wsconform_cli_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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
    for (const option of ["--cases", "--exclude", "--agent", "--jobs", "--out", "--ca"]) {
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

      await t.step("one report file per case, with what was observed", async () => {
        const files = [];
        for await (const e of Deno.readDir(out)) files.push(e.name);
        assert.deepEqual(
          files.sort(),
          ["index.json", ...selected.map((id) => caseReportName(STRICT_AGENT, id))].sort(),
        );
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
