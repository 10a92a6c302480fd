/**
 * The HTML reports in a real browser: Debian's Chromium, headless, installed by
 * .ci/run (nothing is downloaded at run time). It renders the index and a case
 * page from file://; the DOM it dumps must hold the matrix and the wire log.
 * A client report of four agents (and, with the three browsers installed, the
 * report of `--client chromium,firefox,webkit,deno`) shows a column each, fits
 * 1280 px, and its screenshot is checked (WSCONFORM_KEEP_SCREENSHOT=FILE.png
 * keeps it to look at).
 */
import assert from "node:assert/strict";
import { ALL_CASES, CLIENT_CASES, GROUPS } from "../fixtures/mod.ts";
import { CasePages, escapeHtml, writeHtmlReports } from "../harness/html.ts";
import { caseReportName, writeCaseReport, writeIndex } from "../harness/report.ts";
import { runAndJudgeCases, runSuite } from "../harness/suite.ts";
import { startStrictServer } from "./peers/strict_server.ts";
import { BROWSER_KINDS, browserBinary } from "../harness/browser_driver.ts";
import { runCli } from "./support.ts";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

/** Runs headless Chromium with the flags that keep it off the network; bounded by `timeoutMs`. */
async function chromium(args: string[], timeoutMs = 60_000): Promise<string> {
  const profile = await Deno.makeTempDir({ prefix: "wsconform-chromium-" });
  const child = new Deno.Command(CHROMIUM!, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      `--user-data-dir=${profile}`,
      ...args,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  try {
    const { stdout, code } = await child.output();
    assert.equal(code, 0, `chromium exited with ${code}`);
    return new TextDecoder().decode(stdout);
  } finally {
    clearTimeout(timer);
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

/** Where the matrix ends and how wide the page is, for an index rendered 1280 px wide. */
interface Layout {
  scrollWidth: number;
  viewport: number;
  matrixRight: number;
}

/** Renders `index` 1280 px wide and measures it: the page has no script, so a copy measures. */
async function matrixLayout(index: string): Promise<Layout> {
  const measure = index.replace(/\.html$/, "-measure.html");
  await Deno.writeTextFile(
    measure,
    (await Deno.readTextFile(index)).replace(
      "</body>",
      `<script>document.body.insertAdjacentHTML("beforeend", "<pre id=layout>" + JSON.stringify({
        scrollWidth: document.documentElement.scrollWidth,
        viewport: document.documentElement.clientWidth,
        matrixRight: Math.ceil(document.getElementById("matrix").getBoundingClientRect().right),
      }) + "</pre>");</script></body>`,
    ),
  );
  const measured = await chromium(["--dump-dom", "--window-size=1280,800", `file://${measure}`]);
  return JSON.parse(/<pre id="layout">(.*?)<\/pre>/.exec(measured)![1]);
}

/** At 1280 px the matrix fits: no horizontal scrolling, the last verdict column in view. */
function assertFitsAt1280(layout: Layout): void {
  assert.ok(layout.viewport <= 1280 && layout.viewport > 1200, JSON.stringify(layout));
  assert.ok(layout.scrollWidth <= layout.viewport, `scrolls sideways: ${JSON.stringify(layout)}`);
  assert.ok(layout.matrixRight <= layout.viewport, `matrix cut off: ${JSON.stringify(layout)}`);
}

/**
 * A PNG's size and how many pixels have each colour (0xRRGGBB): enough of a
 * decoder for Chromium's screenshots (8-bit RGB or RGBA, not interlaced).
 */
async function pngColours(
  png: Uint8Array<ArrayBuffer>,
): Promise<{ width: number; height: number; colours: Map<number, number> }> {
  assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], "a PNG signature");
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let width = 0, height = 0, channels = 0;
  const compressed: Uint8Array<ArrayBuffer>[] = [];
  for (let at = 8; at + 8 <= png.length;) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    const data = png.subarray(at + 8, at + 8 + length);
    if (type === "IHDR") {
      width = view.getUint32(at + 8);
      height = view.getUint32(at + 12);
      const [depth, colourType, , , interlace] = data.subarray(8);
      assert.ok(depth === 8 && [2, 6].includes(colourType) && interlace === 0, "an RGB(A) PNG");
      channels = colourType === 6 ? 4 : 3;
    }
    if (type === "IDAT") compressed.push(data);
    at += 12 + length;
  }
  const raw = new Uint8Array(
    await new Response(
      ReadableStream.from(compressed).pipeThrough(new DecompressionStream("deflate")),
    ).arrayBuffer(),
  );
  // Each row starts with its filter (PNG §9): undone against the row before and the pixel before.
  const stride = width * channels;
  const pixels = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = pixels.subarray(y * stride, (y + 1) * stride);
    const above = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : new Uint8Array(stride);
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? row[x - channels] : 0;
      const b = above[x];
      const c = x >= channels ? above[x - channels] : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c)
        ? a
        : Math.abs(p - b) <= Math.abs(p - c)
        ? b
        : c;
      row[x] = line[x] + [0, a, b, (a + b) >> 1, paeth][filter];
    }
  }
  const colours = new Map<number, number>();
  for (let i = 0; i < pixels.length; i += channels) {
    const rgb = (pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2];
    colours.set(rgb, (colours.get(rgb) ?? 0) + 1);
  }
  return { width, height, colours };
}

