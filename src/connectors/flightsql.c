/* SPDX-License-Identifier: Apache-2.0
 *
 * Connectors over Arrow Flight: `flightsql:catalog.schema.table` (params flightsql_endpoint, flightsql_username,
 * flightsql_password: Flight basic auth, then the bearer token the server hands back) and `spice.ai:<table>` /
 * `spiceai:<table>` (params spiceai_endpoint, spiceai_api_key sent as `authorization: Bearer`), so one spiced
 * can federate or accelerate another's datasets. One file, one method table per scheme.
 *
 * Every read is SQL sent the way the Spice SDKs send it (FlightDescriptor CMD = the SQL text, then DoGet of the
 * returned ticket), streamed into Arrow batches by the IPC decoder one FlightData message at a time. open()
 * fetches the table's schema (GetSchema), so an unreachable endpoint is SP_ECONNECT there and the runtime
 * retries. scan() sends the projection, the limit and the conditions of filter_query that the postgres
 * translator (pg_filter.c) rebuilds, with identifiers and literals quoted by spice/sqltext.h; a filter it cannot
 * rebuild is left to the engine, which applies the whole WHERE clause again anyway.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/pg_filter.h"
#include "flight/client.h"
#include "spice/arrow.h"
#include "spice/connector.h"
#include "spice/duckdb_util.h"
#include "spice/log.h"
#include "spice/sqltext.h"

typedef struct fs_conn {
  sp_connector base; /* must be first */
  sp_flight_client *client;
  const char *endpoint; /* borrowed from base.params */
  char *relation;       /* "catalog"."schema"."table" */
  struct ArrowSchema schema;
} fs_conn;

