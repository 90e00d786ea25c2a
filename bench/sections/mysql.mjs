// SPDX-License-Identifier: Apache-2.0
//
// MySQL/MariaDB load rate: spiced's initial load of a table from a throwaway MariaDB (tests/e2e/lib/mariadb.mjs;
// rows/s from spiced's "loaded" log line) ÷ the server's own client exporting the same columns
// (`mariadb --batch --quick`, output discarded), side by side in one run.
import { startMariadb } from '../../tests/e2e/lib/mariadb.mjs';
import { startSpiced, paramsYaml } from '../../tests/e2e/lib/spiced.mjs';
import { QUICK, compare, writePart } from '../lib.mjs';

const ROWS = QUICK ? 200000 : 2000000;
const REPS = QUICK ? 1 : 3;
const my = await startMariadb();
try {
  my.sql(`CREATE TABLE big (id bigint PRIMARY KEY, k int, x double, s varchar(40), amount decimal(12,2), ts datetime);
          INSERT INTO big SELECT seq, seq % 1000, seq * 1.5, CONCAT('name ', seq), seq * 0.01,
                                 TIMESTAMP'2020-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_${ROWS};`);
  const params = paramsYaml({ ...my.params, mysql_sslmode: 'disabled' });
  const client = [], spiced = [];
  for (let r = 0; r < REPS; r++) {
    const c0 = process.hrtime.bigint();
    my.sql('SELECT id, k, x, s, amount, ts FROM big', { args: ['--batch', '--quick'] });
    client.push(ROWS / (Number(process.hrtime.bigint() - c0) / 1e9));
    const rt = await startSpiced({
      spicepod: `version: v1\nkind: Spicepod\nname: bench_mysql\ndatasets:\n  - from: mysql:big\n    name: big\n    params:\n${params}\n` +
        '    acceleration:\n      enabled: true\n      engine: arrow\n',
      readyTimeoutMs: 600000,
    });
    try {
      const line = rt.log().split('\n').find((l) => l.includes('dataset "big" loaded'));
      const m = /loaded (\d+) rows.*\((\d+) rows\/s/.exec(line || '');
      if (!m || Number(m[1]) !== ROWS) throw new Error(`unexpected load line: ${line}\n${rt.log()}`);
      spiced.push(Number(m[2]));
    } finally {
      await rt.stop();
    }
  }
  writePart('mysql', 'MariaDB load: spiced rows/s ÷ mariadb --batch --quick rows/s', [
    compare('load_rows_per_s', 'rows/s', spiced, client, { higherIsBetter: true }),
  ], [`${ROWS} rows (6 columns); ${REPS} repetition(s)`]);
} finally {
  await my.stop();
}
