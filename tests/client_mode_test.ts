/**
 * Client mode (issue 9): the suite is the server and tests a client. Which
 * cases run against clients is stated in the case data (each group's `peers`).
 *
 *   deno test --allow-all tests/client_mode_test.ts
 */
import assert from "node:assert/strict";
import { AUTOBAHN_CASES, AUTOBAHN_GROUP_IDS, CLIENT_CASES, GROUPS } from "../fixtures/mod.ts";
import { compareIds } from "../harness/case.ts";
import { startCaseServer } from "../harness/case_server.ts";
import { parseCli } from "../harness/cli.ts";
import { type ClientDriver, embeddedClient } from "../harness/client_driver.ts";
import type { IndexJson } from "../harness/report.ts";
import { type CaseRun, runClientCase } from "../harness/session.ts";
import { runSuite } from "../harness/suite.ts";
import { isFailing, judgeCase, type Verdict } from "../harness/verdict.ts";
import type { Flaw } from "./peers/strict_client.ts";
import { againstStrictClient, runCli, selfSigned, withTempDir } from "./support.ts";

Deno.test("client mode: Autobahn's 517 cases, and the client-side cases of groups 0, 8, 11 and 14", () => {
  const inGroup = (id: string) => CLIENT_CASES.filter((c) => c.id.split(".")[0] === id);
  const autobahn = AUTOBAHN_GROUP_IDS.flatMap(inGroup);
  assert.deepEqual(autobahn.map((c) => c.id), AUTOBAHN_CASES.map((c) => c.id));
  // Group 0: the client's request (0.7), answers it must refuse (0.8) and accept (0.9).
  assert.equal(inGroup("0").length, 33);
  const others = ["8", "11", "14"].flatMap(inGroup);
  assert.equal(CLIENT_CASES.length, 517 + 33 + others.length);
  // Every group runs against servers.
  for (const group of GROUPS) assert.ok(group.peers.includes("server"), group.id);
});

// ---- the session in the server role, against the strict client ---------------------

/** A few cases of each kind: echoes (one chopped), pings, RSV, opcodes, UTF-8, close. */
const SAMPLE = ["1.1.1", "1.2.8", "2.1", "2.10", "3.1", "4.1.1", "5.6", "6.3.1", "7.1.1", "7.3.1"];

const passes = (v: Verdict) => !isFailing(v);

Deno.test("client mode: the suite as the server passes the strict client, frames unmasked, closing TCP first", async () => {
  const results = await againstStrictClient(SAMPLE);
  for (const [id, { run, verdict }] of results) {
    assert.ok(
      passes(verdict),
      `${id}: ${verdict.behavior}/${verdict.behaviorClose} ${verdict.result}`,
    );
    assert.equal(run.suiteRole, "server");
    assert.deepEqual(run.violations, [], id);
    // §5.1: a server never masks; the request got a 101 with no problem found in it.
    const sent = run.wire.entries.filter((e) => e.kind === "frame" && e.dir === "tx");
    assert.ok(sent.length > 0 && sent.every((e) => e.kind === "frame" && !e.masked), id);
    assert.match(run.http.response ?? "", /^HTTP\/1\.1 101 /, id);
    assert.deepEqual(run.handshake.problems, [], id);
    // §7.1.1: after a clean closing handshake, the server closes TCP first.
    if (run.close.wasClean) assert.ok(run.close.droppedBySuite, id);
  }
  // Where the client has to fail the connection, it did, and the case passed.
  assert.equal(results.get("3.1")!.client.exitCode, 1);
  assert.equal(results.get("1.1.1")!.client.exitCode, 0);
});

Deno.test("client mode: closing TCP first is the client's right (§7.1.1 MAY): every case still passes", async () => {
  const legal = await againstStrictClient(SAMPLE, { flaws: ["close-tcp-first"] });
  for (const [id, { verdict }] of legal) {
    assert.ok(passes(verdict), `${id}: ${verdict.behavior}/${verdict.behaviorClose}`);
  }
});

/** Each flaw of what a client sends, the violation it must give, and the cases it shows in. */
const OUTPUT_FLAWS: [Flaw, string, string[]][] = [
  ["unmasked", "unmasked", SAMPLE],
  ["zero-mask-key", "mask-key-zero", SAMPLE],
  // Two frames in a row are needed: the echo and the close reply.
  ["repeated-mask-key", "mask-key-repeated", ["1.1.1", "1.2.8"]],
  ["non-minimal-length", "length-form", SAMPLE],
  ["rsv1", "rsv", SAMPLE],
  ["data-after-close", "data-after-close", ["1.1.1", "7.1.1"]],
];

