/* SPDX-License-Identifier: Apache-2.0
 *
 * The FlatBuffers builder and verifying reader of flatbuf.h. Little-endian hosts only (as the rest of spicec's
 * Arrow code): scalars are copied as they are in memory.
 */
#include <stdlib.h>
#include <string.h>

#include "arrow/flatbuf.h"

/* ---- Builder -------------------------------------------------------------------------------------------- */

void fb_reset(fb_builder *b) {
  b->used = 0;
  b->oom = false;
  b->n_fields = 0;
}

void fb_free(fb_builder *b) {
  free(b->buf);
  memset(b, 0, sizeof *b);
}

/* Makes room for n more bytes in front of the content; false (and oom set) if that fails. */
static bool reserve(fb_builder *b, size_t n) {
  if (b->oom) return false;
  if (b->cap - b->used >= n) return true;
  size_t cap = b->cap ? b->cap : 512;
  while (cap - b->used < n) {
    if (cap > ((size_t)1 << 30)) {
      b->oom = true;
      return false;
    }
    cap *= 2;
  }
  uint8_t *nb = malloc(cap);
  if (nb == NULL) {
    b->oom = true;
    return false;
  }
  if (b->used) memcpy(nb + cap - b->used, b->buf + b->cap - b->used, b->used);
  free(b->buf);
  b->buf = nb;
  b->cap = cap;
  return true;
}

static void push(fb_builder *b, const void *p, size_t n) {
  if (n == 0 || !reserve(b, n)) return; /* n == 0: p may be NULL (an empty vector) */
  b->used += n;
  memcpy(b->buf + b->cap - b->used, p, n);
}

static void push_zeros(fb_builder *b, size_t n) {
  if (!reserve(b, n)) return;
  b->used += n;
  memset(b->buf + b->cap - b->used, 0, n);
}

/* Pads so that after `extra` more bytes the content is a multiple of align (a power of two). */
static void prep(fb_builder *b, size_t align, size_t extra) {
  size_t pad = (align - ((b->used + extra) & (align - 1))) & (align - 1);
  if (pad) push_zeros(b, pad);
}

static void push_uoffset(fb_builder *b, fb_ref r) {
  prep(b, 4, 0);
  uint32_t off = (uint32_t)(b->used + 4 - r);
  push(b, &off, 4);
}

fb_ref fb_string(fb_builder *b, const char *s, size_t len) {
  prep(b, 4, len + 1);
  push_zeros(b, 1);
  push(b, s, len);
  uint32_t n = (uint32_t)len;
  push(b, &n, 4);
  return (fb_ref)b->used;
}

fb_ref fb_struct_vector(fb_builder *b, const void *elems, size_t n, size_t elem_size, size_t align) {
  prep(b, 4, n * elem_size);
  prep(b, align, n * elem_size);
  push(b, elems, n * elem_size);
  uint32_t len = (uint32_t)n;
  push(b, &len, 4);
  return (fb_ref)b->used;
}

fb_ref fb_ref_vector(fb_builder *b, const fb_ref *refs, size_t n) {
  prep(b, 4, n * 4);
  for (size_t i = n; i-- > 0;) push_uoffset(b, refs[i]);
  uint32_t len = (uint32_t)n;
  push(b, &len, 4);
  return (fb_ref)b->used;
}

void fb_table_start(fb_builder *b) {
  b->n_fields = 0;
  b->table_start = b->used;
}

static void add_field(fb_builder *b, int id, const void *v, size_t size) {
  if (b->n_fields >= FB_MAX_FIELDS) {
    b->oom = true; /* a bug in the caller; reported as a failure by fb_finish */
    return;
  }
  prep(b, size, 0);
  push(b, v, size);
  b->field_id[b->n_fields] = (uint16_t)id;
  b->field_at[b->n_fields++] = (uint32_t)b->used;
}

void fb_add_u8(fb_builder *b, int id, uint8_t v) { add_field(b, id, &v, 1); }
void fb_add_i16(fb_builder *b, int id, int16_t v) { add_field(b, id, &v, 2); }
void fb_add_i32(fb_builder *b, int id, int32_t v) { add_field(b, id, &v, 4); }
void fb_add_i64(fb_builder *b, int id, int64_t v) { add_field(b, id, &v, 8); }

