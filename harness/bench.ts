/**
 * `deno task bench`: runs the suite as users run it (the CLI, in a child
 * process) and prints wall time, case count and peak RSS.
 *
 *   1. the 301 Autobahn cases against the embedded Deno server (goal: <= 5 s, <= 256 MB);
 *   2. every case against the embedded Deno server;
 *   3. a full run against a server that accepts TCP and never answers the
 *      handshake (goal: <= 60 s). Skip it with --quick.
 */
import { parseArgs } from "node:util";
import { AUTOBAHN_GROUP_IDS } from "../fixtures/mod.ts";

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
  cases: number;
  harnessPeakRss: number;
  serverPeakRss: number;
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
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  let harnessPeakRss = 0, serverPeakRss = 0;
  // VmHWM is the kernel's own high-water mark; sampling only keeps the latest value.
  const sampler = setInterval(() => {
    harnessPeakRss = Math.max(harnessPeakRss, peakRss(child.pid));
    for (const pid of childrenOf(child.pid)) serverPeakRss = Math.max(serverPeakRss, peakRss(pid));
  }, 20);
  const status = await child.status;
  clearInterval(sampler);
  const wallSeconds = (performance.now() - started) / 1000;
  let cases = 0;
  try {
    const index = JSON.parse(await Deno.readTextFile(`${out}/index.json`));
    for (const agent of Object.values(index)) cases += Object.keys(agent as object).length;
  } finally {
    await Deno.remove(out, { recursive: true });
  }
  return { wallSeconds, cases, harnessPeakRss, serverPeakRss, exitCode: status.code };
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

const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MB`;

function print(title: string, f: Figures): void {
  console.log(title);
  console.log(`  wall time         ${f.wallSeconds.toFixed(2)} s`);
  console.log(`  cases             ${f.cases}`);
  console.log(`  peak RSS, suite   ${mb(f.harnessPeakRss)}`);
  if (f.serverPeakRss) {
    console.log(`  peak RSS, server  ${mb(f.serverPeakRss)} (the Deno server's own process)`);
  }
  console.log(`  exit code         ${f.exitCode}`);
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { quick: { type: "boolean" } } });
  console.log(
    `wsconform bench on ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}\n`,
  );
  print(
    "the 301 Autobahn cases against the embedded Deno server (goal: <= 5 s, <= 256 MB)",
    await runSuite(["--cases", AUTOBAHN_GROUP_IDS.join(",")]),
  );
  print("\nevery case against the embedded Deno server", await runSuite([]));
  if (!values.quick) {
    const silent = silentServer();
    try {
      print(
        "\nfull run against a server that never answers the handshake (goal: <= 60 s)",
        await runSuite([silent.url]),
      );
    } finally {
      silent.close();
    }
  }
}
