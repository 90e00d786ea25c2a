/* SPDX-License-Identifier: Apache-2.0
 * `spice init` in a temporary folder, and the YAML quoting of pod names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.c"
#include "cli/cmd_init.c"

typedef struct fixture {
  char old_cwd[PATH_MAX];
  char dir[64];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(getcwd(f->old_cwd, sizeof f->old_cwd));
  snprintf(f->dir, sizeof f->dir, "/tmp/spice-init-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  assert_int_equal(chdir(f->dir), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  unlink("spicepod.yaml");
  assert_int_equal(chdir(f->old_cwd), 0);
  rmdir(f->dir);
  free(f);
  return 0;
}

static char *slurp(const char *path) {
  FILE *fp = fopen(path, "r");
  if (fp == NULL) return NULL;
  static char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, fp);
  buf[n] = '\0';
  fclose(fp);
  return buf;
}

static void test_init_writes_pod_named_after_argument(void **state) {
  (void)state;
  char *argv[] = {"my_app"};
  assert_int_equal(sp_cli_cmd_init(1, argv), SP_CLI_EXIT_OK);
  assert_string_equal(slurp("spicepod.yaml"), "version: v1\nkind: Spicepod\nname: my_app\ndatasets: []\n");
}

static void test_init_defaults_to_folder_name(void **state) {
  fixture *f = *state;
  assert_int_equal(sp_cli_cmd_init(0, NULL), SP_CLI_EXIT_OK);
  char want[256];
  snprintf(want, sizeof want, "version: v1\nkind: Spicepod\nname: %s\ndatasets: []\n", strrchr(f->dir, '/') + 1);
  assert_string_equal(slurp("spicepod.yaml"), want);
}

static void test_init_refuses_to_overwrite_without_force(void **state) {
  (void)state;
  FILE *fp = fopen("spicepod.yaml", "w");
  fputs("name: keep\n", fp);
  fclose(fp);
  char *argv[] = {"other"};
  assert_int_equal(sp_cli_cmd_init(1, argv), SP_CLI_EXIT_FAIL);
  assert_string_equal(slurp("spicepod.yaml"), "name: keep\n");
  char *force[] = {"other", "--force"};
  assert_int_equal(sp_cli_cmd_init(2, force), SP_CLI_EXIT_OK);
  assert_string_equal(slurp("spicepod.yaml"), "version: v1\nkind: Spicepod\nname: other\ndatasets: []\n");
}

static void test_init_usage_errors(void **state) {
  (void)state;
  char *two[] = {"a", "b"};
  assert_int_equal(sp_cli_cmd_init(2, two), SP_CLI_EXIT_USAGE);
  char *bad[] = {"--nope"};
  assert_int_equal(sp_cli_cmd_init(1, bad), SP_CLI_EXIT_USAGE);
  assert_null(slurp("spicepod.yaml"));
}

static void expect_scalar(const char *in, const char *want) {
  char *text = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&text, &len);
  sp_cli_yaml_scalar(fp, in);
  fclose(fp);
  assert_string_equal(text, want);
  free(text);
}

static void test_yaml_scalar_quoting(void **state) {
  (void)state;
  expect_scalar("taxi-trips_2.v1", "taxi-trips_2.v1");
  expect_scalar("caf\xC3\xA9", "caf\xC3\xA9");
  expect_scalar("my app", "\"my app\"");
  expect_scalar("yes", "\"yes\"");
  expect_scalar("NULL", "\"NULL\"");
  expect_scalar("123", "\"123\"");
  expect_scalar("-x", "\"-x\"");
  expect_scalar("a: b", "\"a: b\"");
  expect_scalar("say \"hi\" \\o/", "\"say \\\"hi\\\" \\\\o/\"");
  expect_scalar("tab\there", "\"tab\\x09here\"");
  expect_scalar("", "\"\"");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_init_writes_pod_named_after_argument), T(test_init_defaults_to_folder_name),
      T(test_init_refuses_to_overwrite_without_force), T(test_init_usage_errors),
      cmocka_unit_test(test_yaml_scalar_quoting),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
