/* SPDX-License-Identifier: Apache-2.0
 *
 * Scalar text writers for the result formats: integers without printf, shortest round-trip floats, exact
 * decimals, chrono-style dates and times, DuckDB-style intervals, JSON string escaping with UTF-8 repair.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/format_value.h"

__extension__ typedef unsigned __int128 sp_u128;
__extension__ typedef __int128 sp_i128;

/* ---- Integers -------------------------------------------------------------------------------------------- */

static const char k_digits2[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                   "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                   "8081828384858687888990919293949596979899";

/* Writes v's digits so that they end just before `end`; returns the start. */
static char *u64_backward(char *end, uint64_t v) {
  while (v >= 100) {
    unsigned r = (unsigned)(v % 100);
    v /= 100;
    end -= 2;
    memcpy(end, k_digits2 + 2 * r, 2);
  }
  if (v >= 10) {
    end -= 2;
    memcpy(end, k_digits2 + 2 * v, 2);
  } else {
    *--end = (char)('0' + v);
  }
  return end;
}

static inline size_t count_digits(uint64_t v) {
  size_t n = 1;
  for (;;) {
    if (v < 10) return n;
    if (v < 100) return n + 1;
    if (v < 1000) return n + 2;
    if (v < 10000) return n + 3;
    v /= 10000;
    n += 4;
  }
}

/* Digits are written straight into place (no temporary and no variable-length memcpy: a libc call per
 * number costs more than the digits). */
size_t sp__fmt_u64(char *p, uint64_t v) {
  size_t n = count_digits(v);
  u64_backward(p + n, v);
  return n;
}

size_t sp__fmt_i64(char *p, int64_t v) {
  if (v >= 0) return sp__fmt_u64(p, (uint64_t)v);
  *p = '-';
  return 1 + sp__fmt_u64(p + 1, (uint64_t)0 - (uint64_t)v);
}

/* Digits of a 128-bit magnitude, ending before `end`; returns the start. */
static char *u128_backward(char *end, sp_u128 v) {
  const uint64_t e19 = 10000000000000000000ull;
  while (v > (sp_u128)UINT64_MAX) {
    uint64_t chunk = (uint64_t)(v % e19);
    v /= e19;
    char *start = u64_backward(end, chunk);
    while (end - start < 19) *--start = '0';
    end = start;
  }
  return u64_backward(end, (uint64_t)v);
}

size_t sp__fmt_u128(char *p, const uint8_t le[16]) {
  uint64_t lo, hi;
  memcpy(&lo, le, 8);
  memcpy(&hi, le + 8, 8);
  char tmp[48];
  char *s = u128_backward(tmp + sizeof tmp, ((sp_u128)hi << 64) | lo);
  size_t n = (size_t)(tmp + sizeof tmp - s);
  memcpy(p, s, n);
  return n;
}

/* ---- Floats ---------------------------------------------------------------------------------------------- */

static const double k_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* m * 10^-k as plain decimal text, keeping ".0" for integers. */
static size_t emit_scaled(char *p, bool neg, uint64_t m, int k) {
  char tmp[24];
  char *s = u64_backward(tmp + sizeof tmp, m);
  int nd = (int)(tmp + sizeof tmp - s);
  char *q = p;
  if (neg) *q++ = '-';
  if (k == 0) {
    memcpy(q, s, (size_t)nd);
    q += nd;
    memcpy(q, ".0", 2);
    return (size_t)(q + 2 - p);
  }
  if (nd > k) {
    memcpy(q, s, (size_t)(nd - k));
    q += nd - k;
    *q++ = '.';
    memcpy(q, s + nd - k, (size_t)k);
    return (size_t)(q + k - p);
  }
  *q++ = '0';
  *q++ = '.';
  memset(q, '0', (size_t)(k - nd));
  q += k - nd;
  memcpy(q, s, (size_t)nd);
  return (size_t)(q + nd - p);
}

/* "d.ddd" with decimal exponent 0 <= exp < 16 as plain decimal text ("6.55e+04" → "65500.0"). */
static size_t expand_exp(char *p, const char *g, const char *e, int exp) {
  char digits[40];
  size_t nd = 0;
  size_t n = 0;
  for (const char *q = g; q < e; q++) {
    if (*q == '-') p[n++] = '-';
    else if (*q != '.') digits[nd++] = *q;
  }
  size_t whole = (size_t)exp + 1;
  for (size_t k = 0; k < whole; k++) p[n++] = k < nd ? digits[k] : '0';
  p[n++] = '.';
  if (nd <= whole) p[n++] = '0';
  for (size_t k = whole; k < nd; k++) p[n++] = digits[k];
  return n;
}

/* Rewrites printf %g output: exponent without '+' or leading zeros, ".0" added to bare integers; positive
 * exponents below 16 written out, as for the fast path. */
static size_t normalise_g(char *p, const char *g) {
  const char *e = strchr(g, 'e');
  if (e != NULL && e[1] == '+' && atoi(e + 2) < 16) return expand_exp(p, g, e, atoi(e + 2));
  size_t mant = e ? (size_t)(e - g) : strlen(g);
  memcpy(p, g, mant);
  size_t n = mant;
  if (e == NULL) {
    if (memchr(g, '.', mant) == NULL) {
      memcpy(p + n, ".0", 2);
      n += 2;
    }
    return n;
  }
  p[n++] = 'e';
  e++;
  if (*e == '-') p[n++] = *e++;
  else if (*e == '+') e++;
  while (*e == '0' && e[1] != '\0') e++;
  size_t el = strlen(e);
  memcpy(p + n, e, el);
  return n + el;
}

size_t sp__fmt_double(char *p, double v) {
  if (v == 0) {
    if (signbit(v)) {
      memcpy(p, "-0.0", 4);
      return 4;
    }
    memcpy(p, "0.0", 3);
    return 3;
  }
  double a = fabs(v);
  /* Fast path: the smallest k for which round(a * 10^k) / 10^k reads back as a. m and 10^k are exact
   * doubles, so the division is correctly rounded: equal to what strtod makes of the text. */
  if (a >= 1e-5 && a < 1e15) {
    for (int k = 0; k <= 17; k++) {
      double s = a * k_pow10[k];
      if (s >= 9007199254740992.0) break;
      double m = nearbyint(s);
      if (m / k_pow10[k] == a) return emit_scaled(p, v < 0, (uint64_t)m, k);
    }
  }
  /* Rare (tiny, huge, or 16-17 significant digits): the fewest %g digits that read back. */
  char g[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(g, sizeof g, "%.*g", prec, v);
    if (prec == 17 || strtod(g, NULL) == v) break;
  }
  return normalise_g(p, g);
}

size_t sp__fmt_float(char *p, float v) {
  if (v == 0) return sp__fmt_double(p, (double)v);
  char g[40];
  for (int prec = 1; prec <= 9; prec++) {
    snprintf(g, sizeof g, "%.*g", prec, (double)v);
    if (prec == 9 || strtof(g, NULL) == v) break;
  }
  return normalise_g(p, g);
}

size_t sp__fmt_half(char *p, uint16_t h) {
  float v = sp__half_to_float(h);
  uint16_t mag = h & 0x7fff;
  if (mag == 0) return sp__fmt_double(p, (double)v);
  /* The shortest decimal that lies strictly between the midpoints to the neighbouring halves. */
  double a = fabs((double)v);
  double prev = mag > 1 ? (double)sp__half_to_float((uint16_t)(mag - 1)) : 0.0;
  double next = mag < 0x7bff ? (double)sp__half_to_float((uint16_t)(mag + 1)) : 65536.0;
  double lo = (a + prev) / 2, hi = (a + next) / 2;
  char g[40];
  for (int prec = 1; prec <= 5; prec++) {
    snprintf(g, sizeof g, "%.*g", prec, a);
    double d = strtod(g, NULL);
    if (d > lo && d < hi) break;
  }
  char *q = p;
  if (h & 0x8000) *q++ = '-';
  return (size_t)(q - p) + normalise_g(q, g);
}

float sp__half_to_float(uint16_t h) {
  int sign = h >> 15, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
  float f;
  if (exp == 0) f = ldexpf((float)frac, -24);
  else if (exp == 31) f = frac ? NAN : INFINITY;
  else f = ldexpf((float)(frac | 0x400), exp - 25);
  return sign ? -f : f;
}

/* ---- Decimals -------------------------------------------------------------------------------------------- */

/* Magnitude digits of a 256-bit two's-complement value, ending before `end`. */
static char *u256_backward(char *end, const uint8_t le[32], bool *neg) {
  uint32_t limb[8];
  memcpy(limb, le, 32);
  *neg = (limb[7] >> 31) != 0;
  if (*neg) { /* negate: invert and add one */
    uint64_t carry = 1;
    for (int i = 0; i < 8; i++) {
      uint64_t x = (uint64_t)(uint32_t)~limb[i] + carry;
      limb[i] = (uint32_t)x;
      carry = x >> 32;
    }
  }
  char *s = end;
  for (;;) {
    uint64_t rem = 0;
    bool zero = true;
    for (int i = 7; i >= 0; i--) {
      uint64_t cur = (rem << 32) | limb[i];
      limb[i] = (uint32_t)(cur / 1000000000u);
      rem = cur % 1000000000u;
      if (limb[i]) zero = false;
    }
    char *start = u64_backward(s, rem);
    if (zero) return start;
    while (s - start < 9) *--start = '0';
    s = start;
  }
}

size_t sp__fmt_decimal(char *p, const uint8_t *le, int bytes, int scale) {
  char tmp[96];
  char *end = tmp + sizeof tmp, *s;
  bool neg;
  if (bytes == 32) {
    s = u256_backward(end, le, &neg);
  } else {
    sp_i128 v;
    if (bytes == 4) {
      int32_t x;
      memcpy(&x, le, 4);
      v = x;
    } else if (bytes == 8) {
      int64_t x;
      memcpy(&x, le, 8);
      v = x;
    } else {
      uint64_t lo, hi;
      memcpy(&lo, le, 8);
      memcpy(&hi, le + 8, 8);
      v = (sp_i128)(((sp_u128)hi << 64) | lo);
    }
    neg = v < 0;
    s = u128_backward(end, neg ? (sp_u128)0 - (sp_u128)v : (sp_u128)v);
  }
  int nd = (int)(end - s);
  char *q = p;
  if (neg) *q++ = '-';
  if (scale <= 0) {
    memcpy(q, s, (size_t)nd);
    q += nd;
    if (!(nd == 1 && s[0] == '0')) {
      memset(q, '0', (size_t)-scale);
      q += -scale;
    }
  } else if (nd > scale) {
    memcpy(q, s, (size_t)(nd - scale));
    q += nd - scale;
    *q++ = '.';
    memcpy(q, s + nd - scale, (size_t)scale);
    q += scale;
  } else {
    *q++ = '0';
    *q++ = '.';
    memset(q, '0', (size_t)(scale - nd));
    q += scale - nd;
    memcpy(q, s, (size_t)nd);
    q += nd;
  }
  return (size_t)(q - p);
}

/* ---- Dates and times ------------------------------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static char *put2(char *q, unsigned v) {
  memcpy(q, k_digits2 + 2 * (v % 100), 2);
  return q + 2;
}

size_t sp__fmt_date(char *p, int64_t days) {
  /* Howard Hinnant's civil_from_days. */
  int64_t z = days + 719468;
  int64_t era = floor_div(z, 146097);
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  unsigned d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
  unsigned m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
  int64_t y = yoe + era * 400 + (m <= 2);
  char *q = p;
  if (y >= 0 && y <= 9999) {
    q = put2(q, (unsigned)(y / 100));
    q = put2(q, (unsigned)(y % 100));
  } else {
    *q++ = y < 0 ? '-' : '+';
    uint64_t ay = y < 0 ? (uint64_t)0 - (uint64_t)y : (uint64_t)y;
    char tmp[24];
    char *s = u64_backward(tmp + sizeof tmp, ay);
    while (tmp + sizeof tmp - s < 4) *--s = '0';
    memcpy(q, s, (size_t)(tmp + sizeof tmp - s));
    q += tmp + sizeof tmp - s;
  }
  *q++ = '-';
  q = put2(q, m);
  *q++ = '-';
  q = put2(q, d);
  return (size_t)(q - p);
}

