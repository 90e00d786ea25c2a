/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target for the statement splitter of `spice sql` (what a user types or pipes in): any bytes through
 * sp_cli_stmt_end, sp_cli_stmt_blank and sp_cli_split, checking that offsets stay in bounds and that splitting
 * never invents text. Build with
 *   clang -fsanitize=fuzzer,address,undefined -Iinclude -Isrc tests/fuzz/fuzz_cli_split.c src/core/error.c
 * and run with tests/fuzz/corpus/cli_split/ as the seed corpus. The CLI sources are included, since they are
 * not part of the spicec library.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/buf.c"
#include "cli/split.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *sql = (const char *)data;
  size_t end = sp_cli_stmt_end(sql, size);
  if (end > size || (end > 0 && sql[end - 1] != ';')) abort();
  (void)sp_cli_stmt_blank(sql, size);
  if (sp_cli_stmt_skip_blank(sql, size) > size) abort();
  sp_cli_stmts stmts;
  if (sp_cli_split(sql, size, &stmts, NULL) != SP_OK) return 0;
  size_t total = 0;
  bool has_nul = memchr(sql, '\0', size) != NULL; /* a NUL cuts the C string short */
  for (size_t i = 0; i < stmts.count; i++) {
    size_t n = strlen(stmts.items[i]);
    if (n == 0 && !has_nul) abort(); /* blank statements are dropped */
    total += n;
  }
  if (total > size) abort();
  sp_cli_stmts_free(&stmts);
  return 0;
}
