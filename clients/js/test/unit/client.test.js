import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { Switchboard } from "../../src/index.js";
import { FakeSocket, fakeToken, until } from "./fakes.js";

beforeEach(() => FakeSocket.reset());

const fast = { WebSocket: FakeSocket, minReconnectDelay: 5, maxReconnectDelay: 20, connectTimeout: 500 };

function states(sb) {
  const log = [];
  sb.on("state", (s) => log.push(s.state === "connected" ? `connected:${s.transport}` : s.state));
  return log;
}

test("state machine: connecting, then connected once the token is accepted; subscribes after auth", async () => {
  const token = fakeToken({ sub: "alice" });
  const sb = new Switchboard("http://x", { ...fast, transports: ["websocket"], token });
  const log = states(sb);
  const sub = sb.subscribe("missions");
  sb.connect();
  await until(() => FakeSocket.latest()?.readyState === 1);
  const ws = FakeSocket.latest();
  assert.equal(ws.url, "ws://x/ws", "no token in the URL");
  ws.welcome();
  assert.deepEqual(ws.sent.map((m) => m.type), ["auth"], "the token is the first message");
  assert.equal(ws.sent[0].token, token);
  assert.equal(sb.state, "connecting");
  ws.push({ type: "authenticated", user: "alice", ref: ws.sent[0].ref });
  assert.equal(sb.state, "connected");
  assert.equal(sb.transport, "websocket");
  assert.equal(sb.connectionId, "c1");
  const subscribe = ws.last("subscribe");
  assert.equal(subscribe.channel, "missions");
  assert.equal(subscribe.since, undefined);
  ws.push({ type: "subscribed", channel: "missions", offset: 3, epoch: "e", recovered: false, ref: subscribe.ref });
  assert.equal(sub.state, "subscribed");
  sb.disconnect();
  assert.deepEqual(log, ["connecting", "connected:websocket", "disconnected"]);
});

test("resume: after a drop the subscription is resent with its last offset and epoch", async () => {
  const sb = new Switchboard("http://x", { ...fast, transports: ["websocket"] });
  const sub = sb.subscribe("room:1");
  const got = [];
  sub.on("note", (d) => got.push(d));
  sb.connect();
  await until(() => FakeSocket.latest()?.readyState === 1);
  let ws = FakeSocket.latest();
  ws.welcome();
  const s1 = ws.last("subscribe");
  ws.push({ type: "subscribed", channel: "room:1", offset: 0, epoch: "e", recovered: false, ref: s1.ref });
  for (const o of [1, 2, 3]) ws.push({ type: "note", channel: "room:1", offset: o, epoch: "e", data: o });
  ws.drop(1006);
  assert.equal(sb.state, "connecting");
  await until(() => FakeSocket.instances.length === 2 && FakeSocket.latest().readyState === 1, 2000, "reconnect");
  ws = FakeSocket.latest();
  ws.welcome({ connectionId: "c2" });
  const s2 = ws.last("subscribe");
  assert.deepEqual(s2.since, { offset: 3, epoch: "e" });
  ws.push({ type: "subscribed", channel: "room:1", offset: 4, epoch: "e", recovered: true, ref: s2.ref });
  for (const o of [3, 4, 4, 5]) ws.push({ type: "note", channel: "room:1", offset: o, epoch: "e", data: o });
  assert.deepEqual(got, [1, 2, 3, 4, 5]);
  sb.disconnect();
});

test("do-not-reconnect codes stop and report error; no new socket is opened", async () => {
  for (const code of [4001, 4002, 4010, 4011, 1000]) {
    FakeSocket.reset();
    const sb = new Switchboard("http://x", { ...fast, transports: ["websocket"] });
    const errors = [];
    sb.on("error", (e) => errors.push(e));
    sb.connect();
    await until(() => FakeSocket.latest()?.readyState === 1);
    FakeSocket.latest().welcome();
    FakeSocket.latest().drop(code, "bye");
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(FakeSocket.instances.length, 1, `code ${code} must not reconnect`);
    assert.equal(sb.state, "disconnected");
    assert.equal(errors.length, 1);
    assert.equal(errors[0].closeCode, code);
  }
});

test("4004 (expired) calls getToken again and reconnects with the new token", async () => {
  let n = 0;
  const tokens = [fakeToken({ sub: "a", n: 1 }), fakeToken({ sub: "a", n: 2 })];
  const sb = new Switchboard("http://x", { ...fast, transports: ["websocket"], getToken: async () => tokens[n++] });
  sb.connect();
  await until(() => FakeSocket.latest()?.readyState === 1);
  let ws = FakeSocket.latest();
  ws.welcome();
  assert.equal(ws.last("auth").token, tokens[0]);
  ws.push({ type: "authenticated", user: "a", ref: ws.last("auth").ref });
  ws.drop(4004, "Token expired");
  await until(() => FakeSocket.instances.length === 2 && FakeSocket.latest().readyState === 1);
  ws = FakeSocket.latest();
  ws.welcome();
  assert.equal(ws.last("auth").token, tokens[1]);
  assert.equal(n, 2);
  sb.disconnect();
});

