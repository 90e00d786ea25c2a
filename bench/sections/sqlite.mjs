// SPDX-License-Identifier: Apache-2.0
//
// SQLite load rate (bench/sqlite_load.sh): spiced's sqlite connector loading a table ÷ the sqlite3 CLI exporting
// the same table as CSV, side by side in one run.
import { execFileSync } from 'node:child_process';
import { BUILD, QUICK, compare, writePart } from '../lib.mjs';

const ROWS = QUICK ? 200000 : 1000000;
const out = execFileSync('bash', [new URL('../sqlite_load.sh', import.meta.url).pathname, BUILD, String(ROWS), QUICK ? '1' : '3'],
  { encoding: 'utf8' });
const m = /spiced ([0-9.]+) rows\/s, sqlite3 -csv ([0-9.]+) rows\/s/.exec(out);
if (!m) throw new Error(`no rates in: ${out}`);
writePart('sqlite', 'SQLite load: spiced rows/s ÷ sqlite3 -csv export rows/s', [
  compare('load_rows_per_s', 'rows/s', [Number(m[1])], [Number(m[2])], { higherIsBetter: true }),
], [`${ROWS} rows, best of the repetitions (bench/sqlite_load.sh)`]);
