/* SPDX-License-Identifier: Apache-2.0
 *
 * The engine's table functions over Arrow data (duckdb-arrow-notes.md has the measurements behind this):
 *
 *   sp_arrow_scan('name')   the current snapshot of an arrow-accelerated dataset; pinned per execution (not
 *                           per bind, so re-executed prepared statements see refreshes), parallel over
 *                           batches, projection pushed down.
 *   sp_stream(token)        a one-shot stream registered by internal code (loading accelerators).
 *   sp_source_scan('name')  a federated source: opens a fresh connector stream per execution with only the
 *                           projected columns.
 *
 * Batches become DuckDB vectors with duckdb_data_chunk_from_arrow on <= 2048-row child-level slices, then are
 * referenced into the output chunk, so fixed-width data is not copied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "engine/engine_int.h"

/* ---- An all-null batch, to learn DuckDB's types for an Arrow schema ----------------------------------------- */

typedef struct null_array_priv {
  void *mem[3];
  const void *bufs[3];
  struct ArrowArray **kids;
  int64_t n_kids;
  struct ArrowArray *dict;
} null_array_priv;

static void null_array_release(struct ArrowArray *a) {
  if (a->release == NULL) return;
  null_array_priv *p = a->private_data;
  for (int64_t i = 0; i < p->n_kids; i++) {
    sp_array_release(p->kids[i]);
    free(p->kids[i]);
  }
  free(p->kids);
  if (p->dict) {
    sp_array_release(p->dict);
    free(p->dict);
  }
  for (int i = 0; i < 3; i++) free(p->mem[i]);
  free(p);
  a->release = NULL;
}

/* Builds an array of `len` nulls for `schema`. Returns 0 or -1 (unsupported layout or no memory). */
static int null_array(const struct ArrowSchema *schema, int64_t len, struct ArrowArray *out) {
  sp_arrow_typeinfo t;
  null_array_priv *p = calloc(1, sizeof *p);
  if (p == NULL) return -1;
  memset(out, 0, sizeof *out);
  out->length = len;
  out->null_count = len;
  out->buffers = p->bufs;
  out->private_data = p;
  out->release = null_array_release;
  const char *f = schema->format;
  sp_arrow_parse_format(f, &t);
  size_t zero = (size_t)(len + 1) * 32 + 64;
  int nbuf = 2, nkids = 0;
  int64_t kid_len = 0;
  switch (t.type) {
  case SP_ARROW_NA: nbuf = 0; out->null_count = 0; break;
  case SP_ARROW_UTF8: case SP_ARROW_BINARY: case SP_ARROW_LARGE_UTF8: case SP_ARROW_LARGE_BINARY: nbuf = 3; break;
  case SP_ARROW_UTF8_VIEW: case SP_ARROW_BINARY_VIEW: nbuf = 3; break; /* validity, zeroed views, no variadic sizes */
  case SP_ARROW_STRUCT: nbuf = 1; nkids = (int)schema->n_children; kid_len = len; break;
  case SP_ARROW_LIST: case SP_ARROW_LARGE_LIST: case SP_ARROW_MAP: nbuf = 2; nkids = 1; kid_len = 0; break;
  case SP_ARROW_FIXED_LIST: nbuf = 1; nkids = 1; kid_len = len * t.byte_width; break;
  case SP_ARROW_UNSUPPORTED: null_array_release(out); return -1;
  default: break;
  }
  out->n_buffers = nbuf;
  for (int i = 0; i < nbuf; i++) {
    p->mem[i] = calloc(1, zero);
    if (p->mem[i] == NULL) {
      null_array_release(out);
      return -1;
    }
    p->bufs[i] = p->mem[i];
  }
  if (nkids > 0) {
    p->kids = calloc((size_t)nkids, sizeof *p->kids);
    if (p->kids == NULL) {
      null_array_release(out);
      return -1;
    }
    for (int i = 0; i < nkids; i++, p->n_kids++) {
      p->kids[i] = calloc(1, sizeof **p->kids);
      if (p->kids[i] == NULL || null_array(schema->children[i], kid_len, p->kids[i]) != 0) {
        free(p->kids[i]);
        null_array_release(out);
        return -1;
      }
    }
    out->children = p->kids;
    out->n_children = nkids;
  }
  if (schema->dictionary) {
    p->dict = calloc(1, sizeof *p->dict);
    if (p->dict == NULL || null_array(schema->dictionary, 0, p->dict) != 0) {
      free(p->dict);
      p->dict = NULL;
      null_array_release(out);
      return -1;
    }
    out->dictionary = p->dict;
  }
  return 0;
}

