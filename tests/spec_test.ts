import { runCli } from "./support.ts";
/**
 * --spec: Autobahn's fuzzingclient.json, parsed (harness/spec.ts) and run
 * through the command line against two strict servers, one of them flawed.
 */

import assert from "node:assert/strict";
import { ALL_CASES } from "../fixtures/mod.ts";
import { caseReportName, type IndexJson } from "../harness/report.ts";
import {
  DEFAULT_OUTDIR,
  globMatches,
  parseSpec,
  selectionFor,
  SpecError,
} from "../harness/spec.ts";
import { startStrictServer } from "./peers/strict_server.ts";

Deno.test("spec: Autobahn's own example parses without warnings", () => {
  const { spec, warnings } = parseSpec(JSON.stringify({
    options: {},
    outdir: "./reports/servers",
    servers: [{ agent: "AutobahnServer", url: "ws://127.0.0.1:9001", options: { version: 18 } }],
    cases: ["*"],
    "exclude-cases": ["9.*", "12.*", "13.*"],
    "exclude-agent-cases": {},
  }));
  assert.deepEqual(warnings, []);
  assert.equal(spec.outdir, "./reports/servers");
  assert.equal(spec.servers.length, 1);
  assert.equal(spec.servers[0].agent, "AutobahnServer");
  assert.equal(spec.servers[0].url.href, "ws://127.0.0.1:9001/");
  assert.deepEqual(spec.cases, ["*"]);
  assert.deepEqual(spec.excludeCases, ["9.*", "12.*", "13.*"]);
});

Deno.test("spec: defaults, and the agent is optional", () => {
  const { spec, warnings } = parseSpec(`{"servers": [{"url": "wss://example.com/x"}]}`);
  assert.deepEqual(warnings, []);
  assert.equal(spec.outdir, DEFAULT_OUTDIR);
  assert.equal(spec.servers[0].agent, undefined);
  assert.deepEqual(spec.cases, ["*"]);
  assert.deepEqual(spec.excludeCases, []);
  assert.deepEqual(spec.excludeAgentCases, {});
});

Deno.test("spec: unknown or unsupported fields are ignored with a warning", () => {
  const { spec, warnings } = parseSpec(
    JSON.stringify({
      servers: [{ url: "ws://h/", agent: "A", color: "red", options: { version: 8, x: 1 } }],
      options: { failByDrop: false },
      extra: true,
    }),
    "spec f.json",
  );
  assert.equal(spec.servers[0].agent, "A");
  assert.deepEqual(warnings, [
    `spec f.json: unknown field "extra" ignored`,
    `spec f.json: "options" is not supported by wsconform and is ignored`,
    `spec f.json: servers[0]: unknown field "color" ignored`,
    "spec f.json: servers[0]: options.version 8 ignored: wsconform speaks RFC 6455 " +
    "(Autobahn's version 18) only",
    `spec f.json: servers[0]: option "x" is not supported and is ignored`,
  ]);
});

