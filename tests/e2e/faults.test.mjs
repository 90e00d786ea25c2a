// SPDX-License-Identifier: Apache-2.0
//
// Fault scenarios, each a pass/fail verdict (the others live next to what they break: the source stopped
// during the initial load and during a refresh in postgres.test.mjs, kill -9 during a file refresh in
// lifecycle.test.mjs, a source restarting under load in soak.mjs):
//   - kill -9 of spiced in the middle of a stream of acknowledged writes: after a restart every acknowledged
//     write is in the source and in the duckdb file accelerator, which serves them even with the source down;
//   - the disk of a file accelerator fills up (a 2 MiB tmpfs): the refresh fails with a clear error and the
//     previous copy keeps serving; once the operator frees space the next refresh succeeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';

import { sleep, paramsYaml } from './lib/spiced.mjs';
import { makeFolder, removeFolder, startSpicedIn, kill9, waitUntil, datasetStatuses } from './lib/lifecycle.mjs';
import { startPostgres } from './lib/postgres.mjs';

const postRefresh = (rt, name) => fetch(`${rt.url}/v1/datasets/${name}/acceleration/refresh`, { method: 'POST' });

test('kill -9 during acknowledged writes: every acknowledged write survives, in the source and in the file copy', { timeout: 120000 }, async () => {
  const pg = await startPostgres();
  const p = pg.params;
  pg.psql('CREATE TABLE events (id int PRIMARY KEY, note text NOT NULL); GRANT ALL ON events TO spice;');
  const dir = makeFolder({
    'spicepod.yaml': `version: v1
kind: Spicepod
name: faults
datasets:
  - from: postgres:public.events
    name: events
    mode: read_write
    replication:
      enabled: true
    params:
${paramsYaml(p)}
    acceleration:
      enabled: true
      engine: duckdb
      mode: file
`,
  });
  let rt;
  try {
    rt = await startSpicedIn(dir);
    const acked = [];
    let id = 0;
    let stop = false;
    const writers = [0, 1, 2].map(async (w) => {
      while (!stop) {
        const mine = ++id;
        const r = await rt.sql(`INSERT INTO events (id, note) VALUES (${mine}, 'writer ${w} row ${mine}')`).catch(() => null);
        if (r && r.status === 200) acked.push(mine);
      }
    });
    await waitUntil('some acknowledged writes', async () => acked.length, (n) => n >= 150, { timeoutMs: 60000 });
    await kill9(rt); // in the middle of the stream: writes are in flight on three connections
    stop = true;
    await Promise.all(writers);
    rt = undefined;

    const inSource = new Set(pg.rows('SELECT id FROM events').map(([x]) => Number(x)));
    const lostInSource = acked.filter((x) => !inSource.has(x));
    assert.deepEqual(lostInSource, [], 'every acknowledged write is in PostgreSQL');

    // With the source down the restarted spiced serves its file copy only: it must hold every acknowledged row.
    pg.stopServer('fast');
    rt = await startSpicedIn(dir, { ready: false });
    await waitUntil('the file copy to serve', async () => (await rt.sql('SELECT count(*) AS n FROM events')).status, (s) => s === 200,
      { timeoutMs: 30000 });
    const have = new Set((await rt.rows('SELECT id FROM events')).map((r) => Number(r.id)));
    assert.deepEqual(acked.filter((x) => !have.has(x)), [], 'every acknowledged write is in the restarted file copy');
    assert.ok(have.size >= acked.length);
    for (const x of have) assert.ok(inSource.has(x), `row ${x} served by spiced is in the source`);

    // The source comes back: a refresh makes spiced equal to it.
    pg.start();
    assert.equal((await postRefresh(rt, 'events')).status, 201);
    const want = pg.rows('SELECT count(*) FROM events')[0][0];
    await waitUntil('spiced to equal the source', async () => (await rt.rows('SELECT count(*) AS n FROM events'))[0].n,
      (n) => String(n) === want, { timeoutMs: 30000 });
  } finally {
    if (rt) await rt.stop();
    removeFolder(dir);
    await pg.stop();
  }
});

// A 2 MiB tmpfs needs the right to mount (root in CI); elsewhere the scenario is reported as skipped, with why.
function mountTmpfs(path, size) {
  mkdirSync(path, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', path], { encoding: 'utf8' });
  return r.status === 0 ? null : (r.stderr || r.error?.message || `mount exited ${r.status}`).trim();
}

// Rows whose payload does not compress (hex of a hash), so the database file grows with the row count.
const csv = (n) => 'id,payload\n' +
  Array.from({ length: n }, (_, i) => `${i},${createHash('sha256').update(String(i)).digest('hex')}`).join('\n') + '\n';

test('a file accelerator whose disk fills up: clear error, the previous copy serves, and it recovers', { timeout: 120000 }, async (t) => {
  const dir = makeFolder({
    'spicepod.yaml': `version: v1
kind: Spicepod
name: diskfull
datasets:
  - from: file:data.csv
    name: fill
    acceleration:
      enabled: true
      engine: duckdb
      mode: file
`,
  });
  const disk = join(dir, 'disk');
  const why = mountTmpfs(disk, '3m');
  if (why) {
    removeFolder(dir);
    t.skip(`cannot mount a tmpfs here: ${why}`);
    return;
  }
  let rt;
  try {
    writeFileSync(join(dir, 'data.csv'), csv(1000));
    writeFileSync(join(disk, 'ballast'), Buffer.alloc(1 << 20, 1)); // what the operator will delete to free space
    rt = await startSpicedIn(dir, { args: ['--data-dir', disk] });
    assert.deepEqual(await rt.rows('SELECT count(*) AS n FROM fill'), [{ n: 1000 }]);

    writeFileSync(join(dir, 'data.csv'), csv(200000)); // ~14 MB of incompressible text: more than the disk holds
    assert.equal((await postRefresh(rt, 'fill')).status, 201);
    await waitUntil('the refresh to fail', () => datasetStatuses(rt), (s) => s.fill === 'Error', { timeoutMs: 60000 });
    assert.match(rt.log(), /dataset "fill".*(No space left on device|disk is full|Could not write|out of space)/i);
    assert.deepEqual(await rt.rows('SELECT count(*) AS n FROM fill'), [{ n: 1000 }], 'the previous copy serves');
    assert.equal((await rt.get('/health')).status, 200);

    // The operator frees space (DuckDB keeps its file at the size it grew to; it needs room for its WAL).
    rmSync(join(disk, 'ballast'));
    writeFileSync(join(dir, 'data.csv'), csv(2000));
    assert.equal((await postRefresh(rt, 'fill')).status, 201);
    await waitUntil('the next refresh to succeed', async () => (await rt.rows('SELECT count(*) AS n FROM fill'))[0].n,
      (n) => n === 2000, { timeoutMs: 60000 });
    await waitUntil('the dataset to be Ready', () => datasetStatuses(rt), (s) => s.fill === 'Ready');
  } finally {
    if (rt) await rt.stop();
    await sleep(100);
    execFileSync('umount', ['-l', disk]);
    removeFolder(dir);
  }
});
