/* SPDX-License-Identifier: Apache-2.0
 *
 * The `odbc` connector: a table of any database that has an ODBC driver, through unixODBC
 * (`odbc:table` or `odbc:schema.table`, `odbc_connection_string` as SQLDriverConnect takes it; a driver can be
 * named by the path of its library, `DRIVER=/usr/lib/…/psqlodbcw.so`, so no odbcinst.ini is needed).
 *
 * open() reads the columns once (`SELECT * FROM t WHERE 1=0`, SQLDescribeCol) and fixes the Arrow schema.
 * Every load runs on a connection of its own: the columns are bound (SQLBindCol) in row arrays
 * (SQL_ATTR_ROW_ARRAY_SIZE, column-wise, about 8 MiB of staging per fetch), and each fetched block is copied
 * into the Arrow builders of the batch being made, which is handed on when it holds
 * odbc_max_num_rows_per_batch rows or odbc_max_bytes_per_batch bytes. Text is fetched as UTF-16
 * (SQL_C_WCHAR, which every Unicode driver converts exactly, whatever the locale) and stored as UTF-8;
 * decimals are fetched as text and scaled exactly (no binary floating point on the way), times as text too
 * (ODBC's time struct has no fraction of a second).
 * scan() pushes the projection, a limit (`FETCH FIRST n ROWS ONLY`, or LIMIT for the dialects that need it),
 * and the conditions of filter_query that compare alike at the source and in the engine (numbers only: text
 * follows the source's collation, and dates are often text at the source); refresh filters (sp_scan.query)
 * run at the source. Both reuse the postgres connector's translator (pg_filter.c) with the driver's identifier
 * quote.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sql.h>
#include <sqlext.h>

#include "connectors/mysql_text.h"
#include "connectors/odbc_text.h"
#include "connectors/pg_filter.h"
#include "spice/arrow.h"
#include "spice/connector.h"
#include "spice/duckdb_util.h"
#include "spice/log.h"
#include "spice/sqltext.h"

#define OD_FETCH_BYTES ((size_t)8 << 20) /* staging per fetch: big enough to amortise the driver calls */
#define OD_DEFAULT_TEXT 65536            /* chars (bytes for binaries) when the driver reports no useful size */

typedef enum od_kind {
  OD_BOOL, OD_I16, OD_I32, OD_I64, OD_U64, OD_F32, OD_F64, OD_DECIMAL, OD_DATE, OD_TIME, OD_TIMESTAMP, OD_TEXT,
  OD_BINARY
} od_kind;

typedef struct od_column {
  char *name;
  char *quoted;
  od_kind kind;
  SQLSMALLINT sql_type;
  int precision, scale;
  size_t cell;   /* staging bytes per value */
  int truncate;  /* longer values are cut at cell (odbc_max_*_size given) rather than refused */
} od_column;

typedef enum od_dialect { OD_ANSI = 0, OD_MYSQL, OD_LIMIT } od_dialect;

typedef struct od_conn {
  sp_connector base; /* must be first */
  SQLHENV env;
  const char *cs;    /* odbc_connection_string (borrowed from the params) */
  char display[512]; /* the connection string with its secrets replaced by *** */
  char quote;        /* identifier quote ('"', '`'), or 0 when the driver quotes nothing */
  od_dialect dialect;
  char *relation;    /* quoted table */
  od_column *cols;
  size_t n_cols;
  int64_t max_rows, max_bytes;
} od_conn;

static const sp_param_spec od_params[] = {
    {"connection_string", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET | SP_PARAM_REQUIRED, NULL, NULL,
     "ODBC connection string, e.g. DRIVER={PostgreSQL Unicode};SERVER=db;PORT=5432;DATABASE=x;UID=u;PWD=p"},
    {"max_binary_size", SP_PARAM_INT, SP_PARAM_PREFIXED, NULL, NULL, "longest binary value read, in bytes (longer ones are cut)"},
    {"max_text_size", SP_PARAM_INT, SP_PARAM_PREFIXED, NULL, NULL, "longest text value read, in characters (longer ones are cut)"},
    {"max_bytes_per_batch", SP_PARAM_INT, SP_PARAM_PREFIXED, "512000000", NULL, "bytes of one Arrow batch at most"},
    {"max_num_rows_per_batch", SP_PARAM_INT, SP_PARAM_PREFIXED, "65536", NULL, "rows of one Arrow batch at most"},
    {"sql_dialect", SP_PARAM_ENUM, 0, NULL, "postgresql|mysql|sqlite|athena|databricks",
     "SQL dialect of the source (default: from the driver)"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

/* ---- Diagnostics ------------------------------------------------------------------------------------------ */

/* The driver's first diagnostic record that is not a warning (class 01: the driver manager puts its
 * "Can't open lib" there before the IM003 that says why), with the connection string's secrets scrubbed;
 * state receives its SQLSTATE. */
static void diag(const od_conn *c, SQLSMALLINT type, SQLHANDLE h, char state[6], char *msg, size_t n) {
  SQLCHAR st[6] = "", text[900] = "";
  SQLINTEGER native = 0;
  SQLSMALLINT len = 0;
  int found = 0;
  for (SQLSMALLINT rec = 1; rec <= 8; rec++) {
    SQLCHAR st2[6] = "", text2[900] = "";
    if (!SQL_SUCCEEDED(SQLGetDiagRec(type, h, rec, st2, &native, text2, (SQLSMALLINT)sizeof text2, &len))) break;
    if (!found || (strncmp((const char *)st, "01", 2) == 0 && strncmp((const char *)st2, "01", 2) != 0)) {
      memcpy(st, st2, sizeof st);
      memcpy(text, text2, sizeof text);
    }
    found = 1;
  }
  if (!found) {
    snprintf((char *)st, sizeof st, "HY000");
    snprintf((char *)text, sizeof text, "the driver reported no detail");
  }
  memcpy(state, st, 6);
  state[5] = '\0';
  snprintf(msg, n, "%s", (const char *)text);
  odt_scrub(c->cs, msg);
}

/* A connection failure's status: bad credentials, a driver that cannot be loaded (configuration: not
 * retried), or a source that cannot be reached now (retried). */
static int connect_status(const char *state, const char *msg) {
  if (strncmp(state, "28", 2) == 0 || strstr(msg, "authentication") || strstr(msg, "password")) return SP_EUNAUTH;
  if (strncmp(state, "IM", 2) == 0 || strstr(msg, "Can't open lib")) return SP_EINVAL; /* unixODBC says 01000 */
  return SP_ECONNECT;
}

/* ---- Connections ------------------------------------------------------------------------------------------ */

static int connect_new(od_conn *c, SQLHDBC *out, sp_error *err) {
  SQLHDBC dbc = SQL_NULL_HDBC;
  if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_DBC, c->env, &dbc))) return sp_fail(err, SP_ENOMEM, "out of memory");
  SQLSetConnectAttr(dbc, SQL_ATTR_LOGIN_TIMEOUT, (SQLPOINTER)(intptr_t)10, 0);
  SQLRETURN r = SQLDriverConnect(dbc, NULL, (SQLCHAR *)c->cs, SQL_NTS, NULL, 0, NULL, SQL_DRIVER_NOPROMPT);
  if (SQL_SUCCEEDED(r)) {
    SQLSetConnectAttr(dbc, SQL_ATTR_ACCESS_MODE, (SQLPOINTER)(intptr_t)SQL_MODE_READ_ONLY, 0); /* a hint */
    *out = dbc;
    return SP_OK;
  }
  char state[6], msg[900];
  diag(c, SQL_HANDLE_DBC, dbc, state, msg, sizeof msg);
  SQLFreeHandle(SQL_HANDLE_DBC, dbc);
  int code = connect_status(state, msg);
  return sp_fail(err, code, "could not connect to odbc data source \"%s\" for dataset \"%s\": [%s] %s", c->display,
                 c->base.dataset->name, state, msg);
}

