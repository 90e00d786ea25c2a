/* SPDX-License-Identifier: Apache-2.0
 *
 * A reader of Parquet's FileMetaData in the Thrift compact protocol (see parquet_footer.h), written for
 * untrusted bytes: every read is bounds-checked, lists cannot claim more elements than bytes remain, nesting
 * is limited, and a field of an unexpected type is an error rather than a guess. Fields it does not need are
 * skipped by their wire type, so footers from newer writers still parse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/parquet_footer.h"

enum { MAX_DEPTH = 32 };

/* Compact protocol wire types. */
enum { CT_STOP = 0, CT_TRUE = 1, CT_FALSE = 2, CT_BYTE = 3, CT_I16 = 4, CT_I32 = 5, CT_I64 = 6, CT_DOUBLE = 7,
       CT_BINARY = 8, CT_LIST = 9, CT_SET = 10, CT_MAP = 11, CT_STRUCT = 12 };

typedef struct rd {
  const uint8_t *base, *p, *end;
  int depth;
  sp_error *err;
} rd;

static int bad(rd *r, const char *what) {
  return sp_fail(r->err, SP_EINVAL, "malformed Parquet footer at byte %zu: %s", (size_t)(r->p - r->base), what);
}

static int varint(rd *r, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end) return bad(r, "truncated number");
    uint8_t b = *r->p++;
    if (shift == 63 && (b & 0x7e)) return bad(r, "number too large");
    v |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *out = v;
      return SP_OK;
    }
  }
  return bad(r, "number too long");
}

static int zigzag(rd *r, int64_t *out) {
  uint64_t u;
  SP_TRY(varint(r, &u));
  *out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
  return SP_OK;
}

/* An integer field of wire type `type`, which must be one of the integer types. */
static int int_of(rd *r, int type, int64_t *out) {
  if (type == CT_BYTE) {
    if (r->p >= r->end) return bad(r, "truncated byte");
    *out = (int8_t)*r->p++;
    return SP_OK;
  }
  if (type != CT_I16 && type != CT_I32 && type != CT_I64) return bad(r, "an integer field of another type");
  return zigzag(r, out);
}

/* A binary field: *p points into the input, *n bytes. */
static int binary(rd *r, const uint8_t **p, uint32_t *n) {
  uint64_t len;
  SP_TRY(varint(r, &len));
  if (len > (uint64_t)(r->end - r->p)) return bad(r, "a string longer than the footer");
  *p = r->p;
  *n = (uint32_t)len;
  r->p += len;
  return SP_OK;
}

/* A list header: element type and count; the count cannot exceed the bytes left (no element takes none). */
static int list_header(rd *r, int *elem, uint64_t *n) {
  if (r->p >= r->end) return bad(r, "truncated list");
  uint8_t b = *r->p++;
  *elem = b & 15;
  *n = b >> 4;
  if (*n == 15) SP_TRY(varint(r, n));
  if (*n > (uint64_t)(r->end - r->p)) return bad(r, "a list longer than the footer");
  return SP_OK;
}

/* The next field of a struct: *type CT_STOP at its end. Field ids are deltas from the previous one. */
static int field(rd *r, int64_t *id, int *type) {
  if (r->p >= r->end) return bad(r, "truncated struct");
  uint8_t b = *r->p++;
  *type = b & 15;
  if (*type == CT_STOP) return SP_OK;
  int delta = b >> 4;
  if (delta) *id += delta;
  else SP_TRY(zigzag(r, id));
  return SP_OK;
}

static int skip(rd *r, int type, bool in_list);

static int skip_struct(rd *r) {
  if (++r->depth > MAX_DEPTH) return bad(r, "nested too deeply");
  int64_t id = 0;
  int type = CT_STOP;
  for (;;) {
    SP_TRY(field(r, &id, &type));
    if (type == CT_STOP) break;
    SP_TRY(skip(r, type, false));
  }
  r->depth--;
  return SP_OK;
}

