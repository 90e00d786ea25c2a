// SPDX-License-Identifier: Apache-2.0
//
// The HTTP API of a real spiced (docs/http-api.md, spice-compat §4): every endpoint's exact body, status code
// and Content-Type, result formats, parameters, errors, streaming of a large answer, limits, URL decoding.
// Needs SPICED (ctest sets it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { SpiceClient } from '@spiceai/spice';

import { startSpiced, request, sleep } from './lib/spiced.mjs';

const FRUITS_CSV = 'id,name,price,picked\n1,apple,1.5,2024-01-31\n2,"banana, ripe",0.25,2024-02-01\n3,cherry,,2024-02-02\n';

const SPICEPOD = `version: v1
kind: Spicepod
name: http_e2e
datasets:
  - from: file:fruits.csv
    name: fruits
    acceleration:
      enabled: true
      engine: arrow
  - from: file:fruits.csv
    name: fruits_duck
    acceleration:
      enabled: true
      engine: duckdb
  - from: file:fruits.csv
    name: fruits_fed
  - from: file:fruits.csv
    name: refresh_me
    acceleration:
      enabled: true
  - from: file:fruits.csv
    name: patch_me
    acceleration:
      enabled: true
      engine: duckdb
`;

const TEXT = 'text/plain; charset=utf-8';
const ORDERED = 'SELECT id, name, price, picked FROM fruits ORDER BY id';
const FRUITS_JSON =
  '[{"id":1,"name":"apple","price":1.5,"picked":"2024-01-31"},' +
  '{"id":2,"name":"banana, ripe","price":0.25,"picked":"2024-02-01"},' +
  '{"id":3,"name":"cherry","price":null,"picked":"2024-02-02"}]';

let rt;

before(async () => {
  rt = await startSpiced({ spicepod: SPICEPOD, files: { 'fruits.csv': FRUITS_CSV } });
});

after(async () => {
  if (rt) await rt.stop();
});

// Polls a query until it returns `want` rows (refreshes run in the background).
async function waitRowCount(table, want, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let n;
  while (Date.now() < deadline) {
    n = (await rt.rows(`SELECT count(*) AS n FROM ${table}`))[0].n;
    if (n === want) return;
    await sleep(50);
  }
  assert.fail(`${table} has ${n} rows, expected ${want}`);
}

// ---- health and readiness -----------------------------------------------------------------------------------

test('GET /health answers ok', async () => {
  const r = await rt.get('/health');
  assert.equal(r.status, 200);
  assert.equal(r.text, 'ok\n');
  assert.equal(r.headers['content-type'], TEXT);
  const head = await request(rt.url + '/health', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.text, '');
});

test('GET /v1/ready answers Ready once loaded', async () => {
  const r = await rt.get('/v1/ready');
  assert.equal(r.status, 200);
  assert.equal(r.text, 'Ready');
  assert.equal(r.headers['content-type'], TEXT);
});

// ---- /v1/sql formats --------------------------------------------------------------------------------------

test('/v1/sql returns JSON rows by default, from every kind of dataset', async () => {
  for (const table of ['fruits', 'fruits_duck', 'fruits_fed']) {
    const r = await rt.sql(ORDERED.replace('fruits', table));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.text, FRUITS_JSON, table);
  }
  const explicit = await rt.sql(ORDERED, { accept: 'application/json' });
  assert.equal(explicit.text, FRUITS_JSON);
  const wildcard = await rt.sql(ORDERED, { accept: '*/*' });
  assert.equal(wildcard.headers['content-type'], 'application/json');
  const empty = await rt.sql('SELECT * FROM fruits WHERE id > 100');
  assert.equal(empty.text, '[]');
});

