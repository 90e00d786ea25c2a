/* SPDX-License-Identifier: Apache-2.0
 *
 * Arrow C Data Interface helpers: format parsing, deep schema copies, releases and moves, and a stream over
 * batches that it owns.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spice/arrow.h"

/* Reads an optionally signed decimal number at s into *out and sets *end past it; false if there is none. */
static bool read_int(const char *s, const char **end, int *out) {
  char *e;
  if (!((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9'))) return false;
  errno = 0;
  long v = strtol(s, &e, 10);
  if (errno != 0 || v > INT_MAX || v < INT_MIN) return false;
  *out = (int)v;
  *end = e;
  return true;
}

/* "d:precision,scale[,bitwidth]", bitwidth 32, 64, 128 (the default) or 256. */
static void parse_decimal(const char *f, sp_arrow_typeinfo *out) {
  const char *p = f + 2;
  int bits = 128;
  if (!read_int(p, &p, &out->precision) || out->precision < 1) return;
  if (*p == ',' && !read_int(p + 1, &p, &out->scale)) return;
  if (*p == ',' && !read_int(p + 1, &p, &bits)) return;
  if (*p != '\0') return;
  out->type = bits == 256   ? SP_ARROW_DECIMAL256
              : bits == 128 ? SP_ARROW_DECIMAL128
              : bits == 64  ? SP_ARROW_DECIMAL64
              : bits == 32  ? SP_ARROW_DECIMAL32
                            : SP_ARROW_UNSUPPORTED;
}

/* "w:N" and "+w:N": a non-negative size and nothing after it. */
static bool parse_size(const char *p, int *out) {
  return read_int(p, &p, out) && *out >= 0 && *p == '\0';
}

/* Dates, times, timestamps, durations and intervals: "t" + kind + unit letter (+ ":zone" for timestamps). The
 * unit letter must be one the kind knows, and nothing may follow it but a timestamp's zone. */
static void parse_temporal(const char *f, sp_arrow_typeinfo *out) {
  char u = f[2];
  if (u == '\0') return; /* "ts", "td": no unit, and f[3] is past the end */
  const char *rest = f + 3;
  bool unit_ok = u == 's' || u == 'm' || u == 'u' || u == 'n';
  out->unit = u == 's' ? SP_UNIT_SECOND : u == 'm' ? SP_UNIT_MILLI : u == 'u' ? SP_UNIT_MICRO : SP_UNIT_NANO;
  switch (f[1]) {
  case 'd':
    if (*rest == '\0' && (u == 'D' || u == 'm')) out->type = u == 'D' ? SP_ARROW_DATE32 : SP_ARROW_DATE64;
    return;
  case 't':
    if (*rest == '\0' && unit_ok) out->type = (u == 's' || u == 'm') ? SP_ARROW_TIME32 : SP_ARROW_TIME64;
    return;
  case 's':
    if (!unit_ok || (*rest != ':' && *rest != '\0')) return;
    out->type = SP_ARROW_TIMESTAMP;
    if (*rest == ':') snprintf(out->tz, sizeof out->tz, "%s", rest + 1);
    return;
  case 'D':
    if (*rest == '\0' && unit_ok) out->type = SP_ARROW_DURATION;
    return;
  case 'i':
    if (*rest != '\0') return;
    out->type = u == 'M' ? SP_ARROW_INTERVAL_MONTHS : u == 'D' ? SP_ARROW_INTERVAL_DAY_TIME
              : u == 'n' ? SP_ARROW_INTERVAL_MONTH_DAY_NANO : SP_ARROW_UNSUPPORTED;
    return;
  default: return;
  }
}

/* "+l", "+L", "+s", "+m" and "+w:N"; unions, run-end and list views are not supported. */
static void parse_nested(const char *f, sp_arrow_typeinfo *out) {
  if (f[1] == 'w') {
    if (f[2] == ':' && parse_size(f + 3, &out->byte_width)) out->type = SP_ARROW_FIXED_LIST;
    return;
  }
  if (f[2] != '\0') return;
  switch (f[1]) {
  case 'l': out->type = SP_ARROW_LIST; return;
  case 'L': out->type = SP_ARROW_LARGE_LIST; return;
  case 's': out->type = SP_ARROW_STRUCT; return;
  case 'm': out->type = SP_ARROW_MAP; return;
  default: return;
  }
}

void sp_arrow_parse_format(const char *f, sp_arrow_typeinfo *out) {
  memset(out, 0, sizeof *out);
  out->type = SP_ARROW_UNSUPPORTED;
  if (f == NULL || f[0] == '\0') return;
  if (f[1] == '\0') {
    static const struct { char c; sp_arrow_type t; } simple[] = {
        {'n', SP_ARROW_NA},     {'b', SP_ARROW_BOOL},   {'c', SP_ARROW_INT8},   {'C', SP_ARROW_UINT8},
        {'s', SP_ARROW_INT16},  {'S', SP_ARROW_UINT16}, {'i', SP_ARROW_INT32},  {'I', SP_ARROW_UINT32},
        {'l', SP_ARROW_INT64},  {'L', SP_ARROW_UINT64}, {'e', SP_ARROW_HALF},   {'f', SP_ARROW_FLOAT},
        {'g', SP_ARROW_DOUBLE}, {'u', SP_ARROW_UTF8},   {'U', SP_ARROW_LARGE_UTF8}, {'z', SP_ARROW_BINARY},
        {'Z', SP_ARROW_LARGE_BINARY},
    };
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
      if (simple[i].c == f[0]) out->type = simple[i].t;
    return;
  }
  switch (f[0]) {
  case 'w':
    if (f[1] == ':' && parse_size(f + 2, &out->byte_width)) out->type = SP_ARROW_FIXED_BINARY;
    return;
  case 'd':
    if (f[1] == ':') parse_decimal(f, out);
    return;
  case 'v': /* views (Arrow 1.4): "vu" utf-8, "vz" binary */
    if ((f[1] == 'u' || f[1] == 'z') && f[2] == '\0') out->type = f[1] == 'u' ? SP_ARROW_UTF8_VIEW : SP_ARROW_BINARY_VIEW;
    return;
  case 't': parse_temporal(f, out); return;
  case '+': parse_nested(f, out); return;
  default: return;
  }
}

/* ---- Deep schema copy ---------------------------------------------------------------------------------- */

void sp_schema_node_release(struct ArrowSchema *s) {
  if (s->release == NULL) return;
  for (int64_t i = 0; i < s->n_children; i++) {
    /* NULL: sp_schema_copy ran out of memory allocating this child (it is counted all the same) */
    if (s->children[i] && s->children[i]->release) s->children[i]->release(s->children[i]);
    free(s->children[i]);
  }
  free(s->children);
  if (s->dictionary) {
    if (s->dictionary->release) s->dictionary->release(s->dictionary);
    free(s->dictionary);
  }
  sp_schema_strings *p = s->private_data;
  if (p) {
    free(p->format);
    free(p->name);
    free(p->metadata);
    free(p);
  }
  s->release = NULL;
}

int sp_schema_node_init(struct ArrowSchema *s, const char *format, const char *name, size_t name_len) {
  memset(s, 0, sizeof *s);
  sp_schema_strings *p = calloc(1, sizeof *p);
  if (p == NULL) return -1;
  s->private_data = p;
  s->release = sp_schema_node_release;
  p->format = strdup(format);
  if (name) p->name = strndup(name, name_len);
  s->format = p->format;
  s->name = p->name;
  return p->format == NULL || (name && p->name == NULL) ? -1 : 0;
}

/* Arrow metadata is a binary blob: int32 count, then (int32 len, bytes) pairs for keys and values. */
static size_t metadata_size(const char *m) {
  if (m == NULL) return 0;
  int32_t n, len;
  size_t pos = 4;
  memcpy(&n, m, 4);
  for (int32_t i = 0; i < 2 * n; i++) {
    memcpy(&len, m + pos, 4);
    pos += 4 + (size_t)len;
  }
  return pos;
}

int sp_schema_copy(struct ArrowSchema *out, const struct ArrowSchema *src, sp_error *err) {
  struct ArrowSchema s = {0};
  sp_schema_strings *p = calloc(1, sizeof *p);
  if (p == NULL) return sp_fail(err, SP_ENOMEM, "out of memory copying a schema");
  s.private_data = p;
  s.release = sp_schema_node_release;
  s.flags = src->flags;
  p->format = strdup(src->format ? src->format : "");
  p->name = src->name ? strdup(src->name) : NULL;
  size_t msz = metadata_size(src->metadata);
  if (msz) {
    p->metadata = malloc(msz);
    if (p->metadata) memcpy(p->metadata, src->metadata, msz);
  }
  s.format = p->format;
  s.name = p->name;
  s.metadata = p->metadata;
  int failed = p->format == NULL || (src->name && !p->name) || (msz && !p->metadata);
  if (!failed && src->n_children > 0) {
    s.children = calloc((size_t)src->n_children, sizeof *s.children);
    failed = s.children == NULL;
    for (int64_t i = 0; !failed && i < src->n_children; i++, s.n_children++) {
      s.children[i] = calloc(1, sizeof **s.children);
      failed = s.children[i] == NULL || sp_schema_copy(s.children[i], src->children[i], err) != SP_OK;
    }
  }
  if (!failed && src->dictionary) {
    s.dictionary = calloc(1, sizeof *s.dictionary);
    failed = s.dictionary == NULL || sp_schema_copy(s.dictionary, src->dictionary, err) != SP_OK;
  }
  if (failed) {
    sp_schema_node_release(&s);
    return sp_fail(err, SP_ENOMEM, "out of memory copying a schema");
  }
  *out = s;
  return SP_OK;
}

void sp_schema_release(struct ArrowSchema *s) {
  if (s && s->release) s->release(s);
}
void sp_array_release(struct ArrowArray *a) {
  if (a && a->release) a->release(a);
}
void sp_stream_release(struct ArrowArrayStream *s) {
  if (s && s->release) s->release(s);
}
void sp_array_move(struct ArrowArray *dst, struct ArrowArray *src) {
  *dst = *src;
  src->release = NULL;
}
void sp_stream_move(struct ArrowArrayStream *dst, struct ArrowArrayStream *src) {
  *dst = *src;
  src->release = NULL;
}

/* ---- A stream over owned batches ------------------------------------------------------------------------- */

typedef struct batch_stream {
  struct ArrowSchema schema;
  struct ArrowArray *batches;
  size_t n, next;
} batch_stream;

static int batch_stream_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  batch_stream *b = st->private_data;
  return sp_schema_copy(out, &b->schema, NULL) == SP_OK ? 0 : ENOMEM;
}

static int batch_stream_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  batch_stream *b = st->private_data;
  if (b->next < b->n) {
    sp_array_move(out, &b->batches[b->next++]);
  } else {
    memset(out, 0, sizeof *out); /* end of stream */
  }
  return 0;
}

static const char *batch_stream_error(struct ArrowArrayStream *st) { return NULL; }

static void batch_stream_release(struct ArrowArrayStream *st) {
  if (st->release == NULL) return;
  batch_stream *b = st->private_data;
  for (size_t i = b->next; i < b->n; i++) sp_array_release(&b->batches[i]);
  free(b->batches);
  sp_schema_release(&b->schema);
  free(b);
  st->release = NULL;
}

int sp_stream_from_batches(const struct ArrowSchema *schema, struct ArrowArray *batches, size_t n,
                           struct ArrowArrayStream *out, sp_error *err) {
  batch_stream *b = calloc(1, sizeof *b);
  struct ArrowArray *owned = n ? calloc(n, sizeof *owned) : NULL;
  if (b == NULL || (n && owned == NULL) || sp_schema_copy(&b->schema, schema, err) != SP_OK) {
    for (size_t i = 0; i < n; i++) sp_array_release(&batches[i]);
    free(b);
    free(owned);
    return sp_fail(err, SP_ENOMEM, "out of memory building a stream");
  }
  for (size_t i = 0; i < n; i++) sp_array_move(&owned[i], &batches[i]);
  b->batches = owned;
  b->n = n;
  out->get_schema = batch_stream_schema;
  out->get_next = batch_stream_next;
  out->get_last_error = batch_stream_error;
  out->release = batch_stream_release;
  out->private_data = b;
  return SP_OK;
}

/* ---- Payload size ---------------------------------------------------------------------------------------- */

/* Estimates the payload of a batch from its schema: fixed widths exactly, variable-size data by its last
 * offset. Used for progress logs and status. */
int64_t sp_array_payload_bytes(const struct ArrowSchema *schema, const struct ArrowArray *a) {
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
      bytes += sp_array_payload_bytes(schema->children[i], a->children[i]);
    break;
  case SP_ARROW_NA: break;
  default: bytes += 8 * n; break;
  }
  if (a->dictionary && schema->dictionary) bytes += sp_array_payload_bytes(schema->dictionary, a->dictionary);
  return bytes;
}


