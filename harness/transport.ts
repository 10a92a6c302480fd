/**
 * Raw TCP/TLS connections with ordered, optionally chopped writes and a reader
 * loop. Every byte in and out goes to the wire log. Every wait is bounded by
 * the caller: close() ends any pending read or write.
 */
import { concat } from "./frame.ts";
import type { WireLog } from "./wirelog.ts";

export { concat };

export interface ConnectOptions {
  url: URL;
  /** PEM certificates to trust for wss:// (a private CA). */
  caCerts?: string[];
  timeoutMs: number;
}

export class ConnectError extends Error {}

export function defaultPort(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === "wss:" ? 443 : 80;
}

/** Opens TCP (ws:) or TLS (wss:) to the URL's host within the timeout. */
export async function connectRaw(options: ConnectOptions): Promise<Deno.Conn> {
  const { url } = options;
  // URL keeps IPv6 literals in brackets; the socket API wants them bare.
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = defaultPort(url);
  const pending = url.protocol === "wss:"
    ? Deno.connectTls({ hostname, port, caCerts: options.caCerts })
    : Deno.connect({ hostname, port });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ConnectError(`no connection to ${url.host} within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
  });
  try {
    const conn = await Promise.race([pending, timeout]);
    if ("setNoDelay" in conn && typeof conn.setNoDelay === "function") conn.setNoDelay(true);
    return conn;
  } catch (e) {
    // A connection that arrives after the timeout must not leak.
    pending.then((c) => c.close(), () => {});
    if (e instanceof ConnectError) throw e;
    throw new ConnectError(`cannot connect to ${url.host}: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

export interface WriteOptions {
  /** Write in pieces of this size, each a write of its own. */
  chop?: number;
  /** Write as a write of its own instead of joining neighbouring plain writes. */
  sync?: boolean;
}

type QueuedWrite =
  | { bytes: Uint8Array; options: WriteOptions }
  /** A long write produced piece by piece as the previous pieces are written (sendPieces). */
  | { pieces: Iterable<Uint8Array> };

/** A write that may leave together with the plain writes queued next to it. */
function isPlain(write: QueuedWrite): write is { bytes: Uint8Array; options: WriteOptions } {
  return "bytes" in write && !write.options.chop && !write.options.sync;
}

export class Transport {
  readonly #conn: Deno.Conn;
  readonly #log: WireLog;
  #queue: QueuedWrite[] = [];
  #pumping = false;
  #closed = false;
  /** A write failed: nothing more is sent, but what the peer sent before is still read. */
  #writeFailed = false;
  /** Called once the queue is empty (drained()). */
  #drainWaiters: (() => void)[] = [];

  /**
   * Called with each chunk read. When it returns a promise, the next read waits
   * for it: TCP then slows down a peer sending faster than its frames are handled.
   */
  onData: (chunk: Uint8Array) => void | Promise<void> = () => {};
  /** Called once when the connection is gone, with why. */
  onClosed: (reason: string) => void = () => {};

  constructor(conn: Deno.Conn, log: WireLog) {
    this.#conn = conn;
    this.#log = log;
    this.#readLoop();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes are being written or wait to be (the peer may be slow to read them). */
  get writing(): boolean {
    return this.#pumping;
  }

  /**
   * Queues bytes; writes go out in order. Plain writes queued together (in the
   * same turn of the event loop, or while a write is in progress) leave in one
   * write, as consecutive frames leave Autobahn in one TCP segment: a peer's
   * reaction to frames sent together must not depend on how its reads split them.
   */
  send(bytes: Uint8Array, options: WriteOptions = {}): void {
    this.#enqueue({ bytes, options });
  }

  #enqueue(write: QueuedWrite): void {
    if (this.#closed || this.#writeFailed) return;
    this.#queue.push(write);
    if (this.#pumping) return;
    this.#pumping = true;
    queueMicrotask(() => this.#pump());
  }

  /**
   * Queues one long write whose pieces are made only as the ones before them
   * are written, so it is never held whole (a 64 MiB frame, masked). It is not
   * joined with its neighbours: it needs several segments anyway.
   */
  sendPieces(pieces: Iterable<Uint8Array>): void {
    this.#enqueue({ pieces });
  }

  /** Resolves once every write queued so far has gone out, failed, or the connection closed. */
  drained(): Promise<void> {
    if (!this.#pumping) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Closes TCP at once. Pending reads and writes end. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    try {
      this.#conn.close();
    } catch { /* already gone */ }
  }

  async #pump(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const first = this.#queue.shift()!;
        if ("pieces" in first) {
          for (const piece of first.pieces) {
            if (this.#closed) break;
            await this.#write(piece);
          }
        } else if (first.options.chop && first.options.chop > 0) {
          const { chop } = first.options;
          for (let i = 0; i < first.bytes.length && !this.#closed; i += chop) {
            await this.#write(first.bytes.subarray(i, i + chop), "chop");
          }
        } else if (first.options.sync) {
          await this.#write(first.bytes, "sync");
        } else {
          // Join the plain writes queued behind it, as a stream socket would.
          const parts = [first.bytes];
          while (this.#queue.length > 0 && isPlain(this.#queue[0])) {
            parts.push((this.#queue.shift() as { bytes: Uint8Array }).bytes);
          }
          await this.#write(parts.length === 1 ? parts[0] : concat(parts));
        }
      }
    } catch (e) {
      // The peer reset or closed the connection. Its last frames (a close reply,
      // say) may still be unread: the read loop ends the connection once they are.
      this.#log.note(`write failed: ${(e as Error).message}`);
      this.#writeFailed = true;
      this.#queue = [];
    } finally {
      this.#pumping = false;
      for (const resolve of this.#drainWaiters.splice(0)) resolve();
    }
  }

  async #write(bytes: Uint8Array, how?: "chop" | "sync"): Promise<void> {
    this.#log.bytes("tx", bytes, how);
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  async #readLoop(): Promise<void> {
    let reason = "the peer closed the TCP connection";
    try {
      // One read buffer, copied out per read: allocating a large buffer per read
      // costs more than the copy when a peer sends many small frames.
      const buf = new Uint8Array(256 * 1024);
      while (true) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        const chunk = buf.slice(0, n);
        this.#log.bytes("rx", chunk);
        const handled = this.onData(chunk);
        if (handled) await handled;
      }
    } catch (e) {
      reason = this.#closed
        ? "the suite closed the TCP connection"
        : `read failed: ${(e as Error).message}`;
    }
    this.#finish(reason);
  }

  #finished = false;
  #finish(reason: string): void {
    if (this.#finished) return;
    this.#finished = true;
    this.close();
    this.onClosed(reason);
  }
}
