/* SPDX-License-Identifier: Apache-2.0
 *
 * The write path (DESIGN §1): rows inserted into a `mode: read_write` dataset, from SQL `INSERT INTO` (the
 * engine's write hook) or Flight DoPut (sp_runtime_insert).
 *
 *   1. the rows are cast to the dataset's schema by name in the engine (a missing column is NULL, a value
 *      that does not convert is an error naming the column), batch by batch as they are read;
 *   2. under the dataset's write lock (a refresh never overlaps a write, or it could overwrite the copy with
 *      a read of the source taken before the write), the connector reads them and writes them to the source
 *      in one transaction; a value that fails to convert midway aborts that transaction. When the dataset is
 *      accelerated, the batches are kept as they pass and the accelerator then appends them: the caller is
 *      answered after both. A federated dataset holds nothing: an upload streams from the client to the
 *      source.
 *
 * A source failure leaves the accelerator untouched. An accelerator failure after the source committed is
 * reported as exactly that: the rows are in the source and reach the copy with its next refresh. Datasets
 * refreshed from a change stream get their rows back through it, so only the source is written there.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/runtime_int.h"
#include "spice/arrow.h"
#include "spice/buf.h"
#include "spice/log.h"
#include "spice/sqltext.h"

/* ---- The write lock ----------------------------------------------------------------------------------- */

/* Striped by dataset: two datasets may share a stripe, which only serializes them a little more. */
#define WRITE_STRIPES 64
static pthread_mutex_t stripes[WRITE_STRIPES];
static pthread_once_t stripes_once = PTHREAD_ONCE_INIT;

static void stripes_init(void) {
  for (int i = 0; i < WRITE_STRIPES; i++) pthread_mutex_init(&stripes[i], NULL);
}

static pthread_mutex_t *stripe_of(const sp_dataset *ds) {
  pthread_once(&stripes_once, stripes_init);
  uintptr_t h = (uintptr_t)ds;
  return &stripes[(h >> 4 ^ h >> 12) % WRITE_STRIPES];
}

void sp__dataset_write_lock(sp_dataset *ds) { pthread_mutex_lock(stripe_of(ds)); }
void sp__dataset_write_unlock(sp_dataset *ds) { pthread_mutex_unlock(stripe_of(ds)); }

/* ---- Casting to the dataset's schema ------------------------------------------------------------------ */

/* The DuckDB type an Arrow field becomes in the engine (the type its readers see). */
static int duck_type(const struct ArrowSchema *f, sp_buf *b) {
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(f->format, &t);
  char tmp[64];
  const char *name = NULL;
  switch (t.type) {
  case SP_ARROW_BOOL: name = "BOOLEAN"; break;
  case SP_ARROW_INT8: name = "TINYINT"; break;
  case SP_ARROW_INT16: name = "SMALLINT"; break;
  case SP_ARROW_INT32: name = "INTEGER"; break;
  case SP_ARROW_INT64: name = "BIGINT"; break;
  case SP_ARROW_UINT8: name = "UTINYINT"; break;
  case SP_ARROW_UINT16: name = "USMALLINT"; break;
  case SP_ARROW_UINT32: name = "UINTEGER"; break;
  case SP_ARROW_UINT64: name = "UBIGINT"; break;
  case SP_ARROW_HALF: case SP_ARROW_FLOAT: name = "FLOAT"; break;
  case SP_ARROW_DOUBLE: name = "DOUBLE"; break;
  case SP_ARROW_UTF8: case SP_ARROW_LARGE_UTF8: case SP_ARROW_UTF8_VIEW: name = "VARCHAR"; break;
  case SP_ARROW_BINARY: case SP_ARROW_LARGE_BINARY: case SP_ARROW_FIXED_BINARY: case SP_ARROW_BINARY_VIEW:
    name = "BLOB";
    break;
  case SP_ARROW_DECIMAL32: case SP_ARROW_DECIMAL64: case SP_ARROW_DECIMAL128:
    snprintf(tmp, sizeof tmp, "DECIMAL(%d,%d)", t.precision, t.scale);
    name = tmp;
    break;
  case SP_ARROW_DATE32: case SP_ARROW_DATE64: name = "DATE"; break;
  case SP_ARROW_TIME32: case SP_ARROW_TIME64: name = "TIME"; break;
  case SP_ARROW_TIMESTAMP:
    name = t.tz[0] ? "TIMESTAMPTZ"
           : t.unit == SP_UNIT_SECOND ? "TIMESTAMP_S"
           : t.unit == SP_UNIT_MILLI ? "TIMESTAMP_MS"
           : t.unit == SP_UNIT_NANO ? "TIMESTAMP_NS" : "TIMESTAMP";
    break;
  case SP_ARROW_DURATION: case SP_ARROW_INTERVAL_MONTHS: case SP_ARROW_INTERVAL_DAY_TIME:
  case SP_ARROW_INTERVAL_MONTH_DAY_NANO:
    name = "INTERVAL";
    break;
  case SP_ARROW_LIST: case SP_ARROW_LARGE_LIST:
    if (f->n_children != 1 || duck_type(f->children[0], b) != SP_OK) return SP_ENOTSUP;
    return sp_buf_append_str(b, "[]");
  default: return SP_ENOTSUP;
  }
  return sp_buf_append_str(b, name);
}

