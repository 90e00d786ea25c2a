// SPDX-License-Identifier: Apache-2.0
//
// Write-back: `INSERT INTO <dataset> … VALUES / SELECT` through /v1/sql into `mode: read_write` datasets backed
// by a real PostgreSQL and a real MariaDB that the test starts itself (lib/postgres.mjs, lib/mariadb.mjs).
// The rows must be in the source (read back with psql / the mariadb client) and in the accelerated copy at
// once (no refresh in between: the refresh interval is an hour), with every type written exactly (integers,
// decimals, text with quotes and unicode, timestamps, NULLs). A constraint violation is a 400 naming the
// dataset with the server's message and leaves both the source and the accelerated copy unchanged; a value
// that does not convert is a 400 naming the column (also when it comes late in a large write: the source's
// transaction is aborted); writes never overlap refreshes; with refresh_mode: changes the rows reach the copy
// through the change stream; read-only datasets stay protected. Needs SPICED (ctest
// sets it), PostgreSQL's server binaries and MariaDB (scripts/deps.sh installs them).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { request, startSpiced } from './lib/spiced.mjs';
import { runSpicedToExit, waitUntil } from './lib/lifecycle.mjs';
import { startPostgres } from './lib/postgres.mjs';
import { startMariadb } from './lib/mariadb.mjs';

const PG_TABLE = `
CREATE TABLE orders (
  id integer PRIMARY KEY,
  qty bigint,
  small smallint,
  price numeric(12,2),
  note text,
  tag varchar(40),
  ts timestamp,
  tstz timestamptz,
  day date,
  flag boolean,
  ratio double precision,
  uid uuid,
  doc jsonb,
  big numeric,
  tags text[],
  nums integer[],
  CONSTRAINT qty_positive CHECK (qty IS NULL OR qty >= 0)
);
INSERT INTO orders (id, qty, note) VALUES (1, 10, 'seed');
CREATE TABLE plain (id integer);
CREATE TABLE events (id integer PRIMARY KEY, note text);
INSERT INTO events VALUES (1, 'first');
`;

function yamlParams(params) {
  return Object.entries(params).map(([k, v]) => `      ${k}: ${JSON.stringify(String(v))}`).join('\n');
}

// One dataset entry; `accel` = engine name or null (federated); `rw` = mode read_write + replication.
function dataset(from, name, params, { accel = null, rw = true, changes = false } = {}) {
  const lines = [`  - from: ${from}`, `    name: ${name}`, '    params:', yamlParams(params)];
  if (rw) lines.push('    mode: read_write', '    replication:', '      enabled: true');
  if (accel) lines.push('    acceleration:', '      enabled: true', `      engine: ${accel}`, '      refresh_check_interval: 1h');
  if (changes) lines.push('      refresh_mode: changes');
  return lines.join('\n') + '\n';
}

const pod = (datasets) => `version: v1\nkind: Spicepod\nname: writetest\ndatasets:\n${datasets.join('')}`;

async function ok(rt, sql) {
  const r = await rt.sql(sql);
  assert.equal(r.status, 200, `${sql}: ${r.text}`);
  return JSON.parse(r.text);
}

async function fails(rt, sql, status, pattern) {
  const r = await rt.sql(sql);
  assert.equal(r.status, status, `${sql}: expected ${status}, got ${r.status}: ${r.text}`);
  assert.match(r.text, pattern);
  return r.text;
}

// ---- PostgreSQL ------------------------------------------------------------------------------------------

let pg;
let pgRt;

before(async () => {
  pg = await startPostgres();
  pg.psql('ALTER ROLE spice REPLICATION;', { db: 'postgres' }); // for the refresh_mode: changes dataset
  pg.psql(PG_TABLE, { user: 'spice' });
  pgRt = await startSpiced({
    spicepod: pod([
      dataset('postgres:orders', 'orders', pg.params, { accel: 'arrow' }),
      dataset('postgres:orders', 'orders_duck', pg.params, { accel: 'duckdb' }),
      dataset('postgres:orders', 'orders_fed', pg.params),
      dataset('postgres:orders', 'orders_ro', pg.params, { accel: 'arrow', rw: false }),
      dataset('postgres:plain', 'plain', pg.params, { accel: 'arrow' }),
      dataset('postgres:events', 'events', pg.params, { accel: 'arrow', changes: true }),
    ]),
  });
});

after(async () => {
  if (pgRt) await pgRt.stop();
  if (pg) await pg.stop();
});

