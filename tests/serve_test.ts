/**
 * Serve mode (`--serve`, Autobahn's fuzzingserver): the CLI in a child
 * process, driven by the Autobahn-protocol driver over the strict client
 * (tests/peers/autobahn_driver.ts) as a client library's own driver would
 * drive it; fuzzingserver.json; wss:// with --cert and --key.
 */
import assert from "node:assert/strict";
import { denoProgram, type ReadyChild, spawnReady } from "../harness/child.ts";
import type { IndexJson } from "../harness/report.ts";
import { isServerSpec, parseServerSpec, SpecError, specPort } from "../harness/spec.ts";
import { runAutobahnDriver } from "./peers/autobahn_driver.ts";
import type { Flaw } from "./peers/strict_client.ts";
import { selfSigned, withTempDir } from "./support.ts";

const CLI = new URL("../harness/cli.ts", import.meta.url).pathname;
const STRICT_CLIENT = new URL("./peers/strict_client.ts", import.meta.url).pathname;
/** A handful of groups; the strict client passes each (and no-pong fails the 2.x pings). */
const CASES = ["1.1.1", "1.1.2", "1.2.1", "2.1", "2.3", "3.1", "4.1.1", "5.1", "6.1.1", "7.1.1"];
/** Bound on a CLI run in these tests, generous for a busy machine. */
const RUN_BOUND_MS = 120_000;

interface Serving {
  url: URL;
  child: ReadyChild;
  /** The lines printed after the first. */
  lines: string[];
}

/** Starts `cli.ts --serve 0 ...` and reads the URL it serves from its first line. */
async function startServe(args: string[]): Promise<Serving> {
  const lines: string[] = [];
  const child = await spawnReady(denoProgram(), {
    args: ["run", "-A", CLI, ...args],
    timeoutMs: 30_000,
    what: "wsconform --serve",
    onLine: (line) => lines.push(line),
  });
  const url = /at (wss?:\/\/\S+) /.exec(child.line)?.[1];
  if (!url) {
    await child.stop();
    throw new Error(`unexpected first line: ${child.line}`);
  }
  return { url: new URL(url), child, lines };
}

/** SIGTERM, by its PID; its exit code (SIGKILL after the grace period, as a last resort). */
async function stopServe(serving: Serving): Promise<number> {
  await serving.child.stop();
  return (await serving.child.status).code;
}

/** Runs a command to its end, bounded: its exit code and output. */
async function runCommand(program: string, args: string[]) {
  const child = new Deno.Command(program, { args, stdout: "piped", stderr: "piped" }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), RUN_BOUND_MS);
  try {
    const { code, stdout, stderr } = await child.output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return { code, stdout: decode(stdout), stderr: decode(stderr) };
  } finally {
    clearTimeout(timer);
  }
}

const readIndex = async (dir: string): Promise<IndexJson> =>
  JSON.parse(await Deno.readTextFile(`${dir}/index.json`));

/** Each case's pair of verdicts, "behavior/behaviorClose", by id. */
function verdicts(index: IndexJson, agent: string): Record<string, string> {
  return Object.fromEntries(
    Object.entries(index[agent] ?? {}).map(([id, e]) => [id, `${e.behavior}/${e.behaviorClose}`]),
  );
}

// ---- fuzzingserver.json -------------------------------------------------------

Deno.test("fuzzingserver.json: url, outdir and the case selection, unknown keys warned", () => {
  const text = JSON.stringify({
    url: "ws://127.0.0.1:9002",
    outdir: "./reports/clients",
    cases: ["1.*"],
    "exclude-cases": ["1.2.*"],
    "exclude-agent-cases": { "ws*": ["1.1.2"] },
    webport: 8080,
    options: { failByDrop: false },
  });
  assert.equal(isServerSpec(text), true);
  const { spec, warnings } = parseServerSpec(text, "spec fs.json");
  assert.equal(spec.url.href, "ws://127.0.0.1:9002/");
  assert.equal(specPort(spec.url), 9002);
  assert.equal(spec.outdir, "./reports/clients");
  assert.deepEqual(spec.cases, ["1.*"]);
  assert.deepEqual(spec.excludeCases, ["1.2.*"]);
  assert.deepEqual(spec.excludeAgentCases, { "ws*": ["1.1.2"] });
  assert.deepEqual(warnings, [
    'spec fs.json: unknown field "webport" ignored',
    'spec fs.json: "options" is not supported by wsconform and is ignored',
  ]);
});