void sp_engine_free_types(duckdb_logical_type *types, int64_t n) {
  if (types == NULL) return;
  for (int64_t i = 0; i < n; i++) duckdb_destroy_logical_type(&types[i]);
  free(types);
}

int sp_engine_convert_schema(sp_engine *e, const struct ArrowSchema *schema, const idx_t *proj, idx_t n,
                             duckdb_arrow_converted_schema *out, sp_error *err) {
  struct ArrowSchema shallow = *schema;
  struct ArrowSchema **kids = malloc((n ? n : 1) * sizeof *kids);
  if (kids == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (idx_t i = 0; i < n; i++) kids[i] = schema->children[proj ? proj[i] : i];
  shallow.children = kids;
  shallow.n_children = (int64_t)n;
  shallow.release = NULL; /* borrowed parts: DuckDB reads, never releases */
  duckdb_error_data ed = duckdb_schema_from_arrow(e->helper, &shallow, out);
  free(kids);
  if (ed != NULL && duckdb_error_data_has_error(ed))
    return sp_engine_fail_error_data(err, SP_ENOTSUP, ed, "unsupported Arrow schema");
  if (ed) duckdb_destroy_error_data(&ed);
  return SP_OK;
}

int sp_engine_arrow_types(sp_engine *e, const struct ArrowSchema *schema, duckdb_logical_type **out_types,
                          sp_error *err) {
  int64_t n = schema->n_children;
  struct ArrowArray batch;
  duckdb_arrow_converted_schema conv = NULL;
  duckdb_data_chunk chunk = NULL;
  if (null_array(schema, 1, &batch) != 0) return sp_fail(err, SP_ENOTSUP, "unsupported Arrow type in schema");
  batch.null_count = 0; /* the struct itself is valid; its fields are null */
  int rc = sp_engine_convert_schema(e, schema, NULL, (idx_t)n, &conv, err);
  if (rc != SP_OK) {
    sp_array_release(&batch);
    return rc;
  }
  duckdb_error_data ed = duckdb_data_chunk_from_arrow(e->helper, &batch, conv, &chunk);
  duckdb_destroy_arrow_converted_schema(&conv);
  if (ed != NULL && duckdb_error_data_has_error(ed)) {
    sp_array_release(&batch);
    return sp_engine_fail_error_data(err, SP_ENOTSUP, ed, "unsupported Arrow data");
  }
  if (ed) duckdb_destroy_error_data(&ed);
  duckdb_logical_type *types = calloc((size_t)(n ? n : 1), sizeof *types);
  if (types == NULL) {
    duckdb_destroy_data_chunk(&chunk);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  for (int64_t i = 0; i < n; i++) types[i] = duckdb_vector_get_column_type(duckdb_data_chunk_get_vector(chunk, (idx_t)i));
  duckdb_destroy_data_chunk(&chunk);
  *out_types = types;
  return SP_OK;
}

/* ---- Slices ------------------------------------------------------------------------------------------- */

typedef struct slice {
  void (*on_release)(void *);
  void *ctx;
  idx_t n;
  const void *pbuf[1];
  struct ArrowArray *kidp[];  /* followed by the n child structs */
} slice;

static void noop_release(struct ArrowArray *a) { a->release = NULL; }

static void slice_release(struct ArrowArray *a) {
  if (a->release == NULL) return;
  slice *s = a->private_data;
  if (s->on_release) s->on_release(s->ctx);
  free(s);
  a->release = NULL;
}

/* The exact null count of a sliced array (offset, length set): DuckDB reads a dictionary column's validity only
 * when null_count > 0, so "unknown" (-1) would turn its NULLs into the dictionary's first value. */
static int64_t slice_nulls(const struct ArrowArray *a) {
  if (a->n_buffers == 0) return a->length; /* the null type */
  const uint8_t *v = a->buffers[0];
  if (v == NULL) return 0;
  int64_t nulls = 0;
  for (int64_t i = a->offset; i < a->offset + a->length; i++) nulls += !((v[i >> 3] >> (i & 7)) & 1);
  return nulls;
}

int sp_engine_emit_slice(sp_engine *e, duckdb_arrow_converted_schema conv, const struct ArrowArray *batch,
                         const idx_t *proj, idx_t nproj, int64_t off, int64_t n, void (*on_release)(void *),
                         void *ctx, duckdb_data_chunk out, sp_error *err) {
  slice *s = malloc(sizeof *s + nproj * (sizeof(struct ArrowArray *) + sizeof(struct ArrowArray)));
  if (s == NULL) {
    if (on_release) on_release(ctx);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  struct ArrowArray *kids = (struct ArrowArray *)(s->kidp + nproj);
  s->on_release = on_release;
  s->ctx = ctx;
  s->n = nproj;
  s->pbuf[0] = NULL;
  for (idx_t k = 0; k < nproj; k++) {
    /* Slice at the child level: DuckDB ignores a parent offset for data but not for validity. */
    kids[k] = *batch->children[proj[k]];
    kids[k].offset += batch->offset + off;
    kids[k].length = n;
    if (kids[k].null_count != 0) kids[k].null_count = slice_nulls(&kids[k]);
    kids[k].release = noop_release;
    s->kidp[k] = &kids[k];
  }
  struct ArrowArray parent = {.length = n, .null_count = 0, .offset = 0, .n_buffers = 1, .n_children = (int64_t)nproj,
                              .buffers = s->pbuf, .children = s->kidp, .release = slice_release, .private_data = s};
  duckdb_data_chunk tmp = NULL;
  duckdb_error_data ed = duckdb_data_chunk_from_arrow(e->helper, &parent, conv, &tmp);
  if (ed != NULL && duckdb_error_data_has_error(ed)) {
    slice_release(&parent);
    return sp_engine_fail_error_data(err, SP_EINTERNAL, ed, "could not convert Arrow data");
  }
  if (ed) duckdb_destroy_error_data(&ed);
  for (idx_t k = 0; k < nproj; k++)
    duckdb_vector_reference_vector(duckdb_data_chunk_get_vector(out, k), duckdb_data_chunk_get_vector(tmp, k));
  duckdb_data_chunk_set_size(out, (idx_t)n);
  duckdb_destroy_data_chunk(&tmp); /* `out` keeps the buffers (and so the slice) alive */
  return SP_OK;
}

/* ---- Shared bind: read the string argument, declare the columns ------------------------------------------------- */

typedef enum { SCAN_ARROW, SCAN_STREAM, SCAN_SOURCE } scan_kind;

/* A pruning hint of sp_arrow_scan_hint: `column op value`, value in the column's statistics domain. */
typedef enum { HINT_EQ, HINT_LT, HINT_LE, HINT_GT, HINT_GE } hint_op;
typedef struct scan_hint {
  int64_t col;
  hint_op op;
  int is_float;     /* compare against double stats; else int64 stats */
  long double value;
} scan_hint;

typedef struct scan_bind {
  sp_engine *e;
  scan_kind kind;
  char name[SP_ENGINE_MAX_NAME];
  struct ArrowSchema schema;  /* bind-time schema */
  int64_t ncols;
  scan_hint *hints;
  size_t n_hints;
  char *filter_query; /* sp_source_scan_filter: conditions the source may apply */
  volatile int *stop; /* SCAN_SOURCE in a user query: its session's stop flag (borrowed), else NULL */
} scan_bind;

static void scan_bind_free(void *p) {
  scan_bind *b = p;
  sp_schema_release(&b->schema);
  free(b->hints);
  free(b->filter_query);
  free(b);
}

/* Schemas must agree between bind and init (a refresh may change a dataset's schema between them). */
static int same_schema(const struct ArrowSchema *a, const struct ArrowSchema *b) {
  if (strcmp(a->format, b->format) != 0 || a->n_children != b->n_children) return 0;
  if ((a->name == NULL) != (b->name == NULL) || (a->name && strcmp(a->name, b->name) != 0)) return 0;
  for (int64_t i = 0; i < a->n_children; i++)
    if (!same_schema(a->children[i], b->children[i])) return 0;
  return 1;
}

static size_t parse_hints(const char *text, const struct ArrowSchema *schema, scan_hint **out);

/* The stop flag of the user query binding this scan (found by its connection), for the connector's reads. */
static volatile int *query_stop(sp_engine *e, duckdb_bind_info info) {
  duckdb_client_context cc = NULL;
  duckdb_table_function_get_client_context(info, &cc);
  volatile int *stop = cc ? sp_engine_session_stop(e, duckdb_client_context_get_connection_id(cc)) : NULL;
  duckdb_destroy_client_context(&cc);
  return stop;
}

static void scan_bind_common(duckdb_bind_info info, scan_kind kind, const char *hints, const char *filter_query) {
  sp_engine *e = duckdb_bind_get_extra_info(info);
  scan_bind *b = calloc(1, sizeof *b);
  sp_error err = {0};
  if (b == NULL) {
    duckdb_bind_set_error(info, "out of memory");
    return;
  }
  b->e = e;
  b->kind = kind;
  duckdb_value v = duckdb_bind_get_parameter(info, 0);
  char *name = duckdb_get_varchar(v);
  duckdb_destroy_value(&v);
  snprintf(b->name, sizeof b->name, "%s", name ? name : "");
  duckdb_free(name);
  int rc = SP_OK;
  int64_t rows = 0;
  if (kind == SCAN_ARROW) {
    sp_snapshot *s = sp_engine_pin_snapshot(e, b->name);
    if (s == NULL) {
      rc = sp_fail(&err, SP_EBUSY, "dataset \"%s\" has no data yet: its initial load has not completed", b->name);
    } else {
      rc = sp_schema_copy(&b->schema, &s->schema, &err);
      rows = s->rows;
      sp_snapshot_unref(s);
    }
  } else if (kind == SCAN_STREAM) {
    rc = sp_engine_stream_schema(e, b->name, &b->schema, &err);
  } else {
    sp_source_open_fn fn;
    void *ctx;
    rc = sp_engine_find_source(e, b->name, &b->schema, &fn, &ctx, &err);
    b->stop = query_stop(e, info);
  }
  duckdb_logical_type *types = NULL;
  if (rc == SP_OK) rc = sp_engine_arrow_types(e, &b->schema, &types, &err);
  if (rc != SP_OK) {
    duckdb_bind_set_error(info, err.msg);
    scan_bind_free(b);
    return;
  }
  b->ncols = b->schema.n_children;
  for (int64_t i = 0; i < b->ncols; i++) {
    const char *cn = b->schema.children[i]->name;
    duckdb_bind_add_result_column(info, cn && *cn ? cn : "column", types[i]);
  }
  sp_engine_free_types(types, b->ncols);
  if (kind == SCAN_ARROW) duckdb_bind_set_cardinality(info, (idx_t)rows, true);
  if (hints) b->n_hints = parse_hints(hints, &b->schema, &b->hints);
  if (filter_query && *filter_query) b->filter_query = strdup(filter_query);
  duckdb_bind_set_bind_data(info, b, scan_bind_free);
}

static void arrow_bind(duckdb_bind_info info) { scan_bind_common(info, SCAN_ARROW, NULL, NULL); }

/* sp_arrow_scan_hint(name, hints): the same scan, plus pruning hints from sp_engine_prune_rewrite. */
static void arrow_hint_bind(duckdb_bind_info info) {
  duckdb_value v = duckdb_bind_get_parameter(info, 1);
  char *text = duckdb_get_varchar(v);
  duckdb_destroy_value(&v);
  scan_bind_common(info, SCAN_ARROW, text ? text : "", NULL);
  duckdb_free(text);
}

/* ---- Hints ------------------------------------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1, doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* Parses "YYYY-MM-DD[ |T]HH:MM:SS[.ffffff]" into microseconds since the epoch (no zone). */
static int parse_timestamp_us(const char *s, int64_t *out) {
  int y, mo, d, h = 0, mi = 0, n = 0;
  double sec = 0;
  if (sscanf(s, "%d-%d-%d%n", &y, &mo, &d, &n) != 3) return -1;
  const char *p = s + n;
  if (*p == ' ' || *p == 'T') {
    int m = 0;
    if (sscanf(p + 1, "%d:%d:%lf%n", &h, &mi, &sec, &m) != 3 || p[1 + m] != '\0') return -1; /* no zones */
  } else if (*p != '\0') {
    return -1;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return -1;
  *out = (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60) * 1000000 + (int64_t)(sec * 1e6 + (sec >= 0 ? 0.5 : -0.5));
  return 0;
}

/* Converts a hint value into the column's statistics domain. Returns 0, or -1 when the hint cannot be used
 * (the scan then just does not prune on it). */
static int hint_value(const struct ArrowSchema *col, const char *kind, const char *text, scan_hint *h) {
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(col->format, &t);
  int64_t us;
  static const int64_t per_us[] = {1000000, 1000, 1, 1}; /* divisor from µs, by unit s/ms/us; ns multiplies */
  switch (t.type) {
  case SP_ARROW_INT8: case SP_ARROW_INT16: case SP_ARROW_INT32: case SP_ARROW_INT64:
  case SP_ARROW_UINT8: case SP_ARROW_UINT16: case SP_ARROW_UINT32: case SP_ARROW_FLOAT: case SP_ARROW_DOUBLE:
    if (kind[0] != 'n') return -1;
    h->value = strtold(text, NULL);
    h->is_float = t.type == SP_ARROW_FLOAT || t.type == SP_ARROW_DOUBLE;
    return 0;
  case SP_ARROW_DECIMAL32: case SP_ARROW_DECIMAL64:
    if (kind[0] != 'n') return -1;
    h->value = strtold(text, NULL);
    for (int i = 0; i < t.scale; i++) h->value *= 10;
    return 0;
  case SP_ARROW_DATE32:
    if (kind[0] != 's' || parse_timestamp_us(text, &us) != 0) return -1;
    /* A timestamp bound against a date column: DuckDB compares as timestamps, so widen conservatively. */
    h->value = (long double)us / 86400e6L;
    return 0;
  case SP_ARROW_TIMESTAMP:
    if (kind[0] != 's' || t.tz[0] != '\0' || parse_timestamp_us(text, &us) != 0) return -1;
    h->value = t.unit == SP_UNIT_NANO ? (long double)us * 1000 : (long double)us / per_us[t.unit];
    return 0;
  default:
    return -1;
  }
}

/* Parses the hint text built by sp_engine_prune_rewrite: a JSON array of [column, op, kind, value]. */
static size_t parse_hints(const char *text, const struct ArrowSchema *schema, scan_hint **out) {
  json_error_t jerr;
  json_t *arr = json_loads(text, 0, &jerr);
  size_t n = 0;
  *out = NULL;
  if (!json_is_array(arr) || json_array_size(arr) == 0 || (*out = calloc(json_array_size(arr), sizeof **out)) == NULL) {
    json_decref(arr);
    return 0;
  }
  static const char *const ops[] = {"=", "<", "<=", ">", ">="};
  for (size_t i = 0; i < json_array_size(arr); i++) {
    json_t *h = json_array_get(arr, i);
    const char *col = json_string_value(json_array_get(h, 0)), *op = json_string_value(json_array_get(h, 1));
    const char *kind = json_string_value(json_array_get(h, 2)), *val = json_string_value(json_array_get(h, 3));
    if (!col || !op || !kind || !val) continue;
    scan_hint hint = {.col = -1};
    for (int64_t c = 0; c < schema->n_children; c++)
      if (schema->children[c]->name && strcasecmp(schema->children[c]->name, col) == 0) hint.col = c;
    for (int o = 0; o < 5; o++)
      if (strcmp(op, ops[o]) == 0) hint.op = (hint_op)o;
    if (hint.col < 0 || hint_value(schema->children[hint.col], kind, val, &hint) != 0) continue;
    (*out)[n++] = hint;
  }
  json_decref(arr);
  return n;
}
static void stream_bind(duckdb_bind_info info) { scan_bind_common(info, SCAN_STREAM, NULL, NULL); }
static void source_bind(duckdb_bind_info info) { scan_bind_common(info, SCAN_SOURCE, NULL, NULL); }

/* sp_source_scan_filter(name, filter_query): the source scan, with conditions it may push to the source. */
static void source_filter_bind(duckdb_bind_info info) {
  duckdb_value v = duckdb_bind_get_parameter(info, 1);
  char *text = duckdb_get_varchar(v);
  duckdb_destroy_value(&v);
  scan_bind_common(info, SCAN_SOURCE, NULL, text);
  duckdb_free(text);
}

/* ---- Global state ----------------------------------------------------------------------------------------- */

typedef struct scan_global {
  sp_engine *e;
  duckdb_arrow_converted_schema conv;
  idx_t *proj;
  idx_t nproj;
  /* SCAN_ARROW: the pinned snapshot and a batch cursor shared by the threads */
  sp_snapshot *snap;
  size_t next_batch; /* atomic */
  /* SCAN_STREAM / SCAN_SOURCE: one stream read by one thread */
  struct ArrowArrayStream stream;
  sp_slot *slot;
  struct owned_batch *box; /* the batch being sliced */
  int64_t off;
  int done;
} scan_global;

/* A batch read from a stream, shared by the slices cut from it and freed with the last of them. */
typedef struct owned_batch {
  struct ArrowArray a;
  int refs; /* atomic */
} owned_batch;

static void owned_batch_done(void *ctx) {
  owned_batch *b = ctx;
  if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    sp_array_release(&b->a);
    free(b);
  }
}

static void scan_global_free(void *p) {
  scan_global *g = p;
  if (g->conv) duckdb_destroy_arrow_converted_schema(&g->conv);
  if (g->box) owned_batch_done(g->box);
  sp_stream_release(&g->stream);
  if (g->slot) {
    sp_stream_release(&g->slot->stream);
    sp_schema_release(&g->slot->schema);
    free(g->slot);
  }
  sp_snapshot_unref(g->snap);
  free(g->proj);
  free(g);
}

static void scan_init(duckdb_init_info info) {
  scan_bind *b = duckdb_init_get_bind_data(info);
  scan_global *g = calloc(1, sizeof *g);
  sp_error err = {0};
  int rc = SP_OK;
  if (g == NULL) {
    duckdb_init_set_error(info, "out of memory");
    return;
  }
  g->e = b->e;
  g->nproj = duckdb_init_get_column_count(info);
  g->proj = calloc(g->nproj ? g->nproj : 1, sizeof *g->proj);
  for (idx_t i = 0; g->proj && i < g->nproj; i++) g->proj[i] = duckdb_init_get_column_index(info, i);
  if (g->proj == NULL) rc = sp_fail(&err, SP_ENOMEM, "out of memory");
  const struct ArrowSchema *schema = &b->schema;
  if (rc == SP_OK && b->kind == SCAN_ARROW) {
    g->snap = sp_engine_pin_snapshot(b->e, b->name);
    if (g->snap == NULL) {
      rc = sp_fail(&err, SP_EBUSY, "dataset \"%s\" is not loaded", b->name);
    } else if (!same_schema(&g->snap->schema, &b->schema)) {
      rc = sp_fail(&err, SP_EBUSY, "the schema of dataset \"%s\" changed during this query; run it again", b->name);
    }
    size_t threads = g->snap && g->snap->n_batches ? g->snap->n_batches : 1;
    duckdb_init_set_max_threads(info, threads);
  } else if (rc == SP_OK && b->kind == SCAN_STREAM) {
    g->slot = sp_engine_take_stream(b->e, b->name);
    if (g->slot == NULL) rc = sp_fail(&err, SP_ENOTFOUND, "stream %s was already read", b->name);
    else sp_stream_move(&g->stream, &g->slot->stream);
  } else if (rc == SP_OK) {
    sp_source_open_fn fn;
    void *ctx;
    const char **cols = calloc(g->nproj ? g->nproj : 1, sizeof *cols);
    rc = cols ? sp_engine_find_source(b->e, b->name, NULL, &fn, &ctx, &err) : sp_fail(&err, SP_ENOMEM, "out of memory");
    for (idx_t i = 0; rc == SP_OK && i < g->nproj; i++) cols[i] = schema->children[g->proj[i]]->name;
    if (rc == SP_OK) rc = fn(ctx, cols, g->nproj, -1, b->filter_query, b->stop, &g->stream, &err);
    free(cols);
    /* The source returns only the projected columns, in projection order. */
    for (idx_t i = 0; rc == SP_OK && i < g->nproj; i++) g->proj[i] = i;
    if (rc == SP_OK) {
      struct ArrowSchema got;
      if (g->stream.get_schema(&g->stream, &got) != 0) {
        rc = sp_fail(&err, SP_EIO, "could not read the schema of source \"%s\"", b->name);
      } else {
        rc = sp_engine_convert_schema(b->e, &got, g->proj, g->nproj, &g->conv, &err);
        sp_schema_release(&got);
      }
    }
  }
  if (rc == SP_OK && g->conv == NULL) rc = sp_engine_convert_schema(b->e, schema, g->proj, g->nproj, &g->conv, &err);
  if (rc != SP_OK) {
    duckdb_init_set_error(info, err.msg);
    scan_global_free(g);
    return;
  }
  duckdb_init_set_init_data(info, g, scan_global_free);
}

/* ---- Local state and the scan function ------------------------------------------------------------------- */

typedef struct scan_local {
  size_t batch;  /* SCAN_ARROW: the batch this thread is on, or SIZE_MAX */
  int64_t off;
} scan_local;

static void scan_local_init(duckdb_init_info info) {
  scan_local *l = calloc(1, sizeof *l);
  if (l == NULL) {
    duckdb_init_set_error(info, "out of memory");
    return;
  }
  l->batch = SIZE_MAX;
  duckdb_init_set_init_data(info, l, free);
}

static void snapshot_slice_done(void *ctx) { sp_snapshot_unref(ctx); }

/* True when the batch's statistics prove that no row satisfies every hint. */
static int batch_pruned(const scan_bind *b, const sp_snapshot *s, size_t batch) {
  if (b->n_hints == 0 || s->stats == NULL) return 0;
  const sp_column_stats *row = &s->stats[batch * (size_t)s->schema.n_children];
  for (size_t h = 0; h < b->n_hints; h++) {
    const scan_hint *hint = &b->hints[h];
    const sp_column_stats *st = &row[hint->col];
    if (st->kind == SP_STAT_ALL_NULL) return 1; /* comparisons with NULL are never true */
    if (st->kind == SP_STAT_NONE || (st->kind == SP_STAT_FLOAT) != hint->is_float) continue;
    long double lo = st->kind == SP_STAT_FLOAT ? (long double)st->min.d : (long double)st->min.i;
    long double hi = st->kind == SP_STAT_FLOAT ? (long double)st->max.d : (long double)st->max.i;
    long double v = hint->value;
    switch (hint->op) {
    case HINT_EQ: if (v < lo || v > hi) return 1; break;
    case HINT_LT: if (lo >= v) return 1; break;
    case HINT_LE: if (lo > v) return 1; break;
    case HINT_GT: if (hi <= v) return 1; break;
    case HINT_GE: if (hi < v) return 1; break;
    }
  }
  return 0;
}

static void arrow_scan_fn(duckdb_function_info info, duckdb_data_chunk out) {
  scan_global *g = duckdb_function_get_init_data(info);
  scan_local *l = duckdb_function_get_local_init_data(info);
  const scan_bind *bd = duckdb_function_get_bind_data(info);
  sp_snapshot *s = g->snap;
  idx_t vsize = duckdb_vector_size();
  for (;;) {
    if (l->batch == SIZE_MAX || l->off >= s->batches[l->batch].length) {
      size_t b = __atomic_fetch_add(&g->next_batch, 1, __ATOMIC_RELAXED);
      if (b >= s->n_batches) {
        duckdb_data_chunk_set_size(out, 0);
        return;
      }
      if (batch_pruned(bd, s, b)) {
        __atomic_add_fetch(&g->e->pruned_batches, 1, __ATOMIC_RELAXED);
        continue;
      }
      l->batch = b;
      l->off = 0;
    }
    const struct ArrowArray *batch = &s->batches[l->batch];
    int64_t n = batch->length - l->off;
    if (n > (int64_t)vsize) n = (int64_t)vsize;
    if (n == 0) continue;
    sp_error err = {0};
    sp_snapshot_ref(s); /* each slice holds the snapshot until DuckDB drops its vectors */
    if (sp_engine_emit_slice(g->e, g->conv, batch, g->proj, g->nproj, l->off, n, snapshot_slice_done, s, out, &err) != SP_OK) {
      duckdb_function_set_error(info, err.msg);
      return;
    }
    l->off += n;
    return;
  }
}

/* Reads the next non-empty batch of the stream into g->box. Returns 0, 1 at the end, -1 on error. */
static int stream_advance(scan_global *g, duckdb_function_info info) {
  for (;;) {
    struct ArrowArray next;
    memset(&next, 0, sizeof next);
    if (g->stream.get_next(&g->stream, &next) != 0) {
      const char *m = g->stream.get_last_error(&g->stream);
      duckdb_function_set_error(info, m ? m : "error reading a source stream");
      return -1;
    }
    if (next.release == NULL) return 1;
    if (next.length == 0) {
      sp_array_release(&next);
      continue;
    }
    owned_batch *box = malloc(sizeof *box);
    if (box == NULL) {
      sp_array_release(&next);
      duckdb_function_set_error(info, "out of memory");
      return -1;
    }
    sp_array_move(&box->a, &next);
    box->refs = 1;
    g->box = box;
    g->off = 0;
    return 0;
  }
}

static void stream_scan_fn(duckdb_function_info info, duckdb_data_chunk out) {
  scan_global *g = duckdb_function_get_init_data(info);
  if (!g->done && (g->box == NULL || g->off >= g->box->a.length)) {
    if (g->box) owned_batch_done(g->box);
    g->box = NULL;
    int r = stream_advance(g, info);
    if (r < 0) return;
    g->done = r == 1;
  }
  if (g->done) {
    duckdb_data_chunk_set_size(out, 0);
    return;
  }
  int64_t n = g->box->a.length - g->off;
  if (n > (int64_t)duckdb_vector_size()) n = (int64_t)duckdb_vector_size();
  sp_error err = {0};
  __atomic_add_fetch(&g->box->refs, 1, __ATOMIC_RELAXED);
  if (sp_engine_emit_slice(g->e, g->conv, &g->box->a, g->proj, g->nproj, g->off, n, owned_batch_done, g->box, out,
                           &err) != SP_OK) {
    duckdb_function_set_error(info, err.msg);
    return;
  }
  g->off += n;
}

/* ---- Placeholders ------------------------------------------------------------------------------------------ */

/* sp_unavailable('message') stands for a dataset that has no data yet: any query that reads it fails at bind
 * with the message. It binds (to one dummy column) only while the engine itself defines the placeholder
 * view, on this thread. */
static __thread int defining_placeholder;

void sp_engine_placeholder_mode(int on) { defining_placeholder = on; }

static void unavailable_bind(duckdb_bind_info info) {
  duckdb_value v = duckdb_bind_get_parameter(info, 0);
  char *msg = duckdb_get_varchar(v);
  duckdb_destroy_value(&v);
  if (!defining_placeholder) {
    duckdb_bind_set_error(info, msg ? msg : "dataset not available");
  } else {
    duckdb_logical_type t = duckdb_create_logical_type(DUCKDB_TYPE_BOOLEAN);
    duckdb_bind_add_result_column(info, "unavailable", t);
    duckdb_destroy_logical_type(&t);
  }
  duckdb_free(msg);
}

static void unavailable_init(duckdb_init_info info) { (void)info; }

static void unavailable_fn(duckdb_function_info info, duckdb_data_chunk out) { duckdb_data_chunk_set_size(out, 0); }

/* ---- Registration ------------------------------------------------------------------------------------------ */

static int register_one(sp_engine *e, duckdb_connection conn, const char *name, duckdb_table_function_bind_t bind,
                        duckdb_table_function_t fn, int parallel, int nparams, sp_error *err) {
  duckdb_table_function tf = duckdb_create_table_function();
  duckdb_logical_type vt = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  duckdb_table_function_set_name(tf, name);
  for (int i = 0; i < nparams; i++) duckdb_table_function_add_parameter(tf, vt);
  duckdb_destroy_logical_type(&vt);
  duckdb_table_function_set_extra_info(tf, e, NULL);
  duckdb_table_function_set_bind(tf, bind);
  duckdb_table_function_set_init(tf, scan_init);
  if (parallel) duckdb_table_function_set_local_init(tf, scan_local_init);
  duckdb_table_function_set_function(tf, fn);
  duckdb_table_function_supports_projection_pushdown(tf, true);
  duckdb_state st = duckdb_register_table_function(conn, tf);
  duckdb_destroy_table_function(&tf);
  return st == DuckDBError ? sp_fail(err, SP_EINTERNAL, "could not register table function %s", name) : SP_OK;
}

int sp_engine_register_scans(sp_engine *e, duckdb_connection conn, sp_error *err) {
  SP_TRY(register_one(e, conn, "sp_arrow_scan", arrow_bind, arrow_scan_fn, 1, 1, err));
  SP_TRY(register_one(e, conn, "sp_arrow_scan_hint", arrow_hint_bind, arrow_scan_fn, 1, 2, err));
  SP_TRY(register_one(e, conn, "sp_stream", stream_bind, stream_scan_fn, 0, 1, err));
  SP_TRY(register_one(e, conn, "sp_source_scan", source_bind, stream_scan_fn, 0, 1, err));
  SP_TRY(register_one(e, conn, "sp_source_scan_filter", source_filter_bind, stream_scan_fn, 0, 2, err));
  duckdb_table_function tf = duckdb_create_table_function();
  duckdb_logical_type vt = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  duckdb_table_function_set_name(tf, "sp_unavailable");
  duckdb_table_function_add_parameter(tf, vt);
  duckdb_destroy_logical_type(&vt);
  duckdb_table_function_set_bind(tf, unavailable_bind);
  duckdb_table_function_set_init(tf, unavailable_init);
  duckdb_table_function_set_function(tf, unavailable_fn);
  duckdb_state st = duckdb_register_table_function(conn, tf);
  duckdb_destroy_table_function(&tf);
  if (st == DuckDBError) return sp_fail(err, SP_EINTERNAL, "could not register table function sp_unavailable");
  return SP_OK;
}
