/* SPDX-License-Identifier: Apache-2.0
 *
 * Text the mysql connector reads from outside, parsed without the server library so that it can be tested
 * and fuzzed on its own: the `mysql_connection_string` URL and the values of MySQL's text protocol
 * (dates, datetimes, times, decimals) as the server prints them.
 */
#ifndef SPICE_MYSQL_TEXT_H
#define SPICE_MYSQL_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "spice/error.h"

/* mysql://[user[:pass]@]host[:port][/db][?…] split into owned, percent-decoded strings (NULL when absent). */
typedef struct myt_url {
  char *user, *pass, *host, *db;
  int port; /* 0 when absent */
} myt_url;

/* Parses `url` (borrowed). On SP_EINVAL the message never quotes the URL (it may hold a password). Free the
 * result with myt_url_free (also after a failure). */
int myt_parse_url(const char *url, myt_url *out, sp_error *err);
void myt_url_free(myt_url *u);

/* The parsers below take a value of n bytes (not NUL-terminated) and return 0 on success, 1 for MySQL's
 * zero date ("0000-00-00…", read as NULL), -1 for text that is not a value of the type. */

/* "YYYY-MM-DD" → days since 1970-01-01. */
int myt_parse_date(const char *s, size_t n, int32_t *days);
/* "YYYY-MM-DD[ HH:MM:SS[.ffffff]]" → microseconds since 1970-01-01 00:00:00. */
int myt_parse_datetime(const char *s, size_t n, int64_t *us);
/* "[-]H…H:MM:SS[.ffffff]" → signed microseconds (MySQL's TIME spans -838:59:59 … 838:59:59). */
int myt_parse_time(const char *s, size_t n, int64_t *us);
/* "[-]digits[.digits]" → the value times 10^scale (extra fraction digits are refused, not rounded); -1 also
 * when it does not fit `precision` digits. Written as two halves: *lo the low 64 bits, *hi the high. */
int myt_parse_decimal(const char *s, size_t n, int precision, int scale, uint64_t *lo, int64_t *hi);

#endif
