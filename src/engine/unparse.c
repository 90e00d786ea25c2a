/* SPDX-License-Identifier: Apache-2.0
 *
 * The printer behind whole-query pushdown (unparse.h). It walks DuckDB's JSON parse tree and writes the same
 * query for PostgreSQL, MySQL/MariaDB or SQLite. What it prints must mean exactly what DuckDB would compute, so
 * each construct is either known to agree or made to agree:
 *
 *   - text is compared and sorted by code point, as DuckDB does: PostgreSQL gets COLLATE "C" where order
 *     matters, MySQL every text column under a byte-order no-pad collation (its defaults ignore case and
 *     trailing spaces, which would also merge GROUP BY keys), SQLite's BINARY default already agrees;
 *   - `/` divides as doubles (DuckDB's `/` never truncates), NULLs sort last unless the query says otherwise,
 *     LIKE gets no escape character (PostgreSQL and MySQL treat `\` as one), SQLite's LIKE (which ignores
 *     case) becomes GLOB;
 *   - result types need not agree: the engine casts each column back to the type DuckDB planned.
 *
 * Anything else (window functions, QUALIFY, table functions, most functions, types without an exact
 * counterpart) is refused with a reason and the query runs locally.
 */
#include "engine/unparse.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spice/buf.h"

#define UP_MAX_NAMES 64

typedef enum kind { K_OTHER = 0, K_TEXT, K_TEMPORAL } kind;

typedef struct up {
  const sp_unparse_env *env;
  sp_buf b;
  bool failed;
  char why[200];
  const char *ctes[UP_MAX_NAMES]; /* CTE names in the query (borrowed from the tree) */
  size_t n_ctes;
  const char *text_aliases[UP_MAX_NAMES]; /* select-list aliases whose values are text */
  size_t n_text_aliases;
  const char *aliases[UP_MAX_NAMES * 2]; /* every alias the query defines (columns of CTEs, subqueries, selects) */
  size_t n_aliases;
  bool too_many_aliases;
  int next_alias;
} up;

static void query(up *u, json_t *node);
static void expr(up *u, json_t *e);

static void refuse(up *u, const char *fmt, ...) {
  if (u->failed) return;
  u->failed = true;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(u->why, sizeof u->why, fmt, ap);
  va_end(ap);
}

static void put(up *u, const char *s) {
  if (!u->failed && sp_buf_append_str(&u->b, s) != SP_OK) refuse(u, "out of memory");
}

static void putf(up *u, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  put(u, tmp);
}

static const char *jstr(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

static bool is(json_t *o, const char *key, const char *value) { return strcmp(jstr(o, key), value) == 0; }

static bool mysql(const up *u) { return u->env->dialect == SP_DIALECT_MYSQL; }
static bool postgres(const up *u) { return u->env->dialect == SP_DIALECT_POSTGRES; }
static bool sqlite(const up *u) { return u->env->dialect == SP_DIALECT_SQLITE; }

/* Refuses a node carrying any key outside `known` (NULL-terminated) besides the ones every node has: a
 * feature this printer does not know about must not be dropped silently. */
static void only_keys(up *u, json_t *o, const char *const *known) {
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    if (!strcmp(key, "class") || !strcmp(key, "type") || !strcmp(key, "alias") || !strcmp(key, "query_location"))
      continue;
    if ((json_is_string(v) && !*json_string_value(v)) || (json_is_array(v) && !json_array_size(v)) ||
        (json_is_object(v) && !json_object_size(v)) || json_is_null(v) || json_is_false(v))
      continue; /* empty: nothing said */
    bool ok = false;
    for (size_t i = 0; known[i] && !ok; i++) ok = strcmp(key, known[i]) == 0;
    if (!ok) refuse(u, "%s of %s", key, jstr(o, "type"));
  }
}

/* ---- Quoting --------------------------------------------------------------------------------------------- */

static void ident(up *u, const char *name) {
  char q = mysql(u) ? '`' : '"';
  char one[2] = {q, 0};
  put(u, one);
  for (const char *p = name; *p && !u->failed; p++) {
    char c[3] = {*p, *p == q ? q : 0, 0};
    put(u, c);
  }
  put(u, one);
}

static void string_lit(up *u, const char *s) {
  if (mysql(u)) { /* hex: no escapes to get wrong, whatever NO_BACKSLASH_ESCAPES says */
    put(u, "_utf8mb4 X'");
    for (const unsigned char *p = (const unsigned char *)s; *p && !u->failed; p++) putf(u, "%02X", *p);
    return put(u, "'");
  }
  put(u, "'");
  for (const char *p = s; *p && !u->failed; p++) put(u, *p == '\'' ? "''" : (char[2]){*p, 0});
  put(u, "'");
}

/* ---- Types of expressions (only what the printer needs: is it text, is it a date or time) --------------------- */

static kind format_kind(const char *f) {
  if (!strcmp(f, "u") || !strcmp(f, "U") || !strcmp(f, "vu")) return K_TEXT;
  return f[0] == 't' && (f[1] == 'd' || f[1] == 's' || f[1] == 't') ? K_TEMPORAL : K_OTHER;
}

static bool alias_is_text(const up *u, const char *name) {
  for (size_t i = 0; i < u->n_text_aliases; i++)
    if (!strcasecmp(u->text_aliases[i], name)) return true;
  return false;
}

/* The kind of a column named `name` in any table of the query (names are matched without their qualifier). */
static kind column_kind(const up *u, const char *name) {
  for (size_t t = 0; t < u->env->n_tables; t++) {
    const struct ArrowSchema *s = u->env->tables[t].schema;
    for (int64_t i = 0; s && i < s->n_children; i++)
      if (s->children[i]->name && !strcasecmp(s->children[i]->name, name)) return format_kind(s->children[i]->format);
  }
  return alias_is_text(u, name) ? K_TEXT : K_OTHER;
}

