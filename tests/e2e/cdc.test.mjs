// SPDX-License-Identifier: Apache-2.0
//
// refresh_mode: changes on a real PostgreSQL (wal_level=logical, started by lib/postgres.mjs): spicec creates the
// publication and the slot, loads the table, then follows a mixed stream of inserts, updates (also of the key)
// and deletes in several transactions; afterwards the accelerated copy (arrow and duckdb) equals the table,
// row for row. A duckdb file accelerator killed in the middle of the stream resumes from its stored position
// (no new slot, no duplicates, nothing lost); a slot that went away while spiced was down is replaced with a
// warning and a full load; so is a TRUNCATE of the table. A server restart in the middle of the stream is
// recovered by itself. Commit→visible latency is measured and printed (no threshold; CDC_LATENCY_SAMPLES
// sets the number of samples, bench/cdc_latency.sh uses it). Needs SPICED and PostgreSQL's server binaries.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { request, startSpiced, sleep } from './lib/spiced.mjs';
import { datasetStatuses, makeFolder, removeFolder, startSpicedIn, kill9, waitUntil } from './lib/lifecycle.mjs';
import { startPostgres } from './lib/postgres.mjs';

let pg, writer;
before(async () => {
  pg = await startPostgres({ user: 'cdc_owner', replication: true });
  // Output settings that change how pgoutput prints values: spicec must not depend on the server's defaults.
  pg.psql(`ALTER DATABASE ${pg.db} SET datestyle = 'SQL, DMY'; ALTER DATABASE ${pg.db} SET timezone = 'Asia/Kolkata';
           ALTER DATABASE ${pg.db} SET intervalstyle = 'sql_standard'; ALTER DATABASE ${pg.db} SET bytea_output = 'escape';`,
          { db: 'postgres' });
  pg.psql(`CREATE TABLE items (id int PRIMARY KEY, name text, qty int, price numeric(10,2), updated timestamptz,
                               payload bytea, tags text[]);
           INSERT INTO items SELECT g, 'n' || g, g % 7, g * 1.25, '2024-01-01'::timestamptz + g * interval '1 min',
                                    decode(md5(g::text), 'hex'), ARRAY['a', 'b' || g]
           FROM generate_series(1, 1000) g;`, { user: 'cdc_owner' });
  writer = pg.session({ user: 'cdc_owner' });
  // The harness runs the server with synchronous_commit=off; commits here wait for their WAL like production.
  await writer.query('SET synchronous_commit = on;');
});
after(async () => {
  if (writer) await writer.close();
  if (pg) await pg.stop();
});

// ---- helpers ----------------------------------------------------------------------------------------------

function dataset(name, engine, { mode = 'memory' } = {}) {
  const params = Object.entries(pg.params).map(([k, v]) => `      ${k}: ${JSON.stringify(String(v))}`).join('\n');
  return `  - from: postgres:items\n    name: ${name}\n    params:\n${params}\n    acceleration:\n      enabled: true\n` +
         `      engine: ${engine}\n      mode: ${mode}\n      refresh_mode: changes\n`;
}

function pod(datasets) {
  return `version: v1\nkind: Spicepod\nname: cdc\ndatasets:\n${datasets.join('')}`;
}

// Every row of the table as text, the same way on both sides (numbers, microseconds, hex, joined arrays).
function sourceRows() {
  return pg.rows(`SELECT id, name, qty, price::text, (extract(epoch FROM updated) * 1000000)::bigint,
                         encode(payload, 'hex'), array_to_string(tags, ',') FROM items ORDER BY id`);
}

async function copyRows(rt, name) {
  const r = await rt.sql(`SELECT id, name, qty, CAST(price AS VARCHAR) AS price, epoch_us(updated) AS us,
                                 lower(hex(payload)) AS payload, array_to_string(tags, ',') AS tags
                          FROM ${name} ORDER BY id`);
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text).map((o) => Object.values(o).map((v) => (v === null ? null : String(v))));
}

// A cheap fingerprint to wait on before comparing everything.
function sourceSummary() {
  return pg.psql('SELECT count(*), coalesce(sum(id::bigint), 0), coalesce(sum(qty), 0) FROM items').trim();
}

