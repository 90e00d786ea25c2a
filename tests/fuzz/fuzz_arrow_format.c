/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the Arrow format-string parser (formats come from whatever produced the batches: files,
 * remote sources): any bytes, cut at the first NUL, through sp_arrow_parse_format. It must never read past the
 * string, and what it returns must be coherent: a known type with sane parameters, a terminated zone. Build
 * with `make fuzz` (tests/fuzz/CMakeLists.txt); seeds in tests/fuzz/corpus/arrow_format/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spice/arrow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *f = malloc(size + 1); /* exact size: a read past the terminator is a finding */
  if (f == NULL) return 0;
  memcpy(f, data, size);
  f[size] = '\0';
  sp_arrow_typeinfo t;
  sp_arrow_parse_format(f, &t);
  if ((unsigned)t.type > SP_ARROW_UNSUPPORTED) abort();
  if (memchr(t.tz, '\0', sizeof t.tz) == NULL) abort();
  if (t.tz[0] != '\0' && t.type != SP_ARROW_TIMESTAMP) abort();
  if ((t.type == SP_ARROW_FIXED_BINARY || t.type == SP_ARROW_FIXED_LIST) && t.byte_width < 0) abort();
  if (t.type >= SP_ARROW_DECIMAL32 && t.type <= SP_ARROW_DECIMAL256 && t.precision < 1) abort();
  if ((unsigned)t.unit > SP_UNIT_NANO) abort();
  free(f);
  return 0;
}
