// SPDX-License-Identifier: Apache-2.0
//
// The life of a dataset in a real spiced, and what survives a crash: refreshes are atomic for concurrent
// readers (arrow, duckdb memory, duckdb file), a duckdb file serves after a restart without its source and
// after a SIGKILL in the middle of a refresh, a failing source turns a dataset to Error and back to Ready by
// itself, a missing source at start is retried, broken spicepods stop spiced with a precise message, the SQL
// sandbox refuses over HTTP with its documented messages, and datasets load in parallel at start.
// Needs SPICED (ctest sets it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { request, sleep, startSpiced } from './lib/spiced.mjs';
import {
  datasetStatuses,
  kill9,
  linkFileAtomic,
  makeFolder,
  removeFolder,
  runSpicedToExit,
  startSpicedIn,
  waitUntil,
  writeCsv,
  writeFileAtomic,
} from './lib/lifecycle.mjs';

// A dataset version: `n` rows whose column x sums to `s` (both distinct between versions, so a mix of two
// versions or a partial load cannot pass for either).
function version(name, n, factor) {
  return { name, n, s: (factor * n * (n + 1)) / 2, factor };
}

function csvText(v) {
  const lines = ['x,label'];
  for (let i = 1; i <= v.n; i++) lines.push(`${v.factor * i},row ${i}`);
  return lines.join('\n') + '\n';
}

const COUNT_SUM = (table) => `SELECT count(*) AS n, sum(x) AS s FROM ${table}`;

async function countSum(rt, table) {
  const [row] = await rt.rows(COUNT_SUM(table));
  return row;
}

function which(versions, row) {
  return versions.find((v) => v.n === row.n && v.s === row.s);
}

function postRefresh(rt, name) {
  return request(`${rt.url}/v1/datasets/${name}/acceleration/refresh`, { method: 'POST' });
}

// ---- 1. refresh atomicity -------------------------------------------------------------------------------

test('refreshes are atomic for concurrent readers (arrow, duckdb memory, duckdb file)', { timeout: 90000 }, async (t) => {
  const A = version('A', 200000, 1);
  const B = version('B', 300000, 2);
  const tables = ['ds_arrow', 'ds_duck', 'ds_file'];
  const pod = `version: v1
kind: Spicepod
name: atomic
datasets:
  - from: file:src.csv
    name: ds_arrow
    acceleration:
      engine: arrow
  - from: file:src.csv
    name: ds_duck
    acceleration:
      engine: duckdb
  - from: file:src.csv
    name: ds_file
    acceleration:
      engine: duckdb
      mode: file
`;
  const rt = await startSpiced({ spicepod: pod, files: { 'src.csv': csvText(A) } });
  const stop = { now: false };
  const stats = { answers: 0, bad: [], seen: Object.fromEntries(tables.map((n) => [n, new Set()])) };
  async function client(k) {
    for (let i = k; !stop.now; i++) {
      const table = tables[i % tables.length];
      let r;
      try {
        r = await rt.sql(COUNT_SUM(table));
      } catch (e) {
        stats.bad.push(`${table}: request failed: ${e.message}`);
        continue;
      }
      stats.answers++;
      if (r.status !== 200) {
        stats.bad.push(`${table}: HTTP ${r.status}: ${r.text}`);
        continue;
      }
      const [row] = JSON.parse(r.text);
      const v = which([A, B], row);
      if (v) stats.seen[table].add(v.name);
      else stats.bad.push(`${table}: neither version: ${r.text}`);
    }
  }
  try {
    for (const table of tables) assert.deepEqual(await countSum(rt, table), { n: A.n, s: A.s }, table);
    const clients = [0, 1, 2].map(client);
    const src = join(rt.dir, 'src.csv');
    const rounds = [B, A, B, A, B, A];
    for (const [round, v] of rounds.entries()) {
      writeFileAtomic(src, csvText(v));
      for (const table of tables) {
        const r = await postRefresh(rt, table);
        assert.equal(r.status, 201, `refresh ${table}: ${r.text}`);
      }
      // A second trigger while the first may still run: it queues one more refresh, never overlaps one.
      for (const table of tables) assert.equal((await postRefresh(rt, table)).status, 201);
      await waitUntil(
        `round ${round + 1}: every dataset serving version ${v.name} and Ready`,
        async () => ({
          data: await Promise.all(tables.map((table) => countSum(rt, table))),
          status: await datasetStatuses(rt),
        }),
        ({ data, status }) => data.every((row) => which([v], row)) && tables.every((n) => status[n] === 'Ready'),
        { timeoutMs: 30000 },
      );
      // Do not replace the source under a refresh that is still reading it.
    }
    stop.now = true;
    await Promise.all(clients);
    t.diagnostic(`${stats.answers} answers checked`);
    assert.deepEqual(stats.bad.slice(0, 10), [], `${stats.bad.length} bad answers`);
    for (const table of tables) assert.deepEqual([...stats.seen[table]].sort(), ['A', 'B'], `versions seen in ${table}`);
    assert.deepEqual(await datasetStatuses(rt), Object.fromEntries(tables.map((n) => [n, 'Ready'])));
  } finally {
    stop.now = true;
    await rt.stop();
  }
});

