/* SPDX-License-Identifier: Apache-2.0
 *
 * The classifier of user SQL (contract in classify.h, rules and messages in docs/security.md).
 *
 * DuckDB's parser is the only judge of what a statement means: `json_serialize_sql` parses it (and nothing
 * more: no binding, no catalog, no files) and returns the AST, which is walked whole. The small lexer
 * below never decides that something is allowed on its own. It finds the leading keyword (to name what is
 * refused), counts statements for the message of a refused multi-statement request, and cuts the head off
 * `INSERT INTO t (cols)` / `EXPLAIN [ANALYZE]` so that the query part can be serialized and walked. Its head
 * grammar accepts only words, quoted identifiers, commas and parentheses, so the statement DuckDB runs is
 * that head followed by exactly the query that was checked.
 */
#include "engine/classify.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#define SERIALIZE_SQL "SELECT json_serialize_sql($1::VARCHAR, skip_null := true, skip_empty := true)"
#define NOT_SELECT_MSG "Only SELECT statements can be serialized to json!"

#define WHY_READ_ONLY "spicec serves read-only SQL"
#define WHY_DATASETS "queries may read only datasets and views"
#define WHY_CONFIG "the engine configuration is locked"
#define WHY_EXTENSIONS "extensions cannot be installed or loaded"
#define WHY_TRANSACTION "each request runs in its own transaction"
#define WHY_PREPARE "send query parameters ($1, $name) with the request instead"
#define WHY_DDL "spicec serves read-only SQL; datasets and views are defined in the spicepod"
#define WHY_DML "spicec serves read-only SQL; datasets with mode: read_write accept INSERT only"
#define WHY_PIVOT "it would create a type; list the values, as in PIVOT t ON c IN ('a', 'b') USING sum(x)"

#define MSG_MULTIPLE "multiple statements are not allowed in one request"
#define MSG_EMPTY "no SQL statement in the request"
#define MSG_INSERT_FORM                                                                                        \
  "this form of INSERT is not allowed: write INSERT INTO <dataset> [(columns)] <query> (OR REPLACE, ON "       \
  "CONFLICT, RETURNING and DEFAULT VALUES are not supported)"
#define MSG_INSERT_WITH                                                                                        \
  "INSERT after a WITH clause is not allowed: write INSERT INTO <dataset> WITH ... SELECT ... instead"
#define MSG_EXPLAIN "EXPLAIN is allowed only for queries"

/* DuckDB 1.4 keeps a result collector per execution inside a prepared statement until it is destroyed
 * (duckdb/duckdb#21089: about 0.5 kB per run, measured here), so the serializer is prepared afresh every
 * RENEW_AFTER runs: memory stays bounded and the prepare costs well under a microsecond per call. */
#define RENEW_AFTER 1000

struct sp_sql_classifier {
  duckdb_connection conn;
  duckdb_prepared_statement serialize;
  unsigned runs; /* executions of `serialize` since it was prepared */
};

/* ---- A minimal SQL lexer (PostgreSQL/DuckDB token rules) ------------------------------------------------ */

typedef enum tk_kind {
  TK_END,
  TK_WORD,   /* keyword or unquoted identifier */
  TK_QUOTED, /* "quoted identifier" */
  TK_STRING, /* '...', E'...', X'...', $tag$...$tag$ */
  TK_NUMBER,
  TK_PARAM, /* $1, $name, ? */
  TK_LPAREN,
  TK_RPAREN,
  TK_COMMA,
  TK_DOT,
  TK_SEMI,
  TK_OTHER, /* any other character (operators) */
  TK_BAD    /* unterminated string, identifier or dollar quote */
} tk_kind;

typedef struct tk {
  tk_kind kind;
  size_t start, len; /* byte range in the SQL text */
} tk;

typedef struct lexer {
  const char *s;
  size_t pos;
} lexer;

static bool is_ident_start(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' || ch >= 0x80;
}

static bool is_digit(unsigned char ch) { return ch >= '0' && ch <= '9'; }

static bool is_ident_char(unsigned char ch) { return is_ident_start(ch) || is_digit(ch) || ch == '$'; }

