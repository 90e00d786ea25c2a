// SPDX-License-Identifier: Apache-2.0
//
// The 22 TPC-H queries (bench/tpch/queries.sql) on a small generated data set (tools/gen_tpch, SF 0.01) give
// the same answers through every path: arrow-accelerated, duckdb-accelerated and federated (read from the
// Parquet files at query time).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSpiced } from './lib/spiced.mjs';

const BIN = process.env.SPICE_BIN_DIR;
const TABLES = ['region', 'nation', 'supplier', 'part', 'partsupp', 'customer', 'orders', 'lineitem'];
const QUERIES = readFileSync(new URL('../../bench/tpch/queries.sql', import.meta.url), 'utf8')
  .split(/^-- name: (\S+)\n/m).slice(1)
  .reduce((acc, v, i, all) => (i % 2 ? acc : [...acc, [v, all[i + 1].trim().replace(/;$/, '')]]), []);

let data;
const paths = {};

function pod(engine) {
  const lines = ['version: v1', 'kind: Spicepod', `name: tpch_${engine || 'federated'}`, 'datasets:'];
  for (const t of TABLES) {
    lines.push(`  - from: file:${join(data, `${t}.parquet`)}`, `    name: ${t}`);
    if (engine) lines.push('    acceleration:', `      engine: ${engine}`);
  }
  return lines.join('\n') + '\n';
}

before(async () => {
  data = mkdtempSync(join(tmpdir(), 'spicec-tpch-'));
  execFileSync(join(BIN, 'gen_tpch'), ['--sf', '0.01', data]);
  for (const engine of ['arrow', 'duckdb', null]) paths[engine || 'federated'] = await startSpiced({ spicepod: pod(engine) });
});

after(async () => {
  for (const rt of Object.values(paths)) await rt.stop();
  rmSync(data, { recursive: true, force: true });
});

// Floats may differ in the last bits with the order of parallel sums: compare them to 1e-9 relative.
function same(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a === b || Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a), kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => same(a[k], b[k]));
  }
  return a === b;
}

test('the 22 TPC-H queries answer the same on arrow, duckdb and federated datasets', async () => {
  let nonEmpty = 0;
  for (const [name, sql] of QUERIES) {
    const answers = {};
    for (const [path, rt] of Object.entries(paths)) {
      const r = await rt.sql(sql, { accept: 'application/json' });
      assert.equal(r.status, 200, `${name} on ${path}: ${r.text}`);
      answers[path] = JSON.parse(r.text);
    }
    assert.ok(same(answers.arrow, answers.duckdb), `${name}: arrow and duckdb differ`);
    assert.ok(same(answers.arrow, answers.federated), `${name}: arrow and federated differ`);
    if (answers.arrow.length > 0) nonEmpty++;
  }
  assert.equal(QUERIES.length, 22);
  assert.ok(nonEmpty >= 20, `only ${nonEmpty} queries returned rows: the generated data misses their domains`);
});
