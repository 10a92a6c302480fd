/**
 * HTML reports, rendered from the JSON reports (report.ts): an index with one
 * matrix of cases × agents, and one page per agent and case with the verdicts,
 * the expected and observed events (first difference highlighted), the close,
 * the opening handshake and the wire log.
 *
 * The pages are self-contained (inline CSS, no script, no fetch), readable from
 * file:// and in print. Everything taken from a report is escaped: the markup
 * is built with the `markup` tagged template below, which escapes every value
 * interpolated into it unless the value is itself markup built the same way.
 * (The tag is not called `html`: deno fmt reformats templates with that tag as
 * HTML and rewrites their escapes.)
 */
import { join } from "node:path";
import { type CaseSpec, compareIds, type GroupSpec, rfcReference } from "./case.ts";
import {
  caseReportName,
  type IndexEntry,
  type IndexJson,
  plannedReportFiles,
  readRunTimesIn,
  type RunTimes,
} from "./report.ts";
import { type Behavior, type CloseBehavior, isFailing } from "./verdict.ts";

/** The rules every case checks on the server's frames (masking, length form, RSV, close codes). */
function checksSection(r: CaseReportJson): Html {
  const broken = objects<NonNullable<CaseReportJson["violations"]>[number]>(r.violations);
  if (broken.length === 0) {
    return markup`<p>Every frame the server sent was unmasked, used the minimal length form, had no
RSV bit set and a defined opcode, every control frame was whole and at most 125 bytes, every close
frame carried a valid code, and no data frame followed its close frame.</p>`;
  }
  return markup`<ul class="violations">${
    broken.map((v) =>
      v.level === "may"
        ? markup`<li><strong>Noted</strong> (${rfcReference(v.rfc ?? "?")}, no MUST): ${
          v.detail ?? ""
        }</li>`
        : markup`<li class="mismatch"><strong>${
          (v.level ?? "must").toUpperCase()
        }</strong> broken (${rfcReference(v.rfc ?? "?")}): ${v.detail ?? ""}</li>`
    )
  }</ul>`;
}

/** The case's measurements: what was measured, the figure, and the finding in a sentence. */
function findingsTable(findings: Finding[]): Html {
  return markup`<table class="findings">
<thead><tr><th>Measurement</th><th>Value</th><th>Finding</th></tr></thead>
<tbody>
${
    findings.map((f) =>
      markup`<tr><th scope="row">${f.name ?? "—"}</th><td class="num">${
        f.value === null || f.value === undefined
          ? "—"
          : markup`${f.value}${f.unit ? ` ${f.unit}` : ""}`
      }</td><td>${f.text ?? ""}</td></tr>\n`
    )
  }</tbody>
</table>`;
}

// ---------------------------------------------------------------------------
// Markup that escapes what it is given

/** A piece of markup; only the `markup` template here makes these. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes & < > " ' so text is safe in element content and in quoted attribute values. */
export function escapeHtml(text: string): string {
  // Most text (hex, numbers, plain words) has nothing to escape: testing first halves the cost.
  return /[&<>"']/.test(text) ? text.replace(/[&<>"']/g, (c) => ENTITIES[c]) : text;
}

function part(p: unknown): string {
  if (typeof p === "string") return escapeHtml(p);
  // A number's text is digits, ".", "-", "+", "e", "Infinity" or "NaN": nothing to escape.
  if (typeof p === "number") return String(p);
  if (p instanceof Html) return p.value;
  if (p === null || p === undefined || p === false) return "";
  if (Array.isArray(p)) return p.map(part).join("");
  return escapeHtml(String(p));
}

/** Markup with every interpolated value escaped (arrays are joined, Html kept as is). */
function markup(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1];
  return new Html(out);
}

/** A link target from a file name this module generated. */
function href(fileName: string): string {
  return encodeURIComponent(fileName);
}

// ---------------------------------------------------------------------------
// The report data, as read back from JSON (any field may be absent or odd)

export interface DescribedPayload {
  length: number;
  text?: string;
  hex?: string;
  truncated?: boolean;
}

/** An event as report.ts describes it; `times` counts a run of identical events. */
export type DescribedEvent =
  | { type: "message"; binary: boolean; payload: DescribedPayload; times?: number }
  | { type: "pong"; payload: DescribedPayload; times?: number }
  | { type: "timeout"; tag: string; times?: number };

/** A wire log entry as wirelog.ts writes it (read back, so loosely typed). */
export type WireLogEntry = Record<string, unknown>;

/** A case's JSON report (report.ts caseReport()), every field optional. */
export interface CaseReportJson {
  id?: string;
  title?: string;
  rfc?: string;
  requirement?: string;
  deviation?: string;
  agent?: string;
  started?: string;
  duration?: number;
  reportTime?: boolean;
  behavior?: string;
  behaviorClose?: string;
  /** Which expectation the events matched; "okPrefix": the peer failed first, as it may. */
  matched?: string;
  result?: string;
  resultClose?: string;
  expected?: {
    ok?: DescribedEvent[];
    nonStrict?: DescribedEvent[];
    close?: { by?: string; codes?: number[]; clean?: boolean; wrongEndpointIsFatal?: boolean };
    handshake?: {
      outcome?: string;
      alsoRight?: number[];
      listsVersion13?: boolean;
      accepting?: string;
    };
  };
  received?: DescribedEvent[];
  /** Messages the peer sent unasked under --protocol-only: shown, not judged. */
  unsolicited?: DescribedEvent[];
  close?: Record<string, unknown>;
  steps?: unknown[];
  httpRequest?: string | null;
  httpResponse?: string | null;
  wirelog?: WireLogEntry[];
  wirelogElided?: Record<string, number>;
  violations?: { rule?: string; rfc?: string; level?: string; detail?: string }[];
  /** What the case measured, e.g. how long the server took to close TCP. */
  findings?: Finding[];
}

/** A measurement a case reports; `value` is null when there was nothing to measure. */
export interface Finding {
  name: string;
  text: string;
  value: number | string | null;
  unit?: string;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function objects<T>(x: unknown): T[] {
  return Array.isArray(x) ? x.filter(isObject) as T[] : [];
}

function str(x: unknown): string | undefined {
  return x === undefined || x === null ? undefined : String(x);
}

// ---------------------------------------------------------------------------
// Verdict classes

/** A cell's class in the matrix, with Autobahn's legend meanings. */
export type CellStatus = "pass" | "nonstrict" | "fail" | "info" | "unimpl" | "missing";

function failing(behavior: unknown, behaviorClose: unknown): boolean {
  return isFailing({
    behavior: String(behavior) as Behavior,
    behaviorClose: String(behaviorClose) as CloseBehavior,
  });
}

/**
 * How one agent did on one case: failed when isFailing() says so (or the
 * verdict is unknown), else by the behaviour verdict; missing without a result.
 */
export function cellStatus(
  entry: { behavior?: unknown; behaviorClose?: unknown } | undefined,
): CellStatus {
  if (!entry) return "missing";
  if (failing(entry.behavior, entry.behaviorClose)) return "fail";
  switch (entry.behavior) {
    case "OK":
      return "pass";
    case "NON-STRICT":
      return "nonstrict";
    case "INFORMATIONAL":
      return "info";
    case "UNIMPLEMENTED":
      return "unimpl";
    default:
      return "fail";
  }
}

/** Both verdicts OK: the only result the "not OK" filter hides. */
function isAllOk(entry: IndexEntry | undefined): boolean {
  return !!entry && entry.behavior === "OK" && entry.behaviorClose === "OK";
}

const STATUS_LABEL: Record<CellStatus, string> = {
  pass: "OK",
  nonstrict: "non-strict",
  fail: "failed",
  info: "informational",
  unimpl: "unimplemented",
  missing: "missing",
};

/** The class of a behaviour verdict alone (case pages). */
function behaviorClass(behavior: unknown): string {
  switch (behavior) {
    case "OK":
      return "v-pass";
    case "NON-STRICT":
      return "v-nonstrict";
    case "INFORMATIONAL":
      return "v-info";
    case "UNIMPLEMENTED":
      return "v-unimpl";
    default:
      return "v-fail";
  }
}

/** The class of a close verdict alone. */
function closeClass(behaviorClose: unknown): string {
  switch (behaviorClose) {
    case "OK":
      return "v-pass";
    case "INFORMATIONAL":
      return "v-info";
    case "FAILED BY CLIENT":
      return "v-nonstrict";
    default:
      return "v-fail";
  }
}

/** Results of one agent over some cases, one class each (CellStatus). */
export interface Counts {
  cases: number;
  pass: number;
  nonstrict: number;
  info: number;
  unimpl: number;
  fail: number;
  missing: number;
}

function emptyCounts(): Counts {
  return { cases: 0, pass: 0, nonstrict: 0, info: 0, unimpl: 0, fail: 0, missing: 0 };
}

// ---------------------------------------------------------------------------
// Page names

/** Page file names by agent, then case id. */
export type PagePlan = Map<string, Map<string, string>>;

/** A report file name index.json may name: a plain file in the report directory. */
function safeReportFile(name: unknown): string | undefined {
  if (typeof name !== "string") return undefined;
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*\.json$/.test(name) || name === "index.json") return undefined;
  return name;
}

