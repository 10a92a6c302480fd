/**
 * wsconform as a library: runSuite() runs the catalog's cases (or a selection)
 * against a server and returns the verdicts; it prints nothing. The session
 * observes, verdict.ts judges; this layer puts the two together with the case
 * catalog and the report writers. cli.ts is a shell over it.
 */
import { CLIENT_CASES, GROUPS, isAutobahnCase, SERVER_CASES } from "../fixtures/mod.ts";
import type { CaseSpec } from "./case.ts";
import { type CaseServer, CaseServerError, startCaseServer } from "./case_server.ts";
import {
  type ClientDriver,
  type ClientExit,
  ClientStartError,
  commandClient,
  embeddedClient,
  splitCommand,
} from "./client_driver.ts";
import type { HeaderList } from "./handshake.ts";
import { CasePages, writeHtmlReports } from "./html.ts";
import { type CaseEvents, eventsOf } from "./junit.ts";
import { type JudgedRun, writeCaseReport, writeIndex } from "./report.ts";
import { spawnReference } from "./reference_server.ts";
import { runCases, type RunOptions } from "./runner.ts";
import { type CaseRun, runCase, runClientCase, type SessionOptions } from "./session.ts";
import { globToRegExp } from "./spec.ts";
import { type MessageType, stepTraits } from "./steps.ts";
import { connectRaw } from "./transport.ts";
import { type CaseOutcome, judgeCase, outcomeOf } from "./verdict.ts";

/** Runs one case and judges what it observed. */
export async function runAndJudgeCase(spec: CaseSpec, options: SessionOptions): Promise<JudgedRun> {
  const run = await runCase(spec, options);
  return { ...run, ...judgeCase(spec, run) };
}

export interface JudgedRunOptions extends Omit<RunOptions<CaseOutcome>, "onCaseDone"> {
  /** Called with each judged case, observation included, before it is dropped. */
  onCaseDone?: (run: JudgedRun) => void | Promise<void>;
}

/** Runs the cases (runner.ts runCases) and judges each; returns their outcomes. */
export function runAndJudgeCases(
  cases: readonly CaseSpec[],
  options: JudgedRunOptions,
): Promise<CaseOutcome[]> {
  return runCases(cases, {
    ...options,
    onCaseDone: async (run) => {
      const judged = judgeCase(run.spec, run);
      await options.onCaseDone?.({ ...run, ...judged });
      return outcomeOf(run, judged);
    },
  });
}

// ---- case selection ---------------------------------------------------------

/** Why runSuite() could not run, or a selection is empty; `message` says it in a line. */
export class SuiteError extends Error {
  constructor(
    readonly reason:
      | "selection"
      | "embedded-server"
      | "unreachable"
      | "no-case-left"
      | "client-start",
    message: string,
  ) {
    super(message);
  }
}

/** A case pattern as a test on ids: an id, a glob, or a prefix (`6`, `6.4`) meaning `6.*`. */
export function casePattern(pattern: string): (id: string) => boolean {
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
          if (!onUnmatched) throw new SuiteError("selection", `no case matches "${p}"`);
          onUnmatched(p);
          return [];
        }
        return [test];
      });
  const inc = include === undefined ? undefined : patterns(include);
  const exc = exclude === undefined ? [] : patterns(exclude);
  const chosen = all.filter((c) => (!inc || inc.some((t) => t(c.id))) && !exc.some((t) => t(c.id)));
  if (chosen.length === 0) throw new SuiteError("selection", "the selection leaves no case to run");
  return chosen;
}

export type { MessageType };

/**
 * Whether a case's verdict depends on the server echoing what the suite sent:
 * its expectation (OK or NON-STRICT) lists a message, or it runs round trips.
 */
export function needsEcho(spec: CaseSpec): boolean {
  return echoTypes(spec).size > 0;
}

/** The types of message a case needs echoed: those its expectation lists, and its round trips'. */
export function echoTypes(spec: CaseSpec): Set<MessageType> {
  const { ok, nonStrict = [] } = spec.expect;
  const types = new Set<MessageType>();
  for (const e of [...ok, ...nonStrict]) {
    if ("message" in e) types.add(e.binary ? "binary" : "text");
  }
  for (const step of spec.steps) {
    const { echoType } = stepTraits(step);
    if (echoType) types.add(echoType);
  }
  return types;
}

