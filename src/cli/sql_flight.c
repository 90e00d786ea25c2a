/* SPDX-License-Identifier: Apache-2.0
 *
 * The Flight transport of `spice sql` (the default; --http selects sql_http.c): GetFlightInfo with the SQL
 * text, then DoGet, through the library's Flight client (src/flight/client.h). Batches arrive as Arrow and are
 * written with the result writers HTTP /v1/sql uses (server/format.h): CSV or JSON straight to the output, and
 * for the table format CSV fed to the same reader as the HTTP transport's, so both draw identical tables.
 * "(cached)" follows the server's results-cache-status (or x-cache) header.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/log.h>

#include "cli/cli.h"
#include "flight/client.h"
#include "server/format.h"
#include "spice/arrow.h"

typedef struct flight_transport {
  sp_cli_transport base; /* must be first */
  sp_flight_client *client;
  const char *endpoint; /* borrowed, for messages */
} flight_transport;

/* Where formatted bytes go: the table's CSV reader, or the output file. */
static int deliver(sp_cli_query *q, sp_cli_csv *csv, sp_buf *b, sp_error *err) {
  int rc = SP_OK;
  if (b->len == 0) return SP_OK;
  if (q->format == SP_CLI_FORMAT_TABLE) {
    rc = sp_cli_csv_feed(csv, b->data, b->len, err);
  } else if (fwrite(b->data, 1, b->len, q->out) != b->len) {
    rc = sp_fail(err, SP_EIO, "could not write the query result");
  } else {
    q->out_last = (unsigned char)b->data[b->len - 1];
  }
  b->len = 0;
  return rc;
}

/* Formats every batch of st as it arrives. */
static int drain(struct ArrowArrayStream *st, sp_cli_query *q, sp_cli_csv *csv, sp_error *err) {
  struct ArrowSchema schema = {0};
  sp_formatter *f = NULL;
  sp_buf b = {0};
  if (st->get_schema(st, &schema) != 0) return sp_fail(err, SP_EIO, "%s", st->get_last_error(st));
  int rc = sp_formatter_create(q->format == SP_CLI_FORMAT_JSON ? SP_FORMAT_JSON : SP_FORMAT_CSV, &schema, &f, err);
  sp_schema_release(&schema);
  if (rc == SP_OK && (rc = sp_format_begin(f, &b, err)) == SP_OK) rc = deliver(q, csv, &b, err);
  while (rc == SP_OK) {
    struct ArrowArray batch = {0};
    if (st->get_next(st, &batch) != 0) {
      const char *msg = st->get_last_error(st);
      rc = sp_fail(err, sp_cli_interrupted ? SP_ECANCELED : SP_EIO, "%s", msg ? msg : "the result stream failed");
      break;
    }
    if (batch.release == NULL) break;
    rc = sp_format_batch(f, &batch, &b, err);
    batch.release(&batch);
    if (rc == SP_OK) rc = deliver(q, csv, &b, err);
  }
  if (rc == SP_OK && (rc = sp_format_end(f, &b, err)) == SP_OK) rc = deliver(q, csv, &b, err);
  sp_formatter_destroy(f);
  sp_buf_free(&b);
  return rc;
}

/* Errors: a runtime that cannot be reached reads like the HTTP transport's (a failed TLS handshake keeps gRPC's
 * words, which say why); anything the server answered is the query's error ("Query Error: …", with the
 * server's words in .error). */
static int query_failed(flight_transport *t, sp_cli_query *q, int rc, sp_error *err) {
  if (rc == SP_ECONNECT && strcasestr(err->msg, "ssl") != NULL) return rc; /* not the query's fault */
  if (rc == SP_ECONNECT && strstr(err->msg, "onnect") != NULL)
    return sp_fail(err, rc, "could not connect to the Spice runtime at %s: is it running? Start it with `spice run`.",
                   t->endpoint);
  if (rc == SP_ECANCELED || sp_cli_interrupted) return sp_fail(err, SP_ECANCELED, "query cancelled");
  q->server_error = true;
  const char *words = strstr(err->msg, " with "); /* `flight endpoint "…" answered GetFlightInfo with CODE: msg` */
  const char *colon = words ? strstr(words, ": ") : NULL;
  q->error_detail = strdup(err->msg);
  if (colon) memmove(err->msg, colon + 2, strlen(colon + 2) + 1);
  return rc;
}