/* ".789" / ".789123" / ".789123456" (chrono's %.f), nothing for whole seconds. */
static char *put_frac_chrono(char *q, uint32_t ns) {
  if (ns == 0) return q;
  int digits = ns % 1000000 == 0 ? 3 : ns % 1000 == 0 ? 6 : 9;
  uint32_t v = digits == 3 ? ns / 1000000 : digits == 6 ? ns / 1000 : ns;
  *q++ = '.';
  for (int i = digits - 1; i >= 0; i--) {
    q[i] = (char)('0' + v % 10);
    v /= 10;
  }
  return q + digits;
}

/* ".5" / ".000001": trailing zeros dropped (DuckDB's interval style). */
static char *put_frac_trim(char *q, uint32_t ns) {
  if (ns == 0) return q;
  int digits = 9;
  while (ns % 10 == 0) {
    ns /= 10;
    digits--;
  }
  *q++ = '.';
  for (int i = digits - 1; i >= 0; i--) {
    q[i] = (char)('0' + ns % 10);
    ns /= 10;
  }
  return q + digits;
}

static char *put_hms(char *q, uint64_t secs) {
  uint64_t h = secs / 3600;
  if (h < 100) q = put2(q, (unsigned)h);
  else q += sp__fmt_u64(q, h);
  *q++ = ':';
  q = put2(q, (unsigned)(secs / 60 % 60));
  *q++ = ':';
  return put2(q, (unsigned)(secs % 60));
}

