// SPDX-License-Identifier: Apache-2.0
//
// Flight SQL on a real spiced (docs/flight.md): the SDK's parameterized queries (prepared statements bound by
// DoPut), and a bare @grpc/grpc-js client sending the Any-wrapped commands by hand: CommandStatementQuery,
// prepared statements, the catalog commands, DoAction/ListActions/ListFlights, the results-cache metadata, and
// a DoExchange subscription.
// Results are decoded by apache-arrow. Needs SPICED (ctest sets it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { SpiceClient } from '@spiceai/spice';
import * as grpc from '@grpc/grpc-js';
import { tableFromIPC, tableToIPC, tableFromArrays, Message } from 'apache-arrow';

import { startSpiced } from './lib/spiced.mjs';

const CSV = 'id,name,price\n1,apple,1.5\n2,banana,0.25\n3,cherry,4\n';

const SPICEPOD = `version: v1
kind: Spicepod
name: flight_sql_e2e
runtime:
  results_cache:
    enabled: true
    item_ttl: 10m
datasets:
  - from: file:fruits.csv
    name: fruits
    acceleration:
      enabled: true
      primary_key: id
views:
  - name: cheap
    sql: SELECT name FROM fruits WHERE price < 2
`;

const SERVICE = '/arrow.flight.protocol.FlightService/';
const SQL_PREFIX = 'type.googleapis.com/arrow.flight.protocol.sql.';
let rt, client, raw;

before(async () => {
  rt = await startSpiced({ spicepod: SPICEPOD, files: { 'fruits.csv': CSV } });
  client = new SpiceClient({ httpUrl: rt.url, flightUrl: rt.flightAddr, flightOnly: true });
  raw = new grpc.Client(rt.flightAddr, grpc.credentials.createInsecure());
});

after(async () => {
  raw?.close();
  if (rt) assert.deepEqual(await rt.stop(), { code: 0, signal: null });
});

// ---- protobuf by hand -------------------------------------------------------------------------------------

function varint(n) {
  const out = [];
  let v = BigInt(n);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}
const bytes = (b) => (Buffer.isBuffer(b) ? b : Buffer.from(b));
const field = (num, b) => Buffer.concat([varint((num << 3) | 2), varint(bytes(b).length), bytes(b)]);
const vfield = (num, v) => Buffer.concat([varint(num << 3), varint(v)]);
const any = (name, msg = Buffer.alloc(0)) => Buffer.concat([field(1, SQL_PREFIX + name), field(2, msg)]);
const cmd = (b) => Buffer.concat([vfield(1, 2), field(2, b)]);

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
    else if (wire === 2) {
      const len = Number(readVarint());
      val = buf.subarray(i, i + len);
      i += len;
    } else throw new Error(`unexpected wire type ${wire}`);
    (fields[num] ??= []).push(val);
  }
  return fields;
}

const identity = (b) => b;
const EOS = Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
const schemaOf = (ipc) => tableFromIPC(Buffer.concat([ipc, EOS])).schema;

function unary(method, request, metadata = new grpc.Metadata()) {
  return new Promise((resolve, reject) =>
    raw.makeUnaryRequest(SERVICE + method, identity, identity, request, metadata, (err, res) => (err ? reject(err) : resolve(res))));
}

// Server stream: resolves { msgs, headers } (headers: the initial metadata as a plain object).
function serverStream(method, request, metadata = new grpc.Metadata()) {
  return new Promise((resolve, reject) => {
    const msgs = [];
    let headers = {};
    const call = raw.makeServerStreamRequest(SERVICE + method, identity, identity, request, metadata);
    call.on('metadata', (md) => (headers = md.getMap()));
    call.on('data', (m) => msgs.push(m));
    call.on('error', reject);
    call.on('end', () => resolve({ msgs, headers }));
  });
}

function ipcStream(flightData) {
  const parts = [];
  for (const m of flightData) {
    const f = parse(m);
    const header = f[2][0];
    const body = f[1000]?.[0] ?? Buffer.alloc(0);
    const padded = (header.length + 7) & ~7;
    const prefix = Buffer.alloc(8);
    prefix.writeUInt32LE(0xffffffff, 0);
    prefix.writeInt32LE(padded, 4);
    parts.push(prefix, header, Buffer.alloc(padded - header.length), body);
  }
  parts.push(EOS);
  return Buffer.concat(parts);
}

