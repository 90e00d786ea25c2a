/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the text the mysql connector reads (src/connectors/mysql_text.c): any bytes as a
 * mysql_connection_string and as a value of each text-protocol type. Nothing may crash or read past the
 * value; a parsed URL's parts are terminated strings. Seeds: tests/fuzz/corpus/mysql_text/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/mysql_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (text == NULL) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  myt_url u;
  if (myt_parse_url(text, &u, NULL) == SP_OK) {
    size_t n = (u.host ? strlen(u.host) : 0) + (u.user ? strlen(u.user) : 0) + (u.pass ? strlen(u.pass) : 0) +
               (u.db ? strlen(u.db) : 0);
    if (n > size || u.port < 0 || u.port > 65535) abort();
  }
  myt_url_free(&u);
  free(text);
  /* The values are not NUL-terminated on the wire: parse from an exact-size copy. */
  char *v = malloc(size ? size : 1);
  if (v == NULL) return 0;
  memcpy(v, data, size);
  int32_t d;
  int64_t us;
  uint64_t lo;
  int64_t hi;
  myt_parse_date(v, size, &d);
  myt_parse_datetime(v, size, &us);
  myt_parse_time(v, size, &us);
  myt_parse_decimal(v, size, 38, 10, &lo, &hi);
  myt_parse_decimal(v, size, 5, 0, &lo, &hi);
  free(v);
  return 0;
}
