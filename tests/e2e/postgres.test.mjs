// SPDX-License-Identifier: Apache-2.0
//
// The postgres connector against a real PostgreSQL that the test starts itself (lib/postgres.mjs): every
// mapped type round-trips (accelerated in arrow and duckdb, and federated) and equals what psql prints for the
// same rows; a federated query sends only the needed columns to the server (checked in the server's statement
// log); a missing table, an unsupported type and a wrong password fail their dataset with precise messages
// (never the password); a server that goes away leaves the last good copy serving and the next refresh after
// it returns succeeds; a 1M-row table streams in. Needs SPICED (ctest sets it) and PostgreSQL's server
// binaries (scripts/deps.sh installs them).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startSpiced, sleep } from './lib/spiced.mjs';
import { datasetStatuses, waitUntil } from './lib/lifecycle.mjs';
import { startPostgres } from './lib/postgres.mjs';

let pg;
before(async () => {
  pg = await startPostgres();
  pg.psql(TYPES_SQL, { user: 'spice' });
});
after(async () => {
  if (pg) await pg.stop();
});

// ---- helpers --------------------------------------------------------------------------------------------

function dataset(name, table, server, { accel, params = {}, extra = '' } = {}) {
  const p = { ...server.params, ...params };
  const lines = [`  - from: postgres:${table}`, `    name: ${name}`, '    params:'];
  for (const [k, v] of Object.entries(p)) lines.push(`      ${k}: ${JSON.stringify(String(v))}`);
  if (accel) lines.push('    acceleration:', '      enabled: true', `      engine: ${accel}`);
  if (extra) lines.push(extra);
  return lines.join('\n') + '\n';
}

function pod(datasets) {
  return `version: v1\nkind: Spicepod\nname: pgtest\ndatasets:\n${datasets.join('')}`;
}

// JSON.parse that keeps every number as its source text (int8 and numeric(38,10) do not fit a double).
function parseLossless(text) {
  let out = '';
  let inStr = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inStr) {
      out += ch;
      if (ch === '\\') out += text[++i];
      else if (ch === '"') inStr = false;
    } else if (ch === '"') {
      inStr = true;
      out += ch;
    } else if (ch === '-' || (ch >= '0' && ch <= '9')) {
      let j = i;
      while (j < text.length && /[-+0-9.eE]/.test(text[j])) j++;
      out += JSON.stringify({ num: text.slice(i, j) });
      i = j - 1;
    } else {
      out += ch;
    }
  }
  return JSON.parse(out, (k, v) => (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 &&
                                     typeof v.num === 'string' ? `#${v.num}` : v));
}

async function sqlRows(rt, sql) {
  const r = await rt.sql(sql);
  assert.equal(r.status, 200, `${sql}: ${r.text}`);
  return parseLossless(r.text);
}

// A one-dimensional PostgreSQL array literal ({1,NULL,"a b"}) as an array of text (null for NULL).
function parsePgArray(s) {
  assert.ok(s.startsWith('{') && s.endsWith('}'), `array literal ${s}`);
  const out = [];
  let i = 1;
  if (s === '{}') return out;
  while (i < s.length) {
    let v = '';
    let quoted = false;
    if (s[i] === '"') {
      quoted = true;
      i++;
      while (s[i] !== '"') {
        if (s[i] === '\\') i++;
        v += s[i++];
      }
      i++;
    } else {
      while (s[i] !== ',' && s[i] !== '}') v += s[i++];
    }
    out.push(!quoted && v === 'NULL' ? null : v);
    i++; // , or }
  }
  return out;
}

const num = (v) => (typeof v === 'string' && v.startsWith('#') ? v.slice(1) : v);

// A timestamp's text in one form: 'T' between date and time, six fraction digits, UTC as 'Z'.
function canonTs(t) {
  const m = /^(\d{4,}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|\+00(?::00)?)?$/.exec(t);
  assert.ok(m, `timestamp text ${t}`);
  return `${m[1]}T${m[2]}.${(m[3] || '').padEnd(6, '0')}${m[4] ? 'Z' : ''}`;
}

// An interval's text (PostgreSQL's or DuckDB's style) as [months, days, microseconds].
function canonInterval(t) {
  let months = 0, days = 0, us = 0;
  for (const m of t.matchAll(/(-?\d+) (year|mon|month|day)s?\b/g)) {
    const n = Number(m[1]);
    if (m[2] === 'year') months += 12 * n;
    else if (m[2] === 'day') days += n;
    else months += n;
  }
  const tm = /([+-]?)(\d+):(\d\d):(\d\d)(?:\.(\d+))?/.exec(t);
  if (tm) {
    const v = ((Number(tm[2]) * 60 + Number(tm[3])) * 60 + Number(tm[4])) * 1e6 + Number((tm[5] || '').padEnd(6, '0'));
    us = tm[1] === '-' ? -v : v;
  }
  return [months, days, us];
}

// psql's text for one value → what spiced's JSON must hold, per column kind.
const EXPECT = {
  int: (t) => `#${t}`,
  exact: (t) => t,
  bpchar: (t) => t.replace(/ +$/, ''), // char(n) arrives without its padding, as Spice reads it
  bool: (t) => t === 't',
  float: (t) => t,
  bytea: (t) => t,
  ts: (t) => canonTs(t),
  tstz: (t) => canonTs(t),
  interval: (t) => canonInterval(t),
  intarray: (t) => parsePgArray(t).map((x) => (x === null ? null : `#${x}`)),
  textarray: (t) => parsePgArray(t),
};
// spiced's JSON value → comparable form, per kind (floats as numbers, bytea base64 → hex like psql).
const ACTUAL = {
  interval: (v) => canonInterval(v),
  ts: (v) => canonTs(v),
  tstz: (v) => canonTs(v),
  float: (v) => (typeof v === 'string' && v.startsWith('#') ? Number(v.slice(1)) : v),
  bytea: (v) => `\\x${Buffer.from(v, 'base64').toString('hex')}`,
};
const FLOAT_EXPECT = (t) => (t === 'NaN' || t === 'Infinity' || t === '-Infinity' ? t : Number(t));

