/* SPDX-License-Identifier: Apache-2.0
 *
 * Immutable, ref-counted snapshots: the arrow accelerator's storage. A snapshot is built once from a stream
 * and never changes; a refresh builds a new one and publishes it. Readers (engine scans, Flight) pin the
 * snapshot they started with, so a swap never disturbs a query in flight.
 */
#include <stdlib.h>
#include <string.h>

#include "spice/arrow.h"

static void snapshot_free(sp_snapshot *s) {
  free(s->stats);
  for (size_t i = 0; i < s->n_batches; i++) sp_array_release(&s->batches[i]);
  free(s->batches);
  sp_schema_release(&s->schema);
  free(s);
}

sp_snapshot *sp_snapshot_ref(sp_snapshot *s) {
  __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
  return s;
}

void sp_snapshot_unref(sp_snapshot *s) {
  if (s != NULL && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0) snapshot_free(s);
}

/* Estimates the payload of a batch from its schema: fixed widths exactly, variable-size data by its last
 * offset. Used for progress logs and status. */
static int64_t batch_bytes(const struct ArrowSchema *schema, const struct ArrowArray *a) {
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(schema->format, &t);
  int64_t n = a->length + a->offset, bytes = a->null_count ? (n + 7) / 8 : 0;
  switch (t.type) {
  case SP_ARROW_BOOL: bytes += (n + 7) / 8; break;
  case SP_ARROW_INT8: case SP_ARROW_UINT8: bytes += n; break;
  case SP_ARROW_INT16: case SP_ARROW_UINT16: case SP_ARROW_HALF: bytes += 2 * n; break;
  case SP_ARROW_INT32: case SP_ARROW_UINT32: case SP_ARROW_FLOAT: case SP_ARROW_DATE32: case SP_ARROW_TIME32:
  case SP_ARROW_INTERVAL_MONTHS: case SP_ARROW_DECIMAL32: bytes += 4 * n; break;
  case SP_ARROW_DECIMAL128: case SP_ARROW_INTERVAL_MONTH_DAY_NANO: bytes += 16 * n; break;
  case SP_ARROW_DECIMAL256: bytes += 32 * n; break;
  case SP_ARROW_FIXED_BINARY: bytes += (int64_t)t.byte_width * n; break;
  case SP_ARROW_UTF8: case SP_ARROW_BINARY:
    bytes += 4 * (n + 1) + (n > 0 && a->buffers[1] ? ((const int32_t *)a->buffers[1])[n] : 0);
    break;
  case SP_ARROW_LARGE_UTF8: case SP_ARROW_LARGE_BINARY:
    bytes += 8 * (n + 1) + (n > 0 && a->buffers[1] ? ((const int64_t *)a->buffers[1])[n] : 0);
    break;
  case SP_ARROW_STRUCT: case SP_ARROW_LIST: case SP_ARROW_LARGE_LIST: case SP_ARROW_FIXED_LIST: case SP_ARROW_MAP:
    bytes += t.type == SP_ARROW_LIST || t.type == SP_ARROW_MAP ? 4 * (n + 1) : t.type == SP_ARROW_LARGE_LIST ? 8 * (n + 1) : 0;
    for (int64_t i = 0; i < a->n_children && i < schema->n_children; i++)
      bytes += batch_bytes(schema->children[i], a->children[i]);
    break;
  case SP_ARROW_NA: break;
  default: bytes += 8 * n; break;
  }
  if (a->dictionary && schema->dictionary) bytes += batch_bytes(schema->dictionary, a->dictionary);
  return bytes;
}

/* ---- Column statistics ---------------------------------------------------------------------------------- */

