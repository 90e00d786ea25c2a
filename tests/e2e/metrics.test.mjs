// SPDX-License-Identifier: Apache-2.0
//
// `spiced --metrics ADDR`: GET /health answers OK, /metrics is Prometheus text (checked line by line by a
// strict parser below) with Spice's metric names and values that follow the requests this test makes;
// GET /v1/status shows the metrics component Ready at its address.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { SpiceClient } from '@spiceai/spice';
import { startSpiced, freePort, request } from './lib/spiced.mjs';

const SPICEPOD = `version: v1
kind: Spicepod
name: metrics_e2e
runtime:
  results_cache:
    item_ttl: 60s
datasets:
  - from: file:data.csv
    name: d
    acceleration:
      enabled: true
  - from: file:data.csv
    name: fed
`;

// ---- A strict Prometheus text-format (0.0.4) parser --------------------------------------------------------

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const VALUE = /^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|[+-]Inf|NaN)$/;

// Labels `{a="x",b="y\"z"}` starting at s[i] == '{'; returns [labels, index after '}'].
function parseLabels(s, i, lineNo) {
  const labels = {};
  i++;
  while (s[i] !== '}') {
    const eq = s.indexOf('=', i);
    if (eq < 0) throw new Error(`line ${lineNo}: label without '='`);
    const key = s.slice(i, eq);
    if (!LABEL.test(key)) throw new Error(`line ${lineNo}: bad label name "${key}"`);
    if (s[eq + 1] !== '"') throw new Error(`line ${lineNo}: label value must be quoted`);
    let j = eq + 2;
    let v = '';
    for (; j < s.length && s[j] !== '"'; j++) {
      if (s[j] === '\\') {
        const e = s[++j];
        if (e === 'n') v += '\n';
        else if (e === '\\' || e === '"') v += e;
        else throw new Error(`line ${lineNo}: bad escape \\${e}`);
      } else v += s[j];
    }
    if (j >= s.length) throw new Error(`line ${lineNo}: unterminated label value`);
    if (key in labels) throw new Error(`line ${lineNo}: duplicate label ${key}`);
    labels[key] = v;
    i = j + 1;
    if (s[i] === ',') i++;
    else if (s[i] !== '}') throw new Error(`line ${lineNo}: expected ',' or '}' after a label`);
  }
  return [labels, i + 1];
}

// Returns { types: {family: type}, samples: [{name, labels, value}] }; throws on any malformed line.
function parsePrometheus(text) {
  const types = {};
  const helps = {};
  const samples = [];
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  text.slice(0, -1).split('\n').forEach((line, idx) => {
    const n = idx + 1;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (!m) throw new Error(`line ${n}: comment is neither HELP nor TYPE: ${line}`);
      if (!NAME.test(m[2])) throw new Error(`line ${n}: bad metric name ${m[2]}`);
      if (m[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3])) throw new Error(`line ${n}: bad type`);
        if (m[2] in types) throw new Error(`line ${n}: second TYPE for ${m[2]}`);
        types[m[2]] = m[3];
      } else helps[m[2]] = m[3];
      return;
    }
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    let name;
    let labels = {};
    let rest;
    if (brace >= 0 && (space < 0 || brace < space)) {
      name = line.slice(0, brace);
      let end;
      [labels, end] = parseLabels(line, brace, n);
      if (line[end] !== ' ') throw new Error(`line ${n}: expected a space before the value`);
      rest = line.slice(end + 1);
    } else {
      name = line.slice(0, space);
      rest = line.slice(space + 1);
    }
    if (!NAME.test(name)) throw new Error(`line ${n}: bad metric name "${name}"`);
    if (!VALUE.test(rest)) throw new Error(`line ${n}: bad value "${rest}"`);
    const family = name.replace(/_(bucket|sum|count)$/, '');
    const type = types[name] ?? types[family];
    if (!type) throw new Error(`line ${n}: sample ${name} before its # TYPE`);
    if (type === 'histogram' && name === family) throw new Error(`line ${n}: bare sample of histogram ${name}`);
    samples.push({ name, labels, value: Number(rest) });
  });
  return { types, helps, samples };
}