// ---- 2. restart from a duckdb file ------------------------------------------------------------------------

const FILE_POD = `version: v1
kind: Spicepod
name: keep
datasets:
  - from: file:src.csv
    name: keep
    acceleration:
      engine: duckdb
      mode: file
`;

test('a duckdb file dataset serves after a restart although its source is gone', { timeout: 60000 }, async () => {
  const dir = makeFolder({ 'spicepod.yaml': FILE_POD, 'src.csv': 'id,name\n1,one\n2,two\n3,three\n' });
  const rows = [{ id: 1, name: 'one' }, { id: 2, name: 'two' }, { id: 3, name: 'three' }];
  let rt;
  try {
    rt = await startSpicedIn(dir);
    assert.deepEqual(await rt.rows('SELECT id, name FROM keep ORDER BY id'), rows);
    assert.deepEqual(await rt.stop(), { code: 0, signal: null }, 'SIGTERM stops spiced cleanly');
    assert.ok(existsSync(join(dir, '.spice/data/keep.db')), 'the database file is .spice/data/keep.db');
    renameSync(join(dir, 'src.csv'), join(dir, 'gone.csv'));

    rt = await startSpicedIn(dir);
    const ready = await rt.get('/v1/ready');
    assert.equal(ready.status, 200);
    assert.equal(ready.text, 'Ready');
    assert.deepEqual(await rt.rows('SELECT id, name FROM keep ORDER BY id'), rows);
    assert.match(rt.log(), /dataset "keep" serving 3 rows from its file accelerator/);

    // A refresh now fails (no source): the dataset turns Error and keeps serving the rows it has.
    assert.equal((await postRefresh(rt, 'keep')).status, 201);
    await waitUntil('dataset keep to be in Error after a refresh without its source', () => datasetStatuses(rt),
      (s) => s.keep === 'Error');
    assert.deepEqual(await rt.rows('SELECT id, name FROM keep ORDER BY id'), rows);
    assert.equal((await rt.get('/v1/ready')).status, 200, 'a dataset that loaded once stays ready');
    assert.match(rt.log(), /dataset "keep": could not (open|read) "[^"]*src\.csv"/);
  } finally {
    if (rt) await rt.stop();
    removeFolder(dir);
  }
});

// ---- 3. SIGKILL during a refresh ------------------------------------------------------------------------

