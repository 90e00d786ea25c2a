/* SPDX-License-Identifier: Apache-2.0
 *
 * The `mysql` connector: a table or view of a MySQL or MariaDB server (`mysql:table` in mysql_db, or
 * `mysql:db.table`).
 *
 * open() reads the columns from information_schema once and fixes the Arrow schema. Loads run
 * `SELECT cols FROM db.table [LIMIT n]` on a connection of their own and read it unbuffered
 * (mysql_use_result): rows arrive while the consumer pulls batches of up to 64K rows, so nothing holds the
 * table. The text protocol is used, not prepared statements: every type then arrives in one form the server
 * prints exactly (decimals with every digit, dates as written), parsed by mysql_text.c; the cost is a
 * strtoll per integer. The session runs with time_zone '+00:00', so TIMESTAMP values arrive in UTC.
 * scan() pushes the projection, a limit, and the conditions of filter_query that compare alike in MySQL and
 * in the engine; refresh filters (sp_scan.query) run at the server. Both reuse the postgres connector's
 * translator (pg_filter.c) with MySQL quoting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pthread.h>

#include <mysql.h>

#include "connectors/mysql_text.h"
#include "connectors/mysql_write.h"
#include "connectors/pg_filter.h"
#include "spice/arrow.h"
#include "spice/connector.h"
#include "spice/duckdb_util.h"
#include "spice/log.h"
#include "spice/sqltext.h"

#define MY_BATCH_ROWS 65536

typedef enum my_kind {
  MY_I8, MY_U8, MY_I16, MY_U16, MY_I32, MY_U32, MY_I64, MY_U64, MY_F32, MY_F64, MY_DECIMAL,
  MY_DATE, MY_DATETIME, MY_TIMESTAMP, MY_TIME, MY_BIT, MY_TEXT, MY_BINARY
} my_kind;

typedef struct my_column {
  char *name;
  char *quoted; /* `name` */
  char *mysql_type; /* COLUMN_TYPE, for messages */
  my_kind kind;
  int precision, scale;
} my_column;

typedef struct my_conn {
  sp_connector base; /* must be first */
  myt_url url;       /* from mysql_connection_string, else from the separate params */
  char *relation;    /* `db`.`table` */
  char *display;     /* db.table */
  my_column *cols;
  size_t n_cols;
  char server_id[600];  /* "mysql host:port user=…": who runs pushed-down queries (never a password) */
  char collation[32];   /* byte-order, no-pad collation of utf8mb4 text on this server */
} my_conn;

