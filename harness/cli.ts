/**
 * Command line: `deno task test [ws-url] [options]`.
 * Exit codes: 0 no case failed, 1 some case failed (or, with --baseline, some
 * case regressed), 2 bad usage, an unreachable target (or one that stopped
 * answering mid-run), or reports that cannot be written; 130 and 143 a run
 * stopped by SIGINT and SIGTERM (the cases that finished are reported).
 */
import { parseArgs } from "node:util";
import { type CaseSpec, compareIds } from "./case.ts";
import { CLIENT_CASES, GROUPS, SERVER_CASES } from "../fixtures/mod.ts";
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
import { type CaseEvents, type JunitSuite, writeJunit } from "./junit.ts";
import { formatSeconds, Progress, sanitize, summaryTable } from "./progress.ts";
import { CasePages, writeHtmlReports } from "./html.ts";
import {
  casePattern,
  echoTypes,
  needsEcho,
  PROBE_WAIT_S,
  runSuite,
  selectCases,
  SuiteError,
  type SuiteResult,
} from "./suite.ts";
import {
  DEFAULT_OUTDIR,
  isServerSpec,
  parseServerSpec,
  parseSpec,
  parseWsUrl,
  selectionFor,
  SpecError,
  specPatterns,
  specPort,
} from "./spec.ts";
import { AUTOBAHN_PORT, serve } from "./serve.ts";
import { CaseServerError } from "./case_server.ts";
import { type HeaderList, TOKEN } from "./handshake.ts";
import { type ClientDriver, ClientStartError, splitCommand } from "./client_driver.ts";
import { BROWSER_KINDS, browserBinary, browserClient, type BrowserKind } from "./browser_driver.ts";
import { type Behavior, type CaseOutcome, type CloseBehavior, isFailing } from "./verdict.ts";

export const USAGE = `wsconform: WebSocket (RFC 6455) server conformance suite

Usage: deno task test [ws-url] [options]
       deno task test --spec fuzzingclient.json [options]
       deno task test --client ["CMD {url}" | NAME[,NAME]...] [options]
       deno task test --serve [PORT] [--spec fuzzingserver.json] [options]

With no URL, tests the embedded reference server (Deno.serve + Deno.upgradeWebSocket).
With --client, the suite is the server and tests a client on the cases of groups 1-7, 9 and 10:
the embedded client (Deno's own WebSocket), a browser's WebSocket (chromium, firefox or webkit:
Debian's package, headless, on a page the suite serves), or with CMD, a command run for each case
with {url} replaced by the case's ws:// URL (no shell; the client echoes every message with its
type). A comma list of names (chromium, firefox, webkit, deno: the embedded client) tests each
in turn, into one report with a column per client; a command has a space or {url}, a list not.
Reports go to reports/clients.
With --serve, the suite is Autobahn's fuzzingserver on 127.0.0.1:PORT (default 9001; 0: any
free port): clients run the cases with their own Autobahn drivers (/getCaseCount,
/runCase?case=N&agent=A, /getCaseStatus, /updateReports?agent=A) until SIGINT or SIGTERM.
Whenever it writes the reports (/updateReports, the stop) it writes and compares each agent's
baseline; stopped, it exits 130 or 143, or with --baseline 0 or 1 as for a run (2: a baseline
that could not be read or written).

Options:
  --cases LIST          only these cases: comma-separated ids or globs (1.1.1, 6.4.*, 9.*)
  --exclude LIST        skip these cases (same syntax)
  --agent NAME          the name used in the report (default: the Server header, else host:port)
  --jobs N              cases run in parallel, each on its own connection (default 32; 8
                        for a browser, whose processes share the cores with the suite)
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
  --protocol NAME       offer this subprotocol (Sec-WebSocket-Protocol) in every handshake;
                        repeat it or give a comma list to offer several, in order
  --header "N: V"       add this header to every handshake request (a token, a cookie);
                        repeatable; the handshake's own headers cannot be set this way
  --origin URL          send this Origin (scheme://host[:port]) in every handshake
  --client [CMD|NAMES]  client mode (see above); the agent is Deno's version for the embedded
                        client, the browser's name and version, else CMD's program name, unless
                        --agent names it (one client only)
  --browser PATH        with --client chromium, firefox or webkit (one browser in a list):
                        another binary of it
  --serve [PORT]        serve mode (see above); --spec then reads Autobahn's fuzzingserver.json
                        (its url's port, outdir, cases, exclude-cases, exclude-agent-cases)
  --cert FILE           PEM certificate (chain): client mode (--client, --serve) serves wss://;
                        the client must trust it; with --key
  --key FILE            PEM private key of --cert
  --help                this text

In --baseline and --write-baseline, "{agent}" in FILE stands for the agent's name in file-name
form; a run of several servers (--spec) or clients (--client NAMES) needs it in
--write-baseline.

Most cases judge the server by the echo of what the suite sent. Before the run, the suite sends
the target a text and a binary message: for each type not echoed within 2 s, a warning says
that the cases that need that echo will fail (they end 0.5 s after the suite's last write
instead of waiting for their timers), and that --protocol-only runs only the others.

Exit status: 0 no case failed, 1 some case failed (with --baseline: some case got worse),
2 bad usage, unreachable target (also mid-run: the cases left are not run), or an --out that
cannot be written; 130 (SIGINT) or 143 (SIGTERM): the run was stopped, the cases that
finished are reported and the rest marked not run.`;

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
  /** A spec server's subprotocols and Origin for its handshakes (--protocol and --origin win). */
  handshake?: { protocols?: string[]; origin?: string };
  /**
   * Client mode (--client): the client to test, a command, a browser's driver
   * (`browser` names it and the --browser binary), or (neither) the embedded client.
   */
  client?: {
    command?: string;
    browser?: { kind: BrowserKind; binary?: string };
    driver?: ClientDriver;
    tls?: { cert: string; key: string };
  };
}

