/* SPDX-License-Identifier: Apache-2.0
 *
 * refresh_sql → a PostgreSQL WHERE clause (see pg_filter.h). Every node of DuckDB's parse tree is checked
 * against a list of the keys it may have, so that a construct this file does not know (a cast, a function,
 * a subquery, an alias, a modifier) is refused rather than silently dropped.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "connectors/pg_filter.h"

#define PGF_MAX_DEPTH 64

typedef struct sbuf {
  char *s;
  size_t n, cap;
  int oom;
} sbuf;

static void sb_add(sbuf *b, const char *t) {
  size_t m = strlen(t);
  if (b->oom) return;
  if (b->n + m + 1 > b->cap) {
    size_t c = b->cap ? b->cap : 128;
    while (c < b->n + m + 1) c *= 2;
    char *p = realloc(b->s, c);
    if (p == NULL) {
      b->oom = 1;
      return;
    }
    b->s = p;
    b->cap = c;
  }
  memcpy(b->s + b->n, t, m + 1);
  b->n += m;
}

static int refuse(sp_error *err, const pgf_ctx *cx, const char *what) {
  return sp_fail(err, SP_ENOTSUP,
                 "refresh_sql of dataset \"%s\" cannot be pushed to postgres (%s); supported: SELECT * FROM %s WHERE "
                 "<column> <op> <constant>, [NOT] IN, BETWEEN, combined with AND, OR, NOT, IS [NOT] NULL",
                 cx->dataset, what, cx->dataset);
}

/* True when every key of o is in `allowed` (NULL-terminated). */
static int only_keys(json_t *o, const char *const *allowed) {
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    size_t i = 0;
    while (allowed[i] && strcmp(allowed[i], k) != 0) i++;
    if (allowed[i] == NULL) return 0;
  }
  return 1;
}

