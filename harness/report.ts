/**
 * JSON reports. index.json keeps Autobahn's shape ({agent: {caseId: {behavior,
 * behaviorClose, duration, remoteCloseCode, reportfile}}}) so existing scripts
 * keep working; one file per case holds everything observed.
 */
import { type CaseSpec, compareIds } from "./case.ts";
import { REPORT_PAYLOAD_LIMIT } from "./observation.ts";
import type { ObservedEvent } from "./payload.ts";
import type { CaseRun } from "./session.ts";
import type { Behavior, CaseOutcome, CloseBehavior, Judged } from "./verdict.ts";

export { REPORT_PAYLOAD_LIMIT };

export interface IndexEntry {
  behavior: Behavior;
  behaviorClose: CloseBehavior;
  duration: number;
  remoteCloseCode: number | null;
  reportfile: string;
}

export type IndexJson = Record<string, Record<string, IndexEntry>>;

/**
 * When each agent's results in index.json were written, by agent and case id
 * (ISO times): a sidecar, so index.json keeps exactly Autobahn's shape.
 */
export const RUNS_FILE = "index.runs.json";

export type RunTimes = Record<string, Record<string, string>>;

/** Longest agent part of a report file name: a name stays far below file systems' 255 bytes. */
export const AGENT_NAME_LIMIT = 64;

/** FNV-1a, 32 bits, of the UTF-8 bytes, as 8 hex digits: a short stable tag for a name. */
function nameHash(text: string): string {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) hash = Math.imul(hash ^ byte, 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, "0");
}

/** `base` cut so that it and "_<tag>" fit AGENT_NAME_LIMIT, then the tag. */
function tagged(base: string, tag: string): string {
  return `${base.slice(0, AGENT_NAME_LIMIT - tag.length - 1)}_${tag}`;
}

/**
 * Autobahn's reduction of an agent name to [a-z0-9_], bounded: a name longer
 * than AGENT_NAME_LIMIT is cut and ends with a hash of the whole name.
 */
export function agentFileName(agent: string): string {
  const cleaned = agent.trim().toLowerCase().replace(/[^a-z0-9]/g, " ").trim().replace(/ /g, "_");
  return cleaned.length <= AGENT_NAME_LIMIT ? cleaned : tagged(cleaned, nameHash(agent));
}

/**
 * Autobahn's file naming, `<agent>_case_1_2_3.json`; `agentPart` defaults to
 * agentFileName(agent) (writeCaseReport may use another, see agentPartIn()).
 */
export function caseReportName(
  agent: string,
  caseId: string,
  agentPart: string = agentFileName(agent),
): string {
  return `${agentPart}_case_${caseId.replaceAll(".", "_")}.json`;
}

/** The agent part of the report file names index.json gives an agent's results. */
function agentPartOf(entries: unknown): string | undefined {
  if (!entries || typeof entries !== "object") return undefined;
  for (const entry of Object.values(entries)) {
    const m = /^(.*)_case_[0-9_]+\.json$/.exec((entry as Partial<IndexEntry>)?.reportfile ?? "");
    if (m) return m[1];
  }
  return undefined;
}

/** agentPartIn() answers, by report directory and agent: every case report of a run asks. */
const agentParts = new Map<string, Promise<string>>();

/**
 * The agent part of the agent's report file names in `dir`: agentFileName(),
 * unless another agent in dir/index.json already has that name (two names can
 * reduce to the same one), then that name and a hash of the agent's.
 */
function agentPartIn(dir: string, agent: string): Promise<string> {
  const key = `${dir}\0${agent}`;
  let part = agentParts.get(key);
  if (!part) {
    part = readIndex(`${dir}/index.json`).then((index) => {
      const taken = new Set(
        Object.keys(index).filter((a) => a !== agent).map((a) =>
          agentPartOf(index[a]) ?? agentFileName(a)
        ),
      );
      const own = agentPartOf(index[agent]) ?? agentFileName(agent);
      if (!taken.has(own)) return own;
      let name = tagged(agentFileName(agent), nameHash(agent));
      for (let n = 2; taken.has(name); n++) {
        name = tagged(agentFileName(agent), `${nameHash(agent)}${n}`);
      }
      return name;
    });
    agentParts.set(key, part);
  }
  return part;
}

/**
 * Event lists longer than this (Autobahn's compression cases: 500 messages of
 * different payloads) keep LONG_LIST_PAYLOAD_BYTES of each payload, not
 * REPORT_PAYLOAD_LIMIT: their reports would otherwise take a megabyte a case.
 */
const LONG_EVENT_LIST = 64;
const LONG_LIST_PAYLOAD_BYTES = 64;

/** A payload's length and its first bytes; `length` when `payload` holds only those. */
function describePayload(
  payload: Uint8Array,
  length = payload.length,
  previewBytes = REPORT_PAYLOAD_LIMIT,
) {
  const head = payload.subarray(0, previewBytes);
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
  const runs: { event: ObservedEvent; times: number }[] = [];
  for (const event of events) {
    const last = runs.at(-1);
    if (last?.event === event) last.times++;
    else runs.push({ event, times: 1 });
  }
  const previewBytes = runs.length > LONG_EVENT_LIST
    ? LONG_LIST_PAYLOAD_BYTES
    : REPORT_PAYLOAD_LIMIT;
  return runs.map(({ event: e, times }) => ({
    ...(e.type === "timeout" ? { type: "timeout", tag: e.tag } : {
      type: e.type,
      ...(e.type === "message" ? { binary: e.binary } : {}),
      payload: describePayload(e.payload, e.length, previewBytes),
    }),
    ...(times > 1 ? { times } : {}),
  }));
}

