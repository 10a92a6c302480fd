/**
 * Starts node's `ws` echo server (tests/peers/ws_echo.cjs), a real third-party
 * peer: `.ci/run` installs ws 8.23.0 and names its folder in WS_PEER_DIR.
 */
import { spawnReady } from "../../harness/child.ts";

/** The folder ws is installed in, when WS_PEER_DIR names one that holds it. */
export function wsPeerDir(): string | undefined {
  const dir = Deno.env.get("WS_PEER_DIR");
  try {
    return dir && Deno.statSync(`${dir}/node_modules/ws/package.json`).isFile ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** Starts the ws echo server (with permessage-deflate if asked); stops it by its PID. */
export async function startWsEcho(
  options: { deflate?: boolean } = {},
): Promise<{ url: string; close(): Promise<void> }> {
  const dir = wsPeerDir();
  if (!dir) throw new Error("node's ws is not installed: set WS_PEER_DIR (see .ci/run)");
  const child = await spawnReady("node", {
    args: [
      new URL("./ws_echo.cjs", import.meta.url).pathname,
      ...options.deflate ? ["--deflate"] : [],
    ],
    env: { NODE_PATH: `${dir}/node_modules` },
    timeoutMs: 10_000,
    what: "the ws echo server",
  });
  const port = Number(child.line.trim());
  if (!Number.isInteger(port) || port <= 0) {
    await child.stop();
    throw new Error(`unexpected output from the ws echo server: ${child.line}`);
  }
  return { url: `ws://127.0.0.1:${port}/`, close: child.stop };
}
