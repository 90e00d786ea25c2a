/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the PostgreSQL binary COPY decoder (src/connectors/pg_copy.c): bytes that come from a
 * server over the network. The first byte picks the number of columns (1-4), the next ones their kinds (and a
 * list's element kind); the rest is the COPY stream, fed in two pieces split at a point picked by the input so
 * that rows cross feeds. Pending rows are cut into batches whose lengths must agree with the rows decoded.
 * Seeds (tests/fuzz/corpus/pg_copy/) are real server output behind such a prefix.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/pg_copy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void cut(pgc_decoder *d, size_t ncols) {
  int64_t rows = pgc_pending_rows(d);
  if (rows == 0) return;
  struct ArrowArray a;
  if (pgc_finish_batch(d, &a, NULL) != SP_OK) return;
  if (a.length != rows || a.n_children != (int64_t)ncols) abort();
  for (int64_t i = 0; i < a.n_children; i++)
    if (a.children[i]->length != rows) abort();
  a.release(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  size_t n = 1 + data[0] % 4, o = 1;
  pgc_type types[4];
  memset(types, 0, sizeof types);
  for (size_t i = 0; i < n; i++) {
    if (o + 1 >= size) return 0;
    types[i].kind = (pgc_kind)(data[o++] % PGC_KIND_COUNT);
    types[i].precision = 38;
    types[i].scale = 10;
    if (types[i].kind == PGC_LIST) {
      types[i].elem = (pgc_kind)(data[o++] % PGC_LIST); /* any kind but a list */
      types[i].elem_precision = 38;
      types[i].elem_scale = 10;
    }
  }
  if (o >= size) return 0;
  size_t split = data[o++];
  const uint8_t *s = data + o;
  size_t len = size - o;
  if (split > len) split = len;
  pgc_decoder *d;
  if (pgc_decoder_new(types, n, &d, NULL) != SP_OK) return 0;
  uint8_t *copy = malloc(len ? len : 1); /* exact size: reads past the end are findings */
  if (copy) {
    memcpy(copy, s, len);
    if (pgc_feed(d, copy, split, NULL) == SP_OK) {
      cut(d, n);
      if (pgc_feed(d, copy + split, len - split, NULL) == SP_OK) cut(d, n);
    }
    pgc_end(d, NULL);
    free(copy);
  }
  pgc_decoder_free(d);
  return 0;
}