const COLUMNS = [
  ['id', 'int'], ['i2', 'int'], ['i4', 'int'], ['i8', 'int'], ['n', 'int'], ['n2', 'int'], ['nu', 'exact'],
  ['f4', 'float'], ['f8', 'float'], ['b', 'bool'], ['tx', 'exact'], ['vc', 'exact'], ['bp', 'bpchar'], ['nm', 'exact'],
  ['by', 'bytea'], ['d', 'exact'], ['tm', 'exact'], ['ts', 'ts'], ['tz', 'tstz'], ['iv', 'interval'], ['u', 'exact'],
  ['j', 'exact'], ['jb', 'exact'], ['ai', 'intarray'], ['at', 'textarray'], ['e', 'exact'], ['dm', 'int'],
  ['pt', 'exact'],
];

const TYPES_SQL = `
SET timezone = 'UTC';
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE types (
  id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, n numeric(38,10), n2 numeric(9,2), nu numeric, f4 real,
  f8 double precision, b bool, tx text, vc varchar(10), bp char(5), nm name, by bytea, d date, tm time,
  ts timestamp, tz timestamptz, iv interval, u uuid, j json, jb jsonb, ai int8[], at text[], e mood, dm posint,
  pt point);
INSERT INTO types VALUES
 (1, 32767, -2147483648, 9223372036854775807, 1234567890123456789012345678.0123456789, 1234567.89,
  123456789012345678901234567890.123456789012345678901234567890, 1.5, 1e308, true, 'héllo ☃ 🚀', '', 'ab',
  'a_name', '\\x00ff00', '1969-07-20', '23:59:59.999999', '1900-01-01 00:00:00.000001',
  '2024-02-29 12:34:56.789012+02', '1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{"a": [1, 2], "s": "x\\"y"}', '{"b": null, "a": 1}', '{1,NULL,-9223372036854775808}', '{"x y",NULL,"","q\\"t"}',
  'happy', 7, '(1,2)'),
 (2, -32768, 2147483647, -9223372036854775808, -9999999999999999999999999999.9999999999, -0.01, 'NaN',
  'NaN', '-Infinity', false, 'line1\nline2\\tab"quote''', NULL, NULL, '', '\\x', '0001-01-01', '00:00:00',
  '1970-01-01 00:00:00', '1960-01-01 00:00:00.5+00', '-1 days +00:00:01', '00000000-0000-0000-0000-000000000000',
  '[]', '{}', '{}', '{}', 'sad', 1, NULL),
 (3, 0, 0, 0, 0, 0, '-0.000000000000000000000000000000000001', 'Infinity', 0, NULL, '', 'x', 'abcde', NULL,
  '\\x000000', '2262-04-11', '12:00:00', '2262-04-11 23:47:16.854775', '2100-12-31 23:59:59.999999+00',
  '00:00:00.000001', NULL, 'null', '[1, "2"]', '{NULL}', '{NULL,""}', NULL, NULL, '(0,-1.5)'),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE wide AS SELECT g AS id, g * 2 AS a, 'v' || g AS b, g::float8 / 3 AS c FROM generate_series(1, 1000) g;
CREATE TABLE odd (id int, p point);
INSERT INTO odd VALUES (1, '(1,1)');
`;

function assertTypesMatch(label, got) {
  const psqlRows = pg.rows(`SET timezone = 'UTC'; SELECT ${COLUMNS.map(([c]) => c).join(', ')} FROM types ORDER BY id`);
  assert.equal(got.length, psqlRows.length, `${label}: row count`);
  for (let r = 0; r < psqlRows.length; r++) {
    COLUMNS.forEach(([col, kind], i) => {
      const text = psqlRows[r][i];
      let want = text === null ? null : kind === 'float' ? FLOAT_EXPECT(text) : EXPECT[kind](text);
      let have = got[r][col];
      if (have !== null && ACTUAL[kind]) have = ACTUAL[kind](have);
      if (kind === 'int' && typeof have === 'string') have = `#${num(have)}`;
      assert.deepEqual(have, want, `${label}: row ${r + 1}, column ${col} (psql: ${JSON.stringify(text)})`);
    });
  }
}

// ---- tests ----------------------------------------------------------------------------------------------

test('every type round-trips and equals psql (arrow, duckdb, federated)', { timeout: 120000 }, async () => {
  const params = { unsupported_type_action: 'string' };
  const rt = await startSpiced({
    spicepod: pod([
      dataset('t_arrow', 'public.types', pg, { accel: 'arrow', params }),
      dataset('t_duck', 'types', pg, { accel: 'duckdb', params }),
      dataset('t_fed', 'public.types', pg, { params }),
    ]),
  });
  try {
    for (const name of ['t_arrow', 't_duck', 't_fed'])
      assertTypesMatch(name, await sqlRows(rt, `SELECT * FROM ${name} ORDER BY id`));
    // Types as DuckDB sees them: exact decimals, lists, intervals, UTC timestamps.
    const [t] = await sqlRows(rt, "SELECT typeof(n) AS n, typeof(n2) AS n2, typeof(ai) AS ai, typeof(iv) AS iv, " +
                                  'typeof(tz) AS tz, typeof(d) AS d, typeof("by") AS "by" FROM t_arrow LIMIT 1');
    assert.deepEqual(t, { n: 'DECIMAL(38,10)', n2: 'DECIMAL(9,2)', ai: 'BIGINT[]', iv: 'INTERVAL',
                          tz: 'TIMESTAMP WITH TIME ZONE', d: 'DATE', by: 'BLOB' });
    // Exact arithmetic on the decimal column, same as the server's.
    const [s] = await sqlRows(rt, 'SELECT CAST(sum(n) AS VARCHAR) AS s FROM t_duck');
    assert.equal(s.s, pg.psql('SELECT sum(n) FROM types').trim());
  } finally {
    await rt.stop();
  }
});

