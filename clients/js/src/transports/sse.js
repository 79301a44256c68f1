// Server-Sent Events (`GET /events`), read from a streamed `fetch` response rather than an
// EventSource, so the token goes in `Authorization` and the resume position in
// `Last-Event-ID` (a cursor the client writes from its subscriptions' positions, so the stream
// resumes where any earlier transport stopped). A change of the subscription set or of the
// token reopens the stream in place; the server's `: ping` comments feed the heartbeat check.

import { encodeCursor } from "../cursor.js";
import { closeCodeForHttp } from "../codes.js";
import { authHeaders, errorOf, refusedChannel } from "../http.js";

export class SseTransport {
  /** @param {import("./context.js").TransportContext} ctx */
  constructor(ctx) {
    this.name = "sse";
    this.ctx = ctx;
    this.opened = false;
    this._closed = false;
    this._gen = 0;
    this._abort = null;
    this._channels = new Set();
    this._restartQueued = false;
    this._watchdog = null;
  }

  start() {
    this._openStream();
  }

  subscribe(channel) {
    if (!this._channels.has(channel)) this._restart();
  }

  unsubscribe(channel) {
    if (this._channels.has(channel)) this._restart();
  }

  refreshToken() {
    this._restart();
  }

  close() {
    this._closed = true;
    this._gen++;
    clearTimeout(this._watchdog);
    this._abort?.abort();
  }

  _restart() {
    if (this._restartQueued || this._closed) return;
    this._restartQueued = true;
    queueMicrotask(() => {
      this._restartQueued = false;
      if (this._closed) return;
      this._abort?.abort();
      this._openStream();
    });
  }

  _touch(gen) {
    clearTimeout(this._watchdog);
    const ms = this.ctx.options.sseHeartbeat + this.ctx.options.heartbeatGrace;
    this._watchdog = setTimeout(() => {
      if (gen === this._gen) this._fail(gen, 3008, "heartbeat timeout");
    }, ms);
  }

  _fail(gen, code, reason) {
    if (gen !== this._gen || this._closed) return;
    this.close();
    this.ctx.onClose({ code, reason });
  }

  async _openStream() {
    const gen = ++this._gen;
    clearTimeout(this._watchdog);
    const subs = this.ctx.channels();
    this._channels = new Set(subs.map((s) => s.channel));
    if (subs.length === 0) {
      // Nothing to stream: connected, idle until something is subscribed.
      if (!this.opened) {
        this.opened = true;
        this.ctx.onOpen({});
      }
      return;
    }
    const positions = new Map();
    for (const { channel, since } of subs) if (since) positions.set(channel, since);
    const abort = new AbortController();
    this._abort = abort;
    const list = subs.map((s) => s.channel).join(",");
    let res;
    try {
      this._touch(gen);
      res = await this.ctx.fetch(`${this.ctx.baseUrl}/events?channels=${encodeURIComponent(list)}`, {
        headers: authHeaders(this.ctx.token(), {
          Accept: "text/event-stream",
          // Always a cursor, even an empty one: the server then answers every channel with a
          // `subscribed` notice.
          "Last-Event-ID": encodeCursor(positions),
        }),
        signal: abort.signal,
        cache: "no-store",
      });
    } catch (err) {
      return this._fail(gen, 1006, String(err?.message ?? err));
    }
    if (gen !== this._gen) return;
    if (!res.ok) {
      const err = await errorOf(res);
      if (gen !== this._gen) return;
      const channel = res.status === 403 ? refusedChannel(err.message) : null;
      if (channel && this._channels.has(channel)) {
        this.ctx.onMessage({ type: "subscribe_error", channel, error: { code: "forbidden", message: err.message } });
        return this._restart();
      }
      return this._fail(gen, closeCodeForHttp(res.status, err.message), err.message);
    }
    try {
      await this._read(gen, res.body);
    } catch (err) {
      return this._fail(gen, 1006, String(err?.message ?? err));
    }
    this._fail(gen, 1006, "stream ended");
  }

  async _read(gen, body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let event = { data: [], event: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (gen !== this._gen) {
        reader.cancel().catch(() => {});
        return;
      }
      if (done) return;
      this._touch(gen);
      buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.search(/\r\n|\n|\r/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
        if (line === "") {
          if (event.data.length) this._event(gen, event.event, event.data.join("\n"));
          if (gen !== this._gen) return;
          event = { data: [], event: null };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "data") event.data.push(text);
        else if (field === "event") event.event = text;
      }
    }
  }

  _event(gen, name, data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg.type === "connected") {
      if (!this.opened) {
        this.opened = true;
        this.ctx.onOpen({});
      }
      return;
    }
    if (msg.type === "close" || name === "close") {
      return this._fail(gen, Number(msg.code) || 1006, msg.reason ?? "stream closed");
    }
    this.ctx.onMessage(msg);
  }
}
