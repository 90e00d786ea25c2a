// SPDX-License-Identifier: Apache-2.0
//
// The 22 TPC-H queries on the TPC-H-shaped tables of the run (gen_tpch, bench/data/tpch-sf<SF>/) loaded into a
// throwaway PostgreSQL and a throwaway MariaDB, side by side in one run:
//
//   direct        each query run on PostgreSQL itself (bench/tpch/queries.pg.sql, tools/bench_db over libpq:
//                 the time from sending the statement until the whole result is in the client) — the baseline;
//   federated     spiced over HTTP with the 8 tables as datasets `from: postgres:public.<table>`, no acceleration;
//   arrow, duckdb, sqlite, postgres
//                 spiced with the same datasets accelerated by that engine (postgres: schema spice_accel of the
//                 same server), over HTTP;
//   mariadb       each query on MariaDB itself (bench/tpch/queries.mysql.sql, bench_db over libmariadb);
//   mariadb_federated
//                 spiced with the tables `from: mysql:<table>`, no acceleration, ÷ direct MariaDB.
//
// Every path's answers are checked against direct PostgreSQL's, value by value (numbers within 1e-6 relative,
// char(n) padding ignored, order-insensitive only for queries without ORDER BY); a difference is a failed
// `answers/<path>` measure and is quoted in the notes. Each query's first run on a path is its check and
// warm-up; then the repetitions are interleaved (spiced, direct, next query; who goes first alternates) and
// every measure has min/median/max over them. Ratios: spiced ÷ direct PostgreSQL (goals: ≤ 1/50 accelerated,
// ≤ 1.10 federated), mariadb_federated ÷ direct MariaDB (≤ 1.10).
//
// Environment (bench/run.sh sets it): SPICEC_BENCH_TPCH (the Parquet folder), SPICEC_BENCH_SF, _REPS, _WARMUP,
// _MATCH (a query-name substring); SPICEC_BENCH_TPCH_MARIADB=0 leaves MariaDB out.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { startMariadb } from '../../tests/e2e/lib/mariadb.mjs';
import { startPostgres } from '../../tests/e2e/lib/postgres.mjs';
import { paramsYaml, startSpiced } from '../../tests/e2e/lib/spiced.mjs';
import { BUILD, QUICK, figure, stats, writePart } from '../lib.mjs';

const TPCH = process.env.SPICEC_BENCH_TPCH;
const SF = Number(process.env.SPICEC_BENCH_SF || (QUICK ? 0.05 : 1));
const REPS = Number(process.env.SPICEC_BENCH_REPS || (QUICK ? 1 : 5));
const WARMUP = Math.max(1, Number(process.env.SPICEC_BENCH_WARMUP || 1)); // the first run is the answer check
const MATCH = process.env.SPICEC_BENCH_MATCH || '';
const WITH_MARIADB = process.env.SPICEC_BENCH_TPCH_MARIADB !== '0';
const TIMEOUT_S = QUICK ? 300 : 1800; // per statement, so that a pathological plan cannot hang the run
const GOAL_ACCEL = 1 / 50, GOAL_FED = 1.1;
if (!TPCH) throw new Error('SPICEC_BENCH_TPCH (the gen_tpch folder) is not set; run bench/run.sh');

