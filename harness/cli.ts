/**
 * Command line: `deno task test [ws-url] [options]`.
 * Exit codes: 0 no case failed, 1 some case failed (or, with --baseline, some
 * case regressed), 2 bad usage or unreachable target.
 */
import { parseArgs } from "node:util";
import type { CaseSpec } from "./case.ts";
import { ALL_CASES } from "../fixtures/mod.ts";
import {
  type Baseline,
  BaselineError,
  baselinePath,
  type CaseChange,
  compareToBaseline,
  makeBaseline,
  parseBaseline,
  readBaseline,
  writeBaseline,
} from "./baseline.ts";
import { type CaseEvents, eventsOf, type JunitSuite, writeJunit } from "./junit.ts";
import { failing, formatSeconds, Progress, sanitize, summaryTable } from "./progress.ts";
import { spawnReference } from "./reference_server.ts";
import { writeHtmlReports } from "./html.ts";
import { compareIds, writeCaseReport, writeIndex } from "./report.ts";
import { type CaseOutcome, runCases } from "./runner.ts";
import { runCase, type SessionOptions } from "./session.ts";
import {
  DEFAULT_OUTDIR,
  globToRegExp,
  parseSpec,
  parseWsUrl,
  selectionFor,
  SpecError,
  specPatterns,
} from "./spec.ts";
import { connectRaw } from "./transport.ts";
import type { Behavior, CloseBehavior } from "./verdict.ts";

export const USAGE = `wsconform: WebSocket (RFC 6455) server conformance suite

Usage: deno task test [ws-url] [options]
       deno task test --spec fuzzingclient.json [options]

With no URL, tests the embedded reference server (Deno.serve + Deno.upgradeWebSocket).

Options:
  --cases LIST          only these cases: comma-separated ids or globs (1.1.1, 6.4.*, 9.*)
  --exclude LIST        skip these cases (same syntax)
  --agent NAME          the name used in the report (default: the Server header, else host:port)
  --jobs N              cases run in parallel, each on its own connection (default 32)
  --out DIR             report directory (default reports/servers; overrides a spec's outdir)
  --ca FILE             PEM certificate(s) to trust for a wss:// target (a private CA)
  --strict              NON-STRICT counts as a failure (exit status, summary, JUnit)
  --junit FILE          also write JUnit XML: one testcase per case run
  --write-baseline FILE write this run's verdicts to FILE
  --baseline FILE       compare with the verdicts in FILE: exit 1 only for a case that got
                        worse (a verdict newly failing, or a failing case not in FILE)
  --spec FILE           run an Autobahn fuzzingclient.json: its servers in turn, with their
                        agent names, cases, exclude-cases and exclude-agent-cases, into its
                        outdir (cannot be combined with a URL, --cases, --exclude, --agent)
  --protocol-only       run only the cases whose verdict does not depend on an echo, for a
                        server that does not echo messages back: the cases that need one are
                        not run (not in the report, <skipped/> in JUnit, never a regression)
  --help                this text

In --baseline and --write-baseline, "{agent}" in FILE stands for the agent's name in file-name
form; a --spec run of several servers needs it in --write-baseline.

Most cases judge the server by the echo of what the suite sent. Before the run, the suite sends
the target one text message: when it is not echoed within 1 s, a warning says that the cases
that need an echo will fail, and that --protocol-only runs only the others.

Exit status: 0 no case failed, 1 some case failed (with --baseline: some case got worse),
2 bad usage or unreachable target.`;

export class UsageError extends Error {}

/** One server to test. */
export interface Target {
  /** Absent: the embedded reference server. */
  url?: URL;
  /** Absent: the Server header, else host:port. */
  agent?: string;
  /** The cases to run once the agent name is known. */
  select: (agent: string) => CaseSpec[];
  /** Where the target came from, for messages ("servers[1] of spec.json"). */
  origin?: string;
}

export interface CliOptions {
  targets: Target[];
  jobs: number;
  out: string;
  caCerts?: string[];
  strict: boolean;
  junit?: string;
  /** A path, possibly with "{agent}". */
  baseline?: string;
  /** The baseline, when its path has no "{agent}" (read before anything runs). */
  baselineData?: Baseline;
  writeBaseline?: string;
  spec?: string;
  /** Things ignored in the spec file, to print on stderr. */
  warnings: string[];
  /** Run only the cases that do not need an echo (--protocol-only). */
  protocolOnly: boolean;
}

