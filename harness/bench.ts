/**
 * `deno task bench`: runs the suite as users run it (the CLI, in a child
 * process) and prints wall time, case count and peak RSS.
 *
 *   1. the 301 Autobahn cases against the embedded Deno server (goal: <= 5 s, <= 256 MB);
 *   2. every case against the embedded Deno server;
 *   2b. permessage-deflate: the 216 compression cases (groups 12 and 13) against the strict
 *      server with deflate on (goal: <= 10 s, <= 256 MB), and Autobahn's 517 cases against
 *      node's ws with deflate when WS_PEER_DIR names it (goal: <= 60 s);
 *   3. client mode: the 301 Autobahn cases against Deno's own WebSocket (goal: <= 6 s),
 *      and again without 9.7.6 and 9.8.6, which time Deno's client itself; against a client hanging at each stage (tests/peers/hanging_client.ts: it
 *      never connects, sends no request, never echoes, never closes; goal: <= 60 s
 *      each, skipped by --quick); every client case against Chromium (goal: <= 30 s
 *      wall), its start-up (until its page is ready) printed apart from the cases;
 *   4. full runs against targets that make cases wait (goal: <= 60 s each): a
 *      server that accepts TCP and never answers the handshake, a valid server
 *      that echoes nothing, one that echoes only text, and one that floods
 *      pings (100k/s). Skip them with --quick.
 *
 * `--runs N` runs each N times and prints the median and every figure: on a
 * shared 2-core machine one run says little. The time the CLI reports for
 * the cases themselves is printed too; the rest of the wall time is start-up
 * (the embedded server, the echo probe) and writing the reports.
 */
import { parseArgs } from "node:util";
import { AUTOBAHN_GROUP_IDS, GROUPS } from "../fixtures/mod.ts";
import { browserBinary } from "./browser_driver.ts";
import { startHostilePeer } from "../tests/hostile_peers.ts";
import { startStrictServer } from "../tests/peers/strict_server.ts";
import { startWsEcho, wsPeerDir } from "../tests/peers/ws_echo.ts";

/** Autobahn's groups without permessage-deflate: its 301 cases of RFC 6455 alone. */
const AUTOBAHN_PLAIN_GROUPS = AUTOBAHN_GROUP_IDS.filter((id) =>
  !GROUPS.find((g) => g.id === id)?.cases.some((c) => c.deflate)
).join(",");
/** Autobahn's permessage-deflate groups (12 and 13). */
const AUTOBAHN_DEFLATE_GROUPS = AUTOBAHN_GROUP_IDS.filter((id) =>
  GROUPS.find((g) => g.id === id)?.cases.some((c) => c.deflate)
).join(",");

const CLI = new URL("./cli.ts", import.meta.url).pathname;
const V8_FLAGS = "--v8-flags=--max-semi-space-size=2";

function peakRss(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0; // the process is gone
  }
}

function childrenOf(pid: number): number[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/)
      .filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

interface Figures {
  wallSeconds: number;
  /** The time of the cases, from the CLI's summary line ("301 cases, 0 failed in 4.7 s"). */
  caseSeconds?: number;
  /** The client's start-up, from the CLI's first line ("the client started in 1.2 s"). */
  clientStartSeconds?: number;
  cases: number;
  harnessPeakRss: number;
  /** The embedded peer (Deno's server or client), or a spawned client. */
  childPeakRss: number;
  exitCode: number;
}

async function runSuite(args: string[]): Promise<Figures> {
  const out = await Deno.makeTempDir({ prefix: "wsconform-bench-" });
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      V8_FLAGS,
      CLI,
      ...args,
      "--out",
      out,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let harnessPeakRss = 0, childPeakRss = 0;
  // VmHWM is the kernel's own high-water mark; sampling only keeps the latest value.
  const sampler = setInterval(() => {
    harnessPeakRss = Math.max(harnessPeakRss, peakRss(child.pid));
    for (const pid of childrenOf(child.pid)) childPeakRss = Math.max(childPeakRss, peakRss(pid));
  }, 20);
  const { code, stdout } = await child.output();
  clearInterval(sampler);
  const wallSeconds = (performance.now() - started) / 1000;
  const output = new TextDecoder().decode(stdout);
  const summary = / cases, \d+ failed.* in ([\d.]+) s$/m.exec(output);
  const startUp = /; the client started in ([\d.]+) s$/m.exec(output);
  let cases = 0;
  try {
    const index = JSON.parse(await Deno.readTextFile(`${out}/index.json`));
    for (const agent of Object.values(index)) cases += Object.keys(agent as object).length;
  } catch (e) {
    // A run that stopped before any case (exit 2: a client that never connected) writes none.
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  } finally {
    await Deno.remove(out, { recursive: true });
  }
  return {
    wallSeconds,
    caseSeconds: summary ? Number(summary[1]) : undefined,
    clientStartSeconds: startUp ? Number(startUp[1]) : undefined,
    cases,
    harnessPeakRss,
    childPeakRss,
    exitCode: code,
  };
}

