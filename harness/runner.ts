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
}

export interface RunOptions extends SessionOptions {
  /** Cases in flight at once. */
  jobs: number;
  /** Bytes of payload the cases in flight may hold between them (each holds ~4x what it sends). */
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

/** Runs the cases; results come back in the order of `cases`. */
export function runCases(cases: readonly CaseSpec[], options: RunOptions): Promise<CaseOutcome[]> {
  const budget = options.memoryBudget ?? 32 * 1024 * 1024;
  const weight = (spec: CaseSpec) => Math.min(budget, 4 * caseBytes(spec));
  const pending = cases.map((_, i) => i).sort((a, b) => estimate(cases[b]) - estimate(cases[a]));
  const results: CaseOutcome[] = new Array(cases.length);
  let running = 0, inFlight = 0, finished = 0;

  return new Promise((resolve) => {
    if (cases.length === 0) return resolve(results);
    const pump = () => {
      for (let i = 0; i < pending.length && running < options.jobs;) {
        const index = pending[i];
        const w = weight(cases[index]);
        if (running > 0 && inFlight + w > budget) {
          i++;
          continue;
        }
        pending.splice(i, 1);
        running++;
        inFlight += w;
        runCase(cases[index], options).then(async (run) => {
          const { spec, verdict, duration } = run;
          results[index] = { spec, verdict, duration, remoteCloseCode: run.close.remoteCloseCode };
          await options.onCaseDone?.(run);
          running--;
          inFlight -= w;
          finished++;
          if (finished === cases.length) resolve(results);
          else pump();
        });
      }
    };
    pump();
  });
}
