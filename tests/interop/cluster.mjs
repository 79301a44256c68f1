// Several switchboard nodes sharing Redis and PostgreSQL, with a real nginx in front rendered
// from deploy/nginx.conf. Everything on 127.0.0.1; each run gets its own PostgreSQL schema,
// Redis key prefix and nginx prefix directory, all removed at the end.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, readFileSync, writeFileSync, chmodSync, existsSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "./server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const TEMPLATE = join(here, "..", "..", "deploy", "nginx.conf");
const PG_URL = "postgres://postgres@127.0.0.1:5432/test";
const REDIS = { host: "127.0.0.1", port: 6379 };

export const REQUIRED = process.env.SWITCHBOARD_REQUIRE_SERVICES === "1";

/** Sends one command to Redis (RESP) and resolves with the raw first reply line. */
function redis(args, ms = 2_000) {
  return new Promise((resolve, reject) => {
    const socket = createConnection(REDIS);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("Redis did not answer"));
    }, ms);
    let reply = "";
    socket.on("connect", () => {
      const parts = args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`);
      socket.write(`*${args.length}\r\n${parts.join("")}`);
    });
    socket.on("data", (d) => {
      reply += d;
      if (reply.includes("\r\n")) {
        clearTimeout(timer);
        socket.end();
        resolve(reply.split("\r\n")[0]);
      }
    });
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

function psql(sql) {
  const r = spawnSync("psql", [PG_URL, "-v", "ON_ERROR_STOP=1", "-qc", sql], { encoding: "utf8", timeout: 5_000 });
  if (r.error) return r.error.message;
  return r.status === 0 ? null : r.stderr.trim() || `psql exited with ${r.status}`;
}

/** The nginx binary (Debian puts it in /usr/sbin, not always on PATH), or null. */
function nginxBinary() {
  const dirs = (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/usr/local/sbin"]);
  return dirs.map((d) => join(d, "nginx")).find((p) => existsSync(p)) ?? null;
}

/**
 * Checks nginx, Redis and PostgreSQL, and creates this run's schema. Resolves to
 * {nginx, schema, prefix} or to {skip: reason}; with SWITCHBOARD_REQUIRE_SERVICES=1 a missing
 * service throws instead.
 */
export async function services() {
  const fail = (reason) => {
    if (REQUIRED) throw new Error(`services required (SWITCHBOARD_REQUIRE_SERVICES=1): ${reason}`);
    process.stderr.write(`SKIPPED nginx suite: ${reason}\n`);
    return { skip: reason };
  };
  const nginx = nginxBinary();
  if (!nginx) return fail("no nginx binary (apt-get install nginx)");
  try {
    const pong = await redis(["PING"]);
    if (pong !== "+PONG") return fail(`Redis answered ${pong}`);
  } catch (e) {
    return fail(`Redis at 127.0.0.1:6379: ${e.message}`);
  }
  const id = randomBytes(8).toString("hex");
  const schema = `interop_${id}`;
  const err = psql(`CREATE SCHEMA ${schema}`);
  if (err) return fail(`PostgreSQL at ${PG_URL}: ${err}`);
  return { nginx, schema, prefix: `sbtest:${id}` };
}

/** Drops the run's schema and deletes its Redis keys. */
export async function cleanServices({ schema, prefix }) {
  psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  const script = "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 0";
  await redis(["EVAL", script, "0", `${prefix}:*`]).catch(() => {});
}

/** Starts `count` release binaries sharing the run's Redis prefix and PostgreSQL schema. */
export async function startNodes({ schema, prefix }, count = 2) {
  const env = {
    SWITCHBOARD_BROKER__URL: `redis://${REDIS.host}:${REDIS.port}`,
    SWITCHBOARD_BROKER__PREFIX: prefix,
    SWITCHBOARD_STORE__URL: `${PG_URL}?options[search_path]=${schema}`,
  };
  const nodes = [];
  // One after the other: the first runs the migrations (the others would wait on the lock).
  for (let i = 0; i < count; i++) nodes.push(await startServer(env));
  return nodes;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Renders deploy/nginx.conf for `nodes` and runs nginx in the foreground with its own prefix.
 * Resolves to {url, accessLog(), stop()} once nginx proxies /healthz.
 */
export async function startNginx(binary, nodes) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "switchboard-nginx-"));
  // Workers may run as another user (nobody) when the suite runs as root.
  chmodSync(dir, 0o755);
  const servers = nodes.map((n) => `server ${new URL(n.url).host};`).join(" ");
  const conf = readFileSync(TEMPLATE, "utf8").replaceAll("@LISTEN@", `127.0.0.1:${port}`).replaceAll("@SERVERS@", servers);
  writeFileSync(join(dir, "nginx.conf"), conf);
  const child = spawn(binary, ["-p", dir, "-c", join(dir, "nginx.conf"), "-g", "daemon off;"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${stderr}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nginx did not proxy /healthz within 10 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const accessLog = () => readFileSync(join(dir, "access.log"), "utf8");
  return { url, accessLog, stop };
}