static const char *last_name(json_t *colref) {
  json_t *names = json_object_get(colref, "column_names");
  return json_string_value(json_array_get(names, json_array_size(names) - 1));
}

static kind expr_kind(const up *u, json_t *e) {
  const char *cls = jstr(e, "class");
  if (!strcmp(cls, "COLUMN_REF")) return last_name(e) ? column_kind(u, last_name(e)) : K_OTHER;
  if (!strcmp(cls, "CONSTANT")) return is(json_object_get(json_object_get(e, "value"), "type"), "id", "VARCHAR") ? K_TEXT : K_OTHER;
  if (!strcmp(cls, "CAST")) {
    const char *id = jstr(json_object_get(e, "cast_type"), "id");
    if (!strcmp(id, "VARCHAR")) return K_TEXT;
    return !strcmp(id, "DATE") || !strncmp(id, "TIMESTAMP", 9) ? K_TEMPORAL : K_OTHER;
  }
  if (!strcmp(cls, "CASE")) return expr_kind(u, json_object_get(json_array_get(json_object_get(e, "case_checks"), 0), "then_expr"));
  if (!strcmp(cls, "FUNCTION")) {
    const char *f = jstr(e, "function_name");
    static const char *const text_fns[] = {"lower", "upper", "substring", "substr", "||", "concat", NULL};
    for (size_t i = 0; text_fns[i]; i++)
      if (!strcmp(f, text_fns[i])) return K_TEXT;
    if (!strcmp(f, "min") || !strcmp(f, "max") || !strcmp(f, "first"))
      return expr_kind(u, json_array_get(json_object_get(e, "children"), 0));
  }
  if (!strcmp(cls, "OPERATOR") && is(e, "type", "OPERATOR_COALESCE"))
    return expr_kind(u, json_array_get(json_object_get(e, "children"), 0));
  return K_OTHER;
}

static void add_alias(up *u, const char *a) {
  if (a == NULL || !a[0]) return;
  if (u->n_aliases == UP_MAX_NAMES * 2) u->too_many_aliases = true;
  else u->aliases[u->n_aliases++] = a;
}

static void add_alias_list(up *u, json_t *names) {
  for (size_t i = 0; i < json_array_size(names); i++) add_alias(u, json_string_value(json_array_get(names, i)));
}

/* Before printing: every alias the query defines, and which select-list aliases hold text, anywhere in the
 * query, so that an outer query sorting or comparing a subquery's text column collates it too. */
static void collect_aliases(up *u, json_t *j) {
  if (json_is_object(j)) {
    json_t *list = json_object_get(j, "select_list");
    for (size_t i = 0; i < json_array_size(list); i++) {
      json_t *item = json_array_get(list, i);
      const char *a = jstr(item, "alias");
      add_alias(u, a);
      if (a[0] && expr_kind(u, item) == K_TEXT && u->n_text_aliases < UP_MAX_NAMES) u->text_aliases[u->n_text_aliases++] = a;
    }
    add_alias_list(u, json_object_get(j, "column_name_alias"));
    add_alias_list(u, json_object_get(j, "aliases"));
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) collect_aliases(u, v);
  } else if (json_is_array(j)) {
    for (size_t i = 0; i < json_array_size(j); i++) collect_aliases(u, json_array_get(j, i));
  }
}

/* ---- Constants -------------------------------------------------------------------------------------------------- */

/* An integer the tree spells as a constant, possibly through DuckDB's interval desugaring
 * (`INTERVAL '90' DAY` is to_days(CAST(trunc(CAST('90' AS DOUBLE)) AS INTEGER))). */
static bool const_int(json_t *e, long long *out) {
  const char *cls = jstr(e, "class");
  if (!strcmp(cls, "CONSTANT")) {
    json_t *v = json_object_get(json_object_get(e, "value"), "value");
    if (json_is_integer(v)) return *out = json_integer_value(v), true;
    const char *s = json_string_value(v);
    char *end;
    if (s == NULL || !*s) return false;
    double d = strtod(s, &end);
    if (*end || d != (double)(long long)d || d > 1e12 || d < -1e12) return false;
    return *out = (long long)d, true;
  }
  if (!strcmp(cls, "CAST")) return const_int(json_object_get(e, "child"), out);
  if (!strcmp(cls, "FUNCTION") && is(e, "function_name", "trunc") && json_array_size(json_object_get(e, "children")) == 1)
    return const_int(json_array_get(json_object_get(e, "children"), 0), out);
  return false;
}

static void decimal_lit(up *u, json_t *value, json_t *type_info) {
  json_t *v = json_object_get(value, "value");
  json_int_t scale = json_integer_value(json_object_get(type_info, "scale"));
  if (!json_is_integer(v) || scale < 0 || scale > 18) return refuse(u, "a wide decimal constant");
  char digits[32];
  json_int_t n = json_integer_value(v);
  snprintf(digits, sizeof digits, "%" PRIu64, n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n);
  size_t len = strlen(digits), s = (size_t)scale, at = 0;
  char text[64];
  if (n < 0) text[at++] = '-';
  if (len <= s) { /* 0.00ddd */
    text[at++] = '0';
    text[at++] = '.';
    for (size_t i = len; i < s; i++) text[at++] = '0';
    memcpy(text + at, digits, len + 1);
  } else {
    memcpy(text + at, digits, len - s);
    at += len - s;
    if (s) text[at++] = '.';
    memcpy(text + at, digits + len - s, s + 1);
  }
  put(u, text);
}

