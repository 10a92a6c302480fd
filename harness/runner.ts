/**
 * Runs cases in parallel, each on its own connection, within a job limit,
 * starting the longest cases first so the run ends sooner. Heavy cases run
 * alone, and the job limit goes down when the target falls behind: a case's
 * verdict must not depend on what the other cases make the target do.
 */
import type { CaseSpec } from "./case.ts";
import { peerNow } from "./clock.ts";
import { releaseMemory } from "./memory.ts";
import { type CaseRun, runCase, type SessionOptions } from "./session.ts";
import { type MessageType, stepTraits } from "./steps.ts";

export interface RunOptions<T> extends SessionOptions {
  /** Cases in flight at once, at most: fewer once the target falls behind. */
  jobs: number;
  /**
   * Payload bytes the cases in flight may hold between them (heldBytes()),
   * taken before a case connects. Default 32 MiB.
   */
  memoryBudget?: number;
  /**
   * Called as each case finishes, with everything it observed; what it returns
   * is the case's result (runCases keeps only that: the observation, wire log
   * and payloads, is dropped, so memory stays bounded). The case's job slot is
   * held until the returned promise settles, so reports are written as the run goes.
   */
  onCaseDone: (run: CaseRun) => T | Promise<T>;
  /**
   * Aborting it stops the run: no case starts any more, the cases in flight end
   * at once and are dropped (not passed to onCaseDone), and runCases resolves
   * with the results of the cases that finished.
   */
  signal?: AbortSignal;
  /**
   * Runs one case (default runCase: the suite dials the server under test).
   * Client mode gives its own, which has the case's client connect.
   */
  runOne?: (spec: CaseSpec, options: SessionOptions) => Promise<CaseRun>;
  /**
   * Default true: one server serves every case, so cases waiting for a server
   * that answers no handshake give up their job slots (STALL_MS). False in
   * client mode: each case starts a client of its own, and starting more
   * would only load the machine further.
   */
  stallSilentPeer?: boolean;
}

/** Payload bytes a case sends (a message echoed back costs about four times this). */
export function caseBytes(spec: CaseSpec): number {
  return spec.steps.reduce((total, step) => total + stepTraits(step).payloadBytes, 0);
}

/**
 * A rough duration estimate used only to order the work: the time of the
 * other steps is in caseBytes, or in a timer that rarely runs out.
 */
export function estimate(spec: CaseSpec): number {
  let pauses = 0, roundTrips = 0;
  for (const step of spec.steps) {
    const traits = stepTraits(step);
    pauses += traits.pause ?? 0;
    roundTrips += traits.roundTrips ?? 0;
  }
  return pauses + caseBytes(spec) / 50e6 + roundTrips / 5000;
}

/**
 * Bytes held by the heavy cases in flight, within a budget. A case larger than
 * the budget runs when nothing else holds any.
 */
class MemoryGate {
  #inFlight = 0;
  #waiting: { bytes: number; admit: () => void }[] = [];

  constructor(readonly budget: number) {}

  /** Takes `bytes` if they fit now; returns their release, or undefined. */
  tryAcquire(bytes: number): (() => void) | undefined {
    if (this.#waiting.length > 0 || !this.#fits(bytes)) return undefined;
    this.#inFlight += bytes;
    return this.#releaser(bytes);
  }

  /** Takes `bytes` once they fit, after the cases already waiting. */
  acquire(bytes: number): Promise<() => void> {
    return new Promise((resolve) => {
      this.#waiting.push({ bytes, admit: () => resolve(this.#releaser(bytes)) });
      this.#admit();
    });
  }

  #fits(bytes: number): boolean {
    return this.#inFlight === 0 || this.#inFlight + bytes <= this.budget;
  }

  #releaser(bytes: number): () => void {
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#inFlight -= bytes;
      this.#admit();
    };
  }

  #admit(): void {
    while (this.#waiting.length > 0 && this.#fits(this.#waiting[0].bytes)) {
      const next = this.#waiting.shift()!;
      this.#inFlight += next.bytes;
      next.admit();
    }
  }
}

/** Cases holding less than this skip the memory gate: the job limit bounds them well enough. */
const GATED_BYTES = 1024 * 1024;

/** A case whose timers all allow 10 s or more, with no timed waits, is not sensitive to load. */
export function isPatient(spec: CaseSpec): boolean {
  const timers = spec.steps.flatMap((step) => {
    const { pause, waitLimit, timer } = stepTraits(step);
    // A timed wait counts as a timer allowing nothing: what follows it hangs on timing.
    return pause !== undefined
      ? [0]
      : [waitLimit, timer].filter((seconds) => seconds !== undefined);
  });
  return timers.length > 0 && Math.min(...timers) >= 10;
}

/**
 * A case sending this much makes the target work long enough (a slow
 * single-threaded server: seconds) to delay its answers on every other
 * connection past the cases' 1 s close timers: such a case runs alone.
 */
const HEAVY_BYTES = 1024 * 1024;