// GetFlightInfo(descriptor) → { info, ticket }, then DoGet(ticket) → an apache-arrow Table.
async function flightInfo(descriptor) {
  const info = parse(await unary('GetFlightInfo', descriptor));
  return { info, ticket: parse(parse(info[3][0])[1][0])[1][0] };
}
async function fetchTable(descriptor) {
  const { ticket } = await flightInfo(descriptor);
  const { msgs } = await serverStream('DoGet', field(1, ticket));
  return tableFromIPC(ipcStream(msgs));
}
const rows = (t) => t.toArray().map((r) => r.toJSON());

async function doAction(type, body = Buffer.alloc(0)) {
  const { msgs } = await serverStream('DoAction', Buffer.concat([field(1, type), field(2, body)]));
  return msgs.map((m) => parse(m)[1]?.[0] ?? Buffer.alloc(0));
}

// DoPut: the IPC stream of `table` as FlightData messages, the descriptor on the first; resolves the PutResults.
function doPut(descriptor, table) {
  const ipc = Buffer.from(tableToIPC(table, 'stream'));
  const messages = [];
  for (let off = 0; off + 8 <= ipc.length;) {
    const len = ipc.readInt32LE(off + 4);
    if (len === 0) break;
    const header = ipc.subarray(off + 8, off + 8 + len);
    const bodyLength = Number(Message.decode(header).bodyLength);
    messages.push({ header, body: ipc.subarray(off + 8 + len, off + 8 + len + bodyLength) });
    off += 8 + len + bodyLength;
  }
  return new Promise((resolve, reject) => {
    const out = [];
    const call = raw.makeBidiStreamRequest(SERVICE + 'DoPut', identity, identity);
    call.on('data', (m) => out.push(parse(m)));
    call.on('error', reject);
    call.on('end', () => resolve(out));
    messages.forEach((m, i) => {
      call.write(Buffer.concat([i === 0 ? field(1, descriptor) : Buffer.alloc(0), field(2, m.header), field(1000, m.body)]));
    });
    call.end();
  });
}

// ---- the SDK's parameterized queries ----------------------------------------------------------------------

test('SDK: positional parameters bind through a prepared statement', async () => {
  const t = await client.sql('SELECT id, name FROM fruits WHERE id >= $1 AND name <> $2 ORDER BY id', { parameters: [2, 'cherry'] });
  assert.deepEqual(rows(t), [{ id: 2n, name: 'banana' }]);
  const f = await client.sql('SELECT name FROM fruits WHERE price > $1 ORDER BY name', { parameters: [1.0] });
  assert.deepEqual([...f.getChild('name')], ['apple', 'cherry']);
});

test('SDK: named parameters bind through a prepared statement', async () => {
  const t = await client.sql('SELECT id FROM fruits WHERE name = $name OR id = $id ORDER BY id', { parameters: { name: 'apple', id: 3 } });
  assert.deepEqual([...t.getChild('id')], [1n, 3n]);
});

test('SDK: a parameter that does not fit the query fails with the engine message', async () => {
  await assert.rejects(client.sql('SELECT * FROM fruits WHERE id = $1 AND name = $2', { parameters: [1] }), (e) => {
    assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
    return true;
  });
});

// ---- statements by hand -----------------------------------------------------------------------------------

test('CommandStatementQuery: the ticket is a TicketStatementQuery, DoGet streams the rows', async () => {
  const { info, ticket } = await flightInfo(cmd(any('CommandStatementQuery', field(1, 'SELECT id, price FROM fruits ORDER BY id'))));
  assert.deepEqual(schemaOf(info[1][0]).fields.map((f) => `${f.name}:${f.type}`), ['id:Int64', 'price:Float64']);
  const t = parse(ticket);
  assert.equal(t[1][0].toString(), SQL_PREFIX + 'TicketStatementQuery');
  assert.equal(parse(t[2][0])[1][0].toString(), 'SELECT id, price FROM fruits ORDER BY id');
  const { msgs } = await serverStream('DoGet', field(1, ticket));
  assert.deepEqual([...tableFromIPC(ipcStream(msgs)).getChild('price')], [1.5, 0.25, 4]);
});

