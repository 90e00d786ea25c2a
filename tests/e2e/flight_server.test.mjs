// SPDX-License-Identifier: Apache-2.0
//
// The Flight server's production surface (docs/flight.md): API keys (runtime.auth.api-key) on every RPC,
// Handshake basic auth answering a bearer token, the cap on calls in flight (SPICED_FLIGHT_MAX_CALLS), a
// SIGTERM that lets a call in flight finish before spiced exits, and TLS (runtime.tls, a self-signed certificate
// made by openssl) with the official SDK sending its API key. Needs SPICED (ctest sets it) and openssl.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { SpiceClient } from '@spiceai/spice';
import * as grpc from '@grpc/grpc-js';
import { startSpiced, sleep, freePort } from './lib/spiced.mjs';

const KEY = 'flight-key-5d1e';
const MAX_CALLS = 3;

const SPICEPOD = `version: v1
kind: Spicepod
name: flight_server_e2e
runtime:
  auth:
    api-key:
      enabled: true
      keys: ["${KEY}"]
datasets:
  - from: file:nums.csv
    name: nums
    acceleration:
      enabled: true
`;

const SERVICE = '/arrow.flight.protocol.FlightService/';
let rt, raw;

before(async () => {
  rt = await startSpiced({
    spicepod: SPICEPOD,
    files: { 'nums.csv': 'n\n1\n2\n3\n' },
    env: { SPICED_FLIGHT_MAX_CALLS: String(MAX_CALLS) },
  });
  raw = new grpc.Client(rt.flightAddr, grpc.credentials.createInsecure());
});

after(async () => {
  raw?.close();
  if (rt && rt.exitCode === undefined) await rt.stop();
});

function varint(n) {
  const out = [];
  for (; n >= 0x80; n >>>= 7) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return Buffer.from(out);
}
const field = (num, b) => Buffer.concat([varint((num << 3) | 2), varint(Buffer.from(b).length), Buffer.from(b)]);
const identity = (b) => b;
const descriptor = (sql) => Buffer.concat([varint(8), varint(2), field(2, sql)]);

function md(pairs) {
  const m = new grpc.Metadata();
  for (const [k, v] of Object.entries(pairs)) m.set(k, v);
  return m;
}

function unary(method, request, metadata = new grpc.Metadata()) {
  return new Promise((resolve, reject) =>
    raw.makeUnaryRequest(SERVICE + method, identity, identity, request, metadata, (e, r) => (e ? reject(e) : resolve(r))));
}

// A Handshake kept open: send() writes a HandshakeRequest and resolves with the reply; end() half-closes and
// resolves with the status. `headers` is the initial metadata once it came.
function openHandshake(metadata) {
  const call = raw.makeBidiStreamRequest(SERVICE + 'Handshake', identity, identity, metadata);
  const h = { call, headers: null, waiting: [] };
  h.status = new Promise((resolve) => call.on('status', resolve));
  h.error = new Promise((resolve) => call.on('error', resolve));
  call.on('metadata', (m) => (h.headers = m.getMap()));
  call.on('data', (d) => h.waiting.shift()?.(d));
  h.send = (payload = Buffer.alloc(0)) => Promise.race([
    new Promise((resolve) => {
      h.waiting.push(resolve);
      call.write(Buffer.concat([Buffer.from([0x08, 0x01]), field(2, payload)]));
    }),
    h.error.then((e) => Promise.reject(e)),
  ]);
  h.end = () => {
    call.end();
    return h.status;
  };
  return h;
}

const basic = (user, pass) => 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');

test('every RPC but Handshake needs the key: none or a wrong one is UNAUTHENTICATED', async () => {
  for (const m of [new grpc.Metadata(), md({ authorization: 'Bearer nope' }), md({ 'x-api-key': 'nope' })]) {
    await assert.rejects(unary('GetFlightInfo', descriptor('SELECT 1'), m), (e) => {
      assert.equal(e.code, grpc.status.UNAUTHENTICATED);
      assert.equal(e.details, 'Access denied. Invalid credentials.');
      return true;
    });
  }
  await assert.rejects(unary('ListActions', Buffer.alloc(0)), { code: grpc.status.UNAUTHENTICATED });
});

