/* SPDX-License-Identifier: Apache-2.0
 *
 * `spice refresh NAME`: POST /v1/datasets/NAME/acceleration/refresh with the optional overrides as JSON, and the
 * server's {"message": ...} printed back (stdout on success, stderr with exit code 1 otherwise).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char usage[] =
    "Usage: spice refresh DATASET [options]\n"
    "\n"
    "Trigger a refresh of an accelerated dataset.\n"
    "\n"
    "Options:\n"
    "      --refresh-sql SQL         refresh with this SQL instead of the dataset's refresh_sql (this run only)\n"
    "      --refresh-mode MODE       full or append (this run only)\n"
    "      --refresh-jitter-max DUR  random delay before the refresh starts, e.g. 10s\n"
    "      --http-endpoint URL       runtime HTTP endpoint (default " SP_CLI_DEFAULT_ENDPOINT ")\n"
    "      --api-key KEY             API key sent as X-API-Key (default: $SPICE_API_KEY)\n"
    "  -h, --help                    show this help\n";

enum { OPT_SQL = SP_CLI_OPT_FIRST_OWN, OPT_MODE, OPT_JITTER };
static const sp_cli_opt refresh_opts[] = {
    SP_CLI_CONN_OPTS, {"refresh-sql", 0, true}, {"refresh-mode", 0, true}, {"refresh-jitter-max", 0, true}};

/* The request body: only the overrides that were given ({} when none). Owned by the caller. */
static char *refresh_body(const sp_cli_args *a) {
  json_t *o = json_object();
  if (a->values[OPT_SQL]) json_object_set_new(o, "refresh_sql", json_string(a->values[OPT_SQL]));
  if (a->values[OPT_MODE]) json_object_set_new(o, "refresh_mode", json_string(a->values[OPT_MODE]));
  if (a->values[OPT_JITTER]) json_object_set_new(o, "refresh_jitter_max", json_string(a->values[OPT_JITTER]));
  char *body = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return body;
}

static char *refresh_path(const char *dataset) {
  char *seg = sp_cli_url_segment(dataset);
  if (seg == NULL) return NULL;
  size_t n = strlen(seg) + sizeof "/v1/datasets//acceleration/refresh";
  char *path = malloc(n);
  if (path != NULL) snprintf(path, n, "/v1/datasets/%s/acceleration/refresh", seg);
  free(seg);
  return path;
}

/* Prints the server's message: the "message" field of a JSON answer, else the body as it came. */
static void print_message(FILE *f, const sp_cli_buf *body, const char *fallback) {
  json_t *j = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
  const char *msg = json_is_object(j) ? json_string_value(json_object_get(j, "message")) : NULL;
  if (msg == NULL && body->len > 0) msg = body->data;
  if (msg == NULL) msg = fallback;
  size_t n = strlen(msg);
  fprintf(f, "%s%s", msg, n > 0 && msg[n - 1] == '\n' ? "" : "\n");
  json_decref(j);
}

static int send_refresh(const sp_cli_conn *conn, const char *dataset, const sp_cli_args *a) {
  char *path = refresh_path(dataset);
  char *body = refresh_body(a);
  if (path == NULL || body == NULL) {
    fputs("out of memory building the refresh request\n", stderr);
    free(path);
    free(body);
    return SP_CLI_EXIT_FAIL;
  }
  sp_cli_http_req req = {.method = "POST", .path = path, .accept = "application/json",
                         .content_type = "application/json", .body = body, .body_len = strlen(body)};
  sp_cli_http_resp resp = {0};
  sp_error err;
  int rc = sp_cli_http_do(conn, &req, &resp, &err);
  int exit_code = SP_CLI_EXIT_FAIL;
  if (rc != SP_OK) {
    fprintf(stderr, "%s\n", err.msg);
  } else if (resp.status >= 200 && resp.status < 300) {
    print_message(stdout, &resp.body, "Dataset refresh triggered.");
    exit_code = SP_CLI_EXIT_OK;
  } else {
    char fallback[64];
    snprintf(fallback, sizeof fallback, "refresh failed with HTTP status %ld", resp.status);
    print_message(stderr, &resp.body, fallback);
  }
  sp_cli_buf_reset(&resp.body);
  free(path);
  free(body);
  return exit_code;
}

int sp_cli_cmd_refresh(int argc, char **argv, const sp_cli_conn *defaults) {
  sp_cli_args a;
  sp_error err;
  if (sp_cli_args_parse(refresh_opts, sizeof refresh_opts / sizeof refresh_opts[0], argc, argv, &a, &err)) {
    fprintf(stderr, "spice refresh: %s\n\n%s", err.msg, usage);
    return SP_CLI_EXIT_USAGE;
  }
  if (a.values[SP_CLI_OPT_HELP]) {
    fputs(usage, stdout);
    return SP_CLI_EXIT_OK;
  }
  const char *mode = a.values[OPT_MODE];
  if (mode && strcmp(mode, "full") != 0 && strcmp(mode, "append") != 0) {
    fprintf(stderr, "spice refresh: unknown refresh mode \"%s\" (use full or append)\n", mode);
    return SP_CLI_EXIT_USAGE;
  }
  if (a.npos != 1) {
    fprintf(stderr, "spice refresh: %s\n\n%s", a.npos ? "only one dataset at a time" : "missing DATASET",
            usage);
    return SP_CLI_EXIT_USAGE;
  }
  sp_cli_conn conn;
  sp_cli_conn_from_args(&a, defaults, &conn);
  return send_refresh(&conn, a.pos[0], &a);
}
