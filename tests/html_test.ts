/**
 * The HTML reports (harness/html.ts): nothing from a peer or a report reaches
 * the markup unescaped, the index shows every case of every agent with the
 * right counts and working links, and a failing case's page points at the
 * first difference and lists the wire log entry by entry.
 *
 *   deno test --allow-all tests/html_test.ts
 */
import assert from "node:assert/strict";
import { ALL_CASES, GROUPS } from "../fixtures/mod.ts";
import { encodeFrame, FrameParser } from "../harness/frame.ts";
import { acceptFor } from "../harness/handshake.ts";
import {
  CasePages,
  type CaseReportJson,
  countResults,
  type DescribedEvent,
  firstDifference,
  renderCasePage,
  renderIndex,
  writeHtmlReports,
} from "../harness/html.ts";
import {
  caseReportName,
  type IndexEntry,
  type IndexJson,
  writeCaseReport,
  writeIndex,
} from "../harness/report.ts";
import { runAndJudgeCases } from "../harness/suite.ts";
import { isFailing } from "../harness/verdict.ts";
import { startStrictServer } from "./peers/strict_server.ts";

const SCRIPT = "<script>alert(1)</script>";
const IMG = `"><img src=x onerror=alert(1)>`;
const QUOTE = `' onmouseover='alert(1)`;
const EVIL = SCRIPT + IMG;

// ---------------------------------------------------------------------------
// A parse-level check of the markup

