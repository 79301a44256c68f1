// React bindings (React >= 18, a peer dependency): the connection and the subscription live
// in effects, so each is created once per mount, torn down on unmount, and survives
// re-renders; StrictMode's mount-unmount-mount leaves exactly one connection and one
// subscription behind. Handlers are read through a ref, so passing a fresh object literal on
// every render neither resubscribes nor calls a stale closure.

import { useEffect, useRef, useState } from "react";
import { Switchboard } from "./index.js";

/**
 * A connected client for the component's lifetime (null until the first effect ran).
 * Re-renders on every state change; reconnects with a new client when `url`, `options.token`
 * or `options.transports` change.
 */
export function useSwitchboard(url, options = {}) {
  const [client, setClient] = useState(null);
  const [, setState] = useState("disconnected");
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const transports = (options.transports ?? []).join(",");
  useEffect(() => {
    const current = optionsRef.current;
    const sb = new Switchboard(url, {
      ...current,
      // Always the latest callback, without recreating the client.
      getToken: current.getToken ? () => optionsRef.current.getToken() : undefined,
    });
    const off = sb.on("state", ({ state }) => setState(state));
    sb.connect();
    setClient(sb);
    return () => {
      off();
      sb.disconnect();
      setClient((c) => (c === sb ? null : c));
    };
  }, [url, options.token, transports]);
  return client;
}

/**
 * Subscribes `client` to `channel` while mounted; `handlers` maps event names
 * (`"mission-update"`, `"publication"`, `"gap"`, `"subscribed"`…) to functions.
 */
export function useChannel(client, channel, handlers = {}) {
  const handlersRef = useRef(handlers);
  handlersRef.current = handlers;
  const names = Object.keys(handlers).sort().join("\n");
  useEffect(() => {
    if (!client || !channel) return undefined;
    const sub = client.subscribe(channel);
    const offs = names
      .split("\n")
      .filter(Boolean)
      .map((name) => sub.on(name, (...args) => handlersRef.current[name]?.(...args)));
    return () => {
      for (const off of offs) off();
      sub.unsubscribe();
    };
  }, [client, channel, names]);
}