/* The input column named like the dataset's column (exact, then case-insensitive), or -1. */
static int64_t find_column(const struct ArrowSchema *in, const char *name) {
  for (int64_t i = 0; i < in->n_children; i++)
    if (in->children[i]->name && strcmp(in->children[i]->name, name) == 0) return i;
  for (int64_t i = 0; i < in->n_children; i++)
    if (in->children[i]->name && strcasecmp(in->children[i]->name, name) == 0) return i;
  return -1;
}

/* Every input column must name a column of the dataset. */
static int check_inputs(const sp_dataset *ds, const struct ArrowSchema *want, const struct ArrowSchema *in,
                        sp_error *err) {
  for (int64_t i = 0; i < in->n_children; i++) {
    const char *n = in->children[i]->name ? in->children[i]->name : "";
    if (find_column(want, n) < 0)
      return sp_fail(err, SP_EINVAL, "column \"%s\" does not exist in dataset \"%s\"", n, ds->spec->name);
  }
  return SP_OK;
}

/* `src` converted to `type`, or an error naming the column with the value (TRY_CAST is NULL where CAST
 * would fail; error() stops the query). */
static int append_cast(sp_buf *b, const char *src, const char *type, const char *msg_literal) {
  size_t n = 4 * strlen(src) + 2 * strlen(type) + strlen(msg_literal) + 160;
  char *e = malloc(n);
  if (e == NULL) return SP_ENOMEM;
  snprintf(e, n,
           "CASE WHEN %s IS NOT NULL AND TRY_CAST(%s AS %s) IS NULL THEN error(%s || '''' || CAST(%s AS VARCHAR) || '''') "
           "ELSE TRY_CAST(%s AS %s) END",
           src, src, type, msg_literal, src, src, type);
  int rc = sp_buf_append_str(b, e);
  free(e);
  return rc;
}

/* One select-list entry: the input column of the same name converted to the dataset column's type, or a
 * NULL of that type when the rows have no such column. */
static int cast_expr(const sp_dataset *ds, const struct ArrowSchema *field, const struct ArrowSchema *in, sp_buf *b) {
  char col[600], src[600], text[1200], msg[2500];
  sp_buf type = {0};
  int rc = duck_type(field, &type) == SP_OK && sp_buf_cstr(&type) ? SP_OK : SP_ENOTSUP;
  int64_t j = rc == SP_OK ? find_column(in, field->name) : -1;
  if (rc == SP_OK) {
    snprintf(text, sizeof text, "column \"%s\" of dataset \"%s\" has type %s: cannot convert ", field->name,
             ds->spec->name, type.data);
    if (sp_sql_ident(col, sizeof col, field->name) != 0 || sp_sql_literal(msg, sizeof msg, text) != 0 ||
        (j >= 0 && sp_sql_ident(src, sizeof src, in->children[j]->name) != 0))
      rc = SP_EINVAL;
  }
  if (rc == SP_OK && j < 0) {
    rc = sp_buf_append_str(b, "CAST(NULL AS ");
    if (rc == SP_OK) rc = sp_buf_append_str(b, type.data);
    if (rc == SP_OK) rc = sp_buf_append_str(b, ")");
  } else if (rc == SP_OK) {
    rc = append_cast(b, src, type.data, msg);
  }
  if (rc == SP_OK) rc = sp_buf_append_str(b, " AS ");
  if (rc == SP_OK) rc = sp_buf_append_str(b, col);
  sp_buf_free(&type);
  return rc;
}

