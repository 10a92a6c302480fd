/**
 * Serve mode (`--serve`), Autobahn's fuzzingserver: the suite listens, and
 * clients driven by their own Autobahn drivers (ws's test/autobahn.js,
 * python-websockets' compliance client) ask for the case count, run cases one
 * /runCase connection at a time, ask for each case's status and for the
 * reports. Each case is judged and its report written as it finishes;
 * /updateReports, and the end of serving, write index.json, the HTML pages
 * and, when asked, JUnit. Several agents may use one server, as in Autobahn.
 *
 * A library layer, as suite.ts: it prints nothing; the CLI prints from the
 * callbacks.
 */
import { CLIENT_CASES, GROUPS, isAutobahnCase } from "../fixtures/mod.ts";
import type { CaseSpec } from "./case.ts";
import { type CaseConnection, startCaseServer } from "./case_server.ts";
import { writeHtmlReports } from "./html.ts";
import { type CaseEvents, eventsOf, type JunitSuite, writeJunit } from "./junit.ts";
import { writeCaseReport, writeIndex } from "./report.ts";
import { runClientCase } from "./session.ts";
import { type CaseOutcome, judgeCase, outcomeOf } from "./verdict.ts";

/** Autobahn's fuzzingserver port. */
export const AUTOBAHN_PORT = 9001;

export interface ServeOptions {
  /** Default AUTOBAHN_PORT; 0: any free port (onListening tells which). */
  port?: number;
  /** PEM text of the certificate (chain) and its key: the server speaks wss://. */
  tls?: { cert: string; key: string };
  /** The cases served, numbered in Autobahn's order; default those of client mode. */
  cases?: readonly CaseSpec[];
  /**
   * Whether an agent skips a case (a spec's exclude-agent-cases): its /runCase
   * connection is opened and closed at once, as Autobahn does, and no result kept.
   */
  skips?: (agent: string, caseId: string) => boolean;
  /** Where the reports go; `junit`: also this JUnit file, with every agent. */
  reports: { dir: string; junit?: string; strict?: boolean };
  /** Aborting it stops serving: the cases in flight are dropped, the reports written. */
  signal: AbortSignal;
  /** Called once listening, with the URL the drivers are to use. */
  onListening?: (url: URL) => void;
  /** Called as each case is judged and its report written. */
  onCaseDone?: (agent: string, outcome: CaseOutcome) => void;
  /** Called when a case is skipped for its agent. */
  onCaseSkipped?: (agent: string, caseId: string) => void;
  /**
   * Called when the reports were written (on /updateReports and at the end);
   * awaited before /updateReports is answered (a baseline written then is there
   * when the driver goes on).
   */
  onReportsWritten?: (written: ReportsWritten) => void | Promise<void>;
  /** Called when a case or a report could not be completed; serving goes on. */
  onError?: (error: Error) => void;
}

export interface ReportsWritten {
  /** The agents whose results index.json now holds from this session. */
  agents: string[];
  /** Each agent's judged cases so far, in Autobahn's order. */
  results: Map<string, CaseOutcome[]>;
  /** The agent whose /updateReports asked for them; undefined at the end of serving. */
  asked?: string;
  index: string;
  html: string;
  junit?: string;
}

/** One agent's judged cases, by id (a case run again replaces its result). */
interface AgentResults {
  started: Date;
  outcomes: Map<string, CaseOutcome>;
  events: Map<string, CaseEvents>;
}

export interface ServeResult {
  /** The judged cases by agent, in Autobahn's order. */
  results: Map<string, CaseOutcome[]>;
  /** The reports written at the end; undefined when no case finished. */
  reports?: ReportsWritten;
}

/** How long the cases in flight have to end once serving stops (they are aborted). */
const STOP_GRACE_MS = 5000;

/**
 * Serves until `signal` is aborted, then writes the reports and returns. Throws
 * a CaseServerError (one line) when it cannot listen: a port in use, a
 * certificate or key that is not PEM.
 */
