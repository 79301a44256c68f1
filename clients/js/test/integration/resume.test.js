// Resume across a killed server and across nodes: a client keeps receiving a numbered stream
// while the server under it is SIGKILLed and restarted (Redis broker, so history survives),
// or while a proxy moves it from one Redis-backed node to another; it must end with every
// number exactly once, in order, without a gap. With the in-memory broker a restart loses
// history, and the client must say so with `gap`.
import { test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { Switchboard } from "../../src/index.js";
import { apiPublish, dropRedisKeys, next, redisOrSkip, startServer, until } from "../helpers/server.js";
import { startProxy } from "../helpers/proxy.js";

const options = (transport) => ({
  WebSocket, transports: [transport], minReconnectDelay: 50, maxReconnectDelay: 300,
  connectTimeout: 3000, pollTimeout: 1, heartbeatGrace: 3000,
});

function collect(sub) {
  const got = [];
  const gaps = [];
  sub.on("note", (d) => got.push(d.n));
  sub.on("gap", (g) => gaps.push(g));
  return { got, gaps };
}

async function publishRange(url, channel, from, to) {
  for (let n = from; n <= to; n++) await apiPublish(url, channel, "note", { n });
}

for (const transport of ["websocket", "sse", "poll"]) {
  test(`${transport}: kill -9 and restart mid-stream resumes without loss or duplicates (Redis)`, async (t) => {
    const redis = await redisOrSkip(t);
    if (!redis) return;
    const env = { SWITCHBOARD_BROKER__URL: redis.url, SWITCHBOARD_BROKER__PREFIX: redis.prefix };
    let server = await startServer(env);
    const proxy = await startProxy(server.url);
    const channel = `room:restart-${transport}`;
    const sb = new Switchboard(proxy.url, options(transport));
    try {
      const sub = sb.subscribe(channel);
      const { got, gaps } = collect(sub);
      sb.connect();
      await next(sub, "subscribed");
      await publishRange(server.url, channel, 1, 5);
      await until(() => got.length === 5, 10_000, "1..5");
      await server.kill("SIGKILL");
      proxy.dropAll();
      server = await startServer(env, { dataDir: server.dataDir });
      proxy.switchTo(server.url);
      // Published before the client is back: it must recover them.
      await publishRange(server.url, channel, 6, 10);
      await until(() => sb.state === "connected", 15_000, "reconnected");
      await publishRange(server.url, channel, 11, 15);
      await until(() => got.length >= 15, 15_000, "1..15");
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(got, Array.from({ length: 15 }, (_, i) => i + 1));
      assert.deepEqual(gaps, []);
    } finally {
      sb.disconnect();
      await proxy.close();
      await server.stop();
      dropRedisKeys(redis.prefix);
    }
  });

  test(`${transport}: two Redis nodes behind a switching proxy: the client moves and recovers`, async (t) => {
    const redis = await redisOrSkip(t);
    if (!redis) return;
    const env = { SWITCHBOARD_BROKER__URL: redis.url, SWITCHBOARD_BROKER__PREFIX: redis.prefix };
    const a = await startServer(env);
    const b = await startServer(env);
    const proxy = await startProxy(a.url);
    const channel = `room:move-${transport}`;
    const sb = new Switchboard(proxy.url, options(transport));
    try {
      const sub = sb.subscribe(channel);
      const { got, gaps } = collect(sub);
      const recovered = [];
      sub.on("error", (e) => console.log(`subscription error: ${e.code} ${e.message}`));
      sb.on("error", (e) => console.log(`client error: ${e.message}`));
      sub.on("subscribed", (s) => recovered.push(s.recovered));
      sb.connect();
      await next(sub, "subscribed");
      await publishRange(a.url, channel, 1, 4);
      await until(() => got.length === 4, 10_000, "1..4 from node A");
      proxy.switchTo(b.url);
      proxy.dropAll();
      // Published on both nodes while the client moves.
      await publishRange(a.url, channel, 5, 6);
      await publishRange(b.url, channel, 7, 8);
      await until(() => got.length >= 8, 15_000, "1..8 after the move");
      await publishRange(a.url, channel, 9, 10);
      await until(() => got.length >= 10, 10_000, "1..10");
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => i + 1));
      assert.deepEqual(gaps, []);
      assert.ok(recovered.length >= 2 && recovered.at(-1) === true, `resubscribed with recovery: ${recovered}`);
    } finally {
      sb.disconnect();
      await proxy.close();
      await a.stop();
      await b.stop();
      dropRedisKeys(redis.prefix);
    }
  });
}

test("in-memory broker: a restart loses history and the client reports gap", async () => {
  let server = await startServer();
  const proxy = await startProxy(server.url);
  const sb = new Switchboard(proxy.url, options("websocket"));
  try {
    const sub = sb.subscribe("room:amnesia");
    const { got, gaps } = collect(sub);
    sb.connect();
    await next(sub, "subscribed");
    await publishRange(server.url, "room:amnesia", 1, 2);
    await until(() => got.length === 2, 10_000, "1..2");
    await server.kill("SIGKILL");
    proxy.dropAll();
    server = await startServer({}, { dataDir: server.dataDir });
    proxy.switchTo(server.url);
    await until(() => gaps.length === 1, 15_000, "a gap");
    const after = next(sub, "note");
    await apiPublish(server.url, "room:amnesia", "note", { n: 3 });
    assert.deepEqual(await after, { n: 3 });
    assert.deepEqual(got, [1, 2, 3]);
  } finally {
    sb.disconnect();
    await proxy.close();
    await server.stop();
  }
});
