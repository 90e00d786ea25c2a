// SPDX-License-Identifier: Apache-2.0
//
// The odbc connector through unixODBC with Debian's drivers, named by the path of their library (no
// odbcinst.ini): SQLite (libsqliteodbc, over a file made by the sqlite3 CLI) and PostgreSQL (odbc-postgresql,
// against a throwaway server). Type round trips, filters pushed to the source, and the failures: a bad
// connection string (no password printed), a missing table, a source down at start (the rest of the pod
// serves; the dataset recovers when the source comes back).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startSpiced } from './lib/spiced.mjs';
import { makeFolder, removeFolder, datasetStatuses, waitUntil } from './lib/lifecycle.mjs';
import { startPostgres } from './lib/postgres.mjs';

const LIB = '/usr/lib/x86_64-linux-gnu/odbc';
const SQLITE_DRIVER = `${LIB}/libsqlite3odbc.so`;
const PG_DRIVER = `${LIB}/psqlodbcw.so`;

const rows = async (rt, sql) => {
  const r = await rt.sql(sql);
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.text}`);
  return JSON.parse(r.text);
};

const dataset = (name, table, cs, extra = '') =>
  `  - from: odbc:${table}\n    name: ${name}\n    params:\n      odbc_connection_string: "${cs}"\n${extra}`;
const pod = (datasets) => `version: v1\nkind: Spicepod\nname: odbc\ndatasets:\n${datasets.join('')}`;
const ACCEL = '    acceleration:\n      enabled: true\n      engine: duckdb\n';

let dir, sqliteCs;

before(() => {
  dir = makeFolder({ 'other.csv': 'a\n1\n' });
  const db = join(dir, 'shop.db');
  execFileSync('sqlite3', [db], {
    input: `CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, ratio DOUBLE, big BIGINT, flag BOOLEAN, born DATE,
              seen TIMESTAMP, data BLOB);
            INSERT INTO items VALUES (1, 'café ☕ 𝄞', 0.25, 9007199254740993, 1, '2024-02-29', '2024-03-01 12:34:56.789', x'6869'),
                                     (2, NULL, NULL, NULL, 0, NULL, NULL, NULL),
                                     (3, 'it''s', -1e300, -5, 1, '1969-12-31', '1970-01-01 00:00:00', x'00ff');`,
  });
  sqliteCs = `DRIVER=${SQLITE_DRIVER};Database=${db}`;
});

after(() => removeFolder(dir));

test('SQLite over ODBC: every type round-trips, federated and accelerated alike', { skip: !existsSync(SQLITE_DRIVER) }, async () => {
  const rt = await startSpiced({
    spicepod: pod([dataset('items', 'items', sqliteCs), dataset('items_acc', 'items', sqliteCs, ACCEL)]),
  });
  try {
    for (const t of ['items', 'items_acc']) {
      const got = await rows(rt, `SELECT id, name, ratio, big, flag, CAST(born AS VARCHAR) AS born,
                                         CAST(seen AS VARCHAR) AS seen, hex(data) AS data FROM ${t} ORDER BY id`);
      assert.deepEqual(got, [
        { id: 1, name: 'café ☕ 𝄞', ratio: 0.25, big: 9007199254740993, flag: true, born: '2024-02-29',
          seen: '2024-03-01 12:34:56.789', data: '6869' },
        { id: 2, name: null, ratio: null, big: null, flag: false, born: null, seen: null, data: null },
        { id: 3, name: "it's", ratio: -1e300, big: -5, flag: true, born: '1969-12-31', seen: '1970-01-01 00:00:00', data: '00FF' },
      ], t);
    }
    const types = await rows(rt, `SELECT column_name AS c, data_type AS t FROM information_schema.columns
                                  WHERE table_name = 'items' ORDER BY ordinal_position`);
    assert.deepEqual(types.map((r) => r.t), ['INTEGER', 'VARCHAR', 'DOUBLE', 'BIGINT', 'BOOLEAN', 'DATE', 'TIMESTAMP', 'BLOB']);
    assert.deepEqual(await rows(rt, 'SELECT id FROM items WHERE big < 0 AND id >= 2 LIMIT 5'), [{ id: 3 }]);
  } finally {
    await rt.stop();
  }
});

test('a bad connection string and a missing table: clear errors, no password, the rest of the pod serves', { skip: !existsSync(SQLITE_DRIVER) }, async () => {
  const secret = 'Sup3r-S3cret-pw';
  const rt = await startSpiced({
    spicepod: pod([
      dataset('good', 'items', sqliteCs, ACCEL),
      dataset('nodriver', 'items', `DRIVER=/nonexistent/libnothing.so;SERVER=db1;PWD=${secret}`, ACCEL),
      dataset('gone', 'no_such_table', sqliteCs, ACCEL),
    ]),
    ready: false,
  });
  try {
    await waitUntil('statuses', () => datasetStatuses(rt), (s) => s.good === 'Ready' && s.nodriver === 'Error' && s.gone === 'Error');
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM good'), [{ n: 3 }]);
    const log = rt.log();
    assert.match(log, /could not connect to odbc data source "DRIVER=\/nonexistent\/libnothing.so;SERVER=db1;PWD=\*\*\*" for dataset "nodriver"/);
    assert.match(log, /odbc table "no_such_table" for dataset "gone" does not exist/);
    const status = (await rt.get('/v1/datasets?status=true')).text;
    assert.ok(!log.includes(secret) && !status.includes(secret), 'the password is never printed');
  } finally {
    await rt.stop();
  }
});

test('PostgreSQL over ODBC: types, pushed filters, a server down at start and during refreshes', { timeout: 120000 }, async () => {
  if (!existsSync(PG_DRIVER)) return;
  const pg = await startPostgres();
  let rt;
  try {
    pg.psql(`CREATE TABLE orders (id int8 PRIMARY KEY, qty int2, n int4, price numeric(12,2), x float8, ok boolean,
               dt date, ts timestamp, label varchar(40), body text, raw bytea, iv interval, tm time);
             INSERT INTO orders VALUES
               (1, 3, 100000, 12345678.90, 1.5, true, '2024-01-31', '2024-01-31 23:59:59.123456', 'naïve', 'Zürich ✓', '\\x00ff10', '1 day 02:03:04', '12:34:56.789012'),
               (2, -1, -7, -0.01, -2.25, false, '1900-03-01', '1999-12-31 00:00:00', NULL, '', NULL, NULL, '00:00:00'),
               (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'x', NULL, '\\x', NULL, NULL);`, { user: pg.user });
    const cs = `DRIVER=${PG_DRIVER};SERVER=127.0.0.1;PORT=${pg.port};DATABASE=${pg.db};UID=${pg.user};PWD=${pg.password}`;
    pg.stopServer('fast');
    rt = await startSpiced({
      spicepod: pod([
        dataset('orders', 'public.orders', cs, ACCEL + '      refresh_check_interval: 1s\n'),
        dataset('orders_fed', 'orders', cs),
        `  - from: file:${join(dir, 'other.csv')}\n    name: other\n`,
      ]),
      ready: false,
    });
    await waitUntil('orders in Error', () => datasetStatuses(rt), (s) => s.orders === 'Error');
    assert.match(rt.log(), /could not connect to odbc data source "DRIVER=.*PWD=\*\*\*" for dataset "orders"/);
    assert.ok(!rt.log().includes(pg.password), 'the password is never printed');
    pg.start();
    await waitUntil('orders recovers', () => datasetStatuses(rt), (s) => s.orders === 'Ready' && s.orders_fed === 'Ready',
      { timeoutMs: 60000, intervalMs: 200 });
    const expect = [
      { id: 1, qty: 3, n: 100000, price: '12345678.90', x: 1.5, ok: true, dt: '2024-01-31', ts: '2024-01-31 23:59:59.123456',
        label: 'naïve', body: 'Zürich ✓', raw: '00FF10', iv: '1 day 02:03:04', tm: '12:34:56.789012' },
      { id: 2, qty: -1, n: -7, price: '-0.01', x: -2.25, ok: false, dt: '1900-03-01', ts: '1999-12-31 00:00:00',
        label: null, body: '', raw: null, iv: null, tm: '00:00:00' },
      { id: 3, qty: null, n: null, price: null, x: null, ok: null, dt: null, ts: null, label: 'x', body: null, raw: '', iv: null, tm: null },
    ];
    for (const t of ['orders', 'orders_fed']) {
      const got = await rows(rt, `SELECT id, qty, n, CAST(price AS VARCHAR) AS price, x, ok, CAST(dt AS VARCHAR) AS dt,
                                         CAST(ts AS VARCHAR) AS ts, label, body, hex(raw) AS raw, iv, CAST(tm AS VARCHAR) AS tm FROM ${t} ORDER BY id`);
      assert.deepEqual(got, expect, t);
    }
    const types = await rows(rt, `SELECT data_type AS t FROM information_schema.columns WHERE table_name = 'orders_fed'
                                  ORDER BY ordinal_position`);
    assert.deepEqual(types.map((r) => r.t), ['BIGINT', 'SMALLINT', 'INTEGER', 'DECIMAL(12,2)', 'DOUBLE', 'BOOLEAN', 'DATE',
      'TIMESTAMP', 'VARCHAR', 'VARCHAR', 'BLOB', 'VARCHAR', 'TIME'], 'an interval, which has no mapping, is read as text');
    // A filter on numbers is pushed to the server (its statement log shows it); the answer is the same.
    assert.deepEqual(await rows(rt, 'SELECT id FROM orders_fed WHERE n > 0 AND price > 100 ORDER BY id'), [{ id: 1 }]);
    const logged = execFileSync('cat', [pg.logPath], { encoding: 'utf8' });
    const pushed = logged.split('\n').filter((l) => l.includes('FROM "orders" WHERE') && !l.includes('1=0'));
    assert.ok(pushed.some((l) => /SELECT .*FROM "orders" WHERE .*"n" > 0.*"price" > 100/.test(l)), pushed.join('\n'));
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM other'), [{ n: 1 }], 'the rest of the pod serves');

    // The server goes away during refreshes: the last good copy serves; the next refresh after it returns succeeds.
    pg.stopServer('fast');
    await waitUntil('orders in Error again', () => datasetStatuses(rt), (s) => s.orders === 'Error', { timeoutMs: 30000 });
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM orders'), [{ n: 3 }], 'the last good copy serves');
    pg.start();
    pg.psql('INSERT INTO orders (id) VALUES (4);', { user: pg.user });
    await waitUntil('the refresh after the restart', () => rows(rt, 'SELECT count(*) AS n FROM orders'),
      (r) => r[0].n === 4, { timeoutMs: 60000, intervalMs: 200 });
  } finally {
    if (rt) await rt.stop();
    await pg.stop();
  }
});