/** The message types a case sends data of. */
export function sentTypes(spec: CaseSpec): Set<MessageType> {
  return new Set(spec.steps.flatMap((step) => stepTraits(step).sentType ?? []));
}

/**
 * Bytes a case holds at most: what it sends, and as much again when it is
 * echoed (the echo, and the pieces in flight both ways). A target known not to
 * echo (the CLI's probe) leaves the case only its own payload to hold while it
 * waits out the echo silence and the close timers: against a ping flood that
 * never echoes, the cases of group 9 ran one or two at a time for 27 s.
 */
function heldBytes(spec: CaseSpec, echoes: SessionOptions["echoes"]): number {
  const echoed = [...sentTypes(spec)].some((type) => echoes?.[type] !== false);
  return (echoed ? 4 : 2) * caseBytes(spec) + (spec.deflate && echoed ? DEFLATE_CASE_BYTES : 0);
}

/**
 * What a permessage-deflate case holds beside its payloads: zlib's streams, a
 * full wire log, the expected messages. Measured: groups 12 and 13 took 3 MB
 * more per case in flight (216 MB at 16 jobs, 269 MB at 32, as fast at both).
 * A target known not to echo exchanges no such traffic: its cases wait out
 * their close timers at full concurrency (a ping flood: 16 s for groups 12
 * and 13 at half of it).
 */
const DEFLATE_CASE_BYTES = 2 * 1024 * 1024;

/**
 * A heavy case runs alone, unless the target is known not to echo what it
 * sends (the CLI's probe): then its verdict does not hang on any timing (the
 * echo never comes), and it would wait out the echo silence on its own.
 */
function isHeavy(spec: CaseSpec, echoes: SessionOptions["echoes"]): boolean {
  return caseBytes(spec) >= HEAVY_BYTES &&
    [...sentTypes(spec)].some((type) => echoes?.[type] !== false);
}

/**
 * A case still waiting for the handshake answer after this long, while no
 * other case is open or got an answer either, stops holding a job slot.
 */
const STALL_MS = 1000;
/** Cases waiting for a handshake answer without a job slot, per job (bounds the open sockets). */
const STALLED_PER_JOB = 4;
/** A handshake answered later than this, with other cases in flight, halves the concurrency. */
const SLOW_HANDSHAKE_MS = 1000;
/**
 * Times a case whose handshake timed out while the target was busy with other
 * cases is run again, at a lower concurrency, before its timeout stands.
 */
const HANDSHAKE_RETRIES = 5;

/**
 * Runs the cases and returns what onCaseDone made of each, in the order of
 * `cases` (after an abort, only the cases that finished). The runner judges
 * nothing: the session observes, the caller judges (verdict.ts judgeCase).
 *
 * What a case gets from the target must not depend on the other cases: a case
 * connects only once it may run (job slot and memory taken first, so no
 * connection sits idle in a queue), heavy cases run alone, and when the target
 * falls behind (slow handshake answers, handshakes timing out while it serves
 * other cases) the concurrency goes down, never up, and a case whose handshake
 * timed out behind the others runs again.
 */