static bool is_space(unsigned char ch) {
  return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Skips blanks and comments as DuckDB's scanner does: `--` to the end of the line, block comments nest. */
static void skip_blanks(lexer *lx) {
  const char *s = lx->s;
  for (;;) {
    while (is_space((unsigned char)s[lx->pos])) lx->pos++;
    if (s[lx->pos] == '-' && s[lx->pos + 1] == '-') {
      while (s[lx->pos] != '\0' && s[lx->pos] != '\n' && s[lx->pos] != '\r') lx->pos++;
    } else if (s[lx->pos] == '/' && s[lx->pos + 1] == '*') {
      int depth = 0;
      while (s[lx->pos] != '\0') {
        if (s[lx->pos] == '/' && s[lx->pos + 1] == '*') {
          depth++;
          lx->pos += 2;
        } else if (s[lx->pos] == '*' && s[lx->pos + 1] == '/') {
          lx->pos += 2;
          if (--depth == 0) break;
        } else {
          lx->pos++;
        }
      }
    } else {
      return;
    }
  }
}

/* Returns the offset just past the closing quote of the quoted text opening at `pos`, or 0 if unterminated.
 * A doubled quote is an escaped quote; with `backslash`, so is \<any>. */
static size_t scan_quoted(const char *s, size_t pos, char quote, bool backslash) {
  for (size_t i = pos + 1; s[i] != '\0'; i++) {
    if (backslash && s[i] == '\\' && s[i + 1] != '\0') {
      i++;
    } else if (s[i] == quote) {
      if (s[i + 1] != quote) return i + 1;
      i++;
    }
  }
  return 0;
}

/* `$` at pos: a parameter ($1, $name) or a dollar-quoted string ($$...$$, $tag$...$tag$). */
static tk lex_dollar(const char *s, size_t pos) {
  tk t = {TK_PARAM, pos, 1};
  size_t i = pos + 1;
  if (is_digit((unsigned char)s[i])) {
    while (is_digit((unsigned char)s[i])) i++;
    t.len = i - pos;
    return t;
  }
  while (is_ident_start((unsigned char)s[i]) || (i > pos + 1 && is_digit((unsigned char)s[i]))) i++;
  if (s[i] != '$') {
    t.kind = i > pos + 1 ? TK_PARAM : TK_OTHER;
    t.len = i - pos;
    return t;
  }
  size_t tag_len = i + 1 - pos;
  for (const char *p = s + i + 1; (p = strchr(p, '$')) != NULL; p++) {
    if (strncmp(p, s + pos, tag_len) == 0) {
      t.kind = TK_STRING;
      t.len = (size_t)(p - s) + tag_len - pos;
      return t;
    }
  }
  t.kind = TK_BAD;
  return t;
}

static tk lex_word(const char *s, size_t pos) {
  tk t = {TK_WORD, pos, 0};
  size_t i = pos;
  while (is_ident_char((unsigned char)s[i])) i++;
  t.len = i - pos;
  /* E'...' (backslash escapes), X'...', B'...', N'...': one string token. */
  if (s[i] == '\'' && t.len == 1 && strchr("eExXbBnN", s[pos]) != NULL) {
    size_t end = scan_quoted(s, i, '\'', s[pos] == 'e' || s[pos] == 'E');
    t.kind = end ? TK_STRING : TK_BAD;
    t.len = end ? end - pos : 0;
  }
  return t;
}

static tk lex_next(lexer *lx) {
  skip_blanks(lx);
  const char *s = lx->s;
  size_t pos = lx->pos;
  unsigned char ch = (unsigned char)s[pos];
  tk t = {TK_OTHER, pos, 1};
  if (ch == '\0') {
    t.kind = TK_END;
    t.len = 0;
  } else if (is_ident_start(ch)) {
    t = lex_word(s, pos);
  } else if (ch == '"' || ch == '\'') {
    size_t end = scan_quoted(s, pos, (char)ch, false);
    t.kind = end ? (ch == '"' ? TK_QUOTED : TK_STRING) : TK_BAD;
    t.len = end ? end - pos : 0;
  } else if (is_digit(ch) || (ch == '.' && is_digit((unsigned char)s[pos + 1]))) {
    size_t i = pos;
    while (is_ident_char((unsigned char)s[i]) || s[i] == '.') i++;
    t.kind = TK_NUMBER;
    t.len = i - pos;
  } else if (ch == '$') {
    t = lex_dollar(s, pos);
  } else {
    static const char singles[] = "(),.;?";
    static const tk_kind kinds[] = {TK_LPAREN, TK_RPAREN, TK_COMMA, TK_DOT, TK_SEMI, TK_PARAM};
    const char *hit = strchr(singles, ch);
    if (hit != NULL) t.kind = kinds[hit - singles];
  }
  if (t.kind != TK_BAD) lx->pos = pos + t.len;
  return t;
}

static tk lex_peek(const lexer *lx) {
  lexer copy = *lx;
  return lex_next(&copy);
}

static bool tk_is(const lexer *lx, tk t, const char *word) {
  return t.kind == TK_WORD && strlen(word) == t.len && strncasecmp(lx->s + t.start, word, t.len) == 0;
}

static bool tk_is_any(const lexer *lx, tk t, const char *const *words) {
  for (; *words != NULL; words++)
    if (tk_is(lx, t, *words)) return true;
  return false;
}

/* Words that open a query, so `(` followed by one of them is a parenthesised query, not a column list. */
static const char *const QUERY_WORDS[] = {"select", "with", "values", "from", "table", "pivot", "unpivot",
                                          "summarize", "describe", "show", NULL};

static bool opens_query(const lexer *lx, tk t) { return t.kind == TK_LPAREN || tk_is_any(lx, t, QUERY_WORDS); }

/* Non-empty statements in sql, split at top-level semicolons. Only used to word a refusal. */
static int count_statements(const char *sql) {
  lexer lx = {sql, 0};
  int n = 0;
  bool open = false;
  for (tk t = lex_next(&lx); t.kind != TK_END && t.kind != TK_BAD; t = lex_next(&lx)) {
    if (t.kind == TK_SEMI) {
      open = false;
    } else if (!open) {
      open = true;
      n++;
    }
  }
  return n;
}

/* The first token of the first non-empty statement. */
static tk first_token(lexer *lx) {
  tk t = lex_next(lx);
  while (t.kind == TK_SEMI) t = lex_next(lx);
  return t;
}

/* ---- Refusals by leading keyword (statements that are not queries) ------------------------------------- */

typedef struct refusal {
  const char *word, *what, *why;
  bool ddl; /* followed by an object kind: CREATE TABLE, DROP MACRO, ... */
} refusal;

static const refusal REFUSALS[] = {
    {"copy", "COPY", WHY_READ_ONLY, false},
    {"export", "EXPORT DATABASE", WHY_READ_ONLY, false},
    {"import", "IMPORT DATABASE", WHY_READ_ONLY, false},
    {"attach", "ATTACH", WHY_DATASETS, false},
    {"detach", "DETACH", WHY_DATASETS, false},
    {"use", "USE", WHY_DATASETS, false},
    {"set", "SET", WHY_CONFIG, false},
    {"reset", "RESET", WHY_CONFIG, false},
    {"pragma", "PRAGMA", WHY_READ_ONLY, false},
    {"install", "INSTALL", WHY_EXTENSIONS, false},
    {"load", "LOAD", WHY_EXTENSIONS, false},
    {"call", "CALL", WHY_READ_ONLY, false},
    {"checkpoint", "CHECKPOINT", WHY_READ_ONLY, false},
    {"vacuum", "VACUUM", WHY_READ_ONLY, false},
    {"analyze", "ANALYZE", WHY_READ_ONLY, false},
    {"analyse", "ANALYZE", WHY_READ_ONLY, false},
    {"begin", "BEGIN", WHY_TRANSACTION, false},
    {"start", "START TRANSACTION", WHY_TRANSACTION, false},
    {"commit", "COMMIT", WHY_TRANSACTION, false},
    {"end", "END", WHY_TRANSACTION, false},
    {"rollback", "ROLLBACK", WHY_TRANSACTION, false},
    {"abort", "ABORT", WHY_TRANSACTION, false},
    {"prepare", "PREPARE", WHY_PREPARE, false},
    {"execute", "EXECUTE", WHY_PREPARE, false},
    {"deallocate", "DEALLOCATE", WHY_PREPARE, false},
    {"create", "CREATE", WHY_DDL, true},
    {"drop", "DROP", WHY_DDL, true},
    {"alter", "ALTER", WHY_DDL, true},
    {"comment", "COMMENT ON", WHY_DDL, false},
    {"update", "UPDATE", WHY_DML, false},
    {"delete", "DELETE", WHY_DML, false},
    {"merge", "MERGE", WHY_DML, false},
    {"truncate", "TRUNCATE", WHY_DML, false},
    {"pivot", "PIVOT without an IN list", WHY_PIVOT, false},
};

/* Object kinds named after CREATE/DROP/ALTER in a refusal ("CREATE MACRO is not allowed: ..."). */
static const char *const DDL_OBJECTS[] = {"table", "view", "macro", "function", "secret", "type",
                                          "sequence", "index", "schema", "database", NULL};
static const char *const DDL_MODIFIERS[] = {"or", "replace", "temp", "temporary", "persistent", "unique", NULL};

static int refuse_ddl(lexer *lx, const char *what, sp_error *err) {
  tk t = lex_next(lx);
  while (tk_is_any(lx, t, DDL_MODIFIERS)) t = lex_next(lx);
  if (!tk_is_any(lx, t, DDL_OBJECTS)) return sp_fail(err, SP_EDENIED, "%s is not allowed: %s", what, WHY_DDL);
  char object[16] = {0};
  for (size_t i = 0; i < t.len && i + 1 < sizeof object; i++) object[i] = (char)(lx->s[t.start + i] & ~0x20);
  return sp_fail(err, SP_EDENIED, "%s %s is not allowed: %s", what, object, WHY_DDL);
}

/* `WITH ... <statement>`: finds the statement keyword after the CTE list (first one at depth 0). */
static tk after_with(lexer *lx) {
  static const char *const verbs[] = {"insert", "update", "delete", "merge", "select", NULL};
  int depth = 0;
  for (tk t = lex_next(lx); t.kind != TK_END && t.kind != TK_BAD && t.kind != TK_SEMI; t = lex_next(lx)) {
    if (t.kind == TK_LPAREN) depth++;
    if (t.kind == TK_RPAREN) depth--;
    if (depth == 0 && tk_is_any(lx, t, verbs)) return t;
  }
  return (tk){TK_END, 0, 0};
}

static const refusal *find_refusal(const lexer *lx, tk t) {
  for (size_t i = 0; i < sizeof REFUSALS / sizeof REFUSALS[0]; i++)
    if (tk_is(lx, t, REFUSALS[i].word)) return &REFUSALS[i];
  return NULL;
}

/* Refuses the (single, parsed) non-query statement that starts at `offset`, named by its keyword. */
static int refuse_by_keyword(const char *sql, size_t offset, sp_error *err) {
  lexer lx = {sql, offset};
  tk t = first_token(&lx);
  if (tk_is(&lx, t, "force")) t = lex_next(&lx); /* FORCE INSTALL, FORCE CHECKPOINT */
  if (tk_is(&lx, t, "with")) {
    t = after_with(&lx);
    if (tk_is(&lx, t, "insert")) return sp_fail(err, SP_EDENIED, MSG_INSERT_WITH);
  }
  if (tk_is(&lx, t, "insert")) return sp_fail(err, SP_EDENIED, MSG_INSERT_FORM);
  if (tk_is(&lx, t, "explain")) {
    /* EXPLAIN [ANALYZE] COPY ...: name the statement inside. */
    t = lex_next(&lx);
    if (tk_is(&lx, t, "analyze") || tk_is(&lx, t, "analyse")) t = lex_next(&lx);
    const refusal *r = find_refusal(&lx, t);
    if (r == NULL || r->ddl) return sp_fail(err, SP_EDENIED, MSG_EXPLAIN);
    return sp_fail(err, SP_EDENIED, "%s is not allowed: %s", r->what, r->why);
  }
  const refusal *r = find_refusal(&lx, t);
  if (r != NULL && r->ddl) return refuse_ddl(&lx, r->what, err);
  if (r != NULL) return sp_fail(err, SP_EDENIED, "%s is not allowed: %s", r->what, r->why);
  if (t.kind == TK_WORD && t.len < 32) {
    char word[32] = {0};
    for (size_t i = 0; i < t.len; i++) {
      char ch = sql[t.start + i];
      word[i] = ch >= 'a' && ch <= 'z' ? (char)(ch - 32) : ch;
    }
    return sp_fail(err, SP_EDENIED, "%s is not allowed: %s", word, WHY_READ_ONLY);
  }
  return sp_fail(err, SP_EDENIED, "this statement is not allowed: %s", WHY_READ_ONLY);
}

/* ---- The AST walk ------------------------------------------------------------------------------------- */

/* Table functions a user query may call: generators, spicec's dataset scans and read-only catalog
 * listings. Anything else (file, network and engine-internal readers: read_csv, glob, query, sp_stream, …)
 * is refused. Add a function here only if it cannot reach outside the catalog. */
static const char *const ALLOWED_TABLE_FUNCTIONS[] = {
    "range",         "generate_series", "unnest",         "sp_arrow_scan",  "sp_source_scan",
    "duckdb_tables", "duckdb_columns",  "duckdb_views",   "duckdb_schemas", "duckdb_settings",
    "duckdb_types",  "duckdb_functions", NULL};

typedef struct denied_function {
  const char *name; /* exact name, or a prefix when it ends in '_' */
  const char *why;
} denied_function;

/* Scalar functions that reach outside the query or change state. */
static const denied_function DENIED_FUNCTIONS[] = {
    {"getenv", "it reads the server's environment"},
    {"which_secret", "it reveals the server's secrets"},
    {"write_log", "it writes to the server's log"},
    {"nextval", "it changes a sequence"},
    {"currval", "sequences are internal"},
    {"sqlite_", "it reaches outside the query"},
    {"postgres_", "it reaches outside the query"},
    {"mysql_", "it reaches outside the query"},
    {"read_", "it reaches outside the query"},
};

static bool name_in(const char *name, const char *const *list) {
  for (; *list != NULL; list++)
    if (strcasecmp(name, *list) == 0) return true;
  return false;
}

static int check_function(const char *name, sp_error *err) {
  for (size_t i = 0; i < sizeof DENIED_FUNCTIONS / sizeof DENIED_FUNCTIONS[0]; i++) {
    const denied_function *d = &DENIED_FUNCTIONS[i];
    size_t n = strlen(d->name);
    bool hit = d->name[n - 1] == '_' ? strncasecmp(name, d->name, n) == 0 : strcasecmp(name, d->name) == 0;
    if (hit) return sp_fail(err, SP_EDENIED, "function \"%.200s\" is not allowed: %s", name, d->why);
  }
  return SP_OK;
}

static int check_table_function(json_t *ref, sp_error *err) {
  const char *name = json_string_value(json_object_get(json_object_get(ref, "function"), "function_name"));
  if (name == NULL) return sp_fail(err, SP_EDENIED, "this table function is not allowed: %s", WHY_DATASETS);
  if (name_in(name, ALLOWED_TABLE_FUNCTIONS)) return SP_OK;
  return sp_fail(err, SP_EDENIED, "table function \"%.200s\" is not allowed: %s", name, WHY_DATASETS);
}

/* A FROM item that is a quoted path ('x.csv', "/etc/passwd", 's3://b/k') is a replacement scan: DuckDB
 * would read the file. Dataset names never contain these characters (a dot separates schema and table,
 * which the AST keeps apart). */
static int check_table_name(const char *name, sp_error *err) {
  if (name == NULL || strpbrk(name, "/\\:.*?") == NULL) return SP_OK;
  return sp_fail(err, SP_EDENIED, "reading files is not allowed: \"%.200s\" is not a dataset; %s", name,
                 WHY_DATASETS);
}

/* Built-in views over refused table functions (duckdb_databases() shows the database files, duckdb_logs()
 * the engine's log). */
static const char *const DENIED_VIEWS[] = {"duckdb_databases", "pragma_database_list", "duckdb_logs", NULL};

static int check_table(json_t *ref, sp_error *err) {
  const char *name = json_string_value(json_object_get(ref, "table_name"));
  SP_TRY(check_table_name(name, err));
  if (name != NULL && name_in(name, DENIED_VIEWS))
    return sp_fail(err, SP_EDENIED, "table \"%s\" is not allowed: %s", name, WHY_DATASETS);
  return SP_OK;
}

static int check_object(json_t *o, sp_error *err) {
  const char *type = json_string_value(json_object_get(o, "type"));
  if (type != NULL && strcmp(type, "TABLE_FUNCTION") == 0) SP_TRY(check_table_function(o, err));
  if (type != NULL && (strcmp(type, "BASE_TABLE") == 0 || strcmp(type, "SHOW_REF") == 0))
    SP_TRY(check_table(o, err));
  const char *function = json_string_value(json_object_get(o, "function_name"));
  if (function != NULL) SP_TRY(check_function(function, err));
  return SP_OK;
}

/* Visits every object of the AST, so subqueries are checked wherever they hide (CTEs, joins, LATERAL, set
 * operations, expressions, function arguments, window clauses). Depth is bounded by jansson's parser. */
static int check_node(json_t *node, sp_error *err) {
  if (json_is_array(node)) {
    size_t i;
    json_t *v;
    json_array_foreach(node, i, v) SP_TRY(check_node(v, err));
  } else if (json_is_object(node)) {
    const char *key;
    json_t *v;
    SP_TRY(check_object(node, err));
    json_object_foreach(node, key, v) SP_TRY(check_node(v, err));
  }
  return SP_OK;
}

/* ---- json_serialize_sql ------------------------------------------------------------------------------- */

static int prepare_serializer(sp_sql_classifier *c, sp_error *err) {
  duckdb_destroy_prepare(&c->serialize);
  c->runs = 1;
  if (duckdb_prepare(c->conn, SERIALIZE_SQL, &c->serialize) == DuckDBSuccess) return SP_OK;
  int rc = sp_fail(err, SP_EINTERNAL, "json_serialize_sql is not available (DuckDB's json extension): %s",
                   duckdb_prepare_error(c->serialize));
  duckdb_destroy_prepare(&c->serialize);
  c->runs = RENEW_AFTER; /* try again on the next call */
  return rc;
}

/* Turns json_serialize_sql's error object into DuckDB's usual "Parser Error: ..." message. */
static int serialize_error(json_t *root, bool *not_select, sp_error *err) {
  const char *type = json_string_value(json_object_get(root, "error_type"));
  const char *msg = json_string_value(json_object_get(root, "error_message"));
  if (type == NULL) type = "unknown";
  if (msg == NULL) msg = "";
  if (strcmp(type, "not implemented") == 0 && strcmp(msg, NOT_SELECT_MSG) == 0) {
    *not_select = true;
    return SP_OK;
  }
  char kind[64];
  snprintf(kind, sizeof kind, "%s", type);
  if (kind[0] >= 'a' && kind[0] <= 'z') kind[0] = (char)(kind[0] - 32);
  return sp_fail(err, SP_EINVAL, "%s Error: %s", kind, msg);
}

/* Loads the one VARCHAR value of a json_serialize_sql result. */
static int load_result(duckdb_result *res, json_t **out, sp_error *err) {
  duckdb_data_chunk chunk = duckdb_fetch_chunk(*res);
  if (chunk == NULL || duckdb_data_chunk_get_size(chunk) < 1) {
    duckdb_destroy_data_chunk(&chunk);
    return sp_fail(err, SP_EINTERNAL, "json_serialize_sql returned no row");
  }
  duckdb_string_t *values = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 0));
  json_error_t jerr;
  *out = json_loadb(duckdb_string_t_data(&values[0]), duckdb_string_t_length(values[0]), JSON_DECODE_INT_AS_REAL,
                    &jerr);
  duckdb_destroy_data_chunk(&chunk);
  if (*out != NULL) return SP_OK;
  if (strstr(jerr.text, "depth") != NULL) return sp_fail(err, SP_EINVAL, "query is too deeply nested to check");
  return sp_fail(err, SP_EINTERNAL, "could not read json_serialize_sql output: %s", jerr.text);
}

