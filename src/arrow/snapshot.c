/* SPDX-License-Identifier: Apache-2.0
 *
 * Immutable, ref-counted snapshots: the arrow accelerator's storage. A snapshot is built once from a stream
 * and never changes; a refresh builds a new one and publishes it. Readers (engine scans, Flight) pin the
 * snapshot they started with, so a swap never disturbs a query in flight.
 */
#include <stdlib.h>
#include <string.h>

#include "spice/arrow.h"

/* One batch, owned once and shared by every snapshot that contains it (an append shares the batches of the
 * snapshot it extends instead of copying or chaining them). */
struct sp_batch_owner {
  struct ArrowArray array;
  int refs; /* atomic */
};

static void owner_unref(struct sp_batch_owner *o) {
  if (o != NULL && __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) == 0) {
    sp_array_release(&o->array);
    free(o);
  }
}

static void snapshot_free(sp_snapshot *s) {
  free(s->stats);
  for (size_t i = 0; i < s->n_batches; i++) owner_unref(s->owners[i]);
  free(s->owners);
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

/* Statistics for every top-level column of every batch; the first `reused` batches come from `base` with
 * their statistics. On failure the snapshot just has none. */
static void snapshot_stats(sp_snapshot *s, const sp_snapshot *base, size_t reused) {
  int64_t nc = s->schema.n_children;
  if (nc == 0 || s->n_batches == 0) return;
  s->stats = calloc(s->n_batches * (size_t)nc, sizeof *s->stats);
  if (s->stats == NULL) return;
  size_t from = 0;
  if (base && base->stats && reused > 0) {
    memcpy(s->stats, base->stats, reused * (size_t)nc * sizeof *s->stats);
    from = reused;
  }
  for (size_t b = from; b < s->n_batches; b++) {
    const struct ArrowArray *batch = &s->batches[b];
    for (int64_t c = 0; c < nc && c < batch->n_children; c++) {
      struct ArrowArray col = *batch->children[c];
      col.offset += batch->offset; /* a struct's offset applies to its children */
      col.length = batch->length;
      column_stats(s->schema.children[c], &col, &s->stats[b * (size_t)nc + (size_t)c]);
    }
  }
}

/* Makes room for one more batch. */
static int snapshot_grow(sp_snapshot *s, size_t *cap, sp_error *err) {
  if (s->n_batches < *cap) return SP_OK;
  size_t ncap = *cap ? *cap * 2 : 64;
  struct ArrowArray *nb = realloc(s->batches, ncap * sizeof *nb);
  if (nb) s->batches = nb;
  struct sp_batch_owner **no = nb ? realloc(s->owners, ncap * sizeof *no) : NULL;
  if (no) s->owners = no;
  if (nb == NULL || no == NULL) return sp_fail(err, SP_ENOMEM, "out of memory");
  *cap = ncap;
  return SP_OK;
}

/* Adds a batch held by `o` (the snapshot takes one reference). batches[i] is a non-owning copy of its top node. */
static void snapshot_add(sp_snapshot *s, struct sp_batch_owner *o) {
  s->owners[s->n_batches] = o;
  s->batches[s->n_batches] = o->array;
  s->batches[s->n_batches].release = NULL;
  s->n_batches++;
  s->rows += o->array.length;
  s->bytes += sp_array_payload_bytes(&s->schema, &o->array);
}

/* Drains `stream` into s, from batch index `first_new` on computing statistics. Consumes the stream. */
static int snapshot_fill(sp_snapshot *s, size_t cap, struct ArrowArrayStream *stream, sp_error *err) {
  int rc = SP_OK;
  while (rc == SP_OK) {
    struct ArrowArray b;
    memset(&b, 0, sizeof b);
    if (stream->get_next(stream, &b) != 0) {
      const char *m = stream->get_last_error(stream);
      rc = sp_fail(err, SP_EIO, "%s", m ? m : "error reading the stream");
      break;
    }
    if (b.release == NULL) break;
    struct sp_batch_owner *o = b.length > 0 ? malloc(sizeof *o) : NULL;
    if (o == NULL || snapshot_grow(s, &cap, err) != SP_OK) {
      free(o);
      sp_array_release(&b);
      if (b.length > 0) rc = sp_fail(err, SP_ENOMEM, "out of memory");
      continue;
    }
    sp_array_move(&o->array, &b);
    o->refs = 1;
    snapshot_add(s, o);
  }
  sp_stream_release(stream);
  return rc;
}

int sp_snapshot_from_stream(struct ArrowArrayStream *stream, sp_snapshot **out, sp_error *err) {
  return sp_snapshot_append(NULL, stream, out, err);
}

int sp_snapshot_append(sp_snapshot *base, struct ArrowArrayStream *stream, sp_snapshot **out, sp_error *err) {
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
  } else if (base && base->schema.n_children != s->schema.n_children) {
    rc = sp_fail(err, SP_EINVAL, "appended rows have %lld columns, the dataset has %lld",
                 (long long)s->schema.n_children, (long long)base->schema.n_children);
  }
  for (size_t i = 0; rc == SP_OK && base && i < base->n_batches; i++) {
    rc = snapshot_grow(s, &cap, err);
    if (rc == SP_OK) {
      __atomic_add_fetch(&base->owners[i]->refs, 1, __ATOMIC_RELAXED);
      snapshot_add(s, base->owners[i]);
    }
  }
  size_t first_new = s->n_batches;
  if (rc == SP_OK) rc = snapshot_fill(s, cap, stream, err);
  else sp_stream_release(stream);
  if (rc != SP_OK) {
    snapshot_free(s);
    return rc;
  }
  snapshot_stats(s, base, first_new);
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

/* ---- A stream over a snapshot: batches are shared, not copied. Each emitted array is a view: a tree of
 * ArrowArray nodes of its own over the snapshot's buffers, each node holding a snapshot reference until it is
 * released. The spec lets a consumer move a child out of a batch and release the parent; with the snapshot's
 * own nodes handed out, that would take the child (and its buffers) from every other reader. ---- */

typedef struct snap_stream {
  sp_snapshot *snap;
  size_t next;
} snap_stream;

typedef struct array_view {
  sp_snapshot *snap;
  struct ArrowArray **children; /* the view's child nodes, freed with it (released unless moved out) */
  int64_t n_children;
  struct ArrowArray *dictionary;
} array_view;

static void view_release(struct ArrowArray *a) {
  if (a->release == NULL) return;
  array_view *v = a->private_data;
  for (int64_t i = 0; i < v->n_children; i++) {
    sp_array_release(v->children[i]);
    free(v->children[i]);
  }
  free(v->children);
  sp_array_release(v->dictionary);
  free(v->dictionary);
  sp_snapshot_unref(v->snap);
  free(v);
  a->release = NULL;
}

/* Makes *out a view of src, a node of one of snap's batches. Returns 0, or -1 when out of memory (then
 * out->release is NULL and nothing is held). */
static int view_make(sp_snapshot *snap, const struct ArrowArray *src, struct ArrowArray *out) {
  *out = *src;
  out->children = NULL;
  out->dictionary = NULL;
  out->release = NULL;
  array_view *v = calloc(1, sizeof *v);
  if (v == NULL) return -1;
  v->snap = sp_snapshot_ref(snap);
  out->private_data = v;
  out->release = view_release;
  int ok = src->n_children == 0 || (v->children = calloc((size_t)src->n_children, sizeof *v->children)) != NULL;
  for (int64_t i = 0; ok && i < src->n_children; i++) {
    v->children[i] = malloc(sizeof **v->children);
    v->n_children = i + 1;
    ok = v->children[i] != NULL && view_make(snap, src->children[i], v->children[i]) == 0;
  }
  if (ok && src->dictionary) {
    v->dictionary = malloc(sizeof *v->dictionary);
    ok = v->dictionary != NULL && view_make(snap, src->dictionary, v->dictionary) == 0;
  }
  if (!ok) {
    view_release(out);
    return -1;
  }
  out->children = v->children;
  out->dictionary = v->dictionary;
  return 0;
}

static int snap_stream_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  snap_stream *p = st->private_data;
  return sp_schema_copy(out, &p->snap->schema, NULL) == SP_OK ? 0 : 12;
}

static int snap_stream_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  snap_stream *p = st->private_data;
  memset(out, 0, sizeof *out);
  if (p->next >= p->snap->n_batches) return 0;
  if (view_make(p->snap, &p->snap->batches[p->next], out) != 0) {
    memset(out, 0, sizeof *out);
    return 12;
  }
  p->next++;
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
