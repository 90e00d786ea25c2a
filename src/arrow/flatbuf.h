/* SPDX-License-Identifier: Apache-2.0
 *
 * A minimal FlatBuffers builder and verifying reader, just enough for Arrow IPC metadata (Message.fbs,
 * Schema.fbs). No code generation and no library: tables are written and read by field id.
 *
 * Builder: writes back to front, like the official one. Children (strings, vectors, sub-tables) must be finished
 * before the table that refers to them is started; references are "refs" (bytes used when the object was
 * finished). Every scalar is aligned to its size from the start of the finished buffer, which is padded to 8.
 *
 * Reader: every accessor checks bounds and alignment against the buffer before it reads, so a malformed buffer
 * gives SP_EINVAL, never a read outside it. Callers bound recursion themselves (depth and table counts).
 */
#ifndef SPICE_ARROW_FLATBUF_H
#define SPICE_ARROW_FLATBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "spice/error.h"

typedef uint32_t fb_ref;

/* ---- Builder -------------------------------------------------------------------------------------------- */

#define FB_MAX_FIELDS 16

typedef struct fb_builder {
  uint8_t *buf;      /* content is buf[cap - used, cap) */
  size_t cap, used;
  bool oom;          /* sticky: every later call is a no-op, fb_finish reports it */
  size_t table_start; /* used when the open table started */
  int n_fields;
  uint16_t field_id[FB_MAX_FIELDS];
  uint32_t field_at[FB_MAX_FIELDS]; /* used after the field was pushed */
} fb_builder;

/* Empties the builder; keeps its storage for the next message. */
void fb_reset(fb_builder *b);
void fb_free(fb_builder *b);

fb_ref fb_string(fb_builder *b, const char *s, size_t len);
/* A vector of n structs of elem_size bytes each, elements aligned to `align`. */
fb_ref fb_struct_vector(fb_builder *b, const void *elems, size_t n, size_t elem_size, size_t align);
/* A vector of references (tables or strings). */
fb_ref fb_ref_vector(fb_builder *b, const fb_ref *refs, size_t n);

void fb_table_start(fb_builder *b);
void fb_add_u8(fb_builder *b, int id, uint8_t v);
void fb_add_i16(fb_builder *b, int id, int16_t v);
void fb_add_i32(fb_builder *b, int id, int32_t v);
void fb_add_i64(fb_builder *b, int id, int64_t v);
void fb_add_ref(fb_builder *b, int id, fb_ref r);
fb_ref fb_table_end(fb_builder *b);

/* Writes the root offset and pads to 8. On SP_OK, *data and *len are the finished buffer (inside the builder, valid
 * until the next call on it). */
int fb_finish(fb_builder *b, fb_ref root, const uint8_t **data, size_t *len, sp_error *err);

/* ---- Reader --------------------------------------------------------------------------------------------- */

typedef struct fb_buf {
  const uint8_t *p;
  size_t len;
} fb_buf;

typedef struct fb_table {
  const fb_buf *b;
  size_t pos;       /* table start */
  size_t vt;        /* vtable start */
  uint16_t vt_size, tbl_size;
} fb_table;

typedef struct fb_vec {
  const fb_buf *b;
  size_t pos; /* element 0 */
  uint32_t n;
} fb_vec;

int fb_root(const fb_buf *b, fb_table *out, sp_error *err);
bool fb_has(const fb_table *t, int id);
int fb_u8(const fb_table *t, int id, uint8_t dflt, uint8_t *out, sp_error *err);
int fb_i16(const fb_table *t, int id, int16_t dflt, int16_t *out, sp_error *err);
int fb_i32(const fb_table *t, int id, int32_t dflt, int32_t *out, sp_error *err);
int fb_i64(const fb_table *t, int id, int64_t dflt, int64_t *out, sp_error *err);
/* Absent table: SP_OK with out->b == NULL. */
int fb_subtable(const fb_table *t, int id, fb_table *out, sp_error *err);
/* Absent vector: SP_OK with an empty vector. */
int fb_vector(const fb_table *t, int id, size_t elem_size, size_t align, fb_vec *out, sp_error *err);
/* Absent string: SP_OK with *s = NULL, *len = 0. The bytes are not NUL-terminated for the caller's sake. */
int fb_str(const fb_table *t, int id, const char **s, size_t *len, sp_error *err);
/* Element i of a vector of tables / of strings. */
int fb_vec_table(const fb_vec *v, uint32_t i, fb_table *out, sp_error *err);
int fb_vec_str(const fb_vec *v, uint32_t i, const char **s, size_t *len, sp_error *err);
/* Little-endian loads (the buffer is checked already). */
static inline int64_t fb_load_i64(const uint8_t *p) {
  int64_t v;
  memcpy(&v, p, 8);
  return v;
}

#endif
