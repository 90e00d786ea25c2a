/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the Arrow IPC stream decoder (src/arrow/ipc_read.c; streams come from Flight clients
 * and files). Any bytes go through sp_ipc_read_stream; what it accepts is then read the way a consumer would:
 * every value of every batch, through offsets, children and dictionaries, so a check the decoder missed shows
 * up as a read outside a buffer. Accepted input is re-encoded, which must succeed and decode again. Seeds in
 * tests/fuzz/corpus/ipc/ are real streams written by sp_ipc_write_* (see tools/ipc_tool.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/format.h"
#include "spice/arrow.h"
#include "spice/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t sink;

static void touch(const struct ArrowSchema *s, const struct ArrowArray *a, int64_t i, int depth);

static int64_t index_at(const struct ArrowSchema *s, const struct ArrowArray *a, int64_t j) {
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(s->format, &t);
  const uint8_t *v = a->buffers[1];
  int64_t k = 0;
  switch (t.type) {
  case SP_ARROW_INT8: return (int8_t)v[j];
  case SP_ARROW_UINT8: return v[j];
  case SP_ARROW_INT16: { int16_t x; memcpy(&x, v + 2 * j, 2); return x; }
  case SP_ARROW_UINT16: { uint16_t x; memcpy(&x, v + 2 * j, 2); return x; }
  case SP_ARROW_INT32: { int32_t x; memcpy(&x, v + 4 * j, 4); return x; }
  case SP_ARROW_UINT32: { uint32_t x; memcpy(&x, v + 4 * j, 4); return x; }
  default: memcpy(&k, v + 8 * j, 8); return k;
  }
}

static void range(const struct ArrowArray *a, bool large, int64_t j, int64_t *lo, int64_t *hi) {
  if (large) {
    memcpy(lo, (const int64_t *)a->buffers[1] + j, 8);
    memcpy(hi, (const int64_t *)a->buffers[1] + j + 1, 8);
  } else {
    int32_t l, h;
    memcpy(&l, (const int32_t *)a->buffers[1] + j, 4);
    memcpy(&h, (const int32_t *)a->buffers[1] + j + 1, 4);
    *lo = l;
    *hi = h;
  }
}

/* Reads element i (before the offset) of a as a consumer would. */
static void touch(const struct ArrowSchema *s, const struct ArrowArray *a, int64_t i, int depth) {
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(s->format, &t);
  if (depth > SP_IPC_MAX_DEPTH + 2) abort();
  if (t.type == SP_ARROW_NA || sp_array_is_null(a, i)) return;
  int64_t j = a->offset + i, lo, hi;
  if (s->dictionary) {
    int64_t k = index_at(s, a, j);
    if (k < 0 || k >= a->dictionary->length) abort(); /* the decoder promised to check */
    touch(s->dictionary, a->dictionary, k, depth + 1);
    return;
  }
  switch (t.type) {
  case SP_ARROW_BOOL: sink += ((const uint8_t *)a->buffers[1])[j >> 3]; return;
  case SP_ARROW_UTF8: case SP_ARROW_BINARY: case SP_ARROW_LARGE_UTF8: case SP_ARROW_LARGE_BINARY:
    range(a, t.type == SP_ARROW_LARGE_UTF8 || t.type == SP_ARROW_LARGE_BINARY, j, &lo, &hi);
    if (hi > lo) sink += ((const uint8_t *)a->buffers[2])[lo] + ((const uint8_t *)a->buffers[2])[hi - 1];
    return;
  case SP_ARROW_LIST: case SP_ARROW_LARGE_LIST: case SP_ARROW_MAP:
    range(a, t.type == SP_ARROW_LARGE_LIST, j, &lo, &hi);
    for (int64_t e = lo; e < hi && e < lo + 64; e++) touch(s->children[0], a->children[0], e, depth + 1);
    if (hi > lo) touch(s->children[0], a->children[0], hi - 1, depth + 1);
    return;
  case SP_ARROW_FIXED_LIST:
    if (t.byte_width > 0) touch(s->children[0], a->children[0], (j + 1) * t.byte_width - 1, depth + 1);
    return;
  case SP_ARROW_STRUCT:
    for (int64_t c = 0; c < s->n_children; c++) touch(s->children[c], a->children[c], j, depth + 1);
    return;
  default: {
    static const int widths[] = {[SP_ARROW_INT8] = 1, [SP_ARROW_UINT8] = 1, [SP_ARROW_INT16] = 2,
                                 [SP_ARROW_UINT16] = 2, [SP_ARROW_HALF] = 2, [SP_ARROW_DECIMAL128] = 16,
                                 [SP_ARROW_INTERVAL_MONTH_DAY_NANO] = 16, [SP_ARROW_DECIMAL256] = 32};
    int w = t.type == SP_ARROW_FIXED_BINARY ? t.byte_width : widths[t.type] ? widths[t.type] : 4;
    /* 4 is the smallest of the rest: read the last byte of the widest reading that could be meant */
    sink += ((const uint8_t *)a->buffers[1])[(j + 1) * w - 1];
  }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct ArrowSchema s;
  struct ArrowArray *b;
  size_t n;
  if (sp_ipc_read_stream(data, size, &s, &b, &n, NULL) != SP_OK) return 0;
  sp_buf out = {0};
  sp_ipc_writer *w = NULL;
  if (sp_ipc_writer_create(&s, &w, NULL) != SP_OK || sp_ipc_write_schema(w, &out, NULL) != SP_OK) abort();
  for (size_t i = 0; i < n; i++) {
    for (int64_t c = 0; c < s.n_children; c++)
      for (int64_t r = 0; r < b[i].length && r < 4096; r++) touch(s.children[c], b[i].children[c], r, 0);
    if (sp_ipc_write_batch(w, &b[i], &out, NULL) != SP_OK) abort();
    sp_array_release(&b[i]);
  }
  free(b);
  sp_ipc_writer_destroy(w);
  sp_schema_release(&s);
  struct ArrowSchema s2;
  if (sp_ipc_write_eos(&out, NULL) != SP_OK || sp_ipc_read_stream((const uint8_t *)out.data, out.len, &s2, &b, &n, NULL) != SP_OK)
    abort();
  for (size_t i = 0; i < n; i++) sp_array_release(&b[i]);
  free(b);
  sp_schema_release(&s2);
  sp_buf_free(&out);
  return 0;
}