/* Parses sql[0, len) with DuckDB. SP_OK with *out = the AST (caller json_decref's it) for queries; SP_OK
 * with *out = NULL and *not_select for statements that are not queries; SP_EINVAL for syntax errors. */
static int serialize(sp_sql_classifier *c, const char *sql, size_t len, json_t **out, bool *not_select,
                     sp_error *err) {
  *out = NULL;
  *not_select = false;
  if (++c->runs > RENEW_AFTER) SP_TRY(prepare_serializer(c, err));
  if (duckdb_bind_varchar_length(c->serialize, 1, sql, len) == DuckDBError)
    return sp_fail(err, SP_EINVAL, "the SQL text is not valid UTF-8");
  duckdb_result res;
  if (duckdb_execute_prepared(c->serialize, &res) == DuckDBError) {
    int rc = sp_fail(err, SP_EINVAL, "%s", duckdb_result_error(&res));
    duckdb_destroy_result(&res);
    return rc;
  }
  json_t *root;
  int rc = load_result(&res, &root, err);
  duckdb_destroy_result(&res);
  if (rc != SP_OK) return rc;
  if (json_is_true(json_object_get(root, "error"))) {
    rc = serialize_error(root, not_select, err);
    json_decref(root);
    return rc;
  }
  *out = root;
  return SP_OK;
}

