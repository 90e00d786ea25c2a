/* SPDX-License-Identifier: Apache-2.0
 * Result tables of the spice CLI: display widths, box and plain rendering, truncation, and the CSV reader that
 * fills them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cli/buf.c"
#include "cli/csv.c"
#include "cli/table.c"

/* Renders with f into a string the test frees. */
typedef struct capture {
  char *text;
  size_t len;
  FILE *f;
} capture;

static void cap_open(capture *c) {
  c->text = NULL;
  c->len = 0;
  c->f = open_memstream(&c->text, &c->len);
  assert_non_null(c->f);
}

static char *cap_close(capture *c) {
  fclose(c->f);
  return c->text;
}

static void make_table(sp_cli_table *t, size_t ncols, const char *const *names) {
  memset(t, 0, sizeof *t);
  assert_int_equal(sp_cli_table_set_columns(t, names, ncols, NULL), SP_OK);
}

static void test_width_ascii_and_utf8(void **state) {
  (void)state;
  assert_int_equal(sp_cli_text_width("hello", 5), 5);
  assert_int_equal(sp_cli_text_width("", 0), 0);
  assert_int_equal(sp_cli_text_width("h\xC3\xA9llo", 6), 5);         /* é: 2 bytes, 1 column */
  assert_int_equal(sp_cli_text_width("\xE2\x82\xAC", 3), 1);          /* €: 3 bytes */
  assert_int_equal(sp_cli_text_width("\xF0\x9D\x84\x9E", 4), 1);      /* 𝄞: 4 bytes */
  assert_int_equal(sp_cli_text_width("\xE6\x97\xA5\xE6\x9C\xAC", 6), 4); /* 日本: wide */
  assert_int_equal(sp_cli_text_width("e\xCC\x81", 3), 1);             /* e + combining acute */
  assert_int_equal(sp_cli_text_width("\xFF\xC3", 2), 2);              /* bad bytes count one each */
  assert_int_equal(sp_cli_text_width("\xC0\xAF", 2), 2);              /* overlong '/' is not a character */
}

static void test_box_render(void **state) {
  (void)state;
  const char *names[] = {"id", "name"};
  sp_cli_table t;
  make_table(&t, 2, names);
  const char *r1[] = {"1", "alice"};
  const char *r2[] = {"22", NULL};
  const char *r3[] = {"3", "\xC3\xA9t\xC3\xA9"}; /* été: 3 columns, 5 bytes */
  assert_int_equal(sp_cli_table_add_row(&t, r1, NULL), SP_OK);
  assert_int_equal(sp_cli_table_add_row(&t, r2, NULL), SP_OK);
  assert_int_equal(sp_cli_table_add_row(&t, r3, NULL), SP_OK);
  capture c;
  cap_open(&c);
  sp_cli_render_opts o = {0};
  sp_cli_table_print_box(c.f, &t, &o);
  char *out = cap_close(&c);
  assert_string_equal(out, "+----+-------+\n"
                           "| id | name  |\n"
                           "+----+-------+\n"
                           "| 1  | alice |\n"
                           "| 22 |       |\n"
                           "| 3  | \xC3\xA9t\xC3\xA9   |\n"
                           "+----+-------+\n");
  free(out);
  sp_cli_table_reset(&t);
}

static void test_box_empty_result_keeps_header(void **state) {
  (void)state;
  const char *names[] = {"a"};
  sp_cli_table t;
  make_table(&t, 1, names);
  capture c;
  cap_open(&c);
  sp_cli_render_opts o = {0};
  sp_cli_table_print_box(c.f, &t, &o);
  char *out = cap_close(&c);
  assert_string_equal(out, "+---+\n| a |\n+---+\n");
  free(out);
  sp_cli_table_reset(&t);
}

static void test_truncation_and_escapes(void **state) {
  (void)state;
  const char *names[] = {"v"};
  sp_cli_table t;
  make_table(&t, 1, names);
  const char *r1[] = {"abcdefghij"};
  const char *r2[] = {"a\nb\tc"};
  const char *r3[] = {"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"}; /* 日本語: 6 columns */
  sp_cli_table_add_row(&t, r1, NULL);
  sp_cli_table_add_row(&t, r2, NULL);
  sp_cli_table_add_row(&t, r3, NULL);
  capture c;
  cap_open(&c);
  sp_cli_render_opts o = {.max_cell_width = 5};
  sp_cli_table_print_box(c.f, &t, &o);
  char *out = cap_close(&c);
  /* 4 columns of text + "…" = 5; a\nb\tc escapes to 7 columns and is cut; 日本 = 4 columns + … */
  assert_string_equal(out, "+-------+\n"
                           "| v     |\n"
                           "+-------+\n"
                           "| abcd\xE2\x80\xA6 |\n"
                           "| a\\nb\xE2\x80\xA6 |\n"
                           "| \xE6\x97\xA5\xE6\x9C\xAC\xE2\x80\xA6 |\n"
                           "+-------+\n");
  free(out);
  sp_cli_table_reset(&t);
}