static void constant(up *u, json_t *e) {
  json_t *value = json_object_get(e, "value"), *type = json_object_get(value, "type");
  const char *id = jstr(type, "id");
  json_t *v = json_object_get(value, "value");
  if (json_is_true(json_object_get(value, "is_null"))) return put(u, "NULL");
  if (!strcmp(id, "VARCHAR")) return string_lit(u, json_string_value(v) ? json_string_value(v) : "");
  if (!strcmp(id, "BOOLEAN")) return put(u, json_is_true(v) ? (sqlite(u) ? "1" : "TRUE") : (sqlite(u) ? "0" : "FALSE"));
  if (!strcmp(id, "DECIMAL")) return decimal_lit(u, value, json_object_get(type, "type_info"));
  if (json_is_integer(v) && (!strcmp(id, "INTEGER") || !strcmp(id, "BIGINT") || !strcmp(id, "SMALLINT") ||
                             !strcmp(id, "TINYINT") || !strcmp(id, "UINTEGER") || !strcmp(id, "USMALLINT") ||
                             !strcmp(id, "UTINYINT")))
    return putf(u, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
  if (json_is_number(v) && (!strcmp(id, "DOUBLE") || !strcmp(id, "FLOAT"))) {
    /* An exponent makes MySQL and SQLite read a double; PostgreSQL would read numeric without the cast. */
    return putf(u, postgres(u) ? "CAST(%.17g AS DOUBLE PRECISION)" : "%.17e", json_number_value(v));
  }
  refuse(u, "a %s constant", id);
}

/* ---- Expressions ---------------------------------------------------------------------------------------------- */

static bool schema_has(const struct ArrowSchema *s, const char *name) {
  for (int64_t i = 0; s && i < s->n_children; i++)
    if (s->children[i]->name && !strcasecmp(s->children[i]->name, name)) return true;
  return false;
}

/* strict: a computable column, or an alias that no stored column of that name could be taken for. */
static bool is_known_column(const up *u, const char *name) {
  for (size_t t = 0; t < u->env->n_tables; t++)
    if (schema_has(u->env->tables[t].schema, name)) return true;
  for (size_t t = 0; t < u->env->n_tables; t++)
    if (schema_has(u->env->tables[t].all, name)) return false;
  for (size_t i = 0; i < u->n_aliases; i++)
    if (!strcasecmp(u->aliases[i], name)) return true;
  return false;
}

static void column_ref(up *u, json_t *e) {
  json_t *names = json_object_get(e, "column_names");
  size_t n = json_array_size(names);
  if (n == 0 || n > 2) return refuse(u, "a column name with %zu parts", n);
  if (u->env->strict && !is_known_column(u, last_name(e))) return refuse(u, "column %s is stored differently there", last_name(e));
  bool wrap = mysql(u) && column_kind(u, last_name(e)) == K_TEXT && !alias_is_text(u, last_name(e));
  if (wrap) put(u, "(");
  for (size_t i = 0; i < n; i++) {
    if (i) put(u, ".");
    ident(u, json_string_value(json_array_get(names, i)));
  }
  if (wrap) putf(u, " COLLATE %s)", u->env->text_collation ? u->env->text_collation : "utf8mb4_bin");
}

/* An operand whose order matters (<, BETWEEN, ORDER BY, min/max): text sorts by code point, as in DuckDB. */
static void ordered(up *u, json_t *e) {
  bool collate = postgres(u) && expr_kind(u, e) == K_TEXT;
  if (collate) put(u, "(");
  expr(u, e);
  if (collate) put(u, ") COLLATE \"C\"");
}

static void list(up *u, json_t *arr, size_t from, void (*each)(up *, json_t *)) {
  for (size_t i = from; i < json_array_size(arr); i++) {
    if (i > from) put(u, ", ");
    each(u, json_array_get(arr, i));
  }
}

static const char *comparison_op(const up *u, const char *type) {
  static const char *const ops[][2] = {{"COMPARE_EQUAL", "="},        {"COMPARE_NOTEQUAL", "<>"},
                                       {"COMPARE_LESSTHAN", "<"},     {"COMPARE_GREATERTHAN", ">"},
                                       {"COMPARE_LESSTHANOREQUALTO", "<="}, {"COMPARE_GREATERTHANOREQUALTO", ">="}};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (!strcmp(type, ops[i][0])) return ops[i][1];
  if (!strcmp(type, "COMPARE_DISTINCT_FROM")) return postgres(u) ? "IS DISTINCT FROM" : sqlite(u) ? "IS NOT" : NULL;
  if (!strcmp(type, "COMPARE_NOT_DISTINCT_FROM")) return postgres(u) ? "IS NOT DISTINCT FROM" : sqlite(u) ? "IS" : "<=>";
  return NULL;
}

static void comparison(up *u, json_t *e) {
  const char *op = comparison_op(u, jstr(e, "type"));
  if (op == NULL) return refuse(u, "comparison %s", jstr(e, "type"));
  bool order = strchr(op, '<') || strchr(op, '>');
  put(u, "(");
  (order ? ordered : expr)(u, json_object_get(e, "left"));
  putf(u, " %s ", op);
  (order ? ordered : expr)(u, json_object_get(e, "right"));
  put(u, ")");
}

static void like_pattern_glob(up *u, json_t *pattern) {
  json_t *v = json_object_get(json_object_get(pattern, "value"), "value");
  if (!is(pattern, "class", "CONSTANT") || !json_is_string(v)) return refuse(u, "LIKE with a computed pattern in SQLite");
  sp_buf g = {0};
  for (const char *p = json_string_value(v); *p; p++) {
    const char *piece = *p == '%' ? "*" : *p == '_' ? "?" : *p == '*' ? "[*]" : *p == '?' ? "[?]" : *p == '[' ? "[[]" : NULL;
    char one[2] = {*p, 0};
    if (sp_buf_append_str(&g, piece ? piece : one) != SP_OK) refuse(u, "out of memory");
  }
  string_lit(u, g.len ? sp_buf_cstr(&g) : "");
  sp_buf_free(&g);
}

static void like(up *u, json_t *e, bool negate, bool ignore_case) {
  json_t *ch = json_object_get(e, "children"), *pattern = json_array_get(ch, 1);
  const char *p = json_string_value(json_object_get(json_object_get(pattern, "value"), "value"));
  /* PostgreSQL and MySQL read a backslash in a pattern as an escape; DuckDB does not. */
  if (p == NULL || strchr(p, '\\')) return refuse(u, p ? "a backslash in a LIKE pattern" : "LIKE with a computed pattern");
  if (ignore_case && !postgres(u)) return refuse(u, "ILIKE");
  put(u, "(");
  expr(u, json_array_get(ch, 0));
  put(u, negate ? " NOT" : "");
  if (sqlite(u)) {
    put(u, " GLOB ");
    like_pattern_glob(u, pattern);
  } else {
    put(u, ignore_case ? " ILIKE " : " LIKE ");
    expr(u, pattern);
  }
  put(u, ")");
}

/* `INTERVAL n unit` from DuckDB's to_days(n)/to_months(n)/to_years(n); false if e is not one. */
static bool interval(up *u, json_t *e) {
  static const char *const fns[][3] = {{"to_days", "days", "DAY"}, {"to_months", "months", "MONTH"}, {"to_years", "years", "YEAR"}};
  long long n;
  for (size_t i = 0; i < 3; i++) {
    if (!is(e, "function_name", fns[i][0])) continue;
    if (!const_int(json_array_get(json_object_get(e, "children"), 0), &n)) return refuse(u, "a computed interval"), true;
    if (sqlite(u)) return refuse(u, "date arithmetic in SQLite"), true;
    if (postgres(u)) putf(u, "INTERVAL '%lld %s'", n, fns[i][1]);
    else putf(u, "INTERVAL %lld %s", n, fns[i][2]);
    return true;
  }
  return false;
}

static void arithmetic(up *u, json_t *e, const char *op) {
  json_t *ch = json_object_get(e, "children"), *l = json_array_get(ch, 0), *r = json_array_get(ch, 1);
  if (json_array_size(ch) == 1 && !strcmp(op, "-")) {
    put(u, "(-");
    expr(u, l);
    return put(u, ")");
  }
  if (json_array_size(ch) != 2) return refuse(u, "operator %s with %zu operands", op, json_array_size(ch));
  /* MySQL adds a number to a DATE as to the number 20240101; only intervals are added to dates there. */
  if (mysql(u) && (expr_kind(u, l) == K_TEMPORAL || expr_kind(u, r) == K_TEMPORAL) && !is(r, "class", "FUNCTION"))
    return refuse(u, "date arithmetic without an interval in MySQL");
  put(u, "(");
  if (!strcmp(op, "/")) {
    put(u, "CAST(");
    expr(u, l);
    put(u, postgres(u) ? " AS DOUBLE PRECISION)" : mysql(u) ? " AS DOUBLE)" : " AS REAL)");
  } else if (!strcmp(op, "||") && mysql(u)) {
    put(u, "CONCAT(");
    expr(u, l);
    put(u, ", ");
    expr(u, r);
    return put(u, "))");
  } else {
    expr(u, l);
  }
  putf(u, " %s ", op);
  if (!interval(u, r)) expr(u, r);
  put(u, ")");
}

static void date_part(up *u, json_t *ch) {
  json_t *part = json_object_get(json_object_get(json_array_get(ch, 0), "value"), "value");
  const char *p = json_string_value(part);
  static const char *const parts[] = {"year", "month", "day", NULL};
  bool ok = false;
  for (size_t i = 0; p && parts[i] && !ok; i++) ok = !strcasecmp(p, parts[i]);
  if (!ok || json_array_size(ch) != 2) return refuse(u, "date_part(%s)", p ? p : "?");
  if (sqlite(u)) return refuse(u, "date_part in SQLite");
  putf(u, "EXTRACT(%s FROM ", p);
  expr(u, json_array_get(ch, 1));
  put(u, ")");
}

static void substring(up *u, json_t *ch) {
  long long from, len = 1;
  size_t n = json_array_size(ch);
  if ((n != 2 && n != 3) || !const_int(json_array_get(ch, 1), &from) || from < 1 ||
      (n == 3 && (!const_int(json_array_get(ch, 2), &len) || len < 0)))
    return refuse(u, "substring with computed or non-positive bounds");
  put(u, sqlite(u) ? "substr(" : "SUBSTRING(");
  expr(u, json_array_get(ch, 0));
  putf(u, ", %lld", from);
  if (n == 3) putf(u, ", %lld", len);
  put(u, ")");
}

static void aggregate(up *u, json_t *e, const char *name) {
  json_t *ch = json_object_get(e, "children");
  bool distinct = json_is_true(json_object_get(e, "distinct"));
  if (!strcmp(name, "count_star")) return put(u, "COUNT(*)");
  if (json_array_size(ch) != 1) return refuse(u, "%s with %zu arguments", name, json_array_size(ch));
  if (distinct && (!strcmp(name, "min") || !strcmp(name, "max"))) distinct = false;
  /* avg: DuckDB divides the exact sum by the count as doubles; MySQL's and SQLite's own avg round differently
   * (MySQL to 4 more decimals), so they are asked for exactly that. */
  if (!strcmp(name, "avg") && !postgres(u)) {
    putf(u, "(CAST(SUM(%s", distinct ? "DISTINCT " : "");
    expr(u, json_array_get(ch, 0));
    putf(u, ") AS %s) / COUNT(%s", mysql(u) ? "DOUBLE" : "REAL", distinct ? "DISTINCT " : "");
    expr(u, json_array_get(ch, 0));
    return put(u, "))");
  }
  putf(u, "%s(%s", name, distinct ? "DISTINCT " : "");
  (!strcmp(name, "min") || !strcmp(name, "max") ? ordered : expr)(u, json_array_get(ch, 0));
  put(u, ")");
}

static void function(up *u, json_t *e) {
  static const char *const keys[] = {"function_name", "children", "order_bys", "distinct", "is_operator",
                                     "export_state", "schema", "catalog", NULL};
  only_keys(u, e, keys);
  if (json_array_size(json_object_get(json_object_get(e, "order_bys"), "orders"))) return refuse(u, "ORDER BY in a function");
  const char *name = jstr(e, "function_name"), *schema = jstr(e, "schema");
  json_t *ch = json_object_get(e, "children");
  if (schema[0] && strcmp(schema, "main") && strcmp(schema, "pg_catalog")) return refuse(u, "function %s.%s", schema, name);
  static const char *const aggs[] = {"count_star", "count", "sum", "avg", "min", "max", NULL};
  for (size_t i = 0; aggs[i]; i++)
    if (!strcmp(name, aggs[i])) return aggregate(u, e, name);
  if (json_is_true(json_object_get(e, "distinct"))) return refuse(u, "DISTINCT in %s", name);
  static const char *const ops[] = {"+", "-", "*", "/", "%", "||", NULL};
  for (size_t i = 0; ops[i]; i++)
    if (!strcmp(name, ops[i])) return arithmetic(u, e, name);
  if (!strcmp(name, "~~") || !strcmp(name, "!~~")) return like(u, e, name[0] == '!', false);
  if (!strcmp(name, "~~*") || !strcmp(name, "!~~*")) return like(u, e, name[0] == '!', true);
  if (!strcmp(name, "date_part") || !strcmp(name, "datepart")) return date_part(u, ch);
  if (!strcmp(name, "substring") || !strcmp(name, "substr")) return substring(u, ch);
  /* SQLite's lower/upper change ASCII letters only. */
  if ((!strcmp(name, "abs") || (!sqlite(u) && (!strcmp(name, "lower") || !strcmp(name, "upper")))) && json_array_size(ch) == 1) {
    putf(u, "%s(", name);
    expr(u, json_array_get(ch, 0));
    return put(u, ")");
  }
  if (interval(u, e)) return;
  refuse(u, "function %s", name);
}

static void cast(up *u, json_t *e) {
  json_t *t = json_object_get(e, "cast_type"), *info = json_object_get(t, "type_info");
  const char *id = jstr(t, "id");
  if (json_is_true(json_object_get(e, "try_cast"))) return refuse(u, "TRY_CAST");
  char type[64] = "";
  if (!strcmp(id, "DECIMAL") && !sqlite(u))
    snprintf(type, sizeof type, "%s(%d, %d)", postgres(u) ? "NUMERIC" : "DECIMAL",
             (int)json_integer_value(json_object_get(info, "width")), (int)json_integer_value(json_object_get(info, "scale")));
  static const char *const names[][4] = {
      /* DuckDB      PostgreSQL          MySQL          SQLite */
      {"INTEGER", "INTEGER", "SIGNED", "INTEGER"},     {"BIGINT", "BIGINT", "SIGNED", "INTEGER"},
      {"DOUBLE", "DOUBLE PRECISION", "DOUBLE", "REAL"}, {"VARCHAR", "TEXT", NULL, "TEXT"},
      {"DATE", "DATE", "DATE", NULL},                  {"TIMESTAMP", "TIMESTAMP", "DATETIME(6)", NULL},
      {"BOOLEAN", "BOOLEAN", NULL, NULL}};
  for (size_t i = 0; !type[0] && i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(id, names[i][0]) && names[i][u->env->dialect]) snprintf(type, sizeof type, "%s", names[i][u->env->dialect]);
  if (!type[0]) return refuse(u, "CAST to %s", id);
  put(u, "CAST(");
  expr(u, json_object_get(e, "child"));
  putf(u, " AS %s)", type);
}

static void case_expr(up *u, json_t *e) {
  json_t *checks = json_object_get(e, "case_checks");
  put(u, "(CASE");
  for (size_t i = 0; i < json_array_size(checks); i++) {
    put(u, " WHEN ");
    expr(u, json_object_get(json_array_get(checks, i), "when_expr"));
    put(u, " THEN ");
    expr(u, json_object_get(json_array_get(checks, i), "then_expr"));
  }
  if (json_object_get(e, "else_expr")) {
    put(u, " ELSE ");
    expr(u, json_object_get(e, "else_expr"));
  }
  put(u, " END)");
}

static void subquery(up *u, json_t *e) {
  const char *t = jstr(e, "subquery_type");
  json_t *node = json_object_get(json_object_get(e, "subquery"), "node");
  if (!strcmp(t, "EXISTS") || !strcmp(t, "NOT_EXISTS")) {
    put(u, t[0] == 'N' ? "(NOT EXISTS (" : "(EXISTS (");
    query(u, node);
    return put(u, "))");
  }
  if (!strcmp(t, "SCALAR")) {
    put(u, "(");
    query(u, node);
    return put(u, ")");
  }
  if (!strcmp(t, "ANY") && is(e, "comparison_type", "COMPARE_EQUAL")) {
    put(u, "(");
    expr(u, json_object_get(e, "child"));
    put(u, " IN (");
    query(u, node);
    return put(u, "))");
  }
  refuse(u, "a %s subquery", t);
}

static void operator(up *u, json_t *e) {
  const char *t = jstr(e, "type");
  json_t *ch = json_object_get(e, "children");
  if (!strcmp(t, "OPERATOR_NOT") || !strcmp(t, "OPERATOR_IS_NULL") || !strcmp(t, "OPERATOR_IS_NOT_NULL")) {
    put(u, t[9] == 'N' ? "(NOT " : "(");
    expr(u, json_array_get(ch, 0));
    return put(u, !strcmp(t, "OPERATOR_IS_NULL") ? " IS NULL)" : !strcmp(t, "OPERATOR_IS_NOT_NULL") ? " IS NOT NULL)" : ")");
  }
  if (!strcmp(t, "COMPARE_IN") || !strcmp(t, "COMPARE_NOT_IN")) {
    put(u, "(");
    expr(u, json_array_get(ch, 0));
    put(u, t[8] == 'N' ? " NOT IN (" : " IN (");
    list(u, ch, 1, expr);
    return put(u, "))");
  }
  if (!strcmp(t, "OPERATOR_COALESCE")) {
    put(u, "COALESCE(");
    list(u, ch, 0, expr);
    return put(u, ")");
  }
  refuse(u, "operator %s", t);
}

static void expr(up *u, json_t *e) {
  if (u->failed) return;
  const char *cls = jstr(e, "class");
  if (!strcmp(cls, "COLUMN_REF")) return column_ref(u, e);
  if (!strcmp(cls, "CONSTANT")) return constant(u, e);
  if (!strcmp(cls, "COMPARISON")) return comparison(u, e);
  if (!strcmp(cls, "FUNCTION")) return function(u, e);
  if (!strcmp(cls, "CAST")) return cast(u, e);
  if (!strcmp(cls, "CASE")) return case_expr(u, e);
  if (!strcmp(cls, "SUBQUERY")) return subquery(u, e);
  if (!strcmp(cls, "OPERATOR")) return operator(u, e);
  if (!strcmp(cls, "CONJUNCTION")) {
    const char *op = is(e, "type", "CONJUNCTION_AND") ? " AND " : is(e, "type", "CONJUNCTION_OR") ? " OR " : NULL;
    json_t *ch = json_object_get(e, "children");
    if (op == NULL) return refuse(u, "conjunction %s", jstr(e, "type"));
    put(u, "(");
    for (size_t i = 0; i < json_array_size(ch); i++) {
      if (i) put(u, op);
      expr(u, json_array_get(ch, i));
    }
    return put(u, ")");
  }
  if (!strcmp(cls, "BETWEEN")) {
    put(u, "(");
    ordered(u, json_object_get(e, "input"));
    put(u, " BETWEEN ");
    ordered(u, json_object_get(e, "lower"));
    put(u, " AND ");
    ordered(u, json_object_get(e, "upper"));
    return put(u, ")");
  }
  refuse(u, "%s expressions", cls[0] ? cls : "unknown");
}

/* ---- FROM --------------------------------------------------------------------------------------------------- */

static bool is_cte(const up *u, const char *name) {
  for (size_t i = 0; i < u->n_ctes; i++)
    if (!strcasecmp(u->ctes[i], name)) return true;
  return false;
}

static void column_aliases(up *u, json_t *ref) {
  json_t *cols = json_object_get(ref, "column_name_alias");
  if (json_array_size(cols) == 0) return;
  if (!postgres(u)) return refuse(u, "column aliases on a table");
  put(u, "(");
  for (size_t i = 0; i < json_array_size(cols); i++) {
    if (i) put(u, ", ");
    ident(u, json_string_value(json_array_get(cols, i)));
  }
  put(u, ")");
}

static void base_table(up *u, json_t *ref) {
  const char *name = jstr(ref, "table_name"), *schema = jstr(ref, "schema_name"), *alias = jstr(ref, "alias");
  if (jstr(ref, "catalog_name")[0] || (schema[0] && strcasecmp(schema, "main"))) return refuse(u, "a qualified table name");
  if (is_cte(u, name)) {
    ident(u, name);
  } else {
    const sp_unparse_table *t = NULL;
    for (size_t i = 0; i < u->env->n_tables && !t; i++)
      if (!strcasecmp(u->env->tables[i].name, name)) t = &u->env->tables[i];
    if (t == NULL) return refuse(u, "table %s is not on this server", name);
    put(u, t->remote);
    if (!alias[0]) alias = name;
  }
  if (alias[0]) {
    put(u, " AS ");
    ident(u, alias);
  }
  column_aliases(u, ref);
}

static void table_ref(up *u, json_t *ref);

static void join(up *u, json_t *ref) {
  const char *jt = jstr(ref, "join_type"), *rt = jstr(ref, "ref_type");
  json_t *right = json_object_get(ref, "right"), *using = json_object_get(ref, "using_columns");
  table_ref(u, json_object_get(ref, "left"));
  if (!strcmp(rt, "CROSS")) {
    put(u, " CROSS JOIN ");
  } else if (strcmp(rt, "REGULAR")) {
    return refuse(u, "a %s join", rt);
  } else if (!strcmp(jt, "INNER") || !strcmp(jt, "LEFT") || !strcmp(jt, "RIGHT") || (!strcmp(jt, "OUTER") && !mysql(u))) {
    putf(u, " %s JOIN ", !strcmp(jt, "OUTER") ? "FULL" : jt);
  } else {
    return refuse(u, "a %s join", jt);
  }
  bool nested = is(right, "type", "JOIN");
  if (nested) put(u, "(");
  table_ref(u, right);
  if (nested) put(u, ")");
  if (json_array_size(using)) {
    put(u, " USING (");
    for (size_t i = 0; i < json_array_size(using); i++) {
      if (i) put(u, ", ");
      ident(u, json_string_value(json_array_get(using, i)));
    }
    put(u, ")");
  } else if (json_object_get(ref, "condition")) {
    put(u, " ON ");
    expr(u, json_object_get(ref, "condition"));
  } else if (strcmp(rt, "CROSS")) {
    refuse(u, "a join without a condition");
  }
}

static void table_ref(up *u, json_t *ref) {
  if (u->failed) return;
  const char *t = jstr(ref, "type");
  if (!strcmp(t, "BASE_TABLE")) return base_table(u, ref);
  if (!strcmp(t, "JOIN")) return join(u, ref);
  if (!strcmp(t, "SUBQUERY")) {
    put(u, "(");
    query(u, json_object_get(json_object_get(ref, "subquery"), "node"));
    put(u, ") AS ");
    if (jstr(ref, "alias")[0]) ident(u, jstr(ref, "alias"));
    else putf(u, "_sp_subquery_%d", u->next_alias++);
    return column_aliases(u, ref);
  }
  refuse(u, "a %s in FROM", t);
}

/* ---- SELECT ------------------------------------------------------------------------------------------------- */

static void select_item(up *u, json_t *item) {
  const char *alias = jstr(item, "alias");
  if (is(item, "class", "STAR")) {
    static const char *const keys[] = {"relation_name", "columns", NULL};
    if (u->env->strict) return refuse(u, "* where some columns are stored differently");
    only_keys(u, item, keys);
    if (json_is_true(json_object_get(item, "columns"))) return refuse(u, "COLUMNS(*)");
    if (jstr(item, "relation_name")[0]) {
      ident(u, jstr(item, "relation_name"));
      put(u, ".");
    }
    return put(u, "*");
  }
  expr(u, item);
  /* Name a bare column after itself: MySQL prints it wrapped in a collation, and outer queries refer to it. */
  if (!alias[0] && is(item, "class", "COLUMN_REF")) alias = last_name(item);
  if (alias && alias[0]) {
    put(u, " AS ");
    ident(u, alias);
  }
}

/* ORDER BY 2 and ORDER BY <alias> name a select item: print that item's expression, so that it can be
 * collated (PostgreSQL accepts a bare output name there, not one inside an expression). */
static json_t *order_target(json_t *select_list, json_t *e) {
  long long pos;
  if (is(e, "class", "CONSTANT") && const_int(e, &pos)) return pos >= 1 && (size_t)pos <= json_array_size(select_list) ? json_array_get(select_list, pos - 1) : NULL;
  if (is(e, "class", "COLUMN_REF") && json_array_size(json_object_get(e, "column_names")) == 1)
    for (size_t i = 0; i < json_array_size(select_list); i++)
      if (!strcasecmp(jstr(json_array_get(select_list, i), "alias"), last_name(e))) return json_array_get(select_list, i);
  return e;
}

static void order_by(up *u, json_t *orders, json_t *select_list) {
  put(u, " ORDER BY ");
  for (size_t i = 0; i < json_array_size(orders); i++) {
    json_t *o = json_array_get(orders, i), *e = json_object_get(o, "expression");
    json_t *target = select_list ? order_target(select_list, e) : e;
    if (target == NULL || is(target, "class", "STAR")) return refuse(u, "ORDER BY a position that is not a column");
    bool desc = is(o, "type", "DESCENDING");
    bool nulls_first = strstr(jstr(o, "null_order"), "FIRST") != NULL; /* DuckDB's default is NULLS LAST */
    if (i) put(u, ", ");
    if (mysql(u)) { /* MySQL sorts NULL lowest and has no NULLS FIRST/LAST */
      put(u, "(");
      expr(u, target);
      put(u, nulls_first ? " IS NULL) DESC, " : " IS NULL) ASC, ");
    }
    ordered(u, target);
    put(u, desc ? " DESC" : " ASC");
    if (!mysql(u)) put(u, nulls_first ? " NULLS FIRST" : " NULLS LAST");
  }
}

static void limit(up *u, json_t *m) {
  long long n, off;
  json_t *l = json_object_get(m, "limit"), *o = json_object_get(m, "offset");
  if ((l && !const_int(l, &n)) || (o && !const_int(o, &off))) return refuse(u, "a computed LIMIT");
  if (l) putf(u, " LIMIT %lld", n);
  else if (o && !postgres(u)) put(u, sqlite(u) ? " LIMIT -1" : " LIMIT 18446744073709551615"); /* OFFSET needs one */
  if (o) putf(u, " OFFSET %lld", off);
}

/* The modifiers of a query node: DISTINCT is printed by the caller; ORDER BY and LIMIT here. */
static void modifiers(up *u, json_t *mods, json_t *select_list) {
  for (size_t i = 0; i < json_array_size(mods); i++) {
    json_t *m = json_array_get(mods, i);
    if (is(m, "type", "ORDER_MODIFIER")) order_by(u, json_object_get(m, "orders"), select_list);
  }
  for (size_t i = 0; i < json_array_size(mods); i++) {
    json_t *m = json_array_get(mods, i);
    if (is(m, "type", "LIMIT_MODIFIER")) limit(u, m);
    else if (!is(m, "type", "ORDER_MODIFIER") && !is(m, "type", "DISTINCT_MODIFIER")) refuse(u, "%s", jstr(m, "type"));
    else if (is(m, "type", "DISTINCT_MODIFIER") && json_array_size(json_object_get(m, "distinct_on_targets")))
      refuse(u, "DISTINCT ON");
  }
}

static bool has_modifier(json_t *node, const char *type) {
  json_t *mods = json_object_get(node, "modifiers");
  for (size_t i = 0; i < json_array_size(mods); i++)
    if (is(json_array_get(mods, i), "type", type)) return true;
  return false;
}

static void ctes(up *u, json_t *node) {
  json_t *map = json_object_get(json_object_get(node, "cte_map"), "map");
  if (json_array_size(map) == 0) return;
  put(u, "WITH ");
  for (size_t i = 0; i < json_array_size(map); i++) {
    json_t *entry = json_array_get(map, i), *cte = json_object_get(entry, "value");
    const char *name = jstr(entry, "key");
    if (u->n_ctes == UP_MAX_NAMES) return refuse(u, "too many CTEs");
    if (!is(cte, "materialized", "CTE_MATERIALIZE_DEFAULT") && json_object_get(cte, "materialized"))
      return refuse(u, "a MATERIALIZED CTE");
    if (i) put(u, ", ");
    ident(u, name);
    json_t *cols = json_object_get(cte, "aliases");
    if (json_array_size(cols)) {
      put(u, "(");
      for (size_t k = 0; k < json_array_size(cols); k++) {
        if (k) put(u, ", ");
        ident(u, json_string_value(json_array_get(cols, k)));
      }
      put(u, ")");
    }
    put(u, " AS (");
    query(u, json_object_get(json_object_get(cte, "query"), "node"));
    put(u, ")");
    u->ctes[u->n_ctes++] = name; /* visible to the CTEs after it and to the body */
  }
  put(u, " ");
}

static void group_by(up *u, json_t *node) {
  json_t *groups = json_object_get(node, "group_expressions"), *sets = json_object_get(node, "group_sets");
  size_t n = json_array_size(groups);
  if (n == 0) return;
  if (json_array_size(sets) != 1 || json_array_size(json_array_get(sets, 0)) != n) return refuse(u, "GROUPING SETS");
  put(u, " GROUP BY ");
  list(u, groups, 0, expr);
}

static void select_node(up *u, json_t *node) {
  static const char *const keys[] = {"modifiers", "cte_map", "select_list", "from_table", "where_clause",
                                     "group_expressions", "group_sets", "aggregate_handling", "having", NULL};
  only_keys(u, node, keys);
  if (!is(node, "aggregate_handling", "STANDARD_HANDLING")) return refuse(u, "GROUP BY ALL");
  ctes(u, node);
  put(u, has_modifier(node, "DISTINCT_MODIFIER") ? "SELECT DISTINCT " : "SELECT ");
  json_t *items = json_object_get(node, "select_list"), *from = json_object_get(node, "from_table");
  list(u, items, 0, select_item);
  if (from && !is(from, "type", "EMPTY")) {
    put(u, " FROM ");
    table_ref(u, from);
  }
  if (json_object_get(node, "where_clause")) {
    put(u, " WHERE ");
    expr(u, json_object_get(node, "where_clause"));
  }
  group_by(u, node);
  if (json_object_get(node, "having")) {
    put(u, " HAVING ");
    expr(u, json_object_get(node, "having"));
  }
  modifiers(u, json_object_get(node, "modifiers"), items);
}

static void setop_node(up *u, json_t *node) {
  static const char *const keys[] = {"modifiers", "cte_map", "setop_type", "setop_all", "left", "right", NULL};
  only_keys(u, node, keys);
  const char *op = jstr(node, "setop_type");
  bool all = json_is_true(json_object_get(node, "setop_all"));
  if (strcmp(op, "UNION") && strcmp(op, "EXCEPT") && strcmp(op, "INTERSECT")) return refuse(u, "%s", op);
  if (sqlite(u) && (all && strcmp(op, "UNION"))) return refuse(u, "%s ALL in SQLite", op);
  /* SQLite takes no parentheses around the parts of a compound SELECT, so parts must be plain there. */
  bool paren = !sqlite(u);
  json_t *parts[2] = {json_object_get(node, "left"), json_object_get(node, "right")};
  json_t *mods = json_object_get(node, "modifiers");
  ctes(u, node);
  /* ORDER BY on a compound SELECT may only name output columns there, so it could not collate: the compound
   * becomes a subquery that the outer SELECT sorts and limits. */
  if (json_array_size(mods)) put(u, "SELECT * FROM (");
  for (int i = 0; i < 2; i++) {
    if (!paren && json_array_size(json_object_get(parts[i], "modifiers"))) return refuse(u, "ORDER BY/LIMIT inside a compound SELECT in SQLite");
    if (i) putf(u, " %s%s ", op, all ? " ALL" : "");
    put(u, paren ? "(" : "");
    query(u, parts[i]);
    put(u, paren ? ")" : "");
  }
  if (json_array_size(mods)) {
    putf(u, ") AS _sp_compound_%d", u->next_alias++);
    modifiers(u, mods, NULL);
  }
}

static void query(up *u, json_t *node) {
  if (u->failed) return;
  size_t saved_ctes = u->n_ctes; /* a subquery's CTEs are not visible outside it */
  if (is(node, "type", "SELECT_NODE")) select_node(u, node);
  else if (is(node, "type", "SET_OPERATION_NODE")) setop_node(u, node);
  else refuse(u, "a %s", jstr(node, "type"));
  u->n_ctes = saved_ctes;
}

int sp_unparse_query(json_t *node, const sp_unparse_env *env, char **out, sp_error *err) {
  up u = {.env = env};
  *out = NULL;
  if (env->dialect == SP_DIALECT_NONE) return sp_fail(err, SP_ENOTSUP, "no SQL dialect");
  collect_aliases(&u, node);
  if (u.too_many_aliases) refuse(&u, "too many aliases");
  query(&u, node);
  if (!u.failed && sp_buf_cstr(&u.b) == NULL) refuse(&u, "out of memory");
  if (u.failed) {
    sp_buf_free(&u.b);
    return sp_fail(err, SP_ENOTSUP, "not pushed down: %s", u.why);
  }
  *out = u.b.data; /* NUL-terminated by sp_buf_cstr; the caller frees it */
  return SP_OK;
}
