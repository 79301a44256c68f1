// The console at `/` in real Chromium (Debian's /usr/bin/chromium, or $CHROMIUM; playwright
// never downloads one), driven by data-testid on each transport: missions table updates after
// an edit, city metrics and alerts, two pages chatting, payment pending -> succeeded/failed,
// and a token change reconnecting.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import { startServer, token } from "../helpers/server.js";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
let server;
let browser;

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  // Every page here is the same IP (anonymous) or the same `hq-browser` user, and the suite
  // opens dozens of them within seconds: at the default 100 client messages a minute per
  // user or IP their subscribes were sometimes refused as `rate_limited`, which is the limit
  // working, not the console failing.
  server = await startServer({
    SWITCHBOARD_PAYMENTS__MAX_AMOUNT: "10000",
    SWITCHBOARD_LIMITS__CLIENT_MESSAGES_PER_MINUTE: "100000",
    SWITCHBOARD_LIMITS__FEED_REQUESTS_PER_MINUTE: "100000",
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const hq = () => token({ sub: "hq-browser", role: "hq", channels: ["city:*"] });

async function open(transport, tok = "") {
  const page = await browser.newPage();
  const external = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(server.url)) external.push(r.url());
  });
  page.on("pageerror", (e) => console.log(`page error: ${e.message}`));
  await page.goto(server.url + "/");
  await page.getByTestId("transport-select").selectOption(transport);
  if (tok) {
    await page.getByTestId("token-input").fill(tok);
    await page.getByTestId("token-input").dispatchEvent("change");
  }
  await connected(page, transport);
  page.external = external;
  return page;
}

async function connected(page, transport) {
  await page.waitForFunction(
    (t) => {
      const text = document.querySelector('[data-testid="connection-status"]').textContent;
      return /(^|\s)connected/.test(text) && text.includes(t);
    },
    transport,
    { timeout: 15_000 },
  );
}

async function textOf(page, testid) {
  return page.getByTestId(testid).textContent();
}