export interface CliOptions {
  targets: Target[];
  /** --jobs; undefined: the default (32, or what a client's driver runs well). */
  jobs?: number;
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
  /** Subprotocols offered in every handshake (--protocol), in order. */
  protocols?: string[];
  /** Headers added to every handshake request (--header). */
  headers: HeaderList;
  /** The Origin of every handshake (--origin). */
  origin?: string;
  /** Serve mode (--serve): the clients' Autobahn drivers run the cases. */
  serve?: ServeCli;
}

/** What --serve listens on and serves. */
export interface ServeCli {
  port: number;
  tls?: { cert: string; key: string };
  cases: CaseSpec[];
  /** A fuzzingserver.json's exclude-agent-cases. */
  skips?: (agent: string, caseId: string) => boolean;
}

/** Why --protocol-only leaves a case out, as the summary and JUnit say it. */
export const NOT_RUN_REASON = "need an echo; --protocol-only";

const NONE_LEFT = "--protocol-only: every selected case needs an echo, so none is left to run";

function readSpecFile(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    throw new UsageError(`cannot read --spec ${path}: ${(e as Error).message}`);
  }
}

/**
 * The text of a --spec file that is a fuzzingserver.json, which --spec serves
 * as --serve does; undefined for any other (or unreadable) file, which is read
 * as a fuzzingclient.json (and its reading says what is wrong).
 */
function fuzzingServerSpec(path: string): string | undefined {
  try {
    const text = Deno.readTextFileSync(path);
    return isServerSpec(text) ? text : undefined;
  } catch {
    return undefined;
  }
}

function readSpecTargets(path: string): { out: string; targets: Target[]; warnings: string[] } {
  const text = readSpecFile(path);
  let parsed;
  try {
    parsed = parseSpec(text, `spec ${path}`);
  } catch (e) {
    if (e instanceof SpecError) throw new UsageError(e.message);
    throw e;
  }
  const { spec } = parsed;
  const warnings = [
    ...parsed.warnings,
    ...unmatchedPatterns(specPatterns(spec), SERVER_CASES, path),
  ];
  const targets = spec.servers.map((server, i): Target => {
    const origin = `spec ${path}: servers[${i}]`;
    const select = (agent: string) => {
      const { include, exclude } = selectionFor(spec, agent);
      try {
        return selectCases(SERVER_CASES, include, exclude, () => {});
      } catch (e) {
        if (!(e instanceof SuiteError)) throw e;
        throw new UsageError(`${origin} (agent "${agent}"): ${e.message}`);
      }
    };
    // With the agent known, a selection that leaves nothing is reported before any run.
    if (server.agent !== undefined) select(server.agent);
    const handshake = {
      protocols: server.protocols && parseProtocols(server.protocols, `${origin}: "protocols"`),
      origin: server.origin === undefined
        ? undefined
        : parseOrigin(server.origin, `${origin}: "origin"`),
    };
    return { url: server.url, agent: server.agent, select, origin, handshake };
  });
  return { out: spec.outdir, targets, warnings };
}

