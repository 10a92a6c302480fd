/**
 * Command line: `deno task test [ws-url] [options]`.
 * Exit codes: 0 no case failed, 1 some case failed, 2 bad usage or unreachable target.
 */
import { parseArgs } from "node:util";
import type { CaseSpec } from "./case.ts";
import { ALL_CASES, groupOf, GROUPS } from "../fixtures/mod.ts";
import { spawnReference } from "./reference_server.ts";
import { compareIds, writeCaseReport, writeIndex } from "./report.ts";
import { type CaseOutcome, runCases } from "./runner.ts";
import { runCase, type SessionOptions } from "./session.ts";
import { connectRaw } from "./transport.ts";
import { isFailing } from "./verdict.ts";

export const USAGE = `wsconform: WebSocket (RFC 6455) server conformance suite

Usage: deno task test [ws-url] [options]

With no URL, tests the embedded reference server (Deno.serve + Deno.upgradeWebSocket).

Options:
  --cases LIST     only these cases: comma-separated ids or globs (1.1.1, 6.4.*, 9.*)
  --exclude LIST   skip these cases (same syntax)
  --agent NAME     the name used in the report (default: the Server header, else host:port)
  --jobs N         cases run in parallel, each on its own connection (default 32)
  --out DIR        report directory (default reports/servers)
  --ca FILE        PEM certificate(s) to trust for a wss:// target (a private CA)
  --help           this text

Exit status: 0 no case failed, 1 some case failed, 2 bad usage or unreachable target.`;

export class UsageError extends Error {}

export interface CliOptions {
  url?: URL;
  cases: readonly CaseSpec[];
  agent?: string;
  jobs: number;
  out: string;
  caCerts?: string[];
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*");
  return new RegExp(`^${body}$`);
}

/** Selects cases by comma-separated ids or globs; a pattern matching nothing is an error. */
export function selectCases(
  all: readonly CaseSpec[],
  include?: string,
  exclude?: string,
): CaseSpec[] {
  const patterns = (list: string) =>
    list.split(",").map((p) => p.trim()).filter(Boolean).map((p) => {
      const re = globToRegExp(p);
      // "6" or "6.4" selects the whole group, as "6.*" does.
      const prefix = p.includes("*") ? undefined : globToRegExp(`${p}.*`);
      const test = (id: string) => re.test(id) || (prefix?.test(id) ?? false);
      if (!all.some((c) => test(c.id))) throw new UsageError(`no case matches "${p}"`);
      return test;
    });
  const inc = include ? patterns(include) : undefined;
  const exc = exclude ? patterns(exclude) : [];
  const chosen = all.filter((c) => (!inc || inc.some((t) => t(c.id))) && !exc.some((t) => t(c.id)));
  if (chosen.length === 0) throw new UsageError("the selection leaves no case to run");
  return chosen;
}

export function parseCli(args: string[]): CliOptions | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        cases: { type: "string" },
        exclude: { type: "string" },
        agent: { type: "string" },
        jobs: { type: "string" },
        out: { type: "string" },
        ca: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return "help";
  if (positionals.length > 1) {
    throw new UsageError(`expected one URL, got: ${positionals.join(" ")}`);
  }
  let url: URL | undefined;
  if (positionals.length === 1) {
    try {
      url = new URL(positionals[0]);
    } catch {
      throw new UsageError(`not a URL: ${positionals[0]}`);
    }
    if (url.protocol !== "ws:" && url.protocol !== "wss:") {
      throw new UsageError(`the URL must start with ws:// or wss://, got ${url.protocol}//`);
    }
    if (url.hash) throw new UsageError("a WebSocket URL must not have a #fragment (RFC 6455 §3)");
  }
  const jobs = values.jobs === undefined ? 32 : Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 1024) {
    throw new UsageError(`--jobs must be an integer from 1 to 1024, got ${values.jobs}`);
  }
  if (values.agent !== undefined && values.agent.trim() === "") {
    throw new UsageError("--agent must not be empty");
  }
  let caCerts: string[] | undefined;
  if (values.ca !== undefined) {
    if (url?.protocol !== "wss:") throw new UsageError("--ca only applies to a wss:// URL");
    try {
      caCerts = [Deno.readTextFileSync(values.ca)];
    } catch (e) {
      throw new UsageError(`cannot read --ca ${values.ca}: ${(e as Error).message}`);
    }
  }
  return {
    url,
    cases: selectCases(ALL_CASES, values.cases, values.exclude),
    agent: values.agent,
    jobs,
    out: values.out ?? "reports/servers",
    caCerts,
  };
}

