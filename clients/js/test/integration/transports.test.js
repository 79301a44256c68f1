// The client against the real server, once per transport: connect with a token, subscribe,
// publish (over the socket or over HTTP), presence, REST writes arriving as events, and the
// do-not-reconnect rule on a refused token.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { Switchboard } from "../../src/index.js";
import { startServer, token, next, until } from "../helpers/server.js";

let server;
before(async () => {
  server = await startServer({ SWITCHBOARD_HEARTBEAT__INTERVAL_MS: "1000", SWITCHBOARD_SSE__HEARTBEAT_MS: "1000" });
});
after(() => server.stop());

const options = (transport, extra = {}) => ({
  WebSocket, transports: [transport], minReconnectDelay: 50, maxReconnectDelay: 500,
  sseHeartbeat: 1000, heartbeatGrace: 2000, pollTimeout: 2, ...extra,
});

for (const transport of ["websocket", "sse", "poll"]) {
  test(`${transport}: subscribe, publish, receive, presence`, async () => {
    const sb = new Switchboard(server.url, options(transport, { token: token({ sub: `u-${transport}` }) }));
    const connected = next(sb, "state", 10_000, (s) => s.state === "connected");
    sb.connect();
    assert.equal((await connected).transport, transport);
    assert.equal(sb.transport, transport);
    const channel = `room:${transport}`;
    const sub = sb.subscribe(channel);
    const subscribed = await next(sub, "subscribed");
    assert.equal(subscribed.recovered, false);
    const got = [];
    sub.on("note", (data, pub) => got.push([data.n, pub.offset]));
    for (let n = 1; n <= 3; n++) {
      const { offset } = await sb.publish(channel, "note", { n });
      assert.equal(offset, subscribed.offset + n);
    }
    await until(() => got.length === 3, 10_000, "three notes");
    assert.deepEqual(got.map(([n]) => n), [1, 2, 3]);
    const members = await sb.presence(channel);
    assert.ok(Array.isArray(members));
    if (transport === "websocket") {
      assert.deepEqual(members, [{ user: `u-${transport}`, connectionId: sb.connectionId }]);
    }
    await assert.rejects(sb.publish("missions", "note", {}), /not allowed/);
    sb.disconnect();
    assert.equal(sb.state, "disconnected");
  });

  test(`${transport}: a REST write arrives as mission-update`, async () => {
    const sb = new Switchboard(server.url, options(transport));
    sb.connect();
    const sub = sb.subscribe("missions");
    await next(sub, "subscribed");
    const update = next(sub, "mission-update");
    const res = await fetch(`${server.url}/missions/2`, {
      method: "PUT",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token({ sub: "hq1", role: "hq" })}` },
      body: JSON.stringify({ location: `Lisbon-${transport}` }),
    });
    assert.equal(res.status, 200);
    const data = await update;
    assert.equal(data.location, `Lisbon-${transport}`);
    assert.equal(data.handler_notes, undefined);
    sb.disconnect();
  });

  test(`${transport}: an invalid token stops without a reconnect loop`, async () => {
    let attempts = 0;
    const sb = new Switchboard(server.url, options(transport, { getToken: () => { attempts++; return "garbage"; } }));
    const sub = sb.subscribe("missions");
    const error = next(sb, "error");
    sb.connect();
    const err = await error;
    assert.ok([4001, 4002].includes(err.closeCode), `close code ${err.closeCode}`);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sb.state, "disconnected");
    assert.equal(attempts, 1);
    sub.unsubscribe();
  });
}

test("websocket: the token is refreshed in place before it expires", async () => {
  let calls = 0;
  const sb = new Switchboard(server.url, options("websocket", {
    getToken: () => { calls++; return token({ sub: "refresher" }, { expiresIn: 3 }); },
  }));
  sb.connect();
  const sub = sb.subscribe("room:refresh");
  await next(sub, "subscribed");
  const id = sb.connectionId;
  await until(() => calls >= 2, 8_000, "a second getToken");
  // Past the first token's expiry: still the same connection, still delivering.
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(sb.connectionId, id, "no reconnect");
  const note = next(sub, "note");
  await sb.publish("room:refresh", "note", { ok: true });
  assert.deepEqual(await note, { ok: true });
  sb.disconnect();
});

test("sse and poll: user inbox deliveries are acknowledged over HTTP", async () => {
  for (const transport of ["sse", "poll"]) {
    const user = `inbox-${transport}`;
    const tok = token({ sub: user });
    const { apiPublish } = await import("../helpers/server.js");
    await apiPublish(server.url, `user:${user}`, "note", { n: 1 });
    const sb = new Switchboard(server.url, options(transport, { token: tok }));
    const got = next(sb, "publication");
    sb.connect();
    assert.deepEqual((await got).data, { n: 1 });
    sb.disconnect();
    // The ack went through: a new WebSocket connection of that user gets nothing pending.
    await new Promise((r) => setTimeout(r, 300));
    const again = new Switchboard(server.url, options("websocket", { token: tok }));
    const seen = [];
    again.on("publication", (p) => seen.push(p));
    again.connect();
    await next(again, "state", 5_000, (s) => s.state === "connected");
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(seen, [], `${transport}: acked entries are not redelivered`);
    again.disconnect();
  }
});

for (const transport of ["sse", "poll"]) {
  test(`${transport}: getToken before expiry keeps the session connected past the first token's exp`, async () => {
    let calls = 0;
    const sb = new Switchboard(server.url, options(transport, {
      getToken: () => { calls++; return token({ sub: `refresh-${transport}` }, { expiresIn: 3 }); },
    }));
    const states = [];
    sb.on("state", (s) => states.push(s.state));
    sb.connect();
    const sub = sb.subscribe(`room:refresh-${transport}`);
    await next(sub, "subscribed");
    await until(() => calls >= 2, 8_000, "a second getToken");
    await new Promise((r) => setTimeout(r, 2500));
    const note = next(sub, "note");
    await sb.publish(`room:refresh-${transport}`, "note", { ok: transport });
    assert.deepEqual(await note, { ok: transport });
    assert.deepEqual(states, ["connecting", "connected"], "never dropped");
    sb.disconnect();
  });
}
