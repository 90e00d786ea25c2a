// SPDX-License-Identifier: Apache-2.0
//
// PostgreSQL, side by side in one run against a throwaway server (tests/e2e/lib/postgres.mjs):
//   load      spiced's initial load of a lineitem-shaped table (rows/s from its "loaded" log line) in one stream
//             (pg_load_partitions: 1) and in parallel ctid ranges (the default: automatic), both ÷ the server's own
//             `COPY (...) TO '/dev/null' (FORMAT binary)` rows/s — the most one server backend can hand out — and
//             the parallel load also ÷ the same ranges copied to /dev/null by as many psql sessions at once;
//   rss       spiced's peak RSS after the load ÷ the Arrow size of the data it loaded (parallel and one stream);
//   queries   two TPC-H-shaped aggregates (Q1, Q6) on copies accelerated by arrow, duckdb, sqlite and postgres (in
//             schema spice_accel of the same server) and on the federated dataset, over HTTP ÷ the same query
//             run directly on PostgreSQL (psql's \timing, same machine).
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';

import { startPostgres } from '../../tests/e2e/lib/postgres.mjs';
import { startSpiced, paramsYaml } from '../../tests/e2e/lib/spiced.mjs';
import { QUICK, compare, figure, peakRssMiB, writePart } from '../lib.mjs';

const ROWS = QUICK ? 200000 : Number(process.env.SPICEC_BENCH_ROWS || 6000000);
const REPS = QUICK ? 1 : 3;
const COLS = 'l_orderkey, l_partkey, l_suppkey, l_linenumber, l_quantity, l_extendedprice, l_discount, l_tax, ' +
  'l_returnflag, l_linestatus, l_shipdate, l_commitdate, l_receiptdate, l_shipmode, l_comment';

const Q = {
  q1: `SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, sum(l_extendedprice) AS sum_base_price,
  sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price, avg(l_quantity) AS avg_qty, count(*) AS count_order
FROM lineitem WHERE l_shipdate <= DATE '1998-09-02' GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus`,
  q6: `SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem
WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01' AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24`,
};

const pg = await startPostgres();
const ms = (text) => Number((/Time: ([0-9.]+) ms/.exec(text) || [])[1]);
const timed = (sql) => ms(pg.psql(`\\timing on\n${sql};`, { tuplesOnly: false }));

// How many ranges spiced reads by default (src/connectors/postgres.c, range_count): one per core, at most 4 and at
// most connection_pool_size (10), each at least 8192 blocks. --quick forces 2 (its table is too small to split),
// so that the parallel path runs there too.
const autoRanges = (blocks) => (QUICK ? 2 : Math.max(1, Math.min(4, cpus().length, 10, Math.floor(blocks / 8192), blocks)));

// The WHERE clauses of k ranges as spiced cuts them: the first without a lower bound, the last without an upper.
function ranges(blocks, k) {
  const at = (i) => Math.floor((blocks * i) / k);
  return Array.from({ length: k }, (_, i) => [
    i > 0 ? `ctid >= '(${at(i)},0)'::tid` : null, i < k - 1 ? `ctid < '(${at(i + 1)},0)'::tid` : null,
  ].filter(Boolean).join(' AND '));
}

