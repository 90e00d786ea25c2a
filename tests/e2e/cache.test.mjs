// SPDX-License-Identifier: Apache-2.0
//
// The results cache of POST /v1/sql (runtime.results_cache / runtime.caching.sql_results): the same query in
// other spacing or keyword case hits; the key covers parameters and the response format; Cache-Control:
// no-cache bypasses (and still stores); statements that are not plain queries are never cached; after a
// refresh with changed source data the new rows are served, never the cached old ones; TTL, the size bound
// and `enabled: false`.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';

import { startSpiced, request, sleep } from './lib/spiced.mjs';

const pod = (runtime) => `version: v1
kind: Spicepod
name: cache_e2e
runtime:
${runtime}
datasets:
  - from: file:data.csv
    name: d
    acceleration:
      enabled: true
`;

const csv = (rows) => 'id,name\n' + rows.map(([i, n]) => `${i},${n}`).join('\n') + '\n';

function writeAtomic(path, content) {
  writeFileSync(path + '.tmp', content);
  renameSync(path + '.tmp', path);
}

const status = (r) => r.headers['results-cache-status'];
const xcache = (r) => r.headers['x-cache'];

describe('results cache (item_ttl 60s)', () => {
  let rt;
  before(async () => {
    rt = await startSpiced({
      spicepod: pod('  results_cache:\n    enabled: true\n    item_ttl: 60s\n'),
      files: { 'data.csv': csv([[1, 'a'], [2, 'b']]) },
    });
  });
  after(async () => {
    if (rt) await rt.stop();
  });

  test('MISS, then HIT for the same query in other spacing and keyword case', async () => {
    const first = await rt.sql('SELECT id, name FROM d WHERE id >= 1 ORDER BY id');
    assert.equal(first.status, 200);
    assert.equal(status(first), 'MISS');
    assert.equal(xcache(first), 'Miss from spiceai');
    const third = await rt.sql('select  id , name\n\tFROM d\n WHERE id >= 1 /* c */ Order  By id -- same query\n');
    assert.equal(status(third), 'HIT');
    assert.equal(xcache(third), 'Hit from spiceai');
    assert.equal(third.text, first.text);
    assert.equal(third.headers['content-type'], first.headers['content-type']);
    assert.deepEqual(JSON.parse(third.text), [{ id: 1, name: 'a' }, { id: 2, name: 'b' }]);
  });

  test('the format and the parameters are part of the key; literals keep their case', async () => {
    const q = 'SELECT id FROM d WHERE name = \'a\'';
    assert.equal(status(await rt.sql(q)), 'MISS');
    const asCsv = await rt.sql(q, { accept: 'text/csv' });
    assert.equal(status(asCsv), 'MISS');
    assert.equal(asCsv.text.replace(/\r/g, ''), 'id\n1\n');
    assert.equal(status(await rt.sql(q, { accept: 'text/csv' })), 'HIT');
    const upper = await rt.sql('SELECT id FROM d WHERE name = \'A\'');
    assert.equal(status(upper), 'MISS');
    assert.deepEqual(JSON.parse(upper.text), []);

    const p1 = await rt.sqlJson('SELECT name FROM d WHERE id = $1', [1]);
    assert.equal(status(p1), 'MISS');
    const p1again = await rt.sqlJson('select name from d where id = $1', [1]);
    assert.equal(status(p1again), 'HIT');
    const p2 = await rt.sqlJson('SELECT name FROM d WHERE id = $1', [2]);
    assert.equal(status(p2), 'MISS');
    assert.deepEqual(JSON.parse(p2.text), [{ name: 'b' }]);
  });

  test('Cache-Control: no-cache bypasses the lookup but stores the result', async () => {
    const q = 'SELECT count(*) AS n FROM d WHERE id < 100';
    const b = await rt.sql(q, { headers: { 'Cache-Control': 'no-cache' } });
    assert.equal(b.status, 200);
    assert.equal(status(b), 'BYPASS');
    assert.equal(xcache(b), undefined);
    const again = await rt.sql(q, { headers: { 'Cache-Control': 'no-cache' } });
    assert.equal(status(again), 'BYPASS');
    const hit = await rt.sql(q);
    assert.equal(status(hit), 'HIT');
    assert.equal(hit.text, b.text);
  });

  test('volatile functions, writes and errors are not cached', async () => {
    for (const q of ['SELECT random() AS r', 'SELECT now() AS t', 'SELECT * FROM duckdb_settings() LIMIT 1']) {
      const r = await rt.sql(q);
      assert.equal(status(r), undefined, q);
      assert.equal(xcache(r), undefined, q);
    }
    const r1 = await rt.sql('SELECT random() AS r');
    const r2 = await rt.sql('SELECT random() AS r');
    assert.notEqual(r1.text, r2.text, 'random() is computed again');
    const bad = await rt.sql('SELECT nope FROM d');
    assert.equal(bad.status, 400);
    assert.equal(status(bad), undefined);
    const bad2 = await rt.sql('SELECT nope FROM d');
    assert.equal(bad2.status, 400);
  });

  test('after a refresh with changed data the new rows are served, never the cached old ones', async () => {
    const q = 'SELECT id, name FROM d ORDER BY id';
    const old = await rt.sql(q);
    const oldRows = JSON.parse(old.text);
    assert.equal(status(await rt.sql(q)), 'HIT');

    writeAtomic(join(rt.dir, 'data.csv'), csv([[1, 'a'], [2, 'b'], [3, 'c']]));
    const refresh = await request(rt.url + '/v1/datasets/d/acceleration/refresh', { method: 'POST' });
    assert.equal(refresh.status, 201, refresh.text);

    // Query the cached statement while the refresh runs; once an uncached probe sees the new data, every
    // later answer to the cached statement must be the new data.
    let sawNew = false;
    for (let i = 0; i < 400; i++) {
      const probe = await rt.sql('SELECT count(*) AS n FROM d', { headers: { 'Cache-Control': 'no-cache' } });
      const refreshed = JSON.parse(probe.text)[0].n === 3;
      const r = await rt.sql(q);
      const rows = JSON.parse(r.text);
      if (refreshed) {
        assert.equal(rows.length, 3, `after the refresh the cached query answered ${r.text} (${status(r)})`);
        sawNew = true;
      } else {
        assert.ok(rows.length === 3 || JSON.stringify(rows) === JSON.stringify(oldRows));
      }
      if (sawNew && i > 0) break;
      await sleep(25);
    }
    assert.ok(sawNew, 'the refresh completed');
    // The runtime moves the data version once more as the refresh finishes, which may drop the entry stored
    // just before: the cache must be answering again within a few requests.
    let after;
    for (let i = 0; i < 10 && status(after = await rt.sql(q)) !== 'HIT'; i++) await sleep(50);
    assert.equal(status(after), 'HIT');
    assert.deepEqual(JSON.parse(after.text), [{ id: 1, name: 'a' }, { id: 2, name: 'b' }, { id: 3, name: 'c' }]);
  });
});

