/* SPDX-License-Identifier: Apache-2.0
 *
 * The `file` connector: Parquet, CSV and JSON/JSONL files on the local file system (`file:relative`,
 * `file:/abs`, `file://…`), one file or a folder read as one table. The format comes from `file_format` or
 * the extension.
 *
 * Files are read by a private DuckDB database owned by the instance (never the serving one, which is
 * sandboxed and cannot open files), streamed out as Arrow batches: nothing holds the whole table.
 * scan() pushes the projection (and a limit) into the read.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spice/arrow.h"
#include "spice/connector.h"
#include "spice/duckdb_util.h"
#include "spice/log.h"
#include "spice/sqltext.h"

typedef struct file_conn {
  sp_connector base; /* must be first */
  duckdb_database db;
  char path[4096];   /* absolute */
  char format[16];   /* parquet | csv | json */
  char source[8800]; /* the DuckDB table expression that reads the files */
} file_conn;

static const sp_param_spec file_params[] = {
    {"file_format", SP_PARAM_ENUM, 0, NULL, "parquet|csv|json|jsonl|ndjson", "format; default from the extension"},
    {"file_extension", SP_PARAM_STRING, 0, NULL, NULL, "extension of the files to read in a folder"},
    {"csv_has_header", SP_PARAM_BOOL, 0, "true", NULL, "the first CSV line holds column names"},
    {"csv_delimiter", SP_PARAM_CHAR, 0, ",", NULL, "CSV field delimiter"},
    {"csv_quote", SP_PARAM_CHAR, 0, "\"", NULL, "CSV quote character"},
    {"csv_escape", SP_PARAM_CHAR, 0, NULL, NULL, "CSV escape character (default: the quote)"},
    {"csv_schema_infer_max_records", SP_PARAM_INT, 0, "1000", NULL, "rows sampled to infer CSV types"},
    {"file_compression_type", SP_PARAM_ENUM, 0, NULL, "gzip|bzip2|xz|zstd|uncompressed", "compression (default: from the extension)"},
    {"hive_partitioning_enabled", SP_PARAM_BOOL, 0, "false", NULL, "read key=value folders as columns"},
    {"client_timeout", SP_PARAM_DURATION, 0, NULL, NULL, "accepted for compatibility"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static const char *format_of_extension(const char *path) {
  static const struct { const char *ext, *fmt; } map[] = {
      {".parquet", "parquet"}, {".csv", "csv"},   {".tsv", "csv"},     {".json", "json"},
      {".jsonl", "json"},      {".ndjson", "json"}, {".csv.gz", "csv"}, {".json.gz", "json"}, {".jsonl.gz", "json"},
  };
  size_t n = strlen(path);
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    size_t m = strlen(map[i].ext);
    if (n >= m && strcasecmp(path + n - m, map[i].ext) == 0) return map[i].fmt;
  }
  return NULL;
}

/* For a folder without file_format: the format of the first file with a known extension. */
static const char *format_of_folder(const char *dir) {
  DIR *d = opendir(dir);
  const char *fmt = NULL;
  struct dirent *de;
  while (d && fmt == NULL && (de = readdir(d)) != NULL)
    if (de->d_name[0] != '.') fmt = format_of_extension(de->d_name);
  if (d) closedir(d);
  return fmt;
}

/* Builds the read expression: read_parquet / read_csv / read_json over a file or a folder glob. */
static int build_source(file_conn *c, int is_dir, sp_error *err) {
  const sp_params *p = &c->base.params;
  char pattern[4200], lit[8600];
  const char *ext = sp_params_get(p, "file_extension");
  if (is_dir)
    snprintf(pattern, sizeof pattern, "%s/**/*%s%s", c->path, ext && *ext != '.' && *ext ? "." : "",
             ext && *ext ? ext : (strcmp(c->format, "parquet") == 0 ? ".parquet" : strcmp(c->format, "csv") == 0 ? ".csv" : ".json*"));
  else
    snprintf(pattern, sizeof pattern, "%s", c->path);
  sp_sql_literal(lit, sizeof lit, pattern);
  bool hive = sp_params_get_bool(p, "hive_partitioning_enabled", false);
  const char *comp = sp_params_get(p, "file_compression_type");
  char comp_opt[64] = "";
  if (comp && *comp) snprintf(comp_opt, sizeof comp_opt, ", compression='%s'", strcasecmp(comp, "uncompressed") == 0 ? "none" : comp);
  if (strcmp(c->format, "parquet") == 0) {
    snprintf(c->source, sizeof c->source, "read_parquet(%s, hive_partitioning=%s)", lit, hive ? "true" : "false");
  } else if (strcmp(c->format, "csv") == 0) {
    char delim[8], quote[8], esc[8];
    const char *e = sp_params_get(p, "csv_escape");
    sp_sql_literal(delim, sizeof delim, sp_params_get(p, "csv_delimiter"));
    sp_sql_literal(quote, sizeof quote, sp_params_get(p, "csv_quote"));
    sp_sql_literal(esc, sizeof esc, e ? e : sp_params_get(p, "csv_quote"));
    snprintf(c->source, sizeof c->source,
             "read_csv(%s, header=%s, delim=%s, quote=%s, escape=%s, sample_size=%lld, hive_partitioning=%s%s)", lit,
             sp_params_get_bool(p, "csv_has_header", true) ? "true" : "false", delim, quote, esc,
             (long long)sp_params_get_int(p, "csv_schema_infer_max_records", 1000), hive ? "true" : "false", comp_opt);
  } else {
    snprintf(c->source, sizeof c->source, "read_json_auto(%s, hive_partitioning=%s%s)", lit, hive ? "true" : "false", comp_opt);
  }
  return SP_OK;
}

static int file_open(sp_connector *self, sp_error *err) {
  file_conn *c = (file_conn *)self;
  const char *path = self->dataset->path;
  const char *name = self->dataset->name;
  if (strncmp(path, "//", 2) == 0) path += 2; /* file://abs → /abs */
  if (path[0] == '\0') return sp_fail(err, SP_EINVAL, "dataset \"%s\": from: file: needs a path", name);
  if (path[0] == '/') {
    snprintf(c->path, sizeof c->path, "%s", path);
  } else {
    char cwd[2048];
    if (getcwd(cwd, sizeof cwd) == NULL) return sp_fail(err, SP_EIO, "could not read the current folder");
    snprintf(c->path, sizeof c->path, "%s/%s", cwd, path);
  }
  struct stat st;
  if (stat(c->path, &st) != 0) {
    int code = errno == ENOENT ? SP_ENOTFOUND : SP_EIO;
    return sp_fail(err, code, "could not open \"%s\" for dataset \"%s\": %s", c->path, name, strerror(errno));
  }
  int is_dir = S_ISDIR(st.st_mode);
  const char *fmt = sp_params_get(&self->params, "file_format");
  if (fmt == NULL) fmt = is_dir ? format_of_folder(c->path) : format_of_extension(c->path);
  if (fmt == NULL)
    return sp_fail(err, SP_EINVAL,
                   "dataset \"%s\": cannot tell the format of \"%s\" from its extension; set params.file_format "
                   "(parquet, csv, json)", name, path);
  snprintf(c->format, sizeof c->format, "%s", strcasecmp(fmt, "jsonl") == 0 || strcasecmp(fmt, "ndjson") == 0 ? "json" : fmt);
  SP_TRY(build_source(c, is_dir, err));

  duckdb_config cfg;
  char *oerr = NULL;
  duckdb_create_config(&cfg);
  duckdb_set_config(cfg, "threads", "2");
  /* Arrow format 1.5 lets DECIMAL(p<=18) travel as decimal64: half the memory of decimal128 in an arrow
   * accelerator, and DuckDB reads it back without narrowing each value. */
  duckdb_set_config(cfg, "arrow_output_version", "1.5");
  duckdb_set_config(cfg, "autoinstall_known_extensions", "false");
  duckdb_set_config(cfg, "autoload_known_extensions", "false");
  int rc = SP_OK;
  if (duckdb_open_ext(NULL, &c->db, cfg, &oerr) == DuckDBError)
    rc = sp_fail(err, SP_EINTERNAL, "could not open a reader for dataset \"%s\": %s", name, oerr ? oerr : "");
  duckdb_free(oerr);
  duckdb_destroy_config(&cfg);
  return rc;
}

static void file_close(sp_connector *self) {
  file_conn *c = (file_conn *)self;
  if (c->db) duckdb_close(&c->db);
}

static int file_read(file_conn *c, const char *select_list, int64_t limit, struct ArrowArrayStream *out, sp_error *err) {
  size_t n = strlen(c->source) + strlen(select_list) + 64;
  char *sql = malloc(n);
  if (sql == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  if (limit >= 0) snprintf(sql, n, "SELECT %s FROM %s LIMIT %lld", select_list, c->source, (long long)limit);
  else snprintf(sql, n, "SELECT %s FROM %s", select_list, c->source);
  int rc = sp_duckdb_stream(c->db, sql, out, err);
  free(sql);
  if (rc != SP_OK) {
    err->code = SP_EIO;
    sp_error_prefix(err, "could not read \"%s\" for dataset \"%s\"", c->path, c->base.dataset->name);
    return SP_EIO;
  }
  return SP_OK;
}

static int file_get_schema(sp_connector *self, struct ArrowSchema *out, sp_error *err) {
  struct ArrowArrayStream s;
  SP_TRY(file_read((file_conn *)self, "*", 0, &s, err));
  int rc = s.get_schema(&s, out) == 0 ? SP_OK : sp_fail(err, SP_EIO, "%s", s.get_last_error(&s));
  sp_stream_release(&s);
  return rc;
}

static int file_get_all_data(sp_connector *self, struct ArrowArrayStream *out, sp_error *err) {
  return file_read((file_conn *)self, "*", -1, out, err);
}

/* Runs a refresh_sql at the source: the dataset's name is bound to the files by a CTE, so the query text is
 * never rewritten. It was classified as a single SELECT by the runtime before it reaches here. */
static int file_query(file_conn *c, const char *query, struct ArrowArrayStream *out, sp_error *err) {
  char name[600];
  if (sp_sql_ident(name, sizeof name, c->base.dataset->name) != 0) return sp_fail(err, SP_EINVAL, "dataset name too long");
  size_t n = strlen(c->source) + strlen(query) + strlen(name) + 64;
  char *sql = malloc(n);
  if (sql == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  snprintf(sql, n, "WITH %s AS (SELECT * FROM %s) %s", name, c->source, query);
  int rc = sp_duckdb_stream(c->db, sql, out, err);
  free(sql);
  if (rc != SP_OK) sp_error_prefix(err, "refresh_sql of dataset \"%s\" failed", c->base.dataset->name);
  return rc;
}

static int file_scan(sp_connector *self, const sp_scan *scan, struct ArrowArrayStream *out, sp_error *err) {
  if (scan->query) return file_query((file_conn *)self, scan->query, out, err);
  if (scan->columns == NULL || scan->n_columns == 0) return file_read((file_conn *)self, "*", scan->limit, out, err);
  size_t cap = 64;
  for (size_t i = 0; i < scan->n_columns; i++) cap += 2 * strlen(scan->columns[i]) + 4;
  char *list = malloc(cap), *o = list;
  if (list == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  for (size_t i = 0; i < scan->n_columns; i++) {
    if (i) *o++ = ',';
    sp_sql_ident(o, cap - (size_t)(o - list), scan->columns[i]);
    o += strlen(o);
  }
  int rc = file_read((file_conn *)self, list, scan->limit, out, err);
  free(list);
  return rc;
}

static int file_native_scan(sp_connector *self, char *sql, size_t sql_len, char *out_path, size_t path_len,
                            sp_error *err) {
  file_conn *c = (file_conn *)self;
  if ((size_t)snprintf(sql, sql_len, "%s", c->source) >= sql_len ||
      (size_t)snprintf(out_path, path_len, "%s", c->path) >= path_len)
    return sp_fail(err, SP_ENOTSUP, "path of dataset \"%s\" too long for a native scan", self->dataset->name);
  return SP_OK;
}

const sp_connector_module sp_connector_file = {
    .abi = SP_CONNECTOR_ABI,
    .name = "file",
    .prefix = "file",
    .params = file_params,
    .instance_size = sizeof(file_conn),
    .caps = SP_CONNECTOR_CAP_SCAN_PROJECTION | SP_CONNECTOR_CAP_SCAN_LIMIT,
    .open = file_open,
    .close = file_close,
    .get_schema = file_get_schema,
    .get_all_data = file_get_all_data,
    .scan = file_scan,
    .native_scan = file_native_scan,
};
