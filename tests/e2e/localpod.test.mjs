// SPDX-License-Identifier: Apache-2.0
//
// The localpod connector: a child dataset fed from its parent's accelerated copy, refreshed together with it.
// The parent is a CSV file accelerated with arrow; the child is accelerated with duckdb and keeps only the rows
// its refresh_sql selects. Refreshing the parent after the file changes brings the child along; a parent that
// fails leaves the child serving its last copy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startSpiced, request } from './lib/spiced.mjs';
import { datasetStatuses, waitUntil, writeFileAtomic } from './lib/lifecycle.mjs';

const csv = (rows) => 'id,city,amount\n' + rows.map((r) => r.join(',')).join('\n') + '\n';

const POD = `version: v1
kind: Spicepod
name: localpod
datasets:
  - from: file:sales.csv
    name: sales
    params:
      file_format: csv
    acceleration:
      enabled: true
      engine: arrow
  - from: localpod:sales
    name: big_sales
    acceleration:
      enabled: true
      engine: duckdb
      refresh_sql: SELECT * FROM big_sales WHERE amount >= 100
  - from: localpod:sales
    name: sales_federated
`;

const refresh = (rt, name) =>
  request(`${rt.url}/v1/datasets/${name}/acceleration/refresh`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });

async function ids(rt, table) {
  const r = await rt.sql(`SELECT id FROM ${table} ORDER BY id`);
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.text}`);
  return JSON.parse(r.text).map((x) => x.id);
}

test('a localpod child follows its parent, filtered by its refresh_sql, and keeps its copy when the parent fails', async () => {
  const rt = await startSpiced({
    spicepod: POD,
    files: { 'sales.csv': csv([[1, 'Oslo', 50], [2, 'Lima', 150], [3, 'Pune', 300]]) },
  });
  try {
    await waitUntil('all ready', () => datasetStatuses(rt),
      (s) => s.sales === 'Ready' && s.big_sales === 'Ready' && s.sales_federated === 'Ready');
    assert.deepEqual(await ids(rt, 'big_sales'), [2, 3], 'refresh_sql keeps amount >= 100');
    assert.deepEqual(await ids(rt, 'sales_federated'), [1, 2, 3], 'a federated child reads the parent');
    const cities = await rt.rows('SELECT city FROM sales_federated WHERE amount > 100 ORDER BY city');
    assert.deepEqual(cities.map((r) => r.city), ['Lima', 'Pune'], 'projection and filter over a federated child');

    // The file changes; refreshing the parent alone brings the child along.
    writeFileAtomic(join(rt.dir, 'sales.csv'), csv([[1, 'Oslo', 500], [2, 'Lima', 150], [4, 'Kobe', 120], [5, 'Nice', 7]]));
    const r = await refresh(rt, 'sales');
    assert.equal(r.status, 201, r.text);
    await waitUntil('the child follows', () => ids(rt, 'big_sales'), (v) => JSON.stringify(v) === '[1,2,4]');
    assert.deepEqual(await ids(rt, 'sales'), [1, 2, 4, 5]);
    assert.match(rt.log(), /localpod dataset "big_sales" refreshing with its parent "sales"/);

    // The parent's source breaks: the parent goes to Error and keeps its copy, the child keeps its own.
    writeFileAtomic(join(rt.dir, 'sales.csv'), 'id,city,amount\n1,Oslo,"not a number\n');
    await refresh(rt, 'sales');
    await waitUntil('parent in Error', () => datasetStatuses(rt), (s) => s.sales === 'Error');
    assert.deepEqual(await ids(rt, 'big_sales'), [1, 2, 4], 'the child still serves its last copy');
    assert.equal((await datasetStatuses(rt)).big_sales, 'Ready');
  } finally {
    await rt.stop();
  }
});

test('a localpod child of a missing dataset or of itself is refused with a clear message', async () => {
  const rt = await startSpiced({
    spicepod: `version: v1
kind: Spicepod
name: lp
datasets:
  - from: file:a.csv
    name: a
  - from: localpod:nope
    name: orphan
    acceleration:
      enabled: true
  - from: localpod:selfish
    name: selfish
    acceleration:
      enabled: true
`,
    files: { 'a.csv': 'x\n1\n' },
    ready: false,
  });
  try {
    await waitUntil('errors', () => datasetStatuses(rt), (s) => s.orphan === 'Error' && s.selfish === 'Error');
    const list = JSON.parse((await rt.get('/v1/datasets?status=true')).text);
    const byName = Object.fromEntries(list.map((d) => [d.name, d]));
    assert.deepEqual(await rt.rows('SELECT x FROM a'), [{ x: 1 }], 'the rest of the pod serves');
    assert.match(rt.log(), /localpod dataset "selfish" cannot read itself/);
    assert.match(rt.log(), /parent dataset "nope" of localpod dataset "orphan"/);
    assert.ok(byName.orphan && byName.selfish);
  } finally {
    await rt.stop();
  }
});
