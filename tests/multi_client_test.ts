/**
 * Several clients in one run (issue 10): `--client` with a comma list of
 * client names (chromium, firefox, webkit, deno: the embedded client) runs
 * each in turn into one report, a column per client, and exits as a --spec
 * run of several servers does. A list holds only known names; a command has a
 * space or {url}. A browser that cannot start is found before any client runs.
 *
 *   deno test --allow-all tests/multi_client_test.ts
 */
import assert from "node:assert/strict";
import { parseCli } from "../harness/cli.ts";
import { browserBinary } from "../harness/browser_driver.ts";
import type { IndexJson } from "../harness/report.ts";
import { exists, runCli, withTempDir } from "./support.ts";

async function readIndex(dir: string): Promise<IndexJson> {
  return JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
}

Deno.test("--client NAMES: a target per client, in order; a list has known names only, each once", () => {
  const options = parseCli(["--client", "chromium,firefox,webkit,deno"]);
  assert.ok(options !== "help");
  assert.equal(options.out, "reports/clients");
  assert.deepEqual(options.targets.map((t) => t.client?.browser?.kind ?? "deno"), [
    "chromium",
    "firefox",
    "webkit",
    "deno",
  ]);
  const deno = options.targets[3].client!;
  assert.equal(deno.command, undefined);
  assert.equal(deno.driver, undefined, "deno is the embedded client");
  for (const args of [["--client", "deno"], ["--client"]]) {
    const embedded = parseCli(args);
    assert.ok(embedded !== "help");
    assert.equal(embedded.targets.length, 1);
    assert.deepEqual(embedded.targets[0].client, { command: undefined, tls: undefined });
  }
  // A command has a space or {url}; anything else is a list.
  const command = parseCli(["--client", "deno run client.ts {url}"]);
  assert.ok(command !== "help");
  assert.equal(command.targets[0].client?.command, "deno run client.ts {url}");
  assert.throws(
    () => parseCli(["--client", "deno,chrome"]),
    /^Error: --client: "chrome" is not a client name \(chromium, firefox, webkit, deno\); the value has no \{url\}, so it is not a command either$/,
  );
  assert.throws(() => parseCli(["--client", "chromium,"]), /"" is not a client name/);
  assert.throws(
    () => parseCli(["--client", "deno,chromium,deno"]),
    /--client: deno is named twice/,
  );
});

Deno.test("--client NAMES: --agent, --browser and --cert fit one client; --write-baseline needs {agent}", () => {
  assert.throws(
    () => parseCli(["--client", "chromium,deno", "--agent", "x"]),
    /--agent names one client/,
  );
  assert.ok(parseCli(["--client", "deno", "--agent", "x"]) !== "help");
  assert.throws(
    () => parseCli(["--client", "chromium,firefox", "--browser", "/bin/true"]),
    /--browser PATH runs another binary of --client chromium, firefox or webkit/,
  );
  const one = parseCli(["--client", "deno,firefox", "--browser", "/opt/firefox"]);
  assert.ok(one !== "help");
  assert.deepEqual(one.targets[1].client?.browser, { kind: "firefox", binary: "/opt/firefox" });
  assert.throws(
    () => parseCli(["--client", "deno,webkit", "--cert", "c.pem", "--key", "k.pem"]),
    /--cert: webkit would not trust the certificate/,
  );
  assert.throws(
    () => parseCli(["--client", "chromium,deno", "--write-baseline", "b.json"]),
    /^Error: --write-baseline: this run tests 2 clients; put "\{agent\}" in the file name/,
  );
  const perAgent = parseCli(["--client", "chromium,deno", "--write-baseline", "b-{agent}.json"]);
  assert.ok(perAgent !== "help");
  assert.equal(perAgent.writeBaseline, "b-{agent}.json");
});

Deno.test("--client NAMES: a browser that cannot start is one line and exit 2, before any client runs", async () => {
  await withTempDir(async (dir) => {
    const run = await runCli([
      "--client",
      "deno,chromium",
      "--browser",
      `${dir}/no-such-chromium`,
      "--cases",
      "1.1.1",
      "--out",
      `${dir}/out`,
    ]);
    assert.equal(run.code, 2);
    assert.deepEqual(run.stderrCalls, [`wsconform: ${dir}/no-such-chromium does not exist`]);
    assert.equal(run.stdout, "", "deno did not run");
    assert.ok(!exists(`${dir}/out/index.json`));
  });
});

Deno.test("--client NAMES: a client that fails to start after another ran: exit 2, the other's column reported", async () => {
  await withTempDir(async (dir) => {
    // /bin/true is executable, so it passes the check before the run, and exits at its start.
    const run = await runCli([
      "--client",
      "deno,firefox",
      "--browser",
      "/bin/true",
      "--cases",
      "1.1.1,2.1",
      "--out",
      dir,
    ]);
    assert.equal(run.code, 2, run.stdout + run.stderr);
    assert.deepEqual(run.stderrCalls, [
      "wsconform: firefox (/bin/true) exited before its page was ready (code 0)",
    ]);
    assert.match(run.stdout, /^Deno\/\d+\.\d+\.\d+: 2 cases, 0 failed$/m);
    assert.match(run.stdout, /^1 of 2 clients could not be tested$/m);
    const index = await readIndex(dir);
    assert.deepEqual(Object.keys(index).map((a) => a.split("/")[0]), ["Deno"]);
  });
});

Deno.test({
  name:
    "--client chromium,deno: each client in turn, one report with a column each, exit 1 when one fails a case",
  ignore: browserBinary("chromium") === undefined,
  fn: async () => {
    await withTempDir(async (dir) => {
      // 8.1.6 (a masked frame from the server): Chromium fails the connection, Deno's client
      // echoes the masked bytes (README: Deno 2.9.6's client).
      const run = await runCli([
        "--client",
        "chromium,deno",
        "--cases",
        "1.1.1,2.1,8.1.6",
        "--out",
        dir,
        "--write-baseline",
        `${dir}/baseline-{agent}.json`,
      ]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const starts = [
        ...run.stdout.matchAll(
          /^wsconform: 3 cases for the client, served at \S+ \(agent "([^"]+)"\); the client started in \d+\.\d s$/gm,
        ),
      ].map((m) => m[1]);
      assert.equal(starts.length, 2, run.stdout);
      assert.match(starts[0], /^Chromium \d+/);
      assert.match(starts[1], /^Deno\/\d+\.\d+\.\d+$/);
      assert.match(run.stdout, new RegExp(`^${starts[0]}: 3 cases, 0 failed$`, "m"));
      assert.match(run.stdout, new RegExp(`^${starts[1]}: 3 cases, 1 failed$`, "m"));

      const index = await readIndex(dir);
      assert.deepEqual(Object.keys(index), starts);
      for (const agent of starts) {
        assert.deepEqual(Object.keys(index[agent]), ["1.1.1", "2.1", "8.1.6"], agent);
      }
      assert.equal(index[starts[0]]["8.1.6"].behavior, "OK");
      assert.equal(index[starts[1]]["8.1.6"].behavior, "FAILED");
      const html = await Deno.readTextFile(`${dir}/index.html`);
      const columns = [...html.matchAll(/<th scope="col" class="agent">(.*?)<\/th>/g)];
      assert.deepEqual(columns.map((m) => m[1]), starts);
      const baselines = [...Deno.readDirSync(dir)].map((e) => e.name)
        .filter((name) => name.startsWith("baseline-")).sort();
      assert.equal(baselines.length, 2, String(baselines));
    });
  },
});
