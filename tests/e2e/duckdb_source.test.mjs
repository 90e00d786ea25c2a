// SPDX-License-Identifier: Apache-2.0
//
// The duckdb connector on real DuckDB files, written by a second spiced (a duckdb accelerator in file mode
// keeps its table "data" in the file it is given): the three table-name forms and the table-function form,
// federated (with filters) and accelerated; a missing table fails its dataset with its name; columns of types
// without a mapping are read as text with a warning; a file that does
// not exist at start leaves the dataset in Error while the rest serves, and it loads once the file exists; a
// writer holding the file during refreshes leaves the last good copy serving, and its changes are read once
// it lets go. Needs SPICED (ctest sets it).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';

import { makeFolder, removeFolder, startSpicedIn, datasetStatuses, waitUntil } from './lib/lifecycle.mjs';
import { startSpiced } from './lib/spiced.mjs';

const folders = [];
after(() => folders.forEach(removeFolder));

function csvOf(n) {
  const lines = ['id,name,fare'];
  for (let i = 1; i <= n; i++) lines.push(`${i},n${i},${i}.5`);
  return lines.join('\n') + '\n';
}

// A folder whose spiced writes `rows` rows of trips.csv into <folder>/src.db (table main.data); the writer is
// returned running (it holds the file) or stopped.
async function writeDb(rows, { folder, keepRunning = false } = {}) {
  const dir = folder || makeFolder();
  if (!folder) folders.push(dir);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(dir, 'trips.csv'), csvOf(rows));
  writeFileSync(join(dir, 'spicepod.yaml'), [
    'version: v1', 'kind: Spicepod', 'name: writer', 'datasets:', '  - from: file:trips.csv', '    name: trips',
    '    acceleration:', '      enabled: true', '      engine: duckdb', '      mode: file', '      refresh_on_startup: always',
    '      params:', `        duckdb_file: ${join(dir, 'src.db')}`, ''].join('\n'));
  const w = await startSpicedIn(dir);
  await waitUntil('the writer loads', () => datasetStatuses(w), (s) => s.trips === 'Ready');
  if (!keepRunning) await w.stop();
  return { dir, db: join(dir, 'src.db'), writer: w };
}

function dataset(name, from, { open, accel, extra = '' } = {}) {
  const lines = [`  - from: "${from}"`, `    name: ${name}`];
  if (open) lines.push('    params:', `      duckdb_open: ${open}`);
  if (accel) lines.push('    acceleration:', '      enabled: true', `      engine: ${accel}`);
  if (extra) lines.push(extra);
  return lines.join('\n') + '\n';
}

const pod = (datasets) => `version: v1\nkind: Spicepod\nname: ducktest\ndatasets:\n${datasets.join('')}`;

async function rows(rt, sql) {
  const r = await rt.sql(sql);
  assert.equal(r.status, 200, `${sql}: ${r.text}`);
  return JSON.parse(r.text);
}