test('authorization: Bearer <key> and x-api-key are accepted', async () => {
  const info = await unary('GetFlightInfo', descriptor('SELECT sum(n) AS s FROM nums'), md({ authorization: `Bearer ${KEY}` }));
  assert.ok(info.length > 0);
  const ticket = field(1, 'SELECT sum(n) AS s FROM nums');
  const msgs = await new Promise((resolve, reject) => {
    const out = [];
    const call = raw.makeServerStreamRequest(SERVICE + 'DoGet', identity, identity, ticket, md({ 'x-api-key': KEY }));
    call.on('data', (d) => out.push(d));
    call.on('error', reject);
    call.on('end', () => resolve(out));
  });
  assert.equal(msgs.length, 2); // schema, one batch
});

test('Handshake: basic auth answers the bearer token; a wrong password is UNAUTHENTICATED', async () => {
  const h = openHandshake(md({ authorization: basic('anyone', KEY) }));
  await h.send();
  assert.equal(h.headers.authorization, `Bearer ${KEY}`);
  assert.equal((await h.end()).code, grpc.status.OK);

  const bad = openHandshake(md({ authorization: basic('anyone', 'wrong') }));
  bad.call.write(Buffer.from([0x08, 0x01]));
  const e = await bad.error;
  assert.equal(e.code, grpc.status.UNAUTHENTICATED);

  // The BasicAuth message {username = 2, password = 3} as the payload works too.
  const payload = openHandshake(new grpc.Metadata());
  await payload.send(Buffer.concat([field(2, 'u'), field(3, KEY)]));
  assert.equal(payload.headers.authorization, `Bearer ${KEY}`);
  await payload.end();
});

