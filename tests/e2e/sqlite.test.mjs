// SPDX-License-Identifier: Apache-2.0
//
// The sqlite connector and the sqlite accelerator in a real spiced, on database files made with the sqlite3
// CLI: federated, arrow-accelerated and sqlite-accelerated (memory and file) copies of one table give the same
// rows over HTTP; a federated filter that matches one row reads one row out of SQLite (the debug log counts
// them); a missing file and a missing table fail only their own dataset, with messages naming them, and the
// retries pick the file up once it exists; a SIGKILL in the middle of a sqlite file refresh leaves one whole
// version, served at the next start before the source is reached, and still served when a refresh then fails
// without its source; INSERT into a read_write dataset lands in the file; PostgreSQL logical replication keeps a
// sqlite file copy equal to its table, also across a SIGKILL (resumed from the stored position, no duplicates).
// Needs SPICED (ctest sets it), the sqlite3 CLI and PostgreSQL's server binaries (scripts/deps.sh installs them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { readFileSync, renameSync } from 'node:fs';

import { request, startSpiced, sleep } from './lib/spiced.mjs';
import { datasetStatuses, kill9, makeFolder, removeFolder, startSpicedIn, waitUntil } from './lib/lifecycle.mjs';
import { startPostgres } from './lib/postgres.mjs';

const sqlite = (file, sql) => execFileSync('sqlite3', [file], { input: sql, encoding: 'utf8' });

// items(n): ids 1..n with a text group, a decimal, a unicode note (NULL every 7th row), a timestamp, a flag.
const itemsSql = (n, factor = 1) => `
CREATE TABLE items (id INTEGER PRIMARY KEY, grp TEXT, val DECIMAL(10,2), note TEXT, ts DATETIME, flag BOOLEAN);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${n})
INSERT INTO items SELECT i, 'g' || (i % 3), (i % 100) * 1.25 * ${factor}, CASE WHEN i % 7 = 0 THEN NULL ELSE 'nöte ✓ ' || i END,
  datetime(1704067200 + i * 37, 'unixepoch'), i % 2 FROM n;`;

const dataset = (name, table, file, accel = '') =>
  `  - from: sqlite:${table}\n    name: ${name}\n    params:\n      sqlite_file: ${file}\n${accel}`;