const find = (m, name, labels = {}) =>
  m.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
const value = (m, name, labels) => {
  const f = find(m, name, labels);
  assert.equal(f.length, 1, `exactly one ${name} ${JSON.stringify(labels)}: ${JSON.stringify(f)}`);
  return f[0].value;
};

// ---- Tests -------------------------------------------------------------------------------------------------

let rt;
let client; // the official SDK over Flight (made in before(): it prints a banner, which the test runner's
            // protocol tolerates there but not inside a test)
let metricsUrl;
let metricsAddr;

before(async () => {
  const port = await freePort();
  metricsAddr = `127.0.0.1:${port}`;
  metricsUrl = `http://${metricsAddr}`;
  rt = await startSpiced({ spicepod: SPICEPOD, files: { 'data.csv': 'a\n1\n2\n' }, args: ['--metrics', metricsAddr] });
  client = new SpiceClient({ httpUrl: rt.url, flightUrl: rt.flightAddr, flightOnly: true });
});

after(async () => {
  if (rt) await rt.stop();
});

test('the parser rejects what is not Prometheus text', () => {
  for (const bad of ['x 1', '# TYPE x counter\nx{a="1} 1\n', '# TYPE x counter\nx 1 2 3\n', 'free text\n',
    '# TYPE x counter\nx{a=1} 1\n', '# TYPE h histogram\nh 1\n']) {
    assert.throws(() => parsePrometheus(bad), undefined, JSON.stringify(bad));
  }
  assert.equal(parsePrometheus('# TYPE x counter\nx{a="q\\"\\n"} 1.5e3\n\n').samples[0].value, 1500);
});

test('GET /health on the metrics address answers OK; /v1/status shows metrics Ready', async () => {
  const h = await request(metricsUrl + '/health');
  assert.equal(h.status, 200);
  assert.equal(h.text, 'OK');
  const st = JSON.parse((await rt.get('/v1/status')).text);
  assert.deepEqual(st.find((c) => c.name === 'metrics'), { name: 'metrics', endpoint: metricsAddr, status: 'Ready' });
  const csv = await rt.get('/v1/status?format=csv');
  assert.match(csv.text, new RegExp(`\\nmetrics,${metricsAddr.replace(/\./g, '\\.')},Ready\\n`));
});

