// SPDX-License-Identifier: Apache-2.0
//
// The mysql connector against a real MariaDB that the test starts itself (lib/mariadb.mjs, with grant
// tables: passwords are checked): every mapped type round-trips (accelerated in arrow and duckdb, and
// federated) and equals what the `mariadb` client prints for the same rows; a federated query sends only the
// needed columns to the server (checked in the server's general log); a missing table and a wrong password
// fail their dataset with precise messages (never the password); a server that goes away leaves the last good
// copy serving, and the refresh after it returns succeeds; a 1M-row table streams in (rate printed next to
// the client's). Needs SPICED (ctest sets it) and MariaDB (scripts/deps.sh installs it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startSpiced } from './lib/spiced.mjs';
import { datasetStatuses, waitUntil } from './lib/lifecycle.mjs';
import { startMariadb } from './lib/mariadb.mjs';

let my;
before(async () => {
  my = await startMariadb();
  my.sql(TYPES_SQL);
});
after(async () => {
  if (my) await my.stop();
});

// ---- helpers --------------------------------------------------------------------------------------------

function dataset(name, table, server, { accel, params = {}, extra = '' } = {}) {
  const p = { ...server.params, ...params };
  const lines = [`  - from: mysql:${table}`, `    name: ${name}`, '    params:'];
  for (const [k, v] of Object.entries(p)) lines.push(`      ${k}: ${JSON.stringify(String(v))}`);
  if (accel) lines.push('    acceleration:', '      enabled: true', `      engine: ${accel}`);
  if (extra) lines.push(extra);
  return lines.join('\n') + '\n';
}

function pod(datasets) {
  return `version: v1\nkind: Spicepod\nname: mytest\ndatasets:\n${datasets.join('')}`;
}

// JSON.parse that keeps every number as its source text, marked '#' (bigint unsigned and decimal(38,10) do
// not fit a double).
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

const num = (v) => (typeof v === 'string' && v.startsWith('#') ? v.slice(1) : v);

// A decimal's text without the sign of zero and without trailing fraction zeros: "-0.0100" → "-0.01".
function canonDec(t) {
  let s = String(t);
  if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  if (/^-0$/.test(s)) s = '0';
  return s;
}

// A datetime's text in one form: 'T' between date and time, six fraction digits, 'Z' when it said UTC.
function canonTs(t) {
  const m = /^(\d{4,}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|\+00(?::00)?)?$/.exec(t);
  assert.ok(m, `timestamp text ${t}`);
  return `${m[1]}T${m[2]}.${(m[3] || '').padEnd(6, '0')}`;
}

function canonTime(t) {
  const m = /^(\d\d:\d\d:\d\d)(?:\.(\d+))?$/.exec(t);
  assert.ok(m, `time text ${t}`);
  return `${m[1]}.${(m[2] || '').padEnd(6, '0')}`;
}

// Per column: the client's expression, and how the client's text and spiced's JSON value compare.
const INT = { want: (t) => t, have: (v) => num(v) };
const COLUMNS = [
  ['id', INT], ['ti', INT], ['tiu', INT], ['si', INT], ['siu', INT], ['mi', INT], ['miu', INT], ['i', INT],
  ['iu', INT], ['bi', INT], ['biu', INT],
  ['dc', { want: canonDec, have: (v) => canonDec(num(v)) }], ['d2', { want: canonDec, have: (v) => canonDec(num(v)) }],
  ['fl', { want: Number, have: (v) => Number(num(v)) }], ['db', { want: Number, have: (v) => Number(num(v)) }],
  ['d', { want: (t) => t, have: (v) => v }], ['dt', { want: canonTs, have: canonTs }],
  ['ts', { want: canonTs, have: canonTs }], ['tm', { want: canonTime, have: canonTime }], ['yr', INT],
  ['bt', { expr: 'bt+0', ...INT }],
  ['c', { want: (t) => t, have: (v) => v }], ['vc', { want: (t) => t, have: (v) => v }],
  ['tx', { want: (t) => t, have: (v) => v }],
  ['bn', { expr: 'HEX(bn)', want: (t) => t, have: (v) => Buffer.from(v, 'base64').toString('hex').toUpperCase() }],
  ['vb', { expr: 'HEX(vb)', want: (t) => t, have: (v) => Buffer.from(v, 'base64').toString('hex').toUpperCase() }],
  ['bl', { expr: 'HEX(bl)', want: (t) => t, have: (v) => Buffer.from(v, 'base64').toString('hex').toUpperCase() }],
  ['en', { want: (t) => t, have: (v) => v }], ['st', { want: (t) => t, have: (v) => v }],
  ['js', { want: (t) => t, have: (v) => v }],
];

