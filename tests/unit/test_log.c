/* SPDX-License-Identifier: Apache-2.0
 *
 * Log lines never show a secret the configuration holds: values of secret params, ${secrets:...} values and
 * API keys are registered with sp_log_redact, and any log line containing one shows "***" instead.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "capture.h"
#include "spice/log.h"
#include "spice/params.h"
#include "spice/secrets.h"

static char *log_line(const char *fmt, const char *arg) {
  capture c;
  capture_begin(&c);
  sp_log_write(SP_LOG_WARN, fmt, arg);
  return capture_end(&c);
}

static void test_registered_values_are_masked(void **state) {
  (void)state;
  sp_log_redact("hunter2-password");
  char *out = log_line("could not connect: postgresql://spice:%s@db:5432/x (password hunter2-password)", "hunter2-password");
  assert_null(strstr(out, "hunter2"));
  assert_non_null(strstr(out, "postgresql://spice:***@db:5432/x (password ***)"));
  free(out);
}

static void test_short_values_are_not_registered(void **state) {
  (void)state;
  sp_log_redact("abc"); /* would blank out ordinary words */
  char *out = log_line("the abc of %s", "logging");
  assert_non_null(strstr(out, "the abc of logging"));
  free(out);
}

static void test_json_lines_are_masked_too(void **state) {
  (void)state;
  sp_log_redact("tok-9f8e7d6c");
  sp_log_set_format(SP_LOG_JSON);
  char *out = log_line("bearer %s refused", "tok-9f8e7d6c");
  sp_log_set_format(SP_LOG_TEXT);
  assert_null(strstr(out, "tok-9f8e7d6c"));
  assert_non_null(strstr(out, "\"message\":\"bearer *** refused\""));
  free(out);
}

static const sp_param_spec SPECS[] = {
    {.name = "pass", .type = SP_PARAM_STRING, .flags = SP_PARAM_SECRET | SP_PARAM_PREFIXED},
    {.name = "host", .type = SP_PARAM_STRING, .flags = SP_PARAM_PREFIXED},
    {.name = NULL},
};

static void test_secret_params_and_secret_references_are_registered(void **state) {
  (void)state;
  setenv("SPICE_SECRET_DB_TOKEN", "env-secret-4711", 1);
  sp_secrets *secrets = NULL;
  sp_error err = {0};
  assert_int_equal(sp_secrets_create(".", &secrets, &err), SP_OK);
  char *expanded = NULL;
  assert_int_equal(sp_secrets_interpolate(secrets, "${env:SPICE_SECRET_DB_TOKEN}", &expanded, &err), SP_OK);
  assert_string_equal(expanded, "env-secret-4711");

  sp_params raw = {0}, out = {0};
  assert_int_equal(sp_params_set(&raw, "x_pass", "param-secret-0815", 1, 1), SP_OK);
  assert_int_equal(sp_params_set(&raw, "x_host", "db.example", 2, 1), SP_OK);
  assert_int_equal(sp_params_validate(SPECS, "x", &raw, secrets, "dataset \"d\"", &out, &err), SP_OK);

  char *out1 = log_line("token %s", expanded);
  char *out2 = log_line("dsn host=db.example password=%s", sp_params_get(&out, "x_pass"));
  assert_null(strstr(out1, "env-secret-4711"));
  assert_null(strstr(out2, "param-secret-0815"));
  assert_non_null(strstr(out2, "host=db.example password=***"));
  free(out1);
  free(out2);
  free(expanded);
  sp_params_free(&raw);
  sp_params_free(&out);
  sp_secrets_destroy(secrets);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_registered_values_are_masked),
      cmocka_unit_test(test_short_values_are_not_registered),
      cmocka_unit_test(test_json_lines_are_masked_too),
      cmocka_unit_test(test_secret_params_and_secret_references_are_registered),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
