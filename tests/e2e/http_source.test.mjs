// SPDX-License-Identifier: Apache-2.0
//
// The http/https connector against a local HTTP server started by the test (node:http): Parquet, CSV and JSON
// Lines at URLs, federated and accelerated, with basic auth (the password from ${secrets:…}); a 404 names the
// URL and the status, a slow answer fails after client_timeout, a wrong password is refused without being
// printed; a server that is down at start leaves the dataset in Error while the rest of the pod serves and
// is picked up when it comes; a server that fails during a refresh leaves the last good copy serving.
// A federated Parquet file is read with ranged GETs: a query fetches only the column chunks (and row groups)
// it needs, answers as the whole file does, and a server without Range support still serves it whole; an
// object rewritten between queries, or during one (HTTP 412 to If-Match), is read again from its new footer.
// Needs SPICED and SPICE_BIN_DIR (gen_tpch and duckdb_exec write the Parquet files); ctest sets both.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startSpiced, freePort } from './lib/spiced.mjs';
import { datasetStatuses, waitUntil } from './lib/lifecycle.mjs';

const BIN = process.env.SPICE_BIN_DIR;
const USER = 'alice';
const PASSWORD = 'Pa55-w0rd-http-9731';

let data;
let nationParquet;
let server;
let base;
const state = { trips: 'id,name,fare\n1,a,1.5\n2,b,2.5\n3,c,3.5\n', failing: false, nationEtag: '"n1"', notModified: 0,
                fullNation: 0 };
const requests = [];
// Parquet objects served with byte counts: ranges (206, Content-Range) when `ranges`, validators when `etag`.
const objects = {};

function csvOf(n) {
  const lines = ['id,name,fare'];
  for (let i = 1; i <= n; i++) lines.push(`${i},n${i},${i}.5`);
  return lines.join('\n') + '\n';
}

// The routes the connector meets: plain files, basic auth, 404, a slow answer, a switchable failure.
function handle(req, res) {
  requests.push(req.url);
  const send = (type, body) => {
    res.writeHead(200, { 'Content-Type': type });
    res.end(body);
  };
  if (req.url === '/pub/nation.parquet') {
    // Revalidation: the connector keeps its last copy and asks with If-None-Match.
    if (req.headers['if-none-match'] === state.nationEtag) {
      state.notModified++;
      res.writeHead(304, { ETag: state.nationEtag });
      return res.end();
    }
    state.fullNation++;
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', ETag: state.nationEtag });
    return res.end(nationParquet);
  }
  if (req.url === '/pub/nation2.parquet') return send('application/octet-stream', nationParquet);
  if (req.url === '/pub/trips.csv') return send('text/csv', state.trips);
  if (req.url === '/pub/events.jsonl')
    return send('application/x-ndjson', '{"id":1,"kind":"x"}\n{"id":2,"kind":"y"}\n{"id":3,"kind":"x"}\n');
  if (req.url === '/pub/bad.parquet') return send('text/html', '<html>maintenance</html>');
  if (req.url === '/pub/export?format=csv') return send('text/csv', 'k,v\n1,one\n');
  if (req.url === '/flaky/trips.csv') {
    if (state.failing) {
      res.writeHead(503);
      return res.end('maintenance');
    }
    return send('text/csv', state.trips);
  }
  if (req.url === '/secure/trips.csv') {
    const want = 'Basic ' + Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
    if (req.headers.authorization !== want) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="x"' });
      return res.end('no');
    }
    return send('text/csv', csvOf(10));
  }
  if (objects[req.url]) return serveObject(req, res, objects[req.url]);
  if (req.url === '/slow/trips.csv') {
    const t = setTimeout(() => send('text/csv', csvOf(2)), 8000);
    res.on('close', () => clearTimeout(t));
    return undefined;
  }
  res.writeHead(404);
  return res.end('not here');
}

