/**
 * stepTraits (harness/steps.ts): what each kind of step sends, waits for and
 * arms; and the folds over it: the runner's planning (caseBytes, estimate,
 * isPatient, sentTypes), the session's bound (caseBound) and the suite's echo
 * check (echoTypes). The catalog's values below are those the per-function
 * switches gave before the traits replaced them; the whole catalog was
 * compared then, these are spot values of every kind of step.
 *
 *   deno test --allow-all tests/steps_test.ts
 */
import assert from "node:assert/strict";
import { ALL_CASES, CLIENT_CASES } from "../fixtures/mod.ts";
import type { CaseSpec, Step } from "../harness/case.ts";
import { Opcode } from "../harness/frame.ts";
import { caseBytes, estimate, isPatient, sentTypes } from "../harness/runner.ts";
import { caseBound, type SessionOptions } from "../harness/session.ts";
import { type StepTraits, stepTraits } from "../harness/steps.ts";
import { echoTypes, needsEcho } from "../harness/suite.ts";

Deno.test("stepTraits: what every kind of step sends, waits for and arms", () => {
  const table: [Step, StepTraits][] = [
    [
      { kind: "frame", frame: { opcode: Opcode.Binary, payload: { repeat: "ab", length: 5 } } },
      { payloadBytes: 5, sentType: "binary" },
    ],
    // A continuation or a control frame sends data of no message type of its own.
    [
      { kind: "frame", frame: { opcode: Opcode.Continuation, payload: "abc" } },
      { payloadBytes: 3, sentType: undefined },
    ],
    [
      { kind: "frame", frame: { opcode: Opcode.Ping, payload: { hex: "0102" } } },
      { payloadBytes: 2, sentType: undefined },
    ],
    [{ kind: "message", message: { payload: "h\u00e9" } }, { payloadBytes: 3, sentType: "text" }],
    [
      { kind: "message", message: { binary: true, payload: { hex: "00" }, fragmentSize: 1 } },
      { payloadBytes: 1, sentType: "binary" },
    ],
    [{ kind: "close", close: { code: 1000, reason: "bye" } }, { payloadBytes: 0 }],
    [
      { kind: "frameStart", frameStart: { opcode: Opcode.Text, length: 21 } },
      { payloadBytes: 21, sentType: "text" },
    ],
    // Counted in its frameStart's length.
    [{ kind: "frameData", frameData: "abc" }, { payloadBytes: 0 }],
    [{ kind: "raw", raw: { hex: "8100" } }, { payloadBytes: 2 }],
    [
      {
        kind: "roundTrips",
        roundTrips: { count: 1000, frame: { opcode: Opcode.Binary, payload: "0123" } },
      },
      { payloadBytes: 4, sentType: "binary", echoType: "binary", roundTrips: 1000 },
    ],
    // One message of the series is in flight at a time.
    [
      {
        kind: "messageRoundTrips",
        messageRoundTrips: { data: "faust", binary: true, size: 1024, count: 256 },
      },
      { payloadBytes: 1024, sentType: "binary", echoType: "binary", roundTrips: 256 },
    ],
    [{ kind: "wait", wait: 0.5, tag: "later" }, { payloadBytes: 0, pause: 0.5 }],
    [
      { kind: "waitForEvents", waitForEvents: { events: 2, within: 120 } },
      { payloadBytes: 0, waitLimit: 120 },
    ],
    [{ kind: "closeAfter", closeAfter: 60 }, { payloadBytes: 0, timer: 60 }],
    [{ kind: "failAfter", failAfter: 3 }, { payloadBytes: 0, timer: 3 }],
  ];
  for (const [step, traits] of table) assert.deepEqual(stepTraits(step), traits, step.kind);
});

interface Folds {
  caseBytes: number;
  estimate: number;
  isPatient: boolean;
  sentTypes: string[];
  caseBound: number;
  echoTypes: string[];
}