Deno.test("fuzzingserver.json: defaults, ports by scheme, and what is not one", () => {
  const { spec, warnings } = parseServerSpec('{"url": "wss://localhost"}');
  assert.equal(spec.outdir, undefined);
  assert.deepEqual([spec.cases, spec.excludeCases, spec.excludeAgentCases], [["*"], [], {}]);
  assert.deepEqual(warnings, []);
  assert.equal(specPort(spec.url), 443);
  assert.equal(specPort(new URL("ws://127.0.0.1")), 80);
  assert.match(
    parseServerSpec('{"url": "ws://10.0.0.1:9001"}').warnings[0],
    /host 10\.0\.0\.1 ignored: wsconform listens on 127\.0\.0\.1 only/,
  );
  // A fuzzingclient.json, or no JSON, is not a server spec: it is read as a client spec.
  assert.equal(isServerSpec('{"servers": [], "url": "ws://x"}'), false);
  assert.equal(isServerSpec("{"), false);
  assert.throws(() => parseServerSpec("{}", "s"), new SpecError('s: "url" is missing'));
  assert.throws(
    () => parseServerSpec('{"url": "http://127.0.0.1:9001"}', "s"),
    (e) => e instanceof SpecError && /must start with ws:\/\/ or wss:\/\//.test(e.message),
  );
  assert.throws(
    () => parseServerSpec('{"url": "ws://127.0.0.1", "exclude-cases": "1.*"}', "s"),
    (e) => e instanceof SpecError && /"exclude-cases" must be a list of strings/.test(e.message),
  );
});

// ---- usage errors: one line, exit 2, before listening -------------------------

Deno.test("--serve: bad certificates, keys, ports and combinations are one line and exit 2", async () => {
  await withTempDir(async (dir) => {
    const { certFile } = await selfSigned(dir);
    await Deno.writeTextFile(`${dir}/not.pem`, "not a PEM file\n");
    const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const inUse = String((blocker.addr as Deno.NetAddr).port);
      const out = ["--out", `${dir}/out`];
      const rows: [string[], RegExp][] = [
        [["--cert", `${dir}/missing.pem`, "--key", `${dir}/key.pem`], /cannot read --cert /],
        [["--cert", `${dir}/not.pem`, "--key", `${dir}/key.pem`], /--cert .* is not PEM/],
        [["--cert", certFile, "--key", certFile], /--key .* is not PEM/],
        [["--cert", certFile], /--cert and --key go together/],
        [["ws://127.0.0.1:9001/"], /--serve tests the clients that connect: drop a URL/],
        [["--jobs", "4"], /drop --jobs/],
      ];
      for (const [args, message] of rows) {
        const run = await runCommand(denoProgram(), [
          "run",
          "-A",
          CLI,
          "--serve",
          "0",
          ...out,
          ...args,
        ]);
        assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
        assert.match(run.stderr, message);
        assert.equal(run.stdout, "", "nothing runs");
      }
      for (
        const [serve, message] of [["70000", /expected a port from 0 to 65535/], [
          inUse,
          /cannot listen/,
        ]]
      ) {
        const run = await runCommand(denoProgram(), [
          "run",
          "-A",
          CLI,
          "--serve",
          serve as string,
          ...out,
        ]);
        assert.equal(run.code, 2, run.stderr);
        assert.match(run.stderr, message as RegExp);
        assert.match(run.stderr, /^wsconform: [^\n]*\n(\(try --help\)\n)?$/);
      }
      const certWithoutServe = await runCommand(denoProgram(), [
        "run",
        "-A",
        CLI,
        "--cert",
        certFile,
        "--key",
        `${dir}/key.pem`,
      ]);
      assert.equal(certWithoutServe.code, 2);
      assert.match(
        certWithoutServe.stderr,
        /--cert and --key serve wss:\/\/ in client mode \(--client, --serve\)/,
      );
    } finally {
      blocker.close();
    }
  });
});

// ---- serving the strict client's driver ----------------------------------------

