/* SPDX-License-Identifier: Apache-2.0
 *
 * Flight SQL CommandGetSqlInfo. Its result schema (FlightSql.proto) is
 *   info_name: uint32 not null,
 *   value: dense_union<string_value: utf8, bool_value: bool, bigint_value: int64, int32_bitmask: int32,
 *                      string_list: list<item: utf8>,
 *                      int32_to_int32_list_map: map<key: int32, value: list<item: int32>>> not null
 * and the IPC codec does not write unions, so the Schema and the one RecordBatch message are built here with
 * the flatbuffer builder of src/arrow (metadata V5: a union has no validity buffer; a dense one has type ids
 * and int32 offsets). The values served use the string, bool and int32 members; the others stay empty.
 */
#include <stdlib.h>
#include <string.h>

#include "arrow/flatbuf.h"
#include "server/flight_int.h"

/* Schema.fbs / Message.fbs ids. */
enum { T_INT = 2, T_UTF8 = 5, T_BOOL = 6, T_LIST = 12, T_STRUCT = 13, T_UNION = 14, T_MAP = 17 };
enum { H_SCHEMA = 1, H_RECORD_BATCH = 3 };

typedef enum { V_STRING = 0, V_BOOL = 1, V_INT32 = 3 } vkind;

typedef struct info {
  uint32_t id;
  vkind kind;
  const char *s;
  int32_t i; /* bool: 0/1 */
} info;

/* What spicec says about itself (SqlInfo ids of FlightSql.proto). */
static const info infos[] = {
    {0, V_STRING, "spicec", 0},   /* FLIGHT_SQL_SERVER_NAME */
    {1, V_STRING, "1.0.0", 0},    /* FLIGHT_SQL_SERVER_VERSION */
    {2, V_STRING, "1.5.0", 0},    /* FLIGHT_SQL_SERVER_ARROW_VERSION (columnar format) */
    {3, V_BOOL, NULL, 0},         /* FLIGHT_SQL_SERVER_READ_ONLY: read_write datasets take writes */
    {4, V_BOOL, NULL, 1},         /* FLIGHT_SQL_SERVER_SQL */
    {5, V_BOOL, NULL, 0},         /* FLIGHT_SQL_SERVER_SUBSTRAIT */
    {8, V_INT32, NULL, 0},        /* FLIGHT_SQL_SERVER_TRANSACTION: none */
    {9, V_BOOL, NULL, 0},         /* FLIGHT_SQL_SERVER_CANCEL */
    {500, V_BOOL, NULL, 0},       /* SQL_DDL_CATALOG */
    {501, V_BOOL, NULL, 0},       /* SQL_DDL_SCHEMA */
    {502, V_BOOL, NULL, 0},       /* SQL_DDL_TABLE */
    {503, V_INT32, NULL, 1},      /* SQL_IDENTIFIER_CASE: case-insensitive */
    {504, V_STRING, "\"", 0},     /* SQL_IDENTIFIER_QUOTE_CHAR */
    {505, V_INT32, NULL, 1},      /* SQL_QUOTED_IDENTIFIER_CASE: case-insensitive (DuckDB) */
    {506, V_BOOL, NULL, 1},       /* SQL_ALL_TABLES_ARE_SELECTABLE */
    {507, V_INT32, NULL, 3},      /* SQL_NULL_ORDERING: nulls at the end */
};
#define N_INFOS (sizeof infos / sizeof infos[0])

/* ---- Schema --------------------------------------------------------------------------------------------- */

static fb_ref int_type(fb_builder *b, int bits, bool is_signed) {
  fb_table_start(b);
  fb_add_i32(b, 0, bits);
  fb_add_u8(b, 1, is_signed);
  return fb_table_end(b);
}

static fb_ref empty_table(fb_builder *b) {
  fb_table_start(b);
  return fb_table_end(b);
}

static fb_ref field(fb_builder *b, const char *name, bool nullable, uint8_t type_type, fb_ref type,
                    const fb_ref *children, size_t n) {
  fb_ref ch = fb_ref_vector(b, children, n), nm = fb_string(b, name, strlen(name));
  fb_table_start(b);
  fb_add_ref(b, 0, nm);
  fb_add_u8(b, 1, nullable);
  fb_add_u8(b, 2, type_type);
  fb_add_ref(b, 3, type);
  fb_add_ref(b, 5, ch);
  return fb_table_end(b);
}

static fb_ref map_member(fb_builder *b) {
  fb_ref item = field(b, "item", true, T_INT, int_type(b, 32, true), NULL, 0);
  fb_ref kv[2] = {field(b, "key", false, T_INT, int_type(b, 32, true), NULL, 0),
                  field(b, "value", true, T_LIST, empty_table(b), &item, 1)};
  fb_ref entries = field(b, "entries", false, T_STRUCT, empty_table(b), kv, 2);
  fb_table_start(b);
  fb_add_u8(b, 0, 0); /* keysSorted */
  fb_ref map = fb_table_end(b);
  return field(b, "int32_to_int32_list_map", true, T_MAP, map, &entries, 1);
}

