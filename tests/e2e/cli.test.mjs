// SPDX-License-Identifier: Apache-2.0
//
// The `spice` CLI against a real spiced: SQL with -e, every --format, scripts on stdin (over Flight, the default,
// and over HTTP with --http: both must print the same), the REPL through a pseudo-terminal, status, datasets,
// refresh, init, run, and the messages for a runtime that is not running.
// Needs SPICED and SPICE_CLI (ctest sets both).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, existsSync, rmSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { startSpiced, freePort, request, sleep } from './lib/spiced.mjs';

const SPICED = process.env.SPICED;
const SPICE = process.env.SPICE_CLI;
if (!SPICED || !SPICE) throw new Error('set SPICED and SPICE_CLI to the spiced and spice binaries');

const CITIES_CSV = 'id,name,population\n1,Zürich,421878\n2,東京,13960000\n3,"Paris, France",2148000\n';
const SPICEPOD = `version: v1
kind: Spicepod
name: cli_e2e
datasets:
  - from: file:cities.csv
    name: cities
    acceleration:
      enabled: true
      engine: arrow
  - from: file:cities.csv
    name: cities_federated
`;

// ---- helpers ---------------------------------------------------------------------------------------------

// Runs a command; resolves with its exit code and outputs (never rejects on a non-zero exit).
function run(cmd, args, { input, cwd, env, timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    // A command that exits before reading its input (e.g. on a usage error) closes the pipe: that is not a
    // test failure, the exit code and output say what happened.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

// RFC 4180 records (quotes, doubled quotes, CRLF), for checking --format csv without caring how it quotes.
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\n') row.push(field), rows.push(row), (row = []), (field = '');
    else if (c !== '\r') field += c;
  }
  if (field !== '' || row.length) row.push(field), rows.push(row);
  return rows;
}

// Terminal columns of a line: East Asian wide characters take two.
function displayWidth(s) {
  let w = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0);
    const wide = (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) || (cp >= 0xac00 && cp <= 0xd7a3) ||
      (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xff00 && cp <= 0xff60) || (cp >= 0x20000 && cp <= 0x3fffd);
    w += wide ? 2 : 1;
  }
  return w;
}

// ---- fixture ---------------------------------------------------------------------------------------------

let spiced;
const cli = (args, opts) => run(SPICE, args, opts);
// `spice sql` over Flight (the default) and over HTTP (--http).
const sqlFlight = (args, opts) => cli(['sql', '--flight-endpoint', `grpc://${spiced.flightAddr}`, ...args], opts);
const sqlHttp = (args, opts) => cli(['sql', '--http', '--http-endpoint', spiced.url, ...args], opts);
const sql = sqlFlight;

before(async () => {
  spiced = await startSpiced({ spicepod: SPICEPOD, files: { 'cities.csv': CITIES_CSV } });
});

after(async () => {
  if (spiced) await spiced.stop();
});

// ---- spice sql ---------------------------------------------------------------------------------------------

