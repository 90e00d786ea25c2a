/* SPDX-License-Identifier: Apache-2.0
 *
 * Arrow IPC encoder (include/spice/ipc.h). A batch is written in two passes: the first walks the schema and
 * the arrays and plans the body (one entry per IPC buffer: where it comes from, how to copy it, its 8-aligned
 * offset), the second builds the flatbuffer from the plan and copies the buffers straight into the caller's
 * sp_buf, reserved once per message. Slices are written compacted: bitmaps shifted to bit 0, offsets rebased
 * to 0, children cut to the range the parent uses.
 */
#include <stdlib.h>
#include <string.h>

#include "arrow/flatbuf.h"
#include "arrow/ipc_format.h"
#include "spice/arrow.h"
#include "spice/ipc.h"

typedef enum copy_kind { COPY_RAW, COPY_BITS, COPY_OFFS32, COPY_OFFS64, COPY_ZEROS } copy_kind;

/* One IPC buffer of the body. */
typedef struct wbuf {
  copy_kind kind;
  const void *src; /* RAW: first byte; BITS: bitmap; OFFS: first offset */
  int64_t bit;     /* BITS: first bit */
  int64_t count;   /* BITS: bits; OFFS: entries */
  int64_t base;    /* OFFS: subtracted from every entry */
  int64_t len;     /* bytes written (without padding) */
  int64_t off;     /* offset in the body */
} wbuf;

struct sp_ipc_writer {
  struct ArrowSchema schema;
  fb_builder fb;
  ipc_pair *nodes;
  size_t n_nodes, cap_nodes;
  wbuf *bufs;
  size_t n_bufs, cap_bufs;
  int64_t body_len;
  size_t n_dicts;
  const struct ArrowSchema **dict_schemas; /* by id = pre-order position */
  const struct ArrowArray **dict_arrays;   /* of the batch being written */
  size_t next_dict;
  sp_ipc_frame *frames;
  size_t n_frames, cap_frames;
};

static int oom(sp_error *err) { return sp_fail(err, SP_ENOMEM, "out of memory writing an arrow ipc message"); }

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return true;
  size_t n = *cap ? *cap * 2 : 16;
  while (n < need) n *= 2;
  void *q = realloc(*p, n * elem);
  if (q == NULL) return false;
  *p = q;
  *cap = n;
  return true;
}

/* ---- Schema --------------------------------------------------------------------------------------------- */

static int16_t fb_unit(sp_time_unit u) { return (int16_t)u; } /* TimeUnit has the same order */

static fb_ref int_table(fb_builder *b, int bits, bool is_signed) {
  fb_table_start(b);
  fb_add_i32(b, INT_BITWIDTH, bits);
  fb_add_u8(b, INT_SIGNED, is_signed);
  return fb_table_end(b);
}

/* Index width and signedness of an integer format; false for anything else. */
static bool int_format(sp_arrow_type t, int *bits, bool *is_signed) {
  static const int widths[] = {8, 16, 32, 64};
  if (t >= SP_ARROW_INT8 && t <= SP_ARROW_INT64) {
    *bits = widths[t - SP_ARROW_INT8];
    *is_signed = true;
    return true;
  }
  if (t >= SP_ARROW_UINT8 && t <= SP_ARROW_UINT64) {
    *bits = widths[t - SP_ARROW_UINT8];
    *is_signed = false;
    return true;
  }
  return false;
}

