/**
 * Client mode's browser drivers: a real browser's WebSocket is the client
 * under test. Each driver starts one browser from the system's own packages
 * (Debian's chromium, firefox-esr, WebKitGTK's MiniBrowser under Xvfb; never a
 * downloaded build), headless, with a fresh profile that keeps it off the
 * network, on one page the driver serves on 127.0.0.1. The page runs the echo
 * client (harness/echo_client.js, the embedded client's code) for every case.
 *
 * The control channel is not a WebSocket, the thing under test: commands go to
 * the page as Server-Sent Events, its events come back as POSTed JSON arrays.
 * A browser that never runs a case (it refuses the URL) reports "failed" with
 * the reason; a browser process that exits, or a page that crashes, ends
 * every connection with the reason; stop() always stops the browser's whole
 * process group (and its Xvfb) by PID and removes its profile.
 */
import { type ReadyChild, spawnReady, stopChild } from "./child.ts";
import {
  type ClientCommand,
  type ClientDriver,
  type ClientEvent,
  ClientStartError,
  type DriverOptions,
  EchoClientDriver,
} from "./client_driver.ts";

export type BrowserKind = "chromium" | "firefox" | "webkit";
export const BROWSER_KINDS: readonly BrowserKind[] = ["chromium", "firefox", "webkit"];

export interface BrowserOptions extends DriverOptions {
  /** Another binary of this kind (`--browser PATH`); default the Debian package's. */
  binary?: string;
}

/** The page must load and connect its command stream within this, by default. */
const DEFAULT_READY_TIMEOUT_MS = 30_000;
const DEFAULT_GRACE_MS = 2000;
/** How long the page has to reconnect its command stream before it counts as gone. */
const PAGE_RECONNECT_MS = 5000;
/** How long `BINARY --version` may take to name the browser. */
const VERSION_TIMEOUT_MS = 5000;

/** Where each kind's binary is installed, the first found wins, and the packages that install it. */
const INSTALLS: Record<BrowserKind, { binaries: string[]; packages: string }> = {
  chromium: { binaries: ["/usr/bin/chromium"], packages: "chromium" },
  firefox: { binaries: ["/usr/bin/firefox-esr", "/usr/bin/firefox"], packages: "firefox-esr" },
  webkit: {
    // Debian's multiarch directory is named after the architecture (x86_64, aarch64).
    binaries: ["4.1", "4.0"].map((api) =>
      `/usr/lib/${Deno.build.arch}-linux-gnu/webkit2gtk-${api}/MiniBrowser`
    ),
    packages: "webkit2gtk-driver xvfb",
  },
};
const XVFB = "/usr/bin/Xvfb";

/**
 * Firefox's preferences: no updates, telemetry, captive-portal or connectivity
 * checks, safe browsing or other chatter to the closed network; and no delay
 * between WebSocket connections after one failed (§7.2.3 is about reconnecting
 * to a server, while each case here is a new, independent connection).
 */
const FIREFOX_PREFS: Record<string, boolean | number | string> = {
  "app.update.auto": false,
  "app.update.enabled": false,
  "app.normandy.enabled": false,
  "browser.aboutwelcome.enabled": false,
  "browser.newtabpage.enabled": false,
  "browser.safebrowsing.downloads.remote.enabled": false,
  "browser.safebrowsing.malware.enabled": false,
  "browser.safebrowsing.phishing.enabled": false,
  "browser.safebrowsing.provider.google4.updateURL": "",
  "browser.shell.checkDefaultBrowser": false,
  "browser.startup.homepage_override.mstone": "ignore",
  "browser.startup.page": 0,
  "datareporting.healthreport.uploadEnabled": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "dom.push.enabled": false,
  "extensions.update.enabled": false,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "network.dns.disablePrefetch": true,
  "network.prefetch-next": false,
  "network.proxy.type": 0,
  "network.websocket.delay-failed-reconnects": false,
  "services.settings.server": "http://127.0.0.1:9/",
  "toolkit.telemetry.enabled": false,
  "toolkit.telemetry.server": "",
  "toolkit.telemetry.unified": false,
};