static void disconnect(SQLHDBC dbc) {
  if (dbc == SQL_NULL_HDBC) return;
  SQLDisconnect(dbc);
  SQLFreeHandle(SQL_HANDLE_DBC, dbc);
}

/* ---- Catalog ---------------------------------------------------------------------------------------------- */

/* `s` quoted with c->quote (doubled inside), or as it is when the driver quotes nothing. Owned by the caller. */
static char *quote_ident(const od_conn *c, const char *s, size_t n) {
  char *q = malloc(2 * n + 3), *o = q;
  if (q == NULL) return NULL;
  if (c->quote) *o++ = c->quote;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == c->quote && c->quote) *o++ = c->quote;
    *o++ = s[i];
  }
  if (c->quote) *o++ = c->quote;
  *o = '\0';
  return q;
}

/* `a.b.c` → "a"."b"."c" (each part quoted). */
static char *quote_path(const od_conn *c, const char *path) {
  size_t cap = 3 * strlen(path) + 8, len = 0;
  char *out = malloc(cap);
  for (const char *p = path; out;) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    char *part = quote_ident(c, p, n);
    if (part == NULL) {
      free(out);
      return NULL;
    }
    len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "." : "", part);
    free(part);
    if (dot == NULL) break;
    p = dot + 1;
  }
  return out;
}

static void set_dialect(od_conn *c, SQLHDBC dbc) {
  const char *d = sp_params_get(&c->base.params, "sql_dialect");
  char dbms[128] = "", q[8] = "";
  SQLSMALLINT len = 0;
  SQLGetInfo(dbc, SQL_DBMS_NAME, dbms, (SQLSMALLINT)sizeof dbms, &len);
  SQLGetInfo(dbc, SQL_IDENTIFIER_QUOTE_CHAR, q, (SQLSMALLINT)sizeof q, &len);
  c->quote = q[0] == ' ' || q[0] == '\0' ? 0 : q[0];
  if (d == NULL || *d == '\0') d = strcasestr(dbms, "mysql") || strcasestr(dbms, "mariadb") ? "mysql"
                                 : strcasestr(dbms, "sqlite") ? "sqlite" : "";
  c->dialect = strcasecmp(d, "mysql") == 0 ? OD_MYSQL : strcasecmp(d, "sqlite") == 0 || strcasecmp(d, "databricks") == 0 ? OD_LIMIT : OD_ANSI;
  if (c->dialect == OD_MYSQL) c->quote = '`';
  else if (d[0] && c->quote == 0) c->quote = '"';
}

/* The column's kind and staging size from what the driver describes. Fixed-width cells are exactly the size
 * of their C type: in column-wise binding that size, not the buffer length, is the stride of the array. */
static void map_type(od_conn *c, od_column *col, SQLSMALLINT t, SQLULEN size, SQLSMALLINT digits, int is_unsigned) {
  const sp_params *p = &c->base.params;
  int64_t max_text = sp_params_get_int(p, "odbc_max_text_size", -1), max_bin = sp_params_get_int(p, "odbc_max_binary_size", -1);
  col->sql_type = t;
  switch (t) {
  case SQL_BIT: col->kind = OD_BOOL; col->cell = 1; return;
  case SQL_TINYINT: case SQL_SMALLINT:
    col->kind = is_unsigned && t == SQL_SMALLINT ? OD_I32 : OD_I16;
    col->cell = col->kind == OD_I32 ? sizeof(SQLINTEGER) : sizeof(SQLSMALLINT);
    return;
  case SQL_INTEGER: col->kind = is_unsigned ? OD_I64 : OD_I32; col->cell = is_unsigned ? 8 : sizeof(SQLINTEGER); return;
  case SQL_BIGINT: col->kind = is_unsigned ? OD_U64 : OD_I64; col->cell = 8; return;
  case SQL_REAL: col->kind = OD_F32; col->cell = 4; return;
  case SQL_FLOAT: case SQL_DOUBLE: col->kind = OD_F64; col->cell = 8; return;
  case SQL_TYPE_DATE: case SQL_DATE: col->kind = OD_DATE; col->cell = sizeof(SQL_DATE_STRUCT); return;
  case SQL_TYPE_TIME: case SQL_TIME: col->kind = OD_TIME; col->cell = 32; return; /* text: keeps the fraction */
  case SQL_TYPE_TIMESTAMP: case SQL_TIMESTAMP: col->kind = OD_TIMESTAMP; col->cell = sizeof(SQL_TIMESTAMP_STRUCT); return;
  default: break;
  }
  if ((t == SQL_DECIMAL || t == SQL_NUMERIC) && size >= 1 && size <= 38 && digits >= 0 && (SQLULEN)digits <= size) {
    col->kind = OD_DECIMAL;
    col->precision = (int)size;
    col->scale = digits;
    col->cell = size + 4; /* sign, point, leading zero, NUL */
    return;
  }
  int binary = t == SQL_BINARY || t == SQL_VARBINARY || t == SQL_LONGVARBINARY;
  int64_t cap = binary ? max_bin : max_text;
  size_t n = size >= 1 && size <= (1u << 20) ? (size_t)size : OD_DEFAULT_TEXT;
  if (cap > 0) n = (size_t)cap;
  col->truncate = cap > 0;
  col->kind = binary ? OD_BINARY : OD_TEXT;
  col->cell = binary ? n : 2 * (n + 1); /* UTF-16 units and the terminator */
  if (!binary && t != SQL_CHAR && t != SQL_VARCHAR && t != SQL_LONGVARCHAR && t != SQL_WCHAR && t != SQL_WVARCHAR &&
      t != SQL_WLONGVARCHAR && t != SQL_GUID && t != SQL_DECIMAL && t != SQL_NUMERIC)
    sp_log_warn("dataset \"%s\": column \"%s\" has ODBC type %d, which has no Arrow mapping; read as text",
                c->base.dataset->name, col->name, (int)t);
}

