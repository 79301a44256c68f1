import { test } from "node:test";
import assert from "node:assert/strict";
import { Subscription } from "../../src/index.js";

const delivery = (offset, epoch = "e1", data = { n: offset }) => ({
  type: "note", channel: "room:1", offset, epoch, timestamp: 1, data,
});

function recorder(sub) {
  const log = [];
  sub.on("publication", (p) => log.push(["pub", p.offset]));
  sub.on("gap", (g) => log.push(["gap", g.offset, g.epoch]));
  sub.on("subscribed", (s) => log.push(["subscribed", s.offset, s.recovered]));
  return log;
}

test("a fresh subscription takes the server's position and counts from there", () => {
  const sub = new Subscription("room:1", undefined, () => {});
  const log = recorder(sub);
  assert.equal(sub.since, undefined);
  sub._subscribed({ offset: 4, epoch: "e1", recovered: false });
  assert.deepEqual(sub.since, { offset: 4, epoch: "e1" });
  sub._deliver(delivery(5));
  sub._deliver(delivery(6));
  assert.deepEqual(sub.since, { offset: 6, epoch: "e1" });
  assert.deepEqual(log, [["subscribed", 4, false], ["pub", 5], ["pub", 6]]);
});

test("resume: a recovered subscribe keeps the position, catch-up continues it, duplicates are dropped", () => {
  const sub = new Subscription("room:1", { offset: 7, epoch: "e1" }, () => {});
  const log = recorder(sub);
  sub._subscribed({ offset: 9, epoch: "e1", recovered: true });
  assert.deepEqual(sub.since, { offset: 7, epoch: "e1" }, "the head offset does not skip the catch-up");
  for (const o of [8, 9, 8, 9, 10, 10]) sub._deliver(delivery(o));
  assert.deepEqual(log, [["subscribed", 9, true], ["pub", 8], ["pub", 9], ["pub", 10]]);
});

test("an unrecovered resume reports gap and moves to the new position", () => {
  const sub = new Subscription("room:1", { offset: 7, epoch: "e1" }, () => {});
  const log = recorder(sub);
  sub._subscribed({ offset: 2, epoch: "e2", recovered: false });
  assert.deepEqual(sub.since, { offset: 2, epoch: "e2" });
  sub._deliver(delivery(3, "e2"));
  assert.deepEqual(log, [["subscribed", 2, false], ["gap", 2, "e2"], ["pub", 3]]);
});

test("a recovered answer on another epoch is still a gap", () => {
  const sub = new Subscription("room:1", { offset: 7, epoch: "e1" }, () => {});
  const log = recorder(sub);
  sub._subscribed({ offset: 1, epoch: "e2", recovered: true });
  assert.deepEqual(log, [["subscribed", 1, true], ["gap", 1, "e2"]]);
});

test("live deliveries that skip offsets or change epoch report gap before the delivery", () => {
  const sub = new Subscription("room:1", undefined, () => {});
  const log = recorder(sub);
  sub._subscribed({ offset: 1, epoch: "e1", recovered: false });
  sub._deliver(delivery(2));
  sub._deliver(delivery(5));
  sub._deliver(delivery(1, "e9"));
  assert.deepEqual(log, [
    ["subscribed", 1, false], ["pub", 2], ["gap", 4, "e1"], ["pub", 5], ["gap", 0, "e9"], ["pub", 1],
  ]);
});

test("handlers per event name get the data; transient notices pass; nothing after unsubscribe", () => {
  let removed = 0;
  const sub = new Subscription("room:1", undefined, () => removed++);
  const got = [];
  sub.on("note", (data, pub) => got.push([data.n, pub.offset]));
  sub.on("user_joined", (data) => got.push(["joined", data.user]));
  sub._subscribed({ offset: 0, epoch: "e1", recovered: false });
  sub._deliver(delivery(1));
  sub._deliver({ type: "user_joined", channel: "room:1", data: { user: "bob" } });
  sub.unsubscribe();
  sub.unsubscribe();
  sub._deliver(delivery(2));
  assert.deepEqual(got, [[1, 1], ["joined", "bob"]]);
  assert.equal(removed, 1);
});