/** A browser's driver, which tells the browser's process while it runs. */
export interface BrowserDriver extends ClientDriver {
  /** The browser's process group (its leader's PID) and profile directory, while it runs. */
  readonly process?: { pid: number; profile: string };
}

/** Drives the `kind` browser's WebSocket; see the module's comment. */
export function browserClient(kind: BrowserKind, options: BrowserOptions = {}): BrowserDriver {
  return new BrowserClientDriver(
    kind,
    options.binary,
    options.graceMs ?? DEFAULT_GRACE_MS,
    options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
  );
}

class BrowserClientDriver extends EchoClientDriver implements BrowserDriver {
  agent?: string;
  /**
   * A browser's processes share the machine's cores with the suite: past 8 cases at once they
   * only compete (Chromium, 360 cases on 2 cores: 34 s at 32 jobs, 22 s at 8, 23 s at 4).
   */
  readonly jobs = 8;
  #browser?: Deno.ChildProcess;
  #display?: ReadyChild;
  #profile?: string;
  #control?: Deno.HttpServer<Deno.NetAddr>;
  /** The page's command stream, once it has connected. */
  #commands?: ReadableStreamDefaultController<Uint8Array>;
  /** Commands sent while the page had no stream (before it connected, or while it reconnects). */
  #pending: ClientCommand[] = [];
  #pageReady = Promise.withResolvers<string>();
  /** The browser's name and version, from `BINARY --version`, while it is asked. */
  #version?: Promise<string | undefined>;
  #versionAbort = new AbortController();
  /** Armed when the page's command stream closes: a page that does not reconnect is gone. */
  #pageLost?: ReturnType<typeof setTimeout>;
  #stopping = false;

  constructor(
    readonly kind: BrowserKind,
    readonly binary: string | undefined,
    graceMs: number,
    readonly readyTimeoutMs: number,
  ) {
    super(graceMs);
  }

  async start(): Promise<void> {
    let binary = this.binary;
    try {
      binary ??= findBinary(this.kind);
      await this.#start(binary);
    } catch (error) {
      await this.stop();
      if (error instanceof ClientStartError) throw error;
      if (error instanceof Deno.errors.NotCapable) {
        throw new ClientStartError(
          `${this.kind} needs permissions this run lacks (${messageOf(error)}): a browser needs ` +
            "--allow-read, --allow-write (its profile) and --allow-run (it and its helpers)",
        );
      }
      throw new ClientStartError(`cannot start ${this.kind} (${binary}): ${messageOf(error)}`);
    }
  }

