// SPDX-License-Identifier: Apache-2.0
//
// Soak: spiced under a steady mixed load for SOAK_SECONDS (CI: 120; documented run: 3600) while its PostgreSQL
// source is stopped and started again, then a verdict. `make soak` runs it.
//
//   clients   SOAK_HTTP (6) HTTP query loops and SOAK_FLIGHT (2) Flight loops (the official SDK, flightOnly),
//             each query's answer checked against what the source holds; a writer inserting rows through
//             INSERT INTO a read_write dataset; a manual refresher; a /health prober every 250 ms;
//   faults    the PostgreSQL server stopped for 3 s every SOAK_RESTART_EVERY seconds (default 30);
//   verdict   zero failed health probes, zero wrong answers, zero failed reads (the accelerated copy serves
//             while the source is down), every acknowledged write present in the source and in spiced at the
//             end, and no growth trend in spiced's RSS (the median of the last third of the samples within
//             25 % + 64 MiB of the middle third's). Writes refused while the source is down are counted, not
//             failures: the client was told.
// Prints requests, errors and latency percentiles per kind; exits 1 when the verdict fails.
import { readFileSync } from 'node:fs';
import { SpiceClient } from '@spiceai/spice';
import { startSpiced, sleep, paramsYaml } from './lib/spiced.mjs';
import { startPostgres } from './lib/postgres.mjs';

const SECONDS = Number(process.env.SOAK_SECONDS || 120);
const N_HTTP = Number(process.env.SOAK_HTTP || 6);
const N_FLIGHT = Number(process.env.SOAK_FLIGHT || 2);
const RESTART_EVERY = Number(process.env.SOAK_RESTART_EVERY || 30);
const SEED_ROWS = 1000;
const STATIC_ROWS = 5000;

const csv = 'k,v\n' + Array.from({ length: STATIC_ROWS }, (_, i) => `${i},${(i * 7) % 1000}`).join('\n') + '\n';
const STATIC_SUM = Array.from({ length: STATIC_ROWS }, (_, i) => (i * 7) % 1000).reduce((a, b) => a + b, 0);

const stats = {};
const kind = (k) => (stats[k] ??= { ok: 0, failed: 0, wrong: 0, lat: [], firstError: null });
function record(k, ms, outcome, detail) {
  const s = kind(k);
  s.lat.push(ms);
  if (outcome === 'ok') s.ok++;
  else {
    s[outcome]++;
    s.firstError ??= detail;
  }
}
const pct = (xs, p) => {
  if (xs.length === 0) return NaN;
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))];
};

const pg = await startPostgres();
pg.psql(`CREATE TABLE orders (id int PRIMARY KEY, v int NOT NULL);
         INSERT INTO orders SELECT g, g % 100 FROM generate_series(1, ${SEED_ROWS}) g;
         GRANT ALL ON orders TO spice;`);
const p = pg.params;
const rt = await startSpiced({
  files: { 'static.csv': csv },
  spicepod: `version: v1
kind: Spicepod
name: soak
datasets:
  - from: file:static.csv
    name: static
    acceleration:
      enabled: true
  - from: postgres:public.orders
    name: orders
    mode: read_write
    replication:
      enabled: true
    params:
${paramsYaml(p)}
    acceleration:
      enabled: true
      refresh_check_interval: 5s
`,
});

let running = true;
const deadline = Date.now() + SECONDS * 1000;
const acknowledged = new Set();
let refusedWrites = 0;
let nextId = SEED_ROWS + 1;
const rss = [];

async function timed(k, fn) {
  const t0 = performance.now();
  try {
    const r = await fn();
    record(k, performance.now() - t0, r === true ? 'ok' : 'wrong', r);
  } catch (e) {
    record(k, performance.now() - t0, 'failed', e.message);
  }
}

// The answers every reader checks: fixed data (static.csv, and the seeded rows of orders, which writes never touch).
async function httpReader(i) {
  while (running) {
    if (i % 2 === 0)
      await timed('http static', async () => {
        const r = await rt.sql('SELECT count(*) AS n, sum(v) AS s FROM static');
        if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
        const [row] = JSON.parse(r.text);
        return (Number(row.n) === STATIC_ROWS && Number(row.s) === STATIC_SUM) || `static: ${r.text}`;
      });
    else
      await timed('http orders', async () => {
        const r = await rt.sql(`SELECT count(*) AS n, sum(v) AS s FROM orders WHERE id <= ${SEED_ROWS}`);
        if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
        const [row] = JSON.parse(r.text);
        return (Number(row.n) === SEED_ROWS && Number(row.s) === (SEED_ROWS / 100) * 4950) || `orders: ${r.text}`;
      });
  }
}

async function flightReader() {
  const client = new SpiceClient({ httpUrl: rt.url, flightUrl: rt.flightAddr, flightOnly: true });
  while (running)
    await timed('flight static', async () => {
      const t = await client.sql('SELECT count(*) AS n, sum(v) AS s FROM static');
      const row = t.get(0).toJSON();
      return (Number(row.n) === STATIC_ROWS && Number(row.s) === STATIC_SUM) || `flight: ${JSON.stringify(row)}`;
    });
}

async function writer() {
  while (running) {
    const id = nextId++;
    const t0 = performance.now();
    const r = await rt.sql(`INSERT INTO orders (id, v) VALUES (${id}, ${id % 100})`).catch((e) => ({ status: 0, text: e.message }));
    if (r.status === 200) {
      acknowledged.add(id);
      record('write', performance.now() - t0, 'ok');
    } else {
      refusedWrites++; // the source is down: the client is told, nothing is half-applied
      kind('write').lat.push(performance.now() - t0);
    }
    await sleep(20);
  }
}

