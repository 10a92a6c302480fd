/**
 * Client mode's listener: the suite is the server. One listener on
 * 127.0.0.1 (ws://, or wss:// with the user's certificate and key) reads each
 * connection's request head and routes it by request target, as Autobahn's
 * fuzzingserver does (harness/fuzzingserver.ts):
 *
 * - /getCaseCount, /getCaseInfo, /getCaseStatus, /updateReports: answered here,
 *   over a WebSocket that sends its one message and closes (§7.1.1: the server
 *   closes TCP first);
 * - /runCase: the connection, with the bytes read so far, is handed to the case
 *   that waits for it (expect()) or to the caller's onRunCase, which own it
 *   from then on;
 * - /redirected: where a case's answer may redirect its client (a 3xx's
 *   Location): a connection that comes there is recorded for the case that
 *   waits (Expectation.redirected), and answered with a 404;
 * - anything else: an HTTP 404 with the reason in one line.
 *
 * Every wait is bounded: a client that sends no head in time is dropped, a
 * client that does not answer the close loses its connection, close() ends
 * every connection not handed over.
 */
import { unhandled } from "./case.ts";
import { concat } from "./frame.ts";
import { Endpoint } from "./endpoint.ts";
import {
  autobahnCaseOrder,
  caseCountMessage,
  caseInfoMessage,
  type CaseNumbering,
  caseStatusMessage,
  parseFuzzingTarget,
} from "./fuzzingserver.ts";
import { type HttpHead, parseHead } from "./handshake.ts";
import { checkClientRequest, serverResponse } from "./server_handshake.ts";

/** A /runCase connection, handed over as it arrived: the session answers its handshake. */
export interface CaseConnection {
  conn: Deno.Conn;
  /** Every byte read so far: the whole request head and whatever followed it. */
  head: Uint8Array;
  caseId: string;
  /** 1-based, in Autobahn's order. */
  caseNumber: number;
  agent: string;
  /** The request target as the client sent it. */
  target: string;
  /** Where the case may redirect its client: the case's /redirected URL. */
  redirect: URL;
}

/** A connection the server refused, for the report. */
export interface Refusal {
  status: 400 | 404 | 409;
  reason: string;
  target?: string;
}

export interface CaseServerOptions {
  /** The cases to serve, numbered in Autobahn's order; the title is /getCaseInfo's description. */
  cases: readonly { id: string; title: string }[];
  /** Which cases are Autobahn's: the suite's own are numbered after them. Default: all. */
  isAutobahn?: (caseId: string) => boolean;
  /** Default 0: any free port. */
  port?: number;
  /** PEM text of the certificate (chain) and its private key: the server speaks wss://. */
  tls?: { cert: string; key: string };
  /**
   * A /runCase connection no expect() waits for. Without it, such a
   * connection is refused (404).
   */
  onRunCase?: (connection: CaseConnection) => void;
  /**
   * The latest behavior of a case for an agent (OK, NON-STRICT, ...), for
   * /getCaseStatus; undefined when the case has no result for it.
   */
  caseStatus?: (caseId: string, agent: string) => string | undefined | Promise<string | undefined>;
  /** Called, and awaited, on /updateReports before its WebSocket closes. */
  onUpdateReports?: (agent: string) => void | Promise<void>;
  /** How long a client has to send its request head. Default 5000 ms. */
  headTimeoutMs?: number;
  /** How long a client has to answer the server's close frame. Default 1000 ms. */
  closeTimeoutMs?: number;
}

/** A case waiting for its client: the URL to give the client, and the connection once it came. */
export interface Expectation {
  url: URL;
  /**
   * Settles with the request target of the first connection that came to the
   * case's /redirected URL (CaseConnection.redirect) before end(): the client
   * followed a redirect there. Never settles when none came.
   */
  redirected: Promise<string>;
  /** Settles with the connection, or undefined when none came in time (or the server closed). */
  connection: Promise<CaseConnection | undefined>;
  /**
   * The case is over: a later connection for it goes to onRunCase. Until
   * then, a second connection for the case is refused (409).
   */
  end(): void;
}

