/**
 * Baselines: the verdicts of a known run, so a CI job fails only when a case
 * gets worse, not because of deviations already known and accepted.
 *
 * File format (stable: ids sorted numerically, one case a line, final newline):
 *
 *     {"version": 1, "agent": "MyServer/1.0",
 *      "cases": {"1.1.1": {"behavior": "OK", "behaviorClose": "OK"}, ...}}
 *
 * Everything here is pure apart from the two small file helpers at the end.
 */
import { compareIds } from "./case.ts";
import {
  type Behavior,
  behaviorFails,
  BEHAVIORS,
  CLOSE_BEHAVIORS,
  type CloseBehavior,
  closeFails,
  isFailing,
} from "./verdict.ts";

/** The two verdicts of one case, as a baseline keeps them. */
export interface BaselineEntry {
  behavior: Behavior;
  behaviorClose: CloseBehavior;
}

export interface Baseline {
  version: 1;
  agent: string;
  cases: Record<string, BaselineEntry>;
}

export class BaselineError extends Error {}

/**
 * How a case compares with its baseline entry:
 * - regressed: either verdict crossed the failing line upwards (so a passing
 *   case now fails, or a failing case fails in one more way), or the case is not
 *   in the baseline and fails;
 * - improved: no verdict crossed upwards and at least one crossed downwards;
 * - changed: a verdict changed without crossing the line (OK to NON-STRICT
 *   without --strict, OK to FAILED BY CLIENT, UNCLEAN to WRONG CODE, ...);
 * - new: not in the baseline, and not failing;
 * - unchanged: both verdicts as in the baseline.
 */
export type Change = "regressed" | "improved" | "changed" | "new" | "unchanged";

export function compareEntry(
  before: BaselineEntry | undefined,
  after: BaselineEntry,
  strict = false,
): Change {
  if (before === undefined) return isFailing(after, strict) ? "regressed" : "new";
  const b0 = behaviorFails(before.behavior, strict), b1 = behaviorFails(after.behavior, strict);
  const c0 = closeFails(before.behaviorClose), c1 = closeFails(after.behaviorClose);
  if ((!b0 && b1) || (!c0 && c1)) return "regressed";
  if ((b0 && !b1) || (c0 && !c1)) return "improved";
  if (before.behavior !== after.behavior || before.behaviorClose !== after.behaviorClose) {
    return "changed";
  }
  return "unchanged";
}

export interface CaseChange {
  id: string;
  before?: BaselineEntry;
  after: BaselineEntry;
}

export interface Comparison {
  regressions: CaseChange[];
  improvements: CaseChange[];
  /** Changes that cross no failing line. */
  changed: CaseChange[];
  /** Cases not in the baseline that do not fail. */
  added: CaseChange[];
  unchanged: number;
  /** Baseline cases this run did not run (a narrower selection): not compared. */
  notRun: string[];
}

/** Compares a run's verdicts (by case id) with a baseline; every list is in id order. */
export function compareToBaseline(
  baseline: Pick<Baseline, "cases">,
  run: Readonly<Record<string, BaselineEntry>>,
  strict = false,
): Comparison {
  const out: Comparison = {
    regressions: [],
    improvements: [],
    changed: [],
    added: [],
    unchanged: 0,
    notRun: [],
  };
  for (const id of Object.keys(run).sort(compareIds)) {
    const before = Object.hasOwn(baseline.cases, id) ? baseline.cases[id] : undefined;
    const after = run[id];
    const change = compareEntry(before, after, strict);
    const item = { id, ...(before ? { before } : {}), after };
    if (change === "regressed") out.regressions.push(item);
    else if (change === "improved") out.improvements.push(item);
    else if (change === "changed") out.changed.push(item);
    else if (change === "new") out.added.push(item);
    else out.unchanged++;
  }
  out.notRun = Object.keys(baseline.cases).filter((id) => !Object.hasOwn(run, id)).sort(
    compareIds,
  );
  return out;
}