// The server alone: the ranges copied to /dev/null by one psql session each, all at once; rows/s over the
// slowest session's own time (connection start-up left out, as for the one-stream figure).
async function serverParallelRate(where) {
  const one = (w) => new Promise((resolve, reject) => {
    const sql = `\\timing on\nCOPY (SELECT ${COLS} FROM lineitem${w ? ` WHERE ${w}` : ''}) TO '/dev/null' (FORMAT binary);\n`;
    const p = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', pg.dir, '-p', String(pg.port), '-U', 'postgres', '-d', pg.db],
                    { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.on('exit', (code) => (code === 0 ? resolve(ms(out)) : reject(new Error(`psql exited with ${code}`))));
    p.stdin.end(sql);
  });
  const times = await Promise.all(where.map(one));
  return ROWS / (Math.max(...times) / 1000);
}

// A spiced loading the table into arrow once; returns its load rate, Arrow MiB and peak RSS.
async function loadOnce(spicepod) {
  const rt = await startSpiced({ spicepod, readyTimeoutMs: 900000 });
  try {
    const line = rt.log().split('\n').find((l) => l.includes('dataset "lineitem" loaded'));
    const m = /loaded (\d+) rows \(([0-9.]+) MiB\).*\((\d+) rows\/s/.exec(line || '');
    if (!m || Number(m[1]) !== ROWS) throw new Error(`unexpected load line: ${line}\n${rt.log()}`);
    return { rate: Number(m[3]), mib: Number(m[2]), rss: await peakRssMiB(rt.proc.pid) };
  } finally {
    await rt.stop();
  }
}

// engine: an accelerator name, or null for the federated dataset; extra: more connector params.
function pod(engine, extra = {}) {
  const p = pg.params;
  return `version: v1
kind: Spicepod
name: bench_pg
runtime:
  results_cache:
    enabled: false
datasets:
  - from: postgres:public.lineitem
    name: lineitem
    params:
${paramsYaml({ ...p, ...extra })}
${engine ? `    acceleration:\n      enabled: true\n      engine: ${engine}\n` : ''}${engine === 'postgres'
    ? `      params:\n${paramsYaml({ ...p, pg_schema: 'spice_accel' }, 8)}\n` : ''}`;
}

async function httpMs(rt, sql) {
  const t0 = performance.now();
  const r = await rt.sql(sql, { headers: { 'Cache-Control': 'no-cache' } });
  const t = performance.now() - t0;
  if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
  return t;
}

try {
  console.log(`  generating ${ROWS} lineitem rows in PostgreSQL`);
  pg.psql(`CREATE TABLE lineitem AS SELECT
      (g / 4 + 1)::int8 AS l_orderkey, (g % 200000 + 1)::int8 AS l_partkey, (g % 10000 + 1)::int4 AS l_suppkey,
      (g % 4 + 1)::int4 AS l_linenumber, ((g % 50) + 1)::numeric(15,2) AS l_quantity,
      ((g % 100000) * 1.01 + 900)::numeric(15,2) AS l_extendedprice, ((g % 11) / 100.0)::numeric(15,2) AS l_discount,
      ((g % 9) / 100.0)::numeric(15,2) AS l_tax, (ARRAY['A','N','R'])[g % 3 + 1]::char(1) AS l_returnflag,
      (ARRAY['F','O'])[g % 2 + 1]::char(1) AS l_linestatus, DATE '1992-01-02' + (g % 2526) AS l_shipdate,
      DATE '1992-01-31' + (g % 2466) AS l_commitdate, DATE '1992-01-04' + (g % 2554) AS l_receiptdate,
      (ARRAY['AIR','MAIL','SHIP','TRUCK','RAIL','FOB','REG AIR'])[g % 7 + 1] AS l_shipmode,
      'comment ' || md5(g::text) AS l_comment
    FROM generate_series(0, ${ROWS - 1}) g; VACUUM ANALYZE lineitem;`, { user: 'spice' });

  const blocks = Number(pg.psql("SELECT pg_relation_size('lineitem') / current_setting('block_size')::int8").trim());
  const where = ranges(blocks, autoRanges(blocks));
  const serverRates = [], serverParRates = [], single = [], parallel = [];
  for (let r = 0; r < REPS; r++) {
    serverRates.push(ROWS / (timed(`COPY (SELECT ${COLS} FROM lineitem) TO '/dev/null' (FORMAT binary)`) / 1000));
    single.push(await loadOnce(pod('arrow', { pg_load_partitions: 1 })));
    serverParRates.push(await serverParallelRate(where));
    parallel.push(await loadOnce(pod('arrow', QUICK ? { pg_load_partitions: where.length } : {})));
  }
  const pick = (runs, key) => runs.map((x) => x[key]);

  const measures = [
    compare('load_rows_per_s', 'rows/s', pick(single, 'rate'), serverRates, { goal: 0.85, higherIsBetter: true }),
    compare('load_parallel_rows_per_s', 'rows/s', pick(parallel, 'rate'), serverRates, { goal: 1.5, higherIsBetter: true }),
    compare('load_parallel_vs_server_parallel_rows_per_s', 'rows/s', pick(parallel, 'rate'), serverParRates,
            { goal: 0.85, higherIsBetter: true }),
    compare('peak_rss_mib', 'MiB', pick(parallel, 'rss'), pick(parallel, 'mib'), { goal: 1.5 }),
    compare('peak_rss_single_mib', 'MiB', pick(single, 'rss'), pick(single, 'mib'), { goal: 1.5 }),
  ];

  // Queries: one spiced per path (the dataset keeps its name, so the query text is the same everywhere).
  const PATHS = ['arrow', 'duckdb', 'sqlite', 'postgres', null];
  const direct = { q1: [], q6: [] }, by = new Map(PATHS.map((e) => [e, { q1: [], q6: [] }]));
  for (const engine of PATHS) {
    const into = by.get(engine);
    const rt = await startSpiced({ spicepod: pod(engine), readyTimeoutMs: 900000 });
    try {
      for (const name of Object.keys(Q)) await httpMs(rt, Q[name]); // warm-up
      for (let r = 0; r < REPS; r++)
        for (const name of Object.keys(Q)) {
          into[name].push(await httpMs(rt, Q[name]));
          direct[name].push(timed(Q[name]));
        }
    } finally {
      await rt.stop();
    }
  }
  for (const name of Object.keys(Q)) {
    for (const engine of PATHS.filter(Boolean))
      measures.push(compare(`${name}_accelerated_${engine}_ms`, 'ms', by.get(engine)[name], direct[name], { goal: 1 / 50 }));
    measures.push(compare(`${name}_federated_ms`, 'ms', by.get(null)[name], direct[name], { goal: 1.1 }));
  }
  measures.push(figure('rows', 'rows', ROWS), figure('load_ranges', 'ranges', where.length));
  writePart('pg', 'PostgreSQL: load ÷ server-side binary COPY, memory ÷ Arrow size, queries ÷ direct PostgreSQL', measures, [
    `${ROWS} lineitem-shaped rows (15 columns, ${blocks} blocks); ${REPS} repetition(s); load rate from spiced's own ` +
    `"loaded" log line, in one stream (pg_load_partitions: 1) and in ${where.length} parallel ctid ranges (` +
    `${QUICK ? 'forced' : 'the default here'}); the parallel server figure: the same ranges copied to /dev/null by ` +
    'as many psql sessions at once; ' +
    'query times: spicec over HTTP (no cache) vs psql \\timing on the same server.',
  ]);
} finally {
  await pg.stop();
}
