/**
 * The `deno test` adapter: conformance in a Deno project's own tests. Each
 * group of the catalog is one Deno.test, each case a t.step that fails when
 * the case fails (isFailing: FAILED, or a close that is FAILED, WRONG CODE or
 * UNCLEAN; with `strict`, NON-STRICT too).
 *
 *     import { conformanceTests } from "../wsconform/harness/mod.ts";
 *     conformanceTests({ url: "ws://127.0.0.1:9001/", cases: ["1", "2"] });
 */
import { GROUPS } from "../fixtures/mod.ts";
import { type CaseSpec, rfcReference } from "./case.ts";
import { runSuite, selectCases, type SuiteOptions } from "./suite.ts";
import { type CaseOutcome, isFailing } from "./verdict.ts";

export interface ConformanceTestOptions
  extends Omit<SuiteOptions, "cases" | "onStart" | "onCaseDone" | "reports"> {
  /** Case ids or globs, as --cases takes them (`"1"`, `"6.4.*"`, `"7.1.1"`); default every case. */
  cases?: readonly string[];
  /** Case ids or globs to leave out. */
  exclude?: readonly string[];
  /** NON-STRICT (a broken SHOULD) fails a step too. */
  strict?: boolean;
  /** What the test names start with (default "wsconform"). */
  name?: string;
}

/** Why a case failed, in the step's error: its verdicts and their reasons. */
function failureMessage(outcome: CaseOutcome, strict: boolean): string {
  const { spec, verdict } = outcome;
  return [
    `${spec.id} ${spec.title}: ${verdict.behavior}/${verdict.behaviorClose}` +
    (strict && verdict.behavior === "NON-STRICT" ? " (strict)" : ""),
    `  requirement (${rfcReference(spec.rfc)}): ${spec.requirement}`,
    `  behavior: ${verdict.result}`,
    `  close: ${verdict.resultClose}`,
  ].join("\n");
}

/**
 * Registers one Deno.test per group that has selected cases; each runs its
 * group's cases against the server (runSuite(): in parallel, each on its own
 * connection) and reports every case as a step.
 */
export function conformanceTests(options: ConformanceTestOptions = {}): void {
  const { cases, exclude, strict = false, name = "wsconform", ...suite } = options;
  const all = GROUPS.flatMap((g) => g.cases);
  const selected = new Set(selectCases(all, cases, exclude));
  for (const group of GROUPS) {
    const mine: CaseSpec[] = group.cases.filter((c) => selected.has(c));
    if (mine.length === 0) continue;
    Deno.test(`${name}: group ${group.id} ${group.title}`, async (t) => {
      const result = await runSuite({ ...suite, cases: mine });
      const outcomes = new Map(result.outcomes.map((o) => [o.spec.id, o]));
      const notRun = new Map(
        result.notRun.flatMap((n) => n.cases.map((c) => [c.id, n.reason] as const)),
      );
      for (const spec of mine) {
        const outcome = outcomes.get(spec.id);
        const why = notRun.get(spec.id);
        await t.step({
          name: `${spec.id} ${spec.title}${why ? ` (not run: ${why})` : ""}`,
          ignore: outcome === undefined,
          fn: () => {
            if (outcome && isFailing(outcome.verdict, strict)) {
              throw new Error(failureMessage(outcome, strict));
            }
          },
        });
      }
    });
  }
}
