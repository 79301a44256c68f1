// Regenerates the screenshots in docs/console/ (not a test; run by hand:
// `node scripts/screenshots.mjs` from clients/js after a release build).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { REPO_ROOT, startServer, token } from "../test/helpers/server.js";

const out = join(REPO_ROOT, "docs", "console");
mkdirSync(out, { recursive: true });
const server = await startServer();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(server.url + "/");
  await page.getByTestId("token-input").fill(token({ sub: "hq-demo", role: "hq", channels: ["city:*"] }));
  await page.getByTestId("token-input").dispatchEvent("change");
  await page.waitForFunction(() => document.querySelector('[data-testid="connection-status"]').textContent.startsWith("connected"));
  await page.getByTestId("mission-row-1").waitFor();
  await page.getByTestId("edit-location").fill("Tallinn");
  await page.getByTestId("edit-submit").click();
  const pipeline = token({ sub: "pipe", role: "pipeline" });
  for (const aq of [80, 95, 120, 110, 160, 140]) {
    await fetch(`${server.url}/api/cities/nairobi/data`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${pipeline}` },
      body: JSON.stringify({ metrics: { air_quality: aq, temperature: 23 } }),
    });
    await page.waitForTimeout(100);
  }
  await page.getByTestId("chat-input").fill("Extraction at dawn.");
  await page.getByTestId("chat-send").click();
  await page.getByTestId("pay-button").click();
  await page.waitForFunction(() => document.querySelector('[data-testid="pay-status"]').textContent === "succeeded");
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(out, "console.png") });
  for (const id of ["missions-panel", "city-panel", "chat-panel", "pay-panel"]) {
    await page.locator(`#${id}`).screenshot({ path: join(out, `${id}.png`) });
  }
  console.log(`screenshots written to ${out}`);
} finally {
  await browser.close();
  await server.stop();
}
