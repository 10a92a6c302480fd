// @ts-check
/**
 * Client mode's echo client, in plain JavaScript so that one copy runs both in
 * Deno (harness/reference_client.ts, the embedded client) and in a browser's
 * page (harness/browser_driver.ts serves this file to it). It is not tuned to
 * pass: the suite reports what the WebSocket under test does.
 *
 * The suite drives it with commands: `{"connect": url, "id": 1, "protocols": [...]}`
 * opens a WebSocket that echoes every message with its type (text as text,
 * binary as binary), `{"close": 1}` closes it once its case has ended. Each
 * connection's events are reported under its id; "closed" or "failed" (the
 * WebSocket could not be created) is its last.
 */

/** @typedef {import("./client_driver.ts").ClientCommand} ClientCommand */
/** @typedef {import("./client_driver.ts").ClientEvent} ClientEvent */

/**
 * A runner of the suite's commands; each connection's events go to `report`.
 * @param {(id: number, event: ClientEvent) => void} report
 * @returns {(command: ClientCommand) => void}
 */
export function echoClients(report) {
  /** @type {Map<number, WebSocket>} */
  const sockets = new Map();
  return (command) => {
    if ("connect" in command) {
      const { id } = command;
      const socket = connect(
        command.connect,
        command.protocols ?? [],
        (event) => report(id, event),
      );
      if (socket) {
        sockets.set(id, socket);
        socket.addEventListener("close", () => sockets.delete(id));
      }
    } else {
      sockets.get(command.close)?.close();
    }
  };
}

/**
 * Opens one echoing connection, or reports "failed" when the WebSocket cannot
 * be created (a URL or subprotocol the client refuses).
 * @param {string} url
 * @param {string[]} protocols
 * @param {(event: ClientEvent) => void} report
 * @returns {WebSocket | undefined}
 */
function connect(url, protocols, report) {
  /** @type {WebSocket} */
  let socket;
  try {
    socket = new WebSocket(url, protocols);
  } catch (error) {
    report({ type: "failed", message: error instanceof Error ? error.message : String(error) });
    return undefined;
  }
  socket.binaryType = "arraybuffer";
  socket.onopen = () =>
    report({ type: "opened", protocol: socket.protocol, extensions: socket.extensions });
  // Text arrives as a string and binary as an ArrayBuffer: sent back, each keeps its type.
  socket.onmessage = (event) => {
    if (socket.readyState === WebSocket.OPEN) socket.send(event.data);
  };
  // A browser's error event has no message; Deno's is an ErrorEvent.
  socket.onerror = (event) =>
    report({ type: "error", message: "message" in event ? String(event.message) : "error" });
  socket.onclose = (event) =>
    report({ type: "closed", code: event.code, reason: event.reason, wasClean: event.wasClean });
  return socket;
}

/**
 * The browser page's side of the control channel (no WebSocket: it is what is
 * tested): commands arrive as Server-Sent Events from `/commands`, events go
 * back in order, batched, as JSON arrays POSTed to `/events`, one POST at a
 * time. The page's navigator.userAgent goes with the first request.
 */
export function runInPage() {
  /** @type {({ id: number } & ClientEvent)[]} */
  let queue = [];
  let posting = false;
  const post = async () => {
    posting = true;
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      // A failed POST means the suite is gone: there is no one left to tell.
      await fetch("/events", { method: "POST", body: JSON.stringify(batch) }).catch(() => {});
    }
    posting = false;
  };
  const run = echoClients((id, event) => {
    queue.push({ id, ...event });
    if (!posting) post();
  });
  const commands = new EventSource(`/commands?agent=${encodeURIComponent(navigator.userAgent)}`);
  commands.onmessage = (message) => run(JSON.parse(message.data));
}