/* ---- A metering stream ------------------------------------------------------------------------------------ */

typedef struct meter_stream {
  struct ArrowArrayStream inner;
  struct ArrowSchema schema;
  sp_stream_progress_fn fn;
  void *ctx;
  int64_t rows, bytes;
  int done;
} meter_stream;

static int meter_schema(struct ArrowArrayStream *st, struct ArrowSchema *out) {
  meter_stream *m = st->private_data;
  return m->inner.get_schema(&m->inner, out);
}

static int meter_next(struct ArrowArrayStream *st, struct ArrowArray *out) {
  meter_stream *m = st->private_data;
  int rc = m->inner.get_next(&m->inner, out);
  if (rc != 0) return rc;
  if (out->release == NULL) {
    if (!m->done && m->fn) m->fn(m->ctx, m->rows, m->bytes, 1);
    m->done = 1;
    return 0;
  }
  m->rows += out->length;
  m->bytes += sp_array_payload_bytes(&m->schema, out);
  if (m->fn) m->fn(m->ctx, m->rows, m->bytes, 0);
  return 0;
}

static const char *meter_error(struct ArrowArrayStream *st) {
  meter_stream *m = st->private_data;
  return m->inner.get_last_error(&m->inner);
}

static void meter_release(struct ArrowArrayStream *st) {
  if (st->release == NULL) return;
  meter_stream *m = st->private_data;
  sp_stream_release(&m->inner);
  sp_schema_release(&m->schema);
  free(m);
  st->release = NULL;
}

int sp_stream_meter(struct ArrowArrayStream *inner, sp_stream_progress_fn fn, void *ctx, struct ArrowArrayStream *out,
                    sp_error *err) {
  meter_stream *m = calloc(1, sizeof *m);
  if (m == NULL) {
    sp_stream_release(inner);
    return sp_fail(err, SP_ENOMEM, "out of memory");
  }
  if (inner->get_schema(inner, &m->schema) != 0) {
    const char *msg = inner->get_last_error(inner);
    int rc = sp_fail(err, SP_EIO, "%s", msg ? msg : "could not read the schema of a stream");
    sp_stream_release(inner);
    free(m);
    return rc;
  }
  sp_stream_move(&m->inner, inner);
  m->fn = fn;
  m->ctx = ctx;
  out->get_schema = meter_schema;
  out->get_next = meter_next;
  out->get_last_error = meter_error;
  out->release = meter_release;
  out->private_data = m;
  return SP_OK;
}
