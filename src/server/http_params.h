/* SPDX-License-Identifier: Apache-2.0
 *
 * Internal to the HTTP server: parsing of what clients send. Pure functions (no sockets, no runtime), so
 * that unit tests and fuzz targets can drive them directly.
 */
#ifndef SPICE_SERVER_HTTP_PARAMS_H
#define SPICE_SERVER_HTTP_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "server/format.h"
#include "spice/engine.h"
#include "spice/error.h"

/* Largest request body accepted (Spice's limit); larger ones get 413. */
#define SP_HTTP_BODY_LIMIT ((size_t)128 << 20)
/* Most query parameters one request may bind. */
#define SP_HTTP_MAX_PARAMS 65535

/* A parsed POST /v1/sql body. */
typedef struct sp_sql_body {
  void *json;        /* the parsed document (jansson json_t), NULL for a raw-SQL body */
  const char *sql;   /* borrowed from json, or from the raw body */
  sp_value *params;  /* owned array; names and strings borrowed from json */
  size_t n_params;
} sp_sql_body;

/* Parses a /v1/sql body. Raw form (`is_json` false): the body is the SQL; it must be valid UTF-8 without NUL
 * bytes, and body[len] must be a NUL (the caller's buffer) because sql points into it. JSON form:
 * {"sql": "...", "parameters": [..] | {..}} where each parameter is null, a boolean, a number or a string;
 * array items bind $1, $2, … in order, object keys bind by name (a leading '$' or ':' is dropped).
 * SP_EINVAL with a message fit for a 400 response. *out is filled only on success; free it with
 * sp_sql_body_free (NULL-safe). */
int sp_http_parse_sql_body(const char *body, size_t len, bool is_json, sp_sql_body *out, sp_error *err);
void sp_sql_body_free(sp_sql_body *b);

/* True when a Content-Type header names application/json (parameters and case ignored). NULL → false. */
bool sp_http_is_json_content_type(const char *content_type);

/* The result format for an Accept header: the first media type in the list that is recognised
 * (application/json, text/csv, text/plain, application/vnd.spiceai.sql.v1+json) wins, whatever its q value;
 * JSON when none is (or the header is absent). */
sp_format_kind sp_http_negotiate(const char *accept);

/* Percent-decodes in[0..n) into out (which must hold n + 1 bytes) and NUL-terminates it; `plus_is_space`
 * for query strings. SP_EINVAL for a '%' not followed by two hex digits, or for an encoded NUL (%00). */
int sp_http_percent_decode(const char *in, size_t n, bool plus_is_space, char *out, size_t *out_len, sp_error *err);

/* Finds query parameter `key` in a raw query string ("a=1&b=x%20y", without the '?') and decodes its value
 * into out (cap bytes). Returns 1 when found, 0 when absent, -1 (message in err) when malformed or longer
 * than cap - 1. A key without '=' has the empty value. */
int sp_http_query_param(const char *query, const char *key, char *out, size_t cap, sp_error *err);

#endif
