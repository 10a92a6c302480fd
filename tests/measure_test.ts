/**
 * Findings (harness/measure.ts), and the payload views the size probe rests
 * on. Pure: no sockets.
 *
 *   deno test tests/measure_test.ts
 */
import assert from "node:assert/strict";
import type { CaseSpec, Step } from "../harness/case.ts";
import { measure, type Measured, type Timeline } from "../harness/measure.ts";
import { formatBytes } from "../harness/payload.ts";
import { PayloadCache } from "../harness/payload.ts";
import { closeObservation, textMessage } from "./support.ts";

const MiB = 1024 * 1024;

function measured(timeline: Partial<Timeline>, over: Partial<Measured> = {}): Measured {
  return {
    timeline: { peerPings: [], ...timeline },
    received: [],
    close: closeObservation(),
    handshake: { status: 101, versions: [], problems: [] },
    peerDropTimeoutMs: 1000,
    ...over,
  };
}

Deno.test("formatBytes: exact units, remainders, small counts", () => {
  assert.equal(formatBytes(125), "125 bytes");
  assert.equal(formatBytes(64 * 1024), "64 KiB");
  assert.equal(formatBytes(64 * MiB), "64 MiB");
  assert.equal(formatBytes(64 * MiB + 1), "64 MiB + 1 bytes");
});

Deno.test("measure: only what the case asks for, and nothing for a case that never opened", () => {
  const timeline = { closeHandshakeDone: 10, peerClosedTcp: 13 };
  assert.deepEqual(measure({ steps: [] }, measured(timeline)), []);
  assert.deepEqual(
    measure(
      { steps: [], measure: ["tcpCloseDelay"] },
      measured(timeline, { close: closeObservation({ opened: false }) }),
    ),
    [],
  );
});

Deno.test("handshakeStatus: accepted, refused with a status, or no usable response", () => {
  const spec: Pick<CaseSpec, "steps" | "measure"> = { steps: [], measure: ["handshakeStatus"] };
  const notOpened = closeObservation({ opened: false });
  assert.deepEqual(measure(spec, measured({})), [
    { name: "handshakeStatus", value: 101, text: "The server accepted the handshake (101)." },
  ]);
  const [refused] = measure(
    spec,
    measured({}, { close: notOpened, handshake: { status: 431, versions: [], problems: [] } }),
  );
  assert.equal(refused.value, 431);
  assert.equal(refused.text, "The server refused the handshake with 431.");
  const [silent] = measure(
    spec,
    measured({}, { close: notOpened, handshake: { versions: [], problems: ["no response"] } }),
  );
  assert.equal(silent.value, null);
  assert.equal(silent.text, "The server sent no usable response: no response.");
});

Deno.test("tcpCloseDelay: the time from the closing handshake to the server's TCP close", () => {
  const spec: Pick<CaseSpec, "steps" | "measure"> = { steps: [], measure: ["tcpCloseDelay"] };
  const [fast] = measure(spec, measured({ closeHandshakeDone: 10.2, peerClosedTcp: 13.6 }));
  assert.deepEqual(fast, {
    name: "tcpCloseDelay",
    value: 3,
    unit: "ms",
    text: "The server closed TCP 3 ms after the closing handshake.",
  });
  const [slow] = measure(
    spec,
    measured({ closeHandshakeDone: 10 }, { close: closeObservation({ droppedBySuite: true }) }),
  );
  assert.equal(slow.value, null);
  assert.match(slow.text, /did not close TCP within 1000 ms/);
  const [never] = measure(spec, measured({ peerClosedTcp: 5 }));
  assert.equal(never.value, null);
  assert.match(never.text, /never completed/);
});

Deno.test("peerKeepalive: pings with their times, and whether the server closed", () => {
  const spec: Pick<CaseSpec, "steps" | "measure"> = { steps: [], measure: ["peerKeepalive"] };
  const [none, open] = measure(spec, measured({}));
  assert.equal(none.value, 0);
  assert.equal(none.text, "The server sent no ping.");
  assert.equal(open.value, null);
  const [pings, idle] = measure(
    spec,
    measured(
      { peerPings: [1000.4, 2001, 3003], peerCloseFrame: 3500.2 },
      { close: closeObservation({ closedBySuite: false, remoteCloseCode: 1001 }) },
    ),
  );
  assert.equal(pings.value, 3);
  assert.equal(
    pings.text,
    "The server sent 3 pings, the first 1000 ms after the handshake, then every 1002 ms.",
  );
  assert.equal(idle.value, 3500);
  assert.equal(
    idle.text,
    "The server closed the connection 3500 ms after the handshake (close code 1001).",
  );
});