static const char *str_of(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

static int emit_expr(json_t *e, const pgf_ctx *cx, sbuf *b, int depth, sp_error *err);

static int emit_column(json_t *e, const pgf_ctx *cx, int ordered, sbuf *b, sp_error *err) {
  static const char *const keys[] = {"class", "type", "query_location", "column_names", NULL};
  json_t *names = json_object_get(e, "column_names");
  if (!only_keys(e, keys) || !json_is_array(names) || json_array_size(names) < 1 || json_array_size(names) > 2)
    return refuse(err, cx, "a column reference it does not understand");
  const char *name = json_string_value(json_array_get(names, json_array_size(names) - 1));
  if (json_array_size(names) == 2) {
    const char *tbl = json_string_value(json_array_get(names, 0));
    if (tbl == NULL || strcasecmp(tbl, cx->dataset) != 0) return refuse(err, cx, "a column of another table");
  }
  char *(*quote)(void *, const char *) = ordered && cx->ordered_column ? cx->ordered_column : cx->column;
  char *q = name ? quote(cx->ctx, name) : NULL;
  if (q == NULL) {
    char what[300];
    snprintf(what, sizeof what, "column \"%s\" is unknown or cannot be compared at the server", name ? name : "?");
    return refuse(err, cx, what);
  }
  sb_add(b, q);
  free(q);
  return SP_OK;
}

/* DECIMAL constants arrive as an unscaled integer and a scale. */
static void decimal_text(long long v, int scale, char *buf, size_t n) {
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  char digits[32];
  int m = snprintf(digits, sizeof digits, "%0*llu", scale + 1, u);
  snprintf(buf, n, "%s%.*s%s%s", v < 0 ? "-" : "", m - scale, digits, scale ? "." : "", digits + m - scale);
}

static int emit_constant(json_t *e, const pgf_ctx *cx, sbuf *b, sp_error *err) {
  static const char *const keys[] = {"class", "type", "query_location", "value", NULL};
  static const char *const vkeys[] = {"type", "is_null", "value", NULL};
  static const char *const ints[] = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", NULL};
  json_t *v = json_object_get(e, "value"), *t = json_object_get(v, "type"), *val = json_object_get(v, "value");
  const char *id = str_of(t, "id");
  char buf[128];
  if (!only_keys(e, keys) || !json_is_object(v) || !only_keys(v, vkeys) || json_is_true(json_object_get(v, "is_null")) ||
      val == NULL)
    return refuse(err, cx, "a constant it does not understand");
  for (size_t i = 0; ints[i]; i++)
    if (strcmp(id, ints[i]) == 0 && json_is_integer(val)) {
      snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(val));
      sb_add(b, buf);
      return SP_OK;
    }
  if (strcmp(id, "DECIMAL") == 0 && json_is_integer(val)) {
    json_int_t scale = json_integer_value(json_object_get(json_object_get(t, "type_info"), "scale"));
    if (scale < 0 || scale > 18) return refuse(err, cx, "a decimal constant out of range");
    decimal_text((long long)json_integer_value(val), (int)scale, buf, sizeof buf);
    sb_add(b, buf);
    return SP_OK;
  }
  if ((strcmp(id, "DOUBLE") == 0 || strcmp(id, "FLOAT") == 0) && json_is_number(val) && isfinite(json_number_value(val))) {
    snprintf(buf, sizeof buf, "%.17g::float8", json_number_value(val));
    sb_add(b, buf);
    return SP_OK;
  }
  if (strcmp(id, "BOOLEAN") == 0 && json_is_boolean(val)) {
    sb_add(b, json_is_true(val) ? "true" : "false");
    return SP_OK;
  }
  if (strcmp(id, "VARCHAR") == 0 && json_is_string(val)) {
    char *lit = cx->literal(cx->ctx, json_string_value(val));
    if (lit == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
    sb_add(b, lit);
    free(lit);
    return SP_OK;
  }
  char what[160];
  snprintf(what, sizeof what, "a constant of type %s", *id ? id : "?");
  return refuse(err, cx, what);
}

static const char *comparison_op(const char *type) {
  static const char *const map[][2] = {
      {"COMPARE_EQUAL", "="}, {"COMPARE_NOTEQUAL", "<>"}, {"COMPARE_LESSTHAN", "<"}, {"COMPARE_GREATERTHAN", ">"},
      {"COMPARE_LESSTHANOREQUALTO", "<="}, {"COMPARE_GREATERTHANOREQUALTO", ">="}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(type, map[i][0]) == 0) return map[i][1];
  return NULL;
}

/* DATE '…' and TIMESTAMP '…': DuckDB parses them as a cast of a string constant. */
static int emit_typed_constant(json_t *e, const pgf_ctx *cx, sbuf *b, sp_error *err) {
  static const char *const keys[] = {"class", "type", "query_location", "child", "cast_type", "try_cast", NULL};
  static const char *const vkeys[] = {"type", "is_null", "value", NULL};
  json_t *child = json_object_get(e, "child"), *v = json_object_get(child, "value");
  const char *to = str_of(json_object_get(e, "cast_type"), "id");
  if (!only_keys(e, keys) || json_is_true(json_object_get(e, "try_cast")) || cx->typed_literal == NULL ||
      (strcmp(to, "DATE") != 0 && strcmp(to, "TIMESTAMP") != 0) || strcmp(str_of(child, "class"), "CONSTANT") != 0 ||
      !json_is_object(v) || !only_keys(v, vkeys) || strcmp(str_of(json_object_get(v, "type"), "id"), "VARCHAR") != 0 ||
      !json_is_string(json_object_get(v, "value")))
    return refuse(err, cx, "a cast it does not understand");
  char *lit = cx->typed_literal(cx->ctx, to, json_string_value(json_object_get(v, "value")));
  if (lit == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  sb_add(b, lit);
  free(lit);
  return SP_OK;
}

/* A comparison operand: a column or a constant; `ordered` for <, <=, >, >= and BETWEEN. */
static int emit_operand(json_t *e, const pgf_ctx *cx, int ordered, sbuf *b, sp_error *err) {
  const char *cls = str_of(e, "class");
  if (strcmp(cls, "COLUMN_REF") == 0) return emit_column(e, cx, ordered, b, err);
  if (strcmp(cls, "CONSTANT") == 0) return emit_constant(e, cx, b, err);
  if (strcmp(cls, "CAST") == 0) return emit_typed_constant(e, cx, b, err);
  char what[160];
  snprintf(what, sizeof what, "a %s where a column or a constant was expected", *cls ? cls : "?");
  return refuse(err, cx, what);
}

static int emit_comparison(json_t *e, const pgf_ctx *cx, sbuf *b, sp_error *err) {
  static const char *const keys[] = {"class", "type", "query_location", "left", "right", NULL};
  const char *op = comparison_op(str_of(e, "type"));
  if (op == NULL || !only_keys(e, keys)) return refuse(err, cx, "a comparison it does not understand");
  int ordered = strcmp(op, "=") != 0 && strcmp(op, "<>") != 0;
  sb_add(b, "(");
  SP_TRY(emit_operand(json_object_get(e, "left"), cx, ordered, b, err));
  sb_add(b, " ");
  sb_add(b, op);
  sb_add(b, " ");
  SP_TRY(emit_operand(json_object_get(e, "right"), cx, ordered, b, err));
  sb_add(b, ")");
  return SP_OK;
}

/* x BETWEEN lo AND hi: inclusive on both sides, in PostgreSQL, MySQL and SQLite as in DuckDB. */
static int emit_between(json_t *e, const pgf_ctx *cx, sbuf *b, sp_error *err) {
  static const char *const keys[] = {"class", "type", "query_location", "input", "lower", "upper", NULL};
  if (strcmp(str_of(e, "type"), "COMPARE_BETWEEN") != 0 || !only_keys(e, keys))
    return refuse(err, cx, "a BETWEEN it does not understand");
  sb_add(b, "(");
  SP_TRY(emit_operand(json_object_get(e, "input"), cx, 1, b, err));
  sb_add(b, " BETWEEN ");
  SP_TRY(emit_operand(json_object_get(e, "lower"), cx, 1, b, err));
  sb_add(b, " AND ");
  SP_TRY(emit_operand(json_object_get(e, "upper"), cx, 1, b, err));
  sb_add(b, ")");
  return SP_OK;
}

/* x [NOT] IN (a, b, …) over constants. */
static int emit_in(json_t *kids, int negated, const pgf_ctx *cx, sbuf *b, sp_error *err) {
  size_t n = json_array_size(kids);
  if (n < 2) return refuse(err, cx, "an IN list it does not understand");
  sb_add(b, "(");
  SP_TRY(emit_operand(json_array_get(kids, 0), cx, 0, b, err));
  sb_add(b, negated ? " NOT IN (" : " IN (");
  for (size_t i = 1; i < n; i++) {
    json_t *k = json_array_get(kids, i);
    if (strcmp(str_of(k, "class"), "CONSTANT") != 0 && strcmp(str_of(k, "class"), "CAST") != 0)
      return refuse(err, cx, "an IN list of something else than constants");
    if (i > 1) sb_add(b, ", ");
    SP_TRY(emit_operand(k, cx, 0, b, err));
  }
  sb_add(b, "))");
  return SP_OK;
}

/* AND / OR over children, NOT / IS NULL / IS NOT NULL over one, [NOT] IN over a list. */
static int emit_nary(json_t *e, const pgf_ctx *cx, sbuf *b, int depth, sp_error *err) {
  static const char *const keys[] = {"class", "type", "query_location", "children", NULL};
  const char *type = str_of(e, "type");
  json_t *kids = json_object_get(e, "children");
  if (!only_keys(e, keys) || !json_is_array(kids) || json_array_size(kids) == 0)
    return refuse(err, cx, "an operator it does not understand");
  size_t n = json_array_size(kids);
  if (strcmp(type, "COMPARE_IN") == 0 || strcmp(type, "COMPARE_NOT_IN") == 0)
    return emit_in(kids, strcmp(type, "COMPARE_NOT_IN") == 0, cx, b, err);
  const char *sep = strcmp(type, "CONJUNCTION_AND") == 0 ? " AND " : strcmp(type, "CONJUNCTION_OR") == 0 ? " OR " : NULL;
  if (sep) {
    sb_add(b, "(");
    for (size_t i = 0; i < n; i++) {
      if (i) sb_add(b, sep);
      SP_TRY(emit_expr(json_array_get(kids, i), cx, b, depth + 1, err));
    }
    sb_add(b, ")");
    return SP_OK;
  }
  if (n != 1) return refuse(err, cx, "an operator it does not understand");
  json_t *kid = json_array_get(kids, 0);
  if (strcmp(type, "OPERATOR_NOT") == 0) {
    sb_add(b, "(NOT ");
    SP_TRY(emit_expr(kid, cx, b, depth + 1, err));
    sb_add(b, ")");
    return SP_OK;
  }
  const char *post = strcmp(type, "OPERATOR_IS_NULL") == 0 ? " IS NULL)" : strcmp(type, "OPERATOR_IS_NOT_NULL") == 0 ? " IS NOT NULL)" : NULL;
  if (post == NULL) {
    char what[160];
    snprintf(what, sizeof what, "operator %s", *type ? type : "?");
    return refuse(err, cx, what);
  }
  sb_add(b, "(");
  SP_TRY(emit_operand(kid, cx, 0, b, err));
  sb_add(b, post);
  return SP_OK;
}

static int emit_expr(json_t *e, const pgf_ctx *cx, sbuf *b, int depth, sp_error *err) {
  if (depth > PGF_MAX_DEPTH) return refuse(err, cx, "a condition nested too deeply");
  if (!json_is_object(e)) return refuse(err, cx, "a malformed condition");
  const char *cls = str_of(e, "class");
  if (strcmp(cls, "COMPARISON") == 0) return emit_comparison(e, cx, b, err);
  if (strcmp(cls, "CONJUNCTION") == 0 || strcmp(cls, "OPERATOR") == 0) return emit_nary(e, cx, b, depth, err);
  if (strcmp(cls, "BETWEEN") == 0) return emit_between(e, cx, b, err);
  if (strcmp(cls, "COLUMN_REF") == 0) return emit_column(e, cx, 0, b, err); /* a boolean column */
  char what[160];
  snprintf(what, sizeof what, "a %s in the WHERE clause", *cls ? cls : "?");
  return refuse(err, cx, what);
}

/* The node must be SELECT * FROM <dataset> [WHERE …] and nothing more. */
static int check_select(json_t *node, const pgf_ctx *cx, sp_error *err) {
  static const char *const keys[] = {"type", "select_list", "from_table", "where_clause", "aggregate_handling", NULL};
  static const char *const star_keys[] = {"class", "type", "query_location", "columns", NULL};
  static const char *const from_keys[] = {"type", "query_location", "table_name", NULL};
  if (!json_is_object(node) || strcmp(str_of(node, "type"), "SELECT_NODE") != 0 || !only_keys(node, keys))
    return refuse(err, cx, "not a plain SELECT (modifiers such as ORDER BY or LIMIT, grouping or set operations)");
  const char *agg = str_of(node, "aggregate_handling");
  if (*agg && strcmp(agg, "STANDARD_HANDLING") != 0) return refuse(err, cx, "grouping");
  json_t *list = json_object_get(node, "select_list"), *star = json_array_get(list, 0);
  if (json_array_size(list) != 1 || strcmp(str_of(star, "class"), "STAR") != 0 || !only_keys(star, star_keys) ||
      json_is_true(json_object_get(star, "columns")))
    return refuse(err, cx, "the select list is not *");
  json_t *from = json_object_get(node, "from_table");
  if (strcmp(str_of(from, "type"), "BASE_TABLE") != 0 || !only_keys(from, from_keys) ||
      strcasecmp(str_of(from, "table_name"), cx->dataset) != 0)
    return refuse(err, cx, "it does not read the dataset itself");
  return SP_OK;
}

/* The top-level conjuncts of where, each translated on its own; `some`: the ones that translate, joined by AND
 * (those that do not stay with the engine); otherwise every one must translate. */
static int emit_where(json_t *where, const pgf_ctx *cx, int some, sbuf *b, sp_error *err) {
  json_t *kids = json_object_get(where, "children");
  if (!some || strcmp(str_of(where, "type"), "CONJUNCTION_AND") != 0 || !json_is_array(kids)) {
    int rc = emit_expr(where, cx, b, 0, err);
    if (rc != SP_OK && some) {
      b->n = 0;
      b->s[0] = '\0';
      return SP_OK;
    }
    return rc;
  }
  size_t kept = 0;
  for (size_t i = 0; i < json_array_size(kids); i++) {
    sbuf one = {0};
    sp_error ignored = {0};
    sb_add(&one, "");
    if (emit_expr(json_array_get(kids, i), cx, &one, 1, &ignored) == SP_OK && !one.oom) {
      sb_add(b, kept++ ? " AND " : "");
      sb_add(b, one.s);
    }
    free(one.s);
  }
  return SP_OK;
}

static int translate(const char *json, const pgf_ctx *cx, int some, char **out, sp_error *err) {
  json_error_t je;
  json_t *root = json_loads(json, 0, &je);
  /* jansson refuses integers over int64, which DuckDB writes for some constructs (subquery limits): those are
   * not the shape accepted here anyway. */
  if (root == NULL) return refuse(err, cx, "a construct it does not understand");
  json_t *stmts = json_object_get(root, "statements");
  int rc = SP_OK;
  if (json_is_true(json_object_get(root, "error"))) {
    rc = sp_fail(err, SP_EINVAL, "refresh_sql of dataset \"%s\": %s", cx->dataset, str_of(root, "error_message"));
  } else if (!json_is_array(stmts) || json_array_size(stmts) != 1) {
    rc = refuse(err, cx, "not exactly one statement");
  } else {
    json_t *node = json_object_get(json_array_get(stmts, 0), "node");
    json_t *stmt = json_array_get(stmts, 0);
    static const char *const stmt_keys[] = {"node", NULL};
    rc = json_is_object(stmt) && only_keys(stmt, stmt_keys) ? check_select(node, cx, err) : refuse(err, cx, "a statement with a WITH clause");
    sbuf b = {0};
    sb_add(&b, "");
    json_t *where = json_object_get(node, "where_clause");
    if (rc == SP_OK && where) rc = emit_where(where, cx, some, &b, err);
    if (rc == SP_OK && b.oom) rc = sp_fail(err, SP_ENOMEM, "out of memory");
    if (rc == SP_OK) *out = b.s;
    else free(b.s);
  }
  json_decref(root);
  return rc;
}

int pgf_where(const char *json, const pgf_ctx *cx, char **out, sp_error *err) { return translate(json, cx, 0, out, err); }

int pgf_where_some(const char *json, const pgf_ctx *cx, char **out, sp_error *err) {
  return translate(json, cx, 1, out, err);
}