// ---- reaching the target ----------------------------------------------------

/** The message the probe sends, as text and as binary, and expects back. */
const ECHO_PROBE = "wsconform echo probe";
/** Seconds the probe waits for each echo. */
export const PROBE_WAIT_S = 2;
/** Bound on reaching the target (TCP, and TLS for wss://) before the run. */
const PREFLIGHT_MS = 4000;

/** Whether the target echoed a text and a binary message; absent when not checked or not open. */
export type Echoes = Record<MessageType, boolean | undefined>;

/**
 * Connects as the cases will, TLS handshake included (Deno.connectTls may only
 * fail at the first read or write): an unknown issuer, a CA file that is not
 * PEM or a wss:// URL on a plain port fail here, in one line, before any case.
 */
async function preflight(url: URL, caCerts: string[] | undefined): Promise<void> {
  const conn = await connectRaw({ url, caCerts, timeoutMs: PREFLIGHT_MS });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    if (url.protocol !== "wss:") return;
    const failure = await Promise.race([
      (conn as Deno.TlsConn).handshake().then(
        () => undefined,
        (e) => `TLS handshake with ${url.host} failed: ${(e as Error).message}`,
      ),
      new Promise<string>((resolve) => {
        timer = setTimeout(
          () => resolve(`no TLS handshake with ${url.host} within ${PREFLIGHT_MS} ms`),
          PREFLIGHT_MS,
        );
      }),
    ]);
    if (failure) throw new Error(failure);
  } finally {
    clearTimeout(timer);
    conn.close();
  }
}

/**
 * The probe as a case: a message of each type in `types` to echo, or with
 * none, a handshake and a close.
 */
function probeSpec(types: readonly MessageType[]): CaseSpec {
  const messages = types.map((type) => ({ binary: type === "binary", payload: ECHO_PROBE }));
  return {
    id: "probe",
    title: "Opening handshake probe",
    rfc: "4.1",
    requirement: "The server completes the opening handshake.",
    // The echoes close at once (autoClose); without them, the suite closes after PROBE_WAIT_S.
    steps: types.length
      ? [
        ...messages.map((message) => ({ kind: "message" as const, message })),
        { kind: "closeAfter", closeAfter: PROBE_WAIT_S },
      ]
      : [{ kind: "close", close: { code: 1000 } }],
    expect: {
      ok: messages.map(({ binary, payload }) => ({ message: payload, binary })),
      close: { by: "suite", codes: [1000], clean: false },
    },
    timeout: PROBE_WAIT_S + 4,
  };
}

/** One probe connection: a handshake, and with `type`, one message of that type to echo. */
async function probeSession(options: SessionOptions, type?: MessageType) {
  return await runCase(probeSpec(type ? [type] : []), options);
}

/** Whether a probe's peer echoed its message of that type; undefined when it did not open. */
function echoed(run: CaseRun, binary: boolean): boolean | undefined {
  return run.close.opened
    ? run.received.some((e) =>
      e.type === "message" && e.binary === binary &&
      new TextDecoder().decode(e.payload) === ECHO_PROBE
    )
    : undefined;
}

/**
 * Checks that the target can be reached at all (a clear error within seconds
 * beats 301 failed cases), and learns its Server header for the agent name.
 * With `checkEcho`, sends one text and one binary message, each on its own
 * connection, and tells which came back within PROBE_WAIT_S: the cases that
 * need an echo of a type the target does not echo fail, and end sooner.
 */
async function probe(
  url: URL,
  options: SessionOptions,
  checkEcho: boolean,
): Promise<{ serverHeader?: string; echoes?: Echoes }> {
  await preflight(url, options.caCerts);
  if (!checkEcho) return { serverHeader: (await probeSession(options)).serverHeader };
  const [text, binary] = await Promise.all(
    (["text", "binary"] as const).map((type) => probeSession(options, type)),
  );
  return {
    serverHeader: text.serverHeader ?? binary.serverHeader,
    echoes: { text: echoed(text, false), binary: echoed(binary, true) },
  };
}

