/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for what HTTP clients send: /v1/sql bodies (raw and JSON with parameters), the Accept
 * and Content-Type headers, percent-decoding and query strings. The first byte picks the parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_params.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  uint8_t mode = data[0] % 5;
  data++;
  size--;
  char *text = malloc(size + 1);
  if (text == NULL) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  sp_sql_body body;
  sp_error err;
  switch (mode) {
  case 0:
  case 1:
    if (sp_http_parse_sql_body(text, size, mode == 1, &body, &err) == SP_OK) {
      if (body.sql == NULL) abort();
      for (size_t i = 0; i < body.n_params; i++)
        if (body.params[i].type == SP_VALUE_STRING && body.params[i].v.s == NULL) abort();
      sp_sql_body_free(&body);
    }
    break;
  case 2:
    if ((unsigned)sp_http_negotiate(text) > SP_FORMAT_SQL_V1) abort();
    (void)sp_http_is_json_content_type(text);
    break;
  case 3: {
    char *out = malloc(size + 1);
    size_t n = 0;
    if (out && sp_http_percent_decode(text, size, size % 2 == 0, out, &n, &err) == SP_OK && n > size) abort();
    free(out);
    break;
  }
  default: {
    char v[64];
    (void)sp_http_query_param(text, "format", v, sizeof v, &err);
    (void)sp_http_query_param(text, "", v, sizeof v, &err);
    break;
  }
  }
  free(text);
  return 0;
}
