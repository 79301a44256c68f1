import { test } from "node:test";
import assert from "node:assert/strict";
import { reconnectPolicy } from "../../src/index.js";

test("close codes are judged by range, unknown codes reconnect", () => {
  const cases = {
    1000: "stop", 1006: "reconnect", 1009: "reconnect", 1012: "reconnect",
    4001: "stop", 4002: "stop", 4003: "stop", 4004: "refresh", 4007: "refresh",
    4008: "reconnect", 4009: "reconnect", 4010: "stop", 4011: "stop", 4099: "stop",
    0: "reconnect", 3000: "reconnect", 3999: "reconnect", 4100: "reconnect", 65535: "reconnect",
  };
  for (const [code, policy] of Object.entries(cases)) {
    assert.equal(reconnectPolicy(Number(code)), policy, `code ${code}`);
  }
});