export function parseCli(args: string[]): CliOptions | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: withClientValue(args),
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
        protocol: { type: "string", multiple: true },
        header: { type: "string", multiple: true },
        origin: { type: "string" },
        client: { type: "string" },
        browser: { type: "string" },
        serve: { type: "string" },
        cert: { type: "string" },
        key: { type: "string" },
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
  for (const name of ["junit", "baseline", "write-baseline", "spec", "out", "browser"] as const) {
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
  const jobs = values.jobs === undefined ? undefined : Number(values.jobs);
  if (jobs !== undefined && (!Number.isInteger(jobs) || jobs < 1 || jobs > 1024)) {
    throw new UsageError(`--jobs must be an integer from 1 to 1024, got ${values.jobs}`);
  }
  if (values.agent !== undefined && values.agent.trim() === "") {
    throw new UsageError("--agent must not be empty");
  }

  let targets: Target[];
  let out = values.out ?? DEFAULT_OUTDIR;
  let warnings: string[] = [];
  const serverSpec = values.spec !== undefined && values.serve === undefined
    ? fuzzingServerSpec(values.spec)
    : undefined;
  let serving: ServeCli | undefined;
  if (values.serve !== undefined || serverSpec !== undefined) {
    const clashing = [
      ...(url ? ["a URL"] : []),
      ...([
        "client",
        "agent",
        "jobs",
        "protocol-only",
        "ca",
        "protocol",
        "header",
        "origin",
        ...(values.spec === undefined ? [] : ["cases", "exclude"] as const),
      ] as const).filter((n) => values[n] !== undefined).map((n) => `--${n}`),
    ];
    if (clashing.length > 0) {
      throw new UsageError(`--serve tests the clients that connect: drop ${clashing.join(", ")}`);
    }
    const specText = serverSpec ??
      (values.spec === undefined ? undefined : readSpecFile(values.spec));
    const read = readServe(values.serve, values.spec, specText, values.cert, values.key);
    serving = read.serving ?? {
      ...read.listen,
      cases: selectCases(CLIENT_CASES, values.cases, values.exclude),
    };
    warnings = read.warnings;
    targets = [];
    out = values.out ?? read.outdir ?? CLIENT_OUTDIR;
  } else if (
    values.browser !== undefined &&
    (clientNames(values.client) ?? []).filter((name) => name !== "deno").length !== 1
  ) {
    throw new UsageError(
      "--browser PATH runs another binary of --client chromium, firefox or webkit",
    );
  } else if (values.client === undefined && (values.cert ?? values.key) !== undefined) {
    throw new UsageError("--cert and --key serve wss:// in client mode (--client, --serve)");
  } else if (values.client !== undefined) {
    const clashing = [
      ...(url ? ["a URL"] : []),
      ...(["spec", "protocol-only", "ca", "protocol", "header", "origin"] as const)
        .filter((n) => values[n] !== undefined).map((n) => `--${n}`),
    ];
    if (clashing.length > 0) {
      throw new UsageError(`--client tests a client: drop ${clashing.join(", ")}`);
    }
    const cases = selectCases(CLIENT_CASES, values.cases, values.exclude);
    const names = clientNames(values.client);
    const command = names ? undefined : values.client;
    try {
      if (command !== undefined) splitCommand(command);
    } catch (e) {
      if (e instanceof ClientStartError) throw new UsageError(`--client: ${e.message}`);
      throw e;
    }
    if (names && names.length > 1 && values.agent !== undefined) {
      throw new UsageError(
        "--agent names one client; a list's clients are named by their versions",
      );
    }
    const browsers = (names ?? []).filter((name) => name !== "deno");
    if (browsers.length > 0 && values.cert !== undefined) {
      throw new UsageError(
        `--cert: ${browsers.join(", ")} would not trust the certificate; test over ws://`,
      );
    }
    const tls = readTls(values.cert, values.key);
    targets = (names ?? [undefined]).map((name) => ({
      agent: values.agent,
      select: () => cases,
      client: name === undefined || name === "deno" ? { command, tls } : {
        browser: { kind: name, binary: values.browser },
        driver: browserClient(name, { binary: values.browser }),
      },
    }));
    out = values.out ?? CLIENT_OUTDIR;
  } else if (values.spec !== undefined) {
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
    const cases = selectCases(SERVER_CASES, values.cases, values.exclude);
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
      `--write-baseline: this run tests ${targets.length} ${peersOf(targets)}; put "{agent}" in ` +
        `the file name so each gets its own baseline`,
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

  // A file is written after its directory is created (which needs the permission), and a
  // file named per agent is not known yet: for those, the directory is checked.
  const optional = (option: string, value: string | undefined, access: "read" | "write") =>
    value === undefined ? [] : [{ option, value, access }];
  checkPermissions([
    { option: "--out", value: out, access: "read", path: out },
    { option: "--out", value: out, access: "write", path: out },
    ...optional("--junit", values.junit, "write"),
    ...optional("--write-baseline", writeBaselineTo, "write"),
    ...optional("--baseline", values.baseline, "read"),
  ]);

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
    ...(serving ? { serve: serving } : {}),
    protocols: values.protocol && parseProtocols(values.protocol, "--protocol"),
    headers: (values.header ?? []).map(parseHeader),
    origin: values.origin === undefined ? undefined : parseOrigin(values.origin, "--origin"),
  };
}

/** Where client mode's reports go by default. */
const CLIENT_OUTDIR = "reports/clients";

/** The clients --client takes by name: the browsers, and deno, the embedded client. */
const CLIENT_NAMES = [...BROWSER_KINDS, "deno"] as const;
type ClientName = (typeof CLIENT_NAMES)[number];

/**
 * --client's value as the clients it names, in order: a comma list of
 * CLIENT_NAMES (alone, --client is deno); undefined for a command, which has a
 * space or "{url}" (a list has neither). An unknown or repeated name is a usage error.
 */
function clientNames(value: string | undefined): ClientName[] | undefined {
  if (value === undefined || /\s/.test(value) || value.includes("{url}")) return undefined;
  const names = value === "" ? ["deno"] : value.split(",");
  for (const [i, name] of names.entries()) {
    if (!(CLIENT_NAMES as readonly string[]).includes(name)) {
      throw new UsageError(
        `--client: ${JSON.stringify(name)} is not a client name (${CLIENT_NAMES.join(", ")}); ` +
          "the value has no {url}, so it is not a command either",
      );
    }
    if (names.indexOf(name) !== i) throw new UsageError(`--client: ${name} is named twice`);
  }
  return names as ClientName[];
}

/** What the targets are, in a message: clients in client mode, else servers. */
function peersOf(targets: readonly Target[]): string {
  return targets.some((t) => t.client) ? "clients" : "servers";
}

/**
 * --client and --serve take an optional value: alone, or followed by another
 * option, --client means the embedded client and --serve the default port
 * (parseArgs wants a value, so it gets an empty one).
 */
function withClientValue(args: string[]): string[] {
  return args.flatMap((arg, i) =>
    (arg === "--client" || arg === "--serve") &&
      (i + 1 === args.length || args[i + 1].startsWith("-"))
      ? ["--client="]
      : [arg]
  );
}

/**
 * --serve's port and TLS, and with a fuzzingserver.json, what it serves: a
 * port, certificate, key or spec that cannot be used is a usage error, before
 * listening. A port given with --serve wins over the spec's.
 */
