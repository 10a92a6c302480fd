/**
 * RFC 6455 §4 opening handshake codec. Pure: builds and parses HTTP/1.1 heads
 * as bytes, computes Sec-WebSocket-Accept. No I/O.
 */

import type { HandshakeSpec } from "./case.ts";

/** The GUID of §1.3, appended to the key before hashing. */
export const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export type HeaderList = [name: string, value: string][];

/** An HTTP token (RFC 7230 §3.2.6): the syntax of header names and subprotocol names. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A fresh Sec-WebSocket-Key: base64 of 16 random bytes (§4.1). */
export function generateKey(): string {
  return crypto.getRandomValues(new Uint8Array(16)).toBase64();
}

/** Sec-WebSocket-Accept for a key (§4.2.2 step 5.4). */
export async function acceptFor(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(key + WEBSOCKET_GUID),
  );
  return new Uint8Array(digest).toBase64();
}

export interface RequestOptions {
  method?: string;
  /** Request target: path and query. */
  target: string;
  httpVersion?: string;
  headers: HeaderList;
}

export function encodeRequest(req: RequestOptions): Uint8Array {
  const lines = [`${req.method ?? "GET"} ${req.target} ${req.httpVersion ?? "HTTP/1.1"}`];
  for (const [name, value] of req.headers) lines.push(`${name}: ${value}`);
  return new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
}

/**
 * The headers a conforming client sends (§4.1), for a ws:// or wss:// URL.
 * `headers` are added at the end (credentials, cookies); one named like a
 * header above (User-Agent) replaces it. Keeping the handshake's own headers
 * out of them is the caller's part.
 */
export function clientRequest(
  url: URL,
  key: string,
  options: { protocols?: string[]; origin?: string; userAgent?: string; headers?: HeaderList } = {},
): RequestOptions {
  const defaultPort = url.protocol === "wss:" ? "443" : "80";
  const host = url.port && url.port !== defaultPort ? `${url.hostname}:${url.port}` : url.hostname;
  const headers: HeaderList = [
    ["Host", host],
    ["Upgrade", "websocket"],
    ["Connection", "Upgrade"],
    ["Sec-WebSocket-Key", key],
    ["Sec-WebSocket-Version", "13"],
  ];
  if (options.protocols?.length) {
    headers.push(["Sec-WebSocket-Protocol", options.protocols.join(", ")]);
  }
  if (options.origin) headers.push(["Origin", options.origin]);
  if (options.userAgent) headers.push(["User-Agent", options.userAgent]);
  const extra = options.headers ?? [];
  const replaced = new Set(extra.map(([name]) => name.toLowerCase()));
  return {
    target: (url.pathname || "/") + url.search,
    headers: [...headers.filter(([name]) => !replaced.has(name.toLowerCase())), ...extra],
  };
}

/**
 * Applies a case's changes to a request: each named header (matched without
 * regard to case) is replaced in place, added at the end, or removed (null).
 */
export function changeRequest(base: RequestOptions, changes: HandshakeSpec): RequestOptions {
  let headers = base.headers.slice();
  for (const [name, value] of Object.entries(changes.headers ?? {})) {
    const lower = name.toLowerCase();
    const at = headers.findIndex(([n]) => n.toLowerCase() === lower);
    headers = headers.filter(([n]) => n.toLowerCase() !== lower);
    if (value === null) continue;
    const lines = (Array.isArray(value) ? value : [value]).map((v): [string, string] => [name, v]);
    headers.splice(at < 0 ? headers.length : at, 0, ...lines);
  }
  return {
    method: changes.method ?? base.method,
    target: changes.target ??
      (changes.query
        ? `${base.target}${base.target.includes("?") ? "&" : "?"}${changes.query}`
        : base.target),
    httpVersion: changes.httpVersion ?? base.httpVersion,
    headers,
  };
}

export interface HttpHead {
  /** The start line: request line or status line. */
  startLine: string;
  headers: HeaderList;
  /** Size of the head in bytes, including the empty line. */
  length: number;
}

export type HeadParse =
  | { type: "incomplete" }
  | { type: "head"; head: HttpHead }
  | { type: "error"; reason: string };

