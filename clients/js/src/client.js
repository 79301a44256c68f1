// The client: one connection at a time over the preferred transport that works, every
// subscription resumed from its own position after any reconnect, on any transport.
//
// Connection life: `connect()` → "connecting" → the transport opens → "connected" (every
// subscription is (re)sent with `since`) → it drops → backoff → "connecting" … A transport
// that cannot open (refused upgrade, blocked stream, connect timeout) hands over to the next
// in `transports` at once; after a whole round failed the client backs off. While connected
// on a fallback, the preferred transport is probed every `retryPreferredAfter` ms and taken
// over when it opens. Close codes are judged by range (codes.js): "stop" ends reconnecting
// and reports `error`; "refresh" calls `getToken` first.

import { Emitter } from "./emitter.js";
import { backoff } from "./backoff.js";
import { reconnectPolicy } from "./codes.js";
import { SwitchboardError, requestJson } from "./http.js";
import { Subscription, isPersonal } from "./subscription.js";
import { claims, refreshDelay } from "./token.js";
import { WebSocketTransport } from "./transports/websocket.js";
import { SseTransport } from "./transports/sse.js";
import { PollTransport } from "./transports/poll.js";

const TRANSPORTS = { websocket: WebSocketTransport, sse: SseTransport, poll: PollTransport };
const DEFAULTS = {
  transports: ["websocket", "sse", "poll"],
  minReconnectDelay: 500,
  maxReconnectDelay: 20_000,
  connectTimeout: 10_000,
  heartbeatGrace: 10_000,
  sseHeartbeat: 15_000,
  pollTimeout: 25,
  retryPreferredAfter: 60_000,
};
const MAX_TIMER = 2 ** 31 - 1;
/** Refusals that end in "retry" are temporary ("Subscription temporarily unavailable; retry"). */
const RETRYABLE = /;\s*retry$/i;

export class Switchboard extends Emitter {
  /**
   * @param {string} url the server's base URL, e.g. "http://127.0.0.1:3000"
   * @param {object} [options] see index.d.ts
   */
  constructor(url, options = {}) {
    super();
    this.url = String(url).replace(/\/+$/, "");
    this.options = { ...DEFAULTS, ...options };
    for (const name of this.options.transports) {
      if (!TRANSPORTS[name]) throw new TypeError(`unknown transport "${name}"`);
    }
    if (this.options.transports.length === 0) throw new TypeError("no transports");
    /** "disconnected" | "connecting" | "connected" */
    this.state = "disconnected";
    /** The transport in use now, or null. */
    this.transport = null;
    /** This connection's id on the native WebSocket (`conn:<id>`); null elsewhere. */
    this.connectionId = null;
    this._fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this._token = options.token ?? null;
    this._subs = new Map();
    this._personal = new Map();
    this._acks = new Map();
    this._index = 0;
    this._attempt = 0;
    this._gen = 0;
    this._t = null;
    this._probeT = null;
    this._wanted = false;
    this._timers = {};
    this._onOnline = () => this._online();
    this._onOffline = () => this._offline();
  }

  /** Starts connecting (no-op when already started). */
  connect() {
    if (this._wanted) return;
    this._wanted = true;
    this._attempt = 0;
    if (typeof window !== "undefined" && window.addEventListener) {
      window.addEventListener("online", this._onOnline);
      window.addEventListener("offline", this._onOffline);
    }
    if (typeof navigator !== "undefined" && navigator.onLine === false) return this._setState("disconnected");
    this._open();
  }

  /** Closes the connection and stops reconnecting; subscriptions are kept for a later
   * `connect()`, which resumes them. */
  disconnect() {
    this._wanted = false;
    if (typeof window !== "undefined" && window.removeEventListener) {
      window.removeEventListener("online", this._onOnline);
      window.removeEventListener("offline", this._onOffline);
    }
    this._drop();
    this._setState("disconnected");
  }

