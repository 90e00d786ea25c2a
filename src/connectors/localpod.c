/* SPDX-License-Identifier: Apache-2.0
 *
 * The `localpod` connector: a dataset fed from another dataset of the same spicepod (`localpod:<parent>`),
 * so a source is read once and accelerated several ways (Spice's tiered accelerations).
 *
 * Reads go to the parent's table in the serving engine, that is to its accelerated copy (or, for a federated
 * parent, through it to its source). An arrow-accelerated parent's snapshot is streamed as it is (its batches
 * shared, not copied); any other read is a query over the parent that is materialised before it is handed
 * on, because the child's accelerator may write to the engine that query reads. refresh_sql and federated
 * filters are SQL over the child's name: they run in the engine with the child's name bound to the parent by a
 * CTE (`WITH "child" AS (SELECT * FROM "parent") …`), after the classifier has accepted the whole text.
 * When the parent refreshes, the child follows (src/runtime/localpod_link.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spice/arrow.h"
#include "spice/connector.h"
#include "spice/engine.h"
#include "spice/log.h"
#include "spice/sqltext.h"

typedef struct lp_conn {
  sp_connector base; /* must be first */
  char *parent;      /* the parent's quoted name */
  char *self_name;   /* the child's quoted name */
} lp_conn;

static const sp_param_spec lp_params[] = {{NULL, 0, 0, NULL, NULL, NULL}};

static char *quoted(const char *name) {
  size_t n = 2 * strlen(name) + 3;
  char *q = malloc(n);
  if (q && sp_sql_ident(q, n, name) != 0) {
    free(q);
    q = NULL;
  }
  return q;
}

static int64_t catalog_count(sp_engine *e, const char *parent, const char *cond);

static void lp_close(sp_connector *self) {
  lp_conn *c = (lp_conn *)self;
  free(c->parent);
  free(c->self_name);
}