// ---- the schema: the specification's types; primary keys, and the indexes the correlated subqueries of Q17 and
// Q20 and the joins on foreign keys need (a direct server without them would be a straw man).
const NN = (cols) => cols.map(([n, t]) => `${n} ${t} NOT NULL`).join(', ');
const TABLES = [
  ['region', [['r_regionkey', 'integer'], ['r_name', 'char(25)'], ['r_comment', 'varchar(152)']], 'r_regionkey'],
  ['nation', [['n_nationkey', 'integer'], ['n_name', 'char(25)'], ['n_regionkey', 'integer'], ['n_comment', 'varchar(152)']],
    'n_nationkey'],
  ['part', [['p_partkey', 'integer'], ['p_name', 'varchar(55)'], ['p_mfgr', 'char(25)'], ['p_brand', 'char(10)'],
    ['p_type', 'varchar(25)'], ['p_size', 'integer'], ['p_container', 'char(10)'], ['p_retailprice', 'decimal(15,2)'],
    ['p_comment', 'varchar(23)']], 'p_partkey'],
  ['supplier', [['s_suppkey', 'integer'], ['s_name', 'char(25)'], ['s_address', 'varchar(40)'], ['s_nationkey', 'integer'],
    ['s_phone', 'char(15)'], ['s_acctbal', 'decimal(15,2)'], ['s_comment', 'varchar(101)']], 's_suppkey'],
  ['partsupp', [['ps_partkey', 'integer'], ['ps_suppkey', 'integer'], ['ps_availqty', 'integer'],
    ['ps_supplycost', 'decimal(15,2)'], ['ps_comment', 'varchar(199)']], 'ps_partkey, ps_suppkey'],
  ['customer', [['c_custkey', 'integer'], ['c_name', 'varchar(25)'], ['c_address', 'varchar(40)'], ['c_nationkey', 'integer'],
    ['c_phone', 'char(15)'], ['c_acctbal', 'decimal(15,2)'], ['c_mktsegment', 'char(10)'], ['c_comment', 'varchar(117)']],
    'c_custkey'],
  ['orders', [['o_orderkey', 'bigint'], ['o_custkey', 'integer'], ['o_orderstatus', 'char(1)'], ['o_totalprice', 'decimal(15,2)'],
    ['o_orderdate', 'date'], ['o_orderpriority', 'char(15)'], ['o_clerk', 'char(15)'], ['o_shippriority', 'integer'],
    ['o_comment', 'varchar(79)']], 'o_orderkey'],
  ['lineitem', [['l_orderkey', 'bigint'], ['l_partkey', 'integer'], ['l_suppkey', 'integer'], ['l_linenumber', 'integer'],
    ['l_quantity', 'decimal(15,2)'], ['l_extendedprice', 'decimal(15,2)'], ['l_discount', 'decimal(15,2)'],
    ['l_tax', 'decimal(15,2)'], ['l_returnflag', 'char(1)'], ['l_linestatus', 'char(1)'], ['l_shipdate', 'date'],
    ['l_commitdate', 'date'], ['l_receiptdate', 'date'], ['l_shipinstruct', 'char(25)'], ['l_shipmode', 'char(10)'],
    ['l_comment', 'varchar(44)']], 'l_orderkey, l_linenumber'],
];
const INDEXES = ['CREATE INDEX lineitem_part_supp ON lineitem (l_partkey, l_suppkey)',
                 'CREATE INDEX orders_cust ON orders (o_custkey)', 'CREATE INDEX partsupp_supp ON partsupp (ps_suppkey)'];

// ---- the queries: "-- name: qNN" blocks of the three dialect files, by name.
function loadQueries(file) {
  const out = new Map();
  let name = null;
  for (const line of readFileSync(new URL(`../tpch/${file}`, import.meta.url), 'utf8').split('\n')) {
    const m = /^-- name: (\S+)/.exec(line);
    if (m) out.set((name = m[1]), '');
    else if (name && !line.startsWith('--')) out.set(name, out.get(name) + line + '\n');
  }
  for (const [k, v] of out) out.set(k, v.trim().replace(/;$/, ''));
  return out;
}
const DUCK = loadQueries('queries.sql'), PGQ = loadQueries('queries.pg.sql'), MYQ = loadQueries('queries.mysql.sql');
const NAMES = [...DUCK.keys()].filter((n) => n.includes(MATCH));
for (const n of NAMES) if (!PGQ.has(n) || !MYQ.has(n)) throw new Error(`${n} is missing from a dialect file of bench/tpch/`);
const ORDERED = new Map(NAMES.map((n) => [n, /\border\s+by\b/i.test(DUCK.get(n))]));

// ---- the data: each Parquet file as CSV in primary-key order (DuckDB, tools/duckdb_exec), loaded once per server.
function exportCsv() {
  const dir = mkdtempSync(join(tmpdir(), 'spicec-tpch-csv-'));
  const sql = TABLES.map(([t, cols, pk]) => `COPY (SELECT ${cols.map((c) => c[0]).join(', ')} FROM ` +
    `read_parquet('${TPCH}/${t}.parquet') ORDER BY ${pk}) TO '${dir}/${t}.csv' (FORMAT csv, HEADER false);`).join('\n');
  execFileSync(`${BUILD}/bin/duckdb_exec`, [sql], { stdio: ['ignore', 'ignore', 'inherit'] });
  return dir;
}

