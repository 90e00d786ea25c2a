// SPDX-License-Identifier: Apache-2.0
//
// PostgreSQL, side by side in one run against a throwaway server (tests/e2e/lib/postgres.mjs):
//   load      spiced's initial load of a lineitem-shaped table (rows/s from its "loaded" log line) ÷ the server's own
//             `COPY (...) TO '/dev/null' (FORMAT binary)` rows/s — the most the server can hand out;
//   rss       spiced's peak RSS after that load ÷ the Arrow size of the data it loaded;
//   queries   two TPC-H-shaped aggregates (Q1, Q6) on copies accelerated by arrow, duckdb, sqlite and postgres (in
//             schema spice_accel of the same server) and on the federated dataset, over HTTP ÷ the same query
//             run directly on PostgreSQL (psql's \timing, same machine).
import { startPostgres } from '../../tests/e2e/lib/postgres.mjs';
import { startSpiced, paramsYaml } from '../../tests/e2e/lib/spiced.mjs';
import { QUICK, compare, figure, peakRssMiB, writePart } from '../lib.mjs';

const ROWS = QUICK ? 200000 : 6000000;
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

// engine: an accelerator name, or null for the federated dataset.
function pod(engine) {
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
${paramsYaml(p)}
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

  const serverRates = [], loadRates = [], rss = [], arrowMiB = [];
  for (let r = 0; r < REPS; r++) {
    serverRates.push(ROWS / (timed(`COPY (SELECT ${COLS} FROM lineitem) TO '/dev/null' (FORMAT binary)`) / 1000));
    const rt = await startSpiced({ spicepod: pod('arrow'), readyTimeoutMs: 900000 });
    try {
      const line = rt.log().split('\n').find((l) => l.includes('dataset "lineitem" loaded'));
      const m = /loaded (\d+) rows \(([0-9.]+) MiB\).*\((\d+) rows\/s/.exec(line || '');
      if (!m || Number(m[1]) !== ROWS) throw new Error(`unexpected load line: ${line}\n${rt.log()}`);
      loadRates.push(Number(m[3]));
      arrowMiB.push(Number(m[2]));
      rss.push(await peakRssMiB(rt.proc.pid));
    } finally {
      await rt.stop();
    }
  }

  const measures = [
    compare('load_rows_per_s', 'rows/s', loadRates, serverRates, { goal: 0.85, higherIsBetter: true }),
    compare('peak_rss_mib', 'MiB', rss, arrowMiB, { goal: 1.5 }),
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
  measures.push(figure('rows', 'rows', ROWS));
  writePart('pg', 'PostgreSQL: load ÷ server-side binary COPY, memory ÷ Arrow size, queries ÷ direct PostgreSQL', measures, [
    `${ROWS} lineitem-shaped rows (15 columns); ${REPS} repetition(s); load rate from spiced's own "loaded" log line; ` +
    'query times: spicec over HTTP (no cache) vs psql \\timing on the same server.',
  ]);
} finally {
  await pg.stop();
}
