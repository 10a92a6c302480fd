/**
 * Autobahn|Testsuite's spec files, read so an existing Autobahn setup runs
 * unchanged. fuzzingclient.json, the spec of `wstest -m fuzzingclient`
 * (wsconform tests servers):
 *
 *     {"outdir": "./reports/servers",
 *      "servers": [{"agent": "MyServer", "url": "ws://127.0.0.1:9001", "options": {"version": 18},
 *                   "protocols": ["chat"], "origin": "https://app.example"}],
 *      "cases": ["*"],
 *      "exclude-cases": ["9.*", "12.*", "13.*"],
 *      "exclude-agent-cases": {"MyServer*": ["7.*"]}}
 *
 * and fuzzingserver.json, the spec of `wstest -m fuzzingserver` (wsconform is
 * the server and tests the clients that connect, `--serve`):
 *
 *     {"url": "ws://127.0.0.1:9001", "outdir": "./reports/clients",
 *      "cases": ["*"], "exclude-cases": [], "exclude-agent-cases": {}}
 *
 * Pure: parses and validates text; the command line runs what it describes.
 */

export class SpecError extends Error {}

export interface SpecServer {
  /** Absent: the Server header, else host:port, as on the command line. */
  agent?: string;
  url: URL;
  /** Subprotocols offered in every handshake, as Autobahn's client offers them. */
  protocols?: string[];
  /** The Origin of every handshake. */
  origin?: string;
}

/** The case selection both specs share. */
export interface CaseSelection {
  /** Case ids or globs to run (default ["*"]). */
  cases: string[];
  /** Case ids or globs to skip for every server. */
  excludeCases: string[];
  /** Agent glob to case ids or globs skipped for the agents it matches. */
  excludeAgentCases: Record<string, string[]>;
}

export interface FuzzingSpec extends CaseSelection {
  outdir: string;
  servers: SpecServer[];
}

/** fuzzingserver.json: where the suite listens for the clients, and what it runs. */
export interface FuzzingServerSpec extends CaseSelection {
  /** Absent: client mode's default. */
  outdir?: string;
  /** Its scheme (ws: or wss:) and port; the suite listens on 127.0.0.1 whatever the host. */
  url: URL;
}

export const DEFAULT_OUTDIR = "reports/servers";

const SELECTION_FIELDS = ["cases", "exclude-cases", "exclude-agent-cases"];
const TOP_LEVEL = ["outdir", "servers", "options", ...SELECTION_FIELDS];
const SERVER_SPEC_TOP_LEVEL = ["url", "outdir", "options", ...SELECTION_FIELDS];
const SERVER_FIELDS = ["agent", "url", "options", "protocols", "origin"];
/** Autobahn's protocol version number for RFC 6455 (it sends Sec-WebSocket-Version: 13). */
const RFC6455_VERSION = 18;

/** Checks a WebSocket URL as the command line does; returns the URL or why it is not one. */
export function parseWsUrl(text: string): URL | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `not a URL: ${text}`;
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    return `the URL must start with ws:// or wss://, got ${url.protocol}//`;
  }
  if (url.hash) return "a WebSocket URL must not have a #fragment (RFC 6455 §3)";
  return url;
}

/** fnmatch-style: `*` any characters, `?` one character, everything else literal. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*")
    .replaceAll("?", ".");
  return new RegExp(`^${body}$`, "s");
}

export function globMatches(glob: string, text: string): boolean {
  return globToRegExp(glob).test(text);
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function stringList(value: unknown, where: string): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw new SpecError(`${where} must be a list of strings (case ids or globs)`);
  }
  return value.map((v) => v.trim()).filter((v) => v.length > 0);
}

/** A spec file's JSON object; anything else throws a SpecError naming `source`. */
function specObject(text: string, source: string): Record<string, unknown> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new SpecError(`${source}: not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(data)) throw new SpecError(`${source}: expected a JSON object`);
  return data;
}

/**
 * Parses a spec. Structural problems throw a SpecError (naming `source`);
 * fields wsconform does not use are reported in `warnings` and ignored.
 */
export function parseSpec(
  text: string,
  source = "spec",
): { spec: FuzzingSpec; warnings: string[] } {
  const data = specObject(text, source);
  const warnings: string[] = [];
  const warn = (message: string) => warnings.push(`${source}: ${message}`);

  checkTopLevel(data, TOP_LEVEL, warn);
  const outdir = parseOutdir(data, source) ?? DEFAULT_OUTDIR;

  if (data.servers === undefined) throw new SpecError(`${source}: "servers" is missing`);
  if (!Array.isArray(data.servers) || data.servers.length === 0) {
    throw new SpecError(`${source}: "servers" must be a non-empty list`);
  }
  const servers: SpecServer[] = [];
  const agents = new Set<string>();
  data.servers.forEach((entry: unknown, i: number) => {
    const where = `${source}: servers[${i}]`;
    if (!isObject(entry)) throw new SpecError(`${where} must be an object`);
    for (const key of Object.keys(entry)) {
      if (!SERVER_FIELDS.includes(key)) warn(`servers[${i}]: unknown field "${key}" ignored`);
    }
    if (typeof entry.url !== "string") throw new SpecError(`${where}: "url" is missing`);
    const url = parseWsUrl(entry.url);
    if (typeof url === "string") throw new SpecError(`${where}: ${url}`);
    let agent: string | undefined;
    if (entry.agent !== undefined) {
      if (typeof entry.agent !== "string" || entry.agent.trim() === "") {
        throw new SpecError(`${where}: "agent" must be a non-empty string`);
      }
      agent = entry.agent;
      if (agents.has(agent)) {
        throw new SpecError(
          `${where}: agent "${agent}" appears twice; its reports would overwrite each other`,
        );
      }
      agents.add(agent);
    }
    if (entry.options !== undefined) {
      if (!isObject(entry.options)) throw new SpecError(`${where}: "options" must be an object`);
      for (const [key, value] of Object.entries(entry.options)) {
        if (key === "version") {
          if (value !== RFC6455_VERSION) {
            warn(
              `servers[${i}]: options.version ${
                JSON.stringify(value)
              } ignored: wsconform speaks RFC 6455 (Autobahn's version 18) only`,
            );
          }
        } else {
          warn(`servers[${i}]: option "${key}" is not supported and is ignored`);
        }
      }
    }
    const { protocols, origin } = entry;
    if (
      protocols !== undefined &&
      !(Array.isArray(protocols) && protocols.every((p) => typeof p === "string"))
    ) {
      throw new SpecError(`${where}: "protocols" must be a list of subprotocol names`);
    }
    if (origin !== undefined && typeof origin !== "string") {
      throw new SpecError(`${where}: "origin" must be a string`);
    }
    servers.push({
      ...(agent !== undefined ? { agent } : {}),
      url,
      ...(protocols !== undefined ? { protocols } : {}),
      ...(origin !== undefined ? { origin } : {}),
    });
  });

  return { spec: { outdir, servers, ...parseSelection(data, source) }, warnings };
}