test('prepared statement: create (schemas), bind by DoPut, query, close', async () => {
  const sql = 'SELECT name, price * 10 AS p FROM fruits WHERE id = $1 OR name = $2';
  const [res] = await doAction('CreatePreparedStatement', any('ActionCreatePreparedStatementRequest', field(1, sql)));
  const created = parse(res);
  assert.equal(created[1][0].toString(), SQL_PREFIX + 'ActionCreatePreparedStatementResult');
  const r = parse(created[2][0]);
  const handle = r[1][0];
  assert.deepEqual(schemaOf(r[2][0]).fields.map((f) => `${f.name}:${f.type}`), ['name:Utf8', 'p:Float64']);
  assert.deepEqual(schemaOf(r[3][0]).fields.map((f) => f.name), ['$1', '$2']);

  const query = cmd(any('CommandPreparedStatementQuery', field(1, handle)));
  const put = await doPut(query, tableFromArrays({ $1: BigInt64Array.from([3n]), $2: ['apple'] }));
  assert.equal(put.length, 1);
  assert.deepEqual(Buffer.from(parse(put[0][1][0])[1][0]), Buffer.from(handle)); // DoPutPreparedStatementResult
  const t = await fetchTable(query);
  assert.deepEqual(rows(t).sort((a, b) => a.p - b.p), [{ name: 'apple', p: 15 }, { name: 'cherry', p: 40 }]);

  // Binding again replaces the parameters.
  await doPut(query, tableFromArrays({ $1: BigInt64Array.from([2n]), $2: ['none'] }));
  assert.deepEqual(rows(await fetchTable(query)), [{ name: 'banana', p: 2.5 }]);

  await doAction('ClosePreparedStatement', any('ActionClosePreparedStatementRequest', field(1, handle)));
  await assert.rejects(unary('GetFlightInfo', query), (e) => {
    assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
    assert.match(e.details, /does not exist/);
    return true;
  });
});

test('DoPut with malformed IPC or protobuf is INVALID_ARGUMENT and the server keeps serving', async () => {
  const [res] = await doAction('CreatePreparedStatement', any('ActionCreatePreparedStatementRequest', field(1, 'SELECT $1 + 1 AS x')));
  const handle = parse(parse(res)[2][0])[1][0];
  const query = cmd(any('CommandPreparedStatementQuery', field(1, handle)));
  const send = (msg) => new Promise((resolve, reject) => {
    const call = raw.makeBidiStreamRequest(SERVICE + 'DoPut', identity, identity);
    call.on('data', () => {});
    call.on('error', reject);
    call.on('end', resolve);
    call.write(msg);
    call.end();
  });
  // A data_header that is not an Arrow message flatbuffer.
  await assert.rejects(send(Buffer.concat([field(1, query), field(2, Buffer.from('not a flatbuffer at all'))])),
    { code: grpc.status.INVALID_ARGUMENT });
  // A FlightData whose fields lie about their lengths.
  await assert.rejects(send(Buffer.from([0x0a, 0x7f, 0x01])), { code: grpc.status.INVALID_ARGUMENT });
  // No descriptor on the first message.
  await assert.rejects(send(field(2, Buffer.alloc(8))), { code: grpc.status.INVALID_ARGUMENT });
  await doPut(query, tableFromArrays({ $1: BigInt64Array.from([41n]) }));
  assert.deepEqual(rows(await fetchTable(query)), [{ x: 42n }]);
});

test('prepared statement: bad SQL fails at CreatePreparedStatement', async () => {
  await assert.rejects(doAction('CreatePreparedStatement', any('ActionCreatePreparedStatementRequest', field(1, 'SELEC 1'))),
    (e) => e.code === grpc.status.INVALID_ARGUMENT && /syntax error/.test(e.details));
});

// ---- catalog commands -------------------------------------------------------------------------------------

test('CommandGetCatalogs, CommandGetDbSchemas, CommandGetTableTypes', async () => {
  const cats = await fetchTable(cmd(any('CommandGetCatalogs')));
  assert.deepEqual(cats.schema.fields.map((f) => `${f.name}:${f.type}:${f.nullable}`), ['catalog_name:Utf8:false']);
  assert.equal(cats.numRows, 1);
  const catalog = cats.getChild('catalog_name').get(0);

  const schemas = await fetchTable(cmd(any('CommandGetDbSchemas')));
  assert.deepEqual(schemas.schema.fields.map((f) => `${f.name}:${f.nullable}`), ['catalog_name:true', 'db_schema_name:false']);
  assert.deepEqual(rows(schemas), [{ catalog_name: catalog, db_schema_name: 'main' }]);
  const none = await fetchTable(cmd(any('CommandGetDbSchemas', field(2, 'x%'))));
  assert.equal(none.numRows, 0);

  const types = await fetchTable(cmd(any('CommandGetTableTypes')));
  assert.deepEqual([...types.getChild('table_type')], ['BASE TABLE', 'VIEW']);
});

