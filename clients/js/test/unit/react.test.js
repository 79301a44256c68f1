// useSwitchboard / useChannel with react-test-renderer: one connection and one subscription
// per mount (also under StrictMode), handlers see deliveries with the latest closure, and
// unmount unsubscribes and closes.
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import React from "react";
import TestRenderer, { act } from "react-test-renderer";
import { useChannel, useSwitchboard } from "../../src/react.js";
import { FakeSocket, until } from "./fakes.js";

globalThis.IS_REACT_ACT_ENVIRONMENT = true;
beforeEach(() => FakeSocket.reset());

const h = React.createElement;

function Missions({ label, seen }) {
  const sb = useSwitchboard("http://x", { WebSocket: FakeSocket, transports: ["websocket"], minReconnectDelay: 5 });
  useChannel(sb, "missions", { "mission-update": (m) => seen.push(`${label}:${m.id}`) });
  return h("p", null, sb ? sb.state : "none");
}

async function flush() {
  await act(async () => {
    await new Promise((r) => setTimeout(r, 5));
  });
}

test("one client and one subscription per mount; latest handler; cleanup on unmount", async () => {
  const seen = [];
  let root;
  await act(async () => {
    root = TestRenderer.create(h(React.StrictMode, null, h(Missions, { label: "a", seen })));
  });
  await flush();
  // StrictMode mounted, unmounted and mounted again: the first socket is closed.
  const live = FakeSocket.instances.filter((s) => s.readyState === 1);
  assert.equal(live.length, 1, "exactly one live connection");
  const ws = live[0];
  await act(async () => ws.welcome());
  assert.equal(root.toJSON().children[0], "connected");
  const subscribes = ws.sent.filter((m) => m.type === "subscribe");
  assert.equal(subscribes.length, 1);
  await act(async () => {
    ws.push({ type: "subscribed", channel: "missions", offset: 0, epoch: "e", recovered: false, ref: subscribes[0].ref });
    ws.push({ type: "mission-update", channel: "missions", offset: 1, epoch: "e", data: { id: 1 } });
  });
  // A re-render with a new handler closure: no resubscribe, the new closure runs.
  await act(async () => root.update(h(React.StrictMode, null, h(Missions, { label: "b", seen }))));
  await act(async () => ws.push({ type: "mission-update", channel: "missions", offset: 2, epoch: "e", data: { id: 2 } }));
  assert.deepEqual(seen, ["a:1", "b:2"]);
  assert.equal(ws.sent.filter((m) => m.type === "subscribe").length, 1, "no resubscribe on re-render");
  await act(async () => root.unmount());
  assert.ok(ws.sent.some((m) => m.type === "unsubscribe" && m.channel === "missions") || ws.readyState === 3);
  assert.equal(ws.readyState, 3, "the connection is closed on unmount");
  await until(() => true);
});