test('federated queries send only the needed columns, and their simple conditions, to the server', { timeout: 60000 }, async () => {
  const rt = await startSpiced({ spicepod: pod([dataset('wide_fed', 'public.wide', pg)]) });
  try {
    const mark = pg.log().length;
    // length() is not pushed whole (unparse.c's allow-list): the table is scanned with what can be pushed.
    const rows = await sqlRows(rt, 'SELECT b FROM wide_fed WHERE a = 10 AND length(b) > 0');
    assert.deepEqual(rows, [{ b: 'v5' }]);
    const [agg] = await sqlRows(rt, 'SELECT sum(c) AS s FROM wide_fed');
    assert.ok(Math.abs(Number(num(agg.s)) - (1000 * 1001) / 2 / 3) < 1e-6);
    const copies = pg.log().slice(mark).split('\n').filter((l) => l.includes('COPY (SELECT'));
    // The filter travels with the projection: the server returns one row, not the table.
    assert.ok(copies.some((l) => /COPY \(SELECT ("b", "a"|"a", "b") FROM "public"\."wide" WHERE .*"a" = 10/.test(l)),
              copies.join('\n'));
    // A query on one server's tables runs there whole.
    assert.ok(copies.some((l) => l.includes('COPY (SELECT sum("c") AS "s" FROM "public"."wide" AS "wide_fed")')), copies.join('\n'));
    for (const l of copies) assert.ok(!l.includes('"id"'), `a query read a column it does not need: ${l}`);
    // Conditions the server cannot take stay local, and the answer is still right.
    const [odd] = await sqlRows(rt, "SELECT count(*) AS n FROM wide_fed WHERE a = 10 AND b LIKE 'v%' AND a + 0 = 10");
    assert.equal(Number(num(odd.n)), 1);
  } finally {
    await rt.stop();
  }
});

test('string comparisons pushed to the server compare bytes, as the engine does, whatever the collation', { timeout: 60000 }, async () => {
  // An ICU collation orders 'Banana' after 'apple' and 'b'; the engine (and every accelerator) orders bytes.
  pg.psql(`CREATE TABLE words (w text COLLATE "und-x-icu", v varchar(20) COLLATE "und-x-icu");
           INSERT INTO words VALUES ('apple', 'apple'), ('Banana', 'Banana'), ('cherry', 'cherry'), ('Zed', 'Zed');
           GRANT SELECT ON words TO spice;`);
  const rt = await startSpiced({ spicepod: pod([dataset('words_fed', 'public.words', pg), dataset('words_acc', 'public.words', pg, { accel: 'arrow' })]) });
  try {
    for (const where of ["w < 'b'", "v >= 'Z' AND v < 'b'", "w > 'Zz'"]) {
      const fed = await sqlRows(rt, `SELECT w FROM words_fed WHERE ${where} ORDER BY w`);
      const acc = await sqlRows(rt, `SELECT w FROM words_acc WHERE ${where} ORDER BY w`);
      assert.deepEqual(fed, acc, `federated and accelerated agree on ${where}`);
    }
    assert.deepEqual(await sqlRows(rt, "SELECT w FROM words_fed WHERE w < 'b' ORDER BY w"), [{ w: 'Banana' }, { w: 'Zed' }, { w: 'apple' }]);
    assert.match(pg.log(), /"w"\)? COLLATE "C"\)? < /);
  } finally {
    await rt.stop();
    pg.psql('DROP TABLE words;');
  }
});