for (const [transport, sql] of [['flight', sqlFlight], ['http', sqlHttp]]) {
  test(`${transport}: sql -e draws a box table with the time and the row count`, async () => {
    const r = await sql(['-e', 'SELECT id, name, population FROM cities ORDER BY id']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const table = lines.filter((l) => l.startsWith('+') || l.startsWith('|'));
    assert.equal(table.length, 7, r.stdout); // rule, header, rule, 3 rows, rule
    assert.match(table[1], /^\| id +\| name +\| population +\|$/);
    assert.match(table[3], /^\| 1 +\| Zürich +\| 421878 +\|$/);
    assert.match(table[4], /^\| 2 +\| 東京 +\| 13960000 +\|$/);
    assert.match(table[5], /^\| 3 +\| Paris, France +\| 2148000 +\|$/);
    const widths = new Set(table.map(displayWidth));
    assert.equal(widths.size, 1, `every line of the box has the same width:\n${table.join('\n')}`);
    assert.match(r.stdout, /\nTime: \d+\.\d{6} seconds(?: \(cached\))?\. 3 rows\.\n$/);
  });

  test(`${transport}: sql --format csv prints the rows as CSV`, async () => {
    const r = await sql(['--format', 'csv', '-e', 'SELECT id, name FROM cities ORDER BY id']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(parseCsv(r.stdout), [
      ['id', 'name'],
      ['1', 'Zürich'],
      ['2', '東京'],
      ['3', 'Paris, France'],
    ]);
    assert.doesNotMatch(r.stdout, /Time:/);
  });

  test(`${transport}: sql --format json prints a JSON array of rows`, async () => {
    const r = await sql(['--format', 'json', '-e', 'SELECT id, name FROM cities WHERE id >= 2 ORDER BY id']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.endsWith('\n'));
    assert.deepEqual(JSON.parse(r.stdout), [
      { id: 2, name: '東京' },
      { id: 3, name: 'Paris, France' },
    ]);
  });

  test(`${transport}: sql reads a script from stdin and runs its statements in order`, async () => {
    const script = [
      '-- a comment; with a semicolon',
      "SELECT 'a;b' AS s,",
      '       count(*) AS n FROM cities;',
      '/* block; comment */ SELECT name FROM cities_federated',
      '  WHERE id = 3;',
      'SELECT 42 AS last', // no final ';'
    ].join('\n');
    const r = await sql(['--format', 'csv'], { input: script });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(parseCsv(r.stdout), [['s', 'n'], ['a;b', '3'], ['name'], ['Paris, France'], ['last'], ['42']]);
  });

  test(`${transport}: sql script stops at the first error with exit code 1`, async () => {
    const r = await sql(['--format', 'csv'], { input: 'SELECT 1 AS a;\nSELECT * FROM no_such_table;\nSELECT 2 AS b;\n' });
    assert.equal(r.code, 1);
    assert.deepEqual(parseCsv(r.stdout), [['a'], ['1']]);
    assert.match(r.stderr, /^Query Error: .*no_such_table/m);
  });

  test(`${transport}: sql -e reports a query error with exit code 1`, async () => {
    const r = await sql(['-e', 'SELECT nope FROM cities']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^Query Error: .*nope/);
  });

  test(`${transport}: show tables lists the datasets`, async () => {
    const r = await sql(['--format', 'csv', '-e', 'show tables']);
    assert.equal(r.code, 0, r.stderr);
    const rows = parseCsv(r.stdout);
    assert.deepEqual(rows[0], ['table_catalog', 'table_schema', 'table_name', 'table_type']);
    const names = rows.slice(1).map((row) => row[2]);
    assert.ok(names.includes('cities'), r.stdout);
    assert.ok(names.includes('cities_federated'), r.stdout);
    assert.ok(!rows.slice(1).some((row) => row[1] === 'information_schema'));
  });

  test(`${transport}: sql limits the table to 500 rows and counts the rest`, async () => {
    const r = await sql(['-e', 'SELECT * FROM range(1234) t(i) ORDER BY i']);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.split('\n').filter((l) => /^\| \d/.test(l));
    assert.equal(rows.length, 500);
    assert.match(r.stdout, /\n\.\.\. 734 more rows\n/);
    assert.match(r.stdout, /\. 1234 rows\.\n$/);
  });
}

test('the REPL runs multi-line statements through a terminal', { skip: !existsSync('/usr/bin/script') }, async () => {
  const home = mkdtempSync(join(tmpdir(), 'spice-cli-home-'));
  const cmd = `'${SPICE}' sql --flight-endpoint grpc://${spiced.flightAddr}`;
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, HOME: home, TERM: 'dumb' } });
  let out = '';
  const waitFor = async (re, from) => {
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline) {
      if (re.test(out.slice(from))) return out.length;
      await sleep(20);
    }
    throw new Error(`no ${re} in REPL output:\n${out}`);
  };
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.on('close', resolve));
  let at = await waitFor(/sql> /, 0);
  assert.match(out, /Welcome to the Spice\.ai SQL REPL! Type 'help' for help\.\r?\n\r?\nshow tables; -- list available tables/);
  child.stdin.write('SELECT name\n');
  at = await waitFor(/ {2}-> /, at);
  child.stdin.write('FROM cities WHERE id = 1;\n');
  at = await waitFor(/Time: .* 1 rows\.[\s\S]*sql> /, at);
  assert.match(out, /\| Zürich +\|/);
  child.stdin.write('SELECT * FROM missing_table;\n');
  at = await waitFor(/Query Error: [\s\S]*sql> /, at);
  child.stdin.write('.error\n');
  at = await waitFor(/Query: SELECT \* FROM missing_table[\s\S]*sql> /, at);
  child.stdin.write('exit\n');
  const code = await Promise.race([exited, sleep(10000).then(() => 'timeout')]);
  assert.equal(code, 0, out);
  const history = readFileSync(join(home, '.spice', 'sql_history'), 'utf8');
  assert.match(history, /missing_table/);
  rmSync(home, { recursive: true, force: true });
});

