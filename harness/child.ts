/**
 * Child processes that say they are ready with one line on standard output
 * (a server's address): started, read up to that line within a bound, and
 * always stopped by their PID.
 */

export interface ReadyChild {
  /** The first line the child printed. */
  line: string;
  /** Stops the child (SIGTERM, then SIGKILL after 2 s) and waits for it. */
  stop(): Promise<void>;
}

/**
 * Starts `program` and waits up to `timeoutMs` for its first line; `what`
 * names it in errors. Its later output is drained so a full pipe never blocks it.
 */
export async function spawnReady(
  program: string,
  options: { args: string[]; env?: Record<string, string>; timeoutMs: number; what: string },
): Promise<ReadyChild> {
  const child = new Deno.Command(program, {
    args: options.args,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already exited */ }
    const killer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    }, 2000);
    await child.status;
    clearTimeout(killer);
  };
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const firstLine = (async () => {
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${options.what} exited before it was ready`);
      text += value;
    }
    return text.split("\n")[0];
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
      while (!(await reader.read().catch(() => ({ done: true }))).done) { /* drain */ }
    })();
    return { line, stop };
  } catch (e) {
    await stop();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
