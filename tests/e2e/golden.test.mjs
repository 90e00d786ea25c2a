// SPDX-License-Identifier: Apache-2.0
//
// One answer everywhere (issue 4): the same customers/orders data is put into a Parquet file, a DuckDB file, a
// SQLite file, a real PostgreSQL and a real MariaDB, and one spiced serves it through every accelerator (arrow,
// duckdb memory/file, sqlite memory/file, postgres) and every federated source. Every query of tests/sql/golden.sql
// (joins, aggregates, window functions, NULLs, decimals, timestamps, unicode, empty results) must return the
// same rows on every path as on the federated Parquet file, and a cross-source join (postgres ⋈ mysql ⋈
// parquet) must equal the same join inside one source.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';

import { startSpiced, paramsYaml } from './lib/spiced.mjs';
import { startPostgres } from './lib/postgres.mjs';
import { startMariadb } from './lib/mariadb.mjs';

const BIN = dirname(process.env.SPICED ?? '');

// ---- the data: deterministic, with NULLs, unicode, decimals, timestamps ------------------------------------

const NAMES = ['Zoë Šimek', 'Łukasz Żółw', '東京商事', 'Ñandú SA', "O'Brien & Sons", 'Zora Ng', 'Ada', 'Émile'];
const COUNTRIES = ['PL', 'JP', 'FR', 'US', 'AR'];
const pad = (n) => String(n).padStart(2, '0');
const ts = (base, i) => {
  const d = new Date(Date.UTC(2024, 0, 1) + base + i * 3600 * 1000 * 13 + i * 61 * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
};
const customers = Array.from({ length: 60 }, (_, k) => {
  const id = k + 1;
  return {
    id,
    name: id <= NAMES.length ? NAMES[id - 1] : `Customer ${id}`,
    country: COUNTRIES[id % COUNTRIES.length],
    created_at: ts(-86400000 * 90, id),
    balance: id % 7 === 0 ? null : ((id * 1234.5) % 10000).toFixed(2),
    vip: id % 5 === 0 ? null : id % 3 === 0,
  };
});
const orders = Array.from({ length: 400 }, (_, k) => {
  const id = k + 1;
  const customer = id % 53 === 0 ? 3 : (id * 7) % 55 + 1; // customers 56..60 have no orders
  return {
    id,
    customer_id: customer,
    amount: (((id * 37) % 5000) / 100 + 0.05).toFixed(2),
    qty: (id % 9) + 1,
    note: id % 4 === 0 ? null : `note ${id}${id % 10 === 1 ? ' — ünïcödé' : ''}`,
    ordered_at: ts(0, id * 3),
  };
});

const CUST_COLS = ['id', 'name', 'country', 'created_at', 'balance', 'vip'];
const ORD_COLS = ['id', 'customer_id', 'amount', 'qty', 'note', 'ordered_at'];

const lit = (v, boolAs) => {
  if (v === null) return 'NULL';
  if (typeof v === 'boolean') return boolAs(v);
  if (typeof v === 'number') return String(v);
  return `'${String(v).replace(/'/g, "''")}'`;
};
const inserts = (table, cols, rows, boolAs) =>
  `INSERT INTO ${table} (${cols.join(', ')}) VALUES\n` +
  rows.map((r) => `(${cols.map((c) => lit(r[c], boolAs)).join(', ')})`).join(',\n') + ';\n';
const csvOf = (cols, rows) =>
  cols.join(',') + '\n' + rows.map((r) => cols.map((c) => {
    const v = r[c];
    if (v === null) return '';
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }).join(',')).join('\n') + '\n';

const DDL = {
  pg: `CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, country char(2) NOT NULL, created_at timestamp NOT NULL,
         balance numeric(12,2), vip boolean);
       CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, amount numeric(12,2) NOT NULL, qty int NOT NULL,
         note text, ordered_at timestamp NOT NULL);`,
  mysql: `CREATE TABLE customers (id int PRIMARY KEY, name varchar(100) NOT NULL, country char(2) NOT NULL,
            created_at datetime NOT NULL, balance decimal(12,2), vip boolean) DEFAULT CHARSET utf8mb4;
          CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL, amount decimal(12,2) NOT NULL, qty int NOT NULL,
            note varchar(200), ordered_at datetime NOT NULL) DEFAULT CHARSET utf8mb4;`,
  sqlite: `CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT NOT NULL, created_at DATETIME NOT NULL,
             balance DECIMAL(12,2), vip BOOLEAN);
           CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, amount DECIMAL(12,2) NOT NULL,
             qty INTEGER NOT NULL, note TEXT, ordered_at DATETIME NOT NULL);`,
};
const DUCK_TYPES = {
  customers: "{'id': 'INTEGER', 'name': 'VARCHAR', 'country': 'VARCHAR', 'created_at': 'TIMESTAMP', 'balance': 'DECIMAL(12,2)', 'vip': 'BOOLEAN'}",
  orders: "{'id': 'INTEGER', 'customer_id': 'INTEGER', 'amount': 'DECIMAL(12,2)', 'qty': 'INTEGER', 'note': 'VARCHAR', 'ordered_at': 'TIMESTAMP'}",
};

// ---- the paths ----------------------------------------------------------------------------------------------

function datasets(path, from, { params = null, accel = null } = {}) {
  return ['customers', 'orders'].map((t) => {
    const lines = [`  - from: ${from(t)}`, `    name: ${t[0]}_${path}`];
    if (params) lines.push('    params:', paramsYaml(params));
    if (accel) {
      lines.push('    acceleration:', '      enabled: true', `      engine: ${accel.engine}`);
      if (accel.mode) lines.push(`      mode: ${accel.mode}`);
      if (accel.params) lines.push('      params:', paramsYaml(accel.params, 8));
    }
    return lines.join('\n') + '\n';
  }).join('');
}

let dir, pg, my, rt;
const PATHS = ['parquet', 'arrow', 'duckdb_mem', 'duckdb_file', 'sqlite_mem', 'sqlite_file', 'postgres_accel', 'pg',
               'pg_arrow', 'mysql', 'mysql_duckdb', 'sqlite_src', 'duckdb_src'];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'spicec-golden-'));
  for (const [t, cols, rows] of [['customers', CUST_COLS, customers], ['orders', ORD_COLS, orders]]) {
    writeFileSync(join(dir, `${t}.csv`), csvOf(cols, rows));
    execFileSync(join(BIN, 'duckdb_exec'), [
      `COPY (SELECT * FROM read_csv('${join(dir, t)}.csv', header = true, columns = ${DUCK_TYPES[t]})) TO '${join(dir, t)}.parquet' (FORMAT parquet)`]);
    execFileSync(join(BIN, 'duckdb_exec'), ['--db', join(dir, 'golden.duckdb'),
      `CREATE TABLE ${t} AS SELECT * FROM read_parquet('${join(dir, t)}.parquet')`]);
  }
  const sqliteSql = DDL.sqlite + inserts('customers', CUST_COLS, customers, (b) => (b ? '1' : '0')) +
    inserts('orders', ORD_COLS, orders, (b) => (b ? '1' : '0'));
  execFileSync('sqlite3', [join(dir, 'golden.sqlite')], { input: sqliteSql });

  pg = await startPostgres();
  pg.psql(DDL.pg + inserts('customers', CUST_COLS, customers, (b) => (b ? 'true' : 'false')) +
    inserts('orders', ORD_COLS, orders, (b) => (b ? 'true' : 'false')) + 'GRANT SELECT ON customers, orders TO spice;');
  my = await startMariadb();
  my.sql(DDL.mysql + inserts('customers', CUST_COLS, customers, (b) => (b ? '1' : '0')) +
    inserts('orders', ORD_COLS, orders, (b) => (b ? '1' : '0')));

  const file = (t) => `file:${join(dir, t)}.parquet`;
  const pgp = { ...pg.params, pg_sslmode: 'disable' }, myp = { ...my.params, mysql_sslmode: 'disabled' };
  const spicepod = 'version: v1\nkind: Spicepod\nname: golden\nruntime:\n  results_cache:\n    enabled: false\ndatasets:\n' +
    datasets('parquet', file) +
    datasets('arrow', file, { accel: { engine: 'arrow' } }) +
    datasets('duckdb_mem', file, { accel: { engine: 'duckdb', mode: 'memory' } }) +
    datasets('duckdb_file', file, { accel: { engine: 'duckdb', mode: 'file' } }) +
    datasets('sqlite_mem', file, { accel: { engine: 'sqlite', mode: 'memory' } }) +
    datasets('sqlite_file', file, { accel: { engine: 'sqlite', mode: 'file' } }) +
    datasets('postgres_accel', file, { accel: { engine: 'postgres', params: pgp } }) +
    datasets('pg', (t) => `postgres:public.${t}`, { params: pgp }) +
    datasets('pg_arrow', (t) => `postgres:public.${t}`, { params: pgp, accel: { engine: 'arrow' } }) +
    datasets('mysql', (t) => `mysql:${t}`, { params: myp }) +
    datasets('mysql_duckdb', (t) => `mysql:${t}`, { params: myp, accel: { engine: 'duckdb' } }) +
    datasets('sqlite_src', (t) => `sqlite:${t}`, { params: { sqlite_file: join(dir, 'golden.sqlite') } }) +
    datasets('duckdb_src', (t) => `duckdb:${t}`, { params: { duckdb_open: join(dir, 'golden.duckdb') } });
  rt = await startSpiced({ spicepod, readyTimeoutMs: 120000 });
});