void fb_add_ref(fb_builder *b, int id, fb_ref r) {
  if (b->n_fields >= FB_MAX_FIELDS) {
    b->oom = true;
    return;
  }
  push_uoffset(b, r);
  b->field_id[b->n_fields] = (uint16_t)id;
  b->field_at[b->n_fields++] = (uint32_t)b->used;
}

/* The vtable goes right before the table, so the table's soffset (table - vtable) is positive. */
fb_ref fb_table_end(fb_builder *b) {
  prep(b, 4, 0);
  int32_t placeholder = 0;
  push(b, &placeholder, 4);
  size_t table = b->used;
  int n_ids = 0;
  for (int i = 0; i < b->n_fields; i++)
    if (b->field_id[i] + 1 > n_ids) n_ids = b->field_id[i] + 1;
  uint16_t vt[2 + FB_MAX_FIELDS + 16] = {0};
  if (n_ids > FB_MAX_FIELDS + 16) b->oom = true;
  if (b->oom) return 0;
  vt[0] = (uint16_t)(4 + 2 * n_ids);
  vt[1] = (uint16_t)(table - b->table_start);
  for (int i = 0; i < b->n_fields; i++) vt[2 + b->field_id[i]] = (uint16_t)(table - b->field_at[i]);
  push(b, vt, vt[0]);
  if (b->oom) return 0;
  int32_t soff = (int32_t)(b->used - table);
  memcpy(b->buf + b->cap - table, &soff, 4);
  b->n_fields = 0;
  return (fb_ref)table;
}

int fb_finish(fb_builder *b, fb_ref root, const uint8_t **data, size_t *len, sp_error *err) {
  prep(b, 8, 4);
  push_uoffset(b, root);
  if (b->oom) return sp_fail(err, SP_ENOMEM, "out of memory building an arrow ipc message");
  *data = b->buf + b->cap - b->used;
  *len = b->used;
  return SP_OK;
}

/* ---- Reader --------------------------------------------------------------------------------------------- */

static int bad(sp_error *err, const char *what) {
  return sp_fail(err, SP_EINVAL, "malformed arrow ipc metadata: %s", what);
}

static uint32_t ld_u32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* Checks a table at pos and its vtable. */
static int table_at(const fb_buf *b, size_t pos, fb_table *out, sp_error *err) {
  if (pos % 4 != 0 || pos > b->len || b->len - pos < 4) return bad(err, "table out of bounds");
  int32_t soff;
  memcpy(&soff, b->p + pos, 4);
  int64_t vt = (int64_t)pos - soff;
  if (vt < 0 || vt % 2 != 0 || (uint64_t)vt > b->len || b->len - (size_t)vt < 4) return bad(err, "vtable out of bounds");
  uint16_t vs, ts;
  memcpy(&vs, b->p + vt, 2);
  memcpy(&ts, b->p + vt + 2, 2);
  if (vs < 4 || vs % 2 != 0 || b->len - (size_t)vt < vs) return bad(err, "bad vtable size");
  if (ts < 4 || b->len - pos < ts) return bad(err, "bad table size");
  out->b = b;
  out->pos = pos;
  out->vt = (size_t)vt;
  out->vt_size = vs;
  out->tbl_size = ts;
  return SP_OK;
}

int fb_root(const fb_buf *b, fb_table *out, sp_error *err) {
  if (b->len < 8) return bad(err, "buffer too short");
  return table_at(b, ld_u32(b->p), out, err);
}

/* Offset of field id inside the table (0 = absent), checked to hold `size` bytes aligned to size. */
static int field(const fb_table *t, int id, size_t size, size_t *at, sp_error *err) {
  *at = 0;
  if ((size_t)(4 + 2 * id) + 2 > t->vt_size) return SP_OK;
  uint16_t off;
  memcpy(&off, t->b->p + t->vt + 4 + 2 * id, 2);
  if (off == 0) return SP_OK;
  if (off < 4 || (size_t)off + size > t->tbl_size) return bad(err, "field out of its table");
  if ((t->pos + off) % size != 0) return bad(err, "misaligned field");
  *at = t->pos + off;
  return SP_OK;
}