/* The one statement of a serialized request, checked. */
static int check_statements(json_t *root, sp_error *err) {
  json_t *statements = json_object_get(root, "statements");
  size_t n = json_array_size(statements);
  if (n == 0) return sp_fail(err, SP_EINVAL, MSG_EMPTY);
  if (n > 1) return sp_fail(err, SP_EDENIED, MSG_MULTIPLE);
  return check_node(json_array_get(statements, 0), err);
}

/* DuckDB's own parse of the whole text, for an INSERT/EXPLAIN whose query part passed: it must be one
 * statement. (Safe to extract: with one non-PRAGMA statement nothing is expanded.) */
static int check_one_statement(sp_sql_classifier *c, const char *sql, sp_error *err) {
  duckdb_extracted_statements ex = NULL;
  idx_t n = duckdb_extract_statements(c->conn, sql, &ex);
  int rc = SP_OK;
  if (n == 0) {
    const char *msg = ex ? duckdb_extract_statements_error(ex) : NULL;
    if (msg == NULL) msg = "could not parse the statement";
    rc = sp_fail(err, SP_EINVAL, "%.*s", (int)strcspn(msg, "\n"), msg);
  } else if (n > 1) {
    rc = sp_fail(err, SP_EDENIED, MSG_MULTIPLE);
  }
  duckdb_destroy_extracted(&ex);
  return rc;
}

