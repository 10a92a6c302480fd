/**
 * RFC 6455 §4 opening handshake, the server's side. Pure: reads a client's
 * request head and judges it against §4.1 and §4.2.1, parses and formats the
 * Sec-WebSocket-Extensions (§9.1) and Sec-WebSocket-Protocol (§4.1 item 10)
 * lists, and builds the server's answer, changed as a case describes. No I/O.
 */

import type { Level, ResponseChanges } from "./case.ts";

export type { ResponseChanges };
import {
  acceptFor,
  changeRequest,
  type HeaderList,
  headerTokens,
  headerValues,
  type HttpHead,
  TOKEN,
} from "./handshake.ts";

/** One extension of a Sec-WebSocket-Extensions list, with its parameters in order. */
export interface ExtensionOffer {
  name: string;
  /** A parameter without a value (`client_max_window_bits`) has `value` undefined. */
  params: { name: string; value?: string }[];
}

export type ListParse<T> =
  | { type: "list"; items: T[] }
  | { type: "error"; reason: string };

/** TOKEN, matched where the parser stands. */
const TOKEN_AT = new RegExp(TOKEN.source.slice(1, -1), "y");

/**
 * Parses Sec-WebSocket-Extensions, one string per header line (several lines
 * make one list, §9.1): `name *( ";" param [ "=" ( token / quoted-string ) ] )`,
 * comma-separated, with optional whitespace around the separators. A quoted
 * value must be a token once unescaped (§9.1). Empty list elements are
 * skipped (RFC 2616 §2.1's #rule, which §9.1 uses); an empty list is an error.
 */
export function parseExtensions(lines: string | readonly string[]): ListParse<ExtensionOffer> {
  const items: ExtensionOffer[] = [];
  for (const line of typeof lines === "string" ? [lines] : lines) {
    const error = parseExtensionLine(line, items);
    if (error) return { type: "error", reason: `Sec-WebSocket-Extensions ${error}` };
  }
  return items.length > 0
    ? { type: "list", items }
    : { type: "error", reason: "Sec-WebSocket-Extensions lists no extension" };
}

/** Appends the extensions of one header line to `out`; returns what is wrong, if anything. */
function parseExtensionLine(text: string, out: ExtensionOffer[]): string | undefined {
  let at = 0;
  const skipSpace = () => {
    while (text[at] === " " || text[at] === "\t") at++;
  };
  const token = (): string | undefined => {
    TOKEN_AT.lastIndex = at;
    const match = TOKEN_AT.exec(text);
    if (match) at += match[0].length;
    return match?.[0];
  };
  const quoted = (): string | undefined => {
    let value = "";
    for (let i = at + 1; i < text.length; i++) {
      if (text[i] === '"') {
        at = i + 1;
        return value;
      }
      if (text[i] === "\\") i++;
      value += text[i] ?? "";
    }
    return undefined;
  };
  const where = () => `at character ${at} of ${JSON.stringify(text)}`;
  for (;;) {
    skipSpace();
    if (at === text.length) return undefined;
    if (text[at] === ",") {
      at++;
      continue;
    }
    const name = token();
    if (name === undefined) return `expects an extension name ${where()}`;
    const extension: ExtensionOffer = { name, params: [] };
    skipSpace();
    while (text[at] === ";") {
      at++;
      skipSpace();
      const param = token();
      if (param === undefined) return `expects a parameter name ${where()}`;
      skipSpace();
      if (text[at] !== "=") {
        extension.params.push({ name: param });
      } else {
        at++;
        skipSpace();
        let value = token();
        if (value === undefined && text[at] === '"') {
          value = quoted();
          if (value === undefined) return `has an unterminated quoted string ${where()}`;
          if (!TOKEN.test(value)) {
            return `has a quoted value that is not a token once unescaped (§9.1) ${where()}`;
          }
        }
        if (value === undefined) return `expects a parameter value ${where()}`;
        extension.params.push({ name: param, value });
      }
      skipSpace();
    }
    out.push(extension);
    if (at < text.length && text[at] !== ",") return `expects "," or ";" ${where()}`;
  }
}

