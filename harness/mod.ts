/**
 * wsconform as a library. For a project's tests, conformanceTests() (a
 * Deno.test per group, a step per case); for a program, runSuite() (the
 * verdicts, printing nothing). Below them: the case catalog and schema, the
 * engine that observes one case (runCase) or many (runCases), the judge
 * (judgeCase, isFailing), and the pure wire codecs.
 */
export * from "./case.ts";
export * from "./frame.ts";
export * from "./handshake.ts";
export * from "./utf8.ts";
export { conformanceTests } from "./testing.ts";
export type { ConformanceTestOptions } from "./testing.ts";
export { runAndJudgeCase, runAndJudgeCases, runSuite, selectCases, SuiteError } from "./suite.ts";
export type { NotRun, SuiteOptions, SuiteResult, SuiteStart } from "./suite.ts";
export type { JudgedRun } from "./report.ts";
export { isFailing, judge, judgeCase, outcomeOf } from "./verdict.ts";
export type {
  Behavior,
  CaseOutcome,
  CloseBehavior,
  CloseObservation,
  Judged,
  Observation,
  Verdict,
} from "./verdict.ts";
export { runCase } from "./session.ts";
export type { CaseRun, SessionOptions } from "./session.ts";
export { runCases } from "./runner.ts";
export type { RunOptions } from "./runner.ts";
export { ALL_CASES, CLIENT_CASES, GROUPS, SERVER_CASES } from "../fixtures/mod.ts";