export interface CaseServer {
  readonly port: number;
  /** ws:// or wss:// 127.0.0.1:PORT/ */
  readonly url: URL;
  /** The case ids by number: `numbering[n - 1]` is case n. */
  readonly numbering: CaseNumbering;
  /** Clients dropped for sending no request head in time. */
  readonly silentClients: number;
  /** The connections refused with an HTTP error, the first MAX_REFUSALS_KEPT kept. */
  readonly refusals: readonly Refusal[];
  readonly refusalCount: number;
  /** Waits for the client of a case served (one of `numbering`; another id throws). */
  expect(caseId: string, agent: string, timeoutMs: number): Expectation;
  /** Stops listening and ends every connection not handed over; bounded. */
  close(): Promise<void>;
}

/** A server that cannot start: a one-line message for the CLI to print before it exits 2. */
export class CaseServerError extends Error {
  override name = "CaseServerError";
}

/** The longest request head read (parseHead's bound). */
export const MAX_HEAD_BYTES = 16 * 1024;
export const MAX_REFUSALS_KEPT = 1000;
const DEFAULT_HEAD_TIMEOUT_MS = 5000;
const DEFAULT_CLOSE_TIMEOUT_MS = 1000;
/** A close frame's reason fits in 123 bytes (§5.5). */
const MAX_CLOSE_REASON = 123;

/**
 * Listens on 127.0.0.1. Throws a CaseServerError (one line) when it cannot:
 * a certificate or key that is not PEM, a port in use.
 */
export function startCaseServer(options: CaseServerOptions): CaseServer {
  const port = options.port ?? 0;
  let listener: Deno.Listener;
  try {
    listener = options.tls
      ? Deno.listenTls({ hostname: "127.0.0.1", port, ...options.tls })
      : Deno.listen({ hostname: "127.0.0.1", port });
  } catch (error) {
    const what = options.tls && error instanceof Deno.errors.InvalidData
      ? "the TLS certificate and key"
      : `127.0.0.1:${port}`;
    throw new CaseServerError(`cannot listen with ${what}: ${(error as Error).message}`);
  }
  return new Listener(listener, options);
}

interface Waiting {
  resolve(connection: CaseConnection | undefined): void;
  /** A connection came to the case's /redirected URL, with this request target. */
  redirected(target: string): void;
  timer?: ReturnType<typeof setTimeout>;
  /** The client came: a second one is refused until end(). */
  taken: boolean;
}

class Listener implements CaseServer {
  readonly port: number;
  readonly url: URL;
  readonly numbering: CaseNumbering;
  silentClients = 0;
  refusals: Refusal[] = [];
  refusalCount = 0;
  readonly #listener: Deno.Listener;
  readonly #options: CaseServerOptions;
  readonly #titles: Map<string, string>;
  /** Expectations by agent and case id. */
  readonly #waiting = new Map<string, Waiting>();
  /** Connections not handed over. */
  readonly #open = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  #closed = false;

  constructor(listener: Deno.Listener, options: CaseServerOptions) {
    this.#listener = listener;
    this.#options = options;
    this.port = (listener.addr as Deno.NetAddr).port;
    this.url = new URL(`${options.tls ? "wss" : "ws"}://127.0.0.1:${this.port}/`);
    this.numbering = autobahnCaseOrder(options.cases.map((c) => c.id), options.isAutobahn);
    this.#titles = new Map(options.cases.map((c) => [c.id, c.title]));
    this.#accepting = this.#accept();
  }

  expect(caseId: string, agent: string, timeoutMs: number): Expectation {
    // Its client would get a 404, and the case would wait in vain.
    if (!this.numbering.includes(caseId)) throw new Error(`case ${caseId} is not served`);
    const url = this.#caseUrl("runCase", caseId, agent);
    const key = waitingKey(caseId, agent);
    this.#waiting.get(key)?.resolve(undefined);
    const redirected = Promise.withResolvers<string>();
    let waiting!: Waiting;
    const connection = new Promise<CaseConnection | undefined>((resolve) => {
      waiting = {
        taken: false,
        redirected: redirected.resolve,
        resolve: (connection) => {
          clearTimeout(waiting.timer);
          if (!connection && this.#waiting.get(key) === waiting) this.#waiting.delete(key);
          resolve(connection);
        },
      };
    });
    if (this.#closed) {
      waiting.resolve(undefined);
    } else {
      waiting.timer = setTimeout(() => waiting.resolve(undefined), timeoutMs);
      this.#waiting.set(key, waiting);
    }
    return {
      url,
      redirected: redirected.promise,
      connection,
      end: () => waiting.resolve(undefined),
    };
  }

  /** This server's URL of `path` for a case and agent, named as /runCase names them. */
  #caseUrl(path: "runCase" | "redirected", caseId: string, agent: string): URL {
    const url = new URL(path, this.url);
    url.searchParams.set("casetuple", caseId);
    url.searchParams.set("agent", agent);
    return url;
  }

