// SPDX-License-Identifier: Apache-2.0
//
// Hot reload: SIGHUP, and (with --pods-watcher-enabled) an edit of spicepod.yaml, apply the new spicepod
// without a restart. Unchanged datasets keep serving through it; a broken spicepod is rejected and the
// running one stays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSpiced, sleep } from './lib/spiced.mjs';

const csv = (n) => 'id,v\n' + Array.from({ length: n }, (_, i) => `${i + 1},${(i + 1) * 3}`).join('\n') + '\n';
const pod = (datasets) => `version: v1\nkind: Spicepod\nname: reload\ndatasets:\n${datasets}`;
const ds = (name, file, engine) =>
  `  - from: file:${file}\n    name: ${name}\n` + (engine ? `    acceleration:\n      engine: ${engine}\n` : '');

async function until(what, fn, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last === true) return;
    await sleep(100);
  }
  throw new Error(`${what}: still ${JSON.stringify(last)} after ${timeoutMs} ms`);
}

async function count(rt, table) {
  const r = await rt.sql(`SELECT count(*) AS n FROM ${table}`, { accept: 'application/json' });
  return r.status === 200 ? JSON.parse(r.text)[0].n : `HTTP ${r.status}: ${r.text}`;
}

test('SIGHUP adds and removes datasets; unchanged ones serve throughout; a broken spicepod is rejected', async () => {
  const rt = await startSpiced({
    spicepod: pod(ds('keep', 'a.csv', 'arrow') + ds('old', 'a.csv', 'duckdb')),
    files: { 'a.csv': csv(100), 'b.csv': csv(250) },
  });
  try {
    assert.equal(await count(rt, 'keep'), 100);
    // Queries on the unchanged dataset run all along the reloads: none may fail.
    let stop = false, failures = [], answered = 0;
    const hammer = (async () => {
      while (!stop) {
        const n = await count(rt, 'keep');
        if (n === 100) answered++;
        else failures.push(n);
      }
    })();
    writeFileSync(join(rt.dir, 'spicepod.yaml'), pod(ds('keep', 'a.csv', 'arrow') + ds('fresh', 'b.csv', 'arrow')));
    rt.proc.kill('SIGHUP');
    await until('fresh loaded', async () => (await count(rt, 'fresh')) === 250);
    const old = await rt.sql('SELECT count(*) FROM old');
    assert.equal(old.status, 400, 'the removed dataset is gone');
    const list = JSON.parse((await rt.get('/v1/datasets')).text).map((d) => d.name).sort();
    assert.deepEqual(list, ['fresh', 'keep']);

    writeFileSync(join(rt.dir, 'spicepod.yaml'), 'version: v1\nkind: Spicepod\nname: reload\ndatasets:\n  - nme: x\n');
    rt.proc.kill('SIGHUP');
    await until('rejection logged', async () => /spicepod not reloaded/.test(rt.log()));
    assert.equal(await count(rt, 'fresh'), 250, 'the running spicepod stays');
    stop = true;
    await hammer;
    assert.deepEqual(failures, []);
    assert.ok(answered > 0);
  } finally {
    await rt.stop();
  }
});

test('--pods-watcher-enabled applies an edit of spicepod.yaml by itself', async () => {
  const rt = await startSpiced({
    spicepod: pod(ds('one', 'a.csv', 'arrow')),
    files: { 'a.csv': csv(10), 'b.csv': csv(20) },
    args: ['--pods-watcher-enabled'],
  });
  try {
    writeFileSync(join(rt.dir, 'spicepod.yaml'), pod(ds('one', 'a.csv', 'arrow') + ds('two', 'b.csv', 'duckdb')));
    await until('two loaded', async () => (await count(rt, 'two')) === 20);
    assert.equal(await count(rt, 'one'), 10);
  } finally {
    assert.deepEqual(await rt.stop(), { code: 0, signal: null });
  }
});
