import assert from "node:assert/strict";
import { AUTOBAHN_CASES, CLIENT_CASES, isAutobahnCase } from "../fixtures/mod.ts";
import { compareIds } from "../harness/case.ts";
import {
  autobahnCaseOrder,
  caseCountMessage,
  caseInfoMessage,
  caseStatusMessage,
  type FuzzingParse,
  parseFuzzingTarget,
} from "../harness/fuzzingserver.ts";

/** Autobahn's groups 1 and 2 as its fuzzingserver numbers them: 1.1.1-8, 1.2.1-8, 2.1-11. */
const GROUPS_1_2 = [
  ...[1, 2].flatMap((sub) => Array.from({ length: 8 }, (_, i) => `1.${sub}.${i + 1}`)),
  ...Array.from({ length: 11 }, (_, i) => `2.${i + 1}`),
];

Deno.test("autobahnCaseOrder: integer tuples, each id once", () => {
  assert.deepEqual(
    autobahnCaseOrder(["1.2.10", "10.1.1", "1.2.9", "9.1.1", "1.1.1", "1.2.9", "1.2", "0.1.1"]),
    ["0.1.1", "1.1.1", "1.2", "1.2.9", "1.2.10", "9.1.1", "10.1.1"],
  );
  // 2.10 and 2.11 come after 2.9, not after 2.1 as strings would sort them.
  const shuffled = [...GROUPS_1_2].sort().reverse();
  const ordered = autobahnCaseOrder(shuffled);
  assert.deepEqual(ordered, GROUPS_1_2);
  // Case 17 is 2.1 in Autobahn's numbering (the 16 cases of 1.x come first).
  assert.equal(ordered[17 - 1], "2.1");
  assert.equal(ordered.length, 27);
});

Deno.test("autobahnCaseOrder: the suite's own cases are numbered after Autobahn's", () => {
  const ids = CLIENT_CASES.map((c) => c.id);
  const numbered = autobahnCaseOrder(ids, isAutobahnCase);
  assert.ok(ids.some((id) => !isAutobahnCase(id)), "client mode has cases of its own");
  assert.deepEqual(numbered.slice(0, 517), AUTOBAHN_CASES.map((c) => c.id));
  assert.deepEqual(numbered.slice(517), ids.filter((id) => !isAutobahnCase(id)).sort(compareIds));
  assert.equal(autobahnCaseOrder(["8.1.6", "1.1.1", "0.8.1"], isAutobahnCase)[0], "1.1.1");
});

Deno.test("autobahnCaseOrder: the suite's 517 Autobahn cases, numbered as Autobahn numbers them", () => {
  const ids = AUTOBAHN_CASES.map((c) => c.id);
  const numbered = autobahnCaseOrder(ids);
  // The catalog is already in Autobahn's order.
  assert.deepEqual(numbered, ids);
  assert.equal(caseCountMessage(numbered), "517");
  // 1.x has 16 cases, 2.x 11, 3.x 7, 4.x 10, 5.x 20, 6.x 145, 7.x 37, 9.x 54, 10.x 1, 12.x 90,
  // 13.x 126 (Autobahn has no group 11: its 12.1.1 follows 10.1.1).
  const firsts = { 1: "1.1.1", 17: "2.1", 28: "3.1", 35: "4.1.1", 45: "5.1", 65: "6.1.1" };
  for (const [number, id] of Object.entries(firsts)) assert.equal(numbered[Number(number) - 1], id);
  assert.equal(numbered[210 - 1], "7.1.1");
  assert.equal(numbered[247 - 1], "9.1.1");
  assert.equal(numbered[301 - 1], "10.1.1");
  assert.equal(numbered[302 - 1], "12.1.1");
  assert.equal(numbered[392 - 1], "13.1.1");
  assert.equal(numbered[517 - 1], "13.7.18");
  assert.deepEqual(parseFuzzingTarget("/runCase?casetuple=9.1.1&agent=ws", numbered), {
    kind: "runCase",
    caseNumber: 247,
    caseId: "9.1.1",
    agent: "ws",
  });
});