export async function serve(options: ServeOptions): Promise<ServeResult> {
  const cases = options.cases ?? CLIENT_CASES;
  const specs = new Map(cases.map((c) => [c.id, c]));
  const results = new Map<string, AgentResults>();
  /** The cases running, by agent and id: a status asked for meanwhile waits for its result. */
  const inFlight = new Map<string, Promise<void>>();
  const { dir } = options.reports;
  // index.json and the pages are read and rewritten: one writer at a time.
  let writing = Promise.resolve();
  const serialized = <T>(write: () => Promise<T>): Promise<T> => {
    const done = writing.then(write);
    writing = done.then(() => {}, () => {});
    return done;
  };

  /** Each agent's judged cases, in Autobahn's order. */
  const ordered = () =>
    new Map(
      [...results].map((
        [agent, { outcomes }],
      ) => [agent, cases.filter((c) => outcomes.has(c.id)).map((c) => outcomes.get(c.id)!)]),
    );
  const writeReports = (asked?: string): Promise<ReportsWritten | undefined> =>
    serialized(async () => {
      if (results.size === 0) return undefined;
      let index = "";
      for (const [agent, agentResults] of results) {
        index = (await writeIndex(dir, agent, [...agentResults.outcomes.values()])).path;
      }
      const html = await writeHtmlReports(dir, GROUPS);
      const junit = options.reports.junit === undefined
        ? undefined
        : await writeJunit(options.reports.junit, [...results].map(junitSuite), {
          groups: GROUPS,
          strict: options.reports.strict,
        });
      const written = {
        agents: [...results.keys()],
        results: ordered(),
        ...(asked === undefined ? {} : { asked }),
        index,
        html,
        junit,
      };
      await options.onReportsWritten?.(written);
      return written;
    });

  const runOne = async (connection: CaseConnection): Promise<void> => {
    const { agent, caseId } = connection;
    const skipped = options.skips?.(agent, caseId) ?? false;
    const spec = skipped ? skippedCase(caseId) : specs.get(caseId)!;
    const started = new Date();
    let run;
    try {
      run = await runClientCase(spec, {
        url: server.url,
        signal: options.signal,
        connection: Promise.resolve(connection),
      });
    } catch (error) {
      // The client is not left waiting for a case that cannot go on.
      try {
        connection.conn.close();
      } catch { /* already closed */ }
      throw error;
    }
    // A case cut short by the stop is not reported, as in a run stopped by a signal.
    if (options.signal.aborted) return;
    if (skipped) return options.onCaseSkipped?.(agent, caseId);
    const judged = judgeCase(spec, run);
    let agentResults = results.get(agent);
    if (!agentResults) {
      agentResults = { started, outcomes: new Map(), events: new Map() };
      results.set(agent, agentResults);
    }
    const outcome = outcomeOf(run, judged);
    agentResults.outcomes.set(caseId, outcome);
    agentResults.events.set(caseId, eventsOf(run));
    try {
      await serialized(() => writeCaseReport(dir, agent, { ...run, ...judged }));
    } catch (error) {
      options.onError?.(
        new Error(`cannot write the report of case ${caseId}: ${(error as Error).message}`),
      );
    }
    options.onCaseDone?.(agent, outcome);
  };

  const server = startCaseServer({
    cases,
    isAutobahn: isAutobahnCase,
    port: options.port ?? AUTOBAHN_PORT,
    tls: options.tls,
    onRunCase: (connection) => {
      const key = `${connection.agent}\n${connection.caseId}`;
      const task = runOne(connection).catch((error) => options.onError?.(error));
      inFlight.set(key, task);
      task.finally(() => inFlight.get(key) === task && inFlight.delete(key));
    },
    // A driver asks as soon as its case's connection closed: the judging may still be going on.
    caseStatus: async (caseId, agent) => {
      await inFlight.get(`${agent}\n${caseId}`);
      return results.get(agent)?.outcomes.get(caseId)?.verdict.behavior;
    },
    onUpdateReports: async (agent) => {
      try {
        await writeReports(agent);
      } catch (error) {
        options.onError?.(new Error(`cannot write the reports: ${(error as Error).message}`));
        throw error;
      }
    },
  });
  try {
    options.onListening?.(server.url);
    if (!options.signal.aborted) {
      await new Promise((resolve) =>
        options.signal.addEventListener("abort", resolve, { once: true })
      );
    }
  } finally {
    await server.close();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled(inFlight.values()),
      new Promise((resolve) => timer = setTimeout(resolve, STOP_GRACE_MS)),
    ]);
    clearTimeout(timer);
  }
  let reports: ReportsWritten | undefined;
  try {
    reports = await writeReports();
  } catch (error) {
    options.onError?.(new Error(`cannot write the reports: ${(error as Error).message}`));
  }
  return { results: ordered(), ...(reports ? { reports } : {}) };
}

/** An agent's results as a JUnit test suite: the cases it ran. */
function junitSuite([agent, { started, outcomes, events }]: [string, AgentResults]): JunitSuite {
  return { agent, started, outcomes: [...outcomes.values()], events };
}

/**
 * A case the agent skips: the connection is opened and closed with 1000 at
 * once (Autobahn sends its close as soon as the connection is open).
 */
function skippedCase(caseId: string): CaseSpec {
  return {
    id: caseId,
    title: `Case ${caseId}, skipped for this agent by the spec's exclude-agent-cases`,
    rfc: "7.1.2",
    requirement: "The client completes the closing handshake.",
    steps: [{ kind: "close", close: { code: 1000 } }],
    expect: { ok: [], close: { by: "suite", codes: [1000], clean: false } },
    timeout: 5,
  };
}