/** Every tag the renderer writes. */
const TAGS = new Set([
  "html",
  "head",
  "meta",
  "title",
  "style",
  "body",
  "nav",
  "h1",
  "h2",
  "h3",
  "p",
  "div",
  "span",
  "strong",
  "mark",
  "code",
  "pre",
  "br",
  "a",
  "ul",
  "ol",
  "li",
  "table",
  "colgroup",
  "col",
  "thead",
  "tbody",
  "tr",
  "th",
  "td",
  "input",
  "label",
]);
const ATTRIBUTES = new Set([
  "lang",
  "charset",
  "name",
  "content",
  "class",
  "id",
  "href",
  "title",
  "colspan",
  "scope",
  "type",
  "checked",
  "for",
]);
const OPEN_TAG = /^<([a-z][a-z0-9]*)((?:\s+[a-z-]+(?:="[^"<>]*")?)*)\s*>/;
const CLOSE_TAG = /^<\/([a-z][a-z0-9]*)>/;

/**
 * Every `<` starts a whitelisted tag whose attributes are whitelisted and
 * quoted; links go to plain file names (encodeURIComponent's alphabet) or
 * fragments; no script, image or event handler anywhere in the markup.
 */
function assertSafeHtml(html: string, what: string): void {
  assert.ok(html.startsWith("<!DOCTYPE html>\n"), `${what}: doctype`);
  let at = html.indexOf("<", 1);
  let tags = 0;
  while (at !== -1) {
    const rest = html.slice(at, at + 2000);
    const close = CLOSE_TAG.exec(rest);
    const open = close ? undefined : OPEN_TAG.exec(rest);
    assert.ok(close || open, `${what}: stray "<" at ${at}: ${JSON.stringify(rest.slice(0, 80))}`);
    const name = (close ?? open)![1];
    assert.ok(TAGS.has(name), `${what}: tag <${name}> is not one of the renderer's`);
    if (open) {
      for (const m of open[2].matchAll(/\s+([a-z-]+)(?:="([^"]*)")?/g)) {
        const [, attr, value] = m;
        assert.ok(ATTRIBUTES.has(attr), `${what}: attribute ${attr}= on <${name}>`);
        if (attr === "href") {
          assert.match(value, /^(?:[A-Za-z0-9_.!~*()%-]|&#39;)+$/, `${what}: href ${value}`);
        }
      }
    }
    tags++;
    at = html.indexOf("<", at + 1);
  }
  assert.ok(tags > 10, `${what}: has markup`);
  assert.doesNotMatch(html, /<script|<img|<iframe|<svg|<object/i, what);
  // Outside the tags and their quoted values only text remains: an "onerror=" there is
  // escaped text, harmless.
  for (const tag of html.match(/<[^>]*>/g) ?? []) {
    const bare = tag.replace(/"[^"]*"/g, '""');
    assert.doesNotMatch(bare, /\son[a-z]+\s*=|javascript:/i, `${what}: ${tag}`);
  }
}

function hrefs(html: string): string[] {
  return [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
}

async function htmlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".html")) out.push(e.name);
  return out.sort();
}

// ---------------------------------------------------------------------------
// Hand-made reports

function entry(
  agent: string,
  id: string,
  behavior: string,
  behaviorClose: string,
  extra: Partial<IndexEntry> = {},
): IndexEntry {
  return {
    behavior,
    behaviorClose,
    duration: 12,
    remoteCloseCode: 1000,
    reportfile: caseReportName(agent, id),
    ...extra,
  } as IndexEntry;
}

const text = (s: string, times?: number): DescribedEvent => ({
  type: "message",
  binary: false,
  payload: { length: new TextEncoder().encode(s).length, text: s },
  ...(times ? { times } : {}),
});

/** A case report with hostile text in every field a peer or a report can fill. */
function hostileReport(agent: string, id: string): CaseReportJson {
  return {
    id,
    title: `title ${EVIL}`,
    rfc: `5.2 ${SCRIPT}`,
    requirement: `requirement ${IMG} ${QUOTE}`,
    deviation: `deviation ${EVIL}`,
    agent,
    started: SCRIPT,
    duration: 5,
    behavior: "FAILED",
    behaviorClose: `WRONG CODE ${SCRIPT}`,
    result: `result ${EVIL}`,
    resultClose: `resultClose ${EVIL}`,
    expected: {
      ok: [text("Hello"), { type: "pong", payload: { length: 4, hex: "3c3e2227" } }],
      nonStrict: [text(EVIL)],
      close: { by: "suite", codes: [1000], clean: true },
    },
    received: [
      text(EVIL),
      { type: "timeout", tag: SCRIPT },
      { type: IMG, payload: { length: 1, text: QUOTE } } as unknown as DescribedEvent,
    ],
    close: {
      opened: true,
      closedBySuite: true,
      wasClean: false,
      notCleanReason: `reason ${EVIL}`,
      remoteCloseCode: 1000,
      remoteCloseReason: EVIL,
      localCloseCode: 1000,
      localCloseReason: QUOTE,
      closeHandshakeTimeout: true,
    },
    steps: [
      { kind: "frame", frame: { opcode: 1, payload: EVIL } },
      { kind: "raw", raw: { hex: "3c736372697074" } },
    ],
    httpRequest: `GET / HTTP/1.1\r\nHost: ${EVIL}\r\n\r\n`,
    httpResponse: `HTTP/1.1 101 ${SCRIPT}\r\nServer: ${EVIL}\r\n\r\n`,
    wirelog: [
      { t: 1, dir: "tx", kind: "bytes", length: 7, hex: `3c${EVIL}`, how: "chop" },
      { t: 2, dir: "rx", kind: "bytes", length: 7, hex: "3c736372697074", how: IMG },
      {
        t: 3,
        dir: "rx",
        kind: "frame",
        fin: true,
        rsv: 0,
        opcode: 1,
        masked: false,
        length: "56",
        lengthForm: 7,
        preview: EVIL,
        previewIsText: true,
      },
      {
        t: 4,
        dir: IMG,
        kind: "frame",
        fin: SCRIPT,
        rsv: SCRIPT,
        opcode: SCRIPT,
        masked: true,
        maskKey: EVIL,
        length: EVIL,
        lengthForm: IMG,
        preview: EVIL,
        previewIsText: false,
      },
      {
        t: 5,
        dir: "rx",
        kind: "frame",
        fin: true,
        rsv: 0,
        opcode: 8,
        masked: false,
        length: "9",
        lengthForm: 7,
        preview: "03e83c7363726970743e",
        previewIsText: false,
      },
      { t: 6, kind: "note", text: `note ${EVIL}` },
      { t: SCRIPT, kind: IMG, text: EVIL },
    ],
    wirelogElided: { [SCRIPT]: 3, [IMG]: 2 },
    findings: [{ name: `name ${EVIL}`, text: `finding ${EVIL}`, value: IMG, unit: QUOTE }],
  };
}

Deno.test("a hand-made hostile report directory renders with everything escaped", async () => {
  const base = await Deno.makeTempDir({ prefix: "wsconform-html-xss-" });
  const dir = `${base}/report`;
  try {
    await Deno.mkdir(dir);
    const agents = [SCRIPT, IMG, QUOTE];
    const evilId = `1.1.1${IMG}`;
    const index: IndexJson = {};
    for (const agent of agents) {
      index[agent] = {
        "1.1.1": entry(agent, "1.1.1", "FAILED", "OK", { remoteCloseCode: SCRIPT as never }),
        "5.6": entry(agent, "5.6", SCRIPT, IMG, { duration: QUOTE as never }),
        // A report file outside the directory, and one that does not exist: never read.
        [evilId]: entry(agent, evilId, "OK", "OK", { reportfile: "../escape.json" }),
        "2.1": entry(agent, "2.1", "OK", "OK"), // its file is not written
      };
      for (const id of ["1.1.1", "5.6"]) {
        await Deno.writeTextFile(
          `${dir}/${caseReportName(agent, id)}`,
          JSON.stringify(hostileReport(agent, id)),
        );
      }
    }
    await Deno.writeTextFile(`${base}/escape.json`, JSON.stringify(hostileReport("x", "9.9")));
    await Deno.writeTextFile(`${dir}/index.json`, JSON.stringify(index));

    const indexPath = await writeHtmlReports(dir, GROUPS);
    assert.equal(indexPath, `${dir}/index.html`);
    // Nothing written outside the report directory.
    const outside = [];
    for await (const e of Deno.readDir(base)) outside.push(e.name);
    assert.deepEqual(outside.sort(), ["escape.json", "report"]);

    const pages = await htmlFiles(dir);
    assert.equal(pages.length, 1 + agents.length * 4, pages.join(" "));
    for (const name of pages) {
      const html = await Deno.readTextFile(`${dir}/${name}`);
      assertSafeHtml(html, name);
      for (const link of hrefs(html)) {
        await Deno.stat(`${dir}/${decodeURIComponent(link)}`); // throws when missing
      }
    }

    const indexHtml = await Deno.readTextFile(indexPath);
    // The hostile strings are shown, escaped, not dropped.
    for (const s of [SCRIPT, IMG, QUOTE, evilId]) {
      assert.ok(
        indexHtml.includes(
          s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
            .replace(/"/g, "&quot;").replace(/'/g, "&#39;"),
        ),
        `escaped ${s} in the index`,
      );
    }
    const page = await Deno.readTextFile(
      `${dir}/${caseReportName(SCRIPT, "1.1.1").replace(/\.json$/, ".html")}`,
    );
    const escaped =
      "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;";
    for (
      const label of [
        "title ",
        "result ",
        "resultClose ",
        "reason ",
        "Server: ",
        "Host: ",
        "deviation ",
        "note ",
        "name ",
        "finding ",
      ]
    ) {
      assert.ok(page.includes(label + escaped), `${label}… escaped on the case page`);
    }
    assert.match(page, /First difference at event 1: expected text message of 5 bytes/);
    // The unreadable report files give pages that say so, with index.json's verdicts.
    const stub = await Deno.readTextFile(
      `${dir}/${caseReportName(SCRIPT, "2.1").replace(/\.json$/, ".html")}`,
    );
    assert.match(stub, /class="notice">script_alert_1___script_case_2_1\.json could not be read/);
    assert.doesNotMatch(indexHtml, /escape\.html/);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// A raw-TCP peer whose Server header, close reason and echoes carry markup

interface EvilPeer {
  url: string;
  close(): Promise<void>;
}

/** Completes handshakes with Server: EVIL, answers every message with EVIL, every ping with a pong of SCRIPT, a close with 1000 and EVIL as the reason. */
function startEvilPeer(): EvilPeer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.TcpConn>();
  const handlers: Promise<void>[] = [];
  const encoder = new TextEncoder();
  const serve = async (conn: Deno.TcpConn) => {
    const buf = new Uint8Array(65536);
    let head = "";
    const parser = new FrameParser({ maxPayload: 1 << 24 });
    try {
      while (!head.includes("\r\n\r\n")) {
        const n = await conn.read(buf);
        if (n === null) return;
        head += new TextDecoder("latin1").decode(buf.subarray(0, n));
      }
      const key = /sec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? "";
      await conn.write(encoder.encode(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${await acceptFor(key)}\r\nServer: ${EVIL}\r\n\r\n`,
      ));
      const rest = head.slice(head.indexOf("\r\n\r\n") + 4);
      parser.push(Uint8Array.from(rest, (c) => c.charCodeAt(0)));
      for (;;) {
        for (let ev = parser.next(); ev; ev = parser.next()) {
          if (ev.type !== "frame") return;
          const op = ev.header.opcode;
          if (op === 9) {
            await conn.write(encodeFrame({ opcode: 10, payload: encoder.encode(SCRIPT) }));
          } else if (op === 8) {
            const reason = encoder.encode(EVIL);
            const payload = new Uint8Array(2 + reason.length);
            payload.set([0x03, 0xe8]);
            payload.set(reason, 2);
            await conn.write(encodeFrame({ opcode: 8, payload }));
            return;
          } else if (ev.header.fin && op <= 2) {
            await conn.write(encodeFrame({ opcode: 1, payload: encoder.encode(EVIL) }));
          }
        }
        const n = await conn.read(buf);
        if (n === null) return;
        parser.push(buf.slice(0, n));
      }
    } catch {
      /* the suite hung up */
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  };
  const accepting = (async () => {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      conns.add(conn);
      handlers.push(serve(conn));
    }
  })();
  return {
    url: `ws://127.0.0.1:${listener.addr.port}/`,
    async close() {
      listener.close();
      await accepting;
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed meanwhile */ }
      }
      await Promise.all(handlers);
    },
  };
}

Deno.test("a peer's Server header, close reason and echoes are escaped on real reports", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wsconform-html-peer-" });
  const peer = startEvilPeer();
  try {
    const cases = ALL_CASES.filter((c) => ["1.1.2", "2.2", "5.6", "7.1.1"].includes(c.id));
    let agent: string | undefined;
    const outcomes = await runAndJudgeCases(cases, {
      url: new URL(peer.url),
      jobs: 4,
      onCaseDone: async (run) => {
        // The CLI's default agent name is the Server header.
        agent = run.serverHeader;
        await writeCaseReport(dir, run.serverHeader!, run);
      },
    });
    assert.equal(agent, EVIL);
    await writeIndex(dir, agent!, outcomes);
    await writeHtmlReports(dir, GROUPS);
    const pages = await htmlFiles(dir);
    assert.equal(pages.length, 1 + cases.length);
    for (const name of pages) assertSafeHtml(await Deno.readTextFile(`${dir}/${name}`), name);

    const page = await Deno.readTextFile(
      `${dir}/${caseReportName(EVIL, "1.1.2").replace(/\.json$/, ".html")}`,
    );
    const escaped =
      "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;";
    assert.ok(page.includes(`Server: ${escaped}`), "the Server header, escaped");
    assert.ok(page.includes(`“${escaped}”`), "the echo and the close reason, escaped");
    assert.match(page, /First difference at event 1: expected text message of 125 bytes/);
    const index = await Deno.readTextFile(`${dir}/index.html`);
    assert.ok(index.includes(`<th scope="col" class="agent">${escaped}</th>`), "agent escaped");
  } finally {
    await peer.close();
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// The index

const A = "agent-a/1.0", B = "Agent B";
const TWO_AGENTS: IndexJson = {
  [A]: {
    "1.1.1": entry(A, "1.1.1", "OK", "OK"),
    "1.1.2": entry(A, "1.1.2", "FAILED", "OK"),
    "2.1": entry(A, "2.1", "NON-STRICT", "OK"),
    "7.1.6": entry(A, "7.1.6", "INFORMATIONAL", "INFORMATIONAL"),
    "7.3.6": entry(A, "7.3.6", "OK", "FAILED BY CLIENT", { remoteCloseCode: null }),
    "42.1": entry(A, "42.1", "UNIMPLEMENTED", "OK"),
  },
  [B]: {
    "1.1.1": entry(B, "1.1.1", "OK", "WRONG CODE", { remoteCloseCode: 1002 }),
    "2.1": entry(B, "2.1", "OK", "OK"),
    "7.1.6": entry(B, "7.1.6", "INFORMATIONAL", "INFORMATIONAL"),
    "7.3.6": entry(B, "7.3.6", "OK", "UNCLEAN"),
  },
};
const IDS = ["1.1.1", "1.1.2", "2.1", "7.1.6", "7.3.6", "42.1"];

function row(html: string, id: string): string {
  const m = new RegExp(`<tr class="case[^"]*" id="case-${id.replace(/\./g, "\\.")}">.*?</tr>`)
    .exec(html);
  assert.ok(m, `row ${id}`);
  return m[0];
}

Deno.test("renderIndex: one row per case, a column per agent, missing results, counts", () => {
  const html = renderIndex(TWO_AGENTS, { groups: GROUPS });
  assertSafeHtml(html, "index");
  assert.equal((html.match(/<table id="matrix">/g) ?? []).length, 1);
  assert.equal((html.match(/<table/g) ?? []).length, 2, "the matrix and the totals");
  assert.match(
    html,
    /<th scope="col" class="agent">agent-a\/1\.0<\/th><th scope="col" class="agent">Agent B<\/th>/,
  );
  for (const id of IDS) assert.ok(html.includes(`>${id}<`), `${id} is a row`);
  assert.equal((html.match(/<tr class="case/g) ?? []).length, IDS.length);

  // Missing: B has no 1.1.2 or 42.1.
  const missing = row(html, "1.1.2");
  assert.match(
    missing,
    /<td class="v v-missing"><span class="cell"[^>]*>missing<\/span><\/td><\/tr>$/,
  );
  assert.match(row(html, "42.1"), /v-unimpl.*v-missing/);
  // Cells: class by verdict, both verdicts as text, a link per result.
  assert.match(row(html, "1.1.1"), /class="v v-pass"><a href="agent_a_1_0_case_1_1_1\.html"/);
  assert.match(row(html, "1.1.1"), /class="v v-fail">.*close: WRONG CODE.*code 1002/);
  assert.match(row(html, "2.1"), /v-nonstrict.*NON-STRICT.*v-pass/);
  assert.match(row(html, "7.3.6"), /v-pass.*close: FAILED BY CLIENT.*no code.*v-fail.*UNCLEAN/);
  assert.match(row(html, "7.1.6"), /v-info.*v-info/);
  // Filter classes: only rows OK for every agent are hidden by "not OK".
  assert.match(row(html, "2.1"), /^<tr class="case no-fail"/);
  assert.match(row(html, "1.1.2"), /^<tr class="case "/);
  assert.match(html, /#show-notok:checked ~ #matrix tr\.all-ok \{ display: none; \}/);
  assert.match(html, /<input class="filter" type="radio" name="show" id="show-notok">/);

  // Group and sub-group headings with the RFC section, ids of no group last.
  assert.match(
    html,
    /<tr class="group[^"]*" id="group-1"><th scope="rowgroup">1 Framing<span class="rfc">RFC 6455 §5\.2, 5\.6<\/span>/,
  );
  assert.match(html, /<th colspan="3">1\.1 Text messages<\/th>/);
  assert.match(html, /<th colspan="3">7\.3 Size and layout of the close body<\/th>/);
  assert.ok(html.indexOf('id="group-other"') > html.indexOf('id="group-7"'));

  // Counts: failed = isFailing; missing where an agent has no result.
  const counts = countResults(TWO_AGENTS, GROUPS);
  assert.deepEqual(counts[A], {
    cases: 6,
    pass: 2,
    nonstrict: 1,
    info: 1,
    unimpl: 1,
    fail: 1,
    missing: 0,
  });
  assert.deepEqual(counts[B], {
    cases: 6,
    pass: 1,
    nonstrict: 0,
    info: 1,
    unimpl: 0,
    fail: 2,
    missing: 2,
  });
  for (const [i, agent] of [A, B].entries()) {
    for (const [key, n] of Object.entries(counts[agent])) {
      assert.ok(html.includes(`id="total-a${i}-${key}">${n}<`), `${agent} ${key} ${n}`);
    }
  }
  // Per group: group 1 (first section) for B holds one failed and one missing.
  assert.ok(html.includes(`<span id="g0-a1-fail" class="has-fail">1 failed</span>`));
  assert.ok(html.includes(`<span id="g0-a1-missing" class="has-missing">1 missing</span>`));
  assert.ok(html.includes(`<span id="g0-a0-pass" class="">1 ok</span>`));

  // The legend names every class.
  for (const s of ["v-pass", "v-nonstrict", "v-fail", "v-info", "v-unimpl", "v-missing"]) {
    assert.ok(html.includes(`<li><span class="v ${s}">`), s);
  }
});

Deno.test("the index links to pages that exist, and pages link back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wsconform-html-links-" });
  try {
    await Deno.writeTextFile(`${dir}/index.json`, JSON.stringify(TWO_AGENTS));
    for (const [agent, cases] of Object.entries(TWO_AGENTS)) {
      for (const [id, e] of Object.entries(cases)) {
        const report: CaseReportJson = {
          id,
          agent,
          behavior: e.behavior,
          behaviorClose: e.behaviorClose,
          expected: { ok: [], close: { by: "suite", codes: [1000], clean: true } },
          received: [],
          wirelog: [],
        };
        await Deno.writeTextFile(`${dir}/${e.reportfile}`, JSON.stringify(report));
      }
    }
    const indexPath = await writeHtmlReports(dir, GROUPS);
    const html = await Deno.readTextFile(indexPath);
    assert.equal(
      html,
      renderIndex(TWO_AGENTS, { groups: GROUPS }),
      "writeHtmlReports writes renderIndex's page",
    );
    const links = hrefs(html);
    assert.equal(links.length, 10, "one link per result");
    for (const link of links) {
      assert.match(link, /\.html$/);
      const page = await Deno.readTextFile(`${dir}/${decodeURIComponent(link)}`);
      assertSafeHtml(page, link);
      assert.ok(hrefs(page).includes("index.html"), `${link} links back`);
      for (const l of hrefs(page)) await Deno.stat(`${dir}/${decodeURIComponent(l)}`);
    }
    assert.deepEqual(
      (await htmlFiles(dir)).filter((f) => f !== "index.html"),
      links.map(decodeURIComponent).sort(),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// Case pages

Deno.test("firstDifference walks runs of identical events", () => {
  const a = text("a"), b = text("b"), x = text("X");
  assert.equal(firstDifference([a, text("b", 3)], [a, b, b, b]), undefined);
  assert.equal(firstDifference([], []), undefined);
  const d = firstDifference([a, text("b", 3), text("c")], [a, text("b", 2), x])!;
  assert.equal(d.index, 3);
  assert.deepEqual([d.expectedEntry, d.receivedEntry], [1, 2]);
  assert.equal(d.byteOffset, 0);
  const short = firstDifference([text("m", 1000)], [text("m", 999)])!;
  assert.equal(short.index, 999);
  assert.equal(short.received, undefined);
  assert.equal(short.receivedEntry, -1);
  const extra = firstDifference([], [{ type: "timeout", tag: "B" }])!;
  assert.equal(extra.index, 0);
  assert.equal(extra.expected, undefined);
  const cut = firstDifference([text("abcdef")], [text("abcxef")])!;
  assert.equal(cut.byteOffset, 3);
  const binary = firstDifference(
    [{ type: "message", binary: true, payload: { length: 2, hex: "0102" } }],
    [{ type: "message", binary: false, payload: { length: 2, hex: "0102" } }],
  )!;
  assert.equal(binary.index, 0);
});

Deno.test("a failing case's page shows the first difference and one wire log row per entry", () => {
  const report: CaseReportJson = {
    id: "9.7.1",
    title: "Round trips",
    rfc: "5.4",
    requirement: "Echo every message.",
    deviation: "Compares content.",
    agent: "x",
    behavior: "FAILED",
    behaviorClose: "OK",
    result: "The events observed differ from every expected sequence.",
    resultClose: "The connection was closed properly.",
    expected: {
      ok: [text("a"), text("b", 3), text("c")],
      close: { by: "suite", codes: [1000], clean: true },
    },
    received: [text("a"), text("b", 2), text("X")],
    close: {
      opened: true,
      closedBySuite: true,
      wasClean: true,
      remoteCloseCode: 1001,
      remoteCloseReason: "going",
      localCloseCode: 1000,
      peerDropTimeout: true,
    },
    httpRequest: "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    httpResponse: "HTTP/1.1 101 Switching Protocols\r\n\r\n",
    wirelog: [
      { t: 0.5, dir: "tx", kind: "bytes", length: 300, hex: "ab".repeat(256), how: "chop" },
      {
        t: 1,
        dir: "tx",
        kind: "frame",
        fin: false,
        rsv: 4,
        opcode: 1,
        masked: true,
        maskKey: "01020304",
        length: "300",
        lengthForm: 64,
        preview: "hi",
        previewIsText: true,
      },
      { t: 1.5, kind: "note", text: "wait 1 s (A)" },
      { t: 1002, dir: "rx", kind: "bytes", length: 4, hex: "880203e8", how: "sync" },
      {
        t: 1003,
        dir: "rx",
        kind: "frame",
        fin: true,
        rsv: 0,
        opcode: 8,
        masked: false,
        length: "2",
        lengthForm: 7,
        preview: "03e8",
        previewIsText: false,
      },
      { t: 1004, kind: "note", text: "the peer closed the TCP connection" },
    ],
    wirelogElided: { "tx frame": 5, "rx bytes": 1 },
  };
  const html = renderCasePage(report, {
    groups: GROUPS,
    agent: "x",
    prev: { page: "p.html", id: "9.6.6" },
  });
  assertSafeHtml(html, "case page");
  assert.match(
    html,
    /First difference at event 4: expected text message of 1 byte &quot;b&quot;, got text message of 1 byte &quot;X&quot;\./,
  );
  assert.match(html, /first differ at byte offset 0/);
  // The entries holding the difference are marked in both lists.
  const lists = [...html.matchAll(/<ol class="events">(.*?)<\/ol>/gs)].map((m) => m[1]);
  assert.equal(lists.length, 2);
  assert.match(
    lists[0],
    /<li class="diff"><span class="evn">2–4 \(×3\)<\/span>.*first difference \(event 4\)/,
  );
  assert.match(lists[1], /<li class="diff"><span class="evn">4<\/span>.*“X”.*first difference/);
  assert.equal((lists[0].match(/class="diff"/g) ?? []).length, 1);
  // The case, the verdicts and the close.
  for (
    const s of [
      "Case 9.7.1: Round trips",
      "§5.4",
      "Echo every message.",
      "Deviation from Autobahn",
      `<td class="v v-fail">FAILED</td>`,
      `<td class="v v-pass">OK</td>`,
      "<strong>failed</strong>",
      "peer drop timeout",
      `reason <span class="txt">“going”</span>`,
      `<pre class="http">GET / HTTP/1.1\nHost: h</pre>`,
      `<a href="index.html">`,
      `<a href="p.html">← 9.6.6</a>`,
    ]
  ) {
    assert.ok(html.includes(s), s);
  }
  assert.match(html, /<td class="mismatch"><span class="mono">1001<\/span>.*not as expected/);

  // The wire log: one numbered row per entry, notes included.
  const table = /<table class="wirelog">.*?<tbody>(.*?)<\/tbody>/s.exec(html)![1];
  const rows = table.match(/<tr [^>]*>.*?<\/tr>/g)!;
  assert.equal(rows.length, report.wirelog!.length);
  rows.forEach((r, i) => assert.match(r, new RegExp(`^<tr [^>]*id="w${i + 1}"><td>${i + 1}</td>`)));
  assert.match(rows[0], /class="tx bytes".*<span class="how">chop<\/span>.*\(64 of 300 bytes\)/);
  assert.equal((rows[0].match(/ab/g) ?? []).length, 64, "hex cut at 64 bytes");
  assert.match(rows[1], /text \(0x1\).*FIN=0 <span class="odd">RSV=100<\/span> MASK=01020304/);
  assert.match(
    rows[1],
    /len=300 <span class="odd">\(64-bit form, not minimal\)<\/span>.*&ldquo;hi/,
  );
  assert.match(rows[2], /class="nodir note".*<td>&mdash;<\/td>.*wait 1 s \(A\)/);
  assert.match(rows[3], /<td>rx<\/td><td>1002\.000<span class="gap">\+1001 ms<\/span>.*sync/);
  assert.match(rows[4], /close \(0x8\).*unmasked len=2 \(7-bit form\).*code 1000/);
  assert.match(
    html,
    /<p class="elided">.*its last entries: 6 in\s+between were counted.*tx frame: 5, rx bytes: 1/s,
  );
});

Deno.test("a case's findings are shown under Measured, after the verdicts, escaped", () => {
  const report: CaseReportJson = {
    id: "11.5.1",
    title: "TCP close",
    behavior: "OK",
    behaviorClose: "OK",
    findings: [
      {
        name: "tcpCloseDelay",
        text: "The server closed TCP 3 ms after the closing handshake.",
        value: 3,
        unit: "ms",
      },
      { name: "peerIdleClose", text: `never ${SCRIPT}`, value: null, unit: "ms" },
      { name: "limit", text: "It took 64 MiB.", value: "64 MiB" },
    ],
  };
  const html = renderCasePage(report, { groups: GROUPS });
  assertSafeHtml(html, "case page with findings");
  const at = html.indexOf(`<h2 id="measured">Measured</h2>`);
  assert.ok(at > html.indexOf(`<h2 id="verdicts">`) && at < html.indexOf(`<h2 id="events">`));
  const rows = /<table class="findings">.*?<tbody>(.*?)<\/tbody>/s.exec(html)![1]
    .match(/<tr>.*?<\/tr>/g)!;
  assert.deepEqual(rows, [
    `<tr><th scope="row">tcpCloseDelay</th><td class="num">3 ms</td><td>The server closed TCP 3 ms after the closing handshake.</td></tr>`,
    `<tr><th scope="row">peerIdleClose</th><td class="num">—</td><td>never &lt;script&gt;alert(1)&lt;/script&gt;</td></tr>`,
    `<tr><th scope="row">limit</th><td class="num">64 MiB</td><td>It took 64 MiB.</td></tr>`,
  ]);
  // No findings, or none measured: no section.
  for (const findings of [undefined, []]) {
    assert.doesNotMatch(
      renderCasePage({ ...report, findings }, { groups: GROUPS }),
      /Measured|class="findings"/,
    );
  }
});

Deno.test("a 4000-entry wire log is written in chunks, the same page renderCasePage makes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wsconform-html-stream-" });
  try {
    const agent = "big";
    const wirelog: NonNullable<CaseReportJson["wirelog"]> = [];
    for (let i = 0; i < 1000; i++) {
      // Every 250th round trip waits 150 ms: gaps fall anywhere, chunk boundaries included.
      const t = i * 2 + Math.floor(i / 250) * 150;
      wirelog.push(
        { t, dir: "tx", kind: "bytes", length: 4104, hex: "82fe1000".padEnd(512, "ab") },
        {
          t: t + 0.5,
          dir: "tx",
          kind: "frame",
          fin: true,
          rsv: 0,
          opcode: 2,
          masked: true,
          maskKey: "01020304",
          length: "4096",
          lengthForm: 16,
          preview: "fe".repeat(256) + " … (+3840 bytes)",
          previewIsText: false,
        },
        { t: t + 1, dir: "rx", kind: "bytes", length: 4100, hex: "827e1000".padEnd(512, "fe") },
        {
          t: t + 1.5,
          dir: "rx",
          kind: "frame",
          fin: true,
          rsv: 0,
          opcode: 1,
          masked: false,
          length: "300",
          lengthForm: 16,
          preview: "x".repeat(256) + " … (+44 bytes)",
          previewIsText: true,
        },
      );
    }
    const report: CaseReportJson = {
      id: "9.8.6",
      agent,
      behavior: "OK",
      behaviorClose: "OK",
      wirelog,
    };
    const index: IndexJson = { [agent]: { "9.8.6": entry(agent, "9.8.6", "OK", "OK") } };
    await Deno.writeTextFile(`${dir}/index.json`, JSON.stringify(index));
    await Deno.writeTextFile(`${dir}/${caseReportName(agent, "9.8.6")}`, JSON.stringify(report));
    await writeHtmlReports(dir, GROUPS);
    const written = await Deno.readTextFile(`${dir}/big_case_9_8_6.html`);
    assert.ok(written.length > 4 * (1 << 16), "more than a few chunks");
    assert.equal(written, renderCasePage(report, { groups: GROUPS, agent }));

    const table = /<table class="wirelog">.*?<tbody>(.*?)<\/tbody>/s.exec(written)![1];
    const rows = table.match(/<tr [^>]*>.*?<\/tr>/g)!;
    assert.equal(rows.length, 4000);
    rows.forEach((r, i) =>
      assert.match(r, new RegExp(`^<tr [^>]*id="w${i + 1}"><td>${i + 1}</td>`))
    );
    assert.equal(table.match(/class="gap"/g)?.length, 3);
    assert.match(rows[1000], /<td>650\.000<span class="gap">\+151 ms<\/span><\/td>/);
    // The cut mark of a preview is kept, as a character reference like every symbol of the log:
    // ASCII rows encode to UTF-8 several times faster.
    assert.match(rows[1], /<br><code>(?:fe){256} &hellip; \(\+3840 bytes\)<\/code><\/td><\/tr>$/);
    assert.match(rows[3], /&ldquo;x{256} &hellip; \(\+44 bytes\)&rdquo;/);
    assert.doesNotMatch(table, /[^\t\n\x20-\x7e]/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("wire log text that is not ASCII is shown as it is", () => {
  const html = renderCasePage({
    wirelog: [
      { t: 1, kind: "note", text: "κόσμε" },
      {
        t: 2,
        dir: "rx",
        kind: "frame",
        fin: true,
        rsv: 0,
        opcode: 1,
        masked: false,
        length: "300",
        lengthForm: 16,
        preview: "κόσμε".repeat(30) + " … (+10 bytes)",
        previewIsText: true,
      },
    ],
  }, { groups: GROUPS });
  assertSafeHtml(html, "non-ASCII wire log");
  assert.match(html, /<td colspan="2">κόσμε<\/td>/);
  assert.ok(html.includes(`&ldquo;${"κόσμε".repeat(30)} &hellip; (+10 bytes)&rdquo;`));
});

Deno.test("real reports: the strict server with flaws and without, rendered", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wsconform-html-real-" });
  const flawed = startStrictServer({ flaws: ["no-pong", "truncate-long-echo"] });
  const strict = startStrictServer();
  try {
    const cases = ALL_CASES.filter((c) =>
      c.id.startsWith("1.") || ["5.6", "6.4.3", "11.5.1"].includes(c.id)
    );
    const runs: [string, string, typeof cases][] = [
      ["flawed", flawed.url, cases],
      ["strict", strict.url, cases.filter((c) => c.id.startsWith("1.1."))],
    ];
    const wirelogLength = new Map<string, number>();
    for (const [agent, url, list] of runs) {
      const outcomes = await runAndJudgeCases(list, {
        url: new URL(url),
        jobs: 16,
        onCaseDone: async (run) => {
          wirelogLength.set(`${agent} ${run.spec.id}`, run.wire.entries.length);
          await writeCaseReport(dir, agent, run);
        },
      });
      await writeIndex(dir, agent, outcomes);
    }
    const indexPath = await writeHtmlReports(dir, GROUPS);
    const index = JSON.parse(await Deno.readTextFile(`${dir}/index.json`)) as IndexJson;
    const html = await Deno.readTextFile(indexPath);
    assertSafeHtml(html, "index");
    assert.match(html, /<table id="matrix">/);
    for (const c of cases) assert.ok(html.includes(`>${c.id}<`), `${c.id} is a row`);
    for (const link of hrefs(html)) await Deno.stat(`${dir}/${decodeURIComponent(link)}`);
    assert.equal(hrefs(html).length, cases.length + 8);

    const counts = countResults(index, GROUPS);
    const failing = Object.values(index.flawed).filter((e) => isFailing(e)).length;
    assert.ok(failing > 0);
    assert.equal(counts.flawed.fail, failing);
    assert.equal(counts.strict.missing, cases.length - 8);
    assert.equal(counts.strict.pass, 8);
    assert.ok(html.includes(`id="total-a1-missing">${cases.length - 8}<`));

    const page = (agent: string, id: string) =>
      Deno.readTextFile(`${dir}/${caseReportName(agent, id).replace(/\.json$/, ".html")}`);
    // 5.6 without pongs: the pong expected first never came.
    const p56 = await page("flawed", "5.6");
    assertSafeHtml(p56, "5.6");
    assert.match(
      p56,
      /First difference at event 1: expected pong of 12 bytes &quot;ping payload&quot;, got text message of 18 bytes &quot;fragment1fragment2&quot;/,
    );
    assert.match(p56, /<table class="wirelog">/);
    const rows56 = /<table class="wirelog">.*?<tbody>(.*?)<\/tbody>/s.exec(p56)![1]
      .match(/<tr /g)!;
    assert.equal(rows56.length, wirelogLength.get("flawed 5.6"));
    assert.match(p56, /ping \(0x9\)<\/span> FIN=1 RSV=000 MASK=/);
    // 1.1.3 truncated: the echo is a byte short.
    const p113 = await page("flawed", "1.1.3");
    assert.match(p113, /expected text message of 126 bytes/);
    assert.match(p113, /first differ at byte offset 125 \(expected 126 bytes, got 125\)/);
    // 6.4.3 passes on both; its page shows the timers of its waits.
    const p643 = await page("flawed", "6.4.3");
    assert.match(p643, /wait 1 s \(A\)/);
    assert.match(p643, /wait A over, connection still open/);
    // 1.1.8 writes in chops.
    assert.match(await page("strict", "1.1.8"), /<span class="how">chop<\/span>/);
    // 11.5.1 times the server's TCP close: its finding is on the page.
    assert.match(
      await page("flawed", "11.5.1"),
      /<h2 id="measured">Measured<\/h2>.*<th scope="row">tcpCloseDelay<\/th><td class="num">\d+ ms<\/td><td>The server closed TCP \d+ ms after the closing handshake\.<\/td>/s,
    );
    // Every page is safe and links only to pages that exist.
    for (const name of await htmlFiles(dir)) {
      const text = await Deno.readTextFile(`${dir}/${name}`);
      assertSafeHtml(text, name);
      for (const link of hrefs(text)) await Deno.stat(`${dir}/${decodeURIComponent(link)}`);
    }
  } finally {
    await Promise.all([flawed.close(), strict.close()]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the close table states the handshake a case expects: a refusal, or a 101", () => {
  const page = (expected: CaseReportJson["expected"], opened: boolean) =>
    renderCasePage({
      id: "0.2.1",
      title: "No Sec-WebSocket-Key",
      behavior: "FAILED",
      behaviorClose: "FAILED",
      expected,
      received: [],
      close: { opened, closedBySuite: true, localCloseCode: 1000, localCloseReason: "bye: ünï" },
    }, { groups: GROUPS });
  const row = (html: string, th: string) =>
    new RegExp(`<tr><th>${th}</th>.*?</tr>`, "s").exec(html)![0];
  const close = { by: "suite", codes: [1000], clean: true };
  const refused = page({ ok: [], close, handshake: { outcome: "refuse" } }, true);
  assert.match(
    row(refused, "Opening handshake completed"),
    /<td>no: refused with an HTTP error code, any 4xx .*<td class="mismatch">yes <span class="flag">/s,
  );
  // Version 8 may be understood: its 101 is no mismatch. No upgrade asked for: any answer but 101.
  const version8 = { outcome: "refuse", listsVersion13: true, accepting: "may" };
  assert.match(
    row(page({ ok: [], close, handshake: version8 }, true), "Opening handshake completed"),
    /listing version 13 in Sec-WebSocket-Version; or yes, status 101.*<td class="">yes<\/td>/s,
  );
  assert.match(
    row(
      page({ ok: [], close, handshake: { outcome: "not-websocket" } }, false),
      "Opening handshake completed",
    ),
    /<td>no: any answer but 101 .*<td class="">no<\/td>/s,
  );
  assert.match(row(refused, "Who closes first"), /the handshake must be refused/);
  assert.match(row(refused, "Suite's close code"), /“bye: ünï”/);
  const accepted = page({ ok: [], close, handshake: { outcome: "accept" } }, true);
  assert.match(
    row(accepted, "Opening handshake completed"),
    /<td>yes, status 101<\/td><td class="">yes<\/td>/,
  );
  // A report without the field (an older one) expects a 101, as before.
  const older = page({ ok: [], close }, false);
  assert.match(row(older, "Opening handshake completed"), /yes, status 101.*class="mismatch">no/s);
});

/** Every file of `dir` by name, with its text. */
async function filesIn(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile) files.set(entry.name, await Deno.readTextFile(`${dir}/${entry.name}`));
  }
  return files;
}

Deno.test("case pages written during a run are those writeHtmlReports() writes from the JSON", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wsconform-html-live-" });
  const copy = await Deno.makeTempDir({ prefix: "wsconform-html-copy-" });
  const server = startStrictServer();
  const pages = new CasePages(dir, GROUPS);
  try {
    const agent = "live";
    const pageOf = (id: string) => caseReportName(agent, id).replace(/\.json$/, ".html");
    const byIds = (ids: string[]) => ALL_CASES.filter((c) => ids.includes(c.id));
    // The second run fills a gap between cases of the first: their neighbours change.
    const runs = [byIds(["1.1.1", "1.1.3", "2.1", "9.7.1"]), byIds(["1.1.2", "5.1"])];
    for (const cases of runs) {
      await pages.plan(agent, cases.map((c) => c.id));
      const outcomes = await runAndJudgeCases(cases, {
        url: new URL(server.url),
        jobs: 4,
        onCaseDone: async (run) => {
          pages.write(agent, run.spec.id, await writeCaseReport(dir, agent, run));
        },
      });
      await pages.close();
      // Written by the worker, before writeHtmlReports(), which leaves them be.
      const written = async () =>
        await Promise.all(
          cases.map(async (c) => (await Deno.stat(`${dir}/${pageOf(c.id)}`)).mtime),
        );
      const before = await written();
      await writeIndex(dir, agent, outcomes);
      await writeHtmlReports(dir, GROUPS, pages);
      assert.deepEqual(await written(), before);
    }
    // The same report directory rendered from its JSON files alone.
    for (const [name, text] of await filesIn(dir)) {
      if (!name.endsWith(".html")) await Deno.writeTextFile(`${copy}/${name}`, text);
    }
    await writeHtmlReports(copy, GROUPS);
    const live = await filesIn(dir), rendered = await filesIn(copy);
    assert.deepEqual([...live.keys()].sort(), [...rendered.keys()].sort());
    for (const [name, text] of rendered) assert.equal(live.get(name), text, name);
    // 1.1.1's next case is now 1.1.2, which the first run did not have.
    assert.match(live.get(pageOf("1.1.1"))!, /1\.1\.2/);
  } finally {
    await pages.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(copy, { recursive: true });
  }
});

Deno.test("a peer that failed before answering everything, as it may (okPrefix): no first difference marked", () => {
  const report: CaseReportJson = {
    id: "3.3",
    title: "A valid message, then a frame to fail on",
    rfc: "5.2",
    requirement: "Fail the connection.",
    agent: "x",
    behavior: "OK",
    behaviorClose: "OK",
    matched: "okPrefix",
    result: "The peer failed the connection after 0 of the 1 events expected.",
    resultClose: "The connection was closed properly.",
    expected: { ok: [text("Hello")], close: { by: "peer", codes: [1002], clean: false } },
    received: [],
    close: { opened: true, closedBySuite: false, wasClean: false, remoteCloseCode: 1002 },
  };
  const html = renderCasePage(report, { groups: GROUPS, agent: "x" });
  assertSafeHtml(html, "case page");
  assert.match(html, /The peer failed the connection after 0 of\s+the expected events/);
  assert.doesNotMatch(html, /first difference/i);
  // The same events without okPrefix: the missing echo is the first difference.
  const unmatched = renderCasePage({ ...report, matched: undefined, behavior: "FAILED" }, {
    groups: GROUPS,
    agent: "x",
  });
  assert.match(unmatched, /First difference at event 1/);
});
