// Peer (b): a plain Node `ws` server with an http `PUT /missions/:id` that broadcasts
// `{"type":"mission-update","data":dto}` to every open socket. The message is stringified once
// and the same string sent to every client (what a careful hand-written Node server does).
// Client messages (the native subscribe) are ignored. Usage: node ws-plain.js PORT
"use strict";
const http = require("http");
const { WebSocketServer, WebSocket } = require("ws");

const port = Number(process.argv[2] || 3102);
const mission = { id: 1, codename: "Nightingale", status: "active", location: "Berlin" };

const server = http.createServer((req, res) => {
  const m = /^\/missions\/(\d+)$/.exec(req.url || "");
  if (req.method !== "PUT" || !m) {
    res.writeHead(404, { "content-type": "application/json" });
    return res.end('{"error":"Not found"}');
  }
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    let update;
    try {
      update = JSON.parse(body || "{}");
    } catch {
      res.writeHead(400, { "content-type": "application/json" });
      return res.end('{"error":"Invalid JSON"}');
    }
    if (Number(m[1]) !== mission.id) {
      res.writeHead(404, { "content-type": "application/json" });
      return res.end('{"error":"Mission not found"}');
    }
    if (update.status !== undefined) mission.status = update.status;
    if (update.location !== undefined) mission.location = update.location;
    const dto = { id: mission.id, codename: mission.codename, status: mission.status, location: mission.location };
    const frame = JSON.stringify({ type: "mission-update", data: dto });
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(frame);
    }
    const out = JSON.stringify(dto);
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(out) });
    res.end(out);
  });
});

const wss = new WebSocketServer({ server, path: "/ws" });
wss.on("connection", (ws) => ws.on("message", () => {}));

server.listen(port, "127.0.0.1", () => console.log(`ws-plain listening on 127.0.0.1:${port}`));
process.on("SIGTERM", () => process.exit(0));
