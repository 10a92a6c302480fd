/**
 * Group 14 (RFC 7692's rules beyond Autobahn) proven in both roles. Every
 * case passes against the strict peer speaking permessage-deflate (the limit
 * case INFORMATIONAL), and against peers taking a legal alternative: a server
 * compressing with less than it may, declining every offer or refusing
 * invalid ones with 400, dropping TCP where it must fail, closing with 1002
 * where 1007 fits (NON-STRICT); a client offering no client_max_window_bits.
 * A peer without permessage-deflate (the strict peers without it, Deno's
 * server) leaves the cases that need it UNIMPLEMENTED. Each flaw of the
 * strict peers that breaks one of the group's rules fails exactly the cases
 * of that rule, and those it changes on the way (listed, with why); every
 * other case keeps its strict verdict.
 *
 * Server cases run concurrently against the strict server in this process;
 * client cases one at a time against the strict client (tests/support.ts
 * againstStrictClient). The 16 MiB case runs only in the tests of limits.
 *
 *   deno test --allow-all tests/g14_test.ts
 */

import assert from "node:assert/strict";
import type { CaseSpec, PeerRole } from "../harness/case.ts";
import type { Finding } from "../harness/measure.ts";
import { serveReference } from "../harness/reference_server.ts";
import { runAndJudgeCases } from "../harness/suite.ts";
import { group } from "../fixtures/g14_deflate_rules.ts";
import { peersOf } from "../fixtures/mod.ts";
import {
  type Flaw as ServerFlaw,
  startStrictServer,
  type StrictServerOptions,
} from "./peers/strict_server.ts";
import {
  BROWSER_DEFLATE_OFFER,
  type Flaw as ClientFlaw,
  type StrictClientOptions,
} from "./peers/strict_client.ts";
import { againstStrictClient, expandRange } from "./support.ts";

const casesOf = (role: PeerRole) => group.cases.filter((c) => peersOf(group, c).includes(role));
const LIMIT_ID = "14.7.1";
/** The server cases but the 16 MiB one (the tests of limits run it). */
const SERVER_CASES = casesOf("server").filter((c) => c.id !== LIMIT_ID);
const SERVER_IDS = SERVER_CASES.map((c) => c.id);
const CLIENT_IDS = casesOf("client").map((c) => c.id).filter((id) => id !== LIMIT_ID);
const MiB = 1024 * 1024;

const OK = "OK / OK";
const INFO = "INFORMATIONAL / INFORMATIONAL";
/** The behaviour verdict alone: a case a flaw fails may end its connection either way. */
const FAILED = "FAILED";
/** The cases that need permessage-deflate, on a connection without it. */
const UNIMPLEMENTED = "UNIMPLEMENTED / OK";

/** What a case's run is compared by: "behaviour / close", or the behaviour alone for FAILED. */
type Verdicts = Map<string, string>;

/** `ids` all OK, but for `changed`: ranges of ids ("14.2.1-8") and their verdicts. */
function expected(ids: readonly string[], changed: Record<string, string> = {}): Verdicts {
  const out = new Map(ids.map((id) => [id, OK]));
  for (const [range, verdict] of Object.entries(changed)) {
    for (const id of range.split(",").flatMap((r) => expandRange(r.trim(), ids))) {
      out.set(id, verdict);
    }
  }
  return out;
}

/** A case's verdicts as `as` compares them: the behaviour alone where it expects FAILED. */
function shown(id: string, verdict: { behavior: string; behaviorClose: string }, as: Verdicts) {
  const full = `${verdict.behavior} / ${verdict.behaviorClose}`;
  return [id, as.get(id) === FAILED ? verdict.behavior : full] as const;
}

interface ServerRun {
  verdicts: Verdicts;
  /** What each verdict says, by case id. */
  results: Map<string, string>;
  findings: Map<string, Finding[]>;
  remoteCloseCodes: Map<string, number | undefined>;
}

/** Runs `cases` concurrently against the server at `url`, shown as `as` asks. */
async function againstServer(
  url: string,
  as: Verdicts,
  cases: readonly CaseSpec[] = SERVER_CASES,
): Promise<ServerRun> {
  const outcomes = await runAndJudgeCases(cases, {
    url: new URL(url),
    jobs: 8,
  });
  return {
    verdicts: new Map(outcomes.map((o) => shown(o.spec.id, o.verdict, as))),
    results: new Map(outcomes.map((o) => [o.spec.id, o.verdict.result])),
    findings: new Map(outcomes.map((o) => [o.spec.id, o.findings])),
    remoteCloseCodes: new Map(outcomes.map((o) => [o.spec.id, o.remoteCloseCode])),
  };
}

