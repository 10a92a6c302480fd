/** Helpers shared by the project's tests. */
import assert from "node:assert/strict";
import { spawnReady } from "../harness/child.ts";
import { type CliIo, main } from "../harness/cli.ts";
import type { ObservedEvent } from "../harness/payload.ts";
import type { Behavior, CloseBehavior, CloseObservation } from "../harness/verdict.ts";
import type { StrictServerOptions } from "./peers/strict_server.ts";
import { CLIENT_CASES } from "../fixtures/mod.ts";
import { startCaseServer } from "../harness/case_server.ts";
import { type CaseRun, runClientCase } from "../harness/session.ts";
import { judgeCase, type Verdict } from "../harness/verdict.ts";
import type { Finding } from "../harness/measure.ts";
import {
  runStrictClient,
  type StrictClientOptions,
  type StrictClientResult,
} from "./peers/strict_client.ts";

/** The two verdicts a case must get. */
export interface Expected {
  behavior: Behavior;
  behaviorClose: CloseBehavior;
}

export const v = (behavior: Behavior, behaviorClose: CloseBehavior): Expected => ({
  behavior,
  behaviorClose,
});

export interface CliRun {
  code: number;
  /** Standard output exactly as written. */
  stdout: string;
  /** Everything written to console.error, one entry per call. */
  stderrCalls: string[];
  /** The same, joined with newlines. */
  stderr: string;
}

/**
 * Runs main() with its output captured: standard output through the injected
 * writer (off a terminal, NO_COLOR unset, unless `io` says otherwise) and
 * console.log, and console.error (restored, whatever happens).
 */
export async function runCli(args: string[], io: CliIo = {}): Promise<CliRun> {
  const out: string[] = [], err: string[] = [];
  const { log, error } = console;
  const text = (parts: unknown[]) => parts.map(String).join(" ");
  console.log = (...parts: unknown[]) => void out.push(text(parts) + "\n");
  console.error = (...parts: unknown[]) => void err.push(text(parts));
  try {
    const code = await main(args, {
      isTTY: false,
      env: () => undefined,
      write: (t) => void out.push(t),
      ...io,
    });
    return { code, stdout: out.join(""), stderrCalls: err, stderr: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

/**
 * Case ids written as ranges: "0.2.1-7" stands for 0.2.1 to 0.2.7, a plain id
 * for itself. Every id must be one of `ids`.
 */
export function expandRange(range: string, ids: readonly string[]): string[] {
  const m = /^(.*\.)(\d+)-(\d+)$/.exec(range);
  const out = m
    ? Array.from({ length: Number(m[3]) - Number(m[2]) + 1 }, (_, i) => m[1] + (Number(m[2]) + i))
    : [range];
  for (const id of out) {
    if (!ids.includes(id)) throw new Error(`${range}: no case ${id}`);
  }
  return out;
}

/** How a connection ended, for pure verdict and finding tests: opened, closed cleanly by the suite. */
export function closeObservation(over: Partial<CloseObservation> = {}): CloseObservation {
  return {
    opened: true,
    closedBySuite: true,
    failedBySuite: false,
    droppedBySuite: false,
    wasClean: true,
    closeHandshakeTimeout: false,
    peerDropTimeout: false,
    openHandshakeTimeout: false,
    ...over,
  };
}

/** A text message of `length` zero bytes, as observed. */
export const textMessage = (length: number): ObservedEvent => ({
  type: "message",
  binary: false,
  payload: new Uint8Array(length),
});

/**
 * What a flaw must turn each case into, from a proof table: the rows of cases
 * whose own rule the flaw breaks (`rule` true), then the rows of cases it
 * changes on the way. A case in two rows for one flaw is an error in the table.
 */
export function flawExpectations<Row extends { flaws: readonly string[] }>(
  flaw: string,
  rules: readonly Row[],
  collateral: readonly Row[],
  idsOf: (row: Row) => string[],
): Map<string, { row: Row; rule: boolean }> {
  const out = new Map<string, { row: Row; rule: boolean }>();
  for (const [rows, rule] of [[rules, true], [collateral, false]] as const) {
    for (const row of rows.filter((r) => r.flaws.includes(flaw))) {
      for (const id of idsOf(row)) {
        if (out.has(id)) throw new Error(`${flaw}: case ${id} is in two rows`);
        out.set(id, { row, rule });
      }
    }
  }
  return out;
}

/** Whether `path` exists (any kind of file). */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs `fn` with a fresh temporary directory, removed afterwards whatever happens. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "wsconform_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A self-signed certificate for 127.0.0.1, made with openssl into `dir`. */
export async function selfSigned(
  dir: string,
): Promise<{ cert: string; key: string; certFile: string }> {
  const certFile = `${dir}/cert.pem`, keyFile = `${dir}/key.pem`;
  const { code, stderr } = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      // An end-entity certificate: rustls refuses a CA certificate as a server's.
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  return { cert: Deno.readTextFileSync(certFile), key: Deno.readTextFileSync(keyFile), certFile };
}

/**
 * The strict server (tests/peers/strict_server.ts) in a process of its own, so
 * that the suite's CPU work and the server's do not share an event loop.
 * Stopped by its PID.
 */
export async function spawnStrictServer(
  options: StrictServerOptions,
): Promise<{ url: URL; close(): Promise<void> }> {
  const module = new URL("./peers/strict_server.ts", import.meta.url).href;
  const code = `import { startStrictServer } from ${JSON.stringify(module)};
console.log(startStrictServer(${JSON.stringify(options)}).url);`;
  const child = await spawnReady(Deno.execPath(), {
    args: ["eval", code],
    timeoutMs: 20_000,
    what: "the strict server",
  });
  assert.match(child.line, /^ws:\/\/127\.0\.0\.1:\d+\/$/, "the strict server binds 127.0.0.1 only");
  return { url: new URL(child.line), close: child.stop };
}

/** A client case run against the strict client: what the suite saw, judged, and the client's end. */
export interface ClientCaseResult {
  run: CaseRun;
  verdict: Verdict;
  findings: Finding[];
  client: StrictClientResult;
}

/**
 * Runs client cases one after the other through runClientCase, each against
 * the strict client (in this process) with `client`'s flaws and options, on a
 * case server's connections.
 */
export async function againstStrictClient(
  ids: readonly string[],
  client: StrictClientOptions = {},
): Promise<Map<string, ClientCaseResult>> {
  const cases = CLIENT_CASES.filter((c) => ids.includes(c.id));
  assert.equal(cases.length, ids.length);
  const server = startCaseServer({ cases });
  const results = new Map<string, ClientCaseResult>();
  try {
    for (const spec of cases) {
      const expected = server.expect(spec.id, "strict", 10_000);
      const ended = runStrictClient(expected.url.href, { timeoutMs: 20_000, ...client });
      const run = await runClientCase(spec, {
        url: server.url,
        connection: expected.connection.then((c) => c ?? { missing: "no client came" }),
      });
      expected.end();
      results.set(spec.id, { run, ...judgeCase(spec, run), client: await ended });
    }
  } finally {
    await server.close();
  }
  return results;
}
