/**
 * RFC 6455 §5.2 frame codec. Pure: no I/O, no clocks.
 *
 * The encoder writes any frame, legal or not. The decoder is an incremental
 * state machine that takes bytes in any chunking, reports every header field
 * exactly as sent, and refuses to allocate for a declared payload length above
 * its limit.
 */

export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

export function isControlOpcode(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

export function isKnownOpcode(opcode: number): boolean {
  return opcode <= 2 || (opcode >= 8 && opcode <= 10);
}

export type LengthForm = 7 | 16 | 64;

export interface FrameHeader {
  fin: boolean;
  /** RSV1..RSV3 as a 3-bit number (RSV1 is 4). */
  rsv: number;
  opcode: number;
  masked: boolean;
  /** The 4-byte masking key when masked. */
  maskKey?: Uint8Array;
  /** Declared payload length, exact even beyond 2^53. */
  length: bigint;
  /** The length encoding the sender chose. */
  lengthForm: LengthForm;
  /** Header size in bytes (2 to 14). */
  headerLength: number;
}

export interface FrameToEncode {
  opcode: number;
  fin?: boolean;
  rsv?: number;
  /** Unmasked payload. */
  payload?: Uint8Array;
  /** Masking key (4 bytes); absent means unmasked. */
  maskKey?: Uint8Array;
  /** Length encoding; default the minimal one for the length. */
  lengthForm?: LengthForm;
  /** Length to announce instead of the payload's own (to write a lying header). */
  declaredLength?: bigint;
}

export function minimalLengthForm(length: bigint | number): LengthForm {
  const n = BigInt(length);
  return n < 126n ? 7 : n < 65536n ? 16 : 64;
}

type HeaderFields = Omit<FrameToEncode, "payload" | "declaredLength">;

function checkedForm(length: bigint, form: LengthForm | undefined): LengthForm {
  if (length < 0n || length > 0xffff_ffff_ffff_ffffn) throw new RangeError("length out of range");
  const chosen = form ?? minimalLengthForm(length);
  if (chosen === 7 && length > 125n) throw new RangeError("length does not fit the 7-bit form");
  if (chosen === 16 && length > 0xffffn) {
    throw new RangeError("length does not fit the 16-bit form");
  }
  if (chosen !== 7 && chosen !== 16 && chosen !== 64) {
    throw new RangeError(`no length form ${form}`);
  }
  return chosen;
}

function headerSize(form: LengthForm, masked: boolean): number {
  return 2 + (form === 7 ? 0 : form === 16 ? 2 : 8) + (masked ? 4 : 0);
}

/** Writes a header at `pos`; returns its size. Allocation-free: it runs once per frame sent. */
function writeHeader(
  out: Uint8Array,
  view: DataView,
  pos: number,
  frame: HeaderFields,
  length: bigint,
  form: LengthForm,
): number {
  const maskBit = frame.maskKey ? 0x80 : 0;
  out[pos] = ((frame.fin ?? true) ? 0x80 : 0) | (((frame.rsv ?? 0) & 7) << 4) |
    (frame.opcode & 0xf);
  let p = pos + 2;
  if (form === 7) {
    out[pos + 1] = maskBit | Number(length);
  } else if (form === 16) {
    out[pos + 1] = maskBit | 126;
    view.setUint16(p, Number(length));
    p += 2;
  } else {
    out[pos + 1] = maskBit | 127;
    view.setBigUint64(p, length);
    p += 8;
  }
  if (frame.maskKey) {
    if (frame.maskKey.length !== 4) throw new RangeError("masking key must be 4 bytes");
    out.set(frame.maskKey, p);
    p += 4;
  }
  return p - pos;
}

/** Encodes a frame header only; the payload (masked) follows it on the wire. */
export function encodeHeader(frame: HeaderFields & { length: bigint }): Uint8Array {
  const form = checkedForm(frame.length, frame.lengthForm);
  const out = new Uint8Array(headerSize(form, frame.maskKey !== undefined));
  writeHeader(out, new DataView(out.buffer), 0, frame, frame.length, form);
  return out;
}

/** Encodes a whole frame: header plus payload, masked when a key is given. */
export function encodeFrame(frame: FrameToEncode): Uint8Array {
  return encodeFrames([frame]);
}

/**
 * Encodes one frame as pieces of at most `pieceSize` payload bytes, the first
 * with the header: each piece is built and masked only when asked for, so a
 * 64 MiB frame is never held a second time, masked, beside its payload. The
 * pieces joined equal encodeFrame's bytes.
 */
export function* encodeFramePieces(
  frame: Omit<FrameToEncode, "declaredLength"> & { payload: Uint8Array },
  pieceSize: number,
): Generator<Uint8Array> {
  const { payload, maskKey } = frame;
  const header = encodeHeader({ ...frame, length: BigInt(payload.length) });
  let offset = 0;
  do {
    const size = Math.min(pieceSize, payload.length - offset);
    const lead = offset === 0 ? header.length : 0;
    const piece = new Uint8Array(lead + size);
    if (lead) piece.set(header);
    piece.set(payload.subarray(offset, offset + size), lead);
    if (maskKey) maskInPlace(piece.subarray(lead), maskKey, offset);
    offset += size;
    yield piece;
  } while (offset < payload.length);
}

const EMPTY = new Uint8Array(0);

/** Encodes frames back to back into one buffer (several frames in one write). */
export function encodeFrames(frames: readonly FrameToEncode[]): Uint8Array {
  const lengths = frames.map((f) => f.declaredLength ?? BigInt((f.payload ?? EMPTY).length));
  const forms = frames.map((f, i) => checkedForm(lengths[i], f.lengthForm));
  let total = 0;
  frames.forEach((f, i) => {
    total += headerSize(forms[i], f.maskKey !== undefined) + (f.payload ?? EMPTY).length;
  });
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let pos = 0;
  frames.forEach((f, i) => {
    pos += writeHeader(out, view, pos, f, lengths[i], forms[i]);
    const payload = f.payload ?? EMPTY;
    out.set(payload, pos);
    if (f.maskKey) xorRange(out, pos, pos + payload.length, f.maskKey, 0, 0);
    pos += payload.length;
  });
  return out;
}

/**
 * Encodes a message as its sender would (§5.4): frames of `fragmentSize` bytes
 * (one frame when absent), the first with `opcode`, the rest continuations,
 * split as fragmentCount() says.
 * `maskKeys` holds 4 bytes per frame; absent means unmasked. One buffer, no
 * per-frame allocation: a 4 MiB message in 64-byte fragments is 65536 frames.
 */
export function encodeMessage(
  payload: Uint8Array,
  options: {
    opcode: number;
    fragmentSize?: number;
    maskKeys?: Uint8Array;
    /** RSV bits of the first frame: an extension's mark on the message (RFC 7692 §6). */
    rsv?: number;
  },
): Uint8Array {
  const count = fragmentCount(payload.length, options.fragmentSize);
  const size = count === 1 ? payload.length : options.fragmentSize!;
  const masked = options.maskKeys !== undefined;
  if (masked && options.maskKeys!.length < 4 * count) throw new RangeError("not enough mask keys");
  let total = payload.length;
  for (let i = 0; i < count; i++) {
    const len = Math.min(size, payload.length - i * size);
    total += headerSize(minimalLengthForm(len), masked);
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  const keys = options.maskKeys;
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const start = i * size;
    const len = Math.min(size, payload.length - start);
    const length = BigInt(len);
    const form = minimalLengthForm(len);
    const headerStart = pos;
    pos += writeHeader(
      out,
      view,
      pos,
      {
        opcode: i === 0 ? options.opcode : Opcode.Continuation,
        fin: i === count - 1,
        rsv: i === 0 ? options.rsv : 0,
      },
      length,
      form,
    );
    if (keys) {
      // Key bytes copied one by one: a subarray per frame would be an allocation per frame.
      out[headerStart + 1] |= 0x80;
      for (let j = 0; j < 4; j++) out[pos + j] = keys[4 * i + j];
      pos += 4;
    }
    out.set(payload.subarray(start, start + len), pos);
    if (keys) xorRange(out, pos, pos + len, keys, 4 * i, 0);
    pos += len;
  }
  return out;
}

/**
 * Frames a message of `length` bytes takes at `fragmentSize` bytes per frame,
 * split as Autobahn's sendMessage splits it, so shared case ids put the same
 * frames on the wire: a message no longer than one fragment is one frame, and
 * one that fills its last fragment exactly ends with an empty FIN continuation
 * (4 MiB in 256-byte fragments is 16385 frames, which a peer's fragment-count
 * limit of 16384 refuses).
 */
export function fragmentCount(length: number, fragmentSize?: number): number {
  if (!fragmentSize || fragmentSize <= 0 || length <= fragmentSize) return 1;
  return Math.floor(length / fragmentSize) + 1;
}

/**
 * XORs `data` with the masking key in place (§5.3). `offset` is the position of
 * data[0] within the frame payload, so a payload can be masked piece by piece.
 */
export function maskInPlace(data: Uint8Array, key: Uint8Array, offset = 0): void {
  xorRange(data, 0, data.length, key, 0, offset);
}

/**
 * XORs data[start, end) with the 4-byte key at keys[keyAt], the first byte being
 * at position `phase` of the key cycle.
 */
function xorRange(
  data: Uint8Array,
  start: number,
  end: number,
  keys: Uint8Array,
  keyAt: number,
  phase: number,
): void {
  let i = start;
  const k = (j: number) => keys[keyAt + ((phase + j - start) & 3)];
  // Word-at-a-time for long runs: masking megabytes byte by byte is slow.
  if (end - start >= 1024) {
    for (; (data.byteOffset + i) % 4 !== 0; i++) data[i] ^= k(i);
    const words = (end - i) >>> 2;
    const w = new Uint32Array(data.buffer, data.byteOffset + i, words);
    const kb = new Uint8Array([k(i), k(i + 1), k(i + 2), k(i + 3)]);
    const kw = new Uint32Array(kb.buffer)[0];
    for (let j = 0; j < words; j++) w[j] ^= kw;
    i += words * 4;
  }
  for (; i < end; i++) data[i] ^= k(i);
}

/** Header size implied by the second byte. */
function headerLengthOf(b1: number): number {
  const len7 = b1 & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((b1 & 0x80) ? 4 : 0);
}

/** Decodes a complete header from the start of `bytes`, or returns undefined if more bytes are needed. */
export function decodeHeader(bytes: Uint8Array): FrameHeader | undefined {
  if (bytes.length < 2) return undefined;
  const b0 = bytes[0], b1 = bytes[1];
  const headerLength = headerLengthOf(b1);
  if (bytes.length < headerLength) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerLength);
  const len7 = b1 & 0x7f;
  let length: bigint;
  let lengthForm: LengthForm;
  let p = 2;
  if (len7 === 126) {
    length = BigInt(view.getUint16(2));
    lengthForm = 16;
    p = 4;
  } else if (len7 === 127) {
    length = view.getBigUint64(2);
    lengthForm = 64;
    p = 10;
  } else {
    length = BigInt(len7);
    lengthForm = 7;
  }
  const masked = (b1 & 0x80) !== 0;
  return {
    fin: (b0 & 0x80) !== 0,
    rsv: (b0 >> 4) & 7,
    opcode: b0 & 0xf,
    masked,
    maskKey: masked ? bytes.slice(p, p + 4) : undefined,
    length,
    lengthForm,
    headerLength,
  };
}

