/* SPDX-License-Identifier: Apache-2.0
 * SQL sessions of `spice sql` (what the REPL, scripts and -e share), driven line by line over a transport that
 * records what it is asked and answers from a script of replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cli/buf.c"
#include "cli/session.c"
#include "cli/split.c"
#include "cli/table.c"

/* A transport that answers "fail..." statements with an HTTP 400 and everything else with one column "sql"
 * holding the statement it received. */
typedef struct recorder {
  sp_cli_transport base;
  char *seen[16];
  size_t nseen;
} recorder;

static int rec_query(sp_cli_transport *self, sp_cli_query *q, sp_error *err) {
  recorder *r = (recorder *)self;
  assert_true(r->nseen < 16);
  r->seen[r->nseen++] = strdup(q->sql);
  if (strncmp(q->sql, "fail", 4) == 0) {
    q->http_status = 400;
    q->error_detail = strdup("Parser Error: syntax error at or near \"fail\"\nLINE 1: fail\n");
    return sp_fail(err, SP_EINVAL, "Parser Error: syntax error at or near \"fail\"");
  }
  const char *name = "sql";
  q->table.keep = q->keep;
  sp_cli_table_set_columns(&q->table, &name, 1, err);
  const char *row[] = {q->sql};
  return sp_cli_table_add_row(&q->table, row, err);
}

typedef struct fixture {
  recorder rec;
  sp_cli_session s;
  char *out, *errout;
  size_t out_len, err_len;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->rec.base.name = "recorder";
  f->rec.base.query = rec_query;
  sp_cli_session_init(&f->s, &f->rec.base, SP_CLI_FORMAT_TABLE);
  f->s.out = open_memstream(&f->out, &f->out_len);
  f->s.errout = open_memstream(&f->errout, &f->err_len);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  fclose(f->s.out);
  fclose(f->s.errout);
  free(f->out);
  free(f->errout);
  for (size_t i = 0; i < f->rec.nseen; i++) free(f->rec.seen[i]);
  sp_cli_session_reset(&f->s);
  free(f);
  return 0;
}

static void feed(fixture *f, const char *line) { sp_cli_session_feed_line(&f->s, line, strlen(line)); }

static void flush(fixture *f) {
  fflush(f->s.out);
  fflush(f->s.errout);
}

static void test_multiline_statement_runs_when_terminated(void **state) {
  fixture *f = *state;
  feed(f, "select 1,");
  assert_true(sp_cli_session_open(&f->s));
  assert_int_equal(f->rec.nseen, 0);
  feed(f, "  'a;b' -- c;");
  assert_int_equal(f->rec.nseen, 0);
  feed(f, ";");
  assert_false(sp_cli_session_open(&f->s));
  assert_int_equal(f->rec.nseen, 1);
  assert_string_equal(f->rec.seen[0], "select 1,\n  'a;b' -- c;");
  flush(f);
  assert_non_null(strstr(f->out, "+-"));
  assert_non_null(strstr(f->out, "\nTime: "));
  assert_non_null(strstr(f->out, " seconds. 1 rows.\n"));
}

static void test_several_statements_on_one_line(void **state) {
  fixture *f = *state;
  feed(f, "select 1; select 2; select");
  assert_int_equal(f->rec.nseen, 2);
  assert_true(sp_cli_session_open(&f->s));
  feed(f, "3; -- trailing comment");
  assert_int_equal(f->rec.nseen, 3);
  assert_string_equal(f->rec.seen[2], "select\n3");
  assert_false(sp_cli_session_open(&f->s)); /* a comment alone does not keep the statement open */
}

static void test_show_tables_is_rewritten(void **state) {
  fixture *f = *state;
  feed(f, "SHOW   Tables");
  feed(f, "show tables;");
  feed(f, "/* hi */ show tables ;");
  assert_int_equal(f->rec.nseen, 3);
  for (size_t i = 0; i < 3; i++) assert_string_equal(f->rec.seen[i], SP_CLI_SHOW_TABLES_SQL);
}

