/* SPDX-License-Identifier: Apache-2.0
 *
 * A growable byte buffer, reused across writes (result formats, Arrow IPC messages): on these machines the
 * first touch of fresh memory costs far more than copying into pages already mapped.
 */
#ifndef SPICE_BUF_H
#define SPICE_BUF_H

#include <stddef.h>
#include <string.h>

#include "spice/error.h"

/* A byte buffer. Zero-initialised is empty; `limit` caps the capacity (0 = SP_BUF_DEFAULT_LIMIT). The data is
 * not NUL-terminated unless a caller asks with sp_buf_cstr. */
typedef struct sp_buf {
  char *data;
  size_t len, cap;
  size_t limit;
} sp_buf;

#define SP_BUF_DEFAULT_LIMIT ((size_t)1 << 32) /* 4 GiB: far above anything one batch should produce */

/* Slow path of sp_buf_reserve: grows the storage (doubling, up to the limit). */
char *sp_buf_grow(sp_buf *b, size_t extra);

/* Makes room for `extra` more bytes; returns a pointer to data + len (not advanced), or NULL when the
 * allocation fails or the limit would be passed. Inline: it runs once per value in the writers. */
static inline char *sp_buf_reserve(sp_buf *b, size_t extra) {
  return b->data != NULL && extra <= b->cap - b->len ? b->data + b->len : sp_buf_grow(b, extra);
}

/* Appends n bytes. Returns SP_OK or SP_ENOMEM. */
static inline int sp_buf_append(sp_buf *b, const void *p, size_t n) {
  char *dst = sp_buf_reserve(b, n);
  if (dst == NULL) return SP_ENOMEM;
  if (n) memcpy(dst, p, n);
  b->len += n;
  return SP_OK;
}
int sp_buf_append_str(sp_buf *b, const char *s);
/* Terminates the contents with a NUL that is not counted in len; returns data, or NULL on ENOMEM. */
const char *sp_buf_cstr(sp_buf *b);
/* Frees the storage; the buffer is empty (and reusable) afterwards. NULL-safe. */
void sp_buf_free(sp_buf *b);

#endif