bool fb_has(const fb_table *t, int id) {
  if (t->b == NULL || (size_t)(4 + 2 * id) + 2 > t->vt_size) return false;
  uint16_t off;
  memcpy(&off, t->b->p + t->vt + 4 + 2 * id, 2);
  return off != 0;
}

#define FB_SCALAR(name, type)                                                                          \
  int name(const fb_table *t, int id, type dflt, type *out, sp_error *err) {                            \
    size_t at;                                                                                          \
    SP_TRY(field(t, id, sizeof(type), &at, err));                                                       \
    if (at == 0) *out = dflt;                                                                           \
    else memcpy(out, t->b->p + at, sizeof(type));                                                       \
    return SP_OK;                                                                                       \
  }
FB_SCALAR(fb_u8, uint8_t)
FB_SCALAR(fb_i16, int16_t)
FB_SCALAR(fb_i32, int32_t)
FB_SCALAR(fb_i64, int64_t)

/* Follows the uoffset stored at `at`; *target is where it points, inside the buffer. */
static int follow(const fb_buf *b, size_t at, size_t *target, sp_error *err) {
  uint32_t off = ld_u32(b->p + at);
  if (off == 0 || off > b->len - at) return bad(err, "offset out of bounds");
  *target = at + off;
  return SP_OK;
}

int fb_subtable(const fb_table *t, int id, fb_table *out, sp_error *err) {
  size_t at, target = 0;
  memset(out, 0, sizeof *out);
  SP_TRY(field(t, id, 4, &at, err));
  if (at == 0) return SP_OK;
  SP_TRY(follow(t->b, at, &target, err));
  return table_at(t->b, target, out, err);
}

static int vector_at(const fb_buf *b, size_t pos, size_t elem_size, size_t align, fb_vec *out, sp_error *err) {
  if (pos % 4 != 0 || b->len - pos < 4) return bad(err, "vector out of bounds");
  uint32_t n = ld_u32(b->p + pos);
  if ((uint64_t)n * elem_size > b->len - pos - 4) return bad(err, "vector longer than the buffer");
  if ((pos + 4) % align != 0) return bad(err, "misaligned vector");
  out->b = b;
  out->pos = pos + 4;
  out->n = n;
  return SP_OK;
}

int fb_vector(const fb_table *t, int id, size_t elem_size, size_t align, fb_vec *out, sp_error *err) {
  size_t at, target = 0;
  memset(out, 0, sizeof *out);
  SP_TRY(field(t, id, 4, &at, err));
  if (at == 0) return SP_OK;
  SP_TRY(follow(t->b, at, &target, err));
  return vector_at(t->b, target, elem_size, align, out, err);
}

/* A string is a byte vector followed by a NUL (checked, as the official verifier does). */
static int string_at(const fb_buf *b, size_t pos, const char **s, size_t *len, sp_error *err) {
  fb_vec v = {0};
  SP_TRY(vector_at(b, pos, 1, 1, &v, err));
  if (b->len - v.pos <= v.n || b->p[v.pos + v.n] != 0) return bad(err, "string without terminator");
  *s = (const char *)b->p + v.pos;
  *len = v.n;
  return SP_OK;
}

int fb_str(const fb_table *t, int id, const char **s, size_t *len, sp_error *err) {
  size_t at, target = 0;
  *s = NULL;
  *len = 0;
  SP_TRY(field(t, id, 4, &at, err));
  if (at == 0) return SP_OK;
  SP_TRY(follow(t->b, at, &target, err));
  return string_at(t->b, target, s, len, err);
}

int fb_vec_table(const fb_vec *v, uint32_t i, fb_table *out, sp_error *err) {
  size_t target = 0;
  if (i >= v->n) return bad(err, "vector index out of range");
  SP_TRY(follow(v->b, v->pos + 4 * (size_t)i, &target, err));
  return table_at(v->b, target, out, err);
}

int fb_vec_str(const fb_vec *v, uint32_t i, const char **s, size_t *len, sp_error *err) {
  size_t target = 0;
  if (i >= v->n) return bad(err, "vector index out of range");
  SP_TRY(follow(v->b, v->pos + 4 * (size_t)i, &target, err));
  return string_at(v->b, target, s, len, err);
}