function readServe(
  portText: string | undefined,
  specPath: string | undefined,
  specText: string | undefined,
  certPath: string | undefined,
  keyPath: string | undefined,
): {
  listen: Pick<ServeCli, "port" | "tls">;
  serving?: ServeCli;
  outdir?: string;
  warnings: string[];
} {
  const tls = readTls(certPath, keyPath);
  const port = portText ? Number(portText) : AUTOBAHN_PORT;
  if (portText && !(/^\d+$/.test(portText) && port <= 65535)) {
    throw new UsageError(`--serve: expected a port from 0 to 65535, got ${portText}`);
  }
  const listen = { port, tls };
  if (specText === undefined) return { listen, warnings: [] };
  let parsed;
  try {
    parsed = parseServerSpec(specText, `spec ${specPath}`);
  } catch (e) {
    if (e instanceof SpecError) throw new UsageError(e.message);
    throw e;
  }
  const { spec } = parsed;
  if ((spec.url.protocol === "wss:") !== (tls !== undefined)) {
    throw new UsageError(
      `spec ${specPath}: "url" is ${spec.url.protocol}//, ` +
        (tls ? "but --cert and --key ask for wss://" : "which needs --cert and --key"),
    );
  }
  let cases: CaseSpec[];
  try {
    cases = selectCases(CLIENT_CASES, spec.cases, spec.excludeCases, () => {});
  } catch (e) {
    if (!(e instanceof SuiteError)) throw e;
    throw new UsageError(`spec ${specPath}: ${e.message}`);
  }
  const skips = (agent: string, caseId: string) =>
    selectionFor(spec, agent).exclude.some((p) => casePattern(p)(caseId));
  return {
    listen,
    serving: { port: portText ? port : specPort(spec.url), tls, cases, skips },
    outdir: spec.outdir,
    warnings: [
      ...parsed.warnings,
      ...unmatchedPatterns(specPatterns(spec), CLIENT_CASES, specPath!),
    ],
  };
}

/** A warning for each of a spec's case patterns that matches none of `cases`. */
function unmatchedPatterns(
  patterns: readonly string[],
  cases: readonly CaseSpec[],
  specPath: string,
): string[] {
  return patterns.filter((p) => !cases.some((c) => casePattern(p)(c.id))).map((p) =>
    `spec ${specPath}: "${p}" matches no wsconform case (ignored)`
  );
}

/** --cert and --key, read: client mode's wss://. */
function readTls(
  certPath: string | undefined,
  keyPath: string | undefined,
): { cert: string; key: string } | undefined {
  if ((certPath === undefined) !== (keyPath === undefined)) {
    throw new UsageError("--cert and --key go together: wss:// needs both");
  }
  if (certPath === undefined) return undefined;
  return {
    cert: readPem(certPath, "--cert", "CERTIFICATE"),
    key: readPem(keyPath!, "--key", "PRIVATE KEY"),
  };
}

/** A PEM file's text; one that cannot be read, or holds no `label` block, is a usage error. */
function readPem(path: string, option: string, label: string): string {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new UsageError(`cannot read ${option} ${path}: ${(e as Error).message}`);
  }
  if (!new RegExp(`-----BEGIN [A-Z ]*${label}-----`).test(text)) {
    throw new UsageError(`${option} ${path} is not PEM: no "-----BEGIN ...${label}-----" block`);
  }
  return text;
}

/** Where a file option's path needs a permission: see checkPermissions. */
interface PathNeed {
  option: string;
  value: string;
  access: "read" | "write";
  /** Default: the file itself to read, its directory to write; with "{agent}", its directory. */
  path?: string;
}

/**
 * Checks the paths the run will read and write against the permissions Deno
 * gives it, so a path left out of --allow-read or --allow-write is one line
 * before any case runs, not an error after them (`deno task test` allows only
 * the project directory, and /tmp).
 */
function checkPermissions(needs: readonly PathNeed[]): void {
  for (const { option, value, access, path: given } of needs) {
    const dir = value.includes("/") ? value.slice(0, value.lastIndexOf("/")) || "/" : ".";
    const path = given ?? (access === "write" || value.includes("{agent}") ? dir : value);
    if (Deno.permissions.querySync({ name: access, path }).state !== "granted") {
      throw new UsageError(
        `${option} ${value}: no permission to ${access} ${path} (deno run needs ` +
          `--allow-${access}=${path}; deno task test allows only the project directory and /tmp)`,
      );
    }
  }
}

/**
 * Subprotocols to offer (--protocol, or a spec server's "protocols"), each
 * value a name or a comma list: tokens, each offered once (§4.1 item 10).
 */
function parseProtocols(values: string[], label: string): string[] {
  const names = values.flatMap((v) => v.split(",")).map((name) => name.trim());
  for (const name of names) {
    if (!TOKEN.test(name)) {
      throw new UsageError(
        `${label} ${JSON.stringify(name)}: a subprotocol name is an HTTP token ` +
          `(letters, digits and !#$%&'*+-.^_\`|~, no spaces)`,
      );
    }
  }
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice !== undefined) throw new UsageError(`${label} ${twice} is offered twice`);
  return names;
}

/**
 * Request headers --header may not set, and why: the suite writes them itself
 * (the handshake, the --protocol and --origin options), or they would change
 * what the cases test.
 */
const RESERVED_HEADERS: Record<string, string> = {
  host: "the opening handshake writes it from the URL",
  upgrade: "the opening handshake writes it",
  connection: "the opening handshake writes it",
  "sec-websocket-key": "the opening handshake writes it",
  "sec-websocket-version": "the opening handshake writes it",
  "sec-websocket-accept": "it is the server's answer, not a request header",
  "sec-websocket-protocol": "use --protocol",
  "sec-websocket-extensions": "the suite implements no extension, so it offers none",
  origin: "use --origin",
  "content-length": "the handshake request has no body",
  "transfer-encoding": "the handshake request has no body",
};