/* Skips a value of wire type `type`. A boolean field carries its value in the type; in a list it is a byte. */
static int skip(rd *r, int type, bool in_list) {
  uint64_t n;
  int64_t ignored;
  const uint8_t *p;
  uint32_t len;
  int elem;
  switch (type) {
  case CT_TRUE:
  case CT_FALSE:
    if (!in_list) return SP_OK;
    /* fall through */
  case CT_BYTE:
    if (r->p >= r->end) return bad(r, "truncated byte");
    r->p++;
    return SP_OK;
  case CT_I16:
  case CT_I32:
  case CT_I64:
    return zigzag(r, &ignored);
  case CT_DOUBLE:
    if (r->end - r->p < 8) return bad(r, "truncated double");
    r->p += 8;
    return SP_OK;
  case CT_BINARY:
    return binary(r, &p, &len);
  case CT_LIST:
  case CT_SET:
    SP_TRY(list_header(r, &elem, &n));
    if (++r->depth > MAX_DEPTH) return bad(r, "nested too deeply");
    for (uint64_t i = 0; i < n; i++) SP_TRY(skip(r, elem, true));
    r->depth--;
    return SP_OK;
  case CT_MAP:
    SP_TRY(varint(r, &n));
    if (n == 0) return SP_OK;
    if (n > (uint64_t)(r->end - r->p) / 2 || r->p >= r->end) return bad(r, "a map longer than the footer");
    elem = *r->p++;
    if (++r->depth > MAX_DEPTH) return bad(r, "nested too deeply");
    for (uint64_t i = 0; i < n; i++) {
      SP_TRY(skip(r, elem >> 4, true));
      SP_TRY(skip(r, elem & 15, true));
    }
    r->depth--;
    return SP_OK;
  case CT_STRUCT:
    return skip_struct(r);
  default:
    return bad(r, "an unknown field type");
  }
}

/* ---- Schema --------------------------------------------------------------------------------------------------- */

/* One SchemaElement, as far as it matters here. */
typedef struct elem {
  const uint8_t *name;
  uint32_t name_len;
  int64_t type, repetition, num_children, converted; /* -1: absent */
  int64_t logical;  /* the LogicalType union's field id, -1: absent */
  bool int_signed;  /* LogicalType INTEGER: isSigned */
} elem;

enum { CONV_UTF8 = 0, CONV_DATE = 6, CONV_INT_8 = 15, CONV_INT_64 = 18 };
enum { LT_STRING = 1, LT_DATE = 6, LT_INTEGER = 10 };
enum { REP_REPEATED = 2 };

/* IntType { 1: i8 bitWidth, 2: bool isSigned } */
static int parse_int_type(rd *r, elem *e) {
  int64_t id = 0, v;
  int type = CT_STOP;
  for (;;) {
    SP_TRY(field(r, &id, &type));
    if (type == CT_STOP) return SP_OK;
    if (id == 2 && (type == CT_TRUE || type == CT_FALSE)) e->int_signed = type == CT_TRUE;
    else if (id == 1) SP_TRY(int_of(r, type, &v));
    else SP_TRY(skip(r, type, false));
  }
}

/* LogicalType is a union: the id of the one field set says the type. */
static int parse_logical(rd *r, elem *e) {
  if (++r->depth > MAX_DEPTH) return bad(r, "nested too deeply");
  int64_t id = 0;
  int type = CT_STOP;
  for (;;) {
    SP_TRY(field(r, &id, &type));
    if (type == CT_STOP) break;
    e->logical = id;
    if (id == LT_INTEGER && type == CT_STRUCT) SP_TRY(parse_int_type(r, e));
    else SP_TRY(skip(r, type, false));
  }
  r->depth--;
  return SP_OK;
}

