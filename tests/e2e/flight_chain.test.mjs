// SPDX-License-Identifier: Apache-2.0
//
// A chain of two spiced processes: B reads A's datasets over Arrow Flight through the `spice.ai:` / `spiceai:`
// (SQL text as the Flight command) and `flightsql:` (Flight SQL CommandStatementQuery) connectors, one accelerated
// (arrow) and others federated. A serves a CSV (accelerated) and
// a PostgreSQL table (federated), so the PostgreSQL statement log shows what reached the bottom of the chain:
// a filter written in B's query travels B → A (as SQL over Flight) → PostgreSQL.
//
// A second pair checks credentials: an A with API keys, read by flightsql (Handshake basic auth with the key as
// password, then the bearer token) and spice.ai (the key as a bearer token), and refused with a wrong key.
//
// B starts first, while A is down: its Flight datasets are in Error with a message naming the dataset and the
// endpoint; once A starts on the port B points at, they recover by themselves (the runtime's retries).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startSpiced, freePort } from './lib/spiced.mjs';
import { datasetStatuses, waitUntil } from './lib/lifecycle.mjs';
import { startPostgres } from './lib/postgres.mjs';

const CITIES_CSV = 'id,name,population,area\n1,Zürich,421878,87.88\n2,東京,13960000,2194.07\n3,"Paris, France",2148000,105.4\n' +
  '4,Lagos,15388000,1171.28\n5,Oslo,709037,454.0\n';

let pg;
let a;
let b;
let aFlight;

function podA() {
  const p = Object.entries(pg.params).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`).join('\n');
  return `version: v1
kind: Spicepod
name: chain_a
datasets:
  - from: file:cities.csv
    name: cities
    acceleration:
      enabled: true
      engine: arrow
  - from: postgres:public.orders
    name: orders
    params:
${p}
`;
}

function podB(endpoint) {
  return `version: v1
kind: Spicepod
name: chain_b
datasets:
  - from: spice.ai:cities
    name: cities_acc
    params:
      spiceai_endpoint: ${endpoint}
    acceleration:
      enabled: true
      engine: arrow
  - from: spiceai:cities
    name: cities_fed
    params:
      spiceai_endpoint: ${endpoint}
  - from: flightsql:orders
    name: orders_fed
    params:
      flightsql_endpoint: ${endpoint}
  - from: spice.ai/cities
    name: cities_path
    params:
      spiceai_endpoint: ${endpoint}
`;
}

async function rows(rt, sql) {
  const r = await rt.sql(sql);
  assert.equal(r.status, 200, `${sql}: ${r.text}`);
  return JSON.parse(r.text);
}

before(async () => {
  pg = await startPostgres();
  pg.psql(`CREATE TABLE orders (id int PRIMARY KEY, customer text, amount numeric(10,2), placed date);
           INSERT INTO orders SELECT i, 'c' || (i % 17), (i * 3.25)::numeric(10,2), DATE '2024-01-01' + i
           FROM generate_series(1, 500) i;`, { user: 'spice' });
  aFlight = await freePort();
  b = await startSpiced({ spicepod: podB(`grpc://127.0.0.1:${aFlight}`), ready: false });
});

after(async () => {
  if (b) await b.stop();
  if (a) await a.stop();
  if (pg) await pg.stop();
});

test('with A down, B reports its Flight datasets in Error, then recovers when A starts', { timeout: 120000 }, async () => {
  await waitUntil('B to report A unreachable', () => datasetStatuses(b),
    (s) => s.cities_acc === 'Error' && s.cities_fed === 'Error' && s.orders_fed === 'Error', { timeoutMs: 20000 });
  const log = b.log();
  assert.match(log, new RegExp(`dataset "cities_acc": could not connect to flight endpoint "grpc://127\\.0\\.0\\.1:${aFlight}"`));
  assert.match(log, /dataset "orders_fed": could not connect to flight endpoint/);
  a = await startSpiced({ spicepod: podA(), files: { 'cities.csv': CITIES_CSV }, args: ['--flight', `127.0.0.1:${aFlight}`] });
  await waitUntil('B to load from A', () => datasetStatuses(b),
    // B retries with a growing backoff (1, 1, 2, 3, 5, 8, 13 s…): under sanitizers A may take a while to start.
    (s) => s.cities_acc === 'Ready' && s.cities_fed === 'Ready' && s.orders_fed === 'Ready', { timeoutMs: 90000 });
  await b.waitReady(10000);
});

