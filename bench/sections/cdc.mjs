// SPDX-License-Identifier: Apache-2.0
//
// CDC commit→visible latency (bench/cdc_latency.sh: PostgreSQL logical replication into the duckdb accelerator,
// single-row commits timed until a query on spiced sees them): p50 and p99 against the goals.
import { execFileSync } from 'node:child_process';
import { BUILD, QUICK, figure, writePart } from '../lib.mjs';

const SAMPLES = QUICK ? 50 : 300;
const out = execFileSync('bash', [new URL('../cdc_latency.sh', import.meta.url).pathname, BUILD, String(SAMPLES)], { encoding: 'utf8' });
const m = /p50 ([0-9.]+) ms, p99 ([0-9.]+) ms/.exec(out);
if (!m) throw new Error(`no latency in: ${out}`);
writePart('cdc', 'PostgreSQL CDC: commit → visible in spiced', [
  figure('commit_to_visible_p50', 'ms', Number(m[1]), { goal: 50 }),
  figure('commit_to_visible_p99', 'ms', Number(m[2]), { goal: 250 }),
], [out.trim()]);
