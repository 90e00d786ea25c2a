/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the text parsing in PostgreSQL write-back (src/connectors/pg_write.c): values that users
 * insert into numeric (unbounded), uuid, jsonb and text columns arrive as utf8 and are parsed into PostgreSQL's
 * binary forms. The first byte picks the column's kind; the rest, split at '\n', are the values (an empty line
 * is a NULL). Whatever the encoder accepts must decode again with the connector's own COPY decoder, with every
 * row there. Seeds: tests/fuzz/corpus/pg_write/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/pg_copy.h"
#include "connectors/pg_write.h"
#include "spice/arrow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const pgc_kind KINDS[] = {PGC_NUMERIC_TEXT, PGC_UUID, PGC_JSONB, PGC_TEXT};

/* A utf8 column of the lines of s (borrowed buffers), in a one-column struct batch. */
typedef struct column {
  int32_t *offsets;
  uint8_t *validity;
  const void *buffers[3], *top_buffers[1];
  struct ArrowArray child, *children[1], batch;
  struct ArrowSchema field, *fields[1], schema;
} column;

static int build(column *c, const char *s, size_t n) {
  int64_t rows = 1;
  for (size_t i = 0; i < n; i++) rows += s[i] == '\n';
  c->offsets = calloc((size_t)rows + 1, sizeof *c->offsets);
  c->validity = calloc((size_t)rows / 8 + 1, 1);
  if (c->offsets == NULL || c->validity == NULL) return -1;
  int64_t r = 0, nulls = 0;
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && s[i] != '\n') continue;
    if (i > start) c->validity[r >> 3] |= (uint8_t)(1u << (r & 7));
    else nulls++;
    c->offsets[r + 1] = (int32_t)(i - start) + c->offsets[r];
    r++;
    start = i + 1;
  }
  /* the data buffer skips the separators: rebuild it contiguous */
  char *d = malloc(n + 1);
  if (d == NULL) return -1;
  size_t o = 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] != '\n') d[o++] = s[i];
  c->buffers[0] = c->validity, c->buffers[1] = c->offsets, c->buffers[2] = d;
  c->child = (struct ArrowArray){.length = rows, .null_count = nulls, .n_buffers = 3, .buffers = c->buffers};
  c->children[0] = &c->child;
  c->top_buffers[0] = NULL;
  c->batch = (struct ArrowArray){.length = rows, .n_buffers = 1, .n_children = 1, .buffers = c->top_buffers, .children = c->children};
  c->field = (struct ArrowSchema){.format = "u", .name = "v", .flags = 2};
  c->fields[0] = &c->field;
  c->schema = (struct ArrowSchema){.format = "+s", .name = "", .n_children = 1, .children = c->fields};
  return 0;
}

static void check(const pgc_type *type, const sp_buf *b, int64_t rows) {
  pgc_decoder *d;
  struct ArrowArray out;
  if (pgc_decoder_new(type, 1, &d, NULL) != SP_OK) return;
  if (pgc_feed(d, (const uint8_t *)b->data, b->len, NULL) != SP_OK || pgc_end(d, NULL) != SP_OK) abort();
  if (pgc_finish_batch(d, &out, NULL) != SP_OK) abort();
  if (out.length != rows) abort();
  out.release(&out);
  pgc_decoder_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 65536) return 0;
  pgc_type type = {.kind = KINDS[data[0] % 4]};
  column c = {0};
  const char *names[] = {"v"};
  pgw_target t = {.relation = "t", .display = "t", .dataset = "fuzz", .names = names, .quoted = names, .types = &type, .n = 1};
  sp_buf b = {0};
  if (build(&c, (const char *)data + 1, size - 1) == 0 && pgw_header(&b) == SP_OK &&
      pgw_encode_batch(&t, &c.schema, &c.batch, &b, NULL) == SP_OK && pgw_trailer(&b) == SP_OK)
    check(&type, &b, c.batch.length);
  sp_buf_free(&b);
  free(c.offsets);
  free(c.validity);
  free((void *)c.buffers[2]);
  return 0;
}
