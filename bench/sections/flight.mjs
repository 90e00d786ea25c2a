// SPDX-License-Identifier: Apache-2.0
//
// Flight DoGet throughput (tools/bench_flight, a small C client on the library's Flight client): every row of the
// arrow-accelerated trips data (6 M rows, 17 columns; quick 300 k) received and decoded, GB/s of Arrow payload ÷
// loopback TCP GB/s measured by the same tool in the same run; the same result as HTTP JSON for comparison.
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSpiced } from '../../tests/e2e/lib/spiced.mjs';
import { BUILD, QUICK, compare, figure, tripsPod, writePart } from '../lib.mjs';

const tmp = mkdtempSync(join(tmpdir(), 'spicec-bench-flight-'));
const rt = await startSpiced({
  spicepod: tripsPod('bench_flight', { resultsCache: false }),
  readyTimeoutMs: 600000,
});
try {
  const json = join(tmp, 'flight.json');
  execFileSync(`${BUILD}/bin/bench_flight`, ['--flight', rt.flightAddr, '--http', rt.httpAddr, '--sql', 'SELECT * FROM trips',
    '--reps', QUICK ? '1' : '3', '--tcp-bytes', String(QUICK ? 1 << 28 : 1 << 30), '--json', json], { stdio: ['ignore', 'inherit', 'inherit'] });
  const r = JSON.parse(readFileSync(json, 'utf8'));
  const httpGbps = r.http_json ? r.http_json.bytes / r.http_json.seconds / 1e9 : null;
  writePart('flight', 'Flight DoGet and HTTP JSON throughput ÷ loopback TCP, measured in the same run', [
    compare('doget_gbps', 'GB/s', [r.flight.gbps], [r.tcp.gbps], { goal: 0.5, higherIsBetter: true }),
    figure('doget_gbps_absolute', 'GB/s', r.flight.gbps, { goal: 2, lowerIsBetter: false }),
    ...(httpGbps ? [compare('http_json_gbps', 'GB/s', [httpGbps], [r.tcp.gbps], { higherIsBetter: true }),
                    compare('http_json_seconds_vs_flight', 's', [r.http_json.seconds], [r.flight.seconds])] : []),
    figure('tcp_loopback_gbps', 'GB/s', r.tcp.gbps),
  ], [`SELECT * FROM trips: ${r.flight.rows} rows; Flight GB/s counts the Arrow payload decoded by the client; ` +
      'HTTP GB/s counts the JSON text; best of the repetitions.']);
} finally {
  await rt.stop();
  rmSync(tmp, { recursive: true, force: true });
}
