/**
 * Reports that say why, truthfully: the handshake outcome does not depend on
 * how the peer's bytes were segmented, the wire log keeps the closing
 * handshake of a long case, the suite sends no data after its own close, its
 * close reason reads as text, and report files are named safely.
 */

import assert from "node:assert/strict";
import { ALL_CASES, GROUPS } from "../fixtures/mod.ts";
import type { CaseSpec, Step } from "../harness/case.ts";
import { Opcode } from "../harness/frame.ts";
import { checkResponse, parseHead } from "../harness/handshake.ts";
import { writeHtmlReports } from "../harness/html.ts";
import {
  AGENT_NAME_LIMIT,
  caseReport,
  caseReportName,
  type IndexJson,
  RUNS_FILE,
  writeCaseReport,
  writeIndex,
} from "../harness/report.ts";
import { runAndJudgeCase } from "../harness/suite.ts";
import { LOG_HEAD_ENTRIES, LOG_TAIL_ENTRIES, type WireEntry, WireLog } from "../harness/wirelog.ts";
import { startHostilePeer } from "./hostile_peers.ts";
import { startStrictServer } from "./peers/strict_server.ts";
import { runCli } from "./support.ts";

function caseById(id: string): CaseSpec {
  const spec = ALL_CASES.find((c) => c.id === id);
  assert.ok(spec, `case ${id} exists`);
  return spec;
}

const txFrames = (entries: WireEntry[]) =>
  entries.flatMap((e) => (e.kind === "frame" && e.dir === "tx" ? [e] : []));

// ---------------------------------------------------------------------------
// The opening handshake's outcome

Deno.test("a 101, a close frame and FIN in one write: the case opens, then sees the close", async () => {
  // Regression: TCP's close settled the outcome ("closed during the handshake") while the
  // Sec-WebSocket-Accept check (async) was still pending, so the verdict followed segmentation.
  const peer = startHostilePeer("close-at-once");
  try {
    const spec = caseById("1.1.1");
    // Sequential runs and concurrent ones: the race depends on scheduling.
    const runs = [];
    for (let i = 0; i < 5; i++) runs.push(await runAndJudgeCase(spec, { url: new URL(peer.url) }));
    runs.push(
      ...await Promise.all(
        Array.from({ length: 15 }, () => runAndJudgeCase(spec, { url: new URL(peer.url) })),
      ),
    );
    const seen = runs.map((run) => ({
      opened: run.close.opened,
      remoteCloseCode: run.close.remoteCloseCode,
      closedBySuite: run.close.closedBySuite,
      problems: run.handshake.problems,
    }));
    const want = { opened: true, remoteCloseCode: 1000, closedBySuite: false, problems: [] };
    assert.deepEqual(seen, runs.map(() => want));
  } finally {
    await peer.close();
  }
});

// ---------------------------------------------------------------------------
// Round trips end with the suite's close (§5.5.1)

Deno.test("round trips stop when the suite closes: no data frame follows its close frame", async () => {
  // 9.7.1 with far more round trips than its close timer allows: the timer fires while an
  // echo is in flight, and that echo must not start another round trip.
  const spec = caseById("9.7.1");
  const steps = spec.steps.map((step): Step =>
    step.kind === "roundTrips"
      ? { ...step, roundTrips: { ...step.roundTrips, count: 1_000_000 } }
      : step.kind === "closeAfter"
      ? { ...step, closeAfter: 0.3 }
      : step
  );
  const server = startStrictServer();
  try {
    // The expectation grows with the count, so the events still match when the timer fires.
    const ok = spec.expect.ok.map((e) => ({ ...e, times: 1_000_000 }));
    const run = await runAndJudgeCase({ ...spec, steps, expect: { ...spec.expect, ok } }, {
      url: new URL(server.url),
    });
    assert.equal(run.close.closedBySuite, true);
    // The log's tail holds the close, however many round trips went before it.
    const tx = txFrames(run.wire.entries);
    const close = tx.findIndex((e) => e.opcode === Opcode.Close);
    assert.ok(close >= 0, "the suite's close frame is in the log");
    const after = tx.slice(close + 1).filter((e) => e.opcode < 8);
    assert.equal(after.length, 0, `${after.length} data frames after the suite's close frame`);
    assert.ok(Object.keys(run.wire.elided).length > 0, "the run was long enough to elide entries");
  } finally {
    await server.close();
  }
});

// ---------------------------------------------------------------------------
// The wire log: head and tail