export type ParseEvent =
  /** A complete frame; `payload` is unmasked. */
  | { type: "frame"; header: FrameHeader; payload: Uint8Array }
  /** A header whose declared length exceeds the parser's limit; the parser stops. */
  | { type: "oversize"; header: FrameHeader };

/**
 * Incremental frame parser. Feed bytes with push(), then call next() until it
 * returns undefined. After an "oversize" event it accepts no more bytes.
 */
export class FrameParser {
  readonly maxPayload: number;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #header: FrameHeader | undefined;
  #payload: Uint8Array | undefined;
  #filled = 0;
  #stopped = false;

  constructor(options: { maxPayload: number }) {
    this.maxPayload = options.maxPayload;
  }

  /** Bytes received but not yet part of a returned frame. */
  get buffered(): number {
    return this.#buffered + this.#filled + (this.#header?.headerLength ?? 0);
  }

  /**
   * The unmasked payload bytes received so far of the frame in progress, so a
   * receiver can act before the frame completes (fail-fast UTF-8). Call after
   * next() returned undefined.
   */
  get partialPayload(): Uint8Array | undefined {
    return this.#payload?.subarray(0, this.#filled);
  }

  /** The header of the frame being received, if one has started. */
  get pendingHeader(): FrameHeader | undefined {
    return this.#header;
  }

