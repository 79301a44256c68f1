// A minimal event emitter that works the same in browsers and Node (no EventTarget quirks):
// handlers run in registration order; a throwing handler is reported, never stops the others.

export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this._handlers = new Map();
  }

  /** Adds `handler` for `event`; returns a function that removes it. */
  on(event, handler) {
    let set = this._handlers.get(event);
    if (!set) {
      set = new Set();
      this._handlers.set(event, set);
    }
    set.add(handler);
    return () => this.off(event, handler);
  }

  /** Like `on`, for one call only. */
  once(event, handler) {
    const off = this.on(event, (...args) => {
      off();
      handler(...args);
    });
    return off;
  }

  /** Removes `handler` (or every handler of `event` when none is given). */
  off(event, handler) {
    if (!handler) this._handlers.delete(event);
    else this._handlers.get(event)?.delete(handler);
  }

  /** Calls every handler of `event`; returns how many ran. */
  emit(event, ...args) {
    const set = this._handlers.get(event);
    if (!set || set.size === 0) return 0;
    for (const handler of [...set]) {
      try {
        handler(...args);
      } catch (err) {
        if (event !== "error" && this._handlers.get("error")?.size) this.emit("error", err);
        else queueMicrotask(() => { throw err; });
      }
    }
    return set.size;
  }
}
