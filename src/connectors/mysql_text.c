/* SPDX-License-Identifier: Apache-2.0
 *
 * MySQL text: connection URLs and text-protocol values (see mysql_text.h).
 */
#include <stdlib.h>
#include <string.h>

#include "connectors/mysql_text.h"

__extension__ typedef unsigned __int128 myt_u128;

/* ---- URL -------------------------------------------------------------------------------------------------- */

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* A percent-decoded copy of s[0..n), or NULL (bad escape, an encoded NUL, or no memory). */
static char *decode(const char *s, size_t n) {
  char *d = malloc(n + 1);
  size_t o = 0;
  if (d == NULL) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '%') {
      d[o++] = s[i];
      continue;
    }
    int a = i + 2 < n ? hexval(s[i + 1]) : -1, b = i + 2 < n ? hexval(s[i + 2]) : -1;
    if (a < 0 || b < 0 || (a | b) == 0) {
      free(d);
      return NULL;
    }
    d[o++] = (char)(a << 4 | b);
    i += 2;
  }
  d[o] = '\0';
  return d;
}

void myt_url_free(myt_url *u) {
  if (u == NULL) return;
  free(u->user);
  free(u->pass);
  free(u->host);
  free(u->db);
  memset(u, 0, sizeof *u);
}

static int bad(myt_url *u, sp_error *err, const char *what) {
  myt_url_free(u);
  return sp_fail(err, SP_EINVAL, "mysql_connection_string is not a valid mysql:// URL: %s", what);
}

/* Sets *dst to the decoded s[0..n) unless empty. */
static int part(char **dst, const char *s, size_t n) {
  if (n == 0) return 0;
  *dst = decode(s, n);
  return *dst ? 0 : -1;
}

static int parse_port(const char *s, size_t n, int *port) {
  int v = 0;
  if (n == 0 || n > 5) return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  if (v < 1 || v > 65535) return -1;
  *port = v;
  return 0;
}

int myt_parse_url(const char *url, myt_url *out, sp_error *err) {
  memset(out, 0, sizeof *out);
  if (url == NULL || strncmp(url, "mysql://", 8) != 0) return bad(out, err, "it must start with mysql://");
  const char *s = url + 8, *end = s + strcspn(s, "/?#");
  const char *at = NULL;
  for (const char *p = s; p < end; p++)
    if (*p == '@') at = p; /* the last @: a password may hold an unencoded one */
  if (at) {
    const char *colon = memchr(s, ':', (size_t)(at - s));
    size_t ulen = colon ? (size_t)(colon - s) : (size_t)(at - s);
    if (part(&out->user, s, ulen) != 0) return bad(out, err, "bad escape in the user name");
    if (colon && part(&out->pass, colon + 1, (size_t)(at - colon - 1)) != 0) return bad(out, err, "bad escape in the password");
    s = at + 1;
  }
  const char *hend = end, *colon = NULL;
  if (*s == '[') { /* [ipv6]:port */
    const char *rb = memchr(s, ']', (size_t)(end - s));
    if (rb == NULL) return bad(out, err, "unclosed [ in the host");
    if (part(&out->host, s + 1, (size_t)(rb - s - 1)) != 0) return bad(out, err, "bad host");
    if (rb + 1 < end && rb[1] != ':') return bad(out, err, "text after the host");
    colon = rb + 1 < end ? rb + 1 : NULL;
  } else {
    colon = memchr(s, ':', (size_t)(end - s));
    if (colon) hend = colon;
    if (part(&out->host, s, (size_t)(hend - s)) != 0) return bad(out, err, "bad escape in the host");
  }
  if (colon && parse_port(colon + 1, (size_t)(end - colon - 1), &out->port) != 0)
    return bad(out, err, "the port must be a number from 1 to 65535");
  if (*end == '/') {
    const char *d = end + 1;
    if (part(&out->db, d, strcspn(d, "?#")) != 0) return bad(out, err, "bad escape in the database name");
  }
  return SP_OK;
}

/* ---- Values ----------------------------------------------------------------------------------------------- */

/* Reads exactly `w` digits at s[*i]. */
static int digits(const char *s, size_t n, size_t *i, int w, int64_t *v) {
  int64_t x = 0;
  if (*i + (size_t)w > n) return -1;
  for (int k = 0; k < w; k++) {
    char c = s[*i + (size_t)k];
    if (c < '0' || c > '9') return -1;
    x = x * 10 + (c - '0');
  }
  *i += (size_t)w;
  *v = x;
  return 0;
}