static int parse_elem(rd *r, elem *e) {
  *e = (elem){.type = -1, .repetition = -1, .num_children = -1, .converted = -1, .logical = -1};
  int64_t id = 0;
  int type = CT_STOP;
  bool named = false;
  for (;;) {
    SP_TRY(field(r, &id, &type));
    if (type == CT_STOP) break;
    switch (id) {
    case 1: SP_TRY(int_of(r, type, &e->type)); break;
    case 3: SP_TRY(int_of(r, type, &e->repetition)); break;
    case 4:
      if (type != CT_BINARY) return bad(r, "a schema name that is no string");
      SP_TRY(binary(r, &e->name, &e->name_len));
      named = true;
      break;
    case 5: SP_TRY(int_of(r, type, &e->num_children)); break;
    case 6: SP_TRY(int_of(r, type, &e->converted)); break;
    case 10:
      if (type != CT_STRUCT) return bad(r, "a logical type that is no struct");
      SP_TRY(parse_logical(r, e));
      break;
    default: SP_TRY(skip(r, type, false));
    }
  }
  if (!named) return bad(r, "a schema element without a name");
  if (e->num_children < -1 || (e->num_children <= 0 && (e->type < SP_PQ_BOOLEAN || e->type > SP_PQ_FIXED_LEN_BYTE_ARRAY)))
    return bad(r, "a schema element that is neither a group nor of a known type");
  return SP_OK;
}

static sp_pq_kind kind_of(const elem *e) {
  if (e->logical >= 0) {
    if (e->logical == LT_INTEGER && e->int_signed && (e->type == SP_PQ_INT32 || e->type == SP_PQ_INT64)) return SP_PQ_KIND_INT;
    if (e->logical == LT_DATE && e->type == SP_PQ_INT32) return SP_PQ_KIND_DATE;
    if (e->logical == LT_STRING && e->type == SP_PQ_BYTE_ARRAY) return SP_PQ_KIND_STRING;
    return SP_PQ_KIND_OTHER;
  }
  if (e->converted >= 0) {
    if (e->converted >= CONV_INT_8 && e->converted <= CONV_INT_64 && (e->type == SP_PQ_INT32 || e->type == SP_PQ_INT64))
      return SP_PQ_KIND_INT;
    if (e->converted == CONV_DATE && e->type == SP_PQ_INT32) return SP_PQ_KIND_DATE;
    if (e->converted == CONV_UTF8 && e->type == SP_PQ_BYTE_ARRAY) return SP_PQ_KIND_STRING;
    return SP_PQ_KIND_OTHER;
  }
  if (e->type == SP_PQ_INT32 || e->type == SP_PQ_INT64) return SP_PQ_KIND_INT;
  return e->type == SP_PQ_DOUBLE ? SP_PQ_KIND_DOUBLE : SP_PQ_KIND_OTHER;
}

/* Adds the leaves of the subtree at els[*pos] (a child of top-level column `top`, or that column itself). */
static int walk(rd *r, const elem *els, size_t n, size_t *pos, int top, int depth, sp_pq_meta *m) {
  if (*pos >= n) return bad(r, "the schema has fewer elements than its groups claim");
  if (depth > MAX_DEPTH) return bad(r, "a schema nested too deeply");
  const elem *e = &els[(*pos)++];
  if (e->num_children > 0) {
    if ((uint64_t)e->num_children > n - *pos) return bad(r, "a group with more children than the schema has");
    for (int64_t i = 0; i < e->num_children; i++) SP_TRY(walk(r, els, n, pos, top, depth + 1, m));
    return SP_OK;
  }
  m->leaves[m->n_leaves++] = (sp_pq_leaf){
      .top = top,
      .type = (sp_pq_type)e->type,
      .kind = kind_of(e),
      .flat = depth == 0 && e->repetition != REP_REPEATED,
  };
  return SP_OK;
}

