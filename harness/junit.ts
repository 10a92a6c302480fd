/**
 * JUnit XML for CI systems: one <testsuite> per agent, one <testcase> per case
 * run. classname is the case's group ("6 UTF-8 handling"), name is
 * "<id> <title>", time is in seconds. A failing case gets a <failure> whose
 * message says which verdict failed, what was expected and what was observed;
 * an UNIMPLEMENTED case is <skipped/>; with `strict`, NON-STRICT fails.
 */
import { type CaseSpec, compareIds, groupOf, type GroupSpec, rfcReference } from "./case.ts";
import type { ObservedEvent } from "./payload.ts";
import { caseReportName } from "./report.ts";
import { behaviorFails, type CaseOutcome, closeFails } from "./verdict.ts";

/**
 * Characters XML 1.0 does not allow anywhere, not even as character references:
 * C0 controls other than tab, LF and CR; lone surrogates; U+FFFE and U+FFFF.
 */
const INVALID_XML = new RegExp(
  "[\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\uFFFE\\uFFFF]" +
    // a high surrogate not followed by a low one, a low one not preceded by a high one
    "|[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])|(?<![\\uD800-\\uDBFF])[\\uDC00-\\uDFFF]",
  "g",
);

/** Replaces characters XML 1.0 cannot carry with a visible `\uXXXX` escape. */
export function replaceInvalidXmlChars(text: string): string {
  return text.replace(
    INVALID_XML,
    (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`,
  );
}

/** Escapes character data (element content). */
export function escapeXmlText(text: string): string {
  return replaceInvalidXmlChars(text)
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&apos;");
}

/**
 * Escapes an attribute value (written between double quotes). Tab, LF and CR
 * become character references so attribute-value normalisation keeps them.
 */
export function escapeXmlAttr(text: string): string {
  return escapeXmlText(text)
    .replaceAll("\t", "&#9;")
    .replaceAll("\n", "&#10;")
    .replaceAll("\r", "&#13;");
}

export interface JunitSuite {
  /** The agent name; the <testsuite> name. */
  agent: string;
  /** The target's URL, kept as a property. */
  url?: string;
  /** When the run started. */
  started?: Date;
  /** Wall time of the run in milliseconds (default: the sum of the case durations). */
  elapsedMs?: number;
  outcomes: readonly CaseOutcome[];
  /** For failing cases, by id: the events expected and observed (see eventsOf). */
  events?: ReadonlyMap<string, CaseEvents>;
  /** Cases selected but not run, and why: written as <skipped/> testcases. */
  notRun?: { cases: readonly CaseSpec[]; reason: string };
}

/** The events of a case in words, for a failure message. */
export interface CaseEvents {
  expected: string;
  observed: string;
}

const PREVIEW = 24;

function describeEvent(e: ObservedEvent): string {
  if (e.type === "timeout") return `timeout "${e.tag}"`;
  const length = e.length ?? e.payload.length;
  const size = `${length} byte${length === 1 ? "" : "s"}`;
  if (e.type === "pong") return `pong (${size})`;
  if (e.binary) return `binary message (${size})`;
  let preview = "";
  try {
    const head = new TextDecoder("utf-8", { fatal: true }).decode(e.payload.subarray(0, PREVIEW));
    preview = `: ${JSON.stringify(head)}${length > PREVIEW ? "…" : ""}`;
  } catch { /* invalid UTF-8 (or cut within a character): no preview */ }
  return `text message (${size})${preview}`;
}

/**
 * A short list of events: runs of equal events collapsed ("pong (4 bytes) ×10"),
 * at most `limit` entries, "none" for no event.
 */
export function summarizeEvents(events: readonly ObservedEvent[], limit = 5): string {
  const runs: { text: string; times: number }[] = [];
  for (const e of events) {
    const text = describeEvent(e);
    const last = runs[runs.length - 1];
    if (last?.text === text) last.times++;
    else runs.push({ text, times: 1 });
  }
  if (runs.length === 0) return "none";
  const shown = runs.slice(0, limit).map((r) => r.times > 1 ? `${r.text} ×${r.times}` : r.text);
  if (runs.length > limit) shown.push(`… ${runs.length - limit} more`);
  return shown.join(", ");
}

/** The expected and observed events of a finished case. */
export function eventsOf(run: {
  expected: { ok: ObservedEvent[]; nonStrict?: ObservedEvent[] };
  received: ObservedEvent[];
}): CaseEvents {
  const ok = summarizeEvents(run.expected.ok);
  return {
    expected: run.expected.nonStrict
      ? `${ok}; or, tolerated, ${summarizeEvents(run.expected.nonStrict)}`
      : ok,
    observed: summarizeEvents(run.received),
  };
}

export interface JunitOptions {
  /** The case catalog: each case's group names its classname. */
  groups: readonly GroupSpec[];
  /** NON-STRICT counts as a failure. */
  strict?: boolean;
}

const seconds = (ms: number) => (Math.max(0, ms) / 1000).toFixed(3);

/** How the case failed, or undefined when it did not. */
export function failureOf(
  outcome: CaseOutcome,
  strict = false,
  agent?: string,
  events?: CaseEvents,
): { type: string; message: string; detail: string } | undefined {
  const { spec, verdict } = outcome;
  const badBehavior = behaviorFails(verdict.behavior, strict);
  const badClose = closeFails(verdict.behaviorClose);
  if (!badBehavior && !badClose) return undefined;
  const okBehaviors = spec.expect.nonStrict && !strict ? "OK or NON-STRICT" : "OK";
  const close = spec.expect.close;
  const expectedClose = `closed by ${close.by === "peer" ? "the server" : "the suite"}` +
    `${close.codes.length ? `, code ${close.codes.join(" or ")} or none` : ""}` +
    `${close.clean ? ", cleanly" : ""}`;
  const parts: string[] = [];
  if (badBehavior) {
    parts.push(
      `behavior: expected ${okBehaviors}, observed ${verdict.behavior}` +
        `${strict && verdict.behavior === "NON-STRICT" ? " (--strict)" : ""}: ${verdict.result}` +
        (events ? ` (events expected: ${events.expected}; observed: ${events.observed})` : ""),
    );
  }
  if (badClose) {
    parts.push(
      `behaviorClose: expected OK (${expectedClose}), observed ${verdict.behaviorClose}: ` +
        verdict.resultClose,
    );
  }
  const detail = [
    `${spec.id} ${spec.title}`,
    `${rfcReference(spec.rfc)}: ${spec.requirement}`,
    `behavior ${verdict.behavior}: ${verdict.result}`,
    `behaviorClose ${verdict.behaviorClose}: ${verdict.resultClose}`,
    ...(events
      ? [`events expected: ${events.expected}`, `events observed: ${events.observed}`]
      : []),
    `expected close: ${expectedClose}`,
    ...(outcome.remoteCloseCode !== undefined
      ? [`server's close code: ${outcome.remoteCloseCode}`]
      : []),
    ...(agent !== undefined ? [`report: ${caseReportName(agent, spec.id)}`] : []),
  ].join("\n");
  return {
    type: `${verdict.behavior}/${verdict.behaviorClose}`,
    message: parts.join(" | "),
    detail,
  };
}

