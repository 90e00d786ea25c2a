/* SPDX-License-Identifier: Apache-2.0
 *
 * Flight SQL catalog commands (FlightSql.proto): CommandGetCatalogs, CommandGetDbSchemas, CommandGetTables
 * (with include_schema), CommandGetTableTypes and CommandGetPrimaryKeys, with the result schemas of the spec.
 * CommandGetSqlInfo lives in flight_sqlinfo.c (its result is a dense union).
 *
 * What is listed is what a query can name: every dataset (table type "BASE TABLE") and every view ("VIEW") of
 * the spicepod, in the engine's catalog (DuckDB's current_database()) and schema (the part of a dotted name
 * before the '.', else current_schema()). Filter patterns are SQL LIKE patterns ('%', '_', '\' escapes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/flight_batch.h"
#include "server/flight_int.h"
#include "spice/arrow.h"
#include "spice/sqltext.h"

#define NAME_MAX_LEN 256

typedef struct meta_table {
  char schema[NAME_MAX_LEN], name[NAME_MAX_LEN];
  char full[NAME_MAX_LEN]; /* as written in the spicepod */
  const char *type;        /* "BASE TABLE" | "VIEW" */
  const char *primary_key; /* the acceleration's, borrowed from the pod; NULL: none */
} meta_table;

typedef struct meta_list {
  char catalog[NAME_MAX_LEN], default_schema[NAME_MAX_LEN];
  meta_table *t;
  size_t n;
} meta_list;

static const fl_colspec catalogs_spec[] = {{"catalog_name", "u", false}};
static const fl_colspec schemas_spec[] = {{"catalog_name", "u", true}, {"db_schema_name", "u", false}};
static const fl_colspec tables_spec[] = {{"catalog_name", "u", true},
                                         {"db_schema_name", "u", true},
                                         {"table_name", "u", false},
                                         {"table_type", "u", false},
                                         {"table_schema", "z", false}};
static const fl_colspec table_types_spec[] = {{"table_type", "u", false}};
static const fl_colspec keys_spec[] = {{"catalog_name", "u", true}, {"db_schema_name", "u", true},
                                       {"table_name", "u", false},  {"column_name", "u", false},
                                       {"key_name", "u", true},     {"key_sequence", "i", false}};

static const struct {
  const char *name;
  const fl_colspec *spec;
  size_t n;
} commands[] = {
    {"CommandGetCatalogs", catalogs_spec, 1},   {"CommandGetDbSchemas", schemas_spec, 2},
    {"CommandGetTables", tables_spec, 5},       {"CommandGetTableTypes", table_types_spec, 1},
    {"CommandGetPrimaryKeys", keys_spec, 6},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static int command_index(sp_pb_bytes name) {
  for (size_t i = 0; i < N_COMMANDS; i++)
    if (strlen(commands[i].name) == name.len && memcmp(commands[i].name, name.data, name.len) == 0) return (int)i;
  return -1;
}

bool sp__flight_meta_known(sp_pb_bytes name) {
  return command_index(name) >= 0;
}

/* include_schema adds the last column of CommandGetTables; the schema without it is the first four. */
static size_t spec_cols(int i, bool include_schema) {
  return commands[i].spec == tables_spec && !include_schema ? 4 : commands[i].n;
}

static bool include_schema_of(sp_pb_bytes name, sp_pb_bytes value) {
  sp_pb_msg m;
  if (command_index(name) < 0 || commands[command_index(name)].spec != tables_spec) return false;
  return sp_flight_decode_fields(value.data, value.len, &m, NULL) == SP_OK && m.varint[5] != 0;
}

int sp__flight_meta_schema(sp_pb_bytes name, sp_pb_bytes value, struct ArrowSchema *out, sp_error *err) {
  int i = command_index(name);
  if (i < 0) return sp_fail(err, SP_ENOTSUP, "%.*s is not implemented", (int)name.len, (const char *)name.data);
  return fl_schema_make(commands[i].spec, spec_cols(i, include_schema_of(name, value)), out, err);
}

/* ---- The tables --------------------------------------------------------------------------------------- */

static void split_name(const char *full, const char *default_schema, meta_table *t) {
  const char *dot = strchr(full, '.');
  snprintf(t->full, sizeof t->full, "%s", full);
  if (dot) {
    snprintf(t->schema, sizeof t->schema, "%.*s", (int)(dot - full), full);
    snprintf(t->name, sizeof t->name, "%s", dot + 1);
  } else {
    snprintf(t->schema, sizeof t->schema, "%s", default_schema);
    snprintf(t->name, sizeof t->name, "%s", full);
  }
}

static bool listed(const meta_list *l, const char *full) {
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(l->t[i].full, full) == 0) return true;
  return false;
}

