/**
 * Client mode (issue 9): the suite is the server and tests a client. Which
 * cases run against clients is stated in the case data (each group's `peers`).
 *
 *   deno test --allow-all tests/client_mode_test.ts
 */
import assert from "node:assert/strict";
import { AUTOBAHN_CASES, CLIENT_CASES, GROUPS } from "../fixtures/mod.ts";

Deno.test("client mode: groups 1-7, 9 and 10 run against clients, Autobahn's 301 cases", () => {
  const clientGroups = GROUPS.filter((g) => g.peers.includes("client")).map((g) => g.id);
  assert.deepEqual(clientGroups, ["1", "2", "3", "4", "5", "6", "7", "9", "10"]);
  assert.equal(CLIENT_CASES.length, 301);
  assert.deepEqual(CLIENT_CASES.map((c) => c.id), AUTOBAHN_CASES.map((c) => c.id));
  // Groups 0, 8 and 11 are server-side for now; every group runs against servers.
  for (const group of GROUPS) assert.ok(group.peers.includes("server"), group.id);
  const serverOnly = GROUPS.filter((g) => !g.peers.includes("client")).map((g) => g.id);
  assert.deepEqual(serverOnly, ["0", "8", "11"]);
});