const TYPES_SQL = `
SET time_zone = '+00:00';
CREATE TABLE types (
  id int PRIMARY KEY, ti tinyint, tiu tinyint unsigned, si smallint, siu smallint unsigned, mi mediumint,
  miu mediumint unsigned, i int, iu int unsigned, bi bigint, biu bigint unsigned, dc decimal(38,10),
  d2 decimal(9,2), fl float, db double, d date, dt datetime(6), ts timestamp(6) NULL, tm time(6), yr year,
  bt bit(10), c char(5), vc varchar(20), tx text, bn binary(4), vb varbinary(10), bl blob,
  en enum('sad','ok','happy'), st set('a','b','c'), js json) CHARACTER SET utf8mb4;
INSERT INTO types VALUES
 (1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807,
  18446744073709551615, 1234567890123456789012345678.0123456789, 1234567.89, 1.5, 1e308, '1969-07-20',
  '1900-01-01 00:00:00.000001', '2038-01-19 03:14:07.999999', '23:59:59.999999', 2155, b'1111111111', 'ab',
  'héllo ☃ 🚀', 'line1\\nline2\\ttab"quote''\\\\', x'00ff', x'00ff00', x'000000', 'happy', 'a,c',
  '{"a": [1, 2], "s": "x\\\\"y"}'),
 (2, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
  -9999999999999999999999999999.9999999999, -0.01, -3.25, -2.5e-300, '1000-01-01', '1000-01-01 00:00:00',
  '1970-01-01 00:00:01', '00:00:00', 1901, b'0', '', '', '', x'', x'', x'', 'sad', '', '[]'),
 (3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '9999-12-31', '9999-12-31 23:59:59.999999',
  '2024-02-29 12:34:56.789012', '12:00:00.5', 1970, b'1', 'abcde', 'x', 'ünï', 'abc', 'abcdefghij', x'00',
  'ok', 'a,b,c', 'null'),
 (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE odd (id int, ip inet6, zd date, zt datetime, t time);
INSERT INTO odd VALUES (1, '::1', '0000-00-00', '0000-00-00 00:00:00', '12:00:00');
CREATE TABLE longtime (id int, t time);
INSERT INTO longtime VALUES (1, '25:00:00');
CREATE TABLE wide (id int PRIMARY KEY, a int, b varchar(20), c double);
INSERT INTO wide SELECT seq, seq * 2, CONCAT('v', seq), seq / 3 FROM seq_1_to_1000;
`;

function assertTypesMatch(label, got) {
  const exprs = COLUMNS.map(([c, k]) => k.expr || c).join(', ');
  const clientRows = my.rows(`SET time_zone = '+00:00'; SELECT ${exprs} FROM types ORDER BY id`);
  assert.equal(got.length, clientRows.length, `${label}: row count`);
  for (let r = 0; r < clientRows.length; r++) {
    COLUMNS.forEach(([col, kind], i) => {
      const text = clientRows[r][i];
      const want = text === null ? null : kind.want(text);
      const have = got[r][col] === null || got[r][col] === undefined ? got[r][col] ?? null : kind.have(got[r][col]);
      assert.deepEqual(have, want, `${label}: row ${r + 1}, column ${col} (client: ${JSON.stringify(text)})`);
    });
  }
}