  /** Subscribes (or returns the live subscription of) `channel`; a refused one is tried anew. */
  subscribe(channel, { since } = {}) {
    const existing = this._subs.get(channel);
    if (existing && (existing.state === "subscribing" || existing.state === "subscribed")) return existing;
    const sub = new Subscription(channel, since, (s) => this._removeSub(s));
    this._subs.set(channel, sub);
    if (this._t?.opened) this._sendSubscribe(sub);
    return sub;
  }

  /** Publishes on `channel` (same rules on every transport); resolves with `{offset}`. */
  async publish(channel, event, data) {
    const t = this._t;
    if (t?.opened && t.request) {
      const reply = await t.request({ type: "publish", channel, event, data }).catch(protocolError);
      return { offset: reply.offset };
    }
    const reply = await this._http("POST", "/api/client/publish", { channel, event, data });
    return { offset: reply.offset };
  }

  /** The members of `channel`: `[{user, connectionId}]`. */
  async presence(channel) {
    const t = this._t;
    if (t?.opened && t.request) {
      const reply = await t.request({ type: "presence", channel }).catch(protocolError);
      return reply.members;
    }
    const reply = await this._http("GET", `/api/client/presence/${encodeURIComponent(channel)}`);
    return reply.members;
  }

  // ---- connection life -------------------------------------------------------------------

  _setState(state) {
    const transport = state === "connected" ? this.transport : null;
    if (this.state === state && this._lastStateTransport === transport) return;
    this.state = state;
    this._lastStateTransport = transport;
    this.emit("state", { state, transport });
  }

  _clear(name) {
    clearTimeout(this._timers[name]);
    delete this._timers[name];
  }

  _later(name, ms, fn) {
    this._clear(name);
    this._timers[name] = setTimeout(fn, Math.min(MAX_TIMER, Math.max(0, ms)));
  }

  /** Closes whatever transport and probe are open, silently, and stops every timer. */
  _drop() {
    this._gen++;
    for (const name of Object.keys(this._timers)) this._clear(name);
    this._t?.close();
    this._probeT?.close();
    this._t = this._probeT = null;
    this.transport = null;
    this.connectionId = null;
    for (const sub of this._subs.values()) if (sub.state === "subscribed") sub.state = "subscribing";
  }

  async _ensureToken() {
    const { getToken } = this.options;
    if (!getToken) return;
    const delay = this._token ? refreshDelay(this._token) : 0;
    if (this._token && !this._tokenStale && (delay === null || delay > 1_000)) return;
    this._token = await getToken();
    this._tokenStale = false;
  }

  async _open() {
    const gen = ++this._gen;
    this._setState("connecting");
    try {
      await this._ensureToken();
    } catch (err) {
      if (gen !== this._gen) return;
      this.emit("error", err);
      return this._retry(backoff(this._attempt++, this.options.minReconnectDelay, this.options.maxReconnectDelay));
    }
    if (gen !== this._gen || !this._wanted) return;
    const t = this._create(this.options.transports[this._index]);
    this._t = t;
    this._later("connect", this.options.connectTimeout, () => {
      if (this._t === t && !t.opened) {
        t.close();
        this._onClose(t, { code: 3007, reason: "connect timeout" });
      }
    });
    t.start();
  }

  _create(name) {
    const Transport = TRANSPORTS[name];
    const t = new Transport({
      baseUrl: this.url,
      token: () => this._token,
      channels: () => this._feedChannels(),
      options: this.options,
      fetch: this._fetch,
      onOpen: (info) => this._onOpen(t, info),
      onMessage: (msg) => this._onMessage(t, msg),
      onClose: (reason) => this._onClose(t, reason),
    });
    return t;
  }

  _retry(delay) {
    this._setState("connecting");
    this._later("retry", delay, () => this._wanted && this._open());
  }