// GET of an object: 304 to a matching If-None-Match, 412 to a failing If-Match, one `bytes=a-b` or `bytes=-n`
// range when the object serves ranges (else the whole body, as a server without Range support does).
// o.afterNext runs once the next request was answered.
function serveObject(req, res, o) {
  o.gets++;
  const after = o.afterNext;
  o.afterNext = null;
  if (after) res.on('finish', () => after(o));
  if (o.etag && req.headers['if-none-match'] === o.etag) {
    res.writeHead(304, { ETag: o.etag });
    return res.end();
  }
  if (req.headers['if-match'] && (req.headers['if-match'] !== o.etag || o.etag.startsWith('W/'))) { // strong comparison
    o.preconditionFailed++;
    res.writeHead(412);
    return res.end();
  }
  const headers = { 'Content-Type': 'application/octet-stream', ...(o.etag ? { ETag: o.etag } : {}) };
  const m = o.ranges ? /^bytes=(\d*)-(\d*)$/.exec(req.headers.range || '') : null;
  let body = o.body;
  if (m) {
    const size = o.body.length;
    const first = m[1] === '' ? Math.max(0, size - Number(m[2])) : Number(m[1]);
    const last = m[1] === '' || m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    body = o.body.subarray(first, last + 1);
    res.writeHead(206, { ...headers, 'Content-Range': `bytes ${first}-${last}/${size}` });
  } else {
    res.writeHead(200, headers);
  }
  o.bytes += body.length;
  return res.end(body);
}

// What serving `o` took while fn ran: body bytes and requests.
async function served(o, fn) {
  const bytes = o.bytes;
  const gets = o.gets;
  const result = await fn();
  return { result, bytes: o.bytes - bytes, gets: o.gets - gets };
}

function listen(srv, port = 0) {
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv.address().port));
  });
}

function close(srv) {
  srv.closeAllConnections?.();
  return new Promise((resolve) => srv.close(() => resolve()));
}

before(async () => {
  data = mkdtempSync(join(tmpdir(), 'spicec-http-'));
  execFileSync(join(BIN, 'gen_tpch'), ['--sf', '0.01', data]);
  nationParquet = readFileSync(join(data, 'nation.parquet'));
  for (const [name, offset] of [['big', 0], ['big2', 1000000], ['big3', 2000000]])
    execFileSync(join(BIN, 'duckdb_exec'), [bigParquetSql(offset, join(data, `${name}.parquet`))]);
  server = http.createServer(handle);
  base = `http://127.0.0.1:${await listen(server)}`;
});

after(async () => {
  if (server) await close(server);
  if (data) rmSync(data, { recursive: true, force: true });
});

function dataset(name, url, { accel, params = {}, extra = '' } = {}) {
  const lines = [`  - from: ${url}`, `    name: ${name}`];
  if (Object.keys(params).length) {
    lines.push('    params:');
    for (const [k, v] of Object.entries(params)) lines.push(`      ${k}: ${JSON.stringify(String(v))}`);
  }
  if (accel) lines.push('    acceleration:', '      enabled: true', `      engine: ${accel}`);
  if (extra) lines.push(extra);
  return lines.join('\n') + '\n';
}

// 100000 rows in 5 row groups; `note` (random hex) makes most of the bytes. Ids start at `offset`.
function bigParquetSql(offset, path) {
  return `COPY (SELECT i + ${offset} AS id, (i * 1.5)::DOUBLE AS fare, 'name' || (i % 100) AS name, (i % 7)::INTEGER AS k,
    DATE '2020-01-01' + (i // 1000)::INTEGER AS d, md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS note
    FROM range(100000) t(i)) TO '${path}' (FORMAT parquet, ROW_GROUP_SIZE 20000)`;
}
const BIG_SUM = (100000 * 99999) / 2;

// The compressed size of a column chunk, as DuckDB reads the file's metadata.
function chunkSize(path, rowGroup, column) {
  const out = execFileSync(join(BIN, 'duckdb_exec'), [`SELECT total_compressed_size FROM parquet_metadata('${path}')
    WHERE row_group_id = ${rowGroup} AND path_in_schema = '${column}'`]);
  return Number(out.toString().trim());
}

const pod = (datasets) => `version: v1\nkind: Spicepod\nname: httptest\ndatasets:\n${datasets.join('')}`;

async function rows(rt, sql) {
  const r = await rt.sql(sql);
  assert.equal(r.status, 200, `${sql}: ${r.text}`);
  return JSON.parse(r.text);
}

