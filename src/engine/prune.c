/* SPDX-License-Identifier: Apache-2.0
 *
 * Batch pruning for arrow-accelerated datasets. DuckDB's C API cannot push filters into a table function, so
 * a query that names an arrow dataset is rewritten on its parsed form: `FROM trips WHERE trip_id = 42` reads
 * `sp_arrow_scan_hint('trips', '[["trip_id","=","n","42"]]') AS trips`, and the scan skips every batch whose
 * min/max statistics prove that no row can match. The WHERE clause stays as written, so the answer is the
 * same with or without the hints; a query that cannot be rewritten simply runs as it is.
 *
 * The rewrite goes through json_serialize_sql / json_deserialize_sql, DuckDB's own parser and printer:
 * the query text is never spliced.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "engine/engine_int.h"
#include "spice/duckdb_util.h"
#include "spice/sqltext.h"

typedef struct prune_ctx {
  const sp_query_request *req;
  char **names; /* arrow datasets the query text mentions */
  size_t n_names;
  char **sources; /* federated sources (connector scans) the query text mentions */
  size_t n_sources;
  duckdb_connection conn;
  int rewritten;
} prune_ctx;

static const char *jstr(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

/* Runs `SELECT fn(?)` with one VARCHAR argument and returns the result text (malloc'd) or NULL. */
static char *call_text_fn(duckdb_connection conn, const char *fn, const char *arg) {
  char sql[64];
  duckdb_prepared_statement st;
  duckdb_result r;
  char *out = NULL;
  snprintf(sql, sizeof sql, "SELECT %s(?::VARCHAR)", fn);
  if (duckdb_prepare(conn, sql, &st) == DuckDBError) {
    duckdb_destroy_prepare(&st);
    return NULL;
  }
  duckdb_bind_varchar(st, 1, arg);
  if (duckdb_execute_prepared(st, &r) != DuckDBError && duckdb_row_count(&r) == 1) {
    char *v = duckdb_value_varchar(&r, 0, 0);
    if (v) out = strdup(v);
    duckdb_free(v);
  }
  duckdb_destroy_result(&r);
  duckdb_destroy_prepare(&st);
  return out;
}

/* ---- Hint values -------------------------------------------------------------------------------------------- */

static int is_numeric_type(const char *id) {
  static const char *const ids[] = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT",
                                    "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", NULL};
  for (int i = 0; ids[i]; i++)
    if (strcmp(id, ids[i]) == 0) return 1;
  return 0;
}

/* Writes a constant-like expression's value as a hint: kind 'n' (number) or 's' (date/timestamp text). */
static int hint_of_value(prune_ctx *p, json_t *e, char *kind, char *buf, size_t n) {
  const char *cls = jstr(e, "class");
  if (strcmp(cls, "CONSTANT") == 0) {
    json_t *v = json_object_get(e, "value");
    json_t *val = json_object_get(v, "value");
    const char *id = jstr(json_object_get(v, "type"), "id");
    if (json_is_true(json_object_get(v, "is_null"))) return -1;
    *kind = 'n';
    if (is_numeric_type(id) && json_is_integer(val)) return snprintf(buf, n, "%lld", (long long)json_integer_value(val)) > 0 ? 0 : -1;
    if (is_numeric_type(id) && json_is_real(val)) return snprintf(buf, n, "%.17g", json_real_value(val)) > 0 ? 0 : -1;
    if (strcmp(id, "DECIMAL") == 0 && json_is_integer(val)) {
      long long scale = json_integer_value(json_object_get(json_object_get(json_object_get(v, "type"), "type_info"), "scale"));
      return snprintf(buf, n, "%llde-%lld", (long long)json_integer_value(val), scale) > 0 ? 0 : -1;
    }
    if (strcmp(id, "VARCHAR") == 0 && json_is_string(val)) {
      *kind = 's';
      return snprintf(buf, n, "%s", json_string_value(val)) < (int)n ? 0 : -1;
    }
    return -1;
  }
  if (strcmp(cls, "CAST") == 0) {
    const char *to = jstr(json_object_get(e, "cast_type"), "id");
    json_t *child = json_object_get(e, "child");
    json_t *v = json_object_get(child, "value");
    if ((strcmp(to, "TIMESTAMP") != 0 && strcmp(to, "DATE") != 0) || strcmp(jstr(child, "class"), "CONSTANT") != 0 ||
        strcmp(jstr(json_object_get(v, "type"), "id"), "VARCHAR") != 0 || !json_is_string(json_object_get(v, "value")))
      return -1;
    *kind = 's';
    return snprintf(buf, n, "%s", json_string_value(json_object_get(v, "value"))) < (int)n ? 0 : -1;
  }
  if (strcmp(cls, "PARAMETER") == 0) {
    const char *ident = jstr(e, "identifier");
    char *end;
    long pos = strtol(ident, &end, 10);
    const sp_value *val = NULL;
    for (size_t i = 0, k = 0; i < p->req->n_params && val == NULL; i++) {
      const sp_value *pv = &p->req->params[i];
      if (*end == '\0' && pv->name == NULL && (long)++k == pos) val = pv;
      if (*end != '\0' && pv->name && strcmp(pv->name, ident) == 0) val = pv;
    }
    if (val == NULL) return -1;
    switch (val->type) {
    case SP_VALUE_INT: *kind = 'n'; snprintf(buf, n, "%lld", (long long)val->v.i); return 0;
    case SP_VALUE_DOUBLE: *kind = 'n'; snprintf(buf, n, "%.17g", val->v.d); return 0;
    case SP_VALUE_STRING: *kind = 's'; return snprintf(buf, n, "%s", val->v.s) < (int)n ? 0 : -1;
    default: return -1;
    }
  }
  return -1;
}

