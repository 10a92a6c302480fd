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
import { denoProgram, spawnReady } from "./child.ts";

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

/** Starts the server in a child process, bounded to `timeoutMs`; stops it by its PID on close(). */
export async function spawnReference(timeoutMs = 10_000): Promise<ReferenceServer> {
  const child = await spawnReady(denoProgram(), {
    args: ["run", "--allow-net=127.0.0.1", new URL(import.meta.url).pathname, "0"],
    timeoutMs,
    what: "the reference server",
  });
  // The agent comes from the child: the deno on PATH may not be this one.
  const [, agent, url] = /^(\S+) echo server on (ws:\/\/\S+)/.exec(child.line) ?? [];
  if (!url) {
    await child.stop();
    throw new Error(`unexpected output from the reference server: ${child.line}`);
  }
  return { url, agent, close: child.stop };
}

if (import.meta.main) {
  const server = serveReference(Number(Deno.args[0] ?? 9001));
  console.log(`${server.agent} echo server on ${server.url}`);
}