Deno.test("spec: structural problems are errors", () => {
  const bad: [string, RegExp][] = [
    ["{", /not valid JSON/],
    ["[]", /expected a JSON object/],
    ["{}", /"servers" is missing/],
    [`{"servers": []}`, /"servers" must be a non-empty list/],
    [`{"servers": {}}`, /"servers" must be a non-empty list/],
    [`{"servers": [1]}`, /servers\[0\] must be an object/],
    [`{"servers": [{}]}`, /servers\[0\]: "url" is missing/],
    [`{"servers": [{"url": "http://h/"}]}`, /servers\[0\]: the URL must start with ws/],
    [`{"servers": [{"url": "ws://h/#x"}]}`, /#fragment/],
    [`{"servers": [{"url": "nope"}]}`, /not a URL/],
    [`{"servers": [{"url": "ws://h/", "agent": ""}]}`, /"agent" must be a non-empty string/],
    [
      `{"servers": [{"url": "ws://h/", "agent": "a"}, {"url": "ws://i/", "agent": "a"}]}`,
      /servers\[1\]: agent "a" appears twice/,
    ],
    [`{"servers": [{"url": "ws://h/", "options": 18}]}`, /"options" must be an object/],
    [`{"servers": [{"url": "ws://h/"}], "cases": "*"}`, /"cases" must be a list of strings/],
    [`{"servers": [{"url": "ws://h/"}], "exclude-cases": [1]}`, /"exclude-cases" must be a list/],
    [`{"servers": [{"url": "ws://h/"}], "exclude-agent-cases": []}`, /"exclude-agent-cases"/],
    [
      `{"servers": [{"url": "ws://h/"}], "exclude-agent-cases": {"a": "1"}}`,
      /"exclude-agent-cases"/,
    ],
    [`{"servers": [{"url": "ws://h/"}], "outdir": 3}`, /"outdir" must be a non-empty string/],
  ];
  for (const [text, message] of bad) {
    assert.throws(() => parseSpec(text, "spec s.json"), (err: Error) => {
      assert.ok(err instanceof SpecError, text);
      assert.match(err.message, /^spec s\.json: /, text);
      assert.match(err.message, message, text);
      return true;
    });
  }
});

Deno.test("spec: agent globs pick the agent's exclusions", () => {
  assert.ok(globMatches("Auto*", "AutobahnServer"));
  assert.ok(globMatches("A?to*", "AutobahnServer"));
  assert.ok(globMatches("*", ""));
  assert.ok(!globMatches("auto*", "AutobahnServer"), "case-sensitive, as fnmatch on Linux");
  assert.ok(globMatches("a.b", "a.b") && !globMatches("a.b", "axb"), "a dot is a dot");
  const { spec } = parseSpec(JSON.stringify({
    servers: [{ url: "ws://h/" }],
    cases: ["1.*", "2.*"],
    "exclude-cases": ["2.1"],
    "exclude-agent-cases": { "Good*": ["2.2"], "*Server": ["2.3"], "Other": ["2.4"] },
  }));
  assert.deepEqual(selectionFor(spec, "GoodServer"), {
    include: ["1.*", "2.*"],
    exclude: ["2.1", "2.2", "2.3"],
  });
  assert.deepEqual(selectionFor(spec, "Other"), {
    include: ["1.*", "2.*"],
    exclude: ["2.1", "2.4"],
  });
});

// --- through the command line -------------------------------------------------

function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

const ids = (pred: (id: string) => boolean) => ALL_CASES.map((c) => c.id).filter(pred);

Deno.test("spec: --spec runs each server in turn into the spec's outdir", async (t) => {
  const good = startStrictServer();
  const flawed = startStrictServer({ flaws: ["no-pong"] });
  const dir = await Deno.makeTempDir({ prefix: "wsconform_spec_test_" });
  const outdir = `${dir}/reports/servers`;
  const specFile = `${dir}/fuzzingclient.json`;
  await Deno.writeTextFile(
    specFile,
    JSON.stringify({
      outdir,
      servers: [
        { agent: "Good", url: good.url, options: { version: 18 } },
        { agent: "NoPong/1.0", url: flawed.url, options: { version: 18 } },
      ],
      cases: ["1.1.1", "2.*"],
      // 15 and 16 are no groups of wsconform's (Autobahn's 12 and 13 are, since permessage-deflate).
      "exclude-cases": ["2.11", "15.*", "16.*"],
      "exclude-agent-cases": { "NoPong*": ["2.10"] },
      "mystery": 1,
    }),
  );
  try {
    let run = { code: -1, stdout: "", stderr: "" };
    await t.step("exit 1: the flawed server fails", async () => {
      run = await runCli(["--spec", specFile, "--junit", `${dir}/junit.xml`]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
    });

    await t.step("warnings for the unknown field and patterns matching nothing", () => {
      const warnings = run.stderr.split("\n");
      assert.deepEqual(warnings, [
        `wsconform: warning: spec ${specFile}: unknown field "mystery" ignored`,
        `wsconform: warning: spec ${specFile}: "15.*" matches no wsconform case (ignored)`,
        `wsconform: warning: spec ${specFile}: "16.*" matches no wsconform case (ignored)`,
      ]);
    });

    await t.step("index.json holds both agents, each with its own selection", async () => {
      const index: IndexJson = JSON.parse(await Deno.readTextFile(`${outdir}/index.json`));
      assert.deepEqual(Object.keys(index).sort(), ["Good", "NoPong/1.0"]);
      const good = ids((id) => id === "1.1.1" || (id.startsWith("2.") && id !== "2.11"));
      assert.deepEqual(Object.keys(index.Good), good);
      assert.deepEqual(Object.keys(index["NoPong/1.0"]), good.filter((id) => id !== "2.10"));
      assert.ok(Object.values(index.Good).every((e) => e.behavior === "OK"));
      assert.equal(index["NoPong/1.0"]["2.1"].behavior, "FAILED");
      await Deno.stat(`${outdir}/${caseReportName("NoPong/1.0", "2.1")}`);
      await Deno.stat(`${outdir}/${caseReportName("Good", "1.1.1")}`);
    });

    await t.step("the output names both runs, then the totals and paths", () => {
      assert.match(run.stdout, /^wsconform: 11 cases against ws:\/\/.* \(agent "Good"\)\n/);
      assert.match(
        run.stdout,
        /\nwsconform: 10 cases against ws:\/\/.* \(agent "NoPong\/1\.0"\)\n/,
      );
      assert.match(run.stdout, /\nGood: 11 cases, 0 failed\nNoPong\/1\.0: 10 cases, 6 failed\n/);
      assert.ok(
        run.stdout.endsWith(
          `\nreport: ${outdir}/index.html\n        ${outdir}/index.json\njunit:  ${dir}/junit.xml\n`,
        ),
        run.stdout,
      );
    });

    await t.step("the JUnit file has a testsuite per server", async () => {
      const xml = await Deno.readTextFile(`${dir}/junit.xml`);
      assert.match(xml, /<testsuite name="Good" tests="11" failures="0" /);
      assert.match(xml, /<testsuite name="NoPong\/1\.0" tests="10" failures="6" /);
      assert.equal(xml.match(/<testcase /g)?.length, 21);
    });

    await t.step("--out overrides the outdir; --write-baseline per agent", async () => {
      const out = `${dir}/elsewhere`;
      const result = await runCli([
        "--spec",
        specFile,
        "--out",
        out,
        "--write-baseline",
        `${dir}/base/{agent}.json`,
      ]);
      assert.equal(result.code, 1);
      const index: IndexJson = JSON.parse(await Deno.readTextFile(`${out}/index.json`));
      assert.deepEqual(Object.keys(index).sort(), ["Good", "NoPong/1.0"]);
      const good = JSON.parse(await Deno.readTextFile(`${dir}/base/good.json`));
      const noPong = JSON.parse(await Deno.readTextFile(`${dir}/base/nopong_1_0.json`));
      assert.equal(good.agent, "Good");
      assert.equal(noPong.agent, "NoPong/1.0");
      // Each server against its own baseline: nothing got worse.
      const again = await runCli([
        "--spec",
        specFile,
        "--out",
        out,
        "--baseline",
        `${dir}/base/{agent}.json`,
      ]);
      assert.equal(again.code, 0, again.stdout);
      assert.match(again.stdout, /\nNoPong\/1\.0: 10 cases, 6 failed, 0 regressed\n/);
    });

    await t.step("several servers need {agent} in --write-baseline", async () => {
      const result = await runCli(["--spec", specFile, "--write-baseline", `${dir}/one.json`]);
      assert.equal(result.code, 2);
      assert.equal(result.stdout, "");
      assert.match(result.stderr, /--write-baseline: this run tests 2 servers; put "\{agent\}"/);
    });
  } finally {
    await good.close();
    await flawed.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("spec: an unreachable server exits 2, after the others ran", async () => {
  const good = startStrictServer();
  const dir = await Deno.makeTempDir({ prefix: "wsconform_spec_test_" });
  const specFile = `${dir}/spec.json`;
  const dead = `ws://127.0.0.1:${closedPort()}/`;
  await Deno.writeTextFile(
    specFile,
    JSON.stringify({
      outdir: `${dir}/out`,
      servers: [{ agent: "Dead", url: dead }, { url: good.url }],
      cases: ["1.1.1"],
    }),
  );
  try {
    const result = await runCli(["--spec", specFile]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^wsconform: cannot reach ws:\/\/127\.0\.0\.1:\d+\/: /);
    // The second server has no agent in the spec: its Server header names it.
    const index: IndexJson = JSON.parse(await Deno.readTextFile(`${dir}/out/index.json`));
    assert.deepEqual(Object.keys(index), ["wsconform-strict"]);
    assert.match(result.stdout, /\n1 of 2 servers could not be tested\n/);
  } finally {
    await good.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("spec: bad spec files and clashing options exit 2 with one clear line", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "wsconform_spec_test_" });
  const write = async (name: string, text: string) => {
    await Deno.writeTextFile(`${dir}/${name}`, text);
    return `${dir}/${name}`;
  };
  const expectUsage = (result: { code: number; stdout: string; stderr: string }, re: RegExp) => {
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stdout, "");
    const [first, ...rest] = result.stderr.split("\n");
    assert.match(first, /^wsconform: /);
    assert.match(first, re);
    assert.deepEqual(rest, ["(try --help)"]);
  };
  try {
    await t.step("invalid JSON", async () => {
      const file = await write("broken.json", `{"servers": [`);
      expectUsage(await runCli(["--spec", file]), /spec .*broken\.json: not valid JSON/);
    });
    await t.step("no servers", async () => {
      const file = await write("empty.json", `{"cases": ["*"]}`);
      expectUsage(await runCli(["--spec", file]), /spec .*empty\.json: "servers" is missing/);
    });
    await t.step("a missing file", async () => {
      expectUsage(await runCli(["--spec", `${dir}/none.json`]), /cannot read --spec .*none\.json/);
    });
    await t.step("with a URL, --cases, --agent", async () => {
      const file = await write("ok.json", `{"servers": [{"url": "ws://127.0.0.1:1/"}]}`);
      expectUsage(
        await runCli(["--spec", file, "ws://127.0.0.1:1/", "--cases", "1.*", "--agent", "x"]),
        /--spec names the servers, agents and cases itself: drop a URL, --cases, --agent/,
      );
    });
    await t.step("a selection that leaves nothing", async () => {
      const file = await write(
        "none.json",
        JSON.stringify({
          servers: [{ agent: "A", url: "ws://127.0.0.1:1/" }],
          cases: ["2.*"],
          "exclude-agent-cases": { "A": ["2.*"] },
        }),
      );
      expectUsage(
        await runCli(["--spec", file]),
        /servers\[0\] \(agent "A"\): the selection leaves no case to run/,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("spec: a server's protocols and origin, as Autobahn's client sends them", async (t) => {
  await t.step("parsed without warnings; wrong types are errors", () => {
    const { spec, warnings } = parseSpec(JSON.stringify({
      servers: [{
        url: "ws://h/",
        protocols: ["lws-mirror-protocol"],
        origin: "https://app.example",
      }],
    }));
    assert.deepEqual(warnings, []);
    assert.deepEqual(spec.servers[0].protocols, ["lws-mirror-protocol"]);
    assert.equal(spec.servers[0].origin, "https://app.example");
    for (
      const [server, message] of [
        [{ url: "ws://h/", protocols: "chat" }, /servers\[0\]: "protocols" must be a list/],
        [{ url: "ws://h/", protocols: [1] }, /"protocols" must be a list of subprotocol names/],
        [{ url: "ws://h/", origin: 1 }, /servers\[0\]: "origin" must be a string/],
      ] as const
    ) {
      assert.throws(() => parseSpec(JSON.stringify({ servers: [server] })), message);
    }
  });

  // A server that serves only its own subprotocol: the spec's offer decides the handshake.
  const server = startStrictServer({ protocols: ["lws-mirror-protocol"], requireProtocol: true });
  const dir = await Deno.makeTempDir({ prefix: "wsconform_spec_test_" });
  const specFile = `${dir}/fuzzingclient.json`;
  await Deno.writeTextFile(
    specFile,
    JSON.stringify({
      outdir: dir,
      servers: [
        {
          agent: "Offered",
          url: server.url,
          protocols: ["lws-mirror-protocol"],
          origin: "https://app.example",
        },
        { agent: "Bare", url: server.url },
      ],
      cases: ["1.1.1"],
    }),
  );
  const request = async (agent: string) =>
    JSON.parse(await Deno.readTextFile(`${dir}/${caseReportName(agent, "1.1.1")}`)).httpRequest;
  try {
    await t.step("each server's handshakes carry its own; one without gets none", async () => {
      const run = await runCli(["--spec", specFile]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.equal(run.stderr, "");
      const index: IndexJson = JSON.parse(await Deno.readTextFile(`${dir}/index.json`));
      assert.equal(index.Offered["1.1.1"].behavior, "OK");
      assert.equal(index.Bare["1.1.1"].behavior, "FAILED");
      const offered = await request("Offered");
      assert.match(offered, /\r\nSec-WebSocket-Protocol: lws-mirror-protocol\r\n/);
      assert.match(offered, /\r\nOrigin: https:\/\/app\.example\r\n/);
      assert.doesNotMatch(await request("Bare"), /Sec-WebSocket-Protocol|Origin/);
    });
    await t.step("--protocol and --origin on the command line win", async () => {
      const run = await runCli([
        ...["--spec", specFile, "--protocol", "x-other", "--origin", "https://cli.example"],
      ]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const offered = await request("Offered");
      assert.match(offered, /\r\nSec-WebSocket-Protocol: x-other\r\n/);
      assert.match(offered, /\r\nOrigin: https:\/\/cli\.example\r\n/);
    });
    await t.step("a bad name or origin in the spec exits 2 with one line", async () => {
      const bad = `${dir}/bad.json`;
      await Deno.writeTextFile(
        bad,
        JSON.stringify({ servers: [{ url: server.url, protocols: ["a b"] }] }),
      );
      const run = await runCli(["--spec", bad]);
      assert.equal(run.code, 2);
      assert.match(
        run.stderr,
        /^wsconform: spec .*bad\.json: servers\[0\]: "protocols" "a b": a subprotocol name is an HTTP token/,
      );
    });
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