/**
 * Tells a target that stopped answering mid-run (it crashed, or was stopped)
 * from a case that failed: a case that never reached the target (no TCP
 * connection) makes the suite connect once more; when that fails too, the
 * target is gone, and this case and those after it are not run.
 */
class TargetLoss {
  /** Where and why the target stopped answering. */
  at?: { id: string; reason: string };
  /** The connection attempt in progress, shared by the cases that failed meanwhile. */
  #attempt?: Promise<string | undefined>;

  constructor(readonly url: URL, readonly caCerts: string[] | undefined) {}

  /** Whether `run` found the target gone (it is then not to be reported). */
  async check(run: CaseRun): Promise<boolean> {
    const reached = run.close.opened ||
      run.wire.entries.some((e) => e.kind === "bytes" && e.dir === "tx");
    if (reached) return false;
    this.#attempt ??= preflight(this.url, this.caCerts).then(() => undefined, (e) => e.message);
    const failure = await this.#attempt;
    if (failure === undefined) {
      this.#attempt = undefined;
      return false;
    }
    this.at ??= { id: run.spec.id, reason: failure };
    return true;
  }
}

// ---- runSuite ---------------------------------------------------------------

export interface SuiteOptions {
  /** The server under test (ws:// or wss://); absent: the embedded reference server (Deno's). */
  url?: URL | string;
  /**
   * Client mode: the suite is the server and tests a client, which it has
   * connect to each case's URL: `command` ("CMD {url}", spawn mode, a process
   * per case) or, without it, the embedded client (Deno's own WebSocket);
   * `driver`: the caller's driver instead (a browser's, browserClient() of
   * harness/browser_driver.ts), started and stopped by the run.
   * `connectTimeoutMs`: how long a case waits for its client (default 15 s).
   * `tls`: PEM certificate and key, the cases are served over wss:// (the
   * client must trust the certificate).
   */
  client?: {
    command?: string;
    driver?: ClientDriver;
    connectTimeoutMs?: number;
    tls?: { cert: string; key: string };
  };
  /**
   * The name in the reports; default the embedded server's, the Server header,
   * else host:port; in client mode the embedded client's, else the command's program.
   */
  agent?: string;
  /**
   * The cases to run: a list, or one chosen once the agent is known (a spec
   * file's exclude-agent-cases); default every case of the catalog (in client
   * mode, the cases of the groups that run against clients).
   */
  cases?: readonly CaseSpec[] | ((agent: string) => readonly CaseSpec[]);
  /** Cases in parallel, each on its own connection (default 32, or the client driver's `jobs`). */
  jobs?: number;
  /** Subprotocols offered in every handshake (a case's own win). */
  protocols?: string[];
  /** Headers added to every handshake request (a token, a cookie). */
  headers?: HeaderList;
  /** The Origin of every handshake (a case's own wins). */
  origin?: string;
  /** PEM certificates to trust for a wss:// target with a private CA. */
  caCerts?: string[];
  /** Run only the cases whose verdict needs no echo (chat or API endpoints). */
  protocolOnly?: boolean;
  /** Aborting it stops the run: the cases that finished are returned, the rest listed as not run. */
  signal?: AbortSignal;
  /**
   * Write the reports to `dir` as the run goes: a JSON file per case and
   * index.json; and, unless the caller brings its own `pages` (it then writes
   * the HTML itself, writeHtmlReports()), index.html and a page per case.
   */
  reports?: { dir: string; pages?: CasePages };
  /**
   * Called once the target is reached and the cases are chosen, before any
   * runs; the run waits for it, and stops with what it throws.
   */
  onStart?: (start: SuiteStart) => void | Promise<void>;
  /** Called as each case is judged. */
  onCaseDone?: (outcome: CaseOutcome) => void;
}

export interface SuiteStart {
  agent: string;
  url: URL;
  cases: readonly CaseSpec[];
  /** What the probe found the target echoes (absent with protocolOnly: not checked). */
  echoes?: Echoes;
  /** Client mode: how long the client took to start (a browser: until its page was ready). */
  clientStartMs?: number;
  /** Cases selected and left out before the run (protocolOnly: they need an echo). */
  notRun: NotRun[];
}