/* The schema list: top-level names and the leaves in depth-first order (the order of column chunks). */
static int parse_schema(rd *r, sp_pq_meta *m) {
  int et = CT_STOP;
  uint64_t n;
  SP_TRY(list_header(r, &et, &n));
  if (et != CT_STRUCT || n == 0) return bad(r, "a schema that is no list of elements");
  elem *els = calloc(n, sizeof *els);
  m->leaves = calloc(n, sizeof *m->leaves);
  m->top = calloc(n, sizeof *m->top);
  if (els == NULL || m->leaves == NULL || m->top == NULL) {
    free(els);
    return sp_fail(r->err, SP_ENOMEM, "out of memory");
  }
  int rc = SP_OK;
  for (uint64_t i = 0; rc == SP_OK && i < n; i++) rc = parse_elem(r, &els[i]);
  if (rc == SP_OK && els[0].num_children < 0) rc = bad(r, "a schema without a root group");
  size_t pos = 1;
  for (int64_t t = 0; rc == SP_OK && t < els[0].num_children; t++) {
    if (pos >= n) {
      rc = bad(r, "the schema has fewer elements than its root claims");
    } else if ((m->top[m->n_top] = strndup((const char *)els[pos].name, els[pos].name_len)) == NULL) {
      rc = sp_fail(r->err, SP_ENOMEM, "out of memory");
    } else {
      m->n_top++;
      rc = walk(r, els, n, &pos, (int)t, 0, m);
    }
  }
  if (rc == SP_OK && pos != n) rc = bad(r, "the schema has elements outside its root");
  if (rc == SP_OK && m->n_leaves == 0) rc = bad(r, "a schema without columns");
  free(els);
  return rc;
}

/* ---- Row groups --------------------------------------------------------------------------------------------- */

/* Statistics: null_count (3), max_value (5), min_value (6), nan_count (9); the deprecated min/max (1, 2) were
 * compared signed, so they are not used. */
static int parse_stats(rd *r, sp_pq_chunk *c) {
  if (++r->depth > MAX_DEPTH) return bad(r, "nested too deeply");
  int64_t id = 0;
  int type = CT_STOP;
  for (;;) {
    SP_TRY(field(r, &id, &type));
    if (type == CT_STOP) break;
    if ((id == 5 || id == 6) && type != CT_BINARY) return bad(r, "a statistic that is no string");
    if (id == 3) SP_TRY(int_of(r, type, &c->null_count));
    else if (id == 9) SP_TRY(int_of(r, type, &c->nan_count));
    else if (id == 5) SP_TRY(binary(r, &c->max, &c->max_len));
    else if (id == 6) SP_TRY(binary(r, &c->min, &c->min_len));
    else SP_TRY(skip(r, type, false));
  }
  r->depth--;
  if (c->null_count < -1 || c->nan_count < -1) return bad(r, "a negative count");
  return SP_OK;
}

typedef struct chunk_fields {
  int64_t type, num_values, total, data_off, dict_off; /* -1: absent */
} chunk_fields;

static int parse_column_meta(rd *r, sp_pq_chunk *c, chunk_fields *f) {
  if (++r->depth > MAX_DEPTH) return bad(r, "nested too deeply");
  int64_t id = 0;
  int type = CT_STOP;
  for (;;) {
    SP_TRY(field(r, &id, &type));
    if (type == CT_STOP) break;
    switch (id) {
    case 1: SP_TRY(int_of(r, type, &f->type)); break;
    case 5: SP_TRY(int_of(r, type, &f->num_values)); break;
    case 7: SP_TRY(int_of(r, type, &f->total)); break;
    case 9: SP_TRY(int_of(r, type, &f->data_off)); break;
    case 11: SP_TRY(int_of(r, type, &f->dict_off)); break;
    case 14: SP_TRY(int_of(r, type, &c->bloom_start)); break;
    case 15: SP_TRY(int_of(r, type, &c->bloom_len)); break;
    case 12:
      if (type != CT_STRUCT) return bad(r, "statistics that are no struct");
      SP_TRY(parse_stats(r, c));
      break;
    default: SP_TRY(skip(r, type, false));
    }
  }
  r->depth--;
  return SP_OK;
}

/* True when [start, start + len) lies in [4, end): after the leading "PAR1", before the footer. */
static bool inside(int64_t start, int64_t len, int64_t end) {
  return start >= 4 && len >= 0 && start <= end && len <= end - start;
}