static int describe_column(od_conn *c, SQLHSTMT st, SQLUSMALLINT i, od_column *col) {
  SQLCHAR name[512];
  SQLSMALLINT name_len = 0, type = 0, digits = 0, nullable = 0;
  SQLULEN size = 0;
  SQLLEN uns = SQL_FALSE;
  if (!SQL_SUCCEEDED(SQLDescribeCol(st, i, name, (SQLSMALLINT)sizeof name, &name_len, &type, &size, &digits, &nullable)))
    return -1;
  SQLColAttribute(st, i, SQL_DESC_UNSIGNED, NULL, 0, NULL, &uns);
  /* psqlodbc describes booleans as SQL_VARCHAR unless BoolsAsChar=0; its type name still says "bool". */
  char tname[64] = "";
  SQLSMALLINT tlen = 0;
  SQLColAttribute(st, i, SQL_DESC_TYPE_NAME, tname, (SQLSMALLINT)sizeof tname, &tlen, NULL);
  if ((type == SQL_VARCHAR || type == SQL_CHAR || type == SQL_WVARCHAR || type == SQL_WCHAR) &&
      (strcasecmp(tname, "bool") == 0 || strcasecmp(tname, "boolean") == 0))
    type = SQL_BIT;
  col->name = strdup((const char *)name);
  col->quoted = col->name ? quote_ident(c, col->name, strlen(col->name)) : NULL;
  if (col->name == NULL || col->quoted == NULL) return -2;
  map_type(c, col, type, size, digits, uns == SQL_TRUE);
  return 0;
}

/* A table that does not exist: SQLSTATE 42S02 (42P01 from PostgreSQL), or the words of drivers that say
 * HY000. */
static int missing_table(const char *state, const char *msg) {
  return strcmp(state, "42S02") == 0 || strcmp(state, "42P01") == 0 || strstr(msg, "no such table") ||
         strstr(msg, "does not exist") || strstr(msg, "doesn't exist");
}

static int read_columns(od_conn *c, SQLHDBC dbc, sp_error *err) {
  const char *ds = c->base.dataset->name, *path = c->base.dataset->path;
  SQLHSTMT st = SQL_NULL_HSTMT;
  char *sql = malloc(strlen(c->relation) + 32), state[6], msg[900];
  if (sql == NULL || !SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, dbc, &st))) {
    free(sql);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  sprintf(sql, "SELECT * FROM %s WHERE 1=0", c->relation);
  int rc = SP_OK;
  SQLSMALLINT n = 0;
  if (!SQL_SUCCEEDED(SQLExecDirect(st, (SQLCHAR *)sql, SQL_NTS))) {
    diag(c, SQL_HANDLE_STMT, st, state, msg, sizeof msg);
    rc = missing_table(state, msg)
             ? sp_fail(err, SP_ENOTFOUND, "odbc table \"%s\" for dataset \"%s\" does not exist: [%s] %s", path, ds, state, msg)
             : sp_fail(err, SP_EIO, "could not read the columns of odbc table \"%s\" for dataset \"%s\": [%s] %s", path, ds, state, msg);
  } else if (!SQL_SUCCEEDED(SQLNumResultCols(st, &n)) || n <= 0) {
    rc = sp_fail(err, SP_EIO, "odbc table \"%s\" for dataset \"%s\" has no columns", path, ds);
  } else if ((c->cols = calloc((size_t)n, sizeof *c->cols)) == NULL) {
    rc = sp_fail(err, SP_ENOMEM, "out of memory");
  }
  for (SQLSMALLINT i = 1; rc == SP_OK && i <= n; i++) {
    int d = describe_column(c, st, (SQLUSMALLINT)i, &c->cols[c->n_cols]);
    c->n_cols++;
    if (d == -2) rc = sp_fail(err, SP_ENOMEM, "out of memory");
    else if (d != 0) rc = sp_fail(err, SP_EIO, "could not describe column %d of odbc table \"%s\" for dataset \"%s\"", i, path, ds);
  }
  SQLFreeHandle(SQL_HANDLE_STMT, st);
  free(sql);
  return rc;
}

static void od_close(sp_connector *self) {
  od_conn *c = (od_conn *)self;
  for (size_t i = 0; i < c->n_cols; i++) {
    free(c->cols[i].name);
    free(c->cols[i].quoted);
  }
  free(c->cols);
  free(c->relation);
  if (c->env != SQL_NULL_HENV) SQLFreeHandle(SQL_HANDLE_ENV, c->env);
  c->cols = NULL;
  c->relation = NULL;
  c->n_cols = 0;
  c->env = SQL_NULL_HENV;
}