/** Cases selected but not run, and why. */
export interface NotRun {
  cases: CaseSpec[];
  /**
   * "needs-echo": left out by protocolOnly; "client-never-tried": the client could not
   * try the case as it is: its URL (a browser refused it), or the subprotocols it asks
   * the client to offer (a command client is not told them); the others stopped the run
   * part-way.
   */
  why: "needs-echo" | "interrupted" | "target-lost" | "client-never-tried";
  reason: string;
}

export interface SuiteResult extends Omit<SuiteStart, "notRun"> {
  started: Date;
  /** Wall time of the cases, in milliseconds. */
  elapsedMs: number;
  /** The cases that ran, judged, in the order of `cases`. */
  outcomes: CaseOutcome[];
  /** For every case that ran, by id: the events expected and observed, in words. */
  events: Map<string, CaseEvents>;
  /** Cases selected and not run: left out before the run, or after it stopped part-way. */
  notRun: NotRun[];
  /** Where and why the target stopped answering, when it did. */
  targetLost?: { id: string; reason: string };
  /** With `reports`: results of this agent in index.json that an earlier run wrote. */
  earlierResults?: number;
}

/**
 * Runs the suite against one server and returns the judged cases. Throws a
 * SuiteError, before any case runs, when the embedded server cannot start,
 * the target cannot be reached, or protocolOnly leaves no case; and what
 * `cases` or `onStart` throw.
 */
export async function runSuite(options: SuiteOptions = {}): Promise<SuiteResult> {
  if (options.client) return await runClientSuite(options, options.client);
  let embedded;
  if (options.url === undefined) {
    try {
      embedded = await spawnReference();
    } catch (e) {
      throw new SuiteError(
        "embedded-server",
        `cannot start the embedded reference server: ${(e as Error).message}`,
      );
    }
  }
  try {
    const url = new URL(options.url ?? embedded!.url);
    const session: SessionOptions = {
      url,
      protocols: options.protocols,
      headers: options.headers,
      origin: options.origin,
      caCerts: options.caCerts,
      userAgent: "wsconform",
      protocolOnly: options.protocolOnly,
    };
    let found;
    try {
      found = await probe(url, session, !options.protocolOnly);
    } catch (e) {
      throw new SuiteError("unreachable", `cannot reach ${url.href}: ${(e as Error).message}`);
    }
    const agent = options.agent ?? embedded?.agent ?? found.serverHeader ?? url.host;
    const selected = typeof options.cases === "function"
      ? options.cases(agent)
      : options.cases ?? SERVER_CASES;
    const notRun: NotRun[] = [];
    let cases = [...selected];
    if (options.protocolOnly) {
      const needingEcho = cases.filter(needsEcho);
      cases = cases.filter((c) => !needsEcho(c));
      if (cases.length === 0) {
        throw new SuiteError(
          "no-case-left",
          "protocolOnly: every selected case needs an echo, so none is left to run",
        );
      }
      if (needingEcho.length > 0) {
        notRun.push({ cases: needingEcho, why: "needs-echo", reason: "they need an echo" });
      }
    }
    const start: SuiteStart = { agent, url, cases, echoes: found.echoes, notRun };
    await options.onStart?.(start);
    const lost = new TargetLoss(url, options.caCerts);
    return { ...start, ...await runChosen(start, session, options, { lost }) };
  } finally {
    await embedded?.close();
  }
}

/**
 * How the cases reach their peer: against a server, a TargetLoss tells a
 * server gone from a failed case; in client mode, runOne has the client connect.
 */
interface PeerAccess extends Pick<RunOptions<unknown>, "runOne" | "stallSilentPeer"> {
  lost?: TargetLoss;
  /**
   * Client mode: the cases the client could not try as they are (untriedReason,
   * untestedOffer), with why, in a sentence. They are not run, never judged as a
   * pass or a failure.
   */
  neverTried?: ReadonlyMap<string, string>;
}

