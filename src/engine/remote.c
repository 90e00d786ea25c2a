/* SPDX-License-Identifier: Apache-2.0
 *
 * Whole-query pushdown (spice/sql_dialect.h). A user query whose tables are all federated datasets on one
 * server that runs SQL itself is printed in that server's dialect (unparse.c) and run there; the engine then
 * answers `SELECT CAST(c1 AS <planned type>) AS "<name>", … FROM sp_stream('<token>')` over the server's rows,
 * so that names and types are exactly those DuckDB would have produced. A query the printer refuses, or that the
 * server fails to start, runs locally as if nothing had happened (the per-table scans still push projections and
 * filters).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "engine/engine_int.h"
#include "engine/unparse.h"
#include "spice/buf.h"
#include "spice/duckdb_util.h"
#include "spice/log.h"
#include "spice/sqltext.h"

#define REMOTE_MAX_TABLES 32

/* The remote sources a query reads, copied out of the registry (it may change while the query runs). */
typedef struct remote_plan {
  sp_unparse_table tables[REMOTE_MAX_TABLES];
  struct ArrowSchema schemas[REMOTE_MAX_TABLES], alls[REMOTE_MAX_TABLES];
  char *names[REMOTE_MAX_TABLES], *remotes[REMOTE_MAX_TABLES];
  size_t n;
  sp_remote_source src; /* the server's, from the first table (strings owned) */
  int refused;          /* a table is not a remote source, or another server's */
  int strict;           /* some table computes on only some of its columns */
} remote_plan;

static const char *jstr(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

static void plan_free(remote_plan *p) {
  for (size_t i = 0; i < p->n; i++) {
    sp_schema_release(&p->schemas[i]);
    sp_schema_release(&p->alls[i]);
    free(p->names[i]);
    free(p->remotes[i]);
  }
  free((char *)p->src.server);
  free((char *)p->src.text_collation);
}

static bool any_remote(sp_engine *e, const char *sql) {
  bool found = false;
  pthread_mutex_lock(&e->lock);
  for (sp_slot *s = e->sources; s && !found; s = s->next) found = s->remote.dialect && strcasestr(sql, s->name);
  pthread_mutex_unlock(&e->lock);
  return found;
}

static bool named_by_cte(json_t *j, const char *name) {
  if (json_is_object(j)) {
    json_t *map = json_object_get(json_object_get(j, "cte_map"), "map");
    for (size_t i = 0; i < json_array_size(map); i++)
      if (!strcasecmp(jstr(json_array_get(map, i), "key"), name)) return true;
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) if (named_by_cte(v, name)) return true;
  } else if (json_is_array(j)) {
    for (size_t i = 0; i < json_array_size(j); i++)
      if (named_by_cte(json_array_get(j, i), name)) return true;
  }
  return false;
}

/* Adds table `name` to the plan, under the engine's lock. */
static void plan_add(sp_engine *e, remote_plan *p, const char *name) {
  for (size_t i = 0; i < p->n; i++)
    if (!strcasecmp(p->names[i], name)) return;
  sp_slot *s = e->sources;
  while (s && strcasecmp(s->name, name)) s = s->next;
  if (s == NULL || !s->remote.dialect || p->n == REMOTE_MAX_TABLES) {
    p->refused = 1;
    return;
  }
  if (p->n == 0) {
    p->src = s->remote;
    p->src.server = strdup(s->remote.server);
    p->src.text_collation = s->remote.text_collation ? strdup(s->remote.text_collation) : NULL;
    p->src.computable = NULL; /* the slot's; the plan keeps its own copies */
  } else if (p->src.dialect != s->remote.dialect || strcmp(p->src.server ? p->src.server : "", s->remote.server)) {
    p->refused = 1;
    return;
  }
  size_t i = p->n;
  p->names[i] = strdup(name);
  p->remotes[i] = strdup(s->remote.table);
  const struct ArrowSchema *computable = s->remote.computable ? s->remote.computable : &s->schema;
  if (p->names[i] == NULL || p->remotes[i] == NULL || sp_schema_copy(&p->schemas[i], computable, NULL) != SP_OK ||
      sp_schema_copy(&p->alls[i], &s->schema, NULL) != SP_OK) {
    sp_schema_release(&p->schemas[i]);
    free(p->names[i]);
    free(p->remotes[i]);
    p->refused = 1;
    return;
  }
  if (s->remote.computable) p->strict = 1;
  p->tables[i] = (sp_unparse_table){.name = p->names[i], .remote = p->remotes[i], .schema = &p->schemas[i],
                                    .all = &p->alls[i]};
  p->n++;
}