static int od_open(sp_connector *self, sp_error *err) {
  od_conn *c = (od_conn *)self;
  const char *path = self->dataset->path;
  c->cs = sp_params_get(&self->params, "odbc_connection_string");
  if (path == NULL || *path == '\0') return sp_fail(err, SP_EINVAL, "from: odbc: needs a table name (dataset \"%s\")", self->dataset->name);
  if (c->cs == NULL || *c->cs == '\0')
    return sp_fail(err, SP_EINVAL, "missing required parameter: odbc_connection_string (dataset \"%s\")", self->dataset->name);
  odt_redact(c->cs, c->display, sizeof c->display);
  c->max_rows = sp_params_get_int(&self->params, "odbc_max_num_rows_per_batch", 65536);
  c->max_bytes = sp_params_get_int(&self->params, "odbc_max_bytes_per_batch", 512000000);
  if (c->max_rows < 1 || c->max_rows > (1 << 24) || c->max_bytes < 1)
    return sp_fail(err, SP_EINVAL, "dataset \"%s\": odbc_max_num_rows_per_batch must be 1…16777216 and "
                   "odbc_max_bytes_per_batch positive", self->dataset->name);
  if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &c->env)) ||
      !SQL_SUCCEEDED(SQLSetEnvAttr(c->env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)(intptr_t)SQL_OV_ODBC3, 0))) {
    od_close(self);
    return sp_fail(err, SP_EINTERNAL, "could not set up unixODBC for dataset \"%s\"", self->dataset->name);
  }
  SQLHDBC dbc = SQL_NULL_HDBC;
  int rc = connect_new(c, &dbc, err);
  if (rc == SP_OK) {
    set_dialect(c, dbc);
    if ((c->relation = quote_path(c, path)) == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  }
  if (rc == SP_OK) rc = read_columns(c, dbc, err);
  disconnect(dbc);
  if (rc != SP_OK) od_close(self);
  return rc;
}

/* ---- Arrow schema ----------------------------------------------------------------------------------------- */

static void format_of(const od_column *col, char *buf, size_t n) {
  static const char *const f[] = {[OD_BOOL] = "b", [OD_I16] = "s", [OD_I32] = "i", [OD_I64] = "l", [OD_U64] = "L",
                                  [OD_F32] = "f", [OD_F64] = "g", [OD_DATE] = "tdD", [OD_TIME] = "ttu",
                                  [OD_TIMESTAMP] = "tsu:", [OD_TEXT] = "u", [OD_BINARY] = "z"};
  if (col->kind == OD_DECIMAL) snprintf(buf, n, "d:%d,%d", col->precision, col->scale);
  else snprintf(buf, n, "%s", f[col->kind]);
}

static int make_schema(const od_conn *c, const size_t *idx, size_t n, struct ArrowSchema *out, sp_error *err) {
  int bad = sp_schema_node_init(out, "+s", NULL, 0);
  out->children = bad ? NULL : calloc(n ? n : 1, sizeof *out->children);
  bad = bad || out->children == NULL;
  for (size_t i = 0; !bad && i < n; i++) {
    char fmt[32];
    const od_column *col = &c->cols[idx[i]];
    format_of(col, fmt, sizeof fmt);
    if ((out->children[i] = malloc(sizeof(struct ArrowSchema))) == NULL) {
      bad = 1;
      break;
    }
    out->n_children = (int64_t)i + 1;
    bad = sp_schema_node_init(out->children[i], fmt, col->name, strlen(col->name)) != 0;
    out->children[i]->flags = ARROW_FLAG_NULLABLE;
  }
  if (!bad) return SP_OK;
  sp_schema_release(out);
  return sp_fail(err, SP_ENOMEM, "out of memory");
}

/* ---- Builders --------------------------------------------------------------------------------------------- */

/* One column of the batch being made: validity, then fixed-width values (bits for booleans) or int32 offsets
 * and bytes. */
typedef struct od_builder {
  int width;     /* bytes per value; 0 = variable; -1 = bits */
  uint8_t *valid, *data;
  int32_t *offs;
  size_t data_len, data_cap;
  int64_t nulls;
} od_builder;

static int width_of(od_kind k) {
  switch (k) {
  case OD_BOOL: return -1;
  case OD_I16: return 2;
  case OD_I32: case OD_F32: case OD_DATE: return 4;
  case OD_DECIMAL: return 16;
  case OD_TEXT: case OD_BINARY: return 0;
  default: return 8;
  }
}

static void builder_free(od_builder *b) {
  free(b->valid);
  free(b->data);
  free(b->offs);
  memset(b, 0, sizeof *b);
}

static int builder_start(od_builder *b, int width, int64_t rows) {
  size_t bits = ((size_t)rows + 7) / 8 + 1;
  memset(b, 0, sizeof *b);
  b->width = width;
  b->valid = calloc(bits, 1);
  b->data_cap = width > 0 ? (size_t)width * (size_t)rows : width < 0 ? bits : 4096;
  b->data = calloc(b->data_cap, 1);
  b->offs = width == 0 ? calloc((size_t)rows + 1, sizeof *b->offs) : NULL;
  return b->valid && b->data && (width != 0 || b->offs) ? 0 : -1;
}

/* Room for n more bytes of variable-width data; -1 past 2 GiB (int32 offsets) or out of memory. */
static int reserve(od_builder *b, size_t n) {
  if (b->data_len + n > INT32_MAX) return -1;
  if (b->data_len + n <= b->data_cap) return 0;
  size_t cap = b->data_cap * 2;
  while (cap < b->data_len + n) cap *= 2;
  uint8_t *q = realloc(b->data, cap);
  if (q == NULL) return -1;
  b->data = q;
  b->data_cap = cap;
  return 0;
}

static void array_release(struct ArrowArray *a) {
  if (a->release == NULL) return;
  for (int64_t i = 0; i < a->n_children; i++) {
    if (a->children[i]->release) a->children[i]->release(a->children[i]);
    free(a->children[i]);
  }
  for (int64_t i = 0; i < a->n_buffers; i++) free((void *)a->buffers[i]);
  free(a->buffers);
  free(a->children);
  a->release = NULL;
}

/* Moves the builder's buffers into child array *a of `rows` rows. */
static int builder_finish(od_builder *b, int64_t rows, struct ArrowArray *a) {
  memset(a, 0, sizeof *a);
  a->length = rows;
  a->null_count = b->nulls;
  a->n_buffers = b->width != 0 ? 2 : 3;
  a->buffers = calloc(3, sizeof *a->buffers);
  a->release = array_release;
  if (a->buffers == NULL) return -1;
  a->buffers[0] = b->valid;
  a->buffers[1] = b->width != 0 ? (void *)b->data : (void *)b->offs;
  if (b->width == 0) a->buffers[2] = b->data;
  b->valid = b->data = NULL;
  b->offs = NULL;
  return 0;
}