async function againstStrictServer(
  options: StrictServerOptions,
  as: Verdicts,
  cases: readonly CaseSpec[] = SERVER_CASES,
): Promise<ServerRun> {
  const server = startStrictServer(options);
  try {
    return await againstServer(server.url, as, cases);
  } finally {
    await server.close();
  }
}

/** The client cases `as` names, each against the strict client with `options`. */
async function againstClient(options: StrictClientOptions, as: Verdicts): Promise<Verdicts> {
  const results = await againstStrictClient([...as.keys()], options);
  return new Map([...results].map(([id, { verdict }]) => shown(id, verdict, as)));
}

/**
 * An offer limiting the server's window (so 14.3.6 runs) and letting the suite
 * limit the client's (§7.1.2.1, §7.1.2.2).
 */
const OFFERING: StrictClientOptions = {
  deflateOffer: "permessage-deflate; server_max_window_bits=10; client_max_window_bits",
};

// ---------------------------------------------------------------------------
// Which cases test which peer

Deno.test("group 14: the server cases and the client cases", () => {
  const server = casesOf("server").map((c) => c.id);
  const client = casesOf("client").map((c) => c.id);
  const all = group.cases.map((c) => c.id);
  const ranges = (list: string[]) => list.flatMap((r) => expandRange(r, all));
  assert.deepEqual(
    server,
    ranges(["14.1.1-4", "14.2.1-8", "14.4.1-4", "14.5.1-2", "14.6.1-2"]).concat(LIMIT_ID),
  );
  assert.deepEqual(
    client,
    ranges(["14.3.1-6", "14.4.1-4", "14.5.1-2", "14.6.1-2"]).concat(LIMIT_ID),
  );
  for (const spec of group.cases) assert.match(spec.rfc, /^RFC 7692 §/, spec.id);
});

// ---------------------------------------------------------------------------
// Server role: the strict server, and servers taking a legal alternative

/** Without permessage-deflate: the offers are declined (right), the rest has nothing to test. */
const DECLINING = expected(SERVER_IDS, { "14.4.1-3, 14.5.1-2, 14.6.1-2": UNIMPLEMENTED });

Deno.test("server role: the strict server with permessage-deflate passes every case", async () => {
  const run = await againstStrictServer({ deflate: true }, expected(SERVER_IDS));
  assert.deepEqual(run.verdicts, expected(SERVER_IDS));
  // Where it must fail the connection it does, with the fitting code.
  assert.deepEqual(
    ["14.4.1", "14.4.2", "14.4.3", "14.4.4"].map((id) => run.remoteCloseCodes.get(id)),
    [1002, 1002, 1007, 1002],
  );
});

Deno.test("server role: a server compressing with its own context reset and 9 window bits passes", async () => {
  const deflate = { serverNoContextTakeover: true, serverMaxWindowBits: 9 };
  assert.deepEqual(
    (await againstStrictServer({ deflate }, expected(SERVER_IDS))).verdicts,
    expected(SERVER_IDS),
  );
});

Deno.test("server role: servers declining permessage-deflate pass what they can, the rest is UNIMPLEMENTED", async () => {
  assert.deepEqual((await againstStrictServer({}, DECLINING)).verdicts, DECLINING);
  const deno = serveReference();
  try {
    assert.deepEqual((await againstServer(deno.url, DECLINING)).verdicts, DECLINING);
  } finally {
    await deno.close();
  }
});

/** A server refusing every handshake with 400, as a server may refuse an offer it cannot honour. */
function refusingServer(): { url: string; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const answer = new TextEncoder().encode(
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
  );
  const serving = (async () => {
    for await (const conn of listener) {
      (async () => {
        const buffer = new Uint8Array(8192);
        let head = "";
        while (!head.includes("\r\n\r\n")) {
          const n = await conn.read(buffer).catch(() => null);
          if (n === null) break;
          head += new TextDecoder().decode(buffer.subarray(0, n));
        }
        await conn.write(answer).catch(() => {});
        conn.close();
      })();
    }
  })();
  return {
    url: `ws://127.0.0.1:${listener.addr.port}/`,
    close: async () => {
      listener.close();
      await serving;
    },
  };
}

Deno.test("server role: refusing an invalid offer with 400 is as right as declining it", async () => {
  const invalid = SERVER_CASES.filter((c) => c.id.startsWith("14.2."));
  const ids = invalid.map((c) => c.id);
  const server = refusingServer();
  try {
    assert.deepEqual(
      (await againstServer(server.url, expected(ids), invalid)).verdicts,
      expected(ids),
    );
  } finally {
    await server.close();
  }
});