/**
 * The HTML page of each agent's case: the JSON file's name with .html, or a
 * name made like caseReportName() when index.json names no plain file. Names
 * that would collide (two agents reduced to the same name) get a suffix.
 */
export function planPages(index: Record<string, Record<string, unknown>>): PagePlan {
  const plan: PagePlan = new Map();
  const used = new Set(["index.html"]);
  for (const agent of Object.keys(index)) {
    const names = new Map<string, string>();
    plan.set(agent, names);
    if (!isObject(index[agent])) continue;
    for (const id of Object.keys(index[agent]).sort(compareIds)) {
      const entry = index[agent][id];
      const json = safeReportFile(isObject(entry) ? entry.reportfile : undefined) ??
        caseReportName(agent, id.replace(/[^A-Za-z0-9.]/g, "_"));
      const base = json.replace(/\.json$/, "");
      let name = `${base}.html`;
      for (let n = 2; used.has(name.toLowerCase()); n++) name = `${base}_${n}.html`;
      used.add(name.toLowerCase());
      names.set(id, name);
    }
  }
  return plan;
}

// ---------------------------------------------------------------------------
// Shared page parts

const CSS = `
:root { color-scheme: light; --pass: #1e7d32; --nonstrict: #e0b400; --fail: #c62828;
  --info: #7b838c; --unimpl: #5e35b1; --missing: #eceff1; --line: #cfd4da; --soft: #f5f6f8; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1f24;
  margin: 0 auto; padding: 1em 1.5em 3em; max-width: 1600px; }
h1 { font-size: 1.5em; margin: 0.3em 0 0.5em; }
h2 { font-size: 1.2em; margin: 1.6em 0 0.5em; border-bottom: 1px solid var(--line); }
h3 { font-size: 1em; margin: 1em 0 0.3em; }
code, pre, .mono, .hex, .txt { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas,
  "Liberation Mono", monospace; font-size: 0.92em; }
pre { background: var(--soft); border: 1px solid var(--line); padding: 0.6em; white-space: pre-wrap;
  overflow-wrap: anywhere; margin: 0.3em 0; }
table { border-collapse: collapse; }
th, td { border: 1px solid var(--line); padding: 0.25em 0.45em; vertical-align: top;
  text-align: left; }
thead th { background: #e9ecef; }
a { color: #0b57d0; }
.muted { color: #5f6b76; }
.nav { margin: 0.5em 0; }
.v { font-weight: 600; }
.v-pass { background: var(--pass); color: #fff; }
.v-nonstrict { background: var(--nonstrict); color: #1b1f24; }
.v-fail { background: var(--fail); color: #fff; }
.v-info { background: var(--info); color: #fff; }
.v-unimpl { background: var(--unimpl); color: #fff; }
.v-missing { background: var(--missing); color: #37474f; font-style: italic; }
span.v { display: inline-block; padding: 0 0.45em; border-radius: 3px; }
ul.legend { list-style: none; padding: 0; margin: 0.4em 0; columns: 2 24em; }
ul.legend li { margin-bottom: 0.3em; break-inside: avoid; }
table.summary td.num, table.summary th.num { text-align: right; }
label.filter { margin-right: 1.2em; cursor: pointer; }
#show-all:checked + label, #show-notok:checked + label, #show-failed:checked + label {
  font-weight: 700; text-decoration: underline; }
#show-notok:checked ~ #matrix tr.all-ok { display: none; }
#show-failed:checked ~ #matrix tr.no-fail { display: none; }
#matrix { margin-top: 0.5em; width: 100%; }
#matrix thead th { position: sticky; top: 0; z-index: 1; }
#matrix th.agent { min-width: 8em; max-width: 16em; overflow-wrap: anywhere; }
#matrix tr.group th, #matrix tr.group td { background: #dfe5ec; border-top: 2px solid #90a4ae; }
#matrix tr.group th { font-size: 1.05em; }
#matrix tr.subgroup th { background: var(--soft); font-weight: 600; padding-left: 1.2em; }
#matrix td.counts { font-size: 0.85em; }
#matrix td.counts span { white-space: nowrap; }
#matrix td.counts .has-fail, #matrix td.counts .has-missing { font-weight: 700; color: #b71c1c; }
/* Long titles (group 6 names its payloads in hex) wrap anywhere: the matrix fits 1280 px. */
#matrix th.case { font-weight: normal; overflow-wrap: anywhere; }
#matrix .cid { font-weight: 700; margin-right: 0.5em; }
#matrix .ctitle { color: #37474f; }
#matrix td.v { padding: 0; min-width: 11em; }
#matrix td.v a, #matrix td.v span.cell { display: block; padding: 0.2em 0.45em; color: inherit;
  text-decoration: none; }
#matrix td.v a:hover, #matrix td.v a:focus { outline: 2px solid #0b57d0; outline-offset: -2px; }
#matrix .b { margin-right: 0.4em; }
#matrix .b, #matrix .c, #matrix .m { white-space: nowrap; }
#matrix .c, #matrix .m { font-weight: normal; font-size: 0.85em; }
#matrix .m { display: block; }
#matrix td.earlier { background-image: repeating-linear-gradient(135deg, transparent 0 6px,
  rgba(255, 255, 255, 0.3) 6px 12px); }
#matrix .m.earlier { font-style: italic; white-space: normal; }
.c.bad { font-weight: 700; text-decoration: underline; }
.rfc { font-weight: normal; color: #455a64; font-size: 0.9em; margin-left: 0.6em; }
table.meta th { width: 12em; background: var(--soft); }
table.meta, table.verdicts, table.closetab { width: 100%; }
table.verdicts td.v { width: 12em; }
table.closetab th { width: 14em; }
.notice { border: 2px solid var(--fail); padding: 0.5em 0.8em; background: #fdecea; }
.diffbox { border-left: 6px solid var(--fail); background: #fdecea; padding: 0.5em 0.8em;
  margin: 0.5em 0; overflow-wrap: anywhere; }
.diffbox.same { border-left-color: var(--pass); background: #e8f5e9; }
.diffbox.unknown { border-left-color: var(--nonstrict); background: #fff8e1; }
.diffbox mark { background: #ffcc80; outline: 1px solid #e65100; }
.cols { display: flex; flex-wrap: wrap; gap: 1em; }
.cols > div { flex: 1 1 22em; min-width: 0; }
ol.events { list-style: none; padding: 0; margin: 0.3em 0; }
ol.events li { border: 1px solid var(--line); padding: 0.3em 0.5em; margin-bottom: 0.3em;
  overflow-wrap: anywhere; }
ol.events li.diff { border: 3px solid var(--fail); background: #fdecea; }
ol.events li.end { color: #5f6b76; font-style: italic; }
.evn { font-weight: 700; margin-right: 0.5em; }
.marker { display: block; color: var(--fail); font-weight: 700; font-style: normal; }
.ev-type { font-weight: 600; }
.len { color: #5f6b76; }
.txt { white-space: pre-wrap; }
.cut { color: #5f6b76; font-style: italic; }
td.mismatch { background: #fdecea; font-weight: 600; }
.flag { color: var(--fail); font-weight: 700; }
ol.steps code { overflow-wrap: anywhere; }
table.wirelog { width: 100%; table-layout: fixed; font-size: 0.9em; }
table.wirelog col.n { width: 3.5em; }
table.wirelog col.dir { width: 3.2em; }
table.wirelog col.t { width: 7.5em; }
table.wirelog col.hex { width: 42%; }
table.wirelog td { overflow-wrap: anywhere; }
table.wirelog td:nth-child(1), table.wirelog td:nth-child(3) { text-align: right;
  font-variant-numeric: tabular-nums; }
table.wirelog tr.tx td:nth-child(2) { color: #0b57d0; font-weight: 700; }
table.wirelog tr.rx td:nth-child(2) { color: #2e7d32; font-weight: 700; }
table.wirelog tr.note td { background: #fff8e1; }
table.wirelog tr.frame td { background: var(--soft); }
table.wirelog .gap { display: block; color: #e65100; font-weight: 700; }
table.wirelog .how { background: #ffe0b2; border: 1px solid #e65100; padding: 0 0.3em;
  margin-right: 0.4em; font-weight: 700; }
table.wirelog .odd { color: var(--fail); font-weight: 700; }
table.wirelog .op { font-weight: 700; }
table.findings { width: 100%; }
table.findings tbody th { width: 14em; background: var(--soft); font-weight: normal; }
table.findings td.num { width: 10em; text-align: right; white-space: nowrap; }
.elided { border-left: 6px solid var(--nonstrict); padding: 0.3em 0.8em; background: #fff8e1; }
@media print {
  body { font-size: 9pt; max-width: none; padding: 0; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .filter, .nav { display: none; }
  #matrix thead th { position: static; }
  thead { display: table-header-group; }
  tr, li { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  pre, td, .cols > div { overflow: visible; max-height: none; height: auto; }
  .cols { display: block; }
}
`;

