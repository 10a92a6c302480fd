/** The timestamped record of everything a case put on and took off the wire. */
import type { FrameHeader } from "./frame.ts";
import { isValidUtf8 } from "./utf8.ts";

/** Bytes of hex kept per log entry; the rest is counted, never compared. */
export const LOG_BYTES_LIMIT = 64;
/**
 * Entries kept per case: the first LOG_HEAD_ENTRIES and the last
 * LOG_TAIL_ENTRIES, so the closing handshake that decides a close verdict is
 * kept however long the case ran. The entries in between are counted by kind.
 * 1500 entries are about half a megabyte of report per long case; a run of
 * Autobahn's 517 cases has some 300 long ones.
 */
export const LOG_HEAD_ENTRIES = 1000;
export const LOG_TAIL_ENTRIES = 500;
export const LOG_ENTRIES_LIMIT = LOG_HEAD_ENTRIES + LOG_TAIL_ENTRIES;

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

const decoder = new TextDecoder();

function preview(payload: Uint8Array): { preview: string; previewIsText: boolean } {
  const head = payload.subarray(0, LOG_BYTES_LIMIT);
  const more = payload.length > head.length ? ` … (+${payload.length - head.length} bytes)` : "";
  // Checked, not decoded with a fatal decoder: its exception costs more than the whole
  // preview, once per binary frame. A cut may split a code point: then hex, as for non-text.
  if (isValidUtf8(head)) {
    const text = decoder.decode(head);
    // deno-lint-ignore no-control-regex
    if (!/[\u0000-\u0008\u000e-\u001f\u007f]/.test(text)) {
      return { preview: text + more, previewIsText: true };
    }
  }
  return { preview: head.toHex() + more, previewIsText: false };
}

/** The kind an entry is counted under when it is not kept: "tx frame", "rx bytes", "note". */
function entryKey(entry: WireEntry): string {
  return entry.kind === "note" ? "note" : `${entry.dir} ${entry.kind}`;
}

export class WireLog {
  readonly #head: WireEntry[] = [];
  /** The latest entries past the head, a ring of LOG_TAIL_ENTRIES starting at #tailStart. */
  readonly #tail: WireEntry[] = [];
  #tailStart = 0;
  /** Entries not kept (between the head and the tail), by kind and direction. */
  readonly elided: Record<string, number> = {};
  /** When the first entry not kept was logged. */
  #elidedSince?: number;
  readonly #start: number;

  constructor(start: number = performance.now()) {
    this.#start = start;
  }

  /**
   * The entries kept, in order; where some were not kept, a note in their place
   * says how many, of which kinds.
   */
  get entries(): WireEntry[] {
    if (this.#tail.length === 0) return this.#head;
    const tail = [...this.#tail.slice(this.#tailStart), ...this.#tail.slice(0, this.#tailStart)];
    const counts = Object.entries(this.elided);
    if (counts.length === 0) return [...this.#head, ...tail];
    const total = counts.reduce((sum, [, n]) => sum + n, 0);
    const marker: WireEntry = {
      t: this.#elidedSince!,
      kind: "note",
      text: `${total} entries not kept here (${
        counts.map(([key, n]) => `${key}: ${n}`).join(", ")
      }): the log keeps its first ${LOG_HEAD_ENTRIES} and its last ${LOG_TAIL_ENTRIES} entries`,
    };
    return [...this.#head, marker, ...tail];
  }

  #count(key: string, n: number): void {
    this.#elidedSince ??= this.now;
    this.elided[key] = (this.elided[key] ?? 0) + n;
  }

  #push(entry: WireEntry): void {
    if (this.#head.length < LOG_HEAD_ENTRIES) {
      this.#head.push(entry);
    } else if (this.#tail.length < LOG_TAIL_ENTRIES) {
      this.#tail.push(entry);
    } else {
      // The oldest entry of the tail makes room: it is now in the middle, counted only.
      this.#count(entryKey(this.#tail[this.#tailStart]), 1);
      this.#tail[this.#tailStart] = entry;
      this.#tailStart = (this.#tailStart + 1) % LOG_TAIL_ENTRIES;
    }
  }

  /** Counts entries not built at all because the log would not keep them (see keeps()). */
  elide(key: string, count: number): void {
    if (count > 0) this.#count(key, count);
  }

  /**
   * Whether an entry logged now, with `remaining - 1` more to follow at once,
   * would be kept: building entries is not free, so callers logging many at
   * once build only those.
   */
  keeps(remaining: number): boolean {
    return this.#head.length < LOG_HEAD_ENTRIES || remaining <= LOG_TAIL_ENTRIES;
  }

  get now(): number {
    return Math.round((performance.now() - this.#start) * 1000) / 1000;
  }

  bytes(dir: "tx" | "rx", bytes: Uint8Array, how?: "chop" | "sync"): void {
    this.#push({
      t: this.now,
      dir,
      kind: "bytes",
      length: bytes.length,
      hex: bytes.subarray(0, LOG_BYTES_LIMIT).toHex(),
      ...(how ? { how } : {}),
    });
  }

  frame(dir: "tx" | "rx", header: FrameHeader, payload: Uint8Array): void {
    this.#push({
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
    this.#push({ t: this.now, kind: "note", text });
  }
}
