/* SPDX-License-Identifier: Apache-2.0
 *
 * The `duckdb` connector: a table of a DuckDB database file (`from: duckdb:table`, `duckdb:schema.table`,
 * `duckdb:database.schema.table`, with params.duckdb_open naming the file) or a DuckDB table function
 * (`from: duckdb:read_parquet('data/trips.parquet')`, duckdb_open optional).
 *
 * The file is opened READ_ONLY by a private DuckDB instance of this connector, never by the serving engine:
 * reading another database there would mean ATTACH, which the sandbox refuses, and the catalog would then
 * hold a database that user SQL could name. The instance is opened per read and closed when the read's
 * stream is released (one instance shared by concurrent reads, through an instance cache), so between reads
 * the file is not locked and another process may write it; the next refresh sees its changes.
 *
 * scan() pushes the projection, the limit and the conditions of federated queries (filter_query, DuckDB's
 * own dialect) into the read, and runs refresh_sql at the source.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connectors/http_util.h"
#include "spice/arrow.h"
#include "spice/buf.h"
#include "spice/connector.h"
#include "spice/duckdb_util.h"
#include "spice/log.h"
#include "spice/sqltext.h"

typedef struct duck_conn {
  sp_connector base; /* must be first */
  duckdb_instance_cache cache;
  char file[4096];   /* absolute path of duckdb_open; "" = an in-memory database (table-function form) */
  char *relation;    /* the table expression read: a qualified table name or the table function */
} duck_conn;

