// SPDX-License-Identifier: Apache-2.0
//
// The postgres accelerator against a real PostgreSQL (tests/e2e/lib/postgres.mjs: every statement is in the
// server log). A CSV dataset and a postgres-sourced one (decimals, timestamptz, bytea, arrays) accelerated into
// PostgreSQL answer like the arrow accelerator's copies; a filtered query sends its WHERE to the server; full
// refreshes under concurrent queries only ever show the old or the new version; a restart serves the copy with
// the source file gone, a second spiced sharing the database serves it too (and sees the other's refreshes);
// append with primary_key + on_conflict upsert updates rows in place; retention deletes in PostgreSQL; a change
// stream is applied by key and resumed after a restart; a server down at start and a failed refresh leave things
// consistent; INSERT into a read_write dataset reaches the source and the copy; a replica with a read-only role
// serves the copy across the writer's swaps.
// Needs SPICED (ctest sets it) and the PostgreSQL server binaries (scripts/deps.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rmSync, writeFileSync } from 'node:fs';

import { request } from './lib/spiced.mjs';
import { datasetStatuses, makeFolder, removeFolder, startSpicedIn, waitUntil, writeFileAtomic } from './lib/lifecycle.mjs';
import { startPostgres } from './lib/postgres.mjs';

const indent = (params, n) => Object.entries(params).map(([k, v]) => `${' '.repeat(n)}${k}: ${JSON.stringify(String(v))}`).join('\n');

// items.csv: id, a group, a double, unicode text with NULLs (every 7th row empty), a timestamp, a flag.
function itemsCsv(n, factor = 1) {
  const lines = ['id,grp,val,note,ts,flag'];
  for (let i = 1; i <= n; i++) {
    const ts = new Date(Date.UTC(2024, 0, 1) + i * 37000).toISOString().replace('T', ' ').slice(0, 19);
    lines.push(`${i},g${i % 3},${((i % 100) * 1.25 * factor).toFixed(2)},${i % 7 === 0 ? '' : `nöte ✓ ${i}`},${ts},${i % 2 === 1}`);
  }
  return lines.join('\n') + '\n';
}

const accel = (engine, pg, extra = '') =>
  engine === 'arrow'
    ? '    acceleration:\n      engine: arrow\n'
    : `    acceleration:\n      engine: postgres\n      params:\n${indent(pg.params, 8)}\n${extra}`;

function postRefresh(rt, name) {
  return request(`${rt.url}/v1/datasets/${name}/acceleration/refresh`, { method: 'POST' });
}