static const sp_param_spec flightsql_params[] = {
    {"endpoint", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_REQUIRED, NULL, NULL,
     "Flight server: grpc://host:port, grpc+tls://host:port (or http://, https://)"},
    {"username", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL, "user for Flight basic auth"},
    {"password", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL, "password for Flight basic auth"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static const sp_param_spec spiceai_params[] = {
    {"endpoint", SP_PARAM_STRING, SP_PARAM_PREFIXED, "https://flight.spiceai.io", NULL,
     "Flight endpoint of the Spice runtime: grpc://host:port for another spiced"},
    {"api_key", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL,
     "API key, sent as authorization: Bearer <key>"},
    {"token", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL, "bearer token, when no api_key is set"},
    {"app_id", SP_PARAM_STRING, SP_PARAM_PREFIXED, NULL, NULL, "accepted for compatibility; not used"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static const char *param(const fs_conn *c, const char *key) { return sp_params_get(&c->base.params, key); }

static int is_spiceai(const fs_conn *c) { return strcmp(c->base.module->prefix, "spiceai") == 0; }

/* ---- Opening ---------------------------------------------------------------------------------------------- */

/* The table of a spice.ai path: `spice.ai/eth.blocks` (a `from` without ':') and
 * `spice.ai/<org>/<app>/datasets/<table>` name the table after their last part. */
static const char *spiceai_table(const char *path) {
  if (strncmp(path, "spice.ai/", 9) == 0) path += 9;
  const char *d = strstr(path, "/datasets/");
  return d ? d + 10 : path;
}

/* "a.b.c" → "a"."b"."c" (malloc'd). */
static int quote_path(const char *path, char **out, sp_error *err) {
  size_t cap = 3 * strlen(path) + 8, o = 0;
  char *q = malloc(cap);
  if (q == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  int ok = *path != '\0' && strchr(path, '/') == NULL;
  for (const char *p = path; ok && p;) {
    const char *dot = strchr(p, '.');
    char part[256];
    snprintf(part, sizeof part, "%.*s", dot ? (int)(dot - p) : (int)strlen(p), p);
    if (o) q[o++] = '.';
    ok = part[0] != '\0' && sp_sql_ident(q + o, cap - o, part) == 0;
    if (ok) o += strlen(q + o);
    p = dot ? dot + 1 : NULL;
  }
  if (!ok) {
    free(q);
    return sp_fail(err, SP_EINVAL, "\"%s\" is not a table reference (catalog.schema.table)", path);
  }
  *out = q;
  return SP_OK;
}

/* Credentials: basic auth by Handshake (flightsql), or a bearer header on every call (spice.ai). */
static int authenticate(fs_conn *c, sp_error *err) {
  if (is_spiceai(c)) {
    const char *key = param(c, "spiceai_api_key") ? param(c, "spiceai_api_key") : param(c, "spiceai_token");
    if (key == NULL) return SP_OK;
    char *hdr = malloc(strlen(key) + 8);
    if (hdr == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
    sprintf(hdr, "Bearer %s", key);
    int rc = sp_flight_client_set_header(c->client, "authorization", hdr, err);
    free(hdr);
    return rc;
  }
  const char *user = param(c, "flightsql_username"), *pass = param(c, "flightsql_password");
  if (user == NULL && pass == NULL) return SP_OK;
  return sp_flight_client_handshake_basic(c->client, user, pass, err);
}

static const char *const star[] = {"*"};

static int fetch_schema(fs_conn *c, sp_error *err) {
  char *sql = sp_sql_select(star, 1, c->relation, NULL, -1);
  if (sql == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  int rc = sp_flight_client_schema(c->client, sql, &c->schema, err);
  free(sql);
  return rc;
}

static void fs_close(sp_connector *self) {
  fs_conn *c = (fs_conn *)self;
  sp_flight_client_close(c->client);
  sp_schema_release(&c->schema);
  free(c->relation);
}

static int fs_open(sp_connector *self, sp_error *err) {
  fs_conn *c = (fs_conn *)self;
  const char *path = self->dataset->path ? self->dataset->path : "";
  c->endpoint = param(c, is_spiceai(c) ? "spiceai_endpoint" : "flightsql_endpoint");
  int rc = quote_path(is_spiceai(c) ? spiceai_table(path) : path, &c->relation, err);
  if (rc == SP_OK) rc = sp_flight_client_open(c->endpoint, &c->client, err);
  if (rc == SP_OK) sp_flight_client_set_flight_sql(c->client, !is_spiceai(c)); /* as Spice: Flight SQL vs SQL text */
  if (rc == SP_OK) rc = authenticate(c, err);
  if (rc == SP_OK) rc = fetch_schema(c, err);
  if (rc != SP_OK) fs_close(self); /* the runtime names the dataset in its message */
  return rc;
}

/* ---- Reading ---------------------------------------------------------------------------------------------- */

static int run(fs_conn *c, const char *sql, struct ArrowArrayStream *out, sp_error *err) {
  sp_log_debug("dataset \"%s\": flight query to \"%s\": %s", c->base.dataset->name, c->endpoint, sql);
  return sp_flight_client_query(c->client, sql, out, NULL, err);
}

static int fs_get_schema(sp_connector *self, struct ArrowSchema *out, sp_error *err) {
  return sp_schema_copy(out, &((fs_conn *)self)->schema, err);
}

static int fs_get_all_data(sp_connector *self, struct ArrowArrayStream *out, sp_error *err) {
  fs_conn *c = (fs_conn *)self;
  char *sql = sp_sql_select(star, 1, c->relation, NULL, -1);
  if (sql == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  int rc = run(c, sql, out, err);
  free(sql);
  return rc;
}

/* The translator's callbacks: only columns of the table, double-quoted; literals in standard SQL quoting. */
static char *quote_column(void *ctx, const char *name) {
  const fs_conn *c = ctx;
  for (int64_t i = 0; i < c->schema.n_children; i++) {
    if (strcmp(c->schema.children[i]->name, name) != 0) continue;
    size_t n = 2 * strlen(name) + 3;
    char *q = malloc(n);
    if (q && sp_sql_ident(q, n, name) != 0) free(q), q = NULL;
    return q;
  }
  return NULL;
}

static char *quote_literal(void *ctx, const char *s) {
  (void)ctx;
  return sp_sql_literal_dup(s);
}

/* The WHERE clause of `SELECT * FROM <dataset> WHERE …` rebuilt for the remote (malloc'd; "" when none). */
static int where_of(fs_conn *c, const char *query, char **out, sp_error *err) {
  char *json = NULL, what[400];
  snprintf(what, sizeof what, "the filter of dataset \"%s\"", c->base.dataset->name);
  SP_TRY(sp_duckdb_serialize_sql(query, what, &json, err));
  pgf_ctx cx = {.dataset = c->base.dataset->name, .column = quote_column, .literal = quote_literal, .ctx = c};
  int rc = pgf_where(json, &cx, out, err);
  free(json);
  return rc;
}

/* The projection as quoted names, each checked against the schema. */
static int projection(fs_conn *c, const sp_scan *scan, char ***out, sp_error *err) {
  char **cols = calloc(scan->n_columns ? scan->n_columns : 1, sizeof *cols);
  if (cols == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; i < scan->n_columns; i++) {
    if ((cols[i] = quote_column(c, scan->columns[i])) != NULL) continue;
    for (size_t j = 0; j < i; j++) free(cols[j]);
    free(cols);
    return sp_fail(err, SP_EINVAL, "dataset \"%s\" has no column \"%s\"", c->base.dataset->name, scan->columns[i]);
  }
  *out = cols;
  return SP_OK;
}

static int fs_scan(sp_connector *self, const sp_scan *scan, struct ArrowArrayStream *out, sp_error *err) {
  fs_conn *c = (fs_conn *)self;
  char *where = NULL, **cols = NULL;
  size_t n = scan->columns ? scan->n_columns : 0;
  sp_error ferr = {0};
  if (scan->query) { /* refresh_sql and friends must run at the source */
    SP_TRY(where_of(c, scan->query, &where, err));
  } else if (scan->filter_query && where_of(c, scan->filter_query, &where, &ferr) != SP_OK) {
    sp_log_debug("dataset \"%s\": filter not pushed to the flight endpoint: %s", self->dataset->name, ferr.msg);
    where = NULL;
  }
  int rc = n ? projection(c, scan, &cols, err) : SP_OK;
  char *sql = NULL;
  const char *const *exprs = n ? (const char *const *)cols : star;
  if (rc == SP_OK && (sql = sp_sql_select(exprs, n ? n : 1, c->relation, where, scan->limit)) == NULL)
    rc = sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK && (rc = run(c, sql, out, err)) != SP_OK) /* reaches a query's user: name the dataset */
    sp_error_prefix(err, "dataset \"%s\"", self->dataset->name);
  free(sql);
  for (size_t i = 0; cols && i < n; i++) free(cols[i]);
  free(cols);
  free(where);
  return rc;
}

#define FS_METHODS                                                                                            \
  .abi = SP_CONNECTOR_ABI, .instance_size = sizeof(fs_conn),                                                  \
  .caps = SP_CONNECTOR_CAP_SCAN_PROJECTION | SP_CONNECTOR_CAP_SCAN_LIMIT, .open = fs_open, .close = fs_close, \
  .get_schema = fs_get_schema, .get_all_data = fs_get_all_data, .scan = fs_scan

const sp_connector_module sp_connector_flightsql = {.name = "flightsql", .prefix = "flightsql",
                                                    .params = flightsql_params, FS_METHODS};
/* `spice.ai:` (and a `from` without ':') and `spiceai:` are one connector under two names. */
const sp_connector_module sp_connector_spice_ai = {.name = "spice.ai", .prefix = "spiceai", .params = spiceai_params,
                                                   FS_METHODS};
const sp_connector_module sp_connector_spiceai = {.name = "spiceai", .prefix = "spiceai", .params = spiceai_params,
                                                  FS_METHODS};
