/* SPDX-License-Identifier: Apache-2.0
 *
 * The HTTP transport of `spice sql`: POST /v1/sql with the raw SQL as body. For the table format it asks for CSV
 * (header row even for zero rows, NULL distinguishable from '') and keeps only the rows it will draw; for csv and
 * json it copies the server's bytes straight to the output as they arrive.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

typedef struct http_transport {
  sp_cli_transport base; /* must be first */
  const sp_cli_conn *conn;
} http_transport;

static int to_csv(void *ctx, const char *data, size_t len, sp_error *err) {
  return sp_cli_csv_feed(ctx, data, len, err);
}

static int to_file(void *ctx, const char *data, size_t len, sp_error *err) {
  sp_cli_query *q = ctx;
  if (len == 0) return SP_OK;
  if (fwrite(data, 1, len, q->out) != len) return sp_fail(err, SP_EIO, "could not write the query result");
  q->out_last = (unsigned char)data[len - 1];
  return SP_OK;
}

static const char *accept_for(sp_cli_format f) {
  return f == SP_CLI_FORMAT_JSON ? "application/json" : "text/csv";
}

static int http_query(sp_cli_transport *self, sp_cli_query *q, sp_error *err) {
  http_transport *t = (http_transport *)self;
  sp_cli_csv csv;
  sp_cli_csv_init(&csv, sp_cli_csv_to_table, &q->table);
  q->table.keep = q->keep;
  q->out_last = -1;
  sp_cli_http_req req = {
      .method = "POST",
      .path = "/v1/sql",
      .accept = accept_for(q->format),
      .content_type = "text/plain; charset=utf-8",
      .body = q->sql,
      .body_len = strlen(q->sql),
      .on_data = q->format == SP_CLI_FORMAT_TABLE ? to_csv : to_file,
      .ctx = q->format == SP_CLI_FORMAT_TABLE ? (void *)&csv : (void *)q,
  };
  sp_cli_http_resp resp = {0};
  int rc = sp_cli_http_do(t->conn, &req, &resp, err);
  q->http_status = resp.status;
  q->cached = resp.cached;
  if (rc == SP_OK && (resp.status < 200 || resp.status >= 300)) {
    rc = sp_cli_http_fail(&resp, err);
    q->error_detail = strdup(resp.body.data ? resp.body.data : "");
  }
  if (rc == SP_OK && q->format == SP_CLI_FORMAT_TABLE) rc = sp_cli_csv_finish(&csv, err);
  sp_cli_csv_reset(&csv);
  sp_cli_buf_reset(&resp.body);
  return rc;
}

static void http_destroy(sp_cli_transport *self) { free(self); }

sp_cli_transport *sp_cli_http_transport_create(const sp_cli_conn *conn, sp_error *err) {
  http_transport *t = calloc(1, sizeof *t);
  if (t == NULL) {
    sp_fail(err, SP_ENOMEM, "out of memory creating the HTTP transport");
    return NULL;
  }
  t->base.name = "http";
  t->base.query = http_query;
  t->base.destroy = http_destroy;
  t->conn = conn;
  return &t->base;
}

int sp_cli_format_parse(const char *s) {
  if (strcmp(s, "table") == 0) return SP_CLI_FORMAT_TABLE;
  if (strcmp(s, "csv") == 0) return SP_CLI_FORMAT_CSV;
  if (strcmp(s, "json") == 0) return SP_CLI_FORMAT_JSON;
  return -1;
}