test(`at most ${MAX_CALLS} calls in flight: one more is RESOURCE_EXHAUSTED, and served once one ends`, async () => {
  const auth = () => md({ authorization: `Bearer ${KEY}` });
  const open = [];
  while (open.length < MAX_CALLS) {
    const h = openHandshake(auth());
    try {
      await h.send(); // answered: its thread is running
      open.push(h);
    } catch (e) {
      // a call of an earlier test may hold its slot a moment after its status went out
      if (e.code !== grpc.status.RESOURCE_EXHAUSTED) throw e;
      await sleep(20);
    }
  }
  await assert.rejects(unary('GetFlightInfo', descriptor('SELECT 1'), auth()), (e) => {
    assert.equal(e.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(e.details, /too many Flight calls/);
    return true;
  });
  await open.pop().end();
  // The finished call's thread lets go of its slot right after its status went out.
  let info;
  for (let i = 0; i < 500 && !info; i++) {
    info = await unary('GetFlightInfo', descriptor('SELECT 1'), auth()).catch((e) => {
      if (e.code !== grpc.status.RESOURCE_EXHAUSTED) throw e;
      return sleep(20);
    });
  }
  assert.ok(info);
  for (const h of open) await h.end();
});

test('SIGTERM lets a call in flight finish, then spiced exits cleanly', async () => {
  const h = openHandshake(md({ authorization: `Bearer ${KEY}` }));
  await h.send();
  rt.proc.kill('SIGTERM');
  while (!/shutting down/.test(rt.log())) await sleep(20);
  await h.send(); // still served while the server drains
  assert.equal((await h.end()).code, grpc.status.OK);
  assert.deepEqual(await rt.exited, { code: 0, signal: null });
});

test('runtime.flight in the spicepod sets the Flight address when --flight is not given', async () => {
  const port = await freePort();
  // No API key here: over plaintext gRPC the SDK does not send one.
  const pod = `version: v1\nkind: Spicepod\nname: flight_address\nruntime:\n  flight:\n    address: 127.0.0.1:${port}\n` +
    'datasets:\n  - from: file:nums.csv\n    name: nums\n    acceleration:\n      enabled: true\n';
  const rt = await startSpiced({ spicepod: pod, files: { 'nums.csv': 'n\n1\n2\n3\n' }, flightFlag: false });
  try {
    assert.match(rt.log(), new RegExp(`Arrow Flight on 127\\.0\\.0\\.1:${port}`));
    const sdk = new SpiceClient({ httpUrl: rt.url, flightUrl: `127.0.0.1:${port}`, flightOnly: true });
    const t = await sdk.sql('SELECT CAST(sum(n) AS BIGINT) AS s FROM nums');
    assert.equal(t.getChild('s').get(0), 6n);
  } finally {
    await rt.stop();
  }
});

test('TLS from --tls-certificate-file/--tls-key-file covers Flight as well as HTTP', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flight-tls-flags-'));
  const cert = join(dir, 'cert.pem'), key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  const tls = await startSpiced({ spicepod: SPICEPOD, files: { 'nums.csv': 'n\n1\n2\n3\n' }, ready: false,
    args: ['--tls-certificate-file', cert, '--tls-key-file', key] });
  try {
    const sdk = new SpiceClient({ httpUrl: `https://${tls.httpAddr}`, flightUrl: tls.flightAddr, flightOnly: true,
      flightTlsEnabled: true, tlsRootCertFile: cert, apiKey: KEY });
    let t;
    for (let i = 0; i < 600 && !t; i++) t = await sdk.sql('SELECT CAST(sum(n) AS BIGINT) AS s FROM nums').catch(() => sleep(50).then(() => undefined));
    assert.equal(t.getChild('s').get(0), 6n);
    assert.match(tls.log(), /Arrow Flight uses TLS/);
  } finally {
    assert.deepEqual(await tls.stop(), { code: 0, signal: null });
    rmSync(dir, { recursive: true, force: true });
  }
});

test('TLS: the SDK over grpc+tls sends its API key; a wrong key is UNAUTHENTICATED', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flight-tls-'));
  const cert = join(dir, 'cert.pem'), key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  const pod = SPICEPOD.replace('runtime:\n', `runtime:\n  tls:\n    enabled: true\n    certificate_file: ${cert}\n    key_file: ${key}\n`);
  const tls = await startSpiced({ spicepod: pod, files: { 'nums.csv': 'n\n1\n2\n3\n' }, ready: false });
  try {
    const sdk = (apiKey) => new SpiceClient({ httpUrl: `https://${tls.httpAddr}`, flightUrl: tls.flightAddr, flightOnly: true,
      flightTlsEnabled: true, tlsRootCertFile: cert, apiKey });
    const good = sdk(KEY);
    let t;
    for (let i = 0; i < 600 && !t; i++) { // until the dataset is loaded
      t = await good.sql('SELECT CAST(sum(n) AS BIGINT) AS s FROM nums').catch(() => sleep(50).then(() => undefined));
    }
    assert.equal(t.getChild('s').get(0), 6n);
    await assert.rejects(sdk('wrong-key').sql('SELECT 1'), (e) => e.code === grpc.status.UNAUTHENTICATED);
    // A plaintext client cannot talk to it.
    const plain = new grpc.Client(tls.flightAddr, grpc.credentials.createInsecure());
    await assert.rejects(new Promise((resolve, reject) => plain.makeUnaryRequest(SERVICE + 'GetFlightInfo', identity, identity,
      descriptor('SELECT 1'), md({ authorization: `Bearer ${KEY}` }), (e, r) => (e ? reject(e) : resolve(r)))));
    plain.close();
  } finally {
    assert.deepEqual(await tls.stop(), { code: 0, signal: null });
    rmSync(dir, { recursive: true, force: true });
  }
});