Deno.test({
  name:
    "the HTML reports render in headless Chromium: matrix on the index, wire log on a case page",
  // CI installs Chromium (.ci/run); elsewhere the test says why it did not run.
  ignore: !CHROMIUM && Deno.env.get("CI") !== "true",
  fn: async () => {
    assert.ok(CHROMIUM, "Chromium is not installed (.ci/run installs Debian's chromium)");
    const dir = await Deno.makeTempDir({ prefix: "wsconform-html-" });
    const server = startStrictServer();
    try {
      const agent = "wsconform-strict";
      const outcomes = await runAndJudgeCases(ALL_CASES, {
        url: new URL(server.url),
        jobs: 32,
        onCaseDone: async (run) => void await writeCaseReport(dir, agent, run),
      });
      await writeIndex(dir, agent, outcomes);
      const index = await writeHtmlReports(dir, GROUPS);

      const indexDom = await chromium(["--dump-dom", `file://${index}`]);
      assert.match(indexDom, /<table[^>]*id="matrix"/);
      for (const c of ALL_CASES) {
        assert.ok(indexDom.includes(`>${c.id}<`), `${c.id} not in the matrix`);
      }

      const page = `${dir}/${caseReportName(agent, "5.6").replace(/\.json$/, ".html")}`;
      const pageDom = await chromium(["--dump-dom", `file://${page}`]);
      assert.match(pageDom, /<table[^>]*class="wirelog"/);
      assert.match(pageDom, /fragment1/);

      // At 1280 px the matrix fits (group 6's titles name long payloads in hex).
      assertFitsAt1280(await matrixLayout(index));

      // A picture for people to look at; kept out of git (*.png is ignored).
      const shot = `${dir}/index.png`;
      await chromium(["--screenshot=" + shot, "--window-size=1280,900", `file://${index}`]);
      assert.ok((await Deno.stat(shot)).size > 1000);
    } finally {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * The client cases the four-agent report holds: groups 0-11, verdicts that
 * differ by client, a long hex title (6.13.1) and an INFORMATIONAL / INFORMATIONAL
 * cell (7.13.1), the widest verdicts.
 */
const CLIENT_REPORT_CASES = [
  "0.8.1",
  // WebKitGTK and Deno's client accept a doubled Sec-WebSocket-Accept: fail cells.
  "0.8.12",
  "1.1.1",
  "2.1",
  "5.1",
  "6.13.1",
  "7.1.1",
  "7.3.1",
  "7.13.1",
  "8.1.6",
  "11.1.3",
  // permessage-deflate: OK in the browsers, UNIMPLEMENTED for Deno's client (it offers none).
  "12.1.1",
  // WebKitGTK takes client_max_window_bits without a value in a response: a fail cell.
  "14.3.5",
];

/**
 * Renders the client report in `dir` (index.html written) in headless Chromium
 * and checks it: a column per agent, in order, and a verdict in every cell of
 * every case; the matrix fits 1280 px; a 1280 px screenshot that is not blank,
 * the pass and fail colours in it. Returns each case's cell statuses, by agent.
 */
async function checkClientReport(
  dir: string,
  agents: readonly string[],
): Promise<Map<string, string[]>> {
  const index = `${dir}/index.html`;
  const dom = await chromium(["--dump-dom", "--window-size=1280,1400", `file://${index}`]);
  const headers = [...dom.matchAll(/<th scope="col" class="agent">(.*?)<\/th>/g)].map((m) => m[1]);
  assert.deepEqual(headers, agents.map(escapeHtml));
  const rows = [...dom.matchAll(/<tr class="case[^"]*" id="case-([^"]+)">(.*?)<\/tr>/g)];
  assert.deepEqual(rows.map((r) => r[1]), CLIENT_REPORT_CASES);
  const statuses = new Map<string, string[]>();
  for (const [, id, row] of rows) {
    const cells = [...row.matchAll(/<td class="v v-(\w+)">/g)].map((m) => m[1]);
    assert.equal(cells.length, agents.length, `case ${id}: ${cells}`);
    assert.ok(cells.every((v) => v !== "missing"), `case ${id}: ${cells}`);
    statuses.set(id, cells);
  }
  assertFitsAt1280(await matrixLayout(index));

  const shot = `${dir}/index.png`;
  await chromium(["--screenshot=" + shot, "--window-size=1280,1400", `file://${index}`]);
  const { width, height, colours } = await pngColours(await Deno.readFile(shot));
  assert.deepEqual([width, height], [1280, 1400]);
  assert.ok(colours.size > 16, `${colours.size} colours`);
  for (const [name, rgb] of [["pass", 0x1e7d32], ["fail", 0xc62828]] as const) {
    assert.ok((colours.get(rgb) ?? 0) > 1000, `the ${name} colour covers few pixels`);
  }
  const keep = Deno.env.get("WSCONFORM_KEEP_SCREENSHOT");
  if (keep) {
    await Deno.copyFile(shot, keep.replace(/\.png$/, `-${agents[0].replace(/\W+/g, "_")}.png`));
  }
  return statuses;
}

Deno.test({
  name:
    "a client report of four agents in headless Chromium: a column each with a verdict in every cell, fitting 1280 px, and a screenshot that shows them",
  ignore: !CHROMIUM && Deno.env.get("CI") !== "true",
  fn: async () => {
    assert.ok(CHROMIUM, "Chromium is not installed (.ci/run installs Debian's chromium)");
    const dir = await Deno.makeTempDir({ prefix: "wsconform-clients-" });
    try {
      // Deno's own WebSocket and the strict client, as it is and with two flaws, one run each
      // into one report, as `--client` with several clients writes it.
      const strict = `${Deno.execPath()} run --allow-net ${
        new URL("./peers/strict_client.ts", import.meta.url).pathname
      } {url}`;
      const clients = [
        { client: {} },
        { client: { command: strict }, agent: "strict client" },
        {
          client: { command: `${strict} --flaw accept-masked-frames` },
          agent: "strict client, flaw accept-masked-frames",
        },
        { client: { command: `${strict} --flaw no-pong` }, agent: "strict client, flaw no-pong" },
      ];
      const cases = CLIENT_CASES.filter((c) => CLIENT_REPORT_CASES.includes(c.id));
      const agents: string[] = [];
      for (const options of clients) {
        const pages = new CasePages(dir, GROUPS);
        try {
          const result = await runSuite({ ...options, cases, reports: { dir, pages } });
          agents.push(result.agent);
        } finally {
          await pages.close();
        }
      }
      await writeHtmlReports(dir, GROUPS);
      const statuses = await checkClientReport(dir, agents);
      // The flaws show: the strict client passes 8.1.6 and 2.1, each flaw fails its case.
      assert.deepEqual(statuses.get("8.1.6")!.slice(1, 3), ["pass", "fail"]);
      assert.deepEqual([statuses.get("2.1")![1], statuses.get("2.1")![3]], ["pass", "fail"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "the report of `--client chromium,firefox,webkit,deno` in headless Chromium: the three browsers' and Deno's columns, a verdict in every cell, fitting 1280 px",
  // .ci/run installs the three browsers, Firefox and WebKitGTK where they install: without one
  // the test is ignored (the four-agent test above checks the report's layout).
  ignore: !BROWSER_KINDS.every((kind) => browserBinary(kind)),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "wsconform-browsers-" });
    try {
      const run = await runCli([
        "--client",
        "chromium,firefox,webkit,deno",
        "--cases",
        CLIENT_REPORT_CASES.join(","),
        "--out",
        dir,
      ]);
      assert.ok(run.code === 0 || run.code === 1, run.stdout + run.stderr);
      const agents = Object.keys(JSON.parse(await Deno.readTextFile(`${dir}/index.json`)));
      assert.equal(agents.length, 4, String(agents));
      [/^Chromium \d/, /^Mozilla Firefox \d/, /^WebKitGTK \d/, /^Deno\/\d/].forEach((name, i) =>
        assert.match(agents[i], name)
      );
      await checkClientReport(dir, agents);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