test("heartbeat: a silent connection is pinged, then replaced", async () => {
  const sb = new Switchboard("http://x", { ...fast, transports: ["websocket"], heartbeatGrace: 80 });
  sb.connect();
  await until(() => FakeSocket.latest()?.readyState === 1);
  const ws = FakeSocket.latest();
  ws.welcome({ heartbeat: 40 });
  await until(() => ws.last("ping"), 1000, "a ping");
  await until(() => FakeSocket.instances.length === 2, 1000, "a new socket");
  assert.equal(ws.closedWith, 4000);
  sb.disconnect();
});

test("a transport that cannot connect falls back to the next, and the preferred one is retried later", async () => {
  FakeSocket.refuse = true;
  const fetches = [];
  // A fake /poll that answers at once with an empty cursor for the channel.
  const fetch = async (url) => {
    fetches.push(url);
    await new Promise((r) => setTimeout(r, 5));
    return new Response(JSON.stringify({ updates: [], cursor: Buffer.from([1, 5, ...Buffer.from("lobby"), 1, 101, 0]).toString("base64url") }), { status: 200 });
  };
  const sb = new Switchboard("http://x", {
    ...fast, fetch, transports: ["websocket", "poll"], retryPreferredAfter: 50, pollTimeout: 0.01,
  });
  const log = states(sb);
  const sub = sb.subscribe("lobby");
  sb.connect();
  await until(() => sb.transport === "poll", 2000, "poll");
  await until(() => sub.state === "subscribed", 2000, "subscribed over poll");
  assert.ok(fetches[0].includes("/poll?channels=lobby"));
  const before = FakeSocket.instances.length;
  FakeSocket.refuse = false;
  await until(() => FakeSocket.instances.length > before && FakeSocket.latest().readyState === 1, 2000, "a probe");
  const probe = FakeSocket.latest();
  probe.welcome();
  assert.equal(sb.transport, "websocket", "the probe took over");
  const resub = probe.last("subscribe");
  assert.equal(resub.channel, "lobby");
  assert.deepEqual(resub.since, { offset: 0, epoch: "e" }, "resumed from the position poll reported");
  sb.disconnect();
  assert.ok(log.includes("connected:poll"));
});

test("user inbox deliveries are acknowledged after the handlers ran", async () => {
  const token = fakeToken({ sub: "alice" });
  const sb = new Switchboard("http://x", { ...fast, transports: ["websocket"], token });
  const order = [];
  sb.on("publication", (p) => {
    order.push(`handler ${p.offset}`);
    assert.equal(FakeSocket.latest().last("ack"), undefined, "no ack before the handler ran");
  });
  sb.connect();
  await until(() => FakeSocket.latest()?.readyState === 1);
  const ws = FakeSocket.latest();
  ws.welcome();
  ws.push({ type: "authenticated", user: "alice", ref: ws.last("auth").ref });
  ws.push({ type: "note", channel: "user:alice", offset: 1, epoch: "u", data: {} });
  ws.push({ type: "note", channel: "user:alice", offset: 2, epoch: "u", data: {} });
  ws.push({ type: "note", channel: "user:alice", offset: 2, epoch: "u", data: {} });
  await until(() => ws.last("ack"), 500, "an ack");
  assert.deepEqual(order, ["handler 1", "handler 2"], "the duplicate is dropped");
  assert.deepEqual(ws.last("ack"), { type: "ack", channel: "user:alice", offset: 2 });
  sb.disconnect();
});

test("a temporary subscribe refusal is retried; a final one fails the subscription", async () => {
  const sb = new Switchboard("http://x", { ...fast, transports: ["websocket"] });
  const temp = sb.subscribe("room:t");
  const denied = sb.subscribe("room:d");
  const errors = [];
  denied.on("error", (e) => errors.push(e.message));
  temp.on("error", (e) => errors.push(`temp: ${e.message}`));
  sb.connect();
  await until(() => FakeSocket.latest()?.readyState === 1);
  const ws = FakeSocket.latest();
  ws.welcome();
  const first = ws.sent.filter((m) => m.type === "subscribe");
  assert.deepEqual(first.map((m) => m.channel), ["room:t", "room:d"]);
  ws.push({ type: "error", code: "bad_request", message: "Subscription temporarily unavailable; retry", ref: first[0].ref });
  ws.push({ type: "error", code: "forbidden", message: "Authentication required for this channel", ref: first[1].ref });
  assert.equal(denied.state, "failed");
  await until(() => ws.sent.filter((m) => m.type === "subscribe" && m.channel === "room:t").length === 2, 1000, "a retry");
  assert.equal(ws.sent.filter((m) => m.type === "subscribe" && m.channel === "room:d").length, 1);
  assert.deepEqual(errors, ["Authentication required for this channel"]);
  sb.disconnect();
});
