/**
 * The layers of harness/ (issue 9): imports run one way, with no cycle:
 * core (codecs, pure) → session (I/O, timers) → runner → verdict → report
 * writers → suite and CLI. The case catalog (fixtures/) uses only the core,
 * and only the suite layer imports it: the writers take it as a parameter.
 *
 *   deno test --allow-all tests/layers_test.ts
 */
import assert from "node:assert/strict";

const LAYERS = ["core", "catalog", "session", "runner", "verdict", "report", "suite"] as const;
type Layer = typeof LAYERS[number];

/** Each module of harness/ and its layer; a new module must be given one here. */
const HARNESS_LAYERS: Record<string, Layer> = {
  "case.ts": "core",
  "deflate.ts": "core",
  "fuzzingserver.ts": "core",
  "endpoint.ts": "core",
  "frame.ts": "core",
  "handshake.ts": "core",
  "observation.ts": "core",
  "payload.ts": "core",
  "server_handshake.ts": "core",
  "steps.ts": "core",
  "testdata.ts": "core",
  "utf8.ts": "core",
  "browser_driver.ts": "session",
  "case_server.ts": "session",
  "child.ts": "session",
  "client_driver.ts": "session",
  "clock.ts": "session",
  "echo_client.js": "session",
  "reference_client.ts": "session",
  "reference_server.ts": "session",
  "session.ts": "session",
  "transport.ts": "session",
  "wirelog.ts": "session",
  "memory.ts": "runner",
  "runner.ts": "runner",
  "measure.ts": "verdict",
  "verdict.ts": "verdict",
  "baseline.ts": "report",
  "case_page_worker.ts": "report",
  "html.ts": "report",
  "junit.ts": "report",
  "progress.ts": "report",
  "report.ts": "report",
  "bench.ts": "suite",
  "cli.ts": "suite",
  "mod.ts": "suite",
  "serve.ts": "suite",
  "spec.ts": "suite",
  "suite.ts": "suite",
  "testing.ts": "suite",
};

const ROOT = new URL("../", import.meta.url);

/** The layer of a module of the project, "other" for tests/ and outside modules. */
function layerOf(specifier: string): Layer | "other" | undefined {
  if (!specifier.startsWith(ROOT.href)) return "other";
  const path = specifier.slice(ROOT.href.length);
  if (path.startsWith("fixtures/")) return "catalog";
  if (path.startsWith("harness/")) return HARNESS_LAYERS[path.slice("harness/".length)];
  return "other";
}

/** Module → the project modules it imports (code or types). */
export type ImportGraph = Map<string, string[]>;

/** What breaks the layering in `graph`: unknown modules, imports against the order, cycles. */
export function layerProblems(graph: ImportGraph): string[] {
  const problems: string[] = [];
  const short = (s: string) => s.startsWith(ROOT.href) ? s.slice(ROOT.href.length) : s;
  for (const [from, imports] of graph) {
    const fromLayer = layerOf(from);
    if (fromLayer === undefined) {
      problems.push(`${short(from)} has no layer (add it to HARNESS_LAYERS)`);
      continue;
    }
    if (fromLayer === "other") continue;
    for (const to of imports) {
      const toLayer = layerOf(to);
      if (toLayer === undefined || toLayer === "other") continue;
      if (toLayer === "catalog" && fromLayer !== "catalog" && fromLayer !== "suite") {
        problems.push(`${short(from)} (${fromLayer}) imports the catalog ${short(to)}`);
      } else if (LAYERS.indexOf(toLayer) > LAYERS.indexOf(fromLayer)) {
        problems.push(`${short(from)} (${fromLayer}) imports ${short(to)} (${toLayer})`);
      }
    }
  }
  // Cycles, by depth-first search over the project's modules.
  const state = new Map<string, "open" | "done">();
  const visit = (node: string, path: string[]) => {
    state.set(node, "open");
    for (const next of graph.get(node) ?? []) {
      if (layerOf(next) === "other") continue;
      if (state.get(next) === "open") {
        const cycle = [...path.slice(path.indexOf(next)), next].map(short);
        problems.push(`import cycle: ${cycle.join(" → ")}`);
      } else if (!state.has(next)) visit(next, [...path, next]);
    }
    state.set(node, "done");
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node, [node]);
  return problems;
}

/** The import graph of every module in harness/, as `deno info --json` reads it. */
async function harnessGraph(): Promise<ImportGraph> {
  const dir = await Deno.makeTempDir();
  try {
    const root = `${dir}/all.ts`;
    const files = [...Deno.readDirSync(new URL("harness/", ROOT))]
      .filter((e) => e.isFile && e.name.endsWith(".ts")).map((e) => e.name).sort();
    await Deno.writeTextFile(
      root,
      files.map((f) => `import ${JSON.stringify(new URL(`harness/${f}`, ROOT).href)};\n`).join(""),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: {
        specifier: string;
        dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
      }[];
    };
    const rootUrl = new URL(`file://${root}`).href;
    const graph: ImportGraph = new Map();
    for (const m of info.modules) {
      if (m.specifier === rootUrl || !m.specifier.startsWith("file:")) continue;
      const deps = (m.dependencies ?? []).flatMap((d) =>
        [d.code?.specifier, d.type?.specifier].filter((s): s is string => s !== undefined)
      );
      graph.set(m.specifier, [...new Set(deps)]);
    }
    return graph;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("harness/: every import runs down the layers, and none makes a cycle", async () => {
  const graph = await harnessGraph();
  assert.ok(graph.size >= Object.keys(HARNESS_LAYERS).length - 2, "the graph holds harness/");
  assert.deepEqual(layerProblems(graph), []);
});

Deno.test("the layer check finds a cycle, an upward import and the catalog in a writer", () => {
  const at = (path: string) => new URL(path, ROOT).href;
  const graph: ImportGraph = new Map([
    [at("harness/session.ts"), [at("harness/report.ts"), at("harness/frame.ts")]],
    [at("harness/report.ts"), [at("harness/session.ts")]],
    [at("harness/html.ts"), [at("fixtures/mod.ts")]],
    [at("harness/cli.ts"), [at("fixtures/mod.ts"), at("harness/suite.ts")]],
    [at("harness/new_module.ts"), []],
    [at("fixtures/mod.ts"), [at("harness/case.ts")]],
  ]);
  assert.deepEqual(layerProblems(graph), [
    "harness/session.ts (session) imports harness/report.ts (report)",
    "harness/html.ts (report) imports the catalog fixtures/mod.ts",
    "harness/new_module.ts has no layer (add it to HARNESS_LAYERS)",
    "import cycle: harness/session.ts → harness/report.ts → harness/session.ts",
  ]);
});