// ---- status, datasets, refresh ---------------------------------------------------------------------------

test('status shows the endpoints', async () => {
  const r = await cli(['status', '--http-endpoint', spiced.url]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /^NAME +ENDPOINT +STATUS$/);
  assert.ok(lines.some((l) => new RegExp(`^http +127\\.0\\.0\\.1:${spiced.httpPort} +Ready$`).test(l)), r.stdout);
});

test('datasets lists every dataset with its acceleration and status', async () => {
  const r = await cli(['datasets', '--http-endpoint', spiced.url]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0], /^FROM +NAME +REPLICATION +ACCELERATION +STATUS$/);
  const row = (name) => lines.find((l) => l.split(/ +/)[1] === name);
  assert.match(row('cities') ?? '', /^file:cities\.csv +cities +false +true +Ready$/, r.stdout);
  assert.match(row('cities_federated') ?? '', /^file:cities\.csv +cities_federated +false +false +Ready$/, r.stdout);
});

test('refresh triggers a refresh, with refresh_sql applied to that run', async () => {
  const r = await cli(['refresh', 'cities', '--refresh-sql', 'SELECT * FROM cities WHERE id = 2',
    '--http-endpoint', spiced.url]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /refresh triggered for cities/i);
  let count;
  for (let i = 0; i < 100; i++) {
    const q = await sql(['--format', 'json', '-e', 'SELECT count(*) AS n FROM cities']);
    count = JSON.parse(q.stdout)[0].n;
    if (count === 1) break;
    await sleep(100);
  }
  assert.equal(count, 1, 'the refresh with refresh_sql left one row');
  const full = await cli(['refresh', 'cities', '--refresh-mode', 'full', '--http-endpoint', spiced.url]);
  assert.equal(full.code, 0, full.stderr);
  for (let i = 0; i < 100; i++) {
    const q = await sql(['--format', 'json', '-e', 'SELECT count(*) AS n FROM cities']);
    count = JSON.parse(q.stdout)[0].n;
    if (count === 3) break;
    await sleep(100);
  }
  assert.equal(count, 3, 'a plain refresh loads every row again');
});

test('refresh of an unknown or unaccelerated dataset fails with the server message', async () => {
  const missing = await cli(['refresh', 'nope', '--http-endpoint', spiced.url]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stdout, '');
  assert.match(missing.stderr, /Dataset nope not found/);
  const federated = await cli(['refresh', 'cities_federated', '--http-endpoint', spiced.url]);
  assert.equal(federated.code, 1);
  assert.match(federated.stderr, /does not have acceleration enabled/);
});

test('refresh checks its arguments before calling the runtime', async () => {
  const r = await cli(['refresh', 'cities', '--refresh-mode', 'sometimes', '--http-endpoint', spiced.url]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown refresh mode "sometimes"/);
  const none = await cli(['refresh']);
  assert.equal(none.code, 2);
});

// ---- no runtime, init, run, usage ------------------------------------------------------------------------

test('commands explain that the runtime is not running', async () => {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const msg = `could not connect to the Spice runtime at ${endpoint}: is it running? Start it with \`spice run\`.\n`;
  for (const args of [['sql', '--http', '-e', 'SELECT 1'], ['status'], ['datasets'], ['refresh', 'cities']]) {
    const r = await cli([...args, '--http-endpoint', endpoint]);
    assert.equal(r.code, 1, args.join(' '));
    assert.equal(r.stderr, msg, args.join(' '));
  }
  // Over Flight (the default) the message names the Flight endpoint.
  const flight = `grpc://127.0.0.1:${port}`;
  const r = await cli(['sql', '--flight-endpoint', flight, '-e', 'SELECT 1']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `could not connect to the Spice runtime at ${flight}: is it running? Start it with \`spice run\`.\n`);
});