size_t sp__fmt_time(char *p, int64_t nanos) {
  int64_t secs = floor_div(nanos, 1000000000);
  uint32_t ns = (uint32_t)(nanos - secs * 1000000000);
  char *q = put_hms(p, (uint64_t)(secs < 0 ? 0 : secs));
  return (size_t)(put_frac_chrono(q, ns) - p);
}

static const int64_t k_per_sec[] = {1, 1000, 1000000, 1000000000};
static const int64_t k_ns_per[] = {1000000000, 1000000, 1000, 1};

size_t sp__fmt_timestamp(char *p, int64_t v, sp_fmt_unit unit, sp_fmt_tz tz, int offset_minutes) {
  int64_t per = k_per_sec[unit];
  int64_t secs = floor_div(v, per);
  uint32_t ns = (uint32_t)((v - secs * per) * k_ns_per[unit]);
  if (tz == SP_FMT_TZ_OFFSET) secs += (int64_t)offset_minutes * 60;
  int64_t days = floor_div(secs, 86400);
  char *q = p + sp__fmt_date(p, days);
  *q++ = 'T';
  q = put_hms(q, (uint64_t)(secs - days * 86400));
  q = put_frac_chrono(q, ns);
  if (tz == SP_FMT_TZ_UTC) {
    *q++ = 'Z';
  } else if (tz == SP_FMT_TZ_OFFSET) {
    int off = offset_minutes;
    *q++ = off < 0 ? '-' : '+';
    if (off < 0) off = -off;
    q = put2(q, (unsigned)(off / 60));
    *q++ = ':';
    q = put2(q, (unsigned)(off % 60));
  }
  return (size_t)(q - p);
}