test('missing table, unsupported type and wrong password fail their dataset with clear messages', { timeout: 60000 }, async () => {
  const rt = await startSpiced({
    spicepod: pod([
      dataset('ok', 'wide', pg, { accel: 'arrow' }),
      dataset('missing', 'public.no_such_table', pg, { accel: 'arrow' }),
      dataset('odd_default', 'odd', pg, { accel: 'arrow' }),
      dataset('odd_ignored', 'odd', pg, { accel: 'arrow', params: { unsupported_type_action: 'ignore' } }),
      dataset('odd_warned', 'odd', pg, { accel: 'duckdb', params: { unsupported_type_action: 'warn' } }),
      dataset('badpass', 'wide', pg, { accel: 'arrow', params: { pg_pass: 'Wr0ng-Pa55word' } }),
    ]),
    ready: false,
  });
  try {
    const st = await waitUntil('statuses', () => datasetStatuses(rt),
      (s) => s.ok === 'Ready' && s.odd_ignored === 'Ready' && s.odd_warned === 'Ready' && s.missing === 'Error' && s.odd_default === 'Error' &&
             s.badpass === 'Error');
    assert.equal(st.ok, 'Ready');
    const log = rt.log();
    assert.match(log, /postgres table "public\.no_such_table" for dataset "missing" does not exist/);
    assert.match(log, /column "p" of postgres table "public\.odd" has unsupported type point \(dataset "odd_default"; set unsupported_type_action/);
    assert.match(log, /could not connect to postgres server "127\.0\.0\.1:\d+" for dataset "badpass": .*password authentication failed/);
    assert.ok(!log.includes('Wr0ng-Pa55word'), 'the wrong password appears in the log');
    assert.ok(!log.includes(pg.password), 'the password appears in the log');
    assert.deepEqual(await sqlRows(rt, 'SELECT * FROM odd_ignored'), [{ id: '#1' }]);
    assert.deepEqual(await sqlRows(rt, 'SELECT * FROM odd_warned'), [{ id: '#1' }]);
    assert.match(log, /WARN .*dataset "odd_warned": column "p" of postgres table "public\.odd" has unsupported type point; skipped/);
    assert.ok(!/dataset "odd_ignored": column "p"/.test(log), 'ignore must not log');
  } finally {
    await rt.stop();
  }
});

test('a server that goes away: the last good copy serves, the next refresh after it returns succeeds', { timeout: 120000 }, async () => {
  const own = await startPostgres();
  let rt;
  try {
    own.psql('CREATE TABLE events AS SELECT g AS id FROM generate_series(1, 100) g;', { user: 'spice' });
    rt = await startSpiced({
      spicepod: pod([dataset('events', 'events', own, {
        accel: 'arrow', extra: '      refresh_check_interval: 1s\n      refresh_mode: full' })]),
    });
    const count = async () => Number(num((await sqlRows(rt, 'SELECT count(*) AS n FROM events'))[0].n));
    assert.equal(await count(), 100);
    own.stopServer('fast');
    await waitUntil('status Error', () => datasetStatuses(rt), (s) => s.events === 'Error');
    assert.equal(await count(), 100, 'the last good copy keeps serving');
    assert.match(rt.log(), /dataset "events": .*(could not connect to postgres server|could not read postgres table)/);
    own.start();
    own.psql('INSERT INTO events SELECT g FROM generate_series(101, 150) g;', { user: 'spice' });
    await waitUntil('the refresh after the restart', count, (n) => n === 150, { timeoutMs: 60000, intervalMs: 200 });
    assert.equal((await datasetStatuses(rt)).events, 'Ready');
  } finally {
    if (rt) await rt.stop();
    await own.stop();
  }
});

test('a 1M-row table streams in (load rate printed next to the server-side COPY)', { timeout: 300000 }, async () => {
  pg.psql(`CREATE TABLE big AS SELECT g::int8 AS id, (g % 1000)::int4 AS k, g * 1.5::float8 AS x,
             ('name ' || g) AS s, (g * 0.01)::numeric(12,2) AS amount,
             timestamp '2020-01-01' + g * interval '1 second' AS ts FROM generate_series(1, 1000000) g;`, { user: 'spice' });
  const t0 = Date.now();
  const rt = await startSpiced({ spicepod: pod([dataset('big', 'big', pg, { accel: 'arrow' })]), readyTimeoutMs: 240000 });
  try {
    const wall = (Date.now() - t0) / 1000;
    const [r] = await sqlRows(rt, 'SELECT count(*) AS n, sum(id) AS s, CAST(sum(amount) AS VARCHAR) AS a, max(s) AS m FROM big');
    const [n, s, a, m] = pg.psql('SELECT count(*), sum(id), sum(amount), max(s) FROM big').trim().split('|');
    assert.deepEqual([num(r.n), num(r.s), r.a, r.m], [n, s, a, m]);
    const line = rt.log().split('\n').find((l) => l.includes('dataset "big" loaded'));
    assert.ok(line, rt.log());
    const timing = pg.psql("\\timing on\nCOPY (SELECT id, k, x, s, amount, ts FROM big) TO '/dev/null' (FORMAT binary);",
                           { tuplesOnly: false });
    const ms = Number((timing.match(/Time: ([0-9.]+) ms/) || [])[1]);
    const rate = Number((line.match(/\(([0-9]+) rows\/s/) || [])[1]);
    const serverRate = ms > 0 ? 1e6 / (ms / 1000) : NaN;
    console.log(`# 1M rows: spiced load ${rate} rows/s (spiced start to ready ${wall.toFixed(2)} s); ` +
                `server-side COPY to /dev/null ${serverRate.toFixed(0)} rows/s; ratio ${(rate / serverRate).toFixed(2)}`);
  } finally {
    await rt.stop();
    pg.psql('DROP TABLE big;', { user: 'spice' });
  }
});

test('refresh_sql: simple filters run at the server (parsed, never spliced); other shapes are refused', { timeout: 60000 }, async () => {
  const refresh = (sql) => `      refresh_sql: ${JSON.stringify(sql)}`;
  const mark = pg.log().length;
  const rt = await startSpiced({
    spicepod: pod([
      dataset('wide_sql', 'wide', pg, { accel: 'arrow',
        extra: refresh("SELECT * FROM wide_sql WHERE id < 10 AND NOT (b = 'v3' OR c IS NULL) AND c >= -1.5") }),
      dataset('wide_quote', 'wide', pg, { accel: 'duckdb',
        extra: refresh("SELECT * FROM wide_quote WHERE b = 'x'' OR 1=1 --' OR b = 'v7'") }),
      dataset('wide_expr', 'wide', pg, { accel: 'arrow', extra: refresh('SELECT * FROM wide_expr WHERE id + 1 < 10') }),
      dataset('wide_cols', 'wide', pg, { accel: 'arrow', extra: refresh('SELECT id FROM wide_cols WHERE id < 10') }),
    ]),
    ready: false,
  });
  try {
    await waitUntil('statuses', () => datasetStatuses(rt),
      (s) => s.wide_sql === 'Ready' && s.wide_quote === 'Ready' && s.wide_expr === 'Error' && s.wide_cols === 'Error');
    const ids = (await sqlRows(rt, 'SELECT id FROM wide_sql ORDER BY id')).map((r) => num(r.id));
    assert.deepEqual(ids, ['1', '2', '4', '5', '6', '7', '8', '9']);
    assert.deepEqual(await sqlRows(rt, 'SELECT id, b FROM wide_quote'), [{ id: '#7', b: 'v7' }]);
    const log = pg.log().slice(mark);
    assert.ok(log.includes(`COPY (SELECT "id", "a", "b", "c" FROM "public"."wide" WHERE (("id" < 10) AND (NOT (("b" = 'v3') OR ("c" IS NULL))) AND ("c" >= -1.5))) TO STDOUT`), log);
    assert.ok(log.includes(`WHERE (("b" = 'x'' OR 1=1 --') OR ("b" = 'v7'))`), log);
    assert.match(rt.log(), /refresh_sql of dataset "wide_expr" cannot be pushed to postgres \(a FUNCTION where a column or a constant was expected\)/);
    assert.match(rt.log(), /refresh_sql of dataset "wide_cols" cannot be pushed to postgres \(the select list is not \*\)/);
  } finally {
    await rt.stop();
  }
});

test('a connection dropped in the middle of a COPY fails that load only; the retry loads everything', { timeout: 60000 }, async () => {
  // The view stalls for a moment half-way through, so that the test can end the backend mid-stream.
  pg.psql(`CREATE VIEW slow AS SELECT id, b FROM wide
             WHERE CASE WHEN id = 500 THEN pg_sleep(1.5) IS NOT NULL ELSE true END;`, { user: 'spice' });
  const rt = await startSpiced({ spicepod: pod([dataset('slow', 'public.slow', pg, { accel: 'arrow' })]), ready: false });
  try {
    const pid = await waitUntil('the COPY of the view to start', () =>
      pg.psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'spicec' AND query LIKE 'COPY%slow%'").trim(),
    (v) => v.length > 0, { intervalMs: 20 });
    await sleep(300);
    assert.equal(pg.psql(`SELECT pg_terminate_backend(${pid})`).trim(), 't');
    await waitUntil('the failed load to be reported', async () => rt.log(), (l) => /dataset "slow": .*could not read postgres table "public\.slow"/.test(l));
    await waitUntil('the retry to load every row', () => sqlRows(rt, 'SELECT count(*) AS n FROM slow'),
                    (r) => r[0].n === '#1000', { timeoutMs: 30000, intervalMs: 200 });
    assert.equal((await datasetStatuses(rt)).slow, 'Ready');
  } finally {
    await rt.stop();
    pg.psql('DROP VIEW slow;', { user: 'spice' });
  }
});

test('pg_connection_string and secrets from the environment; a wrong password in a connection string is not shown', { timeout: 60000 }, async () => {
  const url = (pass) => `postgresql://spice:${encodeURIComponent(pass)}@127.0.0.1:${pg.port}/testdb?sslmode=disable`;
  const noPass = { ...pg.params };
  delete noPass.pg_pass;
  const rt = await startSpiced({
    spicepod: pod([
      `  - from: postgres:wide\n    name: by_url\n    params:\n      pg_connection_string: "${url(pg.password)}"\n` +
      '    acceleration:\n      enabled: true\n      engine: duckdb\n',
      `  - from: postgres:wide\n    name: bad_url\n    params:\n      pg_connection_string: "${url('Wr0ng-Url-Pa55')}"\n` +
      '    acceleration:\n      enabled: true\n      engine: arrow\n',
      dataset('from_env', 'wide', { params: noPass }, { accel: 'arrow' }),
    ]),
    env: { PG_PASS: pg.password },
    ready: false,
  });
  try {
    await waitUntil('statuses', () => datasetStatuses(rt),
      (s) => s.by_url === 'Ready' && s.from_env === 'Ready' && s.bad_url === 'Error');
    assert.deepEqual(await sqlRows(rt, 'SELECT count(*) AS n FROM by_url'), [{ n: '#1000' }]);
    assert.deepEqual(await sqlRows(rt, 'SELECT count(*) AS n FROM from_env'), [{ n: '#1000' }]);
    assert.match(rt.log(), /could not connect to postgres server "127\.0\.0\.1:\d+" for dataset "bad_url"/);
    assert.ok(!rt.log().includes('Wr0ng-Url-Pa55'), 'the password of the connection string appears in the log');
  } finally {
    await rt.stop();
  }
});

test('append with a time column: only rows from the newest timestamp on travel, none lost or doubled', { timeout: 60000 }, async () => {
  pg.psql(`CREATE TABLE ev AS SELECT g AS id, timestamp '2024-01-01' + g * interval '1 minute' AS ts
           FROM generate_series(1, 100) g;`, { user: 'spice' });
  const params = Object.entries(pg.params).map(([k, v]) => `      ${k}: ${JSON.stringify(String(v))}`).join('\n');
  const spicepod = 'version: v1\nkind: Spicepod\nname: pgappend\ndatasets:\n' +
    `  - from: postgres:ev\n    name: ev\n    time_column: ts\n    params:\n${params}\n` +
    '    acceleration:\n      engine: duckdb\n      refresh_mode: append\n';
  const rt = await startSpiced({ spicepod });
  try {
    const counts = async () => (await sqlRows(rt, 'SELECT count(*) AS n, count(DISTINCT id) AS d FROM ev'))
      .map((r) => `${num(r.n)}/${num(r.d)}`)[0];
    assert.equal(await counts(), '100/100');
    // 101 shares the newest timestamp already loaded (id 100's); 102 is newer.
    pg.psql(`INSERT INTO ev VALUES (101, timestamp '2024-01-01' + 100 * interval '1 minute'),
                                   (102, timestamp '2024-01-01' + 150 * interval '1 minute');`, { user: 'spice' });
    const mark = pg.log().length;
    const r = await fetch(`http://127.0.0.1:${rt.httpPort}/v1/datasets/ev/acceleration/refresh`, { method: 'POST' });
    assert.equal(r.status, 201);
    await waitUntil('the append', counts, (c) => c === '102/102', { timeoutMs: 30000, intervalMs: 100 });
    const copies = pg.log().slice(mark).split('\n').filter((l) => l.includes('COPY (SELECT'));
    assert.ok(copies.some((l) => l.includes(`FROM "public"."ev" WHERE ("ts" >= '2024-01-01 01:40:00')`)), copies.join('\n'));
  } finally {
    await rt.stop();
    pg.psql('DROP TABLE ev;', { user: 'spice' });
  }
});

test('a query whose tables all live in the server runs there whole, with the answer the engine gives', { timeout: 90000 }, async () => {
  pg.psql(`CREATE TABLE wq_customers (id int PRIMARY KEY, name text COLLATE "und-x-icu", region varchar(10));
           INSERT INTO wq_customers VALUES (1, 'apple', 'EU'), (2, 'Banana', 'US'), (3, 'cherry', NULL), (4, 'Zed', 'EU'),
             (5, 'Äpfel', 'us'), (6, 'A_x', 'EU');
           CREATE TABLE wq_orders (id int PRIMARY KEY, cust_id int, amount numeric(10,2), day date);
           INSERT INTO wq_orders VALUES (1, 1, 10.50, '2024-01-01'), (2, 1, 20.25, '2024-02-29'), (3, 2, 5.00, '2024-03-01'),
             (4, 3, NULL, '2023-12-31'), (5, 4, 7.75, '2024-01-02'), (6, 4, 0.00, NULL), (7, 9, 1.00, '2024-01-05');
           GRANT SELECT ON wq_customers, wq_orders TO spice;`);
  const rt = await startSpiced({ spicepod: pod([
    dataset('c_fed', 'public.wq_customers', pg), dataset('o_fed', 'public.wq_orders', pg),
    dataset('c_acc', 'public.wq_customers', pg, { accel: 'arrow' }), dataset('o_acc', 'public.wq_orders', pg, { accel: 'arrow' }),
  ]) });
  const queries = [
    `SELECT c.region, count(*) AS n, sum(o.amount) AS total, avg(o.amount) AS mean, min(c.name) AS first
       FROM {o} o JOIN {c} c ON o.cust_id = c.id WHERE o.day >= DATE '2024-01-02' OR o.day IS NULL
       GROUP BY c.region ORDER BY c.region NULLS FIRST LIMIT 10`,
    `SELECT name FROM {c} WHERE name < 'b' ORDER BY name`,
    `SELECT id, amount / 3 AS third, amount * 2 - 1 AS y, -id AS neg FROM {o} ORDER BY id DESC`,
    `SELECT c.name, (SELECT max(amount) FROM {o} o WHERE o.cust_id = c.id) AS mx FROM {c} c
       WHERE EXISTS (SELECT 1 FROM {o} o WHERE o.cust_id = c.id) AND c.id NOT IN (3) ORDER BY 2 DESC, 1`,
    `SELECT extract(year FROM day) AS y, count(DISTINCT cust_id) AS k FROM {o}
       WHERE day - INTERVAL 1 DAY < DATE '2024-03-01' GROUP BY 1 ORDER BY 1`,
    `WITH big AS (SELECT * FROM {o} WHERE amount > 5) SELECT 'big' AS what, count(*) AS n FROM big
       UNION ALL SELECT 'customers', count(*) FROM {c} ORDER BY what`,
    `SELECT name, upper(name) AS u, substring(name, 2, 3) AS s FROM {c} WHERE name LIKE 'A%' OR name LIKE '%e_' ORDER BY name`,
    `SELECT o.id, c.name FROM {o} o LEFT JOIN {c} c ON c.id = o.cust_id WHERE o.id BETWEEN 2 AND 7 ORDER BY o.id LIMIT 3 OFFSET 1`,
    `SELECT DISTINCT region FROM {c} ORDER BY region DESC`,
    `SELECT CASE WHEN amount > 6 THEN 'hi' ELSE 'lo' END AS band, coalesce(sum(amount), 0) AS s FROM {o} GROUP BY 1 ORDER BY 1`,
  ];
  try {
    for (const q of queries) {
      const mark = pg.log().length;
      const fed = await sqlRows(rt, q.replaceAll('{o}', 'o_fed').replaceAll('{c}', 'c_fed'));
      const copies = pg.log().slice(mark).split('\n').filter((l) => l.includes('COPY ('));
      const acc = await sqlRows(rt, q.replaceAll('{o}', 'o_acc').replaceAll('{c}', 'c_acc'));
      assert.deepEqual(fed, acc, q);
      assert.ok(fed.length > 0, q);
      // One statement reached the server, and it holds the whole query (here: every table the query names).
      assert.equal(copies.length, 1, `${q}\n${copies.join('\n')}`);
      for (const t of ['wq_orders', 'wq_customers'])
        if (q.includes(t === 'wq_orders' ? '{o}' : '{c}')) assert.ok(copies[0].includes(`"public"."${t}"`), copies[0]);
    }
    assert.match(pg.log(), /JOIN "public"."wq_customers" AS "c" ON/);
    // A query the server refuses (division by zero there, infinity here) runs locally: same answer.
    const q = 'SELECT id, 1 / (amount - amount) AS r FROM {o} WHERE amount IS NOT NULL ORDER BY id';
    const mark = pg.log().length;
    assert.deepEqual(await sqlRows(rt, q.replace('{o}', 'o_fed')), await sqlRows(rt, q.replace('{o}', 'o_acc')));
    assert.match(pg.log().slice(mark), /division by zero/);
    assert.match(rt.log(), /failed there, running it locally: .*division by zero/);
    // Tables on different servers (or accelerated) join locally.
    assert.deepEqual(await sqlRows(rt, 'SELECT count(*) AS n FROM o_fed o JOIN c_acc c ON o.cust_id = c.id'), [{ n: '#6' }]);
  } finally {
    await rt.stop();
    pg.psql('DROP TABLE wq_orders; DROP TABLE wq_customers;');
  }
});

// ---- parallel loads (pg_load_partitions) ------------------------------------------------------------------

const countOf = (text, what) => text.split('\n').filter((l) => l.includes(what)).length;
const loads = (rt, name) => countOf(rt.log(), `dataset "${name}" loaded`);

async function refreshNow(rt, name) {
  const r = await fetch(`http://127.0.0.1:${rt.httpPort}/v1/datasets/${name}/acceleration/refresh`, { method: 'POST' });
  assert.equal(r.status, 201, await r.text());
}

test('a table loads in parallel ctid ranges: every row exactly once, the same rows as one stream', { timeout: 120000 }, async () => {
  // Holes (deleted rows) and moved row versions (updated rows) in every range; dead versions must not show.
  pg.psql(`CREATE TABLE par AS SELECT g AS id, (g % 97)::int8 AS k, md5(g::text) AS s FROM generate_series(1, 60000) g;
           DELETE FROM par WHERE id % 7 = 0;
           UPDATE par SET k = k + 1000 WHERE id % 11 = 0;
           CREATE VIEW par_view AS SELECT * FROM par;`, { user: 'spice' });
  const blocks = Number(pg.psql("SELECT pg_relation_size('par') / 8192").trim());
  assert.ok(blocks >= 3, `the table has ${blocks} blocks`);
  const mark = pg.log().length;
  const rt = await startSpiced({
    spicepod: pod([
      dataset('par3', 'par', pg, { accel: 'arrow', params: { pg_load_partitions: 3 } }),
      dataset('par1', 'par', pg, { accel: 'duckdb', params: { pg_load_partitions: 1 } }),
      dataset('par_view', 'par_view', pg, { accel: 'arrow', params: { pg_load_partitions: 3 } }),
    ]),
  });
  try {
    const want = pg.psql('SELECT count(*), count(DISTINCT id), sum(id), sum(k), max(s) FROM par').trim().split('|');
    for (const name of ['par3', 'par1', 'par_view']) {
      const [r] = await sqlRows(rt, `SELECT count(*) AS n, count(DISTINCT id) AS d, sum(id) AS si, sum(k) AS sk, max(s) AS ms FROM ${name}`);
      assert.deepEqual([num(r.n), num(r.d), num(r.si), num(r.sk), r.ms], want, name);
    }
    const [same] = await sqlRows(rt, 'SELECT count(*) AS n FROM par3 JOIN par1 USING (id, k, s)');
    assert.equal(num(same.n), want[0], 'the parallel load holds the rows of the one-stream load');

    // Three COPYs of block ranges in one snapshot for par3; one plain COPY each for par1 and the view.
    const log = pg.log().slice(mark);
    const copies = log.split('\n').filter((l) => l.includes('COPY (SELECT "id", "k", "s" FROM "public"."par'));
    const ranged = copies.filter((l) => l.includes('ctid'));
    assert.equal(ranged.length, 3, copies.join('\n'));
    assert.match(ranged.join('\n'), /WHERE ctid < '\(\d+,0\)'::tid\)/);
    assert.match(ranged.join('\n'), /WHERE ctid >= '\(\d+,0\)'::tid AND ctid < '\(\d+,0\)'::tid\)/);
    assert.match(ranged.join('\n'), /WHERE ctid >= '\(\d+,0\)'::tid\)/);
    assert.equal(countOf(log, 'pg_export_snapshot()'), 1, log);
    assert.equal(countOf(log, 'SET TRANSACTION SNAPSHOT'), 2, log);
    assert.equal(copies.filter((l) => !l.includes('ctid')).length, 2, copies.join('\n'));
  } finally {
    await rt.stop();
    pg.psql('DROP VIEW par_view; DROP TABLE par;', { user: 'spice' });
  }
});

