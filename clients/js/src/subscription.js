// One subscription's bookkeeping: its last {offset, epoch}, which decides what a resubscribe
// asks for (`since`), which deliveries are duplicates (dropped) and when history was lost
// (`gap`). It knows nothing about transports: the client feeds it `subscribed` answers and
// deliveries from whichever transport is in use.

import { Emitter } from "./emitter.js";

/** Personal channels the server fills without a subscribe (`conn:<id>`, `user:<sub>`). */
export function isPersonal(channel) {
  return channel.startsWith("conn:") || channel.startsWith("user:");
}

export class Subscription extends Emitter {
  /**
   * @param {string} channel
   * @param {{offset:number, epoch:string}|undefined} since where to resume from, if known
   * @param {(sub: Subscription) => void} onUnsubscribe called once by `unsubscribe()`
   */
  constructor(channel, since, onUnsubscribe) {
    super();
    this.channel = channel;
    /** The last position handed to handlers (or reported by `subscribed`). */
    this.position = since && typeof since.offset === "number" && since.epoch
      ? { offset: since.offset, epoch: String(since.epoch) }
      : null;
    /** "subscribing" | "subscribed" | "unsubscribed" | "failed" */
    this.state = "subscribing";
    this._onUnsubscribe = onUnsubscribe;
  }

  /** Where a (re)subscribe should resume from: `{offset, epoch}` or undefined. */
  get since() {
    return this.position ? { ...this.position } : undefined;
  }

  /** Stops the subscription; no handler runs afterwards. */
  unsubscribe() {
    if (this.state === "unsubscribed") return;
    this.state = "unsubscribed";
    this._onUnsubscribe(this);
    this.emit("unsubscribed", { channel: this.channel });
  }

  /**
   * The server's `subscribed` answer, on any transport. A resume that was not recovered
   * (another epoch, or history fell out) moves to the server's position and reports `gap`:
   * the caller should refetch a snapshot.
   */
  _subscribed({ offset, epoch, recovered }) {
    if (this.state === "unsubscribed") return;
    const had = this.position;
    const lost = had !== null && (!recovered || had.epoch !== epoch);
    if (had === null || lost) this.position = { offset, epoch };
    this.state = "subscribed";
    this.emit("subscribed", { channel: this.channel, offset, epoch, recovered: !!recovered });
    if (lost) this.emit("gap", { channel: this.channel, offset, epoch });
  }

  /** A refused subscribe: the subscription will not be retried. */
  _failed(error) {
    if (this.state === "unsubscribed") return;
    this.state = "failed";
    this.emit("error", error);
  }

  /**
   * One delivery `{type, channel, offset, epoch, timestamp, data}`. Returns false when it was
   * dropped as a duplicate. Transient notices (no offset: presence joins and leaves) are
   * handed on as they come. A delivery that skips offsets or changes epoch without a
   * `subscribed` in between means publications were lost: `gap` first, then the delivery.
   */
  _deliver(msg) {
    if (this.state === "unsubscribed") return false;
    if (typeof msg.offset !== "number") {
      this._handlers_run(msg);
      return true;
    }
    const p = this.position;
    if (p && msg.epoch === p.epoch && msg.offset <= p.offset) return false;
    if (p && !isPersonal(this.channel)) {
      if (msg.epoch !== p.epoch || msg.offset > p.offset + 1) {
        this.emit("gap", { channel: this.channel, offset: msg.offset - 1, epoch: msg.epoch });
      }
    }
    this.position = { offset: msg.offset, epoch: msg.epoch };
    this._handlers_run(msg);
    return true;
  }

  _handlers_run(msg) {
    const publication = {
      channel: this.channel,
      event: msg.type,
      data: msg.data,
      offset: msg.offset,
      epoch: msg.epoch,
      timestamp: msg.timestamp,
    };
    this.emit("publication", publication);
    if (!RESERVED.has(msg.type)) this.emit(msg.type, msg.data, publication);
  }
}

/** Event names the subscription itself emits; a publication never fires these by name. */
const RESERVED = new Set(["subscribed", "unsubscribed", "publication", "gap", "error"]);