/* The Type union member for format (the value type of a dictionary field). */
static int type_table(fb_builder *b, const char *format, uint8_t *tt, fb_ref *ref, sp_error *err) {
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(format, &t);
  int bits;
  bool sgn;
  if (int_format(t.type, &bits, &sgn)) {
    *tt = T_INT;
    *ref = int_table(b, bits, sgn);
    return SP_OK;
  }
  fb_ref tz = 0;
  if (t.type == SP_ARROW_TIMESTAMP && t.tz[0]) tz = fb_string(b, t.tz, strlen(t.tz));
  fb_table_start(b);
  switch (t.type) {
  case SP_ARROW_NA: *tt = T_NULL; break;
  case SP_ARROW_BOOL: *tt = T_BOOL; break;
  case SP_ARROW_HALF: case SP_ARROW_FLOAT: case SP_ARROW_DOUBLE:
    *tt = T_FLOAT;
    fb_add_i16(b, FLOAT_PRECISION, (int16_t)(t.type - SP_ARROW_HALF));
    break;
  case SP_ARROW_UTF8: *tt = T_UTF8; break;
  case SP_ARROW_LARGE_UTF8: *tt = T_LARGE_UTF8; break;
  case SP_ARROW_BINARY: *tt = T_BINARY; break;
  case SP_ARROW_LARGE_BINARY: *tt = T_LARGE_BINARY; break;
  case SP_ARROW_FIXED_BINARY: *tt = T_FIXED_BINARY; fb_add_i32(b, FSB_WIDTH, t.byte_width); break;
  case SP_ARROW_DECIMAL32: case SP_ARROW_DECIMAL64: case SP_ARROW_DECIMAL128: case SP_ARROW_DECIMAL256:
    *tt = T_DECIMAL;
    fb_add_i32(b, DEC_PRECISION, t.precision);
    fb_add_i32(b, DEC_SCALE, t.scale);
    fb_add_i32(b, DEC_BITWIDTH, 32 << (t.type - SP_ARROW_DECIMAL32));
    break;
  case SP_ARROW_DATE32: *tt = T_DATE; fb_add_i16(b, DATE_UNIT, 0); break;
  case SP_ARROW_DATE64: *tt = T_DATE; fb_add_i16(b, DATE_UNIT, 1); break;
  case SP_ARROW_TIME32: case SP_ARROW_TIME64:
    *tt = T_TIME;
    fb_add_i16(b, TIME_UNIT, fb_unit(t.unit));
    fb_add_i32(b, TIME_BITWIDTH, t.type == SP_ARROW_TIME32 ? 32 : 64);
    break;
  case SP_ARROW_TIMESTAMP:
    *tt = T_TIMESTAMP;
    fb_add_i16(b, TS_UNIT, fb_unit(t.unit));
    if (tz) fb_add_ref(b, TS_TIMEZONE, tz);
    break;
  case SP_ARROW_DURATION: *tt = T_DURATION; fb_add_i16(b, DURATION_UNIT, fb_unit(t.unit)); break;
  case SP_ARROW_INTERVAL_MONTHS: *tt = T_INTERVAL; fb_add_i16(b, INTERVAL_UNIT, 0); break;
  case SP_ARROW_INTERVAL_DAY_TIME: *tt = T_INTERVAL; fb_add_i16(b, INTERVAL_UNIT, 1); break;
  case SP_ARROW_INTERVAL_MONTH_DAY_NANO: *tt = T_INTERVAL; fb_add_i16(b, INTERVAL_UNIT, 2); break;
  case SP_ARROW_LIST: *tt = T_LIST; break;
  case SP_ARROW_LARGE_LIST: *tt = T_LARGE_LIST; break;
  case SP_ARROW_FIXED_LIST: *tt = T_FIXED_LIST; fb_add_i32(b, FSL_SIZE, t.byte_width); break;
  case SP_ARROW_STRUCT: *tt = T_STRUCT; break;
  case SP_ARROW_MAP: *tt = T_MAP; break; /* keysSorted comes from the flags, set by the caller */
  default:
    fb_table_end(b);
    return sp_fail(err, SP_ENOTSUP, "arrow ipc: type \"%s\" is not supported", format ? format : "");
  }
  *ref = fb_table_end(b);
  return SP_OK;
}

