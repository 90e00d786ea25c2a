/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the CSV reader of the spice CLI (what a server sends back for `spice sql`): any bytes,
 * fed in pieces whose sizes come from the input itself, into a result table that keeps a few rows. The table's
 * rows must all have the header's width. Build with
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude -Isrc tests/fuzz/fuzz_cli_csv.c src/core/error.c
 * and run with tests/fuzz/corpus/cli_csv/ as the seed corpus.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/buf.c"
#include "cli/csv.c"
#include "cli/table.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  size_t step = (size_t)data[0] % 16 + 1; /* the network splits answers anywhere */
  data++;
  size--;
  sp_cli_table t = {0};
  t.keep = 8;
  sp_cli_csv p;
  sp_cli_csv_init(&p, sp_cli_csv_to_table, &t);
  int rc = SP_OK;
  for (size_t i = 0; i < size && rc == SP_OK; i += step) {
    size_t n = size - i < step ? size - i : step;
    rc = sp_cli_csv_feed(&p, (const char *)data + i, n, NULL);
  }
  if (rc == SP_OK) rc = sp_cli_csv_finish(&p, NULL);
  if (t.nrows > t.total_rows || t.nrows > t.keep) abort();
  for (size_t i = 0; i < t.nrows * t.ncols; i++) {
    if (t.cells[i] != NULL) (void)strlen(t.cells[i]);
  }
  FILE *devnull = fopen("/dev/null", "w");
  if (devnull != NULL) {
    sp_cli_render_opts o = {.max_cell_width = 10, .max_width = 40, .max_rows = 5};
    sp_cli_table_print_box(devnull, &t, &o);
    fclose(devnull);
  }
  sp_cli_csv_reset(&p);
  sp_cli_table_reset(&t);
  return 0;
}