/**
 * Parses an HTTP/1.1 head from the start of `bytes`. Returns "incomplete" until
 * the empty line arrives, and an error past `maxLength` bytes or on malformed
 * header lines.
 */
export function parseHead(bytes: Uint8Array, maxLength = 16384): HeadParse {
  let end = -1;
  const limit = Math.min(bytes.length, maxLength);
  for (let i = 3; i < limit; i++) {
    if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13) {
      end = i + 1;
      break;
    }
  }
  if (end < 0) {
    return bytes.length >= maxLength
      ? { type: "error", reason: `no end of HTTP head within ${maxLength} bytes` }
      : { type: "incomplete" };
  }
  // latin1 keeps every byte visible, whatever the peer sent.
  const text = new TextDecoder("latin1").decode(bytes.subarray(0, end - 4));
  const [startLine, ...lines] = text.split("\r\n");
  const headers: HeaderList = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) {
      return { type: "error", reason: `malformed header line: ${JSON.stringify(line)}` };
    }
    headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return { type: "head", head: { startLine, headers, length: end } };
}

/** All values of a header (case-insensitive name), in order. */
export function headerValues(headers: HeaderList, name: string): string[] {
  const lower = name.toLowerCase();
  return headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

/** Comma-separated tokens of a header across all its lines, lower-cased. */
export function headerTokens(headers: HeaderList, name: string): string[] {
  return headerValues(headers, name)
    .flatMap((v) => v.split(","))
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t.length > 0);
}

export interface StatusLine {
  httpVersion: string;
  status: number;
  reason: string;
}

export function parseStatusLine(line: string): StatusLine | undefined {
  const m = /^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/.exec(line);
  return m ? { httpVersion: m[1], status: Number(m[2]), reason: m[3] ?? "" } : undefined;
}

/**
 * Checks a server's response against §4.1's client-side rules. Returns the
 * problems found; an empty list means the connection is established.
 * `checkExtensions` judges the response's Sec-WebSocket-Extensions lines by
 * the rules of the extensions the suite offered and implements (item 5);
 * absent, any extension accepted is a problem.
 */
export async function checkResponse(
  head: HttpHead,
  key: string,
  offeredProtocols: string[] = [],
  offeredExtensions: string[] = [],
  checkExtensions?: (lines: string[]) => string[],
): Promise<string[]> {
  const status = parseStatusLine(head.startLine);
  if (!status) return [`malformed status line: ${JSON.stringify(head.startLine)}`];
  if (status.status !== 101) return [`expected status 101, got ${status.status} ${status.reason}`];
  const problems: string[] = [];
  if (!headerTokens(head.headers, "upgrade").includes("websocket")) {
    problems.push("Upgrade header lacks the websocket token");
  }
  if (!headerTokens(head.headers, "connection").includes("upgrade")) {
    problems.push("Connection header lacks the Upgrade token");
  }
  const accept = headerValues(head.headers, "sec-websocket-accept");
  const expected = await acceptFor(key);
  if (accept.length !== 1 || accept[0] !== expected) {
    problems.push(
      `Sec-WebSocket-Accept is ${JSON.stringify(accept.join(", "))}, expected ${expected}`,
    );
  }
  const protocols = headerTokens(head.headers, "sec-websocket-protocol");
  if (protocols.length > 1) problems.push("more than one subprotocol selected");
  if (
    protocols.length === 1 && !offeredProtocols.map((p) => p.toLowerCase()).includes(protocols[0])
  ) {
    problems.push(`subprotocol ${protocols[0]} was not offered`);
  }
  const extensionLines = headerValues(head.headers, "sec-websocket-extensions");
  if (checkExtensions) return [...problems, ...checkExtensions(extensionLines)];
  const extensions = extensionLines.join(", ").trim();
  if (extensions.length > 0) {
    // The suite implements no extension: it offers one only as a request the server must decline.
    problems.push(
      offeredExtensions.length === 0
        ? `extension accepted though none was offered: ${extensions}`
        : `extension accepted (${extensions}) where the offer (${
          offeredExtensions.join(", ")
        }) had to be declined`,
    );
  }
  return problems;
}
