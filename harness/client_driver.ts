/**
 * Client mode's drivers: how the suite, as the server, makes the client under
 * test connect to a case's `ws://127.0.0.1:PORT/...` URL. The client must echo
 * every message with its type and close when the server closes. Two drivers:
 *
 * - embeddedClient(): Deno's own WebSocket in one long-lived child process
 *   (harness/reference_client.ts), driven by JSON lines; many connections at once.
 *   A browser's driver (harness/browser_driver.ts) drives the same echo client
 *   (EchoClientDriver) in a page.
 * - commandClient("CMD {url}"): spawn mode, one process per case, with `{url}`
 *   replaced by the case's URL, stopped by its PID when the case ends.
 *
 * A driver only starts and stops clients: the suite judges from the wire, and a
 * ClientExit is for the report. Every wait is bounded: a connection's stop()
 * settles within its grace period, whatever the client does.
 */
import { concat } from "./frame.ts";
import { denoProgram, type ReadyChild, spawnReady, stopChild } from "./child.ts";

/**
 * A command to the echo client (harness/echo_client.js, the embedded client's
 * and the browsers' page's): open a connection that echoes, or close one.
 */
export type ClientCommand =
  | { connect: string; id: number; protocols?: string[] }
  | { close: number };

/** What the echo client reports of one connection, under its id; "closed" or "failed" is last. */
export type ClientEvent =
  | { type: "opened"; protocol: string; extensions: string }
  | { type: "error"; message: string }
  | { type: "closed"; code: number; reason: string; wasClean: boolean }
  /** The WebSocket could not be created (a URL or subprotocol the client refuses). */
  | { type: "failed"; message: string };

/** The first line the embedded client's process prints. */
export interface ReadyLine {
  type: "ready";
  agent: string;
}

export interface ConnectOptions {
  /**
   * Subprotocols the echo client offers (the embedded client, a browser's page:
   * a case's ClientHandshakeSpec.offerProtocols); a command chooses its own.
   */
  protocols?: string[];
}

/** How a client's part in one case ended, for the report. */
export type ClientExit =
  | {
    kind: "websocket";
    /** What the client's WebSocket (Deno's, a browser's) reported, in order. */
    events: ClientEvent[];
    /** The case ended before the client closed by itself. */
    stopped: boolean;
  }
  | {
    kind: "process";
    /** The exit code; 128 + the signal's number when a signal ended it. */
    code: number;
    signal: Deno.Signal | null;
    /** The last 4 KiB of each output stream. */
    stdout: string;
    stderr: string;
    /** The case ended before the process exited by itself. */
    stopped: boolean;
  };

export interface ClientConnection {
  /** Settles (never rejects) when the client is done: by itself, or after stop(). */
  done: Promise<ClientExit>;
  /** Ends the client's part (the case ended); settles within the driver's grace period. */
  stop(): Promise<ClientExit>;
}

export interface ClientDriver {
  /** The client's name for reports, when the driver knows it. */
  readonly agent?: string;
  /** How many cases the client runs well at once, when the run does not say (default 32). */
  readonly jobs?: number;
  /** Gets the client ready; throws a ClientStartError (one line) when it cannot be started. */
  start(): Promise<void>;
  /** Makes the client connect to `url`; throws a ClientStartError when it cannot be started. */
  connect(url: URL, options?: ConnectOptions): ClientConnection;
  /** Stops every connection still running, and the driver's own process. */
  stop(): Promise<void>;
}

/** A client that cannot be started: a one-line message for the CLI to print before it exits 2. */
export class ClientStartError extends Error {
  override name = "ClientStartError";
}

export interface DriverOptions {
  /** How long a stopped client has to finish before it is dropped (SIGKILL for a process). */
  graceMs?: number;
  /** How long the embedded client's process has to get ready. */
  readyTimeoutMs?: number;
  /** PEM certificate(s) the embedded client trusts: client mode's own, serving wss://. */
  trustedCert?: string;
}