/* ---- Values ----------------------------------------------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

/* Stores the fixed-width value at `cell` (the driver's C type) as the Arrow value of row `row`. Returns -1 for
 * a value that is not valid for the column (a decimal that does not fit, a time outside a day). */
static int put_fixed(od_builder *b, int64_t row, const od_column *col, const uint8_t *cell, SQLLEN len) {
  uint8_t *dst = b->width > 0 ? b->data + (size_t)row * (size_t)b->width : NULL;
  switch (col->kind) {
  case OD_BOOL:
    if (*cell) b->data[row >> 3] |= (uint8_t)(1u << (row & 7));
    return 0;
  case OD_I16: { int16_t v; SQLSMALLINT s; memcpy(&s, cell, sizeof s); v = s; memcpy(dst, &v, 2); return 0; }
  case OD_I32: { SQLINTEGER s; memcpy(&s, cell, sizeof s); int32_t v = s; memcpy(dst, &v, 4); return 0; }
  case OD_DATE: {
    SQL_DATE_STRUCT d;
    memcpy(&d, cell, sizeof d);
    int32_t v = (int32_t)days_from_civil(d.year, d.month, d.day);
    memcpy(dst, &v, 4);
    return 0;
  }
  case OD_TIME: { /* "HH:MM:SS[.ffffff]": ODBC's time struct has no fraction of a second */
    int64_t us = 0;
    size_t n = len >= 0 && (size_t)len < col->cell ? (size_t)len : strlen((const char *)cell);
    if (myt_parse_time((const char *)cell, n, &us) != 0 || us < 0 || us >= INT64_C(86400000000)) return -1;
    memcpy(dst, &us, 8);
    return 0;
  }
  case OD_TIMESTAMP: {
    SQL_TIMESTAMP_STRUCT t;
    memcpy(&t, cell, sizeof t);
    int64_t s = days_from_civil(t.year, t.month, t.day) * 86400 + (int64_t)t.hour * 3600 + t.minute * 60 + t.second;
    int64_t us = s * 1000000 + (int64_t)(t.fraction / 1000);
    memcpy(dst, &us, 8);
    return 0;
  }
  case OD_DECIMAL: {
    uint64_t lo;
    int64_t hi;
    size_t n = len >= 0 && (size_t)len < col->cell ? (size_t)len : strlen((const char *)cell);
    if (myt_parse_decimal((const char *)cell, n, col->precision, col->scale, &lo, &hi) != 0) return -1;
    memcpy(dst, &lo, 8); /* little-endian two's complement, low half first */
    memcpy(dst + 8, &hi, 8);
    return 0;
  }
  default: memcpy(dst, cell, (size_t)b->width); return 0; /* int64, uint64, float, double: the driver's layout */
  }
}

/* Appends a text (UTF-16 → UTF-8) or binary value of `len` bytes as row `row`; -1 out of memory. */
static int put_var(od_builder *b, int64_t row, const od_column *col, const uint8_t *cell, size_t len) {
  if (col->kind == OD_TEXT) {
    size_t units = len / 2;
    if (reserve(b, 3 * units) != 0) return -1;
    uint16_t tmp[256];
    for (size_t done = 0; done < units;) { /* copy out: the staging cells are not aligned for uint16_t */
      size_t k = units - done < 256 ? units - done : 256;
      if (k == 256 && done + k < units) {
        uint16_t last;
        memcpy(&last, cell + 2 * (done + k - 1), 2);
        if (last >= 0xD800 && last <= 0xDBFF) k--; /* keep a surrogate pair together */
      }
      memcpy(tmp, cell + 2 * done, 2 * k);
      b->data_len += odt_utf16_to_utf8(tmp, k, (char *)b->data + b->data_len);
      done += k;
    }
  } else {
    if (reserve(b, len) != 0) return -1;
    memcpy(b->data + b->data_len, cell, len);
    b->data_len += len;
  }
  b->offs[row + 1] = (int32_t)b->data_len;
  return 0;
}

/* ---- Streams ---------------------------------------------------------------------------------------------- */

typedef struct od_stream {
  od_conn *c;
  SQLHDBC dbc;
  SQLHSTMT st;
  size_t *idx, n;
  uint8_t **stage;        /* per column: fetch_rows cells, bound column-wise */
  SQLLEN **ind;           /* per column: fetch_rows length/indicator values */
  SQLUSMALLINT *status;   /* per fetched row */
  SQLULEN fetch_rows, fetched, pos;
  size_t fixed_row_bytes; /* Arrow bytes of one row's fixed-width values */
  int done;
  od_builder *b;
  char error[1024];
} od_stream;

static SQLSMALLINT c_type(od_kind k) {
  static const SQLSMALLINT t[] = {[OD_BOOL] = SQL_C_BIT, [OD_I16] = SQL_C_SSHORT, [OD_I32] = SQL_C_SLONG,
                                  [OD_I64] = SQL_C_SBIGINT, [OD_U64] = SQL_C_UBIGINT, [OD_F32] = SQL_C_FLOAT,
                                  [OD_F64] = SQL_C_DOUBLE, [OD_DECIMAL] = SQL_C_CHAR, [OD_DATE] = SQL_C_TYPE_DATE,
                                  [OD_TIME] = SQL_C_CHAR, [OD_TIMESTAMP] = SQL_C_TYPE_TIMESTAMP,
                                  [OD_TEXT] = SQL_C_WCHAR, [OD_BINARY] = SQL_C_BINARY};
  return t[k];
}

static int stream_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  od_stream *s = st->private_data;
  return make_schema(s->c, s->idx, s->n, out, NULL) == SP_OK ? 0 : 12; /* ENOMEM */
}

/* A statement error as the stream's message. */
static void stream_fail(od_stream *s, const char *what) {
  char state[6], msg[900];
  diag(s->c, SQL_HANDLE_STMT, s->st, state, msg, sizeof msg);
  snprintf(s->error, sizeof s->error, "could not %s odbc table \"%s\" for dataset \"%s\": [%s] %s", what,
           s->c->base.dataset->path, s->c->base.dataset->name, state, msg);
}

