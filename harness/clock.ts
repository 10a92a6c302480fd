/**
 * Timers that measure the peer, not the suite. While the suite's event loop is
 * busy (masking 16 MiB, comparing an echo, another case's work) or its process
 * is not scheduled, nothing the peer sent can be read: that time is the suite's,
 * and a bound on the peer must not count it. A ticker measures how late the
 * event loop runs; `peerNow()` is wall time minus that lateness.
 */

/** The ticker's period; any lateness past it is time the suite could not read. */
const TICK_MS = 25;
/**
 * After a deadline passes, one more turn of this length before the timer fires,
 * so that bytes the peer sent in time, already in the socket, are read first.
 */
const GRACE_MS = 5;

let lagMs = 0;
let lastTick = 0;
let ticker: ReturnType<typeof setInterval> | undefined;
/** Pending peer timers; the ticker runs only while there are some. */
let pending = 0;

function tick(): void {
  const now = performance.now();
  lagMs += Math.max(0, now - lastTick - TICK_MS);
  lastTick = now;
}

/** Milliseconds of wall time, less the time the suite's event loop was held up. */
export function peerNow(): number {
  if (ticker !== undefined) tick();
  return performance.now() - lagMs;
}

function hold(): void {
  if (pending++ > 0) return;
  lastTick = performance.now();
  ticker = setInterval(tick, TICK_MS);
}

function release(): void {
  if (--pending > 0) return;
  tick();
  clearInterval(ticker);
  ticker = undefined;
}

/** A pending peer timer; cancel() is idempotent. */
export interface PeerTimer {
  cancel(): void;
}

/**
 * Calls `fn` once `ms` of peer time has passed: the suite's own delays do not
 * count, and bytes already waiting in the sockets are read before it fires.
 */
export function peerTimeout(ms: number, fn: () => void): PeerTimer {
  hold();
  const deadline = peerNow() + ms;
  let graced = false;
  let done = false;
  let id: ReturnType<typeof setTimeout>;
  const check = () => {
    const remaining = deadline - peerNow();
    if (remaining > 0) {
      id = setTimeout(check, remaining);
    } else if (!graced && ms > 0) {
      graced = true;
      id = setTimeout(check, GRACE_MS);
    } else {
      done = true;
      release();
      fn();
    }
  };
  id = setTimeout(check, ms);
  return {
    cancel() {
      if (done) return;
      done = true;
      clearTimeout(id);
      release();
    },
  };
}