/** A page's markup up to and including the opening body tag. */
function pageHead(title: string, bodyClass: string): string {
  return markup`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>${new Html(CSS)}</style>
</head>
<body class="${bodyClass}">
`.value;
}

const PAGE_TAIL = "</body>\n</html>\n";

function page(title: string, bodyClass: string, body: Html): string {
  return `${pageHead(title, bodyClass)}${body.value}\n${PAGE_TAIL}`;
}

function rfcLabel(rfc: unknown): Html {
  const s = str(rfc);
  return s ? markup`<span class="rfc">${rfcReference(s)}</span>` : markup``;
}

// ---------------------------------------------------------------------------
// The index

export interface IndexOptions {
  /** The case catalog: groups for headings and titles, cases for the requirements shown. */
  groups: readonly GroupSpec[];
  /** Page names; default planPages(index), the names writeHtmlReports() writes. */
  pages?: PagePlan;
  /** When each result was written (report.ts RUNS_FILE): results of earlier runs are marked. */
  runs?: RunTimes;
  title?: string;
}

interface Row {
  id: string;
  spec?: CaseSpec;
  entries: (IndexEntry | undefined)[];
}

interface Section {
  group?: GroupSpec;
  rows: Row[];
}

function entryOf(index: IndexJson, agent: string, id: string): IndexEntry | undefined {
  const cases = index[agent];
  const e = isObject(cases) ? cases[id] : undefined;
  return isObject(e) ? e as unknown as IndexEntry : undefined;
}

function agentsOf(index: IndexJson): string[] {
  return Object.keys(index).filter((a) => isObject(index[a]));
}

/** An element id from a case id: only characters that need no escaping anywhere. */
function elementId(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, "_");
}

function subgroupOf(id: string): string {
  return id.split(".").slice(0, 2).join(".");
}

/** The index rows (every case any agent has), in GROUPS order; ids of no group come last. */
function sections(index: IndexJson, agents: string[], groups: readonly GroupSpec[]): Section[] {
  const ids = new Set<string>();
  for (const agent of agents) for (const id of Object.keys(index[agent])) ids.add(id);
  const specs = new Map<string, CaseSpec>();
  for (const g of groups) for (const c of g.cases) specs.set(c.id, c);
  const byGroup = new Map<GroupSpec | undefined, Row[]>();
  for (const id of [...ids].sort(compareIds)) {
    const group = groups.find((g) => g.id === id.split(".")[0]);
    const row: Row = { id, spec: specs.get(id), entries: agents.map((a) => entryOf(index, a, id)) };
    byGroup.set(group, [...byGroup.get(group) ?? [], row]);
  }
  const out: Section[] = [];
  for (const g of groups) if (byGroup.has(g)) out.push({ group: g, rows: byGroup.get(g)! });
  if (byGroup.has(undefined)) out.push({ rows: byGroup.get(undefined)! });
  return out;
}

/** Counts per agent (in the agents' order) over some rows. */
function countRows(rows: Row[], agents: number): Counts[] {
  const counts = Array.from({ length: agents }, emptyCounts);
  for (const row of rows) {
    row.entries.forEach((e, i) => {
      counts[i].cases++;
      counts[i][cellStatus(e)]++;
    });
  }
  return counts;
}

/**
 * Counts per agent over every case any agent has a result for, as the index
 * shows them: a case without a result for an agent counts as missing for it.
 */
export function countResults(
  index: IndexJson,
  groups: readonly GroupSpec[],
): Record<string, Counts> {
  const agents = agentsOf(index);
  const rows = sections(index, agents, groups).flatMap((s) => s.rows);
  const counts = countRows(rows, agents.length);
  return Object.fromEntries(agents.map((a, i) => [a, counts[i]]));
}

function countsCell(c: Counts, id: string): Html {
  const item = (key: keyof Counts, label: string, strong = false) =>
    markup`<span id="${id}-${key}" class="${strong && c[key] > 0 ? `has-${key}` : ""}">${
      c[key]
    } ${label}</span> `;
  return markup`${item("pass", "ok")}${item("nonstrict", "non-strict")}${item("info", "info")}${
    c.unimpl > 0 ? item("unimpl", "unimplemented") : ""
  }${item("fail", "failed", true)}${item("missing", "missing", true)}`;
}

/** Filter classes of rows: all-ok (hidden by "not OK"), no-fail (hidden by "failed"). */
function rowClasses(rows: Row[]): string {
  const allOk = rows.every((r) => r.entries.every(isAllOk));
  const noFail = rows.every((r) =>
    r.entries.every((e) => {
      const s = cellStatus(e);
      return s !== "fail" && s !== "missing";
    })
  );
  return [allOk ? "all-ok" : "", noFail ? "no-fail" : ""].filter(Boolean).join(" ");
}

/**
 * When an earlier run than the agent's latest wrote each of its results: absent
 * for the latest run's, null when the time is not known.
 */
function earlierRuns(runs: RunTimes, agent: string, ids: string[]): Map<string, string | null> {
  const times = isObject(runs[agent]) ? runs[agent] : undefined;
  const out = new Map<string, string | null>();
  if (!times) return out;
  const latest = Object.values(times).filter((t) => typeof t === "string").sort().at(-1);
  for (const id of ids) {
    const t = typeof times[id] === "string" ? times[id] : undefined;
    if (t !== latest) out.set(id, t ?? null);
  }
  return out;
}

/** An ISO time as "2026-11-27 06:10 UTC". */
function runTimeText(iso: string | null): string {
  return iso === null ? "time unknown" : `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

function matrixCell(
  entry: IndexEntry | undefined,
  page: string | undefined,
  agent: string,
  earlier?: string | null,
): Html {
  const status = cellStatus(entry);
  if (!entry) {
    return markup`<td class="v v-missing"><span class="cell" title="no result for ${agent}">${STATUS_LABEL.missing}</span></td>`;
  }
  const close = String(entry.behaviorClose);
  const closeBad = close === "FAILED" || close === "WRONG CODE" || close === "UNCLEAN";
  const code = entry.remoteCloseCode === null || entry.remoteCloseCode === undefined
    ? "no code"
    : `code ${entry.remoteCloseCode}`;
  // A space between the verdicts lets a narrow column wrap them (the matrix fits 1280 px).
  const inner = markup`<span class="b">${entry.behavior}</span> <span class="c${
    closeBad ? " bad" : ""
  }">close: ${close}</span> <span class="m">${entry.duration} ms · ${code}</span>${
    earlier !== undefined
      ? markup`<span class="m earlier">from an earlier run (${runTimeText(earlier)})</span>`
      : ""
  }`;
  const title = `${STATUS_LABEL[status]}: ${entry.behavior} / ${close}${
    earlier !== undefined ? ", from an earlier run" : ""
  }`;
  return markup`<td class="v v-${status}${earlier !== undefined ? " earlier" : ""}">${
    page
      ? markup`<a href="${href(page)}" title="${title}">${inner}</a>`
      : markup`<span class="cell" title="${title}">${inner}</span>`
  }</td>`;
}

const LEGEND: [CellStatus, string, string][] = [
  ["pass", "OK", "Pass: the events are exactly the expected ones and the close is acceptable."],
  [
    "nonstrict",
    "NON-STRICT",
    "Non-strict: the events match the alternative the RFC tolerates, not the preferred one.",
  ],
  [
    "fail",
    "FAILED",
    "Fail: the events differ from every acceptable sequence (or the handshake never completed), " +
    "or the close verdict is FAILED, WRONG CODE or UNCLEAN.",
  ],
  ["info", "INFORMATIONAL", "Informational: the RFC leaves the outcome open; see the case page."],
  ["unimpl", "UNIMPLEMENTED", "Unimplemented: the server does not implement the feature."],
  ["missing", "missing", "Missing: no result for that agent."],
];

const CLOSE_LEGEND: [string, string][] = [
  ["OK", "closed by the expected endpoint, with an acceptable code, cleanly where required"],
  ["FAILED", "the wrong endpoint closed"],
  ["WRONG CODE", "the server's close code is not one the case allows"],
  ["UNCLEAN", "the RFC requires a clean close and it was not"],
  ["FAILED BY CLIENT", "the suite had to close TCP; the server should close it first (§7.1.1)"],
  ["INFORMATIONAL", "the RFC leaves the close open"],
];

/** The index page: legend, totals per agent, and the matrix of cases × agents. */
export function renderIndex(index: IndexJson, options: IndexOptions): string {
  const { groups } = options;
  const pages = options.pages ?? planPages(index);
  const agents = agentsOf(index);
  const secs = sections(index, agents, groups);
  const allRows = secs.flatMap((s) => s.rows);
  const totals = countRows(allRows, agents.length);
  const cols = agents.length + 1;
  const earlier = agents.map((a) =>
    earlierRuns(
      options.runs ?? {},
      a,
      allRows.filter((r) => entryOf(index, a, r.id)).map((r) => r.id),
    )
  );
  const earlierNote = earlier.some((e) => e.size > 0)
    ? markup`<p class="elided">Some results are from an earlier run than the agent's latest (a run