Deno.test("parseFuzzingTarget: the five endpoints", () => {
  const cases = GROUPS_1_2;
  const parsed: [string, FuzzingParse][] = [
    ["/getCaseCount", { kind: "getCaseCount" }],
    ["/getCaseInfo?case=1", { kind: "getCaseInfo", caseNumber: 1, caseId: "1.1.1" }],
    ["/runCase?case=17&agent=ws", { kind: "runCase", caseNumber: 17, caseId: "2.1", agent: "ws" }],
    [
      "/runCase?casetuple=2.11&agent=websockets",
      { kind: "runCase", caseNumber: 27, caseId: "2.11", agent: "websockets" },
    ],
    [
      "/getCaseStatus?case=27&agent=ws",
      { kind: "getCaseStatus", caseNumber: 27, caseId: "2.11", agent: "ws" },
    ],
    ["/updateReports?agent=ws", { kind: "updateReports", agent: "ws" }],
  ];
  for (const [target, request] of parsed) {
    assert.deepEqual(parseFuzzingTarget(target, cases), request, target);
  }
});

Deno.test("parseFuzzingTarget: what drivers send, read as Autobahn reads it", () => {
  const cases = GROUPS_1_2;
  const agentOf = (target: string) => {
    const request = parseFuzzingTarget(target, cases);
    assert.equal(request.kind, "runCase", JSON.stringify(request));
    return (request as { agent: string }).agent;
  };
  // Form decoding: percent escapes and "+" for a space (Python's parse_qs).
  assert.equal(agentOf("/runCase?case=1&agent=AutobahnPython%2F0.6.0"), "AutobahnPython/0.6.0");
  assert.equal(agentOf("/runCase?case=1&agent=my+client"), "my client");
  assert.equal(agentOf("/runCase?agent=%E2%9C%93&case=1"), "✓");
  // Parameters in any order, unknown ones ignored, an empty value taken as absent.
  assert.equal(agentOf("/runCase?x=1&agent=&agent=ws&case=1"), "ws");
  assert.equal(agentOf("/runCase?case=1&agent=ws&shutdownOnComplete=true"), "ws");
  // An absolute URI as the request target, a fragment, whitespace around the case number.
  assert.equal(agentOf("ws://127.0.0.1:9001/runCase?case=1&agent=a"), "a");
  assert.equal(agentOf("http://127.0.0.1:9001/runCase?case=1&agent=b#x"), "b");
  assert.deepEqual(parseFuzzingTarget("/getCaseInfo?case=%202%20", cases), {
    kind: "getCaseInfo",
    caseNumber: 2,
    caseId: "1.1.2",
  });
  assert.deepEqual(parseFuzzingTarget("/getCaseInfo?case=+3", cases), {
    kind: "getCaseInfo",
    caseNumber: 3,
    caseId: "1.1.3",
  });
  assert.deepEqual(parseFuzzingTarget("/getCaseInfo?casetuple=%201.2.1%20", cases), {
    kind: "getCaseInfo",
    caseNumber: 9,
    caseId: "1.2.1",
  });
  // case wins over casetuple, as in Autobahn, which reads it last.
  assert.deepEqual(parseFuzzingTarget("/getCaseInfo?case=1&casetuple=2.1", cases), {
    kind: "getCaseInfo",
    caseNumber: 1,
    caseId: "1.1.1",
  });
  // getCaseCount ignores the agent.
  assert.deepEqual(parseFuzzingTarget("/getCaseCount?agent=ws", cases), { kind: "getCaseCount" });
});