const pgIds = () => pg.rows('SELECT id FROM orders ORDER BY id').map((r) => Number(r[0]));
const spIds = async (rt, ds) => (await ok(rt, `SELECT id FROM ${ds} ORDER BY id`)).map((r) => r.id);

test('postgres: INSERT VALUES answers the count and the rows are in the source and the accelerator at once', async () => {
  const answer = await ok(pgRt, `INSERT INTO orders VALUES
    (2, 5, -3, 12345.67, 'it''s "quoted" — ünïcødé 🚀', 'tag-a', TIMESTAMP '2024-02-29 13:45:01.123456',
     TIMESTAMPTZ '2024-03-01 10:00:00+00', DATE '1999-12-31', true, 0.25, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
     '{"k": [1, 2]}', 12345678901234567890.123456789, ['a', NULL, 'b "c", d'], []),
    (3, NULL, NULL, -0.05, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, [7, NULL, -8])`);
  assert.deepEqual(answer, [{ count: 2 }]);

  const src = pg.rows(`SELECT id, qty, small, price, note, tag, ts, tstz AT TIME ZONE 'UTC', day, flag, ratio, uid, doc::text, big,
                              tags::text, nums::text FROM orders WHERE id IN (2, 3) ORDER BY id`);
  assert.deepEqual(src[0], ['2', '5', '-3', '12345.67', 'it\'s "quoted" — ünïcødé 🚀', 'tag-a', '2024-02-29 13:45:01.123456',
    '2024-03-01 10:00:00', '1999-12-31', 't', '0.25', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2]}',
    '12345678901234567890.123456789', '{a,NULL,"b \\"c\\", d"}', '{}']);
  assert.deepEqual(src[1], ['3', null, null, '-0.05', null, null, null, null, null, null, null, null, null, null, null, '{7,NULL,-8}']);

  // The accelerated copy has them without a refresh (the interval is an hour).
  const acc = await ok(pgRt, `SELECT id, qty, small, CAST(price AS VARCHAR) AS price, note, tag, CAST(ts AS VARCHAR) AS ts,
                                day, flag, ratio, uid, doc, big, tags, nums FROM orders WHERE id IN (2, 3) ORDER BY id`);
  assert.equal(acc.length, 2);
  assert.deepEqual(acc[0], { id: 2, qty: 5, small: -3, price: '12345.67', note: 'it\'s "quoted" — ünïcødé 🚀', tag: 'tag-a',
    ts: '2024-02-29 13:45:01.123456', day: '1999-12-31', flag: true, ratio: 0.25, uid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    doc: '{"k": [1, 2]}', big: '12345678901234567890.123456789', tags: ['a', null, 'b "c", d'], nums: [] });
  assert.deepEqual(acc[1], { id: 3, qty: null, small: null, price: '-0.05', note: null, tag: null, ts: null, day: null,
    flag: null, ratio: null, uid: null, doc: null, big: null, tags: null, nums: [7, null, -8] });
  const tz = await ok(pgRt, "SELECT epoch_ms(tstz) AS ms FROM orders WHERE id = 2");
  assert.deepEqual(tz, [{ ms: Date.UTC(2024, 2, 1, 10) }]);
  assert.deepEqual(await spIds(pgRt, 'orders'), pgIds());
});

test('postgres: a column list leaves the other columns NULL; INSERT … SELECT reads the dataset itself', async () => {
  assert.deepEqual(await ok(pgRt, "INSERT INTO orders (note, id) VALUES ('listed', 10)"), [{ count: 1 }]);
  assert.deepEqual(pg.rows('SELECT id, qty, note FROM orders WHERE id = 10'), [['10', null, 'listed']]);
  assert.deepEqual(await ok(pgRt, 'SELECT id, qty, note FROM orders WHERE id = 10'), [{ id: 10, qty: null, note: 'listed' }]);
  // Parameters bind in the source query.
  const p = await pgRt.sqlJson('INSERT INTO orders (id, price, note) VALUES ($1, $2, $3)', [11, '9.99', 'param']);
  assert.equal(p.status, 200, p.text);
  assert.deepEqual(JSON.parse(p.text), [{ count: 1 }]);
  // DataFusion's DML answer: one non-nullable UInt64 column named count.
  const env = await pgRt.sql("INSERT INTO orders (id) VALUES (12)", { accept: 'application/vnd.spiceai.sql.v1+json' });
  assert.equal(env.status, 200, env.text);
  const doc = JSON.parse(env.text);
  assert.deepEqual(doc.schema.fields.map((f) => [f.name, f.data_type, f.nullable]), [['count', 'UInt64', false]]);
  assert.deepEqual(doc.data, [{ count: 1 }]);
  assert.deepEqual(pg.rows('SELECT id, price, note FROM orders WHERE id = 11'), [['11', '9.99', 'param']]);

  const r = await ok(pgRt, 'INSERT INTO orders (id, qty, note) SELECT id + 100, qty * 2, upper(note) FROM orders WHERE id IN (1, 2)');
  assert.deepEqual(r, [{ count: 2 }]);
  assert.deepEqual(pg.rows('SELECT id, qty, note FROM orders WHERE id > 100 ORDER BY id'),
    [['101', '20', 'SEED'], ['102', '10', 'IT\'S "QUOTED" — ÜNÏCØDÉ 🚀']]);
  assert.deepEqual(await spIds(pgRt, 'orders'), pgIds());
});

