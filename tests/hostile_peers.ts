/**
 * Misbehaving "WebSocket servers" over raw TCP, for the robustness tests: each
 * breaks the protocol in one way a real server (or a wrong port) can. They are
 * written from the RFC directly (the accept value is computed here, not with
 * the harness's codec), listen on 127.0.0.1 at a free port, and close() ends
 * the listener and every connection and waits for all of them.
 */

/** The ways a peer misbehaves; see HOSTILE_PEERS for what each does. */
export type HostileKind =
  | "silent"
  | "http-200"
  | "garbage"
  | "huge-frame"
  | "trickle-text"
  | "slam"
  | "close-at-once"
  | "deaf"
  | "ping-flood";

export const HOSTILE_PEERS: Record<HostileKind, string> = {
  "silent": "accepts TCP, reads and discards, never answers the handshake",
  "http-200": "answers the upgrade request with HTTP 200 and a body",
  "garbage": "sends random bytes as soon as it accepts",
  "huge-frame": "completes the handshake, announces a 2^62-byte frame, trickles 1 byte/100 ms",
  "trickle-text": "completes the handshake, trickles a valid 8 MiB text frame at 1 byte/100 ms",
  "slam": "accepts TCP and closes it at once",
  "close-at-once": "writes the 101 response, a close frame (1000) and its FIN in one write",
  "deaf": "completes the handshake, then never reads (TCP backpressure) and never sends",
  "ping-flood": "completes the handshake, then sends 100k pings/s, echoes nothing, never closes",
};

export interface HostilePeer {
  kind: HostileKind;
  /** ws://127.0.0.1:PORT/ */
  url: string;
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Stops listening, closes every connection and waits for their handlers. */
  close(): Promise<void>;
}

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const TRICKLE_MS = 100;
/** Bytes of garbage sent by the "garbage" peer: more than any sane handshake head. */
const GARBAGE_BYTES = 64 * 1024;
/** The length the "trickle-text" peer announces: valid, under the suite's 64 MiB limit. */
const TRICKLE_TEXT_LENGTH = 8 * 1024 * 1024;
const HEAD_LIMIT = 16 * 1024;
/** The "ping-flood" peer writes this many pings every FLOOD_MS: 100k pings/s. */
const FLOOD_BATCH = 1000;
const FLOOD_MS = 10;

const encoder = new TextEncoder();

/** Resolves after `ms`, or at once when `signal` aborts; never rejects, leaves no timer. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(id);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const id = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** Reads and throws away everything until EOF or an error. */
async function discard(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  while ((await conn.read(buf)) !== null) { /* discard */ }
}

/** Reads the HTTP request head (up to the empty line); undefined on EOF or an overlong head. */
async function readHead(conn: Deno.Conn): Promise<string | undefined> {
  const buf = new Uint8Array(4096);
  let text = "";
  while (!text.includes("\r\n\r\n")) {
    if (text.length > HEAD_LIMIT) return undefined;
    const n = await conn.read(buf);
    if (n === null) return undefined;
    text += new TextDecoder("latin1").decode(buf.subarray(0, n));
  }
  return text;
}