static int flight_query(sp_cli_transport *self, sp_cli_query *q, sp_error *err) {
  flight_transport *t = (flight_transport *)self;
  sp_cli_csv csv;
  sp_cli_csv_init(&csv, sp_cli_csv_to_table, &q->table);
  q->table.keep = q->keep;
  q->out_last = -1;
  struct ArrowArrayStream st = {0};
  sp_flight_result_info info = {.cache_hit = -1};
  int rc = sp_flight_client_query(t->client, q->sql, &st, &info, err);
  if (rc == SP_OK) rc = drain(&st, q, &csv, err);
  if (rc == SP_OK && q->format == SP_CLI_FORMAT_TABLE) rc = sp_cli_csv_finish(&csv, err);
  if (st.release && sp_flight_stream_info(&st, &info, NULL) == SP_OK) q->cached = info.cache_hit == 1;
  if (st.release) st.release(&st);
  sp_cli_csv_reset(&csv);
  return rc == SP_OK ? SP_OK : query_failed(t, q, rc, err);
}

static void flight_destroy(sp_cli_transport *self) {
  flight_transport *t = (flight_transport *)self;
  sp_flight_client_close(t->client);
  free(t);
}

/* Bearer API key and the CLI's user agent on every call. */
static int set_headers(flight_transport *t, const char *api_key, sp_error *err) {
  SP_TRY(sp_flight_client_set_header(t->client, "x-spice-user-agent", "spice-cli/" SPICE_VERSION, err));
  if (api_key == NULL) return SP_OK;
  char *hdr = malloc(strlen(api_key) + 8);
  if (hdr == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  sprintf(hdr, "Bearer %s", api_key);
  int rc = sp_flight_client_set_header(t->client, "authorization", hdr, err);
  free(hdr);
  return rc;
}

/* gRPC logs its own errors (a failed TLS handshake) to stderr; the CLI prints the call's status instead. */
static void quiet_grpc_log(gpr_log_func_args *args) { (void)args; }

/* The whole of a (small) PEM file, malloc'd and NUL-terminated. */
static char *read_pem(const char *path, sp_error *err) {
  FILE *f = fopen(path, "rb");
  sp_cli_buf b = {0};
  char chunk[4096];
  size_t n;
  if (f == NULL) {
    sp_fail(err, SP_ENOTFOUND, "could not open the TLS root certificate file \"%s\": %s", path, strerror(errno));
    return NULL;
  }
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < ((size_t)1 << 20))
    if (sp_cli_buf_append(&b, chunk, n, err) != SP_OK) break;
  fclose(f);
  if (b.data == NULL) sp_fail(err, SP_EINVAL, "the TLS root certificate file \"%s\" is empty", path);
  return b.data;
}

sp_cli_transport *sp_cli_flight_transport_create(const char *endpoint, const char *api_key, const char *ca_file,
                                                 sp_error *err) {
  flight_transport *t = calloc(1, sizeof *t);
  if (t == NULL) {
    sp_fail(err, SP_ENOMEM, "out of memory creating the Flight transport");
    return NULL;
  }
  t->base.name = "flight";
  t->base.query = flight_query;
  t->base.destroy = flight_destroy;
  t->endpoint = endpoint;
  gpr_set_log_function(quiet_grpc_log);
  char *ca = ca_file ? read_pem(ca_file, err) : NULL;
  int rc = ca_file && ca == NULL ? SP_EINVAL : sp_flight_client_open_ca(endpoint, ca, &t->client, err);
  free(ca);
  if (rc != SP_OK || set_headers(t, api_key, err) != SP_OK) {
    flight_destroy(&t->base);
    return NULL;
  }
  sp_flight_client_set_cancel_flag(t->client, &sp_cli_interrupted);
  return &t->base;
}