/* Custom metadata of the C Data Interface (int32 n, then length-prefixed keys and values) as [KeyValue]. */
static fb_ref metadata_vector(fb_builder *b, const char *m) {
  int32_t n, klen, vlen;
  memcpy(&n, m, 4);
  fb_ref *kv = calloc(n > 0 ? (size_t)n : 1, sizeof *kv);
  if (kv == NULL) return 0;
  size_t pos = 4;
  for (int32_t i = 0; i < n; i++) {
    memcpy(&klen, m + pos, 4);
    const char *k = m + pos + 4;
    pos += 4 + (size_t)klen;
    memcpy(&vlen, m + pos, 4);
    const char *v = m + pos + 4;
    pos += 4 + (size_t)vlen;
    fb_ref ks = fb_string(b, k, (size_t)klen), vs = fb_string(b, v, (size_t)vlen);
    fb_table_start(b);
    fb_add_ref(b, KV_KEY, ks);
    fb_add_ref(b, KV_VALUE, vs);
    kv[i] = fb_table_end(b);
  }
  fb_ref r = fb_ref_vector(b, kv, (size_t)(n > 0 ? n : 0));
  free(kv);
  return r;
}

static int field_ref(sp_ipc_writer *w, const struct ArrowSchema *s, fb_ref *out, sp_error *err);

/* The [Field] vector of s's children. */
static int children_ref(sp_ipc_writer *w, const struct ArrowSchema *s, fb_ref *out, sp_error *err) {
  fb_ref *refs = calloc(s->n_children > 0 ? (size_t)s->n_children : 1, sizeof *refs);
  if (refs == NULL) return oom(err);
  int rc = SP_OK;
  for (int64_t i = 0; rc == SP_OK && i < s->n_children; i++) rc = field_ref(w, s->children[i], &refs[i], err);
  if (rc == SP_OK) *out = fb_ref_vector(&w->fb, refs, (size_t)s->n_children);
  free(refs);
  return rc;
}

static int field_ref(sp_ipc_writer *w, const struct ArrowSchema *s, fb_ref *out, sp_error *err) {
  fb_builder *b = &w->fb;
  const struct ArrowSchema *v = s->dictionary ? s->dictionary : s;
  fb_ref children = 0, type = 0, dict = 0, meta = 0, name = 0;
  uint8_t tt = 0;
  SP_TRY(children_ref(w, v, &children, err));
  SP_TRY(type_table(b, v->format, &tt, &type, err));
  if (s->dictionary) {
    sp_arrow_typeinfo t;
    int bits;
    bool sgn;
    sp_arrow_parse_format(s->format, &t);
    if (!int_format(t.type, &bits, &sgn))
      return sp_fail(err, SP_ENOTSUP, "arrow ipc: dictionary index type \"%s\" is not an integer", s->format);
    fb_ref it = int_table(b, bits, sgn);
    fb_table_start(b);
    fb_add_i64(b, DICT_ID, (int64_t)w->next_dict++);
    fb_add_ref(b, DICT_INDEX_TYPE, it);
    fb_add_u8(b, DICT_ORDERED, (s->flags & ARROW_FLAG_DICTIONARY_ORDERED) != 0);
    dict = fb_table_end(b);
  }
  if (s->name) name = fb_string(b, s->name, strlen(s->name));
  if (s->metadata) meta = metadata_vector(b, s->metadata);
  fb_table_start(b);
  if (name) fb_add_ref(b, FIELD_NAME, name);
  fb_add_u8(b, FIELD_NULLABLE, (s->flags & ARROW_FLAG_NULLABLE) != 0);
  fb_add_u8(b, FIELD_TYPE_TYPE, tt);
  fb_add_ref(b, FIELD_TYPE, type);
  if (dict) fb_add_ref(b, FIELD_DICTIONARY, dict);
  fb_add_ref(b, FIELD_CHILDREN, children);
  if (meta) fb_add_ref(b, FIELD_CUSTOM_METADATA, meta);
  *out = fb_table_end(b);
  return SP_OK;
}

/* ---- Writer setup --------------------------------------------------------------------------------------- */

