/**
 * The `deno test` adapter (harness/testing.ts), as a project uses it: the
 * README's example runs in a `deno test` of its own against the strict server,
 * and passes; against a server that breaks one MUST, the steps of the cases
 * checking it fail, and so does the run.
 *
 *   deno test --allow-all tests/adapter_test.ts
 */
import assert from "node:assert/strict";
import { type Flaw, startStrictServer } from "./peers/strict_server.ts";

const MOD = new URL("../harness/mod.ts", import.meta.url).href;
const README = new URL("../README.md", import.meta.url);
/** Bound on one `deno test` run of the example (type check included, on a busy machine). */
const RUN_MS = 180_000;

/** The README's adapter example, importing this checkout's harness/mod.ts. */
async function readmeExample(): Promise<string> {
  const text = await Deno.readTextFile(README);
  const block = /<!-- adapter example[^>]*-->\s*```ts\n([\s\S]*?)```/.exec(text);
  assert.ok(block, "README has the adapter example");
  const source = block[1].replace('"./wsconform/harness/mod.ts"', JSON.stringify(MOD));
  assert.notEqual(source, block[1], "the example imports harness/mod.ts");
  return source;
}

/** Runs the example with `deno test` against a strict server with `flaws`. */
async function runExample(flaws: Flaw[]): Promise<{ code: number; output: string }> {
  const server = startStrictServer({ flaws });
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/conformance_test.ts`;
    await Deno.writeTextFile(file, await readmeExample());
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--allow-net=127.0.0.1", "--allow-env=WS_URL", file],
      env: { WS_URL: server.url, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(RUN_MS),
    }).output();
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    return { code: out.code, output: decode(out.stdout) + decode(out.stderr) };
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("adapter: the README example passes against the strict server, a step per case", async () => {
  const { code, output } = await runExample([]);
  assert.equal(code, 0, output);
  assert.match(output, /wsconform: group 1 Framing \.\.\./);
  assert.match(output, /wsconform: group 2 Pings and pongs \.\.\./);
  assert.match(output, /^\s+1\.1\.1 .* \.\.\. ok/m);
  assert.match(output, /^\s+2\.3 .* \.\.\. ok/m);
  assert.match(output, /ok \| 2 passed \(27 steps\) \| 0 failed/);
});

Deno.test("adapter: a server without pongs fails the steps of the pong cases, and the run", async () => {
  const { code, output } = await runExample(["no-pong"]);
  assert.notEqual(code, 0, output);
  // Group 1 keeps passing; group 2's ping cases fail, each with its verdict and reason.
  assert.match(output, /^\s+1\.1\.1 .* \.\.\. ok/m);
  assert.match(output, /^\s+2\.2 .* \.\.\. FAILED/m);
  assert.match(output, /2\.2 .*: FAILED\/\w+/);
  assert.match(output, /requirement \(RFC 6455 §5\.5\.2/);
  assert.match(output, /1 passed \(\d+ steps\) \| 1 failed \(\d+ steps\)/);
});