Deno.test("server role: failing by dropping TCP passes, closing with 1002 where 1007 fits is NON-STRICT", async () => {
  const failing = SERVER_CASES.filter((c) => c.id.startsWith("14.4."));
  const ids = failing.map((c) => c.id);
  const dropping = await againstStrictServer(
    { deflate: true, flaws: ["drop-on-error"] },
    expected(ids),
    failing,
  );
  assert.deepEqual(dropping.verdicts, expected(ids));
  const with1002 = expected(ids, { "14.4.3": "NON-STRICT / INFORMATIONAL" });
  const run = await againstStrictServer(
    { deflate: true, invalidUtf8Code: 1002 },
    with1002,
    failing,
  );
  assert.deepEqual(run.verdicts, with1002);
});

// ---------------------------------------------------------------------------
// Server role: each flaw fails its rule's cases

/** The cases that agree on permessage-deflate: a response breaking §5 or §7 fails them all. */
const AGREEING = "14.1.1-3, 14.4.1-3, 14.5.1-2, 14.6.1-2";

/** [flaw, the cases of its rule, the cases it changes on the way and why, other verdicts] */
const SERVER_FLAWS: [
  ServerFlaw,
  rule: string,
  collateral?: string,
  others?: Record<string, string>,
][] = [
  // 14.6.2 offers server_max_window_bits=9 too.
  ["deflate-window-over-offer", "14.1.1", "14.6.2"],
  ["deflate-unoffered-client-bits", "14.1.2"],
  // 14.6.1 offers server_no_context_takeover too.
  ["deflate-server-no-context-takeover-dropped", "14.1.3", "14.6.1"],
  // Every response is broken.
  ["deflate-duplicate-param", "14.1.4", AGREEING],
  ["deflate-invalid-value", "14.1.4", AGREEING],
  ["deflate-two-elements", "14.1.4", AGREEING],
  // 010 breaks §7.1.2.1's description of the value, not its ABNF: NON-STRICT.
  [
    "deflate-accept-invalid-offer",
    "14.2.1-4, 14.2.6-8",
    undefined,
    { "14.2.5": "NON-STRICT / OK" },
  ],
  ["deflate-rsv1-on-control-accepted", "14.4.1"],
  ["deflate-rsv1-on-continuation-accepted", "14.4.2"],
  ["deflate-bad-inflate-ignored", "14.4.3"],
  // No RSV bit is checked at all.
  ["accept-rsv", "14.4.4", "14.4.1-2"],
  ["deflate-uncompressed-refused", "14.5.1-2"],
  ["deflate-context-takeover-despite-agreement", "14.6.1"],
  ["deflate-window-over-agreed", "14.6.2"],
  // What the server sends is checked in every case: each compressed echo breaks §6.1.
  ["deflate-rsv1-on-continuation-sent", "14.1.1-4, 14.5.1-2, 14.6.1-2"],
];

for (const [flaw, rule, collateral, others] of SERVER_FLAWS) {
  Deno.test(`server role: flaw ${flaw} fails ${rule}`, async () => {
    const want = expected(SERVER_IDS, {
      [rule]: FAILED,
      ...collateral && { [collateral]: FAILED },
      ...others,
    });
    const run = await againstStrictServer({ deflate: true, flaws: [flaw] }, want);
    assert.deepEqual(run.verdicts, want);
    // A response outside the offer fails the handshake, the rule it breaks named.
    const badResponse = rule.startsWith("14.1.") && flaw !== "deflate-rsv1-on-continuation-sent";
    for (const id of badResponse ? expandRange(rule, SERVER_IDS) : []) {
      assert.match(
        run.results.get(id)!,
        /^The opening handshake was never completed: RFC 7692 §[57]/,
        id,
      );
    }
  });
}

// ---------------------------------------------------------------------------
// Client role: the strict client, and clients taking a legal alternative

Deno.test("client role: the strict client offering permessage-deflate passes every case", async () => {
  const results = await againstStrictClient(CLIENT_IDS, OFFERING);
  const verdicts = new Map(
    [...results].map(([id, { verdict }]) => shown(id, verdict, expected(CLIENT_IDS))),
  );
  assert.deepEqual(verdicts, expected(CLIENT_IDS));
  assert.deepEqual(
    ["14.4.1", "14.4.2", "14.4.3", "14.4.4"].map((id) =>
      results.get(id)!.run.close.remoteCloseCode
    ),
    [1002, 1002, 1007, 1002],
  );
});

Deno.test("client role: refusing a bad response by waiting for the server to close passes", async () => {
  // The suite closes 2 s after its message: one case will do.
  const ids = ["14.3.1"];
  assert.deepEqual(
    await againstClient({ ...OFFERING, refuseBy: "waiting" }, expected(ids)),
    expected(ids),
  );
});