test('/v1/sql returns CSV for Accept: text/csv', async () => {
  const r = await rt.sql(ORDERED, { accept: 'text/csv' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/csv');
  assert.equal(r.text, 'id,name,price,picked\n1,apple,1.5,2024-01-31\n2,"banana, ripe",0.25,2024-02-01\n3,cherry,,2024-02-02\n');
});

test('/v1/sql returns a box table for Accept: text/plain', async () => {
  const r = await rt.sql(ORDERED, { accept: 'text/plain' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], TEXT);
  assert.equal(
    r.text,
    '+----+--------------+-------+------------+\n' +
      '| id | name         | price | picked     |\n' +
      '+----+--------------+-------+------------+\n' +
      '| 1  | apple        | 1.5   | 2024-01-31 |\n' +
      '| 2  | banana, ripe | 0.25  | 2024-02-01 |\n' +
      '| 3  | cherry       |       | 2024-02-02 |\n' +
      '+----+--------------+-------+------------+\n',
  );
});

test('/v1/sql returns the sql.v1+json envelope', async () => {
  const r = await rt.sql(ORDERED, { accept: 'application/vnd.spiceai.sql.v1+json' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/vnd.spiceai.sql.v1+json');
  const doc = JSON.parse(r.text);
  assert.equal(doc.row_count, 3);
  assert.deepEqual(doc.data, JSON.parse(FRUITS_JSON));
  const field = (name, data_type) => ({ name, data_type, nullable: true, dict_id: 0, dict_is_ordered: false, metadata: {} });
  assert.deepEqual(doc.schema.fields, [
    field('id', 'Int64'),
    field('name', 'Utf8'),
    field('price', 'Float64'),
    field('picked', 'Date32'),
  ]);
});

test('the first recognised Accept type wins', async () => {
  const csv = await rt.sql('SELECT 1 AS a', { accept: 'text/html, text/csv;q=0.1, application/json' });
  assert.equal(csv.headers['content-type'], 'text/csv');
  assert.equal(csv.text, 'a\n1\n');
  const json = await rt.sql('SELECT 1 AS a', { accept: 'image/png, application/json, text/csv' });
  assert.equal(json.text, '[{"a":1}]');
});

test('/v1/sql renders DuckDB types exactly', async () => {
  const r = await rt.sql(
    "SELECT 12345678901234567890.12::DECIMAL(38,2) d, 9007199254740993::BIGINT big, 18446744073709551615::UBIGINT u, " +
      "'nan'::DOUBLE n, 0.1::DOUBLE f, 'x\"y' || chr(10) AS s, '\\xAA'::BLOB b, TIMESTAMP '2024-01-31 12:34:56.789' ts, " +
      "TIME '12:34:56.789' t, INTERVAL '1 month 2 days 3 seconds' i, [1, NULL] l, {'k': 'v'} st, MAP {'a': 1} m, " +
      "'b'::ENUM('a', 'b') e, NULL::INT z",
  );
  assert.equal(r.status, 200, r.text);
  assert.equal(
    r.text,
    '[{"d":12345678901234567890.12,"big":9007199254740993,"u":18446744073709551615,"n":"NaN","f":0.1,' +
      '"s":"x\\"y\\n","b":"qg==","ts":"2024-01-31T12:34:56.789","t":"12:34:56.789",' +
      '"i":"1 month 2 days 00:00:03","l":[1,null],"st":{"k":"v"},"m":{"a":1},"e":"b","z":null}]',
  );
});

// ---- parameters ------------------------------------------------------------------------------------------

test('JSON bodies bind positional and named parameters', async () => {
  const pos = await rt.sqlJson('SELECT name FROM fruits WHERE id = $1 OR name = $2 ORDER BY id', [2, 'cherry']);
  assert.equal(pos.status, 200, pos.text);
  assert.equal(pos.text, '[{"name":"banana, ripe"},{"name":"cherry"}]');
  const named = await rt.sqlJson('SELECT $id::INT + 1 AS next, $label AS label', { id: 41, label: 'x' });
  assert.equal(named.status, 200, named.text);
  assert.equal(named.text, '[{"next":42,"label":"x"}]');
  const types = await rt.sqlJson('SELECT $1 IS NULL AS a, $2 AS b, $3 AS c', [null, true, 2.5]);
  assert.equal(types.text, '[{"a":true,"b":true,"c":2.5}]');
  const noParams = await rt.sqlJson('SELECT 7 AS seven');
  assert.equal(noParams.text, '[{"seven":7}]');
  const csv = await rt.sqlJson('SELECT $1 AS v', ['a,b'], { accept: 'text/csv' });
  assert.equal(csv.text, 'v\n"a,b"\n');
});

// ---- errors ----------------------------------------------------------------------------------------------

test('/v1/sql errors are 400 text/plain with the message', async () => {
  const bad = await rt.sql('SELEC 1');
  assert.equal(bad.status, 400);
  assert.equal(bad.headers['content-type'], TEXT);
  assert.match(bad.text, /syntax error/i);
  const missing = await rt.sql('SELECT * FROM no_such_table');
  assert.equal(missing.status, 400);
  assert.match(missing.text, /no_such_table/);
  const conv = await rt.sql("SELECT CAST('x' || id AS INTEGER) FROM fruits");
  assert.equal(conv.status, 400);
  assert.match(conv.text, /Conversion Error/);
  const denied = await rt.sql("COPY fruits TO 'out.csv'");
  assert.equal(denied.status, 400);
  assert.ok(denied.text.length > 0);
});

test('/v1/sql rejects bodies it cannot read', async () => {
  const utf8 = await request(rt.url + '/v1/sql', { method: 'POST', body: Buffer.from([0x53, 0x45, 0xff]) });
  assert.equal(utf8.status, 400);
  assert.equal(utf8.text, 'request body is not valid UTF-8 (invalid byte at offset 2)');
  const json = await request(rt.url + '/v1/sql', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: '{"sql": ',
  });
  assert.equal(json.status, 400);
  assert.match(json.text, /^request body is not valid JSON/);
  const param = await rt.sqlJson('SELECT $1', [[1]]);
  assert.equal(param.status, 400);
  assert.equal(param.text, 'parameter $1 must be null, a boolean, a number or a string');
  const noSql = await request(rt.url + '/v1/sql', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json; charset=utf-8' },
    body: '{"query": "SELECT 1"}',
  });
  assert.equal(noSql.status, 400);
  assert.equal(noSql.text, 'request body must have a "sql" string');
});

// ---- streaming ---------------------------------------------------------------------------------------------

test('a large answer is streamed (chunked) and complete', async () => {
  const n = 300000;
  const r = await rt.sql(`SELECT i, 'row ' || i AS s FROM range(${n}) t(i) ORDER BY i`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['transfer-encoding'], 'chunked');
  assert.equal(r.headers['content-length'], undefined);
  const rows = JSON.parse(r.text);
  assert.equal(rows.length, n);
  assert.deepEqual(rows[0], { i: 0, s: 'row 0' });
  assert.deepEqual(rows[n - 1], { i: n - 1, s: `row ${n - 1}` });
  const csv = await rt.sql(`SELECT i FROM range(${n}) t(i)`, { accept: 'text/csv' });
  assert.equal(csv.text.split('\n').length, n + 2); // header + rows + the empty piece after the last \n
  const small = await rt.sql('SELECT 1 AS a');
  assert.equal(small.headers['content-length'], String('[{"a":1}]'.length));
});

test('an error after the response started cuts the body short', async () => {
  // The failing row is the last of two million: DuckDB's streaming buffer (about 1 MB) keeps execution from
  // reaching it before the client has read the first batches, so headers and data are already out.
  const sqlText = "SELECT i, CASE WHEN i = 2000000 THEN error('boom') ELSE 'ok' END AS v FROM range(2000001) t(i)";
  await assert.rejects(rt.sql(sqlText), /truncated|aborted/);
  const after = await rt.sql('SELECT 1 AS still_up');
  assert.equal(after.text, '[{"still_up":1}]');
  assert.match(rt.log(), /query results cut short after the response started: .*boom/);
  const early = await rt.sql("SELECT error('early') AS v");
  assert.equal(early.status, 400);
  assert.match(early.text, /early/);
});

// ---- datasets, status, spicepods -----------------------------------------------------------------------

const DATASETS = [
  { from: 'file:fruits.csv', name: 'fruits', replication_enabled: false, acceleration_enabled: true },
  { from: 'file:fruits.csv', name: 'fruits_duck', replication_enabled: false, acceleration_enabled: true },
  { from: 'file:fruits.csv', name: 'fruits_fed', replication_enabled: false, acceleration_enabled: false },
  { from: 'file:fruits.csv', name: 'refresh_me', replication_enabled: false, acceleration_enabled: true },
  { from: 'file:fruits.csv', name: 'patch_me', replication_enabled: false, acceleration_enabled: true },
];

test('GET /v1/datasets lists datasets as JSON and CSV', async () => {
  const r = await rt.get('/v1/datasets');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.text, JSON.stringify(DATASETS));
  const withStatus = await rt.get('/v1/datasets?status=true');
  assert.equal(withStatus.text, JSON.stringify(DATASETS.map((d) => ({ ...d, status: 'Ready' }))));
  const csv = await rt.get('/v1/datasets?format=csv');
  assert.equal(csv.headers['content-type'], 'text/csv');
  assert.equal(
    csv.text,
    'from,name,replication_enabled,acceleration_enabled\n' +
      DATASETS.map((d) => `${d.from},${d.name},${d.replication_enabled},${d.acceleration_enabled}\n`).join(''),
  );
  const csvStatus = await rt.get('/v1/datasets?format=csv&status=true');
  assert.equal(csvStatus.text.split('\n')[0], 'from,name,replication_enabled,acceleration_enabled,status');
  assert.equal(csvStatus.text.split('\n')[1], 'file:fruits.csv,fruits,false,true,Ready');
  assert.equal((await rt.get('/v1/datasets?source=file')).text, JSON.stringify(DATASETS));
  assert.equal((await rt.get('/v1/datasets?source=postgres')).text, '[]');
  const bad = await rt.get('/v1/datasets?format=xml');
  assert.equal(bad.status, 400);
  assert.equal(bad.text, 'unknown format "xml": expected json or csv');
  const encoded = await rt.get('/v1/datasets?%66ormat=%63sv&status=%74rue');
  assert.equal(encoded.text, csvStatus.text);
});

test('GET /v1/status reports the components', async () => {
  const r = await rt.get('/v1/status');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(r.text), [
    { name: 'http', endpoint: rt.httpAddr, status: 'Ready' },
    { name: 'flight', endpoint: rt.flightAddr, status: 'Ready' },
    { name: 'metrics', endpoint: 'N/A', status: 'Disabled' },
    { name: 'opentelemetry', endpoint: 'N/A', status: 'Disabled' },
  ]);
  const csv = await rt.get('/v1/status?format=csv');
  assert.equal(
    csv.text,
    `name,endpoint,status\nhttp,${rt.httpAddr},Ready\nflight,${rt.flightAddr},Ready\nmetrics,N/A,Disabled\nopentelemetry,N/A,Disabled\n`,
  );
});