/* `SELECT <casts> FROM sp_stream('<token>')`, malloc'd in *out. */
static int cast_sql(const sp_dataset *ds, const struct ArrowSchema *want, const struct ArrowSchema *in, uint64_t token,
                    char **out, sp_error *err) {
  sp_buf b = {0};
  int rc = sp_buf_append_str(&b, "SELECT ");
  for (int64_t i = 0; rc == SP_OK && i < want->n_children; i++) {
    if (i > 0) rc = sp_buf_append_str(&b, ", ");
    if (rc == SP_OK) rc = cast_expr(ds, want->children[i], in, &b);
    if (rc == SP_ENOTSUP)
      rc = sp_fail(err, SP_ENOTSUP, "column \"%s\" of dataset \"%s\" has a type spicec cannot write (%s)",
                   want->children[i]->name, ds->spec->name, want->children[i]->format);
  }
  char tail[64];
  snprintf(tail, sizeof tail, " FROM sp_stream('%llu')", (unsigned long long)token);
  if (rc == SP_OK) rc = sp_buf_append_str(&b, tail);
  if (rc == SP_OK && sp_buf_cstr(&b) == NULL) rc = SP_ENOMEM;
  if (rc != SP_OK) {
    sp_buf_free(&b);
    return err && (int)err->code == rc ? rc : sp_fail(err, rc, "could not build the insert for dataset \"%s\"", ds->spec->name);
  }
  *out = b.data;
  return SP_OK;
}

/* DuckDB's "Invalid Input Error: column …" → "column …": the message is ours. */
static void strip_error_prefix(sp_error *err) {
  static const char *const prefixes[] = {"Invalid Input Error: ", "Conversion Error: ", NULL};
  if (err == NULL) return;
  for (int i = 0; prefixes[i]; i++) {
    size_t n = strlen(prefixes[i]);
    if (strncmp(err->msg, prefixes[i], n) == 0) memmove(err->msg, err->msg + n, strlen(err->msg + n) + 1);
  }
  char *nl = strchr(err->msg, '\n');
  if (nl) *nl = '\0';
}

/* Types must agree, recursively, for the rows to be read like the dataset's own batches. Spellings may differ
 * ("d:12,2,128" is "d:12,2"), and a timestamp's zone only says that its values are UTC instants. */
static const struct ArrowSchema *format_mismatch(const struct ArrowSchema *a, const struct ArrowSchema *b) {
  sp_arrow_typeinfo x, y;
  sp_arrow_parse_format(a->format, &x);
  sp_arrow_parse_format(b->format, &y);
  if (x.type == SP_ARROW_UNSUPPORTED && strcmp(a->format, b->format) != 0) return a;
  if (x.type != y.type || x.precision != y.precision || x.scale != y.scale || x.byte_width != y.byte_width ||
      x.unit != y.unit || (x.tz[0] != 0) != (y.tz[0] != 0) || a->n_children != b->n_children)
    return a;
  for (int64_t i = 0; i < a->n_children; i++)
    if (format_mismatch(a->children[i], b->children[i])) return a;
  return NULL;
}

/* The cast rows must have the dataset's own types, column by column, to be appended to its copy. */
static int check_formats(const sp_dataset *ds, const struct ArrowSchema *got, const struct ArrowSchema *want,
                         sp_error *err) {
  for (int64_t i = 0; i < want->n_children && i < got->n_children; i++)
    if (format_mismatch(got->children[i], want->children[i]))
      return sp_fail(err, SP_EINTERNAL, "column \"%s\" of dataset \"%s\" would be written as Arrow type %s, not %s",
                     want->children[i]->name, ds->spec->name, got->children[i]->format, want->children[i]->format);
  return got->n_children == want->n_children
             ? SP_OK
             : sp_fail(err, SP_EINTERNAL, "the rows for dataset \"%s\" have %lld columns, not %lld", ds->spec->name,
                       (long long)got->n_children, (long long)want->n_children);
}

/* A write in progress: the rows cast by the engine, read once by the connector. When the accelerator needs
 * them too, each batch is kept while the connector reads a borrowed view of it; otherwise nothing is held
 * and an upload streams from the client to the source. */
typedef struct sp_write {
  sp_dataset *ds;
  struct ArrowSchema want;      /* the dataset's schema */
  struct ArrowArrayStream cast; /* the engine's query over sp_stream(token) */
  uint64_t token;
  int keep;                     /* keep the batches for the accelerator */
  struct ArrowArray *kept;
  size_t n_kept, cap_kept;
  int64_t rows;
  int failed;                   /* the cast rows failed (a value that does not convert) */
  char error[1024];
} sp_write;

static void view_release(struct ArrowArray *a) { a->release = NULL; }

static int tee_schema(struct ArrowArrayStream *s, struct ArrowSchema *out) {
  sp_write *w = s->private_data;
  return w->cast.get_schema(&w->cast, out);
}

