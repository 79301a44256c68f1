import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeCursor, encodeCursor } from "../../src/index.js";

test("the empty cursor is the server's (version byte only)", () => {
  assert.equal(encodeCursor(new Map()), "AQ");
});

test("cursors round-trip, sorted by channel, with multi-byte varints", () => {
  const positions = new Map([
    ["missions", { offset: 300, epoch: "k3j9x0aa" }],
    ["lobby", { offset: 0, epoch: "e1" }],
    ["city:nairobi", { offset: 2 ** 40, epoch: "z" }],
  ]);
  const text = encodeCursor(positions);
  assert.match(text, /^[A-Za-z0-9_-]+$/);
  const back = decodeCursor(text);
  assert.deepEqual([...back.keys()], ["city:nairobi", "lobby", "missions"]);
  assert.deepEqual(back.get("missions"), { offset: 300, epoch: "k3j9x0aa" });
  assert.deepEqual(back.get("city:nairobi"), { offset: 2 ** 40, epoch: "z" });
});

test("known bytes: one channel", () => {
  // 0x01, len 5 "lobby", len 1 "e", offset 7
  const raw = Buffer.from([1, 5, ...Buffer.from("lobby"), 1, ...Buffer.from("e"), 7]);
  assert.equal(encodeCursor({ lobby: { offset: 7, epoch: "e" } }), raw.toString("base64url"));
  assert.throws(() => decodeCursor(Buffer.from([2]).toString("base64url")));
  assert.throws(() => decodeCursor(raw.subarray(0, 5).toString("base64url")));
});