  async close(): Promise<void> {
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    for (const waiting of this.#waiting.values()) waiting.resolve(undefined);
    this.#waiting.clear();
    for (const conn of this.#open) closeQuietly(conn);
    await this.#accepting;
    // A connection waits for nothing once closed, except a caller's callback: that is not waited for.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled(this.#tasks),
      new Promise((resolve) => timer = setTimeout(resolve, this.#closeTimeoutMs)),
    ]);
    clearTimeout(timer);
  }

  get #closeTimeoutMs(): number {
    return this.#options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        if (this.#closed) {
          closeQuietly(conn);
          continue;
        }
        if ("setNoDelay" in conn && typeof conn.setNoDelay === "function") conn.setNoDelay(true);
        this.#open.add(conn);
        const task = this.#serve(conn).finally(() => this.#tasks.delete(task));
        this.#tasks.add(task);
      }
    } catch {
      // The listener was closed.
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    let handedOver = false;
    try {
      const read = await readHead(conn, this.#options.headTimeoutMs ?? DEFAULT_HEAD_TIMEOUT_MS);
      switch (read.type) {
        case "silent":
          this.silentClients++;
          return;
        case "gone":
          return;
        case "error":
          return await this.#refuse(conn, 400, read.reason);
      }
      const check = checkClientRequest(read.head);
      const target = check.offer.target;
      if (target === undefined) return await this.#refuse(conn, 400, check.problems[0].text);
      if (URL.parse(target, this.url)?.pathname === "/redirected") {
        return await this.#redirected(conn, target);
      }
      const request = parseFuzzingTarget(target, this.numbering);
      if (request.kind === "error") return await this.#refuse(conn, 404, request.reason, target);
      if (request.kind === "runCase") {
        const { caseId, caseNumber, agent } = request;
        const redirect = this.#caseUrl("redirected", caseId, agent);
        const connection = { conn, head: read.bytes, caseId, caseNumber, agent, target, redirect };
        handedOver = await this.#handOver(connection);
        return;
      }
      const problem = check.problems.find((p) => p.level === "must");
      if (problem) {
        return await this.#refuse(
          conn,
          400,
          `${problem.text} (RFC 6455 ${problem.section})`,
          target,
        );
      }
      await writeAll(conn, await serverResponse({ key: check.offer.key! }));
      const endpoint = new Endpoint({ role: "server" });
      endpoint.open();
      endpoint.receiveData(read.bytes.subarray(read.head.length));
      switch (request.kind) {
        case "getCaseCount":
          endpoint.sendText(caseCountMessage(this.numbering));
          break;
        case "getCaseInfo":
          endpoint.sendText(caseInfoMessage(request.caseId, this.#titles.get(request.caseId)!));
          break;
        case "getCaseStatus": {
          const behavior = await this.#options.caseStatus?.(request.caseId, request.agent);
          if (behavior === undefined) {
            endpoint.sendClose(
              1011,
              closeReason(`no result for case ${request.caseId} and agent ${request.agent}`),
            );
          } else {
            endpoint.sendText(caseStatusMessage(behavior));
          }
          break;
        }
        case "updateReports":
          try {
            await this.#options.onUpdateReports?.(request.agent);
          } catch (error) {
            endpoint.sendClose(
              1011,
              closeReason(`reports not updated: ${(error as Error).message}`),
            );
          }
          break;
        default:
          unhandled(request);
      }
      endpoint.sendClose(1000);
      await closeHandshake(conn, endpoint, this.#closeTimeoutMs);
    } catch {
      // The client went away or the server closed: nothing is owed to it.
    } finally {
      this.#open.delete(conn);
      if (!handedOver) closeQuietly(conn);
    }
  }

  /** Gives a /runCase connection to its expectation or to onRunCase; false when refused. */
  async #handOver(connection: CaseConnection): Promise<boolean> {
    const { conn, caseId, agent, target } = connection;
    const waiting = this.#waiting.get(waitingKey(caseId, agent));
    if (waiting?.taken) {
      await this.#refuse(conn, 409, `case ${caseId} for agent ${agent} is already running`, target);
      return false;
    }
    if (waiting) {
      waiting.taken = true;
      this.#open.delete(conn);
      waiting.resolve(connection);
      return true;
    }
    if (!this.#options.onRunCase) {
      await this.#refuse(conn, 404, `case ${caseId} is not waiting for a client`, target);
      return false;
    }
    this.#open.delete(conn);
    this.#options.onRunCase(connection);
    return true;
  }

  /**
   * A connection to a case's /redirected URL: recorded for the case that waits,
   * answered with a 404 (the suite serves the URL only to see who comes).
   */
  async #redirected(conn: Deno.Conn, target: string): Promise<void> {
    const { searchParams } = new URL(target, this.url);
    const caseId = searchParams.get("casetuple") ?? "", agent = searchParams.get("agent") ?? "";
    const waiting = this.#waiting.get(waitingKey(caseId, agent));
    if (!waiting) {
      return await this.#refuse(conn, 404, `case ${caseId} waits for no redirected client`, target);
    }
    waiting.redirected(target);
    await writeAll(
      conn,
      httpError(
        404,
        `wsconform: the redirect of case ${caseId} was followed; nothing is served here`,
      ),
    );
  }

  async #refuse(conn: Deno.Conn, status: Refusal["status"], reason: string, target?: string) {
    this.refusalCount++;
    if (this.refusals.length < MAX_REFUSALS_KEPT) this.refusals.push({ status, reason, target });
    await writeAll(conn, httpError(status, reason));
  }
}