/* Checks every node's type and collects the dictionary-encoded ones in pre-order (their ids). */
static int collect(sp_ipc_writer *w, const struct ArrowSchema *s, int depth, bool in_dict, size_t *count,
                   sp_error *err) {
  if (depth > SP_IPC_MAX_DEPTH) return sp_fail(err, SP_ENOTSUP, "arrow ipc: schema nested too deeply");
  if (++*count > SP_IPC_MAX_FIELDS) return sp_fail(err, SP_ENOTSUP, "arrow ipc: schema has too many fields");
  sp_arrow_typeinfo t;
  const struct ArrowSchema *v = s->dictionary ? s->dictionary : s;
  if (s->dictionary) {
    if (in_dict) return sp_fail(err, SP_ENOTSUP, "arrow ipc: nested dictionaries are not supported");
    int bits;
    bool sgn;
    sp_arrow_parse_format(s->format, &t);
    if (!int_format(t.type, &bits, &sgn))
      return sp_fail(err, SP_ENOTSUP, "arrow ipc: dictionary index type \"%s\" is not an integer", s->format);
    const struct ArrowSchema **ds = realloc(w->dict_schemas, (w->n_dicts + 1) * sizeof *ds);
    if (ds == NULL) return oom(err);
    w->dict_schemas = ds;
    ds[w->n_dicts++] = s;
  }
  sp_arrow_parse_format(v->format, &t);
  if (t.type == SP_ARROW_UNSUPPORTED || t.type == SP_ARROW_UTF8_VIEW || t.type == SP_ARROW_BINARY_VIEW)
    return sp_fail(err, SP_ENOTSUP, "arrow ipc: type \"%s\" of field \"%s\" is not supported", v->format,
                   s->name ? s->name : "");
  for (int64_t i = 0; i < v->n_children; i++)
    SP_TRY(collect(w, v->children[i], depth + 1, in_dict || s->dictionary != NULL, count, err));
  return SP_OK;
}

int sp_ipc_writer_create(const struct ArrowSchema *schema, sp_ipc_writer **out, sp_error *err) {
  if (schema == NULL || schema->format == NULL || strcmp(schema->format, "+s") != 0)
    return sp_fail(err, SP_EINVAL, "arrow ipc: a batch schema must be a struct (\"+s\")");
  sp_ipc_writer *w = calloc(1, sizeof *w);
  if (w == NULL) return oom(err);
  int rc = sp_schema_copy(&w->schema, schema, err);
  size_t count = 0;
  for (int64_t i = 0; rc == SP_OK && i < w->schema.n_children; i++)
    rc = collect(w, w->schema.children[i], 1, false, &count, err);
  if (rc == SP_OK && w->n_dicts) {
    w->dict_arrays = calloc(w->n_dicts, sizeof *w->dict_arrays);
    if (w->dict_arrays == NULL) rc = oom(err);
  }
  if (rc != SP_OK) {
    sp_ipc_writer_destroy(w);
    return rc;
  }
  *out = w;
  return SP_OK;
}

void sp_ipc_writer_destroy(sp_ipc_writer *w) {
  if (w == NULL) return;
  sp_schema_release(&w->schema);
  fb_free(&w->fb);
  free(w->nodes);
  free(w->bufs);
  free(w->dict_schemas);
  free(w->dict_arrays);
  free(w->frames);
  free(w);
}

const sp_ipc_frame *sp_ipc_writer_frames(const sp_ipc_writer *w, size_t *n) {
  *n = w->n_frames;
  return w->frames;
}

/* ---- Messages ------------------------------------------------------------------------------------------- */

/* Appends prefix + metadata (the finished builder) + the planned body to out, and records the frame. */
static int emit(sp_ipc_writer *w, sp_ipc_msg_type type, fb_ref header, int64_t body_len, sp_buf *out,
                sp_error *err);

static fb_ref finish_message(sp_ipc_writer *w, uint8_t header_type, fb_ref header, int64_t body_len) {
  fb_builder *b = &w->fb;
  fb_table_start(b);
  fb_add_i64(b, MSG_BODY_LENGTH, body_len);
  fb_add_ref(b, MSG_HEADER, header);
  fb_add_i16(b, MSG_VERSION, METADATA_V5);
  fb_add_u8(b, MSG_HEADER_TYPE, header_type);
  return fb_table_end(b);
}

