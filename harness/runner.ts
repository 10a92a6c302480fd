/**
 * Runs cases in parallel, each on its own connection, within a job limit and a
 * memory budget, starting the longest cases first so the run ends sooner.
 */
import type { CaseSpec } from "./case.ts";
import { payloadLength } from "./payload.ts";
import { type CaseRun, runCase, type SessionOptions } from "./session.ts";

/** What is kept of a finished case once its report is written: the heavy data is dropped. */
export interface CaseOutcome {
  spec: CaseSpec;
  verdict: CaseRun["verdict"];
  duration: number;
  remoteCloseCode?: number;
  findings: CaseRun["findings"];
}

export interface RunOptions extends SessionOptions {
  /** Cases in flight at once. */
  jobs: number;
  /** Payload bytes the cases in flight may hold between them (a case holds ~4x what it sends). */
  memoryBudget?: number;
  /**
   * Called as each case finishes, with everything it observed; its job slot is
   * held until the returned promise settles, so reports are written as the run
   * goes and memory stays bounded.
   */
  onCaseDone?: (run: CaseRun) => Promise<void> | void;
}

/** Payload bytes a case sends (a message echoed back costs about four times this). */
export function caseBytes(spec: CaseSpec): number {
  let total = 0;
  for (const step of spec.steps) {
    if ("frame" in step) total += payloadLength(step.frame.payload);
    else if ("message" in step) total += payloadLength(step.message.payload);
    else if ("frameStart" in step) total += step.frameStart.length;
    else if ("raw" in step) total += payloadLength(step.raw);
    else if ("roundTrips" in step) total += payloadLength(step.roundTrips.frame.payload);
  }
  return total;
}

/** A rough duration estimate used only to order the work. */
function estimate(spec: CaseSpec): number {
  let waits = 0;
  for (const step of spec.steps) if ("wait" in step) waits += step.wait;
  let roundTrips = 0;
  for (const step of spec.steps) if ("roundTrips" in step) roundTrips += step.roundTrips.count;
  return waits + caseBytes(spec) / 50e6 + roundTrips / 5000;
}

/**
 * Admits cases to send their payloads while the bytes in flight stay within a
 * budget. A case larger than the budget runs when nothing else holds any.
 */
class MemoryGate {
  #inFlight = 0;
  #waiting: { bytes: number; admit: () => void }[] = [];

  constructor(readonly budget: number) {}

  acquire(bytes: number): Promise<() => void> {
    return new Promise((resolve) => {
      this.#waiting.push({ bytes, admit: () => resolve(() => this.#release(bytes)) });
      this.#admit();
    });
  }

  #release(bytes: number): void {
    this.#inFlight -= bytes;
    this.#admit();
  }

  #admit(): void {
    while (this.#waiting.length > 0) {
      const next = this.#waiting[0];
      if (this.#inFlight > 0 && this.#inFlight + next.bytes > this.budget) return;
      this.#waiting.shift();
      this.#inFlight += next.bytes;
      next.admit();
    }
  }
}

/** A case whose timers all allow 10 s or more, with no timed waits, is not sensitive to load. */
function isPatient(spec: CaseSpec): boolean {
  const timers = spec.steps.flatMap((step) =>
    "wait" in step
      ? [0]
      : "waitForEvents" in step
      ? [step.waitForEvents.within]
      : "closeAfter" in step
      ? [step.closeAfter]
      : "failAfter" in step
      ? [step.failAfter]
      : []
  );
  return timers.length > 0 && Math.min(...timers) >= 10;
}

/**
 * A case still waiting for the handshake answer after this long, while no
 * other case got an answer either, stops holding a job slot.
 */
const STALL_MS = 1000;
/** Cases waiting for a handshake answer without a job slot, per job (bounds the open sockets). */
const STALLED_PER_JOB = 4;

/** Cases holding less than this skip the memory gate: the job limit bounds them well enough. */
const GATED_BYTES = 1024 * 1024;

/** Runs the cases; results come back in the order of `cases`. */
export function runCases(cases: readonly CaseSpec[], options: RunOptions): Promise<CaseOutcome[]> {
  const gate = new MemoryGate(options.memoryBudget ?? 32 * 1024 * 1024);
  const byEstimate = (a: number, b: number) => estimate(cases[b]) - estimate(cases[a]);
  const indices = cases.map((_, i) => i);
  // Cases with sub-second timers run first, on their own: the CPU the big
  // payloads cost (here and in a server on the same machine) must not decide
  // whether a peer answered within half a second.
  let pending = indices.filter((i) => !isPatient(cases[i])).sort(byEstimate);
  let patient = indices.filter((i) => isPatient(cases[i])).sort(byEstimate);
  let impatientLeft = pending.length;
  const results: CaseOutcome[] = new Array(cases.length);
  /** Cases holding a job slot; `stalled` ones wait for a handshake answer without one. */
  let running = 0, stalled = 0, finished = 0;
  /** When a case last got through its handshake. */
  let lastOpened = -Infinity;
  const maxStalled = STALLED_PER_JOB * options.jobs;

  return new Promise((resolve) => {
    if (cases.length === 0) return resolve(results);
    const pump = () => {
      if (pending.length === 0 && impatientLeft === 0) [pending, patient] = [patient, []];
      while (pending.length > 0 && running < options.jobs && stalled < maxStalled) {
        const index = pending.shift()!;
        const spec = cases[index];
        const bytes = 4 * caseBytes(spec);
        let holdsSlot = true;
        const takeSlot = () => {
          if (!holdsSlot) [holdsSlot, running] = [true, running + 1];
        };
        const giveSlot = () => {
          if (holdsSlot) [holdsSlot, running] = [false, running - 1];
        };
        running++;
        // A target answering no handshake at all is not busy with this case: after
        // a while the case gives its slot to the next one, so such a target costs a
        // few rounds of the handshake timeout, not one per job. A target that answers
        // other cases is only slow, and more connections would slow it further.
        let stalledNow = false;
        let stallTimer: ReturnType<typeof setTimeout>;
        const checkStall = () => {
          const quiet = performance.now() - lastOpened;
          if (quiet < STALL_MS) {
            stallTimer = setTimeout(checkStall, STALL_MS - quiet);
            return;
          }
          stalledNow = true;
          stalled++;
          giveSlot();
          pump();
        };
        stallTimer = setTimeout(checkStall, STALL_MS);
        const unstall = () => {
          clearTimeout(stallTimer);
          if (stalledNow) [stalledNow, stalled] = [false, stalled - 1];
        };
        const admit = async () => {
          lastOpened = performance.now();
          unstall();
          takeSlot();
          if (bytes < GATED_BYTES) return () => {};
          // Memory is claimed once the connection is open: a target that never
          // answers the handshake then costs the job limit, not the byte budget.
          // A case waiting for memory gives its job slot to a case that needs none.
          giveSlot();
          pump();
          const release = await gate.acquire(bytes);
          takeSlot();
          return release;
        };
        runCase(spec, { ...options, admit }).then(async (run) => {
          unstall();
          const { verdict, duration } = run;
          results[index] = {
            spec,
            verdict,
            duration,
            remoteCloseCode: run.close.remoteCloseCode,
            findings: run.findings,
          };
          await options.onCaseDone?.(run);
          giveSlot();
          finished++;
          if (!isPatient(spec)) impatientLeft--;
          if (finished === cases.length) resolve(results);
          else pump();
        });
      }
    };
    pump();
  });
}