static int expect(const char *s, size_t n, size_t *i, char c) {
  if (*i >= n || s[*i] != c) return -1;
  (*i)++;
  return 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400, yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1, doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int ymd(const char *s, size_t n, size_t *i, int64_t *days) {
  int64_t y, m, d;
  if (digits(s, n, i, 4, &y) || expect(s, n, i, '-') || digits(s, n, i, 2, &m) || expect(s, n, i, '-') ||
      digits(s, n, i, 2, &d))
    return -1;
  if (y == 0 && m == 0 && d == 0) return 1;
  if (m < 1 || m > 12 || d < 1 || d > 31) return -1;
  *days = days_from_civil(y, m, d);
  return 0;
}

/* ".ffffff" (1..6 digits) at s[*i], if any, as microseconds. */
static int fraction(const char *s, size_t n, size_t *i, int64_t *us) {
  *us = 0;
  if (*i >= n || s[*i] != '.') return 0;
  (*i)++;
  int k = 0;
  for (; *i < n && k < 6 && s[*i] >= '0' && s[*i] <= '9'; k++, (*i)++) *us = *us * 10 + (s[*i] - '0');
  if (k == 0) return -1;
  for (; k < 6; k++) *us *= 10;
  return 0;
}

int myt_parse_date(const char *s, size_t n, int32_t *days) {
  size_t i = 0;
  int64_t d = 0;
  int r = ymd(s, n, &i, &d);
  if (r != 0) return r;
  if (i != n) return -1;
  *days = (int32_t)d;
  return 0;
}

int myt_parse_datetime(const char *s, size_t n, int64_t *us) {
  size_t i = 0;
  int64_t d = 0, h = 0, mi = 0, se = 0, f = 0;
  int r = ymd(s, n, &i, &d);
  if (r < 0) return r;
  if (i < n && (expect(s, n, &i, ' ') || digits(s, n, &i, 2, &h) || expect(s, n, &i, ':') || digits(s, n, &i, 2, &mi) ||
                expect(s, n, &i, ':') || digits(s, n, &i, 2, &se) || fraction(s, n, &i, &f)))
    return -1;
  if (i != n || h > 23 || mi > 59 || se > 59) return -1;
  if (r == 1) return 1;
  *us = ((d * 24 + h) * 60 + mi) * 60 * INT64_C(1000000) + se * INT64_C(1000000) + f;
  return 0;
}

int myt_parse_time(const char *s, size_t n, int64_t *us) {
  size_t i = 0;
  int neg = n > 0 && s[0] == '-';
  int64_t h = 0, mi, se, f;
  i += (size_t)neg;
  size_t start = i;
  while (i < n && i - start < 4 && s[i] >= '0' && s[i] <= '9') h = h * 10 + (s[i++] - '0');
  if (i == start || expect(s, n, &i, ':') || digits(s, n, &i, 2, &mi) || expect(s, n, &i, ':') ||
      digits(s, n, &i, 2, &se) || fraction(s, n, &i, &f))
    return -1;
  if (i != n || mi > 59 || se > 59) return -1;
  int64_t v = ((h * 60 + mi) * 60 + se) * INT64_C(1000000) + f;
  *us = neg ? -v : v;
  return 0;
}

int myt_parse_decimal(const char *s, size_t n, int precision, int scale, uint64_t *lo, int64_t *hi) {
  size_t i = 0;
  int neg = 0, nd = 0, fd = 0;
  myt_u128 acc = 0;
  if (precision < 1 || precision > 38 || scale < 0 || scale > precision) return -1;
  if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    acc = acc * 10 + (unsigned)(s[i] - '0');
    if (acc != 0 && ++nd > precision - scale) return -1;
  }
  int any = i > (size_t)(n > 0 && (s[0] == '-' || s[0] == '+'));
  if (i < n && s[i] == '.') {
    for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, fd++) {
      if (fd >= scale) return -1;
      acc = acc * 10 + (unsigned)(s[i] - '0');
      any = 1;
    }
  }
  if (!any || i != n) return -1;
  for (; fd < scale; fd++) acc *= 10;
  myt_u128 v = neg ? (myt_u128)0 - acc : acc;
  *lo = (uint64_t)v;
  *hi = (int64_t)(uint64_t)(v >> 64);
  return 0;
}