/** A baseline of a run's verdicts, keyed by case id. */
export function makeBaseline(
  agent: string,
  outcomes: readonly { spec: { id: string }; verdict: BaselineEntry }[],
): Baseline {
  const cases: Record<string, BaselineEntry> = {};
  const ids = outcomes.map((o) => o.spec.id).sort(compareIds);
  const byId = new Map(outcomes.map((o) => [o.spec.id, o.verdict]));
  for (const id of ids) {
    const { behavior, behaviorClose } = byId.get(id)!;
    cases[id] = { behavior, behaviorClose };
  }
  return { version: 1, agent, cases };
}

/**
 * The file text of a baseline: keys in a fixed order, ids sorted numerically,
 * one line per case so a diff of two baselines shows one line per changed case.
 */
export function formatBaseline(baseline: Baseline): string {
  const ids = Object.keys(baseline.cases).sort(compareIds);
  const lines = ids.map((id, i) => {
    const { behavior, behaviorClose } = baseline.cases[id];
    return `    ${JSON.stringify(id)}: ${
      JSON.stringify({ behavior, behaviorClose })
        .replace('","', '", "').replaceAll('":"', '": "')
    }${i < ids.length - 1 ? "," : ""}`;
  });
  return [
    "{",
    `  "version": 1,`,
    `  "agent": ${JSON.stringify(baseline.agent)},`,
    ...(ids.length ? [`  "cases": {`, ...lines, "  }"] : [`  "cases": {}`]),
    "}",
  ].join("\n") + "\n";
}

const ID = /^\d+(\.\d+)*$/;

/** Parses and validates a baseline file's text; `source` names it in errors. */
export function parseBaseline(text: string, source = "baseline"): Baseline {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new BaselineError(`${source}: not valid JSON: ${(e as Error).message}`);
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(data)) throw new BaselineError(`${source}: expected a JSON object`);
  if (data.version !== 1) {
    throw new BaselineError(`${source}: unsupported version ${JSON.stringify(data.version)}`);
  }
  if (typeof data.agent !== "string") {
    throw new BaselineError(`${source}: "agent" must be a string`);
  }
  if (!isObject(data.cases)) throw new BaselineError(`${source}: "cases" must be an object`);
  const cases: Record<string, BaselineEntry> = {};
  for (const [id, entry] of Object.entries(data.cases)) {
    if (!ID.test(id)) throw new BaselineError(`${source}: "${id}" is not a case id`);
    if (
      !isObject(entry) || !BEHAVIORS.includes(entry.behavior as Behavior) ||
      !CLOSE_BEHAVIORS.includes(entry.behaviorClose as CloseBehavior)
    ) {
      throw new BaselineError(
        `${source}: case ${id} needs a valid "behavior" and "behaviorClose"`,
      );
    }
    cases[id] = {
      behavior: entry.behavior as Behavior,
      behaviorClose: entry.behaviorClose as CloseBehavior,
    };
  }
  return { version: 1, agent: data.agent, cases };
}

/** Reads a baseline file; any problem is a BaselineError naming the file. */
export async function readBaseline(path: string): Promise<Baseline> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new BaselineError(`cannot read baseline ${path}: ${(e as Error).message}`);
  }
  return parseBaseline(text, `baseline ${path}`);
}

/** Writes a baseline file, creating its directory. */
export async function writeBaseline(path: string, baseline: Baseline): Promise<void> {
  const slash = path.lastIndexOf("/");
  if (slash > 0) await Deno.mkdir(path.slice(0, slash), { recursive: true });
  await Deno.writeTextFile(path, formatBaseline(baseline));
}

/** `{agent}` in a baseline path becomes the agent's file-name form (as in report names). */
export function baselinePath(template: string, agent: string): string {
  const cleaned = agent.trim().toLowerCase().replace(/[^a-z0-9]/g, " ").trim().replace(/ +/g, "_");
  return template.replaceAll("{agent}", cleaned || "agent");
}
