// The console's script: every panel runs on the project's JavaScript client, served by this
// server at /client/ (no CDN, no other origin). The token and transport pickers rebuild the
// client; subscriptions resume by themselves across reconnects.
import { Switchboard } from "/client/index.js";

const $ = (id) => document.getElementById(id);
const me = () => claimsSub($("token").value.trim()) ?? guest;
const guest = `guest-${Math.random().toString(36).slice(2, 6)}`;
let sb = null;
let citySub = null;
let chatSub = null;

function claimsSub(token) {
  try {
    const json = atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"));
    return JSON.parse(json).sub ?? null;
  } catch {
    return null;
  }
}

function headers(json) {
  const h = json ? { "Content-Type": "application/json" } : {};
  const token = $("token").value.trim();
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

// ---- connection -----------------------------------------------------------------------------

function start() {
  sb?.disconnect();
  const token = $("token").value.trim();
  sb = new Switchboard(location.origin, {
    token: token || null,
    transports: [$("transport").value],
    minReconnectDelay: 300,
    maxReconnectDelay: 5000,
    pollTimeout: 20,
  });
  const status = $("status");
  sb.on("state", ({ state, transport }) => {
    status.textContent = state === "connected" ? `connected (${transport})` : state === "connecting" ? "connecting…" : "disconnected";
    status.className = `status ${state === "connected" ? "live" : state === "disconnected" ? "down" : ""}`;
  });
  sb.on("error", (err) => {
    if (err.closeCode) {
      status.textContent = `disconnected: ${err.message}`;
      status.className = "status down";
    }
  });
  sb.on("publication", onPersonal);
  const missions = sb.subscribe("missions");
  missions.on("mission-update", (m) => upsertMission(m, true));
  missions.on("mission-removed", ({ id }) => $(`mission-row-${id}`)?.remove());
  missions.on("gap", loadMissions);
  sb.connect();
  loadMissions();
  subscribeCity();
  subscribeChat();
}

// ---- missions -------------------------------------------------------------------------------

const FIELDS = ["id", "codename", "status", "location", "objective", "updated_at"];

async function loadMissions() {
  const res = await fetch("/missions", { headers: headers() });
  if (!res.ok) return;
  const list = await res.json();
  $("missions").replaceChildren();
  for (const m of list) upsertMission(m, false);
}

function upsertMission(m, flash) {
  const shown = FIELDS.filter((f) => f in m);
  const head = $("mission-head");
  if (head.children.length !== shown.length) head.replaceChildren(...shown.map((f) => el("th", f)));
  const row = el("tr", undefined, { id: `mission-row-${m.id}`, "data-testid": `mission-row-${m.id}` });
  for (const f of shown) row.append(el("td", String(m[f] ?? "")));
  const old = $(`mission-row-${m.id}`);
  if (old) old.replaceWith(row);
  else {
    const rows = [...$("missions").children];
    const after = rows.find((r) => Number(r.id.slice(12)) > m.id);
    $("missions").insertBefore(row, after ?? null);
  }
  if (flash) row.classList.add("flash");
}

$("edit").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = {};
  if ($("edit-status").value) body.status = $("edit-status").value;
  if ($("edit-location").value) body.location = $("edit-location").value;
  const res = await fetch(`/missions/${Number($("edit-id").value)}`, {
    method: "PUT", headers: headers(true), body: JSON.stringify(body),
  });
  const answer = await res.json().catch(() => ({}));
  $("edit-result").textContent = res.ok ? `saved mission ${answer.id}` : `${res.status}: ${answer.error ?? ""}`;
});

// ---- cities ---------------------------------------------------------------------------------

const history = [];

function subscribeCity() {
  citySub?.unsubscribe();
  const city = $("city").value;
  history.length = 0;
  $("city-metrics").textContent = "";
  $("city-alerts").replaceChildren();
  $("city-note").textContent = "";
  drawChart();
  citySub = sb.subscribe(`city:${city}`);
  citySub.on("initial_data", (snapshot) => snapshot && showMetrics(snapshot.metrics));
  citySub.on("data_update", (snapshot) => showMetrics(snapshot.metrics));
  citySub.on("alerts", (alerts) => {
    for (const a of alerts) {
      const li = el("li", `${a.metric} ${a.value} (${a.severity}): ${a.message}`, { class: "alert" });
      $("city-alerts").prepend(li);
    }
  });
  citySub.on("subscribed", async () => {
    const res = await fetch(`/api/cities/${city}`, { headers: headers() }).catch(() => null);
    if (res?.ok && $("city").value === city && !$("city-metrics").textContent) {
      const snapshot = await res.json();
      if (snapshot?.metrics) showMetrics(snapshot.metrics);
    }
  });
  citySub.on("error", (err) => {
    $("city-note").textContent = `${err.message} — a token with channels ["city:*"] shows the dashboards`;
  });
}

