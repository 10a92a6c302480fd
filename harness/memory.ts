/**
 * Frees the suite's garbage before a heavy case. V8 frees the memory behind
 * dead ArrayBuffers lazily: heavy cases one after another (16 MiB echoed, then
 * 8 MiB, ...) piled up over 100 MB of dead buffers beside what the next case
 * holds, and a full run peaked anywhere from 220 to 290 MB.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

setFlagsFromString("--expose-gc");
const collect = runInNewContext("gc") as (() => void) | undefined;

/** Buffer memory above which releaseMemory() collects (a collection costs 10-30 ms). */
const COLLECT_ABOVE_BYTES = 64 * 1024 * 1024;

/** Collects garbage when buffers hold more than COLLECT_ABOVE_BYTES. */
export function releaseMemory(): void {
  if (typeof collect === "function" && Deno.memoryUsage().external > COLLECT_ABOVE_BYTES) {
    collect();
  }
}