Deno.test("the wire log keeps its first and last entries, and says how many it left out", () => {
  const log = new WireLog();
  const total = LOG_HEAD_ENTRIES + LOG_TAIL_ENTRIES + 500;
  for (let i = 0; i < total; i++) log.note(`entry ${i}`);
  const texts = log.entries.map((e) => (e.kind === "note" ? e.text : ""));
  assert.equal(texts.length, LOG_HEAD_ENTRIES + 1 + LOG_TAIL_ENTRIES);
  assert.equal(texts[0], "entry 0");
  assert.equal(texts[LOG_HEAD_ENTRIES - 1], `entry ${LOG_HEAD_ENTRIES - 1}`);
  assert.match(texts[LOG_HEAD_ENTRIES], /^500 entries not kept here \(note: 500\)/);
  assert.equal(texts[LOG_HEAD_ENTRIES + 1], `entry ${LOG_HEAD_ENTRIES + 500}`);
  assert.equal(texts.at(-1), `entry ${total - 1}`);
  assert.deepEqual(log.elided, { note: 500 });
});

Deno.test("a batch of frames longer than the log: the head and the batch's last frames are kept", () => {
  const log = new WireLog();
  for (let i = 0; i < LOG_HEAD_ENTRIES; i++) log.note("early");
  const batch = 3 * LOG_TAIL_ENTRIES;
  const kept = Array.from({ length: batch }, (_, i) => log.keeps(batch - i));
  assert.equal(kept.filter(Boolean).length, LOG_TAIL_ENTRIES);
  assert.equal(kept.at(-1), true);
  assert.equal(kept[0], false);
  const short = new WireLog();
  assert.equal(short.keeps(batch), true, "an entry that fits the head is always kept");
});

// ---------------------------------------------------------------------------
// The suite's own close reason

Deno.test("the suite's close reason is reported as text, or as hex when it is not UTF-8", async () => {
  const server = startStrictServer();
  try {
    const closing = (reason: Step): CaseSpec => ({
      ...caseById("7.1.1"),
      steps: [reason, { kind: "failAfter", failAfter: 2 }],
    });
    const text = await runAndJudgeCase(
      closing({ kind: "close", close: { code: 1000, reason: "bye: ünïcode" } }),
      {
        url: new URL(server.url),
      },
    );
    assert.equal(text.close.localCloseReason, "bye: ünïcode");
    const invalid = await runAndJudgeCase(
      closing({ kind: "close", close: { code: 1000, reason: { hex: "6361c328" } } }),
      {
        url: new URL(server.url),
      },
    );
    assert.equal(invalid.close.localCloseReason, "0x6361c328 (not valid UTF-8)");
  } finally {
    await server.close();
  }
});

Deno.test("a long list of different events keeps 64 bytes of each payload; a run of one event, its whole preview", async () => {
  const server = startStrictServer({ deflate: true });
  try {
    // 12.1.4: 256 different messages of 1 KiB; 9.7.4: 1000 round trips of one 256-byte message.
    for (const [id, bytes] of [["12.1.4", 64], ["9.7.4", 256]] as const) {
      const run = await runAndJudgeCase(caseById(id), { url: new URL(server.url) });
      assert.equal(run.verdict.behavior, "OK", `${id}: ${run.verdict.result}`);
      const report = caseReport(run, "agent");
      for (const events of [report.expected.ok, report.received]) {
        const previews = events.map((e) => {
          const payload = "payload" in e ? e.payload : undefined;
          return payload && "text" in payload ? payload.text.length : undefined;
        });
        assert.ok(previews.every((n) => n === bytes), `${id}: ${previews.slice(0, 3)}`);
      }
    }
  } finally {
    await server.close();
  }
});

// ---------------------------------------------------------------------------
// What the opening handshake's problems say

Deno.test("an extension accepted in answer to an offer that had to be declined says so", async () => {
  const key = "dGhlIHNhbXBsZSBub25jZQ==";
  const head = (extensions: string) => {
    const parsed = parseHead(
      new TextEncoder().encode(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
          `Sec-WebSocket-Extensions: ${extensions}\r\n\r\n`,
      ),
    );
    assert.equal(parsed.type, "head");
    return parsed.type === "head" ? parsed.head : undefined!;
  };
  const offer = "permessage-deflate; server_max_window_bits=7";
  assert.deepEqual(
    await checkResponse(head("permessage-deflate; server_max_window_bits=7"), key, [], [offer]),
    [
      "extension accepted (permessage-deflate; server_max_window_bits=7) where the offer " +
      "(permessage-deflate; server_max_window_bits=7) had to be declined",
    ],
  );
  assert.deepEqual(await checkResponse(head("x-foo"), key), [
    "extension accepted though none was offered: x-foo",
  ]);
});

// ---------------------------------------------------------------------------
// Report files: bounded names, no overwriting, results of earlier runs marked

async function oneRun(id: string) {
  const server = startStrictServer();
  try {
    return await runAndJudgeCase(caseById(id), { url: new URL(server.url) });
  } finally {
    await server.close();
  }
}

