/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static int buf_reserve(sp_cli_buf *b, size_t extra, sp_error *err) {
  if (extra >= SIZE_MAX - b->len - 1) return sp_fail(err, SP_ENOMEM, "buffer too large");
  size_t need = b->len + extra + 1; /* keep room for the NUL */
  if (need <= b->cap) return SP_OK;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  char *p = realloc(b->data, cap);
  if (p == NULL) return sp_fail(err, SP_ENOMEM, "out of memory growing a buffer to %zu bytes", cap);
  b->data = p;
  b->cap = cap;
  return SP_OK;
}

int sp_cli_buf_append(sp_cli_buf *b, const void *data, size_t len, sp_error *err) {
  SP_TRY(buf_reserve(b, len, err));
  if (len > 0) memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return SP_OK;
}

int sp_cli_buf_putc(sp_cli_buf *b, char c, sp_error *err) { return sp_cli_buf_append(b, &c, 1, err); }

void sp_cli_buf_consume(sp_cli_buf *b, size_t n) {
  if (n >= b->len) n = b->len;
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
  if (b->data != NULL) b->data[b->len] = '\0';
}

void sp_cli_buf_reset(sp_cli_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