test('SIGKILL in the middle of a duckdb file refresh leaves one whole version', { timeout: 110000 }, async (t) => {
  // Big enough that a refresh takes about a second: the kill lands inside it.
  const A = version('A', 2000000, 1);
  const B = version('B', 2400000, 3);
  const dir = makeFolder({ 'spicepod.yaml': FILE_POD.replaceAll('keep', 'big') });
  for (const v of [A, B])
    writeCsv(join(dir, `${v.name}.csv`), 'x,label', v.n, (i) => `${v.factor * i},row ${i} of version ${v.name} padding-padding`);
  const src = join(dir, 'src.csv');
  linkFileAtomic(join(dir, 'A.csv'), src);
  let rt;
  try {
    rt = await startSpicedIn(dir, { readyTimeoutMs: 60000 });
    assert.deepEqual(await countSum(rt, 'big'), { n: A.n, s: A.s });
    let served = A;
    let killedWhileRefreshing = 0;
    // Kills at growing delays after the refresh started (a refresh here takes 1-3 s, so the later ones may
    // land in its commit or after it), then one after it committed (status Ready with the new rows): that one
    // must come back with the new version.
    for (const delayMs of [100, 900, 1800, 2700, 'committed']) {
      const next = served === A ? B : A;
      linkFileAtomic(join(dir, `${next.name}.csv`), src);
      assert.equal((await postRefresh(rt, 'big')).status, 201);
      const committed = delayMs === 'committed';
      const seen = await waitUntil(
        committed ? `the refresh to version ${next.name} to finish` : 'the refresh to start (status Refreshing) or to have finished',
        async () => ({ status: (await datasetStatuses(rt)).big, data: await countSum(rt, 'big') }),
        ({ status, data }) =>
          committed ? status === 'Ready' && which([next], data) !== undefined
                    : status === 'Refreshing' || which([next], data) !== undefined,
        { timeoutMs: 30000, intervalMs: 10 },
      );
      if (!committed && seen.status === 'Refreshing') {
        killedWhileRefreshing++;
        await sleep(delayMs);
      }
      const exit = await kill9(rt);
      assert.equal(exit.signal, 'SIGKILL');

      rt = await startSpicedIn(dir, { readyTimeoutMs: 60000 });
      const ready = await rt.get('/v1/ready');
      assert.equal(ready.status, 200, 'the file serves at once after the crash');
      const data = await countSum(rt, 'big');
      const v = which([A, B], data);
      assert.ok(v, `after a kill (${delayMs}) the dataset holds neither version: ${JSON.stringify(data)}`);
      if (committed) assert.equal(v, next, `a refresh that had committed was lost by the kill: serving version ${v.name}`);
      assert.match(rt.log(), new RegExp(`dataset "big" serving ${v.n} rows from its file accelerator`));
      assert.equal((await datasetStatuses(rt)).big, 'Ready');
      t.diagnostic(`killed ${committed ? 'after the commit' : `${delayMs} ms after ${seen.status}`}: serving version ${v.name} (refreshed to ${next.name})`);
      served = v;
    }
    assert.ok(killedWhileRefreshing > 0, 'no kill landed while the dataset was Refreshing');

    // The crashed-into file still takes a full refresh.
    const current = statSync(src).ino === statSync(join(dir, 'A.csv')).ino ? A : B;
    assert.equal((await postRefresh(rt, 'big')).status, 201);
    await waitUntil(`dataset big to serve version ${current.name} after a clean refresh`,
      async () => ({ status: (await datasetStatuses(rt)).big, data: await countSum(rt, 'big') }),
      ({ status, data }) => status === 'Ready' && which([current], data) !== undefined, { timeoutMs: 30000 });
    assert.deepEqual(await rt.stop(), { code: 0, signal: null });
  } finally {
    if (rt) await rt.stop();
    removeFolder(dir);
  }
});

// ---- 4. source deleted and restored ---------------------------------------------------------------------

test('a deleted source turns the dataset Error (old rows still served) and a restored one Ready', { timeout: 60000 }, async () => {
  const pod = `version: v1
kind: Spicepod
name: flaky
datasets:
  - from: file:src.csv
    name: flaky
    acceleration:
      engine: arrow
      refresh_check_interval: 1s
`;
  const rt = await startSpiced({ spicepod: pod, files: { 'src.csv': 'id,name\n1,one\n2,two\n' } });
  const first = [{ id: 1, name: 'one' }, { id: 2, name: 'two' }];
  const second = [{ id: 10, name: 'ten' }, { id: 20, name: 'twenty' }, { id: 30, name: 'thirty' }];
  const ordered = 'SELECT id, name FROM flaky ORDER BY id';
  try {
    assert.deepEqual(await rt.rows(ordered), first);
    const pid = rt.proc.pid;
    rmSync(join(rt.dir, 'src.csv'));
    await waitUntil('status Error after the source was deleted', () => datasetStatuses(rt), (s) => s.flaky === 'Error',
      { timeoutMs: 15000 });
    assert.deepEqual(await rt.rows(ordered), first, 'the last good rows are still served');

    writeFileAtomic(join(rt.dir, 'src.csv'), 'id,name\n10,ten\n20,twenty\n30,thirty\n');
    await waitUntil('status Ready and the restored rows',
      async () => ({ status: (await datasetStatuses(rt)).flaky, rows: await rt.rows(ordered) }),
      (s) => s.status === 'Ready' && JSON.stringify(s.rows) === JSON.stringify(second), { timeoutMs: 20000 });
    assert.equal(rt.exitCode, undefined, 'spiced kept running');
    assert.equal(rt.proc.pid, pid);
  } finally {
    await rt.stop();
  }
});

