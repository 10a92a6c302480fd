/**
 * The case catalog, pinned. tests/catalog.golden.json maps every case id to the SHA-256 (hex)
 * of the case's parameters (rfc, handshake, clientHandshake, deflate, steps, expect, timeout, measure, peers, as
 * canonical JSON) and its title. Baselines and reports are keyed by id, so adding, removing, renaming or
 * changing a case must be deliberate: this test fails naming the ids. Once they are what was
 * meant, rewrite the golden file and commit it with the change:
 *
 *     deno run --allow-read --allow-write tests/catalog_test.ts --update
 */
import assert from "node:assert/strict";
import type { CaseSpec } from "../harness/case.ts";
import { ALL_CASES, GROUPS } from "../fixtures/mod.ts";

const GOLDEN = new URL("./catalog.golden.json", import.meta.url);

/** Case id → "<digest> <title>": one line per case in the golden file. */
type Catalog = Record<string, string>;

/** JSON with every object's keys sorted: a digest must not depend on the order a fixture writes them in. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const fields = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${fields.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

async function digest(spec: CaseSpec): Promise<string> {
  const { rfc, handshake, clientHandshake, deflate, steps, expect, timeout, measure, peers } = spec;
  const json = canonicalJson({
    rfc,
    handshake,
    clientHandshake,
    deflate,
    steps,
    expect,
    timeout,
    measure,
    peers,
  });
  const hash = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(json));
  return new Uint8Array(hash).toHex();
}

async function catalogOf(cases: readonly CaseSpec[]): Promise<Catalog> {
  const entries = await Promise.all(
    cases.map(async (c) => [c.id, `${await digest(c)} ${c.title}`]),
  );
  return Object.fromEntries(entries);
}

interface CatalogChanges {
  added: string[];
  removed: string[];
  /** Same id, another title. */
  renamed: string[];
  /** Same id, other parameters. */
  changed: string[];
}

function catalogChanges(golden: Catalog, current: Catalog): CatalogChanges {
  const split = (entry: string) => {
    const space = entry.indexOf(" ");
    return { digest: entry.slice(0, space), title: entry.slice(space + 1) };
  };
  const kept = Object.keys(current).filter((id) => id in golden);
  return {
    added: Object.keys(current).filter((id) => !(id in golden)),
    removed: Object.keys(golden).filter((id) => !(id in current)),
    renamed: kept.filter((id) => split(golden[id]).title !== split(current[id]).title),
    changed: kept.filter((id) => split(golden[id]).digest !== split(current[id]).digest),
  };
}

/** The golden file's text: one line per case, in the suite's order. */
function goldenText(catalog: Catalog): string {
  const lines = Object.entries(catalog).map(([id, entry]) =>
    `  ${JSON.stringify(id)}: ${JSON.stringify(entry)}`
  );
  return `{\n${lines.join(",\n")}\n}\n`;
}

Deno.test("catalog: the cases are those of tests/catalog.golden.json", async () => {
  const golden: Catalog = JSON.parse(await Deno.readTextFile(GOLDEN));
  const changes = catalogChanges(golden, await catalogOf(ALL_CASES));
  const report = Object.entries(changes)
    .filter(([, ids]) => ids.length > 0)
    .map(([what, ids]) => `${what}: ${ids.join(", ")}`);
  assert.deepEqual(
    report,
    [],
    `the case catalog changed (${report.join("; ")}). If that is meant, run ` +
      "`deno run --allow-read --allow-write tests/catalog_test.ts --update` and commit the file.",
  );
});

Deno.test("catalog: a change to a case, its title, or the set of ids is named by id", async () => {
  const [first, second, third] = ALL_CASES;
  const golden = await catalogOf([first, second, third]);
  const current = await catalogOf([
    { ...first, title: `${first.title}, renamed` },
    { ...second, steps: [...second.steps, { kind: "wait", wait: 1 }] },
    { ...third, id: "99.1.1" },
  ]);
  assert.deepEqual(catalogChanges(golden, current), {
    added: ["99.1.1"],
    removed: [third.id],
    renamed: [first.id],
    changed: [second.id],
  });
  // Key order is not a change: the digest is of canonical JSON.
  const { ok, ...others } = second.expect;
  const reordered = { ...second, expect: { ...others, ok } };
  assert.deepEqual(await catalogOf([reordered]), await catalogOf([second]));
});

Deno.test("catalog: a case tests only peers its group names, and each peer of a group has cases", () => {
  for (const group of GROUPS) {
    for (const spec of group.cases) {
      for (const peer of spec.peers ?? []) assert.ok(group.peers.includes(peer), spec.id);
    }
    for (const peer of group.peers) {
      const tested = group.cases.some((c) => (c.peers ?? group.peers).includes(peer));
      assert.ok(tested, `group ${group.id} names ${peer}s but none of its cases tests one`);
    }
  }
});

if (import.meta.main && Deno.args.includes("--update")) {
  await Deno.writeTextFile(GOLDEN, goldenText(await catalogOf(ALL_CASES)));
  console.log(`wrote ${ALL_CASES.length} cases to ${GOLDEN.pathname}`);
}