  _onOpen(t, info) {
    if (t === this._probeT) {
      // The preferred transport answered: move over to it.
      this._probeT = null;
      this._clear("probe-timeout");
      const old = this._t;
      this._t = t;
      old?.close();
      this._index = 0;
    }
    if (t !== this._t) return;
    this._clear("connect");
    this._attempt = 0;
    this.transport = t.name;
    this.connectionId = info.connectionId ?? null;
    this._setState("connected");
    for (const sub of this._subs.values()) {
      if (sub.state === "subscribing" || sub.state === "subscribed") this._sendSubscribe(sub);
    }
    this._scheduleRefresh();
    if (this._index > 0) this._later("probe", this.options.retryPreferredAfter, () => this._probe());
  }

  _onClose(t, { code, reason }) {
    if (t === this._probeT) {
      this._probeT = null;
      this._clear("probe-timeout");
      this._later("probe", this.options.retryPreferredAfter, () => this._probe());
      return;
    }
    if (t !== this._t) return;
    const wasOpen = t.opened;
    this._drop();
    if (!this._wanted) return;
    const policy = reconnectPolicy(code);
    if (policy === "stop" || (policy === "refresh" && !this.options.getToken)) {
      this._wanted = false;
      this._setState("disconnected");
      this.emit("error", new SwitchboardError(reason || `closed with ${code}`, { closeCode: code }));
      return;
    }
    if (policy === "refresh") {
      this._tokenStale = true;
      return this._retry(0);
    }
    const { minReconnectDelay: min, maxReconnectDelay: max, transports } = this.options;
    if (!wasOpen) {
      // This transport cannot connect here: the next one at once; after a full round, wait.
      this._index = (this._index + 1) % transports.length;
      if (this._index !== 0) return this._retry(0);
    }
    this._retry(backoff(this._attempt++, min, max));
  }

  _probe() {
    if (!this._t?.opened || this._index === 0 || this._probeT) return;
    const p = this._create(this.options.transports[0]);
    this._probeT = p;
    this._later("probe-timeout", this.options.connectTimeout, () => {
      if (this._probeT === p) this._onClose(p, { code: 3007, reason: "probe timeout" });
      p.close();
    });
    p.start();
  }

  _online() {
    if (!this._wanted) return;
    this._attempt = 0;
    if (!this._t) this._open();
  }

  _offline() {
    if (!this._wanted) return;
    this._drop();
    this._setState("disconnected");
  }

  _scheduleRefresh() {
    if (!this.options.getToken || !this._token) return;
    const delay = refreshDelay(this._token);
    if (delay === null) return;
    this._later("refresh", delay, async () => {
      const t = this._t;
      try {
        this._token = await this.options.getToken();
      } catch (err) {
        this.emit("error", err);
        return this._later("refresh", 5_000, () => this._scheduleRefresh());
      }
      if (t && t === this._t) t.refreshToken(this._token);
      this._scheduleRefresh();
    });
  }

  // ---- subscriptions and deliveries -------------------------------------------------------

  /** The user this client's token names (its `user:<sub>` inbox), if any. */
  _user() {
    const sub = claims(this._token)?.sub;
    return typeof sub === "string" && sub ? sub : null;
  }

  /** A subscription the native protocol fills without a subscribe. */
  _implicit(channel) {
    return (this.connectionId && channel === `conn:${this.connectionId}`) ||
      (this._user() !== null && channel === `user:${this._user()}`);
  }

  /** What an SSE or long-poll request must carry: every live subscription and the inbox. */
  _feedChannels() {
    const out = [];
    for (const sub of this._subs.values()) {
      if (sub.state === "subscribing" || sub.state === "subscribed") out.push({ channel: sub.channel, since: sub.since });
    }
    const user = this._user();
    if (user && !this._subs.has(`user:${user}`)) {
      const offset = this._personal.get(`user:${user}`);
      out.push({ channel: `user:${user}`, since: offset?.epoch ? offset : undefined });
    }
    return out;
  }

