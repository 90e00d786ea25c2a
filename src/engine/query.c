/* SPDX-License-Identifier: Apache-2.0
 *
 * User queries: classify (sandbox), prepare, bind parameters, execute as a streaming result, and expose the
 * result as an Arrow C stream. The stream owns the connection until it is released, so a large answer is
 * produced chunk by chunk as the client reads it, never held whole.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/classify.h"
#include "engine/engine_int.h"
#include "spice/duckdb_util.h"

typedef struct result_stream {
  void (*done)(void *ctx, duckdb_connection conn); /* gives the connection back */
  void *done_ctx;
  sp_session *session;             /* user queries: the pooled session that owns conn */
  duckdb_connection conn;
  duckdb_prepared_statement stmt;
  duckdb_result result;
  int has_result;
  int finished;                    /* the last chunk was read */
  duckdb_data_chunk first;         /* a chunk fetched early (zero-results check), returned first */
  duckdb_arrow_options options;
  int count_answer;                /* the answer of an INSERT: its one column, count, is not nullable */
  char error[1024];
} result_stream;

static int result_get_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  result_stream *r = st->private_data;
  idx_t n = duckdb_column_count(&r->result);
  duckdb_logical_type *types = calloc(n ? n : 1, sizeof *types);
  const char **names = calloc(n ? n : 1, sizeof *names);
  int rc = 0;
  if (types == NULL || names == NULL) {
    snprintf(r->error, sizeof r->error, "out of memory");
    rc = 12;
  } else {
    for (idx_t i = 0; i < n; i++) {
      types[i] = duckdb_column_logical_type(&r->result, i);
      names[i] = duckdb_column_name(&r->result, i);
    }
    duckdb_error_data ed = duckdb_to_arrow_schema(r->options, types, names, n, out);
    if (ed != NULL && duckdb_error_data_has_error(ed)) {
      snprintf(r->error, sizeof r->error, "%s", duckdb_error_data_message(ed));
      rc = 22;
    }
    if (ed) duckdb_destroy_error_data(&ed);
    for (idx_t i = 0; i < n; i++) duckdb_destroy_logical_type(&types[i]);
    if (rc == 0 && r->count_answer && out->n_children == 1) out->children[0]->flags &= ~(int64_t)ARROW_FLAG_NULLABLE;
  }
  free(types);
  free(names);
  return rc;
}

/* A failed execution: a query ended at runtime.query.timeout is SP_ETIMEDOUT, whatever DuckDB or a source
 * reported as it stopped; other interrupted queries (shutdown past its timeout) are SP_ECANCELED; the rest are
 * the query's own fault. */
static int fail_result(result_stream *r, sp_error *err) {
  char msg[128];
  if (r->session && sp_engine_session_timed_out(r->done_ctx, r->session, msg, sizeof msg))
    return sp_fail(err, SP_ETIMEDOUT, "%s", msg);
  if (duckdb_result_error_type(&r->result) == DUCKDB_ERROR_INTERRUPT)
    return sp_fail(err, SP_ECANCELED, "query interrupted: spiced is shutting down");
  return sp_fail(err, SP_EINVAL, "%s", duckdb_result_error(&r->result));
}

static int result_get_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  result_stream *r = st->private_data;
  memset(out, 0, sizeof *out);
  duckdb_data_chunk chunk = r->first ? r->first : duckdb_fetch_chunk(r->result);
  r->first = NULL;
  if (chunk == NULL) {
    const char *m = duckdb_result_error(&r->result);
    if (m != NULL && *m && r->session && sp_engine_session_timed_out(r->done_ctx, r->session, r->error, sizeof r->error))
      return ETIMEDOUT;
    if (m != NULL && *m) {
      snprintf(r->error, sizeof r->error, "%s", m);
      return 5;
    }
    r->finished = 1;
    if (r->session) sp_engine_session_disarm(r->done_ctx, r->session); /* done: a slow reader is no slow query */
    return 0; /* end */
  }
  duckdb_error_data ed = duckdb_data_chunk_to_arrow(r->options, chunk, out);
  duckdb_destroy_data_chunk(&chunk);
  if (ed != NULL && duckdb_error_data_has_error(ed)) {
    snprintf(r->error, sizeof r->error, "%s", duckdb_error_data_message(ed));
    duckdb_destroy_error_data(&ed);
    return 22;
  }
  if (ed) duckdb_destroy_error_data(&ed);
  return 0;
}