/** Sec-WebSocket-Accept per RFC 6455 §4.2.2: base64(SHA-1(key + GUID)). */
async function acceptValue(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", encoder.encode(key + GUID));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/** Reads the client's request and answers 101 with a correct accept value; false if it cannot. */
async function acceptHandshake(
  conn: Deno.Conn,
  signal: AbortSignal,
  delayMs: number,
  after: Uint8Array = new Uint8Array(0),
): Promise<boolean> {
  const head = await readHead(conn);
  const key = head && /^sec-websocket-key:[ \t]*(\S+)[ \t]*$/im.exec(head)?.[1];
  if (!key) return false;
  if (delayMs > 0) await sleep(delayMs, signal);
  if (signal.aborted) return false;
  const response = encoder.encode(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${await acceptValue(key)}\r\nServer: wsconform-hostile\r\n\r\n`,
  );
  const out = new Uint8Array(response.length + after.length);
  out.set(response);
  out.set(after, response.length);
  await writeAll(conn, out);
  return true;
}

/** An unmasked server frame header: FIN, the opcode, and a 64-bit length (RFC 6455 §5.2). */
function header64(opcode: number, length: bigint): Uint8Array {
  const out = new Uint8Array(10);
  out[0] = 0x80 | opcode;
  out[1] = 127;
  new DataView(out.buffer).setBigUint64(2, length);
  return out;
}

/** Writes `byte` every TRICKLE_MS until the connection or the peer ends. */
async function trickle(conn: Deno.Conn, byte: number, signal: AbortSignal): Promise<void> {
  const one = new Uint8Array([byte]);
  while (!signal.aborted) {
    await sleep(TRICKLE_MS, signal);
    if (signal.aborted) return;
    await writeAll(conn, one);
  }
}

function closeConn(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

/** Runs tasks on one connection; the first to end (EOF, error) closes it, which ends the rest. */
async function together(conn: Deno.Conn, ...tasks: Promise<void>[]): Promise<void> {
  await Promise.allSettled(tasks.map((task) => task.finally(() => closeConn(conn))));
}

type Handler = (conn: Deno.TcpConn, signal: AbortSignal) => Promise<void>;

export interface HostileOptions {
  /**
   * Delay before the handshake-completing peers ("huge-frame", "trickle-text",
   * "deaf") answer the upgrade request: a slow server. Default 0.
   */
  handshakeDelayMs?: number;
  /**
   * "huge-frame" only: send the 2^62 announcement in the same write as the 101
   * response (so it reaches the client with it) instead of 20 ms later.
   */
  frameWithResponse?: boolean;
  /**
   * "close-at-once" only: this many 1-byte text frames ("a") before the close
   * frame, in the same write. Default 0.
   */
  framesBeforeClose?: number;
}

function handlers(options: HostileOptions): Record<HostileKind, Handler> {
  const delayMs = options.handshakeDelayMs ?? 0;
  return {
    "silent": (conn) => discard(conn),
    "http-200": async (conn) => {
      if ((await readHead(conn)) === undefined) return;
      const body = "this is a web page, not a WebSocket endpoint\n";
      await writeAll(
        conn,
        encoder.encode(
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" +
            `Content-Length: ${body.length}\r\n\r\n${body}`,
        ),
      );
      // Keep-alive: wait for another request that will never come.
      await discard(conn);
    },
    "garbage": async (conn) => {
      const garbage = new Uint8Array(GARBAGE_BYTES);
      for (let off = 0; off < garbage.length; off += 65536) {
        crypto.getRandomValues(garbage.subarray(off, off + 65536));
      }
      // Written while reading; the connection stays open after the garbage until the client leaves.
      const writing = writeAll(conn, garbage).catch(() => {});
      await together(conn, discard(conn));
      await writing;
    },
    "huge-frame": async (conn, signal) => {
      const announce = header64(0x1, 1n << 62n);
      if (options.frameWithResponse) {
        if (!(await acceptHandshake(conn, signal, delayMs, announce))) return;
      } else {
        if (!(await acceptHandshake(conn, signal, delayMs))) return;
        // A write of its own, a little later: the header arrives after the 101 response.
        await sleep(20, signal);
        await writeAll(conn, announce);
      }
      await together(conn, trickle(conn, 0x61, signal), discard(conn));
    },
    "trickle-text": async (conn, signal) => {
      if (!(await acceptHandshake(conn, signal, delayMs))) return;
      await writeAll(conn, header64(0x1, BigInt(TRICKLE_TEXT_LENGTH)));
      await together(conn, trickle(conn, 0x61, signal), discard(conn));
    },
    "slam": (conn) => {
      conn.close();
      return Promise.resolve();
    },
    "ping-flood": async (conn, signal) => {
      if (!(await acceptHandshake(conn, signal, delayMs))) return;
      // Unmasked pings with a 4-byte payload, FIN set (RFC 6455 §5.5.2).
      const pings = new Uint8Array(6 * FLOOD_BATCH);
      for (let i = 0; i < FLOOD_BATCH; i++) pings.set([0x89, 4, 0x70, 0x69, 0x6e, 0x67], 6 * i);
      const flood = async () => {
        while (!signal.aborted) {
          await writeAll(conn, pings);
          await sleep(FLOOD_MS, signal);
        }
      };
      await together(conn, flood(), discard(conn));
    },
    "close-at-once": async (conn, signal) => {
      // Text frames "a", then a close frame with code 1000, all FIN and unmasked; the
      // handler's end closes TCP right after the one write.
      const frames = options.framesBeforeClose ?? 0;
      const after = new Uint8Array(3 * frames + 4);
      for (let i = 0; i < frames; i++) after.set([0x81, 1, 0x61], 3 * i);
      after.set([0x88, 0x02, 0x03, 0xe8], 3 * frames);
      await acceptHandshake(conn, signal, delayMs, after);
    },
    "deaf": async (conn, signal) => {
      // The connection stays open, unread, until close().
      await acceptHandshake(conn, signal, delayMs);
    },
  };
}

/** Starts a hostile peer of the given kind on 127.0.0.1, any free port. */
export function startHostilePeer(kind: HostileKind, options: HostileOptions = {}): HostilePeer {
  const handle = handlers(options)[kind];
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  const controller = new AbortController();
  const conns = new Set<Deno.TcpConn>();
  const running = new Set<Promise<void>>();
  let accepted = 0;

  const acceptLoop = (async () => {
    while (!controller.signal.aborted) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch {
        return; // the listener was closed
      }
      accepted++;
      conns.add(conn);
      const handled: Promise<void> = handle(conn, controller.signal)
        // A client that goes away makes reads and writes fail: that ends the handler.
        .catch(() => {})
        .finally(() => {
          // "deaf" keeps its connection open on purpose until close().
          if (kind !== "deaf") {
            closeConn(conn);
            conns.delete(conn);
          }
          running.delete(handled);
        });
      running.add(handled);
    }
  })();

  return {
    kind,
    url: `ws://127.0.0.1:${port}/`,
    port,
    get accepted() {
      return accepted;
    },
    async close() {
      if (!controller.signal.aborted) {
        controller.abort();
        try {
          listener.close();
        } catch { /* already closed */ }
      }
      await acceptLoop;
      for (const conn of conns) closeConn(conn);
      conns.clear();
      await Promise.all([...running]);
    },
  };
}