test('GET /v1/spicepods returns the spicepod', async () => {
  const r = await rt.get('/v1/spicepods');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/json');
  const pods = JSON.parse(r.text);
  assert.equal(pods.length, 1);
  assert.equal(pods[0].name, 'http_e2e');
  assert.equal(pods[0].version, 'v1');
  assert.deepEqual(pods[0].datasets.map((d) => d.name), DATASETS.map((d) => d.name));
  const csv = await rt.get('/v1/spicepods?format=csv');
  assert.equal(csv.headers['content-type'], 'text/csv');
  assert.equal(csv.text, 'name,version,datasets_count,models_count,dependencies_count\nhttp_e2e,v1,5,0,0\n');
});

// ---- refresh ---------------------------------------------------------------------------------------------

function post(path, body, method = 'POST') {
  const headers = body === undefined ? {} : { 'Content-Type': 'application/json' };
  return request(rt.url + path, { method, headers, body });
}

test('POST .../acceleration/refresh triggers a refresh with Spice messages', async () => {
  const ok = await post('/v1/datasets/fruits/acceleration/refresh');
  assert.equal(ok.status, 201);
  assert.equal(ok.headers['content-type'], 'application/json');
  assert.equal(ok.text, '{"message":"Dataset refresh triggered for fruits."}');
  const upper = await post('/v1/datasets/FRUITS_DUCK/acceleration/refresh', '{}');
  assert.equal(upper.status, 201);
  assert.equal(upper.text, '{"message":"Dataset refresh triggered for fruits_duck."}');
  const encoded = await post('/v1/datasets/fr%75its/acceleration/refresh');
  assert.equal(encoded.status, 201);
  const missing = await post('/v1/datasets/nope/acceleration/refresh');
  assert.equal(missing.status, 404);
  assert.equal(missing.text, '{"message":"Dataset nope not found"}');
  const slash = await post('/v1/datasets/a%2Fb/acceleration/refresh');
  assert.equal(slash.status, 404);
  assert.equal(slash.text, '{"message":"Dataset a/b not found"}');
  const federated = await post('/v1/datasets/fruits_fed/acceleration/refresh');
  assert.equal(federated.status, 400);
  assert.equal(federated.text, '{"message":"Dataset fruits_fed does not have acceleration enabled"}');
  const malformed = await post('/v1/datasets/fruits/acceleration/refresh', '{not json');
  assert.equal(malformed.status, 201); // as in Spice: a malformed body means no overrides
});