static const sp_param_spec duck_params[] = {
    {"open", SP_PARAM_STRING, SP_PARAM_PREFIXED, NULL, NULL, "path of the DuckDB database file (opened read-only)"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

/* ---- Opening the database -------------------------------------------------------------------------------- */

static int db_open(duck_conn *c, duckdb_database *db, sp_error *err) {
  duckdb_config cfg;
  char *oerr = NULL;
  duckdb_create_config(&cfg);
  if (c->file[0]) duckdb_set_config(cfg, "access_mode", "READ_ONLY");
  duckdb_set_config(cfg, "threads", "2");
  /* Arrow format 1.0 (not the file reader's 1.5): 1.5 exports BLOB as a binary view, which the serving engine
   * cannot scan; the price is DECIMAL(p<=18) as decimal128. */
  duckdb_set_config(cfg, "arrow_output_version", "1.0");
  duckdb_set_config(cfg, "autoinstall_known_extensions", "false");
  duckdb_set_config(cfg, "autoload_known_extensions", "false");
  int rc = SP_OK;
  if (duckdb_get_or_create_from_cache(c->cache, c->file[0] ? c->file : NULL, db, cfg, &oerr) == DuckDBError) {
    const char *why = oerr ? oerr : "unknown error";
    /* A writer in another process holds the file: worth retrying later. */
    int code = strstr(why, "lock") ? SP_EBUSY : SP_EIO;
    rc = sp_fail(err, code, "could not open duckdb database \"%s\" for dataset \"%s\": %s", c->file,
                 c->base.dataset->name, why);
  }
  duckdb_free(oerr);
  duckdb_destroy_config(&cfg);
  return rc;
}

static void db_close(void *ctx) {
  duckdb_database db = ctx;
  duckdb_close(&db);
}

/* Runs our own `sql` on a fresh instance as a stream that closes the instance when released. */
static int run(duck_conn *c, const char *sql, struct ArrowArrayStream *out, sp_error *err) {
  duckdb_database db;
  struct ArrowArrayStream s;
  SP_TRY(db_open(c, &db, err));
  int rc = sp_duckdb_stream(db, sql, &s, err);
  if (rc != SP_OK) {
    duckdb_close(&db);
    return rc;
  }
  return sp__stream_finally(&s, db_close, db, out, err);
}

/* ---- The relation ---------------------------------------------------------------------------------------- */

/* Appends `part` (one segment of a dotted name) quoted. */
static int append_ident(sp_buf *b, const char *part, size_t n) {
  char raw[512], q[1100];
  if (n == 0 || n >= sizeof raw) return SP_EINVAL;
  memcpy(raw, part, n);
  raw[n] = '\0';
  if (sp_sql_ident(q, sizeof q, raw) != 0) return SP_EINVAL;
  return sp_buf_append_str(b, q);
}

/* `table`, `schema.table` or `database.schema.table`, each part quoted, qualified in full with `catalog`
 * and schema main where parts are missing (so a CTE named after the dataset never hides the table). */
static int qualified_name(const char *path, const char *catalog, sp_buf *b) {
  const char *parts[3];
  size_t lens[3], n = 0;
  for (const char *p = path;; n++) {
    const char *dot = strchr(p, '.');
    if (n == 3) return SP_EINVAL;
    parts[n] = p;
    lens[n] = dot ? (size_t)(dot - p) : strlen(p);
    if (dot == NULL) {
      n++;
      break;
    }
    p = dot + 1;
  }
  const char *fill[3] = {catalog, "main", NULL};
  for (size_t i = 0; i < 3 - n; i++) {
    SP_TRY(append_ident(b, fill[i], strlen(fill[i])));
    SP_TRY(sp_buf_append_str(b, "."));
  }
  for (size_t i = 0; i < n; i++) {
    if (i) SP_TRY(sp_buf_append_str(b, "."));
    SP_TRY(append_ident(b, parts[i], lens[i]));
  }
  return SP_OK;
}

/* The name of the database's own catalog (the file's stem, as DuckDB names it). */
static int catalog_name(duck_conn *c, char *out, size_t n, sp_error *err) {
  duckdb_database db;
  duckdb_connection conn;
  duckdb_result r;
  SP_TRY(db_open(c, &db, err));
  int rc = SP_OK;
  if (duckdb_connect(db, &conn) == DuckDBError) {
    rc = sp_fail(err, SP_EINTERNAL, "could not connect to duckdb database \"%s\"", c->file);
  } else {
    if (duckdb_query(conn, "SELECT current_database()", &r) == DuckDBError) {
      rc = sp_fail(err, SP_EIO, "could not read duckdb database \"%s\": %s", c->file, duckdb_result_error(&r));
    } else {
      char *v = duckdb_value_varchar(&r, 0, 0);
      snprintf(out, n, "%s", v ? v : "memory");
      duckdb_free(v);
    }
    duckdb_destroy_result(&r);
    duckdb_disconnect(&conn);
  }
  duckdb_close(&db);
  return rc;
}

static int build_relation(duck_conn *c, sp_error *err) {
  const char *path = c->base.dataset->path, *name = c->base.dataset->name;
  if (strchr(path, '(')) { /* a table function, written by the spicepod's author */
    c->relation = strdup(path);
    return c->relation ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  }
  char catalog[512];
  SP_TRY(catalog_name(c, catalog, sizeof catalog, err));
  sp_buf b = {0};
  int rc = qualified_name(path, catalog, &b);
  if (rc == SP_OK && sp_buf_cstr(&b) == NULL) rc = SP_ENOMEM;
  if (rc != SP_OK) {
    sp_buf_free(&b);
    return sp_fail(err, rc == SP_ENOMEM ? SP_ENOMEM : SP_EINVAL,
                   "dataset \"%s\": from: duckdb:%s is not a table name (table, schema.table or database.schema.table) "
                   "nor a table function", name, path);
  }
  c->relation = b.data;
  return SP_OK;
}

/* Types that cannot travel as Arrow to the engine (UNION), or whose Arrow form is DuckDB's internal bytes
 * (BIT): read as text, with a warning, as the mysql connector does for the types it cannot map. */
static bool read_as_text(const char *type) {
  return strncmp(type, "UNION(", 6) == 0 || strcmp(type, "BIT") == 0 || strcmp(type, "BITSTRING") == 0;
}

/* Appends `col` to a select list, cast to VARCHAR when its type needs it; *cast is set when it does. */
static int append_column(duck_conn *c, sp_buf *b, const char *col, const char *type, bool *cast) {
  char q[1100];
  if (sp_sql_ident(q, sizeof q, col) != 0) return SP_EINVAL;
  if (!read_as_text(type)) return sp_buf_append_str(b, q);
  *cast = true;
  sp_log_warn("dataset \"%s\": column \"%s\" of duckdb %s has type %s, which has no Arrow mapping; read as text",
              c->base.dataset->name, col, c->relation, type);
  SP_TRY(sp_buf_append_str(b, "CAST("));
  SP_TRY(sp_buf_append_str(b, q));
  SP_TRY(sp_buf_append_str(b, " AS VARCHAR) AS "));
  return sp_buf_append_str(b, q);
}

/* Wraps the relation in a SELECT that casts the columns read_as_text names, when there are any. */
static int cast_columns(duck_conn *c, duckdb_result *r, sp_error *err) {
  sp_buf b = {0};
  bool cast = false;
  int rc = sp_buf_append_str(&b, "(SELECT ");
  for (idx_t i = 0; rc == SP_OK && i < duckdb_row_count(r); i++) {
    char *col = duckdb_value_varchar(r, 0, i), *type = duckdb_value_varchar(r, 1, i);
    if (i) rc = sp_buf_append_str(&b, ", ");
    if (rc == SP_OK) rc = col && type ? append_column(c, &b, col, type, &cast) : SP_ENOMEM;
    duckdb_free(col);
    duckdb_free(type);
  }
  if (rc == SP_OK) rc = sp_buf_append_str(&b, " FROM ");
  if (rc == SP_OK) rc = sp_buf_append_str(&b, c->relation);
  if (rc == SP_OK) rc = sp_buf_append_str(&b, ") AS sp_source");
  if (rc == SP_OK && sp_buf_cstr(&b) == NULL) rc = SP_ENOMEM;
  if (rc == SP_OK && cast) {
    free(c->relation);
    c->relation = b.data;
    return SP_OK;
  }
  sp_buf_free(&b);
  return rc == SP_OK ? SP_OK : sp_fail(err, rc, "could not write the read of dataset \"%s\"", c->base.dataset->name);
}

/* Reads the relation's column types (DESCRIBE); a missing table fails here with its name. */
static int check_types(duck_conn *c, sp_error *err) {
  duckdb_database db;
  duckdb_connection conn;
  duckdb_result r;
  sp_buf sql = {0};
  SP_TRY(db_open(c, &db, err));
  int rc = sp_buf_append_str(&sql, "DESCRIBE SELECT * FROM ");
  if (rc == SP_OK) rc = sp_buf_append_str(&sql, c->relation);
  if (rc != SP_OK || sp_buf_cstr(&sql) == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK && duckdb_connect(db, &conn) == DuckDBError) rc = sp_fail(err, SP_EINTERNAL, "could not connect to duckdb");
  if (rc == SP_OK) {
    if (duckdb_query(conn, sql.data, &r) == DuckDBError) {
      const char *why = duckdb_result_error(&r);
      rc = strstr(why, "does not exist")
               ? sp_fail(err, SP_ENOTFOUND, "duckdb table %s for dataset \"%s\" does not exist in \"%s\"", c->relation,
                         c->base.dataset->name, c->file[0] ? c->file : ":memory:")
               : sp_fail(err, SP_EIO, "could not read duckdb %s for dataset \"%s\": %.*s", c->relation,
                         c->base.dataset->name, (int)strcspn(why, "\n"), why);
    } else {
      rc = cast_columns(c, &r, err);
    }
    duckdb_destroy_result(&r);
    duckdb_disconnect(&conn);
  }
  sp_buf_free(&sql);
  duckdb_close(&db);
  return rc;
}

static int resolve_file(duck_conn *c, sp_error *err) {
  const char *file = sp_params_get(&c->base.params, "duckdb_open"), *name = c->base.dataset->name;
  if (file == NULL || *file == '\0') {
    if (strchr(c->base.dataset->path, '(')) return SP_OK; /* a table function over an in-memory database */
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": from: duckdb:%s needs params.duckdb_open (the database file)", name,
                   c->base.dataset->path);
  }
  char cwd[2048] = "";
  if (file[0] != '/' && getcwd(cwd, sizeof cwd) == NULL) return sp_fail(err, SP_EIO, "could not read the current folder");
  if ((size_t)snprintf(c->file, sizeof c->file, "%s%s%s", cwd, cwd[0] ? "/" : "", file) >= sizeof c->file)
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": duckdb_open is too long", name);
  struct stat st;
  if (stat(c->file, &st) != 0)
    return sp_fail(err, errno == ENOENT ? SP_ENOTFOUND : SP_EIO, "could not open duckdb database \"%s\" for dataset \"%s\": %s",
                   c->file, name, strerror(errno));
  return SP_OK;
}