Deno.test("a 300-character agent name gives bounded report file names", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wsconform-report-" });
  try {
    const agent = "Server/" + "x".repeat(293);
    const run = await oneRun("1.1.1");
    const file = await writeCaseReport(dir, agent, run);
    assert.ok(file.length <= AGENT_NAME_LIMIT + "_case_1_1_1.json".length, file);
    const { path } = await writeIndex(dir, agent, [run]);
    const index = JSON.parse(await Deno.readTextFile(path)) as IndexJson;
    assert.equal(index[agent]["1.1.1"].reportfile, file);
    assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/${file}`)).agent, agent);
    // Another long name with the same first 64 characters gets its own files.
    assert.notEqual(caseReportName(agent + "y", "1.1.1"), file);
    await writeHtmlReports(dir, GROUPS);
    await Deno.stat(`${dir}/${file.replace(/\.json$/, ".html")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("two agents whose names reduce to the same file name do not overwrite each other", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wsconform-report-" });
  try {
    const run = await oneRun("1.1.1");
    const files: string[] = [];
    for (const agent of ["Foo/1.0", "foo 1.0"]) {
      files.push(await writeCaseReport(dir, agent, run));
      await writeIndex(dir, agent, [run]);
    }
    assert.equal(files[0], "foo_1_0_case_1_1_1.json", "the first keeps Autobahn's name");
    assert.notEqual(files[1], files[0]);
    const index = JSON.parse(await Deno.readTextFile(`${dir}/index.json`)) as IndexJson;
    assert.deepEqual(
      ["Foo/1.0", "foo 1.0"].map((a) => index[a]["1.1.1"].reportfile),
      files,
    );
    for (const [i, agent] of ["Foo/1.0", "foo 1.0"].entries()) {
      assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/${files[i]}`)).agent, agent);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a run of some cases marks the agent's other results as from an earlier run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wsconform-report-" });
  try {
    const agent = "Srv";
    const first = [await oneRun("1.1.1"), await oneRun("1.1.2")];
    for (const run of first) await writeCaseReport(dir, agent, run);
    assert.equal((await writeIndex(dir, agent, first)).earlier, 0);
    const again = await oneRun("1.1.2");
    await writeCaseReport(dir, agent, again);
    const written = await writeIndex(dir, agent, [again]);
    assert.equal(written.earlier, 1);
    // index.json keeps Autobahn's shape; the times are in a sidecar.
    const index = JSON.parse(await Deno.readTextFile(`${dir}/index.json`)) as IndexJson;
    assert.deepEqual(Object.keys(index[agent]), ["1.1.1", "1.1.2"]);
    assert.deepEqual(Object.keys(index[agent]["1.1.1"]).sort(), [
      "behavior",
      "behaviorClose",
      "duration",
      "remoteCloseCode",
      "reportfile",
    ]);
    const runs = JSON.parse(await Deno.readTextFile(`${dir}/${RUNS_FILE}`));
    assert.ok(runs[agent]["1.1.1"] < runs[agent]["1.1.2"]);

    const html = await Deno.readTextFile(await writeHtmlReports(dir, GROUPS));
    const row = (id: string) => new RegExp(`<tr [^>]*id="case-${id}".*?</tr>`).exec(html)![0];
    assert.match(
      row("1.1.1"),
      /class="v v-pass earlier".*from an earlier run \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)/,
    );
    assert.doesNotMatch(row("1.1.2"), /earlier/);
    assert.match(html, /Some results are from an earlier run.*Srv: 1 of 2/s);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the CLI names the verdict pair of its failure lines and counts results of earlier runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wsconform-report-cli-" });
  const server = startStrictServer({ flaws: ["no-pong"] });
  try {
    const first = await runCli([server.url, "--cases", "1.1.1,2.1", "--out", dir]);
    assert.equal(first.code, 1, first.stdout + first.stderr);
    assert.match(
      first.stdout,
      /\nfailed cases, with their verdicts \(behavior\/close\):\n {2}FAILED 2\.1 .*: FAILED\/OK\n/,
    );
    assert.doesNotMatch(first.stdout, /earlier run/);
    const again = await runCli([server.url, "--cases", "1.1.1", "--out", dir]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.doesNotMatch(again.stdout, /failed cases/);
    assert.match(
      again.stdout,
      /\nthe report also holds 1 result of this agent from an earlier run \(marked in index\.html\)\n/,
    );
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("frames after the 101 and before TCP's close are all processed before the close", async () => {
  // 3000 frames: more than the suite decodes in one turn, so their processing is spread over
  // several; TCP's close, read at once after them, must wait for all of them.
  const peer = startHostilePeer("close-at-once", { framesBeforeClose: 3000 });
  try {
    const spec: CaseSpec = {
      ...caseById("1.1.1"),
      steps: [{ kind: "failAfter", failAfter: 5 }],
      expect: { ...caseById("1.1.1").expect, ok: [{ message: "a", binary: false, times: 3000 }] },
    };
    const run = await runAndJudgeCase(spec, { url: new URL(peer.url) });
    assert.equal(run.close.opened, true);
    assert.equal(run.received.length, 3000);
    assert.equal(run.close.remoteCloseFrame, true);
    assert.equal(run.close.remoteCloseCode, 1000);
  } finally {
    await peer.close();
  }
});