test('postgres: a constraint violation is a 400 naming the dataset; nothing reaches the accelerator', async () => {
  const before = await spIds(pgRt, 'orders');
  // A new row and a duplicate key in one statement: the COPY is all or nothing.
  const text = await fails(pgRt, "INSERT INTO orders (id, note) VALUES (500, 'new'), (1, 'dup')", 400, /orders/);
  assert.match(text, /duplicate key value violates unique constraint/);
  assert.deepEqual(await spIds(pgRt, 'orders'), before);
  assert.deepEqual(pgIds(), before);
  // A CHECK constraint, with its name in the message.
  await fails(pgRt, 'INSERT INTO orders (id, qty) VALUES (501, -1)', 400, /qty_positive/);
  assert.deepEqual(await spIds(pgRt, 'orders'), before);
});

test('postgres: a value that does not convert is a 400 naming the column; unknown columns are refused', async () => {
  await fails(pgRt, "INSERT INTO orders (id, qty) VALUES (600, 'lots')", 400, /column "qty" of dataset "orders"/);
  await fails(pgRt, "INSERT INTO orders (id, nope) VALUES (601, 1)", 400, /column "nope" does not exist in dataset "orders"/);
  await fails(pgRt, 'INSERT INTO orders (id, qty) VALUES (602)', 400, /target columns/);
  assert.deepEqual(pg.rows('SELECT count(*) FROM orders WHERE id >= 600'), [['0']]);
  // A bad value late in a large write aborts the COPY already under way: nothing is written anywhere.
  for (const ds of ['orders', 'orders_fed']) {
    await fails(pgRt, `INSERT INTO ${ds} (id, qty) SELECT i + 2000, CASE WHEN i = 49999 THEN 'x' ELSE '1' END FROM range(50000) t(i)`,
      400, new RegExp(`column "qty" of dataset "${ds}" has type BIGINT: cannot convert 'x'`));
    assert.deepEqual(pg.rows('SELECT count(*) FROM orders WHERE id >= 2000'), [['0']]);
  }
  assert.deepEqual(await ok(pgRt, 'SELECT count(*) AS n FROM orders WHERE id >= 2000'), [{ n: 0 }]);
});

test('postgres: duckdb-accelerated and federated datasets write too; read-only ones refuse', async () => {
  assert.deepEqual(await ok(pgRt, "INSERT INTO orders_duck (id, price, note) VALUES (700, 1.5, 'duck')"), [{ count: 1 }]);
  assert.deepEqual(await ok(pgRt, "SELECT CAST(price AS VARCHAR) AS p, note FROM orders_duck WHERE id = 700"),
    [{ p: '1.50', note: 'duck' }]);
  assert.deepEqual(await ok(pgRt, "INSERT INTO orders_fed (id, note) VALUES (701, 'fed')"), [{ count: 1 }]);
  assert.deepEqual(pg.rows('SELECT id, note FROM orders WHERE id IN (700, 701) ORDER BY id'), [['700', 'duck'], ['701', 'fed']]);
  assert.deepEqual(await ok(pgRt, 'SELECT note FROM orders_fed WHERE id = 701'), [{ note: 'fed' }]);
  await fails(pgRt, "INSERT INTO orders_ro (id) VALUES (702)", 400, /read-only/);
  assert.deepEqual(pg.rows('SELECT count(*) FROM orders WHERE id = 702'), [['0']]);
});