after(async () => {
  if (rt) await rt.stop();
  if (pg) await pg.stop();
  if (my) await my.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// ---- comparing answers ---------------------------------------------------------------------------------------

// Values as each protocol spells them: decimals may be strings or numbers, booleans true/1, timestamps with a
// 'T' or a space and optional zero fractions. Anything else must be equal as it is.
function norm(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return Number(v.toPrecision(12));
  const s = String(v);
  if (/^-?\d+(\.\d+)?$/.test(s)) return Number(Number(s).toPrecision(12));
  const m = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(\.0*)?(Z|[+-]00(:?00)?)?$/.exec(s);
  if (m) return `${m[1]} ${m[2]}`;
  return s;
}
const normRows = (rows) => rows.map((r) => Object.entries(r).map(([k, v]) => [k, norm(v)]));

async function answer(sql) {
  const r = await rt.sql(sql);
  if (r.status !== 200) throw new Error(`${r.status}: ${r.text}`);
  return normRows(JSON.parse(r.text));
}

const QUERIES = readFileSync(new URL('../sql/golden.sql', import.meta.url), 'utf8')
  .split(/^-- name: /m).slice(1)
  .map((block) => {
    const [name, ...rest] = block.split('\n');
    return { name: name.trim(), sql: rest.filter((l) => !l.startsWith('--')).join('\n').trim().replace(/;$/, '') };
  });

for (const q of QUERIES) {
  test(`golden ${q.name}: the same rows on every path`, { timeout: 60000 }, async () => {
    const on = (p) => q.sql.replaceAll('{c}', `c_${p}`).replaceAll('{o}', `o_${p}`);
    const reference = await answer(on('parquet'));
    if (q.name !== 'g07_empty_result') assert.ok(reference.length > 0, `${q.name} returns rows on the reference path`);
    else assert.equal(reference.length, 0);
    const differences = [];
    for (const p of PATHS.slice(1)) {
      let got;
      try {
        got = await answer(on(p));
      } catch (e) {
        differences.push(`${p}: ${e.message}`);
        continue;
      }
      try {
        assert.deepStrictEqual(got, reference);
      } catch {
        const i = got.findIndex((row, k) => JSON.stringify(row) !== JSON.stringify(reference[k]));
        differences.push(`${p}: ${got.length} rows vs ${reference.length}; first difference at row ${i}: ` +
          `${JSON.stringify(got[i])} vs ${JSON.stringify(reference[i])}`);
      }
    }
    assert.deepEqual(differences, [], `paths that differ from the federated Parquet file:\n${differences.join('\n')}`);
  });
}

test('a cross-source join (postgres ⋈ mysql ⋈ parquet) equals the same join inside one source', { timeout: 60000 }, async () => {
  const join3 = (c, o, c2) => `SELECT c.country, count(*) AS orders, sum(o.amount) AS amount, count(DISTINCT k.id) AS peers
    FROM ${c} c JOIN ${o} o ON o.customer_id = c.id JOIN ${c2} k ON k.country = c.country AND k.id <= 5
    GROUP BY c.country ORDER BY c.country`;
  const cross = await answer(join3('c_pg', 'o_mysql', 'c_parquet'));
  assert.ok(cross.length > 0);
  assert.deepStrictEqual(cross, await answer(join3('c_parquet', 'o_parquet', 'c_parquet')));
  assert.deepStrictEqual(cross, await answer(join3('c_duckdb_mem', 'o_sqlite_file', 'c_pg_arrow')));
});

test('a Parquet BLOB column (an Arrow binary view from the file reader) serves on every file path', { timeout: 60000 }, async () => {
  const parquet = join(dir, 'blobs.parquet');
  execFileSync(join(BIN, 'duckdb_exec'), [
    `COPY (SELECT i AS id, ('ab' || i)::BLOB AS b FROM range(5) t(i)) TO '${parquet}' (FORMAT parquet)`]);
  const ds = (name, accel) => `  - from: file:${parquet}\n    name: ${name}\n` +
    (accel ? `    acceleration:\n      enabled: true\n      engine: ${accel}\n` : '');
  const blobs = await startSpiced({ spicepod: 'version: v1\nkind: Spicepod\nname: blobs\ndatasets:\n' +
    ds('b_fed', null) + ds('b_arrow', 'arrow') + ds('b_duckdb', 'duckdb') + ds('b_sqlite', 'sqlite') });
  try {
    const want = [0, 1, 2, 3, 4].map((i) => ({ id: i, b: Buffer.from(`ab${i}`).toString('base64') }));
    for (const t of ['b_fed', 'b_arrow', 'b_duckdb', 'b_sqlite'])
      assert.deepEqual(await blobs.rows(`SELECT id, b FROM ${t} ORDER BY id`), want, t);
  } finally {
    await blobs.stop();
  }
});