#define STAT_LOOP(T, field, conv)                                                                             \
  do {                                                                                                        \
    const T *v = (const T *)a->buffers[1] + a->offset;                                                        \
    for (int64_t i = 0; i < a->length; i++) {                                                                 \
      if (sp_array_is_null(a, i)) continue;                                                                   \
      conv;                                                                                                   \
      if (!seen || x < lo) lo = x;                                                                            \
      if (!seen || x > hi) hi = x;                                                                            \
      seen = 1;                                                                                               \
    }                                                                                                         \
    if (seen) { st->min.field = lo; st->max.field = hi; }                                                     \
  } while (0)

/* Computes min/max of one column array (no dictionary). NaN makes a float column's max +inf, since NaN
 * sorts above every number in DuckDB. */
static void column_stats(const struct ArrowSchema *schema, const struct ArrowArray *a, sp_column_stats *st) {
  sp_arrow_typeinfo t;
  memset(st, 0, sizeof *st);
  if (schema->dictionary || a->n_buffers < 2 || a->buffers[1] == NULL) return;
  sp_arrow_parse_format(schema->format, &t);
  int seen = 0;
  if (a->null_count == a->length && a->length > 0) {
    st->kind = SP_STAT_ALL_NULL;
    return;
  }
  switch (t.type) {
  case SP_ARROW_INT8: { int64_t lo = 0, hi = 0, x; STAT_LOOP(int8_t, i, x = v[i]); break; }
  case SP_ARROW_INT16: { int64_t lo = 0, hi = 0, x; STAT_LOOP(int16_t, i, x = v[i]); break; }
  case SP_ARROW_INT32: case SP_ARROW_DATE32: case SP_ARROW_TIME32: case SP_ARROW_DECIMAL32: {
    int64_t lo = 0, hi = 0, x; STAT_LOOP(int32_t, i, x = v[i]); break; }
  case SP_ARROW_INT64: case SP_ARROW_DATE64: case SP_ARROW_TIME64: case SP_ARROW_TIMESTAMP: case SP_ARROW_DECIMAL64: {
    int64_t lo = 0, hi = 0, x; STAT_LOOP(int64_t, i, x = v[i]); break; }
  case SP_ARROW_UINT8: { int64_t lo = 0, hi = 0, x; STAT_LOOP(uint8_t, i, x = v[i]); break; }
  case SP_ARROW_UINT16: { int64_t lo = 0, hi = 0, x; STAT_LOOP(uint16_t, i, x = v[i]); break; }
  case SP_ARROW_UINT32: { int64_t lo = 0, hi = 0, x; STAT_LOOP(uint32_t, i, x = v[i]); break; }
  case SP_ARROW_FLOAT: { double lo = 0, hi = 0, x; STAT_LOOP(float, d, x = v[i] != v[i] ? __builtin_inf() : v[i]); break; }
  case SP_ARROW_DOUBLE: { double lo = 0, hi = 0, x; STAT_LOOP(double, d, x = v[i] != v[i] ? __builtin_inf() : v[i]); break; }
  default: return;
  }
  if (seen) st->kind = t.type == SP_ARROW_FLOAT || t.type == SP_ARROW_DOUBLE ? SP_STAT_FLOAT : SP_STAT_INT;
}

/* Statistics for every top-level column of every batch; on failure the snapshot just has none. */
static void snapshot_stats(sp_snapshot *s) {
  int64_t nc = s->schema.n_children;
  if (nc == 0 || s->n_batches == 0) return;
  s->stats = calloc(s->n_batches * (size_t)nc, sizeof *s->stats);
  if (s->stats == NULL) return;
  for (size_t b = 0; b < s->n_batches; b++) {
    const struct ArrowArray *batch = &s->batches[b];
    for (int64_t c = 0; c < nc && c < batch->n_children; c++) {
      struct ArrowArray col = *batch->children[c];
      col.offset += batch->offset; /* a struct's offset applies to its children */
      col.length = batch->length;
      column_stats(s->schema.children[c], &col, &s->stats[b * (size_t)nc + (size_t)c]);
    }
  }
}