/* Checks a chunk's fields and sets its range the way readers find it (see sp_pq_chunk.start). */
static int check_chunk(rd *r, sp_pq_chunk *c, const chunk_fields *f, const sp_pq_leaf *leaf, int64_t data_end) {
  if (f->type < 0 || f->num_values < 0 || f->total < 0 || f->data_off < 0)
    return bad(r, "column metadata without its type, value count, size or data page offset");
  if (f->type != (int64_t)leaf->type) return bad(r, "a column chunk whose type is not its column's");
  c->num_values = f->num_values;
  c->start = f->dict_off >= 4 ? f->dict_off : f->data_off;
  c->len = f->total;
  if (!inside(c->start, c->len, data_end)) return bad(r, "a column chunk outside the file");
  if (c->bloom_len < -1 || (c->bloom_start == -1 && c->bloom_len != -1)) return bad(r, "a bloom filter length without an offset");
  if (c->bloom_start != -1 && !inside(c->bloom_start, c->bloom_len < 0 ? 0 : c->bloom_len, data_end))
    return bad(r, "a bloom filter outside the file");
  return SP_OK;
}

/* ColumnChunk: file_path (1) and encryption (8, 9) are not for a ranged read; meta_data (3) is needed. */
static int parse_chunk(rd *r, sp_pq_chunk *c, const sp_pq_leaf *leaf, int64_t data_end) {
  if (++r->depth > MAX_DEPTH) return bad(r, "nested too deeply");
  *c = (sp_pq_chunk){.bloom_start = -1, .bloom_len = -1, .null_count = -1, .nan_count = -1};
  chunk_fields f = {-1, -1, -1, -1, -1};
  int64_t id = 0;
  int type = CT_STOP;
  bool has_meta = false;
  for (;;) {
    SP_TRY(field(r, &id, &type));
    if (type == CT_STOP) break;
    if (id == 1 || id == 8 || id == 9)
      return sp_fail(r->err, SP_ENOTSUP, "the Parquet file has encrypted columns or column data in other files");
    if (id == 3) {
      if (type != CT_STRUCT) return bad(r, "column metadata that is no struct");
      SP_TRY(parse_column_meta(r, c, &f));
      has_meta = true;
    } else {
      SP_TRY(skip(r, type, false));
    }
  }
  r->depth--;
  if (!has_meta) return bad(r, "a column chunk without metadata");
  return check_chunk(r, c, &f, leaf, data_end);
}

static int parse_row_group(rd *r, sp_pq_meta *m, sp_pq_row_group *g, int64_t data_end) {
  g->span_start = (size_t)(r->p - r->base);
  g->num_rows = -1;
  int64_t id = 0;
  int type = CT_STOP, et = CT_STOP;
  uint64_t n;
  for (;;) {
    SP_TRY(field(r, &id, &type));
    if (type == CT_STOP) break;
    if (id == 3) {
      SP_TRY(int_of(r, type, &g->num_rows));
    } else if (id == 1) {
      if (type != CT_LIST || g->chunks) return bad(r, "row group columns that are no list");
      SP_TRY(list_header(r, &et, &n));
      if (et != CT_STRUCT || n != m->n_leaves) return bad(r, "a row group whose columns are not the schema's");
      if ((g->chunks = calloc(n, sizeof *g->chunks)) == NULL) return sp_fail(r->err, SP_ENOMEM, "out of memory");
      for (uint64_t i = 0; i < n; i++) SP_TRY(parse_chunk(r, &g->chunks[i], &m->leaves[i], data_end));
    } else {
      SP_TRY(skip(r, type, false));
    }
  }
  g->span_end = (size_t)(r->p - r->base);
  if (g->chunks == NULL || g->num_rows < 0) return bad(r, "a row group without columns or row count");
  return SP_OK;
}