static const char *result_last_error(struct ArrowArrayStream *st) {
  result_stream *r = st->private_data;
  return r->error[0] ? r->error : NULL;
}

static void result_free(result_stream *r) {
  if (r->first) duckdb_destroy_data_chunk(&r->first);
  if (r->options) duckdb_destroy_arrow_options(&r->options);
  if (r->has_result) duckdb_destroy_result(&r->result);
  if (r->has_result && !r->finished && r->conn) {
    /* A streaming result read only in part keeps its query (and the table locks of its scans) active in the
     * connection until the next statement runs there; end it now, before the connection is pooled, or a
     * checkpoint waits on it forever. */
    duckdb_result done;
    duckdb_query(r->conn, "SELECT 1", &done);
    duckdb_destroy_result(&done);
  }
  if (r->stmt) duckdb_destroy_prepare(&r->stmt);
  if (r->session) sp_engine_session_put(r->done_ctx, r->session);
  else if (r->conn) r->done(r->done_ctx, r->conn);
  free(r);
}

static void result_release(struct ArrowArrayStream *st) {
  if (st->release == NULL) return;
  result_free(st->private_data);
  st->release = NULL;
}

static duckdb_value make_value(const sp_value *v) {
  switch (v->type) {
  case SP_VALUE_BOOL: return duckdb_create_bool(v->v.b);
  case SP_VALUE_INT: return duckdb_create_int64(v->v.i);
  case SP_VALUE_DOUBLE: return duckdb_create_double(v->v.d);
  case SP_VALUE_STRING: return duckdb_create_varchar(v->v.s);
  case SP_VALUE_NULL: default: return duckdb_create_null_value();
  }
}

static int bind_params(duckdb_prepared_statement stmt, const sp_query_request *req, sp_error *err) {
  idx_t expected = duckdb_nparams(stmt), positional = 0;
  for (size_t i = 0; i < req->n_params; i++) {
    const sp_value *p = &req->params[i];
    idx_t idx;
    if (p->name) {
      if (duckdb_bind_parameter_index(stmt, &idx, p->name) == DuckDBError)
        return sp_fail(err, SP_EINVAL, "the query has no parameter named \"%s\"", p->name);
    } else {
      idx = ++positional;
      if (idx > expected)
        return sp_fail(err, SP_EINVAL, "too many parameters: the query takes %llu", (unsigned long long)expected);
    }
    duckdb_value v = make_value(p);
    duckdb_state st = duckdb_bind_value(stmt, idx, v);
    duckdb_destroy_value(&v);
    if (st == DuckDBError) return sp_fail(err, SP_EINVAL, "could not bind parameter %llu", (unsigned long long)idx);
  }
  if (req->n_params < expected)
    return sp_fail(err, SP_EINVAL, "the query takes %llu parameters, %zu given", (unsigned long long)expected,
                   req->n_params);
  return SP_OK;
}

static bool is_writable_cb(void *ctx, const char *table) { return sp_engine_is_writable(ctx, table) != 0; }

static uint64_t hash_text(const char *s) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* Classifies through the cache; only successful classifications are cached (refusals are cheap to redo and
 * keep their exact message). */
static int classify_cached(sp_engine *e, sp_session *s, const char *sql, sp_sql_class *cls, sp_error *err) {
  uint64_t h = hash_text(sql);
  sp_class_entry *slot = e->class_cache ? &e->class_cache[h % SP_CLASS_CACHE_SLOTS] : NULL;
  if (slot) {
    pthread_mutex_lock(&e->lock);
    int hit = slot->sql && slot->hash == h && strcmp(slot->sql, sql) == 0;
    if (hit) {
      memset(cls, 0, sizeof *cls);
      cls->kind = (sp_sql_kind)slot->kind;
      memcpy(cls->target, slot->target, sizeof cls->target);
    }
    pthread_mutex_unlock(&e->lock);
    if (hit && cls->kind == SP_SQL_READ) return SP_OK;
  }
  SP_TRY(sp_sql_classifier_check(s->cls, sql, is_writable_cb, e, cls, err));
  char *copy = slot && cls->kind == SP_SQL_READ && strlen(sql) < 65536 ? strdup(sql) : NULL;
  if (copy) {
    pthread_mutex_lock(&e->lock);
    free(slot->sql);
    slot->sql = copy;
    slot->hash = h;
    slot->kind = cls->kind;
    memcpy(slot->target, cls->target, sizeof slot->target);
    pthread_mutex_unlock(&e->lock);
  }
  return SP_OK;
}

