/**
 * A minimal Autobahn|Testsuite client driver, as client libraries write them
 * (ws's test/autobahn.js, python-websockets' compliance client): it asks a
 * fuzzingserver for the case count, runs each case in turn with the strict
 * client's echo behaviour (tests/peers/strict_client.ts), asks for the case's
 * status, then asks for the reports to be updated. The control requests go
 * through Deno's own WebSocket, as a driver uses its own library for them.
 *
 *   deno run --allow-net tests/peers/autobahn_driver.ts ws://127.0.0.1:9001 --agent strict
 *
 * Prints one line per case (number, how the client's connection ended, the
 * status). Exit status: 0 the driver ran every case and the reports were
 * updated, 1 it could not (one line on stderr says why), 2 bad usage.
 */
import { type Flaw, FLAWS, parseClientCommand, runStrictClient } from "./strict_client.ts";

export interface AutobahnDriverOptions {
  /** The agent name the cases and reports are kept under. */
  agent: string;
  /** Flaws of the strict client in every case. */
  flaws?: Flaw[];
  /** The bound of each connection, in ms (default 60 s). */
  timeoutMs?: number;
}

export interface DriverCase {
  caseNumber: number;
  /** The strict client's exit code: 0 when the connection ended with a closing handshake. */
  exitCode: 0 | 1;
  error?: string;
  /** /getCaseStatus's behavior; undefined when the server sent none. */
  behavior?: string;
}

export interface AutobahnDriverResult {
  caseCount: number;
  cases: DriverCase[];
}

/** A control request that failed: the driver cannot go on. */
export class DriverError extends Error {
  override name = "DriverError";
}

interface ControlAnswer {
  messages: string[];
  code: number;
  reason: string;
}

/** One control request over Deno's WebSocket: the messages, then the close. */
function control(url: URL, timeoutMs: number): Promise<ControlAnswer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const messages: string[] = [];
    const bound = setTimeout(() => {
      ws.close();
      reject(new DriverError(`${url.pathname}: no close within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.onmessage = (event) => messages.push(String(event.data));
    // The close event that follows says what went wrong.
    ws.onerror = () => {};
    ws.onclose = (event) => {
      clearTimeout(bound);
      resolve({ messages, code: event.code, reason: event.reason });
    };
  });
}

/** Runs every case of the fuzzingserver at `base` (ws://host:port). */
export async function runAutobahnDriver(
  base: string,
  options: AutobahnDriverOptions,
): Promise<AutobahnDriverResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const endpoint = (path: string, query: Record<string, string> = {}) => {
    const url = new URL(path, base);
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
    return url;
  };
  const count = await control(endpoint("/getCaseCount"), timeoutMs);
  const caseCount = Number(count.messages[0]);
  if (count.messages.length !== 1 || !Number.isInteger(caseCount) || caseCount < 0) {
    throw new DriverError(
      `/getCaseCount: expected one number, got ${
        JSON.stringify(count.messages)
      } (close ${count.code})`,
    );
  }
  const cases: DriverCase[] = [];
  for (let caseNumber = 1; caseNumber <= caseCount; caseNumber++) {
    const query = { case: String(caseNumber), agent: options.agent };
    const run = await runStrictClient(endpoint("/runCase", query).href, {
      flaws: options.flaws,
      timeoutMs,
    });
    const status = await control(endpoint("/getCaseStatus", query), timeoutMs);
    const behavior = status.messages.length === 1
      ? (JSON.parse(status.messages[0]) as { behavior?: string }).behavior
      : undefined;
    cases.push({ caseNumber, ...run, behavior });
  }
  const update = await control(endpoint("/updateReports", { agent: options.agent }), timeoutMs);
  if (update.code !== 1000) {
    throw new DriverError(`/updateReports: closed ${update.code} ${update.reason}`.trim());
  }
  return { caseCount, cases };
}

if (import.meta.main) {
  const usage = "usage: autobahn_driver.ts WS-URL --agent NAME [--flaw NAME]... [--timeout S]\n" +
    `flaws: ${FLAWS.join(", ")}`;
  const { url, flaws, timeoutMs, values } = parseClientCommand(Deno.args, usage, {
    agent: { type: "string" },
  });
  if (!values.agent) {
    console.error(usage);
    Deno.exit(2);
  }
  try {
    const result = await runAutobahnDriver(url.href, { agent: values.agent, flaws, timeoutMs });
    for (const c of result.cases) {
      const ended = c.exitCode === 0 ? "closed" : `failed (${c.error})`;
      console.log(`case ${c.caseNumber}: ${ended}, ${c.behavior ?? "no status"}`);
    }
  } catch (error) {
    if (!(error instanceof DriverError)) throw error;
    console.error(`autobahn_driver: ${error.message}`);
    Deno.exit(1);
  }
}