for (const transport of ["websocket", "sse", "poll"]) {
  test(`${transport}: missions table updates after an edit`, async () => {
    const page = await open(transport, hq());
    await page.getByTestId("mission-row-1").waitFor();
    const location = `Berlin-${transport}`;
    await page.getByTestId("edit-id").fill("1");
    await page.getByTestId("edit-status").selectOption("active");
    await page.getByTestId("edit-location").fill(location);
    await page.getByTestId("edit-submit").click();
    await page.waitForFunction(
      (l) => document.querySelector('[data-testid="mission-row-1"]')?.textContent.includes(l), location, { timeout: 10_000 });
    const row = await textOf(page, "mission-row-1");
    assert.match(row, /active/);
    // Another page, anonymous, sees the same change pushed (agent view).
    const other = await open(transport);
    await other.getByTestId("mission-row-1").waitFor();
    assert.match(await textOf(other, "mission-row-1"), new RegExp(location));
    const next = `${location}-2`;
    await page.getByTestId("edit-location").fill(next);
    await page.getByTestId("edit-submit").click();
    await other.waitForFunction(
      (l) => document.querySelector('[data-testid="mission-row-1"]')?.textContent.includes(l), next, { timeout: 10_000 });
    assert.deepEqual([...page.external, ...other.external], [], "no external requests");
    await page.close();
    await other.close();
  });

  test(`${transport}: city metrics and alerts`, async () => {
    const page = await open(transport, hq());
    await page.getByTestId("city-select").selectOption("nairobi");
    // Let the subscription settle before the pipeline posts.
    await page.waitForTimeout(300);
    const res = await fetch(`${server.url}/api/cities/nairobi/data`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token({ sub: "pipe", role: "pipeline" })}` },
      body: JSON.stringify({ metrics: { air_quality: 180 + transport.length, temperature: 24 } }),
    });
    assert.equal(res.status, 200, await res.text());
    const aq = `air_quality: ${180 + transport.length}`;
    await page.waitForFunction(
      (t) => document.querySelector('[data-testid="city-metrics"]').textContent.includes(t), aq, { timeout: 10_000 });
    await page.waitForFunction(
      () => document.querySelector('[data-testid="city-alerts"]').children.length > 0, null, { timeout: 10_000 });
    const alert = await page.getByTestId("city-alerts").locator(":scope > *").first().textContent();
    assert.match(alert, /air_quality/);
    assert.match(alert, new RegExp(String(180 + transport.length)));
    assert.match(alert, /critical/);
    await page.close();
  });

  test(`${transport}: two pages chat with each other`, async () => {
    const room = `r-${transport}`;
    const alice = await open(transport, token({ sub: "alice" }));
    const bob = await open(transport);
    for (const p of [alice, bob]) {
      await p.getByTestId("chat-room").fill(room);
      await p.getByTestId("chat-room").dispatchEvent("change");
    }
    await alice.waitForTimeout(300);
    await alice.getByTestId("chat-input").fill("hello bob");
    await alice.getByTestId("chat-send").click();
    await bob.waitForFunction(
      () => [...document.querySelector('[data-testid="chat-log"]').children].some((c) => c.textContent.includes("alice: hello bob")),
      null, { timeout: 10_000 });
    await bob.getByTestId("chat-input").fill("hi alice");
    await bob.getByTestId("chat-send").click();
    await alice.waitForFunction(
      () => [...document.querySelector('[data-testid="chat-log"]').children].some((c) => c.textContent.includes("hi alice")),
      null, { timeout: 10_000 });
    const lines = await alice.getByTestId("chat-log").locator(":scope > *").allTextContents();
    assert.deepEqual(lines.slice(-2).map((l) => l.replace(/^[^:]+: /, "")), ["hello bob", "hi alice"]);
    await alice.close();
    await bob.close();
  });

  test(`${transport}: payment pending, then succeeded or failed`, async () => {
    const page = await open(transport);
    for (const [amount, outcome] of [["25", "succeeded"], ["20000", "failed"]]) {
      await page.getByTestId("pay-amount").fill(amount);
      await page.getByTestId("pay-button").click();
      await page.waitForFunction(
        () => document.querySelector('[data-testid="pay-status"]').textContent === "pending", null, { timeout: 5_000 });
      await page.waitForFunction(
        (o) => document.querySelector('[data-testid="pay-status"]').textContent === o, outcome,
        // On the WebSocket the status is pushed (the console's GET fallback starts after 8 s).
        { timeout: transport === "websocket" ? 3_000 : 10_000 });
    }
    await page.close();
  });
}

test("a token change reconnects with that token (agent view -> hq view)", async () => {
  const page = await open("websocket");
  await page.getByTestId("mission-row-1").waitFor();
  const states = [];
  await page.exposeFunction("recordStatus", (s) => states.push(s));
  await page.evaluate(() => {
    const el = document.querySelector('[data-testid="connection-status"]');
    new MutationObserver(() => window.recordStatus(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
  });
  assert.doesNotMatch(await page.locator("#mission-head").textContent(), /objective/);
  await page.getByTestId("token-input").fill(hq());
  await page.getByTestId("token-input").dispatchEvent("change");
  await connected(page, "websocket");
  await page.waitForFunction(() => document.querySelector("#mission-head").textContent.includes("objective"), null, { timeout: 10_000 });
  assert.ok(states.some((s) => s.startsWith("connecting")), `reconnected: ${states}`);
  // A bad token stops with the reason shown, instead of looping.
  await page.getByTestId("token-input").fill("not-a-token");
  await page.getByTestId("token-input").dispatchEvent("change");
  await page.waitForFunction(
    () => document.querySelector('[data-testid="connection-status"]').textContent.startsWith("disconnected:"), null, { timeout: 10_000 });
  await page.close();
});

test("offline and back online: the page says so, reconnects at once and catches up", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(server.url + "/");
  await connected(page, "websocket");
  await page.getByTestId("mission-row-3").waitFor();
  await context.setOffline(true);
  await page.waitForFunction(
    () => document.querySelector('[data-testid="connection-status"]').textContent === "disconnected", null, { timeout: 5_000 });
  // Changed while the page is offline: recovered from history once it is back.
  const res = await fetch(`${server.url}/missions/3`, {
    method: "PUT",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${hq()}` },
    body: JSON.stringify({ location: "Reykjavik" }),
  });
  assert.equal(res.status, 200);
  await context.setOffline(false);
  await connected(page, "websocket");
  await page.waitForFunction(
    () => document.querySelector('[data-testid="mission-row-3"]').textContent.includes("Reykjavik"), null, { timeout: 10_000 });
  await context.close();
});