async function copySummary(rt, name) {
  const [o] = await rt.rows(`SELECT count(*) AS n, coalesce(sum(id), 0) AS s, coalesce(sum(qty), 0) AS q FROM ${name}`);
  return `${o.n}|${o.s}|${o.q}`;
}

async function assertConverges(rt, name) {
  const want = sourceSummary();
  try {
    await waitUntil(`${name} to catch up with the table`, () => copySummary(rt, name), (v) => v === want,
                    { timeoutMs: 30000, intervalMs: 100 });
  } catch (e) {
    throw new Error(`${e.message} (table: ${want})\nspiced log:\n${rt.log()}`);
  }
  const [mine, theirs] = [await copyRows(rt, name), sourceRows()];
  assert.equal(mine.length, theirs.length);
  assert.deepEqual(mine, theirs);
  const [dups] = await rt.rows(`SELECT count(*) - count(DISTINCT id) AS d FROM ${name}`);
  assert.equal(Number(dups.d), 0, 'no duplicate keys');
}

let round = 0;
// One transaction of mixed changes: ~200 inserts, updates of a seventh of the rows, deletes, key changes, a row
// inserted and deleted again, a row updated twice.
function transaction() {
  const k = ++round, base = 100000 * k;
  return `BEGIN;
    INSERT INTO items SELECT g, 'ins' || g, g % 5, g * 0.5, now(), decode(md5((g * 3)::text), 'hex'), ARRAY['i']
      FROM generate_series(${base + 1}, ${base + 200}) g;
    UPDATE items SET name = name || '+', qty = qty + 1, price = price + 0.25, updated = updated + interval '1 s',
                     tags = tags || 'u${k}'::text WHERE id % 7 = ${k % 7} AND id < ${base};
    DELETE FROM items WHERE id IN (SELECT id FROM items WHERE id % 13 = ${k % 13} ORDER BY id LIMIT 60);
    UPDATE items SET id = id + 5000000 WHERE id IN (SELECT id FROM items WHERE id % 17 = ${k % 17} AND id < 5000000 ORDER BY id LIMIT 5);
    INSERT INTO items (id, name) VALUES (${-k}, 'gone');
    DELETE FROM items WHERE id = ${-k};
    UPDATE items SET qty = 100, payload = NULL WHERE id = ${base + 1};
    UPDATE items SET qty = 101, name = NULL WHERE id = ${base + 1};
    COMMIT;`;
}

