// SPDX-License-Identifier: Apache-2.0
//
// Helpers for tests that outlive one spiced process: restart spiced in the same folder (file accelerators,
// crash safety), kill it, wait for a condition with a clear failure message, write (large) source files
// atomically, and run a spiced that is expected to exit at once (spicepod errors).
//
//   const dir = makeFolder({ 'spicepod.yaml': POD, 'src.csv': CSV });
//   const rt = await startSpicedIn(dir);          // the caller owns `dir`: removeFolder(dir) at the end
//   await kill9(rt);
//   const again = await startSpicedIn(dir);
import { spawn } from 'node:child_process';
import {
  closeSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { SPICED, Spiced, freePort, sleep } from './spiced.mjs';

let runs = 0;

// A fresh temporary folder holding `files` ({ 'relative/path': string | Buffer }).
export function makeFolder(files = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'spicec-e2e-'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

// Removes a folder made by makeFolder, unless SPICEC_E2E_KEEP=1.
export function removeFolder(dir) {
  if (process.env.SPICEC_E2E_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
}

// Starts spiced in an existing folder (its working directory, so .spice/data survives restarts). Each run logs
// to its own file (spiced-<n>.log), so rt.log() is this run's log only. The folder is never removed by
// rt.stop(): the caller removes it. Waits for /v1/ready unless ready is false.
export async function startSpicedIn(dir, { args = [], env = {}, ready = true, readyTimeoutMs = 60000 } = {}) {
  if (!SPICED) throw new Error('set SPICED to the spiced binary (ctest does)');
  const httpPort = await freePort();
  const flightPort = await freePort();
  const logPath = join(dir, `spiced-${++runs}.log`);
  const log = openSync(logPath, 'a');
  const argv = ['--http', `127.0.0.1:${httpPort}`, '--flight', `127.0.0.1:${flightPort}`, ...args];
  const proc = spawn(SPICED, argv, { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
  closeSync(log);
  const s = new Spiced({ dir, httpPort, flightPort, proc, logPath, keep: true });
  if (ready) {
    try {
      await s.waitReady(readyTimeoutMs);
    } catch (e) {
      await s.stop();
      throw new Error(`${e.message}\n(folder: ${dir})`);
    }
  }
  return s;
}

// SIGKILL (no chance to clean up); resolves with { code, signal } once the process is gone.
export async function kill9(rt) {
  if (rt.exitCode === undefined) rt.proc.kill('SIGKILL');
  return rt.exited;
}

// Calls probe() until accept(value) is true; returns that value. A probe that throws counts as not yet.
// On timeout, fails with `what` and the last value (or error) seen.
export async function waitUntil(what, probe, accept, { timeoutMs = 20000, intervalMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = '(never probed)';
  for (;;) {
    try {
      const v = await probe();
      if (accept(v)) return v;
      last = JSON.stringify(v);
    } catch (e) {
      last = `error: ${e.message}`;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${last}`);
    await sleep(intervalMs);
  }
}

// { name: status } from GET /v1/datasets?status=true.
export async function datasetStatuses(rt) {
  const r = await rt.get('/v1/datasets?status=true');
  if (r.status !== 200) throw new Error(`/v1/datasets?status=true answered ${r.status}: ${r.text}`);
  return Object.fromEntries(JSON.parse(r.text).map((d) => [d.name, d.status]));
}

// Replaces `path` by `content` in one rename, so a reader sees the old file or the new one, never a half.
export function writeFileAtomic(path, content) {
  const tmp = `${path}.tmp-${process.pid}-${++runs}`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

// Makes `path` the same file as `source` (a hard link, renamed into place: instant and atomic).
export function linkFileAtomic(source, path) {
  const tmp = `${path}.tmp-${process.pid}-${++runs}`;
  rmSync(tmp, { force: true });
  linkSync(source, tmp);
  renameSync(tmp, path);
  rmSync(tmp, { force: true }); // rename is a no-op when both names already are the same file
}

// Writes a CSV file of `rows` rows, streaming: header is the first line, row(i) (i from 1) gives each line
// without its newline. Suitable for files of hundreds of MB.
export function writeCsv(path, header, rows, row) {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header + '\n');
    let chunk = [];
    for (let i = 1; i <= rows; i++) {
      chunk.push(row(i));
      if (chunk.length === 8192) {
        writeSync(fd, chunk.join('\n') + '\n');
        chunk = [];
      }
    }
    if (chunk.length) writeSync(fd, chunk.join('\n') + '\n');
  } finally {
    closeSync(fd);
  }
}

// Runs spiced in a fresh folder with `files` and waits for it to exit by itself (a pod it must refuse).
// stdout and stderr are kept apart. Kills it and rejects if it is still running after timeoutMs.
export async function runSpicedToExit({ files = {}, args = [], timeoutMs = 20000 } = {}) {
  if (!SPICED) throw new Error('set SPICED to the spiced binary (ctest does)');
  const dir = makeFolder(files);
  const httpPort = await freePort();
  const proc = spawn(SPICED, ['--http', `127.0.0.1:${httpPort}`, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (c) => (stdout += c));
  proc.stderr.on('data', (c) => (stderr += c));
  const exited = new Promise((resolve) => proc.on('close', (code, signal) => resolve({ code, signal })));
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve(null), timeoutMs);
  });
  const r = await Promise.race([exited, timeout]);
  clearTimeout(timer);
  if (r === null) {
    proc.kill('SIGKILL');
    await exited;
    removeFolder(dir);
    throw new Error(`spiced did not exit within ${timeoutMs} ms; stderr:\n${stderr}`);
  }
  removeFolder(dir);
  return { ...r, stdout, stderr };
}