static char *put_part(char *q, int64_t n, const char *unit, bool *first) {
  if (!*first) *q++ = ' ';
  *first = false;
  q += sp__fmt_i64(q, n);
  *q++ = ' ';
  size_t ul = strlen(unit);
  memcpy(q, unit, ul);
  q += ul;
  if (n != 1 && n != -1) *q++ = 's';
  return q;
}

/* Sign, HH:MM:SS and trimmed fraction of a signed nanosecond count. */
static char *put_signed_time(char *q, int64_t nanos) {
  uint64_t a = nanos < 0 ? (uint64_t)0 - (uint64_t)nanos : (uint64_t)nanos;
  if (nanos < 0) *q++ = '-';
  q = put_hms(q, a / 1000000000u);
  return put_frac_trim(q, (uint32_t)(a % 1000000000u));
}

size_t sp__fmt_interval(char *p, int32_t months, int32_t days, int64_t nanos) {
  char *q = p;
  bool first = true;
  int32_t years = months / 12, mons = months % 12;
  if (years) q = put_part(q, years, "year", &first);
  if (mons) q = put_part(q, mons, "month", &first);
  if (days) q = put_part(q, days, "day", &first);
  if (nanos != 0 || first) {
    if (!first) *q++ = ' ';
    q = put_signed_time(q, nanos);
  }
  return (size_t)(q - p);
}