  push(bytes: Uint8Array): void {
    if (this.#stopped || bytes.length === 0) return;
    this.#chunks.push(bytes);
    this.#buffered += bytes.length;
  }

  next(): ParseEvent | undefined {
    if (this.#stopped) return undefined;
    if (!this.#header) {
      if (this.#buffered < 2) return undefined;
      const first = this.#peek(2);
      const hl = headerLengthOf(first[1]);
      if (this.#buffered < hl) return undefined;
      const header = decodeHeader(this.#take(hl))!;
      if (header.length > BigInt(this.maxPayload)) {
        this.#stopped = true;
        this.#chunks = [];
        this.#buffered = 0;
        return { type: "oversize", header };
      }
      this.#header = header;
      this.#payload = new Uint8Array(Number(header.length));
      this.#filled = 0;
    }
    const payload = this.#payload!;
    const key = this.#header.maskKey;
    while (this.#filled < payload.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0];
      const n = Math.min(chunk.length, payload.length - this.#filled);
      payload.set(n === chunk.length ? chunk : chunk.subarray(0, n), this.#filled);
      if (key) maskInPlace(payload.subarray(this.#filled, this.#filled + n), key, this.#filled);
      this.#filled += n;
      this.#buffered -= n;
      if (n === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(n);
    }
    if (this.#filled < payload.length) return undefined;
    const header = this.#header;
    this.#header = undefined;
    this.#payload = undefined;
    this.#filled = 0;
    return { type: "frame", header, payload };
  }

  #peek(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let got = 0;
    for (const c of this.#chunks) {
      const k = Math.min(c.length, n - got);
      out.set(c.subarray(0, k), got);
      got += k;
      if (got === n) break;
    }
    return out;
  }

  #take(n: number): Uint8Array {
    const out = this.#peek(n);
    let left = n;
    while (left > 0) {
      const c = this.#chunks[0];
      if (c.length <= left) {
        left -= c.length;
        this.#chunks.shift();
      } else {
        this.#chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    this.#buffered -= n;
    return out;
  }
}

/** Close codes a close frame may carry (§7.4.1, §7.4.2 and the IANA registry). */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

/** Builds a close frame payload: optional 2-byte code, then reason bytes. */
export function closePayload(code?: number, reason?: Uint8Array): Uint8Array {
  const r = reason ?? new Uint8Array(0);
  if (code === undefined) return r.slice();
  const out = new Uint8Array(2 + r.length);
  new DataView(out.buffer).setUint16(0, code);
  out.set(r, 2);
  return out;
}

/** Joins byte arrays into one. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