/* ---- Module ------------------------------------------------------------------------------------------------ */

static void duck_close(sp_connector *self) {
  duck_conn *c = (duck_conn *)self;
  free(c->relation);
  c->relation = NULL;
  if (c->cache) duckdb_destroy_instance_cache(&c->cache);
}

static int duck_get_schema(sp_connector *self, struct ArrowSchema *out, sp_error *err);

/* Checks that the relation can be read now, so a missing table fails the dataset with its name. */
static int check_relation(duck_conn *c, sp_error *err) {
  struct ArrowSchema schema;
  SP_TRY(duck_get_schema(&c->base, &schema, err));
  sp_schema_release(&schema);
  return SP_OK;
}

static int duck_open(sp_connector *self, sp_error *err) {
  duck_conn *c = (duck_conn *)self;
  if (self->dataset->path[0] == '\0')
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": from: duckdb: needs a table name or a table function",
                   self->dataset->name);
  int rc = resolve_file(c, err);
  if (rc == SP_OK && (c->cache = duckdb_create_instance_cache()) == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK) rc = build_relation(c, err);
  if (rc == SP_OK) rc = check_types(c, err);
  if (rc == SP_OK) rc = check_relation(c, err);
  if (rc != SP_OK) duck_close(self);
  return rc;
}

