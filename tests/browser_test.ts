/**
 * The HTML reports in a real browser: Debian's Chromium, headless, installed by
 * .ci/run (nothing is downloaded at run time). It renders the index and a case
 * page from file://; the DOM it dumps must hold the matrix and the wire log.
 */
import assert from "node:assert/strict";
import { ALL_CASES, GROUPS } from "../fixtures/mod.ts";
import { writeHtmlReports } from "../harness/html.ts";
import { caseReportName, writeCaseReport, writeIndex } from "../harness/report.ts";
import { runAndJudgeCases } from "../harness/suite.ts";
import { startStrictServer } from "./peers/strict_server.ts";

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

      // At 1280 px the matrix fits: no horizontal scrolling, the verdict column in view
      // (group 6's titles name long payloads in hex). The page has no script: a copy measures.
      const measure = `${dir}/index-measure.html`;
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
      const measured = await chromium([
        "--dump-dom",
        "--window-size=1280,800",
        `file://${measure}`,
      ]);
      const layout = JSON.parse(/<pre id="layout">(.*?)<\/pre>/.exec(measured)![1]);
      assert.ok(layout.viewport <= 1280 && layout.viewport > 1200, JSON.stringify(layout));
      assert.ok(
        layout.scrollWidth <= layout.viewport,
        `scrolls sideways: ${JSON.stringify(layout)}`,
      );
      assert.ok(layout.matrixRight <= layout.viewport, `matrix cut off: ${JSON.stringify(layout)}`);

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