static fb_ref union_field(fb_builder *b) {
  fb_ref item = field(b, "item", true, T_UTF8, empty_table(b), NULL, 0);
  fb_ref members[6] = {
      field(b, "string_value", true, T_UTF8, empty_table(b), NULL, 0),
      field(b, "bool_value", true, T_BOOL, empty_table(b), NULL, 0),
      field(b, "bigint_value", true, T_INT, int_type(b, 64, true), NULL, 0),
      field(b, "int32_bitmask", true, T_INT, int_type(b, 32, true), NULL, 0),
      field(b, "string_list", true, T_LIST, empty_table(b), &item, 1),
      map_member(b),
  };
  static const int32_t type_ids[6] = {0, 1, 2, 3, 4, 5};
  fb_ref ids = fb_struct_vector(b, type_ids, 6, 4, 4);
  fb_table_start(b);
  fb_add_i16(b, 0, 1); /* mode: Dense */
  fb_add_ref(b, 1, ids);
  fb_ref u = fb_table_end(b);
  return field(b, "value", false, T_UNION, u, members, 6);
}

static fb_ref message(fb_builder *b, uint8_t header_type, fb_ref header, int64_t body_len) {
  fb_table_start(b);
  fb_add_i64(b, 3, body_len);
  fb_add_ref(b, 2, header);
  fb_add_i16(b, 0, 4); /* MetadataVersion V5 */
  fb_add_u8(b, 1, header_type);
  return fb_table_end(b);
}

/* The raw Schema message flatbuffer, appended to out. */
static int schema_message(sp_buf *out, sp_error *err) {
  fb_builder b = {0};
  fb_ref cols[2] = {field(&b, "info_name", false, T_INT, int_type(&b, 32, false), NULL, 0), union_field(&b)};
  fb_ref fields = fb_ref_vector(&b, cols, 2);
  fb_table_start(&b);
  fb_add_ref(&b, 1, fields);
  fb_add_i16(&b, 0, 0);
  fb_ref schema = fb_table_end(&b);
  const uint8_t *data;
  size_t len;
  int rc = fb_finish(&b, message(&b, H_SCHEMA, schema, 0), &data, &len, err);
  if (rc == SP_OK && sp_buf_append(out, data, len) != SP_OK) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  fb_free(&b);
  return rc;
}

/* ---- Record batch --------------------------------------------------------------------------------------- */

typedef struct { int64_t length, null_count; } fb_node;
typedef struct { int64_t offset, length; } fb_buffer;

#define N_NODES 13
#define N_BUFS 27

typedef struct body {
  sp_buf data;
  fb_node nodes[N_NODES];
  fb_buffer bufs[N_BUFS];
  int n_nodes, n_bufs;
  bool oom;
} body;

static void node(body *w, int64_t length) {
  w->nodes[w->n_nodes++] = (fb_node){length, 0};
}

static void buffer(body *w, const void *p, size_t len) {
  static const uint8_t zeros[8] = {0};
  w->bufs[w->n_bufs++] = (fb_buffer){(int64_t)w->data.len, (int64_t)len};
  if (len == 0) return;
  if (sp_buf_append(&w->data, p, len) != SP_OK || sp_buf_append(&w->data, zeros, (8 - len % 8) % 8) != SP_OK)
    w->oom = true;
}

/* An empty member: `n_extra` more buffers after validity (a zero offset for offsets buffers). */
static void empty(body *w, int n_extra, bool offsets) {
  static const int32_t zero = 0;
  node(w, 0);
  buffer(w, NULL, 0);
  for (int i = 0; i < n_extra; i++) buffer(w, offsets && i == 0 ? &zero : NULL, offsets && i == 0 ? 4 : 0);
}

/* The rows `pick` (indices into infos) as one batch body. */
static void fill_body(body *w, const size_t *pick, size_t n) {
  uint32_t ids[N_INFOS];
  int8_t types[N_INFOS];
  int32_t offs[N_INFOS], str_offs[N_INFOS + 1] = {0}, ints[N_INFOS];
  uint8_t bools[(N_INFOS + 7) / 8 + 1] = {0};
  char chars[256];
  size_t ns = 0, nb = 0, ni = 0, nc = 0;
  for (size_t r = 0; r < n; r++) {
    const info *in = &infos[pick[r]];
    ids[r] = in->id;
    types[r] = (int8_t)in->kind;
    if (in->kind == V_STRING) {
      size_t l = strlen(in->s);
      memcpy(chars + nc, in->s, l);
      nc += l;
      offs[r] = (int32_t)ns++;
      str_offs[ns] = (int32_t)nc;
    } else if (in->kind == V_BOOL) {
      if (in->i) bools[nb >> 3] |= (uint8_t)(1u << (nb & 7));
      offs[r] = (int32_t)nb++;
    } else {
      offs[r] = (int32_t)ni;
      ints[ni++] = in->i;
    }
  }
  node(w, (int64_t)n), buffer(w, NULL, 0), buffer(w, ids, 4 * n);         /* info_name */
  node(w, (int64_t)n), buffer(w, types, n), buffer(w, offs, 4 * n);       /* value (dense union) */
  node(w, (int64_t)ns), buffer(w, NULL, 0), buffer(w, str_offs, 4 * (ns + 1)), buffer(w, chars, nc);
  node(w, (int64_t)nb), buffer(w, NULL, 0), buffer(w, bools, (nb + 7) / 8);
  empty(w, 1, false);                                                     /* bigint_value */
  node(w, (int64_t)ni), buffer(w, NULL, 0), buffer(w, ints, 4 * ni);      /* int32_bitmask */
  empty(w, 1, true), empty(w, 2, true);                                   /* string_list, item */
  empty(w, 1, true), empty(w, 0, false);                                  /* map, entries */
  empty(w, 1, false), empty(w, 1, true), empty(w, 1, false);              /* key, value, item */
}

