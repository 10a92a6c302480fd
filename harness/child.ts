/**
 * Child processes that say they are ready with one line on standard output
 * (a server's address): started, read up to that line within a bound, and
 * always stopped by their PID.
 */

export interface ReadyChild {
  /** The first line the child printed. */
  line: string;
  /** The child's standard input, when `input` was asked for. */
  stdin?: WritableStreamDefaultWriter<Uint8Array>;
  /** Settles when the child has exited, however it ended. */
  status: Promise<Deno.CommandStatus>;
  /** Stops the child (SIGTERM, then SIGKILL after 2 s) and waits for it. */
  stop(): Promise<void>;
}

/**
 * Stops a child by its PID: SIGTERM, then SIGKILL after `graceMs`; settles once
 * it has exited. `kill` sends a signal (default: to the child alone).
 */
export async function stopChild(
  child: Deno.ChildProcess,
  graceMs = 2000,
  kill = (signal: Deno.Signal) => child.kill(signal),
): Promise<Deno.CommandStatus> {
  try {
    kill("SIGTERM");
  } catch { /* already exited */ }
  const killer = setTimeout(() => {
    try {
      kill("SIGKILL");
    } catch { /* exited meanwhile */ }
  }, graceMs);
  try {
    return await child.status;
  } finally {
    clearTimeout(killer);
  }
}

/**
 * The Deno to start a child with: this one, by its path, where allowed; else
 * the `deno` on PATH. `--allow-run=deno` names the latter: an installed deno is
 * often a link (npm's is), and Deno.execPath() is the file it points to.
 */
export function denoProgram(): string {
  const self = Deno.execPath();
  for (const program of [self, "deno"]) {
    if (Deno.permissions.querySync({ name: "run", command: program }).state === "granted") {
      return program;
    }
  }
  throw new Error(`it needs permission to run Deno (${self}): add --allow-run=deno`);
}

/**
 * Starts `program` and waits up to `timeoutMs` for its first line; `what`
 * names it in errors. Each later line of output goes to `onLine`, else it is
 * drained, so a full pipe never blocks the child. `input` pipes its standard input.
 */
export async function spawnReady(
  program: string,
  options: {
    args: string[];
    env?: Record<string, string>;
    timeoutMs: number;
    what: string;
    input?: boolean;
    onLine?: (line: string) => void;
  },
): Promise<ReadyChild> {
  const child = new Deno.Command(program, {
    args: options.args,
    env: options.env,
    stdin: options.input ? "piped" : "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stop = async () => void await stopChild(child);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  /** Output read but not yet split into lines. */
  let text = "";
  const firstLine = (async () => {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${options.what} exited before it was ready`);
      text += value;
    }
    const end = text.indexOf("\n");
    const line = text.slice(0, end);
    text = text.slice(end + 1);
    return line;
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const line = await Promise.race([
      firstLine,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${options.what} was not ready within ${options.timeoutMs} ms`)),
          options.timeoutMs,
        );
      }),
    ]);
    (async () => {
      for (;;) {
        for (let end = text.indexOf("\n"); end >= 0; end = text.indexOf("\n")) {
          options.onLine?.(text.slice(0, end));
          text = text.slice(end + 1);
        }
        const read = await reader.read().catch(() => ({ done: true, value: "" }));
        if (read.done) return;
        if (options.onLine) text += read.value;
      }
    })();
    return {
      line,
      stdin: options.input ? child.stdin.getWriter() : undefined,
      status: child.status,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