export function runCases<T>(cases: readonly CaseSpec[], options: RunOptions<T>): Promise<T[]> {
  const gate = new MemoryGate(options.memoryBudget ?? 32 * 1024 * 1024);
  const heavy = cases.map((spec) => isHeavy(spec, options.echoes));
  // Heavy cases first, so the run switches once between running them alone and the rest.
  const byWeight = (a: number, b: number) =>
    Number(heavy[b]) - Number(heavy[a]) || estimate(cases[b]) - estimate(cases[a]);
  const indices = cases.map((_, i) => i);
  // Cases with sub-second timers never run beside the patient ones: the CPU the
  // big payloads cost (here and in a server on the same machine) must not
  // decide whether a peer answered within half a second. The patient ones go
  // first: the others spend most of their time in timed waits, while the big
  // reports of the patient ones are rendered (onCaseDone's work, off the
  // critical path).
  let pending = indices.filter((i) => isPatient(cases[i])).sort(byWeight);
  let impatient = indices.filter((i) => !isPatient(cases[i])).sort(byWeight);
  let patientLeft = pending.length;
  const results: T[] = new Array(cases.length);
  const finishedAt: boolean[] = new Array(cases.length).fill(false);
  const retries = new Array<number>(cases.length).fill(0);
  /** Cases holding a job slot; `stalled` ones wait for a handshake answer without one. */
  let running = 0, stalled = 0, finished = 0;
  /** Cases in flight (stalled ones aside) by weight: the two never run together. */
  let heavyInFlight = 0, lightInFlight = 0;
  /** Cases past their handshake and not finished; handshakes answered so far. */
  let openNow = 0, opened = 0;
  /** When a case last got through its handshake. */
  let lastOpened = -Infinity;
  /** A case waited STALL_MS for an answer and none came since: the next cases stall at once. */
  let targetSilent = false;
  let limit = options.jobs;
  const maxStalled = STALLED_PER_JOB * options.jobs;
  const slowDown = () => {
    limit = Math.max(1, Math.floor(limit / 2));
  };

  // ---- interruption (options.signal): cases started and ended, and the finished ones
  let started = 0, ended = 0;
  const aborted = () => options.signal?.aborted ?? false;

  return new Promise((resolve) => {
    if (cases.length === 0) return resolve(results);
    const settleAborted = () => {
      if (ended === started) resolve(results.filter((_, index) => finishedAt[index]));
    };
    options.signal?.addEventListener("abort", settleAborted, { once: true });
    if (aborted()) return settleAborted();
    const pump = () => {
      if (aborted()) return;
      if (pending.length === 0 && patientLeft === 0) [pending, impatient] = [impatient, []];
      while (pending.length > 0 && running < limit && stalled < maxStalled) {
        const index = pending[0];
        // A heavy case runs alone: beside no other case, heavy or light.
        if (heavyInFlight > 0 || (heavy[index] && lightInFlight > 0)) return;
        const bytes = heldBytes(cases[index], options.echoes);
        const memory = bytes < GATED_BYTES ? () => {} : gate.tryAcquire(bytes);
        if (!memory) return;
        pending.shift();
        if (heavy[index]) releaseMemory();
        start(index, bytes, memory);
      }
    };

    const start = (index: number, bytes: number, memory: () => void) => {
      const spec = cases[index];
      const heavyCase = heavy[index];
      started++;
      const startedAt = peerNow();
      /** The target was serving another case while this one waited for its handshake. */
      let targetBusy = openNow > 0;
      const openedBefore = opened;
      let release: (() => void) | undefined = memory;
      let holdsSlot = false, inFlight = false;
      const enter = () => {
        if (!holdsSlot) [holdsSlot, running] = [true, running + 1];
        if (inFlight) return;
        inFlight = true;
        if (heavyCase) heavyInFlight++;
        else lightInFlight++;
      };
      const leave = () => {
        if (holdsSlot) [holdsSlot, running] = [false, running - 1];
        if (!inFlight) return;
        inFlight = false;
        if (heavyCase) heavyInFlight--;
        else lightInFlight--;
      };
      enter();
      // A target answering no handshake at all is not busy with this case: after
      // a while the case gives its slot (and memory) to the next one, so such a
      // target costs a few rounds of the handshake timeout, not one per job. A
      // target that answers or serves other cases is only slow, and more
      // connections would slow it further.
      let stalledNow = false;
      let stallTimer: ReturnType<typeof setTimeout> | undefined;
      const stall = () => {
        stalledNow = true;
        stalled++;
        release?.();
        release = undefined;
        leave();
      };
      const checkStall = () => {
        const quiet = performance.now() - lastOpened;
        if (openNow > 0 || quiet < STALL_MS) {
          stallTimer = setTimeout(checkStall, Math.max(STALL_MS - quiet, 100));
          return;
        }
        targetSilent = true;
        stall();
        pump();
      };
      // The pump goes on with the next case: this one holds nothing while it waits.
      if (options.stallSilentPeer !== false) {
        if (targetSilent) stall();
        else stallTimer = setTimeout(checkStall, STALL_MS);
      }
      const unstall = () => {
        clearTimeout(stallTimer);
        if (stalledNow) [stalledNow, stalled] = [false, stalled - 1];
      };
      const admit = async () => {
        const wasStalled = stalledNow;
        unstall();
        targetSilent = false;
        lastOpened = performance.now();
        opened++;
        openNow++;
        if (peerNow() - startedAt > SLOW_HANDSHAKE_MS && running > 1) slowDown();
        enter();
        // Only a case that stalled gave its memory back: it takes it again (the
        // target had answered nothing for a while, a case seldom waits here).
        if (wasStalled && bytes >= GATED_BYTES) release = await gate.acquire(bytes);
        return () => {
          release?.();
          release = undefined;
        };
      };
      (options.runOne ?? runCase)(spec, { ...options, admit }).then(async (run) => {
        unstall();
        release?.();
        if (run.close.opened) openNow--;
        targetBusy ||= openNow > 0 || opened > openedBefore;
        const behindOthers = !run.close.opened && run.close.openHandshakeTimeout && targetBusy;
        if (aborted()) {
          leave();
          ended++;
          return settleAborted();
        }
        if (behindOthers && retries[index] < HANDSHAKE_RETRIES) {
          // The target was busy with the other cases: this timeout measured the queue.
          retries[index]++;
          slowDown();
          leave();
          ended++;
          pending.unshift(index);
          pump();
          return;
        }
        results[index] = await options.onCaseDone(run);
        finishedAt[index] = true;
        leave();
        finished++;
        ended++;
        if (isPatient(spec)) patientLeft--;
        if (aborted()) settleAborted();
        else if (finished === cases.length) resolve(results);
        else pump();
      });
    };
    pump();
  });
}