Deno.test("peerClose, and the findings against a client: whether, when and how the peer closed", () => {
  const spec: Pick<CaseSpec, "steps" | "measure"> = { steps: [], measure: ["peerClose"] };
  const client = { suiteRole: "server" } as const;
  const byPeer = closeObservation({ closedBySuite: false, wasClean: false });
  const [coded] = measure(
    spec,
    measured(
      { peerCloseFrame: 12.4 },
      { ...client, close: { ...byPeer, remoteCloseFrame: true, remoteCloseCode: 1009 } },
    ),
  );
  assert.deepEqual(coded, {
    name: "peerClose",
    value: 12,
    unit: "ms",
    text: "The client closed the connection 12 ms after the handshake (close code 1009).",
  });
  const [dropped] = measure(spec, measured({ peerClosedTcp: 7 }, { ...client, close: byPeer }));
  assert.equal(
    dropped.text,
    "The client closed the connection 7 ms after the handshake (TCP, with no close frame).",
  );
  const [kept] = measure(spec, measured({}, client));
  assert.equal(kept.value, null);
  assert.equal(kept.text, "The client kept the connection open until the suite closed it.");
  // Every finding names the peer by what it is.
  const [held] = measure(
    { steps: [], measure: ["tcpCloseDelay"] },
    measured({ closeHandshakeDone: 10, peerClosedTcp: 2010 }, {
      ...client,
      peerDropTimeoutMs: 10_000,
    }),
  );
  assert.equal(held.text, "The client closed TCP 2000 ms after the closing handshake.");
});

Deno.test("messageSizeLimit: the largest echo and how the next message ended", () => {
  const spec: Pick<CaseSpec, "steps" | "measure"> = {
    steps: [1, 2, 4].map((n): Step => ({
      kind: "message",
      message: { payload: { repeat: "*", length: n * MiB } },
    })),
    measure: ["messageSizeLimit"],
  };
  const all = measure(
    spec,
    measured({}, { received: [textMessage(MiB), textMessage(2 * MiB), textMessage(4 * MiB)] }),
  );
  assert.equal(all[0].value, 4 * MiB);
  assert.equal(all[0].text, "Echoed up to 4 MiB: no limit found up to the largest message sent.");
  const refused = measure(
    spec,
    measured({ peerCloseFrame: 50 }, {
      received: [textMessage(MiB)],
      close: closeObservation({ closedBySuite: false, remoteCloseCode: 1009 }),
    }),
  );
  assert.equal(refused[0].value, MiB);
  assert.equal(
    refused[0].text,
    "Echoed up to 1 MiB; the server closed the connection on the 2 MiB message with close code 1009.",
  );
  const dropped = measure(
    spec,
    measured({ peerClosedTcp: 50 }, {
      close: closeObservation({ closedBySuite: false, wasClean: false }),
    }),
  );
  assert.equal(dropped[0].value, null);
  assert.equal(
    dropped[0].text,
    "No message was echoed; the server dropped the connection on the 1 MiB message, with no close frame.",
  );
  const slow = measure(spec, measured({}, { received: [textMessage(MiB), textMessage(2 * MiB)] }));
  assert.match(slow[0].text, /4 MiB message was not echoed before the suite closed/);
});

Deno.test("PayloadCache: shorter repetitions of a pattern are views of the longest", () => {
  const cache = new PayloadCache();
  cache.warm([{ repeat: "ab", length: 7 }, "x", undefined, { repeat: "ab", length: 3 }]);
  const long = cache.resolve({ repeat: "ab", length: 7 });
  const short = cache.resolve({ repeat: "ab", length: 3 });
  assert.equal(new TextDecoder().decode(long), "abababa");
  assert.equal(new TextDecoder().decode(short), "aba");
  assert.equal(short.buffer, long.buffer, "one buffer for both");
  // Asked for a longer one later, the cache builds it; earlier views keep their bytes.
  const longer = cache.resolve({ repeat: "ab", length: 9 });
  assert.equal(new TextDecoder().decode(longer), "ababababa");
  assert.equal(new TextDecoder().decode(short), "aba");
  assert.notEqual(cache.resolve({ repeat: { hex: "6162" }, length: 3 }).buffer, long.buffer);
});