/** Spot values, as the switches gave them: each kind of step, and each way of folding it. */
const PINNED: Record<string, Folds> = {
  // A ping: no data of a message type, nothing to echo.
  "2.1": {
    caseBytes: 0,
    estimate: 0,
    isPatient: false,
    sentTypes: [],
    caseBound: 5,
    echoTypes: [],
  },
  // frameStart and frameData, then a timed wait: not patient.
  "6.4.3": {
    caseBytes: 21,
    estimate: 2.00000042,
    isPatient: false,
    sentTypes: ["text"],
    caseBound: 7,
    echoTypes: [],
  },
  // A close, then a frame.
  "7.1.4": {
    caseBytes: 12,
    estimate: 2.4e-7,
    isPatient: false,
    sentTypes: ["text"],
    caseBound: 5,
    echoTypes: [],
  },
  // Raw bytes have no type of their own; the echo comes from the expectation.
  "8.2.6": {
    caseBytes: 65550,
    estimate: 0.26131099999999996,
    isPatient: false,
    sentTypes: [],
    caseBound: 14.26,
    echoTypes: ["binary"],
  },
  "9.1.6": {
    caseBytes: 16777216,
    estimate: 0.33554432,
    isPatient: true,
    sentTypes: ["text"],
    caseBound: 104,
    echoTypes: ["text"],
  },
  // Round trips: their frame counted once, their echo needed.
  "9.8.6": {
    caseBytes: 4096,
    estimate: 0.20008192000000002,
    isPatient: true,
    sentTypes: ["binary"],
    caseBound: 484,
    echoTypes: ["binary"],
  },
  // waitForEvents: its limit bounds the case and allows the peer 120 s.
  "11.6.1": {
    caseBytes: 134152192,
    estimate: 2.68304384,
    isPatient: true,
    sentTypes: ["text"],
    caseBound: 144,
    echoTypes: ["text"],
  },
  "11.7.1": {
    caseBytes: 0,
    estimate: 3,
    isPatient: false,
    sentTypes: [],
    caseBound: 8,
    echoTypes: [],
  },
};

/** The bound depends on the session's close timers: their defaults here (the URL is not used). */
const DEFAULT_TIMERS: SessionOptions = { url: new URL("ws://127.0.0.1:1/") };

function folds(spec: CaseSpec): Folds {
  return {
    caseBytes: caseBytes(spec),
    estimate: estimate(spec),
    isPatient: isPatient(spec),
    sentTypes: [...sentTypes(spec)],
    caseBound: caseBound(spec, DEFAULT_TIMERS),
    echoTypes: [...echoTypes(spec)],
  };
}

Deno.test("the folds over the traits give the catalog's values as the per-function switches did", () => {
  for (
    const [name, catalog] of [["ALL_CASES", ALL_CASES], ["CLIENT_CASES", CLIENT_CASES]] as const
  ) {
    const pinned = catalog.filter((spec) => spec.id in PINNED);
    assert.ok(pinned.length >= 2, `${name} holds pinned cases`);
    for (const spec of pinned) {
      assert.deepEqual(folds(spec), PINNED[spec.id], `${name} ${spec.id}`);
      assert.equal(needsEcho(spec), PINNED[spec.id].echoTypes.length > 0, `${name} ${spec.id}`);
    }
  }
  assert.equal(ALL_CASES.filter((spec) => spec.id in PINNED).length, Object.keys(PINNED).length);
  // The bound follows the session's close timers, and a case's own timeout wins.
  const rawCase = ALL_CASES.find((spec) => spec.id === "8.2.6")!;
  assert.equal(
    caseBound(rawCase, { ...DEFAULT_TIMERS, closeTimeoutMs: 3000, peerDropTimeoutMs: 500 }),
    15.76,
  );
  assert.equal(caseBound({ ...rawCase, timeout: 30 }, DEFAULT_TIMERS), 30);
});
