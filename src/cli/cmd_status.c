/* SPDX-License-Identifier: Apache-2.0
 *
 * `spice status` and `spice datasets`: one GET each, a JSON array of objects, drawn as aligned columns.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* Which JSON key fills which column. */
typedef struct column {
  const char *title;
  const char *key;
} column;

typedef struct listing {
  const char *name;  /* "status" */
  const char *path;  /* "/v1/status" */
  const column *cols;
  size_t ncols;
  const char *empty; /* printed when the array is empty */
} listing;

static const column status_cols[] = {{"name", "name"}, {"endpoint", "endpoint"}, {"status", "status"}};
static const column dataset_cols[] = {{"from", "from"},
                                      {"name", "name"},
                                      {"replication", "replication_enabled"},
                                      {"acceleration", "acceleration_enabled"},
                                      {"status", "status"}};

static const listing status_listing = {"status", "/v1/status", status_cols, 3, NULL};
static const listing datasets_listing = {"datasets", "/v1/datasets?status=true", dataset_cols, 5,
                                         "No datasets found."};

/* The text of a JSON scalar as shown in a cell; NULL for null or absent. Owned by the caller. */
static char *cell_text(const json_t *v) {
  char buf[64];
  switch (json_typeof(v)) {
  case JSON_STRING: return strdup(json_string_value(v));
  case JSON_TRUE: return strdup("true");
  case JSON_FALSE: return strdup("false");
  case JSON_INTEGER: snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); return strdup(buf);
  case JSON_REAL: snprintf(buf, sizeof buf, "%g", json_real_value(v)); return strdup(buf);
  case JSON_NULL: return NULL;
  default: return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  }
}

static int add_object(sp_cli_table *t, const listing *l, const json_t *obj, sp_error *err) {
  char *cells[8] = {0};
  for (size_t c = 0; c < l->ncols; c++) {
    const json_t *v = json_object_get(obj, l->cols[c].key);
    cells[c] = v ? cell_text(v) : NULL;
  }
  int rc = sp_cli_table_add_row(t, (const char *const *)cells, err);
  for (size_t c = 0; c < l->ncols; c++) free(cells[c]);
  return rc;
}

/* Builds the table from the JSON body: an array of objects, one row each. */
static int listing_table(const listing *l, const sp_cli_buf *body, sp_cli_table *t, sp_error *err) {
  json_error_t jerr;
  json_t *root = json_loadb(body->data ? body->data : "", body->len, 0, &jerr);
  if (!json_is_array(root)) {
    json_decref(root);
    return sp_fail(err, SP_EIO, "unexpected answer from %s: %s", l->path, root ? "not a JSON array" : jerr.text);
  }
  const char *titles[8];
  for (size_t c = 0; c < l->ncols; c++) titles[c] = l->cols[c].title;
  int rc = sp_cli_table_set_columns(t, titles, l->ncols, err);
  size_t i;
  json_t *obj;
  json_array_foreach(root, i, obj) {
    if (rc == SP_OK && json_is_object(obj)) rc = add_object(t, l, obj, err);
  }
  json_decref(root);
  return rc;
}

static int fetch_listing(const listing *l, const sp_cli_conn *conn, sp_cli_table *t, sp_error *err) {
  sp_cli_http_req req = {.method = "GET", .path = l->path, .accept = "application/json"};
  sp_cli_http_resp resp = {0};
  int rc = sp_cli_http_do(conn, &req, &resp, err);
  if (rc == SP_OK && (resp.status < 200 || resp.status >= 300)) rc = sp_cli_http_fail(&resp, err);
  if (rc == SP_OK) rc = listing_table(l, &resp.body, t, err);
  sp_cli_buf_reset(&resp.body);
  return rc;
}

static int run_listing(const listing *l, int argc, char **argv, const sp_cli_conn *defaults) {
  static const sp_cli_opt opts[] = {SP_CLI_CONN_OPTS};
  sp_cli_args a;
  sp_error err;
  int rc = sp_cli_args_parse(opts, sizeof opts / sizeof opts[0], argc, argv, &a, &err);
  if (rc != SP_OK || a.npos > 0 || a.values[SP_CLI_OPT_HELP]) {
    FILE *f = rc != SP_OK || a.npos > 0 ? stderr : stdout;
    if (rc != SP_OK) fprintf(f, "spice %s: %s\n\n", l->name, err.msg);
    else if (a.npos > 0) fprintf(f, "spice %s: unexpected argument \"%s\"\n\n", l->name, a.pos[0]);
    fprintf(f, "Usage: spice %s [--http-endpoint URL] [--api-key KEY]\n\nShows GET %s as a table.\n", l->name,
            l->path);
    return f == stderr ? SP_CLI_EXIT_USAGE : SP_CLI_EXIT_OK;
  }
  sp_cli_conn conn;
  sp_cli_conn_from_args(&a, defaults, &conn);
  sp_cli_table t = {0};
  if (fetch_listing(l, &conn, &t, &err) != SP_OK) {
    fprintf(stderr, "%s\n", err.msg);
    sp_cli_table_reset(&t);
    return SP_CLI_EXIT_FAIL;
  }
  if (t.nrows == 0 && l->empty) {
    puts(l->empty);
  } else {
    sp_cli_table_print_plain(stdout, &t);
  }
  sp_cli_table_reset(&t);
  return SP_CLI_EXIT_OK;
}

int sp_cli_cmd_status(int argc, char **argv, const sp_cli_conn *defaults) {
  return run_listing(&status_listing, argc, argv, defaults);
}

int sp_cli_cmd_datasets(int argc, char **argv, const sp_cli_conn *defaults) {
  return run_listing(&datasets_listing, argc, argv, defaults);
}