static const char *primary_key_of(const sp_pod *pod, const char *name) {
  for (size_t i = 0; pod && i < pod->n_datasets; i++)
    if (strcmp(pod->datasets[i].name, name) == 0) return pod->datasets[i].acceleration.primary_key;
  return NULL;
}

static int by_name(const void *a, const void *b) {
  const meta_table *x = a, *y = b;
  int d = strcmp(x->schema, y->schema);
  if (d == 0) d = strcmp(x->name, y->name);
  return d ? d : strcmp(x->type, y->type);
}

static int list_tables(sp_flight_server *s, meta_list *l, sp_error *err) {
  sp_engine *e = sp_runtime_engine(s->rt);
  if (sp_engine_query_text(e, "SELECT current_database()", l->catalog, sizeof l->catalog, NULL) != SP_OK)
    snprintf(l->catalog, sizeof l->catalog, "memory");
  if (sp_engine_query_text(e, "SELECT current_schema()", l->default_schema, sizeof l->default_schema, NULL) != SP_OK)
    snprintf(l->default_schema, sizeof l->default_schema, "main");
  const sp_pod *pod = sp_runtime_pod(s->rt);
  size_t nd = sp_runtime_dataset_count(s->rt), nv = pod ? pod->n_views : 0;
  l->t = calloc(nd + nv + 1, sizeof *l->t);
  sp_dataset_info *d = malloc(sizeof *d);
  if (l->t == NULL || d == NULL) {
    free(d);
    return sp_fail(err, SP_ENOMEM, "flight: out of memory listing tables");
  }
  for (size_t i = 0; i < nd; i++) {
    if (sp_runtime_dataset_info(s->rt, i, d) != SP_OK || listed(l, d->name)) continue;
    split_name(d->name, l->default_schema, &l->t[l->n]);
    l->t[l->n].type = "BASE TABLE";
    l->t[l->n++].primary_key = primary_key_of(pod, d->name);
  }
  for (size_t i = 0; i < nv; i++) {
    if (listed(l, pod->views[i].name)) continue;
    split_name(pod->views[i].name, l->default_schema, &l->t[l->n]);
    l->t[l->n++].type = "VIEW";
  }
  free(d);
  qsort(l->t, l->n, sizeof *l->t, by_name);
  return SP_OK;
}

/* SQL LIKE: '%' any run, '_' any one character, '\' escapes the next one. */
static bool like(const char *s, const char *p, size_t plen) {
  if (plen == 0) return *s == '\0';
  if (*p == '%') {
    for (;; s++) {
      if (like(s, p + 1, plen - 1)) return true;
      if (*s == '\0') return false;
    }
  }
  if (*s == '\0') return false;
  if (*p == '\\' && plen > 1) return *s == p[1] && like(s + 1, p + 2, plen - 2);
  return (*p == '_' || *p == *s) && like(s + 1, p + 1, plen - 1);
}

/* A filter from an optional string field: absent (no filter) or a pattern / exact name. */
typedef struct filter {
  bool on;
  const char *p;
  size_t len;
} filter;

static filter field_filter(const sp_pb_msg *m, unsigned num) {
  filter f = {(m->present >> num) & 1u, (const char *)m->bytes[num].data, m->bytes[num].len};
  return f;
}

static bool match_exact(filter f, const char *s) {
  return !f.on || (strlen(s) == f.len && (f.len == 0 || memcmp(s, f.p, f.len) == 0));
}

static bool match_like(filter f, const char *s) {
  return !f.on || like(s, f.p, f.len);
}

/* ---- The commands ------------------------------------------------------------------------------------- */

static void put_str(fl_table *t, size_t col, const char *s) {
  fl_table_str(t, col, s, s ? strlen(s) : 0);
}

static void run_catalogs(meta_list *l, fl_table *t) {
  put_str(t, 0, l->catalog);
  fl_table_end_row(t);
}

static void run_schemas(meta_list *l, const sp_pb_msg *m, fl_table *t) {
  filter cat = field_filter(m, 1), pat = field_filter(m, 2);
  if (!match_exact(cat, l->catalog)) return;
  for (size_t i = 0; i < l->n; i++) {
    if (i > 0 && strcmp(l->t[i].schema, l->t[i - 1].schema) == 0) continue; /* sorted: one row per schema */
    if (!match_like(pat, l->t[i].schema)) continue;
    put_str(t, 0, l->catalog);
    put_str(t, 1, l->t[i].schema);
    fl_table_end_row(t);
  }
}

static bool type_wanted(const uint8_t *cmd, size_t len, const char *type) {
  sp_pb_bytes want;
  size_t k = 0;
  for (; sp_flight_nth_bytes(cmd, len, 4, k, &want) == SP_OK; k++)
    if (strlen(type) == want.len && memcmp(type, want.data, want.len) == 0) return true;
  return k == 0; /* no table_types: every type */
}

