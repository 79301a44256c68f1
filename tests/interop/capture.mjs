// Records the Engine.IO / Socket.IO frames the real socket.io-client 4.x sends over its
// websocket transport, for the byte-for-byte tests of switchboard-core's codec
// (crates/core/tests/engineio_capture.rs). Not part of `npm test`; run it by hand after
// `npm ci` when the client is upgraded:
//   node capture.mjs > ../../crates/core/tests/fixtures/socketio_client_frames.json
// A tiny recording server plays the server's side with fixed packets; the client's frames are
// stored in the order they arrived: connect with auth, four emits without an ack (one with no
// argument, one with two), an emit with an ack, the pong to a ping, the answer to the
// server's ack request, and the disconnect.
import { WebSocketServer } from "ws";
import { io } from "socket.io-client";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const version = require("socket.io-client/package.json").version;

const frames = [];
let request = "";
const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
const done = new Promise((resolve) => {
  wss.on("connection", (ws, req) => {
    request = req.url;
    ws.send('0{"sid":"engine-sid","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}');
    ws.on("message", (data) => {
      const text = data.toString();
      frames.push(text);
      if (text.startsWith("40")) ws.send('40{"sid":"socket-sid"}');
      const asked = text.match(/^42(\d+)\["subscribe"/);
      if (asked) ws.send(`43${asked[1]}[{"ok":true,"channel":"missions","offset":3}]`);
      if (text === "3") {
        ws.send('427["question",{"n":1}]');
      }
      if (text === "41") {
        setTimeout(resolve, 100);
      }
    });
  });
});
await new Promise((r) => wss.once("listening", r));
const { port } = wss.address();
const socket = io(`http://127.0.0.1:${port}`, {
  transports: ["websocket"],
  auth: { token: "tok\"en", since: { missions: { offset: 3, epoch: "ab" } } },
  reconnection: false,
});
socket.on("question", (data, ack) => ack({ answer: data.n + 1 }));
socket.on("connect", async () => {
  socket.emit("join-room", "room-1");
  socket.emit("chat-message", { roomId: "room-1", message: "h\u00e9llo \"q\"" });
  socket.emit("none");
  socket.emit("two", 1, [2]);
  await socket.emitWithAck("subscribe", { channel: "missions", since: { offset: 3, epoch: "ab" } });
  // The server's ping: the client answers 3.
  for (const client of wss.clients) client.send("2");
});
socket.on("question", () => {
  setTimeout(() => {
    socket.disconnect();
  }, 50);
});
await done;
process.stdout.write(JSON.stringify({ client: `socket.io-client ${version}`, request, frames }, null, 2) + "\n");
wss.close();
process.exit(0);