const DEFAULT_GRACE_MS = 2000;
const DEFAULT_READY_TIMEOUT_MS = 10_000;
/** Output kept of each stream of a spawned client. */
const OUTPUT_TAIL_BYTES = 4096;
/** How long a spawned client's output may go on after it exits (a child of its holds the pipes). */
const OUTPUT_DRAIN_MS = 1000;

/** The embedded client: Deno's own WebSocket, in one child process for every case. */
export function embeddedClient(options: DriverOptions = {}): ClientDriver {
  return new EmbeddedClientDriver(
    options.graceMs ?? DEFAULT_GRACE_MS,
    options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
    options.trustedCert,
  );
}

/** A connection of the echo client still running. */
interface EchoConnection extends ClientConnection {
  events: ClientEvent[];
  /** Settles `done` with the events so far. */
  finish(): void;
}

/**
 * A driver of the echo client (harness/echo_client.js), the embedded client's
 * or a browser page's: it sends the commands and collects each connection's
 * events; a subclass carries them to and from the client. Once the client is
 * gone, every connection ends with the reason.
 */
export abstract class EchoClientDriver implements ClientDriver {
  #nextId = 1;
  #running = new Map<number, EchoConnection>();
  /** Why no connection can be made any more. */
  #gone?: string;

  constructor(readonly graceMs: number) {}

  abstract readonly agent?: string;
  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;
  /** Carries a command to the client; one that cannot arrive is dropped (clientGone() follows). */
  protected abstract send(command: ClientCommand): void;