// ---- tests ----------------------------------------------------------------------------------------------

test('every type round-trips and equals the mariadb client (arrow, duckdb, federated)', { timeout: 120000 }, async () => {
  const rt = await startSpiced({
    spicepod: pod([
      dataset('t_arrow', 'testdb.types', my, { accel: 'arrow' }),
      dataset('t_duck', 'types', my, { accel: 'duckdb' }),
      dataset('t_fed', 'types', my),
    ]),
  });
  try {
    for (const name of ['t_arrow', 't_duck', 't_fed'])
      assertTypesMatch(name, await sqlRows(rt, `SELECT * FROM ${name} ORDER BY id`));
    // Types as DuckDB sees them: exact decimals, unsigned integers, UTC timestamps, blobs.
    const [t] = await sqlRows(rt, 'SELECT typeof(dc) AS dc, typeof(d2) AS d2, typeof(biu) AS biu, typeof(tiu) AS tiu, ' +
                                  'typeof(ts) AS ts, typeof(dt) AS dt, typeof(d) AS d, typeof(bl) AS bl, typeof(tm) AS tm FROM t_arrow LIMIT 1');
    assert.deepEqual(t, { dc: 'DECIMAL(38,10)', d2: 'DECIMAL(9,2)', biu: 'UBIGINT', tiu: 'UTINYINT',
                          ts: 'TIMESTAMP WITH TIME ZONE', dt: 'TIMESTAMP', d: 'DATE', bl: 'BLOB', tm: 'TIME' });
    // Exact arithmetic on the decimal column, same as the server's.
    const [s] = await sqlRows(rt, 'SELECT CAST(sum(dc) AS VARCHAR) AS s FROM t_duck');
    assert.equal(canonDec(s.s), canonDec(my.rows('SELECT sum(dc) FROM types')[0][0]));
    // Empty string and NULL stay apart.
    const [e] = await sqlRows(rt, "SELECT count(*) FILTER (WHERE vc = '') AS empty, count(*) FILTER (WHERE vc IS NULL) AS nul FROM t_fed");
    assert.deepEqual([num(e.empty), num(e.nul)], ['1', '1']);
  } finally {
    await rt.stop();
  }
});

test('federated queries send only the needed columns, and integer conditions, to the server', { timeout: 60000 }, async () => {
  const rt = await startSpiced({ spicepod: pod([dataset('wide_fed', 'wide', my)]) });
  try {
    const mark = my.log().length;
    // length() is not pushed whole (docs/federation.md): the table is scanned with what can be pushed.
    const rows = await sqlRows(rt, 'SELECT b, length(b) AS n FROM wide_fed WHERE a = 10');
    assert.deepEqual(rows, [{ b: 'v5', n: '#2' }]);
    const [agg] = await sqlRows(rt, 'SELECT sum(c) AS s FROM wide_fed');
    assert.ok(Math.abs(Number(num(agg.s)) - (1000 * 1001) / 2 / 3) < 1e-3, JSON.stringify(agg));
    const lim = await sqlRows(rt, 'SELECT id FROM wide_fed LIMIT 3');
    assert.equal(lim.length, 3);
    // (the server writes its general log a moment after answering)
    const selects = await waitUntil('three SELECTs in the general log',
      () => my.log().slice(mark).split('\n').filter((l) => /Query\s+SELECT .* FROM `testdb`\.`wide`/.test(l)), (ls) => ls.length >= 3);
    assert.ok(selects.some((l) => /SELECT (`b`, `a`|`a`, `b`) FROM `testdb`\.`wide` WHERE \(`a` = 10\)$/.test(l)), selects.join('\n'));
    // Queries on one server's tables run there whole.
    assert.ok(selects.some((l) => /SELECT sum\(`c`\) AS `s` FROM `testdb`\.`wide` AS `wide_fed`$/.test(l)), selects.join('\n'));
    assert.ok(selects.some((l) => /SELECT `id` AS `id` FROM `testdb`\.`wide` AS `wide_fed` LIMIT 3$/.test(l)), selects.join('\n'));
    for (const l of selects.slice(0, 2)) assert.ok(!l.includes('`id`'), `a query read a column it does not need: ${l}`);
  } finally {
    await rt.stop();
  }
});