test('Parquet, CSV and JSON Lines at URLs, federated and accelerated, with basic auth from a secret', { timeout: 60000 }, async () => {
  const rt = await startSpiced({
    spicepod: pod([
      dataset('nation', `${base}/pub/nation.parquet`),
      dataset('trips', `${base}/pub/trips.csv`, { accel: 'arrow' }),
      dataset('events', `${base}/pub/events.jsonl`, { accel: 'duckdb' }),
      dataset('late_trips', `${base}/pub/trips.csv`, {
        accel: 'arrow', extra: '      refresh_sql: SELECT id, fare FROM late_trips WHERE id > 1' }),
      dataset('exported', `${base}/pub/export?format=csv`, { params: { file_format: 'csv' } }),
      dataset('secure', `${base}/secure/trips.csv`, {
        accel: 'arrow', params: { http_username: USER, http_password: '${secrets:http_pw}' } }),
    ]),
    env: { HTTP_PW: PASSWORD },
  });
  try {
    const nation = await rows(rt, 'SELECT count(*) AS n, min(n_name) AS first FROM nation');
    assert.deepEqual(nation, [{ n: 25, first: 'ALGERIA' }]);
    assert.deepEqual(await rows(rt, 'SELECT n_name FROM nation WHERE n_nationkey = 7'), [{ n_name: 'GERMANY' }]);
    assert.deepEqual(await rows(rt, 'SELECT id, name, fare FROM trips ORDER BY id'),
      [{ id: 1, name: 'a', fare: 1.5 }, { id: 2, name: 'b', fare: 2.5 }, { id: 3, name: 'c', fare: 3.5 }]);
    assert.deepEqual(await rows(rt, 'SELECT * FROM late_trips ORDER BY id'), [{ id: 2, fare: 2.5 }, { id: 3, fare: 3.5 }],
      'refresh_sql ran on the downloaded file');
    assert.deepEqual(await rows(rt, 'SELECT kind, count(*) AS n FROM events GROUP BY kind ORDER BY kind'),
      [{ kind: 'x', n: 2 }, { kind: 'y', n: 1 }]);
    assert.deepEqual(await rows(rt, 'SELECT k, v FROM exported'), [{ k: 1, v: 'one' }]);
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n, sum(id) AS s FROM secure'), [{ n: 10, s: 55 }]);
    // A federated dataset asks the server at each query; an unchanged file (same ETag) is not fetched again.
    const before = requests.filter((u) => u === '/pub/nation.parquet').length;
    const notModified = state.notModified;
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS m FROM nation'), [{ m: 25 }]);
    assert.ok(requests.filter((u) => u === '/pub/nation.parquet').length > before, 'the federated query asked the server');
    assert.ok(state.notModified > notModified, 'the unchanged file was revalidated (304), not fetched again');
    // A new version (new ETag) is fetched whole. (Each query's text differs: the results cache would answer a
    // repeated one.)
    const full = state.fullNation;
    state.nationEtag = '"n2"';
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM nation WHERE true'), [{ n: 25 }]);
    assert.equal(state.fullNation, full + 1, 'the new version was fetched');
    assert.ok(!rt.log().includes(PASSWORD), 'the password appears in the log');
  } finally {
    await rt.stop();
  }
});

test('404, timeout, TLS failure and a wrong password fail their dataset with clear messages; the rest serves', { timeout: 60000 }, async () => {
  const rt = await startSpiced({
    spicepod: pod([
      dataset('ok', `${base}/pub/trips.csv`, { accel: 'arrow' }),
      dataset('missing', `${base}/pub/missing.csv`, { accel: 'arrow' }),
      dataset('slow', `${base}/slow/trips.csv`, { accel: 'arrow', params: { client_timeout: '1s' } }),
      dataset('badpass', `${base}/secure/trips.csv`, {
        accel: 'arrow', params: { http_username: USER, http_password: 'Wr0ng-Http-Pa55' } }),
      dataset('noformat', `${base}/pub/blob`, { accel: 'arrow' }),
      dataset('bad', `${base}/pub/bad.parquet`, { accel: 'arrow' }),
      // https:// to a plain-HTTP server: the TLS handshake fails.
      dataset('tls', `${base.replace('http:', 'https:')}/pub/trips.csv`, { accel: 'arrow' }),
    ]),
    ready: false,
  });
  try {
    await waitUntil('statuses', () => datasetStatuses(rt),
      (s) => s.ok === 'Ready' && s.missing === 'Error' && s.slow === 'Error' && s.badpass === 'Error' && s.noformat === 'Error' &&
           s.tls === 'Error' && s.bad === 'Error',
      { timeoutMs: 30000 });
    const log = rt.log();
    assert.match(log, /"http:\/\/127\.0\.0\.1:\d+\/pub\/missing\.csv" for dataset "missing" was not found \(HTTP 404\)/);
    assert.match(log, /timed out after 1\.0 s fetching "http:\/\/127\.0\.0\.1:\d+\/slow\/trips\.csv" for dataset "slow"/);
    assert.match(log, /access to "http:\/\/127\.0\.0\.1:\d+\/secure\/trips\.csv" for dataset "badpass" was denied \(HTTP 401\)/);
    assert.match(log, /dataset "noformat": cannot tell the format of "http:\/\/127\.0\.0\.1:\d+\/pub\/blob"/);
    // What is wrong with the body names the URL, not the temporary file it was read from.
    assert.match(log, /could not read "http:\/\/127\.0\.0\.1:\d+\/pub\/bad\.parquet" for dataset "bad": .*parquet/i);
    assert.ok(!/spicec-http-/.test(log), 'a temporary path appears in the log');
    assert.match(log, /TLS failure fetching "https:\/\/127\.0\.0\.1:\d+\/pub\/trips\.csv" for dataset "tls"/);
    assert.ok(!log.includes('Wr0ng-Http-Pa55'), 'the wrong password appears in the log');
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM ok'), [{ n: 3 }]);
  } finally {
    await rt.stop();
  }
});

