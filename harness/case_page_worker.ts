/// <reference lib="deno.worker" />
/** Writes case pages for CasePages (html.ts), off the thread that runs the cases. */
import { type CasePageJob, writeCasePageJob } from "./html.ts";

self.onmessage = (e: MessageEvent<CasePageJob & { job: number }>) => {
  const { job, ...page } = e.data;
  self.postMessage({ job, written: writeCasePageJob(page) });
};