/** A --header value, "Name: value", as a header line. */
function parseHeader(text: string): [string, string] {
  const colon = text.indexOf(":");
  const name = text.slice(0, Math.max(colon, 0)).trim();
  const value = text.slice(colon + 1).trim();
  if (colon < 0 || !TOKEN.test(name)) {
    throw new UsageError(`--header ${JSON.stringify(text)}: expected "Name: value"`);
  }
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u0008\u000A-\u001F\u007F]/.test(value)) {
    throw new UsageError(`--header ${name}: the value holds a control character`);
  }
  const reserved = RESERVED_HEADERS[name.toLowerCase()];
  if (reserved !== undefined) throw new UsageError(`--header ${name} cannot be set: ${reserved}`);
  return [name, value];
}

/** An Origin to send (--origin, a spec server's "origin"): scheme, host and port (RFC 6454). */
function parseOrigin(text: string, label: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch { /* reported below */ }
  // An opaque origin serializes as "null"; anything past the port (path, query, user) is not an origin.
  if (!url || url.origin === "null" || url.href !== `${url.origin}/`) {
    throw new UsageError(
      `${label} ${JSON.stringify(text)}: expected an origin such as https://example.com ` +
        `(scheme, host and optional port)`,
    );
  }
  return url.origin;
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
  /** The target did not echo the probe: of which types, and how many failed cases need one. */
  noEcho?: { failedNeedingEcho: number; types: ("text" | "binary")[] };
  /** The run stopped before every case finished (a signal, the target gone): the cases left. */
  stopped?: { cases: CaseSpec[]; reason: string };
}

export async function main(args: string[], io: CliIo = {}): Promise<number> {
  let options: CliOptions | "help";
  try {
    options = parseCli(args);
  } catch (e) {
    if (!(e instanceof UsageError || e instanceof SuiteError)) throw e;
    console.error(`wsconform: ${sanitize(e.message)}\n(try --help)`);
    return 2;
  }
  const write = io.write ?? writeStdout;
  if (options === "help") {
    write(USAGE + "\n");
    return 0;
  }
  for (const warning of options.warnings) console.error(`wsconform: warning: ${warning}`);
  // Run as a program, the suite parses bytes from the targets without the right to start
  // programs, which only the embedded server needs (tests call main() and keep theirs).
  if (import.meta.main && options.targets.every((t) => t.url !== undefined)) {
    await Deno.permissions.revoke({ name: "run" });
  }
  const unwritable = writeProblem(options.out);
  if (unwritable !== undefined) {
    console.error(
      `wsconform: cannot write reports to --out ${sanitize(options.out)}: ${unwritable}`,
    );
    return 2;
  }
  const isTTY = io.isTTY ?? Deno.stdout.isTerminal();
  const progress = new Progress({
    isTTY,
    env: io.env ?? defaultEnv,
    write,
    columns: io.columns ?? (isTTY ? consoleColumns() : 80),
    strict: options.strict,
    groups: GROUPS,
  });

  const stop = new AbortController();
  const removeListeners = listenForStopSignals(stop);
  try {
    return options.serve
      ? await serveClients(options.serve, options, progress, stop.signal)
      : await runTargets(options, progress, stop.signal);
  } finally {
    removeListeners();
  }
}

/** Exit status of a run stopped by a signal: 128 + the signal's number, as shells report it. */
const SIGNAL_STATUS = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof SIGNAL_STATUS;

/**
 * On SIGINT or SIGTERM (Ctrl-C, a CI job's timeout), aborts `stop`: the run
 * ends its cases in flight and reports those that finished. A second signal
 * exits at once. Returns the function that removes the listeners.
 */
function listenForStopSignals(stop: AbortController): () => void {
  const removers = (Object.keys(SIGNAL_STATUS) as StopSignal[]).map((name) => {
    const listener = () => {
      if (stop.signal.aborted) Deno.exit(SIGNAL_STATUS[name]);
      console.error(
        `wsconform: ${name}: stopping; reporting the cases that finished (${name} again to quit ` +
          "at once)",
      );
      stop.abort(name);
    };
    Deno.addSignalListener(name, listener);
    return () => Deno.removeSignalListener(name, listener);
  });
  return () => removers.forEach((remove) => remove());
}

/** Why `dir` cannot take the reports, or undefined when it can (checked before any case runs). */
function writeProblem(dir: string): string | undefined {
  try {
    Deno.mkdirSync(dir, { recursive: true });
    Deno.removeSync(Deno.makeTempFileSync({ dir, prefix: ".wsconform-write-check-" }));
    return undefined;
  } catch (e) {
    return sanitize((e as Error).message);
  }
}