/** Runs the chosen cases, writing reports as they finish. */
async function runChosen(
  start: SuiteStart,
  session: SessionOptions,
  options: SuiteOptions,
  { lost, ...access }: PeerAccess,
): Promise<Omit<SuiteResult, Exclude<keyof SuiteStart, "notRun">>> {
  const { agent, cases } = start;
  const reports = options.reports;
  const pages = reports && (reports.pages ?? new CasePages(reports.dir, GROUPS));
  const events = new Map<string, CaseEvents>();
  const targetGone = new AbortController();
  const neverTried: { spec: CaseSpec; reason: string }[] = [];
  const started = new Date();
  const t0 = performance.now();
  try {
    await pages?.plan(agent, cases.map((c) => c.id));
    const judged = await runCases(cases, {
      ...session,
      ...access,
      echoes: start.echoes,
      jobs: options.jobs ?? 32,
      signal: options.signal
        ? AbortSignal.any([options.signal, targetGone.signal])
        : targetGone.signal,
      onCaseDone: async (run) => {
        // A case that found the target gone is not run, like the cases after it.
        if (await lost?.check(run)) {
          targetGone.abort();
          return undefined;
        }
        const untried = access.neverTried?.get(run.spec.id);
        if (untried !== undefined) {
          neverTried.push({ spec: run.spec, reason: untried });
          return undefined;
        }
        const judgement = judgeCase(run.spec, run);
        if (reports) {
          const reportfile = await writeCaseReport(reports.dir, agent, { ...run, ...judgement });
          pages!.write(agent, run.spec.id, reportfile);
        }
        events.set(run.spec.id, eventsOf(run));
        const outcome = outcomeOf(run, judgement);
        options.onCaseDone?.(outcome);
        return outcome;
      },
    });
    const elapsedMs = performance.now() - t0;
    const outcomes = judged.filter((outcome) => outcome !== undefined);
    const finished = new Set([...outcomes, ...neverTried].map((o) => o.spec.id));
    const notRun = [...start.notRun];
    if (neverTried.length > 0) {
      const reasons = new Set(neverTried.map((n) => n.reason));
      notRun.push({
        cases: neverTried.map((n) => n.spec),
        why: "client-never-tried",
        reason: `${[...reasons][0]}${
          reasons.size > 1 ? ` (and ${reasons.size - 1} other reasons, in the wire logs)` : ""
        }`,
      });
    }
    if (finished.size < cases.length) {
      notRun.push({
        cases: cases.filter((c) => !finished.has(c.id)),
        ...lost?.at
          ? { why: "target-lost", reason: `the target stopped answering at case ${lost.at.id}` }
          : { why: "interrupted", reason: `interrupted by ${options.signal?.reason}` },
      });
    }
    const earlierResults = reports
      ? (await writeIndex(reports.dir, agent, outcomes)).earlier
      : undefined;
    if (reports && !reports.pages) {
      await pages!.close();
      await writeHtmlReports(reports.dir, GROUPS, pages);
    }
    return {
      started,
      elapsedMs,
      outcomes,
      events,
      notRun,
      ...(lost?.at ? { targetLost: lost.at } : {}),
      ...(earlierResults !== undefined ? { earlierResults } : {}),
    };
  } finally {
    if (reports && !reports.pages) await pages!.close();
  }
}

// ---- client mode --------------------------------------------------------------

/**
 * How long a case waits for its client to connect, by default: a spawned client
 * is a process to start (a runtime's start-up, on a machine busy with the others).
 */
const CLIENT_CONNECT_MS = 15_000;

/**
 * Client mode: starts the client's driver and a case server, and runs each
 * case on the connection its client makes to the case's URL. The client's
 * part ends with its case (its process is stopped by its PID).
 */