/** A server that accepts TCP and never answers. */
function silentServer(): { url: string; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      conn.readable.pipeTo(new WritableStream()).catch(() => {});
    }
  })().catch(() => {});
  return {
    url: `ws://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/`,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

const seconds = (n: number) => `${n.toFixed(2)} s`;
const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MB`;

/** The median, then every value in order when there are several. */
function figure(values: number[], format: (n: number) => string): string {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return sorted.length === 1
    ? format(median)
    : `${format(median)}  (median of ${sorted.length}: ${sorted.map(format).join(", ")})`;
}

async function bench(title: string, args: string[], runs: number): Promise<void> {
  const figures: Figures[] = [];
  for (let i = 0; i < runs; i++) figures.push(await runSuite(args));
  const all = (key: keyof Figures) => figures.map((f) => f[key]).filter((x) => x !== undefined);
  console.log(title);
  console.log(`  wall time              ${figure(all("wallSeconds"), seconds)}`);
  if (all("clientStartSeconds").length) {
    console.log(
      `  the client's start-up  ${figure(all("clientStartSeconds"), (n) => `${n.toFixed(1)} s`)}`,
    );
  }
  if (all("caseSeconds").length) {
    console.log(
      `  the cases              ${figure(all("caseSeconds"), (n) => `${n.toFixed(1)} s`)}`,
    );
  }
  console.log(`  cases                  ${[...new Set(all("cases"))].join(", ")}`);
  console.log(`  peak RSS, suite        ${figure(all("harnessPeakRss"), mb)}`);
  if (all("childPeakRss").some(Boolean)) {
    console.log(`  peak RSS, its child    ${figure(all("childPeakRss"), mb)}`);
  }
  console.log(`  exit code              ${[...new Set(all("exitCode"))].join(", ")}`);
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { quick: { type: "boolean" }, runs: { type: "string", default: "1" } },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    console.error("bench: --runs takes a whole number of runs, at least 1");
    Deno.exit(2);
  }
  console.log(
    `wsconform bench on ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}\n`,
  );
  await bench(
    "the 301 Autobahn cases against the embedded Deno server (goal: <= 5 s, <= 256 MB)",
    ["--cases", AUTOBAHN_PLAIN_GROUPS],
    runs,
  );
  await bench("\nevery case against the embedded Deno server", [], runs);
  const deflating = startStrictServer({ deflate: true });
  try {
    await bench(
      `\nthe 216 compression cases (${AUTOBAHN_DEFLATE_GROUPS}) against the strict server with ` +
        "permessage-deflate (goal: <= 10 s, <= 256 MB)",
      [deflating.url, "--cases", AUTOBAHN_DEFLATE_GROUPS],
      runs,
    );
  } finally {
    await deflating.close();
  }
  if (wsPeerDir()) {
    const ws = await startWsEcho({ deflate: true });
    try {
      await bench(
        "\nAutobahn's 517 cases against node's ws 8.23.0 with permessage-deflate (goal: <= 60 s)",
        [ws.url, "--cases", AUTOBAHN_GROUP_IDS.join(",")],
        runs,
      );
    } finally {
      await ws.close();
    }
  }
  await bench(
    "\nthe 301 Autobahn cases against Deno's own WebSocket as the client (goal: <= 6 s, <= 256 MB)",
    ["--client", "--cases", AUTOBAHN_PLAIN_GROUPS],
    runs,
  );
  // 9.7.6 and 9.8.6 time Deno's client itself: it writes a 4 KiB frame's header and payload in
  // two segments without TCP_NODELAY, so each of their 2000 echoes waits for a delayed ACK (40 ms).
  await bench(
    "\nthe same without 9.7.6 and 9.8.6 (the suite's own share of that run)",
    ["--client", "--cases", AUTOBAHN_PLAIN_GROUPS, "--exclude", "9.7.6,9.8.6"],
    runs,
  );
  if (browserBinary("chromium")) {
    await bench(
      "\nevery client case against Chromium (goal: <= 30 s wall)",
      ["--client", "chromium"],
      runs,
    );
  }
  if (!values.quick) {
    const hangingClient = new URL("../tests/peers/hanging_client.ts", import.meta.url).pathname;
    const hangingStages: [stage: string, title: string][] = [
      ["never", "never connects"],
      ["silent", "connects TCP and never sends its request"],
      ["no-echo", "completes the handshake and never reads nor echoes"],
      ["no-close", "echoes and never answers a close nor closes TCP"],
    ];
    for (const [stage, title] of hangingStages) {
      await bench(
        `\nthe client cases against a client that ${title} (goal: <= 60 s)`,
        ["--client", `deno run --allow-net ${hangingClient} {url} --stage ${stage}`],
        runs,
      );
    }
    const slowTargets: [title: string, start: () => { url: string; close(): unknown }][] = [
      ["a server that never answers the handshake", silentServer],
      ["a valid server that echoes nothing", () => startStrictServer({ echo: "none" })],
      ["a valid server that echoes only text", () => startStrictServer({ echo: "text" })],
      ["a server flooding pings (100k/s)", () => startHostilePeer("ping-flood")],
    ];
    for (const [title, start] of slowTargets) {
      const target = start();
      try {
        await bench(`\nfull run against ${title} (goal: <= 60 s)`, [target.url], runs);
      } finally {
        await target.close();
      }
    }
  }
}