async function runTargets(
  options: CliOptions,
  progress: Progress,
  stop: AbortSignal,
): Promise<number> {
  const missing = await missingBrowser(options.targets);
  if (missing !== undefined) {
    console.error(`wsconform: ${sanitize(missing)}`);
    return 2;
  }
  const results: TargetResult[] = [];
  const pages = new CasePages(options.out, GROUPS);
  try {
    for (const target of options.targets) {
      if (stop.aborted) break;
      // A blank line between the runs of several servers or clients.
      if (results.some((r) => r.suite !== undefined)) progress.line();
      results.push(await runTarget(target, options, progress, stop, pages));
    }
  } finally {
    await pages.close();
  }
  const stopStatus = stop.aborted ? SIGNAL_STATUS[stop.reason as StopSignal] : undefined;

  const ran = results.filter((r) => r.suite !== undefined);
  if (ran.length === 0) return stopStatus ?? 2;
  let junitPath: string | undefined;
  let status = Math.max(...results.map((r) => r.status));
  if (options.junit !== undefined) {
    try {
      junitPath = await writeJunit(options.junit, ran.map((r) => r.suite!), {
        groups: GROUPS,
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
          (r.notRun?.length ? `, ${r.notRun.length} not run (${NOT_RUN_REASON})` : "") +
          (r.stopped ? `, ${r.stopped.cases.length} not run (${r.stopped.reason})` : ""),
      );
    }
    const skipped = results.length - ran.length;
    const peers = peersOf(options.targets);
    if (skipped > 0) say(`${skipped} of ${results.length} ${peers} could not be tested`);
    const untested = options.targets.length - results.length;
    if (untested > 0) {
      say(`${untested} of ${options.targets.length} ${peers} not tested (${stop.reason})`);
    }
  }
  // The HTML pages show every agent in index.json, so they are rendered once, after all targets.
  if (ran.length > 0) await writeHtmlReports(options.out, GROUPS, pages);
  say();
  say(`report: ${options.out}/index.html`);
  say(`        ${options.out}/index.json`);
  if (junitPath !== undefined) say(`junit:  ${junitPath}`);
  for (const r of ran) {
    if (r.noEcho === undefined || options.targets.some((t) => t.client)) continue;
    const who = options.targets.length > 1 ? `agent "${sanitize(r.agent!)}"` : "the target";
    const { failedNeedingEcho, types } = r.noEcho;
    const kind = types.length === 1 ? `${types[0]} ` : "";
    say(
      `hint: ${who} does not echo ${kind}messages: ${failedNeedingEcho} of its ${r.failed} ` +
        `failed cases need ${kind ? `a ${kind}` : "an "}echo; rerun with --protocol-only to ` +
        `test only what does not depend on an echo`,
    );
  }
  return stopStatus ?? status;
}

/**
 * Why a browser the run names cannot start, found before any client runs (a
 * list's last browser must not fail after the others ran): it is not
 * installed, or its --browser binary is no executable file. Its driver's
 * start() then fails at once, saying why (and how to install it).
 */
async function missingBrowser(targets: readonly Target[]): Promise<string | undefined> {
  for (const { client } of targets) {
    const browser = client?.browser;
    const binary = browser && (browser.binary ?? browserBinary(browser.kind));
    if (browser === undefined || (binary !== undefined && isExecutableFile(binary))) continue;
    try {
      await client!.driver!.start();
    } catch (e) {
      if (e instanceof ClientStartError) return e.message;
      throw e;
    }
  }
  return undefined;
}

function isExecutableFile(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) throw e; // not looked at, so not missing
    return false;
  }
}