size_t sp__fmt_duration(char *p, int64_t v, sp_fmt_unit unit) {
  /* Split before scaling so nanosecond overflow cannot happen for second-based durations. */
  int64_t per = k_per_sec[unit];
  int64_t secs = v / per, sub = v % per; /* same sign */
  uint64_t as = secs < 0 ? (uint64_t)0 - (uint64_t)secs : (uint64_t)secs;
  uint64_t ans = (uint64_t)(sub < 0 ? -sub : sub) * (uint64_t)k_ns_per[unit];
  char *q = p;
  if (v < 0) *q++ = '-';
  q = put_hms(q, as);
  return (size_t)(put_frac_trim(q, (uint32_t)ans) - p);
}

size_t sp__fmt_uuid(char *p, const uint8_t b[16]) {
  static const char hex[] = "0123456789abcdef";
  char *q = p;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *q++ = '-';
    *q++ = hex[b[i] >> 4];
    *q++ = hex[b[i] & 15];
  }
  return (size_t)(q - p);
}

/* ---- Strings --------------------------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (2..4 bytes; s[0] >= 0x80), or 0 when it is not valid (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const uint8_t *s, size_t n) {
  uint8_t c = s[0];
  if (c >= 0xC2 && c <= 0xDF) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3 || (s[2] & 0xC0) != 0x80) return 0;
    uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return s[1] >= lo && s[1] <= hi ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
    uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return s[1] >= lo && s[1] <= hi ? 4 : 0;
  }
  return 0;
}

size_t sp__utf8_valid_prefix(const char *s, size_t n) {
  const uint8_t *u = (const uint8_t *)s;
  size_t i = 0;
  while (i < n) {
    if (u[i] < 0x80) {
      i++;
      continue;
    }
    size_t k = utf8_seq(u + i, n - i);
    if (k == 0) return i;
    i += k;
  }
  return n;
}

/* Terminal columns of one code point: 0 for combining marks and zero-width characters, 2 for East Asian
 * wide and fullwidth characters and emoji (the common blocks of Unicode's EastAsianWidth W/F), else 1. */
static int cp_width(uint32_t c) {
  if ((c >= 0x0300 && c <= 0x036F) || (c >= 0x200B && c <= 0x200F) || c == 0xFE0F || (c >= 0x20D0 && c <= 0x20FF))
    return 0;
  if ((c >= 0x1100 && c <= 0x115F) || (c >= 0x2E80 && c <= 0x303E) || (c >= 0x3041 && c <= 0x33FF) ||
      (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xA000 && c <= 0xA4CF) ||
      (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFE30 && c <= 0xFE4F) ||
      (c >= 0xFF00 && c <= 0xFF60) || (c >= 0xFFE0 && c <= 0xFFE6) || (c >= 0x1F300 && c <= 0x1F64F) ||
      (c >= 0x1F900 && c <= 0x1F9FF) || (c >= 0x20000 && c <= 0x3FFFD))
    return 2;
  return 1;
}

size_t sp__utf8_width(const char *s, size_t n) {
  const uint8_t *u = (const uint8_t *)s;
  size_t w = 0, i = 0;
  while (i < n) {
    if (u[i] < 0x80) {
      w++;
      i++;
      continue;
    }
    size_t k = utf8_seq(u + i, n - i);
    if (k == 0) { /* not produced by our writers (they repair UTF-8), but count it rather than stall */
      w++;
      i++;
      continue;
    }
    uint32_t c = k == 2 ? (u[i] & 0x1Fu) : k == 3 ? (u[i] & 0x0Fu) : (u[i] & 0x07u);
    for (size_t j = 1; j < k; j++) c = (c << 6) | (u[i + j] & 0x3Fu);
    w += (size_t)cp_width(c);
    i += k;
  }
  return w;
}

