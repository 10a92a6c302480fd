/**
 * The transport against a scripted connection: ordering of what it reads,
 * writes and reports, without the timing of real sockets.
 *
 *   deno test tests/transport_test.ts
 */
import assert from "node:assert/strict";
import { Transport } from "../harness/transport.ts";
import { WireLog } from "../harness/wirelog.ts";

/**
 * A connection whose writes fail at once (the peer reset it) while the bytes
 * it sent before the reset are still to be read, as the kernel keeps them.
 */
class ResetConn {
  #unread: Uint8Array[];
  #closed = false;
  writes = 0;

  constructor(unread: Uint8Array[]) {
    this.#unread = unread;
  }

  async read(buf: Uint8Array): Promise<number | null> {
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (this.#closed) throw new Deno.errors.BadResource("closed by the suite");
    const next = this.#unread.shift();
    if (!next) return null;
    buf.set(next);
    return next.length;
  }

  write(_: Uint8Array): Promise<number> {
    this.writes++;
    return Promise.reject(new Deno.errors.BrokenPipe("Broken pipe (os error 32)"));
  }

  close(): void {
    this.#closed = true;
  }
}

Deno.test("transport: after a failed write, what the peer sent is still read, then the close reported", async () => {
  const closeReply = new Uint8Array([0x88, 0x02, 0x03, 0xe8]);
  const conn = new ResetConn([closeReply]);
  const log = new WireLog();
  const transport = new Transport(conn as unknown as Deno.Conn, log);
  const seen: string[] = [];
  transport.onData = (chunk) => void seen.push(`data ${chunk.toHex()}`);
  const closed = new Promise<void>((resolve) => {
    transport.onClosed = (reason) => {
      seen.push(`closed: ${reason}`);
      resolve();
    };
  });
  transport.send(new Uint8Array([1, 2, 3]));
  await closed;
  // Nothing more is written once a write failed.
  transport.send(new Uint8Array([4]));
  assert.equal(conn.writes, 1);
  assert.deepEqual(seen, ["data 880203e8", "closed: the peer closed the TCP connection"]);
  assert.ok(log.entries.some((e) => e.kind === "note" && e.text.startsWith("write failed")));
});

/** A connection that accepts every write and records it. */
class RecordingConn {
  writes: string[] = [];
  #closed = false;
  #wake?: () => void;

  async read(_: Uint8Array): Promise<number | null> {
    if (!this.#closed) await new Promise<void>((resolve) => (this.#wake = resolve));
    return null;
  }

  write(bytes: Uint8Array): Promise<number> {
    this.writes.push(bytes.toHex());
    return Promise.resolve(bytes.length);
  }

  close(): void {
    this.#closed = true;
    this.#wake?.();
  }
}

/** Lets the transport's writes settle. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("transport: plain writes queued in one turn leave in one write, as Autobahn's frames do", async () => {
  const conn = new RecordingConn();
  const transport = new Transport(conn as unknown as Deno.Conn, new WireLog());
  transport.send(new Uint8Array([1]));
  transport.send(new Uint8Array([2, 3]));
  transport.send(new Uint8Array([4]));
  await settle();
  transport.send(new Uint8Array([5]));
  await settle();
  transport.close();
  assert.deepEqual(conn.writes, ["01020304", "05"]);
});

Deno.test("transport: sync and chopped writes stay writes of their own", async () => {
  const conn = new RecordingConn();
  const transport = new Transport(conn as unknown as Deno.Conn, new WireLog());
  transport.send(new Uint8Array([1]), { sync: true });
  transport.send(new Uint8Array([2]), { sync: true });
  transport.send(new Uint8Array([3, 4, 5]), { chop: 2 });
  transport.send(new Uint8Array([6]));
  transport.send(new Uint8Array([7]));
  await settle();
  transport.close();
  assert.deepEqual(conn.writes, ["01", "02", "0304", "05", "0607"]);
});

Deno.test("transport: a piecewise write is made piece by piece as it is written, never joined", async () => {
  const conn = new RecordingConn();
  const transport = new Transport(conn as unknown as Deno.Conn, new WireLog());
  /** When each piece was made: after how many writes. */
  const madeAfter: number[] = [];
  function* pieces() {
    for (const byte of [2, 3, 4]) {
      madeAfter.push(conn.writes.length);
      yield new Uint8Array([byte]);
    }
  }
  transport.send(new Uint8Array([1]));
  transport.sendPieces(pieces());
  transport.send(new Uint8Array([5]));
  transport.send(new Uint8Array([6]));
  await settle();
  transport.close();
  assert.deepEqual(conn.writes, ["01", "02", "03", "04", "0506"]);
  assert.deepEqual(madeAfter, [1, 2, 3]);
});