static void test_special_commands(void **state) {
  fixture *f = *state;
  assert_int_equal(sp_cli_special_parse("q"), SP_CLI_SPECIAL_EXIT);
  assert_int_equal(sp_cli_special_parse(" QUIT; "), SP_CLI_SPECIAL_EXIT);
  assert_int_equal(sp_cli_special_parse(".exit"), SP_CLI_SPECIAL_EXIT);
  assert_int_equal(sp_cli_special_parse("exit"), SP_CLI_SPECIAL_EXIT);
  assert_int_equal(sp_cli_special_parse("help"), SP_CLI_SPECIAL_HELP);
  assert_int_equal(sp_cli_special_parse(".error"), SP_CLI_SPECIAL_ERROR);
  assert_int_equal(sp_cli_special_parse("select q"), SP_CLI_SPECIAL_NONE);
  assert_int_equal(sp_cli_special_parse("showtables"), SP_CLI_SPECIAL_NONE);
  feed(f, "help");
  flush(f);
  assert_non_null(strstr(f->out, "show tables;"));
  feed(f, "select");
  feed(f, "q"); /* inside a statement, q is just a column name */
  assert_false(f->s.quit);
  feed(f, ";");
  assert_string_equal(f->rec.seen[0], "select\nq");
  feed(f, "exit");
  assert_true(f->s.quit);
  feed(f, "select 1;"); /* nothing runs after exit */
  assert_int_equal(f->rec.nseen, 1);
}

static void test_error_is_reported_and_kept_for_dot_error(void **state) {
  fixture *f = *state;
  f->s.keep_going = true;
  feed(f, ".error");
  flush(f);
  assert_non_null(strstr(f->out, "No error yet."));
  feed(f, "fail now;");
  flush(f);
  assert_string_equal(f->errout, "Query Error: Parser Error: syntax error at or near \"fail\"\n");
  assert_false(f->s.quit);
  assert_int_equal(f->s.failures, 1);
  feed(f, ".error");
  flush(f);
  assert_non_null(strstr(f->out, "Error: EINVAL (HTTP 400)\nQuery: fail now\nMessage:\n"
                                 "Parser Error: syntax error at or near \"fail\"\nLINE 1: fail\n"));
  feed(f, "select 2;"); /* the REPL goes on */
  assert_int_equal(f->rec.nseen, 2);
}

static void test_script_stops_at_first_error(void **state) {
  fixture *f = *state;
  feed(f, "select 1; fail; select 3;");
  assert_true(f->s.quit);
  assert_int_equal(f->rec.nseen, 2);
  assert_int_equal(f->s.failures, 1);
}

static void test_finish_runs_unterminated_statement(void **state) {
  fixture *f = *state;
  feed(f, "select 'last'");
  feed(f, "-- no semicolon");
  assert_int_equal(f->rec.nseen, 0);
  sp_cli_session_finish(&f->s);
  assert_int_equal(f->rec.nseen, 1);
  assert_string_equal(f->rec.seen[0], "select 'last'\n-- no semicolon");
  sp_cli_session_finish(&f->s); /* nothing left */
  assert_int_equal(f->rec.nseen, 1);
}

static void test_open_comment_keeps_reading(void **state) {
  fixture *f = *state;
  feed(f, "select 1; /* a comment");
  assert_int_equal(f->rec.nseen, 1);
  assert_true(sp_cli_session_open(&f->s));
  feed(f, "that ends; */ select 2;");
  assert_int_equal(f->rec.nseen, 2);
  assert_string_equal(f->rec.seen[1], "/* a comment\nthat ends; */ select 2");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_multiline_statement_runs_when_terminated), T(test_several_statements_on_one_line),
      T(test_show_tables_is_rewritten),                 T(test_special_commands),
      T(test_error_is_reported_and_kept_for_dot_error), T(test_script_stops_at_first_error),
      T(test_finish_runs_unterminated_statement),       T(test_open_comment_keeps_reading),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