test('CommandGetTables: filters, table types and include_schema', async () => {
  const all = await fetchTable(cmd(any('CommandGetTables')));
  assert.deepEqual(all.schema.fields.map((f) => f.name), ['catalog_name', 'db_schema_name', 'table_name', 'table_type']);
  assert.deepEqual(rows(all).map((r) => `${r.db_schema_name}.${r.table_name}:${r.table_type}`),
    ['main.cheap:VIEW', 'main.fruits:BASE TABLE']);

  const views = await fetchTable(cmd(any('CommandGetTables', field(4, 'VIEW'))));
  assert.deepEqual([...views.getChild('table_name')], ['cheap']);
  const like = await fetchTable(cmd(any('CommandGetTables', field(3, 'fr_i%'))));
  assert.deepEqual([...like.getChild('table_name')], ['fruits']);

  const withSchema = await fetchTable(cmd(any('CommandGetTables', Buffer.concat([field(3, 'fruits'), vfield(5, 1)]))));
  assert.equal(withSchema.schema.fields[4].name, 'table_schema');
  assert.equal(String(withSchema.schema.fields[4].type), 'Binary');
  const tableSchema = schemaOf(Buffer.from(withSchema.getChild('table_schema').get(0)));
  assert.deepEqual(tableSchema.fields.map((f) => `${f.name}:${f.type}`), ['id:Int64', 'name:Utf8', 'price:Float64']);
});

test('CommandGetPrimaryKeys: the acceleration primary_key', async () => {
  const t = await fetchTable(cmd(any('CommandGetPrimaryKeys', field(3, 'fruits'))));
  assert.deepEqual(t.schema.fields.map((f) => f.name),
    ['catalog_name', 'db_schema_name', 'table_name', 'column_name', 'key_name', 'key_sequence']);
  assert.deepEqual(rows(t).map((r) => [r.table_name, r.column_name, r.key_name, r.key_sequence]), [['fruits', 'id', null, 1]]);
  const none = await fetchTable(cmd(any('CommandGetPrimaryKeys', field(3, 'cheap'))));
  assert.equal(none.numRows, 0);
});

test('CommandGetSqlInfo: info_name and a dense union value, all or the ids asked for', async () => {
  const all = await fetchTable(cmd(any('CommandGetSqlInfo')));
  assert.deepEqual(all.schema.fields.map((f) => `${f.name}:${f.nullable}`), ['info_name:false', 'value:false']);
  assert.equal(String(all.schema.fields[0].type), 'Uint32');
  assert.deepEqual(all.schema.fields[1].type.children.map((f) => f.name),
    ['string_value', 'bool_value', 'bigint_value', 'int32_bitmask', 'string_list', 'int32_to_int32_list_map']);
  const byId = new Map(all.toArray().map((r) => [r.info_name, r.value]));
  assert.equal(byId.get(0), 'spicec'); // FLIGHT_SQL_SERVER_NAME
  assert.equal(byId.get(4), true); // FLIGHT_SQL_SERVER_SQL
  assert.equal(byId.get(504), '"'); // SQL_IDENTIFIER_QUOTE_CHAR
  assert.equal(byId.get(507), 3); // SQL_NULL_ORDERING: at the end

  // info = [504, 3, 99999] (packed): only the known ones, in the order asked.
  const some = await fetchTable(cmd(any('CommandGetSqlInfo', field(1, Buffer.concat([varint(504), varint(3), varint(99999)])))));
  assert.deepEqual(some.toArray().map((r) => [r.info_name, r.value]), [[504, '"'], [3, false]]);
});

test('other Flight SQL commands are UNIMPLEMENTED with their name', async () => {
  for (const name of ['CommandGetXdbcTypeInfo', 'CommandGetCrossReference', 'CommandStatementUpdate']) {
    await assert.rejects(unary('GetFlightInfo', cmd(any(name))), (e) => {
      assert.equal(e.code, grpc.status.UNIMPLEMENTED);
      assert.equal(e.details, `${name} is not implemented`);
      return true;
    });
  }
});

// ---- results cache ----------------------------------------------------------------------------------------