/* The IPC schema of a table (an empty schema when it cannot be planned, e.g. still loading). */
static void put_table_schema(sp_flight_server *s, const meta_table *mt, fl_table *t) {
  char ident[2 * NAME_MAX_LEN + 8], sql[2 * NAME_MAX_LEN + 32];
  struct ArrowSchema schema = {0};
  sp_buf ipc = {0};
  sp_sql_ident(ident, sizeof ident, mt->full);
  snprintf(sql, sizeof sql, "SELECT * FROM %s", ident);
  sp_query_request req = {.sql = sql};
  if (sp_runtime_query_schema(s->rt, &req, &schema, NULL) != SP_OK) fl_schema_make(NULL, 0, &schema, NULL);
  if (schema.release) sp__flight_schema_ipc(&schema, &ipc, NULL);
  sp_schema_release(&schema);
  fl_table_str(t, 4, ipc.data ? ipc.data : "", ipc.len);
  sp_buf_free(&ipc);
}

static void run_tables(sp_flight_server *s, meta_list *l, const sp_pb_msg *m, sp_pb_bytes cmd, fl_table *t) {
  filter cat = field_filter(m, 1), sch = field_filter(m, 2), tab = field_filter(m, 3);
  if (!match_exact(cat, l->catalog)) return;
  for (size_t i = 0; i < l->n; i++) {
    meta_table *mt = &l->t[i];
    if (!match_like(sch, mt->schema) || !match_like(tab, mt->name) || !type_wanted(cmd.data, cmd.len, mt->type))
      continue;
    put_str(t, 0, l->catalog);
    put_str(t, 1, mt->schema);
    put_str(t, 2, mt->name);
    put_str(t, 3, mt->type);
    if (t->n_cols == 5) put_table_schema(s, mt, t);
    fl_table_end_row(t);
  }
}

static void run_table_types(fl_table *t) {
  put_str(t, 0, "BASE TABLE");
  fl_table_end_row(t);
  put_str(t, 0, "VIEW");
  fl_table_end_row(t);
}

/* One key column per row: primary_key is "id", "a, b" or "(a, b)". */
static void put_key_columns(meta_list *l, const meta_table *mt, fl_table *t) {
  const char *p = mt->primary_key;
  int32_t seq = 0;
  while (*p) {
    while (*p == ' ' || *p == '(' || *p == ',' || *p == ')') p++;
    size_t n = strcspn(p, " ,()");
    if (n == 0) break;
    put_str(t, 0, l->catalog);
    put_str(t, 1, mt->schema);
    put_str(t, 2, mt->name);
    fl_table_str(t, 3, p, n);
    fl_table_str(t, 4, NULL, 0);
    fl_table_i32(t, 5, ++seq);
    fl_table_end_row(t);
    p += n;
  }
}

static void run_primary_keys(meta_list *l, const sp_pb_msg *m, fl_table *t) {
  filter cat = field_filter(m, 1), sch = field_filter(m, 2), tab = field_filter(m, 3);
  tab.on = true; /* the table is required */
  if (!match_exact(cat, l->catalog)) return;
  for (size_t i = 0; i < l->n; i++)
    if (l->t[i].primary_key && match_exact(sch, l->t[i].schema) && match_exact(tab, l->t[i].name))
      put_key_columns(l, &l->t[i], t);
}

int sp__flight_meta_run(sp_flight_server *s, sp_pb_bytes name, sp_pb_bytes value, struct ArrowArrayStream *out,
                        sp_error *err) {
  int i = command_index(name);
  if (i < 0) return sp_fail(err, SP_ENOTSUP, "%.*s is not implemented", (int)name.len, (const char *)name.data);
  sp_pb_msg m;
  SP_TRY(sp_flight_decode_fields(value.data, value.len, &m, err));
  meta_list l = {0};
  int rc = list_tables(s, &l, err);
  fl_table t;
  fl_table_init(&t, commands[i].spec, spec_cols(i, m.varint[5] != 0));
  if (rc == SP_OK) {
    if (commands[i].spec == catalogs_spec) run_catalogs(&l, &t);
    else if (commands[i].spec == schemas_spec) run_schemas(&l, &m, &t);
    else if (commands[i].spec == tables_spec) run_tables(s, &l, &m, value, &t);
    else if (commands[i].spec == table_types_spec) run_table_types(&t);
    else run_primary_keys(&l, &m, &t);
    rc = fl_table_finish(&t, out, err);
  } else {
    fl_table_free(&t);
  }
  free(l.t);
  return rc;
}