/* The statement starting with INSERT/EXPLAIN did not fit the head grammar or its query part did not
 * serialize: report DuckDB's syntax error if there is one, else refuse with `msg`. */
static int refuse_statement(sp_sql_classifier *c, const char *sql, size_t offset, sp_error *err) {
  json_t *root;
  bool not_select;
  SP_TRY(serialize(c, sql, strlen(sql), &root, &not_select, err));
  json_decref(root);
  if (count_statements(sql) > 1) return sp_fail(err, SP_EDENIED, MSG_MULTIPLE);
  return refuse_by_keyword(sql, offset, err);
}

/* ---- INSERT and EXPLAIN heads ------------------------------------------------------------------------- */

typedef struct insert_head {
  char target[256];
  size_t target_len;
  size_t columns_offset, columns_len, source_offset;
  bool by_name;
  bool quoted_dot; /* "s.t": one identifier with a dot, which DuckDB does not read as schema.table */
} insert_head;

/* Appends an identifier token to h->target, unquoted ("a""b" -> a"b), '.'-joined. */
static bool append_name(const lexer *lx, tk t, insert_head *h) {
  const char *p = lx->s + t.start, *end = p + t.len;
  if (t.kind == TK_QUOTED) {
    p++;
    end--;
  } else if (t.kind != TK_WORD) {
    return false;
  }
  if (h->target_len > 0) h->target[h->target_len++] = '.';
  if (t.kind == TK_QUOTED && memchr(p, '.', (size_t)(end - p)) != NULL) h->quoted_dot = true;
  for (; p < end; p++) {
    if (h->target_len + 1 >= sizeof h->target) return false;
    h->target[h->target_len++] = *p;
    if (t.kind == TK_QUOTED && *p == '"') p++;
  }
  h->target[h->target_len] = '\0';
  return h->target_len > 0;
}