/** Why --protocol-only leaves a case out, as the summary and JUnit say it. */
export const NOT_RUN_REASON = "need an echo; --protocol-only";

/**
 * Whether a case's verdict depends on the server echoing what the suite sent:
 * its expectation (OK or NON-STRICT) lists a message, or it runs round trips.
 */
export function needsEcho(spec: CaseSpec): boolean {
  const { ok, nonStrict = [] } = spec.expect;
  return [...ok, ...nonStrict].some((e) => "message" in e) ||
    spec.steps.some((step) => "roundTrips" in step);
}

const NONE_LEFT = "--protocol-only: every selected case needs an echo, so none is left to run";

/** A case pattern as a test on ids: an id, a glob, or a prefix (`6`, `6.4`) meaning `6.*`. */
function casePattern(pattern: string): (id: string) => boolean {
  const re = globToRegExp(pattern);
  const prefix = /[*?]/.test(pattern) ? undefined : globToRegExp(`${pattern}.*`);
  return (id) => re.test(id) || (prefix?.test(id) ?? false);
}

/**
 * Selects cases by ids or globs (a comma-separated string, or a list); `6` or
 * `6.4` means the whole group, as `6.*` does. A pattern matching no case is an
 * error, unless `onUnmatched` takes it (a spec file naming Autobahn's groups
 * 12 and 13, which wsconform does not have).
 */
export function selectCases(
  all: readonly CaseSpec[],
  include?: string | readonly string[],
  exclude?: string | readonly string[],
  onUnmatched?: (pattern: string) => void,
): CaseSpec[] {
  const patterns = (list: string | readonly string[]) =>
    (typeof list === "string" ? list.split(",") : list).map((p) => p.trim()).filter(Boolean)
      .flatMap((p) => {
        const test = casePattern(p);
        if (!all.some((c) => test(c.id))) {
          if (!onUnmatched) throw new UsageError(`no case matches "${p}"`);
          onUnmatched(p);
          return [];
        }
        return [test];
      });
  const inc = include === undefined ? undefined : patterns(include);
  const exc = exclude === undefined ? [] : patterns(exclude);
  const chosen = all.filter((c) => (!inc || inc.some((t) => t(c.id))) && !exc.some((t) => t(c.id)));
  if (chosen.length === 0) throw new UsageError("the selection leaves no case to run");
  return chosen;
}

