// Switchboard's Server-Sent Events endpoint against the real `eventsource` npm client.
// Starts ../../target/release/switchboard on 127.0.0.1:0 (the port it reports) with a temporary data
// dir, mints HS256 tokens with node:crypto, and stops the server at the end.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EventSource } from 'eventsource';

const here = dirname(fileURLToPath(import.meta.url));
// `CARGO_TARGET_DIR` moves cargo's output; follow it like cargo does.
const BINARY = join(process.env.CARGO_TARGET_DIR ?? join(here, '..', '..', 'target'), 'release', 'switchboard');
const SECRET = 'interop-sse-secret-0123456789';
const WAIT_MS = 5000;

let server;
let base;
let dataDir;

function b64url(data) {
  return Buffer.from(data).toString('base64url');
}

function token(sub, role) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const payload = b64url(JSON.stringify({ sub, role, exp }));
  const sig = createHmac('sha256', SECRET).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${sig}`;
}

function withTimeout(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Collects events of the given names from an EventSource, to await them in order. */
function collector(es, names) {
  const queue = [];
  const waiters = [];
  const push = (ev) => {
    const waiter = waiters.shift();
    if (waiter) waiter(ev);
    else queue.push(ev);
  };
  for (const name of names) {
    es.addEventListener(name, (ev) => push({ name, data: JSON.parse(ev.data), id: ev.lastEventId }));
  }
  return {
    next(what = names.join('|')) {
      if (queue.length) return Promise.resolve(queue.shift());
      return withTimeout(new Promise((resolve) => waiters.push(resolve)), what);
    },
    pending() {
      return queue.length;
    },
  };
}

async function putMission(id, body) {
  const res = await fetch(`${base}/missions/${id}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token('hq-node', 'hq')}` },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200);
  return res.json();
}

before(async () => {
  assert.ok(existsSync(BINARY), `build it first: cargo build --release (missing ${BINARY})`);
  dataDir = mkdtempSync(join(tmpdir(), 'switchboard-sse-'));
  // The server binds 127.0.0.1:0 and prints the address it got: no port is picked, released
  // and hoped for.
  server = spawn(BINARY, ['--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    cwd: dataDir,
    env: { ...process.env, SWITCHBOARD_AUTH__JWT_SECRET: SECRET, RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  base = await withTimeout(
    new Promise((resolve, reject) => {
      let out = '';
      server.stdout.on('data', (d) => {
        out += d;
        const m = out.match(/Switchboard is listening on (http:\/\/[0-9.:]+)\//);
        if (m) resolve(m[1]);
      });
      server.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    }),
    'the listening banner',
    20000,
  );
  server.stdout.resume();
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await withTimeout(exited, 'server exit', 12000).catch(() => server.kill('SIGKILL'));
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('EventSource receives mission updates, then resumes exactly with Last-Event-ID', async () => {
  const es = new EventSource(`${base}/events?channels=missions`);
  const connected = withTimeout(
    new Promise((resolve) => {
      es.onmessage = (ev) => resolve(JSON.parse(ev.data));
    }),
    'connected',
  );
  const events = collector(es, ['mission-update']);
  assert.deepEqual(await connected, { type: 'connected' });

  const answered = await putMission(1, { status: 'active', location: 'Nairobi' });
  const first = await events.next();
  assert.equal(first.data.type, 'mission-update');
  assert.equal(first.data.channel, 'missions');
  assert.deepEqual(first.data.data, {
    id: 1,
    codename: answered.codename,
    status: 'active',
    location: 'Nairobi',
  });
  assert.ok(first.id, 'the event carries an id');
  const lastId = first.id;
  const lastOffset = first.data.offset;
  es.close();

  const locations = ['B', 'C', 'D', 'E', 'F'];
  for (const location of locations) await putMission(1, { location });

  // A new EventSource that resumes from the last id it saw (as after a page reload).
  const resumed = new EventSource(`${base}/events?channels=missions`, {
    fetch: (url, init) =>
      fetch(url, { ...init, headers: { ...init.headers, 'Last-Event-ID': lastId } }),
  });
  const again = collector(resumed, ['mission-update', 'subscribed']);
  const notice = await again.next('subscribed');
  assert.equal(notice.name, 'subscribed');
  assert.equal(notice.data.recovered, true);
  const got = [];
  for (let i = 0; i < 5; i++) got.push(await again.next('missed update'));
  assert.deepEqual(
    got.map((e) => [e.name, e.data.offset, e.data.data.location]),
    locations.map((loc, i) => ['mission-update', lastOffset + 1 + i, loc]),
  );
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(again.pending(), 0, 'nothing beyond the five missed updates');

  await putMission(1, { location: 'G' });
  const live = await again.next('live update');
  assert.equal(live.data.offset, lastOffset + 6);
  assert.equal(live.data.data.location, 'G');
  resumed.close();

  // ?since= does the same for clients that cannot set headers.
  const viaQuery = new EventSource(
    `${base}/events?channels=missions&since=${encodeURIComponent(lastId)}`,
  );
  const q = collector(viaQuery, ['mission-update']);
  const offsets = [];
  for (let i = 0; i < 6; i++) offsets.push((await q.next()).data.offset);
  assert.deepEqual(offsets, [1, 2, 3, 4, 5, 6].map((n) => lastOffset + n));
  viaQuery.close();
});

test('a forbidden channel is refused before the stream starts', async () => {
  const res = await fetch(`${base}/events?channels=city:nairobi`);
  assert.equal(res.status, 403);
  const body = await res.json();
  assert.match(body.error, /city:nairobi/);
  const bad = await fetch(`${base}/events?channels=missions&token=nope`);
  assert.equal(bad.status, 401);
});