static int tee_keep(sp_write *w, struct ArrowArray *batch, struct ArrowArray *out) {
  if (w->n_kept == w->cap_kept) {
    size_t cap = w->cap_kept ? 2 * w->cap_kept : 16;
    struct ArrowArray *k = realloc(w->kept, cap * sizeof *k);
    if (k == NULL) {
      sp_array_release(batch);
      snprintf(w->error, sizeof w->error, "out of memory");
      return 12;
    }
    w->kept = k, w->cap_kept = cap;
  }
  sp_array_move(&w->kept[w->n_kept], batch);
  *out = w->kept[w->n_kept++];
  out->release = view_release; /* the kept batch owns the buffers */
  out->private_data = NULL;
  return 0;
}

static int tee_next(struct ArrowArrayStream *s, struct ArrowArray *out) {
  sp_write *w = s->private_data;
  struct ArrowArray batch = {0};
  int rc = w->cast.get_next(&w->cast, &batch);
  if (rc != 0) {
    const char *m = w->cast.get_last_error ? w->cast.get_last_error(&w->cast) : NULL;
    snprintf(w->error, sizeof w->error, "%s", m ? m : "could not read the rows");
    w->failed = 1;
    return rc;
  }
  if (batch.release == NULL) {
    memset(out, 0, sizeof *out);
    return 0;
  }
  w->rows += batch.length;
  if (!w->keep) {
    sp_array_move(out, &batch);
    return 0;
  }
  return tee_keep(w, &batch, out);
}

static const char *tee_error(struct ArrowArrayStream *s) {
  sp_write *w = s->private_data;
  return w->error[0] ? w->error : NULL;
}

static void tee_release(struct ArrowArrayStream *s) { s->release = NULL; } /* the sp_write outlives it */

/* Casts `rows` (consumed) to the dataset's schema, lazily: w->cast reads them as the connector asks. */
static int write_open(sp_write *w, struct ArrowArrayStream *rows, sp_error *err) {
  sp_dataset *ds = w->ds;
  struct ArrowSchema in = {0}, got = {0};
  int rc = ds->cmod->get_schema(ds->conn, &w->want, err);
  if (rc == SP_OK && rows->get_schema(rows, &in) != 0) {
    const char *m = rows->get_last_error ? rows->get_last_error(rows) : NULL;
    rc = sp_fail(err, SP_EINVAL, "could not read the schema of the rows for dataset \"%s\": %s", ds->spec->name,
                 m ? m : "unknown error");
  }
  if (rc == SP_OK) rc = check_inputs(ds, &w->want, &in, err);
  char *sql = NULL;
  if (rc == SP_OK) rc = sp_engine_stream_register(ds->rt->engine, rows, &w->token, err);
  if (rc == SP_OK) rc = cast_sql(ds, &w->want, &in, w->token, &sql, err);
  if (rc == SP_OK && (rc = sp_engine_query_internal(ds->rt->engine, sql, &w->cast, err)) != SP_OK) strip_error_prefix(err);
  if (rc == SP_OK && w->cast.get_schema(&w->cast, &got) != 0)
    rc = sp_fail(err, SP_EINTERNAL, "could not read the schema of the rows for dataset \"%s\"", ds->spec->name);
  if (rc == SP_OK) rc = check_formats(ds, &got, &w->want, err);
  free(sql);
  sp_stream_release(rows);
  sp_schema_release(&in);
  sp_schema_release(&got);
  return rc;
}

static void write_close(sp_write *w) {
  sp_stream_release(&w->cast);
  if (w->token) sp_engine_stream_unregister(w->ds->rt->engine, w->token);
  for (size_t i = 0; i < w->n_kept; i++) sp_array_release(&w->kept[i]);
  free(w->kept);
  sp_schema_release(&w->want);
}

/* ---- Writing ------------------------------------------------------------------------------------------ */

/* The connector reads the cast rows. A value that does not convert shows up while it reads: that error is
 * the one to report (the connector only saw its stream fail), and the source has rolled the write back. */
static int write_source(sp_write *w, sp_error *err) {
  sp_data_update u = {.type = SP_UPDATE_APPEND};
  u.stream = (struct ArrowArrayStream){.get_schema = tee_schema, .get_next = tee_next, .get_last_error = tee_error,
                                       .release = tee_release, .private_data = w};
  int rc = w->ds->cmod->add_data(w->ds->conn, &u, err);
  sp_stream_release(&u.stream);
  if (rc != SP_OK && w->failed) {
    rc = sp_fail(err, SP_EINVAL, "%s", w->error);
    strip_error_prefix(err);
  }
  return rc;
}