function waitingKey(caseId: string, agent: string): string {
  return `${agent}\n${caseId}`;
}

type HeadRead =
  | { type: "head"; head: HttpHead; bytes: Uint8Array }
  | { type: "error"; reason: string }
  /** Nothing complete arrived in time. */
  | { type: "silent" }
  /** The client closed before its head was complete. */
  | { type: "gone" };

/** Reads until the request head is complete, within MAX_HEAD_BYTES and `timeoutMs`. */
async function readHead(conn: Deno.Conn, timeoutMs: number): Promise<HeadRead> {
  let timedOut = false;
  // Closing the connection ends the pending read: the bound holds whatever the client does.
  const timer = setTimeout(() => {
    timedOut = true;
    closeQuietly(conn);
  }, timeoutMs);
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(MAX_HEAD_BYTES);
  try {
    for (;;) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) return timedOut ? { type: "silent" } : { type: "gone" };
      chunks.push(buffer.slice(0, n));
      const bytes = concat(chunks);
      const parsed = parseHead(bytes, MAX_HEAD_BYTES);
      if (parsed.type === "head") return { type: "head", head: parsed.head, bytes };
      if (parsed.type === "error") return parsed;
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits for the client's close frame, answering what needs an answer (a
 * ping), then closes TCP: the server closes first (§7.1.1). A client that does
 * not answer within `timeoutMs` loses its connection all the same.
 */
async function closeHandshake(
  conn: Deno.Conn,
  endpoint: Endpoint,
  timeoutMs: number,
): Promise<void> {
  const timer = setTimeout(() => closeQuietly(conn), timeoutMs);
  const buffer = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      endpoint.eventsReceived();
      await writeAll(conn, endpoint.dataToSend());
      if (endpoint.shouldCloseTcp) return;
      const n = await conn.read(buffer);
      if (n === null) return;
      endpoint.receiveData(buffer.slice(0, n));
    }
  } finally {
    clearTimeout(timer);
    endpoint.connectionClosed();
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

const STATUS_PHRASES: Record<Refusal["status"], string> = {
  400: "Bad Request",
  404: "Not Found",
  409: "Conflict",
};

/** An HTTP error whose body is the reason, one line. */
function httpError(status: Refusal["status"], reason: string): Uint8Array {
  const body = new TextEncoder().encode(reason.replace(/[\r\n]+/g, " ") + "\n");
  const head = `HTTP/1.1 ${status} ${STATUS_PHRASES[status]}\r\n` +
    "Content-Type: text/plain; charset=utf-8\r\n" +
    `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
  return concat([new TextEncoder().encode(head), body]);
}

/** A close reason cut to 123 bytes, at a character boundary. */
function closeReason(text: string): string {
  let reason = text;
  while (new TextEncoder().encode(reason).length > MAX_CLOSE_REASON) reason = reason.slice(0, -1);
  return reason;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}