function loadPostgres(pg, csv) {
  pg.psql(TABLES.map(([t, cols]) => `CREATE TABLE ${t} (${NN(cols)});\n\\copy ${t} FROM '${csv}/${t}.csv' WITH (FORMAT csv)`)
    .join('\n'), { user: 'spice' });
  pg.psql(`${TABLES.map(([t, , pk]) => `ALTER TABLE ${t} ADD PRIMARY KEY (${pk});`).join('\n')}
${INDEXES.join(';\n')};
VACUUM ANALYZE ${TABLES.map((t) => t[0]).join(', ')};`, { user: 'spice' });
}

function loadMariadb(my, csv) {
  my.sql(`SET unique_checks = 0;\n${TABLES.map(([t, cols, pk]) =>
    `CREATE TABLE ${t} (${NN(cols)}, PRIMARY KEY (${pk})) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
LOAD DATA LOCAL INFILE '${csv}/${t}.csv' INTO TABLE ${t} CHARACTER SET utf8mb4 FIELDS TERMINATED BY ','
  OPTIONALLY ENCLOSED BY '"' ESCAPED BY '' LINES TERMINATED BY '\\n';`).join('\n')}
${INDEXES.join(';\n')};
ANALYZE TABLE ${TABLES.map((t) => t[0]).join(', ')};`, { args: ['--local-infile=1'] });
}

// ---- direct runs: tools/bench_db, one connection, one JSON line per statement each way.
class Direct {
  constructor(args) {
    this.proc = spawn(`${BUILD}/bin/bench_db`, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.waiting = [];
    this.stderr = '';
    this.proc.stderr.on('data', (d) => (this.stderr += d));
    createInterface({ input: this.proc.stdout }).on('line', (l) => this.waiting.shift()?.resolve(JSON.parse(l)));
    this.proc.on('exit', (code) => {
      for (const w of this.waiting.splice(0)) w.reject(new Error(`bench_db exited (${code}): ${this.stderr}`));
    });
  }

  // Resolves with {ms, nrows, columns, rows?}; rejects with the server's error.
  async run(sql, rows = false) {
    const a = await new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.proc.stdin.write(`${JSON.stringify({ sql, rows })}\n`);
    });
    if (a.error) throw new Error(a.error);
    return a;
  }

  close() {
    this.proc.stdin.end();
    return new Promise((resolve) => (this.proc.exitCode !== null ? resolve() : this.proc.on('exit', () => resolve())));
  }
}