/** A case's observation with its judgement: what a case report shows. */
export type JudgedRun = CaseRun & Judged;

/** What a case's JSON report holds. */
export function caseReport(run: JudgedRun, agent: string) {
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
    ...(run.verdict.matched ? { matched: run.verdict.matched } : {}),
    result: run.verdict.result,
    resultClose: run.verdict.resultClose,
    expected: {
      ok: describeEvents(run.expected.ok),
      ...(run.expected.nonStrict ? { nonStrict: describeEvents(run.expected.nonStrict) } : {}),
      close: spec.expect.close,
      // What the server must do with the opening handshake: complete it, or refuse it.
      handshake: spec.handshake?.expect ?? { outcome: "accept" },
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

/**
 * JSON with one field per line, and an array's entries one per line (the wire
 * log's 4000): as readable as indented JSON, and it takes a fifth of the time
 * to make (7 ms for a long wire log, with every case waiting on it).
 */
function linedJson(report: Record<string, unknown>): string {
  const fields = Object.entries(report).filter(([, value]) => value !== undefined).map(
    ([key, value]) =>
      ` ${JSON.stringify(key)}: ${
        Array.isArray(value) && value.length > 0
          ? `[\n  ${value.map((entry) => JSON.stringify(entry) ?? "null").join(",\n  ")}\n ]`
          : JSON.stringify(value)
      }`,
  );
  return `{\n${fields.join(",\n")}\n}\n`;
}

/** Writes one case's JSON report; returns its file name. */
export async function writeCaseReport(dir: string, agent: string, run: JudgedRun): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const reportfile = caseReportName(agent, run.spec.id, await agentPartIn(dir, agent));
  await Deno.writeTextFile(`${dir}/${reportfile}`, linedJson(caseReport(run, agent)));
  return reportfile;
}

async function readRunTimes(path: string): Promise<RunTimes> {
  try {
    const parsed = JSON.parse(await Deno.readTextFile(path));
    return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : {};
  } catch {
    // No sidecar (an index written by another tool or an older version): no times known.
    return {};
  }
}

/** The run times of `dir` (RUNS_FILE), {} when there are none. */
export function readRunTimesIn(dir: string): Promise<RunTimes> {
  return readRunTimes(`${dir}/${RUNS_FILE}`);
}

/** index.json's report file names, by agent and case id. */
export type ReportFiles = Record<string, Record<string, { reportfile: string }>>;

/**
 * The report files index.json will name once a run of `ids` for `agent` is
 * merged in (writeIndex() keeps every other result): known before the run, so
 * case pages can be written, named and linked, as each case finishes.
 */
export async function plannedReportFiles(
  dir: string,
  agent: string,
  ids: readonly string[],
): Promise<ReportFiles> {
  const index: ReportFiles = await readIndex(`${dir}/index.json`);
  const agentPart = await agentPartIn(dir, agent);
  const entries = { ...index[agent] };
  for (const id of ids) entries[id] = { reportfile: caseReportName(agent, id, agentPart) };
  index[agent] = Object.fromEntries(
    Object.keys(entries).sort(compareIds).map((id) => [id, entries[id]]),
  );
  return index;
}

export interface IndexWritten {
  path: string;
  /** The agent's results in index.json that an earlier run wrote (this run did not run them). */
  earlier: number;
}

/**
 * Merges the agent's results into index.json; results of other agents already
 * there are kept, as Autobahn does, and so are the agent's results for cases
 * this run did not run: RUNS_FILE records when each was written, so the HTML
 * index can mark those from an earlier run.
 */
export async function writeIndex(
  dir: string,
  agent: string,
  outcomes: readonly CaseOutcome[],
): Promise<IndexWritten> {
  await Deno.mkdir(dir, { recursive: true });
  const indexPath = `${dir}/index.json`;
  const index = await readIndex(indexPath);
  const runTimes = await readRunTimes(`${dir}/${RUNS_FILE}`);
  const written = new Date().toISOString();
  const agentPart = await agentPartIn(dir, agent);
  const entries: Record<string, IndexEntry> = { ...index[agent] };
  const times: Record<string, string> = { ...runTimes[agent] };
  for (const o of outcomes) {
    entries[o.spec.id] = {
      behavior: o.verdict.behavior,
      behaviorClose: o.verdict.behaviorClose,
      duration: o.duration,
      remoteCloseCode: o.remoteCloseCode ?? null,
      reportfile: caseReportName(agent, o.spec.id, agentPart),
    };
    times[o.spec.id] = written;
  }
  const sorted: Record<string, IndexEntry> = {};
  const sortedTimes: Record<string, string> = {};
  for (const id of Object.keys(entries).sort(compareIds)) {
    sorted[id] = entries[id];
    if (times[id]) sortedTimes[id] = times[id];
  }
  index[agent] = sorted;
  runTimes[agent] = sortedTimes;
  await Deno.writeTextFile(indexPath, JSON.stringify(index, null, 3) + "\n");
  await Deno.writeTextFile(`${dir}/${RUNS_FILE}`, JSON.stringify(runTimes, null, 1) + "\n");
  return { path: indexPath, earlier: Object.keys(sorted).length - outcomes.length };
}
