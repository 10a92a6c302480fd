/**
 * wsconform as a library: the pure wire codecs, the case schema, and the
 * runner that judges a server against the fixtures.
 */
export * from "./case.ts";
export * from "./frame.ts";
export * from "./handshake.ts";
export * from "./utf8.ts";
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
export { ALL_CASES, GROUPS } from "../fixtures/mod.ts";
