/**
 * Incremental UTF-8 validator (RFC 3629), fail-fast: it reports the byte offset
 * at which the input stopped being a prefix of any valid UTF-8 string, so a
 * receiver can fail a text message as soon as the offending byte arrives
 * (RFC 6455 §8.1), whatever the fragmentation.
 */
export class Utf8Validator {
  /** Continuation bytes still needed by the current sequence. */
  #need = 0;
  /** Bounds of the next continuation byte; they exclude overlongs, surrogates and > U+10FFFF. */
  #lower = 0x80;
  #upper = 0xbf;
  #consumed = 0;
  #failedAt = -1;

  /** False once an invalid byte was seen. */
  get valid(): boolean {
    return this.#failedAt < 0;
  }

  /** True when the bytes so far end on a code point boundary (and are valid). */
  get complete(): boolean {
    return this.valid && this.#need === 0;
  }

  /** Offset (from the first byte ever pushed) of the first invalid byte, or -1. */
  get failedAt(): number {
    return this.#failedAt;
  }

  reset(): void {
    this.#need = 0;
    this.#lower = 0x80;
    this.#upper = 0xbf;
    this.#consumed = 0;
    this.#failedAt = -1;
  }

  /** Validates more bytes; returns `valid`. Bytes after a failure are ignored. */
  push(bytes: Uint8Array): boolean {
    if (this.#failedAt >= 0) return false;
    let need = this.#need, lower = this.#lower, upper = this.#upper;
    const n = bytes.length;
    for (let i = 0; i < n; i++) {
      const b = bytes[i];
      if (need === 0) {
        if (b < 0x80) {
          // ASCII runs are the common case in large messages: skip them 8 bytes at a time.
          while (
            i + 8 < n && ((bytes[i + 1] | bytes[i + 2] | bytes[i + 3] | bytes[i + 4] |
                bytes[i + 5] | bytes[i + 6] | bytes[i + 7] | bytes[i + 8]) & 0x80) === 0
          ) i += 8;
          continue;
        }
        if (b >= 0xc2 && b <= 0xdf) need = 1;
        else if (b === 0xe0) (need = 2), (lower = 0xa0);
        else if (b === 0xed) (need = 2), (upper = 0x9f);
        else if (b >= 0xe1 && b <= 0xef) need = 2;
        else if (b === 0xf0) (need = 3), (lower = 0x90);
        else if (b === 0xf4) (need = 3), (upper = 0x8f);
        else if (b >= 0xf1 && b <= 0xf3) need = 3;
        else return this.#fail(i);
      } else {
        if (b < lower || b > upper) return this.#fail(i);
        need--;
        lower = 0x80;
        upper = 0xbf;
      }
    }
    this.#need = need;
    this.#lower = lower;
    this.#upper = upper;
    this.#consumed += n;
    return true;
  }

  #fail(index: number): false {
    this.#failedAt = this.#consumed + index;
    return false;
  }
}

/** Whole-buffer check. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  const v = new Utf8Validator();
  return v.push(bytes) && v.complete;
}