static const sp_param_spec my_params[] = {
    {"connection_string", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL,
     "mysql://user:pass@host:port/db; takes the place of the other mysql_ connection params"},
    {"host", SP_PARAM_STRING, SP_PARAM_PREFIXED, NULL, NULL, "server host name"},
    {"tcp_port", SP_PARAM_INT, SP_PARAM_PREFIXED, "3306", NULL, "server TCP port"},
    {"db", SP_PARAM_STRING, SP_PARAM_PREFIXED, NULL, NULL, "database (schema) of tables named without one"},
    {"user", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL, "user name"},
    {"pass", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL, "password"},
    {"sslmode", SP_PARAM_ENUM, SP_PARAM_PREFIXED, "required", "required|preferred|disabled", "TLS mode"},
    {"sslrootcert", SP_PARAM_STRING, SP_PARAM_PREFIXED, NULL, NULL, "CA certificate file; the server certificate is then verified"},
    {"client_timeout", SP_PARAM_DURATION, 0, "2m", NULL,
     "how long a read waits for the server's next bytes before it fails (a stalled server); 0s: forever"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

/* ---- Connections ------------------------------------------------------------------------------------------ */

static const char *param(const my_conn *c, const char *key) { return sp_params_get(&c->base.params, key); }

static void server_name(const my_conn *c, char *buf, size_t n) {
  snprintf(buf, n, "%s:%d", c->url.host ? c->url.host : "localhost", c->url.port ? c->url.port : 3306);
}

/* The connection params, from the URL or from the separate params (which fill what the URL leaves out). */
static int resolve_params(my_conn *c, sp_error *err) {
  const char *cs = param(c, "mysql_connection_string");
  if (cs && *cs) {
    sp_error uerr = {0};
    if (myt_parse_url(cs, &c->url, &uerr) != SP_OK)
      return sp_fail(err, SP_EINVAL, "dataset \"%s\": %s", c->base.dataset->name, uerr.msg);
  }
  const char *keys[4] = {"mysql_host", "mysql_user", "mysql_pass", "mysql_db"};
  char **dst[4] = {&c->url.host, &c->url.user, &c->url.pass, &c->url.db};
  for (int i = 0; i < 4; i++) {
    const char *v = param(c, keys[i]);
    if (*dst[i] == NULL && v && *v && (*dst[i] = strdup(v)) == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  if (c->url.port == 0) c->url.port = (int)sp_params_get_int(&c->base.params, "mysql_tcp_port", 3306);
  return SP_OK;
}

static void set_tls(my_conn *c, MYSQL *m) {
  const char *mode = param(c, "mysql_sslmode"), *ca = param(c, "mysql_sslrootcert");
  my_bool on = 1;
  if (mode && strcasecmp(mode, "disabled") == 0) return;
  mysql_ssl_set(m, NULL, NULL, ca && *ca ? ca : NULL, NULL, NULL);
  if (ca && *ca) mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
  if (mode == NULL || strcasecmp(mode, "required") == 0) mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &on);
}

/* Connector/C 3.3 goes on in clear text when the server has no TLS unless the certificate is verified:
 * `required` is checked on the connection it made. */
static int tls_missing(const my_conn *c, MYSQL *m) {
  const char *mode = param(c, "mysql_sslmode");
  return (mode == NULL || strcasecmp(mode, "required") == 0) && mysql_get_ssl_cipher(m) == NULL;
}

static int connect_new(my_conn *c, MYSQL **out, sp_error *err) {
  MYSQL *m = mysql_init(NULL);
  if (m == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  unsigned timeout = 10, proto = MYSQL_PROTOCOL_TCP;
  mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  /* A server that stalls with the connection open would block a read forever: client_timeout bounds each
   * read and write (whole seconds, rounded up). The connection is lost then, and never reused. */
  int64_t idle_ms = sp_params_get_duration_ms(&c->base.params, "client_timeout", 120000);
  unsigned idle_s = idle_ms > 0 ? (unsigned)((idle_ms + 999) / 1000) : 0;
  if (idle_s > 0) {
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &idle_s);
    mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &idle_s);
  }
  mysql_options(m, MYSQL_OPT_PROTOCOL, &proto);
  mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  mysql_options(m, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'");
  set_tls(c, m);
  if (mysql_real_connect(m, c->url.host ? c->url.host : "localhost", c->url.user, c->url.pass ? c->url.pass : "",
                         c->url.db, (unsigned)c->url.port, NULL, 0) != NULL) {
    if (tls_missing(c, m)) {
      char server[300];
      server_name(c, server, sizeof server);
      mysql_close(m);
      return sp_fail(err, SP_ECONNECT, "could not connect to mysql server \"%s\" for dataset \"%s\": the server offers no "
                     "TLS and mysql_sslmode is required (set preferred or disabled to allow a clear-text connection)",
                     server, c->base.dataset->name);
    }
    *out = m;
    return SP_OK;
  }
  char server[300];
  server_name(c, server, sizeof server);
  unsigned e = mysql_errno(m);
  int code = e == 1045 || e == 1044 || e == 1698 ? SP_EUNAUTH : e == 1049 ? SP_ENOTFOUND : SP_ECONNECT;
  sp_fail(err, code, "could not connect to mysql server \"%s\" for dataset \"%s\": %s", server, c->base.dataset->name,
          mysql_error(m));
  mysql_close(m);
  return code;
}

/* ---- Catalog ---------------------------------------------------------------------------------------------- */

/* `s` with backticks doubled, in backticks. Owned by the caller. */
static char *quote_ident(const char *s) {
  size_t n = strlen(s), o = 0;
  char *q = malloc(2 * n + 3);
  if (q == NULL) return NULL;
  q[o++] = '`';
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '`') q[o++] = '`';
    q[o++] = s[i];
  }
  q[o++] = '`';
  q[o] = '\0';
  return q;
}

static int map_type(const char *dt, const char *ct, int prec, int scale, my_column *col) {
  int uns = strstr(ct, "unsigned") != NULL;
  static const struct { const char *name; my_kind s, u; } ints[] = {
      {"tinyint", MY_I8, MY_U8}, {"smallint", MY_I16, MY_U16}, {"mediumint", MY_I32, MY_U32},
      {"int", MY_I32, MY_U32}, {"integer", MY_I32, MY_U32}, {"bigint", MY_I64, MY_U64}, {"year", MY_I16, MY_I16}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
    if (strcasecmp(dt, ints[i].name) == 0) return col->kind = uns ? ints[i].u : ints[i].s, 1;
  static const struct { const char *name; my_kind k; } other[] = {
      {"float", MY_F32}, {"double", MY_F64}, {"real", MY_F64}, {"date", MY_DATE}, {"datetime", MY_DATETIME},
      {"timestamp", MY_TIMESTAMP}, {"time", MY_TIME}, {"bit", MY_BIT}, {"char", MY_TEXT}, {"varchar", MY_TEXT},
      {"tinytext", MY_TEXT}, {"text", MY_TEXT}, {"mediumtext", MY_TEXT}, {"longtext", MY_TEXT}, {"enum", MY_TEXT},
      {"set", MY_TEXT}, {"json", MY_TEXT}, {"binary", MY_BINARY}, {"varbinary", MY_BINARY},
      {"tinyblob", MY_BINARY}, {"blob", MY_BINARY}, {"mediumblob", MY_BINARY}, {"longblob", MY_BINARY}};
  for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
    if (strcasecmp(dt, other[i].name) == 0) return col->kind = other[i].k, 1;
  if (strcasecmp(dt, "decimal") == 0 || strcasecmp(dt, "numeric") == 0) {
    /* Over 38 digits has no decimal128: the exact digits as text. */
    col->kind = prec >= 1 && prec <= 38 ? MY_DECIMAL : MY_TEXT;
    col->precision = prec;
    col->scale = scale;
    return 1;
  }
  return 0;
}

static int query_columns(my_conn *c, MYSQL *m, const char *db, const char *table, MYSQL_RES **out, sp_error *err) {
  size_t dn = strlen(db), tn = strlen(table);
  char *edb = malloc(2 * dn + 1), *etab = malloc(2 * tn + 1), *sql = malloc(4 * (dn + tn) + 512);
  int rc = SP_OK;
  if (edb == NULL || etab == NULL || sql == NULL) {
    rc = sp_fail(err, SP_ENOMEM, "out of memory");
  } else {
    mysql_real_escape_string(m, edb, db, (unsigned long)dn);
    mysql_real_escape_string(m, etab, table, (unsigned long)tn);
    sprintf(sql, "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE FROM "
                 "information_schema.COLUMNS WHERE TABLE_SCHEMA = '%s' AND TABLE_NAME = '%s' ORDER BY ORDINAL_POSITION",
            edb, etab);
    if (mysql_query(m, sql) != 0 || (*out = mysql_store_result(m)) == NULL)
      rc = sp_fail(err, SP_EIO, "could not read the columns of mysql table \"%s.%s\" for dataset \"%s\": %s", db, table,
                   c->base.dataset->name, mysql_error(m));
  }
  free(edb);
  free(etab);
  free(sql);
  return rc;
}

/* A type without a mapping (geometry, MariaDB's inet6/uuid, …) is read as the text the server prints. */
static int add_column(my_conn *c, MYSQL_ROW r) {
  my_column *col = &c->cols[c->n_cols];
  if (!map_type(r[1], r[2], r[3] ? atoi(r[3]) : 0, r[4] ? atoi(r[4]) : 0, col)) {
    sp_log_warn("dataset \"%s\": column \"%s\" of mysql table \"%s\" has type %s, which has no Arrow mapping; read as text",
                c->base.dataset->name, r[0], c->display, r[2]);
    col->kind = MY_TEXT;
  }
  col->name = strdup(r[0]);
  col->quoted = quote_ident(r[0]);
  col->mysql_type = strdup(r[2]);
  c->n_cols++;
  return col->name && col->quoted && col->mysql_type ? SP_OK : SP_ENOMEM;
}

/* Splits the path into db and table (db defaults to the connection's) and reads the columns. */
static int read_columns(my_conn *c, MYSQL *m, sp_error *err) {
  const char *path = c->base.dataset->path, *ds = c->base.dataset->name, *dot = path ? strchr(path, '.') : NULL;
  if (path == NULL || *path == '\0') return sp_fail(err, SP_EINVAL, "from: mysql: needs a table name (dataset \"%s\")", ds);
  char *db = dot ? strndup(path, (size_t)(dot - path)) : strdup(c->url.db ? c->url.db : "");
  const char *table = dot ? dot + 1 : path;
  if (db == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  if (*db == '\0') {
    free(db);
    return sp_fail(err, SP_EINVAL, "mysql table \"%s\" for dataset \"%s\" names no database: set mysql_db or write mysql:db.table", path, ds);
  }
  char *qd = quote_ident(db), *qt = quote_ident(table);
  c->relation = qd && qt ? malloc(strlen(qd) + strlen(qt) + 2) : NULL;
  c->display = malloc(strlen(db) + strlen(table) + 2);
  if (c->relation) sprintf(c->relation, "%s.%s", qd, qt);
  if (c->display) sprintf(c->display, "%s.%s", db, table);
  free(qd);
  free(qt);
  MYSQL_RES *res = NULL;
  int rc = c->relation && c->display ? query_columns(c, m, db, table, &res, err) : sp_fail(err, SP_ENOMEM, "out of memory");
  free(db);
  if (rc != SP_OK) return rc;
  if (mysql_num_rows(res) == 0) rc = sp_fail(err, SP_ENOTFOUND, "mysql table \"%s\" for dataset \"%s\" does not exist", c->display, ds);
  else if ((c->cols = calloc(mysql_num_rows(res), sizeof *c->cols)) == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  MYSQL_ROW r;
  while (rc == SP_OK && (r = mysql_fetch_row(res)) != NULL)
    if (add_column(c, r) != SP_OK) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  mysql_free_result(res);
  return rc;
}

static void my_close(sp_connector *self) {
  my_conn *c = (my_conn *)self;
  for (size_t i = 0; i < c->n_cols; i++) {
    free(c->cols[i].name);
    free(c->cols[i].quoted);
    free(c->cols[i].mysql_type);
  }
  free(c->cols);
  free(c->relation);
  free(c->display);
  myt_url_free(&c->url);
}

static void describe_server(my_conn *c, MYSQL *m) {
  char server[300];
  server_name(c, server, sizeof server);
  snprintf(c->server_id, sizeof c->server_id, "mysql %s user=%s", server, c->url.user ? c->url.user : "");
  /* MariaDB's utf8mb4_bin pads with spaces ('a' = 'a '); MySQL 8's byte-order collation is 0900_bin. */
  const char *info = mysql_get_server_info(m);
  snprintf(c->collation, sizeof c->collation, "%s", info && strstr(info, "MariaDB") ? "utf8mb4_nopad_bin" : "utf8mb4_0900_bin");
}

static int my_open(sp_connector *self, sp_error *err) {
  my_conn *c = (my_conn *)self;
  MYSQL *m = NULL;
  int rc = resolve_params(c, err);
  if (rc == SP_OK) rc = connect_new(c, &m, err);
  if (rc == SP_OK) rc = read_columns(c, m, err);
  if (rc == SP_OK) describe_server(c, m);
  if (m) mysql_close(m);
  if (rc != SP_OK) my_close(self);
  return rc;
}

/* ---- Arrow ------------------------------------------------------------------------------------------------ */

static int width_of(my_kind k) {
  switch (k) {
  case MY_I8: case MY_U8: return 1;
  case MY_I16: case MY_U16: return 2;
  case MY_I32: case MY_U32: case MY_F32: case MY_DATE: return 4;
  case MY_DECIMAL: return 16;
  case MY_TEXT: case MY_BINARY: return 0;
  default: return 8;
  }
}

static void format_of(const my_column *col, char *buf, size_t n) {
  static const char *f[] = {[MY_I8] = "c", [MY_U8] = "C", [MY_I16] = "s", [MY_U16] = "S", [MY_I32] = "i",
                            [MY_U32] = "I", [MY_I64] = "l", [MY_U64] = "L", [MY_F32] = "f", [MY_F64] = "g",
                            [MY_DATE] = "tdD", [MY_DATETIME] = "tsu:", [MY_TIMESTAMP] = "tsu:UTC",
                            [MY_TIME] = "ttu", [MY_BIT] = "L", [MY_TEXT] = "u", [MY_BINARY] = "z"};
  if (col->kind == MY_DECIMAL) snprintf(buf, n, "d:%d,%d", col->precision, col->scale);
  else snprintf(buf, n, "%s", f[col->kind]);
}

static void schema_release(struct ArrowSchema *s) {
  if (s->release == NULL) return;
  for (int64_t i = 0; i < s->n_children; i++) {
    s->children[i]->release(s->children[i]);
    free(s->children[i]);
  }
  free(s->children);
  free((void *)s->format);
  free((void *)s->name);
  s->release = NULL;
}

static int schema_node(struct ArrowSchema *s, const char *format, const char *name, int64_t n_kids) {
  memset(s, 0, sizeof *s);
  s->format = strdup(format);
  s->name = name ? strdup(name) : NULL;
  s->flags = ARROW_FLAG_NULLABLE;
  s->release = schema_release;
  s->n_children = n_kids;
  s->children = n_kids ? calloc((size_t)n_kids, sizeof *s->children) : NULL;
  for (int64_t i = 0; s->children && i < n_kids; i++) s->children[i] = NULL;
  return s->format && (name == NULL || s->name) && (n_kids == 0 || s->children) ? 0 : -1;
}

/* The struct schema of columns cols[idx[0..n)] (cols[0..n) when idx is NULL). *out is owned by the caller. */
static int make_schema(const my_column *cols, const size_t *idx, size_t n, struct ArrowSchema *out, sp_error *err) {
  int bad = schema_node(out, "+s", "", (int64_t)n);
  out->flags = 0;
  for (size_t i = 0; bad == 0 && i < n; i++) {
    char fmt[32];
    const my_column *col = &cols[idx ? idx[i] : i];
    format_of(col, fmt, sizeof fmt);
    if ((out->children[i] = malloc(sizeof(struct ArrowSchema))) == NULL) bad = -1;
    else bad = schema_node(out->children[i], fmt, col->name, 0);
  }
  if (bad == 0) return SP_OK;
  out->n_children = 0; /* children not made yet are NULL */
  for (size_t i = 0; i < n && out->children; i++)
    if (out->children[i]) {
      if (out->children[i]->release) out->children[i]->release(out->children[i]);
      free(out->children[i]);
    }
  schema_release(out);
  return sp_fail(err, SP_ENOMEM, "out of memory");
}

/* One column of the batch being built. */
typedef struct my_builder {
  int width;
  uint8_t *valid, *data;
  int32_t *offs;
  size_t data_len, data_cap;
  int64_t nulls;
} my_builder;

static void builder_free(my_builder *b) {
  free(b->valid);
  free(b->data);
  free(b->offs);
  memset(b, 0, sizeof *b);
}

/* Fresh buffers for MY_BATCH_ROWS rows; var-width data starts at `hint` bytes. */
static int builder_start(my_builder *b, int width, size_t hint) {
  memset(b, 0, sizeof *b);
  b->width = width;
  b->valid = calloc(MY_BATCH_ROWS / 8, 1);
  b->data_cap = width ? (size_t)width * MY_BATCH_ROWS : (hint < 4096 ? 4096 : hint);
  b->data = calloc(b->data_cap, 1);
  b->offs = width ? NULL : calloc(MY_BATCH_ROWS + 1, sizeof *b->offs);
  return b->valid && b->data && (width || b->offs) ? 0 : -1;
}

static int put_bytes(my_builder *b, int64_t row, const char *p, size_t n) {
  if (b->data_len + n > INT32_MAX) return -1;
  if (b->data_len + n > b->data_cap) {
    size_t cap = b->data_cap * 2;
    while (cap < b->data_len + n) cap *= 2;
    uint8_t *q = realloc(b->data, cap);
    if (q == NULL) return -1;
    b->data = q;
    b->data_cap = cap;
  }
  memcpy(b->data + b->data_len, p, n);
  b->data_len += n;
  b->offs[row + 1] = (int32_t)b->data_len;
  return 0;
}

static void array_release(struct ArrowArray *a) {
  if (a->release == NULL) return;
  for (int64_t i = 0; i < a->n_children; i++) {
    a->children[i]->release(a->children[i]);
    free(a->children[i]);
  }
  for (int64_t i = 0; i < a->n_buffers; i++) free((void *)a->buffers[i]);
  free(a->buffers);
  free(a->children);
  a->release = NULL;
}

/* Moves the builder's buffers into a child array of `rows` rows. */
static int builder_finish(my_builder *b, int64_t rows, struct ArrowArray *a) {
  memset(a, 0, sizeof *a);
  a->length = rows;
  a->null_count = b->nulls;
  a->n_buffers = b->width ? 2 : 3;
  a->buffers = calloc(3, sizeof *a->buffers);
  a->release = array_release;
  if (a->buffers == NULL) return -1;
  a->buffers[0] = b->valid;
  if (b->width) {
    a->buffers[1] = b->data;
  } else {
    a->buffers[1] = b->offs;
    a->buffers[2] = b->data;
  }
  b->valid = b->data = NULL;
  b->offs = NULL;
  return 0;
}

/* ---- Streams ---------------------------------------------------------------------------------------------- */

typedef struct my_stream {
  my_conn *c;
  MYSQL *m;
  MYSQL_RES *res;
  size_t *idx, n;
  my_column *own; /* a pushed-down query's result columns (owned); NULL: the table's columns idx[0..n) */
  my_builder *b;
  size_t *hint; /* var-width bytes of the previous batch, per column */
  int done;     /* every row read */
  char error[1024];
} my_stream;

static int stream_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  my_stream *s = st->private_data;
  return make_schema(s->own ? s->own : s->c->cols, s->own ? NULL : s->idx, s->n, out, NULL) == SP_OK ? 0 : 12; /* ENOMEM */
}

static const my_column *stream_col(const my_stream *s, size_t i) { return s->own ? &s->own[i] : &s->c->cols[s->idx[i]]; }

static int put_fixed(my_builder *b, int64_t row, const void *v) {
  memcpy(b->data + (size_t)row * (size_t)b->width, v, (size_t)b->width);
  return 0;
}

/* Integers: strtoll/strtoull over the server's text, range-checked for the column's width. */
static int put_int(my_builder *b, int64_t row, my_kind k, const char *p) {
  char *end;
  if (k == MY_U64 || k == MY_U32 || k == MY_U16 || k == MY_U8) {
    if (*p == '-') return -1;
    unsigned long long u = strtoull(p, &end, 10);
    uint64_t max = k == MY_U64 ? UINT64_MAX : k == MY_U32 ? UINT32_MAX : k == MY_U16 ? UINT16_MAX : UINT8_MAX;
    if (*end || end == p || u > max) return -1;
    uint8_t u8 = (uint8_t)u;
    uint16_t u16 = (uint16_t)u;
    uint32_t u32 = (uint32_t)u;
    uint64_t u64 = u;
    return put_fixed(b, row, k == MY_U8 ? (void *)&u8 : k == MY_U16 ? (void *)&u16 : k == MY_U32 ? (void *)&u32 : (void *)&u64);
  }
  long long v = strtoll(p, &end, 10);
  int64_t lo = k == MY_I64 ? INT64_MIN : k == MY_I32 ? INT32_MIN : k == MY_I16 ? INT16_MIN : INT8_MIN;
  int64_t hi = k == MY_I64 ? INT64_MAX : k == MY_I32 ? INT32_MAX : k == MY_I16 ? INT16_MAX : INT8_MAX;
  if (*end || end == p || v < lo || v > hi) return -1;
  int8_t i8 = (int8_t)v;
  int16_t i16 = (int16_t)v;
  int32_t i32 = (int32_t)v;
  int64_t i64 = v;
  return put_fixed(b, row, k == MY_I8 ? (void *)&i8 : k == MY_I16 ? (void *)&i16 : k == MY_I32 ? (void *)&i32 : (void *)&i64);
}

/* One value of column col; returns 1 when it reads as NULL (zero dates), -1 when it is not a valid value. */
static int put_value(my_builder *b, int64_t row, const my_column *col, const char *p, size_t n) {
  int r = 0;
  switch (col->kind) {
  case MY_F32: { char *e; float f = strtof(p, &e); return *e ? -1 : put_fixed(b, row, &f); }
  case MY_F64: { char *e; double d = strtod(p, &e); return *e ? -1 : put_fixed(b, row, &d); }
  case MY_DECIMAL: {
    uint64_t lo;
    int64_t hi;
    if (myt_parse_decimal(p, n, col->precision, col->scale, &lo, &hi) != 0) return -1;
    memcpy(b->data + (size_t)row * 16, &lo, 8); /* little-endian two's complement, low half first */
    memcpy(b->data + (size_t)row * 16 + 8, &hi, 8);
    return 0;
  }
  case MY_DATE: { int32_t d = 0; r = myt_parse_date(p, n, &d); return r ? r : put_fixed(b, row, &d); }
  case MY_DATETIME: case MY_TIMESTAMP: { int64_t us = 0; r = myt_parse_datetime(p, n, &us); return r ? r : put_fixed(b, row, &us); }
  case MY_TIME: {
    int64_t us = 0;
    /* time64 is a time of day: MySQL's durations outside 00:00:00…23:59:59.999999 have no place in it. */
    if (myt_parse_time(p, n, &us) != 0 || us < 0 || us >= INT64_C(86400000000)) return -1;
    return put_fixed(b, row, &us);
  }
  case MY_BIT: {
    uint64_t v = 0; /* BIT(n) arrives as ceil(n/8) big-endian bytes */
    if (n > 8) return -1;
    for (size_t i = 0; i < n; i++) v = v << 8 | (uint8_t)p[i];
    return put_fixed(b, row, &v);
  }
  case MY_TEXT: case MY_BINARY: return put_bytes(b, row, p, n);
  default: return put_int(b, row, col->kind, p);
  }
}

static void put_null(my_builder *b, int64_t row) {
  b->nulls++;
  if (b->width) memset(b->data + (size_t)row * (size_t)b->width, 0, (size_t)b->width);
  else b->offs[row + 1] = (int32_t)b->data_len;
}

static int add_row(my_stream *s, int64_t row, MYSQL_ROW r, const unsigned long *len) {
  for (size_t i = 0; i < s->n; i++) {
    my_builder *b = &s->b[i];
    const my_column *col = stream_col(s, i);
    int v = r[i] ? put_value(b, row, col, r[i], len[i]) : 1;
    if (v < 0) {
      snprintf(s->error, sizeof s->error, "could not read mysql table \"%s\" for dataset \"%s\": column \"%s\" (%s) holds "
               "a value spicec cannot read: %.40s", s->c->display, s->c->base.dataset->name, col->name, col->mysql_type,
               col->kind == MY_BINARY || col->kind == MY_BIT ? "(bytes)" : r[i]);
      return -1;
    }
    if (v == 1) put_null(b, row);
    else b->valid[row >> 3] |= (uint8_t)(1u << (row & 7));
  }
  return 0;
}

/* Fills one batch; rows == 0 means the end. */
static int read_batch(my_stream *s, int64_t *rows) {
  for (size_t i = 0; i < s->n; i++)
    if (builder_start(&s->b[i], width_of(stream_col(s, i)->kind), s->hint[i]) != 0) return 12;
  int64_t row = 0;
  while (!s->done && row < MY_BATCH_ROWS) {
    MYSQL_ROW r = mysql_fetch_row(s->res);
    if (r == NULL) {
      if (mysql_errno(s->m) != 0) {
        snprintf(s->error, sizeof s->error, "could not read mysql table \"%s\" for dataset \"%s\": %s", s->c->display,
                 s->c->base.dataset->name, mysql_error(s->m));
        return 5;
      }
      s->done = 1;
      break;
    }
    if (add_row(s, row, r, mysql_fetch_lengths(s->res)) != 0) return 5;
    row++;
  }
  *rows = row;
  return 0;
}

static int stream_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  my_stream *s = st->private_data;
  int64_t rows = 0;
  int rc = s->error[0] ? 5 : read_batch(s, &rows);
  if (rc == 12) snprintf(s->error, sizeof s->error, "out of memory");
  if (rc != 0 || rows == 0) {
    for (size_t i = 0; i < s->n; i++) builder_free(&s->b[i]);
    if (rc == 0) memset(out, 0, sizeof *out);
    return rc;
  }
  memset(out, 0, sizeof *out);
  out->length = rows;
  out->n_buffers = 1;
  out->n_children = (int64_t)s->n;
  out->buffers = calloc(1, sizeof *out->buffers);
  out->children = calloc(s->n ? s->n : 1, sizeof *out->children);
  out->release = array_release;
  int bad = out->buffers == NULL || out->children == NULL;
  for (size_t i = 0; i < s->n; i++) {
    s->hint[i] = s->b[i].data_len;
    if (!bad && (out->children[i] = malloc(sizeof(struct ArrowArray))) != NULL) bad = builder_finish(&s->b[i], rows, out->children[i]);
    else bad = 1;
    builder_free(&s->b[i]);
  }
  if (bad) {
    out->n_children = 0;
    for (size_t i = 0; out->children && i < s->n; i++)
      if (out->children[i]) {
        array_release(out->children[i]);
        free(out->children[i]);
      }
    array_release(out);
    snprintf(s->error, sizeof s->error, "out of memory");
    return 12;
  }
  return 0;
}

static const char *stream_error(struct ArrowArrayStream *st) {
  my_stream *s = st->private_data;
  return s->error[0] ? s->error : NULL;
}

static void stream_free(my_stream *s) {
  /* Unread rows of an unbuffered result would be drained by mysql_free_result: cut the connection first. */
  if (s->res && !s->done) mariadb_cancel(s->m);
  if (s->res) mysql_free_result(s->res);
  if (s->m) mysql_close(s->m);
  for (size_t i = 0; s->b && i < s->n; i++) builder_free(&s->b[i]);
  free(s->b);
  free(s->hint);
  free(s->idx);
  for (size_t i = 0; s->own && i < s->n; i++) free(s->own[i].name);
  free(s->own);
  free(s);
}

static void stream_release(struct ArrowArrayStream *st) {
  if (st->release == NULL) return;
  stream_free(st->private_data);
  st->release = NULL;
}

/* Hands the stream out as *out (which owns it from now on). */
static int export_stream(my_stream *s, struct ArrowArrayStream *out) {
  memset(out, 0, sizeof *out);
  out->get_schema = stream_schema;
  out->get_next = stream_next;
  out->get_last_error = stream_error;
  out->release = stream_release;
  out->private_data = s;
  return SP_OK;
}

/* SELECT <cols> FROM <relation> [WHERE …] [LIMIT n]. Owned by the caller. */
static char *select_sql(const my_conn *c, const size_t *idx, size_t n, const char *where, int64_t limit) {
  const char **exprs = malloc((n ? n : 1) * sizeof *exprs);
  if (exprs == NULL) return NULL;
  for (size_t i = 0; i < n; i++) exprs[i] = c->cols[idx[i]].quoted;
  char *sql = sp_sql_select(exprs, n, c->relation, where, limit);
  free(exprs);
  return sql;
}

/* Takes idx (owned) in every case. */
static int open_stream(my_conn *c, size_t *idx, size_t n, const char *where, int64_t limit, struct ArrowArrayStream *out,
                       sp_error *err) {
  my_stream *s = calloc(1, sizeof *s);
  char *sql = select_sql(c, idx, n, where, limit);
  if (s) {
    s->c = c;
    s->idx = idx;
    s->n = n;
    s->b = calloc(n ? n : 1, sizeof *s->b);
    s->hint = calloc(n ? n : 1, sizeof *s->hint);
  }
  if (s == NULL || sql == NULL || s->b == NULL || s->hint == NULL) {
    free(sql);
    if (s) stream_free(s);
    else free(idx);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  sp_log_debug("dataset \"%s\": %s", c->base.dataset->name, sql);
  int rc = connect_new(c, &s->m, err);
  if (rc == SP_OK && (mysql_query(s->m, sql) != 0 || (s->res = mysql_use_result(s->m)) == NULL))
    rc = sp_fail(err, mysql_errno(s->m) >= 2000 ? SP_ECONNECT : SP_EIO, "could not read mysql table \"%s\" for dataset \"%s\": %s",
                 c->display, c->base.dataset->name, mysql_error(s->m));
  free(sql);
  if (rc != SP_OK) {
    s->done = 1;
    stream_free(s);
    return rc;
  }
  return export_stream(s, out);
}

/* ---- Methods ---------------------------------------------------------------------------------------------- */

static int all_columns(const my_conn *c, size_t **idx, sp_error *err) {
  if ((*idx = calloc(c->n_cols ? c->n_cols : 1, sizeof **idx)) == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; i < c->n_cols; i++) (*idx)[i] = i;
  return SP_OK;
}

/* ---- Filters --------------------------------------------------------------------------------------------- */

/* json_serialize_sql(query), parsed by DuckDB. Owned by the caller. */
static int serialize_sql(my_conn *c, const char *query, char **out, sp_error *err) {
  char what[400];
  snprintf(what, sizeof what, "the filter of dataset \"%s\"", c->base.dataset->name);
  return sp_duckdb_serialize_sql(query, what, out, err);
}

typedef struct quote_ctx {
  my_conn *c;
  int federated; /* only columns that compare the same in MySQL and in the engine */
} quote_ctx;

/* Backtick-quoted; never a name holding ':' (see where_of). For federated filters, strings (case-insensitive,
 * space-padded collations), binaries, floats (single precision) and unmapped types compare differently at the
 * server: refused, so the engine alone filters them. */
static char *quote_column(void *ctx, const char *name) {
  quote_ctx *q = ctx;
  const my_column *hit = NULL;
  for (size_t i = 0; i < q->c->n_cols && hit == NULL; i++)
    if (strcmp(q->c->cols[i].name, name) == 0) hit = &q->c->cols[i];
  for (size_t i = 0; i < q->c->n_cols && hit == NULL; i++)
    if (strcasecmp(q->c->cols[i].name, name) == 0) hit = &q->c->cols[i];
  if (hit == NULL || strchr(hit->name, ':') != NULL) return NULL;
  if (q->federated && (hit->kind == MY_TEXT || hit->kind == MY_BINARY || hit->kind == MY_F32 || hit->kind == MY_BIT))
    return NULL;
  return strdup(hit->quoted);
}

/* A string as a hex literal in utf8mb4 (_utf8mb4 X'…'): no quoting rules, no backslash modes, and no text of
 * the value in the statement, which where_of relies on. */
static char *quote_literal(void *ctx, const char *s) {
  (void)ctx;
  size_t n = strlen(s);
  char *q = malloc(2 * n + 16);
  if (q == NULL) return NULL;
  size_t o = (size_t)sprintf(q, "_utf8mb4 X'");
  for (size_t i = 0; i < n; i++) o += (size_t)sprintf(q + o, "%02X", (unsigned char)s[i]);
  sprintf(q + o, "'");
  return q;
}

/* `SELECT * FROM <dataset> WHERE …` parsed by DuckDB and rebuilt by the postgres connector's translator
 * (pg_filter.c), whose output is MySQL too except for the `::float8` it puts after double constants: with
 * literals in hex and no column named with ':', that suffix can only be such a cast, and is dropped (MySQL
 * reads 1.5 as an exact number and compares it with doubles as a double). */
static int where_of(my_conn *c, const char *query, int federated, char **where, sp_error *err) {
  char *json = NULL;
  SP_TRY(serialize_sql(c, query, &json, err));
  quote_ctx q = {.c = c, .federated = federated};
  pgf_ctx cx = {.dataset = c->base.dataset->name, .column = quote_column, .literal = quote_literal, .ctx = &q};
  int rc = pgf_where(json, &cx, where, err);
  free(json);
  char *pg = err && rc != SP_OK ? strstr(err->msg, "pushed to postgres") : NULL;
  if (pg) memcpy(pg + 10, "mysql   ", 8), memmove(pg + 15, pg + 18, strlen(pg + 18) + 1); /* the translator's own name */
  if (rc != SP_OK) return rc;
  char *p;
  while ((p = strstr(*where, "::float8")) != NULL) memmove(p, p + 8, strlen(p + 8) + 1);
  if (strstr(*where, "::") != NULL) {
    free(*where);
    *where = NULL;
    return sp_fail(err, SP_ENOTSUP, "the filter of dataset \"%s\" has a cast mysql cannot read", c->base.dataset->name);
  }
  return SP_OK;
}

/* refresh_sql, refresh_data_window, append by time: the filter must run at the server, or the refresh fails.
 * Here the server's comparison rules apply (as in Spice, which runs these at the source). */
static int refresh_query(my_conn *c, const char *query, struct ArrowArrayStream *out, sp_error *err) {
  char *where = NULL;
  size_t *idx = NULL;
  int rc = where_of(c, query, 0, &where, err);
  if (rc == SP_OK) rc = all_columns(c, &idx, err);
  if (rc == SP_OK) rc = open_stream(c, idx, c->n_cols, where, -1, out, err);
  free(where);
  return rc;
}

static int my_get_schema(sp_connector *self, struct ArrowSchema *out, sp_error *err) {
  my_conn *c = (my_conn *)self;
  size_t *idx;
  SP_TRY(all_columns(c, &idx, err));
  int rc = make_schema(c->cols, idx, c->n_cols, out, err);
  free(idx);
  return rc;
}

static int my_get_all_data(sp_connector *self, struct ArrowArrayStream *out, sp_error *err) {
  my_conn *c = (my_conn *)self;
  size_t *idx;
  SP_TRY(all_columns(c, &idx, err));
  return open_stream(c, idx, c->n_cols, NULL, -1, out, err);
}

static int my_scan(sp_connector *self, const sp_scan *scan, struct ArrowArrayStream *out, sp_error *err) {
  my_conn *c = (my_conn *)self;
  if (scan->query) return refresh_query(c, scan->query, out, err);
  size_t n = scan->columns && scan->n_columns ? scan->n_columns : c->n_cols, *idx;
  if (scan->columns == NULL || scan->n_columns == 0) {
    SP_TRY(all_columns(c, &idx, err));
  } else {
    if ((idx = calloc(n, sizeof *idx)) == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
      size_t j = 0;
      while (j < c->n_cols && strcmp(c->cols[j].name, scan->columns[i]) != 0) j++;
      if (j == c->n_cols) {
        free(idx);
        return sp_fail(err, SP_EINVAL, "dataset \"%s\" has no column \"%s\"", self->dataset->name, scan->columns[i]);
      }
      idx[i] = j;
    }
  }
  /* A federated query's conditions go to the server when they translate and only compare columns whose
   * comparison means the same there; otherwise the engine alone applies them (it always re-applies them). */
  char *where = NULL;
  sp_error ferr = {0};
  if (scan->filter_query && where_of(c, scan->filter_query, 1, &where, &ferr) != SP_OK) {
    sp_log_debug("dataset \"%s\": filter not pushed to the server: %s", self->dataset->name, ferr.msg);
    free(where);
    where = NULL;
  }
  int rc = open_stream(c, idx, n, where, scan->limit, out, err);
  free(where);
  return rc;
}

/* ---- Write-back (mysql_write.c) --------------------------------------------------------------------------- */

static bool my_supports_writes(sp_connector *self) {
  (void)self;
  return true;
}

/* Appended rows, in the dataset's column order, go in with batched multi-row INSERTs in one transaction. */
static int my_add_data(sp_connector *self, sp_data_update *u, sp_error *err) {
  my_conn *c = (my_conn *)self;
  const char **names = calloc(c->n_cols + 1, sizeof *names), **quoted = calloc(c->n_cols + 1, sizeof *quoted);
  int rc = names && quoted ? SP_OK : sp_fail(err, SP_ENOMEM, "out of memory");
  if (rc == SP_OK && u->type != SP_UPDATE_APPEND)
    rc = sp_fail(err, SP_ENOTSUP, "mysql dataset \"%s\" takes appended rows only", self->dataset->name);
  for (size_t i = 0; rc == SP_OK && i < c->n_cols; i++) names[i] = c->cols[i].name, quoted[i] = c->cols[i].quoted;
  MYSQL *m = NULL;
  if (rc == SP_OK) rc = connect_new(c, &m, err);
  myw_target t = {.relation = c->relation, .display = c->display, .dataset = self->dataset->name, .names = names,
                  .quoted = quoted, .n = c->n_cols};
  if (rc == SP_OK) rc = myw_insert(m, &t, &u->stream, NULL, err);
  sp_stream_release(&u->stream);
  if (m) mysql_close(m);
  free(names);
  free(quoted);
  return rc;
}

/* ---- Whole-query pushdown ----------------------------------------------------------------------------------- */

static int my_remote(sp_connector *self, sp_remote_source *out, sp_error *err) {
  my_conn *c = (my_conn *)self;
  (void)err;
  *out = (sp_remote_source){.dialect = SP_DIALECT_MYSQL, .server = c->server_id, .table = c->relation,
                            .text_collation = c->collation};
  return SP_OK;
}

/* A result column as the stream reads it, from what the server says of it. */
static void field_column(const MYSQL_FIELD *f, my_column *col) {
  int uns = (f->flags & UNSIGNED_FLAG) != 0;
  switch (f->type) {
  case MYSQL_TYPE_TINY: col->kind = uns ? MY_U8 : MY_I8; break;
  case MYSQL_TYPE_SHORT: col->kind = uns ? MY_U16 : MY_I16; break;
  case MYSQL_TYPE_YEAR: col->kind = MY_I16; break;
  case MYSQL_TYPE_INT24: case MYSQL_TYPE_LONG: col->kind = uns ? MY_U32 : MY_I32; break;
  case MYSQL_TYPE_LONGLONG: col->kind = uns ? MY_U64 : MY_I64; break;
  case MYSQL_TYPE_FLOAT: col->kind = MY_F32; break;
  case MYSQL_TYPE_DOUBLE: col->kind = MY_F64; break;
  case MYSQL_TYPE_DATE: case MYSQL_TYPE_NEWDATE: col->kind = MY_DATE; break;
  case MYSQL_TYPE_DATETIME: col->kind = MY_DATETIME; break;
  case MYSQL_TYPE_TIMESTAMP: col->kind = MY_TIMESTAMP; break;
  case MYSQL_TYPE_TIME: col->kind = MY_TIME; break;
  case MYSQL_TYPE_BIT: col->kind = MY_BIT; break;
  case MYSQL_TYPE_DECIMAL: case MYSQL_TYPE_NEWDECIMAL: {
    /* length counts the sign and the point: the precision is what is left. */
    int p = (int)f->length - (f->decimals > 0) - !uns;
    col->precision = p;
    col->scale = (int)f->decimals;
    col->kind = p >= 1 && p <= 38 && col->scale <= p ? MY_DECIMAL : MY_TEXT;
    break;
  }
  default: col->kind = f->charsetnr == 63 && f->type != MYSQL_TYPE_NULL ? MY_BINARY : MY_TEXT; break;
  }
}

static int my_query(sp_connector *self, const char *sql, const struct ArrowSchema *want, volatile int *stop,
                    struct ArrowArrayStream *out, sp_error *err) {
  (void)stop; /* not yet: libmariadb's reads block until the connection ends (docs/reliability.md) */
  my_conn *c = (my_conn *)self;
  (void)want; /* the server types its results; the engine casts them */
  my_stream *s = calloc(1, sizeof *s);
  if (s == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  s->c = c;
  sp_log_debug("dataset \"%s\": %s", c->base.dataset->name, sql);
  int rc = connect_new(c, &s->m, err);
  if (rc == SP_OK && (mysql_query(s->m, sql) != 0 || (s->res = mysql_use_result(s->m)) == NULL))
    rc = sp_fail(err, SP_EIO, "mysql refused the query for dataset \"%s\": %s", c->base.dataset->name, mysql_error(s->m));
  if (rc == SP_OK) {
    s->n = mysql_num_fields(s->res);
    s->own = calloc(s->n ? s->n : 1, sizeof *s->own);
    s->b = calloc(s->n ? s->n : 1, sizeof *s->b);
    s->hint = calloc(s->n ? s->n : 1, sizeof *s->hint);
    if (s->own == NULL || s->b == NULL || s->hint == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  }
  const MYSQL_FIELD *fields = rc == SP_OK ? mysql_fetch_fields(s->res) : NULL;
  for (size_t i = 0; rc == SP_OK && i < s->n; i++) {
    char name[32];
    snprintf(name, sizeof name, "c%zu", i + 1); /* results are matched by position */
    field_column(&fields[i], &s->own[i]);
    s->own[i].mysql_type = (char *)"result column";
    if ((s->own[i].name = strdup(name)) == NULL) rc = sp_fail(err, SP_ENOMEM, "out of memory");
  }
  if (rc != SP_OK) {
    s->done = s->res == NULL;
    stream_free(s);
    return rc;
  }
  return export_stream(s, out);
}

const sp_connector_module sp_connector_mysql = {
    .abi = SP_CONNECTOR_ABI,
    .name = "mysql",
    .prefix = "mysql",
    .params = my_params,
    .instance_size = sizeof(my_conn),
    .caps = SP_CONNECTOR_CAP_SCAN_PROJECTION | SP_CONNECTOR_CAP_SCAN_LIMIT,
    .open = my_open,
    .close = my_close,
    .get_schema = my_get_schema,
    .get_all_data = my_get_all_data,
    .scan = my_scan,
    .supports_writes = my_supports_writes,
    .add_data = my_add_data,
    .remote = my_remote,
    .query = my_query,
};