test('a refresh_sql override applies to that refresh', async () => {
  const r = await post('/v1/datasets/refresh_me/acceleration/refresh', JSON.stringify({ refresh_sql: 'SELECT * FROM refresh_me WHERE id > 1' }));
  assert.equal(r.status, 201, r.text);
  await waitRowCount('refresh_me', 2);
});

test('PATCH .../acceleration replaces refresh_sql', async () => {
  const none = await post('/v1/datasets/patch_me/acceleration', '{}', 'PATCH');
  assert.equal(none.status, 200);
  assert.equal(none.text, '');
  const ok = await post('/v1/datasets/patch_me/acceleration', JSON.stringify({ refresh_sql: 'SELECT * FROM patch_me WHERE id = 3' }), 'PATCH');
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.text, '');
  assert.equal((await post('/v1/datasets/patch_me/acceleration/refresh')).status, 201);
  await waitRowCount('patch_me', 1);
  const missing = await post('/v1/datasets/nope/acceleration', JSON.stringify({ refresh_sql: 'SELECT 1' }), 'PATCH');
  assert.equal(missing.status, 404);
  assert.equal(missing.text, '{"message":"Dataset nope not found"}');
  const bad = await post('/v1/datasets/patch_me/acceleration', JSON.stringify({ refresh_sql: 'DROP TABLE patch_me' }), 'PATCH');
  assert.equal(bad.status, 500);
  assert.match(JSON.parse(bad.text).message, /^Request failed\. /);
});