test('refresh_sql, append by time and refresh_data_window run at the server; federated filters on exact-comparing columns too', { timeout: 60000 }, async () => {
  const refresh = (sql) => `      refresh_sql: ${JSON.stringify(sql)}`;
  my.sql(`CREATE TABLE ev (id int, ts datetime(6));
          INSERT INTO ev SELECT seq, TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq MINUTE FROM seq_1_to_100;
          CREATE TABLE recent (id int, ts datetime);
          INSERT INTO recent VALUES (1, UTC_TIMESTAMP() - INTERVAL 1 HOUR), (2, UTC_TIMESTAMP() - INTERVAL 3 DAY);`);
  const params = Object.entries(my.params).map(([k, v]) => `      ${k}: ${JSON.stringify(String(v))}`).join('\n');
  const mark = my.log().length;
  const rt = await startSpiced({
    spicepod: pod([
      dataset('wide_sql', 'wide', my, { accel: 'arrow',
        extra: refresh("SELECT * FROM wide_sql WHERE id < 10 AND NOT (b = 'v3' OR c IS NULL) AND c >= -1.5") }),
      dataset('wide_quote', 'wide', my, { accel: 'duckdb',
        extra: refresh("SELECT * FROM wide_quote WHERE b = 'x'' OR 1=1 -- \\' OR b = 'v7'") }),
      dataset('wide_expr', 'wide', my, { accel: 'arrow', extra: refresh('SELECT * FROM wide_expr WHERE id + 1 < 10') }),
      dataset('wide_fed', 'wide', my),
      `  - from: mysql:ev\n    name: ev\n    time_column: ts\n    params:\n${params}\n` +
      '    acceleration:\n      engine: duckdb\n      refresh_mode: append\n',
      `  - from: mysql:recent\n    name: recent\n    time_column: ts\n    params:\n${params}\n` +
      '    acceleration:\n      engine: arrow\n      refresh_data_window: 1d\n',
    ]),
    ready: false,
  });
  try {
    await waitUntil('statuses', () => datasetStatuses(rt),
      (s) => s.wide_sql === 'Ready' && s.wide_quote === 'Ready' && s.wide_expr === 'Error' && s.ev === 'Ready' && s.wide_fed === 'Ready' &&
             s.recent === 'Ready');
    assert.deepEqual(await sqlRows(rt, 'SELECT id FROM recent'), [{ id: '#1' }]);
    const ids = (await sqlRows(rt, 'SELECT id FROM wide_sql ORDER BY id')).map((r) => num(r.id));
    assert.deepEqual(ids, ['1', '2', '4', '5', '6', '7', '8', '9']);
    assert.deepEqual(await sqlRows(rt, 'SELECT id, b FROM wide_quote'), [{ id: '#7', b: 'v7' }]);
    assert.match(rt.log(), /refresh_sql of dataset "wide_expr" cannot be pushed to mysql \(a FUNCTION where a column or a constant was expected\)/);
    // Federated: the integer condition goes to the server; the string one stays with the engine.
    assert.deepEqual(await sqlRows(rt, "SELECT b FROM wide_fed WHERE a = 10"), [{ b: 'v5' }]);
    assert.deepEqual(await sqlRows(rt, "SELECT a FROM wide_fed WHERE b = 'V5'"), []);
    // Append: rows from the newest timestamp on travel, none lost or doubled.
    const counts = async () => (await sqlRows(rt, 'SELECT count(*) AS n, count(DISTINCT id) AS d FROM ev'))
      .map((r) => `${num(r.n)}/${num(r.d)}`)[0];
    assert.equal(await counts(), '100/100');
    my.sql(`INSERT INTO ev VALUES (101, TIMESTAMP'2024-01-01 00:00:00' + INTERVAL 100 MINUTE),
                                  (102, TIMESTAMP'2024-01-01 00:00:00' + INTERVAL 150 MINUTE);`);
    const r = await fetch(`http://127.0.0.1:${rt.httpPort}/v1/datasets/ev/acceleration/refresh`, { method: 'POST' });
    assert.equal(r.status, 201);
    await waitUntil('the append', counts, (c) => c === '102/102', { timeoutMs: 30000, intervalMs: 100 });
    // (the server writes its general log a moment after answering)
    const q = (re) => waitUntil(`${re} in the general log`, () => my.log().slice(mark).split('\n'), (ls) => ls.some((l) => re.test(l)));
    await q(/SELECT `id`, `a`, `b`, `c` FROM `testdb`\.`wide` WHERE \(\(`id` < 10\) AND \(NOT \(\(`b` = _utf8mb4 X'7633'\) OR \(`c` IS NULL\)\)\) AND \(`c` >= -1\.5\)\)$/);
    await q(/WHERE \(\(`b` = _utf8mb4 X'[0-9A-F]+'\) OR \(`b` = _utf8mb4 X'7637'\)\)$/);
    // (queries on wide_fed alone run at the server whole, text compared byte by byte there too)
    await q(/SELECT \(`b` COLLATE utf8mb4_nopad_bin\) AS `b` FROM `testdb`\.`wide` AS `wide_fed` WHERE \(`a` = 10\)$/);
    await q(/FROM `testdb`\.`wide` AS `wide_fed` WHERE \(\(`b` COLLATE utf8mb4_nopad_bin\) = _utf8mb4 X'5635'\)$/);
    await q(/FROM `testdb`\.`recent` WHERE \(`ts` > _utf8mb4 X'[0-9A-F]+'\)$/);
    await q(/FROM `testdb`\.`ev` WHERE \(`ts` >= _utf8mb4 X'[0-9A-F]+'\)$/);
  } finally {
    await rt.stop();
    my.sql('DROP TABLE ev; DROP TABLE recent;');
  }
});