/** Header text for extensions: `a; p; q=1, b`; a value that is not a token is quoted. */
export function formatExtensions(extensions: readonly ExtensionOffer[]): string {
  return extensions.map(({ name, params }) =>
    [
      name,
      ...params.map((p) => p.value === undefined ? p.name : `${p.name}=${formatValue(p.value)}`),
    ]
      .join("; ")
  ).join(", ");
}

function formatValue(value: string): string {
  return TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, "\\$&")}"`;
}

/**
 * Parses Sec-WebSocket-Protocol, one string per header line: comma-separated
 * tokens, each once (case-sensitive names, §4.1 item 10). Empty list elements
 * are skipped, as in parseExtensions; an empty list is an error.
 */
export function parseProtocols(lines: string | readonly string[]): ListParse<string> {
  const items = (typeof lines === "string" ? [lines] : lines)
    .flatMap((line) => line.split(","))
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
  const malformed = items.find((name) => !TOKEN.test(name));
  if (malformed !== undefined) {
    return {
      type: "error",
      reason: `Sec-WebSocket-Protocol ${JSON.stringify(malformed)} is not a token`,
    };
  }
  const repeated = items.find((name, i) => items.indexOf(name) !== i);
  if (repeated !== undefined) {
    return { type: "error", reason: `Sec-WebSocket-Protocol offers ${repeated} twice` };
  }
  return items.length > 0
    ? { type: "list", items }
    : { type: "error", reason: "Sec-WebSocket-Protocol lists no subprotocol" };
}

/** Header text for subprotocols. */
export function formatProtocols(protocols: readonly string[]): string {
  return protocols.join(", ");
}

/** What a client's opening handshake asks for; a field is undefined where the request lacks it. */
export interface ClientOffer {
  method?: string;
  target?: string;
  httpVersion?: string;
  host?: string;
  /** The key when it appears once, whether valid or not. */
  key?: string;
  version?: string;
  origin?: string;
  /** The subprotocols offered, in the client's order of preference; empty when malformed. */
  protocols: string[];
  /** The extensions offered, in order; empty when malformed. */
  extensions: ExtensionOffer[];
}

/** A rule of the opening handshake that a client's request breaks. */
export interface RequestProblem {
  /** Where the rule is: "§4.1 item 7", "RFC 6454 §7.3". */
  section: string;
  level: Level;
  text: string;
}

export interface RequestCheck {
  offer: ClientOffer;
  /** Empty when the request is a valid opening handshake. */
  problems: RequestProblem[];
}

