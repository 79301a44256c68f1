// Long-polling (`GET /poll`). Each request carries a cursor the client writes from its
// subscriptions' positions, so a poll resumes exactly where any transport stopped, and the
// token in `Authorization`. The first request asks with `timeout=0` (it answers at once, which
// is how the transport learns it can connect); later ones wait up to `pollTimeout` seconds. A
// request that has not answered within that wait + grace counts as a dead connection.
//
// Long-polling has no `subscribed` message, so this transport derives one per channel from the
// first answer that includes it: the position comes from the answer's cursor (before the
// answer's own updates), `recovered` is false for a resumed channel listed in `unrecovered`.

import { decodeCursor, encodeCursor } from "../cursor.js";
import { closeCodeForHttp } from "../codes.js";
import { authHeaders, errorOf, refusedChannel } from "../http.js";

export class PollTransport {
  /** @param {import("./context.js").TransportContext} ctx */
  constructor(ctx) {
    this.name = "poll";
    this.ctx = ctx;
    this.opened = false;
    this._closed = false;
    this._abort = null;
    this._wake = null;
    /** Channels whose `subscribed` this transport already reported. */
    this._announced = new Set();
    this._channels = new Set();
  }

  start() {
    this._loop();
  }

  subscribe(channel) {
    if (!this._channels.has(channel)) this._restart();
  }

  unsubscribe(channel) {
    this._announced.delete(channel);
    if (this._channels.has(channel)) this._restart();
  }

  refreshToken() {
    // The next request carries the new token.
  }

  close() {
    this._closed = true;
    this._abort?.abort();
    this._wake?.();
  }

  _restart() {
    this._abort?.abort();
    this._wake?.();
  }

  async _loop() {
    while (!this._closed) {
      const subs = this.ctx.channels();
      this._channels = new Set(subs.map((s) => s.channel));
      if (subs.length === 0) {
        if (!this.opened) {
          this.opened = true;
          this.ctx.onOpen({});
        }
        await new Promise((resolve) => (this._wake = resolve));
        this._wake = null;
        continue;
      }
      const outcome = await this._poll(subs);
      if (outcome === "restart") continue;
      if (outcome) {
        this._closed = true;
        this.ctx.onClose(outcome);
        return;
      }
    }
  }

  /** One request; returns null to go on, "restart" after an abort, or a close reason. */
  async _poll(subs) {
    const positions = new Map();
    for (const { channel, since } of subs) if (since) positions.set(channel, since);
    const wait = this.opened ? this.ctx.options.pollTimeout : 0;
    const abort = new AbortController();
    this._abort = abort;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, wait * 1000 + this.ctx.options.heartbeatGrace);
    const query = new URLSearchParams({
      channels: subs.map((s) => s.channel).join(","),
      cursor: encodeCursor(positions),
      timeout: String(wait),
    });
    let res;
    let body;
    try {
      res = await this.ctx.fetch(`${this.ctx.baseUrl}/poll?${query}`, {
        headers: authHeaders(this.ctx.token()),
        signal: abort.signal,
        cache: "no-store",
      });
      if (res.ok) body = await res.json();
    } catch (err) {
      clearTimeout(timer);
      if (this._closed) return null;
      if (timedOut) return { code: 3008, reason: "poll timed out" };
      if (abort.signal.aborted) return "restart";
      return { code: 1006, reason: String(err?.message ?? err) };
    }
    clearTimeout(timer);
    if (this._closed) return null;
    if (!res.ok) {
      const err = await errorOf(res);
      const channel = res.status === 403 ? refusedChannel(err.message) : null;
      if (channel && this._channels.has(channel)) {
        this.ctx.onMessage({ type: "subscribe_error", channel, error: { code: "forbidden", message: err.message } });
        return "restart";
      }
      return { code: closeCodeForHttp(res.status, err.message), reason: err.message };
    }
    if (!this.opened) {
      this.opened = true;
      this.ctx.onOpen({});
    }
    this._answer(subs, body);
    return null;
  }

  _answer(subs, body) {
    const updates = Array.isArray(body.updates) ? body.updates : [];
    const unrecovered = new Set(body.unrecovered ?? []);
    let cursor = new Map();
    try {
      cursor = decodeCursor(body.cursor);
    } catch {
      // An unreadable cursor: positions come from the updates alone.
    }
    const firstOffset = new Map();
    for (const u of updates) {
      if (typeof u.offset === "number" && !firstOffset.has(u.channel)) firstOffset.set(u.channel, u.offset);
    }
    for (const { channel, since } of subs) {
      const fresh = !this._announced.has(channel);
      if (!fresh && !unrecovered.has(channel)) continue;
      const at = cursor.get(channel);
      if (!at) continue;
      this._announced.add(channel);
      const offset = firstOffset.has(channel) ? firstOffset.get(channel) - 1 : at.offset;
      this.ctx.onMessage({
        type: "subscribed",
        channel,
        offset,
        epoch: at.epoch,
        recovered: !!since && !unrecovered.has(channel),
      });
    }
    for (const u of updates) this.ctx.onMessage(u);
  }
}