  _sendSubscribe(sub) {
    const t = this._t;
    if (t.name === "websocket" && this._implicit(sub.channel)) {
      const p = sub.position ?? { offset: 0, epoch: "" };
      sub._subscribed({ ...p, recovered: true });
      return;
    }
    t.subscribe(sub.channel, sub.since);
  }

  /** A refusal the server says is temporary (its broker was unavailable): the same
   * subscription is sent again after a backoff delay, on the same connection. */
  _resubscribeLater(t, sub) {
    sub._retries = (sub._retries ?? 0) + 1;
    const delay = backoff(sub._retries - 1, this.options.minReconnectDelay, this.options.maxReconnectDelay);
    this._later(`resubscribe:${sub.channel}`, delay, () => {
      if (this._t === t && t.opened && this._subs.get(sub.channel) === sub && sub.state === "subscribing") {
        this._sendSubscribe(sub);
      }
    });
  }

  _removeSub(sub) {
    if (this._subs.get(sub.channel) !== sub) return;
    this._subs.delete(sub.channel);
    const t = this._t;
    if (t?.opened && !(t.name === "websocket" && this._implicit(sub.channel))) t.unsubscribe(sub.channel);
  }

  _onMessage(t, msg) {
    if (t !== this._t || typeof msg.type !== "string") return;
    const sub = typeof msg.channel === "string" ? this._subs.get(msg.channel) : undefined;
    switch (msg.type) {
      case "subscribed":
        if (sub) sub._retries = 0;
        return sub?._subscribed(msg);
      case "subscribe_error":
        if (sub && RETRYABLE.test(msg.error?.message ?? "")) return this._resubscribeLater(t, sub);
        return sub?._failed(new SwitchboardError(msg.error?.message ?? "subscribe refused", { code: msg.error?.code }));
      case "unsubscribed":
        // The server dropped it (a refreshed token no longer allows the channel).
        return sub?._failed(new SwitchboardError("Unsubscribed by the server", { code: "forbidden" }));
      case "error":
        return this.emit("error", new SwitchboardError(msg.message ?? "error", { code: msg.code }));
      case "welcome":
      case "authenticated":
      case "auth_error":
      case "pong":
      case "published":
      case "presence":
        return;
      default:
        return this._delivery(msg, sub);
    }
  }

  _delivery(msg, sub) {
    if (typeof msg.channel !== "string") return;
    if (sub) {
      sub._deliver(msg);
    } else if (isPersonal(msg.channel)) {
      const last = this._personal.get(msg.channel);
      const fresh = typeof msg.offset !== "number" || !last || msg.epoch !== last.epoch || msg.offset > last.offset;
      if (fresh) {
        if (typeof msg.offset === "number") this._personal.set(msg.channel, { offset: msg.offset, epoch: msg.epoch });
        this.emit("publication", {
          channel: msg.channel, event: msg.type, data: msg.data,
          offset: msg.offset, epoch: msg.epoch, timestamp: msg.timestamp,
        });
      }
    } else {
      return;
    }
    // Handlers have run (synchronously): acknowledge inbox deliveries, duplicates included
    // (an earlier ack may have been lost with the connection).
    if (msg.channel.startsWith("user:") && typeof msg.offset === "number") this._ack(msg.channel, msg.offset);
  }

  _ack(channel, offset) {
    const pending = this._acks.get(channel);
    this._acks.set(channel, Math.max(pending ?? 0, offset));
    if (pending !== undefined) return;
    queueMicrotask(() => {
      const upTo = this._acks.get(channel);
      this._acks.delete(channel);
      const t = this._t;
      if (t?.opened && t.ack) t.ack(channel, upTo);
      else this._http("POST", "/api/client/ack", { channel, offset: upTo }).catch((err) => this.emit("error", err));
    });
  }

  _http(method, path, body) {
    return requestJson(this._fetch, this.url + path, { method, token: this._token, body });
  }
}

function protocolError(reply) {
  throw new SwitchboardError(reply?.message ?? "request failed", { code: reply?.code });
}