test('/metrics follows the requests, queries, cache and datasets', async () => {
  const before = parsePrometheus((await request(metricsUrl + '/metrics')).text);
  const sqlOk = (m) => find(m, 'http_requests_total', { method: 'POST', path: '/v1/sql', status: '200' })[0]?.value ?? 0;
  const q0 = value(before, 'query_count', { protocol: 'http' });
  const f0 = value(before, 'query_failures', { protocol: 'http' });
  const ok0 = sqlOk(before);
  const hits0 = value(before, 'results_cache_hit_count');
  const reqs0 = value(before, 'results_cache_request_count');

  assert.equal((await rt.sql('SELECT sum(a) AS s FROM d')).status, 200);
  const hit = await rt.sql('select sum(a) as s from d');
  assert.equal(hit.headers['results-cache-status'], 'HIT');
  assert.equal((await rt.sql('SELECT nope FROM d')).status, 400);
  assert.equal((await rt.get('/v1/datasets')).status, 200);
  assert.equal((await rt.get('/v1/datasets/d/nothing/here')).status, 404);

  // A request is counted when its last byte has gone out, which may be just after the client has it: scrape
  // until the last ones show up.
  let r;
  let m;
  for (let i = 0; i < 100; i++) {
    r = await request(metricsUrl + '/metrics');
    m = parsePrometheus(r.text);
    const n404 = find(m, 'http_requests_total', { method: 'GET', path: 'unmatched', status: '404' })[0]?.value ?? 0;
    if (n404 >= 1 && value(m, 'query_count', { protocol: 'http' }) - q0 >= 3) break;
    await new Promise((res) => setTimeout(res, 20));
  }
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/plain/);

  for (const [name, type] of Object.entries({
    http_requests_total: 'counter', http_requests_duration_seconds: 'histogram', query_count: 'counter',
    query_failures: 'counter', query_duration_seconds: 'histogram', results_cache_hit_count: 'counter',
    results_cache_request_count: 'counter', results_cache_item_count: 'gauge', results_cache_size: 'gauge',
    datasets_count: 'gauge', datasets_status: 'gauge', datasets_acceleration_last_refresh_time: 'gauge',
  })) assert.equal(m.types[name], type, name);

  assert.equal(sqlOk(m) - ok0, 2);
  assert.equal(value(m, 'http_requests_total', { method: 'POST', path: '/v1/sql', status: '400' }), 1);
  assert.ok(value(m, 'http_requests_total', { method: 'GET', path: '/v1/datasets', status: '200' }) >= 1);
  assert.equal(value(m, 'http_requests_total', { method: 'GET', path: 'unmatched', status: '404' }), 1);
  assert.equal(value(m, 'query_count', { protocol: 'http' }) - q0, 3);
  assert.equal(value(m, 'query_failures', { protocol: 'http' }) - f0, 1);
  assert.equal(value(m, 'results_cache_hit_count') - hits0, 1);
  assert.equal(value(m, 'results_cache_request_count') - reqs0, 2);
  assert.ok(value(m, 'results_cache_item_count') >= 1);
  assert.ok(value(m, 'results_cache_size') > 0);
  assert.equal(value(m, 'datasets_count'), 2);
  assert.equal(value(m, 'datasets_status', { dataset: 'd' }), 2, 'Ready is 2');
  assert.equal(value(m, 'datasets_status', { dataset: 'fed' }), 2);
  const last = value(m, 'datasets_acceleration_last_refresh_time', { dataset: 'd' });
  assert.ok(Math.abs(Date.now() - last) < 10 * 60 * 1000, `last refresh ${last} is recent unix ms`);
  assert.equal(find(m, 'datasets_acceleration_last_refresh_time', { dataset: 'fed' }).length, 0);

  // Histograms: cumulative buckets, +Inf equal to _count, one _sum.
  for (const [fam, labels] of [['query_duration_seconds', { protocol: 'http' }],
    ['http_requests_duration_seconds', { method: 'POST', path: '/v1/sql', status: '200' }]]) {
    const buckets = find(m, fam + '_bucket', labels);
    assert.ok(buckets.length > 2);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value, `${fam} is cumulative`);
    assert.equal(buckets.at(-1).labels.le, '+Inf');
    assert.equal(buckets.at(-1).value, value(m, fam + '_count', labels));
    assert.ok(value(m, fam + '_sum', labels) > 0);
  }
  assert.equal(value(m, 'query_duration_seconds_count', { protocol: 'http' }), value(m, 'query_count', { protocol: 'http' }));
});

test('/metrics counts Flight calls under Spice\'s names', async () => {
  const count = (m, name) => find(m, name)[0]?.value ?? 0;
  const before = parsePrometheus((await request(metricsUrl + '/metrics')).text);
  const table = await client.sql('SELECT sum(a) AS s FROM d');
  assert.equal(Number(table.get(0).toJSON().s), 3);
  const m = parsePrometheus((await request(metricsUrl + '/metrics')).text);
  assert.ok(count(m, 'flight_do_get_requests') >= count(before, 'flight_do_get_requests') + 1, 'DoGet counted');
  assert.ok(count(m, 'flight_get_flight_info_requests') >= count(before, 'flight_get_flight_info_requests') + 1,
            'GetFlightInfo counted');
  assert.equal(m.types.flight_do_get_requests, 'counter');
});

test('without --metrics the component is Disabled', async () => {
  const plain = await startSpiced({ spicepod: 'version: v1\nkind: Spicepod\nname: p\n' });
  try {
    const st = JSON.parse((await plain.get('/v1/status')).text);
    assert.deepEqual(st.find((c) => c.name === 'metrics'), { name: 'metrics', endpoint: 'N/A', status: 'Disabled' });
  } finally {
    await plain.stop();
  }
});
