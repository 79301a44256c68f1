// Starts ../../target/release/switchboard on 127.0.0.1:0 with a temporary data dir, reads the
// address it prints, mints HS256 tokens with node:crypto, and stops the server at the end.
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
// `CARGO_TARGET_DIR` moves cargo's output; follow it like cargo does.
export const BINARY = join(process.env.CARGO_TARGET_DIR ?? join(here, "..", "..", "target"), "release", "switchboard");
export const SECRET = "interop-secret-0123456789abcdef";

/** Starts a server; resolves to {url, stop}. */
export async function startServer(env = {}) {
  if (!existsSync(BINARY)) {
    throw new Error(`${BINARY} is missing: run cargo build --release first`);
  }
  const dataDir = mkdtempSync(join(tmpdir(), "switchboard-interop-"));
  const child = spawn(BINARY, ["--listen", "127.0.0.1:0", "--data-dir", dataDir], {
    env: {
      ...process.env,
      SWITCHBOARD_AUTH__JWT_SECRET: SECRET,
      SWITCHBOARD_PAYMENTS__PROCESSING_DELAY_MS: "300",
      SWITCHBOARD_PAYMENTS__MAX_AMOUNT: "10000",
      RUST_LOG: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 10_000);
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
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  return { url, stop };
}

const b64url = (s) => Buffer.from(s).toString("base64url");

/** An HS256 token signed with the suite's secret. */
export function token(claims, secret = SECRET) {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims }));
  const sig = createHmac("sha256", secret).update(`${header}.${body}`).digest("base64url");
  return `${header}.${body}.${sig}`;
}

/** Resolves with the first argument of the first `event` on `socket`, or rejects after `ms`.
 * (Publications carry their position as a second argument; see `onceArgs`.) */
export function once(socket, event, ms = 5_000) {
  return onceArgs(socket, event, ms).then((args) => args[0]);
}

/** Resolves with all arguments of the first `event` on `socket`, or rejects after `ms`. */
export function onceArgs(socket, event, ms = 5_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), ms);
    socket.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}