/* `BY NAME` / `BY POSITION` at t (t is advanced past it). */
static bool parse_by(lexer *lx, tk *t, insert_head *h) {
  if (!tk_is(lx, *t, "by")) return true;
  tk how = lex_next(lx);
  if (tk_is(lx, how, "name")) {
    h->by_name = true;
  } else if (!tk_is(lx, how, "position")) {
    return false;
  }
  *t = lex_next(lx);
  return true;
}

/* `(a, "b c")` at t, unless it opens a parenthesised query (then t is left alone). */
static bool parse_columns(lexer *lx, tk *t, insert_head *h) {
  if (t->kind != TK_LPAREN || opens_query(lx, lex_peek(lx))) return true;
  size_t start = t->start;
  for (;;) {
    tk name = lex_next(lx), sep = lex_next(lx);
    if (name.kind != TK_WORD && name.kind != TK_QUOTED) return false;
    if (sep.kind == TK_RPAREN) {
      h->columns_offset = start;
      h->columns_len = sep.start + 1 - start;
      *t = lex_next(lx);
      return true;
    }
    if (sep.kind != TK_COMMA) return false;
  }
}

/* Reads `INSERT INTO name[.name[.name]] [BY NAME|POSITION] [(columns)] [BY ...]` from `offset`; the source
 * query starts at the next token. False for any other form (OR REPLACE, a missing INTO, ...). */