test('a server down at start: Error, the rest serves, then it loads; a failing refresh keeps the last good copy', { timeout: 90000 }, async () => {
  const port = await freePort();
  const late = http.createServer(handle);
  state.failing = false;
  state.trips = csvOf(3);
  const rt = await startSpiced({
    spicepod: pod([
      dataset('late', `http://127.0.0.1:${port}/pub/trips.csv`, { accel: 'arrow' }),
      dataset('flaky', `${base}/flaky/trips.csv`, { accel: 'arrow', extra: '      refresh_check_interval: 1s' }),
    ]),
    ready: false,
  });
  try {
    await waitUntil('late in Error, flaky Ready', () => datasetStatuses(rt), (s) => s.late === 'Error' && s.flaky === 'Ready');
    assert.match(rt.log(), new RegExp(`could not connect to "http://127\\.0\\.0\\.1:${port}/pub/trips\\.csv" for dataset "late"`));
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM flaky'), [{ n: 3 }]);
    await listen(late, port);
    await waitUntil('late loads once its server is up', () => datasetStatuses(rt), (s) => s.late === 'Ready', { timeoutMs: 45000 });
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM late'), [{ n: 3 }]);

    state.failing = true;
    await waitUntil('flaky in Error', () => datasetStatuses(rt), (s) => s.flaky === 'Error');
    assert.match(rt.log(), /fetching "http:\/\/127\.0\.0\.1:\d+\/flaky\/trips\.csv" for dataset "flaky" failed with HTTP 503/);
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM flaky'), [{ n: 3 }], 'the last good copy serves');
    state.trips = csvOf(5);
    state.failing = false;
    await waitUntil('the refresh after the failure', async () => (await rows(rt, 'SELECT count(*) AS n FROM flaky'))[0].n,
      (n) => n === 5, { timeoutMs: 30000, intervalMs: 200 });
  } finally {
    await rt.stop();
    await close(late);
  }
});

// The same queries on the dataset and on the local file: the answers must be equal.
const BIG_QUERIES = [
  'SELECT sum(id) AS s, count(*) AS n FROM {t}',
  'SELECT name, count(*) AS n, sum(k) AS k FROM {t} GROUP BY name ORDER BY name LIMIT 5',
  'SELECT id, fare, name, note FROM {t} WHERE id BETWEEN 50000 AND 50004 ORDER BY id',
  "SELECT count(*) AS n, min(id) AS lo FROM {t} WHERE name = 'name42'",
  "SELECT min(d) AS lo, max(d) AS hi, count(*) AS n FROM {t} WHERE d >= DATE '2020-03-01'",
  'SELECT k, avg(fare) AS f FROM {t} WHERE id < 30000 AND k IN (1, 3) GROUP BY k ORDER BY k',
  'SELECT * FROM {t} WHERE id > 99990 ORDER BY id',
  'SELECT count(*) AS n FROM {t} WHERE id > 100000 OR fare < 0',
  'SELECT note FROM {t} ORDER BY id DESC LIMIT 3',
  'SELECT count(*) AS n FROM {t} WHERE note IS NULL',
];

async function sameAnswers(rt, name, tag) {
  for (const q of BIG_QUERIES) {
    const got = await rows(rt, `${q.replaceAll('{t}', name)} -- ${tag}`);
    assert.deepEqual(got, await rows(rt, `${q.replaceAll('{t}', 'local')} -- ${tag}`), q);
  }
}