of some cases only, <code>--cases</code>, keeps the other results): ${
      agents.flatMap((a, i) =>
        earlier[i].size > 0
          ? [markup`${a}: ${earlier[i].size} of ${totals[i].cases - totals[i].missing}`]
          : []
      ).map((m, i) => markup`${i ? "; " : ""}${m}`)
    }. Their cells say “from an earlier run”.</p>`
    : "";

  const legend = markup`<ul class="legend">${
    LEGEND.map(([s, label, meaning]) =>
      markup`<li><span class="v v-${s}">${label}</span> ${meaning}</li>\n`
    )
  }</ul>
<p class="muted">Each cell shows the behaviour verdict, the close verdict, the duration and the
server's close code, and links to the case page. A cell is coloured as failed when the behaviour
is FAILED or the close is FAILED, WRONG CODE or UNCLEAN. Close verdicts: ${
    CLOSE_LEGEND.map(([v, meaning], i) => markup`${i ? "; " : ""}<strong>${v}</strong>: ${meaning}`)
  }.</p>`;

  const summary = markup`<table class="summary">
<thead><tr><th>Agent</th><th class="num">cases</th><th class="num">ok</th>
<th class="num">non-strict</th><th class="num">info</th><th class="num">unimplemented</th>
<th class="num">failed</th><th class="num">missing</th></tr></thead>
<tbody>
${
    agents.map((agent, i) => {
      const c = totals[i];
      const num = (key: keyof Counts) =>
        markup`<td class="num" id="total-a${i}-${key}">${c[key]}</td>`;
      return markup`<tr><th scope="row">${agent}</th>${num("cases")}${num("pass")}${
        num("nonstrict")
      }${num("info")}${num("unimpl")}${num("fail")}${num("missing")}</tr>\n`;
    })
  }</tbody>
</table>`;

  const body = secs.map((sec, gi) => {
    const g = sec.group;
    const counts = countRows(sec.rows, agents.length);
    const heading = g
      ? markup`${g.id} ${g.title}${rfcLabel(g.rfc)}`
      : "Other cases (no group in this version)";
    const groupCounts = counts.map((c, ai) =>
      markup`<td class="counts">${countsCell(c, `g${gi}-a${ai}`)}</td>`
    );
    const lines: Html[] = [
      markup`<tr class="group ${rowClasses(sec.rows)}" id="group-${
        g ? elementId(g.id) : "other"
      }"><th scope="rowgroup">${heading}</th>${groupCounts}</tr>\n`,
    ];
    let lastSub: string | undefined;
    for (const row of sec.rows) {
      const sub = subgroupOf(row.id);
      const subTitle = g?.subgroups?.[sub];
      if (subTitle !== undefined && sub !== lastSub) {
        const subRows = sec.rows.filter((r) => subgroupOf(r.id) === sub);
        lines.push(
          markup`<tr class="subgroup ${
            rowClasses(subRows)
          }"><th colspan="${cols}">${sub} ${subTitle}</th></tr>\n`,
        );
      }
      lastSub = sub;
      const title = row.spec
        ? markup`<span class="ctitle">${row.spec.title}</span>${rfcLabel(row.spec.rfc)}`
        : "";
      const cells = row.entries.map((e, ai) =>
        matrixCell(e, e && pages.get(agents[ai])?.get(row.id), agents[ai], earlier[ai].get(row.id))
      );
      lines.push(
        markup`<tr class="case ${rowClasses([row])}" id="case-${
          elementId(row.id)
        }"><th scope="row" class="case"><span class="cid">${row.id}</span>${title}</th>${cells}</tr>\n`,
      );
    }
    return markup`<tbody>\n${lines}</tbody>\n`;
  });

  const title = options.title ?? "wsconform report";
  return page(
    title,
    "index-page",
    markup`<h1>${title}</h1>
<p>${allRows.length} cases, ${agents.length} agent${agents.length === 1 ? "" : "s"}: RFC 6455
conformance verdicts with Autobahn|Testsuite's meanings.</p>
<h2>Legend</h2>
${legend}
<h2>Totals</h2>
${summary}
<h2>Results</h2>
${earlierNote}
<span class="filter">Show:</span>
<input class="filter" type="radio" name="show" id="show-all" checked><label class="filter" for="show-all">all cases</label>
<input class="filter" type="radio" name="show" id="show-notok"><label class="filter" for="show-notok">only cases not OK for some agent</label>
<input class="filter" type="radio" name="show" id="show-failed"><label class="filter" for="show-failed">only failed or missing</label>
<table id="matrix">
<thead><tr><th>Case</th>${
      agents.map((a) => markup`<th scope="col" class="agent">${a}</th>`)
    }</tr></thead>
${body}</table>
`,
  );
}

// ---------------------------------------------------------------------------
// Events and the first difference

function times(e: DescribedEvent): number {
  const t = Number(e.times ?? 1);
  return Number.isInteger(t) && t > 0 ? t : 1;
}

function payloadOf(e: DescribedEvent | undefined): DescribedPayload | undefined {
  const p = e && (e as { payload?: unknown }).payload;
  return isObject(p) ? p as unknown as DescribedPayload : undefined;
}

function payloadBytes(p: DescribedPayload | undefined): Uint8Array | undefined {
  if (!p) return undefined;
  if (typeof p.text === "string") return new TextEncoder().encode(p.text);
  if (typeof p.hex === "string" && /^(?:[0-9a-fA-F]{2})*$/.test(p.hex)) {
    return Uint8Array.fromHex(p.hex);
  }
  return undefined;
}

function samePayload(a: DescribedPayload | undefined, b: DescribedPayload | undefined): boolean {
  if (!a || !b) return a === b;
  return a.length === b.length && a.text === b.text && a.hex === b.hex &&
    !!a.truncated === !!b.truncated;
}

function sameEvent(a: DescribedEvent, b: DescribedEvent): boolean {
  if (a.type !== b.type) return false;
  if (a.type === "timeout") return a.tag === (b as typeof a).tag;
  if (a.type === "message" && !!a.binary !== !!(b as typeof a).binary) return false;
  return samePayload(payloadOf(a), payloadOf(b));
}

export interface EventDifference {
  /** 0-based position in the sequence with runs (`times`) expanded; pages say "event index+1". */
  index: number;
  /** The expected event there; undefined when the expected events ended. */
  expected?: DescribedEvent;
  /** The received event there; undefined when the received events ended. */
  received?: DescribedEvent;
  /** The entries of the described lists holding them; -1 past the end. */
  expectedEntry: number;
  receivedEntry: number;
  /** When both carry a payload of the same kind: the first byte offset where they differ. */
  byteOffset?: number;
}

/**
 * The first event where `received` departs from `expected` (runs of `times`
 * expanded); undefined when the described sequences are the same.
 */
export function firstDifference(
  expected: readonly DescribedEvent[],
  received: readonly DescribedEvent[],
): EventDifference | undefined {
  let ei = 0, ec = 0, ri = 0, rc = 0, n = 0;
  for (;;) {
    const e = expected[ei], r = received[ri];
    if (!e && !r) return undefined;
    if (!e || !r || !sameEvent(e, r)) {
      const diff: EventDifference = {
        index: n,
        expected: e,
        received: r,
        expectedEntry: e ? ei : -1,
        receivedEntry: r ? ri : -1,
      };
      if (e && r && e.type === r.type && e.type !== "timeout") {
        const a = payloadBytes(payloadOf(e)), b = payloadBytes(payloadOf(r));
        if (a && b) {
          let k = 0;
          while (k < a.length && k < b.length && a[k] === b[k]) k++;
          if (k < a.length || k < b.length) diff.byteOffset = k;
        }
      }
      return diff;
    }
    const step = Math.min(times(e) - ec, times(r) - rc);
    n += step;
    ec += step;
    rc += step;
    if (ec === times(e)) [ei, ec] = [ei + 1, 0];
    if (rc === times(r)) [ri, rc] = [ri + 1, 0];
  }
}

/** "1 byte", "2 bytes"; anything else as given. */
function bytesText(n: unknown): string {
  return `${n} byte${n === 1 ? "" : "s"}`;
}

function clip(s: string, max: number): string {
  return s.length > max ? s.slice(0, max) + "…" : s;
}

// Decodes the ASCII built here: UTF-8 is Deno's fastest path for it, three times latin1's.
const ascii = new TextDecoder();
const encoder = new TextEncoder();
let spacing = new Uint8Array(1024);

