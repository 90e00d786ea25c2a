/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the text the odbc connector reads (src/connectors/odbc_text.c): any bytes as an
 * odbc_connection_string (looked up, redacted, used to scrub a message) and as UTF-16 from a driver. Nothing
 * may crash or write past its buffer; a redacted string never holds a secret value of 3 bytes or more.
 * Seeds: tests/fuzz/corpus/odbc_text/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/odbc_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *cs = malloc(size + 1), value[64], out[96];
  if (cs == NULL) return 0;
  memcpy(cs, data, size);
  cs[size] = '\0';
  odt_get(cs, "PWD", value, sizeof value);
  odt_redact(cs, out, sizeof out);
  if (strlen(out) >= sizeof out) abort();
  char *msg = malloc(size + 1);
  if (msg) {
    memcpy(msg, cs, size + 1);
    odt_scrub(cs, msg);
    if (strlen(msg) > size) abort();
    free(msg);
  }
  free(cs);
  size_t units = size / 2;
  uint16_t *in = malloc(units ? units * 2 : 1);
  char *utf8 = malloc(units ? 3 * units : 1);
  if (in && utf8) {
    memcpy(in, data, units * 2);
    if (odt_utf16_to_utf8(in, units, utf8) > 3 * units) abort();
  }
  free(in);
  free(utf8);
  return 0;
}