static const char k_replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD}; /* U+FFFD */

/* Shared loop of the JSON and text escapers: copies runs of safe bytes, hands each special ASCII byte to
 * `esc` (json: true → JSON escapes, false → visible backslash escapes), repairs invalid UTF-8. `special`
 * marks the ASCII bytes that need escaping. */
static int escape_loop(sp_buf *out, const char *s, size_t n, const uint8_t special[128], bool json) {
  static const char hex[] = "0123456789abcdef";
  const uint8_t *u = (const uint8_t *)s;
  size_t run = 0, i = 0;
  while (i < n) {
    uint8_t c = u[i];
    if (c < 0x80 && !special[c]) {
      i++;
      continue;
    }
    size_t k = c < 0x80 ? 0 : utf8_seq(u + i, n - i);
    if (k) {
      i += k;
      continue;
    }
    if (sp_buf_append(out, s + run, i - run) != SP_OK) return SP_ENOMEM;
    char *q = sp_buf_reserve(out, 6);
    if (q == NULL) return SP_ENOMEM;
    size_t w;
    if (c >= 0x80) {
      memcpy(q, k_replacement, 3);
      w = 3;
    } else {
      q[0] = '\\';
      w = 2;
      switch (c) {
      case '"': q[1] = '"'; break;
      case '\\': q[1] = '\\'; break;
      case '\n': q[1] = 'n'; break;
      case '\r': q[1] = 'r'; break;
      case '\t': q[1] = 't'; break;
      case '\b': q[1] = 'b'; break;
      case '\f': q[1] = 'f'; break;
      default:
        if (json) {
          memcpy(q + 1, "u00", 3);
          q[4] = hex[c >> 4];
          q[5] = hex[c & 15];
          w = 6;
        } else {
          q[1] = 'x';
          q[2] = hex[c >> 4];
          q[3] = hex[c & 15];
          w = 4;
        }
      }
    }
    out->len += w;
    i++;
    run = i;
  }
  return sp_buf_append(out, s + run, n - run);
}

static const uint8_t k_json_special[128] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1 /* " */, ['\\'] = 1,
};
static const uint8_t k_ctrl_special[128] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    [127] = 1,
};
static const uint8_t k_none_special[128] = {0};

int sp__json_escape(sp_buf *out, const char *s, size_t n) { return escape_loop(out, s, n, k_json_special, true); }

int sp__json_string(sp_buf *out, const char *s, size_t n) {
  if (sp_buf_append(out, "\"", 1) != SP_OK || sp__json_escape(out, s, n) != SP_OK) return SP_ENOMEM;
  return sp_buf_append(out, "\"", 1);
}

int sp__text_string(sp_buf *out, const char *s, size_t n, bool visible_controls) {
  return escape_loop(out, s, n, visible_controls ? k_ctrl_special : k_none_special, false);
}

int sp__base64(sp_buf *out, const uint8_t *s, size_t n) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *q = sp_buf_reserve(out, (n + 2) / 3 * 4);
  if (q == NULL) return SP_ENOMEM;
  char *start = q;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
    *q++ = tbl[v >> 18];
    *q++ = tbl[(v >> 12) & 63];
    *q++ = tbl[(v >> 6) & 63];
    *q++ = tbl[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
    *q++ = tbl[v >> 18];
    *q++ = tbl[(v >> 12) & 63];
    *q++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
    *q++ = '=';
  }
  out->len += (size_t)(q - start);
  return SP_OK;
}

int sp__hex(sp_buf *out, const uint8_t *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  char *q = sp_buf_reserve(out, n * 2);
  if (q == NULL) return SP_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    q[2 * i] = hex[s[i] >> 4];
    q[2 * i + 1] = hex[s[i] & 15];
  }
  out->len += n * 2;
  return SP_OK;
}
