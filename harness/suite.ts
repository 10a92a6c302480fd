/**
 * wsconform as a library: runs cases and judges them. The session observes,
 * verdict.ts judges; this layer puts the two together (and, in runSuite(),
 * the case catalog and the report writers), and prints nothing.
 */
import type { CaseSpec } from "./case.ts";
import type { JudgedRun } from "./report.ts";
import { runCases, type RunOptions } from "./runner.ts";
import { runCase, type SessionOptions } from "./session.ts";
import { type CaseOutcome, judgeCase, outcomeOf } from "./verdict.ts";

/** Runs one case and judges what it observed. */
export async function runAndJudgeCase(spec: CaseSpec, options: SessionOptions): Promise<JudgedRun> {
  const run = await runCase(spec, options);
  return { ...run, ...judgeCase(spec, run) };
}

export interface JudgedRunOptions extends Omit<RunOptions<CaseOutcome>, "onCaseDone"> {
  /** Called with each judged case, observation included, before it is dropped. */
  onCaseDone?: (run: JudgedRun) => void | Promise<void>;
}

/** Runs the cases (runner.ts runCases) and judges each; returns their outcomes. */
export function runAndJudgeCases(
  cases: readonly CaseSpec[],
  options: JudgedRunOptions,
): Promise<CaseOutcome[]> {
  return runCases(cases, {
    ...options,
    onCaseDone: async (run) => {
      const judged = judgeCase(run.spec, run);
      await options.onCaseDone?.({ ...run, ...judged });
      return outcomeOf(run, judged);
    },
  });
}
