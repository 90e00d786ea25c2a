/* SPDX-License-Identifier: Apache-2.0
 *
 * Text the odbc connector reads from outside, parsed without a driver so it can be tested and fuzzed alone:
 * ODBC connection strings (`KEY=value;KEY={va;lue}` — the form SQLDriverConnect takes) and the UTF-16 that
 * drivers return for SQL_C_WCHAR columns.
 */
#ifndef SPICE_ODBC_TEXT_H
#define SPICE_ODBC_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* The value of `key` (case-insensitive; braces removed, `}}` read as `}`) in connection string `cs`, copied
 * into out (n bytes). Returns 1 when found, 0 when absent or when it does not fit. */
int odt_get(const char *cs, const char *key, char *out, size_t n);

/* `cs` with the values of its secret keys (PWD, PASSWORD, and any key holding "PASS", "SECRET" or "TOKEN")
 * replaced by ***, written into out (n bytes, always NUL-terminated; cut short with "…" when n is small).
 * For messages and logs. */
void odt_redact(const char *cs, char *out, size_t n);

/* Replaces, in place, every occurrence in msg of the secret values of cs (as odt_redact finds them, those of
 * 3 bytes or more) by ***. For driver messages, which may quote what they were given. */
void odt_scrub(const char *cs, char *msg);

/* Converts n UTF-16 code units (native byte order) to UTF-8 at out, which must hold 3 * n bytes. Unpaired
 * surrogates become U+FFFD. Returns the bytes written. */
size_t odt_utf16_to_utf8(const uint16_t *in, size_t n, char *out);

#endif
