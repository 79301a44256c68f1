// Fallback through a proxy that refuses WebSocket upgrades (→ SSE) and also holds SSE
// streams (→ long-polling); publications flow on the transport the client ended on, and once
// the proxy lets upgrades through the client moves back to the WebSocket by itself.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { Switchboard } from "../../src/index.js";
import { apiPublish, startServer, next, until } from "../helpers/server.js";
import { startProxy } from "../helpers/proxy.js";

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

const options = {
  WebSocket, minReconnectDelay: 50, maxReconnectDelay: 500, connectTimeout: 1500, pollTimeout: 1,
};

async function receives(sb, channel) {
  const sub = sb.subscribe(channel);
  await next(sub, "subscribed");
  const got = next(sub, "note");
  await apiPublish(server.url, channel, "note", { via: sb.transport });
  assert.deepEqual(await got, { via: sb.transport });
}

test("a refused upgrade falls back to SSE", async () => {
  const proxy = await startProxy(server.url, { refuseUpgrades: true });
  const sb = new Switchboard(proxy.url, options);
  const seen = [];
  sb.on("state", (s) => seen.push(`${s.state}:${s.transport}`));
  sb.connect();
  await until(() => sb.state === "connected", 10_000, "connected");
  assert.equal(sb.transport, "sse");
  assert.ok(!seen.includes("connected:websocket"));
  await receives(sb, "room:fallback-sse");
  sb.disconnect();
  await proxy.close();
});

test("a refused upgrade and a held stream fall back to long-polling", async () => {
  const proxy = await startProxy(server.url, { refuseUpgrades: true, blockSse: true });
  const sb = new Switchboard(proxy.url, options);
  sb.subscribe("room:fallback-poll");
  sb.connect();
  await until(() => sb.state === "connected", 15_000, "connected");
  assert.equal(sb.transport, "poll");
  await receives(sb, "room:fallback-poll2");
  sb.disconnect();
  await proxy.close();
});

test("the preferred transport is retried later and taken over without loss", async () => {
  const proxy = await startProxy(server.url, { refuseUpgrades: true, blockSse: true });
  const sb = new Switchboard(proxy.url, { ...options, retryPreferredAfter: 300 });
  const sub = sb.subscribe("room:comeback");
  const got = [];
  sub.on("note", (d) => got.push(d.n));
  const subscribed = next(sub, "subscribed", 15_000);
  sb.connect();
  await until(() => sb.transport === "poll", 15_000, "on poll");
  await subscribed;
  await apiPublish(server.url, "room:comeback", "note", { n: 1 });
  await until(() => got.length === 1, 5_000, "first note");
  proxy.set({ refuseUpgrades: false, blockSse: false });
  await until(() => sb.transport === "websocket", 10_000, "back on websocket");
  for (let n = 2; n <= 4; n++) await apiPublish(server.url, "room:comeback", "note", { n });
  await until(() => got.length >= 4, 5_000, "all notes");
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(got, [1, 2, 3, 4]);
  sb.disconnect();
  await proxy.close();
});
