/* SPDX-License-Identifier: Apache-2.0
 * The statement splitter of `spice sql`: where a statement ends, and what a script splits into. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cli/buf.c"
#include "cli/split.c"

static size_t end_of(const char *sql) { return sp_cli_stmt_end(sql, strlen(sql)); }

static void test_end_plain(void **state) {
  (void)state;
  assert_int_equal(end_of("select 1; select 2;"), 9);
  assert_int_equal(end_of("select 1"), 0);
  assert_int_equal(end_of(""), 0);
  assert_int_equal(end_of(";"), 1);
}

static void test_end_skips_quotes(void **state) {
  (void)state;
  assert_int_equal(end_of("select 'a;b'"), 0);
  assert_int_equal(end_of("select 'it''s;';"), 16);
  assert_int_equal(end_of("select \"col;name\" from t;"), 25);
  assert_int_equal(end_of("select 'open;"), 0); /* unterminated literal: keep reading */
  assert_int_equal(end_of("select E'\\';' ;"), 15); /* backslash escape inside E'' */
  assert_int_equal(end_of("select e'a\\'b';"), 15);
  /* a plain literal has no backslash escapes: '\' ends it, so the ';' counts */
  assert_int_equal(end_of("select '\\'; x"), 11);
  /* 'E' that is the end of an identifier does not make an escape string */
  assert_int_equal(end_of("select the'\\'; x"), 14);
}

static void test_end_skips_dollar_quotes(void **state) {
  (void)state;
  assert_int_equal(end_of("select $$a;b$$;"), 15);
  assert_int_equal(end_of("select $fn$ ; $x$ ; $fn$;"), 25);
  assert_int_equal(end_of("select $$ open;"), 0);
  assert_int_equal(end_of("select $1; x"), 10); /* $1 is a parameter, not a quote */
  assert_int_equal(end_of("select a$b$c; x"), 13); /* $ inside an identifier */
}

static void test_end_skips_comments(void **state) {
  (void)state;
  assert_int_equal(end_of("select 1 -- not here;\n;"), 23);
  assert_int_equal(end_of("select 1 -- not here;"), 0);
  assert_int_equal(end_of("select /* ; */ 1;"), 17);
  assert_int_equal(end_of("select /* outer /* inner; */ still; */ 1;"), 41);
  assert_int_equal(end_of("select /* open ;"), 0);
  assert_int_equal(end_of("select 2 - -1;"), 14); /* "- -" is not a comment */
}

static void test_multiline(void **state) {
  (void)state;
  const char *sql = "select a,\n  'multi\nline;'\nfrom t\n-- trailing ; comment\n;";
  assert_int_equal(end_of(sql), strlen(sql));
}

static void test_blank(void **state) {
  (void)state;
  const char *blank[] = {"", "  \n\t", "-- only a comment", "/* c */ -- d\n  ", "/* a /* b */ */"};
  for (size_t i = 0; i < sizeof blank / sizeof blank[0]; i++) {
    assert_true(sp_cli_stmt_blank(blank[i], strlen(blank[i])));
  }
  assert_false(sp_cli_stmt_blank("/* still open", 13));
  assert_false(sp_cli_stmt_blank(" x", 2));
  assert_false(sp_cli_stmt_blank("''", 2));
  assert_int_equal(sp_cli_stmt_skip_blank("-- c\n /* d */ show", 18), 14);
}

static void test_split_script(void **state) {
  (void)state;
  const char *script = "-- header\nselect 1;\n\n select ';' ;;\n/* done */ select\n 3";
  sp_cli_stmts s;
  assert_int_equal(sp_cli_split(script, strlen(script), &s, NULL), SP_OK);
  assert_int_equal(s.count, 3);
  assert_string_equal(s.items[0], "-- header\nselect 1");
  assert_string_equal(s.items[1], "select ';'");
  assert_string_equal(s.items[2], "/* done */ select\n 3");
  sp_cli_stmts_free(&s);
  assert_int_equal(s.count, 0);
}

static void test_split_only_blanks(void **state) {
  (void)state;
  const char *script = " ; -- nothing\n ;\n/* here */";
  sp_cli_stmts s;
  assert_int_equal(sp_cli_split(script, strlen(script), &s, NULL), SP_OK);
  assert_int_equal(s.count, 0);
  sp_cli_stmts_free(&s);
}

static void test_trim(void **state) {
  (void)state;
  char *t = sp_cli_stmt_trim("\n  select 1 -- c;\n", 18);
  assert_string_equal(t, "select 1 -- c;");
  free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_end_plain),        cmocka_unit_test(test_end_skips_quotes),
      cmocka_unit_test(test_end_skips_dollar_quotes), cmocka_unit_test(test_end_skips_comments),
      cmocka_unit_test(test_multiline),        cmocka_unit_test(test_blank),
      cmocka_unit_test(test_split_script),     cmocka_unit_test(test_split_only_blanks),
      cmocka_unit_test(test_trim),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
