// SPDX-License-Identifier: Apache-2.0
//
// Flight DoPut appends (docs/flight.md) into a `mode: read_write` dataset backed by a real PostgreSQL that the
// test starts itself (lib/postgres.mjs): rows encoded by apache-arrow go through the same write path as SQL
// INSERT, land in the source and in the accelerated copy at once, and read back over Flight. A PATH put answers
// one PutResult per batch; a Flight SQL CommandStatementIngest answers DoPutUpdateResult{record_count}.
// Read-only and unknown datasets are refused and nothing is written. Needs SPICED and PostgreSQL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import * as grpc from '@grpc/grpc-js';
import { tableFromIPC, tableFromArrays, Message, RecordBatchStreamWriter } from 'apache-arrow';

import { startSpiced } from './lib/spiced.mjs';
import { startPostgres } from './lib/postgres.mjs';

const SERVICE = '/arrow.flight.protocol.FlightService/';
const SQL_PREFIX = 'type.googleapis.com/arrow.flight.protocol.sql.';
let pg, rt, raw;

function dataset(name, params, rw) {
  const p = Object.entries(params).map(([k, v]) => `      ${k}: ${JSON.stringify(String(v))}`).join('\n');
  const mode = rw ? '    mode: read_write\n    replication:\n      enabled: true\n' : '';
  return `  - from: postgres:items\n    name: ${name}\n    params:\n${p}\n${mode}` +
    '    acceleration:\n      enabled: true\n      refresh_check_interval: 1h\n';
}

before(async () => {
  pg = await startPostgres();
  pg.psql('CREATE TABLE items (id bigint PRIMARY KEY, label text, price double precision);' +
    "INSERT INTO items VALUES (1, 'seed', 0.5);", { user: 'spice' });
  rt = await startSpiced({
    spicepod: `version: v1\nkind: Spicepod\nname: flight_put\ndatasets:\n${dataset('items', pg.params, true)}${dataset('items_ro', pg.params, false)}`,
  });
  raw = new grpc.Client(rt.flightAddr, grpc.credentials.createInsecure());
});

after(async () => {
  raw?.close();
  if (rt) await rt.stop();
  if (pg) await pg.stop();
});

function varint(n) {
  const out = [];
  for (let v = BigInt(n); ; v >>= 7n) {
    if (v < 0x80n) {
      out.push(Number(v));
      return Buffer.from(out);
    }
    out.push(Number(v & 0x7fn) | 0x80);
  }
}
const field = (num, b) => Buffer.concat([varint((num << 3) | 2), varint(Buffer.from(b).length), Buffer.from(b)]);
const identity = (b) => b;
const pathDescriptor = (name) => Buffer.concat([varint(8), varint(1), field(3, name)]);
const any = (name, msg) => Buffer.concat([field(1, SQL_PREFIX + name), field(2, msg)]);

function parse(buf) {
  const fields = {};
  let i = 0;
  const readVarint = () => {
    let v = 0n, shift = 0n;
    for (;;) {
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(readVarint());
    const num = key >> 3, wire = key & 7;
    let val;
    if (wire === 0) val = readVarint();
    else {
      const len = Number(readVarint());
      val = buf.subarray(i, i + len);
      i += len;
    }
    (fields[num] ??= []).push(val);
  }
  return fields;
}

// The IPC messages of the batches, as FlightData with the descriptor on the first; resolves the PutResults.
function doPut(descriptor, batches, { descriptorAlone = false } = {}) {
  const writer = new RecordBatchStreamWriter();
  for (const b of batches) writer.write(b);
  writer.finish();
  const ipc = Buffer.from(writer.toUint8Array(true));
  const messages = [];
  for (let off = 0; off + 8 <= ipc.length;) {
    const len = ipc.readInt32LE(off + 4);
    if (len === 0) break;
    const header = ipc.subarray(off + 8, off + 8 + len);
    const bodyLength = Number(Message.decode(header).bodyLength);
    messages.push(Buffer.concat([field(2, header), field(1000, ipc.subarray(off + 8 + len, off + 8 + len + bodyLength))]));
    off += 8 + len + bodyLength;
  }
  return new Promise((resolve, reject) => {
    const out = [];
    const call = raw.makeBidiStreamRequest(SERVICE + 'DoPut', identity, identity);
    call.on('data', (m) => out.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(out));
    if (descriptorAlone) call.write(field(1, descriptor));
    messages.forEach((m, i) => call.write(i === 0 && !descriptorAlone ? Buffer.concat([field(1, descriptor), m]) : m));
    call.end();
  });
}

async function query(sql) {
  const msgs = await new Promise((resolve, reject) => {
    const out = [];
    const call = raw.makeServerStreamRequest(SERVICE + 'DoGet', identity, identity, field(1, sql));
    call.on('data', (m) => out.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(out));
  });
  const parts = [];
  for (const m of msgs) {
    const f = parse(m);
    const header = f[2][0], body = f[1000]?.[0] ?? Buffer.alloc(0);
    const padded = (header.length + 7) & ~7;
    const prefix = Buffer.alloc(8);
    prefix.writeUInt32LE(0xffffffff, 0);
    prefix.writeInt32LE(padded, 4);
    parts.push(prefix, header, Buffer.alloc(padded - header.length), body);
  }
  parts.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]));
  return tableFromIPC(Buffer.concat(parts)).toArray().map((r) => r.toJSON());
}