/** base64 of exactly 16 bytes, with the zero padding bits that RFC 4648 §3.5 asks of an encoder. */
const KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;
/** An origin serialized as RFC 6454 §6.2 does: `scheme://host[:port]`, or `null`. */
const SERIALIZED_ORIGIN =
  /^(?:null|[a-z][a-z0-9+.-]*:\/\/(?:\[[0-9a-f:.]+\]|[^\s/?#@[\]:]+)(?::\d+)?)$/i;
/** A Host value (RFC 7230 §5.4): `host[:port]`, the host a name, IPv4 or [IPv6] address. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s/?#@[\]:]+)(?::\d*)?$/;

/**
 * Judges a client's opening handshake (§4.1's requirements on the client, read
 * as §4.2.1 reads them) and returns what it offers. Never throws: every fault is
 * a problem, with its section and level.
 */
export function checkClientRequest(head: HttpHead): RequestCheck {
  const problems: RequestProblem[] = [];
  const must = (section: string, text: string) => problems.push({ section, level: "must", text });
  const headers = head.headers;
  const offer: ClientOffer = { protocols: [], extensions: [] };

  const line = /^(\S+) (\S+) (HTTP\/(\d+)\.(\d+))$/.exec(head.startLine);
  if (!line) {
    must("§4.1 item 1", `malformed request line ${JSON.stringify(head.startLine)}`);
  } else {
    const [, method, target, httpVersion, major, minor] = line;
    Object.assign(offer, { method, target, httpVersion });
    if (method !== "GET") must("§4.1 item 2", `method ${method}, not GET`);
    if (Number(major) < 1 || (Number(major) === 1 && Number(minor) < 1)) {
      must("§4.1 item 2", `${httpVersion}, not HTTP/1.1 or later`);
    }
    if (!target.startsWith("/") && !/^https?:\/\//i.test(target)) {
      must("§4.1 item 3", `request target ${target} is neither a resource name nor an http(s) URI`);
    }
    if (target.includes("#")) must("§3", `request target ${target} has a fragment`);
  }

  const hosts = headerValues(headers, "host");
  if (hosts.length === 0) must("§4.1 item 4", "no Host header");
  if (hosts.length > 1) must("§4.1 item 1", `Host given ${hosts.length} times (RFC 7230 §5.4)`);
  if (hosts.length === 1) {
    offer.host = hosts[0];
    if (!HOST.test(hosts[0])) {
      must("§4.1 item 4", `Host ${JSON.stringify(hosts[0])} is not host[:port]`);
    }
  }

  if (!headerTokens(headers, "upgrade").includes("websocket")) {
    must("§4.1 item 5", "Upgrade header lacks the websocket token");
  }
  if (!headerTokens(headers, "connection").includes("upgrade")) {
    must("§4.1 item 6", "Connection header lacks the Upgrade token");
  }

  const keys = headerValues(headers, "sec-websocket-key");
  if (keys.length === 0) must("§4.1 item 7", "no Sec-WebSocket-Key");
  if (keys.length > 1) must("§11.3.1", `Sec-WebSocket-Key given ${keys.length} times`);
  if (keys.length === 1) {
    offer.key = keys[0];
    if (!KEY.test(keys[0])) {
      must("§4.1 item 7", `Sec-WebSocket-Key ${JSON.stringify(keys[0])} is not base64 of 16 bytes`);
    }
  }

  const versions = headerValues(headers, "sec-websocket-version");
  if (versions.length === 0) must("§4.1 item 9", "no Sec-WebSocket-Version");
  if (versions.length > 1) must("§11.3.5", `Sec-WebSocket-Version given ${versions.length} times`);
  if (versions.length === 1) {
    offer.version = versions[0];
    if (versions[0] !== "13") must("§4.1 item 9", `Sec-WebSocket-Version ${versions[0]}, not 13`);
  }

  // Only a browser must send Origin (§4.1 item 8), and a request does not say whether it is one.
  const origins = headerValues(headers, "origin");
  if (origins.length > 1) must("RFC 6454 §7.3", `Origin given ${origins.length} times`);
  if (origins.length === 1) {
    offer.origin = origins[0];
    if (!SERIALIZED_ORIGIN.test(origins[0])) {
      must("§4.1 item 8", `Origin ${JSON.stringify(origins[0])} is not a serialized origin`);
    }
  }

  const protocolLines = headerValues(headers, "sec-websocket-protocol");
  if (protocolLines.length > 0) {
    const protocols = parseProtocols(protocolLines);
    if (protocols.type === "list") offer.protocols = protocols.items;
    else must("§4.1 item 10", protocols.reason);
  }

  const extensionLines = headerValues(headers, "sec-websocket-extensions");
  if (extensionLines.length > 0) {
    const extensions = parseExtensions(extensionLines);
    if (extensions.type === "list") offer.extensions = extensions.items;
    else must("§9.1", extensions.reason);
  }

  return { offer, problems };
}

/**
 * What a request leaves open, as problems at level "may": reported, never
 * failed. The suite cannot tell a browser, the one client that must send
 * Origin, and it asks its client for no subprotocol (a command client may
 * have been asked for some by its own arguments).
 */
export function requestNotes(offer: ClientOffer): RequestProblem[] {
  const notes: RequestProblem[] = [];
  if (offer.origin === undefined) {
    notes.push({
      section: "§4.1 item 8",
      level: "may",
      text: "no Origin: a browser MUST send one, any other client may",
    });
  }
  if (offer.protocols.length > 0) {
    notes.push({
      section: "§4.1 item 10",
      level: "may",
      text: `offers the subprotocols ${
        offer.protocols.join(", ")
      }, where the suite asked for none (a client offers those its user asked for)`,
    });
  }
  return notes;
}

/**
 * What the keys of one client's requests on successive connections show: the
 * nonce MUST be selected randomly for each connection (§4.1 item 7), so none
 * may repeat; with fewer than two, a MAY-level note that it was not seen.
 */
export function keyReuse(keys: readonly string[]): RequestProblem[] {
  const section = "§4.1 item 7";
  if (keys.length < 2) {
    return [{
      section,
      level: "may",
      text: "one connection only: whether the key changes was not seen",
    }];
  }
  const repeated = keys.find((key, i) => keys.indexOf(key) !== i);
  return repeated === undefined ? [] : [{
    section,
    level: "must",
    text: `the same Sec-WebSocket-Key ${repeated} on two connections, where a new random ` +
      "nonce is selected for each",
  }];
}

export interface ResponseOptions {
  /** The client's Sec-WebSocket-Key. */
  key: string;
  /** The subprotocol selected (§4.2.2 item 5.4): any, so a case can select one never offered. */
  protocol?: string;
  /** The extensions accepted (§4.2.2 item 5.5). */
  extensions?: ExtensionOffer[];
  /** Added after the handshake's own headers (Server, Set-Cookie). */
  headers?: HeaderList;
  changes?: ResponseChanges;
  /** What `{redirect}` stands for in `changes` (absent: it stays as written). */
  redirect?: string;
}

const REASON_PHRASES: Record<number, string> = {
  101: "Switching Protocols",
  200: "OK",
  302: "Found",
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  426: "Upgrade Required",
  500: "Internal Server Error",
};

/**
 * The server's answer to an opening handshake: a 101 with the Accept computed
 * from the key (§4.2.2 item 5), the subprotocol and extensions chosen, extra
 * headers, then the case's changes.
 */
export async function serverResponse(options: ResponseOptions): Promise<Uint8Array> {
  const accept = await acceptFor(options.key);
  const answer: HeaderList = [
    ["Upgrade", "websocket"],
    ["Connection", "Upgrade"],
    ["Sec-WebSocket-Accept", accept],
  ];
  if (options.protocol !== undefined) answer.push(["Sec-WebSocket-Protocol", options.protocol]);
  if (options.extensions?.length) {
    answer.push(["Sec-WebSocket-Extensions", formatExtensions(options.extensions)]);
  }
  answer.push(...(options.headers ?? []));
  const changes = options.changes ?? {};
  const otherAccept = await acceptFor(`${options.key}x`);
  const fill = (value: string) =>
    value.replaceAll("{accept}", accept).replaceAll("{key}", options.key)
      .replaceAll("{other-accept}", otherAccept)
      .replaceAll("{redirect}", options.redirect ?? "{redirect}");
  const headerChanges = Object.entries(changes.headers ?? {}).map((
    [name, value],
  ) => [name, value === null ? null : (Array.isArray(value) ? value : [value]).map(fill)]);
  // The same header changes as a request's, applied to the answer's headers.
  const { headers } = changeRequest(
    { target: "", headers: answer },
    { headers: Object.fromEntries(headerChanges) },
  );
  const status = changes.status ?? 101;
  const reason = changes.reason ?? REASON_PHRASES[status] ?? "";
  const lines = [`${changes.httpVersion ?? "HTTP/1.1"} ${status} ${reason}`];
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  return new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
}