/* The column a reference names when it refers to the table (by its alias, or its name when unaliased). */
static const char *column_of(json_t *ref, const char *qualifier) {
  json_t *names = json_object_get(ref, "column_names");
  if (strcmp(jstr(ref, "class"), "COLUMN_REF") != 0 || !json_is_array(names)) return NULL;
  if (json_array_size(names) == 1) return json_string_value(json_array_get(names, 0));
  if (json_array_size(names) == 2 && strcasecmp(json_string_value(json_array_get(names, 0)), qualifier) == 0)
    return json_string_value(json_array_get(names, 1));
  return NULL;
}

static void add_hint(prune_ctx *p, json_t *hints, const char *col, const char *op, json_t *value) {
  char buf[256], kind[2] = {0};
  if (col == NULL || hint_of_value(p, value, kind, buf, sizeof buf) != 0) return;
  json_array_append_new(hints, json_pack("[s,s,s,s]", col, op, kind, buf));
}

/* Collects hints from the AND-ed comparisons of a WHERE clause. */
static void collect_hints(prune_ctx *p, json_t *e, const char *qualifier, json_t *hints) {
  static const struct { const char *type, *op, *flipped; } cmp[] = {
      {"COMPARE_EQUAL", "=", "="},          {"COMPARE_LESSTHAN", "<", ">"},          {"COMPARE_GREATERTHAN", ">", "<"},
      {"COMPARE_LESSTHANOREQUALTO", "<=", ">="}, {"COMPARE_GREATERTHANOREQUALTO", ">=", "<="},
  };
  const char *type = jstr(e, "type");
  if (strcmp(type, "CONJUNCTION_AND") == 0) {
    json_t *kids = json_object_get(e, "children");
    for (size_t i = 0; i < json_array_size(kids); i++) collect_hints(p, json_array_get(kids, i), qualifier, hints);
    return;
  }
  if (strcmp(type, "COMPARE_BETWEEN") == 0) {
    const char *col = column_of(json_object_get(e, "input"), qualifier);
    add_hint(p, hints, col, ">=", json_object_get(e, "lower"));
    add_hint(p, hints, col, "<=", json_object_get(e, "upper"));
    return;
  }
  for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++) {
    if (strcmp(type, cmp[i].type) != 0) continue;
    json_t *l = json_object_get(e, "left"), *r = json_object_get(e, "right");
    const char *col = column_of(l, qualifier);
    if (col) add_hint(p, hints, col, cmp[i].op, r);
    else if ((col = column_of(r, qualifier)) != NULL) add_hint(p, hints, col, cmp[i].flipped, l);
  }
}

/* ---- The rewrite ------------------------------------------------------------------------------------------ */

static const char *arrow_name(prune_ctx *p, const char *table) {
  for (size_t i = 0; i < p->n_names; i++)
    if (p->names[i][0] && strcasecmp(p->names[i], table) == 0) return p->names[i];
  return NULL;
}