test('postgres copies answer like arrow ones, push filters, and refresh atomically', { timeout: 180000 }, async (t) => {
  const pg = await startPostgres();
  pg.psql(`CREATE TABLE typed (id int PRIMARY KEY, amount numeric(12,2), big numeric(30,8), happened timestamptz, d date,
             tm time, raw bytea, tags text[], note text);
           INSERT INTO typed SELECT i, (i * 1.5)::numeric(12,2), (i * 12345678.12345678)::numeric(30,8),
             timestamptz '2024-03-01 12:00:00+00' + i * interval '1 hour', date '2024-01-01' + i, time '10:00' + i * interval '1 minute',
             decode(lpad(to_hex(i), 4, '0'), 'hex'), ARRAY['t' || i, NULL, 'ü'], CASE WHEN i % 5 = 0 THEN NULL ELSE 'ñ ' || i END
           FROM generate_series(1, 500) i;
           ALTER TABLE typed OWNER TO spice;`);
  const dir = makeFolder({ 'items.csv': itemsCsv(5000) });
  const pgsrc = indent(pg.params, 6);
  writeFileSync(join(dir, 'spicepod.yaml'), `version: v1
kind: Spicepod
name: pgacc
datasets:
  - from: file:items.csv
    name: ref
${accel('arrow', pg)}  - from: file:items.csv
    name: pgc
${accel('postgres', pg, '      indexes:\n        grp: enabled\n')}  - from: postgres:typed
    name: typed_ref
    params:
${pgsrc}
${accel('arrow', pg)}  - from: postgres:typed
    name: typed_pg
    params:
${pgsrc}
${accel('postgres', pg)}`);
  const rt = await startSpicedIn(dir);
  try {
    const queries = [
      'SELECT grp, count(*) AS n, sum(val) AS s, min(note) AS lo, max(ts) AS hi FROM {t} GROUP BY grp ORDER BY grp',
      'SELECT id, note FROM {t} WHERE note IS NULL AND id < 50 ORDER BY id',
      "SELECT id, val FROM {t} WHERE note = 'nöte ✓ 1234'",
      'SELECT a.id, b.grp FROM {t} a JOIN {t} b ON a.id = b.id + 1 WHERE a.id < 20 AND b.flag ORDER BY a.id',
      'SELECT id, sum(val) OVER (PARTITION BY grp ORDER BY id) AS running FROM {t} WHERE id <= 12 ORDER BY id',
      'SELECT * FROM {t} WHERE id BETWEEN 100 AND 103 ORDER BY id',
      'SELECT * FROM {t} WHERE id = -1',
    ];
    for (const q of queries)
      assert.deepEqual(await rt.rows(q.replaceAll('{t}', 'pgc')), await rt.rows(q.replaceAll('{t}', 'ref')), q);
    const typed = [
      'SELECT * FROM {t} ORDER BY id LIMIT 7',
      'SELECT sum(amount) AS a, sum(big) AS b, min(happened) AS lo, max(happened) AS hi, count(note) AS n FROM {t}',
      "SELECT id, amount, tags FROM {t} WHERE happened >= TIMESTAMPTZ '2024-03-10 00:00:00+00' AND amount < 250 ORDER BY id",
      "SELECT id FROM {t} WHERE note = 'ñ 42'",
    ];
    for (const q of typed)
      assert.deepEqual(await rt.rows(q.replaceAll('{t}', 'typed_pg')), await rt.rows(q.replaceAll('{t}', 'typed_ref')), q);

    // The copy is a table of its own, with its index and checkpoint row.
    assert.equal(pg.psql('SELECT count(*) FROM public.pgc').trim(), '5000');
    assert.match(pg.psql("SELECT indexdef FROM pg_indexes WHERE tablename = 'pgc'"), /\(grp\)/);
    assert.equal(pg.psql("SELECT rows FROM public.spice_sys_dataset_checkpoint WHERE dataset_name = 'pgc'").trim(), '5000');
    assert.equal(pg.psql("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.typed_pg'::regclass AND attname = 'amount'").trim(),
      'numeric(12,2)');

    // The WHERE and the projection reach PostgreSQL.
    const mark = pg.log().length;
    assert.deepEqual(await rt.rows('SELECT grp FROM pgc WHERE id = 4321'), [{ grp: 'g1' }]);
    const stmt = pg.log().slice(mark).split('\n').find((l) => /COPY \(SELECT .*"public"\."pgc"/.test(l));
    assert.ok(stmt, `no COPY of public.pgc in the server log:\n${pg.log().slice(mark)}`);
    assert.match(stmt, /SELECT (?:"id", )?"grp" FROM "public"\."pgc" WHERE \("id" = 4321\)\) TO STDOUT/);

    // Full refreshes under concurrent queries: every answer is version A or version B, never empty or partial.
    const versions = [{ n: 5000, text: itemsCsv(5000) }, { n: 7000, text: itemsCsv(7000, 2) }];
    const sumOf = (n, factor) => { let s = 0; for (let i = 1; i <= n; i++) s += Math.round((i % 100) * 125 * factor); return s / 100; };
    const want = [{ n: 5000, s: sumOf(5000, 1) }, { n: 7000, s: sumOf(7000, 2) }];
    const stop = { now: false };
    const bad = [];
    const seen = new Set();
    let answers = 0;
    const client = async () => {
      while (!stop.now) {
        const r = await rt.sql('SELECT count(*) AS n, sum(val) AS s FROM pgc');
        answers++;
        if (r.status !== 200) { bad.push(`HTTP ${r.status}: ${r.text}`); continue; }
        const [row] = JSON.parse(r.text);
        const hit = want.findIndex((w) => w.n === row.n && Math.abs(w.s - row.s) < 1e-3);
        if (hit < 0) bad.push(r.text);
        else seen.add(hit);
      }
    };
    const clients = [client(), client(), client()];
    for (const round of [1, 0, 1, 0, 1]) {
      writeFileAtomic(join(dir, 'items.csv'), versions[round].text);
      assert.equal((await postRefresh(rt, 'pgc')).status, 201);
      await waitUntil(`pgc serving version ${round}`, () => rt.rows('SELECT count(*) AS n FROM pgc'), (r) => r[0].n === want[round].n,
        { timeoutMs: 30000 });
    }
    stop.now = true;
    await Promise.all(clients);
    t.diagnostic(`${answers} answers during refreshes`);
    assert.deepEqual(bad.slice(0, 5), [], `${bad.length} bad answers`);
    assert.deepEqual([...seen].sort(), [0, 1]);
  } finally {
    await rt.stop();
    removeFolder(dir);
    await pg.stop();
  }
});

