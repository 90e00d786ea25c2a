/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
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

char *sp_sql_select(const char *const *exprs, size_t n, const char *relation, const char *where, int64_t limit) {
  size_t cap = strlen(relation) + 64 + (where ? strlen(where) : 0);
  for (size_t i = 0; i < n; i++) cap += strlen(exprs[i]) + 2;
  char *sql = malloc(cap);
  if (sql == NULL) return NULL;
  size_t o = (size_t)snprintf(sql, cap, "SELECT ");
  for (size_t i = 0; i < n; i++) o += (size_t)snprintf(sql + o, cap - o, "%s%s", i ? ", " : "", exprs[i]);
  o += (size_t)snprintf(sql + o, cap - o, " FROM %s", relation);
  if (where && *where) o += (size_t)snprintf(sql + o, cap - o, " WHERE %s", where);
  if (limit >= 0) snprintf(sql + o, cap - o, " LIMIT %lld", (long long)limit);
  return sql;
}
