/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "spice/buf.h"

char *sp_buf_grow(sp_buf *b, size_t extra) {
  size_t limit = b->limit ? b->limit : SP_BUF_DEFAULT_LIMIT;
  if (extra > limit || b->len > limit - extra) return NULL;
  size_t need = b->len + extra;
  if (need > b->cap || b->data == NULL) { /* an empty buffer gets memory even for 0 bytes: no NULL + 0 */
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need) cap = cap > limit / 2 ? limit : cap * 2;
    char *p = realloc(b->data, cap);
    if (p == NULL) return NULL;
    b->data = p;
    b->cap = cap;
  }
  return b->data + b->len;
}

int sp_buf_append_str(sp_buf *b, const char *s) { return sp_buf_append(b, s, strlen(s)); }

const char *sp_buf_cstr(sp_buf *b) {
  char *p = sp_buf_reserve(b, 1);
  if (p == NULL) return NULL;
  *p = '\0';
  return b->data;
}

void sp_buf_free(sp_buf *b) {
  if (b == NULL) return;
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