test('results cache: MISS, then HIT with the same rows, BYPASS with cache-control: no-cache', async () => {
  const sql = field(1, 'SELECT name, price FROM fruits WHERE price > 0.5 ORDER BY name');
  const first = await serverStream('DoGet', sql);
  assert.equal(first.headers['results-cache-status'], 'MISS');
  assert.equal(first.headers['x-cache'], 'Miss from spiceai');
  const second = await serverStream('DoGet', field(1, 'select  name, price FROM fruits where price > 0.5 ORDER BY name'));
  assert.equal(second.headers['results-cache-status'], 'HIT');
  assert.equal(second.headers['x-cache'], 'Hit from spiceai');
  assert.deepEqual(rows(tableFromIPC(ipcStream(second.msgs))), rows(tableFromIPC(ipcStream(first.msgs))));
  const md = new grpc.Metadata();
  md.set('cache-control', 'no-cache');
  const third = await serverStream('DoGet', sql, md);
  assert.equal(third.headers['results-cache-status'], 'BYPASS');
  assert.equal(tableFromIPC(ipcStream(third.msgs)).numRows, 2);
});

// ---- actions and flights ----------------------------------------------------------------------------------

test('ListActions, the refresh action, and unknown actions', async () => {
  const { msgs } = await serverStream('ListActions', Buffer.alloc(0));
  assert.deepEqual(msgs.map((m) => parse(m)[1][0].toString()), ['CreatePreparedStatement', 'ClosePreparedStatement', 'refresh']);
  const [res] = await doAction('refresh', 'FRUITS');
  assert.deepEqual(JSON.parse(res.toString()), { message: 'Dataset refresh triggered for fruits.' });
  await assert.rejects(doAction('refresh', 'nope'), { code: grpc.status.NOT_FOUND });
  await assert.rejects(doAction('Frobnicate'), (e) => e.code === grpc.status.INVALID_ARGUMENT && e.details === 'Unknown action type: Frobnicate');
});

test('ListFlights: one FlightInfo per dataset, whose ticket reads it', async () => {
  const { msgs } = await serverStream('ListFlights', Buffer.alloc(0));
  assert.equal(msgs.length, 1);
  const info = parse(msgs[0]);
  const desc = parse(info[2][0]);
  assert.equal(desc[1][0], 1n); // PATH
  assert.equal(desc[3][0].toString(), 'fruits');
  const ticket = parse(parse(info[3][0])[1][0])[1][0];
  const { msgs: data } = await serverStream('DoGet', field(1, ticket));
  assert.equal(tableFromIPC(ipcStream(data)).numRows, 3);
});

// ---- DoExchange (last: it changes the data) ---------------------------------------------------------------

test('DoExchange subscribes to a dataset: its contents, then each update after a refresh', async () => {
  const call = raw.makeBidiStreamRequest(SERVICE + 'DoExchange', identity, identity);
  const msgs = [];
  let wake = () => {};
  call.on('data', (m) => {
    msgs.push(parse(m));
    wake();
  });
  const ended = new Promise((resolve) => call.on('error', resolve).on('end', resolve));
  const until = async (cond) => {
    while (!cond()) await new Promise((resolve) => (wake = resolve));
  };
  // Rows of the batches after the schema; metadata-only messages split the updates.
  const snapshots = () => {
    const out = [[]];
    for (const f of msgs.slice(1)) {
      if (!f[2]) out.push([]);
      else out[out.length - 1].push(f);
    }
    return out.map((batches) => batches.length
      ? tableFromIPC(ipcStream([msgs[0], ...batches].map((f) => Buffer.concat([field(2, f[2][0]), f[1000] ? field(1000, f[1000][0]) : Buffer.alloc(0)])))).numRows
      : 0);
  };
  call.write(field(1, Buffer.concat([vfield(1, 1), field(3, 'fruits')])));
  await until(() => snapshots()[0] === 3);

  writeFileSync(join(rt.dir, 'fruits.csv'), CSV + '4,date,9.5\n');
  await doAction('refresh', 'fruits');
  await until(() => snapshots().length === 2 && snapshots()[1] === 4);
  const marker = JSON.parse(msgs.find((f) => !f[2])[3][0].toString());
  assert.deepEqual(marker, { update: 'overwrite', rows: 4 });

  call.cancel();
  await ended;
  const t = await client.sql('SELECT count(*) AS n FROM fruits');
  assert.equal(t.getChild('n').get(0), 4n);
});
