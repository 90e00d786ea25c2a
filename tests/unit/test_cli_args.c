/* SPDX-License-Identifier: Apache-2.0
 * Option parsing of the spice CLI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cli/args.c"

enum { O_ENDPOINT, O_FORMAT, O_EXEC, O_FORCE, O_HELP };
static const sp_cli_opt spec[] = {
    {"http-endpoint", 0, true}, {"format", 0, true}, {"execute", 'e', true}, {"force", 'f', false},
    {"help", 'h', false},
};
#define NSPEC (sizeof spec / sizeof spec[0])

static int parse(char **argv, int argc, sp_cli_args *a, sp_error *err) {
  return sp_cli_args_parse(spec, NSPEC, argc, argv, a, err);
}

static void test_long_short_and_positionals(void **state) {
  (void)state;
  char *argv[] = {"name", "--format", "csv", "--http-endpoint=http://h:1", "-e", "select 1", "-f", "second"};
  sp_cli_args a;
  assert_int_equal(parse(argv, 8, &a, NULL), SP_OK);
  assert_string_equal(a.values[O_FORMAT], "csv");
  assert_string_equal(a.values[O_ENDPOINT], "http://h:1");
  assert_string_equal(a.values[O_EXEC], "select 1");
  assert_string_equal(a.values[O_FORCE], "");
  assert_null(a.values[O_HELP]);
  assert_int_equal(a.npos, 2);
  assert_string_equal(a.pos[0], "name");
  assert_string_equal(a.pos[1], "second");
}

static void test_attached_short_value_and_grouped_flags(void **state) {
  (void)state;
  char *argv[] = {"-eselect 2", "-fh"};
  sp_cli_args a;
  assert_int_equal(parse(argv, 2, &a, NULL), SP_OK);
  assert_string_equal(a.values[O_EXEC], "select 2");
  assert_non_null(a.values[O_FORCE]);
  assert_non_null(a.values[O_HELP]);
}

static void test_double_dash_and_dash(void **state) {
  (void)state;
  char *argv[] = {"-", "--", "--format", "-e"};
  sp_cli_args a;
  assert_int_equal(parse(argv, 4, &a, NULL), SP_OK);
  assert_null(a.values[O_FORMAT]);
  assert_int_equal(a.npos, 3);
  assert_string_equal(a.pos[0], "-");
  assert_string_equal(a.pos[1], "--format");
}

static void test_last_value_wins_and_value_may_start_with_dash(void **state) {
  (void)state;
  char *argv[] = {"--format", "csv", "--format", "json", "-e", "-- comment"};
  sp_cli_args a;
  assert_int_equal(parse(argv, 6, &a, NULL), SP_OK);
  assert_string_equal(a.values[O_FORMAT], "json");
  assert_string_equal(a.values[O_EXEC], "-- comment");
}

static void test_errors(void **state) {
  (void)state;
  sp_cli_args a;
  sp_error err;
  char *unknown[] = {"--nope"};
  assert_int_equal(parse(unknown, 1, &a, &err), SP_EINVAL);
  assert_string_equal(err.msg, "unknown option \"--nope\"");
  char *unknown_short[] = {"-x"};
  assert_int_equal(parse(unknown_short, 1, &a, &err), SP_EINVAL);
  assert_string_equal(err.msg, "unknown option \"-x\"");
  char *missing[] = {"--format"};
  assert_int_equal(parse(missing, 1, &a, &err), SP_EINVAL);
  assert_string_equal(err.msg, "option \"--format\" needs a value");
  char *missing_short[] = {"-e"};
  assert_int_equal(parse(missing_short, 1, &a, &err), SP_EINVAL);
  assert_string_equal(err.msg, "option \"-e\" needs a value");
  char *flag_value[] = {"--force=yes"};
  assert_int_equal(parse(flag_value, 1, &a, &err), SP_EINVAL);
  assert_string_equal(err.msg, "option \"--force\" takes no value");
  char *many[SP_CLI_MAX_POS + 1];
  for (size_t i = 0; i <= SP_CLI_MAX_POS; i++) many[i] = "x";
  assert_int_equal(parse(many, SP_CLI_MAX_POS + 1, &a, &err), SP_EINVAL);
}

static void test_prefix_is_not_a_match(void **state) {
  (void)state;
  char *argv[] = {"--form", "csv"};
  sp_cli_args a;
  sp_error err;
  assert_int_equal(parse(argv, 2, &a, &err), SP_EINVAL);
  assert_string_equal(err.msg, "unknown option \"--form\"");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_long_short_and_positionals),
      cmocka_unit_test(test_attached_short_value_and_grouped_flags),
      cmocka_unit_test(test_double_dash_and_dash),
      cmocka_unit_test(test_last_value_wins_and_value_may_start_with_dash),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_prefix_is_not_a_match),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
