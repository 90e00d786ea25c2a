// SPDX-License-Identifier: Apache-2.0
//
// Requests per second over HTTP with wrk (64 connections, 2 threads): a cached point query and an uncached one
// (Cache-Control: no-cache), each against the same spiced's /health, which does no work at all and so is the
// "empty handler" measured the same way, on the same server, in the same run. Interleaved repetitions.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSpiced } from '../../tests/e2e/lib/spiced.mjs';
import { QUICK, compare, tripsPod, writePart } from '../lib.mjs';

const SECONDS = QUICK ? 2 : 8;
const REPS = QUICK ? 1 : 3;
const POINT = 'SELECT trip_id, pickup_datetime, pickup_zone, dropoff_zone, total_amount FROM trips WHERE trip_id = 123457';

function wrk(url, script) {
  const args = ['-t2', '-c64', `-d${SECONDS}s`, '--latency'];
  if (script) args.push('-s', script);
  const out = execFileSync('wrk', [...args, url], { encoding: 'utf8' });
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (!rps) throw new Error(`wrk printed no rate:\n${out}`);
  if (errors) throw new Error(`wrk saw ${errors[1]} failed responses:\n${out}`);
  return Number(rps[1]);
}

const tmp = mkdtempSync(join(tmpdir(), 'spicec-bench-wrk-'));
const lua = (cache) => {
  const f = join(tmp, `${cache ? 'cached' : 'uncached'}.lua`);
  writeFileSync(f, `wrk.method = "POST"
wrk.body = ${JSON.stringify(POINT)}
wrk.headers["Content-Type"] = "text/plain"
${cache ? '' : 'wrk.headers["Cache-Control"] = "no-cache"'}
`);
  return f;
};
const cachedLua = lua(true), uncachedLua = lua(false);

const rt = await startSpiced({
  spicepod: tripsPod('bench_http'),
  readyTimeoutMs: 600000,
});
try {
  const check = await rt.sql(POINT);
  if (check.status !== 200 || JSON.parse(check.text).length !== 1) throw new Error(`point query: ${check.status} ${check.text}`);
  const samples = { empty: [], cached: [], uncached: [] };
  for (let r = 0; r < REPS; r++) {
    samples.empty.push(wrk(`${rt.url}/health`));
    samples.cached.push(wrk(`${rt.url}/v1/sql`, cachedLua));
    samples.uncached.push(wrk(`${rt.url}/v1/sql`, uncachedLua));
  }
  writePart('http_rps', 'HTTP requests/s with wrk (64 connections) ÷ an empty handler (/health) on the same server', [
    compare('cached_point_query_rps', 'req/s', samples.cached, samples.empty, { goal: 0.5, higherIsBetter: true }),
    compare('uncached_point_query_rps', 'req/s', samples.uncached, samples.empty, { higherIsBetter: true }),
    compare('empty_handler_rps', 'req/s', samples.empty, null, { higherIsBetter: true }),
  ], [`wrk -t2 -c64 -d${SECONDS}s, ${REPS} interleaved repetition(s); the point query reads one row of the trips data set (arrow).`]);
} finally {
  await rt.stop();
  rmSync(tmp, { recursive: true, force: true });
}
