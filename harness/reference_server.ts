/**
 * The embedded default target: Deno's own WebSocket server (Deno.serve +
 * Deno.upgradeWebSocket) echoing every message with its type. It is not
 * tuned to pass; the suite reports what Deno does.
 */

export interface ReferenceServer {
  url: string;
  /** The name reports use for it. */
  agent: string;
  close(): Promise<void>;
}

export function startReferenceServer(port = 0): ReferenceServer {
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, (request) => {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("wsconform reference server: connect with WebSocket\n", { status: 426 });
    }
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(event.data);
    };
    // Errors end the connection; Deno reports them here and nothing is left to do.
    socket.onerror = () => {};
    return response;
  });
  const addr = server.addr as Deno.NetAddr;
  return {
    url: `ws://127.0.0.1:${addr.port}/`,
    agent: `Deno/${Deno.version.deno}`,
    close: () => server.shutdown(),
  };
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 9001);
  const server = startReferenceServer(port);
  console.log(`${server.agent} echo server on ${server.url}`);
}
