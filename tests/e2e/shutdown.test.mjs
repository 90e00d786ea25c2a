// SPDX-License-Identifier: Apache-2.0
//
// SIGTERM: spiced stops accepting, lets the requests in flight finish (a slow reader of a streamed answer
// included), interrupts what is still running once runtime.shutdown_timeout has passed, and exits 0; a second
// SIGTERM exits at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startSpiced, sleep } from './lib/spiced.mjs';

const N = 3000;
const csv = 'x\n' + Array.from({ length: N }, (_, i) => i).join('\n') + '\n';

const pod = (timeout) => `version: v1
kind: Spicepod
name: shutdown
runtime:
  shutdown_timeout: ${timeout}
datasets:
  - from: file:nums.csv
    name: nums
    acceleration:
      enabled: true
`;

// A cross join that runs for minutes unless interrupted.
const LONG = 'SELECT count(*) AS n FROM nums a, nums b, nums c WHERE a.x + b.x + c.x = -1';

// POST /v1/sql whose response is paused after its first chunk until resume() is called.
function pausedQuery(rt, sql, accept) {
  let res;
  let resumeFn;
  const resumed = new Promise((r) => (resumeFn = r));
  const firstChunk = new Promise((resolveFirst, rejectFirst) => {
    res = new Promise((resolve, reject) => {
      const req = http.request(rt.url + '/v1/sql', { method: 'POST', headers: { 'Content-Type': 'text/plain', Accept: accept } }, (r) => {
        const chunks = [];
        let first = true;
        r.on('data', (c) => {
          chunks.push(c);
          if (first) {
            first = false;
            r.pause();
            resolveFirst();
            resumed.then(() => r.resume());
          }
        });
        r.on('error', reject);
        r.on('end', () => resolve({ status: r.statusCode, complete: r.complete, text: Buffer.concat(chunks).toString() }));
      });
      req.on('error', (e) => {
        rejectFirst(e);
        reject(e);
      });
      req.end(sql);
    });
  });
  return { firstChunk, resume: () => resumeFn(), done: () => res };
}

test('SIGTERM lets a streamed answer in flight finish, then exits 0', { timeout: 60000 }, async () => {
  const rt = await startSpiced({ spicepod: pod('30s'), files: { 'nums.csv': csv } });
  try {
    // ~20 MB of CSV: far more than the socket buffers hold, so spiced is still writing while the client waits.
    const q = pausedQuery(rt, 'SELECT a.x AS x, b.x AS y FROM nums a, nums b WHERE b.x < 1000', 'text/csv');
    await q.firstChunk;
    rt.proc.kill('SIGTERM');
    await sleep(500);
    assert.equal(rt.exitCode, undefined, 'spiced waits for the answer still being read');
    q.resume();
    const r = await q.done();
    assert.equal(r.status, 200);
    assert.ok(r.complete, 'the streamed answer was completed');
    const lines = r.text.trimEnd().split('\n');
    assert.equal(lines[0], 'x,y');
    assert.equal(lines.length - 1, N * 1000, 'every row of the answer arrived');
    const sum = lines.slice(1).reduce((s, l) => s + Number(l.split(',')[1]), 0);
    assert.equal(sum, N * (999 * 1000) / 2, 'and every value');
    assert.deepEqual(await rt.exited, { code: 0, signal: null });
    assert.match(rt.log(), /shutting down/);
  } finally {
    await rt.stop();
  }
});

test('past shutdown_timeout a running query is interrupted and spiced exits 0', { timeout: 60000 }, async () => {
  const rt = await startSpiced({ spicepod: pod('1s'), files: { 'nums.csv': csv } });
  try {
    const long = rt.sql(LONG);
    await sleep(500); // the query is running
    rt.proc.kill('SIGTERM');
    const exit = await rt.exited; // the helper's SIGKILL fallback is not involved: we wait for the process itself
    assert.deepEqual(exit, { code: 0, signal: null }, 'clean exit after interrupting the query');
    const r = await long;
    assert.equal(r.status, 503, `the interrupted query is answered 503: ${r.status} ${r.text}`);
    assert.match(r.text, /query interrupted: spiced is shutting down/);
    assert.match(rt.log(), /shutdown_timeout \(\d+ ms\) reached with 1 HTTP requests in flight; interrupted 1 queries/);
  } finally {
    await rt.stop();
  }
});

test('a second SIGTERM exits at once', { timeout: 60000 }, async () => {
  const rt = await startSpiced({ spicepod: pod('10m'), files: { 'nums.csv': csv } });
  try {
    const long = rt.sql(LONG).catch(() => null);
    await sleep(500);
    rt.proc.kill('SIGTERM');
    await sleep(300);
    assert.equal(rt.exitCode, undefined, 'the first SIGTERM waits for the running query');
    rt.proc.kill('SIGTERM');
    assert.deepEqual(await rt.exited, { code: 128 + 15, signal: null });
    await long;
  } finally {
    await rt.stop();
  }
});
