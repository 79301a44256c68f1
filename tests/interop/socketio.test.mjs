// The real socket.io-client 4.x against Switchboard, over websocket only, polling only, and
// the default (polling, then upgrade to websocket).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startServer, token, once, onceArgs } from "./server.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const TRANSPORTS = {
  "websocket only": { transports: ["websocket"] },
  "polling only": { transports: ["polling"] },
  "default (polling then upgrade)": {},
};

/** Connects and resolves once `socket-id` has arrived. */
async function connect(options = {}) {
  const socket = io(server.url, { forceNew: true, reconnection: false, timeout: 5_000, ...options });
  const id = await Promise.race([
    once(socket, "socket-id"),
    once(socket, "connect_error").then((e) => {
      throw e;
    }),
  ]);
  return { socket, id };
}

/** Polls `cond` every 20 ms; rejects after `ms`. */
async function waitFor(cond, ms = 5_000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for a condition");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function put(path, body, bearer) {
  const res = await fetch(`${server.url}${path}`, {
    method: "PUT",
    headers: { "content-type": "application/json", authorization: `Bearer ${bearer}` },
    body: JSON.stringify(body),
  });
  return res;
}

for (const [name, options] of Object.entries(TRANSPORTS)) {
  describe(name, () => {
    test("socket-id is the socket's id and mission-update carries the DTO", async () => {
      const { socket, id } = await connect(options);
      try {
        assert.equal(id, socket.id);
        const update = once(socket, "mission-update");
        const res = await put("/missions/4", { status: "aborted", location: "Bergen" }, token({ sub: "hq-1", role: "hq" }));
        assert.equal(res.status, 200);
        assert.deepEqual(await update, { id: 4, codename: "Silent Meridian", status: "aborted", location: "Bergen" });
        if (!options.transports) {
          // The default client upgrades from polling to websocket.
          if (socket.io.engine.transport.name !== "websocket") await once(socket.io.engine, "upgrade");
          assert.equal(socket.io.engine.transport.name, "websocket");
        } else {
          assert.equal(socket.io.engine.transport.name, options.transports[0]);
        }
      } finally {
        socket.close();
      }
    });

    test("resume after a disconnect: auth.since replays exactly the missed, then live", async () => {
      const hq = token({ sub: "hq-1", role: "hq" });
      const first = await connect(options);
      let position;
      try {
        const update = onceArgs(first.socket, "mission-update");
        assert.equal((await put("/missions/3", { location: "Ankara" }, hq)).status, 200);
        const [dto, meta] = await update;
        assert.equal(dto.location, "Ankara");
        assert.equal(meta.channel, "missions");
        position = { offset: meta.offset, epoch: meta.epoch };
      } finally {
        first.socket.close();
      }
      const missed = ["Izmir", "Bursa", "Konya", "Adana", "Antalya"];
      for (const location of missed) {
        assert.equal((await put("/missions/3", { location }, hq)).status, 200);
      }
      const seen = [];
      const socket = io(server.url, {
        forceNew: true,
        reconnection: false,
        ...options,
        auth: { since: { missions: position } },
      });
      try {
        socket.on("mission-update", (dto, meta) => seen.push([meta.offset, dto.location]));
        const subscribed = await once(socket, "subscribed");
        assert.equal(subscribed.recovered, true);
        assert.equal(subscribed.offset, position.offset + 5);
        await waitFor(() => seen.length >= 5);
        assert.deepEqual(seen, missed.map((loc, i) => [position.offset + 1 + i, loc]));
        assert.equal((await put("/missions/3", { location: "Ankara" }, hq)).status, 200);
        await waitFor(() => seen.length >= 6);
        assert.deepEqual(seen, [...missed.map((loc, i) => [position.offset + 1 + i, loc]), [position.offset + 6, "Ankara"]]);
      } finally {
        socket.close();
      }
    });

    test("rooms: join, chat to everyone, typing and joins to the others", async () => {
      const room = `r-${Math.random().toString(36).slice(2, 8)}`;
      const a = await connect(options);
      const b = await connect(options);
      try {
        const ackB = await b.socket.timeout(5_000).emitWithAck("join-room", room);
        assert.deepEqual(ackB, { ok: true, channel: `room:${room}` });
        const joined = once(b.socket, "user-joined");
        let aGotJoined = false;
        a.socket.on("user-joined", () => (aGotJoined = true));
        a.socket.emit("join-room", room);
        assert.equal(await joined, a.id);

        const atA = once(a.socket, "new-message");
        const atB = once(b.socket, "new-message");
        a.socket.emit("chat-message", { roomId: room, message: "Hello\u0000 room" });
        const [ma, mb] = await Promise.all([atA, atB]);
        assert.deepEqual(ma, mb);
        assert.equal(ma.message, "Hello room");
        assert.equal(ma.sender, a.id);
        assert.ok(ma.id);
        assert.ok(!Number.isNaN(Date.parse(ma.timestamp)) && ma.timestamp.endsWith("Z"));

        let aGotTyping = false;
        a.socket.on("user-typing", () => (aGotTyping = true));
        const typing = once(b.socket, "user-typing");
        a.socket.emit("typing", { roomId: room });
        assert.equal(await typing, a.id);
        // Ordered after the typing notice: once this answer arrives, a notice would have too.
        await a.socket.timeout(5_000).emitWithAck("subscribe", "lobby");
        assert.equal(aGotTyping, false);
        assert.equal(aGotJoined, false);

        const refused = await a.socket.timeout(5_000).emitWithAck("chat-message", { roomId: room, message: "   " });
        assert.equal(refused.error, "Message must not be empty");

        await a.socket.timeout(5_000).emitWithAck("leave-room", room);
        let aGotAfterLeave = false;
        a.socket.on("new-message", () => (aGotAfterLeave = true));
        const onlyB = once(b.socket, "new-message");
        b.socket.emit("chat-message", { roomId: room, message: "bye" });
        assert.equal((await onlyB).message, "bye");
        await a.socket.timeout(5_000).emitWithAck("subscribe", "lobby");
        assert.equal(aGotAfterLeave, false);
      } finally {
        a.socket.close();
        b.socket.close();
      }
    });

    test("payment-status reaches only the requesting socket", async () => {
      const a = await connect(options);
      const b = await connect(options);
      try {
        let bGot = false;
        b.socket.on("payment-status", () => (bGot = true));
        const status = once(a.socket, "payment-status");
        const res = await fetch(`${server.url}/api/payments/make-payment-with-socket`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ amount: 1000, socketId: a.id }),
        });
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.equal(body.message, "Payment received, processing request");
        const pending = await (await fetch(`${server.url}/api/payments/${body.paymentId}`)).json();
        assert.equal(pending.status, "pending");
        assert.equal(await status, true);
        const done = await (await fetch(`${server.url}/api/payments/${body.paymentId}`)).json();
        assert.equal(done.status, "succeeded");
        await b.socket.timeout(5_000).emitWithAck("subscribe", "lobby");
        assert.equal(bGot, false);
      } finally {
        a.socket.close();
        b.socket.close();
      }
    });

    test("auth: token in the handshake, bad tokens and origins refused", async () => {
      const ok = await connect({ ...options, auth: { token: token({ sub: "agent-9", role: "agent", channels: ["city:*"] }) } });
      try {
        const ack = await ok.socket.timeout(5_000).emitWithAck("subscribe", "city:nairobi");
        assert.equal(ack.ok, true);
        assert.equal(typeof ack.offset, "number");
      } finally {
        ok.socket.close();
      }
      const anon = await connect(options);
      try {
        const ack = await anon.socket.timeout(5_000).emitWithAck("subscribe", "city:nairobi");
        assert.equal(ack.code, "forbidden");
        assert.ok(ack.error);
      } finally {
        anon.socket.close();
      }
      await assert.rejects(connect({ ...options, auth: { token: token({ sub: "x" }, "wrong-secret-0123456789") } }), (e) => {
        assert.equal(e.message, "Invalid token");
        return true;
      });
      await assert.rejects(connect({ ...options, query: { token: "garbage" } }), /Invalid token/);
      // A disallowed Origin is refused at the handshake with 403 (SPEC §6) — not any failure:
      // the transport error must carry that status (polling: the HTTP status as the
      // description; websocket: "Unexpected server response: 403").
      await assert.rejects(connect({ ...options, extraHeaders: { Origin: "http://evil.example" } }), (e) => {
        assert.equal(e.type, "TransportError", String(e));
        const detail = String(e.description?.message ?? e.description ?? "");
        assert.match(detail, /\b403\b/, `${e.message}: ${detail}`);
        return true;
      });
      // The same handshake from an Origin on the allow-list (the default one) connects.
      const allowed = await connect({ ...options, extraHeaders: { Origin: "http://localhost:3000" } });
      allowed.socket.close();
    });
  });
}