  connect(url: URL, options: ConnectOptions = {}): ClientConnection {
    const id = this.#nextId++;
    const events: ClientEvent[] = [];
    let stopping = false;
    let finish!: () => void;
    const done = new Promise<ClientExit>((resolve) => {
      finish = () => {
        this.#running.delete(id);
        resolve({ kind: "websocket", events, stopped: stopping });
      };
    });
    const stop = async () => {
      if (this.#running.has(id)) {
        stopping = true;
        this.send({ close: id });
        // close() waits for the server's close frame; the case is over, so not for long.
        const timer = setTimeout(finish, this.graceMs);
        await done;
        clearTimeout(timer);
      }
      return done;
    };
    // Sent before the connection is kept: a driver not started throws here.
    if (!this.#gone) this.send({ connect: url.href, id, protocols: options.protocols });
    const connection = { events, finish, done, stop };
    this.#running.set(id, connection);
    if (this.#gone) this.#abandon(connection);
    return { done, stop };
  }

  /** An event the client reported, under its connection's id. */
  protected onEvent(report: { id: number } & ClientEvent): void {
    const connection = this.#running.get(report.id);
    if (!connection) return; // one of a connection already given up
    const { id: _, ...event } = report;
    connection.events.push(event as ClientEvent);
    if (event.type === "closed" || event.type === "failed") connection.finish();
  }

  /** The client can no longer report: every connection ends, with `reason`. */
  protected clientGone(reason: string): void {
    this.#gone ??= reason;
    for (const connection of this.#running.values()) this.#abandon(connection);
  }

  /** Stops every connection still running. */
  protected async stopConnections(): Promise<void> {
    await Promise.all([...this.#running.values()].map((connection) => connection.stop()));
  }

  #abandon(connection: EchoConnection): void {
    connection.events.push({ type: "error", message: this.#gone! });
    connection.finish();
  }
}

class EmbeddedClientDriver extends EchoClientDriver {
  agent?: string;
  #child?: ReadyChild;

  constructor(
    graceMs: number,
    readonly readyTimeoutMs: number,
    readonly trustedCert?: string,
  ) {
    super(graceMs);
  }

  async start(): Promise<void> {
    try {
      this.#child = await spawnReady(denoProgram(), {
        args: [
          "run",
          "--allow-net=127.0.0.1",
          // Deno's --cert takes the PEM itself as "base64:...": no file to write and remove.
          ...(this.trustedCert ? ["--cert", `base64:${btoa(this.trustedCert)}`] : []),
          new URL("./reference_client.ts", import.meta.url).pathname,
        ],
        input: true,
        timeoutMs: this.readyTimeoutMs,
        what: "the embedded client",
        onLine: (line) => this.#onLine(line),
      });
    } catch (error) {
      throw new ClientStartError(`cannot start the embedded client: ${messageOf(error)}`);
    }
    const ready = parseJson(this.#child.line) as ReadyLine | undefined;
    if (ready?.type !== "ready") {
      await this.#child.stop();
      throw new ClientStartError(`unexpected output from the embedded client: ${this.#child.line}`);
    }
    this.agent = ready.agent;
    // A client process that dies leaves no connection waiting for lines that cannot come.
    this.#child.status.then((status) =>
      this.clientGone(`the embedded client's process exited (code ${status.code})`)
    );
  }

  async stop(): Promise<void> {
    await this.stopConnections();
    await this.#child?.stop();
  }

  protected send(command: ClientCommand): void {
    if (!this.#child) throw new Error("the embedded client is not started");
    // A write to a process that died fails; its exit has finished every connection.
    this.#child.stdin!.write(new TextEncoder().encode(JSON.stringify(command) + "\n"))
      .catch(() => {});
  }

  #onLine(line: string): void {
    const report = parseJson(line) as ({ id: number } & ClientEvent) | undefined;
    if (report) this.onEvent(report); // not an event line: no connection has its id
  }
}

/**
 * Spawn mode: for each connection, runs `command` with `{url}` replaced by the
 * case's URL. The command is split into words with splitCommand() (no shell).
 * A client that exits by itself is not signalled, nor what it left running.
 */
export function commandClient(command: string, options: DriverOptions = {}): ClientDriver {
  return new CommandClientDriver(splitCommand(command), options.graceMs ?? DEFAULT_GRACE_MS);
}

/**
 * Splits a command into its program and arguments, with no shell: words are
 * separated by white space; '...' keeps everything inside as it is; "..." too,
 * except that \" and \\ stand for " and \; outside quotes, a backslash keeps the
 * next character as it is. Nothing else is special (no variables, globs, pipes
 * or redirections). `{url}` is replaced within each word after the split, so
 * the URL is always part of one argument. Throws a ClientStartError for an
 * empty command, an unterminated quote, or no `{url}`.
 */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i];
    if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) throw new ClientStartError(`unterminated ' in the client command: ${command}`);
      word = (word ?? "") + command.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      word ??= "";
      for (i++; command[i] !== '"'; i++) {
        if (i >= command.length) {
          throw new ClientStartError(`unterminated " in the client command: ${command}`);
        }
        if (command[i] === "\\" && (command[i + 1] === '"' || command[i + 1] === "\\")) i++;
        word += command[i];
      }
    } else if (c === "\\" && i + 1 < command.length) {
      word = (word ?? "") + command[++i];
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== undefined) words.push(word);
  if (words.length === 0) throw new ClientStartError("the client command is empty");
  if (!words.some((w) => w.includes("{url}"))) {
    throw new ClientStartError(`the client command has no {url} to replace: ${command}`);
  }
  return words;
}

class CommandClientDriver implements ClientDriver {
  #running = new Set<ClientConnection>();

  constructor(readonly words: string[], readonly graceMs: number) {}

  start(): Promise<void> {
    return new Promise((resolve) => resolve(checkProgram(this.words[0])));
  }