async function runClientSuite(
  options: SuiteOptions,
  { command, driver: given, connectTimeoutMs = CLIENT_CONNECT_MS, tls }: NonNullable<
    SuiteOptions["client"]
  >,
): Promise<SuiteResult> {
  let driver: ClientDriver;
  let clientStartMs: number;
  try {
    driver = given ??
      (command === undefined ? embeddedClient({ trustedCert: tls?.cert }) : commandClient(command));
    const starting = performance.now();
    await driver.start();
    clientStartMs = performance.now() - starting;
  } catch (e) {
    if (!(e instanceof ClientStartError)) throw e;
    throw new SuiteError("client-start", e.message);
  }
  try {
    const agent = options.agent ?? driver.agent ?? programName(command!);
    const cases = typeof options.cases === "function"
      ? options.cases(agent)
      : options.cases ?? CLIENT_CASES;
    let server;
    try {
      server = startCaseServer({ cases, tls, isAutobahn: isAutobahnCase });
    } catch (e) {
      if (!(e instanceof CaseServerError)) throw e;
      throw new SuiteError("client-start", e.message);
    }
    try {
      const neverTried = new Map<string, string>();
      const connectOnce = async (spec: CaseSpec, session: SessionOptions): Promise<CaseRun> => {
        const expected = server.expect(spec.id, agent, connectTimeoutMs);
        const client = driver.connect(expected.url, {
          protocols: spec.clientHandshake?.offerProtocols,
        });
        const connection = Promise.race([
          expected.connection.then((accepted) =>
            accepted ??
              {
                missing: `the client did not connect within ${connectTimeoutMs} ms`,
                timedOut: true,
              }
          ),
          // A client that ends before it connects (a command that fails) ends the wait;
          // one that connected and ended at once has its connection handed over meanwhile.
          client.done.then(async (exit) => {
            const accepted = await settledWithin(expected.connection, EXIT_GRACE_MS);
            if (accepted) return accepted;
            const untried = untriedReason(exit);
            if (untried !== undefined) neverTried.set(spec.id, untried);
            return { missing: `the client ended before it connected: ${exitText(exit)}` };
          }),
        ]);
        let run: CaseRun | undefined;
        try {
          run = await runClientCase(spec, { ...session, connection });
          const accepted = await connection;
          if (spec.measure?.includes("redirect") && "redirect" in accepted) {
            run.handshake.redirect = {
              location: accepted.redirect.href,
              followedBy: await redirectFollowed(expected.redirected, client.done),
            };
          }
          return run;
        } finally {
          expected.end();
          // A connection that came too late for its case is closed.
          const used = await connection;
          expected.connection.then((late) => late && late !== used && late.conn.close());
          const exit = await client.stop();
          run?.wire.note(`the client's part ended: ${exitText(exit)}`);
          if (session.closeTimeoutMs === UNANSWERED_CLOSE_MS) {
            run?.wire.note(
              `the client left the probe's close unanswered: ${UNANSWERED_CLOSE_MS} ms for each ` +
                "answer to a close, not 1 s",
            );
          }
        }
      };
      // A case about the key's freshness (0.7.8) has the client connect again once it ended.
      const runOne = async (spec: CaseSpec, session: SessionOptions): Promise<CaseRun> => {
        neverTried.delete(spec.id); // the probe's try of the first case is not the case's
        const run = await connectOnce(spec, session);
        const untested = untestedOffer(spec, run);
        if (untested !== undefined) neverTried.set(spec.id, untested);
        if (!spec.clientHandshake?.twice || !run.close.opened) return run;
        // Admitted once: the runner counts the case's connection once.
        const again = await connectOnce(spec, { ...session, admit: undefined });
        neverTried.delete(spec.id); // the case ran on its first connection
        const keys = again.handshake.request?.keys ?? [];
        run.handshake.request?.keys.push(...keys);
        run.wire.note(
          `second connection: ${keys.length ? `key ${keys}` : again.close.notCleanReason}`,
        );
        return run;
      };
      const session: SessionOptions = { url: server.url, signal: options.signal };
      const { echoes, answersClose } = await probeClient(cases[0].id, runOne, session, server);
      const start: SuiteStart = {
        agent,
        url: server.url,
        cases: [...cases],
        echoes,
        clientStartMs,
        notRun: [],
      };
      await options.onStart?.(start);
      const closing = answersClose ? {} : { closeTimeoutMs: UNANSWERED_CLOSE_MS };
      return {
        ...start,
        ...await runChosen(start, { ...session, ...closing }, {
          ...options,
          jobs: options.jobs ?? driver.jobs,
        }, {
          runOne,
          stallSilentPeer: false,
          neverTried,
        }),
      };
    } finally {
      await server.close();
    }
  } finally {
    await driver.stop();
  }
}

