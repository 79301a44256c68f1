// Starts the release binary (SWITCHBOARD_BIN, default $CARGO_TARGET_DIR/release/switchboard or
// target/release/switchboard at the repository root) on 127.0.0.1:0 with a temporary data
// dir, reads the address from its banner, and mints HS256 tokens with node:crypto.
import { spawn, execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..", "..");
export const BINARY = process.env.SWITCHBOARD_BIN ??
  join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "release", "switchboard");
export const SECRET = "js-client-secret-0123456789abcdef";
export const REPO_ROOT = root;

/** Starts a server; resolves to {url, child, dataDir, stop, kill}. */
export async function startServer(env = {}, { dataDir } = {}) {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run cargo build --release --bin switchboard first`);
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), "switchboard-js-"));
  const child = spawn(BINARY, ["--listen", "127.0.0.1:0", "--data-dir", dir], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME ?? "/tmp",
      SWITCHBOARD_AUTH__JWT_SECRET: SECRET,
      SWITCHBOARD_PAYMENTS__PROCESSING_DELAY_MS: "300",
      RUST_LOG: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 20_000);
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/Switchboard is listening on (http:\/\/[0-9.:]+)\//);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${stderr}`));
    });
  });
  const exited = new Promise((r) => child.once("exit", r));
  const kill = async (signal = "SIGKILL") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  const stop = async ({ keepData = false } = {}) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (!keepData && !dataDir) rmSync(dir, { recursive: true, force: true });
  };
  return { url, child, dataDir: dir, stop, kill };
}

const b64url = (s) => Buffer.from(s).toString("base64url");

/** An HS256 token signed with the suite's secret. */
export function token(claims, { expiresIn = 3600 } = {}) {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + expiresIn, ...claims }));
  const sig = createHmac("sha256", SECRET).update(`${header}.${body}`).digest("base64url");
  return `${header}.${body}.${sig}`;
}

/** Server-side publish with an hq token (POST /api/publish). */
export async function apiPublish(url, channel, event, data) {
  const res = await fetch(`${url}/api/publish`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token({ sub: "hq-test", role: "hq" })}` },
    body: JSON.stringify({ channel, event, data }),
  });
  if (!res.ok) throw new Error(`publish: ${res.status} ${await res.text()}`);
  return res.json();
}

/** Resolves when `predicate()` holds, or rejects after `ms` with `what`. */
export async function until(predicate, ms = 10_000, what = "condition") {
  const end = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves with the first `event` emitted by `emitter` (rejects after `ms`). */
export function next(emitter, event, ms = 10_000, filter = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`timed out waiting for ${event}`)); }, ms);
    const off = emitter.on(event, (...args) => {
      if (!filter(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args[0]);
    });
  });
}

/** Redis at 127.0.0.1:6379, or a reason to skip (fails instead under SWITCHBOARD_REQUIRE_SERVICES=1). */
export async function redisOrSkip(t) {
  const up = await new Promise((resolve) => {
    const s = net.connect(6379, "127.0.0.1");
    s.once("connect", () => { s.end(); resolve(true); });
    s.once("error", () => resolve(false));
  });
  if (up) return { url: "redis://127.0.0.1:6379", prefix: `jsclient${randomBytes(4).toString("hex")}` };
  if (process.env.SWITCHBOARD_REQUIRE_SERVICES === "1") throw new Error("Redis at 127.0.0.1:6379 is required here but unreachable");
  console.log("SKIPPED: Redis at 127.0.0.1:6379 is unreachable");
  t.skip("Redis unreachable");
  return null;
}

/** Deletes the test's own Redis keys (never a flush). */
export function dropRedisKeys(prefix) {
  try {
    const keys = execFileSync("redis-cli", ["-h", "127.0.0.1", "--scan", "--pattern", `${prefix}*`], { encoding: "utf8" })
      .split("\n").filter(Boolean);
    for (let i = 0; i < keys.length; i += 100) {
      execFileSync("redis-cli", ["-h", "127.0.0.1", "del", ...keys.slice(i, i + 100)]);
    }
  } catch (err) {
    console.log(`could not clean Redis keys ${prefix}*: ${err.message}`);
  }
}