static int batch_message(const body *w, size_t rows, sp_buf *out, sp_error *err) {
  fb_builder b = {0};
  fb_ref nodes = fb_struct_vector(&b, w->nodes, (size_t)w->n_nodes, sizeof w->nodes[0], 8);
  fb_ref bufs = fb_struct_vector(&b, w->bufs, (size_t)w->n_bufs, sizeof w->bufs[0], 8);
  fb_table_start(&b);
  fb_add_i64(&b, 0, (int64_t)rows);
  fb_add_ref(&b, 1, nodes);
  fb_add_ref(&b, 2, bufs);
  fb_ref rb = fb_table_end(&b);
  const uint8_t *data;
  size_t len;
  int rc = fb_finish(&b, message(&b, H_RECORD_BATCH, rb, (int64_t)w->data.len), &data, &len, err);
  if (rc == SP_OK && sp_buf_append(out, data, len) != SP_OK) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  fb_free(&b);
  return rc;
}

/* ---- Commands ------------------------------------------------------------------------------------------- */

int sp__flight_sqlinfo_schema(sp_buf *out, sp_error *err) {
  sp_buf raw = {0};
  int rc = schema_message(&raw, err);
  uint32_t head[2] = {0xFFFFFFFFu, (uint32_t)raw.len}; /* encapsulated: fb_finish padded it to 8 */
  if (rc == SP_OK && (sp_buf_append(out, head, 8) != SP_OK || sp_buf_append(out, raw.data, raw.len) != SP_OK))
    rc = sp_fail(err, SP_ENOMEM, "out of memory");
  sp_buf_free(&raw);
  return rc;
}

/* The infos asked for (all when the request names none), in the order asked; unknown ids are left out. */
static int pick_infos(sp_pb_bytes value, size_t *pick, size_t *n, sp_error *err) {
  uint64_t want[256];
  size_t nw;
  SP_TRY(sp_flight_varints(value.data, value.len, 1, want, 256, &nw, err));
  *n = 0;
  for (size_t i = 0; i < (nw ? nw : N_INFOS); i++)
    for (size_t k = 0; k < N_INFOS && *n < N_INFOS; k++)
      if (nw ? infos[k].id == want[i] : k == i) {
        pick[(*n)++] = k;
        break;
      }
  return SP_OK;
}

static int send_message(fl_call *c, const sp_buf *header, const sp_buf *data, sp_error *err) {
  sp_buf prefix = {0};
  SP_TRY(sp_flight_encode_data_prefix((const uint8_t *)header->data, header->len, data ? data->len : 0, &prefix, err));
  grpc_slice sl[2] = {grpc_slice_from_copied_buffer(prefix.data, prefix.len),
                      grpc_slice_from_copied_buffer(data && data->data ? data->data : "", data ? data->len : 0)};
  int ok = sp__flight_send(c, sl, data && data->len ? 2 : 1, -1);
  grpc_slice_unref(sl[0]);
  grpc_slice_unref(sl[1]);
  sp_buf_free(&prefix);
  return ok ? SP_OK : sp_fail(err, SP_ECANCELED, "DoGet: the client went away");
}

void sp__flight_sqlinfo_get(fl_call *c, sp_pb_bytes value) {
  sp_error err = {0};
  size_t pick[N_INFOS], n = 0;
  body w = {0};
  sp_buf schema = {0}, batch = {0};
  int rc = pick_infos(value, pick, &n, &err);
  if (rc == SP_OK) rc = schema_message(&schema, &err);
  if (rc == SP_OK) fill_body(&w, pick, n);
  if (rc == SP_OK && w.oom) rc = sp_fail(&err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK) rc = batch_message(&w, n, &batch, &err);
  if (rc == SP_OK) rc = send_message(c, &schema, NULL, &err);
  if (rc == SP_OK) rc = send_message(c, &batch, &w.data, &err);
  if (rc == SP_OK) sp__flight_status(c, GRPC_STATUS_OK, "");
  else if (rc != SP_ECANCELED) sp__flight_error(c, &err);
  sp_buf_free(&w.data);
  sp_buf_free(&schema);
  sp_buf_free(&batch);
}