static const char *source_name(prune_ctx *p, const char *table) {
  for (size_t i = 0; i < p->n_sources; i++)
    if (p->sources[i][0] && strcasecmp(p->sources[i], table) == 0) return p->sources[i];
  return NULL;
}

/* ---- Filters for federated sources -------------------------------------------------------------------------- */

/* True when expression e can be evaluated by the source alone: no subqueries, no parameters, and every column
 * reference names the table (bare, or qualified by its alias). Qualifiers are removed on the way. */
static int pushable(json_t *e, const char *qualifier) {
  if (json_is_array(e)) {
    for (size_t i = 0; i < json_array_size(e); i++)
      if (!pushable(json_array_get(e, i), qualifier)) return 0;
    return 1;
  }
  if (!json_is_object(e)) return 1;
  const char *cls = jstr(e, "class");
  if (strcmp(cls, "SUBQUERY") == 0 || strcmp(cls, "PARAMETER") == 0 || strcmp(cls, "STAR") == 0) return 0;
  if (strcmp(cls, "COLUMN_REF") == 0) {
    json_t *names = json_object_get(e, "column_names");
    size_t n = json_array_size(names);
    if (n == 2 && strcasecmp(json_string_value(json_array_get(names, 0)), qualifier) == 0)
      json_array_remove(names, 0);
    return json_array_size(names) == 1;
  }
  const char *key;
  json_t *v;
  json_object_foreach(e, key, v) if (!pushable(v, qualifier)) return 0;
  return 1;
}

static void conjuncts(json_t *e, json_t *out) {
  if (strcmp(jstr(e, "type"), "CONJUNCTION_AND") == 0) {
    json_t *kids = json_object_get(e, "children");
    for (size_t i = 0; i < json_array_size(kids); i++) conjuncts(json_array_get(kids, i), out);
  } else {
    json_array_append(out, e);
  }
}

/* `SELECT * FROM "name" WHERE <the pushable conjuncts of where>`, printed by DuckDB, or NULL when none. */
static char *filter_query(prune_ctx *p, json_t *where, const char *name, const char *qualifier) {
  json_t *all = json_array(), *keep = json_array();
  conjuncts(where, all);
  for (size_t i = 0; i < json_array_size(all); i++) {
    json_t *copy = json_deep_copy(json_array_get(all, i));
    if (copy && pushable(copy, qualifier)) json_array_append_new(keep, copy);
    else json_decref(copy);
  }
  json_decref(all);
  char *out = NULL, ident[600], tmpl[700];
  if (json_array_size(keep) > 0 && sp_sql_ident(ident, sizeof ident, name) == 0) {
    snprintf(tmpl, sizeof tmpl, "SELECT * FROM %s", ident);
    char *text = call_text_fn(p->conn, "json_serialize_sql", tmpl);
    json_t *stmt = text ? json_loads(text, 0, NULL) : NULL;
    json_t *node = json_object_get(json_array_get(json_object_get(stmt, "statements"), 0), "node");
    if (json_is_object(node)) {
      json_t *cond = json_array_size(keep) == 1 ? json_incref(json_array_get(keep, 0))
                                                : json_pack("{s:s,s:s,s:s,s:I,s:O}", "class", "CONJUNCTION", "type",
                                                            "CONJUNCTION_AND", "alias", "", "query_location",
                                                            (json_int_t)0, "children", keep);
      json_object_set_new(node, "where_clause", cond);
      char *json = json_dumps(stmt, JSON_COMPACT);
      if (json) out = call_text_fn(p->conn, "json_deserialize_sql", json);
      free(json);
    }
    json_decref(stmt);
    free(text);
  }
  json_decref(keep);
  return out;
}

static json_t *varchar_constant(const char *s) {
  return json_pack("{s:s,s:s,s:s,s:I,s:{s:{s:s,s:n},s:b,s:s}}", "class", "CONSTANT", "type", "VALUE_CONSTANT", "alias",
                   "", "query_location", (json_int_t)0, "value", "type", "id", "VARCHAR", "type_info", "is_null", 0,
                   "value", s);
}

