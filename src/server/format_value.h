/* SPDX-License-Identifier: Apache-2.0
 *
 * Internal to src/server/format*.c: scalar text writers. Each sp__fmt_* writes at most SP_FMT_MAX bytes at p
 * (no NUL) and returns the count; none allocates or calls printf except the rare float fallbacks.
 */
#ifndef SPICE_SERVER_FORMAT_VALUE_H
#define SPICE_SERVER_FORMAT_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/format.h"

#define SP_FMT_MAX 200 /* longest scalar text: a decimal256 with scale 76 and sign */

typedef enum sp_fmt_unit { SP_FMT_SEC = 0, SP_FMT_MILLI, SP_FMT_MICRO, SP_FMT_NANO } sp_fmt_unit;

/* How a timestamp's zone is written: none, "Z" (UTC), or a fixed "+HH:MM" offset. Named zones other than UTC
 * are written as UTC with "Z" (the instant is exact; there is no zone database here). */
typedef enum sp_fmt_tz { SP_FMT_TZ_NONE = 0, SP_FMT_TZ_UTC, SP_FMT_TZ_OFFSET } sp_fmt_tz;

size_t sp__fmt_u64(char *p, uint64_t v);
size_t sp__fmt_i64(char *p, int64_t v);
/* Unsigned 128-bit little-endian integer (DuckDB UHUGEINT). */
size_t sp__fmt_u128(char *p, const uint8_t le[16]);
/* Shortest text that reads back as the same value; integral values keep ".0"; large and tiny magnitudes use
 * exponent form ("1e+300" → "1e300"). Finite values only. */
size_t sp__fmt_double(char *p, double v);
size_t sp__fmt_float(char *p, float v);
float sp__half_to_float(uint16_t h);
/* Shortest text that reads back as the same half-precision value. Finite values only. */
size_t sp__fmt_half(char *p, uint16_t h);
/* Two's-complement little-endian decimal of `bytes` (4, 8, 16 or 32) with `scale`, all digits kept. */
size_t sp__fmt_decimal(char *p, const uint8_t *le, int bytes, int scale);
/* Days since 1970-01-01 → "2024-01-31" (years outside 0..9999 get a sign, as chrono writes them). */
size_t sp__fmt_date(char *p, int64_t days);
/* Nanoseconds since midnight → "12:34:56" plus ".789" / ".789123" / ".789123456" as needed. */
size_t sp__fmt_time(char *p, int64_t nanos);
/* "2024-01-31T12:34:56.789" plus "Z" or "+05:30" per tz. */
size_t sp__fmt_timestamp(char *p, int64_t v, sp_fmt_unit unit, sp_fmt_tz tz, int offset_minutes);
/* DuckDB style: "1 year 2 months 3 days 04:05:06.789"; zero is "00:00:00". */
size_t sp__fmt_interval(char *p, int32_t months, int32_t days, int64_t nanos);
/* "HH:MM:SS[.fraction]" with unbounded hours and a leading "-" when negative. */
size_t sp__fmt_duration(char *p, int64_t v, sp_fmt_unit unit);
/* 8-4-4-4-12 lower-case hex. */
size_t sp__fmt_uuid(char *p, const uint8_t b[16]);

/* Appends s as a quoted JSON string: '"', '\\' and control characters escaped, valid UTF-8 passed through,
 * each invalid byte replaced by U+FFFD. Returns SP_OK or SP_ENOMEM. */
int sp__json_string(sp_buf *out, const char *s, size_t n);
/* Same escaping without the quotes (for building keys). */
int sp__json_escape(sp_buf *out, const char *s, size_t n);
/* Appends s with invalid UTF-8 bytes replaced by U+FFFD; when `visible_controls` is set, \n \r \t and other
 * control characters are written as their backslash escapes (table cells stay on one line). */
int sp__text_string(sp_buf *out, const char *s, size_t n, bool visible_controls);
/* Appends base64 (RFC 4648, padded) / lower-case hex of n bytes. */
int sp__base64(sp_buf *out, const uint8_t *s, size_t n);
int sp__hex(sp_buf *out, const uint8_t *s, size_t n);

/* Display width of UTF-8 text in terminal columns (wide East Asian characters and emoji count 2). */
size_t sp__utf8_width(const char *s, size_t n);
/* Length of the valid UTF-8 prefix of s; n when the whole text is valid. */
size_t sp__utf8_valid_prefix(const char *s, size_t n);

#endif
