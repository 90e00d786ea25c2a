/* SPDX-License-Identifier: Apache-2.0
 *
 * The `sqlite` connector: a table or view of a SQLite database file (`from: sqlite:table`, `sqlite_file`).
 *
 * The file is opened read-only (SQLITE_OPEN_READONLY) unless the dataset is `mode: read_write`, and never
 * created. open() fixes the Arrow schema from the columns' declared types (sqlite_arrow.c: INTEGER → int64,
 * REAL → float64, TEXT → utf8, BLOB → binary, DECIMAL(p,s) → decimal128, DATE/DATETIME/TIMESTAMP/BOOLEAN by
 * name); a value that does not fit its column is an error naming the table, column and row, unless
 * unsupported_type_action says warn or ignore (then it reads as NULL).
 *
 * Every read is one prepared `SELECT cols FROM table [WHERE …] [LIMIT n]` on a connection of its own, stepped
 * into batches while the consumer pulls them, so reads on several threads never share a handle. scan() pushes
 * the projection, the limit and the conditions of filter_query on columns that compare alike in SQLite and in
 * the engine (integers, doubles, text with the BINARY collation), through the same translator as the postgres
 * and mysql connectors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "accelerators/sqlite_arrow.h"
#include "spice/arrow.h"
#include "spice/connector.h"
#include "spice/log.h"
#include "spice/sqltext.h"

typedef struct sl_conn {
  sp_connector base; /* must be first */
  char *file;        /* sqlite_file as given */
  char *table;       /* the table name (the `from:` path) */
  char *relation;    /* quoted */
  sqa_column *cols;
  size_t n_cols;
  int busy_ms;
  sqa_action action;
  int64_t rows_read; /* rows produced by every read so far (atomic), for tests and logs */
} sl_conn;