  async #start(binary: string): Promise<void> {
    checkExecutable(binary, this.kind);
    const page = await pageFiles();
    this.#control = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) => this.#serve(request, page),
    );
    const pageUrl = `http://127.0.0.1:${this.#control.addr.port}/`;
    this.#profile = await Deno.makeTempDir({ prefix: `wsconform-${this.kind}-` });
    const env: Record<string, string> = { HOME: this.#profile };
    if (this.kind === "webkit") {
      checkExecutable(XVFB, this.kind);
      // -displayfd 1: Xvfb picks a free display and prints its number when it is ready.
      this.#display = await spawnReady(XVFB, {
        args: ["-displayfd", "1", "-nolisten", "tcp", "-screen", "0", "1280x800x24"],
        timeoutMs: this.readyTimeoutMs,
        what: "Xvfb",
      });
      env.DISPLAY = `:${this.#display.line.trim()}`;
    }
    this.#version = browserVersion(binary, env, this.#versionAbort.signal);
    if (this.kind === "firefox") await writeFirefoxPrefs(this.#profile);
    // Detached: the browser leads a process group, so stopping it stops its helpers too.
    const browser = this.#browser = new Deno.Command(binary, {
      args: browserArgs(this.kind, this.#profile, pageUrl),
      env,
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true,
    }).spawn();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ready = await Promise.race([
      this.#pageReady.promise,
      browser.status.then((status) =>
        new ClientStartError(
          `${this.kind} (${binary}) exited before its page was ready (code ${status.code})`,
        )
      ),
      new Promise<ClientStartError>((resolve) =>
        timer = setTimeout(
          () =>
            resolve(
              new ClientStartError(
                `${this.kind} (${binary}) did not load its page within ${this.readyTimeoutMs} ms`,
              ),
            ),
          this.readyTimeoutMs,
        )
      ),
    ]);
    clearTimeout(timer);
    if (ready instanceof ClientStartError) throw ready;
    this.agent = await this.#version ?? ready;
    // A browser that dies leaves no connection waiting for events that cannot come.
    browser.status.then((status) =>
      this.clientGone(`${this.kind}'s process exited (code ${status.code})`)
    );
  }

  get process(): { pid: number; profile: string } | undefined {
    return this.#browser && this.#profile
      ? { pid: this.#browser.pid, profile: this.#profile }
      : undefined;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await this.stopConnections();
    this.#versionAbort.abort();
    await this.#version;
    if (this.#browser) await stopGroup(this.#browser, this.graceMs);
    await this.#display?.stop();
    // The command stream ends first: shutdown() waits for the responses in flight.
    try {
      this.#commands?.close();
    } catch { /* the page closed it */ }
    await this.#control?.shutdown();
    clearTimeout(this.#pageLost);
    if (this.#profile) await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
    this.#browser =
      this.#display =
      this.#control =
      this.#profile =
      this.#commands =
        undefined;
  }

  protected send(command: ClientCommand): void {
    if (!this.#commands) return void this.#pending.push(command);
    try {
      this.#commands.enqueue(new TextEncoder().encode(`data: ${JSON.stringify(command)}\n\n`));
    } catch {
      // The page's stream is closed: the command waits for the page to reconnect.
      this.#commands = undefined;
      this.#pending.push(command);
    }
  }

  async #serve(request: Request, page: PageFiles): Promise<Response> {
    const url = new URL(request.url);
    if (request.method === "GET" && url.pathname === "/") return page.html;
    if (request.method === "GET" && url.pathname === "/echo_client.js") return page.script;
    if (request.method === "GET" && url.pathname === "/commands") {
      let stream!: ReadableStreamDefaultController<Uint8Array>;
      const body = new ReadableStream<Uint8Array>({
        start: (controller) => {
          clearTimeout(this.#pageLost);
          stream = this.#commands = controller;
          // Should the stream break with the page alive, it reconnects within a second.
          controller.enqueue(new TextEncoder().encode("retry: 1000\n\n"));
          for (const command of this.#pending.splice(0)) this.send(command);
          this.#pageReady.resolve(url.searchParams.get("agent") ?? this.kind);
        },
        cancel: () => {
          if (this.#commands !== stream || this.#stopping) return;
          this.#commands = undefined;
          // The page crashed, or the browser is exiting (its own reason then comes first).
          this.#pageLost = setTimeout(
            () => this.clientGone(`${this.kind}'s page closed its command stream`),
            PAGE_RECONNECT_MS,
          );
        },
      });
      return new Response(body, {
        headers: { "content-type": "text/event-stream", "cache-control": "no-store" },
      });
    }
    if (request.method === "POST" && url.pathname === "/events") {
      const reports = JSON.parse(await request.text()) as ({ id: number } & ClientEvent)[];
      for (const report of reports) this.onEvent(report);
      return new Response(null, { status: 204 });
    }
    return new Response("not found\n", { status: 404 });
  }
}

/** The page and the echo client's module, served as they are for every request. */
interface PageFiles {
  readonly html: Response;
  readonly script: Response;
}

const PAGE_HTML = `<!doctype html>
<meta charset="utf-8">
<title>wsconform</title>
<script type="module">
  import { runInPage } from "/echo_client.js";
  runInPage();
</script>
`;

async function pageFiles(): Promise<PageFiles> {
  const source = await (await fetch(new URL("./echo_client.js", import.meta.url))).text();
  const noStore = { "cache-control": "no-store" };
  return {
    get html() {
      return new Response(PAGE_HTML, { headers: { ...noStore, "content-type": "text/html" } });
    },
    get script() {
      return new Response(source, { headers: { ...noStore, "content-type": "text/javascript" } });
    },
  };
}

/** The binary of `kind` that Debian's packages installed, if they did (and Xvfb for WebKit). */
export function browserBinary(kind: BrowserKind): string | undefined {
  if (kind === "webkit" && !isFile(XVFB)) return undefined;
  return INSTALLS[kind].binaries.find((path) => isFile(path));
}

/** The installed binary of `kind`; else a ClientStartError that says how to install it. */
function findBinary(kind: BrowserKind): string {
  const found = browserBinary(kind);
  if (found) return found;
  throw new ClientStartError(
    `${kind} not found: install Debian's package: apt-get install ${INSTALLS[kind].packages}`,
  );
}

function checkExecutable(path: string, kind: BrowserKind): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new ClientStartError(
      path === XVFB
        ? `Xvfb not found (${kind} needs a display): install Debian's package: apt-get install xvfb`
        : `${path} does not exist`,
    );
  }
  if (!info.isFile || !((info.mode ?? 0o111) & 0o111)) {
    throw new ClientStartError(`${path} is not an executable file`);
  }
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error; // not looked at, so not missing
    return false;
  }
}

function browserArgs(kind: BrowserKind, profile: string, pageUrl: string): string[] {
  switch (kind) {
    case "chromium":
      return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        // The page is never in front; its timers and sockets must not be slowed down for that.
        "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows",
        "--no-proxy-server",
        `--user-data-dir=${profile}`,
        pageUrl,
      ];
    case "firefox":
      return ["--headless", "--no-remote", "--profile", profile, pageUrl];
    case "webkit":
      return ["--private", pageUrl];
  }
}

async function writeFirefoxPrefs(profile: string): Promise<void> {
  const lines = Object.entries(FIREFOX_PREFS).map(([name, value]) =>
    `user_pref(${JSON.stringify(name)}, ${JSON.stringify(value)});\n`
  );
  await Deno.writeTextFile(`${profile}/user.js`, lines.join(""));
}

/** The first line of `BINARY --version` ("Chromium 156.0.8078.108"), else undefined; bounded. */
async function browserVersion(
  binary: string,
  env: Record<string, string>,
  signal: AbortSignal,
): Promise<string | undefined> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(binary, {
      args: ["--version"],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
  } catch {
    return undefined; // starting the browser itself says why
  }
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch { /* it has exited */ }
  };
  const timer = setTimeout(kill, VERSION_TIMEOUT_MS);
  signal.addEventListener("abort", kill);
  try {
    const output = await child.output();
    const line = new TextDecoder().decode(output.stdout).trim().split("\n")[0];
    // Chromium adds " built on Debian GNU/Linux 12 (bookworm)".
    return output.success && line ? line.replace(/ built on .*$/, "") : undefined;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", kill);
  }
}

/** Stops a process group led by `child`: SIGTERM, then SIGKILL after `graceMs`, by its PID. */
async function stopGroup(child: Deno.ChildProcess, graceMs: number): Promise<void> {
  const signalGroup = (signal: Deno.Signal) => {
    try {
      Deno.kill(-child.pid, signal);
    } catch {
      // No permission to signal a group (--allow-run=PROGRAM), or it is gone: the leader alone.
      child.kill(signal);
    }
  };
  await stopChild(child, graceMs, signalGroup);
  // Helpers that outlived the leader (a renderer, a content process) go too.
  try {
    Deno.kill(-child.pid, "SIGKILL");
  } catch { /* none left */ }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