async function runTarget(
  target: Target,
  options: CliOptions,
  progress: Progress,
  stop: AbortSignal,
  pages: CasePages,
): Promise<TargetResult> {
  const say = (text = "") => progress.line(text);
  const paint = progress.paint.bind(progress);
  let baseline = options.baselineData;
  let baselineFile = options.baseline;
  /** The types of message the target did not echo, and whether a case needs one of them. */
  let unechoed: ("text" | "binary")[] = [];
  let needingEcho = 0;
  const needsUnechoed = (spec: CaseSpec) => unechoed.some((type) => echoTypes(spec).has(type));
  let result: SuiteResult;
  try {
    result = await runSuite({
      url: target.url,
      client: target.client,
      agent: target.agent,
      cases: target.select,
      jobs: options.jobs,
      protocols: options.protocols ?? target.handshake?.protocols,
      headers: options.headers,
      origin: options.origin ?? target.handshake?.origin,
      caCerts: options.caCerts,
      protocolOnly: options.protocolOnly,
      signal: stop,
      reports: { dir: options.out, pages },
      onStart: async ({ agent, url, cases, echoes, clientStartMs, notRun }) => {
        if (options.baseline !== undefined && baseline === undefined) {
          ({ baseline, file: baselineFile } = await baselineFor(options, agent));
        }
        // One warning for the types of message the target did not echo, with the cases that need them.
        unechoed = (["text", "binary"] as const).filter((type) => echoes?.[type] === false);
        needingEcho = cases.filter(needsUnechoed).length;
        if (needingEcho > 0) {
          const kind = unechoed.length === 1 ? `${unechoed[0]} ` : "";
          const sent = unechoed.length === 1
            ? `a ${kind}message sent after the handshake did not come back within ${PROBE_WAIT_S} s`
            : `neither a text nor a binary message sent after the handshake came back within ` +
              `${PROBE_WAIT_S} s`;
          // --protocol-only is for servers (chat or API endpoints): a client under test echoes.
          console.error(
            `wsconform: warning: ${target.client ? "the client" : sanitize(url.href)} does not ` +
              `echo ${kind}messages (${sent}): the ${needingEcho} cases that need ` +
              `${kind ? `a ${kind}` : "an "}echo will fail${
                target.client
                  ? ""
                  : "; rerun with --protocol-only to test only what does not depend on an echo"
              }`,
          );
        }
        const skipped = notRun.reduce((sum, n) => sum + n.cases.length, 0);
        const against = target.client
          ? `for the client, served at ${sanitize(url.href)}`
          : `against ${sanitize(url.href)}`;
        // A browser's start-up is no case's time: said apart, for the wall time's share.
        const started = clientStartMs === undefined
          ? ""
          : `; the client started in ${formatSeconds(clientStartMs)}`;
        say(
          `wsconform: ${cases.length} cases ${against} (agent "${sanitize(agent)}")${
            options.strict ? ", --strict" : ""
          }${options.protocolOnly ? `, --protocol-only (${skipped} not run)` : ""}${started}`,
        );
        progress.begin(cases);
      },
      onCaseDone: (outcome) => progress.caseDone(outcome),
    });
  } catch (e) {
    if (e instanceof SuiteError && e.reason === "no-case-left") {
      console.error(`wsconform: ${target.origin ? `${target.origin}: ${NONE_LEFT}` : NONE_LEFT}`);
      return { status: 2 };
    }
    if (!(e instanceof SuiteError || e instanceof UsageError || e instanceof BaselineError)) {
      throw e;
    }
    console.error(`wsconform: ${sanitize(e.message)}`);
    return { status: 2 };
  } finally {
    progress.end();
  }
  const { agent, url, outcomes: runs, targetLost } = result;
  const notRun = result.notRun.find((n) => n.why === "needs-echo")?.cases ?? [];
  const untried = result.notRun.find((n) => n.why === "client-never-tried");
  const stopped = result.notRun.find((n) => n.why === "interrupted" || n.why === "target-lost");
  if (targetLost) {
    console.error(
      `wsconform: the target stopped answering at case ${targetLost.id}: ${
        sanitize(targetLost.reason)
      }`,
    );
  }

  const table = summaryTable(runs, { groups: GROUPS, strict: options.strict, paint });
  say();
  say(table.text);
  say(
    `${runs.length} cases, ${table.failed} failed${
      options.strict ? " (NON-STRICT counts, --strict)" : ""
    } in ${formatSeconds(result.elapsedMs)}`,
  );
  const failures = runs.filter((r) => isFailing(r.verdict, options.strict))
    .sort((a, b) => compareIds(a.spec.id, b.spec.id));
  if (failures.length > 0) say("failed cases, with their verdicts (behavior/close):");
  for (const r of failures.slice(0, LIST_LIMIT)) {
    say(`  ${paint("FAILED", "red")} ${r.spec.id} ${r.spec.title}: ${pair(r.verdict)}`);
  }
  if (failures.length > LIST_LIMIT) say(`  … and ${failures.length - LIST_LIMIT} more`);
  if (notRun.length > 0) say(`${notRun.length} cases not run (${NOT_RUN_REASON})`);
  for (const other of [untried, stopped]) {
    if (other) say(`${other.cases.length} cases not run (${sanitize(other.reason)})`);
  }
  const earlier = result.earlierResults ?? 0;
  if (earlier > 0) {
    say(
      `the report also holds ${earlier} result${earlier === 1 ? "" : "s"} of this agent ` +
        "from an earlier run (marked in index.html)",
    );
  }
  const measured = runs.filter((r) => r.findings.length > 0)
    .sort((a, b) => compareIds(a.spec.id, b.spec.id));
  if (measured.length > 0) say("measured:");
  for (const r of measured) say(`  ${r.spec.id} ${r.findings.map((f) => f.text).join(" ")}`);

  let regressions: number | undefined;
  if (baseline !== undefined) {
    regressions = reportComparison(runs, baseline, baselineFile!, agent, options, progress);
  }
  let unwritten = false;
  if (options.writeBaseline !== undefined && stopped) {
    say(`baseline not written: ${stopped.reason}`);
  } else if (options.writeBaseline !== undefined) {
    unwritten = !await writeAgentBaseline(options.writeBaseline, agent, runs, say);
  }

  // For the JUnit failure messages: what a failing case expected and observed, in a line.
  const events = new Map<string, CaseEvents>(
    failures.map((r) => [r.spec.id, result.events.get(r.spec.id)!]),
  );
  const suite: JunitSuite = {
    agent,
    url: url.href,
    started: result.started,
    elapsedMs: result.elapsedMs,
    outcomes: runs,
    events,
    notRun: {
      cases: [...notRun, ...untried?.cases ?? [], ...stopped?.cases ?? []],
      reason: [
        ...notRun.length > 0 ? [NOT_RUN_REASON] : [],
        ...[untried, stopped].flatMap((n) => n ? [n.reason] : []),
      ].join(", or "),
    },
  };
  const bad = regressions !== undefined ? regressions > 0 : failures.length > 0;
  // A target gone mid-run leaves the run incomplete, as an unreachable one does.
  const status = unwritten || targetLost ? 2 : bad ? 1 : 0;
  const noEcho = needingEcho > 0
    ? { failedNeedingEcho: failures.filter((r) => needsUnechoed(r.spec)).length, types: unechoed }
    : undefined;
  return { status, suite, agent, failed: failures.length, regressions, notRun, noEcho, stopped };
}

/** The --baseline an agent is compared with, and its file ("{agent}" in it: the agent's own). */
async function baselineFor(
  options: CliOptions,
  agent: string,
): Promise<{ baseline: Baseline; file: string }> {
  if (options.baselineData) return { baseline: options.baselineData, file: options.baseline! };
  const file = baselinePath(options.baseline!, agent);
  return { baseline: await readBaseline(file), file };
}