/** The first `limit` characters of "0a1b2c" as "0a 1b 2c" (any text is cut in pairs). */
function spacedHex(hex: string, limit = hex.length): string {
  // Every raw-bytes row of a wire log comes here: built as bytes, 5 times faster than a regex.
  const end = Math.min(hex.length, limit);
  const size = end + (end >> 1);
  if (spacing.length < size) spacing = new Uint8Array(size);
  let n = 0;
  for (let i = 0; i < end; i++) {
    const c = hex.charCodeAt(i), lower = c | 0x20;
    if (!((c >= 0x30 && c <= 0x39) || (lower >= 0x61 && lower <= 0x66))) {
      return hex.slice(0, end).replace(/(..)(?=.)/g, "$1 ");
    }
    if (i > 0 && i % 2 === 0) spacing[n++] = 0x20;
    spacing[n++] = c;
  }
  return ascii.decode(spacing.subarray(0, n));
}

function eventKind(e: DescribedEvent): string {
  return e.type === "message" ? `${e.binary ? "binary" : "text"} message` : String(e.type);
}

/** An event in one line of plain text (escaped where it is used). */
function eventText(e: DescribedEvent | undefined, max = 48): string {
  if (!e) return "nothing (no more events)";
  if (e.type === "timeout") return `timeout ${e.tag}`;
  const p = payloadOf(e);
  if (!p) return eventKind(e);
  const content = typeof p.text === "string"
    ? ` "${clip(p.text, max)}"`
    : typeof p.hex === "string"
    ? ` hex ${clip(p.hex, max)}`
    : "";
  return `${eventKind(e)} of ${bytesText(p.length)}${content}`;
}

function payloadHtml(p: DescribedPayload | undefined): Html {
  if (!p) return markup``;
  const shown = typeof p.text === "string"
    ? markup`<span class="txt">“${p.text}”</span>`
    : typeof p.hex === "string"
    ? markup`<span class="hex">${spacedHex(p.hex)}</span>`
    : markup``;
  const kept = payloadBytes(p)?.length;
  return markup`<span class="len">${bytesText(p.length)}</span> ${shown}${
    p.truncated
      ? markup` <span class="cut">(the report keeps the first ${kept ?? "?"} bytes)</span>`
      : ""
  }`;
}

function eventHtml(e: DescribedEvent): Html {
  if (e.type === "timeout") {
    return markup`<span class="ev-type">timeout</span> <span class="mono">${e.tag}</span>`;
  }
  return markup`<span class="ev-type">${eventKind(e)}</span> ${payloadHtml(payloadOf(e))}`;
}

/** An event list; `mark` is the entry holding the first difference (-1: past the end). */
function eventList(events: DescribedEvent[], mark?: { entry: number; index: number }): Html {
  const items: Html[] = [];
  const marker = mark
    ? markup`<span class="marker">◀ first difference (event ${mark.index + 1})</span>`
    : "";
  let n = 1;
  events.forEach((e, i) => {
    const t = times(e);
    const label = t > 1 ? `${n}–${n + t - 1} (×${t})` : `${n}`;
    const marked = mark?.entry === i;
    items.push(
      markup`<li class="${marked ? "diff" : ""}"><span class="evn">${label}</span>${eventHtml(e)}${
        marked ? marker : ""
      }</li>\n`,
    );
    n += t;
  });
  if (mark?.entry === -1) {
    items.push(
      markup`<li class="end diff"><span class="evn">${n}</span>nothing: the events end here${marker}</li>\n`,
    );
  } else if (events.length === 0) {
    items.push(markup`<li class="end">no events</li>\n`);
  }
  return markup`<ol class="events">\n${items}</ol>`;
}

/** Up to 16 bytes either side of an offset, the byte there marked. */
function excerpt(p: DescribedPayload | undefined, offset: number): Html {
  const bytes = payloadBytes(p);
  if (!bytes) return markup``;
  const from = Math.max(0, offset - 16), to = Math.min(bytes.length, offset + 17);
  const hex = (b: Uint8Array) => spacedHex(b.toHex());
  const at = bytes.subarray(offset, offset + 1);
  return markup`<code>${from > 0 ? "… " : ""}${hex(bytes.subarray(from, offset))} <mark>${
    at.length ? hex(at) : "(end)"
  }</mark> ${hex(bytes.subarray(offset + 1, to))}${to < bytes.length ? " …" : ""}</code>`;
}

function differenceBox(
  report: CaseReportJson,
  ok: DescribedEvent[],
  received: DescribedEvent[],
  diff: EventDifference | undefined,
): Html {
  if (diff) {
    let detail = markup``;
    if (diff.byteOffset !== undefined) {
      const ep = payloadOf(diff.expected), rp = payloadOf(diff.received);
      detail = markup`<br>The payloads first differ at byte offset ${diff.byteOffset} (expected ${
        bytesText(ep?.length)
      }, got ${rp?.length}):<br>expected ${excerpt(ep, diff.byteOffset)}<br>received ${
        excerpt(rp, diff.byteOffset)
      }`;
    }
    return markup`<p class="diffbox"><strong>First difference at event ${
      diff.index + 1
    }: expected ${eventText(diff.expected)}, got ${
      eventText(diff.received)
    }.</strong>${detail}</p>`;
  }
  if (report.matched === "okPrefix") {
    return markup`<p class="diffbox same">The peer failed the connection after ${
      received.reduce((n, e) => n + times(e), 0)
    } of
the expected events, as right as answering them all (see the result).</p>`;
  }
  if (report.behavior !== "FAILED" && report.behavior !== "NON-STRICT") {
    return markup`<p class="diffbox same">The events received are the expected (OK) ones.</p>`;
  }
  if ([...ok, ...received].some((e) => payloadOf(e)?.truncated)) {
    return markup`<p class="diffbox unknown">No difference within what the report keeps: payloads
are cut in the report (at 1 KiB, at 64 bytes in long lists; the verdict compared every byte), so
the events differ past that, or the verdict comes from the handshake or the close (see below).</p>`;
  }
  return markup`<p class="diffbox unknown">The events received are the expected (OK) ones: the
verdict comes from the opening handshake or the close (see below).</p>`;
}

// ---------------------------------------------------------------------------
// The close

function yesNo(x: unknown): string {
  return x === true ? "yes" : x === false ? "no" : "—";
}

function codeAndReason(code: unknown, reason: unknown): Html {
  if (code === undefined || code === null) return markup`<span class="muted">none</span>`;
  return markup`<span class="mono">${code}</span>${
    reason !== undefined && reason !== null && reason !== ""
      ? markup`, reason <span class="txt">“${reason}”</span>`
      : markup` <span class="muted">(no reason)</span>`
  }`;
}

function closeSection(report: CaseReportJson): Html {
  const exp: NonNullable<NonNullable<CaseReportJson["expected"]>["close"]> =
    isObject(report.expected) && isObject(report.expected.close) ? report.expected.close : {};
  const obs = isObject(report.close) ? report.close : {};
  const opened = obs.opened === true;
  const refusal = isObject(report.expected) && isObject(report.expected.handshake)
    ? report.expected.handshake
    : {};
  // Refused, or (no upgrade asked for) answered with anything but 101: no connection either way.
  const refuse = refusal.outcome === "refuse" || refusal.outcome === "not-websocket";
  const mayAccept = refusal.accepting === "may";
  const codes = Array.isArray(exp.codes) ? exp.codes : [];
  const expWho = refuse
    ? "— (the handshake must be refused: no WebSocket connection to close)"
    : exp.by === "suite"
    ? "the suite (it starts the closing handshake; the peer answers)"
    : exp.by === "peer"
    ? "the peer (it fails or closes the connection)"
    : String(exp.by ?? "—");
  const obsWho = !opened
    ? "— (the connection never opened)"
    : obs.closedBySuite === true
    ? `the suite${obs.failedBySuite === true ? " (failing the connection: the peer erred)" : ""}`
    : "the peer";
  const whoBad = opened && exp.by !== undefined &&
    (exp.by === "suite") !== (obs.closedBySuite === true);
  const code = obs.remoteCloseCode;
  const codeBad = opened && typeof code === "number" && !codes.includes(code);
  const cleanBad = opened && exp.clean === true && obs.wasClean !== true;
  const cell = (bad: boolean, content: unknown) =>
    markup`<td class="${bad ? "mismatch" : ""}">${content}${
      bad ? markup` <span class="flag">✗ not as expected</span>` : ""
    }</td>`;
  const timeouts = [
    obs.openHandshakeTimeout === true ? "opening handshake timeout" : "",
    obs.closeHandshakeTimeout === true
      ? "close handshake timeout (the peer did not answer the suite's close frame in time)"
      : "",
    obs.peerDropTimeout === true
      ? "peer drop timeout (the server did not close TCP in time after the closing handshake)"
      : "",
  ].filter(Boolean);
  return markup`<table class="closetab">
<thead><tr><th></th><th>Expected</th><th>Observed</th></tr></thead>
<tbody>
<tr><th>Opening handshake completed</th><td>${
    refusal.outcome === "not-websocket"
      ? markup`no: any answer but 101 <span class="muted">(no upgrade to WebSocket asked for)</span>`
      : refuse
      ? markup`no: refused with an HTTP error code, any 4xx${
        refusal.alsoRight?.length ? ` or ${refusal.alsoRight.join(" or ")}` : ""
      }${refusal.listsVersion13 === true ? ", listing version 13 in Sec-WebSocket-Version" : ""}${
        mayAccept ? "; or yes, status 101, if the server understands the version" : ""
      } <span class="muted">(a 5xx or 3xx: non-strict${
        mayAccept ? "; the 101: informational" : ""
      })</span>`
      : "yes, status 101"
  }</td>${cell(refuse ? opened && !mayAccept : !opened, yesNo(obs.opened))}</tr>
<tr><th>Who closes first</th><td>${expWho}${
    exp.wrongEndpointIsFatal === true
      ? markup`<br><span class="muted">the wrong endpoint closing fails the behaviour verdict too</span>`
      : ""
  }</td>${cell(whoBad, obsWho)}</tr>
<tr><th>Peer's close code</th><td>${
    refuse ? "—" : `${codes.length ? codes.join(" or ") : "any"}, or none`
  }</td>${cell(codeBad, codeAndReason(code, obs.remoteCloseReason))}</tr>
<tr><th>Suite's close code</th><td class="muted">—</td><td>${
    codeAndReason(obs.localCloseCode, obs.localCloseReason)
  }</td></tr>
<tr><th>Clean close</th><td>${
    refuse ? "—" : exp.clean === true ? "required" : "not required"
  }</td>${
    cell(
      cleanBad,
      markup`${yesNo(obs.wasClean)}${
        obs.notCleanReason !== undefined ? markup`: ${obs.notCleanReason}` : ""
      }`,
    )
  }</tr>
<tr><th>TCP closed first by</th><td class="muted">the server (§7.1.1)</td><td>${
    !opened ? "—" : obs.droppedBySuite === true ? "the suite" : "the peer"
  }</td></tr>
<tr><th>Timeouts fired</th><td class="muted">—</td><td>${
    timeouts.length ? timeouts.join("; ") : "none"
  }</td></tr>
</tbody>
</table>`;
}