int sp_engine_check_sql(sp_engine *e, const char *sql, sp_error *err) {
  sp_session *s;
  sp_sql_class cls;
  SP_TRY(sp_engine_session_get(e, &s, err));
  int rc = classify_cached(e, s, sql, &cls, err);
  sp_engine_session_put(e, s);
  return rc;
}

static void conn_close(void *ctx, duckdb_connection c) { duckdb_disconnect(&c); }

/* Prepares (unless stmt is given), binds and runs `sql` as a streaming result owned by r. */
static int result_open(result_stream *r, const sp_query_request *req, sp_error *err) {
  int rc = SP_OK;
  if (duckdb_prepare(r->conn, req->sql, &r->stmt) == DuckDBError)
    rc = sp_fail(err, SP_EINVAL, "%s", duckdb_prepare_error(r->stmt));
  if (rc == SP_OK) rc = bind_params(r->stmt, req, err);
  if (rc == SP_OK) {
    duckdb_pending_result pending;
    if (duckdb_pending_prepared_streaming(r->stmt, &pending) == DuckDBError) {
      rc = sp_fail(err, SP_EINVAL, "%s", duckdb_pending_error(pending));
    } else {
      r->has_result = 1;
      if (duckdb_execute_pending(pending, &r->result) == DuckDBError)
        rc = fail_result(r, err);
    }
    duckdb_destroy_pending(&pending);
  }
  if (rc == SP_OK) r->options = duckdb_result_get_arrow_options(&r->result);
  return rc;
}

static void result_export(result_stream *r, struct ArrowArrayStream *out) {
  out->get_schema = result_get_schema;
  out->get_next = result_get_next;
  out->get_last_error = result_last_error;
  out->release = result_release;
  out->private_data = r;
}