// ---- spiced over HTTP: one keep-alive connection; results cache off in the spicepod and no-cache asked.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function spicedRun(rt, sql) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(`${rt.url}/v1/sql`, {
      method: 'POST', agent,
      headers: { 'Content-Type': 'text/plain', Accept: 'application/json', 'Cache-Control': 'no-cache' },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const ms = performance.now() - t0, text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 300)}`));
        else resolve({ ms, text });
      });
    });
    req.setTimeout(TIMEOUT_S * 1000, () => req.destroy(new Error(`no answer after ${TIMEOUT_S} s`)));
    req.on('error', reject);
    req.end(sql);
  });
}

function pod(name, from, params, engine) {
  const accel = !engine ? '' : `    acceleration:\n      enabled: true\n      engine: ${engine}\n` +
    (engine === 'postgres' ? `      params:\n${paramsYaml({ ...params, pg_schema: 'spice_accel' }, 8)}\n` : '');
  return `version: v1\nkind: Spicepod\nname: tpch_pg_${name}\nruntime:\n  results_cache:\n    enabled: false\ndatasets:\n` +
    TABLES.map(([t]) => `  - from: ${from}${t}\n    name: ${t}\n    params:\n${paramsYaml(params)}\n${accel}`).join('');
}

// ---- answers: the server's text and spiced's JSON brought to one spelling, then compared.
const NUM = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
const DATE = /^(\d{4}-\d{2}-\d{2})(?:[T ]00:00:00(?:\.0+)?)?$/;
function norm(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return JSON.stringify(v);
  if (NUM.test(v)) return Number(v);
  const d = DATE.exec(v);
  return d ? d[1] : v.replace(/ +$/, ''); // char(n) pads with spaces; PostgreSQL compares without them
}
const same = (a, b) => (typeof a === 'number' && typeof b === 'number'
  ? Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(a), Math.abs(b)) : a === b);
const show = (v) => (typeof v === 'string' ? JSON.stringify(v) : String(v));
const sortKey = (row) => row.map((v) => (typeof v === 'number' ? v.toPrecision(6) : String(v))).join('\x1f');

// null when `got` (rows of normalized values) equals `ref`, else the first difference in words.
function difference(ref, got, columns, ordered) {
  if (got.length !== ref.length) return `${got.length} rows, PostgreSQL ${ref.length}`;
  if (!ordered) {
    ref = [...ref].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
    got = [...got].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
  }
  for (let r = 0; r < ref.length; r++) {
    if (got[r].length !== ref[r].length) return `${got[r].length} columns, PostgreSQL ${ref[r].length}`;
    for (let c = 0; c < ref[r].length; c++)
      if (!same(got[r][c], ref[r][c]))
        return `row ${r + 1} ${columns[c]}: ${show(got[r][c])}, PostgreSQL ${show(ref[r][c])}`;
  }
  return null;
}

// ---- the run
const measures = [], notes = [], mismatches = [];
const reference = new Map(); // query → {columns, rows} from direct PostgreSQL
const started = performance.now();
const log = (msg) => console.log(`  [${((performance.now() - started) / 1000).toFixed(0)} s] ${msg}`);
const geomean = (xs) => Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);

// One path: spiced (started on `spicepod`) against `direct`, every query checked then timed REPS times.
async function measurePath(path, spicepod, direct, queries, goal, baseName) {
  const t0 = performance.now();
  let rt;
  try {
    rt = await startSpiced({ spicepod, readyTimeoutMs: 3600000 });
  } catch (e) {
    notes.push(`**${path}: spiced did not start**: ${e.message.split('\n')[0]}`);
    measures.push({ name: `answers/${path}`, value: 0, unit: 'queries', limit: NAMES.length, ratio: 0, goal: 1, met: false,
                    higher_is_better: true, check: 'spiced did not start' });
    return;
  }
  measures.push(figure(`ready/${path}`, 's', (performance.now() - t0) / 1000));
  log(`${path}: spiced ready after ${((performance.now() - t0) / 1000).toFixed(1)} s; checking the answers`);
  const cases = NAMES.map((q) => ({ q, spiced: [], direct: [], check: null }));
  try {
    for (const c of cases) {
      try {
        const r = await spicedRun(rt, queries.get(c.q));
        const rows = JSON.parse(r.text).map((o) => Object.values(o).map(norm));
        const ref = reference.get(c.q);
        const diff = ref ? difference(ref.rows, rows, ref.columns, ORDERED.get(c.q)) : 'no PostgreSQL answer to compare with';
        c.check = diff === null ? 'ok' : `answer differs: ${diff}`;
        for (let w = 1; w < WARMUP; w++) await spicedRun(rt, queries.get(c.q));
      } catch (e) {
        c.check = `error: ${e.message.split('\n')[0].slice(0, 300)}`;
        c.failed = true;
      }
    }
    log(`${path}: ${cases.filter((c) => c.check === 'ok').length} of ${cases.length} answers equal PostgreSQL's; ` +
        `${REPS} repetition(s)`);
    for (let rep = 0; rep < REPS; rep++)
      for (const c of cases.filter((x) => !x.failed)) {
        try {
          const runSpiced = async () => c.spiced.push((await spicedRun(rt, queries.get(c.q))).ms);
          const runDirect = async () => c.direct.push((await direct.run(baseName.get(c.q))).ms);
          if (rep % 2 === 0) { await runSpiced(); await runDirect(); } else { await runDirect(); await runSpiced(); }
        } catch (e) {
          c.check = `error: ${e.message.split('\n')[0].slice(0, 300)}`;
          c.failed = true;
        }
      }
  } finally {
    await rt.stop({ timeoutMs: 60000 });
  }

  const ok = cases.filter((c) => c.check === 'ok').length;
  for (const c of cases.filter((x) => x.check !== 'ok')) mismatches.push({ q: c.q, path, text: c.check });
  measures.push({ name: `answers/${path}`, value: ok, unit: 'queries', limit: cases.length, ratio: ok / cases.length,
                  goal: 1, met: ok === cases.length, higher_is_better: true,
                  check: ok === cases.length ? 'ok' : `${cases.length - ok} of ${cases.length} differ or fail` });
  // Per query: spiced's median ÷ direct's median, and the per-repetition ratios' min/median/max.
  const timed = cases.filter((c) => !c.failed && c.spiced.length === REPS && c.direct.length === REPS);
  const perQuery = [];
  for (const c of cases) {
    if (!timed.includes(c)) {
      perQuery.push({ name: `${c.q}/${path}`, value: null, unit: 'ms', limit: null, ratio: null, goal, met: null, check: c.check });
      continue;
    }
    const s = stats(c.spiced), d = stats(c.direct), r = stats(c.spiced.map((x, i) => x / c.direct[i]));
    const ratio = s.median / d.median;
    perQuery.push({ name: `${c.q}/${path}`, value: s.median, unit: 'ms', limit: d.median, ratio, goal, met: ratio <= goal,
                    min: s.min, median: s.median, max: s.max, reps: s.reps, direct_min: d.min, direct_max: d.max,
                    ratio_min: r.min, ratio_median: r.median, ratio_max: r.max, check: c.check,
                    samples_ms: c.spiced.map((x) => +x.toFixed(3)), direct_samples_ms: c.direct.map((x) => +x.toFixed(3)) });
  }
  // The geometric mean is over the queries answered correctly: the time of a wrong answer says nothing.
  const right = timed.filter((c) => c.check === 'ok');
  if (right.length > 0) {
    const g = geomean(right.map((c) => stats(c.spiced).median / stats(c.direct).median));
    const perRep = stats([...Array(REPS).keys()].map((i) => geomean(right.map((c) => c.spiced[i] / c.direct[i]))));
    measures.push({ name: `geomean/${path}`, value: g, unit: 'ratio', limit: null, ratio: g, goal, met: g <= goal,
                    min: perRep.min, median: perRep.median, max: perRep.max, reps: REPS, queries: right.length,
                    ratio_min: perRep.min, ratio_median: perRep.median, ratio_max: perRep.max });
  }
  measures.push(...perQuery);
}