test('federated, arrow and sqlite copies answer alike; filters reach SQLite; errors name the dataset', { timeout: 60000 }, async () => {
  const dir = makeFolder({});
  sqlite(join(dir, 'src.db'), `${itemsSql(5000)}\nCREATE TABLE w (id INTEGER, d DATE, note TEXT); INSERT INTO w VALUES (1, '2024-01-31', 'a');`);
  const pod = `version: v1\nkind: Spicepod\nname: sq\ndatasets:\n${[
    dataset('fed', 'items', 'src.db'),
    dataset('ref', 'items', 'src.db', '    acceleration:\n      engine: arrow\n'),
    dataset('mem', 'items', 'src.db', '    acceleration:\n      engine: sqlite\n'),
    dataset('disk', 'items', 'src.db', '    acceleration:\n      engine: sqlite\n      mode: file\n'),
    dataset('nofile', 'items', 'missing.db', '    acceleration:\n      engine: sqlite\n'),
    dataset('notable', 'nope', 'src.db'),
    dataset('w', 'w', 'src.db', '    mode: read_write\n    replication:\n      enabled: true\n'),
  ].join('')}`;
  const rt = await startSpiced({ spicepod: pod, files: { 'src.db': readFileSync(join(dir, 'src.db')) },
                                 env: { SPICED_LOG: 'debug' }, ready: false });
  try {
    const statuses = await waitUntil('fed, ref, mem and disk Ready, nofile and notable in Error', () => datasetStatuses(rt),
      (s) => ['fed', 'ref', 'mem', 'disk'].every((d) => s[d] === 'Ready') && s.nofile === 'Error' && s.notable === 'Error',
      { timeoutMs: 45000, intervalMs: 100 });
    assert.equal(statuses.fed, 'Ready');
    const log = rt.log();
    assert.match(log, /could not open sqlite file "missing\.db" for dataset "nofile"/);
    assert.match(log, /sqlite table "nope" does not exist in file "src\.db" \(dataset "notable"\)/);
    // The retries find the file once it exists.
    execFileSync('cp', [join(rt.dir, 'src.db'), join(rt.dir, 'missing.db')]);
    await waitUntil('nofile Ready once its file exists', () => datasetStatuses(rt), (s) => s.nofile === 'Ready',
      { timeoutMs: 40000, intervalMs: 200 });
    assert.deepEqual(await rt.rows('SELECT count(*) AS n FROM nofile'), [{ n: 5000 }]);

    const queries = [
      'SELECT grp, count(*) AS n, sum(val) AS s, min(note) AS lo, max(ts) AS hi FROM {t} GROUP BY grp ORDER BY grp',
      'SELECT id, note FROM {t} WHERE note IS NULL AND id < 50 ORDER BY id',
      "SELECT id, val FROM {t} WHERE note = 'nöte ✓ 1234'",
      'SELECT a.id, b.grp FROM {t} a JOIN {t} b ON a.id = b.id + 1 WHERE a.id < 20 AND b.flag ORDER BY a.id',
      'SELECT id, sum(val) OVER (PARTITION BY grp ORDER BY id) AS running FROM {t} WHERE id <= 12 ORDER BY id',
      'SELECT * FROM {t} WHERE id = -1',
    ];
    for (const q of queries) {
      const want = await rt.rows(q.replaceAll('{t}', 'ref'));
      for (const t of ['fed', 'mem', 'disk']) assert.deepEqual(await rt.rows(q.replaceAll('{t}', t)), want, `${q} on ${t}`);
    }

    // One matching row is one row read from SQLite, federated and accelerated.
    for (const t of ['fed', 'disk']) {
      const mark = rt.log().length;
      assert.deepEqual(await rt.rows(`SELECT grp FROM ${t} WHERE id = 4321`), [{ grp: 'g1' }]);
      const lines = await waitUntil(`the read of ${t} in the debug log`, () => rt.log().slice(mark),
        (l) => new RegExp(`dataset "${t}": \\d+ rows read from sqlite`).test(l));
      assert.match(lines, /WHERE \("id" = 4321\)/);
      assert.match(lines, new RegExp(`dataset "${t}": 1 rows read from sqlite`));
    }
    // A read_write dataset writes INSERTs into the file, dates as the text SQLite's date functions read.
    const ins = await rt.sql("INSERT INTO w VALUES (2, DATE '2024-03-01', 'ünï')");
    assert.equal(ins.status, 200, ins.text);
    assert.equal(sqlite(join(rt.dir, 'src.db'), 'SELECT id, d, note FROM w ORDER BY id;'), '1|2024-01-31|a\n2|2024-03-01|ünï\n');
    assert.deepEqual(await rt.rows('SELECT id, d FROM w ORDER BY id'), [{ id: 1, d: '2024-01-31' }, { id: 2, d: '2024-03-01' }]);

    assert.deepEqual(await rt.stop(), { code: 0, signal: null }, 'a clean exit (and no leak under ASan)');
  } finally {
    await rt.stop();
    removeFolder(dir);
  }
});