test('missing table, wrong password, odd types: clear messages, never the password', { timeout: 60000 }, async () => {
  const rt = await startSpiced({
    spicepod: pod([
      dataset('ok', 'wide', my, { accel: 'arrow' }),
      dataset('missing', 'testdb.no_such_table', my, { accel: 'arrow' }),
      dataset('badpass', 'wide', my, { accel: 'arrow', params: { mysql_pass: 'Wr0ng-Pa55word' } }),
      dataset('noserver', 'wide', { params: { ...my.params, mysql_tcp_port: '1' } }, { accel: 'arrow' }),
      dataset('odd', 'odd', my, { accel: 'arrow' }),
      dataset('longtime', 'longtime', my, { accel: 'arrow' }),
    ]),
    ready: false,
  });
  try {
    await waitUntil('statuses', () => datasetStatuses(rt),
      (s) => s.ok === 'Ready' && s.missing === 'Error' && s.badpass === 'Error' && s.noserver === 'Error' &&
             s.odd === 'Ready' && s.longtime === 'Error');
    const log = rt.log();
    assert.match(log, /mysql table "testdb\.no_such_table" for dataset "missing" does not exist/);
    assert.match(log, /could not connect to mysql server "127\.0\.0\.1:\d+" for dataset "badpass": Access denied for user 'spice'/);
    assert.match(log, /could not connect to mysql server "127\.0\.0\.1:1" for dataset "noserver"/);
    assert.ok(!log.includes('Wr0ng-Pa55word'), 'the wrong password appears in the log');
    assert.ok(!log.includes(my.password), 'the password appears in the log');
    assert.deepEqual(await sqlRows(rt, 'SELECT count(*) AS n FROM ok'), [{ n: '#1000' }]);
    // A type without a mapping is read as the server's text (with a warning); zero dates read as NULL.
    assert.match(log, /WARN .*dataset "odd": column "ip" of mysql table "testdb\.odd" has type inet6, which has no Arrow mapping; read as text/);
    assert.deepEqual(await sqlRows(rt, 'SELECT ip, zd, zt, CAST(t AS VARCHAR) AS t FROM odd'),
                     [{ ip: '::1', zd: null, zt: null, t: '12:00:00' }]);
    // A TIME beyond one day has no time64 value: the load fails, naming the column and the value.
    assert.match(log, /could not read mysql table "testdb\.longtime" for dataset "longtime": column "t" \(time\) holds a value spicec cannot read: 25:00:00/);
  } finally {
    await rt.stop();
  }
});