async function refresher() {
  while (running) {
    await timed('refresh', async () => {
      const r = await rt.get('/v1/status'); // cheap liveness of the API next to the refresh requests
      const q = await fetch(`${rt.url}/v1/datasets/orders/acceleration/refresh`, { method: 'POST' });
      await q.arrayBuffer();
      return (r.status === 200 && (q.status === 201 || q.status === 200)) || `refresh: ${q.status}`;
    });
    await sleep(3000);
  }
}

async function prober() {
  while (running) {
    await timed('health', async () => {
      const r = await rt.get('/health');
      return r.status === 200 || `health: ${r.status}`;
    });
    await sleep(250);
  }
}

async function sampler() {
  while (running) {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${rt.proc.pid}/status`, 'utf8'));
    if (m) rss.push(Number(m[1]) / 1024);
    await sleep(2000);
  }
}

let restarts = 0;
async function restarter() {
  for (;;) {
    const wait = Math.min(RESTART_EVERY * 1000, deadline - Date.now() - 10000);
    if (wait <= 0) return;
    await sleep(wait);
    pg.stopServer('fast'); // the harness runs with synchronous_commit=off: an immediate stop would lose commits by design
    await sleep(3000);
    pg.start();
    restarts++;
  }
}

console.log(`soak: ${SECONDS} s, ${N_HTTP} HTTP + ${N_FLIGHT} Flight readers, a writer, a refresher, PostgreSQL stopped every ${RESTART_EVERY} s`);
const tasks = [
  ...Array.from({ length: N_HTTP }, (_, i) => httpReader(i)),
  ...Array.from({ length: N_FLIGHT }, () => flightReader()),
  writer(), refresher(), prober(), sampler(),
];
const restarting = restarter();
while (Date.now() < deadline) await sleep(500);
running = false;
await Promise.all(tasks);
await restarting;

// Every acknowledged write is in the source, and in spiced once it has refreshed after the last restart.
const inSource = new Set(pg.rows(`SELECT id FROM orders WHERE id > ${SEED_ROWS}`).map(([id]) => Number(id)));
const missingInSource = [...acknowledged].filter((id) => !inSource.has(id));
await fetch(`${rt.url}/v1/datasets/orders/acceleration/refresh`, { method: 'POST' });
let missingInSpiced = [];
for (let attempt = 0; attempt < 60; attempt++) {
  const r = await rt.sql(`SELECT id FROM orders WHERE id > ${SEED_ROWS}`);
  const have = r.status === 200 ? new Set(JSON.parse(r.text).map((x) => Number(x.id))) : new Set();
  missingInSpiced = [...acknowledged].filter((id) => !have.has(id));
  if (missingInSpiced.length === 0) break;
  await sleep(1000);
}

const third = Math.floor(rss.length / 3);
const med = (xs) => pct(xs, 50);
const middle = med(rss.slice(third, 2 * third)), last = med(rss.slice(2 * third));
const rssStable = rss.length < 6 || last <= middle * 1.25 + 64;

console.log('\nkind            requests  failed  wrong   p50 ms   p90 ms   p99 ms');
for (const [k, s] of Object.entries(stats))
  console.log(`${k.padEnd(15)} ${String(s.ok + s.failed + s.wrong).padStart(8)} ${String(s.failed).padStart(7)} ` +
    `${String(s.wrong).padStart(6)} ${pct(s.lat, 50).toFixed(1).padStart(8)} ${pct(s.lat, 90).toFixed(1).padStart(8)} ` +
    `${pct(s.lat, 99).toFixed(1).padStart(8)}${s.firstError ? `   first problem: ${String(s.firstError).slice(0, 160)}` : ''}`);
console.log(`\nwrites acknowledged ${acknowledged.size}, refused while the source was down ${refusedWrites}; ` +
  `PostgreSQL restarts ${restarts}`);
console.log(`spiced RSS MiB: first ${rss[0]?.toFixed(0)}, middle third median ${middle?.toFixed(0)}, ` +
  `last third median ${last?.toFixed(0)}, max ${Math.max(...rss).toFixed(0)} (${rss.length} samples)`);

const problems = [];
for (const [k, s] of Object.entries(stats)) {
  if (k === 'write') continue;
  if (s.failed) problems.push(`${s.failed} failed ${k} requests (${s.firstError})`);
  if (s.wrong) problems.push(`${s.wrong} wrong ${k} answers (${s.firstError})`);
}
if ((stats.health?.ok ?? 0) === 0) problems.push('no health probe answered');
if (missingInSource.length) problems.push(`${missingInSource.length} acknowledged writes missing in the source`);
if (missingInSpiced.length) problems.push(`${missingInSpiced.length} acknowledged writes missing in spiced`);
if (!rssStable) problems.push(`RSS grew: middle third ${middle.toFixed(0)} MiB, last third ${last.toFixed(0)} MiB`);

const exit = await rt.stop();
await pg.stop();
if (exit.code !== 0) problems.push(`spiced did not stop cleanly: ${JSON.stringify(exit)}`);
console.log(problems.length ? `\nsoak: FAILED\n- ${problems.join('\n- ')}` : '\nsoak: passed');
process.exit(problems.length ? 1 : 0);