/** Writes an agent's --write-baseline file and says so; false (a line on stderr) if it cannot. */
async function writeAgentBaseline(
  template: string,
  agent: string,
  runs: readonly CaseOutcome[],
  say: (text: string) => void,
): Promise<boolean> {
  const path = baselinePath(template, agent);
  try {
    await writeBaseline(path, makeBaseline(agent, runs));
    say(`baseline written: ${path}`);
    return true;
  } catch (e) {
    console.error(`wsconform: cannot write baseline ${path}: ${(e as Error).message}`);
    return false;
  }
}

/**
 * --serve: serves the clients' drivers until SIGINT or SIGTERM, a line when
 * listening and one per case; whenever the reports are written, each agent's
 * baseline is compared and written. Returns the exit status: 2 when it cannot
 * listen or a baseline could not be read or written; with --baseline, the
 * comparison's (1: a case of some agent got worse), else the signal's.
 */
async function serveClients(
  serving: ServeCli,
  options: CliOptions,
  progress: Progress,
  stop: AbortSignal,
): Promise<number> {
  const say = (text = "") => progress.line(text);
  const who = (agent: string) => `agent "${sanitize(agent)}"`;
  /** Each agent's status at its latest baseline check: 0 none worse, 1 some case worse, 2 error. */
  const baselineStatus = new Map<string, 0 | 1 | 2>();
  const baselines: ServedBaselines = new Map();
  let result;
  try {
    result = await serve({
      ...serving,
      reports: { dir: options.out, junit: options.junit, strict: options.strict },
      signal: stop,
      onListening: (url) =>
        say(
          `wsconform: serving ${serving.cases.length} cases to clients at ${url.href} ` +
            "(Autobahn's fuzzingserver protocol; SIGINT or SIGTERM to stop)",
        ),
      onCaseDone: (agent, outcome) =>
        say(`  ${outcome.spec.id} ${who(agent)}: ${pair(outcome.verdict)}`),
      onCaseSkipped: (agent, caseId) =>
        say(`  ${caseId} ${who(agent)}: skipped (the spec's exclude-agent-cases)`),
      onReportsWritten: async ({ agents, results, asked, index, junit }) => {
        say(`reports of ${agents.map(who).join(", ")}: ${index}${junit ? `, ${junit}` : ""}`);
        // /updateReports?agent=A checks A's baseline; the end of serving, every agent's.
        const checked = asked === undefined
          ? results
          : new Map([...results].filter(([agent]) => agent === asked));
        const statuses = await checkServedBaselines(
          checked,
          results.size,
          baselines,
          options,
          progress,
        );
        for (const [agent, status] of statuses) baselineStatus.set(agent, status);
      },
      onError: (e) => console.error(`wsconform: --serve: ${sanitize(e.message)}`),
    });
  } catch (e) {
    if (!(e instanceof CaseServerError)) throw e;
    console.error(`wsconform: --serve: ${sanitize(e.message)}`);
    return 2;
  }
  for (const [agent, outcomes] of result.results) {
    const failed = outcomes.filter((o) => isFailing(o.verdict, options.strict)).length;
    say(`${who(agent)}: ${outcomes.length} cases, ${failed} failed`);
  }
  say(result.reports ? `report: ${result.reports.html}` : "no case finished: no report written");
  const statuses = [...baselineStatus.values()];
  if (statuses.includes(2)) return 2;
  // Stopping is how a serve run ends: with a baseline, the comparison decides.
  if (options.baseline !== undefined && statuses.length > 0) return Math.max(...statuses);
  return SIGNAL_STATUS[stop.reason as StopSignal] ?? 0;
}

/**
 * Each agent's --baseline in a --serve session, read at its first check: a
 * --write-baseline of the same file later in the session does not replace it.
 */
type ServedBaselines = Map<string, ReturnType<typeof baselineFor>>;

/**
 * --serve's --baseline and --write-baseline for the agents in `results` (of
 * `agents` that reported so far): their cases so far compared with their
 * baseline, and written to their file; the status of each (0, 1 some case got
 * worse, 2 a file not read or written).
 */
async function checkServedBaselines(
  results: Map<string, CaseOutcome[]>,
  agents: number,
  baselines: ServedBaselines,
  options: CliOptions,
  progress: Progress,
): Promise<Map<string, 0 | 1 | 2>> {
  const say = (text = "") => progress.line(text);
  const statuses = new Map<string, 0 | 1 | 2>();
  const template = options.writeBaseline;
  // Several agents would overwrite one another's file.
  const shared = template !== undefined && !template.includes("{agent}") && agents > 1;
  if (shared) {
    console.error(
      `wsconform: --write-baseline ${template}: ${agents} agents reported; put "{agent}" ` +
        "in the file name so each gets its own baseline",
    );
  }
  for (const [agent, runs] of results) {
    let status: 0 | 1 | 2 = 0;
    if (options.baseline !== undefined) {
      try {
        if (!baselines.has(agent)) baselines.set(agent, baselineFor(options, agent));
        const { baseline, file } = await baselines.get(agent)!;
        status = reportComparison(runs, baseline, file, agent, options, progress) > 0 ? 1 : 0;
      } catch (e) {
        if (!(e instanceof BaselineError)) throw e;
        console.error(`wsconform: ${sanitize(e.message)}`);
        status = 2;
      }
    }
    if (
      template !== undefined && (shared || !await writeAgentBaseline(template, agent, runs, say))
    ) {
      status = 2;
    }
    statuses.set(agent, status);
  }
  return statuses;
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
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    // A permission the command line left out (deno run --allow-read=...): one line, no stack.
    if (!(e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied)) {
      throw e;
    }
    console.error(`wsconform: ${sanitize(e.message)}`);
    Deno.exit(2);
  }
}
