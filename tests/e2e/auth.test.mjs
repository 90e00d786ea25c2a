// SPDX-License-Identifier: Apache-2.0
//
// API keys (runtime.auth.api-key, with a key from the spicepod's secret stores), CORS (runtime.cors) and
// HTTPS (runtime.tls / --tls-* flags with a self-signed certificate made by openssl) on the HTTP API, and the
// `spice` CLI sending its key (--api-key, SPICE_API_KEY).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startSpiced, request } from './lib/spiced.mjs';

const SPICE = process.env.SPICE_CLI;
const SECRET = 's3cr3t-from-dotenv-7f2c';
const PLAIN_KEY = 'plain-key-90ab';

const SPICEPOD = `version: v1
kind: Spicepod
name: auth_e2e
runtime:
  auth:
    api-key:
      enabled: true
      keys: ["\${secrets:api_key}", "${PLAIN_KEY}"]
  cors:
    enabled: true
    allowed_origins: ["https://app.example"]
datasets:
  - from: file:nums.csv
    name: nums
    acceleration:
      enabled: true
`;

function run(cmd, args, { env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let rt;

before(async () => {
  rt = await startSpiced({
    spicepod: SPICEPOD,
    files: { 'nums.csv': 'n\n1\n2\n3\n', '.env': `API_KEY=${SECRET}\n` },
  });
});

after(async () => {
  if (rt) await rt.stop();
});

// Every endpoint but /health and /v1/ready, with a request that would succeed given a key.
const PROTECTED = [
  ['POST', '/v1/sql', 'SELECT 1'],
  ['GET', '/v1/datasets'],
  ['GET', '/v1/status'],
  ['GET', '/v1/spicepods'],
  ['POST', '/v1/datasets/nums/acceleration/refresh', ''],
  ['PATCH', '/v1/datasets/nums/acceleration', '{}'],
];

const send = (method, path, body, headers = {}) =>
  request(rt.url + path, { method, headers: { 'Content-Type': 'text/plain', ...headers }, body });

describe('API keys', () => {
  test('/health and /v1/ready stay open', async () => {
    const h = await rt.get('/health');
    assert.equal(h.status, 200);
    assert.equal(h.text, 'ok\n');
    const r = await rt.get('/v1/ready');
    assert.equal(r.status, 200);
    assert.equal(r.text, 'Ready');
  });

  test('every other endpoint answers 401 Unauthorized without a valid key', async () => {
    const bad = [{}, { 'X-API-Key': 'nope' }, { 'X-API-Key': SECRET.slice(0, -1) }, { 'X-API-Key': SECRET + 'x' },
      { 'X-API-Key': '' }, { Authorization: `Bearer ${PLAIN_KEY}0` }, { Authorization: `Basic ${PLAIN_KEY}` },
      { Authorization: PLAIN_KEY }];
    for (const [method, path, body] of [...PROTECTED, ['GET', '/no/such/path']]) {
      for (const headers of bad) {
        const r = await send(method, path, body, headers);
        assert.equal(r.status, 401, `${method} ${path} with ${JSON.stringify(headers)}`);
        assert.equal(r.text, 'Unauthorized');
        assert.match(r.headers['content-type'], /^text\/plain/);
      }
    }
  });

  test('a key from the secret store or the plain list opens every endpoint, as X-API-Key or Bearer', async () => {
    const good = [{ 'X-API-Key': SECRET }, { 'x-api-key': PLAIN_KEY }, { Authorization: `Bearer ${SECRET}` },
      { authorization: `bearer ${PLAIN_KEY}` }];
    for (const headers of good) {
      for (const [method, path, body] of PROTECTED) {
        const r = await send(method, path, body, headers);
        assert.ok(r.status >= 200 && r.status < 300, `${method} ${path} with a good key: ${r.status} ${r.text}`);
      }
    }
    const q = await send('POST', '/v1/sql', 'SELECT sum(n) AS s FROM nums', { 'X-API-Key': SECRET });
    assert.deepEqual(JSON.parse(q.text), [{ s: 3 + 2 + 1 }]);
  });

  test('keys never reach the log', async () => {
    await send('POST', '/v1/sql', 'SELECT 1', { 'X-API-Key': 'wrong-key-in-log?' });
    const log = rt.log();
    assert.ok(!log.includes(SECRET), 'the secret key is not logged');
    assert.ok(!log.includes(PLAIN_KEY), 'the plain key is not logged');
    assert.ok(!log.includes('wrong-key-in-log?'), 'a presented key is not logged');
  });

  test('the spice CLI sends --api-key or SPICE_API_KEY as X-API-Key', async () => {
    const args = ['sql', '--http-endpoint', rt.url, '--format', 'csv', '-e', 'SELECT count(*) AS c FROM nums'];
    const none = await run(SPICE, args, { env: { SPICE_API_KEY: '' } });
    assert.notEqual(none.code, 0);
    assert.match(none.stderr + none.stdout, /Unauthorized/);
    const flag = await run(SPICE, [...args.slice(0, 1), '--api-key', SECRET, ...args.slice(1)]);
    assert.equal(flag.code, 0, flag.stderr);
    assert.equal(flag.stdout.trim(), 'c\n3');
    const env = await run(SPICE, args, { env: { SPICE_API_KEY: PLAIN_KEY } });
    assert.equal(env.code, 0, env.stderr);
    assert.equal(env.stdout.trim(), 'c\n3');
    const wrong = await run(SPICE, ['datasets', '--http-endpoint', rt.url, '--api-key', 'nope']);
    assert.notEqual(wrong.code, 0);
  });
});

describe('CORS', () => {
  test('a preflight from an allowed origin is answered without a key', async () => {
    const r = await send('OPTIONS', '/v1/sql', undefined, {
      Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST',
      'Access-Control-Request-Headers': 'content-type,x-api-key',
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], 'https://app.example');
    assert.equal(r.headers['access-control-allow-methods'], 'GET, POST, PATCH, OPTIONS');
    assert.equal(r.headers['access-control-allow-headers'], 'Accept, Content-Type, Authorization, X-API-Key');
    assert.match(r.headers.vary ?? '', /Origin/);
  });

  test('responses to an allowed origin carry Access-Control-Allow-Origin; others do not', async () => {
    const ok = await send('POST', '/v1/sql', 'SELECT 1 AS x', { Origin: 'https://app.example', 'X-API-Key': SECRET });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example');
    const denied401 = await send('GET', '/v1/datasets', undefined, { Origin: 'https://app.example' });
    assert.equal(denied401.status, 401);
    assert.equal(denied401.headers['access-control-allow-origin'], 'https://app.example');
    const other = await send('OPTIONS', '/v1/sql', undefined, { Origin: 'https://evil.example' });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    assert.equal(other.headers['access-control-allow-methods'], undefined);
    const none = await send('POST', '/v1/sql', 'SELECT 1', { 'X-API-Key': SECRET });
    assert.equal(none.headers['access-control-allow-origin'], undefined);
  });

  test('allowed_origins defaults to any origin; CORS is off by default', async () => {
    const any = await startSpiced({ spicepod: 'version: v1\nkind: Spicepod\nname: c\nruntime:\n  cors:\n    enabled: true\n' });
    try {
      const r = await request(any.url + '/v1/status', { headers: { Origin: 'https://x.example' } });
      assert.equal(r.headers['access-control-allow-origin'], '*');
    } finally {
      await any.stop();
    }
    const off = await startSpiced({ spicepod: 'version: v1\nkind: Spicepod\nname: c\n' });
    try {
      const r = await request(off.url + '/v1/status', { headers: { Origin: 'https://x.example' } });
      assert.equal(r.headers['access-control-allow-origin'], undefined);
      const p = await request(off.url + '/v1/sql', { method: 'OPTIONS', headers: { Origin: 'https://x.example' } });
      assert.equal(p.status, 405);
    } finally {
      await off.stop();
    }
  });
});

// ---- TLS ---------------------------------------------------------------------------------------------------

function selfSigned(dir) {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  return { cert, key, certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
}

function httpsGet(url, ca, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { ca, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

// Waits for the HTTPS endpoint (startSpiced's readiness probe speaks plain HTTP).
async function waitHttps(url, ca) {
  for (let i = 0; i < 400; i++) {
    try {
      const r = await httpsGet(url + '/v1/ready', ca);
      if (r.status === 200) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('HTTPS endpoint never became ready');
}

describe('TLS', () => {
  let dir;
  let pki;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'spicec-tls-'));
    pki = selfSigned(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('--tls-certificate-file / --tls-key-file serve HTTPS', async () => {
    const s = await startSpiced({ spicepod: 'version: v1\nkind: Spicepod\nname: t\n', ready: false,
      args: ['--tls-certificate-file', pki.cert, '--tls-key-file', pki.key] });
    try {
      const url = `https://${s.httpAddr}`;
      await waitHttps(url, pki.certPem);
      const r = await httpsGet(url + '/health', pki.certPem);
      assert.equal(r.status, 200);
      assert.equal(r.text, 'ok\n');
      await assert.rejects(request(s.url + '/health'), 'plain HTTP is not answered on a TLS port');
      await assert.rejects(httpsGet(url + '/health', undefined), /self[- ]signed|unable to verify/i);
    } finally {
      await s.stop();
    }
  });

  test('runtime.tls with inline PEM and with files, plus an API key', async () => {
    const indent = (pem) => pem.trim().split('\n').map((l) => '      ' + l).join('\n');
    const inline = `version: v1\nkind: Spicepod\nname: t\nruntime:\n  auth:\n    api-key:\n      enabled: true\n` +
      `      keys: [k1]\n  tls:\n    enabled: true\n    certificate: |\n${indent(pki.certPem)}\n    key: |\n${indent(pki.keyPem)}\n`;
    const files = `version: v1\nkind: Spicepod\nname: t\nruntime:\n  tls:\n    enabled: true\n` +
      `    certificate_file: ${pki.cert}\n    key_file: ${pki.key}\n`;
    for (const pod of [inline, files]) {
      const s = await startSpiced({ spicepod: pod, ready: false });
      try {
        const url = `https://${s.httpAddr}`;
        await waitHttps(url, pki.certPem);
        const st = await httpsGet(url + '/v1/status', pki.certPem, pod === inline ? { 'X-API-Key': 'k1' } : {});
        assert.equal(st.status, 200, st.text);
        if (pod === inline) assert.equal((await httpsGet(url + '/v1/status', pki.certPem)).status, 401);
      } finally {
        await s.stop();
      }
    }
  });

  test('a missing certificate file stops spiced with a message naming it', async () => {
    const s = await startSpiced({ spicepod: 'version: v1\nkind: Spicepod\nname: t\n', ready: false,
      args: ['--tls-certificate-file', join(dir, 'missing.pem'), '--tls-key-file', pki.key] });
    const exit = await s.exited;
    assert.equal(exit.code, 1);
    assert.match(s.log(), /missing\.pem/);
    await s.stop();
  });
});