/**
 * How long the cases wait for the answer to the suite's close frame from a
 * client that left the probe's close unanswered (any other client: 1 s, as
 * Autobahn): such a client costs every case that wait, and the heavy cases run
 * one at a time.
 */
const UNANSWERED_CLOSE_MS = 250;

/**
 * Client mode's probe, as probe() is server mode's: the client connects once,
 * to the first case's URL, and is sent a text and a binary message, then a
 * close. A client that never connects (or connects and sends no request) fails
 * every case alike: that is a SuiteError, before any case. The types it does
 * not echo within PROBE_WAIT_S make the cases waiting for them end sooner, and
 * so does a close it does not answer.
 */
async function probeClient(
  caseId: string,
  runOne: (spec: CaseSpec, session: SessionOptions) => Promise<CaseRun>,
  session: SessionOptions,
  server: CaseServer,
): Promise<{ echoes: Echoes; answersClose: boolean }> {
  const run = await runOne({ ...probeSpec(["text", "binary"]), id: caseId }, session);
  if (!run.close.opened) {
    const silent = server.silentClients > 0
      ? ` (it opened ${server.silentClients} TCP connection(s) but sent no request in time)`
      : "";
    throw new SuiteError(
      "unreachable",
      `the client never connected: ${run.close.notCleanReason}${silent}`,
    );
  }
  return {
    echoes: { text: echoed(run, false), binary: echoed(run, true) },
    answersClose: !run.close.closeHandshakeTimeout,
  };
}

/** How long a client that ended may still have its connection handed over. */
const EXIT_GRACE_MS = 1000;

/** What `promise` settles with within `ms`, else undefined. */
async function settledWithin<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) =>
    timer = setTimeout(() => resolve(undefined), ms)
  );
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Why a client never tried to connect: its WebSocket could not be created (a browser refused the URL). */
function untriedReason(exit: ClientExit): string | undefined {
  if (exit.kind !== "websocket") return undefined;
  const failed = exit.events.find((e) => e.type === "failed");
  return failed && "message" in failed
    ? `the client could not try their URL: ${failed.message}`
    : undefined;
}

/**
 * Why a client's try of a case asking it to offer subprotocols does not test
 * the case: it offered none (a command client is not told what to offer; the
 * answer selecting one when none was offered is another case's, 0.8.14).
 */
function untestedOffer(spec: CaseSpec, run: CaseRun): string | undefined {
  const asked = spec.clientHandshake?.offerProtocols;
  if (!asked || !run.close.opened || run.handshake.request?.protocols.length) return undefined;
  return `the client offered no subprotocol where asked for ${asked.join(", ")}: a command ` +
    "client is not told what to offer, its command chooses";
}

/**
 * How long after its case a client has to come to the case's redirect, unless
 * its part ended first: one that follows comes at once, but a busy machine
 * may hold it up.
 */
const REDIRECT_WAIT_MS = 2000;

/** The request target of the connection that followed a case's redirect, if one comes in time. */
async function redirectFollowed(
  redirected: Promise<string>,
  clientDone: Promise<ClientExit>,
): Promise<string | undefined> {
  const ended = clientDone.then(() => settledWithin(redirected, EXIT_GRACE_MS));
  return await settledWithin(Promise.race([redirected, ended]), REDIRECT_WAIT_MS);
}

/** How a client's part ended, in a line for the wire log. */
function exitText(exit: ClientExit): string {
  if (exit.kind === "websocket") {
    const last = exit.events.at(-1);
    return `the client's WebSocket reported ${
      exit.events.map((e) => e.type).join(", ") || "nothing"
    }${last && "message" in last ? ` (${last.message})` : ""}${
      exit.stopped ? "; stopped by the suite" : ""
    }`;
  }
  const stderr = exit.stderr.trim().split("\n").at(-1);
  return `exit code ${exit.code}${exit.stopped ? " (stopped by the suite)" : ""}${
    stderr ? `; stderr: ${stderr}` : ""
  }`;
}

/** A spawn-mode client's name: its program's, without the path. */
function programName(command: string): string {
  return splitCommand(command)[0].split("/").pop()!;
}