Deno.test("parseFuzzingTarget: a wrong request is a one-line error, with Autobahn's text", () => {
  const cases = GROUPS_1_2;
  const errors: [string, string][] = [
    ["/runCase?case=1", "need agent to run case"],
    ["/runCase?agent=ws", "need case to run"],
    ["/runCase?case=28&agent=ws", "case 28 not found"],
    ["/runCase?case=0&agent=ws", "case 0 not found"],
    ["/runCase?case=-1&agent=ws", "case -1 not found"],
    ["/runCase?case=one&agent=ws", "invalid test case ID one"],
    ["/runCase?case=1.5&agent=ws", "invalid test case ID 1.5"],
    ["/runCase?casetuple=9.9.9&agent=ws", "invalid test case tuple 9.9.9"],
    ["/runCase?casetuple=1.1&agent=ws", "invalid test case tuple 1.1"],
    ["/runCase?case=1&case=2&agent=ws", "multiple test cases specified"],
    ["/runCase?casetuple=1.1.1&casetuple=1.1.2&agent=ws", "multiple test cases specified"],
    ["/runCase?case=1&agent=a&agent=b", "multiple agents specified"],
    ["/getCaseInfo", "need case to get info"],
    ["/getCaseInfo?agent=ws", "need case to get info"],
    ["/getCaseStatus?case=1", "need agent to get status"],
    ["/getCaseStatus?agent=ws", "need case to get status"],
    ["/updateReports", "need agent to update reports for"],
    ["/updateReports?agent=", "need agent to update reports for"],
    // Autobahn checks every parameter given, whatever the endpoint.
    ["/getCaseCount?case=99", "case 99 not found"],
    ["/updateReports?agent=ws&case=x", "invalid test case ID x"],
  ];
  for (const [target, reason] of errors) {
    assert.deepEqual(parseFuzzingTarget(target, cases), { kind: "error", reason }, target);
  }
  const endpoints =
    "expected /getCaseCount, /getCaseInfo, /runCase, /getCaseStatus or /updateReports";
  for (
    const [target, path] of [["/", "/"], ["/runcase?case=1&agent=ws", "/runcase"], [
      "/stopServer",
      "/stopServer",
    ], [
      "/getCaseCount/",
      "/getCaseCount/",
    ]]
  ) {
    assert.deepEqual(parseFuzzingTarget(target, cases), {
      kind: "error",
      reason: `unknown endpoint ${path}: ${endpoints}`,
    });
  }
  for (const target of ["", "runCase?case=1", "*", "ftp://a/runCase"]) {
    assert.deepEqual(parseFuzzingTarget(target, cases), {
      kind: "error",
      reason: `request target ${JSON.stringify(target)} is not a path`,
    });
  }
  // Without cases, every case number is out of range; the count still answers.
  assert.deepEqual(parseFuzzingTarget("/getCaseInfo?case=1", []), {
    kind: "error",
    reason: "case 1 not found",
  });
  assert.deepEqual(parseFuzzingTarget("/getCaseCount", []), { kind: "getCaseCount" });
});

Deno.test("the messages, as Python's json.dumps writes them", () => {
  assert.equal(caseCountMessage(GROUPS_1_2), "27");
  assert.equal(caseCountMessage([]), "0");
  assert.equal(
    caseInfoMessage("1.1.1", "Send text message with payload 0."),
    '{"id": "1.1.1", "description": "Send text message with payload 0."}',
  );
  // json.dumps escapes everything outside printable ASCII (ensure_ascii), lower-case hex.
  assert.equal(
    caseInfoMessage("6.5.1", 'κόσμε \x7f "q" \\ \n\t\x01 😀'),
    '{"id": "6.5.1", "description": "\\u03ba\\u03cc\\u03c3\\u03bc\\u03b5 \\u007f \\"q\\" \\\\ \\n\\t\\u0001 \\ud83d\\ude00"}',
  );
  assert.deepEqual(JSON.parse(caseInfoMessage("6.5.1", "κόσμε 😀")), {
    id: "6.5.1",
    description: "κόσμε 😀",
  });
  assert.equal(caseStatusMessage("OK"), '{"behavior": "OK"}');
  assert.equal(caseStatusMessage("NON-STRICT"), '{"behavior": "NON-STRICT"}');
});