// ---- the official SDK over HTTP ---------------------------------------------------------------------------

test('@spiceai/spice works over HTTP (health, ready, sql, sqlJson, parameters, refresh)', async () => {
  const client = new SpiceClient({ httpUrl: rt.url, httpOnly: true, logging: false });
  assert.equal(await client.isSpiceHealthy(), true);
  assert.equal(await client.isSpiceReady(), true);
  const table = await client.sql('SELECT id, name, price FROM fruits ORDER BY id');
  assert.equal(table.numRows, 3);
  assert.deepEqual(
    table.toArray().map((r) => r.toJSON()),
    [
      { id: 1, name: 'apple', price: 1.5 },
      { id: 2, name: 'banana, ripe', price: 0.25 },
      { id: 3, name: 'cherry', price: null },
    ],
  );
  const doc = await client.sqlJson('SELECT id FROM fruits ORDER BY id');
  assert.equal(doc.row_count, 3);
  assert.deepEqual(doc.data, [{ id: 1 }, { id: 2 }, { id: 3 }]);
  assert.equal(doc.schema.fields[0].data_type, 'Int64');
  const pos = await client.sql('SELECT name FROM fruits WHERE id = $1', { parameters: [2] });
  assert.deepEqual(pos.toArray().map((r) => r.toJSON()), [{ name: 'banana, ripe' }]);
  const named = await client.sql('SELECT name FROM fruits WHERE id = $id', { parameters: { id: 3 } });
  assert.deepEqual(named.toArray().map((r) => r.toJSON()), [{ name: 'cherry' }]);
  assert.deepEqual(await client.refreshAcceleration('fruits'), { message: 'Dataset refresh triggered for fruits.' });
});

// ---- routing and limits --------------------------------------------------------------------------------

test('unknown paths are 404 and wrong methods 405', async () => {
  for (const path of ['/v1/nope', '/health/', '/v1/sql/x', '/', '/v1/datasets/x/acceleration/other']) {
    const r = await rt.get(path);
    assert.equal(r.status, 404, path);
  }
  const get = await rt.get('/v1/sql');
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, 'POST');
  const del = await request(rt.url + '/v1/datasets', { method: 'DELETE' });
  assert.equal(del.status, 405);
  assert.equal(del.headers.allow, 'GET, HEAD');
  const patchRefresh = await post('/v1/datasets/fruits/acceleration/refresh', '{}', 'PATCH');
  assert.equal(patchRefresh.status, 405);
  const badEscape = await rt.get('/v1/datasets/%zz/acceleration');
  assert.equal(badEscape.status, 400);
});

test('bodies over 128 MiB are refused with 413', async () => {
  // Announce a huge body and send only a little of it: the answer must come from the Content-Length alone.
  const status = await new Promise((resolve, reject) => {
    const req = http.request(rt.url + '/v1/sql', {
      method: 'POST',
      headers: { 'Content-Length': String(200 * 1024 * 1024), 'Content-Type': 'text/plain' },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode);
      req.destroy();
    });
    req.on('error', (e) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? undefined : reject(e)));
    req.write('SELECT 1 ');
  });
  assert.equal(status, 413);
  const still = await rt.get('/health');
  assert.equal(still.status, 200);
});