/* A value longer than its staging cell: cut when the user set a size limit, refused otherwise. Returns the
 * bytes to keep, or (size_t)-1. */
static size_t fitted(od_stream *s, const od_column *col, SQLLEN len) {
  size_t room = col->kind == OD_TEXT ? (col->cell - 2) & ~(size_t)1 : col->cell;
  if (len != SQL_NO_TOTAL && (size_t)len <= room) return (size_t)len;
  if (col->truncate) return room;
  snprintf(s->error, sizeof s->error, "could not read odbc table \"%s\" for dataset \"%s\": a value of column \"%s\" is "
           "longer than %zu %s; set %s to the longest value to read (longer values are then cut)", s->c->base.dataset->path,
           s->c->base.dataset->name, col->name, col->kind == OD_TEXT ? room / 2 : room,
           col->kind == OD_TEXT ? "characters" : "bytes", col->kind == OD_TEXT ? "odbc_max_text_size" : "odbc_max_binary_size");
  return (size_t)-1;
}

/* Copies staged row k into row `row` of the builders; -1 with s->error set on failure. */
static int add_row(od_stream *s, int64_t row, SQLULEN k) {
  for (size_t i = 0; i < s->n; i++) {
    od_builder *b = &s->b[i];
    const od_column *col = &s->c->cols[s->idx[i]];
    const uint8_t *cell = s->stage[i] + (size_t)k * col->cell;
    SQLLEN len = s->ind[i][k];
    if (len == SQL_NULL_DATA) {
      b->nulls++;
      if (b->width == 0) b->offs[row + 1] = (int32_t)b->data_len;
      continue;
    }
    b->valid[row >> 3] |= (uint8_t)(1u << (row & 7));
    if (b->width != 0) {
      if (put_fixed(b, row, col, cell, len) == 0) continue;
      char type[32] = "a time of day";
      if (col->kind == OD_DECIMAL) snprintf(type, sizeof type, "a decimal(%d,%d)", col->precision, col->scale);
      snprintf(s->error, sizeof s->error, "could not read odbc table \"%s\" for dataset \"%s\": column \"%s\" holds %.60s, "
               "which is not %s", s->c->base.dataset->path, s->c->base.dataset->name, col->name, (const char *)cell, type);
      return -1;
    }
    size_t n = fitted(s, col, len);
    if (n == (size_t)-1) return -1;
    if (put_var(b, row, col, cell, n) != 0) {
      snprintf(s->error, sizeof s->error, "out of memory (or a batch over 2 GiB) reading dataset \"%s\"", s->c->base.dataset->name);
      return -1;
    }
  }
  return 0;
}

/* Arrow bytes of the batch so far. */
static size_t batch_bytes(const od_stream *s, int64_t rows) {
  size_t total = s->fixed_row_bytes * (size_t)rows;
  for (size_t i = 0; i < s->n; i++) total += s->b[i].width == 0 ? s->b[i].data_len : 0;
  return total;
}

/* The next block of rows from the driver; 0 at the end, -1 on error. */
static int fetch_block(od_stream *s) {
  SQLRETURN r = SQLFetch(s->st);
  if (r == SQL_NO_DATA) return 0;
  if (!SQL_SUCCEEDED(r)) {
    stream_fail(s, "read");
    return -1;
  }
  s->pos = 0;
  for (SQLULEN k = 0; k < s->fetched; k++)
    if (s->status[k] == SQL_ROW_ERROR) {
      stream_fail(s, "read a row of");
      return -1;
    }
  return 1;
}

/* Fills one batch; *rows == 0 means the end. */
static int read_batch(od_stream *s, int64_t *rows) {
  int64_t row = 0, cap = s->c->max_rows;
  for (size_t i = 0; i < s->n; i++)
    if (builder_start(&s->b[i], width_of(s->c->cols[s->idx[i]].kind), cap) != 0) return 12;
  while (row < cap && batch_bytes(s, row) < (size_t)s->c->max_bytes) {
    if (s->pos >= s->fetched) {
      int f = s->done ? 0 : fetch_block(s);
      if (f < 0) return 5;
      if (f == 0) {
        s->done = 1;
        s->fetched = s->pos = 0;
        break;
      }
    }
    if (add_row(s, row, s->pos) != 0) return 5;
    s->pos++;
    row++;
  }
  *rows = row;
  return 0;
}

static void free_batch(od_stream *s) {
  for (size_t i = 0; i < s->n; i++) builder_free(&s->b[i]);
}

/* The struct array of `rows` rows over the builders' buffers (moved). */
static int finish_batch(od_stream *s, int64_t rows, struct ArrowArray *out) {
  memset(out, 0, sizeof *out);
  out->length = rows;
  out->n_buffers = 1;
  out->buffers = calloc(1, sizeof *out->buffers);
  out->children = calloc(s->n ? s->n : 1, sizeof *out->children);
  out->release = array_release;
  int bad = out->buffers == NULL || out->children == NULL;
  for (size_t i = 0; !bad && i < s->n; i++) {
    if ((out->children[i] = malloc(sizeof(struct ArrowArray))) == NULL) {
      bad = 1;
      break;
    }
    out->n_children = (int64_t)i + 1;
    bad = builder_finish(&s->b[i], rows, out->children[i]);
  }
  free_batch(s);
  if (!bad) return 0;
  array_release(out);
  snprintf(s->error, sizeof s->error, "out of memory");
  return 12;
}

static int stream_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  od_stream *s = st->private_data;
  int64_t rows = 0;
  int rc = s->error[0] ? 5 : read_batch(s, &rows);
  if (rc == 12) snprintf(s->error, sizeof s->error, "out of memory");
  if (rc != 0 || rows == 0) {
    free_batch(s);
    if (rc == 0) memset(out, 0, sizeof *out);
    return rc;
  }
  return finish_batch(s, rows, out);
}

static const char *stream_error(struct ArrowArrayStream *st) {
  od_stream *s = st->private_data;
  return s->error[0] ? s->error : NULL;
}

