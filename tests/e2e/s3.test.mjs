// SPDX-License-Identifier: Apache-2.0
//
// The s3 connector against s3rver (an S3-compatible server from npm) started by the test on a free port,
// with a bucket the test seeds: one Parquet object, a hive-partitioned prefix of CSV objects read as one
// table, a prefix of more than 1000 objects (ListObjectsV2 pagination), SigV4-signed (s3_auth: key) and
// unsigned (public) requests. Failures: a wrong key (s3rver checks key ids, not V4 signatures) and a missing object fail their dataset with messages
// naming the dataset and the endpoint (never the secret); an endpoint that is down at start leaves the dataset
// in Error while the rest serves, and it loads once the server is up; a server that goes away during
// refreshes leaves the last good copy serving. A federated Parquet object is read with ranged GETs whose SigV4
// signatures (checked by the test's own verifier in front of s3rver) cover the Range header: a query of one
// column fetches its chunks only, conditions the statistics rule out fetch no data, and the answers are the
// local file's. Needs SPICED and SPICE_BIN_DIR (gen_tpch, duckdb_exec); ctest sets both.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startSpiced, freePort, request } from './lib/spiced.mjs';
import { datasetStatuses, waitUntil } from './lib/lifecycle.mjs';

const BIN = process.env.SPICE_BIN_DIR;
const KEY = 'S3RVER';
const SECRET = 'S3RVER'; // s3rver's built-in account
const MANY = 1005; // more than one ListObjectsV2 page (1000 keys)

let data;
let s3;
let endpoint;

// s3rver in a child node with OpenSSL's legacy provider: its continuation tokens are DES-encrypted, which
// OpenSSL 3 refuses otherwise (every truncated listing would be an InternalError).
// Each GET it answers is printed ("GET <url>"), then what it sent ("SENT <status> <body bytes> <url>"); each
// SigV4-signed request is verified here, as AWS computes the signature (s3rver only checks key ids), and
// printed ("SIGV4 ok|bad|other-key <signed headers> <url>").
const S3RVER_MAIN = `
const crypto = require('crypto');
const S3rver = require('s3rver');
const [port, dir, secret] = process.argv.slice(1);
const hmac = (k, s) => crypto.createHmac('sha256', k).update(s).digest();
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
function sigv4(req) {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\\/(\\d{8})\\/([^/]+)\\/s3\\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/
    .exec(req.headers.authorization || '');
  if (!m) return null;
  const [, keyId, date, region, signed, sig] = m;
  if (keyId !== 'S3RVER') return 'other-key ' + signed; /* signed with another secret: not ours to check */
  const [path, query = ''] = req.url.split('?');
  const params = query ? query.split('&').map((kv) => {
    const i = kv.indexOf('=');
    return [enc(decodeURIComponent(i < 0 ? kv : kv.slice(0, i))), enc(decodeURIComponent(i < 0 ? '' : kv.slice(i + 1)))];
  }) : [];
  params.sort((a, b) => (a[0] + '=' + a[1] < b[0] + '=' + b[1] ? -1 : 1));
  const headers = signed.split(';').map((h) => h + ':' + String(req.headers[h] ?? '').trim().replace(/\\s+/g, ' ') + '\\n');
  const canonical = [req.method, path, params.map((p) => p.join('=')).join('&'), headers.join(''), signed,
                     req.headers['x-amz-content-sha256'] || 'UNSIGNED-PAYLOAD'].join('\\n');
  const toSign = ['AWS4-HMAC-SHA256', req.headers['x-amz-date'], date + '/' + region + '/s3/aws4_request',
                  crypto.createHash('sha256').update(canonical).digest('hex')].join('\\n');
  const key = ['aws4_request'].reduce(hmac, hmac(hmac(hmac('AWS4' + secret, date), region), 's3'));
  return (hmac(key, toSign).toString('hex') === sig ? 'ok ' : 'bad ') + signed;
}
const srv = new S3rver({ port: Number(port), address: '127.0.0.1', silent: true, directory: dir,
                         configureBuckets: [{ name: 'lake' }] });
const callback = srv.callback.bind(srv);
srv.callback = () => {
  const handle = callback();
  return (req, res) => {
    const v = sigv4(req);
    if (v) console.log('SIGV4 ' + v + ' ' + req.url);
    if (req.method === 'GET') {
      console.log('GET ' + req.url);
      let sent = 0;
      const write = res.write.bind(res), end = res.end.bind(res);
      const count = (c) => { if (c && typeof c !== 'function') sent += Buffer.byteLength(c); };
      res.write = (c, ...rest) => { count(c); return write(c, ...rest); };
      res.end = (c, ...rest) => { count(c); return end(c, ...rest); };
      res.on('finish', () => console.log('SENT ' + res.statusCode + ' ' + sent + ' ' + req.url));
    }
    return handle(req, res);
  };
};
srv.run().then((a) => console.log('PORT ' + a.port), (e) => { console.error(e); process.exit(1); });`;