test('SIGKILL during a sqlite file refresh leaves one whole version, served at once after the restart', { timeout: 60000 }, async (t) => {
  const N = { A: 300000, B: 350000 };
  const dir = makeFolder({
    'spicepod.yaml': `version: v1\nkind: Spicepod\nname: crash\ndatasets:\n${dataset('big', 'items', 'src.db',
      '    acceleration:\n      engine: sqlite\n      mode: file\n')}`,
  });
  sqlite(join(dir, 'A.db'), itemsSql(N.A, 1));
  sqlite(join(dir, 'B.db'), itemsSql(N.B, 2));
  execFileSync('cp', [join(dir, 'A.db'), join(dir, 'src.db')]);
  const count = async (rt) => (await rt.rows('SELECT count(*) AS n FROM big'))[0].n;
  let rt;
  try {
    rt = await startSpicedIn(dir, { readyTimeoutMs: 45000 });
    assert.equal(await count(rt), N.A);
    execFileSync('cp', [join(dir, 'B.db'), join(dir, 'src.db.tmp')]);
    renameSync(join(dir, 'src.db.tmp'), join(dir, 'src.db'));
    const refresh = await request(`${rt.url}/v1/datasets/big/acceleration/refresh`, { method: 'POST' });
    assert.equal(refresh.status, 201);
    const seen = await waitUntil('the refresh to start or finish', async () => ({ s: (await datasetStatuses(rt)).big, n: await count(rt) }),
      ({ s, n }) => s === 'Refreshing' || n === N.B, { timeoutMs: 20000, intervalMs: 10 });
    if (seen.s === 'Refreshing') await sleep(150);
    assert.equal((await kill9(rt)).signal, 'SIGKILL');
    t.diagnostic(`killed while ${seen.s === 'Refreshing' ? 'refreshing' : 'already refreshed'}`);

    // The source is gone at the restart: the committed copy serves by itself.
    renameSync(join(dir, 'src.db'), join(dir, 'src.db.away'));
    rt = await startSpicedIn(dir, { readyTimeoutMs: 30000 });
    const n = await count(rt);
    assert.ok(n === N.A || n === N.B, `after the kill the copy holds ${n} rows, neither version`);
    assert.match(rt.log(), new RegExp(`dataset "big" serving ${n} rows from its file accelerator`));
    const sum = (await rt.rows('SELECT sum(val) AS s FROM big'))[0].s;
    const factor = n === N.A ? 1 : 2;
    const rows = await rt.rows(`SELECT count(*) AS bad FROM big WHERE val <> (id % 100) * 1.25 * ${factor}`);
    assert.equal(rows[0].bad, 0, `rows of both versions mixed (sum ${sum})`);
    // A refresh without its source fails the dataset; the copy keeps serving.
    assert.equal((await request(`${rt.url}/v1/datasets/big/acceleration/refresh`, { method: 'POST' })).status, 201);
    await waitUntil('big in Error after a refresh without its source', () => datasetStatuses(rt), (s) => s.big === 'Error',
      { timeoutMs: 20000, intervalMs: 50 });
    assert.equal(await count(rt), n);
    assert.deepEqual(await rt.stop(), { code: 0, signal: null }, 'a clean exit (and no leak under ASan)');
  } finally {
    if (rt) await rt.stop();
    removeFolder(dir);
  }
});

test('refresh_mode: changes from PostgreSQL into a sqlite file copy, resumed after SIGKILL', { timeout: 60000 }, async () => {
  const pg = await startPostgres({ user: 'cdc_owner', replication: true });
  const q = (sql) => pg.psql(sql, { user: 'cdc_owner' });
  q(`CREATE TABLE kv (id int PRIMARY KEY, name text, price numeric(10,2));
     INSERT INTO kv SELECT g, 'n' || g, g * 1.25 FROM generate_series(1, 300) g;`);
  const params = Object.entries(pg.params).map(([k, v]) => `      ${k}: ${JSON.stringify(String(v))}`).join('\n');
  const dir = makeFolder({
    'spicepod.yaml': `version: v1\nkind: Spicepod\nname: cdc\ndatasets:\n  - from: postgres:kv\n    name: kv\n    params:\n${params}\n` +
      '    acceleration:\n      engine: sqlite\n      mode: file\n      refresh_mode: changes\n',
  });
  const source = () => pg.rows('SELECT id, name, price::text FROM kv ORDER BY id').map((r) => r.map((v) => (v === '' ? null : v)));
  const copy = async (rt) => (await rt.rows('SELECT id, name, CAST(price AS VARCHAR) AS p FROM kv ORDER BY id'))
    .map((o) => [String(o.id), o.name, o.p === null ? null : String(o.p)]);
  const converges = (rt, what) => waitUntil(what, () => copy(rt), (rows) => JSON.stringify(rows) === JSON.stringify(source()),
    { timeoutMs: 20000, intervalMs: 100 });
  let rt;
  try {
    rt = await startSpicedIn(dir, { readyTimeoutMs: 30000 });
    await converges(rt, 'the initial load');
    q(`BEGIN; UPDATE kv SET name = 'u' || id WHERE id % 10 = 0; DELETE FROM kv WHERE id % 7 = 0;
       INSERT INTO kv SELECT g, NULL, 2 FROM generate_series(301, 350) g; UPDATE kv SET id = id + 1000 WHERE id = 5; COMMIT;`);
    await converges(rt, 'the first changes');
    assert.equal((await kill9(rt)).signal, 'SIGKILL');
    q(`DELETE FROM kv WHERE id > 340; UPDATE kv SET price = 0.01 WHERE id < 20; INSERT INTO kv VALUES (-1, 'neg', -1.5);`);
    rt = await startSpicedIn(dir, { readyTimeoutMs: 30000 });
    await converges(rt, 'the changes made while spiced was down');
    const [d] = await rt.rows('SELECT count(*) - count(DISTINCT id) AS d FROM kv');
    assert.equal(Number(d.d), 0, 'no duplicate keys');
    assert.match(rt.log(), /dataset "kv" serving \d+ rows from its file accelerator/);
    assert.doesNotMatch(rt.log(), /dataset "kv" loaded/, 'resumed from the stored position, not loaded again');
    assert.deepEqual(await rt.stop(), { code: 0, signal: null });
  } finally {
    if (rt) await rt.stop();
    await pg.stop();
    removeFolder(dir);
  }
});