Deno.test("--serve: an Autobahn driver runs the cases; statuses, updateReports, SIGTERM (143)", async () => {
  await withTempDir(async (dir) => {
    const out = `${dir}/serve`;
    const serving = await startServe(["--serve", "0", "--cases", CASES.join(","), "--out", out]);
    try {
      const strict = await runAutobahnDriver(serving.url.href, {
        agent: "strict",
        timeoutMs: 30_000,
      });
      // Cases are numbered in Autobahn's order, and every status came from the case's result.
      assert.equal(strict.caseCount, CASES.length);
      assert.deepEqual(strict.cases.map((c) => c.behavior), CASES.map(() => "OK"));
      // updateReports wrote index.json with the agent's cases and the verdicts given as statuses.
      const updated = await readIndex(out);
      assert.deepEqual(Object.keys(updated.strict), CASES);
      for (const id of CASES) assert.equal(updated.strict[id].behavior, "OK");
      assert.ok((await Deno.stat(`${out}/index.html`)).isFile);

      // A second agent in the same session, with a flaw: the pings' cases fail.
      const flawed = await runAutobahnDriver(serving.url.href, {
        agent: "no pong",
        flaws: ["no-pong"],
        timeoutMs: 30_000,
      });
      const statuses = Object.fromEntries(
        flawed.cases.map((c) => [CASES[c.caseNumber - 1], c.behavior]),
      );
      assert.equal(statuses["2.1"], "FAILED");
      assert.equal(statuses["2.3"], "FAILED");
      assert.equal(statuses["1.1.1"], "OK");
      // One line per case as it finished.
      assert.ok(
        serving.lines.some((l) => /^ {2}2\.1 agent "no pong": FAILED\//.test(l)),
        serving.lines.join("\n"),
      );
    } finally {
      assert.equal(await stopServe(serving), 143);
    }
    // The stop wrote the reports of both agents.
    const index = await readIndex(out);
    assert.deepEqual(Object.keys(index).sort(), ["no pong", "strict"]);
    assert.equal(index["no pong"]["2.1"].behavior, "FAILED");
    assert.ok(
      serving.lines.some((l) => l === 'agent "strict": 10 cases, 0 failed'),
      serving.lines.join("\n"),
    );
    assert.ok(serving.lines.some((l) => /^agent "no pong": 10 cases, [1-9]\d* failed$/.test(l)));
    assert.ok((await Deno.stat(`${out}/index.html`)).isFile);

    // The same client spawned per case (--client "CMD {url}") gets the same verdicts.
    const spawned = await runCommand(denoProgram(), [
      "run",
      "-A",
      CLI,
      "--client",
      `${denoProgram()} run -A ${STRICT_CLIENT} {url}`,
      "--agent",
      "strict",
      "--cases",
      CASES.join(","),
      "--out",
      `${dir}/spawned`,
    ]);
    assert.equal(spawned.code, 0, spawned.stdout + spawned.stderr);
    assert.deepEqual(
      verdicts(await readIndex(`${dir}/spawned`), "strict"),
      verdicts(index, "strict"),
    );
  });
});

Deno.test("--serve --write-baseline, then --baseline: compared on stop, exit 0 or 1", async () => {
  await withTempDir(async (dir) => {
    const serveAndDrive = async (args: string[], agent: string, flaws: Flaw[] = []) => {
      const serving = await startServe([
        "--serve",
        "0",
        "--cases",
        CASES.join(","),
        "--out",
        `${dir}/out`,
        ...args,
      ]);
      let code;
      try {
        await runAutobahnDriver(serving.url.href, { agent, flaws, timeoutMs: 30_000 });
      } finally {
        code = await stopServe(serving);
      }
      return { code, output: serving.lines.join("\n") };
    };

    // Written per agent on /updateReports, before the driver goes on, and again on stop.
    const written = await serveAndDrive(["--write-baseline", `${dir}/{agent}.json`], "Strict 1");
    assert.equal(written.code, 143, written.output);
    assert.match(written.output, new RegExp(`baseline written: ${dir}/strict_1\\.json`));
    const baseline = JSON.parse(await Deno.readTextFile(`${dir}/strict_1.json`));
    assert.equal(baseline.agent, "Strict 1");
    assert.deepEqual(Object.keys(baseline.cases), CASES);
    assert.equal(baseline.cases["2.1"].behavior, "OK");

    // The same client compared with its baseline ("{agent}" finds it): nothing worse, exit 0.
    const same = await serveAndDrive(["--baseline", `${dir}/{agent}.json`], "Strict 1");
    assert.equal(same.code, 0, same.output);
    assert.match(same.output, /: 0 regressed, 0 improved, .* 10 unchanged/);
    assert.match(same.output, /^regressions: none$/m);

    // A client that no longer answers pings, compared with that file: its 2.x cases regress.
    // The file is rewritten on /updateReports; the stop still compares with what it held.
    const file = `${dir}/strict_1.json`;
    const worse = await serveAndDrive(
      ["--baseline", file, "--write-baseline", file, "--junit", `${dir}/junit.xml`],
      "no pong",
      ["no-pong"],
    );
    assert.equal(worse.code, 1, worse.output);
    assert.equal(JSON.parse(await Deno.readTextFile(file)).agent, "no pong");
    assert.match(worse.output, /recorded for agent "Strict 1": [1-9]\d* regressed/);
    assert.match(worse.output, /^ {2}2\.1 [^\n]*: OK\/OK -> FAILED\//m);
    assert.match(await Deno.readTextFile(`${dir}/junit.xml`), /<testsuite name="no pong"/);
  });
});

Deno.test("--spec fuzzingserver.json: its url's port, outdir, cases, exclusions; --junit", async () => {
  await withTempDir(async (dir) => {
    const specFile = `${dir}/fuzzingserver.json`;
    await Deno.writeTextFile(
      specFile,
      JSON.stringify({
        url: "ws://127.0.0.1:0",
        outdir: `${dir}/from-spec`,
        cases: ["1.1.*", "2.1"],
        "exclude-cases": ["1.1.8"],
        "exclude-agent-cases": { "skip*": ["1.1.2"] },
      }),
    );
    // No --serve: a spec with a "url" and no "servers" is Autobahn's fuzzingserver.json.
    const serving = await startServe(["--spec", specFile, "--junit", `${dir}/junit.xml`]);
    try {
      const skipper = await runAutobahnDriver(serving.url.href, {
        agent: "skipper",
        timeoutMs: 30_000,
      });
      assert.equal(skipper.caseCount, 8);
      // 1.1.2 is skipped for this agent: opened and closed at once, no result.
      assert.deepEqual(
        skipper.cases.map((c) => c.behavior),
        ["OK", undefined, "OK", "OK", "OK", "OK", "OK", "OK"],
      );
      assert.equal(skipper.cases[1].exitCode, 0);
      const other = await runAutobahnDriver(serving.url.href, {
        agent: "other",
        timeoutMs: 30_000,
      });
      assert.deepEqual(other.cases.map((c) => c.behavior), Array(8).fill("OK"));
      const index = await readIndex(`${dir}/from-spec`);
      assert.deepEqual(Object.keys(index.skipper), [
        "1.1.1",
        "1.1.3",
        "1.1.4",
        "1.1.5",
        "1.1.6",
        "1.1.7",
        "2.1",
      ]);
      assert.equal(Object.keys(index.other).length, 8);
      const junit = await Deno.readTextFile(`${dir}/junit.xml`);
      assert.match(junit, /<testsuite name="skipper"[^>]* tests="7"/);
      assert.match(junit, /<testsuite name="other"[^>]* tests="8"/);
    } finally {
      assert.equal(await stopServe(serving), 143);
    }
  });
});

Deno.test("--serve --cert --key: wss://, a client trusting the self-signed certificate", async () => {
  await withTempDir(async (dir) => {
    const { certFile } = await selfSigned(dir);
    // A driver on Deno's WebSocket, which trusts the certificate by --cert (Deno's own option).
    const driver = `${dir}/wss_driver.ts`;
    await Deno.writeTextFile(
      driver,
      `const base = Deno.args[0];
const session = (path: string, echo: boolean) =>
  new Promise<string[]>((resolve, reject) => {
    const ws = new WebSocket(new URL(path, base));
    ws.binaryType = "arraybuffer";
    const messages: string[] = [];
    const bound = setTimeout(() => reject(new Error(path + ": no close")), 30_000);
    ws.onmessage = (e) => echo ? ws.send(e.data) : messages.push(String(e.data));
    ws.onclose = () => (clearTimeout(bound), resolve(messages));
  });
const count = Number((await session("/getCaseCount", false))[0]);
for (let n = 1; n <= count; n++) {
  await session("/runCase?case=" + n + "&agent=deno-wss", true);
  console.log((await session("/getCaseStatus?case=" + n + "&agent=deno-wss", false))[0]);
}
await session("/updateReports?agent=deno-wss", false);
`,
    );
    const serving = await startServe([
      "--serve",
      "0",
      "--cert",
      certFile,
      "--key",
      `${dir}/key.pem`,
      "--cases",
      "1.1.1,1.2.1",
      "--out",
      `${dir}/out`,
    ]);
    try {
      assert.equal(serving.url.protocol, "wss:");
      const run = await runCommand(denoProgram(), [
        "run",
        "-A",
        "--cert",
        certFile,
        driver,
        serving.url.href,
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(run.stdout.trim().split("\n"), ['{"behavior": "OK"}', '{"behavior": "OK"}']);
      assert.deepEqual(Object.keys((await readIndex(`${dir}/out`))["deno-wss"]), [
        "1.1.1",
        "1.2.1",
      ]);
    } finally {
      assert.equal(await stopServe(serving), 143);
    }
  });
});
