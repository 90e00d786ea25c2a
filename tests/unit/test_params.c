/* SPDX-License-Identifier: Apache-2.0
 *
 * Parameter maps, durations, booleans, closest-key suggestions and sp_params_validate: Spice's prefix rule,
 * required/typed/default params, secret lookup, and that secret values never reach a log or a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spice/log.h"
#include "spice/params.h"
#include "spice/secrets.h"

#include "capture.h"

/* A postgres-like table: connector params prefixed with "pg", runtime params bare. */
static const sp_param_spec pg_specs[] = {
    {"connection_string", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL, "libpq URI"},
    {"host", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_REQUIRED, NULL, NULL, "server host"},
    {"port", SP_PARAM_INT, SP_PARAM_PREFIXED, "5432", NULL, "server port"},
    {"pass", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL, "password"},
    {"sslmode", SP_PARAM_ENUM, SP_PARAM_PREFIXED, "require", "require|prefer|disable", "TLS mode"},
    {"connection_pool_size", SP_PARAM_INT, 0, "10", NULL, "pool size"},
    {"client_timeout", SP_PARAM_DURATION, 0, NULL, NULL, "timeout"},
    {"csv_delimiter", SP_PARAM_CHAR, 0, ",", NULL, "delimiter"},
    {"hive_partitioning_enabled", SP_PARAM_BOOL, 0, "false", NULL, "hive"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

static void set(sp_params *p, const char *k, const char *v, int line) {
  assert_int_equal(sp_params_set(p, k, v, line, 7), SP_OK);
}

/* ---- maps ---- */

static void test_map_basics(void **state) {
  (void)state;
  sp_params p = {0};
  set(&p, "a", "1", 3);
  set(&p, "flag", "Yes", 4);
  set(&p, "wait", "1h30m", 5);
  set(&p, "bad", "x", 6);
  assert_string_equal(sp_params_get(&p, "a"), "1");
  assert_null(sp_params_get(&p, "A")); /* keys compare exactly */
  assert_int_equal(sp_params_find(&p, "wait")->line, 5);
  assert_int_equal(sp_params_get_int(&p, "a", -1), 1);
  assert_int_equal(sp_params_get_int(&p, "bad", -1), -1);
  assert_int_equal(sp_params_get_int(&p, "missing", 42), 42);
  assert_true(sp_params_get_bool(&p, "flag", false));
  assert_true(sp_params_get_bool(&p, "bad", true));
  assert_false(sp_params_get_bool(&p, "missing", false));
  assert_int_equal(sp_params_get_duration_ms(&p, "wait", 0), 5400000);
  assert_int_equal(sp_params_get_duration_ms(&p, "bad", 7), 7);

  sp_params q = {0};
  p.file = "pod.yaml";
  assert_int_equal(sp_params_copy(&q, &p), SP_OK);
  assert_int_equal(q.count, 4);
  assert_ptr_equal(q.file, p.file);
  assert_ptr_not_equal(q.items[0].key, p.items[0].key);
  assert_string_equal(sp_params_get(&q, "flag"), "Yes");
  sp_params_free(&p);
  assert_int_equal(p.count, 0);
  assert_string_equal(sp_params_get(&q, "wait"), "1h30m");
  sp_params_free(&q);
  sp_params_free(NULL);
}

/* ---- durations and booleans ---- */

static void test_durations(void **state) {
  (void)state;
  static const struct {
    const char *s;
    int64_t ms;
  } good[] = {
      {"10s", 10000}, {"5m", 300000},     {"1h", 3600000},     {"2d", 172800000}, {"1w", 604800000},
      {"250ms", 250}, {"1h30m", 5400000}, {"1h 30m", 5400000}, {"1.5h", 5400000}, {"0s", 0},
      {"10", 10000},  {" 10s ", 10000},   {"1500us", 1},       {"2000000ns", 2},  {"1d12h", 129600000},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    int64_t ms = -1;
    sp_error err = {0};
    if (sp_duration_parse(good[i].s, &ms, &err) != SP_OK) fail_msg("%s: %s", good[i].s, err.msg);
    if (ms != good[i].ms) fail_msg("%s: got %lld, want %lld", good[i].s, (long long)ms, (long long)good[i].ms);
  }
  static const char *const bad[] = {"", "abc", "10x", "-5s", "5m30", "h", "10 minutes", "1s2", "1..5s", "1H"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t ms = 99;
    sp_error err = {0};
    if (sp_duration_parse(bad[i], &ms, &err) != SP_EINVAL) fail_msg("\"%s\" parsed as %lld", bad[i], (long long)ms);
    assert_int_equal(ms, 99); /* untouched on failure */
  }
  sp_error err = {0};
  int64_t ms;
  assert_int_equal(sp_duration_parse("10x", &ms, &err), SP_EINVAL);
  assert_string_equal(err.msg,
                      "invalid duration \"10x\" (expected a number and a unit: 250ms, 10s, 5m, 1h, 2d, 1w, 1h30m)");
  assert_int_equal(sp_duration_parse(NULL, &ms, NULL), SP_EINVAL);
}

static void test_booleans(void **state) {
  (void)state;
  static const char *const yes[] = {"true", "TRUE", "True", "yes", "on", "enabled", "1"};
  static const char *const no[] = {"false", "FALSE", "no", "off", "Disabled", "0"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    bool b = false;
    assert_int_equal(sp_bool_parse(yes[i], &b, NULL), SP_OK);
    assert_true(b);
  }
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
    bool b = true;
    assert_int_equal(sp_bool_parse(no[i], &b, NULL), SP_OK);
    assert_false(b);
  }
  sp_error err = {0};
  bool b = true;
  assert_int_equal(sp_bool_parse("maybe", &b, &err), SP_EINVAL);
  assert_true(b);
  assert_string_equal(err.msg, "invalid boolean \"maybe\" (expected true or false)");
  assert_int_equal(sp_bool_parse("", &b, NULL), SP_EINVAL);
  assert_int_equal(sp_bool_parse("2", &b, NULL), SP_EINVAL);
}

/* ---- closest key ---- */

static void test_closest(void **state) {
  (void)state;
  char buf[64];
  assert_string_equal(sp_params_closest(pg_specs, "pg", "pg_hots", buf, sizeof buf), "pg_host");
  assert_string_equal(sp_params_closest(pg_specs, "pg", "pg_prot", buf, sizeof buf), "pg_port");
  assert_string_equal(sp_params_closest(pg_specs, "pg", "connection_pool_sise", buf, sizeof buf),
                      "connection_pool_size");
  assert_string_equal(sp_params_closest(pg_specs, "pg", "csv_delimeter", buf, sizeof buf), "csv_delimiter");
  /* more than 3 edits, but every word of the key is a word of the candidate */
  assert_string_equal(sp_params_closest(pg_specs, "pg", "hive_partitioning", buf, sizeof buf),
                      "hive_partitioning_enabled");
  assert_null(sp_params_closest(pg_specs, "pg", "completely_different", buf, sizeof buf));
  assert_null(sp_params_closest(pg_specs, "pg", "zzzzzzzz", buf, sizeof buf));
  static const sp_param_spec accel[] = {{.name = "refresh_check_interval"},
                                        {.name = "retention_check_interval"},
                                        {.name = "refresh_sql"},
                                        {.name = NULL}};
  assert_string_equal(sp_params_closest(accel, NULL, "refresh_intervall", buf, sizeof buf), "refresh_check_interval");
  assert_string_equal(sp_params_closest(accel, NULL, "refresh_sq", buf, sizeof buf), "refresh_sql");
  /* without a buffer, the spec's own name */
  assert_string_equal(sp_params_closest(pg_specs, "pg", "hots", NULL, 0), "host");
}

/* ---- validation ---- */

static void test_validate_canonical_and_defaults(void **state) {
  (void)state;
  sp_params raw = {.file = "spicepod.yaml"}, out = {0};
  set(&raw, "pg_host", "db", 8);
  set(&raw, "pg_port", "6543", 9);
  set(&raw, "pg_sslmode", "DISABLE", 10);
  set(&raw, "connection_pool_size", "5", 11);
  set(&raw, "client_timeout", "30s", 12);
  sp_error err = {0};
  assert_int_equal(sp_params_validate(pg_specs, "pg", &raw, NULL, "dataset \"orders\"", &out, &err), SP_OK);
  assert_string_equal(sp_params_get(&out, "pg_host"), "db");
  assert_string_equal(sp_params_get(&out, "pg_port"), "6543");
  assert_string_equal(sp_params_get(&out, "pg_sslmode"), "disable"); /* the choice's spelling */
  assert_string_equal(sp_params_get(&out, "connection_pool_size"), "5");
  assert_int_equal(sp_params_get_duration_ms(&out, "client_timeout", 0), 30000);
  assert_string_equal(sp_params_get(&out, "csv_delimiter"), ",");                 /* default */
  assert_string_equal(sp_params_get(&out, "hive_partitioning_enabled"), "false"); /* default */
  assert_null(sp_params_get(&out, "pg_pass"));
  assert_int_equal(sp_params_find(&out, "pg_port")->line, 9);
  assert_int_equal(sp_params_find(&out, "csv_delimiter")->line, 0);
  assert_string_equal(out.file, "spicepod.yaml");
  assert_int_equal(out.count, 7);
  sp_params_free(&out);

  /* defaults fill an empty map; port default */
  sp_params only_host = {0};
  set(&only_host, "pg_host", "h", 1);
  assert_int_equal(sp_params_validate(pg_specs, "pg", &only_host, NULL, "x", &out, &err), SP_OK);
  assert_int_equal(sp_params_get_int(&out, "pg_port", 0), 5432);
  assert_string_equal(sp_params_get(&out, "pg_sslmode"), "require");
  assert_int_equal(sp_params_get_int(&out, "connection_pool_size", 0), 10);
  sp_params_free(&out);
  sp_params_free(&only_host);
  sp_params_free(&raw);
}

static void test_validate_prefix_rule(void **state) {
  (void)state;
  sp_params raw = {.file = "spicepod.yaml"}, out = {0};
  set(&raw, "host", "wrong-form", 8);
  set(&raw, "pg_host", "db", 9);
  set(&raw, "pg_connection_pool_size", "3", 10);
  set(&raw, "pg_hots", "typo", 11);
  set(&raw, "pass", "hunter2", 12);
  set(&raw, "nonsense_key_here", "v", 13);
  capture cap;
  capture_begin(&cap);
  int rc = sp_params_validate(pg_specs, "pg", &raw, NULL, "dataset \"orders\"", &out, NULL);
  char *log = capture_end(&cap);
  assert_int_equal(rc, SP_OK);
  assert_non_null(strstr(log, "spicepod.yaml:8:7: dataset \"orders\": ignoring parameter \"host\": connector "
                              "parameters take the prefix, write \"pg_host\""));
  assert_non_null(strstr(log, "spicepod.yaml:10:7: dataset \"orders\": ignoring parameter \"pg_connection_pool_size\": "
                              "runtime parameters take no prefix, write \"connection_pool_size\""));
  assert_non_null(strstr(log, "spicepod.yaml:11:7: dataset \"orders\": ignoring unknown parameter \"pg_hots\" (did "
                              "you mean \"pg_host\"?)"));
  assert_non_null(strstr(log, "ignoring parameter \"pass\": connector parameters take the prefix, write \"pg_pass\""));
  assert_non_null(
      strstr(log, "spicepod.yaml:13:7: dataset \"orders\": ignoring unknown parameter \"nonsense_key_here\"\n"));
  assert_null(strstr(log, "hunter2"));
  assert_string_equal(sp_params_get(&out, "pg_host"), "db");
  assert_string_equal(sp_params_get(&out, "connection_pool_size"), "10"); /* the prefixed one was ignored */
  assert_null(sp_params_get(&out, "pg_pass"));
  assert_null(sp_params_get(&out, "host"));
  assert_null(sp_params_get(&out, "pg_hots"));
  free(log);
  sp_params_free(&out);
  sp_params_free(&raw);
}

static void test_validate_required(void **state) {
  (void)state;
  sp_params raw = {0}, out = {.count = 12345};
  set(&raw, "pg_port", "5432", 3);
  sp_error err = {0};
  assert_int_equal(sp_params_validate(pg_specs, "pg", &raw, NULL, "dataset \"orders\"", &out, &err), SP_EINVAL);
  assert_string_equal(err.msg, "dataset \"orders\": missing required parameter: pg_host");
  assert_int_equal(out.count, 12345); /* untouched */
  assert_int_equal(sp_params_validate(pg_specs, "pg", NULL, NULL, "dataset \"orders\"", &out, &err), SP_EINVAL);
  assert_string_equal(err.msg, "dataset \"orders\": missing required parameter: pg_host");
  sp_params_free(&raw);
}

static void test_validate_types(void **state) {
  (void)state;
  static const struct {
    const char *key, *value, *msg;
  } cases[] = {
      {"pg_port", "abc",
       "spicepod.yaml:9:7: dataset \"orders\": parameter \"pg_port\" must be an integer, got \"abc\""},
      {"pg_port", "99999999999999999999",
       "spicepod.yaml:9:7: dataset \"orders\": parameter \"pg_port\" must be an "
       "integer, got \"99999999999999999999\""},
      {"pg_sslmode", "maybe",
       "spicepod.yaml:9:7: dataset \"orders\": parameter \"pg_sslmode\" must be one of "
       "require, prefer, disable, got \"maybe\""},
      {"client_timeout", "soon",
       "spicepod.yaml:9:7: dataset \"orders\": parameter \"client_timeout\" must be a "
       "duration such as 10s, 5m or 1h, got \"soon\""},
      {"csv_delimiter", ";;",
       "spicepod.yaml:9:7: dataset \"orders\": parameter \"csv_delimiter\" must be a single "
       "character, got \";;\""},
      {"hive_partitioning_enabled", "sometimes",
       "spicepod.yaml:9:7: dataset \"orders\": parameter "
       "\"hive_partitioning_enabled\" must be true or false, got \"sometimes\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sp_params raw = {.file = "spicepod.yaml"}, out = {0};
    set(&raw, "pg_host", "db", 8);
    set(&raw, cases[i].key, cases[i].value, 9);
    sp_error err = {0};
    assert_int_equal(sp_params_validate(pg_specs, "pg", &raw, NULL, "dataset \"orders\"", &out, &err), SP_EINVAL);
    assert_string_equal(err.msg, cases[i].msg);
    assert_null(out.items);
    sp_params_free(&raw);
  }
  /* a multi-byte character is one character; a tab too */
  sp_params raw = {0}, out = {0};
  set(&raw, "pg_host", "db", 8);
  set(&raw, "csv_delimiter", "\xc2\xa7", 9);
  assert_int_equal(sp_params_validate(pg_specs, "pg", &raw, NULL, "x", &out, NULL), SP_OK);
  assert_string_equal(sp_params_get(&out, "csv_delimiter"), "\xc2\xa7");
  sp_params_free(&out);
  sp_params_free(&raw);
}

/* A secret with a type: a wrong value is refused without being quoted. */
static void test_validate_secret_never_in_message(void **state) {
  (void)state;
  static const sp_param_spec specs[] = {
      {"pin", SP_PARAM_INT, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, NULL, "a numeric secret"},
      {"mode", SP_PARAM_ENUM, SP_PARAM_PREFIXED | SP_PARAM_SECRET, NULL, "a|b", "a secret choice"},
      {NULL, 0, 0, NULL, NULL, NULL},
  };
  sp_params raw = {.file = "spicepod.yaml"}, out = {0};
  set(&raw, "x_pin", "s3cr3t-value", 4);
  sp_error err = {0};
  assert_int_equal(sp_params_validate(specs, "x", &raw, NULL, "dataset \"d\"", &out, &err), SP_EINVAL);
  assert_string_equal(err.msg, "spicepod.yaml:4:7: dataset \"d\": parameter \"x_pin\" must be an integer");
  sp_params_free(&raw);
  sp_params raw2 = {0};
  set(&raw2, "x_mode", "s3cr3t-value", 4);
  assert_int_equal(sp_params_validate(specs, "x", &raw2, NULL, "dataset \"d\"", &out, &err), SP_EINVAL);
  assert_string_equal(err.msg, "dataset \"d\": parameter \"x_mode\" must be one of a, b");
  sp_params_free(&raw2);
}

static void test_validate_secret_lookup(void **state) {
  (void)state;
  char dir[] = "/tmp/spicec_params_XXXXXX";
  assert_non_null(mkdtemp(dir));
  sp_secrets *s = NULL;
  assert_int_equal(sp_secrets_create(dir, &s, NULL), SP_OK);
  setenv("SPICE_PG_PASS", "from-env", 1);
  setenv("PG_CONNECTION_STRING", "postgres://x", 1);
  sp_params raw = {0}, out = {0};
  set(&raw, "pg_host", "db", 3);
  assert_int_equal(sp_params_validate(pg_specs, "pg", &raw, s, "dataset \"orders\"", &out, NULL), SP_OK);
  assert_string_equal(sp_params_get(&out, "pg_pass"), "from-env");
  assert_string_equal(sp_params_get(&out, "pg_connection_string"), "postgres://x");
  sp_params_free(&out);

  /* a written value wins over the store */
  set(&raw, "pg_pass", "written", 4);
  assert_int_equal(sp_params_validate(pg_specs, "pg", &raw, s, "dataset \"orders\"", &out, NULL), SP_OK);
  assert_string_equal(sp_params_get(&out, "pg_pass"), "written");
  sp_params_free(&out);

  /* required secret params are satisfied by the store */
  static const sp_param_spec req[] = {
      {"pass", SP_PARAM_STRING, SP_PARAM_PREFIXED | SP_PARAM_SECRET | SP_PARAM_REQUIRED, NULL, NULL, "password"},
      {NULL, 0, 0, NULL, NULL, NULL},
  };
  assert_int_equal(sp_params_validate(req, "pg", NULL, s, "dataset \"orders\"", &out, NULL), SP_OK);
  assert_string_equal(sp_params_get(&out, "pg_pass"), "from-env");
  sp_params_free(&out);
  unsetenv("SPICE_PG_PASS");
  sp_error err = {0};
  assert_int_equal(sp_params_validate(req, "pg", NULL, s, "dataset \"orders\"", &out, &err), SP_EINVAL);
  assert_string_equal(err.msg, "dataset \"orders\": missing required parameter: pg_pass");
  unsetenv("PG_CONNECTION_STRING");
  sp_params_free(&raw);
  sp_secrets_destroy(s);
  rmdir(dir);
}

static void test_validate_keeps_unsupported_type_action(void **state) {
  (void)state;
  sp_params raw = {0}, out = {0};
  set(&raw, "pg_host", "db", 3);
  set(&raw, "unsupported_type_action", "string", 4);
  capture cap;
  capture_begin(&cap);
  assert_int_equal(sp_params_validate(pg_specs, "pg", &raw, NULL, "d", &out, NULL), SP_OK);
  char *log = capture_end(&cap);
  assert_string_equal(log, ""); /* not warned about */
  assert_string_equal(sp_params_get(&out, "unsupported_type_action"), "string");
  free(log);
  sp_params_free(&out);
  sp_params_free(&raw);
}

/* Without a prefix, PREFIXED specs are written bare. */
static void test_validate_no_prefix(void **state) {
  (void)state;
  sp_params raw = {0}, out = {0};
  set(&raw, "host", "db", 3);
  capture cap;
  capture_begin(&cap);
  assert_int_equal(sp_params_validate(pg_specs, NULL, &raw, NULL, "d", &out, NULL), SP_OK);
  char *log = capture_end(&cap);
  assert_string_equal(log, "");
  free(log);
  assert_string_equal(sp_params_get(&out, "host"), "db");
  assert_string_equal(sp_params_get(&out, "port"), "5432");
  sp_params_free(&out);
  sp_params_free(&raw);
}

int main(void) {
  sp_log_set_level(SP_LOG_WARN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_map_basics),
      cmocka_unit_test(test_durations),
      cmocka_unit_test(test_booleans),
      cmocka_unit_test(test_closest),
      cmocka_unit_test(test_validate_canonical_and_defaults),
      cmocka_unit_test(test_validate_prefix_rule),
      cmocka_unit_test(test_validate_required),
      cmocka_unit_test(test_validate_types),
      cmocka_unit_test(test_validate_secret_never_in_message),
      cmocka_unit_test(test_validate_secret_lookup),
      cmocka_unit_test(test_validate_keeps_unsupported_type_action),
      cmocka_unit_test(test_validate_no_prefix),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