int sp_ipc_write_schema(sp_ipc_writer *w, sp_buf *out, sp_error *err) {
  fb_builder *b = &w->fb;
  fb_reset(b);
  w->n_frames = 0;
  w->next_dict = 0;
  fb_ref fields;
  SP_TRY(children_ref(w, &w->schema, &fields, err));
  fb_ref meta = w->schema.metadata ? metadata_vector(b, w->schema.metadata) : 0;
  fb_table_start(b);
  fb_add_ref(b, SCHEMA_FIELDS, fields);
  if (meta) fb_add_ref(b, SCHEMA_CUSTOM_METADATA, meta);
  fb_add_i16(b, SCHEMA_ENDIANNESS, 0);
  fb_ref schema = fb_table_end(b);
  w->n_bufs = 0;
  return emit(w, SP_IPC_SCHEMA, schema, 0, out, err);
}

int sp_ipc_write_eos(sp_buf *out, sp_error *err) {
  static const uint8_t eos[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
  if (sp_buf_append(out, eos, sizeof eos) != SP_OK) return oom(err);
  return SP_OK;
}

/* ---- Planning a body ------------------------------------------------------------------------------------ */

static int add_node(sp_ipc_writer *w, int64_t length, int64_t nulls, sp_error *err) {
  if (!grow((void **)&w->nodes, &w->cap_nodes, w->n_nodes + 1, sizeof *w->nodes)) return oom(err);
  w->nodes[w->n_nodes++] = (ipc_pair){length, nulls};
  return SP_OK;
}

static int add_buf(sp_ipc_writer *w, wbuf b, sp_error *err) {
  if (!grow((void **)&w->bufs, &w->cap_bufs, w->n_bufs + 1, sizeof *w->bufs)) return oom(err);
  b.off = w->body_len;
  w->body_len += (b.len + 7) & ~(int64_t)7;
  w->bufs[w->n_bufs++] = b;
  return SP_OK;
}

/* base + off, without forming an offset from NULL for empty buffers. */
static const void *at(const void *base, int64_t off, int64_t len) {
  return len > 0 ? (const uint8_t *)base + off : NULL;
}

static int64_t count_nulls(const uint8_t *bits, int64_t start, int64_t n) {
  int64_t set = 0, i = start, end = start + n;
  for (; i < end && (i & 7); i++) set += (bits[i >> 3] >> (i & 7)) & 1;
  for (; i + 64 <= end; i += 64) {
    uint64_t word;
    memcpy(&word, bits + (i >> 3), 8);
    set += __builtin_popcountll(word);
  }
  for (; i < end; i++) set += (bits[i >> 3] >> (i & 7)) & 1;
  return n - set;
}

static int64_t fixed_width(const sp_arrow_typeinfo *t) {
  switch (t->type) {
  case SP_ARROW_INT8: case SP_ARROW_UINT8: return 1;
  case SP_ARROW_INT16: case SP_ARROW_UINT16: case SP_ARROW_HALF: return 2;
  case SP_ARROW_INT32: case SP_ARROW_UINT32: case SP_ARROW_FLOAT: case SP_ARROW_DATE32: case SP_ARROW_TIME32:
  case SP_ARROW_DECIMAL32: case SP_ARROW_INTERVAL_MONTHS: return 4;
  case SP_ARROW_INT64: case SP_ARROW_UINT64: case SP_ARROW_DOUBLE: case SP_ARROW_DATE64: case SP_ARROW_TIME64:
  case SP_ARROW_TIMESTAMP: case SP_ARROW_DURATION: case SP_ARROW_DECIMAL64: case SP_ARROW_INTERVAL_DAY_TIME: return 8;
  case SP_ARROW_DECIMAL128: case SP_ARROW_INTERVAL_MONTH_DAY_NANO: return 16;
  case SP_ARROW_DECIMAL256: return 32;
  case SP_ARROW_FIXED_BINARY: return t->byte_width;
  default: return 0;
  }
}

static int bad_array(const struct ArrowSchema *s, sp_error *err) {
  return sp_fail(err, SP_EINVAL, "arrow ipc: array of field \"%s\" does not match its type \"%s\"",
                 s->name ? s->name : "", s->format);
}

/* Offsets (32 or 64-bit) at physical index p, n + 1 entries, rebased; the range they cover goes to *lo and *hi. */
static int plan_offsets(sp_ipc_writer *w, const void *offs, bool large, int64_t p, int64_t n, int64_t *lo,
                        int64_t *hi, sp_error *err) {
  if (n == 0) {
    *lo = *hi = 0;
    return add_buf(w, (wbuf){.kind = COPY_ZEROS, .len = large ? 8 : 4}, err);
  }
  if (large) {
    const int64_t *o = (const int64_t *)offs + p;
    *lo = o[0];
    *hi = o[n];
  } else {
    const int32_t *o = (const int32_t *)offs + p;
    *lo = o[0];
    *hi = o[n];
  }
  int64_t es = large ? 8 : 4;
  return add_buf(w, (wbuf){.kind = large ? COPY_OFFS64 : COPY_OFFS32,
                           .src = at(offs, p * es, 1), .count = n + 1, .base = *lo, .len = (n + 1) * es},
                 err);
}

static int plan(sp_ipc_writer *w, const struct ArrowSchema *s, const struct ArrowArray *a, int64_t start,
                int64_t n, sp_error *err);

static int plan_children(sp_ipc_writer *w, const struct ArrowSchema *s, const struct ArrowArray *a, int64_t start,
                         int64_t n, sp_error *err) {
  if (a->n_children != s->n_children) return bad_array(s, err);
  for (int64_t i = 0; i < s->n_children; i++) SP_TRY(plan(w, s->children[i], a->children[i], start, n, err));
  return SP_OK;
}

/* The layout of one value type at physical index p, n values (validity already planned). */
static int plan_values(sp_ipc_writer *w, const struct ArrowSchema *v, const sp_arrow_typeinfo *t,
                       const struct ArrowArray *a, int64_t p, int64_t n, sp_error *err) {
  int64_t lo, hi, width = fixed_width(t);
  switch (t->type) {
  case SP_ARROW_BOOL:
    if (a->n_buffers < 2) return bad_array(v, err);
    return add_buf(w, (wbuf){.kind = COPY_BITS, .src = a->buffers[1], .bit = p, .count = n, .len = (n + 7) / 8}, err);
  case SP_ARROW_UTF8: case SP_ARROW_BINARY: case SP_ARROW_LARGE_UTF8: case SP_ARROW_LARGE_BINARY: {
    bool large = t->type == SP_ARROW_LARGE_UTF8 || t->type == SP_ARROW_LARGE_BINARY;
    if (a->n_buffers < 3) return bad_array(v, err);
    SP_TRY(plan_offsets(w, a->buffers[1], large, p, n, &lo, &hi, err));
    return add_buf(w, (wbuf){.kind = COPY_RAW, .src = at(a->buffers[2], lo, hi - lo), .len = hi - lo}, err);
  }
  case SP_ARROW_LIST: case SP_ARROW_LARGE_LIST: case SP_ARROW_MAP:
    if (a->n_buffers < 2 || a->n_children != 1 || v->n_children != 1) return bad_array(v, err);
    SP_TRY(plan_offsets(w, a->buffers[1], t->type == SP_ARROW_LARGE_LIST, p, n, &lo, &hi, err));
    return plan(w, v->children[0], a->children[0], lo, hi - lo, err);
  case SP_ARROW_FIXED_LIST:
    if (a->n_children != 1 || v->n_children != 1) return bad_array(v, err);
    return plan(w, v->children[0], a->children[0], p * t->byte_width, n * t->byte_width, err);
  case SP_ARROW_STRUCT:
    return plan_children(w, v, a, p, n, err);
  default:
    if (width == 0 && t->type != SP_ARROW_FIXED_BINARY) return bad_array(v, err);
    if (a->n_buffers < 2) return bad_array(v, err);
    return add_buf(w, (wbuf){.kind = COPY_RAW, .src = at(a->buffers[1], p * width, n * width), .len = n * width},
                   err);
  }
}

/* Plans the node of s/a for logical rows [start, start + n) of a (before a->offset is applied). */
static int plan(sp_ipc_writer *w, const struct ArrowSchema *s, const struct ArrowArray *a, int64_t start,
                int64_t n, sp_error *err) {
  int64_t p = a->offset + start;
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(s->format, &t);
  if (t.type == SP_ARROW_NA) return add_node(w, n, n, err);
  const uint8_t *valid = a->n_buffers > 0 ? a->buffers[0] : NULL;
  int64_t nulls = 0;
  if (valid && a->null_count != 0)
    nulls = (start == 0 && n == a->length && a->null_count > 0) ? a->null_count : count_nulls(valid, p, n);
  SP_TRY(add_node(w, n, nulls, err));
  if (nulls == 0) SP_TRY(add_buf(w, (wbuf){.kind = COPY_RAW, .len = 0}, err));
  else SP_TRY(add_buf(w, (wbuf){.kind = COPY_BITS, .src = valid, .bit = p, .count = n, .len = (n + 7) / 8}, err));
  if (s->dictionary) {
    if (a->dictionary == NULL) return bad_array(s, err);
    w->dict_arrays[w->next_dict++] = a->dictionary;
  }
  return plan_values(w, s, &t, a, p, n, err);
}

/* ---- Copying a body ------------------------------------------------------------------------------------- */

static void copy_bits(uint8_t *dst, const uint8_t *src, int64_t bit, int64_t n) {
  int64_t bytes = (n + 7) / 8;
  const uint8_t *s = src + (bit >> 3);
  int sh = (int)(bit & 7);
  if (sh == 0) {
    memcpy(dst, s, (size_t)bytes);
  } else {
    int64_t last = (sh + n - 1) >> 3; /* last source byte needed, relative to s */
    for (int64_t k = 0; k < bytes; k++) {
      unsigned lo = s[k] >> sh;
      unsigned hi = k + 1 <= last ? (unsigned)s[k + 1] << (8 - sh) : 0;
      dst[k] = (uint8_t)(lo | hi);
    }
  }
  if (n & 7) dst[bytes - 1] &= (uint8_t)((1u << (n & 7)) - 1);
}

static void copy_buf(uint8_t *dst, const wbuf *b) {
  switch (b->kind) {
  case COPY_RAW:
    if (b->len) memcpy(dst, b->src, (size_t)b->len);
    break;
  case COPY_BITS:
    if (b->count) copy_bits(dst, b->src, b->bit, b->count);
    break;
  /* memcpy per entry: dst is only as aligned as the caller's sp_buf length (the compiler makes plain moves) */
  case COPY_OFFS32: {
    const int32_t *s = b->src;
    int32_t base = (int32_t)b->base;
    for (int64_t i = 0; i < b->count; i++) {
      int32_t v = s[i] - base;
      memcpy(dst + 4 * i, &v, 4);
    }
    break;
  }
  case COPY_OFFS64: {
    const int64_t *s = b->src;
    for (int64_t i = 0; i < b->count; i++) {
      int64_t v = s[i] - b->base;
      memcpy(dst + 8 * i, &v, 8);
    }
    break;
  }
  case COPY_ZEROS: memset(dst, 0, (size_t)b->len); break;
  }
  int64_t pad = ((b->len + 7) & ~(int64_t)7) - b->len;
  if (pad) memset(dst + b->len, 0, (size_t)pad);
}

static int emit(sp_ipc_writer *w, sp_ipc_msg_type type, fb_ref header, int64_t body_len, sp_buf *out,
                sp_error *err) {
  const uint8_t *meta;
  size_t meta_len;
  uint8_t ht = type == SP_IPC_SCHEMA ? H_SCHEMA : type == SP_IPC_DICTIONARY ? H_DICTIONARY : H_RECORD_BATCH;
  fb_ref msg = finish_message(w, ht, header, body_len);
  SP_TRY(fb_finish(&w->fb, msg, &meta, &meta_len, err));
  if (!grow((void **)&w->frames, &w->cap_frames, w->n_frames + 1, sizeof *w->frames)) return oom(err);
  size_t total = 8 + meta_len + (size_t)body_len;
  uint8_t *dst = (uint8_t *)sp_buf_reserve(out, total);
  if (dst == NULL) return oom(err);
  uint32_t cont = 0xffffffffu;
  int32_t ml = (int32_t)meta_len;
  memcpy(dst, &cont, 4);
  memcpy(dst + 4, &ml, 4);
  memcpy(dst + 8, meta, meta_len);
  uint8_t *body = dst + 8 + meta_len;
  for (size_t i = 0; i < w->n_bufs; i++) copy_buf(body + w->bufs[i].off, &w->bufs[i]);
  w->frames[w->n_frames++] = (sp_ipc_frame){type, out->len + 8, meta_len, out->len + 8 + meta_len, (size_t)body_len};
  out->len += total;
  return SP_OK;
}

/* The RecordBatch table of the planned nodes and buffers. */
static fb_ref record_batch(sp_ipc_writer *w, int64_t length) {
  fb_builder *b = &w->fb;
  ipc_pair *bufs = malloc((w->n_bufs ? w->n_bufs : 1) * sizeof *bufs);
  if (bufs == NULL) {
    b->oom = true;
    return 0;
  }
  for (size_t i = 0; i < w->n_bufs; i++) bufs[i] = (ipc_pair){w->bufs[i].off, w->bufs[i].len};
  fb_ref nodes = fb_struct_vector(b, w->nodes, w->n_nodes, sizeof *w->nodes, 8);
  fb_ref buffers = fb_struct_vector(b, bufs, w->n_bufs, sizeof *bufs, 8);
  free(bufs);
  fb_table_start(b);
  fb_add_i64(b, RB_LENGTH, length);
  fb_add_ref(b, RB_NODES, nodes);
  fb_add_ref(b, RB_BUFFERS, buffers);
  return fb_table_end(b);
}

static void plan_reset(sp_ipc_writer *w) {
  fb_reset(&w->fb);
  w->n_nodes = w->n_bufs = 0;
  w->body_len = 0;
}

static int write_dictionary(sp_ipc_writer *w, size_t id, sp_buf *out, sp_error *err) {
  const struct ArrowSchema *v = w->dict_schemas[id]->dictionary;
  const struct ArrowArray *d = w->dict_arrays[id];
  plan_reset(w);
  size_t saved = w->next_dict;
  SP_TRY(plan(w, v, d, 0, d->length, err));
  w->next_dict = saved;
  fb_ref data = record_batch(w, d->length);
  fb_builder *b = &w->fb;
  fb_table_start(b);
  fb_add_i64(b, DB_ID, (int64_t)id);
  fb_add_ref(b, DB_DATA, data);
  return emit(w, SP_IPC_DICTIONARY, fb_table_end(b), w->body_len, out, err);
}

int sp_ipc_write_batch(sp_ipc_writer *w, const struct ArrowArray *batch, sp_buf *out, sp_error *err) {
  w->n_frames = 0;
  if (batch->n_children != w->schema.n_children || batch->length < 0)
    return sp_fail(err, SP_EINVAL, "arrow ipc: batch has %lld columns, its schema %lld",
                   (long long)batch->n_children, (long long)w->schema.n_children);
  /* First pass only to find the dictionaries this batch uses (they precede it in the stream). */
  if (w->n_dicts) {
    plan_reset(w);
    w->next_dict = 0;
    SP_TRY(plan_children(w, &w->schema, batch, batch->offset, batch->length, err));
    for (size_t i = 0; i < w->n_dicts; i++) SP_TRY(write_dictionary(w, i, out, err));
  }
  plan_reset(w);
  w->next_dict = 0;
  SP_TRY(plan_children(w, &w->schema, batch, batch->offset, batch->length, err));
  fb_ref rb = record_batch(w, batch->length);
  return emit(w, SP_IPC_RECORD_BATCH, rb, w->body_len, out, err);
}