function readSpecTargets(path: string): { out: string; targets: Target[]; warnings: string[] } {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new UsageError(`cannot read --spec ${path}: ${(e as Error).message}`);
  }
  let parsed;
  try {
    parsed = parseSpec(text, `spec ${path}`);
  } catch (e) {
    if (e instanceof SpecError) throw new UsageError(e.message);
    throw e;
  }
  const { spec } = parsed;
  const warnings = [...parsed.warnings];
  for (const p of specPatterns(spec)) {
    const test = casePattern(p);
    if (!ALL_CASES.some((c) => test(c.id))) {
      warnings.push(`spec ${path}: "${p}" matches no wsconform case (ignored)`);
    }
  }
  const targets = spec.servers.map((server, i): Target => {
    const origin = `spec ${path}: servers[${i}]`;
    const select = (agent: string) => {
      const { include, exclude } = selectionFor(spec, agent);
      try {
        return selectCases(ALL_CASES, include, exclude, () => {});
      } catch (e) {
        if (!(e instanceof UsageError)) throw e;
        throw new UsageError(`${origin} (agent "${agent}"): ${e.message}`);
      }
    };
    // With the agent known, a selection that leaves nothing is reported before any run.
    if (server.agent !== undefined) select(server.agent);
    return { url: server.url, agent: server.agent, select, origin };
  });
  return { out: spec.outdir, targets, warnings };
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
        strict: { type: "boolean" },
        junit: { type: "string" },
        baseline: { type: "string" },
        "write-baseline": { type: "string" },
        spec: { type: "string" },
        "protocol-only": { type: "boolean" },
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
  for (const name of ["junit", "baseline", "write-baseline", "spec", "out"] as const) {
    if (values[name] !== undefined && values[name].trim() === "") {
      throw new UsageError(`--${name} needs a file name`);
    }
  }
  let url: URL | undefined;
  if (positionals.length === 1) {
    const checked = parseWsUrl(positionals[0]);
    if (typeof checked === "string") throw new UsageError(checked);
    url = checked;
  }
  const jobs = values.jobs === undefined ? 32 : Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 1024) {
    throw new UsageError(`--jobs must be an integer from 1 to 1024, got ${values.jobs}`);
  }
  if (values.agent !== undefined && values.agent.trim() === "") {
    throw new UsageError("--agent must not be empty");
  }

  let targets: Target[];
  let out = values.out ?? DEFAULT_OUTDIR;
  let warnings: string[] = [];
  if (values.spec !== undefined) {
    const clashing = [
      ...(url ? ["a URL"] : []),
      ...(["cases", "exclude", "agent"] as const).filter((n) => values[n] !== undefined)
        .map((n) => `--${n}`),
    ];
    if (clashing.length > 0) {
      throw new UsageError(
        `--spec names the servers, agents and cases itself: drop ${clashing.join(", ")}`,
      );
    }
    const spec = readSpecTargets(values.spec);
    targets = spec.targets;
    warnings = spec.warnings;
    out = values.out ?? spec.out;
  } else {
    const cases = selectCases(ALL_CASES, values.cases, values.exclude);
    targets = [{ url, agent: values.agent, select: () => cases }];
  }
  const protocolOnly = values["protocol-only"] ?? false;
  if (protocolOnly) {
    // Known before any run: a selection left empty is a usage error at once.
    for (const target of targets) {
      if (target.agent === undefined && values.spec !== undefined) continue;
      if (target.select(target.agent ?? "").every(needsEcho)) {
        throw new UsageError(target.origin ? `${target.origin}: ${NONE_LEFT}` : NONE_LEFT);
      }
    }
  }

  let caCerts: string[] | undefined;
  if (values.ca !== undefined) {
    if (!targets.some((t) => t.url?.protocol === "wss:")) {
      throw new UsageError("--ca only applies to a wss:// URL");
    }
    try {
      caCerts = [Deno.readTextFileSync(values.ca)];
    } catch (e) {
      throw new UsageError(`cannot read --ca ${values.ca}: ${(e as Error).message}`);
    }
  }

  const writeBaselineTo = values["write-baseline"];
  if (writeBaselineTo !== undefined && targets.length > 1 && !writeBaselineTo.includes("{agent}")) {
    throw new UsageError(
      `--write-baseline: this run tests ${targets.length} servers; put "{agent}" in the file ` +
        `name so each gets its own baseline`,
    );
  }
  let baselineData: Baseline | undefined;
  if (values.baseline !== undefined && !values.baseline.includes("{agent}")) {
    // Read now: a missing or broken baseline is a usage error, before any case runs.
    try {
      baselineData = parseBaseline(
        Deno.readTextFileSync(values.baseline),
        `baseline ${values.baseline}`,
      );
    } catch (e) {
      if (e instanceof BaselineError) throw new UsageError(e.message);
      throw new UsageError(`cannot read --baseline ${values.baseline}: ${(e as Error).message}`);
    }
  }

  return {
    targets,
    jobs,
    out,
    caCerts,
    strict: values.strict ?? false,
    junit: values.junit,
    baseline: values.baseline,
    baselineData,
    writeBaseline: writeBaselineTo,
    spec: values.spec,
    warnings,
    protocolOnly,
  };
}

/** The text message the probe expects back. */
const ECHO_PROBE = "wsconform echo probe";

/** What the probe learnt of the target. */
interface ProbeResult {
  serverHeader?: string;
  /** Whether the target echoed a text message; undefined when not checked or not open. */
  echoes?: boolean;
}

/**
 * Checks that the target can be reached at all (a clear exit 2 within seconds
 * beats 301 failed cases), and learns its Server header for the agent name.
 * With `checkEcho`, sends one text message after the handshake and tells
 * whether it came back within 1 s (the cases that need an echo fail otherwise).
 */