static int parse_row_groups(rd *r, sp_pq_meta *m, int64_t data_end) {
  int et = CT_STOP;
  uint64_t n;
  if (m->n_leaves == 0) return bad(r, "row groups before the schema");
  m->rgs_at = (size_t)(r->p - r->base);
  SP_TRY(list_header(r, &et, &n));
  if (et != CT_STRUCT && n > 0) return bad(r, "row groups that are no structs");
  if (n && (m->rgs = calloc(n, sizeof *m->rgs)) == NULL) return sp_fail(r->err, SP_ENOMEM, "out of memory");
  int64_t rows = 0;
  if (++r->depth > MAX_DEPTH) return bad(r, "nested too deeply");
  for (uint64_t i = 0; i < n; i++) {
    m->n_rgs++;
    SP_TRY(parse_row_group(r, m, &m->rgs[i], data_end));
    if (m->rgs[i].num_rows > INT64_MAX - rows) return bad(r, "row counts that overflow");
    rows += m->rgs[i].num_rows;
  }
  r->depth--;
  m->rgs_end = (size_t)(r->p - r->base);
  return SP_OK;
}

/* column_orders: one ColumnOrder union per leaf; TYPE_ORDER (1) makes min_value / max_value usable. */
static int parse_column_orders(rd *r, sp_pq_meta *m) {
  int et = CT_STOP;
  uint64_t n;
  SP_TRY(list_header(r, &et, &n));
  if (n != m->n_leaves || (n && et != CT_STRUCT)) return bad(r, "column orders that do not match the columns");
  for (uint64_t i = 0; i < n; i++) {
    int64_t id = 0;
    int type = CT_STOP;
    bool type_order = false, other = false;
    for (;;) {
      SP_TRY(field(r, &id, &type));
      if (type == CT_STOP) break;
      if (id == 1) type_order = true;
      else other = true;
      SP_TRY(skip(r, type, false));
    }
    m->leaves[i].ordered = type_order && !other;
  }
  return SP_OK;
}

/* ---- FileMetaData -------------------------------------------------------------------------------------------- */

static int parse_file_meta(rd *r, sp_pq_meta *m, int64_t data_end) {
  int64_t id = 0;
  int type = CT_STOP;
  bool has_rows = false, has_rgs = false, has_orders = false;
  for (;;) {
    SP_TRY(field(r, &id, &type));
    if (type == CT_STOP) break;
    if (id == 2) {
      if (type != CT_LIST || m->n_leaves) return bad(r, "a schema that is no list");
      SP_TRY(parse_schema(r, m));
    } else if (id == 3) {
      m->num_rows_at = (size_t)(r->p - r->base);
      SP_TRY(int_of(r, type, &m->num_rows));
      if (type != CT_I64 || has_rgs || m->num_rows < 0) return bad(r, "a row count that is no i64, negative, or after the row groups");
      m->num_rows_end = (size_t)(r->p - r->base);
      has_rows = true;
    } else if (id == 4) {
      if (type != CT_LIST || has_rgs) return bad(r, "row groups that are no list");
      SP_TRY(parse_row_groups(r, m, data_end));
      has_rgs = true;
    } else if (id == 7) {
      if (type != CT_LIST || m->n_leaves == 0 || has_orders) return bad(r, "column orders that are no list, or before the schema");
      SP_TRY(parse_column_orders(r, m));
      has_orders = true;
    } else if (id == 8) {
      return sp_fail(r->err, SP_ENOTSUP, "the Parquet file is encrypted");
    } else {
      SP_TRY(skip(r, type, false));
    }
  }
  if (!has_rows || !has_rgs) return bad(r, "no row count or no row groups");
  /* Without column_orders, min_value / max_value still bound the values for the kinds pruned on: integers,
   * dates and doubles have one order, and UTF8 strings are compared byte-wise (the signed order only ever
   * applied to the deprecated min / max fields, which are not read). */
  for (size_t i = 0; !has_orders && i < m->n_leaves; i++) m->leaves[i].ordered = true;
  return SP_OK;
}

