/**
 * JSON reports. index.json keeps Autobahn's shape ({agent: {caseId: {behavior,
 * behaviorClose, duration, remoteCloseCode, reportfile}}}) so existing scripts
 * keep working; one file per case holds everything observed.
 */
import type { CaseSpec } from "./case.ts";
import type { ObservedEvent } from "./payload.ts";
import type { CaseOutcome } from "./runner.ts";
import type { CaseRun } from "./session.ts";
import type { Behavior, CloseBehavior } from "./verdict.ts";

/** Bytes of an event payload written into a case report. */
export const REPORT_PAYLOAD_LIMIT = 1024;

export interface IndexEntry {
  behavior: Behavior;
  behaviorClose: CloseBehavior;
  duration: number;
  remoteCloseCode: number | null;
  reportfile: string;
}

export type IndexJson = Record<string, Record<string, IndexEntry>>;

/** Autobahn's file naming: agent name reduced to [a-z0-9_], then `_case_1_2_3.json`. */
export function caseReportName(agent: string, caseId: string): string {
  const cleaned = agent.trim().toLowerCase().replace(/[^a-z0-9]/g, " ").trim().replace(/ /g, "_");
  return `${cleaned}_case_${caseId.replaceAll(".", "_")}.json`;
}

/** Sorts dotted ids numerically: 1.1.10 after 1.1.9. */
export function compareIds(a: string, b: string): number {
  const pa = a.split(".").map(Number), pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

/** A payload's length and its first bytes; `length` when `payload` holds only those. */
function describePayload(payload: Uint8Array, length = payload.length) {
  const head = payload.subarray(0, REPORT_PAYLOAD_LIMIT);
  let text: string | undefined;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(head);
  } catch { /* not text: hex only */ }
  return {
    length,
    ...(text !== undefined ? { text } : { hex: head.toHex() }),
    ...(length > head.length ? { truncated: true } : {}),
  };
}

function describeEvents(events: ObservedEvent[]) {
  // Collapse runs of identical events (1000 round trips) into one entry with a count.
  const out: Record<string, unknown>[] = [];
  let last: ObservedEvent | undefined;
  for (const e of events) {
    if (last === e && out.length) {
      (out[out.length - 1].times as number)++;
      continue;
    }
    last = e;
    out.push(
      e.type === "timeout" ? { type: "timeout", tag: e.tag, times: 1 } : e.type === "message"
        ? {
          type: "message",
          binary: e.binary,
          payload: describePayload(e.payload, e.length),
          times: 1,
        }
        : { type: "pong", payload: describePayload(e.payload, e.length), times: 1 },
    );
  }
  for (const entry of out) if (entry.times === 1) delete entry.times;
  return out;
}

/** What a case's JSON report holds. */
export function caseReport(run: CaseRun, agent: string) {
  const spec: CaseSpec = run.spec;
  return {
    id: spec.id,
    title: spec.title,
    rfc: spec.rfc,
    requirement: spec.requirement,
    ...(spec.deviation ? { deviation: spec.deviation } : {}),
    agent,
    started: run.started,
    duration: run.duration,
    reportTime: spec.reportTime ?? false,
    behavior: run.verdict.behavior,
    behaviorClose: run.verdict.behaviorClose,
    result: run.verdict.result,
    resultClose: run.verdict.resultClose,
    expected: {
      ok: describeEvents(run.expected.ok),
      ...(run.expected.nonStrict ? { nonStrict: describeEvents(run.expected.nonStrict) } : {}),
      close: spec.expect.close,
    },
    received: describeEvents(run.received),
    // Messages the peer sent unasked (--protocol-only): shown, never judged.
    ...(run.unsolicited.length ? { unsolicited: describeEvents(run.unsolicited) } : {}),
    close: run.close,
    handshake: run.handshake,
    violations: run.violations,
    findings: run.findings,
    timeline: run.timeline,
    steps: spec.steps,
    httpRequest: run.http.request ?? null,
    httpResponse: run.http.response ?? null,
    wirelog: run.wire.entries,
    wirelogElided: run.wire.elided,
  };
}

async function readIndex(path: string): Promise<IndexJson> {
  try {
    const parsed = JSON.parse(await Deno.readTextFile(path));
    return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : {};
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return {};
    throw new Error(`cannot merge into ${path}: ${(e as Error).message}`);
  }
}

/** Writes one case's JSON report; returns its file name. */
export async function writeCaseReport(dir: string, agent: string, run: CaseRun): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const reportfile = caseReportName(agent, run.spec.id);
  await Deno.writeTextFile(`${dir}/${reportfile}`, JSON.stringify(caseReport(run, agent), null, 1));
  return reportfile;
}

/**
 * Merges the agent's results into index.json; results of other agents already
 * there are kept, as Autobahn does.
 */
export async function writeIndex(
  dir: string,
  agent: string,
  outcomes: readonly CaseOutcome[],
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const indexPath = `${dir}/index.json`;
  const index = await readIndex(indexPath);
  const entries: Record<string, IndexEntry> = { ...index[agent] };
  for (const o of outcomes) {
    entries[o.spec.id] = {
      behavior: o.verdict.behavior,
      behaviorClose: o.verdict.behaviorClose,
      duration: o.duration,
      remoteCloseCode: o.remoteCloseCode ?? null,
      reportfile: caseReportName(agent, o.spec.id),
    };
  }
  const sorted: Record<string, IndexEntry> = {};
  for (const id of Object.keys(entries).sort(compareIds)) sorted[id] = entries[id];
  index[agent] = sorted;
  await Deno.writeTextFile(indexPath, JSON.stringify(index, null, 3) + "\n");
  return indexPath;
}
