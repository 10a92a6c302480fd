/** The timestamped record of everything a case put on and took off the wire. */
import type { FrameHeader } from "./frame.ts";

/** Bytes of hex kept per log entry; the rest is counted, never compared. */
export const LOG_BYTES_LIMIT = 256;
/** Entries kept per case; past it, entries are counted by kind. */
export const LOG_ENTRIES_LIMIT = 4000;

export type WireEntry =
  /** Raw bytes written (tx) or read (rx). `how` says how a write was delivered. */
  | {
    t: number;
    dir: "tx" | "rx";
    kind: "bytes";
    length: number;
    hex: string;
    how?: "chop" | "sync";
  }
  /** A frame the suite sent or decoded. */
  | {
    t: number;
    dir: "tx" | "rx";
    kind: "frame";
    fin: boolean;
    rsv: number;
    opcode: number;
    masked: boolean;
    maskKey?: string;
    length: string;
    lengthForm: 7 | 16 | 64;
    /** Payload preview: text when it is printable UTF-8, else hex. */
    preview: string;
    previewIsText: boolean;
  }
  /** Something that is not bytes: a timer, a state change, TCP closing. */
  | { t: number; kind: "note"; text: string };

const decoder = new TextDecoder("utf-8", { fatal: true });

function preview(payload: Uint8Array): { preview: string; previewIsText: boolean } {
  const head = payload.subarray(0, LOG_BYTES_LIMIT);
  const more = payload.length > head.length ? ` … (+${payload.length - head.length} bytes)` : "";
  try {
    // A cut may split a code point: then fall back to hex, as for any non-text.
    const text = decoder.decode(head);
    // deno-lint-ignore no-control-regex
    if (!/[\u0000-\u0008\u000e-\u001f\u007f]/.test(text)) {
      return { preview: text + more, previewIsText: true };
    }
  } catch { /* not text */ }
  return { preview: head.toHex() + more, previewIsText: false };
}

export class WireLog {
  readonly entries: WireEntry[] = [];
  /** Entries not kept because of LOG_ENTRIES_LIMIT, by kind and direction. */
  readonly elided: Record<string, number> = {};
  readonly #start: number;

  constructor(start: number = performance.now()) {
    this.#start = start;
  }

  /** Counts the entry instead of keeping it when the log is full; building entries is not free. */
  #full(key: string): boolean {
    if (this.entries.length < LOG_ENTRIES_LIMIT) return false;
    this.elided[key] = (this.elided[key] ?? 0) + 1;
    return true;
  }

  /** Counts entries not built at all because the log is full. */
  elide(key: string, count: number): void {
    if (count > 0) this.elided[key] = (this.elided[key] ?? 0) + count;
  }

  /** True once entries are only counted: callers may skip building them. */
  get full(): boolean {
    return this.entries.length >= LOG_ENTRIES_LIMIT;
  }

  get now(): number {
    return Math.round((performance.now() - this.#start) * 1000) / 1000;
  }

  bytes(dir: "tx" | "rx", bytes: Uint8Array, how?: "chop" | "sync"): void {
    if (this.#full(`${dir} bytes`)) return;
    this.entries.push({
      t: this.now,
      dir,
      kind: "bytes",
      length: bytes.length,
      hex: bytes.subarray(0, LOG_BYTES_LIMIT).toHex(),
      ...(how ? { how } : {}),
    });
  }

  frame(dir: "tx" | "rx", header: FrameHeader, payload: Uint8Array): void {
    if (this.#full(`${dir} frame`)) return;
    this.entries.push({
      t: this.now,
      dir,
      kind: "frame",
      fin: header.fin,
      rsv: header.rsv,
      opcode: header.opcode,
      masked: header.masked,
      ...(header.maskKey ? { maskKey: header.maskKey.toHex() } : {}),
      length: header.length.toString(),
      lengthForm: header.lengthForm,
      ...preview(payload),
    });
  }

  note(text: string): void {
    if (this.#full("note")) return;
    this.entries.push({ t: this.now, kind: "note", text });
  }
}