test('postgres: many rows in one INSERT … SELECT', async () => {
  const r = await ok(pgRt, 'INSERT INTO plain SELECT i FROM range(100000) t(i)');
  assert.deepEqual(r, [{ count: 100000 }]);
  assert.deepEqual(pg.rows('SELECT count(*), sum(id) FROM plain'), [['100000', '4999950000']]);
  assert.deepEqual(await ok(pgRt, 'SELECT count(*) AS n, sum(id) AS s FROM plain'), [{ n: 100000, s: 4999950000 }]);
});

test('postgres: writes and refreshes interleaved: the accelerated copy never loses a written row', async () => {
  // A full refresh that read the table before a write and replaced the copy after it would drop that row
  // until the next refresh (an hour away): writes and refreshes of one dataset are serialized. The table has
  // 100000 rows (previous test), so a write lands while the refresh reads; each round waits for its refresh
  // to finish (its log line) and then the copy must equal the source.
  const loads = () => (pgRt.log().match(/dataset "plain" loaded \d+ rows/g) || []).length;
  for (let i = 0; i < 5; i++) {
    const before = loads();
    const [refresh, insert] = await Promise.all([
      request(`${pgRt.url}/v1/datasets/plain/acceleration/refresh`, { method: 'POST' }),
      pgRt.sql(`INSERT INTO plain VALUES (${-1 - i})`),
    ]);
    assert.ok(refresh.status < 300, refresh.text);
    assert.equal(insert.status, 200, insert.text);
    await waitUntil('the refresh to finish', async () => loads(), (n) => n > before);
    const [[n, s]] = pg.rows('SELECT count(*), sum(id) FROM plain');
    assert.deepEqual(await ok(pgRt, 'SELECT count(*) AS n, sum(id) AS s FROM plain'), [{ n: Number(n), s: Number(s) }]);
  }
});

test('postgres: refresh_mode: changes — rows go to the source and reach the copy through the change stream', async () => {
  assert.deepEqual(await ok(pgRt, "INSERT INTO events VALUES (2, 'second'), (3, 'third')"), [{ count: 2 }]);
  assert.deepEqual(pg.rows('SELECT id, note FROM events ORDER BY id'), [['1', 'first'], ['2', 'second'], ['3', 'third']]);
  const want = JSON.stringify([{ id: 1, note: 'first' }, { id: 2, note: 'second' }, { id: 3, note: 'third' }]);
  await waitUntil('the change stream to deliver the rows', async () => (await pgRt.sql('SELECT id, note FROM events ORDER BY id')).text,
    (t) => t === want);
  await fails(pgRt, "INSERT INTO events VALUES (3, 'again')", 400, /duplicate key value violates unique constraint/);
  assert.deepEqual(pg.rows('SELECT count(*) FROM events'), [['3']]);
});

test('mode: read_write without replication.enabled is refused at start', async () => {
  const spicepod = `version: v1\nkind: Spicepod\nname: rw\ndatasets:\n  - from: postgres:orders\n    name: orders\n` +
    `    params:\n${yamlParams(pg.params)}\n    mode: read_write\n`;
  const r = await runSpicedToExit({ files: { 'spicepod.yaml': spicepod } });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /read_write requires replication.enabled: true/);
});

// ---- MySQL / MariaDB -------------------------------------------------------------------------------------

const MY_TABLE = `
CREATE TABLE items (
  id INT PRIMARY KEY,
  qty BIGINT,
  small SMALLINT UNSIGNED,
  price DECIMAL(12,2),
  note TEXT,
  tag VARCHAR(40),
  happened DATETIME(6),
  ts TIMESTAMP(6) NULL,
  day DATE,
  dur TIME(6),
  ratio DOUBLE,
  raw VARBINARY(16),
  CONSTRAINT qty_positive CHECK (qty IS NULL OR qty >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO items (id, qty, note) VALUES (1, 10, 'seed');
`;

let my;
let myRt;

async function startMy() {
  if (myRt) return;
  my = await startMariadb();
  my.sql(MY_TABLE);
  myRt = await startSpiced({
    spicepod: pod([
      dataset('mysql:items', 'items', my.params, { accel: 'arrow' }),
      dataset('mysql:items', 'items_duck', my.params, { accel: 'duckdb' }),
      dataset('mysql:items', 'items_fed', my.params),
    ]),
  });
}

after(async () => {
  if (myRt) await myRt.stop();
  if (my) await my.stop();
});

const myIds = () => my.rows('SELECT id FROM items ORDER BY id').map((r) => Number(r[0]));