static int lp_open(sp_connector *self, sp_error *err) {
  lp_conn *c = (lp_conn *)self;
  const char *parent = self->dataset->path, *name = self->dataset->name;
  if (parent == NULL || *parent == '\0')
    return sp_fail(err, SP_EINVAL, "from: localpod: needs the name of a dataset of this spicepod (dataset \"%s\")", name);
  if (strcmp(parent, name) == 0)
    return sp_fail(err, SP_EINVAL, "localpod dataset \"%s\" cannot read itself", name);
  if (self->engine == NULL)
    return sp_fail(err, SP_EINVAL, "localpod dataset \"%s\" has no engine to read its parent from", name);
  if (catalog_count(self->engine, parent, "true") == 0)
    return sp_fail(err, SP_EINVAL, "parent dataset \"%s\" of localpod dataset \"%s\" is not in this spicepod", parent, name);
  c->parent = quoted(parent);
  c->self_name = quoted(name);
  if (c->parent == NULL || c->self_name == NULL) {
    lp_close(self);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  return SP_OK;
}

/* How many catalog entries named like the parent (its last name part) match `cond` (SQL over view_name and
 * sql), or -1 when the catalog cannot be read. */
static int64_t catalog_count(sp_engine *e, const char *parent, const char *cond) {
  const char *dot = strrchr(parent, '.');
  char lit[600], sql[1000];
  int64_t n = 0;
  if (sp_sql_literal(lit, sizeof lit, dot ? dot + 1 : parent) != 0) return -1;
  snprintf(sql, sizeof sql, "SELECT count(*) FROM (SELECT view_name, sql FROM duckdb_views() UNION ALL "
           "SELECT table_name, sql FROM duckdb_tables()) WHERE view_name = %s AND %s", lit, cond);
  return sp_engine_query_int(e, sql, &n, NULL) == SP_OK ? n : -1;
}

/* True while the parent is the engine's placeholder (an accelerated parent before its first load, a federated
 * one before its source was reached): reading it then is worth retrying. */
static int parent_loading(lp_conn *c) {
  return catalog_count(c->base.engine, c->base.dataset->path, "sql LIKE '%sp_unavailable(%'") > 0;
}

/* Runs `sql` (checked by the classifier first: only reads of the pod's tables) and materialises the result
 * into a stream owned by the caller. */
static int run_materialised(lp_conn *c, const char *sql, struct ArrowArrayStream *out, sp_error *err) {
  struct ArrowArrayStream rows;
  sp_snapshot *snap = NULL;
  sp_log_debug("dataset \"%s\": %s", c->base.dataset->name, sql);
  int rc = sp_engine_check_sql(c->base.engine, sql, err);
  if (rc == SP_OK) rc = sp_engine_query_internal(c->base.engine, sql, &rows, err);
  if (rc == SP_OK) rc = sp_snapshot_from_stream(&rows, &snap, err);
  if (rc == SP_OK) rc = sp_snapshot_stream(snap, out, err);
  sp_snapshot_unref(snap);
  if (rc != SP_OK && rc != SP_ENOMEM && parent_loading(c))
    return sp_fail(err, SP_EBUSY, "parent dataset \"%s\" of localpod dataset \"%s\" has not loaded yet",
                   c->base.dataset->path, c->base.dataset->name);
  if (rc != SP_OK)
    sp_error_prefix(err, "could not read parent dataset \"%s\" of localpod dataset \"%s\"", c->base.dataset->path,
                    c->base.dataset->name);
  return rc;
}

/* `WITH "child" AS (SELECT * FROM "parent") <body>`, malloc'd. */
static char *with_parent(const lp_conn *c, const char *body) {
  size_t n = strlen(c->self_name) + strlen(c->parent) + strlen(body) + 64;
  char *sql = malloc(n);
  if (sql) snprintf(sql, n, "WITH %s AS (SELECT * FROM %s) %s", c->self_name, c->parent, body);
  return sql;
}

/* `SELECT * FROM "child"`, malloc'd. */
static char *select_all(const lp_conn *c) {
  size_t n = strlen(c->self_name) + 16;
  char *sql = malloc(n);
  if (sql) snprintf(sql, n, "SELECT * FROM %s", c->self_name);
  return sql;
}

static int lp_get_schema(sp_connector *self, struct ArrowSchema *out, sp_error *err) {
  lp_conn *c = (lp_conn *)self;
  size_t n = strlen(c->parent) + 32;
  char *sql = malloc(n);
  if (sql == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  snprintf(sql, n, "SELECT * FROM %s LIMIT 0", c->parent);
  struct ArrowArrayStream s;
  int rc = run_materialised(c, sql, &s, err);
  free(sql);
  SP_TRY(rc);
  if (s.get_schema(&s, out) != 0) rc = sp_fail(err, SP_EIO, "could not read the schema of dataset \"%s\"", self->dataset->path);
  sp_stream_release(&s);
  return rc;
}

static int lp_get_all_data(sp_connector *self, struct ArrowArrayStream *out, sp_error *err) {
  lp_conn *c = (lp_conn *)self;
  sp_snapshot *snap = sp_engine_pin_current(self->engine, self->dataset->path);
  if (snap) { /* an arrow parent: its current copy, batches shared */
    int rc = sp_snapshot_stream(snap, out, err);
    sp_snapshot_unref(snap);
    return rc;
  }
  char *all = select_all(c), *sql = all ? with_parent(c, all) : NULL;
  int rc = sql ? run_materialised(c, sql, out, err) : sp_fail(err, SP_ENOMEM, "out of memory");
  free(all);
  free(sql);
  return rc;
}

/* SELECT <columns> FROM (<inner>) AS "child" [LIMIT n], malloc'd (NULL when out of memory or a name is too
 * long). */
static char *projected(const lp_conn *c, const sp_scan *scan, const char *inner) {
  size_t n = scan->columns ? scan->n_columns : 0;
  char **exprs = calloc(n ? n : 1, sizeof *exprs);
  int ok = exprs != NULL;
  for (size_t i = 0; ok && i < n; i++) ok = (exprs[i] = quoted(scan->columns[i])) != NULL;
  char *rel = ok ? malloc(strlen(inner) + strlen(c->self_name) + 16) : NULL;
  if (rel) sprintf(rel, "(%s) AS %s", inner, c->self_name);
  const char *star = "*";
  char *sql = rel ? sp_sql_select(n ? (const char *const *)exprs : &star, n ? n : 1, rel, NULL, scan->limit) : NULL;
  for (size_t i = 0; exprs && i < n; i++) free(exprs[i]);
  free(exprs);
  free(rel);
  return sql;
}

/* refresh_sql (scan->query) and federated reads (projection, limit, filter_query) over the child's name. */
static int lp_scan(sp_connector *self, const sp_scan *scan, struct ArrowArrayStream *out, sp_error *err) {
  lp_conn *c = (lp_conn *)self;
  char *sql = NULL, *inner = NULL;
  if (scan->query) {
    sql = with_parent(c, scan->query);
  } else {
    inner = scan->filter_query ? strdup(scan->filter_query) : select_all(c);
    char *body = inner ? projected(c, scan, inner) : NULL;
    sql = body ? with_parent(c, body) : NULL;
    free(body);
  }
  int rc = sql ? run_materialised(c, sql, out, err) : sp_fail(err, SP_ENOMEM, "out of memory");
  free(sql);
  free(inner);
  return rc;
}

const sp_connector_module sp_connector_localpod = {
    .abi = SP_CONNECTOR_ABI,
    .name = "localpod",
    .prefix = "localpod",
    .params = lp_params,
    .instance_size = sizeof(lp_conn),
    .caps = SP_CONNECTOR_CAP_SCAN_PROJECTION | SP_CONNECTOR_CAP_SCAN_LIMIT,
    .open = lp_open,
    .close = lp_close,
    .get_schema = lp_get_schema,
    .get_all_data = lp_get_all_data,
    .scan = lp_scan,
};