function showMetrics(metrics) {
  $("city-metrics").textContent = Object.entries(metrics ?? {}).map(([k, v]) => `${k}: ${v}`).join("\n");
  const first = Object.keys(metrics ?? {})[0];
  if (first !== undefined) history.push(metrics[first]);
  if (history.length > 60) history.shift();
  drawChart(first);
}

function drawChart(label = "") {
  const canvas = $("city-chart");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (history.length === 0) return;
  const max = Math.max(...history);
  const min = Math.min(...history);
  const span = max - min || 1;
  ctx.strokeStyle = "#2f6fde";
  ctx.beginPath();
  history.forEach((v, i) => {
    const x = (i / Math.max(1, history.length - 1)) * (canvas.width - 10) + 5;
    const y = canvas.height - 10 - ((v - min) / span) * (canvas.height - 20);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#667";
  ctx.fillText(`${label} ${history.at(-1)}`, 6, 12);
}

$("city").addEventListener("change", subscribeCity);

// ---- chat -----------------------------------------------------------------------------------

let typingTimer = null;
let lastTyping = 0;

function subscribeChat() {
  chatSub?.unsubscribe();
  const channel = `room:${$("chat-room").value.trim() || "lobby-room"}`;
  $("chat-log").replaceChildren();
  chatSub = sb.subscribe(channel);
  chatSub.on("line", ({ text, from }) => {
    $("chat-log").append(el("div", `${from}: ${text}`));
    $("chat-log").scrollTop = $("chat-log").scrollHeight;
  });
  chatSub.on("typing", ({ from }) => {
    if (from === me()) return;
    $("chat-typing").textContent = `${from} is typing…`;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => ($("chat-typing").textContent = ""), 2000);
  });
  chatSub.on("subscribed", refreshPresence);
}

async function refreshPresence() {
  if (!chatSub) return;
  try {
    const members = await sb.presence(chatSub.channel);
    $("chat-presence").textContent = `here: ${members.map((m) => m.user ?? "anonymous").join(", ") || "—"}`;
  } catch {
    $("chat-presence").textContent = "";
  }
}
setInterval(refreshPresence, 5000);

$("chat-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("chat-input").value.trim();
  if (!text || !chatSub) return;
  $("chat-input").value = "";
  await sb.publish(chatSub.channel, "line", { text, from: me() }).catch((err) => {
    $("chat-log").append(el("div", `(not sent: ${err.message})`));
  });
});
$("chat-input").addEventListener("input", () => {
  if (!chatSub || Date.now() - lastTyping < 1500) return;
  lastTyping = Date.now();
  sb.publish(chatSub.channel, "typing", { from: me() }).catch(() => {});
});
$("chat-room").addEventListener("change", subscribeChat);

// ---- payments -------------------------------------------------------------------------------

let payment = null;

function onPersonal(pub) {
  if (pub.event === "payment-status" && payment) {
    $("pay-status").textContent = pub.data ? "succeeded" : "failed";
    payment = null;
  }
}

$("pay-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("pay-status").textContent = "pending";
  // On the WebSocket the status is pushed to this connection (conn:<id>); SSE and long-poll
  // have no connection channel, so the console asks GET /api/payments/:id instead.
  const socketId = sb.connectionId ?? `console-${guest}`;
  const res = await fetch("/api/payments/make-payment-with-socket", {
    method: "POST", headers: headers(true),
    body: JSON.stringify({ amount: Number($("pay-amount").value), socketId }),
  });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) {
    $("pay-status").textContent = `error: ${answer.error ?? res.status}`;
    return;
  }
  payment = answer.paymentId;
  const id = payment;
  const pushed = !!sb.connectionId;
  const started = Date.now();
  while (payment === id) {
    await new Promise((r) => setTimeout(r, pushed ? 2000 : 400));
    if (payment !== id || (pushed && Date.now() - started < 8000)) continue;
    const r = await fetch(`/api/payments/${id}`, { headers: headers() }).catch(() => null);
    const p = r?.ok ? await r.json() : null;
    if (p && p.status !== "pending" && payment === id) {
      $("pay-status").textContent = p.status;
      payment = null;
    }
  }
});

// ---- pickers --------------------------------------------------------------------------------

$("token").addEventListener("change", () => {
  start();
});
$("transport").addEventListener("change", start);
start();