test('mysql: INSERT VALUES lands in MariaDB and in the accelerator at once, every type exact', async () => {
  await startMy();
  const answer = await ok(myRt, `INSERT INTO items VALUES
    (2, 5, 65535, -12345.67, 'it''s "quoted" \\ back — ünïcødé 🚀', 'tag-a', TIMESTAMP '2024-02-29 13:45:01.123456',
     TIMESTAMPTZ '2024-03-01 10:00:00+00', DATE '1999-12-31', TIME '12:30:00.5', 0.1, '\\x00\\xFFab'::BLOB),
    (3, NULL, NULL, 0.05, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
  assert.deepEqual(answer, [{ count: 2 }]);
  const src = my.rows(`SELECT id, qty, small, price, note, tag, happened, ts, day, dur, ratio, HEX(raw) FROM items WHERE id IN (2, 3) ORDER BY id`);
  assert.deepEqual(src[0], ['2', '5', '65535', '-12345.67', 'it\'s "quoted" \\ back — ünïcødé 🚀', 'tag-a',
    '2024-02-29 13:45:01.123456', my.rows("SELECT CONVERT_TZ('2024-03-01 10:00:00.000000', '+00:00', @@session.time_zone)")[0][0],
    '1999-12-31', '12:30:00.500000', '0.1', '00FF6162']);
  assert.deepEqual(src[1], ['3', null, null, '0.05', null, null, null, null, null, null, null, null]);

  const acc = await ok(myRt, `SELECT id, qty, small, CAST(price AS VARCHAR) AS price, note, CAST(happened AS VARCHAR) AS happened,
                               epoch_ms(ts) AS ts, day, ratio FROM items WHERE id IN (2, 3) ORDER BY id`);
  assert.deepEqual(acc, [
    { id: 2, qty: 5, small: 65535, price: '-12345.67', note: 'it\'s "quoted" \\ back — ünïcødé 🚀',
      happened: '2024-02-29 13:45:01.123456', ts: Date.UTC(2024, 2, 1, 10), day: '1999-12-31', ratio: 0.1 },
    { id: 3, qty: null, small: null, price: '0.05', note: null, happened: null, ts: null, day: null, ratio: null },
  ]);
  assert.deepEqual(await spIds(myRt, 'items'), myIds());
});

test('mysql: a constraint violation is a 400 with the server message; nothing is applied anywhere', async () => {
  await startMy();
  const before = await spIds(myRt, 'items');
  const text = await fails(myRt, "INSERT INTO items (id, note) VALUES (500, 'new'), (1, 'dup')", 400, /items/);
  assert.match(text, /Duplicate entry '1'/);
  await fails(myRt, 'INSERT INTO items (id, qty) VALUES (501, -1)', 400, /qty_positive/);
  assert.deepEqual(myIds(), before);
  assert.deepEqual(await spIds(myRt, 'items'), before);
});

test('mysql: INSERT … SELECT in batches of statements, one transaction; duckdb and federated datasets', async () => {
  await startMy();
  // 30000 rows make several ~1 MiB statements; the last row collides, so the whole transaction rolls back.
  await fails(myRt, "INSERT INTO items (id, note) SELECT CASE WHEN i = 29999 THEN 1 ELSE i + 1000 END, repeat('x', 40) FROM range(30000) t(i)",
    400, /Duplicate entry/);
  assert.deepEqual(my.rows('SELECT count(*) FROM items WHERE id >= 1000'), [['0']]);
  assert.deepEqual(await ok(myRt, "INSERT INTO items (id, note) SELECT i + 1000, repeat('x', 40) FROM range(30000) t(i)"),
    [{ count: 30000 }]);
  assert.deepEqual(my.rows('SELECT count(*) FROM items WHERE id >= 1000'), [['30000']]);
  assert.deepEqual(await ok(myRt, 'SELECT count(*) AS n FROM items WHERE id >= 1000'), [{ n: 30000 }]);

  assert.deepEqual(await ok(myRt, "INSERT INTO items_duck (id, note) VALUES (800, 'duck')"), [{ count: 1 }]);
  assert.deepEqual(await ok(myRt, 'SELECT note FROM items_duck WHERE id = 800'), [{ note: 'duck' }]);
  assert.deepEqual(await ok(myRt, "INSERT INTO items_fed (id, note) VALUES (801, 'fed')"), [{ count: 1 }]);
  assert.deepEqual(await ok(myRt, 'SELECT note FROM items_fed WHERE id = 801'), [{ note: 'fed' }]);
  assert.deepEqual(my.rows('SELECT id, note FROM items WHERE id IN (800, 801) ORDER BY id'), [['800', 'duck'], ['801', 'fed']]);
});