test('a parallel load reads one snapshot: a transfer committed while its ranges start is in all of them or none', { timeout: 120000 }, async () => {
  // The policy makes every COPY of acct read `gate` when it starts; with gate locked, the first range's COPY
  // waits, the others have not started, and the test commits a transfer from row 1 (first block) to row 30000
  // (last block) meanwhile. Ranges that took their own snapshots would see half of it (or a moved row twice).
  pg.psql(`CREATE TABLE gate (x int); GRANT SELECT ON gate TO spice;`);
  pg.psql(`CREATE TABLE acct AS SELECT g AS id, 100::int8 AS bal, md5(g::text) AS pad FROM generate_series(1, 30000) g;
           ALTER TABLE acct ENABLE ROW LEVEL SECURITY; ALTER TABLE acct FORCE ROW LEVEL SECURITY;
           CREATE POLICY gated ON acct USING (bal IS NOT NULL OR EXISTS (SELECT FROM gate));`, { user: 'spice' });
  const rt = await startSpiced({ spicepod: pod([dataset('acct', 'acct', pg, { accel: 'arrow', params: { pg_load_partitions: 3 } })]) });
  const gate = pg.session();
  const state = async () => {
    const [r] = await sqlRows(rt, 'SELECT count(*) AS n, count(DISTINCT id) AS d, sum(bal) AS total, ' +
                                  'max(CASE WHEN id = 1 THEN bal END) AS first, max(CASE WHEN id = 30000 THEN bal END) AS last FROM acct');
    return [r.n, r.d, r.total, r.first, r.last].map(num).join(' ');
  };
  try {
    assert.equal(await state(), '30000 30000 3000000 100 100');
    await gate.query('BEGIN; LOCK TABLE gate IN ACCESS EXCLUSIVE MODE;');
    const done = loads(rt, 'acct');
    await refreshNow(rt, 'acct');
    await waitUntil('a range to wait for the gate', async () =>
      pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'spicec' AND wait_event_type = 'Lock'").trim(),
    (n) => n === '1', { intervalMs: 20 });
    pg.psql('BEGIN; UPDATE acct SET bal = bal - 50 WHERE id = 1; UPDATE acct SET bal = bal + 50 WHERE id = 30000; COMMIT;');
    await gate.query('COMMIT;');
    await waitUntil('the refresh', async () => loads(rt, 'acct'), (n) => n > done, { timeoutMs: 60000 });
    assert.equal(await state(), '30000 30000 3000000 100 100', 'the load read the snapshot exported before the transfer');
    await refreshNow(rt, 'acct');
    await waitUntil('the next refresh', state, (v) => v === '30000 30000 3000000 50 150', { timeoutMs: 60000, intervalMs: 100 });
  } finally {
    await gate.close();
    await rt.stop();
    pg.psql('DROP TABLE acct, gate;');
  }
});