async function workload(transactions, { pauseMs = 0 } = {}) {
  for (let i = 0; i < transactions; i++) {
    await writer.query(transaction());
    if (pauseMs) await sleep(pauseMs);
  }
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// ---- tests ------------------------------------------------------------------------------------------------

test('a mixed stream of changes leaves the arrow and duckdb copies equal to the table', async () => {
  const rt = await startSpiced({ spicepod: pod([dataset('items_arrow', 'arrow'), dataset('items_duck', 'duckdb')]) });
  let log = '';
  try {
    for (const name of ['items_arrow', 'items_duck']) assert.deepEqual(await copyRows(rt, name), sourceRows());
    assert.match(rt.log(), /created replication slot "spice_items_arrow"/);
    const slots = pg.psql("SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'spice_items_%' ORDER BY 1");
    assert.equal(slots.trim(), 'spice_items_arrow\nspice_items_duck');
    await workload(8);
    for (const name of ['items_arrow', 'items_duck']) await assertConverges(rt, name);
    // Refreshing on request makes no sense for a change stream.
    const refresh = await request(`${rt.url}/v1/datasets/items_duck/acceleration/refresh`, { method: 'POST' });
    assert.equal(refresh.status, 400, refresh.text);
    assert.match(refresh.text, /change stream/);
  } finally {
    log = rt.log();
    await rt.stop();
  }
  // The position confirmed to the server moved past the slot's start as changes were applied.
  const start = /dataset "items_duck" loaded \d+ rows .*\(change stream at ([0-9A-F]+\/[0-9A-F]+)\)/.exec(log);
  assert.ok(start, log);
  // (the server handles the last status updates on its own time: wait for them rather than race)
  await waitUntil('the confirmed position to move', () => pg.psql(`SELECT confirmed_flush_lsn > '${start[1]}'::pg_lsn
                  FROM pg_replication_slots WHERE slot_name = 'spice_items_duck'`).trim(), (v) => v === 't');
});

test('a duckdb file copy killed mid-stream resumes from its position: nothing lost, nothing twice', async () => {
  const dir = makeFolder({ 'spicepod.yaml': pod([dataset('items_file', 'duckdb', { mode: 'file' })]) });
  try {
    let rt = await startSpicedIn(dir);
    await assertConverges(rt, 'items_file');
    const stream = workload(12, { pauseMs: 40 });
    await sleep(250);
    await kill9(rt);
    await stream; // the writer does not depend on spiced
    await workload(2);
    rt = await startSpicedIn(dir);
    try {
      await assertConverges(rt, 'items_file');
      const log = rt.log();
      assert.match(log, /serving \d+ rows from its file accelerator/);
      assert.doesNotMatch(log, /created replication slot/, 'resumed on its slot, not reloaded');
      assert.match(log, /streaming changes of postgres table "public.items" from \d+\/[0-9A-F]+/);
      await rt.stop();

      // A slot that went away while spiced was down: a warning, a new slot and a full load.
      pg.psql("SELECT pg_drop_replication_slot('spice_items_file')");
      await workload(2);
      rt = await startSpicedIn(dir);
      await assertConverges(rt, 'items_file');
      assert.match(rt.log(), /replication slot "spice_items_file" is gone; loading postgres table "public.items" again/);
      assert.match(rt.log(), /created replication slot "spice_items_file"/);
    } finally {
      await rt.stop();
    }
  } finally {
    removeFolder(dir);
  }
});

test('commit→visible latency (printed, not asserted)', async () => {
  const samples = Number(process.env.CDC_LATENCY_SAMPLES || 30);
  const rt = await startSpiced({ spicepod: pod([dataset('items_lat', 'duckdb')]) });
  try {
    const lat = [];
    for (let i = 0; i < samples; i++) {
      const id = 9000000 + i;
      await writer.query(`INSERT INTO items (id, name, qty) VALUES (${id}, 'lat', ${i});`);
      const committed = performance.now();
      await waitUntil('the new row', () => rt.rows(`SELECT count(*) AS n FROM items_lat WHERE id = ${id}`),
                      (r) => Number(r[0].n) === 1, { timeoutMs: 20000, intervalMs: 1 });
      lat.push(performance.now() - committed);
    }
    lat.sort((a, b) => a - b);
    const p50 = percentile(lat, 50), p99 = percentile(lat, 99);
    console.log(`cdc commit->visible latency: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms (${samples} samples, duckdb memory)`);
    assert.equal(lat.length, samples);
  } finally {
    await rt.stop();
  }
});

test('a server restart is recovered by itself; a TRUNCATE reloads the table', async () => {
  const rt = await startSpiced({ spicepod: pod([dataset('items_rs', 'duckdb')]) });
  try {
    await workload(1);
    await assertConverges(rt, 'items_rs');
    await writer.close();
    writer = null;
    pg.stopServer('fast');
    pg.start();
    writer = pg.session({ user: 'cdc_owner' });
    await writer.query('SET synchronous_commit = on;');
    await workload(2);
    await assertConverges(rt, 'items_rs');
    await waitUntil('items_rs to be Ready again', () => datasetStatuses(rt), (s) => s.items_rs === 'Ready',
                    { timeoutMs: 30000, intervalMs: 100 });

    await writer.query(`BEGIN; TRUNCATE items;
      INSERT INTO items SELECT g, 'after' || g, g % 3, g, now(), NULL, NULL FROM generate_series(1, 500) g; COMMIT;`);
    await assertConverges(rt, 'items_rs');
    assert.match(rt.log(), /the table was truncated; loading postgres table "public.items" again/);
  } finally {
    await rt.stop();
  }
});

test('acceleration.primary_key on a REPLICA IDENTITY FULL table; large unchanged values are never lost', async () => {
  pg.psql(`CREATE TABLE events (k text NOT NULL, v int, big text);
           ALTER TABLE events REPLICA IDENTITY FULL;
           INSERT INTO events SELECT 'k' || g, g, NULL FROM generate_series(1, 50) g;
           CREATE TABLE docs (id int PRIMARY KEY, n int, body text);
           INSERT INTO docs SELECT g, 0, NULL FROM generate_series(1, 20) g;`, { user: 'cdc_owner' });
  const params = Object.entries(pg.params).map(([k, v]) => `      ${k}: ${JSON.stringify(String(v))}`).join('\n');
  const events = `  - from: postgres:events\n    name: events\n    params:\n${params}\n    acceleration:\n      enabled: true\n` +
                 '      engine: duckdb\n      refresh_mode: changes\n      primary_key: k\n';
  const docs = `  - from: postgres:docs\n    name: docs\n    params:\n${params}\n    acceleration:\n      enabled: true\n` +
               '      engine: arrow\n      refresh_mode: changes\n';
  const rt = await startSpiced({ spicepod: pod([events, docs]) });
  // Values large and random enough to be stored out of line (TOAST), so that updates of other columns do not
  // send them again.
  const big = "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 200))";
  try {
    await writer.query(`BEGIN; UPDATE events SET v = v * 10 WHERE v % 2 = 0; DELETE FROM events WHERE v % 5 = 0;
                        INSERT INTO events VALUES ('new', 1, ${big}); UPDATE events SET k = 'k1b' WHERE k = 'k1'; COMMIT;`);
    await writer.query(`UPDATE docs SET body = ${big} WHERE id <= 3;`);
    await writer.query('UPDATE events SET v = 2 WHERE k = \'new\';');
    await writer.query('UPDATE docs SET n = n + 1 WHERE id <= 5;'); // body unchanged and not sent
    const want = (t, key) => pg.rows(`SELECT ${key}, v, md5(big) FROM ${t} ORDER BY 1`.replace('v, md5(big)', t === 'docs' ? 'n, md5(body)' : 'v, md5(big)'));
    const got = async (t, key) => {
      const cols = t === 'docs' ? 'n, md5(body) AS h' : 'v, md5(big) AS h';
      return (await rt.rows(`SELECT ${key}, ${cols} FROM ${t} ORDER BY 1`)).map((o) => Object.values(o).map((x) => (x === null ? null : String(x))));
    };
    for (const [t, key] of [['events', 'k'], ['docs', 'id']]) {
      const expected = want(t, key);
      await waitUntil(`${t} to equal the table`, () => got(t, key), (v) => JSON.stringify(v) === JSON.stringify(expected),
                      { timeoutMs: 30000, intervalMs: 100 });
    }
  } finally {
    await rt.stop();
  }
});

test('a user without REPLICATION gets a clear error, and the dataset does not load', async () => {
  pg.psql(`CREATE ROLE cdc_reader LOGIN PASSWORD 'reader-pw'; CREATE TABLE norep (id int PRIMARY KEY);
           ALTER TABLE norep OWNER TO cdc_reader; GRANT CREATE ON DATABASE ${pg.db} TO cdc_reader;`);
  const params = Object.entries({ ...pg.params, pg_user: 'cdc_reader', pg_pass: 'reader-pw' })
    .map(([k, v]) => `      ${k}: ${JSON.stringify(String(v))}`).join('\n');
  const ds = `  - from: postgres:norep\n    name: norep\n    params:\n${params}\n    acceleration:\n      enabled: true\n` +
             '      engine: duckdb\n      refresh_mode: changes\n';
  const rt = await startSpiced({ spicepod: pod([ds]), ready: false });
  try {
    await waitUntil('the dataset to fail', () => datasetStatuses(rt), (s) => s.norep === 'Error', { timeoutMs: 30000 });
    assert.match(rt.log(), /dataset "norep": change stream: could not connect to postgres for replication for dataset "norep": .*must be superuser or replication role.*\(refresh_mode: changes needs a role with the REPLICATION attribute\)/);
    const r = await rt.sql('SELECT * FROM norep');
    assert.notEqual(r.status, 200);
  } finally {
    await rt.stop();
  }
});