int sp_duckdb_stream(duckdb_database db, const char *sql, struct ArrowArrayStream *out, sp_error *err) {
  result_stream *r = calloc(1, sizeof *r);
  if (r == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  r->done = conn_close;
  if (duckdb_connect(db, &r->conn) == DuckDBError) {
    free(r);
    return sp_fail(err, SP_EINTERNAL, "could not connect to DuckDB");
  }
  sp_query_request req = {.sql = sql};
  int rc = result_open(r, &req, err);
  if (rc != SP_OK && err) {
    /* The SQL is ours, not the user's: keep DuckDB's message, drop its "LINE 1: <our SQL>" context. */
    char *nl = strchr(err->msg, '\n');
    if (nl) *nl = '\0';
  }
  if (rc != SP_OK) {
    result_free(r);
    return rc;
  }
  result_export(r, out);
  return SP_OK;
}

static void pool_put(void *ctx, duckdb_connection c) { sp_engine_conn_put(ctx, c); }

int sp_engine_query_internal(sp_engine *e, const char *sql, struct ArrowArrayStream *out, sp_error *err) {
  result_stream *r = calloc(1, sizeof *r);
  if (r == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  r->done = pool_put;
  r->done_ctx = e;
  sp_query_request req = {.sql = sql};
  int rc = sp_engine_conn_get(e, &r->conn, err);
  if (rc == SP_OK) rc = result_open(r, &req, err);
  if (rc != SP_OK) {
    result_free(r);
    return rc;
  }
  result_export(r, out);
  return SP_OK;
}

int sp_engine_query_text(sp_engine *e, const char *sql, char *out, size_t n, sp_error *err) {
  duckdb_connection c;
  duckdb_result res;
  SP_TRY(sp_engine_conn_get(e, &c, err));
  int rc = SP_OK;
  if (duckdb_query(c, sql, &res) == DuckDBError) {
    rc = sp_fail(err, SP_EINTERNAL, "%s", duckdb_result_error(&res));
  } else if (duckdb_row_count(&res) == 0 || duckdb_column_count(&res) == 0 || duckdb_value_is_null(&res, 0, 0)) {
    rc = SP_ENOTFOUND;
  } else {
    char *v = duckdb_value_varchar(&res, 0, 0);
    snprintf(out, n, "%s", v ? v : "");
    duckdb_free(v);
  }
  duckdb_destroy_result(&res);
  sp_engine_conn_put(e, c);
  return rc;
}

/* on_zero_results: use_source. When a query that reads such a dataset returns no rows, it runs again with
 * the dataset bound to its source (spice-compat §3.5). The first chunk is kept for the reader otherwise. */
static int zero_results_fallback(sp_engine *e, result_stream *r, const sp_query_request *req, sp_error *err) {
  if (!sp_engine_has_fallbacks(e, req->sql)) return SP_OK;
  r->first = duckdb_fetch_chunk(r->result);
  if (r->first != NULL) return SP_OK;
  const char *m = duckdb_result_error(&r->result);
  if (m != NULL && *m) return SP_OK; /* the error surfaces from the stream */
  char *rewritten = NULL;
  if (!sp_engine_fallback_rewrite(e, r->conn, req->sql, &rewritten) || rewritten == NULL) {
    free(rewritten);
    r->finished = 1;
    return SP_OK;
  }
  duckdb_destroy_result(&r->result);
  r->has_result = 0;
  duckdb_destroy_prepare(&r->stmt);
  if (r->options) duckdb_destroy_arrow_options(&r->options);
  r->options = NULL;
  sp_query_request again = *req;
  again.sql = rewritten;
  int rc = result_open(r, &again, err);
  free(rewritten);
  if (rc == SP_OK) __atomic_add_fetch(&e->zero_results_fallbacks, 1, __ATOMIC_RELAXED);
  return rc;
}

/* The Arrow schema of a prepared statement's result; SP_ENOTSUP when a column's type is only known once
 * parameters are bound. */
int sp_engine_prepared_schema(duckdb_connection conn, duckdb_prepared_statement ps, struct ArrowSchema *out, sp_error *err) {
  idx_t n = duckdb_prepared_statement_column_count(ps);
  duckdb_logical_type *types = calloc(n ? n : 1, sizeof *types);
  const char **names = calloc(n ? n : 1, sizeof *names);
  int rc = types && names ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  for (idx_t i = 0; rc == SP_OK && i < n; i++) {
    types[i] = duckdb_prepared_statement_column_logical_type(ps, i);
    names[i] = duckdb_prepared_statement_column_name(ps, i);
    if (types[i] == NULL || duckdb_get_type_id(types[i]) == DUCKDB_TYPE_INVALID || names[i] == NULL)
      rc = sp_fail(err, SP_ENOTSUP, "the result type depends on parameters");
  }
  if (rc == SP_OK) {
    duckdb_arrow_options opts = NULL;
    duckdb_connection_get_arrow_options(conn, &opts);
    duckdb_error_data ed = duckdb_to_arrow_schema(opts, types, names, n, out);
    if (ed != NULL && duckdb_error_data_has_error(ed)) rc = sp_engine_fail_error_data(err, SP_EINTERNAL, ed, "result schema");
    else if (ed) duckdb_destroy_error_data(&ed);
    if (opts) duckdb_destroy_arrow_options(&opts);
  }
  for (idx_t i = 0; types && i < n; i++)
    if (types[i]) duckdb_destroy_logical_type(&types[i]);
  free(types);
  for (idx_t i = 0; names && i < n; i++) duckdb_free((void *)names[i]);
  free(names);
  return rc;
}

int sp_engine_query_schema(sp_engine *e, const sp_query_request *req, struct ArrowSchema *out, sp_error *err) {
  sp_session *s;
  sp_sql_class cls;
  SP_TRY(sp_engine_session_get(e, &s, err));
  int rc = classify_cached(e, s, req->sql, &cls, err);
  duckdb_prepared_statement ps = NULL;
  if (rc == SP_OK && duckdb_prepare(s->conn, req->sql, &ps) == DuckDBError)
    rc = sp_fail(err, SP_EINVAL, "%s", duckdb_prepare_error(ps));
  if (rc == SP_OK) rc = sp_engine_prepared_schema(s->conn, ps, out, err);
  duckdb_destroy_prepare(&ps);
  sp_engine_session_put(e, s);
  return rc;
}

/* ---- INSERT INTO <dataset> [(columns)] <query> ------------------------------------------------------------ */

static void free_names(char **names, size_t n) {
  for (size_t i = 0; names && i < n; i++) free(names[i]);
  free(names);
}

/* The names in an INSERT's column list as written ("(a, \"b c\")", already checked by the classifier),
 * unquoted. *out is a malloc'd array of *n_out malloc'd strings. */
static int parse_column_list(const char *p, size_t len, char ***out, size_t *n_out) {
  const char *end = p + len;
  char **names = calloc(len / 2 + 2, sizeof *names);
  size_t n = 0;
  if (names == NULL) return SP_ENOMEM;
  if (p < end && *p == '(') p++;
  while (p < end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',' || *p == ')')) p++;
    if (p >= end) break;
    char *name = malloc((size_t)(end - p) + 1);
    size_t o = 0;
    if (name == NULL) {
      free_names(names, n);
      return SP_ENOMEM;
    }
    if (*p == '"') {
      for (p++; p < end && !(*p == '"' && (p + 1 >= end || p[1] != '"')); p++) {
        if (*p == '"') p++; /* "" inside a quoted name */
        name[o++] = *p;
      }
      p++;
    } else {
      while (p < end && *p != ',' && *p != ')' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') name[o++] = *p++;
    }
    name[o] = '\0';
    names[n++] = name;
  }
  *out = names;
  *n_out = n;
  return SP_OK;
}

/* The columns of `sql` as DuckDB prepares it on conn: their count, and (names != NULL) their names. */
static int prepared_columns(duckdb_connection conn, const char *sql, size_t *count, char ***names, sp_error *err) {
  duckdb_prepared_statement ps = NULL;
  int rc = SP_OK;
  if (duckdb_prepare(conn, sql, &ps) == DuckDBError) rc = sp_fail(err, SP_EINVAL, "%s", duckdb_prepare_error(ps));
  idx_t n = rc == SP_OK ? duckdb_prepared_statement_column_count(ps) : 0;
  if (rc == SP_OK && names && (*names = calloc(n + 1, sizeof **names)) == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  for (idx_t i = 0; rc == SP_OK && names && i < n; i++) {
    const char *c = duckdb_prepared_statement_column_name(ps, i);
    (*names)[i] = strdup(c ? c : "");
    duckdb_free((void *)c);
  }
  duckdb_destroy_prepare(&ps);
  if (rc == SP_OK) *count = n;
  return rc;
}

/* The INSERT's source query: the text after the target and its column list, without a trailing ';'. */
static char *insert_source(const char *sql, const sp_sql_class *cls) {
  const char *src = sql + cls->source_offset;
  size_t len = strlen(src);
  while (len > 0 && (src[len - 1] == ';' || src[len - 1] == ' ' || src[len - 1] == '\n' || src[len - 1] == '\t' ||
                     src[len - 1] == '\r'))
    len--;
  return strndup(src, len);
}

/* The names the source's n_source columns take: the column list, or the dataset's columns in order (fewer
 * values leave the rest NULL). *out has *n names; NULL for BY NAME (the source's own names). */
static int insert_targets(duckdb_connection conn, const char *sql, const sp_sql_class *cls, size_t n_source, char ***out,
                          size_t *n, sp_error *err) {
  *out = NULL;
  *n = n_source;
  if (cls->by_name) return SP_OK;
  if (cls->columns_len > 0) {
    if (parse_column_list(sql + cls->columns_offset, cls->columns_len, out, n) != SP_OK)
      return sp_fail(err, SP_ENOMEM, "out of memory");
  } else {
    char table[1200], all[1300];
    sp_engine_quote_ident(table, sizeof table, cls->target, 1);
    snprintf(all, sizeof all, "SELECT * FROM %s", table);
    SP_TRY(prepared_columns(conn, all, n, out, err));
    if (n_source < *n) {
      for (size_t i = n_source; i < *n; i++) free((*out)[i]);
      *n = n_source; /* the rest are NULL */
    }
  }
  if (*n != n_source) {
    free_names(*out, *n);
    *out = NULL;
    return sp_fail(err, SP_EINVAL, "INSERT into dataset \"%s\" has %zu target columns but its query gives %zu values",
                   cls->target, *n, n_source);
  }
  return SP_OK;
}

/* Names the columns of the held rows after their targets (the schema is spicec's copy; see arrow.h). */
static int rename_columns(sp_snapshot *snap, char **names, sp_error *err) {
  struct ArrowSchema copy;
  SP_TRY(sp_schema_copy(&copy, &snap->schema, err));
  for (int64_t i = 0; i < copy.n_children; i++) {
    sp_schema_strings *ps = copy.children[i]->private_data;
    char *name = strdup(names[i]);
    if (name == NULL) {
      sp_schema_release(&copy);
      return sp_fail(err, SP_ENOMEM, "out of memory");
    }
    free(ps->name);
    ps->name = name;
    copy.children[i]->name = name;
  }
  sp_schema_release(&snap->schema);
  snap->schema = copy;
  return SP_OK;
}

static void borrowed_conn_done(void *ctx, duckdb_connection conn) {
  (void)ctx;
  (void)conn;
}

/* Runs the INSERT's source query on r's connection and holds its rows: the runtime converts them with a query
 * on another connection, which must not pull from a query still running on this one. *out has one
 * reference. */
static int insert_rows(result_stream *r, const sp_query_request *req, const char *sql, sp_snapshot **out, sp_error *err) {
  result_stream *s = calloc(1, sizeof *s);
  if (s == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  s->conn = r->conn; /* borrowed: r keeps the session */
  s->done = borrowed_conn_done;
  sp_query_request source = *req;
  source.sql = sql;
  int rc = result_open(s, &source, err);
  if (rc != SP_OK) {
    result_free(s);
    return rc;
  }
  struct ArrowArrayStream rows;
  result_export(s, &rows);
  rc = sp_snapshot_from_stream(&rows, out, err);
  if (rc != SP_OK && err) err->code = SP_EINVAL;
  return rc;
}

/* INSERT: the rows go to the write hook (the runtime writes the source, then the accelerator); the answer is
 * one row, `count` (UInt64), the number of rows inserted, as DataFusion answers DML. */
static int run_insert(sp_engine *e, result_stream *r, const sp_query_request *req, const sp_sql_class *cls, sp_error *err) {
  if (e->write_fn == NULL) return sp_fail(err, SP_ENOTSUP, "INSERT into dataset \"%s\" is not supported here", cls->target);
  char *sql = insert_source(req->sql, cls), **targets = NULL;
  size_t n_targets = 0;
  sp_snapshot *snap = NULL;
  int rc = sql ? insert_rows(r, req, sql, &snap, err) : sp_fail(err, SP_ENOMEM, "out of memory");
  free(sql);
  if (rc == SP_OK) rc = insert_targets(r->conn, req->sql, cls, (size_t)snap->schema.n_children, &targets, &n_targets, err);
  if (rc == SP_OK && targets) rc = rename_columns(snap, targets, err);
  free_names(targets, n_targets);
  struct ArrowArrayStream rows;
  int64_t written = 0;
  if (rc == SP_OK) rc = sp_snapshot_stream(snap, &rows, err);
  sp_snapshot_unref(snap);
  if (rc == SP_OK) rc = e->write_fn(e->write_ctx, cls->target, &rows, &written, err);
  if (rc != SP_OK) return rc;
  char answer[96];
  snprintf(answer, sizeof answer, "SELECT CAST(%lld AS UBIGINT) AS count", (long long)written);
  sp_query_request count = {.sql = answer};
  r->count_answer = 1;
  return result_open(r, &count, err);
}

int sp_engine_query(sp_engine *e, const sp_query_request *req, struct ArrowArrayStream *out, sp_error *err) {
  result_stream *r = calloc(1, sizeof *r);
  sp_sql_class cls;
  if (r == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  r->done_ctx = e;
  int rc = sp_engine_session_get(e, &r->session, err);
  if (rc == SP_OK) {
    r->conn = r->session->conn;
    rc = classify_cached(e, r->session, req->sql, &cls, err);
  }
  char *pruned = NULL;
  uint64_t remote_token = 0;
  if (rc == SP_OK && cls.kind == SP_SQL_INSERT) {
    rc = run_insert(e, r, req, &cls, err);
  } else if (rc == SP_OK && cls.kind == SP_SQL_READ && sp_engine_remote_rewrite(e, r->conn, req, &pruned, &remote_token)) {
    sp_query_request remote = {.sql = pruned};
    rc = result_open(r, &remote, err);
    if (rc != SP_OK) sp_engine_stream_unregister(e, remote_token);
  } else if (rc == SP_OK && sp_engine_prune_rewrite(e, r->conn, req, &pruned) && pruned) {
    sp_query_request rewritten = *req;
    rewritten.sql = pruned;
    rc = result_open(r, &rewritten, err);
  } else if (rc == SP_OK) {
    rc = result_open(r, req, err);
  }
  free(pruned);
  if (rc == SP_OK) rc = zero_results_fallback(e, r, req, err);
  if (rc != SP_OK) {
    result_free(r);
    return rc;
  }
  result_export(r, out);
  return SP_OK;
}