// ---------------------------------------------------------------------------
// The wire log

/** Raw bytes shown per wire log entry; the full length is always shown. */
export const HEX_DISPLAY_LIMIT = 64;

const OPCODES: Record<number, string> = {
  0: "continuation",
  1: "text",
  2: "binary",
  8: "close",
  9: "ping",
  10: "pong",
};

function opcodeName(op: number): string {
  return OPCODES[op] ?? (op >= 3 && op <= 7 ? "reserved data" : "reserved control");
}

function minimalForm(length: number): number {
  return length < 126 ? 7 : length < 65536 ? 16 : 64;
}

/*
 * A wire log holds up to 4000 rows, most of a page's bytes, so its markup is
 * lean: cells are styled by column (CSS nth-child), not by class, and the
 * renderer's own symbols are character references. The rows then stay ASCII,
 * which matters: V8 encodes a one-byte string to UTF-8 several times faster
 * than a two-byte one, and a single "…" makes a whole chunk of rows two-byte.
 */

/** wirelog.ts ends a cut preview with " … (+N bytes)". */
const CUT_MARK = " … (+";

/** An ASCII string copied as a one-byte string (a slice of a two-byte string is two-byte). */
function oneByte(s: string): string {
  // deno-lint-ignore no-control-regex
  return /^[\x00-\x7f]*$/.test(s) ? ascii.decode(encoder.encode(s)) : s;
}

function previewCell(e: WireLogEntry): Html {
  const preview = String(e.preview ?? "");
  if (preview === "") return markup``;
  const at = preview.lastIndexOf(CUT_MARK);
  const cut = at >= 0 ? /^ … \(\+(\d+) bytes\)$/.exec(preview.slice(at)) : null;
  const shown = cut ? oneByte(preview.slice(0, at)) : preview;
  const more = cut ? markup` &hellip; (+${Number(cut[1])} bytes)` : "";
  return e.previewIsText === true
    ? markup`<br><span class="txt">&ldquo;${shown}${more}&rdquo;</span>`
    : markup`<br><code>${shown}${more}</code>`;
}

function bytesCell(e: WireLogEntry): Html {
  const hex = String(e.hex ?? "");
  const shown = Math.min(hex.length, HEX_DISPLAY_LIMIT * 2);
  const more = Number(e.length) > shown / 2;
  return markup`${e.how ? markup`<span class="how">${e.how}</span>` : ""}<code>${
    spacedHex(hex, shown)
  }${more ? markup` &hellip;` : ""}</code> <span class="len">(${
    more ? `${Math.floor(shown / 2)} of ` : ""
  }${bytesText(e.length)})</span>`;
}

function frameCell(e: WireLogEntry): Html {
  const op = Number(e.opcode), rsv = Number(e.rsv), length = Number(e.length);
  const form = Number(e.lengthForm);
  const odd = (bad: boolean, content: unknown) =>
    bad ? markup`<span class="odd">${content}</span>` : content;
  const maskOdd = (e.dir === "tx") !== (e.masked === true);
  const notMinimal = Number.isFinite(length) && form !== minimalForm(length);
  let closeInfo = markup``;
  if (op === 8 && e.previewIsText !== true) {
    const hex = /^[0-9a-f]*/.exec(String(e.preview ?? ""))![0];
    if (hex.length >= 4) {
      const payload = Uint8Array.fromHex(hex.slice(0, hex.length - (hex.length % 2)));
      const reason = new TextDecoder().decode(payload.subarray(2));
      closeInfo = markup` <span class="mono">code ${(payload[0] << 8) | payload[1]}${
        reason ? markup`, reason &ldquo;${reason}&rdquo;` : ""
      }</span>`;
    }
  }
  const opText = `${opcodeName(op)} (0x${Number.isInteger(op) ? op.toString(16) : "?"})`;
  const rsvText = `RSV=${Number.isInteger(rsv) ? rsv.toString(2).padStart(3, "0") : "?"}`;
  const maskText = e.masked === true ? `MASK=${e.maskKey ?? "?"}` : "unmasked";
  const formText = `(${e.lengthForm}-bit form${notMinimal ? ", not minimal" : ""})`;
  return markup`<span class="op">${odd(!(op in OPCODES), opText)}</span> FIN=${
    e.fin === true ? "1" : "0"
  } ${odd(rsv !== 0, rsvText)} ${odd(maskOdd, maskText)} len=${e.length} ${
    odd(notMinimal, formText)
  }${closeInfo}${previewCell(e)}`;
}

const WIRELOG_HEAD = `<table class="wirelog">
<colgroup><col class="n"><col class="dir"><col class="t"><col class="hex"><col class="frame"></colgroup>
<thead><tr><th>#</th><th>dir</th><th>t (ms)</th><th>raw bytes (hex)</th><th>frame</th></tr></thead>
<tbody>
`;
const WIRELOG_TAIL = "</tbody>\n</table>";

function wireLogRow(e: WireLogEntry, n: number, gap: number | undefined): Html {
  const t = Number(e.t);
  const kind = e.kind === "bytes" || e.kind === "frame" ? e.kind : "note";
  const dir = e.dir === "tx" || e.dir === "rx" ? e.dir : "";
  const head = markup`<tr class="${dir || "nodir"} ${kind}" id="w${n}"><td>${n}</td><td>${
    dir || markup`&mdash;`
  }</td><td>${Number.isFinite(t) ? t.toFixed(3) : String(e.t)}${
    gap !== undefined ? markup`<span class="gap">+${gap.toFixed(0)} ms</span>` : ""
  }</td>`;
  if (kind === "bytes") return markup`${head}<td>${bytesCell(e)}</td><td></td></tr>\n`;
  if (kind === "frame") return markup`${head}<td></td><td>${frameCell(e)}</td></tr>\n`;
  return markup`${head}<td colspan="2">${
    e.kind === "note" ? str(e.text) : JSON.stringify(e)
  }</td></tr>\n`;
}

/**
 * The rows of the wire log table, one per entry (notes included), in pieces
 * of about `chunk` characters: a writer streams them instead of holding a
 * page of 4000 rows.
 */
function* wireLogRows(entries: readonly WireLogEntry[], chunk = Infinity): Generator<string> {
  let last: number | undefined;
  let out = "";
  for (let i = 0; i < entries.length; i++) {
    const t = Number(entries[i].t);
    const gap = last !== undefined && Number.isFinite(t) && t - last >= 100 ? t - last : undefined;
    if (Number.isFinite(t)) last = t;
    out += wireLogRow(entries[i], i + 1, gap).value;
    if (out.length >= chunk) {
      yield out;
      out = "";
    }
  }
  if (out) yield out;
}

// ---------------------------------------------------------------------------
// A case page