const pgRows = () => pg.rows('SELECT id, label, price FROM items ORDER BY id').map(([id, l, p]) => [Number(id), l, p === null ? null : Number(p)]);

test('DoPut PATH: two batches land in PostgreSQL and in the accelerated copy, one PutResult each', async () => {
  // (label is dictionary-encoded by apache-arrow; the NULL goes in price.)
  const t = tableFromArrays({ id: BigInt64Array.from([2n, 3n, 4n]), label: ['two', 'three', 'four'], price: [2.5, null, 4.25] });
  const results = await doPut(pathDescriptor('items'), [t.batches[0].slice(0, 2), t.batches[0].slice(2, 3)]);
  assert.equal(results.length, 2);
  assert.deepEqual(pgRows(), [[1, 'seed', 0.5], [2, 'two', 2.5], [3, 'three', null], [4, 'four', 4.25]]);
  // No refresh in between (the interval is an hour): the accelerated copy already has them.
  assert.deepEqual(await query('SELECT id, label FROM items ORDER BY id'),
    [{ id: 1n, label: 'seed' }, { id: 2n, label: 'two' }, { id: 3n, label: 'three' }, { id: 4n, label: 'four' }]);
  assert.deepEqual(await query('SELECT price FROM items WHERE id = 3'), [{ price: null }]);
});

test('DoPut CommandStatementIngest answers the record count', async () => {
  const t = tableFromArrays({ id: BigInt64Array.from([5n, 6n, 7n]), label: ['five', 'six', 'seven'] });
  const cmd = any('CommandStatementIngest', field(2, 'items'));
  const results = await doPut(Buffer.concat([varint(8), varint(2), field(2, cmd)]), t.batches);
  assert.equal(results.length, 1);
  const update = parse(parse(results[0])[1][0]);
  assert.equal(update[1][0], 3n); // DoPutUpdateResult.record_count
  assert.deepEqual(pgRows().slice(-3), [[5, 'five', null], [6, 'six', null], [7, 'seven', null]]);
});

test('DoPut: the descriptor may come alone, before the schema', async () => {
  const t = tableFromArrays({ id: BigInt64Array.from([20n]), label: ['twenty'] });
  const results = await doPut(pathDescriptor('items'), t.batches, { descriptorAlone: true });
  assert.equal(results.length, 1);
  assert.deepEqual(pgRows().find(([id]) => id === 20), [20, 'twenty', null]);
});

test('DoPut into a read-only or unknown dataset is refused and writes nothing', async () => {
  const before = pgRows();
  const t = tableFromArrays({ id: BigInt64Array.from([99n]), label: ['nope'] });
  await assert.rejects(doPut(pathDescriptor('items_ro'), t.batches), (e) => {
    assert.equal(e.code, grpc.status.PERMISSION_DENIED);
    assert.match(e.details, /items_ro/);
    return true;
  });
  await assert.rejects(doPut(pathDescriptor('no_such'), t.batches), { code: grpc.status.NOT_FOUND });
  assert.deepEqual(pgRows(), before);
});

test('DoPut with a duplicate key fails with the source message and leaves both sides unchanged', async () => {
  const before = await query('SELECT count(*) AS n FROM items');
  const t = tableFromArrays({ id: BigInt64Array.from([8n, 1n]), label: ['eight', 'dup'] });
  await assert.rejects(doPut(pathDescriptor('items'), t.batches), (e) => {
    assert.match(e.details, /duplicate key/);
    return true;
  });
  assert.deepEqual(await query('SELECT count(*) AS n FROM items'), before);
  assert.equal(pgRows().find(([id]) => id === 8), undefined);
});

test('a DoPut cancelled mid-stream writes nothing and the server keeps serving', async () => {
  const before = pgRows();
  const t = tableFromArrays({ id: BigInt64Array.from([50n, 51n]), label: ['fifty', 'fifty-one'] });
  const writer = new RecordBatchStreamWriter();
  writer.write(t.batches[0]);
  writer.finish();
  const ipc = Buffer.from(writer.toUint8Array(true));
  const len = ipc.readInt32LE(4); // the Schema message only: the batch never comes
  await new Promise((resolve) => {
    const call = raw.makeBidiStreamRequest(SERVICE + 'DoPut', identity, identity);
    call.on('error', () => resolve());
    call.on('end', () => resolve());
    call.write(Buffer.concat([field(1, pathDescriptor('items')), field(2, ipc.subarray(8, 8 + len))]), () => call.cancel());
  });
  assert.deepEqual(pgRows(), before);
  assert.deepEqual(await query('SELECT count(*) AS n FROM items WHERE id >= 50'), [{ n: 0n }]);
});
