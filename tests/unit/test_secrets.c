/* SPDX-License-Identifier: Apache-2.0
 *
 * Secret stores (spice-compat §8): the env store (environment, .env.local, .env; SPICE_<KEY> before
 * <KEY>), dotenv syntax, `${store:key}` interpolation, stores declared by a spicepod and their precedence.
 * Every test works in its own temporary folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spice/params.h"
#include "spice/secrets.h"

typedef struct fixture {
  char dir[64];
  sp_secrets *s;
} fixture;

static void write_file(const fixture *f, const char *name, const char *text) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", f->dir, name);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/spicec_secrets_XXXXXX");
  if (mkdtemp(f->dir) == NULL) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  char cmd[128];
  sp_secrets_destroy(f->s);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
  int rc = system(cmd);
  free(f);
  return rc == 0 ? 0 : -1;
}

/* Makes the store set once the test has written its files. */
static sp_secrets *open_store(fixture *f) {
  sp_error err = {0};
  if (sp_secrets_create(f->dir, &f->s, &err) != SP_OK) fail_msg("%s", err.msg);
  return f->s;
}

static void assert_secret(sp_secrets *s, const char *store, const char *key, const char *want) {
  char *v = sp_secrets_get(s, store, key);
  if (want == NULL) {
    if (v != NULL) fail_msg("%s:%s = \"%s\", want none", store, key, v);
    return;
  }
  if (v == NULL || strcmp(v, want) != 0) fail_msg("%s:%s = \"%s\", want \"%s\"", store, key, v ? v : "(none)", want);
  free(v);
}

static void assert_interp(sp_secrets *s, const char *in, const char *want) {
  sp_error err = {0};
  char *out = NULL;
  if (sp_secrets_interpolate(s, in, &out, &err) != SP_OK) fail_msg("%s: %s", in, err.msg);
  assert_string_equal(out, want);
  free(out);
}

static void assert_interp_fails(sp_secrets *s, const char *in, sp_status code, const char *msg) {
  sp_error err = {0};
  char *out = (char *)"untouched";
  assert_int_equal(sp_secrets_interpolate(s, in, &out, &err), code);
  assert_string_equal(err.msg, msg);
  assert_string_equal(out, "untouched");
}

/* ---- the env store ---- */

static void test_environment_lookup(void **state) {
  sp_secrets *s = open_store(*state);
  setenv("SECRETS_TEST_BARE", "bare", 1);
  assert_secret(s, "env", "secrets_test_bare", "bare"); /* upper-cased */
  assert_secret(s, "env", "Secrets_Test_Bare", "bare");
  setenv("SPICE_SECRETS_TEST_BARE", "prefixed", 1);
  assert_secret(s, "env", "secrets_test_bare", "prefixed"); /* SPICE_<KEY> first */
  assert_secret(s, "secrets", "secrets_test_bare", "prefixed");
  assert_secret(s, "env", "secrets_test_unset_xyz", NULL);
  assert_secret(s, "nostore", "secrets_test_bare", NULL);
  unsetenv("SECRETS_TEST_BARE");
  unsetenv("SPICE_SECRETS_TEST_BARE");
  /* the environment is read at lookup time */
  setenv("SECRETS_TEST_LATER", "later", 1);
  assert_secret(s, "env", "secrets_test_later", "later");
  unsetenv("SECRETS_TEST_LATER");
  assert_secret(NULL, "env", "secrets_test_later", NULL);
}

static void test_dotenv_files_and_precedence(void **state) {
  fixture *f = *state;
  write_file(f, ".env.local", "ST_A=local\n");
  write_file(f, ".env", "ST_A=dotenv\nST_B=dotenv-b\nSPICE_ST_C=prefixed-in-file\n");
  sp_secrets *s = open_store(f);
  assert_secret(s, "env", "st_a", "local"); /* .env.local before .env */
  assert_secret(s, "env", "st_b", "dotenv-b");
  setenv("ST_B", "environment", 1);
  assert_secret(s, "env", "st_b", "environment"); /* the environment before the files */
  unsetenv("ST_B");
  /* SPICE_<KEY> anywhere beats <KEY> anywhere, as in Spice (files are loaded into the environment) */
  setenv("ST_C", "bare-in-env", 1);
  assert_secret(s, "env", "st_c", "prefixed-in-file");
  unsetenv("ST_C");
}

static void test_dotenv_syntax(void **state) {
  fixture *f = *state;
  write_file(f, ".env",
             "# a comment\n"
             "\n"
             "export SX_EXPORTED=yes\n"
             "SX_SPACES = spaced value  \n"
             "SX_COMMENT=value # trailing comment\n"
             "SX_HASH=a#b\n"
             "SX_DOUBLE=\"two\\nlines \\\"quoted\\\"\"\n"
             "SX_SINGLE='raw \\n # kept'\n"
             "SX_MULTI=\"first\n"
             "second\"\n"
             "SX_EMPTY=\n"
             "not an assignment\n"
             "SX_EQUALS=a=b=c\n"
             "SX_LAST=last");
  sp_secrets *s = open_store(f);
  assert_secret(s, "env", "sx_exported", "yes");
  assert_secret(s, "env", "sx_spaces", "spaced value");
  assert_secret(s, "env", "sx_comment", "value");
  assert_secret(s, "env", "sx_hash", "a#b");
  assert_secret(s, "env", "sx_double", "two\nlines \"quoted\"");
  assert_secret(s, "env", "sx_single", "raw \\n # kept");
  assert_secret(s, "env", "sx_multi", "first\nsecond");
  assert_secret(s, "env", "sx_empty", "");
  assert_secret(s, "env", "sx_equals", "a=b=c");
  assert_secret(s, "env", "sx_last", "last");
}