test('init writes a spicepod.yaml and refuses to overwrite it without --force', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'spice-cli-init-'));
  const folder = join(parent, 'my_app');
  mkdirSync(folder);
  const first = await cli(['init'], { cwd: folder });
  assert.equal(first.code, 0, first.stderr);
  const pod = join(folder, 'spicepod.yaml');
  assert.equal(readFileSync(pod, 'utf8'), 'version: v1\nkind: Spicepod\nname: my_app\ndatasets: []\n');
  const again = await cli(['init', 'other'], { cwd: folder });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists/);
  assert.match(readFileSync(pod, 'utf8'), /name: my_app/);
  const forced = await cli(['init', 'other', '--force'], { cwd: folder });
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(readFileSync(pod, 'utf8'), /name: other/);
  rmSync(parent, { recursive: true, force: true });
});

test('spice run starts spiced in the current folder with the arguments passed through', async () => {
  const folder = mkdtempSync(join(tmpdir(), 'spice-cli-run-'));
  writeFileSync(join(folder, 'cities.csv'), CITIES_CSV);
  writeFileSync(join(folder, 'spicepod.yaml'), SPICEPOD);
  const port = await freePort();
  const flight = await freePort();
  const logPath = join(folder, 'spiced.log');
  const log = openSync(logPath, 'a');
  // spice looks next to itself first (where ctest builds both), then on PATH.
  const env = { ...process.env, PATH: `${dirname(SPICED)}:${process.env.PATH}` };
  const proc = spawn(SPICE, ['run', '--http', `127.0.0.1:${port}`, '--flight', `127.0.0.1:${flight}`],
    { cwd: folder, env, stdio: ['ignore', log, log] });
  closeSync(log);
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  try {
    let ready = false;
    for (let i = 0; i < 600 && !ready && proc.exitCode === null; i++) {
      ready = await request(`http://127.0.0.1:${port}/v1/ready`).then((r) => r.status === 200, () => false);
      if (!ready) await sleep(100);
    }
    assert.ok(ready, `spiced started by spice run became ready:\n${readFileSync(logPath, 'utf8')}`);
    const r = await cli(['sql', '--flight-endpoint', `grpc://127.0.0.1:${flight}`, '--format', 'json', '-e',
      'SELECT max(population) AS p FROM cities']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [{ p: 13960000 }]);
  } finally {
    proc.kill('SIGTERM'); // the spice process became spiced (exec), so this stops the runtime itself
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15000);
    const exit = await exited;
    clearTimeout(timer);
    rmSync(folder, { recursive: true, force: true });
    assert.equal(exit.code, 0, `spiced under spice run stopped cleanly on SIGTERM: ${JSON.stringify(exit)}`);
  }
});