static bool parse_insert_head(const char *sql, size_t offset, insert_head *h) {
  lexer lx = {sql, offset};
  memset(h, 0, sizeof *h);
  tk t = first_token(&lx);
  if (!tk_is(&lx, t, "insert") || !tk_is(&lx, lex_next(&lx), "into")) return false;
  for (int part = 0; part < 3; part++) {
    if (!append_name(&lx, lex_next(&lx), h)) return false;
    t = lex_next(&lx);
    if (t.kind != TK_DOT) break;
  }
  if (t.kind == TK_DOT || !parse_by(&lx, &t, h) || !parse_columns(&lx, &t, h) || !parse_by(&lx, &t, h))
    return false;
  if (t.kind == TK_END || t.kind == TK_BAD) return false;
  h->source_offset = t.start;
  return true;
}

/* Reads `EXPLAIN [ANALYZE]` or `EXPLAIN (option [value], ...)` from `offset`; sets *query to what follows. */
static bool parse_explain_head(const char *sql, size_t offset, size_t *query) {
  lexer lx = {sql, offset};
  tk t = first_token(&lx);
  if (!tk_is(&lx, t, "explain")) return false;
  t = lex_next(&lx);
  if (tk_is(&lx, t, "analyze") || tk_is(&lx, t, "analyse")) {
    t = lex_next(&lx);
  } else if (t.kind == TK_LPAREN && !opens_query(&lx, lex_peek(&lx))) {
    do {
      t = lex_next(&lx);
      if (t.kind != TK_WORD && t.kind != TK_QUOTED && t.kind != TK_STRING && t.kind != TK_NUMBER &&
          t.kind != TK_COMMA && t.kind != TK_RPAREN)
        return false;
    } while (t.kind != TK_RPAREN);
    t = lex_next(&lx);
  }
  if (t.kind == TK_END || t.kind == TK_BAD) return false;
  *query = t.start;
  return true;
}

/* Serializes and checks the query part sql[query...] of an INSERT/EXPLAIN, then DuckDB's parse of the
 * whole. Anything that does not fit goes to refuse_statement. */
