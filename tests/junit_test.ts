import { runCli } from "./support.ts";
/**
 * JUnit XML: escaping, well-formedness (checked by a small strict XML 1.0
 * checker written here, not by the writer's own logic), one testcase per case
 * run, failures and skips as CI systems read them.
 */

import assert from "node:assert/strict";
import { ALL_CASES, GROUPS } from "../fixtures/mod.ts";
import {
  escapeXmlAttr,
  escapeXmlText,
  junitXml,
  replaceInvalidXmlChars,
  summarizeEvents,
} from "../harness/junit.ts";
import type { CaseOutcome } from "../harness/verdict.ts";
import type { Behavior, CloseBehavior } from "../harness/verdict.ts";
import { startStrictServer } from "./peers/strict_server.ts";

// --- a strict XML 1.0 well-formedness checker ---------------------------------

interface XmlElement {
  name: string;
  attrs: Map<string, string>;
  children: (XmlElement | string)[];
}

class XmlError extends Error {}

const NAME = /^[A-Za-z_:][A-Za-z0-9_:.-]*/;
const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/** XML 1.0 §2.2 Char. */
function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/** Decodes entity and character references; rejects any other `&` and a raw `<`. */
function decode(raw: string, where: string): string {
  if (raw.includes("<")) throw new XmlError(`raw "<" in ${where}`);
  return raw.replace(/&([^;]*);|&/g, (all, body: string | undefined) => {
    if (body === undefined) throw new XmlError(`bare "&" in ${where}`);
    let cp: number;
    if (/^#[0-9]+$/.test(body)) cp = Number(body.slice(1));
    else if (/^#x[0-9A-Fa-f]+$/.test(body)) cp = parseInt(body.slice(2), 16);
    else if (Object.hasOwn(ENTITIES, body)) return ENTITIES[body];
    else throw new XmlError(`unknown entity ${all} in ${where}`);
    if (!isXmlChar(cp)) throw new XmlError(`reference to an invalid character ${all}`);
    return String.fromCodePoint(cp);
  });
}

/**
 * Parses a document and returns its root element, or throws: every character
 * a legal XML Char, an optional XML declaration, one root element, tags
 * balanced, attributes quoted and unique, references valid. (Enough of XML 1.0
 * for what a JUnit writer produces: no DTD, CDATA or processing instructions.)
 */
function parseXml(doc: string): XmlElement {
  for (const ch of doc) {
    const cp = ch.codePointAt(0)!;
    if (!isXmlChar(cp)) throw new XmlError(`invalid character U+${cp.toString(16)}`);
  }
  let i = 0;
  const decl = /^<\?xml\s+version="1\.0"(\s+encoding="UTF-8")?\s*\?>/.exec(doc);
  if (decl) i = decl[0].length;
  const skipSpace = () => {
    while (i < doc.length && /\s/.test(doc[i])) i++;
  };
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  while (i < doc.length) {
    if (stack.length === 0) {
      skipSpace();
      if (i === doc.length) break;
      if (root) throw new XmlError(`content after the root element at ${i}`);
      if (doc[i] !== "<") throw new XmlError(`text outside the root element at ${i}`);
    }
    if (doc[i] !== "<") {
      const end = doc.indexOf("<", i);
      if (end < 0) throw new XmlError("unterminated content");
      const raw = doc.slice(i, end);
      if (raw.includes("]]>")) throw new XmlError(`"]]>" in text`);
      stack[stack.length - 1].children.push(decode(raw, "text"));
      i = end;
      continue;
    }
    if (doc.startsWith("<!--", i)) {
      const end = doc.indexOf("-->", i + 4);
      if (end < 0 || doc.slice(i + 4, end).includes("--")) throw new XmlError("bad comment");
      i = end + 3;
      continue;
    }
    if (doc.startsWith("</", i)) {
      i += 2;
      const name = NAME.exec(doc.slice(i))?.[0];
      if (!name) throw new XmlError(`bad end tag at ${i}`);
      i += name.length;
      skipSpace();
      if (doc[i] !== ">") throw new XmlError(`bad end tag </${name} at ${i}`);
      i++;
      const open = stack.pop();
      if (open?.name !== name) {
        throw new XmlError(`</${name}> closes <${open?.name ?? "nothing"}>`);
      }
      if (stack.length === 0) root = open;
      continue;
    }
    i++;
    const name = NAME.exec(doc.slice(i))?.[0];
    if (!name) throw new XmlError(`bad start tag at ${i}`);
    i += name.length;
    const element: XmlElement = { name, attrs: new Map(), children: [] };
    for (;;) {
      const before = i;
      skipSpace();
      if (doc.startsWith("/>", i) || doc[i] === ">") break;
      if (i === before) throw new XmlError(`no space before an attribute in <${name}> at ${i}`);
      const attr = NAME.exec(doc.slice(i))?.[0];
      if (!attr) throw new XmlError(`bad attribute in <${name}> at ${i}`);
      i += attr.length;
      skipSpace();
      if (doc[i] !== "=") throw new XmlError(`attribute ${attr} without a value`);
      i++;
      skipSpace();
      const quote = doc[i];
      if (quote !== '"' && quote !== "'") throw new XmlError(`unquoted attribute ${attr}`);
      const end = doc.indexOf(quote, i + 1);
      if (end < 0) throw new XmlError(`unterminated attribute ${attr}`);
      if (element.attrs.has(attr)) throw new XmlError(`duplicate attribute ${attr}`);
      element.attrs.set(attr, decode(doc.slice(i + 1, end), `attribute ${attr}`));
      i = end + 1;
    }
    const selfClosing = doc.startsWith("/>", i);
    i += selfClosing ? 2 : 1;
    if (stack.length > 0) stack[stack.length - 1].children.push(element);
    if (selfClosing) {
      if (stack.length === 0) root = element;
    } else {
      stack.push(element);
    }
  }
  if (stack.length > 0) throw new XmlError(`<${stack[stack.length - 1].name}> is never closed`);
  if (!root) throw new XmlError("no root element");
  return root;
}

const elements = (e: XmlElement, name: string): XmlElement[] =>
  e.children.filter((c): c is XmlElement => typeof c !== "string" && c.name === name);
const textOf = (e: XmlElement) => e.children.filter((c) => typeof c === "string").join("");

Deno.test("xml checker: accepts well-formed documents and rejects broken ones", () => {
  const ok = parseXml(
    `<?xml version="1.0" encoding="UTF-8"?>\n<a x="1" y='&lt;&#38;&#x41;'>` +
      `t &amp; u<b/><!-- c --><c z="">&quot;</c></a>\n`,
  );
  assert.equal(ok.name, "a");
  assert.equal(ok.attrs.get("y"), "<&A");
  assert.equal(textOf(elements(ok, "c")[0]), '"');
  const broken = [
    "<a><b></a></b>",
    "<a>",
    "<a></a><b/>",
    "<a x=1/>",
    '<a x="1" x="2"/>',
    '<a x="<"/>',
    '<a x="&"/>',
    "<a>&nbsp;</a>",
    "<a>&#0;</a>",
    "<a>&#xFFFE;</a>",
    "<a>\u0001</a>",
    "<a>\uD800</a>",
    "<a>1 < 2</a>",
    "<a>&amp</a>",
    'text<a x="1"/>',
    '<a x="1"y="2"/>',
  ];
  for (const doc of broken) {
    assert.throws(() => parseXml(doc), XmlError, JSON.stringify(doc));
  }
});

// --- the writer ---------------------------------------------------------------

Deno.test("junit: escaping of text and attributes", () => {
  assert.equal(escapeXmlText(`a<b>&"c'`), "a&lt;b&gt;&amp;&quot;c&apos;");
  assert.equal(escapeXmlAttr("x\ty\nz\r"), "x&#9;y&#10;z&#13;");
  assert.equal(
    replaceInvalidXmlChars("a\u0000b\u0008c\u000Bd\uFFFEe"),
    "a\\u0000b\\u0008c\\u000Bd\\uFFFEe",
  );
  assert.equal(replaceInvalidXmlChars("\uD800x\uDC00"), "\\uD800x\\uDC00");
  // A valid surrogate pair, tab, LF and CR are kept.
  assert.equal(replaceInvalidXmlChars("😀\t\n\r"), "😀\t\n\r");
  // Escaping is applied after the replacement, so the result always parses.
  const nasty = `<&>"'\u0000\u0007\uD83D]]>`;
  const root = parseXml(`<a v="${escapeXmlAttr(nasty)}">${escapeXmlText(nasty)}</a>`);
  assert.equal(root.attrs.get("v"), `<&>"'\\u0000\\u0007\\uD83D]]>`);
  assert.equal(textOf(root), `<&>"'\\u0000\\u0007\\uD83D]]>`);
});

function outcome(
  id: string,
  behavior: Behavior,
  behaviorClose: CloseBehavior,
  extra: { title?: string; result?: string; resultClose?: string } = {},
): CaseOutcome {
  const spec = ALL_CASES.find((c) => c.id === id)!;
  return {
    spec: extra.title ? { ...spec, title: extra.title } : spec,
    verdict: {
      behavior,
      behaviorClose,
      result: extra.result ?? `behavior ${behavior}`,
      resultClose: extra.resultClose ?? `close ${behaviorClose}`,
    },
    duration: 1500,
    remoteCloseCode: 1000,
    findings: [],
  };
}

const TRICKY_TITLE = `Title with <tags>, & ampersands, "double" and 'single' quotes\u0000\u0008`;
const TRICKY_RESULT = `Expected <pong> & "x" but got 'y' \u0001`;

function sampleOutcomes(): CaseOutcome[] {
  return [
    outcome("1.1.1", "OK", "OK", { title: TRICKY_TITLE }),
    outcome("2.1", "FAILED", "OK", { result: TRICKY_RESULT }),
    outcome("6.4.1", "NON-STRICT", "OK"),
    outcome("7.1.6", "INFORMATIONAL", "INFORMATIONAL"),
    outcome("7.3.6", "OK", "FAILED BY CLIENT"),
    outcome("7.1.1", "OK", "UNCLEAN", { resultClose: "close <not clean> & such" }),
    outcome("5.1", "UNIMPLEMENTED", "OK", { result: "no <extension>" }),
  ];
}

Deno.test("junit: one well-formed testcase per case, with failures and skips", () => {
  const outcomes = sampleOutcomes();
  const xml = junitXml([{ agent: `Agent "<&>"`, url: "ws://h/?a=1&b=2", outcomes }], {
    groups: GROUPS,
  });
  const root = parseXml(xml);
  assert.equal(root.name, "testsuites");
  const [suite] = elements(root, "testsuite");
  assert.equal(elements(root, "testsuite").length, 1);
  assert.equal(suite.attrs.get("name"), `Agent "<&>"`);
  const cases = elements(suite, "testcase");
  assert.equal(cases.length, outcomes.length);
  assert.equal(suite.attrs.get("tests"), String(outcomes.length));
  assert.equal(root.attrs.get("tests"), String(outcomes.length));

  const byId = new Map(cases.map((c) => [c.attrs.get("name")!.split(" ")[0], c]));
  // Sorted by id, classname the group, name "<id> <title>", time in seconds.
  assert.deepEqual([...byId.keys()], ["1.1.1", "2.1", "5.1", "6.4.1", "7.1.1", "7.1.6", "7.3.6"]);
  assert.equal(byId.get("1.1.1")!.attrs.get("classname"), "1 Framing");
  assert.equal(byId.get("6.4.1")!.attrs.get("classname"), "6 UTF-8 handling");
  assert.equal(
    byId.get("1.1.1")!.attrs.get("name"),
    `1.1.1 Title with <tags>, & ampersands, "double" and 'single' quotes\\u0000\\u0008`,
  );
  for (const c of cases) assert.equal(c.attrs.get("time"), "1.500");

  const failures = (id: string) => elements(byId.get(id)!, "failure");
  const skips = (id: string) => elements(byId.get(id)!, "skipped");
  // Failing: 2.1 (behavior FAILED), 7.1.1 (UNCLEAN). Not failing: NON-STRICT,
  // INFORMATIONAL, FAILED BY CLIENT. UNIMPLEMENTED is skipped.
  assert.deepEqual(
    cases.filter((c) => elements(c, "failure").length > 0).map((c) => c.attrs.get("name")),
    ["2.1 " + outcomes[1].spec.title, "7.1.1 " + outcomes[5].spec.title],
  );
  assert.equal(suite.attrs.get("failures"), "2");
  assert.equal(suite.attrs.get("skipped"), "1");
  assert.equal(skips("5.1").length, 1);
  assert.match(skips("5.1")[0].attrs.get("message")!, /^UNIMPLEMENTED: no <extension>$/);

  const f21 = failures("2.1")[0];
  assert.equal(
    f21.attrs.get("message"),
    `behavior: expected OK, observed FAILED: Expected <pong> & "x" but got 'y' \\u0001`,
  );
  assert.equal(f21.attrs.get("type"), "FAILED/OK");
  assert.match(textOf(f21), /^2\.1 /);
  assert.match(textOf(f21), /report: agent_case_2_1\.json/);
  const f711 = failures("7.1.1")[0];
  assert.match(f711.attrs.get("message")!, /^behaviorClose: expected OK \(closed by /);
  assert.match(f711.attrs.get("message")!, /observed UNCLEAN: close <not clean> & such$/);
  const props = elements(elements(suite, "properties")[0], "property");
  assert.deepEqual(
    props.map((p) => [p.attrs.get("name"), p.attrs.get("value")]),
    [["agent", `Agent "<&>"`], ["url", "ws://h/?a=1&b=2"], ["strict", "false"]],
  );
});

Deno.test("junit: with strict, NON-STRICT is a failure", () => {
  const outcomes = sampleOutcomes();
  const root = parseXml(junitXml([{ agent: "a", outcomes }], { groups: GROUPS, strict: true }));
  const [suite] = elements(root, "testsuite");
  assert.equal(suite.attrs.get("failures"), "3");
  const c = elements(suite, "testcase").find((c) => c.attrs.get("name")!.startsWith("6.4.1 "))!;
  const [failure] = elements(c, "failure");
  assert.match(failure.attrs.get("message")!, /expected OK, observed NON-STRICT \(--strict\)/);
});

Deno.test("junit: what a case measured goes to its <system-out>, failing or not", () => {
  const finding = (text: string) => ({
    name: "tcpCloseDelay",
    text,
    value: 3,
    unit: "ms" as const,
  });
  const passing = {
    ...outcome("11.5.1", "OK", "OK"),
    findings: [finding("closed <at once> & ok")],
  };
  const failing = { ...outcome("11.6.1", "FAILED", "OK"), findings: [finding("a"), finding("b")] };
  const root = parseXml(
    junitXml([{ agent: "a", outcomes: [passing, failing, outcome("2.1", "OK", "OK")] }], {
      groups: GROUPS,
    }),
  );
  const byId = new Map(
    elements(elements(root, "testsuite")[0], "testcase").map((c) => [
      c.attrs.get("name")!.split(" ")[0],
      c,
    ]),
  );
  const out = (id: string) => elements(byId.get(id)!, "system-out").map(textOf);
  assert.deepEqual(out("11.5.1"), ["closed <at once> & ok"]);
  assert.deepEqual(out("11.6.1"), ["a\nb"]);
  assert.equal(elements(byId.get("11.6.1")!, "failure").length, 1);
  assert.deepEqual(out("2.1"), []);
});

Deno.test("junit: several suites, and an empty one, stay well-formed", () => {
  const root = parseXml(junitXml([
    { agent: "one", outcomes: sampleOutcomes() },
    { agent: "two", outcomes: [] },
  ], { groups: GROUPS }));
  assert.deepEqual(elements(root, "testsuite").map((s) => s.attrs.get("name")), ["one", "two"]);
  assert.equal(root.attrs.get("tests"), "7");
  assert.equal(root.attrs.get("failures"), "2");
});

Deno.test("junit: events in a failure message are summarised", () => {
  const enc = new TextEncoder();
  const pong = { type: "pong" as const, payload: enc.encode("ab") };
  assert.equal(summarizeEvents([]), "none");
  assert.equal(
    summarizeEvents([pong, pong, pong, { type: "timeout", tag: "t" }]),
    `pong (2 bytes) ×3, timeout "t"`,
  );
  assert.equal(
    summarizeEvents([{ type: "message", binary: false, payload: enc.encode("<&>") }]),
    `text message (3 bytes): "<&>"`,
  );
  assert.equal(
    summarizeEvents([{ type: "message", binary: true, payload: new Uint8Array(1) }]),
    "binary message (1 byte)",
  );
  const many = Array.from({ length: 8 }, (_, i) => ({
    type: "pong" as const,
    payload: new Uint8Array(i),
  }));
  assert.match(summarizeEvents(many), /, … 3 more$/);
});

// --- through the command line -------------------------------------------------

Deno.test("junit: --junit writes one testcase per case run", async () => {
  const server = startStrictServer({ flaws: ["no-pong"] });
  const dir = await Deno.makeTempDir({ prefix: "wsconform_junit_test_" });
  try {
    const file = `${dir}/sub/junit.xml`;
    const result = await runCli([
      server.url,
      "--cases",
      "1.1.*,2.*",
      "--out",
      `${dir}/reports`,
      "--junit",
      file,
    ]);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    const selected = ALL_CASES.filter((c) => c.id.startsWith("1.1.") || c.id.startsWith("2."));
    const index = JSON.parse(await Deno.readTextFile(`${dir}/reports/index.json`));
    const ran = Object.keys(index["wsconform-strict"]);
    assert.equal(ran.length, selected.length);

    const root = parseXml(await Deno.readTextFile(file));
    const [suite] = elements(root, "testsuite");
    assert.equal(suite.attrs.get("name"), "wsconform-strict");
    const cases = elements(suite, "testcase");
    assert.equal(cases.length, ran.length, "a testcase per case run");
    assert.deepEqual(cases.map((c) => c.attrs.get("name")!.split(" ")[0]), ran);
    for (const c of cases) {
      const spec = selected.find((s) => c.attrs.get("name") === `${s.id} ${s.title}`);
      assert.ok(spec, c.attrs.get("name"));
      assert.equal(
        c.attrs.get("classname"),
        spec.id.startsWith("1.") ? "1 Framing" : "2 Pings and pongs",
      );
      assert.match(c.attrs.get("time")!, /^\d+\.\d{3}$/);
    }
    // no-pong fails 2.1-2.4, 2.6, 2.9-2.11 (see conformance_test.ts).
    const failed = cases.filter((c) => elements(c, "failure").length > 0)
      .map((c) => c.attrs.get("name")!.split(" ")[0]);
    assert.deepEqual(failed, ["2.1", "2.2", "2.3", "2.4", "2.6", "2.9", "2.10", "2.11"]);
    assert.equal(suite.attrs.get("failures"), "8");
    const [f21] = elements(cases.find((c) => c.attrs.get("name")!.startsWith("2.1 "))!, "failure");
    assert.match(
      f21.attrs.get("message")!,
      /^behavior: expected OK, observed FAILED: .*\(events expected: pong \(0 bytes\); observed: none\)$/,
    );
    // The summary ends with the report paths and the JUnit file.
    const tail = result.stdout.trimEnd().split("\n").slice(-3);
    assert.deepEqual(tail, [
      `report: ${dir}/reports/index.html`,
      `        ${dir}/reports/index.json`,
      `junit:  ${file}`,
    ]);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("junit: a --junit file that cannot be written exits 2", async () => {
  const server = startStrictServer();
  const dir = await Deno.makeTempDir({ prefix: "wsconform_junit_test_" });
  try {
    // The path is a directory: the run completes, the XML cannot be written.
    const result = await runCli([server.url, "--cases", "1.1.1", "--out", dir, "--junit", dir]);
    assert.equal(result.code, 2, result.stdout + result.stderr);
    assert.match(result.stderr, /^wsconform: cannot write --junit /);
    assert.ok(!result.stdout.includes("junit:"), "no junit path is claimed");
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
