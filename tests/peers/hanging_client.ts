/**
 * A client that hangs at one stage of a WebSocket connection, to show that
 * client mode bounds the whole run whatever stage a client stops at:
 *
 *   never     starts and never connects
 *   silent    connects TCP and never sends its request
 *   no-echo   completes the handshake, then never reads nor sends again
 *   no-close  echoes every message, but never answers a close nor closes TCP
 *
 *   deno run --allow-net tests/peers/hanging_client.ts WS-URL --stage STAGE
 *
 * It runs until it is stopped (it holds its connection open), or exits 2 on bad
 * usage. Raw TCP and its own few lines of codec: a peer shares no code with
 * the harness it checks.
 */
import { parseArgs } from "node:util";

export const STAGES = ["never", "silent", "no-echo", "no-close"] as const;
export type Stage = typeof STAGES[number];

/** Runs the client until `signal` aborts (then its connection is closed). */
export async function runHangingClient(
  url: string,
  stage: Stage,
  signal?: AbortSignal,
): Promise<void> {
  const stopped = new Promise<void>((resolve) => {
    if (signal?.aborted) resolve();
    signal?.addEventListener("abort", () => resolve(), { once: true });
  });
  if (stage === "never") return await stopped;
  const target = new URL(url);
  const conn = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
  signal?.addEventListener("abort", () => {
    try {
      conn.close();
    } catch { /* closed */ }
  }, { once: true });
  try {
    if (stage !== "silent") await handshake(conn, target);
    if (stage === "no-close") await echoIgnoringClose(conn);
  } catch { /* the suite closed the connection: hang on all the same */ }
  await stopped;
}

async function handshake(conn: Deno.Conn, url: URL): Promise<void> {
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const request = `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n` +
    "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  await writeAll(conn, new TextEncoder().encode(request));
  // Reads the 101 byte by byte, so no frame after it is taken from the socket.
  const byte = new Uint8Array(1);
  let head = "";
  while (!head.endsWith("\r\n\r\n")) {
    if (await conn.read(byte) === null) throw new Error("closed during the handshake");
    head += String.fromCharCode(byte[0]);
  }
}

/** Echoes each data message (text as text, binary as binary); control frames get no answer. */
async function echoIgnoringClose(conn: Deno.Conn): Promise<void> {
  // Read into a buffer that grows by doubling: a 16 MiB message costs no quadratic copying.
  let buffer = new Uint8Array(64 * 1024);
  let start = 0, end = 0;
  let message: { opcode: number; parts: Uint8Array[] } | undefined;
  for (;;) {
    if (end === buffer.length) {
      const grown = new Uint8Array(
        end - start < buffer.length / 2 ? buffer.length : buffer.length * 2,
      );
      grown.set(buffer.subarray(start, end));
      [buffer, end, start] = [grown, end - start, 0];
    }
    const n = await conn.read(buffer.subarray(end));
    if (n === null) return;
    end += n;
    for (;;) {
      const frame = parseFrame(buffer.subarray(start, end));
      if (!frame) break;
      start += frame.size;
      if (frame.opcode >= 8) continue;
      if (frame.opcode !== 0) message = { opcode: frame.opcode, parts: [] };
      if (!message) continue;
      message.parts.push(frame.payload);
      if (frame.fin) {
        await writeAll(conn, maskedFrame(message.opcode, join(message.parts)));
        message = undefined;
      }
    }
  }
}

/** A complete unmasked frame at the start of `bytes`, or undefined. */
function parseFrame(bytes: Uint8Array) {
  if (bytes.length < 2) return undefined;
  let length = bytes[1] & 0x7f, offset = 2;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (length === 126) {
    if (bytes.length < 4) return undefined;
    [length, offset] = [view.getUint16(2), 4];
  } else if (length === 127) {
    if (bytes.length < 10) return undefined;
    [length, offset] = [Number(view.getBigUint64(2)), 10];
  }
  if (bytes.length < offset + length) return undefined;
  return {
    fin: (bytes[0] & 0x80) !== 0,
    opcode: bytes[0] & 0x0f,
    payload: bytes.slice(offset, offset + length),
    size: offset + length,
  };
}

function maskedFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const header = n < 126
    ? [0x80 | opcode, 0x80 | n]
    : n < 65536
    ? [0x80 | opcode, 0x80 | 126, n >> 8, n & 0xff]
    : [
      0x80 | opcode,
      0x80 | 127,
      ...new Uint8Array(new BigUint64Array([BigInt(n)]).buffer).reverse(),
    ];
  const key = crypto.getRandomValues(new Uint8Array(4));
  const masked = payload.map((b, i) => b ^ key[i & 3]);
  return join([new Uint8Array(header), key, masked]);
}

function join(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const p of parts) [out.set(p, offset), offset += p.length];
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { stage: { type: "string" } },
    allowPositionals: true,
  });
  const stage = values.stage as Stage;
  if (positionals.length !== 1 || !STAGES.includes(stage)) {
    console.error(`usage: hanging_client.ts WS-URL --stage ${STAGES.join("|")}`);
    Deno.exit(2);
  }
  // Holds the process open until it is stopped, whatever the stage left pending.
  setInterval(() => {}, 60_000);
  await runHangingClient(positionals[0], stage);
}