function startS3(port, dir) {
  const proc = spawn(process.execPath, ['--openssl-legacy-provider', '-e', S3RVER_MAIN, String(port), dir, SECRET],
                     { cwd: new URL('.', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  let out = '';
  let syncs = 0;
  const lines = (tag) => out.split('\n').filter((l) => l.startsWith(tag + ' ')).map((l) => l.slice(tag.length + 1).split(' '));
  const srv = {
    close: () => { proc.kill('SIGKILL'); return exited; },
    gets: (re) => out.split('\n').filter((l) => l.startsWith('GET ') && re.test(l.slice(4))).length,
    // Body bytes sent for the GETs of URLs matching re, how many there were, and their statuses.
    sent: (re) => lines('SENT').filter(([, , url]) => re.test(url))
      .reduce((a, [status, bytes]) => ({ bytes: a.bytes + Number(bytes), gets: a.gets + 1, statuses: [...a.statuses, status] }),
              { bytes: 0, gets: 0, statuses: [] }),
    signatures: () => lines('SIGV4').filter(([verdict]) => verdict !== 'other-key')
      .map(([verdict, signed, url]) => ({ ok: verdict === 'ok', signed: signed.split(';'), url })),
    // Resolves once everything the server did before this call is in `out` (its log lines are in order).
    sync: async (base) => {
      const marker = `/lake/__sync_${++syncs}`;
      await request(`${base}${marker}`);
      while (!out.includes(`GET ${marker}\n`)) await new Promise((r) => setTimeout(r, 10));
    },
  };
  return new Promise((resolve, reject) => {
    proc.stdout.on('data', (c) => {
      out += c;
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve({ srv, url: `http://127.0.0.1:${m[1]}` });
    });
    exited.then((code) => reject(new Error(`s3rver exited (${code}) before listening`)));
  });
}

// Unsigned PUT (s3rver accepts anonymous writes).
async function put(base, key, body) {
  const r = await request(`${base}/lake/${key}`, { method: 'PUT', headers: { 'Content-Length': Buffer.byteLength(body) }, body });
  if (r.status !== 200) throw new Error(`PUT ${key}: ${r.status} ${r.text}`);
}

before(async () => {
  data = mkdtempSync(join(tmpdir(), 'spicec-s3-'));
  execFileSync(join(BIN, 'gen_tpch'), ['--sf', '0.01', join(data, 'tpch')]);
  // 100000 rows in 5 row groups; `note` (random hex) makes most of the bytes.
  execFileSync(join(BIN, 'duckdb_exec'), [`COPY (SELECT i AS id, (i * 1.5)::DOUBLE AS fare, 'name' || (i % 100) AS name,
    (i % 7)::INTEGER AS k, md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS note FROM range(100000) t(i))
    TO '${join(data, 'big.parquet')}' (FORMAT parquet, ROW_GROUP_SIZE 20000)`]);
  const started = await startS3(0, join(data, 's3'));
  s3 = started.srv;
  endpoint = started.url;
  await put(endpoint, 'tpch/nation.parquet', readFileSync(join(data, 'tpch', 'nation.parquet')));
  await put(endpoint, 'big/big.parquet', readFileSync(join(data, 'big.parquet')));
  await put(endpoint, 'trips/year=2023/part-0.csv', 'id,fare\n1,1.5\n2,2.5\n');
  await put(endpoint, 'trips/year=2024/part-0.csv', 'id,fare\n3,3.5\n4,4.5\n5,5.5\n');
  await put(endpoint, 'trips/_SUCCESS', '');
  for (let i = 0; i < MANY; i += 50)
    await Promise.all(Array.from({ length: Math.min(50, MANY - i) }, (_, j) =>
      put(endpoint, `many/part-${String(i + j).padStart(5, '0')}.csv`, `id\n${i + j}\n`)));
});

after(async () => {
  if (s3) await s3.close();
  if (data) rmSync(data, { recursive: true, force: true });
});

function dataset(name, from, { accel, params = {}, extra = '' } = {}) {
  const lines = [`  - from: ${from}`, `    name: ${name}`, '    params:'];
  for (const [k, v] of Object.entries(params)) lines.push(`      ${k}: ${JSON.stringify(String(v))}`);
  if (accel) lines.push('    acceleration:', '      enabled: true', `      engine: ${accel}`);
  if (extra) lines.push(extra);
  return lines.join('\n') + '\n';
}

const pod = (datasets) => `version: v1\nkind: Spicepod\nname: s3test\ndatasets:\n${datasets.join('')}`;
const signed = (ep = endpoint) => ({ s3_endpoint: ep, s3_auth: 'key', s3_key: KEY, s3_secret: '${secrets:s3_secret}' });

async function rows(rt, sql) {
  const r = await rt.sql(sql);
  assert.equal(r.status, 200, `${sql}: ${r.text}`);
  return JSON.parse(r.text);
}

test('an object, a hive-partitioned prefix and a paginated prefix, signed and public', { timeout: 90000 }, async () => {
  const rt = await startSpiced({
    spicepod: pod([
      dataset('nation', 's3://lake/tpch/nation.parquet', { params: signed() }),
      dataset('trips', 's3://lake/trips/', { accel: 'arrow', params: { ...signed(), hive_partitioning_enabled: true } }),
      dataset('many', 's3://lake/many/', { accel: 'duckdb', params: signed() }),
      dataset('trips_fed', 's3://lake/trips/', { params: { ...signed(), hive_partitioning_enabled: true } }),
      dataset('public_nation', 's3://lake/tpch/nation.parquet', { accel: 'arrow', params: { s3_endpoint: endpoint, s3_auth: 'public' } }),
    ]),
    env: { S3_SECRET: SECRET },
  });
  try {
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM nation'), [{ n: 25 }]);
    assert.deepEqual(await rows(rt, 'SELECT n_name FROM nation WHERE n_nationkey = 7'), [{ n_name: 'GERMANY' }]);
    assert.deepEqual(await rows(rt, 'SELECT CAST(year AS INTEGER) AS year, count(*) AS n, sum(fare) AS fare FROM trips GROUP BY 1 ORDER BY 1'),
      [{ year: 2023, n: 2, fare: 4 }, { year: 2024, n: 3, fare: 13.5 }]);
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n, sum(id) AS s FROM many'), [{ n: MANY, s: (MANY * (MANY - 1)) / 2 }]);
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM public_nation'), [{ n: 25 }]);
    // Federated: each query lists the prefix; a new object, or a changed one, is read by the next query, and
    // only those are fetched (the others are kept from the last read). Each query's text differs: the results
    // cache would answer a repeated one.
    const fetched = (y) => s3.gets(new RegExp(`^/lake/trips/year(=|%3D)${y}/part-0\\.csv`)); // '=' is sent encoded
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM trips_fed'), [{ n: 5 }]);
    const before2023 = fetched(2023);
    assert.ok(before2023 >= 1);
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS m FROM trips_fed'), [{ m: 5 }]);
    assert.equal(fetched(2023), before2023, 'an unchanged prefix is not fetched again');
    await put(endpoint, 'trips/year=2025/part-0.csv', 'id,fare\n6,6.5\n');
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n, sum(fare) AS f FROM trips_fed'), [{ n: 6, f: 24 }]);
    assert.equal(fetched(2023), before2023, 'an unchanged object is not fetched again');
    assert.equal(fetched(2025), 1);
    await put(endpoint, 'trips/year=2025/part-0.csv', 'id,fare\n6,7.5\n');
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n2, sum(fare) AS f2 FROM trips_fed'), [{ n2: 6, f2: 25 }]);
    assert.equal(fetched(2025), 2, 'a rewritten object is fetched again');
    assert.equal(fetched(2023), before2023);
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM nation'), [{ n: 25 }]);
    assert.ok(!rt.log().includes(`s3_secret=${SECRET}`));
  } finally {
    await rt.stop();
  }
});

test('a wrong key, a missing object and iam_role: clear messages naming dataset and endpoint, never the secret', { timeout: 60000 }, async () => {
  const rt = await startSpiced({
    spicepod: pod([
      dataset('ok', 's3://lake/tpch/nation.parquet', { accel: 'arrow', params: signed() }),
      dataset('badkey', 's3://lake/tpch/nation.parquet', {
        accel: 'arrow', params: { ...signed(), s3_key: 'NOSUCHKEYID', s3_secret: 'Wr0ng-S3-Secret-77' } }),
      dataset('missing', 's3://lake/tpch/nope.parquet', { accel: 'arrow', params: signed() }),
      dataset('emptyprefix', 's3://lake/nothing/', { accel: 'arrow', params: signed() }),
      dataset('iam', 's3://lake/tpch/nation.parquet', { accel: 'arrow', params: { s3_endpoint: endpoint, s3_auth: 'iam_role' } }),
    ]),
    env: { S3_SECRET: SECRET },
    ready: false,
  });
  try {
    await waitUntil('statuses', () => datasetStatuses(rt),
      (s) => s.ok === 'Ready' && s.badkey === 'Error' && s.missing === 'Error' && s.emptyprefix === 'Error' && s.iam === 'Error',
      { timeoutMs: 30000 });
    const log = rt.log();
    assert.match(log, /access to "http:\/\/127\.0\.0\.1:\d+\/lake\/tpch\/nation\.parquet" for dataset "badkey" was denied \(HTTP 403\): InvalidAccessKeyId/);
    assert.match(log, /"http:\/\/127\.0\.0\.1:\d+\/lake\/tpch\/nope\.parquet" for dataset "missing" was not found \(HTTP 404\): NoSuchKey/);
    assert.match(log, /dataset "emptyprefix": no objects under "s3:\/\/lake\/nothing\/"/);
    assert.match(log, /dataset "iam": s3_auth: iam_role is not supported/);
    assert.ok(!log.includes('Wr0ng-S3-Secret-77'), 'the wrong secret appears in the log');
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM ok'), [{ n: 25 }]);
  } finally {
    await rt.stop();
  }
});

test('an endpoint down at start, then up; a server gone during refreshes keeps the last good copy', { timeout: 120000 }, async () => {
  const port = await freePort();
  const dir = join(data, 's3-late');
  const rt = await startSpiced({
    spicepod: pod([
      dataset('late', 's3://lake/t/', { accel: 'arrow', params: signed(`http://127.0.0.1:${port}`),
        extra: '      refresh_check_interval: 1s' }),
      dataset('ok', 's3://lake/tpch/nation.parquet', { accel: 'arrow', params: signed() }),
    ]),
    env: { S3_SECRET: SECRET },
    ready: false,
  });
  let late;
  try {
    await waitUntil('late in Error, ok Ready', () => datasetStatuses(rt), (s) => s.late === 'Error' && s.ok === 'Ready');
    assert.match(rt.log(), new RegExp(`could not connect to "http://127\\.0\\.0\\.1:${port}/lake[^"]*" for dataset "late"`));
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM ok'), [{ n: 25 }]);
    late = await startS3(port, dir);
    await put(late.url, 't/a.csv', 'id\n1\n2\n');
    await waitUntil('late loads once its server is up', () => datasetStatuses(rt), (s) => s.late === 'Ready', { timeoutMs: 45000 });
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM late'), [{ n: 2 }]);

    await late.srv.close();
    late = null;
    await waitUntil('late in Error', () => datasetStatuses(rt), (s) => s.late === 'Error');
    assert.deepEqual(await rows(rt, 'SELECT count(*) AS n FROM late'), [{ n: 2 }], 'the last good copy serves');
    late = await startS3(port, dir);
    await put(late.url, 't/b.csv', 'id\n3\n');
    await waitUntil('the refresh after the restart', async () => (await rows(rt, 'SELECT count(*) AS n FROM late'))[0].n,
      (n) => n === 3, { timeoutMs: 45000, intervalMs: 200 });
  } finally {
    await rt.stop();
    if (late) await late.srv.close();
  }
});

test('a federated Parquet object: signed ranged GETs of the chunks a query needs, the local file\'s answers', { timeout: 90000 }, async () => {
  const size = readFileSync(join(data, 'big.parquet')).length;
  const rt = await startSpiced({
    spicepod: pod([
      dataset('big', 's3://lake/big/big.parquet', { params: signed() }),
      dataset('local', `file:${join(data, 'big.parquet')}`),
    ]),
    env: { S3_SECRET: SECRET },
  });
  const key = /^\/lake\/big\/big\.parquet$/;
  const served = async (fn) => {
    await s3.sync(endpoint);
    const before = s3.sent(key);
    const result = await fn();
    await s3.sync(endpoint);
    const after = s3.sent(key);
    return { result, bytes: after.bytes - before.bytes, gets: after.gets - before.gets,
             statuses: after.statuses.slice(before.statuses.length).sort() };
  };
  try {
    const one = await served(() => rows(rt, 'SELECT sum(id) AS s FROM big'));
    assert.deepEqual(one.result, [{ s: (100000 * 99999) / 2 }]);
    assert.ok(one.bytes > 0 && one.bytes < size / 3, `one column took ${one.bytes} of ${size} bytes`);
    assert.equal(one.statuses[0], '206', `ranged GETs, not the whole object: ${one.statuses}`);
    assert.ok(one.statuses.every((st) => st === '206' || st === '304'), `${one.statuses}`);
    const none = await served(() => rows(rt, "SELECT count(*) AS n FROM big WHERE id >= 100000 AND name = 'name1'"));
    assert.deepEqual(none.result, [{ n: 0 }]);
    assert.deepEqual([none.bytes, none.gets], [0, 1], 'only the footer\'s revalidation (304)');
    for (const q of [
      'SELECT count(*) AS n, sum(k) AS k, min(name) AS lo FROM {t}',
      'SELECT id, fare, note FROM {t} WHERE id BETWEEN 61438 AND 61442 ORDER BY id',
      "SELECT k, count(*) AS n FROM {t} WHERE name = 'name7' GROUP BY k ORDER BY k",
      'SELECT avg(fare) AS f FROM {t} WHERE id < 20000 OR id > 90000',
    ])
      assert.deepEqual(await rows(rt, q.replaceAll('{t}', 'big')), await rows(rt, q.replaceAll('{t}', 'local')), q);
    // Every signed request verifies, and the ranged GETs sign their Range header.
    const sigs = s3.signatures();
    assert.deepEqual(sigs.filter((x) => !x.ok), []);
    assert.ok(sigs.some((x) => key.test(x.url) && x.signed.includes('range')), 'no signed ranged GET');
  } finally {
    await rt.stop();
  }
});