/**
 * Checks that the target can be reached at all (a clear exit 2 within seconds
 * beats 301 failed cases), and learns its Server header for the agent name.
 */
async function probe(url: URL, options: SessionOptions): Promise<string | undefined> {
  const conn = await connectRaw({ url, caCerts: options.caCerts, timeoutMs: 4000 });
  conn.close();
  const run = await runCase({
    id: "probe",
    title: "Opening handshake probe",
    rfc: "4.1",
    requirement: "The server completes the opening handshake.",
    steps: [{ close: { code: 1000 } }],
    expect: { ok: [], close: { by: "suite", codes: [1000], clean: false } },
    timeout: 6,
  }, options);
  return run.serverHeader;
}

function summarize(runs: readonly CaseOutcome[]): string {
  const lines: string[] = [];
  const pad = (s: string | number, n: number) => String(s).padEnd(n);
  lines.push(
    `${pad("group", 44)}${pad("cases", 7)}${pad("ok", 6)}${pad("non-strict", 12)}${
      pad("info", 6)
    }failed`,
  );
  let failed = 0;
  for (const group of GROUPS) {
    const mine = runs.filter((r) => groupOf(r.spec.id) === group);
    if (mine.length === 0) continue;
    const count = (b: string) => mine.filter((r) => r.verdict.behavior === b).length;
    const bad = mine.filter((r) => isFailing(r.verdict)).length;
    failed += bad;
    const okCount = mine.filter((r) => !isFailing(r.verdict) && r.verdict.behavior === "OK").length;
    lines.push(
      `${pad(`${group.id} ${group.title}`, 44)}${pad(mine.length, 7)}${pad(okCount, 6)}${
        pad(count("NON-STRICT"), 12)
      }${pad(count("INFORMATIONAL"), 6)}${bad}`,
    );
  }
  lines.push(`${runs.length} cases, ${failed} failed`);
  return lines.join("\n");
}

export async function main(args: string[]): Promise<number> {
  let options: CliOptions | "help";
  try {
    options = parseCli(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`wsconform: ${e.message}\n(try --help)`);
    return 2;
  }
  if (options === "help") {
    console.log(USAGE);
    return 0;
  }
  let embedded;
  if (!options.url) {
    try {
      embedded = await spawnReference();
    } catch (e) {
      console.error(
        `wsconform: cannot start the embedded reference server: ${(e as Error).message}`,
      );
      return 2;
    }
  }
  try {
    const url = options.url ?? new URL(embedded!.url);
    const session: SessionOptions = { url, caCerts: options.caCerts, userAgent: "wsconform" };
    let serverHeader: string | undefined;
    try {
      serverHeader = await probe(url, session);
    } catch (e) {
      console.error(`wsconform: cannot reach ${url.href}: ${(e as Error).message}`);
      return 2;
    }
    const agent = options.agent ?? embedded?.agent ?? serverHeader ?? url.host;
    console.log(`wsconform: ${options.cases.length} cases against ${url.href} (agent "${agent}")`);
    const started = performance.now();
    const remaining = new Map<string, number>();
    for (const c of options.cases) {
      const g = groupOf(c.id)!.id;
      remaining.set(g, (remaining.get(g) ?? 0) + 1);
    }
    const runs = await runCases(options.cases, {
      ...session,
      jobs: options.jobs,
      onCaseDone: async (run) => {
        await writeCaseReport(options.out, agent, run);
        const group = groupOf(run.spec.id)!;
        const left = remaining.get(group.id)! - 1;
        remaining.set(group.id, left);
        if (left === 0) console.log(`  group ${group.id} (${group.title}) done`);
      },
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const index = await writeIndex(options.out, agent, runs);
    console.log(`\n${summarize(runs)} in ${seconds} s`);
    const failures = runs.filter((r) => isFailing(r.verdict)).sort((a, b) =>
      compareIds(a.spec.id, b.spec.id)
    );
    for (const r of failures.slice(0, 20)) {
      console.log(
        `  FAILED ${r.spec.id} ${r.spec.title}: ${r.verdict.behavior}/${r.verdict.behaviorClose}`,
      );
    }
    if (failures.length > 20) console.log(`  … and ${failures.length - 20} more`);
    console.log(`report: ${index}`);
    return failures.length > 0 ? 1 : 0;
  } finally {
    await embedded?.close();
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
