// Test doubles: a WebSocket the test drives by hand, and a token maker.

export class FakeSocket {
  static instances = [];
  static refuse = false;

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.onmessage = this.onclose = this.onerror = null;
    FakeSocket.instances.push(this);
    queueMicrotask(() => {
      if (FakeSocket.refuse) return this.drop(1006, "refused");
      this.readyState = 1;
      this.onopen?.();
    });
  }

  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close(code = 1000) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.closedWith = code;
  }

  /** The server sends `msg`. */
  push(msg) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }

  /** The server (or network) closes the socket. */
  drop(code, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  welcome(extra = {}) {
    this.push({ type: "welcome", connectionId: "c1", protocol: 1, heartbeat: 30000, ...extra });
  }

  /** The last sent message of `type`. */
  last(type) {
    return this.sent.filter((m) => m.type === type).at(-1);
  }

  static reset() {
    FakeSocket.instances = [];
    FakeSocket.refuse = false;
  }

  static latest() {
    return FakeSocket.instances.at(-1);
  }
}

export function fakeToken(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "HS256" })}.${b64({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims })}.sig`;
}

/** Resolves when `predicate()` holds (checked every few ms), or rejects after `ms`. */
export async function until(predicate, ms = 2000, what = "condition") {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