static void stream_free(od_stream *s) {
  if (s->st != SQL_NULL_HSTMT) SQLFreeHandle(SQL_HANDLE_STMT, s->st);
  disconnect(s->dbc);
  for (size_t i = 0; i < s->n; i++) {
    if (s->stage) free(s->stage[i]);
    if (s->ind) free(s->ind[i]);
    if (s->b) builder_free(&s->b[i]);
  }
  free(s->stage);
  free(s->ind);
  free(s->status);
  free(s->b);
  free(s->idx);
  free(s);
}

static void stream_release(struct ArrowArrayStream *st) {
  if (st->release == NULL) return;
  stream_free(st->private_data);
  st->release = NULL;
}

/* Staging for fetch_rows rows: as many as fit OD_FETCH_BYTES, at least one, at most a batch. */
static int alloc_staging(od_stream *s) {
  size_t row_bytes = 0;
  for (size_t i = 0; i < s->n; i++) {
    const od_column *col = &s->c->cols[s->idx[i]];
    row_bytes += col->cell + sizeof(SQLLEN);
    s->fixed_row_bytes += width_of(col->kind) > 0 ? (size_t)width_of(col->kind) : 1;
  }
  size_t rows = OD_FETCH_BYTES / (row_bytes ? row_bytes : 1);
  if (rows < 1) rows = 1;
  if (rows > (size_t)s->c->max_rows) rows = (size_t)s->c->max_rows;
  s->fetch_rows = rows;
  s->stage = calloc(s->n ? s->n : 1, sizeof *s->stage);
  s->ind = calloc(s->n ? s->n : 1, sizeof *s->ind);
  s->status = calloc(rows, sizeof *s->status);
  s->b = calloc(s->n ? s->n : 1, sizeof *s->b);
  if (!s->stage || !s->ind || !s->status || !s->b) return -1;
  for (size_t i = 0; i < s->n; i++) {
    s->stage[i] = malloc(rows * s->c->cols[s->idx[i]].cell);
    s->ind[i] = malloc(rows * sizeof(SQLLEN));
    if (!s->stage[i] || !s->ind[i]) return -1;
  }
  return 0;
}

/* Row-array attributes, the statement, and the bindings. */
static int execute(od_stream *s, const char *sql, sp_error *err) {
  SQLHSTMT st;
  if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, s->dbc, &st))) return sp_fail(err, SP_ENOMEM, "out of memory");
  s->st = st;
  SQLSetStmtAttr(st, SQL_ATTR_ROW_BIND_TYPE, (SQLPOINTER)SQL_BIND_BY_COLUMN, 0);
  SQLSetStmtAttr(st, SQL_ATTR_ROW_ARRAY_SIZE, (SQLPOINTER)(uintptr_t)s->fetch_rows, 0);
  SQLSetStmtAttr(st, SQL_ATTR_ROWS_FETCHED_PTR, &s->fetched, 0);
  SQLSetStmtAttr(st, SQL_ATTR_ROW_STATUS_PTR, s->status, 0);
  int ok = SQL_SUCCEEDED(SQLExecDirect(st, (SQLCHAR *)sql, SQL_NTS));
  for (size_t i = 0; ok && i < s->n; i++) {
    const od_column *col = &s->c->cols[s->idx[i]];
    ok = SQL_SUCCEEDED(SQLBindCol(st, (SQLUSMALLINT)(i + 1), c_type(col->kind), s->stage[i], (SQLLEN)col->cell, s->ind[i]));
  }
  if (ok) return SP_OK;
  stream_fail(s, "read");
  return sp_fail(err, SP_EIO, "%s", s->error);
}

/* Opens a stream over `sql`, which selects the columns idx (owned; taken in every case) in that order. */
static int open_stream(od_conn *c, size_t *idx, size_t n, const char *sql, struct ArrowArrayStream *out, sp_error *err) {
  od_stream *s = calloc(1, sizeof *s);
  if (s == NULL) {
    free(idx);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  s->c = c;
  s->idx = idx;
  s->n = n;
  s->dbc = SQL_NULL_HDBC;
  s->st = SQL_NULL_HSTMT;
  sp_log_debug("dataset \"%s\": %s", c->base.dataset->name, sql);
  int rc = alloc_staging(s) == 0 ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK) rc = connect_new(c, &s->dbc, err);
  if (rc == SP_OK) rc = execute(s, sql, err);
  if (rc != SP_OK) {
    stream_free(s);
    return rc;
  }
  memset(out, 0, sizeof *out);
  out->get_schema = stream_schema;
  out->get_next = stream_next;
  out->get_last_error = stream_error;
  out->release = stream_release;
  out->private_data = s;
  return SP_OK;
}

/* ---- SQL -------------------------------------------------------------------------------------------------- */

/* SELECT <cols> FROM <relation> [WHERE …], limited by the dialect's clause. Owned by the caller. */
static char *select_sql(const od_conn *c, const size_t *idx, size_t n, const char *where, int64_t limit) {
  const char **exprs = malloc((n ? n : 1) * sizeof *exprs);
  if (exprs == NULL) return NULL;
  for (size_t i = 0; i < n; i++) exprs[i] = c->cols[idx[i]].quoted;
  int ansi_limit = limit >= 0 && c->dialect == OD_ANSI;
  char *sql = sp_sql_select(exprs, n, c->relation, where, ansi_limit ? -1 : limit);
  free(exprs);
  if (sql && ansi_limit) { /* the standard's form: PostgreSQL, SQL Server 2012+, Oracle 12c+, DB2 */
    char *q = realloc(sql, strlen(sql) + 48);
    if (q == NULL) free(sql);
    else snprintf(q + strlen(q), 48, " FETCH FIRST %lld ROWS ONLY", (long long)limit);
    sql = q;
  }
  return sql;
}

typedef struct quote_ctx {
  od_conn *c;
  int federated; /* only columns whose comparisons mean the same at the source and in the engine */
} quote_ctx;

/* The quoted column; never one whose name holds ':' (see where_of). A federated filter compares only
 * numbers at the source: text follows the source's collation, and dates and times are often stored as text
 * (SQLite), where the engine compares values. */