static void test_row_limit(void **state) {
  (void)state;
  const char *names[] = {"n"};
  sp_cli_table t;
  make_table(&t, 1, names);
  t.keep = 3;
  char buf[16];
  for (int i = 0; i < 10; i++) {
    snprintf(buf, sizeof buf, "%d", i);
    const char *row[] = {buf};
    assert_int_equal(sp_cli_table_add_row(&t, row, NULL), SP_OK);
  }
  assert_int_equal(t.nrows, 3);
  assert_int_equal(t.total_rows, 10);
  capture c;
  cap_open(&c);
  sp_cli_render_opts o = {.max_rows = 2};
  sp_cli_table_print_box(c.f, &t, &o);
  char *out = cap_close(&c);
  assert_string_equal(out, "+---+\n| n |\n+---+\n| 0 |\n| 1 |\n+---+\n... 8 more rows\n");
  free(out);
  sp_cli_table_reset(&t);
}

static void test_fit_to_width(void **state) {
  (void)state;
  const char *names[] = {"short", "long"};
  sp_cli_table t;
  make_table(&t, 2, names);
  const char *r[] = {"x", "0123456789012345678901234567890123456789"};
  sp_cli_table_add_row(&t, r, NULL);
  capture c;
  cap_open(&c);
  sp_cli_render_opts o = {.max_width = 30};
  sp_cli_table_print_box(c.f, &t, &o);
  char *out = cap_close(&c);
  const char *nl = strchr(out, '\n');
  assert_int_equal(nl - out, 30); /* every line is exactly the width asked for */
  assert_non_null(strstr(out, "| x     | 01234567890123456\xE2\x80\xA6 |"));
  free(out);
  sp_cli_table_reset(&t);
}

static void test_plain_render(void **state) {
  (void)state;
  const char *names[] = {"name", "endpoint", "status"};
  sp_cli_table t;
  make_table(&t, 3, names);
  const char *r1[] = {"http", "127.0.0.1:8090", "Ready"};
  const char *r2[] = {"metrics", "N/A", "Disabled"};
  sp_cli_table_add_row(&t, r1, NULL);
  sp_cli_table_add_row(&t, r2, NULL);
  capture c;
  cap_open(&c);
  sp_cli_table_print_plain(c.f, &t);
  char *out = cap_close(&c);
  assert_string_equal(out, "NAME     ENDPOINT        STATUS\n"
                           "http     127.0.0.1:8090  Ready\n"
                           "metrics  N/A             Disabled\n");
  free(out);
  sp_cli_table_reset(&t);
}

/* Feeds text to the CSV reader in pieces of `step` bytes, to check that records cross piece boundaries. */
static void csv_into(sp_cli_table *t, const char *text, size_t step) {
  memset(t, 0, sizeof *t);
  sp_cli_csv p;
  sp_cli_csv_init(&p, sp_cli_csv_to_table, t);
  size_t len = strlen(text);
  for (size_t i = 0; i < len; i += step) {
    size_t n = len - i < step ? len - i : step;
    assert_int_equal(sp_cli_csv_feed(&p, text + i, n, NULL), SP_OK);
  }
  assert_int_equal(sp_cli_csv_finish(&p, NULL), SP_OK);
  sp_cli_csv_reset(&p);
}

static void test_csv_reader(void **state) {
  (void)state;
  const char *text = "id,note,empty\r\n1,\"a, \"\"quoted\"\"\nline\",\"\"\n2,plain,\n\n3,\xC3\xA9,x";
  for (size_t step = 1; step <= strlen(text); step += 7) {
    sp_cli_table t;
    csv_into(&t, text, step);
    assert_int_equal(t.ncols, 3);
    assert_string_equal(t.cols[0], "id");
    assert_string_equal(t.cols[2], "empty");
    assert_int_equal(t.nrows, 3);
    assert_string_equal(t.cells[1], "a, \"quoted\"\nline");
    assert_string_equal(t.cells[2], "");  /* "" is the empty string */
    assert_null(t.cells[5]);              /* an empty unquoted field is NULL */
    assert_string_equal(t.cells[7], "\xC3\xA9");
    assert_string_equal(t.cells[8], "x"); /* last record without a line end */
    sp_cli_table_reset(&t);
  }
}

static void test_csv_errors(void **state) {
  (void)state;
  sp_cli_table t = {0};
  sp_cli_csv p;
  sp_error err;
  sp_cli_csv_init(&p, sp_cli_csv_to_table, &t);
  assert_int_equal(sp_cli_csv_feed(&p, "a,b\n1,2,3\n", 10, &err), SP_EINVAL);
  assert_string_equal(err.msg, "CSV row 1 has 3 fields, the header has 2");
  sp_cli_csv_reset(&p);
  sp_cli_table_reset(&t);
  sp_cli_csv_init(&p, sp_cli_csv_to_table, &t);
  assert_int_equal(sp_cli_csv_feed(&p, "a\n\"open", 7, &err), SP_OK);
  assert_int_equal(sp_cli_csv_finish(&p, &err), SP_EINVAL);
  sp_cli_csv_reset(&p);
  sp_cli_table_reset(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_width_ascii_and_utf8), cmocka_unit_test(test_box_render),
      cmocka_unit_test(test_box_empty_result_keeps_header), cmocka_unit_test(test_truncation_and_escapes),
      cmocka_unit_test(test_row_limit),           cmocka_unit_test(test_fit_to_width),
      cmocka_unit_test(test_plain_render),        cmocka_unit_test(test_csv_reader),
      cmocka_unit_test(test_csv_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
