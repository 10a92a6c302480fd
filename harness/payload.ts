import type { EventSpec, MessageSeries, Payload } from "./case.ts";
import { testDataSlice } from "./testdata.ts";

const encoder = new TextEncoder();

function patternBytes(pattern: string | { hex: string }): Uint8Array {
  return typeof pattern === "string" ? encoder.encode(pattern) : Uint8Array.fromHex(pattern.hex);
}

/**
 * Turns payload data into bytes. A case resolves each payload through one
 * PayloadCache, so the bytes it sends and the bytes it expects back are the
 * same buffer, even for a 16 MiB payload.
 */
export class PayloadCache {
  /** The longest repetition built so far of each pattern: shorter ones are views of it. */
  #cache = new Map<string, Uint8Array>();

  resolve(payload: Payload | undefined): Uint8Array {
    if (payload === undefined) return new Uint8Array(0);
    if (typeof payload === "string") return encoder.encode(payload);
    if ("hex" in payload) return Uint8Array.fromHex(payload.hex);
    if ("testData" in payload) {
      return testDataSlice(payload.testData, payload.offset, payload.length);
    }
    const key = JSON.stringify(payload.repeat);
    let bytes = this.#cache.get(key);
    if (!bytes || bytes.length < payload.length) {
      bytes = repeatToLength(patternBytes(payload.repeat), payload.length);
      this.#cache.set(key, bytes);
    }
    return bytes.length === payload.length ? bytes : bytes.subarray(0, payload.length);
  }

  /**
   * Builds the longest repetition of each pattern among `payloads` first, so
   * that a case sending 64 KiB, then 128 KiB, up to 64 MiB holds 64 MiB, not twice that.
   */
  warm(payloads: (Payload | undefined)[]): void {
    const repeats = payloads.filter((p) => typeof p === "object" && "repeat" in p);
    repeats.sort((a, b) => payloadLength(b) - payloadLength(a));
    for (const p of repeats) this.resolve(p);
  }
}

function repeatToLength(pattern: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  if (length === 0) return out;
  if (pattern.length === 0) throw new RangeError("cannot repeat an empty pattern");
  out.set(pattern.subarray(0, Math.min(pattern.length, length)));
  // Doubling copies: log2(length) calls instead of length / pattern.length.
  for (let filled = pattern.length; filled < length; filled *= 2) {
    out.copyWithin(filled, 0, Math.min(filled, length - filled));
  }
  return out;
}

/** Message `index` of a series: its slice of the data set. */
export function seriesPayload(series: MessageSeries, index: number): Payload {
  return { testData: series.data, offset: index * series.size, length: series.size };
}

/** The byte length of a payload without building it. */
export function payloadLength(payload: Payload | undefined): number {
  if (payload === undefined) return 0;
  if (typeof payload === "string") return encoder.encode(payload).length;
  if ("hex" in payload) return payload.hex.length / 2;
  return payload.length;
}

/** An event as the suite observed it (or as an expectation resolves to). */
export type ObservedEvent =
  | { type: "message"; binary: boolean; payload: Uint8Array; length?: number }
  | { type: "pong"; payload: Uint8Array; length?: number }
  | { type: "timeout"; tag: string };

/**
 * Expands event specs (including `times`) into the events they stand for.
 * With `previewBytes`, a longer payload is built only that far, its `length`
 * giving the whole: enough to describe an expectation never compared.
 */
export function resolveEvents(
  specs: EventSpec[],
  cache: PayloadCache,
  previewBytes = Infinity,
): ObservedEvent[] {
  const out: ObservedEvent[] = [];
  for (const spec of specs) {
    if ("timeout" in spec) {
      out.push({ type: "timeout", tag: spec.timeout });
      continue;
    }
    if ("messages" in spec) {
      const { binary, count } = spec.messages;
      for (let i = 0; i < count; i++) {
        const payload = resolvePreview(seriesPayload(spec.messages, i), cache, previewBytes);
        out.push({ type: "message", binary, ...payload });
      }
      continue;
    }
    const payload = resolvePreview(
      "message" in spec ? spec.message : spec.pong,
      cache,
      previewBytes,
    );
    const event: ObservedEvent = "message" in spec
      ? { type: "message", binary: spec.binary ?? false, ...payload }
      : { type: "pong", ...payload };
    for (let i = 0; i < (spec.times ?? 1); i++) out.push(event);
  }
  return out;
}

/** A payload's bytes, only its first `previewBytes` when longer, `length` then giving the whole. */
function resolvePreview(
  payload: Payload,
  cache: PayloadCache,
  previewBytes: number,
): { payload: Uint8Array; length?: number } {
  // Only repetitions and data-set slices grow large; their first bytes are a shorter one.
  const cut = typeof payload === "object" && "length" in payload && payload.length > previewBytes;
  if (!cut) return { payload: cache.resolve(payload) };
  return { payload: cache.resolve({ ...payload, length: previewBytes }), length: payload.length };
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  let i = 0;
  // Word-wise when both buffers allow it: echoes of 16 MiB are compared whole.
  if (a.length >= 64 && a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0) {
    const words = a.length >>> 2;
    const wa = new Uint32Array(a.buffer, a.byteOffset, words);
    const wb = new Uint32Array(b.buffer, b.byteOffset, words);
    for (; i < words; i++) if (wa[i] !== wb[i]) return false;
    i = words * 4;
  }
  for (; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function eventsEqual(a: ObservedEvent, b: ObservedEvent): boolean {
  if (a.type !== b.type) return false;
  if (a.type === "timeout") return a.tag === (b as typeof a).tag;
  if (a.type === "message" && a.binary !== (b as typeof a).binary) return false;
  return bytesEqual(a.payload, (b as typeof a).payload);
}

/** Whether `received` is a prefix of `expected` (equal when `whole`). */
export function sequenceMatches(
  received: ObservedEvent[],
  expected: ObservedEvent[],
  whole: boolean,
): boolean {
  if (received.length > expected.length) return false;
  if (whole && received.length !== expected.length) return false;
  return received.every((e, i) => eventsEqual(e, expected[i]));
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** A byte count as people read it: "16 MiB", "64 KiB", "64 MiB + 1 bytes", "125 bytes". */
export function formatBytes(n: number): string {
  for (const [unit, size] of [["MiB", MiB], ["KiB", KiB]] as const) {
    if (n < size) continue;
    const rest = n % size;
    return rest === 0 ? `${n / size} ${unit}` : `${Math.floor(n / size)} ${unit} + ${rest} bytes`;
  }
  return `${n} bytes`;
}