async function probe(url: URL, options: SessionOptions, checkEcho: boolean): Promise<ProbeResult> {
  const conn = await connectRaw({ url, caCerts: options.caCerts, timeoutMs: 4000 });
  conn.close();
  const run = await runCase({
    id: "probe",
    title: "Opening handshake probe",
    rfc: "4.1",
    requirement: "The server completes the opening handshake.",
    // The echo closes at once (autoClose); without it, the suite closes after 1 s.
    steps: checkEcho
      ? [{ message: { payload: ECHO_PROBE } }, { closeAfter: 1 }]
      : [{ close: { code: 1000 } }],
    expect: {
      ok: checkEcho ? [{ message: ECHO_PROBE }] : [],
      close: { by: "suite", codes: [1000], clean: false },
    },
    timeout: 6,
  }, options);
  const first = run.received[0];
  const echoes = checkEcho && run.close.opened
    ? first?.type === "message" && !first.binary &&
      new TextDecoder().decode(first.payload) === ECHO_PROBE
    : undefined;
  return { serverHeader: run.serverHeader, echoes };
}

/** Where the output goes; tests inject all of it. */
export interface CliIo {
  /** Standard output is a terminal (default: Deno.stdout.isTerminal()). */
  isTTY?: boolean;
  /** Environment lookup, for NO_COLOR (default: Deno.env where allowed, else Deno.noColor). */
  env?: (name: string) => string | undefined;
  /** Writes text to standard output exactly as given. */
  write?: (text: string) => void;
  /** Terminal width (default: the console's, else 80). */
  columns?: number;
}

const encoder = new TextEncoder();

function writeStdout(text: string): void {
  const bytes = encoder.encode(text);
  for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
}

function defaultEnv(name: string): string | undefined {
  if (Deno.permissions.querySync({ name: "env", variable: name }).state === "granted") {
    return Deno.env.get(name);
  }
  // Without --allow-env, Deno still tells whether NO_COLOR was set (and not empty).
  return name === "NO_COLOR" && Deno.noColor ? "1" : undefined;
}