test('mysql_connection_string and secrets from the environment; a wrong one does not show its password', { timeout: 60000 }, async () => {
  const url = (pass) => `mysql://spice:${encodeURIComponent(pass)}@127.0.0.1:${my.port}/testdb`;
  const noPass = { ...my.params };
  delete noPass.mysql_pass;
  const rt = await startSpiced({
    spicepod: pod([
      `  - from: mysql:wide\n    name: by_url\n    params:\n      mysql_connection_string: "${url(my.password)}"\n` +
      '      mysql_sslmode: disabled\n    acceleration:\n      enabled: true\n      engine: duckdb\n',
      `  - from: mysql:wide\n    name: bad_url\n    params:\n      mysql_connection_string: "${url('Wr0ng-Url-Pa55')}"\n` +
      '      mysql_sslmode: disabled\n    acceleration:\n      enabled: true\n      engine: arrow\n',
      dataset('from_env', 'wide', { params: noPass }, { accel: 'arrow' }),
      dataset('tls_required', 'wide', { params: { ...my.params, mysql_sslmode: 'required' } }, { accel: 'arrow' }),
    ]),
    env: { MYSQL_PASS: my.password },
    ready: false,
  });
  try {
    await waitUntil('statuses', () => datasetStatuses(rt),
      (s) => s.by_url === 'Ready' && s.from_env === 'Ready' && s.bad_url === 'Error' && s.tls_required === 'Error');
    assert.deepEqual(await sqlRows(rt, 'SELECT count(*) AS n FROM by_url'), [{ n: '#1000' }]);
    assert.deepEqual(await sqlRows(rt, 'SELECT count(*) AS n FROM from_env'), [{ n: '#1000' }]);
    assert.match(rt.log(), /could not connect to mysql server "127\.0\.0\.1:\d+" for dataset "bad_url": Access denied/);
    // The test server has no TLS: the default sslmode (required) refuses to go on in clear text.
    assert.match(rt.log(), /could not connect to mysql server "127\.0\.0\.1:\d+" for dataset "tls_required": .*(SSL|TLS)/i);
    assert.ok(!rt.log().includes('Wr0ng-Url-Pa55'), 'the password of the connection string appears in the log');
  } finally {
    await rt.stop();
  }
});

test('a server that goes away: the last good copy serves, the refresh after it returns succeeds', { timeout: 120000 }, async () => {
  const own = await startMariadb();
  let rt;
  try {
    own.sql('CREATE TABLE events (id int); INSERT INTO events SELECT seq FROM seq_1_to_100;');
    rt = await startSpiced({
      spicepod: pod([dataset('events', 'events', own, {
        accel: 'arrow', extra: '      refresh_check_interval: 1s\n      refresh_mode: full' })]),
    });
    const count = async () => Number(num((await sqlRows(rt, 'SELECT count(*) AS n FROM events'))[0].n));
    assert.equal(await count(), 100);
    await own.stopServer();
    await waitUntil('status Error', () => datasetStatuses(rt), (s) => s.events === 'Error', { timeoutMs: 30000 });
    assert.equal(await count(), 100, 'the last good copy keeps serving');
    assert.match(rt.log(), /dataset "events": .*could not connect to mysql server "127\.0\.0\.1:\d+"/);
    await own.start();
    own.sql('INSERT INTO events SELECT seq FROM seq_101_to_150;');
    await waitUntil('the refresh after the restart', count, (n) => n === 150, { timeoutMs: 60000, intervalMs: 200 });
    assert.equal((await datasetStatuses(rt)).events, 'Ready');
  } finally {
    if (rt) await rt.stop();
    await own.stop();
  }
});

