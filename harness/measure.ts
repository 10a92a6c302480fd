/**
 * Findings: figures a case reports beside its verdicts, for what the RFC
 * leaves to the implementation (how fast the peer closes TCP, whether it
 * pings when idle, how big a message it takes). Pure: computed from the
 * times a session recorded and what it observed.
 */
import type { CaseSpec, Measurement } from "./case.ts";
import { formatBytes, payloadLength } from "./payload.ts";
import type { Observation, Timeline } from "./observation.ts";

export type { Timeline };

export interface Finding {
  /** What was measured, e.g. "tcpCloseDelay". */
  name: string;
  /** The finding in a sentence. */
  text: string;
  /** The figure; null when there was nothing to measure (the event never happened). */
  value: number | string | null;
  unit?: "ms" | "bytes" | "pings";
}

/** What measure() needs of a finished case. */
export type Measured = Pick<
  Observation,
  "timeline" | "received" | "close" | "handshake" | "peerDropTimeoutMs" | "suiteRole"
>;

/** What the findings call the peer: the suite as the server tests a client. */
function peerName(m: Pick<Measured, "suiteRole">): "client" | "server" {
  return m.suiteRole === "server" ? "client" : "server";
}

/**
 * The findings a case asks for (its `measure` list). Past the handshake
 * status, there is nothing to measure on a connection that never opened.
 */
export function measure(spec: Pick<CaseSpec, "measure" | "steps">, m: Measured): Finding[] {
  return (spec.measure ?? []).flatMap((what: Measurement) =>
    what === "handshakeStatus"
      ? [handshakeStatus(m)]
      : what === "redirect"
      ? [redirect(m)]
      : !m.close.opened
      ? []
      : what === "tcpCloseDelay"
      ? [tcpCloseDelay(m)]
      : what === "peerKeepalive"
      ? peerKeepalive(m)
      : what === "peerClose"
      ? [peerClose("peerClose", m)]
      : [messageSizeLimit(spec, m)]
  );
}

function handshakeStatus({ handshake, close }: Measured): Finding {
  const { status } = handshake;
  const text = close.opened
    ? "The server accepted the handshake (101)."
    : status !== undefined && status !== 101
    ? `The server refused the handshake with ${status}.`
    : `The server sent no usable response: ${handshake.problems.join("; ") || "none came"}.`;
  return { name: "handshakeStatus", value: status ?? null, text };
}

/** Whether a connection came to the Location of the answer's redirect: the client followed it. */
function redirect({ handshake }: Measured): Finding {
  const { location, followedBy } = handshake.redirect ?? {};
  return {
    name: "redirect",
    value: followedBy ?? null,
    text: location === undefined
      ? "The suite did not watch the redirect's Location: whether the client followed it is " +
        "not known."
      : followedBy === undefined
      ? `The client did not follow the redirect: no connection came to ${location}.`
      : `The client followed the redirect: a request came to its Location, ${location}.`,
  };
}

function tcpCloseDelay(m: Measured): Finding {
  const { timeline, close, peerDropTimeoutMs } = m;
  const name = "tcpCloseDelay";
  const done = timeline.closeHandshakeDone;
  if (done === undefined) {
    return {
      name,
      value: null,
      text: "The closing handshake never completed, so there was no TCP close to time.",
    };
  }
  if (timeline.peerClosedTcp === undefined || close.droppedBySuite) {
    return {
      name,
      value: null,
      unit: "ms",
      text: `The ${peerName(m)} did not close TCP within ${peerDropTimeoutMs} ms of the closing ` +
        "handshake; the suite closed it.",
    };
  }
  const delay = Math.max(0, Math.round(timeline.peerClosedTcp - done));
  return {
    name,
    value: delay,
    unit: "ms",
    text: `The ${peerName(m)} closed TCP ${delay} ms after the closing handshake.`,
  };
}

function peerKeepalive(m: Measured): Finding[] {
  const { timeline } = m;
  const peer = peerName(m);
  const pings = timeline.peerPings.map(Math.round);
  const count = pings.length + (timeline.peerPingsNotKept ?? 0);
  const gaps = pings.slice(1).map((t, i) => t - pings[i]);
  const pingText = pings.length === 0
    ? `The ${peer} sent no ping.`
    : `The ${peer} sent ${count} ping${count > 1 ? "s" : ""}, the first ${
      pings[0]
    } ms after the handshake${
      gaps.length ? `, then every ${Math.round(gaps.reduce((a, b) => a + b) / gaps.length)} ms` : ""
    }.`;
  return [
    { name: "peerPings", value: count, unit: "pings", text: pingText },
    peerClose("peerIdleClose", m),
  ];
}

/** Whether and when the peer closed the connection (a close frame, or TCP), and its code. */
function peerClose(name: string, m: Measured): Finding {
  const { timeline, close } = m;
  const closedAt = timeline.peerCloseFrame ?? timeline.peerClosedTcp;
  const closedByPeer = !close.closedBySuite && closedAt !== undefined;
  const how = close.remoteCloseCode !== undefined
    ? ` (close code ${close.remoteCloseCode})`
    : timeline.peerCloseFrame === undefined
    ? " (TCP, with no close frame)"
    : "";
  return {
    name,
    value: closedByPeer ? Math.round(closedAt) : null,
    unit: "ms",
    text: closedByPeer
      ? `The ${peerName(m)} closed the connection ${
        Math.round(closedAt)
      } ms after the handshake${how}.`
      : `The ${peerName(m)} kept the connection open until the suite closed it.`,
  };
}

/**
 * The message sizes a case sends (its message steps, in order) against the
 * echoes that came back: the largest size echoed and the first one that was not.
 */
function messageSizeLimit(spec: Pick<CaseSpec, "steps">, m: Measured): Finding {
  const sizes = spec.steps.flatMap((s) =>
    s.kind === "message" ? [payloadLength(s.message.payload)] : []
  );
  const echoes = m.received.filter((e) => e.type === "message");
  let echoed = 0;
  while (echoed < sizes.length && echoes[echoed]?.payload.length === sizes[echoed]) echoed++;
  const largest = echoed > 0 ? Math.max(...sizes.slice(0, echoed)) : null;
  const upTo = largest === null ? "No message was echoed" : `Echoed up to ${formatBytes(largest)}`;
  if (echoed === sizes.length) {
    return {
      name: "messageSizeLimit",
      value: largest,
      unit: "bytes",
      text: `${upTo}: no limit found up to the largest message sent.`,
    };
  }
  const next = formatBytes(sizes[echoed]);
  const code = m.close.remoteCloseCode;
  const how = m.close.closedBySuite
    ? `the ${next} message was not echoed before the suite closed the connection`
    : m.timeline.peerCloseFrame === undefined
    ? `the ${peerName(m)} dropped the connection on the ${next} message, with no close frame`
    : `the ${peerName(m)} closed the connection on the ${next} message${
      code !== undefined ? ` with close code ${code}` : " without a close code"
    }`;
  return { name: "messageSizeLimit", value: largest, unit: "bytes", text: `${upTo}; ${how}.` };
}