function consoleColumns(): number {
  try {
    // A pseudo-terminal may report no size at all (0 columns).
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}

const LIST_LIMIT = 20;
const pair = (v: { behavior: string; behaviorClose: string }) => `${v.behavior}/${v.behaviorClose}`;

/** What one target's run left behind, for the totals and the JUnit file. */
interface TargetResult {
  status: 0 | 1 | 2;
  suite?: JunitSuite;
  agent?: string;
  failed?: number;
  regressions?: number;
  /** Cases selected but not run (--protocol-only). */
  notRun?: CaseSpec[];
  /** The target did not echo the probe: how many failed cases need an echo. */
  noEcho?: { failedNeedingEcho: number };
}

export async function main(args: string[], io: CliIo = {}): Promise<number> {
  let options: CliOptions | "help";
  try {
    options = parseCli(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`wsconform: ${sanitize(e.message)}\n(try --help)`);
    return 2;
  }
  const write = io.write ?? writeStdout;
  if (options === "help") {
    write(USAGE + "\n");
    return 0;
  }
  for (const warning of options.warnings) console.error(`wsconform: warning: ${warning}`);
  const isTTY = io.isTTY ?? Deno.stdout.isTerminal();
  const progress = new Progress({
    isTTY,
    env: io.env ?? defaultEnv,
    write,
    columns: io.columns ?? (isTTY ? consoleColumns() : 80),
    strict: options.strict,
  });

  const results: TargetResult[] = [];
  for (const target of options.targets) {
    // A blank line between the runs of several servers.
    if (results.some((r) => r.suite !== undefined)) progress.line();
    results.push(await runTarget(target, options, progress));
  }

  const ran = results.filter((r) => r.suite !== undefined);
  if (ran.length === 0) return 2;
  let junitPath: string | undefined;
  let status = Math.max(...results.map((r) => r.status));
  if (options.junit !== undefined) {
    try {
      junitPath = await writeJunit(options.junit, ran.map((r) => r.suite!), {
        strict: options.strict,
      });
    } catch (e) {
      console.error(`wsconform: cannot write --junit ${options.junit}: ${(e as Error).message}`);
      status = 2;
    }
  }
  const say = (text = "") => progress.line(text);
  if (options.targets.length > 1) {
    say();
    for (const r of results) {
      if (r.suite === undefined) continue;
      say(
        `${sanitize(r.agent!)}: ${r.suite.outcomes.length} cases, ${r.failed} failed` +
          (r.regressions !== undefined ? `, ${r.regressions} regressed` : "") +
          (r.notRun?.length ? `, ${r.notRun.length} not run (${NOT_RUN_REASON})` : ""),
      );
    }
    const skipped = results.length - ran.length;
    if (skipped > 0) say(`${skipped} of ${results.length} servers could not be tested`);
  }
  // The HTML pages show every agent in index.json, so they are rendered once, after all targets.
  if (ran.length > 0) await writeHtmlReports(options.out);
  say();
  say(`report: ${options.out}/index.html`);
  say(`        ${options.out}/index.json`);
  if (junitPath !== undefined) say(`junit:  ${junitPath}`);
  for (const r of ran) {
    if (r.noEcho === undefined) continue;
    const who = options.targets.length > 1 ? `agent "${sanitize(r.agent!)}"` : "the target";
    say(
      `hint: ${who} does not echo messages: ${r.noEcho.failedNeedingEcho} of its ${r.failed} ` +
        `failed cases need an echo; rerun with --protocol-only to test only what does not ` +
        `depend on an echo`,
    );
  }
  return status;
}

async function runTarget(
  target: Target,
  options: CliOptions,
  progress: Progress,
): Promise<TargetResult> {
  const say = (text = "") => progress.line(text);
  const paint = progress.paint.bind(progress);
  let embedded;
  if (!target.url) {
    try {
      embedded = await spawnReference();
    } catch (e) {
      console.error(
        `wsconform: cannot start the embedded reference server: ${(e as Error).message}`,
      );
      return { status: 2 };
    }
  }
  try {
    const url = target.url ?? new URL(embedded!.url);
    const session: SessionOptions = { url, caCerts: options.caCerts, userAgent: "wsconform" };
    let serverHeader: string | undefined, echoes: boolean | undefined;
    try {
      ({ serverHeader, echoes } = await probe(url, session, !options.protocolOnly));
    } catch (e) {
      console.error(`wsconform: cannot reach ${url.href}: ${sanitize((e as Error).message)}`);
      return { status: 2 };
    }
    const agent = target.agent ?? embedded?.agent ?? serverHeader ?? url.host;
    let cases: CaseSpec[];
    let notRun: CaseSpec[] = [];
    let baseline = options.baselineData;
    let baselineFile = options.baseline;
    try {
      cases = target.select(agent);
      if (options.protocolOnly) {
        notRun = cases.filter(needsEcho);
        cases = cases.filter((c) => !needsEcho(c));
        if (cases.length === 0) {
          throw new UsageError(target.origin ? `${target.origin}: ${NONE_LEFT}` : NONE_LEFT);
        }
      }
      if (options.baseline !== undefined && baseline === undefined) {
        baselineFile = baselinePath(options.baseline, agent);
        baseline = await readBaseline(baselineFile);
      }
    } catch (e) {
      if (!(e instanceof UsageError || e instanceof BaselineError)) throw e;
      console.error(`wsconform: ${sanitize(e.message)}`);
      return { status: 2 };
    }

    const needingEcho = cases.filter(needsEcho).length;
    if (echoes === false && needingEcho > 0) {
      console.error(
        `wsconform: warning: ${sanitize(url.href)} does not echo messages (a text message sent ` +
          `after the handshake did not come back within 1 s): the ${needingEcho} cases that ` +
          `need an echo will fail; rerun with --protocol-only to test only what does not ` +
          `depend on an echo`,
      );
    }
    say(
      `wsconform: ${cases.length} cases against ${sanitize(url.href)} (agent "${sanitize(agent)}")${
        options.strict ? ", --strict" : ""
      }${options.protocolOnly ? `, --protocol-only (${notRun.length} not run)` : ""}`,
    );
    const startedAt = new Date();
    const started = performance.now();
    progress.begin(cases);
    // For the JUnit failure messages: what a failing case expected and observed, in a line.
    const events = new Map<string, CaseEvents>();
    let runs: CaseOutcome[];
    try {
      runs = await runCases(cases, {
        ...session,
        jobs: options.jobs,
        onCaseDone: async (run) => {
          await writeCaseReport(options.out, agent, run);
          if (failing(run.verdict, options.strict)) events.set(run.spec.id, eventsOf(run));
          progress.caseDone(run);
        },
      });
    } finally {
      progress.end();
    }
    const elapsed = performance.now() - started;
    await writeIndex(options.out, agent, runs);

    const table = summaryTable(runs, { strict: options.strict, paint });
    say();
    say(table.text);
    say(
      `${runs.length} cases, ${table.failed} failed${
        options.strict ? " (NON-STRICT counts, --strict)" : ""
      } in ${formatSeconds(elapsed)}`,
    );
    const failures = runs.filter((r) => failing(r.verdict, options.strict))
      .sort((a, b) => compareIds(a.spec.id, b.spec.id));
    for (const r of failures.slice(0, LIST_LIMIT)) {
      say(`  ${paint("FAILED", "red")} ${r.spec.id} ${r.spec.title}: ${pair(r.verdict)}`);
    }
    if (failures.length > LIST_LIMIT) say(`  … and ${failures.length - LIST_LIMIT} more`);
    if (notRun.length > 0) say(`${notRun.length} cases not run (${NOT_RUN_REASON})`);
    const measured = runs.filter((r) => r.findings.length > 0)
      .sort((a, b) => compareIds(a.spec.id, b.spec.id));
    if (measured.length > 0) say("measured:");
    for (const r of measured) say(`  ${r.spec.id} ${r.findings.map((f) => f.text).join(" ")}`);

    let regressions: number | undefined;
    if (baseline !== undefined) {
      regressions = reportComparison(runs, baseline, baselineFile!, agent, options, progress);
    }
    let unwritten = false;
    if (options.writeBaseline !== undefined) {
      const path = baselinePath(options.writeBaseline, agent);
      try {
        await writeBaseline(path, makeBaseline(agent, runs));
        say(`baseline written: ${path}`);
      } catch (e) {
        console.error(`wsconform: cannot write baseline ${path}: ${(e as Error).message}`);
        unwritten = true;
      }
    }

    const suite: JunitSuite = {
      agent,
      url: url.href,
      started: startedAt,
      elapsedMs: elapsed,
      outcomes: runs,
      events,
      notRun: { cases: notRun, reason: NOT_RUN_REASON },
    };
    const bad = regressions !== undefined ? regressions > 0 : failures.length > 0;
    const status = unwritten ? 2 : bad ? 1 : 0;
    const noEcho = echoes === false && needingEcho > 0
      ? { failedNeedingEcho: failures.filter((r) => needsEcho(r.spec)).length }
      : undefined;
    return { status, suite, agent, failed: failures.length, regressions, notRun, noEcho };
  } finally {
    await embedded?.close();
  }
}

/** Prints the comparison with a baseline; returns the number of regressions. */
function reportComparison(
  runs: readonly CaseOutcome[],
  baseline: Baseline,
  file: string,
  agent: string,
  options: CliOptions,
  progress: Progress,
): number {
  const say = (text = "") => progress.line(text);
  const paint = progress.paint.bind(progress);
  const current: Record<string, { behavior: Behavior; behaviorClose: CloseBehavior }> = {};
  for (const r of runs) {
    current[r.spec.id] = { behavior: r.verdict.behavior, behaviorClose: r.verdict.behaviorClose };
  }
  const cmp = compareToBaseline(baseline, current, options.strict);
  const titles = new Map(runs.map((r) => [r.spec.id, r.spec.title]));
  const describe = (c: CaseChange) =>
    `  ${c.id} ${titles.get(c.id)}: ${c.before ? pair(c.before) : "(not in baseline)"} -> ${
      pair(c.after)
    }`;
  const list = (label: string, items: CaseChange[], style: "red" | "green" | "yellow") => {
    if (items.length === 0) {
      say(`${label}: none`);
      return;
    }
    say(paint(`${label} (${items.length}):`, style));
    for (const c of items.slice(0, LIST_LIMIT)) say(describe(c));
    if (items.length > LIST_LIMIT) say(`  … and ${items.length - LIST_LIMIT} more`);
  };
  say();
  const other = baseline.agent !== agent
    ? `, recorded for agent "${sanitize(baseline.agent)}"`
    : "";
  say(
    `baseline ${file}${other}: ${cmp.regressions.length} regressed, ` +
      `${cmp.improvements.length} improved, ${cmp.changed.length} changed below the failing ` +
      `line, ${cmp.added.length} new, ${cmp.unchanged} unchanged` +
      (cmp.notRun.length > 0 ? ` (${cmp.notRun.length} baseline cases not run)` : ""),
  );
  list("regressions", cmp.regressions, "red");
  list("improvements", cmp.improvements, "green");
  if (cmp.changed.length > 0) list("other changes", cmp.changed, "yellow");
  return cmp.regressions.length;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
