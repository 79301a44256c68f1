// The real socket.io-client 4.x through a real nginx (deploy/nginx.conf) in front of two
// switchboard nodes sharing Redis and PostgreSQL: the default transports (polling, then the
// upgrade to websocket) work through the proxy, and what is published on either node reaches
// the socket. Skipped with a printed reason when nginx, Redis or PostgreSQL is missing, unless
// SWITCHBOARD_REQUIRE_SERVICES=1.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { token, once } from "./server.mjs";
import { services, cleanServices, startNodes, startNginx } from "./cluster.mjs";

const svc = await services();
let nodes = [];
let nginx;

/** Connects to `url` and resolves once `socket-id` has arrived. */
async function connect(url, options = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: 5_000, ...options });
  const id = await Promise.race([
    once(socket, "socket-id"),
    once(socket, "connect_error").then((e) => {
      throw e;
    }),
  ]);
  return { socket, id };
}

async function putMission(base, id, body) {
  const res = await fetch(`${base}/missions/${id}`, {
    method: "PUT",
    headers: { "content-type": "application/json", authorization: `Bearer ${token({ sub: "hq-1", role: "hq" })}` },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200);
}

/** Resolves with the next `count` arguments of `event` on `socket`. */
function collect(socket, event, count, ms = 5_000) {
  return new Promise((resolve, reject) => {
    const got = [];
    const timer = setTimeout(() => reject(new Error(`timed out: ${got.length}/${count} ${event}`)), ms);
    const on = (data) => {
      got.push(data);
      if (got.length === count) {
        clearTimeout(timer);
        socket.off(event, on);
        resolve(got);
      }
    };
    socket.on(event, on);
  });
}

describe("socket.io-client through nginx, two nodes", { skip: svc.skip ?? false }, () => {
  before(async () => {
    nodes = await startNodes(svc, 2);
    nginx = await startNginx(svc.nginx, nodes);
  });
  after(async () => {
    await nginx?.stop();
    await Promise.all(nodes.map((n) => n.stop()));
    await cleanServices(svc);
  });

  test("default transports: polling, then the upgrade, through nginx; updates from both nodes", async () => {
    const { socket, id } = await connect(nginx.url);
    try {
      assert.equal(id, socket.id);
      // Joined `missions` on connect; an acked request proves the join (and its Redis
      // subscription) is done before anything is published.
      await socket.timeout(5_000).emitWithAck("subscribe", "lobby");
      if (socket.io.engine.transport.name !== "websocket") await once(socket.io.engine, "upgrade");
      assert.equal(socket.io.engine.transport.name, "websocket");

      // One publication through each node directly: one of them is not the socket's node.
      const updates = collect(socket, "mission-update", 2);
      await putMission(nodes[0].url, 4, { location: "Bergen" });
      await putMission(nodes[1].url, 4, { location: "Tromso" });
      assert.deepEqual(
        (await updates).map((u) => u.location),
        ["Bergen", "Tromso"],
      );
    } finally {
      socket.close();
    }
    // nginx logs a proxied websocket when it ends: give it a moment after the close.
    await new Promise((r) => setTimeout(r, 200));
    const log = nginx.accessLog();
    assert.match(log, /"GET \/socket\.io\/\?EIO=4&transport=polling[^"]*" 200/);
    assert.match(log, /"GET \/socket\.io\/\?EIO=4&transport=websocket&sid=[^"]*" 101/);
  });

  test("polling only through nginx: every request of the session reaches its node", async () => {
    const { socket } = await connect(nginx.url, { transports: ["polling"] });
    try {
      await socket.timeout(5_000).emitWithAck("subscribe", "lobby");
      const updates = collect(socket, "mission-update", 4);
      for (const [i, loc] of ["Quito", "Lima", "Cusco", "Arica"].entries()) {
        await putMission(nodes[i % 2].url, 2, { location: loc });
      }
      assert.deepEqual(
        (await updates).map((u) => u.location),
        ["Quito", "Lima", "Cusco", "Arica"],
      );
      assert.equal(socket.io.engine.transport.name, "polling");
    } finally {
      socket.close();
    }
  });

  test("room chat, typing and payments between a socket through nginx and sockets on each node", async () => {
    const room = `r-${Math.random().toString(36).slice(2, 8)}`;
    const x = await connect(nginx.url);
    const onA = await connect(nodes[0].url);
    const onB = await connect(nodes[1].url);
    const all = [x, onA, onB];
    try {
      for (const c of all) {
        assert.deepEqual(await c.socket.timeout(5_000).emitWithAck("join-room", room), { ok: true, channel: `room:${room}` });
      }
      const messages = all.map((c) => once(c.socket, "new-message"));
      x.socket.emit("chat-message", { roomId: room, message: "through nginx" });
      for (const m of await Promise.all(messages)) {
        assert.equal(m.message, "through nginx");
        assert.equal(m.sender, x.id);
      }

      let xGotTyping = false;
      x.socket.on("user-typing", () => (xGotTyping = true));
      const typing = [onA, onB].map((c) => once(c.socket, "user-typing"));
      x.socket.emit("typing", { roomId: room });
      assert.deepEqual(await Promise.all(typing), [x.id, x.id]);
      // Ordered after the typing notice: once this answer arrives, a notice would have too.
      await x.socket.timeout(5_000).emitWithAck("subscribe", "lobby");
      assert.equal(xGotTyping, false);

      // A payment for the socket behind nginx, posted to each node directly.
      const statuses = collect(x.socket, "payment-status", 2);
      for (const n of nodes) {
        const res = await fetch(`${n.url}/api/payments/make-payment-with-socket`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ amount: 5, socketId: x.id }),
        });
        assert.equal(res.status, 200);
      }
      assert.deepEqual(await statuses, [true, true]);
    } finally {
      for (const c of all) c.socket.close();
    }
  });
});