static const sp_param_spec sl_params[] = {
    {"file", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_REQUIRED, NULL, NULL, "path of the SQLite database file"},
    {"busy_timeout", SP_PARAM_DURATION, 0, "5000ms", NULL, "how long a read waits for a lock held by a writer"},
    {"unsupported_type_action", SP_PARAM_ENUM, 0, "error", "error|warn|ignore|string",
     "what to do with a value that does not fit its column's type (warn, ignore: read it as NULL)"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static const char *ds_name(const sl_conn *c) { return c->base.dataset->name; }

/* ---- Connections ------------------------------------------------------------------------------------------ */

static int open_db(sl_conn *c, sqlite3 **out, sp_error *err) {
  int writable = c->base.dataset->mode == SP_MODE_READ_WRITE;
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(c->file, &db, (writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    sp_fail(err, SP_EIO, "could not open sqlite file \"%s\" for dataset \"%s\": %s", c->file, ds_name(c),
            db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return SP_EIO;
  }
  sqlite3_busy_timeout(db, c->busy_ms);
  *out = db;
  return SP_OK;
}

static void close_db(void *ctx, sqlite3 *db) {
  (void)ctx;
  sqlite3_close(db);
}

/* ---- Catalog ---------------------------------------------------------------------------------------------- */

/* Text compares as in the engine only under the BINARY collation; views give no collation, so not pushed. */
static void check_collation(sl_conn *c, sqlite3 *db, sqa_column *col) {
  const char *coll = NULL;
  if (col->kind != SQA_TEXT || !col->pushable) return;
  if (sqlite3_table_column_metadata(db, NULL, c->table, col->name, NULL, &coll, NULL, NULL, NULL) != SQLITE_OK ||
      coll == NULL || strcasecmp(coll, "BINARY") != 0)
    col->pushable = false;
}

static int read_columns(sl_conn *c, sqlite3 *db, sp_error *err) {
  char *sql = malloc(strlen(c->relation) + 32);
  sqlite3_stmt *st = NULL;
  if (sql == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  sprintf(sql, "SELECT * FROM %s", c->relation);
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  free(sql);
  if (rc != SQLITE_OK) {
    const char *m = sqlite3_errmsg(db);
    int missing = strstr(m, "no such table") != NULL;
    sp_fail(err, missing ? SP_ENOTFOUND : SP_EIO, missing ? "sqlite table \"%s\" does not exist in file \"%s\" (dataset \"%s\")"
                                                          : "could not read sqlite table \"%s\" in file \"%s\" for dataset \"%s\": %s",
            c->table, c->file, ds_name(c), m);
    return missing ? SP_ENOTFOUND : SP_EIO;
  }
  c->n_cols = (size_t)sqlite3_column_count(st);
  c->cols = calloc(c->n_cols ? c->n_cols : 1, sizeof *c->cols);
  for (size_t i = 0; c->cols && i < c->n_cols; i++) {
    const char *decl = sqlite3_column_decltype(st, (int)i);
    c->cols[i].name = strdup(sqlite3_column_name(st, (int)i));
    c->cols[i].decl = strdup(decl ? decl : "");
    sqa_map_decltype(decl, &c->cols[i]);
    /* Under warn/ignore a misfit reads as NULL while SQLite compares the stored value: nothing is pushed. */
    if (c->action != SQA_ACTION_ERROR) c->cols[i].pushable = false;
    if (c->cols[i].name) check_collation(c, db, &c->cols[i]);
  }
  sqlite3_finalize(st);
  for (size_t i = 0; c->cols && i < c->n_cols; i++)
    if (c->cols[i].name == NULL || c->cols[i].decl == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  return c->cols ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
}

static void sl_close(sp_connector *self) {
  sl_conn *c = (sl_conn *)self;
  sqa_columns_free(c->cols, c->n_cols);
  free(c->file);
  free(c->table);
  free(c->relation);
}

static sqa_action action_of(const sp_params *p) {
  const char *a = sp_params_get(p, "unsupported_type_action");
  if (a && strcasecmp(a, "warn") == 0) return SQA_ACTION_WARN;
  if (a && strcasecmp(a, "ignore") == 0) return SQA_ACTION_IGNORE;
  return SQA_ACTION_ERROR; /* error, and string (every value fits a text column already) */
}

static int sl_open(sp_connector *self, sp_error *err) {
  sl_conn *c = (sl_conn *)self;
  const char *file = sp_params_get(&self->params, "sqlite_file"), *path = self->dataset->path;
  struct stat sb;
  if (path == NULL || *path == '\0') return sp_fail(err, SP_EINVAL, "from: sqlite: needs a table name (dataset \"%s\")", ds_name(c));
  if (file == NULL || *file == '\0') return sp_fail(err, SP_EINVAL, "missing required parameter: sqlite_file (dataset \"%s\")", ds_name(c));
  /* SQLite would create a missing file on a read-write open: say it is missing instead. */
  if (stat(file, &sb) != 0)
    return sp_fail(err, SP_ENOTFOUND, "could not open sqlite file \"%s\" for dataset \"%s\": %s", file, ds_name(c), strerror(errno));
  c->busy_ms = (int)sp_params_get_duration_ms(&self->params, "busy_timeout", 5000);
  c->action = action_of(&self->params);
  c->file = strdup(file);
  c->table = strdup(path);
  c->relation = sqa_ident(path);
  if (c->file == NULL || c->table == NULL || c->relation == NULL) {
    sl_close(self);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  sqlite3 *db = NULL;
  int rc = open_db(c, &db, err);
  if (rc == SP_OK) rc = read_columns(c, db, err);
  sqlite3_close(db);
  if (rc != SP_OK) sl_close(self);
  return rc;
}

/* ---- Reads ------------------------------------------------------------------------------------------------ */

/* Reads columns idx[0..n) (idx owned) with an optional WHERE and LIMIT. */
static int read_rows(sl_conn *c, size_t *idx, size_t n, const char *where, int64_t limit, struct ArrowArrayStream *out,
                     sp_error *err) {
  const char **exprs = malloc((n ? n : 1) * sizeof *exprs);
  char **quoted = calloc(n ? n : 1, sizeof *quoted);
  sqa_column *cols = calloc(n ? n : 1, sizeof *cols);
  int rc = exprs && quoted && cols ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; rc == SP_OK && i < n; i++) {
    cols[i] = c->cols[idx[i]]; /* borrowed names: sqa_read copies */
    if ((quoted[i] = sqa_ident(c->cols[idx[i]].name)) == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
    exprs[i] = quoted[i];
  }
  /* No column at all (count(*)): SQLite needs something to select. */
  static const char *const one[] = {"1"};
  char *sql = rc == SP_OK ? sp_sql_select(n ? exprs : (const char **)one, n ? n : 1, c->relation, where, limit) : NULL;
  if (rc == SP_OK && sql == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  sqlite3 *db = NULL;
  if (rc == SP_OK) rc = open_db(c, &db, err);
  if (rc == SP_OK) {
    sp_log_debug("dataset \"%s\": %s", ds_name(c), sql);
    sqa_read_opts o = {.dataset = ds_name(c), .table = c->table, .action = c->action, .done = close_db, .rows_read = &c->rows_read};
    rc = sqa_read(db, sql, cols, n, &o, out, err);
  }
  for (size_t i = 0; quoted && i < n; i++) free(quoted[i]);
  free(quoted);
  free(exprs);
  free(cols);
  free(sql);
  free(idx);
  return rc;
}

static int all_columns(const sl_conn *c, size_t **idx, sp_error *err) {
  if ((*idx = calloc(c->n_cols ? c->n_cols : 1, sizeof **idx)) == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; i < c->n_cols; i++) (*idx)[i] = i;
  return SP_OK;
}

static int projection(const sl_conn *c, const sp_scan *scan, size_t **idx, size_t *n, sp_error *err) {
  if (scan->columns == NULL || scan->n_columns == 0) {
    *n = c->n_cols;
    return all_columns(c, idx, err);
  }
  if ((*idx = calloc(scan->n_columns, sizeof **idx)) == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; i < scan->n_columns; i++) {
    size_t j = 0;
    while (j < c->n_cols && strcmp(c->cols[j].name, scan->columns[i]) != 0) j++;
    if (j == c->n_cols) {
      free(*idx);
      return sp_fail(err, SP_EINVAL, "dataset \"%s\" has no column \"%s\"", ds_name(c), scan->columns[i]);
    }
    (*idx)[i] = j;
  }
  *n = scan->n_columns;
  return SP_OK;
}

static int sl_get_schema(sp_connector *self, struct ArrowSchema *out, sp_error *err) {
  sl_conn *c = (sl_conn *)self;
  return sqa_schema(c->cols, c->n_cols, out, err);
}

static int sl_get_all_data(sp_connector *self, struct ArrowArrayStream *out, sp_error *err) {
  sl_conn *c = (sl_conn *)self;
  size_t *idx;
  SP_TRY(all_columns(c, &idx, err));
  return read_rows(c, idx, c->n_cols, NULL, -1, out, err);
}

/* refresh_sql and friends must run at the source: every column may be compared there (SQLite's rules, as in
 * Spice, which runs these at the source). */
static int refresh_where(sl_conn *c, const char *query, char **where, sp_error *err) {
  sqa_column *all = sqa_columns_copy(c->cols, c->n_cols);
  if (all == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; i < c->n_cols; i++) all[i].pushable = true;
  int rc = sqa_where(ds_name(c), all, c->n_cols, query, where, err);
  sqa_columns_free(all, c->n_cols);
  return rc;
}

static int sl_scan(sp_connector *self, const sp_scan *scan, struct ArrowArrayStream *out, sp_error *err) {
  sl_conn *c = (sl_conn *)self;
  char *where = NULL;
  size_t *idx = NULL, n = 0;
  if (scan->query) {
    SP_TRY(refresh_where(c, scan->query, &where, err));
  } else if (scan->filter_query) {
    /* Optional: when a condition does not translate the engine alone applies it (it re-applies all). */
    sp_error ferr = {0};
    if (sqa_where(ds_name(c), c->cols, c->n_cols, scan->filter_query, &where, &ferr) != SP_OK) {
      sp_log_debug("dataset \"%s\": filter not pushed to sqlite: %s", ds_name(c), ferr.msg);
      where = NULL;
    }
  }
  int rc = projection(c, scan, &idx, &n, err);
  if (rc == SP_OK) rc = read_rows(c, idx, n, where, scan->limit, out, err);
  free(where);
  return rc;
}

/* ---- Writes ----------------------------------------------------------------------------------------------- */

static bool sl_supports_writes(sp_connector *self) { return self->dataset->mode == SP_MODE_READ_WRITE; }

/* INSERT INTO table (cols) VALUES (?, …) for every column the incoming rows name. */
static char *insert_sql(sl_conn *c) {
  size_t n = strlen(c->relation) + 64;
  for (size_t i = 0; i < c->n_cols; i++) n += 2 * strlen(c->cols[i].name) + 8;
  char *sql = malloc(n);
  if (sql == NULL) return NULL;
  size_t o = (size_t)sprintf(sql, "INSERT INTO %s (", c->relation);
  for (size_t i = 0; i < c->n_cols; i++) {
    char *q = sqa_ident(c->cols[i].name);
    if (q == NULL) return free(sql), NULL;
    o += (size_t)sprintf(sql + o, "%s%s", i ? ", " : "", q);
    free(q);
  }
  o += (size_t)sprintf(sql + o, ") VALUES (");
  for (size_t i = 0; i < c->n_cols; i++) o += (size_t)sprintf(sql + o, "%s?", i ? ", " : "");
  sprintf(sql + o, ")");
  return sql;
}

/* The stream's columns, matched to the table's by position, as the writer binds them. */
static int write_columns(sl_conn *c, struct ArrowArrayStream *s, sqa_column **out, sp_error *err) {
  struct ArrowSchema schema;
  if (s->get_schema(s, &schema) != 0) return sp_fail(err, SP_EIO, "could not read the schema of the rows to write");
  int rc = (size_t)schema.n_children == c->n_cols ? SP_OK
           : sp_fail(err, SP_EINVAL, "dataset \"%s\": the rows have %lld columns, sqlite table \"%s\" has %zu", ds_name(c),
                     (long long)schema.n_children, c->table, c->n_cols);
  sqa_column *cols = rc == SP_OK ? calloc(c->n_cols ? c->n_cols : 1, sizeof *cols) : NULL;
  if (rc == SP_OK && cols == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; rc == SP_OK && i < c->n_cols; i++) {
    char decl[32];
    cols[i].name = c->cols[i].name;
    if (sqa_map_arrow(schema.children[i]->format, &cols[i], decl, sizeof decl, err) != SP_OK)
      sp_error_prefix(err, "dataset \"%s\": column \"%s\"", ds_name(c), c->cols[i].name), rc = SP_ENOTSUP;
    /* Dates and timestamps go into DATE / DATETIME columns as the text SQLite's date functions read. */
    else if ((c->cols[i].kind == SQA_DATE_TEXT || c->cols[i].kind == SQA_TS_TEXT) && cols[i].kind == SQA_INT &&
             schema.children[i]->format[0] == 't' && (schema.children[i]->format[1] == 'd' || schema.children[i]->format[1] == 's'))
      cols[i].kind = c->cols[i].kind;
  }
  sp_schema_release(&schema);
  if (rc != SP_OK) free(cols);
  else *out = cols;
  return rc;
}

static int sl_add_data(sp_connector *self, sp_data_update *u, sp_error *err) {
  sl_conn *c = (sl_conn *)self;
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  sqa_column *cols = NULL;
  char *sql = insert_sql(c);
  int rc = u->type == SP_UPDATE_APPEND ? SP_OK : sp_fail(err, SP_ENOTSUP, "dataset \"%s\": the sqlite connector only appends", ds_name(c));
  if (rc == SP_OK && sql == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK) rc = write_columns(c, &u->stream, &cols, err);
  if (rc == SP_OK) rc = open_db(c, &db, err);
  if (rc == SP_OK && (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK ||
                      sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK))
    rc = sp_fail(err, sqlite3_errcode(db) == SQLITE_READONLY ? SP_EDENIED : SP_EIO, "%s", sqlite3_errmsg(db));
  if (rc == SP_OK) rc = sqa_write(db, st, cols, c->n_cols, &u->stream, NULL, err);
  sqlite3_finalize(st);
  if (rc == SP_OK && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) rc = sp_fail(err, SP_EIO, "%s", sqlite3_errmsg(db));
  if (rc != SP_OK && db) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  if (rc != SP_OK) sp_error_prefix(err, "could not write to sqlite table \"%s\" for dataset \"%s\"", c->table, ds_name(c));
  sqlite3_close(db);
  sp_stream_release(&u->stream);
  free(cols);
  free(sql);
  return rc;
}

const sp_connector_module sp_connector_sqlite = {
    .abi = SP_CONNECTOR_ABI,
    .name = "sqlite",
    .prefix = "sqlite",
    .params = sl_params,
    .instance_size = sizeof(sl_conn),
    .caps = SP_CONNECTOR_CAP_SCAN_PROJECTION | SP_CONNECTOR_CAP_SCAN_LIMIT,
    .open = sl_open,
    .close = sl_close,
    .get_schema = sl_get_schema,
    .get_all_data = sl_get_all_data,
    .scan = sl_scan,
    .supports_writes = sl_supports_writes,
    .add_data = sl_add_data,
};