/* Replaces a SELECT node's base-table FROM with the hinted scan when its WHERE gives usable hints. */
static void rewrite_select(prune_ctx *p, json_t *node) {
  json_t *from = json_object_get(node, "from_table"), *where = json_object_get(node, "where_clause");
  if (!json_is_object(from) || !json_is_object(where) || strcmp(jstr(from, "type"), "BASE_TABLE") != 0) return;
  const char *schema = jstr(from, "schema_name"), *table = jstr(from, "table_name");
  const char *name = arrow_name(p, table), *source = name ? NULL : source_name(p, table);
  if ((name == NULL && source == NULL) || jstr(from, "catalog_name")[0] || (schema[0] && strcasecmp(schema, "main") != 0) ||
      !json_is_null(json_object_get(from, "at_clause")))
    return;
  const char *alias = jstr(from, "alias")[0] ? jstr(from, "alias") : jstr(from, "table_name");
  char *hints_text = NULL;
  if (name) {
    json_t *hints = json_array();
    collect_hints(p, where, alias, hints);
    hints_text = json_array_size(hints) ? json_dumps(hints, JSON_COMPACT) : NULL;
    json_decref(hints);
  } else {
    hints_text = filter_query(p, where, source, alias);
    name = source;
  }
  if (hints_text == NULL) return;
  const char *fn_name = source ? "sp_source_scan_filter" : "sp_arrow_scan_hint";
  json_t *fn = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:[o,o],s:n,s:{s:s,s:[]},s:b,s:b,s:b,s:s}", "class", "FUNCTION", "type",
                         "FUNCTION", "alias", "", "query_location", (json_int_t)0, "function_name", fn_name,
                         "schema", "", "children", varchar_constant(name), varchar_constant(hints_text), "filter",
                         "order_bys", "type", "ORDER_MODIFIER", "orders", "distinct", 0, "is_operator", 0,
                         "export_state", 0, "catalog", "");
  free(hints_text);
  json_t *tf = json_pack("{s:s,s:s,s:O,s:O,s:o,s:O,s:s}", "type", "TABLE_FUNCTION", "alias", alias, "sample",
                         json_object_get(from, "sample"), "query_location", json_object_get(from, "query_location"),
                         "function", fn, "column_name_alias", json_object_get(from, "column_name_alias"),
                         "with_ordinality", "WITHOUT_ORDINALITY");
  if (tf == NULL) return;
  json_object_set_new(node, "from_table", tf);
  p->rewritten = 1;
}

static void walk(prune_ctx *p, json_t *j) {
  if (json_is_object(j)) {
    if (strcmp(jstr(j, "type"), "SELECT_NODE") == 0) rewrite_select(p, j);
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) walk(p, v);
  } else if (json_is_array(j)) {
    for (size_t i = 0; i < json_array_size(j); i++) walk(p, json_array_get(j, i));
  }
}

/* Removes from p->names every name a CTE defines anywhere in the query (it shadows the dataset). */
static void drop_cte_names(prune_ctx *p, json_t *j) {
  if (json_is_object(j)) {
    json_t *map = json_object_get(json_object_get(j, "cte_map"), "map");
    for (size_t i = 0; i < json_array_size(map); i++) {
      const char *cte = jstr(json_array_get(map, i), "key");
      for (size_t k = 0; k < p->n_names; k++)
        if (strcasecmp(p->names[k], cte) == 0) p->names[k][0] = '\0';
      for (size_t k = 0; k < p->n_sources; k++)
        if (strcasecmp(p->sources[k], cte) == 0) p->sources[k][0] = '\0';
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) drop_cte_names(p, v);
  } else if (json_is_array(j)) {
    for (size_t i = 0; i < json_array_size(j); i++) drop_cte_names(p, json_array_get(j, i));
  }
}

/* Copies the names of the registry entries that the query text mentions (a cheap filter before parsing). */
static void collect_names(sp_slot *slots, const char *sql, char ***names, size_t *n) {
  for (sp_slot *s = slots; s; s = s->next) {
    if (!strcasestr(sql, s->name)) continue;
    char **nn = realloc(*names, (*n + 1) * sizeof *nn);
    if (nn == NULL) return;
    *names = nn;
    if (((*names)[*n] = strdup(s->name)) != NULL) (*n)++;
  }
}