test("B's answers equal A's, accelerated and federated", { timeout: 60000 }, async () => {
  const want = await rows(a, 'SELECT id, name, population, area FROM cities ORDER BY id');
  assert.equal(want.length, 5);
  assert.deepEqual(await rows(b, 'SELECT id, name, population, area FROM cities_acc ORDER BY id'), want);
  assert.deepEqual(await rows(b, 'SELECT id, name, population, area FROM cities_fed ORDER BY id'), want);
  // `from: spice.ai/cities` (no ':') is the spice.ai connector too.
  assert.deepEqual(await rows(b, 'SELECT id, name, population, area FROM cities_path ORDER BY id'), want);
  const q = (t) => `SELECT customer, count(*) AS n, sum(amount) AS total, min(placed) AS first FROM ${t}
                    WHERE id > 100 GROUP BY customer ORDER BY customer`;
  assert.deepEqual(await rows(b, q('orders_fed')), await rows(a, q('orders')));
  // A join across B's two kinds of dataset.
  assert.deepEqual(await rows(b, `SELECT a.name FROM cities_acc a JOIN cities_fed f ON a.id = f.id
                                  WHERE f.population > 1000000 ORDER BY a.name`),
                   await rows(a, 'SELECT name FROM cities WHERE population > 1000000 ORDER BY name'));
});

test('a filter written at B reaches the source under A', { timeout: 60000 }, async () => {
  const mark = pg.log().length;
  const got = await rows(b, "SELECT customer, amount FROM orders_fed WHERE id = 42 AND customer = 'c8'");
  assert.deepEqual(got, await rows(a, "SELECT customer, amount FROM orders WHERE id = 42 AND customer = 'c8'"));
  assert.equal(got.length, 1);
  const statements = pg.log().slice(mark).split('\n').filter((l) => /statement:|execute/.test(l) && l.includes('orders'));
  assert.ok(statements.some((l) => /WHERE .*"id" = 42/.test(l) && l.includes(`'c8'`)),
            `the condition reached PostgreSQL:\n${statements.join('\n')}`);
  // Only the projected columns travel: A's query to PostgreSQL names no other column.
  assert.ok(statements.every((l) => !l.includes('"placed"')), statements.join('\n'));
  // And a query on the federated Flight dataset with a limit returns that many rows.
  assert.equal((await rows(b, 'SELECT id FROM orders_fed LIMIT 7')).length, 7);
});

test('when A goes away, federated reads fail naming the endpoint and the accelerated copy still answers', { timeout: 30000 }, async () => {
  await a.stop();
  a = undefined;
  const r = await b.sql('SELECT count(*) AS n FROM cities_fed');
  assert.notEqual(r.status, 200);
  assert.match(r.text, new RegExp(`flight endpoint "grpc://127\\.0\\.0\\.1:${aFlight}"`));
  assert.deepEqual(await rows(b, 'SELECT count(*) AS n FROM cities_acc'), [{ n: 5 }]);
});

test('credentials: flightsql basic auth and spice.ai keys against an A with API keys', { timeout: 60000 }, async () => {
  const KEY = 'k3y-for-chain-91c';
  const WRONG = 'wr0ng-pass-55e';
  const secured = await startSpiced({
    spicepod: `version: v1
kind: Spicepod
name: chain_auth_a
runtime:
  auth:
    api-key:
      enabled: true
      keys: ["${KEY}"]
datasets:
  - from: file:cities.csv
    name: cities
    acceleration:
      enabled: true
`, files: { 'cities.csv': CITIES_CSV } });
  const ep = `grpc://${secured.flightAddr}`;
  const reader = await startSpiced({ ready: false, spicepod: `version: v1
kind: Spicepod
name: chain_auth_b
datasets:
  - from: flightsql:cities
    name: by_password
    params:
      flightsql_endpoint: ${ep}
      flightsql_username: reporting
      flightsql_password: ${KEY}
  - from: spice.ai:cities
    name: by_key
    params:
      spiceai_endpoint: ${ep}
      spiceai_api_key: ${KEY}
    acceleration:
      enabled: true
  - from: flightsql:cities
    name: wrong_password
    params:
      flightsql_endpoint: ${ep}
      flightsql_username: reporting
      flightsql_password: ${WRONG}
  - from: spiceai:cities
    name: no_key
    params:
      spiceai_endpoint: ${ep}
` });
  try {
    await waitUntil('the readers to settle', () => datasetStatuses(reader),
      (s) => s.by_password === 'Ready' && s.by_key === 'Ready' && s.wrong_password === 'Error' && s.no_key === 'Error');
    assert.deepEqual(await rows(reader, 'SELECT count(*) AS n FROM by_password WHERE population > 1000000'), [{ n: 3 }]);
    assert.deepEqual(await rows(reader, 'SELECT name FROM by_key ORDER BY id LIMIT 1'), [{ name: 'Zürich' }]);
    const log = reader.log();
    // The user name is a secret parameter, which the log masks.
    assert.match(log, new RegExp(`dataset "wrong_password": authentication as "[^"]*" refused: flight endpoint "${ep}" answered Handshake with UNAUTHENTICATED`));
    assert.match(log, /dataset "no_key": flight endpoint ".*" answered GetSchema with UNAUTHENTICATED/);
    assert.ok(!log.includes(WRONG), 'the wrong password is not logged');
    assert.ok(!log.includes(KEY), 'the key is not logged');
  } finally {
    await reader.stop();
    await secured.stop();
  }
});
