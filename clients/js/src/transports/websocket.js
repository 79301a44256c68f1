// The native WebSocket transport (`GET /ws`, docs/protocol.md).
//
// The token never goes into the URL: the browser WebSocket API cannot set an Authorization
// header, so the token is the first message (`auth`) after the server's `welcome`, and the
// transport counts as open only once the server answered `authenticated`. Browsers cannot see
// protocol-level pings either, so the transport sends its own `{"type":"ping"}` when the line
// has been silent for the server's heartbeat interval, and declares the connection dead after
// heartbeat + grace without any frame.

export class WebSocketTransport {
  /** @param {import("./context.js").TransportContext} ctx */
  constructor(ctx) {
    this.name = "websocket";
    this.ctx = ctx;
    this.opened = false;
    this._ws = null;
    this._ref = 0;
    /** ref → callback(reply, isError), called synchronously in frame order. */
    this._pending = new Map();
    this._closed = false;
    this._lastSeen = Date.now();
    this._watchdog = null;
    this._heartbeat = 0;
    this._pingSent = false;
  }

  start() {
    const Ctor = this.ctx.options.WebSocket ?? globalThis.WebSocket;
    if (typeof Ctor !== "function") {
      // No WebSocket here (Node 20 without the option): a transport that cannot connect.
      queueMicrotask(() => this._finish(3001, "no WebSocket implementation; pass options.WebSocket"));
      return;
    }
    const url = this.ctx.baseUrl.replace(/^http/, "ws") + "/ws";
    let ws;
    try {
      ws = new Ctor(url);
    } catch (err) {
      queueMicrotask(() => this._finish(3002, String(err?.message ?? err)));
      return;
    }
    this._ws = ws;
    ws.onmessage = (ev) => this._frame(ev.data);
    ws.onclose = (ev) => this._finish(ev.code || 1006, ev.reason || "connection closed");
    ws.onerror = () => {};
  }

  _frame(data) {
    if (this._closed) return;
    this._lastSeen = Date.now();
    this._pingSent = false;
    let msg;
    try {
      msg = JSON.parse(typeof data === "string" ? data : String(data));
    } catch {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    if (msg.ref !== undefined && this._pending.has(msg.ref)) {
      const callback = this._pending.get(msg.ref);
      this._pending.delete(msg.ref);
      callback(msg, msg.type === "error");
      return;
    }
    if (!this.opened) return this._handshake(msg);
    if (msg.type === "pong") return;
    this.ctx.onMessage(msg);
  }

  _handshake(msg) {
    if (msg.type === "welcome") {
      this.connectionId = msg.connectionId;
      this._heartbeat = Number(msg.heartbeat) || 0;
      const token = this.ctx.token();
      if (!token) return this._open();
      this.send({ type: "auth", token }, (reply, isError) => {
        if (reply.type === "authenticated") this._open();
        else if (isError) this._finish(4002, reply.message ?? "auth refused");
        // auth_error: the server closes with 4002/4004 next.
      });
    }
  }

  _open() {
    this.opened = true;
    if (this._heartbeat > 0) {
      const grace = this.ctx.options.heartbeatGrace;
      const every = Math.max(50, Math.min(this._heartbeat, grace) / 2);
      this._watchdog = setInterval(() => {
        const silent = Date.now() - this._lastSeen;
        if (silent > this._heartbeat + grace) {
          this._ws?.close(4000, "heartbeat timeout");
          this._finish(3008, "heartbeat timeout");
        } else if (silent >= this._heartbeat && !this._pingSent) {
          this._pingSent = true;
          this.send({ type: "ping" });
        }
      }, every);
    }
    this.ctx.onOpen({ connectionId: this.connectionId });
  }

  /** Sends a message; `callback(reply, isError)` gets the answer echoing its `ref`. */
  send(msg, callback) {
    if (this._closed || !this._ws || this._ws.readyState !== 1) {
      callback?.({ type: "error", code: "disconnected", message: "Not connected" }, true);
      return;
    }
    if (callback) {
      const ref = ++this._ref;
      this._pending.set(ref, callback);
      msg = { ...msg, ref };
    }
    this._ws.send(JSON.stringify(msg));
  }

  /** Sends a request and resolves with the reply (rejects with an `error` answer). */
  request(msg) {
    return new Promise((resolve, reject) => {
      this.send(msg, (reply, isError) => (isError ? reject(reply) : resolve(reply)));
    });
  }

  subscribe(channel, since) {
    const msg = { type: "subscribe", channel };
    if (since) msg.since = since;
    this.send(msg, (reply, isError) => {
      if (isError) this.ctx.onMessage({ type: "subscribe_error", channel, error: reply });
      else this.ctx.onMessage(reply);
    });
  }

  unsubscribe(channel) {
    this.send({ type: "unsubscribe", channel }, () => {});
  }

  ack(channel, offset) {
    this.send({ type: "ack", channel, offset });
  }

  /** Refreshes the token in place (`auth`); the same user keeps its subscriptions. */
  refreshToken(token) {
    this.send({ type: "auth", token }, (reply, isError) => {
      if (isError) this.ctx.onMessage({ type: "error", code: reply.code, message: reply.message });
    });
  }

  /** Closes without reporting (the client decided). */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._stop();
    try {
      this._ws?.close(1000, "client closed");
    } catch {
      // already closing
    }
  }

  _stop() {
    clearInterval(this._watchdog);
    for (const callback of this._pending.values()) {
      callback({ type: "error", code: "disconnected", message: "Connection closed" }, true);
    }
    this._pending.clear();
  }

  _finish(code, reason) {
    if (this._closed) return;
    this._closed = true;
    this._stop();
    if (this._ws) {
      this._ws.onmessage = this._ws.onclose = null;
    }
    this.ctx.onClose({ code, reason });
  }
}