test('a 1M-row table streams in (load rate printed next to the mariadb client\'s)', { timeout: 300000 }, async () => {
  my.sql(`CREATE TABLE big (id bigint PRIMARY KEY, k int, x double, s varchar(40), amount decimal(12,2), ts datetime);
          INSERT INTO big SELECT seq, seq % 1000, seq * 1.5, CONCAT('name ', seq), seq * 0.01,
                                 TIMESTAMP'2020-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_1000000;`);
  const t0 = Date.now();
  const rt = await startSpiced({ spicepod: pod([dataset('big', 'big', my, { accel: 'arrow' }), dataset('big_fed', 'big', my)]),
                                readyTimeoutMs: 240000 });
  try {
    const wall = (Date.now() - t0) / 1000;
    const [r] = await sqlRows(rt, 'SELECT count(*) AS n, sum(id) AS s, CAST(sum(amount) AS VARCHAR) AS a, max(s) AS m FROM big');
    const [[n, s, a, m]] = my.rows('SELECT count(*), sum(id), sum(amount), max(s) FROM big');
    assert.deepEqual([num(r.n), num(r.s), r.a, r.m], [n, s, a, m]);
    const line = rt.log().split('\n').find((l) => l.includes('dataset "big" loaded'));
    assert.ok(line, rt.log());
    // A federated read stopped early (LIKE stays with the engine, which has its 3 rows after the first batch)
    // cancels the connection instead of draining the rest of the table, and the next query works.
    const q0 = Date.now();
    assert.equal((await sqlRows(rt, "SELECT id FROM big_fed WHERE s LIKE 'name 7%' LIMIT 3")).length, 3);
    assert.deepEqual(await sqlRows(rt, 'SELECT count(*) AS n FROM big_fed WHERE id <= 10'), [{ n: '#10' }]);
    console.log(`# federated LIMIT 3 and a full count over 1M rows: ${Date.now() - q0} ms`);
    const c0 = process.hrtime.bigint();
    my.sql('SELECT id, k, x, s, amount, ts FROM big', { args: ['--batch', '--quick'] });
    const clientS = Number(process.hrtime.bigint() - c0) / 1e9;
    const rate = Number((line.match(/\(([0-9]+) rows\/s/) || [])[1]);
    const clientRate = 1e6 / clientS;
    console.log(`# 1M rows: spiced load ${rate} rows/s (spiced start to ready ${wall.toFixed(2)} s); ` +
                `mariadb --batch --quick ${clientRate.toFixed(0)} rows/s; ratio ${(rate / clientRate).toFixed(2)}`);
  } finally {
    await rt.stop();
    my.sql('DROP TABLE big;');
  }
});

test('a query whose tables all live in the server runs there whole, with the answer the engine gives', { timeout: 90000 }, async () => {
  // The default collation (utf8mb4_general_ci) ignores case and trailing spaces; the engine compares bytes.
  my.sql(`CREATE TABLE wq_customers (id int PRIMARY KEY, name varchar(20), region varchar(10));
          INSERT INTO wq_customers VALUES (1, 'apple', 'EU'), (2, 'Banana', 'US'), (3, 'cherry', NULL), (4, 'Zed', 'EU'),
            (5, 'Äpfel', 'us'), (6, 'A_x', 'EU'), (7, 'apple ', 'eu');
          CREATE TABLE wq_orders (id int PRIMARY KEY, cust_id int, amount decimal(10,2), day date);
          INSERT INTO wq_orders VALUES (1, 1, 10.50, '2024-01-01'), (2, 1, 20.25, '2024-02-29'), (3, 2, 5.00, '2024-03-01'),
            (4, 3, NULL, '2023-12-31'), (5, 4, 7.75, '2024-01-02'), (6, 4, 0.00, NULL), (7, 9, 1.00, '2024-01-05'),
            (8, 7, 2.00, '2024-01-03');`);
  const rt = await startSpiced({ spicepod: pod([
    dataset('c_fed', 'wq_customers', my), dataset('o_fed', 'wq_orders', my),
    dataset('c_acc', 'wq_customers', my, { accel: 'arrow' }), dataset('o_acc', 'wq_orders', my, { accel: 'arrow' }),
  ]) });
  const queries = [
    `SELECT c.region, count(*) AS n, sum(o.amount) AS total, avg(o.amount) AS mean, min(c.name) AS first
       FROM {o} o JOIN {c} c ON o.cust_id = c.id WHERE o.day >= DATE '2024-01-02' OR o.day IS NULL
       GROUP BY c.region ORDER BY c.region NULLS FIRST LIMIT 10`,
    `SELECT name FROM {c} WHERE name < 'b' ORDER BY name`,
    `SELECT name, count(*) AS n FROM {c} WHERE name = 'apple' OR name = 'APPLE' GROUP BY name ORDER BY name`,
    `SELECT id, amount / 3 AS third, amount * 2 - 1 AS y, -id AS neg FROM {o} ORDER BY id DESC`,
    `SELECT c.name, (SELECT max(amount) FROM {o} o WHERE o.cust_id = c.id) AS mx FROM {c} c
       WHERE EXISTS (SELECT 1 FROM {o} o WHERE o.cust_id = c.id) AND c.id NOT IN (3) ORDER BY 2 DESC, 1`,
    `SELECT extract(year FROM day) AS y, count(DISTINCT cust_id) AS k FROM {o}
       WHERE day - INTERVAL 1 DAY < DATE '2024-03-01' GROUP BY 1 ORDER BY 1`,
    `SELECT name, upper(name) AS u, substring(name, 2, 3) AS s FROM {c} WHERE name LIKE 'A%' OR name LIKE '%e_' ORDER BY name`,
    `SELECT o.id, c.name FROM {o} o LEFT JOIN {c} c ON c.id = o.cust_id WHERE o.id BETWEEN 2 AND 8 ORDER BY o.id LIMIT 3 OFFSET 1`,
    `SELECT DISTINCT region FROM {c} ORDER BY region DESC`,
    `SELECT CASE WHEN amount > 6 THEN 'hi' ELSE 'lo' END AS band, coalesce(sum(amount), 0) AS s FROM {o} GROUP BY 1 ORDER BY 1`,
  ];
  try {
    for (const q of queries) {
      const mark = my.log().length;
      const fed = await sqlRows(rt, q.replaceAll('{o}', 'o_fed').replaceAll('{c}', 'c_fed'));
      const acc = await sqlRows(rt, q.replaceAll('{o}', 'o_acc').replaceAll('{c}', 'c_acc'));
      assert.deepEqual(fed, acc, q);
      assert.ok(fed.length > 0, q);
      // One statement reached the server, holding every table the query names.
      const sent = await waitUntil('the query in the general log',
        () => my.log().slice(mark).split('\n').filter((l) => /Query\s+SELECT .*wq_/.test(l)), (ls) => ls.length >= 1);
      assert.equal(sent.length, 1, `${q}\n${sent.join('\n')}`);
      if (q.includes('{o}')) assert.ok(sent[0].includes('`testdb`.`wq_orders`'), sent[0]);
      if (q.includes('{c}')) assert.ok(sent[0].includes('`testdb`.`wq_customers`'), sent[0]);
    }
    assert.match(my.log(), /COLLATE utf8mb4_nopad_bin/);
    // Tables on different servers (or accelerated) join locally.
    assert.deepEqual(await sqlRows(rt, 'SELECT count(*) AS n FROM o_fed o JOIN c_acc c ON o.cust_id = c.id'), [{ n: '#7' }]);
  } finally {
    await rt.stop();
    my.sql('DROP TABLE wq_orders; DROP TABLE wq_customers;');
  }
});