test('table names in three forms and a table function, federated and accelerated; a missing table', { timeout: 60000 }, async () => {
  const { dir, db } = await writeDb(6);
  const rt = await startSpiced({
    spicepod: pod([
      dataset('fed', 'duckdb:data', { open: db }),
      dataset('two', 'duckdb:main.data', { open: db, accel: 'arrow' }),
      dataset('three', 'duckdb:src.main.data', { open: db, accel: 'duckdb' }),
      dataset('fn', `duckdb:read_csv('${join(dir, 'trips.csv')}')`),
      dataset('data', 'duckdb:data', { open: db, accel: 'arrow', extra: '      refresh_sql: SELECT * FROM data WHERE id > 4' }),
      dataset('nope', 'duckdb:no_such_table', { open: db, accel: 'arrow' }),
      // Types without an Arrow mapping the engine scans (UNION, BIT) are read as text; BLOB stays binary.
      dataset('odd', "duckdb:(SELECT 1 AS id, 'ab'::BLOB AS bl, union_value(n := 7)::UNION(n INT, s VARCHAR) AS u, " +
        "'101'::BIT AS b, 1.25::DECIMAL(9,2) AS d)", { accel: 'arrow' }),
    ]),
    ready: false,
  });
  try {
    await waitUntil('statuses', () => datasetStatuses(rt),
      (s) => s.fed === 'Ready' && s.two === 'Ready' && s.three === 'Ready' && s.fn === 'Ready' && s.data === 'Ready' && s.nope === 'Error' &&
             s.odd === 'Ready');
    for (const t of ['fed', 'two', 'three', 'fn'])
      assert.deepEqual(await rows(rt, `SELECT count(*) AS n, sum(id) AS s, sum(fare) AS f FROM ${t}`), [{ n: 6, s: 21, f: 24 }], t);
    assert.deepEqual(await rows(rt, 'SELECT id, name FROM fed WHERE id > 4 AND name <> \'n6\' ORDER BY id'), [{ id: 5, name: 'n5' }]);
    assert.deepEqual(await rows(rt, 'SELECT id FROM fed ORDER BY id LIMIT 2'), [{ id: 1 }, { id: 2 }]);
    assert.deepEqual(await rows(rt, 'SELECT id FROM data ORDER BY id'), [{ id: 5 }, { id: 6 }], 'refresh_sql ran at the source');
    assert.match(rt.log(), /duckdb table "src"\."main"\."no_such_table" for dataset "nope" does not exist in "[^"]*src\.db"/);
    assert.deepEqual(await rows(rt, 'SELECT id, bl, u, b, CAST(d AS VARCHAR) AS d FROM odd'),
      [{ id: 1, bl: Buffer.from('ab').toString('base64'), u: '7', b: '101', d: '1.25' }]);
    assert.match(rt.log(), /WARN .*dataset "odd": column "u" of duckdb .* has type UNION\(n INTEGER, s VARCHAR\), which has no Arrow mapping; read as text/);
  } finally {
    await rt.stop();
  }
});

test('a file missing at start, then written; a writer holding it during refreshes', { timeout: 90000 }, async () => {
  const later = makeFolder();
  folders.push(later);
  const { db: okDb } = await writeDb(2);
  const rt = await startSpiced({
    spicepod: pod([
      dataset('late', 'duckdb:data', { open: join(later, 'src.db'), accel: 'arrow', extra: '      refresh_check_interval: 1s' }),
      dataset('ok', 'duckdb:data', { open: okDb }),
    ]),
    ready: false,
  });
  try {
    await waitUntil('late in Error, ok Ready', () => datasetStatuses(rt), (s) => s.late === 'Error' && s.ok === 'Ready');
    assert.match(rt.log(), /could not open duckdb database "[^"]*src\.db" for dataset "late": No such file or directory/);
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM ok'), [{ n: 2 }]);
    await writeDb(3, { folder: later });
    await waitUntil('late loads once the file exists', () => datasetStatuses(rt), (s) => s.late === 'Ready', { timeoutMs: 45000 });
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM late'), [{ n: 3 }]);

    // A writer holds the file (a DuckDB write lock): refreshes fail, the last good copy serves.
    const { writer } = await writeDb(8, { folder: later, keepRunning: true });
    try {
      await waitUntil('late in Error while the writer holds the file', () => datasetStatuses(rt), (s) => s.late === 'Error');
      assert.match(rt.log(), /could not open duckdb database "[^"]*src\.db" for dataset "late": .*lock/i);
      assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM late'), [{ n: 3 }], 'the last good copy serves');
    } finally {
      await writer.stop();
    }
    await waitUntil('the refresh after the writer is gone', async () => (await rows(rt, 'SELECT count(*) AS n FROM late'))[0].n,
      (n) => n === 8, { timeoutMs: 45000, intervalMs: 200 });
  } finally {
    await rt.stop();
  }
});