test('a range whose backend is terminated fails the refresh cleanly; the last good copy serves', { timeout: 120000 }, async () => {
  // A row-level security policy stalls two ranges on one row each while stall_ctl.on is set: the test ends one
  // of those backends mid-COPY; the other range is still running.
  pg.psql(`CREATE TABLE stall_ctl (on_ bool); INSERT INTO stall_ctl VALUES (false);
           CREATE TABLE stall AS SELECT g AS id, md5(g::text) AS s FROM generate_series(1, 30000) g;
           ALTER TABLE stall ENABLE ROW LEVEL SECURITY;
           CREATE POLICY slow ON stall USING (CASE WHEN id IN (2000, 28000) AND (SELECT on_ FROM stall_ctl)
                                                   THEN pg_sleep(5) IS NOT NULL ELSE true END);
           GRANT SELECT ON stall, stall_ctl TO spice;`);
  const rt = await startSpiced({
    spicepod: pod([dataset('stall', 'stall', pg, { accel: 'arrow', params: { pg_load_partitions: 3 },
                                                   extra: '      refresh_retry_enabled: false' })]),
  });
  const count = async () => num((await sqlRows(rt, 'SELECT count(*) AS n FROM stall'))[0].n);
  const spicecBackends = () => pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'spicec' AND " +
                                       "(state = 'idle in transaction' OR query LIKE 'COPY%stall%' AND state = 'active')").trim();
  try {
    assert.equal(await count(), '30000');
    pg.psql('UPDATE stall_ctl SET on_ = true; DELETE FROM stall WHERE id <= 10;');
    await refreshNow(rt, 'stall');
    const pids = await waitUntil('two ranges to stall', () =>
      pg.psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'spicec' AND wait_event = 'PgSleep'").trim().split('\n'),
    (v) => v.length === 2 && v[0] !== '', { intervalMs: 20 });
    assert.equal(pg.psql(`SELECT pg_terminate_backend(${pids[0]})`).trim(), 't');
    await waitUntil('the failed refresh', async () => rt.log(),
      (l) => /dataset "stall": .*could not read postgres table "public\.stall" for dataset "stall": .*terminating connection/.test(l));
    assert.equal((await datasetStatuses(rt)).stall, 'Error');
    assert.equal(await count(), '30000', 'the last good copy keeps serving');
    // The other ranges were stopped: no COPY of spicec's runs on, no transaction of its stays open.
    await waitUntil('the other ranges to end', async () => spicecBackends(), (n) => n === '0', { timeoutMs: 30000 });
    pg.psql('UPDATE stall_ctl SET on_ = false;');
    await refreshNow(rt, 'stall');
    await waitUntil('the next refresh', count, (n) => n === '29990', { timeoutMs: 30000, intervalMs: 100 });
    assert.equal((await datasetStatuses(rt)).stall, 'Ready');
  } finally {
    await rt.stop();
    pg.psql('DROP TABLE stall, stall_ctl;');
  }
});