int sp_snapshot_from_stream(struct ArrowArrayStream *stream, sp_snapshot **out, sp_error *err) {
  sp_snapshot *s = calloc(1, sizeof *s);
  size_t cap = 0;
  int rc = SP_OK;
  if (s == NULL) {
    sp_stream_release(stream);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  s->refs = 1;
  if (stream->get_schema(stream, &s->schema) != 0) {
    const char *m = stream->get_last_error(stream);
    rc = sp_fail(err, SP_EIO, "%s", m ? m : "could not read the schema of the stream");
  }
  while (rc == SP_OK) {
    struct ArrowArray b;
    memset(&b, 0, sizeof b);
    if (stream->get_next(stream, &b) != 0) {
      const char *m = stream->get_last_error(stream);
      rc = sp_fail(err, SP_EIO, "%s", m ? m : "error reading the stream");
      break;
    }
    if (b.release == NULL) break;
    if (b.length == 0) {
      sp_array_release(&b);
      continue;
    }
    if (s->n_batches == cap) {
      size_t ncap = cap ? cap * 2 : 64;
      struct ArrowArray *nb = realloc(s->batches, ncap * sizeof *nb);
      if (nb == NULL) {
        sp_array_release(&b);
        rc = sp_fail(err, SP_ENOMEM, "out of memory");
        break;
      }
      s->batches = nb;
      cap = ncap;
    }
    s->rows += b.length;
    s->bytes += batch_bytes(&s->schema, &b);
    sp_array_move(&s->batches[s->n_batches++], &b);
  }
  sp_stream_release(stream);
  if (rc != SP_OK) {
    snapshot_free(s);
    return rc;
  }
  snapshot_stats(s);
  *out = s;
  return SP_OK;
}

int sp_snapshot_empty(const struct ArrowSchema *schema, sp_snapshot **out, sp_error *err) {
  sp_snapshot *s = calloc(1, sizeof *s);
  if (s == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  s->refs = 1;
  if (sp_schema_copy(&s->schema, schema, err) != SP_OK) {
    free(s);
    return SP_ENOMEM;
  }
  *out = s;
  return SP_OK;
}

/* ---- A stream over a snapshot: batches are shared, so each emitted array is a shallow view whose release
 * drops one snapshot reference. ---- */

typedef struct snap_stream {
  sp_snapshot *snap;
  size_t next;
} snap_stream;

typedef struct shared_batch {
  sp_snapshot *snap;
} shared_batch;

static void shared_batch_release(struct ArrowArray *a) {
  if (a->release == NULL) return;
  shared_batch *p = a->private_data;
  sp_snapshot_unref(p->snap);
  free(p);
  a->release = NULL;
}

static int snap_stream_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  snap_stream *p = st->private_data;
  return sp_schema_copy(out, &p->snap->schema, NULL) == SP_OK ? 0 : 12;
}

static int snap_stream_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  snap_stream *p = st->private_data;
  memset(out, 0, sizeof *out);
  if (p->next >= p->snap->n_batches) return 0;
  shared_batch *sb = malloc(sizeof *sb);
  if (sb == NULL) return 12;
  sb->snap = sp_snapshot_ref(p->snap);
  *out = p->snap->batches[p->next++];
  out->private_data = sb;
  out->release = shared_batch_release;
  return 0;
}

static const char *snap_stream_error(struct ArrowArrayStream *st) { return "out of memory"; }

static void snap_stream_release(struct ArrowArrayStream *st) {
  if (st->release == NULL) return;
  snap_stream *p = st->private_data;
  sp_snapshot_unref(p->snap);
  free(p);
  st->release = NULL;
}

int sp_snapshot_stream(sp_snapshot *s, struct ArrowArrayStream *out, sp_error *err) {
  snap_stream *p = calloc(1, sizeof *p);
  if (p == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  p->snap = sp_snapshot_ref(s);
  out->get_schema = snap_stream_schema;
  out->get_next = snap_stream_next;
  out->get_last_error = snap_stream_error;
  out->release = snap_stream_release;
  out->private_data = p;
  return SP_OK;
}
