// Peer (a): the reference tutorial's shape — Express + socket.io 4, `PUT /missions/:id` updates
// an in-memory mission and broadcasts its DTO with `io.emit("mission-update", dto)`.
// No database: the tutorial's Sequelize save is left out so the comparison measures fan-out,
// not PostgreSQL. Usage: node express-socketio.js PORT  (listens on 127.0.0.1 only)
"use strict";
const express = require("express");
const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 3101);
const app = express();
app.use(express.json());
const server = http.createServer(app);
// Same default as socket.io; websocket transport only is what the bench client uses anyway.
const io = new Server(server);

const missions = new Map([[1, { id: 1, codename: "Nightingale", status: "active", location: "Berlin" }]]);

function missionUpdateDTO(mission) {
  return { id: mission.id, codename: mission.codename, status: mission.status, location: mission.location };
}

app.put("/missions/:id", (req, res) => {
  const mission = missions.get(Number(req.params.id));
  if (!mission) return res.status(404).json({ error: "Mission not found" });
  const { status, location } = req.body || {};
  if (status !== undefined) mission.status = status;
  if (location !== undefined) mission.location = location;
  const updateDTO = missionUpdateDTO(mission);
  io.emit("mission-update", updateDTO);
  res.json(updateDTO);
});

server.listen(port, "127.0.0.1", () => console.log(`express-socketio listening on 127.0.0.1:${port}`));
process.on("SIGTERM", () => process.exit(0));