describe('results cache limits', () => {
  test('caching.sql_results: item_ttl expires entries; results over the item limit are not stored', async () => {
    const rt = await startSpiced({
      spicepod: pod('  caching:\n    sql_results:\n      enabled: true\n      item_ttl: 400ms\n      max_size: 64KiB\n'),
      files: { 'data.csv': csv([[1, 'a']]) },
    });
    try {
      const q = 'SELECT name FROM d';
      assert.equal(status(await rt.sql(q)), 'MISS');
      assert.equal(status(await rt.sql(q)), 'HIT');
      await sleep(500);
      assert.equal(status(await rt.sql(q)), 'MISS');
      // ~1.6 MB of JSON against a 16 KiB item limit (a quarter of max_size): streamed, never stored.
      const big = 'SELECT i FROM range(100000) t(i)';
      const b1 = await rt.sql(big);
      assert.equal(b1.status, 200);
      assert.equal(JSON.parse(b1.text).length, 100000);
      assert.equal(status(b1), 'MISS');
      assert.equal(status(await rt.sql(big)), 'MISS');
    } finally {
      await rt.stop();
    }
  });

  test('a malformed cache size stops spiced with a message', async () => {
    for (const [runtime, want] of [['  results_cache:\n    cache_max_size: lots\n', /invalid size "lots"/],
      ['  caching:\n    sql_results:\n      max_size: 12XB\n', /invalid size "12XB"/]]) {
      const rt = await startSpiced({ spicepod: pod(runtime), files: { 'data.csv': csv([[1, 'a']]) }, ready: false });
      const exit = await rt.exited;
      assert.equal(exit.code, 1);
      assert.match(rt.log(), want);
      await rt.stop();
    }
  });

  test('enabled: false turns the cache and its headers off', async () => {
    const rt = await startSpiced({
      spicepod: pod('  results_cache:\n    enabled: false\n'),
      files: { 'data.csv': csv([[1, 'a']]) },
    });
    try {
      for (let i = 0; i < 2; i++) {
        const r = await rt.sql('SELECT name FROM d');
        assert.equal(r.status, 200);
        assert.equal(status(r), undefined);
        assert.equal(xcache(r), undefined);
      }
    } finally {
      await rt.stop();
    }
  });
});
