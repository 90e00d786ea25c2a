// SPDX-License-Identifier: Apache-2.0
//
// Shared helpers for the end-to-end tests: start `spiced` ($SPICED) in a fresh temporary folder with a given
// spicepod and data files, on free loopback ports, wait until it is ready, talk to it over HTTP, stop it.
//
//   import { startSpiced } from './lib/spiced.mjs';
//   const rt = await startSpiced({ spicepod: 'version: v1\n...', files: { 'data.csv': 'a,b\n1,2\n' } });
//   const r = await rt.sql('SELECT 1 AS x', { accept: 'text/csv' });   // { status, headers, text }
//   await rt.stop();
//
// The folder is removed on stop unless SPICEC_E2E_KEEP=1; its path and spiced's log are printed when a
// start fails, so a failing test says why.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import net from 'node:net';
import http from 'node:http';

export const SPICED = process.env.SPICED;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A loopback port that was free a moment ago (the kernel picks it; the tiny race is acceptable in tests).
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Plain HTTP request with node:http (no fetch magic: exact status, headers and bytes). Resolves with
// { status, headers, body: Buffer, text }; rejects on a socket error or a truncated chunked body.
export function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('aborted', () => reject(new Error('response aborted')));
      res.on('error', reject);
      res.on('end', () => {
        if (!res.complete) return reject(new Error('response truncated'));
        const buf = Buffer.concat(chunks);
        resolve({ status: res.statusCode, headers: res.headers, body: buf, text: buf.toString('utf8') });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export class Spiced {
  constructor({ dir, httpPort, flightPort, proc, logPath, keep }) {
    Object.assign(this, { dir, httpPort, flightPort, proc, logPath, keep });
    this.httpAddr = `127.0.0.1:${httpPort}`;
    this.flightAddr = `127.0.0.1:${flightPort}`;
    this.url = `http://${this.httpAddr}`;
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    this.exitCode = undefined;
    this.exited.then((r) => (this.exitCode = r));
  }

  log() {
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  get(path, headers = {}) {
    return request(this.url + path, { headers });
  }

  // POST /v1/sql with a raw SQL body; `accept` sets the Accept header.
  sql(query, { accept, headers = {} } = {}) {
    const h = { 'Content-Type': 'text/plain', ...headers };
    if (accept) h.Accept = accept;
    return request(this.url + '/v1/sql', { method: 'POST', headers: h, body: query });
  }

  // POST /v1/sql with {"sql": ..., "parameters": ...}.
  sqlJson(query, parameters, { accept } = {}) {
    const h = { 'Content-Type': 'application/json' };
    if (accept) h.Accept = accept;
    const doc = parameters === undefined ? { sql: query } : { sql: query, parameters };
    return request(this.url + '/v1/sql', { method: 'POST', headers: h, body: JSON.stringify(doc) });
  }

  // Rows of a query as parsed JSON (throws on a non-200 answer).
  async rows(query) {
    const r = await this.sql(query);
    if (r.status !== 200) throw new Error(`query failed with ${r.status}: ${r.text}`);
    return JSON.parse(r.text);
  }

  // Waits until /v1/ready says Ready; throws with the log when spiced exits or the deadline passes.
  async waitReady(timeoutMs = 60000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exitCode !== undefined)
        throw new Error(`spiced exited (${JSON.stringify(this.exitCode)}) before it was ready:\n${this.log()}`);
      try {
        const r = await this.get('/v1/ready');
        if (r.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`spiced was not ready after ${timeoutMs} ms:\n${this.log()}`);
      await sleep(50);
    }
  }

  // SIGTERM, then SIGKILL after timeoutMs; resolves with { code, signal }. Removes the folder unless kept.
  async stop({ timeoutMs = 15000 } = {}) {
    if (this.exitCode === undefined) {
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
    if (!this.keep) rmSync(this.dir, { recursive: true, force: true });
    return this.exitCode;
  }
}

// Starts spiced. Options:
//   spicepod   YAML text written to spicepod.yaml (omit to manage the folder yourself via `files`)
//   files      { 'relative/path': string | Buffer } written before the start
//   args       extra command-line arguments (after --http/--flight)
//   env        extra environment variables
//   podArg     path argument given to spiced (default: none, the folder is the working directory)
//   ready      wait for /v1/ready (default true)
//   flightFlag pass --flight 127.0.0.1:<free port> (default true; false: the spicepod's runtime.flight applies)
export async function startSpiced({ spicepod, files = {}, args = [], env = {}, podArg, ready = true, flightFlag = true,
                                    readyTimeoutMs = 60000 } = {}) {
  if (!SPICED) throw new Error('set SPICED to the spiced binary (ctest does)');
  const dir = mkdtempSync(join(tmpdir(), 'spicec-e2e-'));
  if (spicepod !== undefined) writeFileSync(join(dir, 'spicepod.yaml'), spicepod);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  const httpPort = await freePort();
  const flightPort = await freePort();
  const logPath = join(dir, 'spiced.log');
  const log = openSync(logPath, 'a');
  const argv = ['--http', `127.0.0.1:${httpPort}`, ...(flightFlag ? ['--flight', `127.0.0.1:${flightPort}`] : []), ...args];
  if (podArg) argv.push(podArg);
  // Output goes to a file: a pipe nobody drains could stall spiced.
  const proc = spawn(SPICED, argv, { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
  closeSync(log);
  const s = new Spiced({ dir, httpPort, flightPort, proc, logPath, keep: process.env.SPICEC_E2E_KEEP === '1' });
  if (ready) {
    try {
      await s.waitReady(readyTimeoutMs);
    } catch (e) {
      s.keep = true;
      await s.stop();
      throw new Error(`${e.message}\n(folder kept: ${dir})`);
    }
  }
  return s;
}

// A dataset's `params:` entries as spicepod YAML lines (values quoted), e.g. paramsYaml(pg.params) under
// `    params:`. `indent` is the number of spaces before each key.
export function paramsYaml(params, indent = 6) {
  return Object.entries(params).map(([k, v]) => `${' '.repeat(indent)}${k}: ${JSON.stringify(String(v))}`).join('\n');
}