for (const [flaw, rule, ids] of OUTPUT_FLAWS) {
  Deno.test(`client mode: a client breaking a rule in what it sends fails (${flaw})`, async () => {
    for (const [id, { run, verdict }] of await againstStrictClient(ids, { flaws: [flaw] })) {
      assert.equal(verdict.behavior, "FAILED", `${id}: ${verdict.result}`);
      assert.ok(run.violations.some((v) => v.rule === rule && v.level === "must"), id);
    }
  });
}

Deno.test("client mode: a client that answers no ping fails the ping cases, and only those", async () => {
  const results = await againstStrictClient(SAMPLE, { flaws: ["no-pong"] });
  const failed = [...results].filter(([, r]) => !passes(r.verdict)).map(([id]) => id);
  assert.deepEqual(failed, ["2.1", "2.10", "5.6"]);
});

Deno.test("client mode: a client accepting invalid UTF-8 fails the UTF-8 case, and only it", async () => {
  const results = await againstStrictClient(SAMPLE, { flaws: ["accept-invalid-utf8"] });
  const failed = [...results].filter(([, r]) => !passes(r.verdict)).map(([id]) => id);
  assert.deepEqual(failed, ["6.3.1"]);
});

// ---- client mode end to end: runSuite and the CLI ---------------------------------------

const STRICT_CLIENT = "deno run -A tests/peers/strict_client.ts {url}";

async function readIndex(dir: string): Promise<IndexJson> {
  return JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
}