int sp__pq_footer_length(const uint8_t tail[SP_PQ_TAIL], int64_t file_size, uint32_t *len, sp_error *err) {
  if (memcmp(tail + 4, "PARE", 4) == 0) return sp_fail(err, SP_ENOTSUP, "the Parquet file has an encrypted footer");
  if (memcmp(tail + 4, "PAR1", 4) != 0) return sp_fail(err, SP_EINVAL, "not a Parquet file (no PAR1 at its end)");
  uint32_t n = (uint32_t)tail[0] | (uint32_t)tail[1] << 8 | (uint32_t)tail[2] << 16 | (uint32_t)tail[3] << 24;
  if (n == 0 || file_size < 12 || (int64_t)n > file_size - 12)
    return sp_fail(err, SP_EINVAL, "a Parquet footer of %u bytes cannot fit in a file of %lld bytes", n, (long long)file_size);
  *len = n;
  return SP_OK;
}

int sp__pq_meta_parse(const uint8_t *buf, size_t len, int64_t data_end, sp_pq_meta **out, sp_error *err) {
  sp_pq_meta *m = calloc(1, sizeof *m);
  if (m == NULL || (m->raw = malloc(len ? len : 1)) == NULL) {
    free(m);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  if (len) memcpy(m->raw, buf, len);
  m->raw_len = len;
  m->data_end = data_end;
  rd r = {.base = m->raw, .p = m->raw, .end = m->raw + len, .err = err};
  int rc = parse_file_meta(&r, m, data_end);
  if (rc != SP_OK) {
    sp__pq_meta_free(m);
    return rc;
  }
  *out = m;
  return SP_OK;
}

void sp__pq_meta_free(sp_pq_meta *m) {
  if (m == NULL) return;
  for (size_t i = 0; i < m->n_top; i++) free(m->top[i]);
  for (size_t i = 0; i < m->n_rgs; i++) free(m->rgs[i].chunks);
  free(m->top);
  free(m->leaves);
  free(m->rgs);
  free(m->raw);
  free(m);
}

/* ---- Writing a subset ------------------------------------------------------------------------------------------ */

static int put_varint(sp_buf *b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  do {
    tmp[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v) tmp[n] |= 0x80;
    n++;
  } while (v);
  return sp_buf_append(b, tmp, n);
}

int sp__pq_footer_subset(const sp_pq_meta *m, const bool *keep, sp_buf *out, sp_error *err) {
  size_t start = out->len, kept = 0;
  int64_t rows = 0;
  for (size_t i = 0; i < m->n_rgs; i++)
    if (keep[i]) kept++, rows += m->rgs[i].num_rows;
  int rc = sp_buf_append(out, m->raw, m->num_rows_at);
  if (rc == SP_OK) rc = put_varint(out, ((uint64_t)rows << 1) ^ (uint64_t)(rows >> 63));
  if (rc == SP_OK) rc = sp_buf_append(out, m->raw + m->num_rows_end, m->rgs_at - m->num_rows_end);
  uint8_t header = (uint8_t)((kept < 15 ? kept : 15) << 4 | CT_STRUCT);
  if (rc == SP_OK) rc = sp_buf_append(out, &header, 1);
  if (rc == SP_OK && kept >= 15) rc = put_varint(out, kept);
  for (size_t i = 0; rc == SP_OK && i < m->n_rgs; i++)
    if (keep[i]) rc = sp_buf_append(out, m->raw + m->rgs[i].span_start, m->rgs[i].span_end - m->rgs[i].span_start);
  if (rc == SP_OK) rc = sp_buf_append(out, m->raw + m->rgs_end, m->raw_len - m->rgs_end);
  size_t flen = out->len - start;
  uint8_t tail[SP_PQ_TAIL] = {(uint8_t)flen, (uint8_t)(flen >> 8), (uint8_t)(flen >> 16), (uint8_t)(flen >> 24),
                              'P', 'A', 'R', '1'};
  if (rc == SP_OK && flen > UINT32_MAX) return sp_fail(err, SP_EINVAL, "a Parquet footer too large to write");
  if (rc == SP_OK) rc = sp_buf_append(out, tail, sizeof tail);
  return rc == SP_OK ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
}