// Direct answers of every query (the first run also warms the server); rows normalized.
async function directAnswers(direct, queries, label) {
  const out = new Map();
  for (const q of NAMES) {
    try {
      const a = await direct.run(queries.get(q), true);
      out.set(q, { columns: a.columns, rows: a.rows.map((row) => row.map(norm)) });
    } catch (e) {
      mismatches.push({ q, path: `${label} (direct)`, text: `error: ${e.message.split('\n')[0].slice(0, 300)}` });
    }
  }
  return out;
}

const csv = exportCsv();
try {
  // PostgreSQL: memory for the data (shared_buffers, work_mem), as one would configure it for this work.
  const memMiB = Math.max(128, Math.round(SF * 1024));
  const pg = await startPostgres({ settings: { shared_buffers: `${memMiB}MB`, work_mem: '64MB',
                                               effective_cache_size: `${memMiB * 2}MB` } });
  try {
    let t0 = performance.now();
    loadPostgres(pg, csv);
    measures.push(figure('load_postgres_s', 's', (performance.now() - t0) / 1000));
    log(`PostgreSQL loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const rowCount = Number(pg.psql('SELECT count(*) FROM lineitem', { user: 'spice' }).trim());
    const direct = new Direct(['--pg', `host=127.0.0.1 port=${pg.port} dbname=${pg.db} user=${pg.user} ` +
                               `password=${pg.password} sslmode=disable`]);
    try {
      await direct.run(`SET statement_timeout = ${TIMEOUT_S * 1000}`);
      for (const [q, a] of await directAnswers(direct, PGQ, 'postgres')) reference.set(q, a);
      const params = pg.params;
      await measurePath('federated', pod('federated', 'postgres:public.', params, null), direct, DUCK, GOAL_FED, PGQ);
      for (const engine of ['arrow', 'duckdb', 'sqlite', 'postgres'])
        await measurePath(engine, pod(engine, 'postgres:public.', params, engine), direct, DUCK, GOAL_ACCEL, PGQ);
    } finally {
      await direct.close();
    }
    notes.push(`SF ${SF} (lineitem ${rowCount} rows), ${REPS} repetition(s) after a checked warm-up run; ` +
               `PostgreSQL shared_buffers ${memMiB} MB, work_mem 64 MB; primary keys and indexes on ` +
               'lineitem(l_partkey, l_suppkey), orders(o_custkey), partsupp(ps_suppkey); ANALYZEd.');
  } finally {
    await pg.stop();
  }

  if (WITH_MARIADB) {
    const my = await startMariadb({ serverArgs: [`--innodb-buffer-pool-size=${Math.max(128, Math.round(SF * 2048))}M`] });
    try {
      const t0 = performance.now();
      loadMariadb(my, csv);
      measures.push(figure('load_mariadb_s', 's', (performance.now() - t0) / 1000));
      log(`MariaDB loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const direct = new Direct(['--mysql', '--host', '127.0.0.1', '--port', String(my.port), '--user', my.user,
                                 '--password', my.password, '--db', my.db]);
      try {
        await direct.run(`SET SESSION max_statement_time = ${TIMEOUT_S}`);
        const answers = await directAnswers(direct, MYQ, 'mariadb');
        let ok = 0;
        for (const q of NAMES) {
          const ref = reference.get(q), got = answers.get(q);
          if (!got) continue;
          const diff = ref ? difference(ref.rows, got.rows, ref.columns, ORDERED.get(q)) : 'no PostgreSQL answer';
          if (diff === null) ok++;
          else mismatches.push({ q, path: 'mariadb (direct)', text: `answer differs: ${diff}` });
        }
        measures.push({ name: 'answers/mariadb', value: ok, unit: 'queries', limit: NAMES.length,
                        ratio: ok / NAMES.length, goal: 1, met: ok === NAMES.length, higher_is_better: true,
                        check: ok === NAMES.length ? 'ok' : `${NAMES.length - ok} of ${NAMES.length} differ or fail` });
        await measurePath('mariadb_federated', pod('mariadb_federated', 'mysql:', my.params, null), direct, DUCK,
                          GOAL_FED, MYQ);
      } finally {
        await direct.close();
      }
    } finally {
      await my.stop();
    }
  }
} finally {
  rmSync(csv, { recursive: true, force: true });
}

