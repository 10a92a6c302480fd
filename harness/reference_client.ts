/**
 * The embedded default client of client mode: Deno's own WebSocket, echoing
 * every message with its type. It is not tuned to pass; the suite reports what
 * Deno does.
 *
 * One long-lived child process serves every case (a Deno process per case
 * would cost 50-100 ms each), driven by harness/client_driver.ts with one JSON
 * line per command on standard input: a connection opens with
 *
 *   {"connect": "ws://127.0.0.1:PORT/...", "id": 1, "protocols": ["chat"]}
 *
 * and is closed, once its case has ended, with `{"close": 1}`. The client
 * answers with one JSON line per event on standard output, after a first line
 * `{"type":"ready","agent":"Deno/2.9.6"}`:
 *
 *   {"id": 1, "type": "opened", "protocol": "chat", "extensions": ""}
 *   {"id": 1, "type": "error", "message": "..."}
 *   {"id": 1, "type": "closed", "code": 1000, "reason": "", "wasClean": true}
 *   {"id": 1, "type": "failed", "message": "..."}   the WebSocket could not be created
 *
 * "closed" or "failed" is a connection's last line. The suite judges from the
 * wire; these lines are for the report and tell when the client is done. The
 * child may only use the network on 127.0.0.1, and exits when its standard
 * input ends (the suite is gone).
 */

/** A command read from standard input. */
export type ClientCommand =
  | { connect: string; id: number; protocols?: string[] }
  | { close: number };

/** What the client reports of one connection. */
export type ClientEvent =
  | { type: "opened"; protocol: string; extensions: string }
  | { type: "error"; message: string }
  | { type: "closed"; code: number; reason: string; wasClean: boolean }
  | { type: "failed"; message: string };

/** The first line the child prints. */
export interface ReadyLine {
  type: "ready";
  agent: string;
}

function report(id: number, event: ClientEvent): void {
  console.log(JSON.stringify({ id, ...event }));
}

/** Opens one echoing connection; its events are reported under `id`. */
function connect(url: string, id: number, protocols: string[] = []): WebSocket | undefined {
  let socket: WebSocket;
  try {
    socket = new WebSocket(url, protocols);
  } catch (error) {
    report(id, { type: "failed", message: error instanceof Error ? error.message : String(error) });
    return undefined;
  }
  socket.binaryType = "arraybuffer";
  socket.onopen = () =>
    report(id, { type: "opened", protocol: socket.protocol, extensions: socket.extensions });
  // Text arrives as a string and binary as an ArrayBuffer: sent back, each keeps its type.
  socket.onmessage = (event) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(event.data);
  };
  socket.onerror = (event) =>
    report(id, { type: "error", message: (event as ErrorEvent).message ?? "error" });
  socket.onclose = (event) =>
    report(id, {
      type: "closed",
      code: event.code,
      reason: event.reason,
      wasClean: event.wasClean,
    });
  return socket;
}

/** Runs commands from standard input until it ends. */
async function serveCommands(): Promise<void> {
  const sockets = new Map<number, WebSocket>();
  const ready: ReadyLine = { type: "ready", agent: `Deno/${Deno.version.deno}` };
  console.log(JSON.stringify(ready));
  let text = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    for (let end = text.indexOf("\n"); end >= 0; end = text.indexOf("\n")) {
      const command = JSON.parse(text.slice(0, end)) as ClientCommand;
      text = text.slice(end + 1);
      if ("connect" in command) {
        const socket = connect(command.connect, command.id, command.protocols);
        if (socket) {
          sockets.set(command.id, socket);
          socket.addEventListener("close", () => sockets.delete(command.id));
        }
      } else {
        sockets.get(command.close)?.close();
      }
    }
  }
}

if (import.meta.main) {
  await serveCommands();
  Deno.exit(0);
}