test('federated Parquet: ranged GETs fetch only what a query needs and answer as the whole file does', { timeout: 90000 }, async () => {
  const big = readFileSync(join(data, 'big.parquet'));
  const o = objects['/ranged/big.parquet'] = { body: big, etag: '"b1"', ranges: true, bytes: 0, gets: 0, preconditionFailed: 0 };
  const w = objects['/whole/big.parquet'] = { body: big, ranges: false, bytes: 0, gets: 0, preconditionFailed: 0 };
  const weak = objects['/weak/big.parquet'] = { body: big, etag: 'W/"w1"', ranges: true, bytes: 0, gets: 0, preconditionFailed: 0 };
  const rt = await startSpiced({
    spicepod: pod([
      dataset('big', `${base}/ranged/big.parquet`),
      dataset('whole', `${base}/whole/big.parquet`),
      dataset('weak', `${base}/weak/big.parquet`),
      dataset('local', `file:${join(data, 'big.parquet')}`),
    ]),
  });
  try {
    // One column of five row groups: its chunks, not the other columns.
    const one = await served(o, () => rows(rt, 'SELECT sum(id) AS s FROM big'));
    assert.deepEqual(one.result, [{ s: BIG_SUM }]);
    assert.ok(one.bytes < big.length / 3, `one column took ${one.bytes} of ${big.length} bytes`);
    const idChunks = [0, 1, 2, 3, 4].reduce((a, g) => a + chunkSize(join(data, 'big.parquet'), g, 'id'), 0);
    assert.equal(one.bytes, idChunks, 'the id chunks of the five row groups, only');
    // The same column again: the kept ranges serve it; one request (the footer's revalidation, a 304).
    const again = await served(o, () => rows(rt, 'SELECT max(id) AS m FROM big'));
    assert.deepEqual(again.result, [{ m: 99999 }]);
    assert.deepEqual([again.bytes, again.gets], [0, 1]);
    // Conditions that the statistics rule out: no data pages, even of a column not fetched yet.
    const none = await served(o, () => rows(rt, "SELECT count(*) AS n FROM big WHERE id > 100000 AND note = 'x'"));
    assert.deepEqual(none.result, [{ n: 0 }]);
    assert.deepEqual([none.bytes, none.gets], [0, 1]);
    // A range of ids: the row group that holds them, not the other four.
    const note = await served(o, () => rows(rt, 'SELECT count(note) AS n FROM big WHERE id BETWEEN 50000 AND 50009'));
    assert.deepEqual(note.result, [{ n: 10 }]);
    assert.equal(note.bytes, chunkSize(join(data, 'big.parquet'), 2, 'note'), 'the note chunk of row group 2, only');

    await sameAnswers(rt, 'big', 'ranged');
    // A server without Range support (and without validators): each query downloads the file whole.
    const whole = await served(w, () => rows(rt, 'SELECT sum(id) AS w FROM whole'));
    assert.deepEqual(whole.result, [{ w: BIG_SUM }]);
    assert.deepEqual([whole.bytes, whole.gets], [big.length, 1]);
    await sameAnswers(rt, 'whole', 'whole');
    // A weak ETag revalidates the copy (If-None-Match compares weakly) but cannot guard ranges (If-Match is
    // strong): they go without it, and are still ranges.
    const w1 = await served(weak, () => rows(rt, 'SELECT sum(id) AS w1 FROM weak'));
    assert.deepEqual(w1.result, [{ w1: BIG_SUM }]);
    assert.equal(w1.bytes, idChunks);
    assert.equal(weak.preconditionFailed, 0);

    // A new version between two queries: the next one reads its footer and its ranges.
    o.body = readFileSync(join(data, 'big2.parquet'));
    o.etag = '"b2"';
    assert.deepEqual(await rows(rt, 'SELECT sum(id) AS s2 FROM big'), [{ s2: BIG_SUM + 1000000 * 100000 }]);
    // A new version while a query reads (after the footer's revalidation): its ranges fail If-Match (412) and
    // the read starts over once.
    o.afterNext = (obj) => {
      obj.body = readFileSync(join(data, 'big3.parquet'));
      obj.etag = '"b3"';
    };
    const changed = await served(o, () => rows(rt, 'SELECT sum(id) AS s3, count(fare) AS n3 FROM big'));
    assert.deepEqual(changed.result, [{ s3: BIG_SUM + 2000000 * 100000, n3: 100000 }]);
    assert.ok(o.preconditionFailed >= 1, 'the stale ranges were refused');
  } finally {
    await rt.stop();
  }
});
