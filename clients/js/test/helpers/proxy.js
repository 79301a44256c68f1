// A small TCP proxy on 127.0.0.1:0 whose target can be switched, which can drop every open
// connection, and which can refuse WebSocket upgrades (answering 403 to a request carrying
// `Upgrade: websocket`) or hold SSE responses (never forwarding a request for /events), the
// way corporate proxies and buffering middleboxes do.
import net from "node:net";

export async function startProxy(target, { refuseUpgrades = false, blockSse = false } = {}) {
  const state = { target: new URL(target), refuseUpgrades, blockSse, sockets: new Set() };
  const server = net.createServer((client) => {
    state.sockets.add(client);
    client.on("close", () => state.sockets.delete(client));
    client.on("error", () => {});
    let head = Buffer.alloc(0);
    const onData = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      client.off("data", onData);
      const text = head.subarray(0, end).toString("latin1");
      if (state.refuseUpgrades && /^upgrade:\s*websocket/im.test(text)) {
        client.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
      }
      if (state.blockSse && /^GET \/events/.test(text)) return; // hold it forever
      const upstream = net.connect(Number(state.target.port), state.target.hostname);
      state.sockets.add(upstream);
      upstream.on("close", () => { state.sockets.delete(upstream); client.destroy(); });
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
      upstream.write(head);
      client.pipe(upstream);
      upstream.pipe(client);
    };
    client.on("data", onData);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    /** Sends new connections to `target`. */
    switchTo(target) { state.target = new URL(target); },
    /** Cuts every open connection (both sides). */
    dropAll() { for (const s of state.sockets) s.destroy(); },
    set(options) { Object.assign(state, options); },
    async close() {
      for (const s of state.sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