static int check_query_part(sp_sql_classifier *c, const char *sql, size_t offset, size_t query, sp_error *err) {
  json_t *root;
  bool not_select;
  int rc = serialize(c, sql + query, strlen(sql + query), &root, &not_select, err);
  if (rc == SP_EINTERNAL) return rc;
  if (rc != SP_OK || not_select || json_array_size(json_object_get(root, "statements")) == 0) {
    json_decref(root);
    return refuse_statement(c, sql, offset, err);
  }
  rc = json_array_size(json_object_get(root, "statements")) > 1 ? sp_fail(err, SP_EDENIED, MSG_MULTIPLE)
                                                                 : check_one_statement(c, sql, err);
  if (rc == SP_OK) rc = check_statements(root, err);
  json_decref(root);
  return rc;
}

static int classify_insert(sp_sql_classifier *c, const char *sql, size_t offset, sp_sql_is_writable_fn is_writable,
                           void *ctx, sp_sql_class *out, sp_error *err) {
  insert_head h;
  if (!parse_insert_head(sql, offset, &h)) return refuse_statement(c, sql, offset, err);
  SP_TRY(check_query_part(c, sql, offset, h.source_offset, err));
  if (h.quoted_dot)
    return sp_fail(err, SP_EDENIED, "table name \"%s\" has a dot inside quotes: quote schema and table apart (\"s\".\"t\")",
                   h.target);
  if (is_writable == NULL || !is_writable(ctx, h.target))
    return sp_fail(err, SP_EDENIED,
                   "dataset \"%s\" is read-only: INSERT requires mode: read_write with replication enabled", h.target);
  memset(out, 0, sizeof *out);
  out->kind = SP_SQL_INSERT;
  memcpy(out->target, h.target, sizeof out->target);
  out->source_offset = h.source_offset;
  out->columns_offset = h.columns_offset;
  out->columns_len = h.columns_len;
  out->by_name = h.by_name;
  return SP_OK;
}

static int classify_explain(sp_sql_classifier *c, const char *sql, size_t offset, sp_sql_class *out,
                            sp_error *err) {
  size_t query;
  if (!parse_explain_head(sql, offset, &query)) return refuse_statement(c, sql, offset, err);
  SP_TRY(check_query_part(c, sql, offset, query, err));
  memset(out, 0, sizeof *out);
  out->kind = SP_SQL_READ;
  return SP_OK;
}

/* Any other statement: a query is walked; anything else is refused by its keyword. */
static int classify_other(sp_sql_classifier *c, const char *sql, size_t offset, sp_sql_class *out,
                          sp_error *err) {
  json_t *root;
  bool not_select;
  SP_TRY(serialize(c, sql, strlen(sql), &root, &not_select, err));
  if (not_select) {
    if (count_statements(sql) > 1) return sp_fail(err, SP_EDENIED, MSG_MULTIPLE);
    return refuse_by_keyword(sql, offset, err);
  }
  int rc = check_statements(root, err);
  json_decref(root);
  if (rc != SP_OK) return rc;
  memset(out, 0, sizeof *out);
  out->kind = SP_SQL_READ;
  return SP_OK;
}

/* ---- Public API --------------------------------------------------------------------------------------- */

int sp_sql_classifier_create(duckdb_connection conn, sp_sql_classifier **out, sp_error *err) {
  sp_sql_classifier *c = calloc(1, sizeof *c);
  if (c == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  c->conn = conn;
  int rc = prepare_serializer(c, err);
  if (rc != SP_OK) {
    sp_sql_classifier_destroy(c);
    return rc;
  }
  *out = c;
  return SP_OK;
}

void sp_sql_classifier_destroy(sp_sql_classifier *c) {
  if (c == NULL) return;
  duckdb_destroy_prepare(&c->serialize);
  free(c);
}

int sp_sql_classifier_check(sp_sql_classifier *c, const char *sql, sp_sql_is_writable_fn is_writable, void *ctx,
                            sp_sql_class *out, sp_error *err) {
  if (sql == NULL) return sp_fail(err, SP_EINVAL, MSG_EMPTY);
  lexer lx = {sql, 0};
  tk t = first_token(&lx);
  if (tk_is(&lx, t, "insert")) return classify_insert(c, sql, t.start, is_writable, ctx, out, err);
  if (tk_is(&lx, t, "explain")) return classify_explain(c, sql, t.start, out, err);
  return classify_other(c, sql, t.kind == TK_END || t.kind == TK_BAD ? 0 : t.start, out, err);
}

int sp_sql_classify(duckdb_connection conn, const char *sql, sp_sql_is_writable_fn is_writable, void *ctx,
                    sp_sql_class *out, sp_error *err) {
  sp_sql_classifier *c = NULL;
  SP_TRY(sp_sql_classifier_create(conn, &c, err));
  int rc = sp_sql_classifier_check(c, sql, is_writable, ctx, out, err);
  sp_sql_classifier_destroy(c);
  return rc;
}
