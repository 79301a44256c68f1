// Compiled by `tsc --noEmit` only: the README's usage must type-check against index.d.ts.
import { Switchboard, type Publication, type Position } from "../../src/index.js";
import { useSwitchboard, useChannel } from "../../src/react.js";

declare const WS: import("../../src/index.js").WebSocketConstructor;

const sb = new Switchboard("http://127.0.0.1:3000", {
  getToken: async () => "token",
  transports: ["websocket", "sse", "poll"],
  minReconnectDelay: 500,
  maxReconnectDelay: 20000,
  WebSocket: WS,
});
sb.on("state", ({ state, transport }) => {
  const s: "connecting" | "connected" | "disconnected" = state;
  const t: string | null = transport;
  void s, t;
});
sb.on("error", (err) => console.error(err.message));
sb.connect();
const since: Position = { offset: 3, epoch: "e" };
const sub = sb.subscribe("missions", { since });
sub.on("subscribed", ({ offset, epoch, recovered }) => void [offset, epoch, recovered]);
sub.on("publication", (p: Publication) => void [p.event, p.data, p.offset, p.epoch, p.timestamp]);
sub.on<{ id: number }>("mission-update", (data) => void data.id);
sub.on("gap", ({ offset, epoch }) => void [offset, epoch]);
sub.unsubscribe();
async function later() {
  const { offset }: { offset: number } = await sb.publish("room:42", "note", { text: "hi" });
  const members = await sb.presence("room:42");
  void [offset, members[0]?.user, members[0]?.connectionId, sb.transport];
  sb.disconnect();
}
void later;

function Component() {
  const client = useSwitchboard("http://127.0.0.1:3000", { token: "t" });
  useChannel(client, "missions", { "mission-update": (data: unknown) => void data });
  return client?.state;
}
void Component;