/* Runs one of our reads; a failure names the relation and the dataset. */
static int read_sql(duck_conn *c, const char *sql, struct ArrowArrayStream *out, sp_error *err) {
  int rc = run(c, sql, out, err);
  if (rc == SP_OK || err == NULL) return rc;
  const char *name = c->base.dataset->name;
  if (strstr(err->msg, "does not exist")) {
    sp_fail(err, SP_ENOTFOUND, "duckdb table %s for dataset \"%s\" does not exist in \"%s\"", c->relation, name,
            c->file[0] ? c->file : ":memory:");
    return SP_ENOTFOUND;
  }
  if (rc == SP_EINVAL) err->code = rc = SP_EIO;
  sp_error_prefix(err, "could not read duckdb %s for dataset \"%s\"", c->relation, name);
  return rc;
}

static int duck_get_schema(sp_connector *self, struct ArrowSchema *out, sp_error *err) {
  duck_conn *c = (duck_conn *)self;
  struct ArrowArrayStream s;
  sp_buf sql = {0};
  int rc = sp_buf_append_str(&sql, "SELECT * FROM ");
  if (rc == SP_OK) rc = sp_buf_append_str(&sql, c->relation);
  if (rc == SP_OK) rc = sp_buf_append_str(&sql, " LIMIT 0");
  rc = rc == SP_OK && sp_buf_cstr(&sql) ? read_sql(c, sql.data, &s, err) : sp_fail(err, SP_ENOMEM, "out of memory");
  sp_buf_free(&sql);
  SP_TRY(rc);
  rc = s.get_schema(&s, out) == 0 ? SP_OK : sp_fail(err, SP_EIO, "%s", s.get_last_error(&s));
  sp_stream_release(&s);
  return rc;
}

/* `WITH "<dataset>" AS (SELECT * FROM <relation>) `: binds the dataset's name to the source for refresh_sql
 * and filter_query, which name the dataset. */
static int append_cte(duck_conn *c, sp_buf *b) {
  char name[600];
  if (sp_sql_ident(name, sizeof name, c->base.dataset->name) != 0) return SP_EINVAL;
  SP_TRY(sp_buf_append_str(b, "WITH "));
  SP_TRY(sp_buf_append_str(b, name));
  SP_TRY(sp_buf_append_str(b, " AS (SELECT * FROM "));
  SP_TRY(sp_buf_append_str(b, c->relation));
  return sp_buf_append_str(b, ") ");
}