/** Warns of the top-level fields wsconform does not use, Autobahn's "options" among them. */
function checkTopLevel(data: Json, known: string[], warn: (message: string) => void): void {
  for (const key of Object.keys(data)) {
    if (!known.includes(key)) warn(`unknown field "${key}" ignored`);
  }
  if (
    data.options !== undefined && !(isObject(data.options) && !Object.keys(data.options).length)
  ) {
    warn(`"options" is not supported by wsconform and is ignored`);
  }
}

function parseOutdir(data: Json, source: string): string | undefined {
  if (data.outdir === undefined) return undefined;
  if (typeof data.outdir !== "string" || data.outdir.trim() === "") {
    throw new SpecError(`${source}: "outdir" must be a non-empty string`);
  }
  return data.outdir;
}

function parseSelection(data: Json, source: string): CaseSelection {
  const cases = data.cases === undefined ? ["*"] : stringList(data.cases, `${source}: "cases"`);
  const excludeCases = data["exclude-cases"] === undefined
    ? []
    : stringList(data["exclude-cases"], `${source}: "exclude-cases"`);
  const excludeAgentCases: Record<string, string[]> = {};
  const perAgent = data["exclude-agent-cases"];
  if (perAgent !== undefined) {
    if (!isObject(perAgent)) {
      throw new SpecError(
        `${source}: "exclude-agent-cases" must map agent globs to lists of case globs`,
      );
    }
    for (const [glob, list] of Object.entries(perAgent)) {
      excludeAgentCases[glob] = stringList(list, `${source}: "exclude-agent-cases"."${glob}"`);
    }
  }
  return { cases, excludeCases, excludeAgentCases };
}

/**
 * Whether `text` reads as a fuzzingserver.json (a "url" and no "servers"),
 * which `--spec` runs as `--serve` does; anything else is read as a
 * fuzzingclient.json, whose errors then say what is wrong.
 */
export function isServerSpec(text: string): boolean {
  try {
    const data: unknown = JSON.parse(text);
    return isObject(data) && "url" in data && !("servers" in data);
  } catch {
    return false;
  }
}

/**
 * Parses a fuzzingserver.json. Structural problems throw a SpecError (naming
 * `source`); fields wsconform does not use are reported in `warnings`.
 */
export function parseServerSpec(
  text: string,
  source = "spec",
): { spec: FuzzingServerSpec; warnings: string[] } {
  const data = specObject(text, source);
  const warnings: string[] = [];
  const warn = (message: string) => warnings.push(`${source}: ${message}`);
  checkTopLevel(data, SERVER_SPEC_TOP_LEVEL, warn);
  if (typeof data.url !== "string") throw new SpecError(`${source}: "url" is missing`);
  const url = parseWsUrl(data.url);
  if (typeof url === "string") throw new SpecError(`${source}: "url": ${url}`);
  if (!["127.0.0.1", "localhost", "[::1]"].includes(url.hostname)) {
    warn(`"url": host ${url.hostname} ignored: wsconform listens on 127.0.0.1 only`);
  }
  return {
    spec: {
      url,
      outdir: parseOutdir(data, source),
      ...parseSelection(data, source),
    },
    warnings,
  };
}

/** The port a spec's URL names, else its scheme's (80, 443), as Autobahn listens. */
export function specPort(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === "wss:" ? 443 : 80;
}

/** The case patterns one agent runs and skips: exclude-cases plus its exclude-agent-cases. */
export function selectionFor(
  spec: CaseSelection,
  agent: string,
): { include: string[]; exclude: string[] } {
  const exclude = [...spec.excludeCases];
  for (const [glob, list] of Object.entries(spec.excludeAgentCases)) {
    if (globMatches(glob, agent)) exclude.push(...list);
  }
  return { include: [...spec.cases], exclude };
}

/** Every case pattern the spec names, for checking each against the suite's cases. */
export function specPatterns(spec: CaseSelection): string[] {
  return [
    ...new Set([
      ...spec.cases,
      ...spec.excludeCases,
      ...Object.values(spec.excludeAgentCases).flat(),
    ]),
  ];
}