test('restart and a second replica serve the shared copy; append upserts by primary key', { timeout: 180000 }, async () => {
  const pg = await startPostgres();
  const pod = `version: v1
kind: Spicepod
name: shared
datasets:
  - from: file:items.csv
    name: shared
${accel('postgres', pg)}  - from: file:up.csv
    name: up
${accel('postgres', pg, '      refresh_mode: append\n      primary_key: id\n      on_conflict:\n        id: upsert\n')}  - from: file:ret.csv
    name: ret
    time_column: ts
${accel('postgres', pg, '      retention_check_enabled: true\n      retention_period: 1d\n      retention_check_interval: 1s\n')}`;
  const up1 = 'id,v,label\n1,10,one\n2,20,two\n3,30,three\n3,31,three again\n';
  const up2 = 'id,v,label\n2,200,TWO\n3,300,\n4,400,four\n4,401,four again\n';
  const ret = 'id,ts\n1,2001-01-01 00:00:00\n2,2099-01-01 00:00:00\n3,2002-06-01 12:00:00\n4,2098-01-01 00:00:00\n';
  const one = makeFolder({ 'spicepod.yaml': pod, 'items.csv': itemsCsv(3000), 'up.csv': up1, 'ret.csv': ret });
  const two = makeFolder({ 'spicepod.yaml': pod });
  let rt1 = await startSpicedIn(one);
  let rt2;
  try {
    assert.deepEqual(await rt1.rows('SELECT count(*) AS n FROM shared'), [{ n: 3000 }]);
    // The first load already keeps one row per key (upsert: the last one).
    assert.deepEqual(await rt1.rows('SELECT id, v FROM up ORDER BY id'), [{ id: 1, v: 10 }, { id: 2, v: 20 }, { id: 3, v: 31 }]);
    // Append + upsert: changed rows replaced, new ones added, a key twice in one batch keeps the last row.
    writeFileAtomic(join(one, 'up.csv'), up2);
    assert.equal((await postRefresh(rt1, 'up')).status, 201);
    await waitUntil('the upsert applied', () => rt1.rows('SELECT * FROM up ORDER BY id'), (r) => r.length === 4 && r[1].v === 200,
      { timeoutMs: 30000 });
    assert.deepEqual(await rt1.rows('SELECT id, v, label FROM up ORDER BY id'),
      [{ id: 1, v: 10, label: 'one' }, { id: 2, v: 200, label: 'TWO' }, { id: 3, v: 300, label: null }, { id: 4, v: 401, label: 'four again' }]);
    // The checkpoint counts only the new rows of an upsert.
    assert.equal(pg.psql("SELECT rows FROM spice_sys_dataset_checkpoint WHERE dataset_name = 'up'").trim(), '4');

    // Retention deletes the old rows in PostgreSQL.
    await waitUntil('retention applied', () => rt1.rows('SELECT id FROM ret ORDER BY id'), (r) => r.length === 2, { timeoutMs: 30000 });
    assert.deepEqual(await rt1.rows('SELECT id FROM ret ORDER BY id'), [{ id: 2 }, { id: 4 }]);
    assert.match(pg.log(), /DELETE FROM "public"\."ret" WHERE \("ts" < '/);
    assert.equal(pg.psql("SELECT rows FROM spice_sys_dataset_checkpoint WHERE dataset_name = 'ret'").trim(), '2');

    // Restart with the source file gone: the copy in PostgreSQL is served at once.
    await rt1.stop();
    rmSync(join(one, 'items.csv'));
    rt1 = await startSpicedIn(one);
    assert.deepEqual(await rt1.rows('SELECT count(*) AS n, count(DISTINCT id) AS d FROM shared'), [{ n: 3000, d: 3000 }]);
    assert.match(rt1.log(), /dataset "shared" serving 3000 rows from its file accelerator/);
    // A second spiced (without the file) sharing the database answers from the same copy…
    rt2 = await startSpicedIn(two);
    assert.deepEqual(await rt2.rows('SELECT count(*) AS n FROM shared'), [{ n: 3000 }]);
    assert.deepEqual(await rt2.rows('SELECT id, v FROM up ORDER BY id'), await rt1.rows('SELECT id, v FROM up ORDER BY id'));
    // …and sees what the other one's refresh wrote.
    writeFileSync(join(one, 'items.csv'), itemsCsv(1200));
    assert.equal((await postRefresh(rt1, 'shared')).status, 201);
    await waitUntil('replica two sees the refresh of replica one', () => rt2.rows('SELECT count(*) AS n FROM shared'),
      (r) => r[0].n === 1200, { timeoutMs: 30000 });
    const statuses = await datasetStatuses(rt2);
    assert.equal(statuses.shared, 'Ready');
    // Both refresh at once, from different files: their swaps take turns (advisory lock), both succeed, and
    // both replicas then serve the same complete version.
    writeFileSync(join(one, 'items.csv'), itemsCsv(1500));
    writeFileSync(join(two, 'items.csv'), itemsCsv(1700));
    const marks = [rt1.log().length, rt2.log().length];
    const posts = await Promise.all([postRefresh(rt1, 'shared'), postRefresh(rt2, 'shared')]);
    assert.deepEqual(posts.map((r) => r.status), [201, 201]);
    for (const [i, rt] of [rt1, rt2].entries())
      await waitUntil(`replica ${i + 1}'s refresh done`, async () => rt.log().slice(marks[i]), (l) => /dataset "shared" loaded (1500|1700) rows/.test(l),
        { timeoutMs: 30000 });
    const [a, b] = [await rt1.rows('SELECT count(*) AS n FROM shared'), await rt2.rows('SELECT count(*) AS n FROM shared')];
    assert.deepEqual(a, b);
    assert.ok([1500, 1700].includes(a[0].n), JSON.stringify(a));
    assert.doesNotMatch(rt1.log() + rt2.log(), /could not write dataset "shared"/);
  } finally {
    await rt1.stop();
    if (rt2) await rt2.stop();
    removeFolder(one);
    removeFolder(two);
    await pg.stop();
  }
});

test('a change stream applied to a postgres copy in another schema, resumed after a restart', { timeout: 180000 }, async () => {
  const pg = await startPostgres({ replication: true });
  pg.psql(`CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), at timestamptz);
           INSERT INTO items SELECT g, 'n' || g, g * 1.25, '2024-01-01'::timestamptz + g * interval '1 min' FROM generate_series(1, 300) g;
           ALTER TABLE items OWNER TO spice;`);
  const writer = pg.session({ user: 'spice' });
  const params = { ...pg.params, pg_schema: 'acc' };
  const src = indent(pg.params, 6);
  const dir = makeFolder({ 'spicepod.yaml': `version: v1
kind: Spicepod
name: cdc
datasets:
  - from: postgres:items
    name: items
    params:
${src}
    acceleration:
      engine: postgres
      refresh_mode: changes
      params:
${indent(params, 8)}
` });
  const copyEqualsSource = async (rt) => {
    const want = pg.rows('SELECT id, name, price FROM items ORDER BY id').map(([id, name, price]) => ({ id: Number(id), name, price: Number(price) }));
    return waitUntil('the copy equal to the table', async () => (await rt.rows('SELECT id, name, price FROM items ORDER BY id'))
      .map((r) => ({ ...r, price: Number(r.price) })), (got) => JSON.stringify(got) === JSON.stringify(want), { timeoutMs: 30000 });
  };
  let rt = await startSpicedIn(dir);
  try {
    await copyEqualsSource(rt);
    await writer.query(`BEGIN; UPDATE items SET price = price * 2 WHERE id % 3 = 0; DELETE FROM items WHERE id % 10 = 0;
                        INSERT INTO items VALUES (1001, 'new ✓', 9.99, now()); COMMIT;`);
    await writer.query("UPDATE items SET id = 2000, name = 'moved' WHERE id = 7;");
    await copyEqualsSource(rt);
    assert.match(pg.psql("SELECT stream_position FROM acc.spice_sys_dataset_checkpoint WHERE dataset_name = 'items'"), /^[0-9A-F]+\/[0-9A-F]+/);
    assert.equal(pg.psql('SELECT count(*) FROM acc.items').trim(), pg.psql('SELECT count(*) FROM items').trim());
    assert.equal(pg.psql("SELECT rows FROM acc.spice_sys_dataset_checkpoint WHERE dataset_name = 'items'").trim(),
      pg.psql('SELECT count(*) FROM items').trim());
    // Stopped, changed meanwhile, started again: the stream resumes from the stored position.
    await rt.stop();
    await writer.query("DELETE FROM items WHERE id < 20; UPDATE items SET name = 'later' WHERE id = 1001;");
    rt = await startSpicedIn(dir);
    await copyEqualsSource(rt);
    assert.equal(pg.psql('SELECT count(*) - count(DISTINCT id) FROM acc.items').trim(), '0');
    await waitUntil('the checkpoint count equal to the table', () => pg.psql("SELECT rows FROM acc.spice_sys_dataset_checkpoint WHERE dataset_name = 'items'").trim(),
      (n) => n === pg.psql('SELECT count(*) FROM items').trim());
  } finally {
    await rt.stop();
    await writer.close();
    removeFolder(dir);
    await pg.stop();
  }
});

test('an accelerator server that is down at start: spiced starts, and the dataset loads once it answers', { timeout: 120000 }, async () => {
  const pg = await startPostgres();
  pg.stopServer();
  const dir = makeFolder({ 'items.csv': itemsCsv(100), 'strict.csv': 'id,v\n1,a\n2,b\n', 'spicepod.yaml': `version: v1
kind: Spicepod
name: later
datasets:
  - from: file:items.csv
    name: later
${accel('postgres', pg)}  - from: file:strict.csv
    name: strict
${accel('postgres', pg, '      primary_key: id\n')}` });
  const rt = await startSpicedIn(dir, { ready: false });
  try {
    await waitUntil('the warning about the accelerator', async () => rt.log(), (l) => /could not connect to postgres server "127\.0\.0\.1:\d+" for dataset "later"/.test(l),
      { timeoutMs: 30000 });
    const before = await waitUntil('the HTTP API up', () => datasetStatuses(rt), () => true, { timeoutMs: 30000 });
    assert.notEqual(before.later, 'Ready');
    const r = await rt.sql('SELECT count(*) FROM later');
    assert.notEqual(r.status, 200);
    pg.start();
    await waitUntil('later Ready once the server answers', () => datasetStatuses(rt), (s) => s.later === 'Ready', { timeoutMs: 60000, intervalMs: 200 });
    assert.deepEqual(await rt.rows('SELECT count(*) AS n FROM later'), [{ n: 100 }]);
    assert.doesNotMatch(rt.log(), /pg_pass|sp1ce-Secret/);
    // A refresh that fails (a duplicate primary key) leaves the previous copy as it was.
    await waitUntil('strict Ready', () => datasetStatuses(rt), (s) => s.strict === 'Ready', { timeoutMs: 60000, intervalMs: 200 });
    writeFileAtomic(join(dir, 'strict.csv'), 'id,v\n1,x\n1,y\n3,z\n');
    assert.equal((await postRefresh(rt, 'strict')).status, 201);
    await waitUntil('the failed refresh logged', async () => rt.log(), (l) => /could not write to postgres table "public\.strict" for dataset "strict": duplicate key/.test(l),
      { timeoutMs: 30000 });
    assert.deepEqual(await rt.rows('SELECT id, v FROM strict ORDER BY id'), [{ id: 1, v: 'a' }, { id: 2, v: 'b' }]);
    assert.equal(pg.psql("SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname LIKE 'spice_staging_%'").trim(), '0');
  } finally {
    await rt.stop();
    removeFolder(dir);
    await pg.stop();
  }
});

test('INSERT INTO a read_write dataset lands in its source and in its postgres copy', { timeout: 120000 }, async () => {
  const pg = await startPostgres();
  pg.psql(`CREATE TABLE orders (id int PRIMARY KEY, amount numeric(10,2), note text, placed timestamp);
           INSERT INTO orders VALUES (1, 10.50, 'first', '2024-01-01 10:00:00');
           ALTER TABLE orders OWNER TO spice;`);
  const dir = makeFolder({ 'spicepod.yaml': `version: v1
kind: Spicepod
name: rw
datasets:
  - from: postgres:orders
    name: orders
    params:
${indent(pg.params, 6)}
    mode: read_write
    replication:
      enabled: true
${accel('postgres', { params: { ...pg.params, pg_schema: 'copies' } }, '      refresh_check_interval: 1h\n      primary_key: id\n')}` });
  const rt = await startSpicedIn(dir);
  try {
    const r = await rt.sql("INSERT INTO orders VALUES (2, 99.99, 'it''s ✓', TIMESTAMP '2024-02-02 02:02:02'), (3, NULL, NULL, NULL)");
    assert.equal(r.status, 200, r.text);
    const want = [
      { id: 1, amount: 10.5, note: 'first', placed: '2024-01-01T10:00:00' },
      { id: 2, amount: 99.99, note: 'it\'s ✓', placed: '2024-02-02T02:02:02' },
      { id: 3, amount: null, note: null, placed: null },
    ];
    const got = (await rt.rows('SELECT id, amount, note, placed FROM orders ORDER BY id')).map((o) => ({ ...o, amount: o.amount === null ? null : Number(o.amount) }));
    assert.deepEqual(got, want);
    assert.deepEqual(pg.rows('SELECT id, amount, note FROM copies.orders ORDER BY id'), pg.rows('SELECT id, amount, note FROM orders ORDER BY id'));
    assert.equal(pg.psql("SELECT rows FROM copies.spice_sys_dataset_checkpoint WHERE dataset_name = 'orders'").trim(), '3');
  } finally {
    await rt.stop();
    removeFolder(dir);
    await pg.stop();
  }
});

test('a replica with a read-only role serves the copy, also after the writer swapped in a new table', { timeout: 120000 }, async () => {
  const pg = await startPostgres();
  pg.psql(`CREATE ROLE reader LOGIN PASSWORD 'r3ader';
           GRANT USAGE ON SCHEMA public TO reader;
           ALTER DEFAULT PRIVILEGES FOR ROLE spice IN SCHEMA public GRANT SELECT ON TABLES TO reader;`);
  const pod = (params, interval) => `version: v1
kind: Spicepod
name: ro
datasets:
  - from: file:items.csv
    name: items
${accel('postgres', { params }, interval)}`;
  const writer = makeFolder({ 'items.csv': itemsCsv(400), 'spicepod.yaml': pod(pg.params, '') });
  const reader = makeFolder({ 'items.csv': itemsCsv(5), 'spicepod.yaml': pod({ ...pg.params, pg_user: 'reader', pg_pass: 'r3ader' }, '') });
  const rtw = await startSpicedIn(writer);
  let rtr;
  try {
    rtr = await startSpicedIn(reader);
    assert.deepEqual(await rtr.rows('SELECT count(*) AS n FROM items'), [{ n: 400 }]);
    writeFileAtomic(join(writer, 'items.csv'), itemsCsv(900));
    assert.equal((await postRefresh(rtw, 'items')).status, 201);
    await waitUntil('the reader sees the new table', () => rtr.rows('SELECT count(*) AS n FROM items'), (r) => r[0].n === 900,
      { timeoutMs: 30000 });
    // The reader cannot write: its own refresh fails and the copy stays.
    assert.equal((await postRefresh(rtr, 'items')).status, 201);
    await waitUntil('the reader\'s refresh refused', async () => rtr.log(), (l) => /could not write dataset "items"|permission denied/.test(l),
      { timeoutMs: 30000 });
    assert.deepEqual(await rtr.rows('SELECT count(*) AS n FROM items'), [{ n: 900 }]);
  } finally {
    await rtw.stop();
    if (rtr) await rtr.stop();
    removeFolder(writer);
    removeFolder(reader);
    await pg.stop();
  }
});