notes.push('Times: spiced over HTTP JSON (no results cache) vs the query run directly on the server by tools/bench_db ' +
           '(until the whole result is in the client). ratio = spiced median ÷ direct median; the range in ' +
           'brackets is the per-repetition ratios\' min … max. geomean/<path>: the geometric mean of those ratios over ' +
           'the queries answered correctly; in brackets the same mean taken over each repetition alone (min … max), ' +
           'which need not contain it. Answers: every path vs direct PostgreSQL.');
// Differences grouped by query and text: "q02 (federated, arrow, …): 0 rows, PostgreSQL 15".
const grouped = new Map();
for (const m of mismatches) {
  const key = `${m.q}\x1f${m.text}`;
  grouped.set(key, [...(grouped.get(key) ?? []), m.path]);
}
notes.push(mismatches.length === 0 ? 'All answers equal direct PostgreSQL\'s on every path.'
  : `**Answers that differ from direct PostgreSQL's, or errors**: ${[...grouped].map(([k, paths]) => {
    const [q, text] = k.split('\x1f');
    return `${q} (${paths.join(', ')}): ${text}`;
  }).join('; ')}. Geometric means are over the queries answered correctly.`);
// Summary measures first, then the per-query ones grouped by query.
const summary = measures.filter((m) => !/^q\d/.test(m.name));
const perQuery = measures.filter((m) => /^q\d/.test(m.name)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
writePart('tpch_pg', 'TPC-H on PostgreSQL/MariaDB: spiced (federated, accelerated) ÷ the same query run directly on the server',
          [...summary, ...perQuery], notes);