/* The kept batches (handed over) are appended to the copy. */
static int write_accelerator(sp_write *w, sp_error *err) {
  sp_dataset *ds = w->ds;
  sp_data_update u = {.type = SP_UPDATE_APPEND};
  int64_t rows = -1;
  int rc = sp_stream_from_batches(&w->want, w->kept, w->n_kept, &u.stream, err);
  w->n_kept = 0; /* consumed, even on failure */
  if (rc == SP_OK) rc = ds->amod->add_data(ds->accel, &u, &rows, err);
  sp_stream_release(&u.stream);
  if (rc == SP_OK) rc = sp__define_dataset_table(ds, err);
  if (rc != SP_OK) {
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
    return sp_fail(err, rc, "dataset \"%s\": %lld rows were written to the source, but the accelerator failed to "
                   "append them (the accelerated copy gets them with its next refresh): %s",
                   ds->spec->name, (long long)w->rows, msg);
  }
  pthread_mutex_lock(&ds->rt->lock);
  ds->rows = rows;
  pthread_mutex_unlock(&ds->rt->lock);
  return SP_OK;
}

/* The source, then the copy, under the write lock. */
static int write_rows(sp_write *w, sp_error *err) {
  sp_runtime *rt = w->ds->rt;
  sp__dataset_write_lock(w->ds);
  __atomic_add_fetch(&rt->data_version, 1, __ATOMIC_RELEASE);
  int rc = write_source(w, err);
  if (rc == SP_OK && w->keep) rc = write_accelerator(w, err);
  __atomic_add_fetch(&rt->data_version, 1, __ATOMIC_RELEASE);
  sp__dataset_write_unlock(w->ds);
  return rc;
}

/* Why `ds` cannot take rows now, or SP_OK. */
static int check_writable(sp_dataset *ds, sp_error *err) {
  const char *name = ds->spec->name;
  if (ds->spec->mode != SP_MODE_READ_WRITE || ds->cmod == NULL || ds->cmod->add_data == NULL)
    return sp_fail(err, SP_EDENIED, "dataset \"%s\" is read-only: INSERT requires mode: read_write with replication "
                   "enabled", name);
  pthread_mutex_lock(&ds->rt->lock);
  int ready = ds->ready_once, reached = ds->conn != NULL;
  pthread_mutex_unlock(&ds->rt->lock);
  if (!reached) return sp_fail(err, SP_EBUSY, "dataset \"%s\" cannot take rows yet: its source has not been reached", name);
  if (ds->accelerated && !ready)
    return sp_fail(err, SP_EBUSY, "dataset \"%s\" cannot take rows yet: its accelerated copy is still loading", name);
  /* Checked before anything is written: the source must not get rows that the copy then refuses. */
  if (ds->accelerated && ds->spec->acceleration.refresh_mode != SP_REFRESH_CHANGES && !(ds->amod->caps & SP_ACCEL_CAP_APPEND))
    return sp_fail(err, SP_ENOTSUP, "dataset \"%s\" cannot take rows: the %s accelerator cannot append them", name,
                   ds->amod->name);
  return SP_OK;
}

static int insert_locked(sp_runtime *rt, const char *dataset, struct ArrowArrayStream *rows, int64_t *out_rows,
                         sp_error *err) {
  sp_write w = {0};
  for (size_t i = 0; i < rt->n && w.ds == NULL; i++)
    if (strcasecmp(rt->datasets[i]->spec->name, dataset) == 0) w.ds = rt->datasets[i];
  if (w.ds == NULL) return sp_fail(err, SP_ENOTFOUND, "Dataset %s not found", dataset);
  SP_TRY(check_writable(w.ds, err));
  w.keep = w.ds->accelerated && w.ds->spec->acceleration.refresh_mode != SP_REFRESH_CHANGES;
  int rc = write_open(&w, rows, err);
  if (rc == SP_OK) rc = write_rows(&w, err);
  if (rc == SP_OK) {
    sp_log_info("dataset \"%s\": %lld rows inserted", w.ds->spec->name, (long long)w.rows);
    if (out_rows) *out_rows = w.rows;
  }
  write_close(&w);
  return rc;
}

int sp_runtime_insert(sp_runtime *rt, const char *dataset, struct ArrowArrayStream *rows, int64_t *out_rows,
                      sp_error *err) {
  pthread_rwlock_rdlock(&rt->ds_lock);
  int rc = insert_locked(rt, dataset, rows, out_rows, err);
  pthread_rwlock_unlock(&rt->ds_lock);
  sp_stream_release(rows);
  return rc;
}

int sp__write_hook(void *ctx, const char *table, struct ArrowArrayStream *rows, int64_t *out_rows, sp_error *err) {
  return sp_runtime_insert(ctx, table, rows, out_rows, err);
}