test('version, help and unknown commands', async () => {
  const v = await cli(['version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^CLI version: v\d+\.\d+\.\d+\n$/);
  const h = await cli(['help']);
  assert.equal(h.code, 0);
  for (const c of ['run', 'sql', 'status', 'datasets', 'refresh', 'init', 'version']) assert.match(h.stdout, new RegExp(`\\n  ${c}\\b`));
  const sqlHelp = await cli(['sql', '--help']);
  assert.equal(sqlHelp.code, 0);
  assert.match(sqlHelp.stdout, /--format/);
  const bad = await cli(['frobnicate']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /unknown command "frobnicate"/);
  const badFormat = await cli(['sql', '--format', 'xml', '-e', 'SELECT 1']);
  assert.equal(badFormat.code, 2);
});

test('a result answered by the results cache is marked (cached) over HTTP', async () => {
  // Twice in one script, so the second comes well inside the cache's 1 s item_ttl.
  const query = 'SELECT count(*) AS n FROM cities WHERE population > 1000;';
  const r = await sqlHttp(['-e', `${query} ${query}`]);
  assert.equal(r.code, 0, r.stderr);
  const times = r.stdout.split('\n').filter((l) => l.startsWith('Time: '));
  assert.equal(times.length, 2, r.stdout);
  assert.doesNotMatch(times[0], /cached/);
  assert.match(times[1], /^Time: \d+\.\d{6} seconds \(cached\)\. 1 rows\.$/);
});

test('Flight and HTTP print the same values for every common type', async () => {
  const query = `SELECT 1::TINYINT AS i8, -2::SMALLINT AS i16, 3::INTEGER AS i32, 4::BIGINT AS i64, 5::UBIGINT AS u64,
    1.5::REAL AS f32, 2.25::DOUBLE AS f64, 12.34::DECIMAL(10,2) AS dec, true AS b, NULL::INTEGER AS nothing,
    'é,"q"' AS s, DATE '2024-02-29' AS d, TIMESTAMP '2024-01-02 03:04:05.123456' AS ts, TIME '12:34:56' AS t,
    [1, 2, 3] AS list, {'a': 1, 'b': 'x'} AS st, INTERVAL 90 MINUTE AS iv, 'abc'::BLOB AS bin
    FROM range(3)`;
  for (const format of ['csv', 'json', 'table']) {
    const f = await sqlFlight(['--format', format, '-e', query]);
    const h = await sqlHttp(['--format', format, '-e', query]);
    assert.equal(f.code, 0, f.stderr);
    assert.equal(h.code, 0, h.stderr);
    const strip = (out) => out.replace(/\nTime: .*\n$/, '');
    assert.equal(strip(f.stdout), strip(h.stdout), format);
  }
});

test('an API key travels over Flight as a bearer token', async () => {
  // The runtime does not check keys here (no runtime.auth); the key must not break the call.
  const r = await sqlFlight(['--api-key', 'k-123', '--format', 'csv', '-e', 'SELECT count(*) AS n FROM cities']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(parseCsv(r.stdout), [['n'], ['3']]);
});

test('a result answered by the results cache is marked (cached) over Flight', async () => {
  const query = 'SELECT count(*) AS n FROM cities WHERE population > 2000000;';
  const r = await sqlFlight(['-e', `${query} ${query}`]);
  assert.equal(r.code, 0, r.stderr);
  const times = r.stdout.split('\n').filter((l) => l.startsWith('Time: '));
  assert.equal(times.length, 2, r.stdout);
  assert.doesNotMatch(times[0], /cached/);
  assert.match(times[1], /^Time: \d+\.\d{6} seconds \(cached\)\. 1 rows\.$/);
});

test('--http-endpoint without --flight-endpoint keeps spice sql on HTTP', async () => {
  // Nothing listens on the Flight port named here: the query must not go there.
  const r = await cli(['sql', '--http-endpoint', spiced.url, '--format', 'csv', '-e', 'SELECT count(*) AS n FROM cities']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(parseCsv(r.stdout), [['n'], ['3']]);
  const both = await cli(['sql', '--http-endpoint', spiced.url, '--flight-endpoint', `grpc://${spiced.flightAddr}`,
    '--format', 'csv', '-e', 'SELECT 7 AS n']);
  assert.equal(both.code, 0, both.stderr);
  assert.deepEqual(parseCsv(both.stdout), [['n'], ['7']]);
});

test('spice sql over Flight with TLS: --tls-root-certificate-file verifies the runtime', { timeout: 60000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spice-cli-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  // runtime.tls serves both HTTP and Flight over TLS.
  const pod = SPICEPOD.replace('name: cli_e2e\n',
    `name: cli_e2e\nruntime:\n  tls:\n    enabled: true\n    certificate_file: ${cert}\n    key_file: ${key}\n`);
  const s = await startSpiced({ spicepod: pod, files: { 'cities.csv': CITIES_CSV }, ready: false });
  try {
    const ep = `grpc+tls://${s.flightAddr}`;
    const query = ['--format', 'csv', '-e', 'SELECT count(*) AS n FROM cities'];
    let r;
    // The runtime is up once a query answers (its readiness probe speaks HTTPS now, which startSpiced does not).
    for (let i = 0; i < 300; i++) {
      r = await cli(['sql', '--flight-endpoint', ep, '--tls-root-certificate-file', cert, ...query]);
      if (r.code === 0) break;
      await sleep(100);
    }
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(parseCsv(r.stdout), [['n'], ['3']]);
    // Without the CA the certificate is refused, and the message says it is about TLS.
    const untrusted = await cli(['sql', '--flight-endpoint', ep, ...query]);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /^could not connect to flight endpoint ".*": .*(ssl|certificate|handshake)/i);
    const plain = await cli(['sql', '--flight-endpoint', `grpc://${s.flightAddr}`, ...query]);
    assert.equal(plain.code, 1);
    const wrongScheme = await cli(['sql', '--flight-endpoint', `grpc://${s.flightAddr}`, '--tls-root-certificate-file', cert, ...query]);
    assert.equal(wrongScheme.code, 1);
    assert.match(wrongScheme.stderr, /is not TLS/);
  } finally {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