test('a query on datasets of one sqlite accelerator file runs in SQLite whole, with the answer the engine gives', { timeout: 60000 }, async () => {
  const dir = makeFolder({});
  sqlite(join(dir, 'src.db'), `${itemsSql(3000)}
    CREATE TABLE groups (grp TEXT PRIMARY KEY, label TEXT, rank INTEGER, weight DOUBLE);
    INSERT INTO groups VALUES ('g0', 'Zero', 3, 0.5), ('g1', 'one', 1, 1.25), ('g2', 'Two', NULL, 2.0), ('g9', 'nine', 9, NULL);`);
  const accel = (extra = '') => `    acceleration:\n      engine: sqlite\n      mode: file\n      params:\n        sqlite_file: shared.sqlite\n${extra}`;
  const ref = '    acceleration:\n      engine: arrow\n';
  const pod = `version: v1\nkind: Spicepod\nname: sqw\ndatasets:\n${[
    dataset('items_s', 'items', 'src.db', accel()), dataset('groups_s', 'groups', 'src.db', accel()),
    dataset('items_a', 'items', 'src.db', ref), dataset('groups_a', 'groups', 'src.db', ref),
    dataset('groups_off', 'groups', 'src.db', accel('        disable_query_push_down: true\n').replace('shared.sqlite', 'off.sqlite')),
  ].join('')}`;
  const rt = await startSpiced({ spicepod: pod, files: { 'src.db': readFileSync(join(dir, 'src.db')) }, env: { SPICED_LOG: 'debug' } });
  try {
    const whole = [
      `SELECT g.label, count(*) AS n, avg(i.id) AS mean, min(i.note) AS lo, sum(g.weight) AS w FROM {i} i JOIN {g} g ON g.grp = i.grp
         WHERE i.flag AND i.id % 5 <> 0 GROUP BY g.label HAVING count(*) > 10 ORDER BY g.label`,
      `SELECT grp, label, rank FROM {g} WHERE label < 'o' OR rank IS NULL ORDER BY rank DESC, grp`,
      `SELECT id, id / 4 AS q, note FROM {i} WHERE note LIKE '%✓ 12_' ORDER BY id LIMIT 3 OFFSET 1`,
      `SELECT label FROM {g} WHERE grp IN (SELECT grp FROM {i} WHERE id < 3) ORDER BY 1`,
      `SELECT grp, count(DISTINCT id % 10) AS k FROM {i} LEFT JOIN {g} USING (grp) GROUP BY grp ORDER BY grp NULLS FIRST`,
    ];
    for (const q of whole) {
      const mark = rt.log().length;
      const got = await rt.rows(q.replaceAll('{i}', 'items_s').replaceAll('{g}', 'groups_s'));
      assert.deepEqual(got, await rt.rows(q.replaceAll('{i}', 'items_a').replaceAll('{g}', 'groups_a')), q);
      assert.ok(got.length > 0, q);
      assert.match(rt.log().slice(mark), /sqlite accelerator runs the whole query: SELECT /, q);
    }
    // Decimal and timestamp columns are stored as doubles and integers there: such queries stay in the engine.
    for (const q of ['SELECT grp, sum(val) AS s FROM {i} GROUP BY grp ORDER BY grp', 'SELECT max(ts) AS t FROM {i}', 'SELECT * FROM {i} WHERE id < 5 ORDER BY id']) {
      const mark = rt.log().length;
      assert.deepEqual(await rt.rows(q.replace('{i}', 'items_s').replace('{g}', 'groups_s')),
                       await rt.rows(q.replace('{i}', 'items_a').replace('{g}', 'groups_a')), q);
      assert.doesNotMatch(rt.log().slice(mark), /runs the whole query/, q);
    }
    // disable_query_push_down: the engine runs it (filters still reach SQLite table by table).
    const mark = rt.log().length;
    assert.deepEqual(await rt.rows("SELECT label FROM groups_off WHERE rank = 1"), [{ label: 'one' }]);
    assert.doesNotMatch(rt.log().slice(mark), /runs the whole query/);
  } finally {
    await rt.stop();
    removeFolder(dir);
  }
});