/** The whole JUnit XML document. */
export function junitXml(suites: readonly JunitSuite[], options: JunitOptions): string {
  const strict = options.strict ?? false;
  const out: string[] = [];
  let tests = 0, failures = 0, skipped = 0, totalMs = 0;
  const body: string[] = [];
  for (const suite of suites) {
    const notRun = (suite.notRun?.cases ?? []).map((spec) => ({ spec, duration: 0 }));
    const outcomes: (CaseOutcome | { spec: CaseSpec; duration: number })[] = [
      ...suite.outcomes,
      ...notRun,
    ].sort((a, b) => compareIds(a.spec.id, b.spec.id));
    let suiteFailures = 0, suiteSkipped = 0;
    const cases: string[] = [];
    for (const o of outcomes) {
      const group = groupOf(options.groups, o.spec.id);
      const classname = group ? `${group.id} ${group.title}` : o.spec.id.split(".")[0];
      const attrs = `classname="${escapeXmlAttr(classname)}" name="${
        escapeXmlAttr(`${o.spec.id} ${o.spec.title}`)
      }" time="${seconds(o.duration)}"`;
      if (!("verdict" in o)) {
        suiteSkipped++;
        cases.push(
          `    <testcase ${attrs}>\n      <skipped message="${
            escapeXmlAttr(`not run: ${suite.notRun!.reason}`)
          }"/>\n    </testcase>`,
        );
        continue;
      }
      const failure = failureOf(o, strict, suite.agent, suite.events?.get(o.spec.id));
      // What the case measured goes to its output, failing or not.
      const measured = o.findings.length > 0
        ? `      <system-out>${
          escapeXmlText(o.findings.map((f) => f.text).join("\n"))
        }</system-out>\n`
        : "";
      if (failure) {
        suiteFailures++;
        cases.push(
          `    <testcase ${attrs}>\n      <failure message="${escapeXmlAttr(failure.message)}" ` +
            `type="${escapeXmlAttr(failure.type)}">${escapeXmlText(failure.detail)}</failure>\n` +
            `${measured}    </testcase>`,
        );
      } else if (o.verdict.behavior === "UNIMPLEMENTED") {
        suiteSkipped++;
        cases.push(
          `    <testcase ${attrs}>\n      <skipped message="${
            escapeXmlAttr(`UNIMPLEMENTED: ${o.verdict.result}`)
          }"/>\n    </testcase>`,
        );
      } else if (measured) {
        cases.push(`    <testcase ${attrs}>\n${measured}    </testcase>`);
      } else {
        cases.push(`    <testcase ${attrs}/>`);
      }
    }
    const elapsed = suite.elapsedMs ?? outcomes.reduce((sum, o) => sum + o.duration, 0);
    tests += outcomes.length;
    failures += suiteFailures;
    skipped += suiteSkipped;
    totalMs += elapsed;
    const timestamp = suite.started
      ? ` timestamp="${suite.started.toISOString().slice(0, 19)}"`
      : "";
    body.push(
      `  <testsuite name="${escapeXmlAttr(suite.agent)}" tests="${outcomes.length}" ` +
        `failures="${suiteFailures}" errors="0" skipped="${suiteSkipped}" ` +
        `time="${seconds(elapsed)}"${timestamp}>`,
    );
    body.push("    <properties>");
    body.push(`      <property name="agent" value="${escapeXmlAttr(suite.agent)}"/>`);
    if (suite.url) body.push(`      <property name="url" value="${escapeXmlAttr(suite.url)}"/>`);
    body.push(`      <property name="strict" value="${strict}"/>`);
    body.push("    </properties>");
    body.push(...cases);
    body.push("  </testsuite>");
  }
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(
    `<testsuites name="wsconform" tests="${tests}" failures="${failures}" errors="0" ` +
      `skipped="${skipped}" time="${seconds(totalMs)}">`,
  );
  out.push(...body);
  out.push("</testsuites>");
  return out.join("\n") + "\n";
}

/** Writes the JUnit file, creating its directory; returns the path. */
export async function writeJunit(
  path: string,
  suites: readonly JunitSuite[],
  options: JunitOptions,
): Promise<string> {
  const slash = path.lastIndexOf("/");
  if (slash > 0) await Deno.mkdir(path.slice(0, slash), { recursive: true });
  await Deno.writeTextFile(path, junitXml(suites, options));
  return path;
}
