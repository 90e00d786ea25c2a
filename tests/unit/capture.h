/* SPDX-License-Identifier: Apache-2.0
 *
 * For unit tests: captures what is written to stderr (where sp_log writes) between capture_begin and
 * capture_end. Include after cmocka.h.
 */
#ifndef SPICE_TESTS_CAPTURE_H
#define SPICE_TESTS_CAPTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct capture {
  int saved;
  FILE *tmp;
} capture;

static inline void capture_begin(capture *c) {
  fflush(stderr);
  c->tmp = tmpfile();
  assert_non_null(c->tmp);
  c->saved = dup(STDERR_FILENO);
  dup2(fileno(c->tmp), STDERR_FILENO);
}

/* What was written, as a malloc'd string the caller frees. */
static inline char *capture_end(capture *c) {
  fflush(stderr);
  dup2(c->saved, STDERR_FILENO);
  close(c->saved);
  long n = ftell(c->tmp);
  char *buf = calloc(1, (size_t)n + 1);
  rewind(c->tmp);
  assert_int_equal(fread(buf, 1, (size_t)n, c->tmp), (size_t)n);
  fclose(c->tmp);
  return buf;
}

#endif
