/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "spice/sqltext.h"

static int quote(char *buf, size_t n, const char *s, char q) {
  size_t o = 0;
  if (n < 3) return -1;
  buf[o++] = q;
  for (; *s; s++) {
    if (o + (*s == q ? 2 : 1) + 2 > n) {
      buf[0] = q, buf[1] = q, buf[2] = '\0';
      return -1;
    }
    if (*s == q) buf[o++] = q;
    buf[o++] = *s;
  }
  buf[o++] = q;
  buf[o] = '\0';
  return 0;
}

int sp_sql_literal(char *buf, size_t n, const char *s) { return quote(buf, n, s, '\''); }
int sp_sql_ident(char *buf, size_t n, const char *s) { return quote(buf, n, s, '"'); }

char *sp_sql_literal_dup(const char *s) {
  size_t n = 2 * strlen(s) + 3;
  char *buf = malloc(n);
  if (buf) quote(buf, n, s, '\'');
  return buf;
}
