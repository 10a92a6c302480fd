/**
 * What a run prints while it goes, and its per-group table.
 *
 * On a terminal: one live line (cases done/total, failures so far, the group
 * of the last finished case, elapsed time) redrawn in place with \r, cleared
 * when the run ends. Elsewhere (a CI log, a pipe): one plain line per finished
 * group and no control characters at all. Colour only on a terminal, and only
 * when NO_COLOR is unset or empty (https://no-color.org).
 *
 * Everything goes through an injected `write`, so tests can drive either mode.
 */
import { type CaseSpec, groupOf, type GroupSpec } from "./case.ts";
import { isFailing, type Verdict } from "./verdict.ts";

export interface ProgressOptions {
  /** Output is a terminal: live line, and colour unless NO_COLOR says otherwise. */
  isTTY: boolean;
  /** Environment lookup (for NO_COLOR). */
  env?: (name: string) => string | undefined;
  /** Writes text exactly as given. */
  write: (text: string) => void;
  /** Milliseconds, monotonic; default performance.now. */
  now?: () => number;
  /** Terminal width; the live line is cut to fit. Default 80. */
  columns?: number;
  /** Redraw period of the live line in ms, so the elapsed time moves; 0: only as cases finish. */
  tickMs?: number;
  /** NON-STRICT counts as a failure. */
  strict?: boolean;
  /** The case catalog: group titles for the lines. */
  groups: readonly GroupSpec[];
}

/** A finished case, as far as progress cares. */
export interface Finished {
  spec: Pick<CaseSpec, "id">;
  verdict: Pick<Verdict, "behavior" | "behaviorClose">;
}

export type Style = "red" | "green" | "yellow" | "bold" | "dim";
const SGR: Record<Style, string> = {
  red: "\x1b[31m",
  green: "\x1b[32m",
  yellow: "\x1b[33m",
  bold: "\x1b[1m",
  dim: "\x1b[2m",
};

/** Colour is on for a terminal when NO_COLOR is unset or empty. */
export function colorEnabled(isTTY: boolean, env?: (name: string) => string | undefined): boolean {
  return isTTY && !(env?.("NO_COLOR") ?? "");
}

/**
 * Replaces control characters (C0 but LF, DEL, C1) with "?": text from a peer
 * (a Server header) must not move the cursor or recolour a terminal, and a log
 * gets none at all.
 */