export interface CasePageOptions {
  /** The agent as index.json names it; default the report's own `agent`. */
  agent?: string;
  /** The index page to link back to; default "index.html". */
  indexPage?: string;
  /** Neighbouring case pages of the same agent. */
  prev?: { page: string; id: string };
  next?: { page: string; id: string };
  /** Shown at the top, e.g. when the case's JSON file could not be read. */
  notice?: string;
  /** The groups' titles, from the case catalog. */
  groups: readonly GroupTitles[];
}

/** What a case page shows of its group: its title and the titles of its subgroups. */
export type GroupTitles = Pick<GroupSpec, "id" | "title" | "subgroups">;

/** The titles of the catalog's groups (cheap to send to the page worker: no cases). */
export function groupTitles(groups: readonly GroupSpec[]): GroupTitles[] {
  return groups.map(({ id, title, subgroups }) => ({ id, title, subgroups }));
}

function httpText(x: unknown): string | undefined {
  return typeof x === "string" ? x.replace(/\r\n/g, "\n").replace(/\n+$/, "") : undefined;
}

/** A case page: the markup up to the wire log's first row, the log's entries, the markup after. */
interface CasePageParts {
  head: string;
  wirelog: WireLogEntry[];
  tail: string;
}

function casePageParts(report: CaseReportJson, options: CasePageOptions): CasePageParts {
  const r: CaseReportJson = isObject(report) ? report : {};
  const { groups } = options;
  const id = str(r.id) ?? "?";
  const agent = options.agent ?? str(r.agent) ?? "?";
  const group = groups.find((g) => g.id === id.split(".")[0]);
  const sub = group?.subgroups?.[subgroupOf(id)];
  const expected = isObject(r.expected) ? r.expected : {};
  const ok = objects<DescribedEvent>(expected.ok);
  const nonStrict = expected.nonStrict ? objects<DescribedEvent>(expected.nonStrict) : undefined;
  const received = objects<DescribedEvent>(r.received);
  // A peer that failed the connection before answering everything did right (okPrefix).
  const diff = r.matched === "okPrefix" ? undefined : firstDifference(ok, received);
  const nsDiff = nonStrict ? firstDifference(nonStrict, received) : undefined;
  const wirelog = objects<WireLogEntry>(r.wirelog);
  const elided = isObject(r.wirelogElided) ? Object.entries(r.wirelogElided) : [];
  const elidedTotal = elided.reduce((s, [, n]) => s + (Number(n) || 0), 0);
  const steps = Array.isArray(r.steps) ? r.steps : [];

  const nav = markup`<nav class="nav"><a href="${
    href(options.indexPage ?? "index.html")
  }">↑ index</a>${
    options.prev ? markup` · <a href="${href(options.prev.page)}">← ${options.prev.id}</a>` : ""
  }${
    options.next ? markup` · <a href="${href(options.next.page)}">${options.next.id} →</a>` : ""
  }</nav>`;

  const meta = markup`<table class="meta"><tbody>
<tr><th>Agent</th><td>${agent}${
    r.agent !== undefined && str(r.agent) !== agent
      ? markup` <span class="flag">(the case file was written for agent “${r.agent}”)</span>`
      : ""
  }</td></tr>
${
    group
      ? markup`<tr><th>Group</th><td>${group.id} ${group.title}${
        sub ? ` / ${subgroupOf(id)} ${sub}` : ""
      }</td></tr>`
      : ""
  }
<tr><th>RFC section</th><td>${r.rfc ? rfcReference(r.rfc) : "—"}</td></tr>
<tr><th>Requirement</th><td>${r.requirement ?? "—"}</td></tr>
${r.deviation ? markup`<tr><th>Deviation from Autobahn</th><td>${r.deviation}</td></tr>` : ""}
<tr><th>Started</th><td>${r.started ?? "—"}</td></tr>
<tr><th>Duration</th><td>${r.duration ?? "—"} ms${r.reportTime ? " (a timed case)" : ""}</td></tr>
</tbody></table>`;

  const verdicts = markup`<table class="verdicts"><tbody>
<tr><th>Behaviour</th><td class="v ${behaviorClass(r.behavior)}">${r.behavior ?? "—"}</td><td>${
    r.result ?? ""
  }</td></tr>
<tr><th>Close</th><td class="v ${closeClass(r.behaviorClose)}">${r.behaviorClose ?? "—"}</td><td>${
    r.resultClose ?? ""
  }</td></tr>
</tbody></table>
<p>The case counts as ${
    failing(r.behavior, r.behaviorClose) ? markup`<strong>failed</strong>` : "not failed"
  } <span class="muted">(failed: behaviour FAILED, or close FAILED, WRONG CODE or UNCLEAN)</span>.</p>`;

  const mark = (d: EventDifference | undefined, entry: (d: EventDifference) => number) =>
    d ? { entry: entry(d), index: d.index } : undefined;
  const unsolicited = objects<DescribedEvent>(r.unsolicited);
  const events = markup`${differenceBox(r, ok, received, diff)}${
    nonStrict
      ? markup`<p class="muted">Against the NON-STRICT alternative: ${
        nsDiff
          ? `first difference at event ${nsDiff.index + 1}: expected ${
            eventText(nsDiff.expected)
          }, got ${eventText(nsDiff.received)}.`
          : "the events received match it."
      }</p>`
      : ""
  }
<div class="cols">
<div><h3>Expected (OK)</h3>${eventList(ok, mark(diff, (d) => d.expectedEntry))}</div>
${nonStrict ? markup`<div><h3>Expected (NON-STRICT)</h3>${eventList(nonStrict)}</div>` : ""}
<div><h3>Received</h3>${eventList(received, mark(diff, (d) => d.receivedEntry))}</div>
</div>${
    unsolicited.length > 0
      ? markup`
<h3>Messages the server sent unasked (--protocol-only: shown, not judged)</h3>
${eventList(unsolicited)}`
      : ""
  }`;

  const stepList = markup`<ol class="steps">${
    steps.map((s) => markup`<li><code>${clip(JSON.stringify(s) ?? String(s), 400)}</code></li>\n`)
  }</ol>`;

  const request = httpText(r.httpRequest), response = httpText(r.httpResponse);
  const http = markup`<h3>Request</h3>\n${
    request !== undefined
      ? markup`<pre class="http">${request}</pre>`
      : markup`<p class="muted">none sent</p>`
  }\n<h3>Response</h3>\n${
    response !== undefined
      ? markup`<pre class="http">${response}</pre>`
      : markup`<p class="muted">none received</p>`
  }`;

  const elidedNote = elidedTotal > 0
    ? markup`<p class="elided">The log keeps its first and its last entries: ${elidedTotal} in
between were counted and not kept (${
      elided.map(([k, n], i) => markup`${i ? ", " : ""}${k}: ${n}`)
    }); a note in the log marks where.</p>`
    : "";

  const findings = objects<Finding>(r.findings);
  const head = markup`${nav}
<h1>Case ${id}: ${r.title ?? ""}</h1>
${options.notice ? markup`<p class="notice">${options.notice}</p>` : ""}
${meta}
<h2 id="verdicts">Verdicts</h2>
${verdicts}
${
    findings.length > 0
      ? markup`<h2 id="measured">Measured</h2>\n${findingsTable(findings)}\n`
      : ""
  }<h2 id="events">Events</h2>
${events}
<h2 id="close">Close</h2>
${closeSection(r)}
<h2 id="checks">Checks on what the server sent</h2>
${checksSection(r)}
<h2 id="steps">Steps</h2>
${stepList}
<h2 id="handshake">Opening handshake</h2>
${http}
<h2 id="wire">Wire log</h2>
<p class="muted">${wirelog.length} entries. Times are milliseconds from the start of the case; a
gap of 100 ms or more since the previous entry is shown under the time. A write marked “chop” went
out in pieces, each flushed; “sync” marks a write flushed on its own. Raw bytes show the first
${HEX_DISPLAY_LIMIT} bytes of a read or write, frame payloads the first 256.</p>
${elidedNote}
`;
  return {
    head: `${pageHead(`wsconform ${id} — ${agent}`, "case-page")}${head.value}${WIRELOG_HEAD}`,
    wirelog,
    tail: `${WIRELOG_TAIL}\n${nav.value}\n\n${PAGE_TAIL}`,
  };
}

/** One agent's case: verdicts, events with the first difference, close, handshake, wire log. */
export function renderCasePage(report: CaseReportJson, options: CasePageOptions): string {
  const { head, wirelog, tail } = casePageParts(report, options);
  return `${head}${[...wireLogRows(wirelog)].join("")}${tail}`;
}

// ---------------------------------------------------------------------------
// Writing the pages

/*
 * The case files are read and the pages written with synchronous calls: a
 * run has hundreds of files and a thousand chunks to write, and an async
 * call's round trip through the thread pool costs more than the I/O itself
 * (with async calls, rendering two pages at a time to fill the waits, the
 * pass of the 301 Autobahn cases took about 15% longer).
 */