test('char(n) values arrive without their padding, on every path (TPC-H compares them to plain strings)', { timeout: 60000 }, async () => {
  pg.psql(`CREATE TABLE padded (id int PRIMARY KEY, c char(10), cs char(4)[]);
           INSERT INTO padded VALUES (1, 'FRANCE', '{ab,"x  "}'), (2, 'GERMANY  ', NULL), (3, NULL, '{}');
           GRANT SELECT ON padded TO spice;`);
  const rt = await startSpiced({ spicepod: pod([dataset('p_fed', 'public.padded', pg), dataset('p_arrow', 'public.padded', pg, { accel: 'arrow' }),
                                                 dataset('p_duck', 'public.padded', pg, { accel: 'duckdb' })]) });
  try {
    for (const t of ['p_fed', 'p_arrow', 'p_duck']) {
      // length() keeps the query off the whole-query path: the rows themselves are compared here.
      assert.deepEqual(await sqlRows(rt, `SELECT id, c, length(c) AS n, cs FROM ${t} WHERE c = 'FRANCE' OR c = 'GERMANY' ORDER BY id`),
        [{ id: '#1', c: 'FRANCE', n: '#6', cs: ['ab', 'x'] }, { id: '#2', c: 'GERMANY', n: '#7', cs: null }], t);
      assert.deepEqual(await sqlRows(rt, `SELECT count(*) AS n FROM ${t} WHERE c = 'FRANCE'`), [{ n: '#1' }], t);
    }
  } finally {
    await rt.stop();
    pg.psql('DROP TABLE padded;');
  }
});