/* SELECT <columns> FROM (<filter_query> | <relation>) [LIMIT n]. */
static int scan_sql(duck_conn *c, const sp_scan *scan, bool with_filter, sp_buf *b) {
  if (with_filter) SP_TRY(append_cte(c, b));
  SP_TRY(sp_buf_append_str(b, "SELECT "));
  for (size_t i = 0; i < scan->n_columns && scan->columns; i++) {
    char q[1100];
    if (sp_sql_ident(q, sizeof q, scan->columns[i]) != 0) return SP_EINVAL;
    SP_TRY(sp_buf_append_str(b, i ? ", " : ""));
    SP_TRY(sp_buf_append_str(b, q));
  }
  if (scan->columns == NULL || scan->n_columns == 0) SP_TRY(sp_buf_append_str(b, "*"));
  SP_TRY(sp_buf_append_str(b, " FROM "));
  if (with_filter) {
    SP_TRY(sp_buf_append_str(b, "("));
    SP_TRY(sp_buf_append_str(b, scan->filter_query));
    SP_TRY(sp_buf_append_str(b, ") AS sp_filtered"));
  } else {
    SP_TRY(sp_buf_append_str(b, c->relation));
  }
  if (scan->limit >= 0) {
    char lim[48];
    snprintf(lim, sizeof lim, " LIMIT %lld", (long long)scan->limit);
    SP_TRY(sp_buf_append_str(b, lim));
  }
  return sp_buf_cstr(b) ? SP_OK : SP_ENOMEM;
}

static int duck_scan_once(duck_conn *c, const sp_scan *scan, bool with_filter, struct ArrowArrayStream *out,
                          sp_error *err) {
  sp_buf sql = {0};
  int rc = SP_OK;
  if (scan->query) {
    rc = append_cte(c, &sql);
    if (rc == SP_OK) rc = sp_buf_append_str(&sql, scan->query);
    if (rc == SP_OK && sp_buf_cstr(&sql) == NULL) rc = SP_ENOMEM;
  } else {
    rc = scan_sql(c, scan, with_filter, &sql);
  }
  if (rc != SP_OK) {
    sp_buf_free(&sql);
    return sp_fail(err, rc, "could not write the read of dataset \"%s\"", c->base.dataset->name);
  }
  if (scan->query) {
    rc = run(c, sql.data, out, err);
    if (rc != SP_OK) sp_error_prefix(err, "refresh_sql of dataset \"%s\" failed", c->base.dataset->name);
  } else {
    rc = read_sql(c, sql.data, out, err);
  }
  sp_buf_free(&sql);
  return rc;
}

static int duck_scan(sp_connector *self, const sp_scan *scan, struct ArrowArrayStream *out, sp_error *err) {
  duck_conn *c = (duck_conn *)self;
  bool filter = scan->query == NULL && scan->filter_query && *scan->filter_query;
  if (!filter) return duck_scan_once(c, scan, false, out, err);
  /* The pushed conditions are only a help (the engine applies the WHERE again): if DuckDB cannot bind them
   * here, read without them. */
  sp_error ferr = {0};
  if (duck_scan_once(c, scan, true, out, &ferr) == SP_OK) return SP_OK;
  sp_log_debug("dataset \"%s\": conditions not pushed to duckdb: %s", self->dataset->name, ferr.msg);
  return duck_scan_once(c, scan, false, out, err);
}

static int duck_get_all_data(sp_connector *self, struct ArrowArrayStream *out, sp_error *err) {
  sp_scan scan = {.limit = -1};
  return duck_scan(self, &scan, out, err);
}

const sp_connector_module sp_connector_duckdb = {
    .abi = SP_CONNECTOR_ABI,
    .name = "duckdb",
    .prefix = "duckdb",
    .params = duck_params,
    .instance_size = sizeof(duck_conn),
    .caps = SP_CONNECTOR_CAP_SCAN_PROJECTION | SP_CONNECTOR_CAP_SCAN_LIMIT,
    .open = duck_open,
    .close = duck_close,
    .get_schema = duck_get_schema,
    .get_all_data = duck_get_all_data,
    .scan = duck_scan,
};
