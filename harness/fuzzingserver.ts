/**
 * Autobahn|Testsuite's fuzzingserver URL protocol, by which client drivers ask
 * for the case count, case info, a case run, a case's status and a report
 * update, each on its own WebSocket connection to a path. Pure: parses request
 * targets, numbers the cases, builds the text messages sent back. No I/O.
 *
 * The semantics follow Autobahn's FuzzingServerProtocol.onConnect and onOpen
 * (autobahntestsuite/fuzzing.py), with its error texts.
 */
import { compareIds } from "./case.ts";

/** The numbered cases: 1-based positions in Autobahn's order, as drivers loop over them. */
export type CaseNumbering = readonly string[];

/** A fuzzingserver request; `caseNumber` is 1-based and `caseId` its id ("1.1.1"). */
export type FuzzingRequest =
  | { kind: "getCaseCount" }
  | { kind: "getCaseInfo"; caseNumber: number; caseId: string }
  | { kind: "runCase"; caseNumber: number; caseId: string; agent: string }
  | { kind: "getCaseStatus"; caseNumber: number; caseId: string; agent: string }
  | { kind: "updateReports"; agent: string };

export type FuzzingParse = FuzzingRequest | { kind: "error"; reason: string };

/**
 * Case ids in Autobahn's order, which numbers them: sorted as tuples of
 * integers (1.2.10 after 1.2.9, 1.2 before 1.2.1), each id once. Cases that
 * `isAutobahn` says are the suite's own come after Autobahn's, in the same
 * order, so that a driver's case N is Autobahn's case N.
 */
export function autobahnCaseOrder(
  ids: Iterable<string>,
  isAutobahn: (id: string) => boolean = () => true,
): string[] {
  const unique = [...new Set(ids)];
  return [
    ...unique.filter(isAutobahn).sort(compareIds),
    ...unique.filter((id) => !isAutobahn(id)).sort(compareIds),
  ];
}

/** Python's int() on a query value, which Autobahn applies to `case`. */
const INTEGER = /^\s*[+-]?\d+\s*$/;

/**
 * Reads a request target (`/runCase?case=3&agent=ws`; an absolute http(s) or
 * ws(s) URI too) against the numbered cases. As in Autobahn: the query is
 * decoded as a form (`+` is a space), empty values count as absent, unknown
 * parameters are ignored, `case` wins over `casetuple`, and every parameter
 * given is checked whatever the endpoint. Autobahn's other paths (its direct
 * command mode, /stopServer) are errors here. Never throws.
 */
export function parseFuzzingTarget(target: string, cases: CaseNumbering): FuzzingParse {
  const error = (reason: string): FuzzingParse => ({ kind: "error", reason });
  let pathAndQuery = target.split("#")[0];
  if (!pathAndQuery.startsWith("/")) {
    const absolute = /^(?:https?|wss?):\/\/[^/?]*(.*)$/i.exec(pathAndQuery);
    if (!absolute) return error(`request target ${JSON.stringify(target)} is not a path`);
    pathAndQuery = absolute[1] || "/";
  }
  const queryAt = pathAndQuery.indexOf("?");
  const path = queryAt < 0 ? pathAndQuery : pathAndQuery.slice(0, queryAt);
  const query = new URLSearchParams(queryAt < 0 ? "" : pathAndQuery.slice(queryAt + 1));
  const values = (name: string) => query.getAll(name).filter((value) => value !== "");

  const agents = values("agent");
  if (agents.length > 1) return error("multiple agents specified");
  const agent: string | undefined = agents[0];

  let caseNumber: number | undefined;
  const tuples = values("casetuple");
  if (tuples.length > 1) return error("multiple test cases specified");
  if (tuples.length === 1) {
    const at = cases.indexOf(tuples[0].trim());
    if (at < 0) return error(`invalid test case tuple ${tuples[0]}`);
    caseNumber = at + 1;
  }
  const numbers = values("case");
  if (numbers.length > 1) return error("multiple test cases specified");
  if (numbers.length === 1) {
    if (!INTEGER.test(numbers[0])) return error(`invalid test case ID ${numbers[0]}`);
    caseNumber = Number(numbers[0]);
  }
  // Autobahn takes case=0 for no case at all; naming it is clearer to the driver's author.
  if (caseNumber !== undefined && !(caseNumber >= 1 && caseNumber <= cases.length)) {
    return error(`case ${caseNumber} not found`);
  }
  const selected = caseNumber === undefined
    ? undefined
    : { caseNumber, caseId: cases[caseNumber - 1] };

  switch (path) {
    case "/getCaseCount":
      return { kind: "getCaseCount" };
    case "/getCaseInfo":
      if (selected === undefined) return error("need case to get info");
      return { kind: "getCaseInfo", ...selected };
    case "/runCase":
      if (selected === undefined) return error("need case to run");
      if (agent === undefined) return error("need agent to run case");
      return { kind: "runCase", ...selected, agent };
    case "/getCaseStatus":
      if (selected === undefined) return error("need case to get status");
      if (agent === undefined) return error("need agent to get status");
      return { kind: "getCaseStatus", ...selected, agent };
    case "/updateReports":
      if (agent === undefined) return error("need agent to update reports for");
      return { kind: "updateReports", agent };
    default:
      return error(
        `unknown endpoint ${path}: expected /getCaseCount, /getCaseInfo, /runCase, ` +
          "/getCaseStatus or /updateReports",
      );
  }
}

/**
 * A string as Python's json.dumps writes it (ensure_ascii): JSON's escapes,
 * and every character outside printable ASCII as \uXXXX, lower-case hex.
 */
function pythonJsonString(text: string): string {
  return JSON.stringify(text).replace(
    /[^\x20-\x7e]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** /getCaseCount's message: the number of cases, as JSON. */
export function caseCountMessage(cases: CaseNumbering): string {
  return String(cases.length);
}

/** /getCaseInfo's message: `{"id": "1.1.1", "description": "..."}`, Python's separators. */
export function caseInfoMessage(caseId: string, description: string): string {
  return `{"id": ${pythonJsonString(caseId)}, "description": ${pythonJsonString(description)}}`;
}

/**
 * /getCaseStatus's message, sent once the case has a result for that agent:
 * `{"behavior": "OK"}` (Autobahn's behavior: OK, NON-STRICT, INFORMATIONAL,
 * UNIMPLEMENTED or FAILED).
 */
export function caseStatusMessage(behavior: string): string {
  return `{"behavior": ${pythonJsonString(behavior)}}`;
}