  connect(url: URL): ClientConnection {
    const [program, ...args] = this.words.map((w) => w.replaceAll("{url}", url.href));
    let child: Deno.ChildProcess;
    try {
      // Detached: the client leads a process group of its own, so stopping it
      // stops what it started too (a shell, npx, a runtime's workers).
      child = new Deno.Command(program, {
        args,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        detached: true,
      }).spawn();
    } catch (error) {
      throw new ClientStartError(`cannot run the client command ${program}: ${messageOf(error)}`);
    }
    const stdout = new OutputTail(child.stdout), stderr = new OutputTail(child.stderr);
    let exited = false, stopping = false;
    const connection: ClientConnection = {
      done: (async (): Promise<ClientExit> => {
        const status = await child.status;
        exited = true;
        const [out, err] = await Promise.all([stdout.text(), stderr.text()]);
        return {
          kind: "process",
          code: status.code,
          signal: status.signal,
          stdout: out,
          stderr: err,
          stopped: stopping,
        };
      })(),
      stop: async () => {
        if (!exited) {
          stopping = true;
          await stopChild(child, this.graceMs, (signal) => {
            try {
              Deno.kill(-child.pid, signal);
            } catch {
              // No permission to signal a group (--allow-run=PROGRAM): the client alone.
              child.kill(signal);
            }
          });
        }
        return connection.done;
      },
    };
    this.#running.add(connection);
    connection.done.then(() => this.#running.delete(connection));
    return connection;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#running].map((connection) => connection.stop()));
  }
}

/**
 * Throws a ClientStartError when `program` is not there, not executable, or
 * the suite may not run it: a path is checked as it is, a name on PATH. Where
 * the suite may not read PATH or a place it names, it does not look (and asks
 * for nothing): connect() then reports what spawning finds.
 */
function checkProgram(program: string): void {
  const granted = (permission: Deno.PermissionDescriptor) =>
    Deno.permissions.querySync(permission).state === "granted";
  findProgram(program, granted);
  if (!granted({ name: "run", command: program })) {
    throw new ClientStartError(`it needs permission to run ${program}: add --allow-run=${program}`);
  }
}

function findProgram(
  program: string,
  granted: (permission: Deno.PermissionDescriptor) => boolean,
): void {
  const isPath = program.includes("/");
  if (!isPath && !granted({ name: "env", variable: "PATH" })) return;
  const candidates = isPath
    ? [program]
    : (Deno.env.get("PATH") ?? "").split(":").filter((dir) => dir).map((dir) =>
      `${dir}/${program}`
    );
  for (const file of candidates) {
    if (!granted({ name: "read", path: file })) return;
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(file);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) {
        continue;
      }
      throw error;
    }
    if (info.isFile && (info.mode ?? 0o111) & 0o111) return;
    if (isPath) {
      throw new ClientStartError(`the client command ${program} is not an executable file`);
    }
  }
  throw new ClientStartError(
    isPath
      ? `the client command ${program} does not exist`
      : `the client command ${program} is not on PATH`,
  );
}

/** The last bytes of an output stream, read as they come so a full pipe never blocks the client. */
class OutputTail {
  #chunks: Uint8Array[] = [];
  #size = 0;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #ended: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    const reader = this.#reader = stream.getReader();
    this.#ended = (async () => {
      for (;;) {
        const read = await reader.read().catch(() => ({ done: true as const }));
        if (read.done) return;
        this.#chunks.push(read.value);
        this.#size += read.value.length;
        while (this.#size - this.#chunks[0].length >= OUTPUT_TAIL_BYTES) {
          this.#size -= this.#chunks.shift()!.length;
        }
      }
    })();
  }

  /** The tail as text, once the stream has ended or OUTPUT_DRAIN_MS has passed. */
  async text(): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#ended,
      new Promise((resolve) => timer = setTimeout(resolve, OUTPUT_DRAIN_MS)),
    ]);
    clearTimeout(timer);
    this.#reader.cancel().catch(() => {});
    const bytes = concat(this.#chunks);
    let start = Math.max(0, bytes.length - OUTPUT_TAIL_BYTES);
    // A UTF-8 sequence cut at the start would decode as U+FFFD: drop its tail bytes.
    while (start > 0 && start < bytes.length && (bytes[start] & 0xc0) === 0x80) start++;
    return new TextDecoder().decode(bytes.subarray(start));
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}