static void plan_walk(sp_engine *e, remote_plan *p, json_t *root, json_t *j) {
  if (p->refused) return;
  if (json_is_object(j)) {
    if (!strcmp(jstr(j, "type"), "BASE_TABLE") && !named_by_cte(root, jstr(j, "table_name")))
      plan_add(e, p, jstr(j, "table_name"));
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) plan_walk(e, p, root, v);
  } else if (json_is_array(j)) {
    for (size_t i = 0; i < json_array_size(j); i++) plan_walk(e, p, root, json_array_get(j, i));
  }
}

/* DuckDB's spelling of a result column's type, for the cast back; false for types not worth the trouble. */
static bool type_sql(duckdb_logical_type t, char *out, size_t n) {
  static const struct { duckdb_type id; const char *name; } names[] = {
      {DUCKDB_TYPE_BOOLEAN, "BOOLEAN"},   {DUCKDB_TYPE_TINYINT, "TINYINT"},     {DUCKDB_TYPE_SMALLINT, "SMALLINT"},
      {DUCKDB_TYPE_INTEGER, "INTEGER"},   {DUCKDB_TYPE_BIGINT, "BIGINT"},       {DUCKDB_TYPE_HUGEINT, "HUGEINT"},
      {DUCKDB_TYPE_UTINYINT, "UTINYINT"}, {DUCKDB_TYPE_USMALLINT, "USMALLINT"}, {DUCKDB_TYPE_UINTEGER, "UINTEGER"},
      {DUCKDB_TYPE_UBIGINT, "UBIGINT"},   {DUCKDB_TYPE_FLOAT, "FLOAT"},         {DUCKDB_TYPE_DOUBLE, "DOUBLE"},
      {DUCKDB_TYPE_VARCHAR, "VARCHAR"},   {DUCKDB_TYPE_BLOB, "BLOB"},           {DUCKDB_TYPE_DATE, "DATE"},
      {DUCKDB_TYPE_TIME, "TIME"},         {DUCKDB_TYPE_TIMESTAMP, "TIMESTAMP"}, {DUCKDB_TYPE_TIMESTAMP_TZ, "TIMESTAMPTZ"},
      {DUCKDB_TYPE_INTERVAL, "INTERVAL"}, {DUCKDB_TYPE_UUID, "UUID"}};
  duckdb_type id = duckdb_get_type_id(t);
  if (id == DUCKDB_TYPE_DECIMAL)
    return snprintf(out, n, "DECIMAL(%u,%u)", duckdb_decimal_width(t), duckdb_decimal_scale(t)) < (int)n;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].id == id) return snprintf(out, n, "%s", names[i].name) < (int)n;
  return false;
}

/* `SELECT CAST(c1 AS T1) AS "name1", … FROM sp_stream('<token>') AS r(c1, …)` for the statement `ps`. */
static char *cast_back_sql(duckdb_prepared_statement ps, uint64_t token) {
  idx_t n = duckdb_prepared_statement_column_count(ps);
  sp_buf b = {0}, names = {0};
  bool ok = n > 0 && sp_buf_append_str(&b, "SELECT ") == SP_OK;
  for (idx_t i = 0; ok && i < n; i++) {
    duckdb_logical_type t = duckdb_prepared_statement_column_logical_type(ps, i);
    const char *name = duckdb_prepared_statement_column_name(ps, i);
    char type[64], col[32], quoted[1024];
    snprintf(col, sizeof col, "c%llu", (unsigned long long)i + 1);
    ok = t && name && type_sql(t, type, sizeof type) && sp_sql_ident(quoted, sizeof quoted, name) == 0;
    char item[1200];
    snprintf(item, sizeof item, "%sCAST(%s AS %s) AS %s", i ? ", " : "", col, ok ? type : "", quoted);
    ok = ok && sp_buf_append_str(&b, item) == SP_OK && sp_buf_append_str(&names, i ? ", " : "") == SP_OK &&
         sp_buf_append_str(&names, col) == SP_OK;
    if (t) duckdb_destroy_logical_type(&t);
    duckdb_free((void *)name);
  }
  char tail[96];
  snprintf(tail, sizeof tail, " FROM sp_stream('%llu') AS _sp_remote(", (unsigned long long)token);
  ok = ok && sp_buf_append_str(&b, tail) == SP_OK && sp_buf_cstr(&names) &&
       sp_buf_append_str(&b, names.data) == SP_OK && sp_buf_append_str(&b, ")") == SP_OK && sp_buf_cstr(&b);
  sp_buf_free(&names);
  if (!ok) sp_buf_free(&b);
  return ok ? b.data : NULL;
}

/* Prints the query for the plan's server; NULL when it is not printable there. */
static char *remote_sql(json_t *node, const remote_plan *p) {
  sp_unparse_env env = {.dialect = p->src.dialect, .text_collation = p->src.text_collation, .tables = p->tables,
                        .n_tables = p->n, .strict = p->strict};
  char *sql = NULL;
  sp_error err = {0};
  if (sp_unparse_query(node, &env, &sql, &err) != SP_OK) sp_log_debug("query runs locally (%s)", err.msg);
  return sql;
}