test('a failed refresh is logged as one line that names the dataset and the file', { timeout: 30000 }, async () => {
  const pod = `version: v1
kind: Spicepod
name: logged
datasets:
  - from: file:src.csv
    name: logged
    acceleration:
      engine: arrow
      refresh_check_interval: 1s
`;
  const rt = await startSpiced({ spicepod: pod, files: { 'src.csv': 'id\n1\n' } });
  try {
    rmSync(join(rt.dir, 'src.csv'));
    await waitUntil('a refresh failure in the log', async () => rt.log(), (log) => /WARN /.test(log), { timeoutMs: 15000 });
    await sleep(200); // the record is written in one call; give a slow disk a moment anyway
    // Every log record is one line starting with a timestamp and a level: a multi-line record breaks log
    // collectors, and the file reader's internal SQL (with DuckDB's caret) is not the user's business.
    const lines = rt.log().split('\n').filter((l) => l !== '');
    for (const line of lines) assert.match(line, /^\d{4}-\d\d-\d\dT[0-9:.]+Z +(INFO|WARN|ERROR|DEBUG) /, `a log record spans lines:\n${rt.log()}`);
    const warn = lines.find((l) => l.includes(' WARN '));
    assert.match(warn, /WARN dataset "logged": could not read "[^"]*src\.csv" for dataset "logged": .*\(retrying in [0-9.]+ s\)$/);
  } finally {
    await rt.stop();
  }
});

// ---- 5. a missing source at start -------------------------------------------------------------------------

test('a dataset whose source is missing at start loads by itself once the file appears', { timeout: 60000 }, async () => {
  const pod = `version: v1
kind: Spicepod
name: late
datasets:
  - from: file:good.csv
    name: good
    acceleration:
      engine: arrow
  - from: file:later.csv
    name: late
    acceleration:
      engine: duckdb
`;
  const rt = await startSpiced({ spicepod: pod, files: { 'good.csv': 'id\n1\n2\n' }, ready: false });
  try {
    await waitUntil('dataset good to serve', () => rt.rows('SELECT count(*) AS n FROM good'), (r) => r[0].n === 2);
    await waitUntil('dataset late to be in Error', () => datasetStatuses(rt), (s) => s.late === 'Error' && s.good === 'Ready');
    const notReady = await rt.get('/v1/ready');
    assert.equal(notReady.status, 503);
    assert.equal(notReady.text, 'Not Ready');
    const early = await rt.sql('SELECT count(*) FROM late');
    assert.equal(early.status, 400, 'a dataset that never loaded cannot be queried');

    writeFileAtomic(join(rt.dir, 'later.csv'), 'id\n7\n8\n9\n');
    await waitUntil('/v1/ready to become 200 after the file appeared', () => rt.get('/v1/ready'), (r) => r.status === 200,
      { timeoutMs: 25000, intervalMs: 100 });
    assert.deepEqual(await rt.rows('SELECT sum(id) AS s, count(*) AS n FROM late'), [{ s: 24, n: 3 }]);
    assert.deepEqual(await datasetStatuses(rt), { good: 'Ready', late: 'Ready' });
    assert.match(rt.log(), /dataset "late" loaded 3 rows/);
  } finally {
    await rt.stop();
  }
});

// ---- 6. spicepod errors stop spiced -------------------------------------------------------------------------

test('spicepod errors stop spiced with the file, line, key and reason on stderr', { timeout: 60000 }, async () => {
  const head = 'version: v1\nkind: Spicepod\nname: broken\ndatasets:\n';
  const typo = await runSpicedToExit({
    files: {
      'spicepod.yaml': head + '  - from: file:t.csv\n    name: t\n    acceleration:\n      refresh_intervall: 10s\n',
      't.csv': 'a\n1\n',
    },
  });
  assert.notEqual(typo.code, 0);
  assert.match(typo.stderr,
    /spicepod\.yaml:8:7: unknown key "refresh_intervall" in acceleration of dataset "t" \(did you mean "refresh_check_interval"\?\)/);

  const arrowFile = await runSpicedToExit({
    files: {
      'spicepod.yaml': head + '  - from: file:t.csv\n    name: t\n    acceleration:\n      engine: arrow\n      mode: file\n',
      't.csv': 'a\n1\n',
    },
  });
  assert.notEqual(arrowFile.code, 0);
  assert.match(arrowFile.stderr, /spicepod\.yaml:9:7: .*File mode not supported for Arrow engine/);

  const connector = await runSpicedToExit({
    files: { 'spicepod.yaml': head + '  - from: nosuch:thing\n    name: t\n' },
  });
  assert.notEqual(connector.code, 0);
  assert.match(connector.stderr, /dataset "t": unknown data connector "nosuch" \(available: [^)]*\bfile\b[^)]*\)/);

  for (const r of [typo, arrowFile, connector]) assert.doesNotMatch(r.stderr, /HTTP API on/, 'nothing was served');
});

// ---- 7. the SQL sandbox over HTTP -----------------------------------------------------------------------------