/* ---- interpolation ---- */

static void test_interpolation(void **state) {
  fixture *f = *state;
  write_file(f, ".env", "IT_USER=alice\nIT_PASS=s3cret\n");
  sp_secrets *s = open_store(f);
  assert_interp(s, "plain text", "plain text");
  assert_interp(s, "", "");
  assert_interp(s, "${env:it_user}", "alice");
  assert_interp(s, "${  env  :  it_user  }", "alice");
  assert_interp(s, "${\tsecrets:IT_PASS }", "s3cret");
  assert_interp(s, "postgres://${env:it_user}:${secrets:it_pass}@db/x", "postgres://alice:s3cret@db/x");
  /* not references: kept as written */
  assert_interp(s, "$HOME ${it_user} ${env:} ${:x} ${env:1abc} $${ ${env:it_user",
                "$HOME ${it_user} ${env:} ${:x} "
                "${env:1abc} $${ ${env:it_user");
  assert_interp(s, "$", "$");
  assert_interp_fails(s, "x ${env:it_missing} y", SP_ENOTFOUND, "secret \"${env:it_missing}\" not found");
  assert_interp_fails(s, "${ vault : it_user }", SP_ENOTFOUND,
                      "unknown secret store \"vault\" in \"${vault:it_user}\"");
  assert_interp_fails(NULL, "${env:it_user}", SP_ENOTFOUND, "unknown secret store \"env\" in \"${env:it_user}\"");
  assert_interp(NULL, "no refs", "no refs");
}

/* ---- stores a spicepod declares ---- */

static void test_declared_stores(void **state) {
  fixture *f = *state;
  write_file(f, ".env", "DS_KEY=default\n");
  write_file(f, "a.env", "DS_KEY=from-a\nDS_ONLY_A=only-a\n");
  write_file(f, "b.env", "DS_KEY=from-b\n");
  sp_secrets *s = open_store(f);
  assert_secret(s, "env", "ds_key", "default");
  sp_params pa = {0}, pb = {0};
  sp_params_set(&pa, "file_path", "a.env", 0, 0);
  sp_params_set(&pb, "file_path", "b.env", 0, 0);
  sp_error err = {0};
  assert_int_equal(sp_secrets_add_store(s, "env", "a", &pa, &err), SP_OK);
  assert_int_equal(sp_secrets_add_store(s, "env", "b", &pb, &err), SP_OK);
  assert_secret(s, "env", "ds_key", NULL); /* the default store was replaced */
  assert_secret(s, "a", "ds_key", "from-a");
  assert_secret(s, "b", "ds_key", "from-b");
  assert_secret(s, "secrets", "ds_key", "from-b");    /* declared later wins */
  assert_secret(s, "secrets", "ds_only_a", "only-a"); /* falls through to earlier stores */
  assert_interp(s, "${a:ds_key}/${b:ds_key}/${secrets:ds_key}", "from-a/from-b/from-b");
  /* declaring a name again replaces it (and moves it last) */
  assert_int_equal(sp_secrets_add_store(s, "env", "a", NULL, &err), SP_OK);
  assert_secret(s, "a", "ds_key", "default"); /* no file_path: .env.local/.env */
  assert_secret(s, "secrets", "ds_key", "default");
  sp_params_free(&pa);
  sp_params_free(&pb);
}

static void test_unsupported_stores(void **state) {
  sp_secrets *s = open_store(*state);
  static const struct {
    const char *from;
    sp_status code;
    const char *msg;
  } cases[] = {
      {"keyring", SP_ENOTSUP, "secret store \"keyring\" is not supported (supported: env)"},
      {"kubernetes:my-secret", SP_ENOTSUP, "secret store \"kubernetes\" is not supported (supported: env)"},
      {"aws_secrets_manager:prod", SP_ENOTSUP,
       "secret store \"aws_secrets_manager\" is not supported (supported: env)"},
      {"environment", SP_ENOTSUP, "secret store \"environment\" is not supported (supported: env)"},
      {"env:x", SP_EINVAL, "secret store \"env\" takes no selector: \"env:x\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sp_error err = {0};
    assert_int_equal(sp_secrets_add_store(s, cases[i].from, "x", NULL, &err), cases[i].code);
    assert_string_equal(err.msg, cases[i].msg);
  }
  /* a failed add leaves the default store in place */
  setenv("US_KEY", "still-here", 1);
  assert_secret(s, "env", "us_key", "still-here");
  unsetenv("US_KEY");
  sp_params p = {0};
  sp_params_set(&p, "file_path", "missing.env", 0, 0);
  sp_error err = {0};
  assert_int_equal(sp_secrets_add_store(s, "env", "m", &p, &err), SP_ENOTFOUND);
  assert_non_null(strstr(err.msg, "could not read env file \""));
  assert_non_null(strstr(err.msg, "/missing.env\": No such file or directory"));
  sp_params_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_environment_lookup, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dotenv_files_and_precedence, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dotenv_syntax, setup, teardown),
      cmocka_unit_test_setup_teardown(test_interpolation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_declared_stores, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unsupported_stores, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