/* The server's rows with the first batch already read: most errors a server raises (division by zero, a bad
 * cast) come before its first rows, and then the query can still run locally instead. */
typedef struct peeked {
  struct ArrowArrayStream inner;
  struct ArrowArray first; /* release NULL once handed out (or at the end of the stream) */
} peeked;

static int peeked_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  peeked *p = st->private_data;
  return p->inner.get_schema(&p->inner, out);
}

static int peeked_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  peeked *p = st->private_data;
  if (p->first.release == NULL) return p->inner.get_next(&p->inner, out);
  *out = p->first;
  p->first.release = NULL;
  return 0;
}

static const char *peeked_error(struct ArrowArrayStream *st) {
  peeked *p = st->private_data;
  return p->inner.get_last_error(&p->inner);
}

static void peeked_release(struct ArrowArrayStream *st) {
  peeked *p = st->private_data;
  if (p->first.release) p->first.release(&p->first);
  sp_stream_release(&p->inner);
  free(p);
  st->release = NULL;
}

/* Reads the first batch of *rows; on success *rows is replaced by a stream that starts with it. */
static int peek(struct ArrowArrayStream *rows, sp_error *err) {
  peeked *p = calloc(1, sizeof *p);
  if (p == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  if (rows->get_next(rows, &p->first) != 0) {
    const char *m = rows->get_last_error(rows);
    free(p);
    return sp_fail(err, SP_EIO, "%s", m ? m : "the server failed");
  }
  p->inner = *rows;
  *rows = (struct ArrowArrayStream){.get_schema = peeked_schema, .get_next = peeked_next,
                                    .get_last_error = peeked_error, .release = peeked_release, .private_data = p};
  return SP_OK;
}

/* Runs the printed query at the source and registers its rows; returns the local SQL that reads them. */
static char *run_remote(sp_engine *e, duckdb_connection conn, const sp_query_request *req, const remote_plan *p,
                        const char *sql, uint64_t *token) {
  duckdb_prepared_statement ps = NULL;
  char *local = NULL;
  if (duckdb_prepare(conn, req->sql, &ps) == DuckDBError) {
    duckdb_destroy_prepare(&ps);
    return NULL; /* the local run reports the error */
  }
  struct ArrowArrayStream rows = {0};
  struct ArrowSchema schema = {0}, want = {0};
  sp_error err = {0};
  idx_t n = duckdb_prepared_statement_column_count(ps);
  if (sp_engine_prepared_schema(conn, ps, &want, &err) != SP_OK) {
    sp_log_debug("query runs locally (%s)", err.msg);
  } else if (p->src.run(p->src.ctx, sql, &want, sp_engine_conn_stop(e, conn), &rows, &err) != SP_OK ||
             peek(&rows, &err) != SP_OK) {
    /* A stalled server ends here too: the query's stop flag (runtime.query.timeout) ended its wait. */
    sp_log_warn("query pushed down to %s failed there, running it locally: %s", p->src.server, err.msg);
  } else if (rows.get_schema(&rows, &schema) != 0 || schema.n_children != (int64_t)n) {
    sp_log_warn("query pushed down to %s returned %lld columns, %llu expected; running it locally", p->src.server,
                (long long)schema.n_children, (unsigned long long)n);
  } else if (sp_engine_stream_register(e, &rows, token, &err) == SP_OK) {
    local = cast_back_sql(ps, *token);
    if (local == NULL) sp_engine_stream_unregister(e, *token);
    else sp_log_debug("query pushed down to %s: %s", p->src.server, sql);
  }
  sp_schema_release(&schema);
  sp_schema_release(&want);
  sp_stream_release(&rows);
  duckdb_destroy_prepare(&ps);
  return local;
}

int sp_engine_remote_rewrite(sp_engine *e, duckdb_connection conn, const sp_query_request *req, char **out_sql,
                             uint64_t *out_token) {
  *out_sql = NULL;
  if (req->n_params > 0 || !any_remote(e, req->sql)) return 0;
  char *text = NULL;
  if (sp_duckdb_serialize_sql_full(req->sql, "a query", &text, NULL) != SP_OK) return 0;
  json_t *ast = json_loads(text, 0, NULL);
  free(text);
  json_t *stmts = json_object_get(ast, "statements");
  remote_plan p = {0};
  if (ast && !json_is_true(json_object_get(ast, "error")) && json_array_size(stmts) == 1) {
    json_t *node = json_object_get(json_array_get(stmts, 0), "node");
    pthread_mutex_lock(&e->lock);
    plan_walk(e, &p, node, node);
    pthread_mutex_unlock(&e->lock);
    char *sql = !p.refused && p.n > 0 ? remote_sql(node, &p) : NULL;
    if (sql) *out_sql = run_remote(e, conn, req, &p, sql, out_token);
    free(sql);
  }
  plan_free(&p);
  json_decref(ast);
  return *out_sql != NULL;
}