/** Characters of wire log rows encoded and written at a time. */
const ROWS_CHUNK = 1 << 16;

/** Where a page's text is encoded on its way to the file; reused by every write. */
const writeBuffer = new Uint8Array(1 << 18);

function writeText(file: Deno.FsFile, text: string): void {
  for (let rest = text; rest.length > 0;) {
    const { read, written } = encoder.encodeInto(rest, writeBuffer);
    for (let done = 0; done < written;) {
      done += file.writeSync(writeBuffer.subarray(done, written));
    }
    rest = rest.slice(read);
  }
}

/**
 * Writes renderCasePage()'s page to `path` without ever holding it whole:
 * the wire log rows (up to 4000, several MB) go out a chunk at a time.
 */
function writeCasePage(path: string, report: CaseReportJson, options: CasePageOptions): void {
  const { head, wirelog, tail } = casePageParts(report, options);
  using file = Deno.openSync(path, { write: true, create: true, truncate: true });
  writeText(file, head);
  for (const rows of wireLogRows(wirelog, ROWS_CHUNK)) writeText(file, rows);
  writeText(file, tail);
}

function readCaseJson(
  dir: string,
  reportfile: unknown,
): { report?: CaseReportJson; problem?: string } {
  const file = safeReportFile(reportfile);
  if (!file) return { problem: "index.json names no case report file for this result." };
  try {
    const parsed = JSON.parse(Deno.readTextFileSync(join(dir, file)));
    if (!isObject(parsed)) return { problem: `${file} does not hold a case report.` };
    return { report: parsed as CaseReportJson };
  } catch (e) {
    return { problem: `${file} could not be read: ${(e as Error).message}` };
  }
}

/** What a case page shows besides its report: its name, report file and neighbours. */
function pageSignature(
  page: string,
  reportfile: unknown,
  prev: CasePageOptions["prev"],
  next: CasePageOptions["next"],
): string {
  return JSON.stringify([page, reportfile, prev, next]);
}

/** The neighbouring pages of an agent's case `i`, in the order of `ids`. */
function neighboursIn(names: Map<string, string>, ids: string[], i: number) {
  const at = (j: number) =>
    j >= 0 && j < ids.length ? { page: names.get(ids[j])!, id: ids[j] } : undefined;
  return { prev: at(i - 1), next: at(i + 1) };
}

/** One case page for writeCasePageJob(): where it goes, what it shows, and its neighbours. */
export interface CasePageJob {
  dir: string;
  page: string;
  agent: string;
  reportfile: string;
  prev?: CasePageOptions["prev"];
  next?: CasePageOptions["next"];
  groups: readonly GroupTitles[];
}

/** Writes a case page from its report file; false when the file cannot be read. */
export function writeCasePageJob(job: CasePageJob): boolean {
  const { report } = readCaseJson(job.dir, job.reportfile);
  if (!report) return false;
  writeCasePage(join(job.dir, job.page), report, {
    agent: job.agent,
    prev: job.prev,
    next: job.next,
    groups: job.groups,
  });
  return true;
}

/** How long close() waits for the pages still being written before leaving them to the end. */
const PAGE_WORKER_GRACE_MS = 30_000;

/**
 * Case pages written while a run goes, in a Worker, as each case's report is
 * written: writeHtmlReports() at the end need not read every report back (a
 * run's reports hold up to 100 MB; reading them back and rendering them was a
 * second at the end of every run), and the rendering never delays the cases'
 * own I/O. The pages are named and linked as planned from index.json and the
 * cases about to run; writeHtmlReports() writes again any page whose name,
 * report or neighbours turned out otherwise (an interrupted run, say), and
 * any page the worker could not write.
 */
export class CasePages {
  /** Signatures of the pages written, by page name. */
  readonly #written = new Map<string, string>();
  /** Pages the worker is writing, by job number. */
  readonly #pending = new Map<number, { page: string; signature: string }>();
  #jobs = 0;
  #worker?: Worker;
  #workerFailed = false;
  #idle?: () => void;
  #plan: PagePlan = new Map();
  readonly #groups: readonly GroupTitles[];

  /** `groups`: the case catalog, for the pages' titles. */
  constructor(readonly dir: string, groups: readonly GroupSpec[]) {
    this.#groups = groupTitles(groups);
  }

  /** Plans the pages for a run of `ids` against `agent`; call it before the run. */
  async plan(agent: string, ids: readonly string[]): Promise<void> {
    this.#plan = planPages(await plannedReportFiles(this.dir, agent, ids));
  }

  /** Writes the page of a case whose report was just written (see plannedReportFiles()). */
  write(agent: string, id: string, reportfile: string): void {
    const names = this.#plan.get(agent);
    const page = names?.get(id);
    if (!names || !page) return;
    const ids = [...names.keys()];
    const { prev, next } = neighboursIn(names, ids, ids.indexOf(id));
    this.#written.delete(page);
    const worker = this.#worker ??= this.#startWorker();
    if (!worker) return;
    const job = ++this.#jobs;
    this.#pending.set(job, { page, signature: pageSignature(page, reportfile, prev, next) });
    const message: CasePageJob = {
      dir: this.dir,
      page,
      agent,
      reportfile,
      prev,
      next,
      groups: this.#groups,
    };
    worker.postMessage({ job, ...message });
  }

  /** The worker, or undefined once it cannot run: writeHtmlReports() then writes every page. */
  #startWorker(): Worker | undefined {
    if (this.#workerFailed) return undefined;
    const module = new URL("./case_page_worker.ts", import.meta.url);
    // A command line that lets the suite read only its reports cannot start it.
    if (
      module.protocol !== "file:" ||
      Deno.permissions.querySync({ name: "read", path: module }).state !== "granted"
    ) {
      this.#workerFailed = true;
      return undefined;
    }
    const worker = new Worker(module, { type: "module" });
    worker.onmessage = (e: MessageEvent<{ job: number; written: boolean }>) => {
      const done = this.#pending.get(e.data.job);
      this.#pending.delete(e.data.job);
      if (done && e.data.written) this.#written.set(done.page, done.signature);
      if (this.#pending.size === 0) this.#idle?.();
    };
    worker.onerror = (e) => {
      // The pages it did not write are written at the end, by writeHtmlReports().
      e.preventDefault();
      this.#workerFailed = true;
      this.#stopWorker();
    };
    return worker;
  }

  #stopWorker(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    this.#pending.clear();
    this.#idle?.();
  }

  /** Waits for the pages in the worker (bounded), then stops it. */
  async close(): Promise<void> {
    if (this.#pending.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
        timer = setTimeout(resolve, PAGE_WORKER_GRACE_MS);
      });
      clearTimeout(timer);
      this.#idle = undefined;
    }
    this.#stopWorker();
  }

  /** Whether the page with this signature is already written. */
  isWritten(page: string, signature: string): boolean {
    return this.#written.get(page) === signature;
  }
}

/**
 * Reads dir/index.json and the case reports it names (`groups`: the case catalog), writes dir/index.html
 * and one page per agent and case (the JSON file's name with .html), except
 * the pages `written` already holds as they are; returns the index page's path.
 */
export async function writeHtmlReports(
  dir: string,
  groups: readonly GroupSpec[],
  written?: CasePages,
): Promise<string> {
  const parsed = JSON.parse(await Deno.readTextFile(join(dir, "index.json")));
  if (!isObject(parsed)) throw new Error(`${join(dir, "index.json")} is not a report index`);
  const index: IndexJson = {};
  for (const [agent, cases] of Object.entries(parsed)) {
    if (isObject(cases)) index[agent] = cases as Record<string, IndexEntry>;
  }
  const pages = planPages(index);
  const specs = new Map(groups.flatMap((g) => g.cases.map((c) => [c.id, c] as const)));

  for (const agent of Object.keys(index)) {
    const names = pages.get(agent)!;
    const ids = [...names.keys()];
    ids.forEach((id, i) => {
      const entry = entryOf(index, agent, id);
      const { prev, next } = neighboursIn(names, ids, i);
      const page = names.get(id)!;
      if (written?.isWritten(page, pageSignature(page, entry?.reportfile, prev, next))) return;
      const { report, problem } = readCaseJson(dir, entry?.reportfile);
      const spec = specs.get(id);
      const shown: CaseReportJson = report ?? {
        id,
        title: spec?.title,
        rfc: spec?.rfc,
        requirement: spec?.requirement,
        agent,
        behavior: entry?.behavior,
        behaviorClose: entry?.behaviorClose,
        duration: entry?.duration,
      };
      writeCasePage(join(dir, page), shown, {
        agent,
        prev,
        next,
        notice: problem && `${problem} The verdicts shown are those of index.json.`,
        groups,
      });
    });
  }

  const indexPath = join(dir, "index.html");
  const runs = await readRunTimesIn(dir);
  await Deno.writeTextFile(indexPath, renderIndex(index, { groups, pages, runs }));
  return indexPath;
}