test('sandbox refusals over HTTP are 400 with the documented message', { timeout: 60000 }, async () => {
  const pod = `version: v1
kind: Spicepod
name: sandbox
datasets:
  - from: file:t.csv
    name: t
    acceleration:
      engine: arrow
`;
  const rt = await startSpiced({ spicepod: pod, files: { 't.csv': 'a\n1\n2\n' } });
  const copyTarget = join(rt.dir, 'copied.csv');
  const attachTarget = join(rt.dir, 'attached.db');
  const DDL = 'spicec serves read-only SQL; datasets and views are defined in the spicepod';
  const cases = [
    ["SELECT * FROM read_csv('/etc/passwd')", 'table function "read_csv" is not allowed: queries may read only datasets and views'],
    ["COPY t TO '/tmp/x'", 'COPY is not allowed: spicec serves read-only SQL'],
    [`COPY t TO '${copyTarget}'`, 'COPY is not allowed: spicec serves read-only SQL'],
    ["ATTACH '/tmp/x.db'", 'ATTACH is not allowed: queries may read only datasets and views'],
    [`ATTACH '${attachTarget}' AS other`, 'ATTACH is not allowed: queries may read only datasets and views'],
    ['SET threads=1', 'SET is not allowed: the engine configuration is locked'],
    ['PRAGMA version', 'PRAGMA is not allowed: spicec serves read-only SQL'],
    ['INSTALL httpfs', 'INSTALL is not allowed: extensions cannot be installed or loaded'],
    ['LOAD httpfs', 'LOAD is not allowed: extensions cannot be installed or loaded'],
    ['CREATE TABLE x(a int)', `CREATE TABLE is not allowed: ${DDL}`],
    ['DROP VIEW t', `DROP VIEW is not allowed: ${DDL}`],
    ['INSERT INTO t VALUES (1)', 'dataset "t" is read-only: INSERT requires mode: read_write with replication enabled'],
    ['SELECT 1; SELECT 2', 'multiple statements are not allowed in one request'],
    ["SELECT * FROM '/etc/passwd'", 'reading files is not allowed: "/etc/passwd" is not a dataset; queries may read only datasets and views'],
  ];
  try {
    for (const [query, message] of cases) {
      const r = await rt.sql(query);
      assert.equal(r.status, 400, `${query} → ${r.status} ${r.text}`);
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8', query);
      assert.equal(r.text, message, query);
    }
    assert.equal(existsSync(copyTarget), false, 'COPY wrote nothing');
    assert.equal(existsSync(attachTarget), false, 'ATTACH created nothing');
    // Nothing changed: the dataset is intact and there is no table x.
    assert.deepEqual(await rt.rows('SELECT sum(a) AS s, count(*) AS n FROM t'), [{ s: 3, n: 2 }]);
    const x = await rt.sql('SELECT * FROM x');
    assert.equal(x.status, 400);
    assert.match(x.text, /Table with name x does not exist/);
  } finally {
    await rt.stop();
  }
});

// ---- 8. parallel load at start ---------------------------------------------------------------------------------

test('four large datasets load at start, each logged once with its row count', { timeout: 90000 }, async () => {
  const sets = [
    { name: 'p_arrow1', n: 500000, engine: 'arrow' },
    { name: 'p_arrow2', n: 501000, engine: 'arrow' },
    { name: 'p_duck', n: 502000, engine: 'duckdb' },
    { name: 'p_file', n: 503000, engine: 'duckdb\n      mode: file' },
  ];
  const dir = makeFolder({
    'spicepod.yaml':
      'version: v1\nkind: Spicepod\nname: parallel\ndatasets:\n' +
      sets.map((d) => `  - from: file:${d.name}.csv\n    name: ${d.name}\n    acceleration:\n      engine: ${d.engine}\n`).join(''),
  });
  for (const d of sets) writeCsv(join(dir, `${d.name}.csv`), 'x,label', d.n, (i) => `${i},${d.name} row ${i}`);
  let rt;
  try {
    rt = await startSpicedIn(dir);
    assert.deepEqual(await datasetStatuses(rt), Object.fromEntries(sets.map((d) => [d.name, 'Ready'])));
    const log = rt.log();
    for (const d of sets) {
      assert.deepEqual(await countSum(rt, d.name), { n: d.n, s: (d.n * (d.n + 1)) / 2 }, d.name);
      const lines = log.split('\n').filter((l) => l.includes(`dataset "${d.name}" loaded `));
      assert.equal(lines.length, 1, `one load line for ${d.name}:\n${log}`);
      assert.match(lines[0], new RegExp(`INFO dataset "${d.name}" loaded ${d.n} rows \\([0-9.]+ MiB\\) in [0-9.]+ s \\([0-9]+ rows/s, [0-9.]+ MiB/s\\)`));
    }
  } finally {
    if (rt) await rt.stop();
    removeFolder(dir);
  }
});
