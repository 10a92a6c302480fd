/**
 * The embedded default client of client mode: Deno's own WebSocket, echoing
 * every message with its type (harness/echo_client.js, the code the browsers'
 * page runs too). It is not tuned to pass; the suite reports what Deno does.
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
import type { ClientCommand, ReadyLine } from "./client_driver.ts";
import { echoClients } from "./echo_client.js";

/** Runs commands from standard input until it ends. */
async function serveCommands(): Promise<void> {
  const run = echoClients((id, event) => console.log(JSON.stringify({ id, ...event })));
  const ready: ReadyLine = { type: "ready", agent: `Deno/${Deno.version.deno}` };
  console.log(JSON.stringify(ready));
  let text = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    for (let end = text.indexOf("\n"); end >= 0; end = text.indexOf("\n")) {
      run(JSON.parse(text.slice(0, end)) as ClientCommand);
      text = text.slice(end + 1);
    }
  }
}

if (import.meta.main) {
  await serveCommands();
  Deno.exit(0);
}