static char *quote_column(void *ctx, const char *name) {
  quote_ctx *q = ctx;
  const od_column *hit = NULL;
  for (size_t i = 0; i < q->c->n_cols && hit == NULL; i++)
    if (strcmp(q->c->cols[i].name, name) == 0) hit = &q->c->cols[i];
  for (size_t i = 0; i < q->c->n_cols && hit == NULL; i++)
    if (strcasecmp(q->c->cols[i].name, name) == 0) hit = &q->c->cols[i];
  if (hit == NULL || strchr(hit->name, ':') != NULL) return NULL;
  od_kind k = hit->kind;
  if (q->federated && !(k == OD_I16 || k == OD_I32 || k == OD_I64 || k == OD_U64 || k == OD_F64 || k == OD_DECIMAL))
    return NULL;
  return strdup(hit->quoted);
}

/* 'it''s'; for MySQL backslashes are doubled too (its default sql_mode reads them as escapes). */
static char *quote_literal(void *ctx, const char *s) {
  quote_ctx *q = ctx;
  size_t n = strlen(s), o = 0;
  char *lit = malloc(3 * n + 3);
  if (lit == NULL) return NULL;
  lit[o++] = '\'';
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\'' || (s[i] == '\\' && q->c->dialect == OD_MYSQL)) lit[o++] = s[i];
    lit[o++] = s[i];
  }
  lit[o++] = '\'';
  lit[o] = '\0';
  return lit;
}

/* `SELECT * FROM <dataset> WHERE …`, parsed by DuckDB and rebuilt by the postgres connector's translator,
 * whose output is standard SQL except for the `::float8` after double constants: with no column named with ':'
 * and literals quoted, that suffix can only be such a cast, and is dropped (1.5 is then an exact number, which
 * every SQL database compares with doubles as a double). */
static int where_of(od_conn *c, const char *query, int federated, char **where, sp_error *err) {
  char *json = NULL, what[400];
  snprintf(what, sizeof what, "the filter of dataset \"%s\"", c->base.dataset->name);
  SP_TRY(sp_duckdb_serialize_sql(query, what, &json, err));
  quote_ctx q = {.c = c, .federated = federated};
  pgf_ctx cx = {.dataset = c->base.dataset->name, .column = quote_column, .literal = quote_literal, .ctx = &q};
  int rc = pgf_where(json, &cx, where, err);
  free(json);
  char *pg = err && rc != SP_OK ? strstr(err->msg, "pushed to postgres") : NULL;
  if (pg) memmove(pg + 10, "odbc", 4), memmove(pg + 14, pg + 18, strlen(pg + 18) + 1); /* the translator's own name */
  if (rc != SP_OK) return rc;
  char *p;
  while ((p = strstr(*where, "::float8")) != NULL) memmove(p, p + 8, strlen(p + 8) + 1);
  if (strstr(*where, "::") == NULL) return SP_OK;
  free(*where);
  *where = NULL;
  return sp_fail(err, SP_ENOTSUP, "the filter of dataset \"%s\" has a cast that cannot be sent over odbc", c->base.dataset->name);
}

/* ---- Methods ---------------------------------------------------------------------------------------------- */

static int all_columns(const od_conn *c, size_t **idx, sp_error *err) {
  if ((*idx = calloc(c->n_cols ? c->n_cols : 1, sizeof **idx)) == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; i < c->n_cols; i++) (*idx)[i] = i;
  return SP_OK;
}

/* Reads idx (owned) with an optional WHERE and limit. */
static int read_rows(od_conn *c, size_t *idx, size_t n, const char *where, int64_t limit, struct ArrowArrayStream *out,
                     sp_error *err) {
  char *sql = select_sql(c, idx, n, where, limit);
  if (sql == NULL) {
    free(idx);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  int rc = open_stream(c, idx, n, sql, out, err);
  free(sql);
  return rc;
}

static int od_get_schema(sp_connector *self, struct ArrowSchema *out, sp_error *err) {
  od_conn *c = (od_conn *)self;
  size_t *idx;
  SP_TRY(all_columns(c, &idx, err));
  int rc = make_schema(c, idx, c->n_cols, out, err);
  free(idx);
  return rc;
}

static int od_get_all_data(sp_connector *self, struct ArrowArrayStream *out, sp_error *err) {
  od_conn *c = (od_conn *)self;
  size_t *idx;
  SP_TRY(all_columns(c, &idx, err));
  return read_rows(c, idx, c->n_cols, NULL, -1, out, err);
}

/* The projection as column indexes (owned by the caller). */
static int projection(const od_conn *c, const sp_scan *scan, size_t **idx, size_t *n, sp_error *err) {
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
      return sp_fail(err, SP_EINVAL, "dataset \"%s\" has no column \"%s\"", c->base.dataset->name, scan->columns[i]);
    }
    (*idx)[i] = j;
  }
  *n = scan->n_columns;
  return SP_OK;
}

static int od_scan(sp_connector *self, const sp_scan *scan, struct ArrowArrayStream *out, sp_error *err) {
  od_conn *c = (od_conn *)self;
  char *where = NULL;
  size_t *idx = NULL, n = 0;
  if (scan->query) { /* refresh_sql and friends: must run at the source, with the source's comparison rules */
    SP_TRY(where_of(c, scan->query, 0, &where, err));
  } else if (scan->filter_query) { /* optional: the engine applies the whole WHERE clause again */
    sp_error ferr = {0};
    if (where_of(c, scan->filter_query, 1, &where, &ferr) != SP_OK) {
      sp_log_debug("dataset \"%s\": filter not pushed to the source: %s", self->dataset->name, ferr.msg);
      where = NULL;
    }
  }
  int rc = scan->query ? all_columns(c, &idx, err) : projection(c, scan, &idx, &n, err);
  if (scan->query) n = c->n_cols;
  if (rc == SP_OK) rc = read_rows(c, idx, n, where, scan->query ? -1 : scan->limit, out, err);
  free(where);
  return rc;
}

const sp_connector_module sp_connector_odbc = {
    .abi = SP_CONNECTOR_ABI,
    .name = "odbc",
    .prefix = "odbc",
    .params = od_params,
    .instance_size = sizeof(od_conn),
    .caps = SP_CONNECTOR_CAP_SCAN_PROJECTION | SP_CONNECTOR_CAP_SCAN_LIMIT,
    .open = od_open,
    .close = od_close,
    .get_schema = od_get_schema,
    .get_all_data = od_get_all_data,
    .scan = od_scan,
};