Deno.test("client role: offers without the window parameters leave the cases of those UNIMPLEMENTED", async () => {
  // Browsers offer no server_max_window_bits: a response with 15 is then legal.
  const browser = expected(CLIENT_IDS, { "14.3.6": UNIMPLEMENTED });
  assert.deepEqual(await againstClient({ deflateOffer: BROWSER_DEFLATE_OFFER }, browser), browser);
  // Nor client_max_window_bits: the suite cannot limit the client's window.
  const plain = expected(CLIENT_IDS, { "14.3.6, 14.6.2": UNIMPLEMENTED });
  assert.deepEqual(await againstClient({ deflateOffer: "permessage-deflate" }, plain), plain);
});

Deno.test("client role: a client offering no permessage-deflate leaves the cases UNIMPLEMENTED", async () => {
  const want = expected(CLIENT_IDS, { "14.3.1-6, 14.4.1-3, 14.5.1-2, 14.6.1-2": UNIMPLEMENTED });
  assert.deepEqual(await againstClient({}, want), want);
});

// ---------------------------------------------------------------------------
// Client role: each flaw fails its rule's cases

const CLIENT_FLAWS: [ClientFlaw, rule: string, collateral?: string][] = [
  ["deflate-bad-response-accepted", "14.3.1-6"],
  ["deflate-rsv1-on-control-accepted", "14.4.1"],
  ["deflate-rsv1-on-continuation-accepted", "14.4.2"],
  ["deflate-bad-inflate-ignored", "14.4.3"],
  // No RSV bit is checked at all.
  ["accept-rsv", "14.4.4", "14.4.1-2"],
  ["deflate-uncompressed-refused", "14.5.1-2"],
  ["deflate-context-takeover-despite-agreement", "14.6.1"],
  ["deflate-window-over-agreed", "14.6.2"],
];

for (const [flaw, rule, collateral] of CLIENT_FLAWS) {
  Deno.test(`client role: flaw ${flaw} fails ${rule}`, async () => {
    const want = expected(CLIENT_IDS, {
      [rule]: FAILED,
      ...collateral && { [collateral]: FAILED },
    });
    assert.deepEqual(await againstClient({ ...OFFERING, flaws: [flaw] }, want), want);
  });
}

// ---------------------------------------------------------------------------
// Limits: a message inflating to 16 MiB, echoed or refused (a finding either way)

const LIMIT_CASE = casesOf("server").filter((c) => c.id === LIMIT_ID);

/** 14.7.1 against the strict server with `options`: its verdicts and its size finding. */
async function limitRun(options: StrictServerOptions, verdict: string): Promise<string> {
  const run = await againstStrictServer(options, new Map([[LIMIT_ID, verdict]]), LIMIT_CASE);
  assert.deepEqual(run.verdicts, new Map([[LIMIT_ID, verdict]]));
  const finding = run.findings.get(LIMIT_ID)?.find((f) => f.name === "messageSizeLimit");
  assert.ok(finding, "no messageSizeLimit finding");
  return finding.text;
}

Deno.test("limits, server role: 16 MiB inflated is echoed or refused with 1009, as a finding", async () => {
  assert.match(await limitRun({ deflate: true }, INFO), /16 MiB/);
  const limited = { deflate: true, maxMessage: MiB };
  assert.match(await limitRun(limited, INFO), /1009/);
  // A server holding only the compressed size to its limit echoes it: still a finding.
  assert.match(
    await limitRun({ ...limited, flaws: ["deflate-inflated-size-unlimited"] }, INFO),
    /16 MiB/,
  );
  // Refusing with another code than 1009 breaks a SHOULD.
  await limitRun({ ...limited, flaws: ["limit-wrong-code"] }, "NON-STRICT / INFORMATIONAL");
  // Without permessage-deflate nothing is tested.
  await limitRun({}, UNIMPLEMENTED);
});

Deno.test("limits, client role: 16 MiB inflated is echoed or refused with 1009", async () => {
  const echoed = await againstStrictClient([LIMIT_ID], OFFERING);
  assert.equal(echoed.get(LIMIT_ID)!.verdict.behavior, "INFORMATIONAL");
  assert.equal(echoed.get(LIMIT_ID)!.run.received.length, 1);
  const refused = await againstStrictClient([LIMIT_ID], { ...OFFERING, maxMessage: MiB });
  assert.equal(refused.get(LIMIT_ID)!.verdict.behavior, "INFORMATIONAL");
  assert.equal(refused.get(LIMIT_ID)!.run.close.remoteCloseCode, 1009);
});