export function sanitize(text: string): string {
  // deno-lint-ignore no-control-regex -- control characters are what this matches
  return text.replace(/[\u0000-\u0009\u000B-\u001F\u007F-\u009F]/g, "?");
}

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export class Progress {
  readonly tty: boolean;
  readonly color: boolean;
  readonly strict: boolean;
  readonly groups: readonly GroupSpec[];
  #write: (text: string) => void;
  #now: () => number;
  #columns: number;
  #tickMs: number;
  #timer?: ReturnType<typeof setInterval>;
  #running = false;
  #liveShown = false;
  #lastDraw = -Infinity;
  #started = 0;
  #total = 0;
  #done = 0;
  #failed = 0;
  #group = "";
  #remaining = new Map<string, number>();
  #groupFailed = new Map<string, number>();
  #groupSize = new Map<string, number>();

  constructor(options: ProgressOptions) {
    this.tty = options.isTTY;
    this.color = colorEnabled(options.isTTY, options.env);
    this.strict = options.strict ?? false;
    this.groups = options.groups;
    this.#write = options.write;
    this.#now = options.now ?? (() => performance.now());
    this.#columns = Math.max(20, options.columns ?? 80);
    this.#tickMs = options.tickMs ?? 250;
  }

  /** Wraps text in a colour or style when colour is on; leaves it alone otherwise. */
  paint(text: string, style: Style): string {
    return this.color && text ? `${SGR[style]}${text}\x1b[0m` : text;
  }

  /** Writes full lines of normal output (one or more, separated by \n). */
  line(text = ""): void {
    if (!this.tty) {
      this.#write(sanitize(text) + "\n");
      return;
    }
    this.#clearLive();
    this.#write(text + "\n");
    if (this.#running) this.#draw(true);
  }

  /** Starts a run of these cases. */
  begin(cases: readonly Pick<CaseSpec, "id">[]): void {
    this.#running = true;
    this.#started = this.#now();
    this.#total = cases.length;
    this.#done = this.#failed = 0;
    this.#group = "";
    this.#remaining.clear();
    this.#groupFailed.clear();
    this.#groupSize.clear();
    for (const c of cases) {
      const g = groupOf(this.groups, c.id)?.id ?? c.id.split(".")[0];
      this.#remaining.set(g, (this.#remaining.get(g) ?? 0) + 1);
      this.#groupSize.set(g, (this.#groupSize.get(g) ?? 0) + 1);
    }
    if (this.tty) {
      this.#draw(true);
      if (this.#tickMs > 0) {
        const timer = setInterval(() => this.#draw(true), this.#tickMs);
        Deno.unrefTimer(timer);
        this.#timer = timer;
      }
    }
  }

  /** Records a finished case. */
  caseDone(run: Finished): void {
    const group = groupOf(this.groups, run.spec.id);
    const g = group?.id ?? run.spec.id.split(".")[0];
    const bad = isFailing(run.verdict, this.strict);
    this.#done++;
    if (bad) {
      this.#failed++;
      this.#groupFailed.set(g, (this.#groupFailed.get(g) ?? 0) + 1);
    }
    this.#group = group ? `${group.id} ${group.title}` : g;
    const left = (this.#remaining.get(g) ?? 1) - 1;
    this.#remaining.set(g, left);
    if (this.tty) {
      this.#draw(false);
    } else if (left === 0) {
      const size = this.#groupSize.get(g) ?? 0;
      const failed = this.#groupFailed.get(g) ?? 0;
      this.line(
        `  group ${g} (${group?.title ?? g}) done: ${size} case${size === 1 ? "" : "s"}, ` +
          `${failed} failed`,
      );
    }
  }

  /** Ends the run: stops redrawing and clears the live line. */
  end(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#running = false;
    this.#clearLive();
  }

  /** The live line's text (without control characters other than colour). */
  status(): string {
    const failed = `${this.#failed} failed`;
    const parts = [
      `${this.#done}/${this.#total} cases`,
      this.#failed > 0 ? this.paint(failed, "red") : failed,
      ...(this.#group ? [this.#group] : []),
      formatSeconds(this.#now() - this.#started),
    ];
    return `  ${parts.join(" · ")}`;
  }

  #draw(force: boolean): void {
    if (!this.tty || !this.#running) return;
    const now = this.#now();
    // Redraw at most every 50 ms as cases finish (hundreds finish within a second).
    if (!force && now - this.#lastDraw < 50 && this.#done < this.#total) return;
    this.#lastDraw = now;
    this.#write(`\r\x1b[K${this.#fit(this.status())}`);
    this.#liveShown = true;
  }

  /** Cuts the live line to the terminal width (colour codes take no columns). */
  #fit(text: string): string {
    const max = this.#columns - 1;
    let visible = 0, out = "";
    for (let i = 0; i < text.length;) {
      // deno-lint-ignore no-control-regex -- control characters are what this matches
      const escape = /^\x1b\[[0-9;]*m/.exec(text.slice(i));
      if (escape) {
        out += escape[0];
        i += escape[0].length;
        continue;
      }
      if (visible === max) break;
      const ch = String.fromCodePoint(text.codePointAt(i)!);
      out += ch;
      i += ch.length;
      visible++;
    }
    return this.color && out !== text ? out + "\x1b[0m" : out;
  }

  #clearLive(): void {
    if (this.#liveShown) this.#write("\r\x1b[K");
    this.#liveShown = false;
  }
}

/** The per-group table of a run, and its total line's counts. */
export function summaryTable(
  runs: readonly Finished[],
  options: {
    groups: readonly GroupSpec[];
    strict?: boolean;
    paint?: (text: string, style: Style) => string;
  },
): { text: string; failed: number } {
  const strict = options.strict ?? false;
  const paint = options.paint ?? ((t: string) => t);
  const pad = (s: string | number, n: number) => String(s).padEnd(n);
  const lines = [
    paint(
      `${pad("group", 44)}${pad("cases", 7)}${pad("ok", 6)}${pad("non-strict", 12)}${
        pad("info", 6)
      }${pad("unimpl.", 9)}failed`,
      "bold",
    ),
  ];
  let failed = 0;
  for (const group of options.groups) {
    const mine = runs.filter((r) => groupOf(options.groups, r.spec.id) === group);
    if (mine.length === 0) continue;
    const count = (b: string) => mine.filter((r) => r.verdict.behavior === b).length;
    const bad = mine.filter((r) => isFailing(r.verdict, strict)).length;
    failed += bad;
    const okCount = mine.filter((r) => !isFailing(r.verdict, strict) && r.verdict.behavior === "OK")
      .length;
    lines.push(
      `${pad(`${group.id} ${group.title}`, 44)}${pad(mine.length, 7)}${pad(okCount, 6)}${
        pad(count("NON-STRICT"), 12)
      }${pad(count("INFORMATIONAL"), 6)}${pad(count("UNIMPLEMENTED"), 9)}${
        bad > 0 ? paint(String(bad), "red") : bad
      }`,
    );
  }
  return { text: lines.join("\n"), failed };
}
