/**
 * The embedded default target: Deno's own WebSocket server (Deno.serve +
 * Deno.upgradeWebSocket) echoing every message with its type. It is not tuned
 * to pass; the suite reports what Deno does.
 *
 * The suite runs it in a child process of its own, so the server has its own
 * event loop (and CPU core) and its memory is not counted as the suite's. The
 * child may only use the network on 127.0.0.1; the suite needs permission to
 * run Deno (`--allow-run=deno`) to start it.
 */

export interface ReferenceServer {
  url: string;
  /** The name reports use for it. */
  agent: string;
  /** Stops the server (and its process). */
  close(): Promise<void>;
}

const AGENT = `Deno/${Deno.version.deno}`;

/** Serves in this process. */
export function serveReference(port = 0): ReferenceServer {
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port,
    onListen: () => {},
    // Deno.upgradeWebSocket throws on some malformed handshakes; Deno.serve then
    // answers 500, as it does by default, only without logging each one.
    onError: () => new Response("Internal Server Error", { status: 500 }),
  }, (request) => {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("wsconform reference server: connect with WebSocket\n", { status: 426 });
    }
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(event.data);
    };
    // Deno reports protocol errors here after ending the connection; nothing is left to do.
    socket.onerror = () => {};
    return response;
  });
  const addr = server.addr as Deno.NetAddr;
  return { url: `ws://127.0.0.1:${addr.port}/`, agent: AGENT, close: () => server.shutdown() };
}

/**
 * The Deno to start the server with: this one, by its path, where allowed;
 * else the `deno` on PATH. `--allow-run=deno` names the latter: an installed
 * deno is often a link (npm's is), and Deno.execPath() is the file it points to.
 */
function denoProgram(): string {
  const self = Deno.execPath();
  for (const program of [self, "deno"]) {
    if (Deno.permissions.querySync({ name: "run", command: program }).state === "granted") {
      return program;
    }
  }
  throw new Error(`it needs permission to run Deno (${self}): add --allow-run=deno`);
}

/** Starts the server in a child process, bounded to `timeoutMs`; stops it by its PID on close(). */
export async function spawnReference(timeoutMs = 10_000): Promise<ReferenceServer> {
  const child = new Deno.Command(denoProgram(), {
    args: ["run", "--allow-net=127.0.0.1", new URL(import.meta.url).pathname, "0"],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already exited */ }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    }, 2000);
    await child.status;
    clearTimeout(timer);
  };
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const firstLine = (async () => {
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the reference server exited before listening");
      text += value;
    }
    return text.split("\n")[0];
  })();
  try {
    const line = await Promise.race([
      firstLine,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("the reference server did not start")),
          timeoutMs,
        );
      }),
    ]);
    // The agent comes from the child: the deno on PATH may not be this one.
    const [, agent, url] = /^(\S+) echo server on (ws:\/\/\S+)/.exec(line) ?? [];
    if (!url) throw new Error(`unexpected output from the reference server: ${line}`);
    // Keep draining stdout so the child never blocks on a full pipe.
    (async () => {
      while (!(await reader.read().catch(() => ({ done: true }))).done) { /* drain */ }
    })();
    return { url, agent, close: stop };
  } catch (e) {
    await stop();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

if (import.meta.main) {
  const server = serveReference(Number(Deno.args[0] ?? 9001));
  console.log(`${server.agent} echo server on ${server.url}`);
}