int sp_engine_prune_rewrite(sp_engine *e, duckdb_connection conn, const sp_query_request *req, char **out_sql) {
  prune_ctx p = {.req = req};
  *out_sql = NULL;
  p.conn = conn;
  pthread_mutex_lock(&e->lock);
  collect_names(e->snapshots, req->sql, &p.names, &p.n_names);
  collect_names(e->sources, req->sql, &p.sources, &p.n_sources);
  pthread_mutex_unlock(&e->lock);
  if (p.n_names == 0 && p.n_sources == 0) return 0;
  char *text = call_text_fn(conn, "json_serialize_sql", req->sql);
  if (text) sp_duckdb_json_zero_unknown_locations(text);
  json_t *ast = text ? json_loads(text, 0, NULL) : NULL;
  free(text);
  if (ast && !json_is_true(json_object_get(ast, "error"))) {
    drop_cte_names(&p, ast);
    walk(&p, json_object_get(ast, "statements"));
  }
  if (p.rewritten) {
    char *json = json_dumps(ast, JSON_COMPACT);
    if (json) *out_sql = call_text_fn(conn, "json_deserialize_sql", json);
    free(json);
  }
  json_decref(ast);
  for (size_t i = 0; i < p.n_names; i++) free(p.names[i]);
  free(p.names);
  for (size_t i = 0; i < p.n_sources; i++) free(p.sources[i]);
  free(p.sources);
  return p.rewritten;
}

/* ---- on_zero_results: use_source ---------------------------------------------------------------------------- */

int sp_engine_has_fallbacks(sp_engine *e, const char *sql) {
  int found = 0;
  pthread_mutex_lock(&e->lock);
  for (sp_slot *s = e->fallbacks; s && !found; s = s->next) found = strcasestr(sql, s->name) != NULL;
  pthread_mutex_unlock(&e->lock);
  return found;
}

typedef struct fallback_ctx {
  char **names, **targets;
  size_t n;
  int rewritten;
} fallback_ctx;

static void fallback_walk(fallback_ctx *f, json_t *j) {
  if (json_is_object(j)) {
    if (strcmp(jstr(j, "type"), "BASE_TABLE") == 0 && !jstr(j, "catalog_name")[0] &&
        (!jstr(j, "schema_name")[0] || strcasecmp(jstr(j, "schema_name"), "main") == 0)) {
      for (size_t i = 0; i < f->n; i++) {
        if (!f->names[i][0] || strcasecmp(jstr(j, "table_name"), f->names[i]) != 0) continue;
        if (!jstr(j, "alias")[0]) json_object_set_new(j, "alias", json_string(jstr(j, "table_name")));
        json_object_set_new(j, "table_name", json_string(f->targets[i]));
        json_object_set_new(j, "schema_name", json_string(""));
        f->rewritten = 1;
        break;
      }
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) fallback_walk(f, v);
  } else if (json_is_array(j)) {
    for (size_t i = 0; i < json_array_size(j); i++) fallback_walk(f, json_array_get(j, i));
  }
}

int sp_engine_fallback_rewrite(sp_engine *e, duckdb_connection conn, const char *sql, char **out_sql) {
  fallback_ctx f = {0};
  *out_sql = NULL;
  pthread_mutex_lock(&e->lock);
  for (sp_slot *s = e->fallbacks; s; s = s->next) {
    char **nn = realloc(f.names, (f.n + 1) * sizeof *nn), **nt = nn ? realloc(f.targets, (f.n + 1) * sizeof *nt) : NULL;
    if (nn) f.names = nn;
    if (nt) f.targets = nt;
    if (nn == NULL || nt == NULL) break;
    f.names[f.n] = strdup(s->name);
    f.targets[f.n] = strdup(s->target);
    f.n++;
  }
  pthread_mutex_unlock(&e->lock);
  char *text = call_text_fn(conn, "json_serialize_sql", sql);
  if (text) sp_duckdb_json_zero_unknown_locations(text);
  json_t *ast = text ? json_loads(text, 0, NULL) : NULL;
  free(text);
  if (ast && !json_is_true(json_object_get(ast, "error"))) {
    prune_ctx p = {.names = f.names, .n_names = f.n};
    drop_cte_names(&p, ast); /* a CTE of the same name is not the dataset */
    fallback_walk(&f, json_object_get(ast, "statements"));
  }
  if (f.rewritten) {
    char *json = json_dumps(ast, JSON_COMPACT);
    if (json) *out_sql = call_text_fn(conn, "json_deserialize_sql", json);
    free(json);
  }
  json_decref(ast);
  for (size_t i = 0; i < f.n; i++) {
    free(f.names[i]);
    free(f.targets[i]);
  }
  free(f.names);
  free(f.targets);
  return f.rewritten && *out_sql != NULL;
}
