/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the refresh_sql translator of the postgres connector (src/connectors/pg_filter.c): any
 * bytes as the JSON parse tree that json_serialize_sql would give. The output, when there is one, must be a
 * terminated string; unknown shapes must be refused, never crash. Seeds are real parse trees
 * (tests/fuzz/corpus/pg_filter/).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/pg_filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *column(void *ctx, const char *name) { return strlen(name) < 64 ? strdup("\"c\"") : NULL; }
static char *literal(void *ctx, const char *s) { return strdup("'lit'"); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (text == NULL) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  pgf_ctx cx = {.dataset = "ds", .column = column, .literal = literal};
  char *out = NULL;
  if (pgf_where(text, &cx, &out, NULL) == SP_OK) {
    if (out == NULL || strlen(out) > 64 * size + 64) abort();
    free(out);
  }
  free(text);
  return 0;
}