Deno.test("client mode: --client CMD runs every client case against the strict client, every one passing", async () => {
  await withTempDir(async (dir) => {
    const run = await runCli(["--client", STRICT_CLIENT, "--out", dir, "--junit", `${dir}/j.xml`]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(
      run.stdout,
      new RegExp(
        `${CLIENT_CASES.length} cases for the client, served at ws://127\\.0\\.0\\.1:\\d+/ \\(agent "deno"\\)`,
      ),
    );
    const results = (await readIndex(dir))["deno"];
    // A command is not told the subprotocols a case asks it to offer: offering none, it did
    // not try that case (0.8.17), which is not run.
    const untried = CLIENT_CASES.filter((c) => c.clientHandshake?.offerProtocols);
    assert.equal(Object.keys(results).length, CLIENT_CASES.length - untried.length);
    assert.match(run.stdout, /cases not run \(the client offered no subprotocol where asked/);
    for (const [id, r] of Object.entries(results)) {
      assert.ok(!isFailing(r), `${id}: ${r.behavior}/${r.behaviorClose}`);
    }
    assert.ok((await Deno.stat(`${dir}/index.html`)).isFile);
    assert.match(await Deno.readTextFile(`${dir}/j.xml`), /<testsuite /);
  });
});

/** Flaws of the strict client, each over the cases of its rule: exactly these fail. */
const FLAW_RUNS: { flaw: Flaw; cases: string; failing: string[] }[] = [
  {
    flaw: "no-pong",
    cases: "2",
    failing: ["2.1", "2.2", "2.3", "2.4", "2.6", "2.9", "2.10", "2.11"],
  },
  {
    flaw: "unmasked",
    cases: "1.1",
    failing: CLIENT_CASES.map((c) => c.id).filter((id) => id.startsWith("1.1.")),
  },
  { flaw: "accept-invalid-utf8", cases: "6.3", failing: ["6.3.1", "6.3.2"] },
];

for (const { flaw, cases, failing } of FLAW_RUNS) {
  Deno.test(`client mode: --client with the strict client's flaw ${flaw} fails exactly its cases`, async () => {
    await withTempDir(async (dir) => {
      const command = `${STRICT_CLIENT} --flaw ${flaw}`;
      const run = await runCli(["--client", command, "--cases", cases, "--out", dir]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const results = (await readIndex(dir))["deno"];
      const failed = Object.entries(results).filter(([, r]) => isFailing(r)).map(([id]) => id);
      assert.deepEqual(failed.sort(compareIds), failing);
    });
  });
}

Deno.test("client mode: --client runs every client case against Deno's own WebSocket", async () => {
  await withTempDir(async (dir) => {
    const run = await runCli(["--client", "--out", dir]);
    // Deno's client breaks a MUST in 7.3.6 (README: Deno 2.9.6's client).
    assert.equal(run.code, 1, run.stdout + run.stderr);
    const index = await readIndex(dir);
    const [agent] = Object.keys(index);
    assert.match(agent, /^Deno\/\d+\.\d+\.\d+$/);
    assert.equal(Object.keys(index[agent]).length, CLIENT_CASES.length);
  });
});

Deno.test("client mode: a command that cannot start, or has no {url}, is one line and exit 2", async () => {
  const missing = await runCli(["--client", "wsconform-no-such-client {url}"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^wsconform: .*wsconform-no-such-client.*not on PATH$/);
  const noUrl = await runCli(["--client", "deno run client.ts"]);
  assert.equal(noUrl.code, 2);
  assert.match(noUrl.stderr, /^wsconform: --client: the client command has no \{url\}/);
});

Deno.test("client mode: the CLI's defaults and clashes", () => {
  const options = parseCli(["--client"]);
  assert.ok(options !== "help");
  assert.equal(options.out, "reports/clients");
  assert.equal(options.targets[0].client?.command, undefined);
  assert.equal(options.targets[0].select("x").length, CLIENT_CASES.length);
  assert.throws(() => parseCli(["--client", "--cases", "8.1.1"]), /no case matches "8\.1\.1"/);
  assert.throws(() => parseCli(["--client", "ws://127.0.0.1:1/"]), /no \{url\}/);
  assert.throws(
    () => parseCli(["--client", STRICT_CLIENT, "--protocol-only"]),
    /drop --protocol-only/,
  );
});

// ---- client mode over wss:// (--cert, --key) ----------------------------------------------

/** A few cases over wss://: an echo, a ping, a close. */
const WSS_CASES = ["1.1.1", "2.1", "7.1.1"];

/**
 * Runs WSS_CASES one after the other on a wss:// case server with a
 * self-signed certificate, each against a connection of the embedded client
 * started with `trust` (or none): each case's URL and verdict.
 */
async function embeddedOverWss(
  trust: "trusted" | "untrusted",
): Promise<{ url: URL; verdict: Verdict; run: CaseRun }[]> {
  const results: { url: URL; verdict: Verdict; run: CaseRun }[] = [];
  await withTempDir(async (dir) => {
    const { cert, key } = await selfSigned(dir);
    const cases = CLIENT_CASES.filter((c) => WSS_CASES.includes(c.id));
    const server = startCaseServer({ cases, tls: { cert, key } });
    let driver: ClientDriver | undefined;
    try {
      driver = embeddedClient(trust === "trusted" ? { trustedCert: cert } : {});
      await driver.start();
      for (const spec of cases) {
        const expected = server.expect(spec.id, driver.agent!, 15_000);
        const client = driver.connect(expected.url);
        // A client that cannot connect (an untrusted certificate) ends its case at once.
        const connection = Promise.race([
          expected.connection.then((c) => c ?? { missing: "no client came" }),
          client.done.then(() => ({ missing: "the client ended before it connected" })),
        ]);
        const run = await runClientCase(spec, { url: server.url, connection });
        expected.end();
        await client.stop();
        results.push({ url: expected.url, verdict: judgeCase(spec, run).verdict, run });
      }
    } finally {
      await driver?.stop();
      await server.close();
    }
  });
  return results;
}

Deno.test("client mode over wss://: the embedded client trusts the suite's certificate and passes", async () => {
  const results = await embeddedOverWss("trusted");
  assert.deepEqual(results.map((r) => r.run.spec.id), WSS_CASES);
  for (const { url, verdict, run } of results) {
    assert.equal(url.protocol, "wss:");
    assert.match(url.href, /^wss:\/\/127\.0\.0\.1:\d+\/runCase\?casetuple=/);
    assert.deepEqual([verdict.behavior, verdict.behaviorClose], ["OK", "OK"], run.spec.id);
    assert.match(run.http.response ?? "", /^HTTP\/1\.1 101 /);
  }
});

Deno.test("client mode over wss://: without the certificate, the embedded client cannot connect", async () => {
  for (const { verdict, run } of await embeddedOverWss("untrusted")) {
    assert.equal(verdict.behavior, "FAILED", run.spec.id);
    assert.equal(run.http.response, undefined, run.spec.id);
  }
});

/** Runs WSS_CASES through the CLI over wss:// (`client`: --client's words) and checks each is OK/OK. */
async function wssCliRun(dir: string, client: string[], certFile: string): Promise<void> {
  const run = await runCli([
    ...client,
    "--cert",
    certFile,
    "--key",
    `${dir}/key.pem`,
    "--cases",
    WSS_CASES.join(","),
    "--out",
    `${dir}/out`,
  ]);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /served at wss:\/\/127\.0\.0\.1:/);
  const [results] = Object.values(await readIndex(`${dir}/out`));
  assert.deepEqual(
    Object.entries(results).map(([id, r]) => `${id} ${r.behavior}/${r.behaviorClose}`),
    WSS_CASES.map((id) => `${id} OK/OK`),
  );
}

Deno.test("client mode over wss://: --client --cert --key makes the embedded client trust it", async () => {
  await withTempDir(async (dir) => {
    const { certFile } = await selfSigned(dir);
    await wssCliRun(dir, ["--client"], certFile);
  });
});

Deno.test("client mode over wss://: --client CMD gets a wss:// {url} per case", async () => {
  await withTempDir(async (dir) => {
    const { certFile } = await selfSigned(dir);
    // An echo client on Deno's WebSocket, trusting the certificate (Deno's own --cert), that
    // notes each URL it was given.
    const client = `${dir}/echo_client.ts`;
    await Deno.writeTextFile(
      client,
      `await Deno.writeTextFile(${
        JSON.stringify(`${dir}/urls`)
      }, Deno.args[0] + "\\n", { append: true });
const ws = new WebSocket(Deno.args[0]);
ws.binaryType = "arraybuffer";
ws.onmessage = (e) => ws.send(e.data);
`,
    );
    await wssCliRun(dir, ["--client", `deno run -A --cert ${certFile} ${client} {url}`], certFile);
    const urls = (await Deno.readTextFile(`${dir}/urls`)).trim().split("\n").sort();
    // Each case's URL, and maybe a probe's before the cases (a case's URL again).
    assert.deepEqual(
      [...new Set(urls.map((u) => new URL(u).searchParams.get("casetuple")))],
      WSS_CASES,
    );
    for (const url of urls) assert.match(url, /^wss:\/\/127\.0\.0\.1:\d+\/runCase\?/);
  });
});

Deno.test("client mode: a case whose URL the client could not even try is not run, with the reason", async () => {
  // Deno's client, except that it refuses the URL of 2.1 as a browser refuses one: its
  // WebSocket cannot be created, so the case never reaches the wire.
  const embedded = embeddedClient();
  const refusing: ClientDriver = {
    get agent() {
      return embedded.agent;
    },
    start: () => embedded.start(),
    stop: () => embedded.stop(),
    connect(url, options) {
      if (url.searchParams.get("casetuple") !== "2.1") return embedded.connect(url, options);
      const exit = {
        kind: "websocket" as const,
        events: [{ type: "failed" as const, message: "SyntaxError: the URL is refused" }],
        stopped: false,
      };
      return { done: Promise.resolve(exit), stop: () => Promise.resolve(exit) };
    },
  };
  const cases = CLIENT_CASES.filter((c) => ["1.1.1", "2.1", "2.2"].includes(c.id));
  const result = await runSuite({ client: { driver: refusing }, cases });
  assert.deepEqual(result.outcomes.map((o) => `${o.spec.id} ${o.verdict.behavior}`).sort(), [
    "1.1.1 OK",
    "2.2 OK",
  ]);
  const untried = result.notRun.find((n) => n.why === "client-never-tried");
  assert.deepEqual(untried?.cases.map((c) => c.id), ["2.1"]);
  assert.match(untried!.reason, /could not try their URL: SyntaxError: the URL is refused/);
  assert.equal(result.notRun.length, 1, "nothing else is not run");
});

Deno.test("client mode: the driver's own jobs apply when the run does not set --jobs", async () => {
  /** Deno's client, saying it runs `jobs` cases well at once; counts the connections at once. */
  const counting = (jobs: number) => {
    const embedded = embeddedClient();
    let running = 0;
    const driver = {
      jobs,
      most: 0,
      get agent() {
        return embedded.agent;
      },
      start: () => embedded.start(),
      stop: () => embedded.stop(),
      connect(url: URL) {
        const connection = embedded.connect(url);
        driver.most = Math.max(driver.most, ++running);
        connection.done.then(() => running--);
        return connection;
      },
    };
    return driver;
  };
  const cases = CLIENT_CASES.filter((c) => c.id.startsWith("1.1."));
  const alone = counting(1);
  await runSuite({ client: { driver: alone }, cases });
  assert.equal(alone.most, 1, "one case at a time, as the driver asks");
  const told = counting(1);
  await runSuite({ client: { driver: told }, cases, jobs: 8 });
  assert.ok(told.most > 1, `--jobs wins over the driver's (${told.most} at once)`);
});
